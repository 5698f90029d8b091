//! A real Garage 2.5.0 server on loopback, for integration tests.
//!
//! ```no_run
//! # async fn demo() -> Result<(), coffer_testfixtures::HarnessError> {
//! use coffer_testfixtures::garage::Garage;
//! // A dedicated single-node server, killed (and its directory removed) when dropped.
//! let garage = Garage::start().await?;
//! let target = garage.target(); // endpoint, region "garage", bucket, key
//! // Or one server per test process, with a fresh bucket per test.
//! let target = Garage::shared().await?.new_bucket().await?;
//! # Ok(()) }
//! ```
//!
//! # The binary
//! `$COFFER_GARAGE_BIN` if set; else `<tools>/garage-2.5.0/bin/garage`, where `<tools>` is
//! `$COFFER_TOOLS_DIR` or `<workspace>/target/tools`. When that binary is missing or is not
//! version 2.5.0, the harness builds it, once, under an exclusive file lock
//! (`<tools>/garage-2.5.0.lock`) so that parallel tests and test binaries wait for one build:
//!
//! ```text
//! CARGO_TARGET_DIR=<tools>/garage-build cargo install garage@2.5.0 --locked --force \
//!     --no-default-features --features bundled-libs,sqlite --root <tools>/garage-2.5.0
//! ```
//!
//! That takes 12+ minutes on 2 cores; progress goes to stderr, output to
//! `<tools>/garage-2.5.0-install.log`.
//!
//! # The server (facts checked against `garage 2.5.0 --help` and by experiment)
//! * `garage.toml`: `replication_factor = 1`, `db_engine = "sqlite"`, `rpc_bind_addr` and
//!   `rpc_public_addr` on a free loopback port, a random 64-hex `rpc_secret`, `metadata_dir`
//!   and `data_dir` in a temporary directory, and `[s3_api]` with `s3_region`,
//!   `api_bind_addr` (another free loopback port) and `root_domain`. Garage refuses a config
//!   file holding secrets that others can read: it is `chmod 600`.
//! * `garage -c garage.toml server`; the CLI talks to it over RPC with the same `-c`.
//! * `node id -q` prints `<64-hex id>@127.0.0.1:<rpc port>`; `layout assign -z dc1 -c 1G <id>`,
//!   `layout apply --version 1`, `key import --yes -n <name> GK<24 hex> <64 hex>`,
//!   `bucket create <b>`, `bucket allow --read --write --owner <b> --key <name>`.
//! * The whole bootstrap takes about 1.5 s. Garage logs with ANSI colours even to a file.
//! * Garage checks SigV4 strictly, including the region (`garage` unless configured): a
//!   request signed for another region gets 400 `AuthorizationHeaderMalformed` with
//!   `<Region>garage</Region>` and the expected scope in the message.
//! * It **ignores `If-None-Match` and `If-Match` on writes** (200, overwritten), but honours
//!   `If-Match` on GET (412).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use tempfile::TempDir;
use tokio::sync::OnceCell;

use crate::error::{HarnessError, Result};
use crate::raw_s3::RawS3;
use crate::target::S3Target;
use crate::tools::{
    self, Daemon, FileLock, Watchdog, describe, free_port, log_tail, pause, pause_async,
    random_hex, run,
};

/// The Garage version the harness builds and expects.
pub const GARAGE_VERSION: &str = "2.5.0";

/// Environment variable pointing at a Garage binary to use instead of building one.
pub const GARAGE_BIN_ENV: &str = "COFFER_GARAGE_BIN";

/// How long a single CLI step may take.
const CLI_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the server may take to answer RPC, then S3.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// A generous cap on the build; the normal build takes 12 to 20 minutes.
const BUILD_TIMEOUT: Duration = Duration::from_secs(90 * 60);

/// Options of a Garage server.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GarageOptions {
    /// `[s3_api] s3_region`; requests must be signed for it. Default `garage`.
    pub region: String,
    /// The bucket created at start. Default `coffer-test`.
    pub bucket: String,
}

impl Default for GarageOptions {
    fn default() -> Self {
        Self {
            region: "garage".to_owned(),
            bucket: "coffer-test".to_owned(),
        }
    }
}

impl GarageOptions {
    /// Sets the S3 region.
    #[must_use]
    pub fn region(mut self, region: &str) -> Self {
        region.clone_into(&mut self.region);
        self
    }

