//! Process, port, lock and path helpers shared by the server harnesses.
//!
//! Everything here is blocking: the harnesses call it from `tokio::task::spawn_blocking`.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use fs4::fs_std::FileExt;

use crate::error::{HarnessError, Result};

/// Environment variable naming the directory where harnesses cache the servers they build.
pub const TOOLS_DIR_ENV: &str = "COFFER_TOOLS_DIR";

/// The directory where harnesses cache the servers they build: `$COFFER_TOOLS_DIR` if set,
/// else `<workspace root>/target/tools`.
pub fn tools_dir() -> PathBuf {
    match std::env::var_os(TOOLS_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join("target").join("tools"),
    }
}

/// The workspace root: the parent of this crate's manifest directory.
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map_or_else(|| manifest.to_path_buf(), Path::to_path_buf)
}

/// A loopback TCP port that was free a moment ago. The server binds it later, so another
/// process can take it in between: callers retry on "Address already in use".
pub(crate) fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| HarnessError::io("binding 127.0.0.1:0 to find a free port", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| HarnessError::io("reading the address of a free port", e))?
        .port();
    Ok(port)
}

/// `bytes` random bytes from the OS, hex encoded (lower case).
pub(crate) fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| {
        HarnessError::io("reading the OS random generator", std::io::Error::other(e))
    })?;
    Ok(hex::encode(buf))
}

/// Blocks the current thread.
// Harnesses poll real processes on a real clock; there is nothing to inject here.
#[allow(clippy::disallowed_methods)]
pub(crate) fn pause(duration: Duration) {
    std::thread::sleep(duration);
}

/// Sleeps asynchronously.
// Harnesses poll real servers on a real clock; there is nothing to inject here.
#[allow(clippy::disallowed_methods)]
pub(crate) async fn pause_async(duration: Duration) {
    tokio::time::sleep(duration).await;
}

/// Whether this process runs as root (effective uid 0), read from `/proc/self/status`.
pub(crate) fn is_root() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

/// The absolute path of `program`, searched in `PATH` and then in the system directories
/// that a non-login `PATH` often lacks (`/usr/sbin`, `/sbin`).
pub(crate) fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/bin", "/usr/bin", "/usr/sbin", "/bin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// An exclusive advisory lock on a file, held until dropped. Works across processes and
/// across threads of one process (each acquisition opens its own file description).
#[derive(Debug)]
pub(crate) struct FileLock {
    _file: File,
}

impl FileLock {
    /// Takes the lock on `path`, creating the file, and says on stderr if it has to wait.
    pub(crate) fn acquire(path: &Path, what: &str) -> Result<Self> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| HarnessError::io(format!("creating {}", parent.display()), e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| HarnessError::io(format!("opening lock file {}", path.display()), e))?;
        let locked = FileExt::try_lock_exclusive(&file)
            .map_err(|e| HarnessError::io(format!("locking {}", path.display()), e))?;
        if !locked {
            eprintln!(
                "coffer-testfixtures: waiting for another process to finish {what} (lock {})",
                path.display()
            );
            FileExt::lock_exclusive(&file)
                .map_err(|e| HarnessError::io(format!("locking {}", path.display()), e))?;
        }
        Ok(Self { _file: file })
    }
}

/// What a finished command printed.
#[derive(Debug)]
pub(crate) struct CommandOutput {
    /// Its standard output.
    pub(crate) stdout: String,
    /// Its standard error.
    pub(crate) stderr: String,
}

/// The command line of `cmd`, for messages, with each of `secrets` replaced.
pub(crate) fn describe(cmd: &Command, secrets: &[&str]) -> String {
    let mut line = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    redact(line, secrets)
}

fn redact(mut text: String, secrets: &[&str]) -> String {
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        text = text.replace(secret, "<redacted>");
    }
    text
}

/// Runs `cmd` to completion with stdin closed, capturing its output, and fails unless it exits
/// with status 0 within `timeout`. Each of `secrets` is redacted from error messages.
pub(crate) fn run(cmd: &mut Command, timeout: Duration, secrets: &[&str]) -> Result<CommandOutput> {
    let line = describe(cmd, secrets);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| HarnessError::io(format!("starting `{line}`"), e))?;
    // Readers on their own threads, so a chatty command cannot fill a pipe and stall.
    let stdout = child.stdout.take().map(read_all_in_background);
    let stderr = child.stderr.take().map(read_all_in_background);
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!("timed out after {timeout:?}"));
            }
            Ok(None) => pause(Duration::from_millis(20)),
            Err(e) => return Err(HarnessError::io(format!("waiting for `{line}`"), e)),
        }
    };
    let join = |h: Option<std::thread::JoinHandle<Vec<u8>>>| {
        h.and_then(|h| h.join().ok())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    };
    let output = CommandOutput {
        stdout: join(stdout),
        stderr: join(stderr),
    };
    match status {
        Ok(status) if status.success() => Ok(output),
        Ok(status) => Err(command_error(line, status.to_string(), &output, secrets)),
        Err(timed_out) => Err(command_error(line, timed_out, &output, secrets)),
    }
}

fn command_error(
    command: String,
    status: String,
    output: &CommandOutput,
    secrets: &[&str],
) -> HarnessError {
    HarnessError::Command {
        command,
        status,
        output: redact(
            format!(
                "--- stdout ---\n{}\n--- stderr ---\n{}",
                tail_lines(&output.stdout, 40),
                tail_lines(&output.stderr, 40)
            ),
            secrets,
        ),
    }
}

