//! Starting and stopping the real `coffer serve`, in a fresh temporary directory.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::Error;

const LISTENING: &str = "coffer listening on ";

/// A running `coffer serve` with its own config, data and repository directories.
#[derive(Debug)]
pub struct Server {
    child: Option<Child>,
    base_url: String,
    dir: tempfile::TempDir,
}

/// The URL in a `coffer listening on http://ADDR` log line, if this is that line. Colour codes
/// and the structured fields after the message are ignored.
pub fn listening_url(line: &str) -> Option<String> {
    let at = line.find(LISTENING)? + LISTENING.len();
    let url: String = line[at..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '\u{1b}')
        .collect();
    url.starts_with("http").then_some(url)
}

impl Server {
    /// Creates the directories and a password-less keystore (as an Elasticsearch
    /// distribution has), then starts `binary serve` on a free port with `path.repo` set, and
    /// waits up to `timeout` for it to log its address.
    pub fn start(binary: &Path, timeout: Duration) -> Result<Self, Error> {
        let io = |what: &str, e: std::io::Error| Error::Server(format!("{what}: {e}"));
        let dir = tempfile::Builder::new()
            .prefix("coffer-conformance-")
            .tempdir()
            .map_err(|e| io("creating a temporary directory", e))?;
        let config = dir.path().join("config");
        let data = dir.path().join("data");
        let repos = dir.path().join("repos");
        for d in [&config, &data, &repos] {
            std::fs::create_dir_all(d).map_err(|e| io(&format!("creating {}", d.display()), e))?;
        }
        let created = Command::new(binary)
            .arg("--config-dir")
            .arg(&config)
            .args(["--silent", "keystore", "create"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| io(&format!("running {} keystore create", binary.display()), e))?;
        if !created.status.success() {
            return Err(Error::Server(format!(
                "{} keystore create failed ({}): {}",
                binary.display(),
                created.status,
                String::from_utf8_lossy(&created.stderr)
            )));
        }
        let mut child = Command::new(binary)
            .arg("--config-dir")
            .arg(&config)
            .arg("serve")
            .arg("-E")
            .arg("http.port=0")
            .arg("-E")
            .arg(format!("path.data={}", data.display()))
            .arg("-E")
            .arg(format!("path.repo={}", repos.display()))
            .arg("-E")
            .arg("node.name=coffer-conformance")
            .env("COFFER_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| io(&format!("starting {} serve", binary.display()), e))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let log_path = dir.path().join("coffer.log");
        let mut log = std::fs::File::create(&log_path).map_err(|e| io("creating the log", e))?;
        let (tx, rx) = mpsc::channel();
        // The server's stderr is drained for its whole life (a full pipe would block it) and
        // copied to the log; the address line is passed on once.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(log, "{line}");
                if let Some(url) = listening_url(&line)
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(url);
                }
            }
        });
        let mut server = Self {
            child: Some(child),
            base_url: String::new(),
            dir,
        };
        match rx.recv_timeout(timeout) {
            Ok(url) => {
                server.base_url = url;
                Ok(server)
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = server.stop(Duration::from_secs(5));
                Err(Error::Server(format!(
                    "no `{LISTENING}` line within {timeout:?}; log:\n{}",
                    server.log()
                )))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = server.stop(Duration::from_secs(5));
                Err(Error::Server(format!(
                    "exited before listening ({status:?}); log:\n{}",
                    server.log()
                )))
            }
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The directory holding config, data, repos and the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("coffer.log")
    }

    /// Sends SIGTERM and waits up to `grace` for the exit; after that, SIGKILL.
    pub fn stop(&mut self, grace: Duration) -> Result<ExitStatus, Error> {
        let Some(mut child) = self.child.take() else {
            return Err(Error::Server("already stopped".to_owned()));
        };
        let pid = child.id().to_string();
        if let Ok(Some(status)) = child.try_wait() {
            return Ok(status);
        }
        // `kill` the command: the crate forbids unsafe code, so no direct libc::kill.
        let signalled = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .map_err(|e| Error::Server(format!("running kill -TERM {pid}: {e}")))?;
        if !signalled.success() {
            return Err(Error::Server(format!(
                "kill -TERM {pid} failed ({signalled})"
            )));
        }
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        match rx.recv_timeout(grace) {
            Ok(Ok(status)) => Ok(status),
            Ok(Err(e)) => Err(Error::Server(format!("waiting for pid {pid}: {e}"))),
            Err(_) => {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
                Err(Error::Server(format!(
                    "did not exit within {grace:?} of SIGTERM; killed"
                )))
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.stop(Duration::from_secs(10));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_line_is_recognised() {
        assert_eq!(
            listening_url(
                "2026-11-24T07:00:00.000Z  INFO coffer::serve: coffer listening on http://127.0.0.1:41234 local=127.0.0.1:41234"
            )
            .as_deref(),
            Some("http://127.0.0.1:41234")
        );
        assert_eq!(
            listening_url(
                "\u{1b}[2mx\u{1b}[0m coffer listening on http://127.0.0.1:1\u{1b}[3mlocal\u{1b}[0m"
            )
            .as_deref(),
            Some("http://127.0.0.1:1")
        );
        assert_eq!(listening_url("starting coffer"), None);
    }
}