    /// Sets the bucket created at start.
    #[must_use]
    pub fn bucket(mut self, bucket: &str) -> Self {
        bucket.clone_into(&mut self.bucket);
        self
    }
}

/// Entry point of the Garage harness.
#[derive(Debug, Clone, Copy)]
pub struct Garage;

static SHARED: OnceCell<GarageServer> = OnceCell::const_new();

impl Garage {
    /// Starts a dedicated single-node server with default options (region `garage`, bucket
    /// `coffer-test`, a random key), building the binary first if needed.
    pub async fn start() -> Result<GarageServer> {
        Self::start_with(GarageOptions::default()).await
    }

    /// Starts a dedicated single-node server.
    pub async fn start_with(options: GarageOptions) -> Result<GarageServer> {
        let binary = Self::binary().await?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let bin = binary.clone();
            let opts = options.clone();
            let launched = tokio::task::spawn_blocking(move || GarageServer::launch(&bin, &opts))
                .await
                .expect("the Garage launcher does not panic");
            let result = match launched {
                Ok(server) => server.wait_for_s3().await.map(|()| server),
                Err(e) => Err(e),
            };
            match result {
                Err(e) if e.is_port_race() && attempt < 3 => {
                    eprintln!("coffer-testfixtures: garage lost a port race, retrying: {e}");
                }
                other => return other,
            }
        }
    }

    /// One server for the whole test process, started on first use. Tests that share it
    /// should each take their own bucket with [`GarageServer::new_bucket`]. Its processes
    /// and directory are cleaned up when the process exits.
    pub async fn shared() -> Result<&'static GarageServer> {
        SHARED.get_or_try_init(Self::start).await
    }

    /// The path of a working Garage 2.5.0 binary, building it if needed (see the module
    /// documentation).
    pub async fn binary() -> Result<PathBuf> {
        static BINARY: OnceCell<PathBuf> = OnceCell::const_new();
        BINARY
            .get_or_try_init(|| async {
                tokio::task::spawn_blocking(ensure_binary)
                    .await
                    .expect("the Garage installer does not panic")
            })
            .await
            .cloned()
    }
}

/// The manual install command, for error messages.
fn manual_install(tools: &Path) -> String {
    format!(
        "CARGO_TARGET_DIR={build} cargo install garage@{GARAGE_VERSION} --locked --force \
         --no-default-features --features bundled-libs,sqlite --root {root}\n    \
         (or point {GARAGE_BIN_ENV} at an existing garage {GARAGE_VERSION} binary)",
        build = tools.join("garage-build").display(),
        root = tools.join(format!("garage-{GARAGE_VERSION}")).display(),
    )
}

/// `garage --version`, if the binary runs.
fn version_of(bin: &Path) -> Result<String> {
    run(
        Command::new(bin).arg("--version"),
        Duration::from_secs(30),
        &[],
    )
    .map(|out| out.stdout.trim().to_owned())
}

fn has_expected_version(version: &str) -> bool {
    // `garage cargo:2.5.0 [features: bundled-libs, sqlite]`
    version
        .split(|c: char| c.is_whitespace() || c == ':' || c == 'v')
        .any(|word| word == GARAGE_VERSION)
}

fn ensure_binary() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os(GARAGE_BIN_ENV).filter(|v| !v.is_empty()) {
        let bin = PathBuf::from(bin);
        let version = version_of(&bin).map_err(|e| HarnessError::Install {
            tool: format!("garage {GARAGE_VERSION}"),
            reason: format!("{GARAGE_BIN_ENV}={} does not run: {e}", bin.display()),
            how: manual_install(&tools::tools_dir()),
        })?;
        if !has_expected_version(&version) {
            eprintln!(
                "coffer-testfixtures: warning: {GARAGE_BIN_ENV} is `{version}`, \
                 the tests expect garage {GARAGE_VERSION}"
            );
        }
        return Ok(bin);
    }
    // Cargo sets CARGO for the tests it runs: build with the same toolchain.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    ensure_binary_in(&tools::tools_dir(), &cargo)
}