fn read_all_in_background(
    mut pipe: impl Read + Send + 'static,
) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// The last `lines` lines of `text`.
pub(crate) fn tail_lines(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Removes ANSI colour escapes (`ESC [ … letter`), which Garage writes even to files.
pub(crate) fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // Skip the CSI sequence up to and including its final letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The last `lines` lines of the file at `path` (reading at most its last 64 KiB), without
/// colour escapes; a note instead if it cannot be read.
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    const WINDOW: u64 = 64 << 10;
    let read = || -> std::io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(WINDOW)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        Ok(text) => tail_lines(&strip_ansi(&text), lines),
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// A long-running server process whose stdout and stderr go to a log file. Killed when
/// dropped.
#[derive(Debug)]
pub(crate) struct Daemon {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Starts `cmd` with stdin closed and output appended to `log`.
    pub(crate) fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Result<Self> {
        let open = || {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .map_err(|e| HarnessError::io(format!("opening log {}", log.display()), e))
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(open()?)
            .stderr(open()?)
            .spawn()
            .map_err(|e| {
                HarnessError::io(format!("starting {name}: `{}`", describe(cmd, &[])), e)
            })?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log: log.to_path_buf(),
        })
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its name, for messages.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Where its output goes.
    pub(crate) fn log(&self) -> &Path {
        &self.log
    }

    /// Its exit status if it has exited.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Kills it (SIGKILL: the servers run on throw-away state, so there is nothing to flush)
    /// and reaps it.
    pub(crate) fn kill(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A helper process that kills a server's processes and removes its directory if this test
/// process dies without running destructors (a panic with `panic = "abort"`, SIGKILL, Ctrl-C,
/// or a process-wide shared server that lives in a `static`, whose `Drop` never runs).
///
/// It is a `sh` that blocks reading a pipe from us: when this process exits in any way, the
/// kernel closes the pipe and the shell cleans up. Normal teardown disarms it first.
#[derive(Debug)]
pub(crate) struct Watchdog {
    child: Child,
    stdin: Option<ChildStdin>,
    pids: PathBuf,
}

impl Watchdog {
    /// Watches `dir`: on our death, kill the pids registered so far, then `rm -rf dir`.
    pub(crate) fn start(dir: &Path) -> Result<Self> {
        let pids = dir.join(".watchdog-pids");
        File::create(&pids)
            .map_err(|e| HarnessError::io(format!("creating {}", pids.display()), e))?;
        let script = "trap '' INT TERM HUP; cat >/dev/null; \
                      kill -9 $(cat \"$1\") 2>/dev/null; rm -rf \"$2\"";
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .arg("coffer-watchdog")
            .arg(&pids)
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| HarnessError::io("starting the clean-up watchdog (/bin/sh)", e))?;
        let stdin = child.stdin.take();
        Ok(Self { child, stdin, pids })
    }

    /// Adds `pid` to the processes killed if we die.
    pub(crate) fn register(&self, pid: u32) -> Result<()> {
        let mut file = OpenOptions::new()
            .append(true)
            .open(&self.pids)
            .map_err(|e| HarnessError::io(format!("opening {}", self.pids.display()), e))?;
        writeln!(file, "{pid}")
            .map_err(|e| HarnessError::io(format!("writing {}", self.pids.display()), e))
    }

    /// Stops the watchdog without letting it act (the owner cleans up itself).
    pub(crate) fn disarm(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stdin = None;
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.disarm();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_escapes_are_stripped() {
        assert_eq!(
            strip_ansi("\u{1b}[2m2026\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m ok"),
            "2026  INFO ok"
        );
    }

    #[test]
    fn tails_keep_the_last_lines() {
        assert_eq!(tail_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail_lines("a", 5), "a");
    }

    #[test]
    fn descriptions_redact_secrets() {
        let mut cmd = Command::new("garage");
        cmd.args(["key", "import", "GK1", "s3cr3t"]);
        assert_eq!(
            describe(&cmd, &["s3cr3t"]),
            "garage key import GK1 <redacted>"
        );
    }

    #[test]
    fn run_reports_failures_with_output() {
        let err = run(
            Command::new("/bin/sh").args(["-c", "echo out; echo err-s3cr3t >&2; exit 3"]),
            Duration::from_secs(10),
            &["s3cr3t"],
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("exit status: 3"), "{text}");
        assert!(
            text.contains("out") && text.contains("err-<redacted>"),
            "{text}"
        );
        assert!(!text.contains("s3cr3t"), "{text}");
    }

    #[test]
    fn run_times_out() {
        let err = run(
            Command::new("/bin/sh").args(["-c", "sleep 5"]),
            Duration::from_millis(200),
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("timed out"), "{err}");
    }

    #[test]
    fn watchdog_cleans_up_when_its_pipe_closes() {
        let dir = tempfile::tempdir().unwrap();
        let watched = dir.path().join("server");
        fs::create_dir(&watched).unwrap();
        let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
        let mut dog = Watchdog::start(&watched).unwrap();
        dog.register(sleeper.id()).unwrap();
        // Closing stdin is what the kernel does when this process dies.
        dog.stdin = None;
        let status = sleeper.wait().unwrap();
        assert!(!status.success(), "the registered process was killed");
        let _ = dog.child.wait();
        assert!(!watched.exists(), "the directory was removed");
    }

    #[test]
    fn a_disarmed_watchdog_does_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
        let mut dog = Watchdog::start(dir.path()).unwrap();
        dog.register(sleeper.id()).unwrap();
        dog.disarm();
        assert!(sleeper.try_wait().unwrap().is_none(), "still running");
        assert!(dir.path().exists());
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
    }

    #[test]
    fn free_ports_are_bindable() {
        let port = free_port().unwrap();
        TcpListener::bind(("127.0.0.1", port)).unwrap();
    }
}