/// The cached binary under `tools`, built with `cargo` if missing or of another version.
fn ensure_binary_in(tools: &Path, cargo: &std::ffi::OsStr) -> Result<PathBuf> {
    let tools = tools.to_path_buf();
    let root = tools.join(format!("garage-{GARAGE_VERSION}"));
    let bin = root.join("bin").join("garage");
    let usable =
        |bin: &Path| bin.is_file() && version_of(bin).is_ok_and(|v| has_expected_version(&v));
    if usable(&bin) {
        return Ok(bin);
    }
    let _lock = FileLock::acquire(
        &tools.join(format!("garage-{GARAGE_VERSION}.lock")),
        "building garage",
    )?;
    // Another process may have built it while we waited for the lock.
    if usable(&bin) {
        return Ok(bin);
    }
    if bin.exists() {
        eprintln!(
            "coffer-testfixtures: {} is not a working garage {GARAGE_VERSION}; rebuilding",
            bin.display()
        );
    }
    build(&tools, &root, cargo)?;
    match version_of(&bin) {
        Ok(v) if has_expected_version(&v) => Ok(bin),
        Ok(v) => Err(HarnessError::Install {
            tool: format!("garage {GARAGE_VERSION}"),
            reason: format!("the freshly built {} reports `{v}`", bin.display()),
            how: manual_install(&tools),
        }),
        Err(e) => Err(HarnessError::Install {
            tool: format!("garage {GARAGE_VERSION}"),
            reason: format!("the freshly built {} does not run: {e}", bin.display()),
            how: manual_install(&tools),
        }),
    }
}

/// Runs `cargo install` with its output in a log file, printing progress to stderr.
fn build(tools: &Path, root: &Path, cargo: &std::ffi::OsStr) -> Result<()> {
    let log = tools.join(format!("garage-{GARAGE_VERSION}-install.log"));
    let mut cmd = Command::new(cargo);
    cmd.args([
        "install",
        &format!("garage@{GARAGE_VERSION}"),
        "--locked",
        // The binary is unusable or missing: reinstall even if cargo's records say otherwise.
        "--force",
        "--no-default-features",
        "--features",
        "bundled-libs,sqlite",
        "--root",
    ])
    .arg(root)
    .env("CARGO_TARGET_DIR", tools.join("garage-build"))
    // Flags meant for coffer (`-D warnings` in CI, say) must not break Garage's build.
    .env_remove("RUSTFLAGS")
    .env_remove("CARGO_ENCODED_RUSTFLAGS")
    .env_remove("CARGO_BUILD_RUSTFLAGS")
    // Not inside the workspace, so that its `.cargo/config.toml` does not apply.
    .current_dir(tools);
    let _ = std::fs::remove_file(&log);
    eprintln!(
        "coffer-testfixtures: building garage {GARAGE_VERSION} (12+ minutes on 2 cores): `{}`\n\
         coffer-testfixtures: build log: {}",
        describe(&cmd, &[]),
        log.display()
    );
    let mut child = Daemon::spawn("cargo install garage", &mut cmd, &log)?;
    let started = Instant::now();
    let mut last_report = Instant::now();
    let status = loop {
        if let Some(status) = child.exited() {
            break status;
        }
        if started.elapsed() > BUILD_TIMEOUT {
            child.kill();
            return Err(HarnessError::Install {
                tool: format!("garage {GARAGE_VERSION}"),
                reason: format!(
                    "`cargo install` still running after {BUILD_TIMEOUT:?}; log {}:\n{}",
                    log.display(),
                    log_tail(&log, 30)
                ),
                how: manual_install(tools),
            });
        }
        if last_report.elapsed() > Duration::from_secs(30) {
            last_report = Instant::now();
            eprintln!(
                "coffer-testfixtures: still building garage ({} s): {}",
                started.elapsed().as_secs(),
                log_tail(&log, 1).trim()
            );
        }
        pause(Duration::from_millis(250));
    };
    if !status.success() {
        return Err(HarnessError::Install {
            tool: format!("garage {GARAGE_VERSION}"),
            reason: format!(
                "`cargo install` failed ({status}); log {}:\n{}",
                log.display(),
                log_tail(&log, 40)
            ),
            how: manual_install(tools),
        });
    }
    eprintln!(
        "coffer-testfixtures: built garage {GARAGE_VERSION} in {} s",
        started.elapsed().as_secs()
    );
    Ok(())
}

/// A running single-node Garage server. Dropping it kills the server and removes its
/// directory.
pub struct GarageServer {
    endpoint: String,
    region: String,
    bucket: String,
    access_key: String,
    secret_key: SecretString,
    key_name: String,
    cli: Cli,
    daemon: Mutex<Daemon>,
    watchdog: Watchdog,
    dir: TempDir,
}

impl std::fmt::Debug for GarageServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GarageServer")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl GarageServer {
    /// Writes the config, starts the server and runs the CLI bootstrap (blocking).
    fn launch(bin: &Path, options: &GarageOptions) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("coffer-garage-")
            .tempdir()
            .map_err(|e| HarnessError::io("creating a temporary directory for garage", e))?;
        let watchdog = Watchdog::start(dir.path())?;
        let rpc_port = free_port()?;
        let s3_port = free_port()?;
        let config = dir.path().join("garage.toml");
        let text = format!(
            "metadata_dir = \"{meta}\"\n\
             data_dir = \"{data}\"\n\
             db_engine = \"sqlite\"\n\
             replication_factor = 1\n\
             rpc_bind_addr = \"127.0.0.1:{rpc_port}\"\n\
             rpc_public_addr = \"127.0.0.1:{rpc_port}\"\n\
             rpc_secret = \"{secret}\"\n\
             \n\
             [s3_api]\n\
             s3_region = \"{region}\"\n\
             api_bind_addr = \"127.0.0.1:{s3_port}\"\n\
             root_domain = \".s3.garage.localhost\"\n",
            meta = dir.path().join("meta").display(),
            data = dir.path().join("data").display(),
            secret = random_hex(32)?,
            region = options.region,
        );
        write_private(&config, &text)?;
        let log = dir.path().join("garage.log");
        let daemon = Daemon::spawn(
            "garage server",
            Command::new(bin).arg("-c").arg(&config).arg("server"),
            &log,
        )?;
        watchdog.register(daemon.pid())?;
        let access_key = format!("GK{}", random_hex(12)?);
        let secret_key = SecretString::from(random_hex(32)?);
        let server = Self {
            endpoint: format!("http://127.0.0.1:{s3_port}"),
            region: options.region.clone(),
            bucket: options.bucket.clone(),
            access_key,
            secret_key,
            key_name: "coffer-test".to_owned(),
            cli: Cli {
                bin: bin.to_path_buf(),
                config,
                log,
            },
            daemon: Mutex::new(daemon),
            watchdog,
            dir,
        };
        server.wait_for_rpc()?;
        let node = server.cli.run(&["node", "id", "-q"], &[])?;
        let node_id = node
            .split('@')
            .next()
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| HarnessError::Command {
                command: "garage node id -q".to_owned(),
                status: "unexpected output".to_owned(),
                output: node.clone(),
            })?
            .to_owned();
        server.cli.run(
            &["layout", "assign", "-z", "dc1", "-c", "1G", &node_id],
            &[],
        )?;
        server
            .cli
            .run(&["layout", "apply", "--version", "1"], &[])?;
        let secret = server.secret_key.expose_secret().to_owned();
        server.cli.run(
            &[
                "key",
                "import",
                "--yes",
                "-n",
                &server.key_name,
                &server.access_key,
                &secret,
            ],
            &[&secret],
        )?;
        server.cli.new_bucket(&server.bucket, &server.key_name)?;
        Ok(server)
    }

    /// Waits until the CLI reaches the server over RPC.
    fn wait_for_rpc(&self) -> Result<()> {
        let started = Instant::now();
        loop {
            self.check_alive()?;
            match run(
                &mut self.cli.command(&["status"]),
                Duration::from_secs(10),
                &[],
            ) {
                Ok(_) => return Ok(()),
                Err(_) if started.elapsed() < READY_TIMEOUT => pause(Duration::from_millis(100)),
                Err(e) => {
                    return Err(HarnessError::Timeout {
                        what: "garage (RPC)".to_owned(),
                        waited: started.elapsed(),
                        logs: format!("{e}\n--- garage.log ---\n{}", self.logs()),
                    });
                }
            }
        }
    }

    /// Waits until a signed HeadBucket succeeds: the layout is applied and the key works.
    async fn wait_for_s3(&self) -> Result<()> {
        let started = Instant::now();
        let s3 = self.raw_s3();
        let path = format!("/{}", self.bucket);
        loop {
            self.check_alive()?;
            let last = match s3.send("HEAD", &path, &[], Vec::new()).await {
                Ok(response) if response.status == 200 => return Ok(()),
                Ok(response) => format!("HTTP {}", response.status),
                Err(e) => e.to_string(),
            };
            if started.elapsed() > READY_TIMEOUT {
                return Err(HarnessError::Timeout {
                    what: format!("garage S3 API at {}", self.endpoint),
                    waited: started.elapsed(),
                    logs: format!(
                        "last HeadBucket: {last}\n--- garage.log ---\n{}",
                        self.logs()
                    ),
                });
            }
            pause_async(Duration::from_millis(100)).await;
        }
    }

    fn check_alive(&self) -> Result<()> {
        let mut daemon = self
            .daemon
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match daemon.exited() {
            None => Ok(()),
            Some(status) => Err(HarnessError::Exited {
                what: daemon.name().to_owned(),
                status: status.to_string(),
                logs: log_tail(daemon.log(), 40),
            }),
        }
    }

    /// Base URL of the S3 API, e.g. `http://127.0.0.1:39017`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The region requests must be signed for (`garage` by default).
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The bucket created at start.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The access key id (`GK` + 24 hex), allowed to read, write and own every bucket the
    /// harness creates.
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// The secret access key.
    pub fn secret_key(&self) -> &SecretString {
        &self.secret_key
    }

    /// The Garage name of the key (for `garage bucket allow --key`).
    pub fn key_name(&self) -> &str {
        &self.key_name
    }

    /// The start bucket with its credentials.
    pub fn target(&self) -> S3Target {
        self.target_for(&self.bucket)
    }

    fn target_for(&self, bucket: &str) -> S3Target {
        S3Target {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            bucket: bucket.to_owned(),
            access_key: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
        }
    }

    /// A signed raw requester with the server's credentials and region.
    pub fn raw_s3(&self) -> RawS3 {
        self.target().raw_s3()
    }

    /// Creates bucket `name` and gives the harness key read, write and owner rights on it.
    pub async fn create_bucket(&self, name: &str) -> Result<S3Target> {
        let cli = self.cli.clone();
        let bucket = name.to_owned();
        let key = self.key_name.clone();
        tokio::task::spawn_blocking(move || cli.new_bucket(&bucket, &key))
            .await
            .expect("the garage CLI runner does not panic")?;
        Ok(self.target_for(name))
    }

    /// Creates a bucket with a fresh random name (`coffer-<16 hex>`), for tests that share a
    /// server.
    pub async fn new_bucket(&self) -> Result<S3Target> {
        let name = format!("coffer-{}", random_hex(8)?);
        self.create_bucket(&name).await
    }

    /// Runs `garage -c <config> <args…>` and returns its stdout (for tests that need other
    /// administration, e.g. `key create`).
    pub async fn cli(&self, args: &[&str]) -> Result<String> {
        let cli = self.cli.clone();
        let args: Vec<String> = args.iter().map(|&a| a.to_owned()).collect();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cli.run(&args, &[])
        })
        .await
        .expect("the garage CLI runner does not panic")
    }

    /// The last 40 lines of the server's log.
    pub fn logs(&self) -> String {
        log_tail(&self.cli.log, 40)
    }

    /// The server's temporary directory (config, metadata, data, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The Garage binary in use.
    pub fn binary(&self) -> &Path {
        &self.cli.bin
    }
}

/// How to run the Garage CLI against one server; cheap to clone into blocking tasks.
#[derive(Debug, Clone)]
struct Cli {
    bin: PathBuf,
    config: PathBuf,
    log: PathBuf,
}

impl Cli {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("-c").arg(&self.config).args(args);
        cmd
    }

    /// Runs one CLI step (blocking); a failure carries the tail of the server's log.
    fn run(&self, args: &[&str], secrets: &[&str]) -> Result<String> {
        run(&mut self.command(args), CLI_TIMEOUT, secrets)
            .map(|out| out.stdout)
            .map_err(|e| match e {
                HarnessError::Command {
                    command,
                    status,
                    output,
                } => HarnessError::Command {
                    command,
                    status,
                    output: format!("{output}\n--- garage.log ---\n{}", log_tail(&self.log, 30)),
                },
                other => other,
            })
    }

    /// `bucket create` then `bucket allow --read --write --owner` for `key`.
    fn new_bucket(&self, bucket: &str, key: &str) -> Result<()> {
        self.run(&["bucket", "create", bucket], &[])?;
        self.run(
            &[
                "bucket", "allow", "--read", "--write", "--owner", bucket, "--key", key,
            ],
            &[],
        )?;
        Ok(())
    }
}

impl Drop for GarageServer {
    fn drop(&mut self) {
        self.watchdog.disarm();
        self.daemon
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .kill();
        // `dir` (a TempDir) is removed when the fields drop, after the process is gone.
    }
}

/// Writes a file readable by its owner only, as Garage demands for files holding secrets.
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| HarnessError::io(format!("creating {}", path.display()), e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| HarnessError::io(format!("writing {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_lines_are_recognised() {
        assert!(has_expected_version(
            "garage cargo:2.5.0 [features: bundled-libs, sqlite]"
        ));
        assert!(has_expected_version("garage v2.5.0"));
        assert!(!has_expected_version(
            "garage cargo:2.5.1 [features: sqlite]"
        ));
        assert!(!has_expected_version("garage v1.2.5.0x"));
    }

    #[test]
    fn the_manual_command_is_complete() {
        let how = manual_install(Path::new("/t"));
        assert!(
            how.contains("CARGO_TARGET_DIR=/t/garage-build cargo install garage@2.5.0 --locked")
        );
        assert!(how.contains("--features bundled-libs,sqlite --root /t/garage-2.5.0"));
        assert!(how.contains(GARAGE_BIN_ENV));
    }

    /// A stand-in for `cargo` that "installs" a script answering `--version` like Garage,
    /// counting its invocations, after a pause long enough for parallel callers to collide.
    fn fake_cargo(dir: &Path, version: &str, exit: i32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("fake-cargo");
        let script = format!(
            "#!/bin/sh\n\
             echo run >> \"{count}\"\n\
             echo \"fake cargo $*\"; echo \"CARGO_TARGET_DIR=$CARGO_TARGET_DIR\"\n\
             sleep 0.5\n\
             [ {exit} -eq 0 ] || {{ echo 'error: could not compile' >&2; exit {exit}; }}\n\
             while [ \"$1\" != --root ]; do shift; done\n\
             mkdir -p \"$2/bin\"\n\
             printf '#!/bin/sh\\necho \"garage cargo:{version} [features: sqlite]\"\\n' > \"$2/bin/garage\"\n\
             chmod +x \"$2/bin/garage\"\n",
            count = dir.join("count").display(),
        );
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn a_missing_binary_is_built_once_under_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let tools = dir.path().join("tools");
        let cargo = fake_cargo(dir.path(), GARAGE_VERSION, 0);
        let callers: Vec<_> = (0..3)
            .map(|_| {
                let (tools, cargo) = (tools.clone(), cargo.clone());
                std::thread::spawn(move || ensure_binary_in(&tools, cargo.as_os_str()))
            })
            .collect();
        for caller in callers {
            let bin = caller.join().unwrap().unwrap();
            assert_eq!(bin, tools.join("garage-2.5.0/bin/garage"));
        }
        let runs = std::fs::read_to_string(dir.path().join("count")).unwrap();
        assert_eq!(runs.lines().count(), 1, "built exactly once");
        let log = std::fs::read_to_string(tools.join("garage-2.5.0-install.log")).unwrap();
        assert!(log.contains("install garage@2.5.0 --locked --force --no-default-features --features bundled-libs,sqlite --root"), "{log}");
        assert!(
            log.contains(&format!(
                "CARGO_TARGET_DIR={}",
                tools.join("garage-build").display()
            )),
            "{log}"
        );
        // Cached from now on.
        ensure_binary_in(&tools, cargo.as_os_str()).unwrap();
        let runs = std::fs::read_to_string(dir.path().join("count")).unwrap();
        assert_eq!(runs.lines().count(), 1);
    }

    #[test]
    fn a_binary_of_another_version_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let tools = dir.path().join("tools");
        ensure_binary_in(&tools, fake_cargo(dir.path(), "2.4.0", 0).as_os_str())
            .expect_err("the build produced the wrong version");
        ensure_binary_in(
            &tools,
            fake_cargo(dir.path(), GARAGE_VERSION, 0).as_os_str(),
        )
        .unwrap();
        let runs = std::fs::read_to_string(dir.path().join("count")).unwrap();
        assert_eq!(runs.lines().count(), 2);
    }

    #[test]
    fn a_failed_build_says_how_to_install_by_hand() {
        let dir = tempfile::tempdir().unwrap();
        let tools = dir.path().join("tools");
        let err = ensure_binary_in(
            &tools,
            fake_cargo(dir.path(), GARAGE_VERSION, 101).as_os_str(),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, HarnessError::Install { .. }), "{text}");
        assert!(text.contains("error: could not compile"), "{text}");
        assert!(text.contains("Install it by hand"), "{text}");
        assert!(
            text.contains("cargo install garage@2.5.0 --locked"),
            "{text}"
        );
    }

    #[test]
    fn private_files_are_mode_600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("garage.toml");
        write_private(&path, "x").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
