//! A real Ceph radosgw (16.2, what Rook runs) on loopback, for integration tests: one
//! monitor, one memstore OSD and radosgw, without systemd or containers.
//!
//! ```no_run
//! # async fn demo() -> Result<(), coffer_testfixtures::HarnessError> {
//! use coffer_testfixtures::ceph::Ceph;
//! // A dedicated cluster, killed (and its directory removed) when dropped; ~2 s to start.
//! let ceph = Ceph::start().await?;
//! let target = ceph.target(); // endpoint, region "us-east-1", bucket, key
//! // Or one cluster per test process, with a fresh bucket per test.
//! let target = Ceph::shared().await?.new_bucket().await?;
//! # Ok(()) }
//! ```
//!
//! # Installation
//! The Debian packages `radosgw ceph-mon ceph-osd ceph-common` (Debian 12 ships 16.2.15).
//! When a program is missing the harness runs, once, under an exclusive file lock
//! (`<tools>/ceph-install.lock`), `apt-get update` then
//! `apt-get install -y --no-install-recommends radosgw ceph-mon ceph-osd ceph-common`
//! (about 30 to 45 s), logging to `<tools>/ceph-install.log`. That needs root; otherwise the
//! error gives the command to run.
//!
//! # Bootstrap (found by experiment on 16.2.15; timings on 2 busy cores)
//! 1. `ceph.conf` in a temporary directory: `fsid`, `mon host = v2:127.0.0.1:<port>`,
//!    `public addr = cluster addr = 127.0.0.1` and `ms bind msgr1 = false` (everything on
//!    loopback, msgr2 only), `auth … required = none` (the internal cephx; S3 SigV4 is still
//!    checked strictly), `osd objectstore = memstore` with `memstore device bytes`,
//!    `osd pool default size = 1`, `min size = 1`, `pg num = 8` (radosgw creates 7 pools; at
//!    the default 32 PGs that is close to `mon max pg per osd`), `osd crush chooseleaf type = 0`,
//!    `mon allow pool size one`, `mon warn on pool no redundancy = false`,
//!    `mon data avail warn = 1` (no "low on space" warning on full CI disks),
//!    `paxos propose interval = 0.1` (see below), and
//!    every `run dir`, `log file`, `admin socket`, `pid file` and data path inside the
//!    directory.
//! 2. With `auth none`, radosgw (unlike the `ceph` CLI and the OSD) asks for the `secure`
//!    connection mode towards the monitor, which `none` cannot provide: it loops on
//!    `get_initial_auth_request returned -13` for 300 s. `ms mon client mode = crc` fixes it.
//! 3. `monmaptool --create --fsid F --addv a [v2:127.0.0.1:P] monmap`,
//!    `ceph-mon --mkfs -i a --monmap monmap`, then `ceph-mon -i a -f` (< 0.1 s).
//! 4. `ceph osd new <uuid>` prints the id (0), `ceph-osd -i 0 --mkfs --osd-uuid <uuid>`, then
//!    `ceph-osd -i 0 -f`; `ceph osd stat -f json` shows `"num_up_osds":1` about 1 s later.
//! 5. `radosgw -n client.rgw -f` with `rgw frontends = beast endpoint=127.0.0.1:P`: on a fresh
//!    cluster it first creates its pools, each one a monitor proposal. With the default
//!    `paxos propose interval` (1 s) that alone took 9 s and the whole start 12 to 15 s; at
//!    0.1 s the whole bootstrap takes about 2 s.
//! 6. `radosgw-admin user create --uid … --access-key … --secret …` (< 0.1 s once radosgw has
//!    created the pools), then the bucket through S3.
//!
//! Daemons run in the foreground (`-f`) as children of the test process, so they are killed
//! (SIGKILL: memstore has nothing to flush) and reaped on drop.
//!
//! # S3 behaviour
//! * Any region is accepted in the signature; the harness uses `us-east-1`.
//! * `If-None-Match: *` on PUT is honoured atomically (412 `PreconditionFailed`): of 8
//!   concurrent create-only PUTs of one key exactly one gets 200, the others 412 (no 409 seen).
//! * `If-Match` compares the **unquoted** ETag: `If-Match: "<etag>"` (quoted, as AWS
//!   documents it) gives 412 even when it matches; `If-Match: <etag>` works.
//! * Bucket names shorter than 3 characters are refused (`InvalidBucketName`).

use std::fmt::Write as _;
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
    self, Daemon, FileLock, Watchdog, find_program, free_port, is_root, log_tail, pause,
    pause_async, random_hex, run,
};

/// The Debian packages the harness installs.
pub const CEPH_PACKAGES: [&str; 4] = ["radosgw", "ceph-mon", "ceph-osd", "ceph-common"];

/// The programs the bootstrap runs.
const PROGRAMS: [&str; 6] = [
    "monmaptool",
    "ceph-mon",
    "ceph-osd",
    "ceph",
    "radosgw",
    "radosgw-admin",
];

/// How long a single CLI step may take.
const CLI_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the OSD may take to come up, and radosgw to answer HTTP.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// A generous cap on each apt-get step.
const APT_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// Options of a Ceph cluster.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CephOptions {
    /// The memstore OSD's capacity (objects live in RAM). Default 4 GiB.
    pub memstore_bytes: u64,
    /// The bucket created at start. Default `coffer-test`.
    pub bucket: String,
}

impl Default for CephOptions {
    fn default() -> Self {
        Self {
            memstore_bytes: 4 << 30,
            bucket: "coffer-test".to_owned(),
        }
    }
}

impl CephOptions {
    /// Sets the memstore capacity.
    #[must_use]
    pub fn memstore_bytes(mut self, bytes: u64) -> Self {
        self.memstore_bytes = bytes;
        self
    }

    /// Sets the bucket created at start.
    #[must_use]
    pub fn bucket(mut self, bucket: &str) -> Self {
        bucket.clone_into(&mut self.bucket);
        self
    }
}

/// Entry point of the Ceph harness.
#[derive(Debug, Clone, Copy)]
pub struct Ceph;

static SHARED: OnceCell<CephServer> = OnceCell::const_new();

impl Ceph {
    /// Starts a dedicated cluster with default options, installing Ceph first if needed.
    pub async fn start() -> Result<CephServer> {
        Self::start_with(CephOptions::default()).await
    }

    /// Starts a dedicated cluster.
    pub async fn start_with(options: CephOptions) -> Result<CephServer> {
        let programs = Self::ensure_installed().await?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let started = Instant::now();
            let programs = programs.clone();
            let opts = options.clone();
            let launched = tokio::task::spawn_blocking(move || CephServer::launch(programs, &opts))
                .await
                .expect("the Ceph launcher does not panic");
            let result = match launched {
                Ok(server) => server.finish_start().await.map(|()| server),
                Err(e) => Err(e),
            };
            match result {
                Err(e) if e.is_port_race() && attempt < 3 => {
                    eprintln!("coffer-testfixtures: ceph lost a port race, retrying: {e}");
                }
                Ok(server) => {
                    eprintln!(
                        "coffer-testfixtures: ceph radosgw ready at {} in {:.1} s",
                        server.endpoint,
                        started.elapsed().as_secs_f64()
                    );
                    return Ok(server);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One cluster for the whole test process, started on first use (about 2 s). Tests
    /// that share it should each take their own bucket with [`CephServer::new_bucket`]. Its
    /// processes and directory are cleaned up when the process exits.
    pub async fn shared() -> Result<&'static CephServer> {
        SHARED.get_or_try_init(Self::start).await
    }

    /// Makes sure the Ceph programs are installed, installing the packages if needed (see
    /// the module documentation).
    pub async fn ensure_installed() -> Result<CephPrograms> {
        tokio::task::spawn_blocking(ensure_installed)
            .await
            .expect("the Ceph installer does not panic")
    }
}

/// The absolute paths of the Ceph programs the harness runs.
#[derive(Debug, Clone)]
pub struct CephPrograms {
    monmaptool: PathBuf,
    mon: PathBuf,
    osd: PathBuf,
    ceph: PathBuf,
    radosgw: PathBuf,
    radosgw_admin: PathBuf,
}

impl CephPrograms {
    /// Finds every program, or lists the missing ones.
    fn find() -> std::result::Result<Self, Vec<&'static str>> {
        let found: Vec<Option<PathBuf>> = PROGRAMS.iter().map(|p| find_program(p)).collect();
        let missing: Vec<&'static str> = PROGRAMS
            .iter()
            .zip(&found)
            .filter(|(_, path)| path.is_none())
            .map(|(name, _)| *name)
            .collect();
        if !missing.is_empty() {
            return Err(missing);
        }
        let mut paths = found.into_iter().flatten();
        let mut next = || paths.next().expect("all programs were found");
        Ok(Self {
            monmaptool: next(),
            mon: next(),
            osd: next(),
            ceph: next(),
            radosgw: next(),
            radosgw_admin: next(),
        })
    }

    /// The `radosgw` binary.
    pub fn radosgw(&self) -> &Path {
        &self.radosgw
    }
}

fn manual_install(sudo: bool) -> String {
    let sudo = if sudo { "sudo " } else { "" };
    format!(
        "{sudo}apt-get update && {sudo}apt-get install -y --no-install-recommends {}",
        CEPH_PACKAGES.join(" ")
    )
}

fn ensure_installed() -> Result<CephPrograms> {
    if let Ok(programs) = CephPrograms::find() {
        return Ok(programs);
    }
    let tools = tools::tools_dir();
    let _lock = FileLock::acquire(&tools.join("ceph-install.lock"), "installing ceph")?;
    let missing = match CephPrograms::find() {
        Ok(programs) => return Ok(programs),
        Err(missing) => missing,
    };
    let fail = |reason: String| HarnessError::Install {
        tool: "ceph radosgw".to_owned(),
        reason,
        how: manual_install(!is_root()),
    };
    if !is_root() {
        return Err(fail(format!(
            "{} not found, and installing packages needs root",
            missing.join(", ")
        )));
    }
    let Some(apt) = find_program("apt-get") else {
        return Err(fail(format!(
            "{} not found, and there is no apt-get (the harness installs Debian packages)",
            missing.join(", ")
        )));
    };
    let log = tools.join("ceph-install.log");
    eprintln!(
        "coffer-testfixtures: {} missing; installing {} with apt-get (about 45 s), log {}",
        missing.join(", "),
        CEPH_PACKAGES.join(" "),
        log.display()
    );
    let started = Instant::now();
    let mut transcript = String::new();
    let mut step = |args: &[&str]| -> Result<()> {
        let mut cmd = Command::new(&apt);
        cmd.args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("NEEDRESTART_MODE", "a");
        let result = run(&mut cmd, APT_TIMEOUT, &[]);
        match &result {
            Ok(out) => {
                transcript.push_str(&out.stdout);
                transcript.push_str(&out.stderr);
            }
            Err(e) => transcript.push_str(&e.to_string()),
        }
        let _ = std::fs::write(&log, &transcript);
        result.map(|_| ()).map_err(|e| fail(e.to_string()))
    };
    step(&["update", "-q"])?;
    let mut install = vec![
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        // Another apt run (an engineer, unattended-upgrades) holds the lock for a while.
        "-o",
        "DPkg::Lock::Timeout=300",
    ];
    install.extend(CEPH_PACKAGES);
    step(&install)?;
    match CephPrograms::find() {
        Ok(programs) => {
            eprintln!(
                "coffer-testfixtures: installed ceph in {} s",
                started.elapsed().as_secs()
            );
            Ok(programs)
        }
        Err(missing) => Err(fail(format!(
            "apt-get succeeded but {} is still missing",
            missing.join(", ")
        ))),
    }
}

/// One daemon of the cluster and its Ceph log file (most of what it says goes there, not to
/// its stdout).
#[derive(Debug)]
struct Member {
    daemon: Daemon,
    ceph_log: PathBuf,
}

/// A running single-node Ceph cluster with radosgw. Dropping it kills every daemon and
/// removes its directory.
pub struct CephServer {
    endpoint: String,
    region: String,
    bucket: String,
    access_key: String,
    secret_key: SecretString,
    uid: String,
    programs: CephPrograms,
    conf: PathBuf,
    members: Mutex<Vec<Member>>,
    watchdog: Watchdog,
    dir: TempDir,
}

impl std::fmt::Debug for CephServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CephServer")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

/// A random UUID (version 4 layout) for the fsid and the OSD.
fn random_uuid() -> Result<String> {
    let mut hex: Vec<char> = random_hex(16)?.chars().collect();
    hex[12] = '4';
    hex[16] = ['8', '9', 'a', 'b'][usize::from(u8::try_from(hex[16]).unwrap_or(0) % 4)];
    let hex: String = hex.into_iter().collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// The cluster configuration (see the module documentation for why each line is there).
fn ceph_conf(dir: &Path, fsid: &str, mon_port: u16, rgw_port: u16, memstore_bytes: u64) -> String {
    let d = dir.display();
    format!(
        "[global]\n\
         fsid = {fsid}\n\
         mon host = v2:127.0.0.1:{mon_port}\n\
         mon initial members = a\n\
         public addr = 127.0.0.1\n\
         cluster addr = 127.0.0.1\n\
         ms bind msgr1 = false\n\
         auth cluster required = none\n\
         auth service required = none\n\
         auth client required = none\n\
         ms mon client mode = crc\n\
         auth allow insecure global id reclaim = false\n\
         mon warn on insecure global id reclaim allowed = false\n\
         mon data avail warn = 1\n\
         mon data avail crit = 0\n\
         osd objectstore = memstore\n\
         memstore device bytes = {memstore_bytes}\n\
         osd pool default size = 1\n\
         osd pool default min size = 1\n\
         osd pool default pg num = 8\n\
         osd pool default pgp num = 8\n\
         osd pool default pg autoscale mode = off\n\
         osd crush chooseleaf type = 0\n\
         paxos propose interval = 0.1\n\
         mon allow pool delete = true\n\
         mon allow pool size one = true\n\
         mon warn on pool no redundancy = false\n\
         run dir = {d}/run\n\
         log file = {d}/log/$name.log\n\
         admin socket = {d}/run/$name.asok\n\
         pid file = {d}/run/$name.pid\n\
         mon data = {d}/mon/$cluster-$id\n\
         osd data = {d}/osd/$cluster-$id\n\
         keyring = {d}/keyring\n\
         \n\
         [client.rgw]\n\
         rgw frontends = beast endpoint=127.0.0.1:{rgw_port}\n\
         rgw data = {d}/rgw\n"
    )
}

impl CephServer {
    /// Writes the config and starts mon, OSD and radosgw (blocking).
    fn launch(programs: CephPrograms, options: &CephOptions) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("coffer-ceph-")
            .tempdir()
            .map_err(|e| HarnessError::io("creating a temporary directory for ceph", e))?;
        let watchdog = Watchdog::start(dir.path())?;
        for sub in ["run", "log", "mon", "osd", "rgw"] {
            let path = dir.path().join(sub);
            std::fs::create_dir(&path)
                .map_err(|e| HarnessError::io(format!("creating {}", path.display()), e))?;
        }
        let mon_port = free_port()?;
        let rgw_port = free_port()?;
        let fsid = random_uuid()?;
        let conf = dir.path().join("ceph.conf");
        std::fs::write(
            &conf,
            ceph_conf(
                dir.path(),
                &fsid,
                mon_port,
                rgw_port,
                options.memstore_bytes,
            ),
        )
        .map_err(|e| HarnessError::io(format!("writing {}", conf.display()), e))?;
        let access_key = format!("CFR{}", &random_hex(9)?[..17]).to_ascii_uppercase();
        let server = Self {
            endpoint: format!("http://127.0.0.1:{rgw_port}"),
            region: "us-east-1".to_owned(),
            bucket: options.bucket.clone(),
            access_key,
            secret_key: SecretString::from(random_hex(20)?),
            uid: "coffer-test".to_owned(),
            programs,
            conf,
            members: Mutex::new(Vec::new()),
            watchdog,
            dir,
        };
        server.bootstrap(&fsid, mon_port)?;
        Ok(server)
    }

    fn bootstrap(&self, fsid: &str, mon_port: u16) -> Result<()> {
        let d = self.dir.path();
        let monmap = d.join("monmap");
        self.step(
            Command::new(&self.programs.monmaptool)
                .args(["--create", "--fsid", fsid, "--addv", "a"])
                .arg(format!("[v2:127.0.0.1:{mon_port}]"))
                .arg(&monmap),
        )?;
        self.step(
            Command::new(&self.programs.mon)
                .arg("-c")
                .arg(&self.conf)
                .args(["--mkfs", "-i", "a", "--monmap"])
                .arg(&monmap),
        )?;
        self.spawn(
            "ceph-mon",
            "mon.a",
            Command::new(&self.programs.mon)
                .arg("-c")
                .arg(&self.conf)
                .args(["-i", "a", "-f"]),
        )?;
        let osd_uuid = random_uuid()?;
        let id = self
            .step(&mut self.ceph_command(&["osd", "new", &osd_uuid]))?
            .trim()
            .to_owned();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(HarnessError::Command {
                command: "ceph osd new".to_owned(),
                status: "unexpected output".to_owned(),
                output: id,
            });
        }
        let osd_dir = d.join("osd").join(format!("ceph-{id}"));
        std::fs::create_dir(&osd_dir)
            .map_err(|e| HarnessError::io(format!("creating {}", osd_dir.display()), e))?;
        self.step(
            Command::new(&self.programs.osd)
                .arg("-c")
                .arg(&self.conf)
                .args(["-i", &id, "--mkfs", "--osd-uuid", &osd_uuid]),
        )?;
        self.spawn(
            "ceph-osd",
            &format!("osd.{id}"),
            Command::new(&self.programs.osd)
                .arg("-c")
                .arg(&self.conf)
                .args(["-i", &id, "-f"]),
        )?;
        self.wait_for_osd()?;
        self.spawn(
            "radosgw",
            "client.rgw",
            Command::new(&self.programs.radosgw)
                .arg("-c")
                .arg(&self.conf)
                .args(["-n", "client.rgw", "-f"]),
        )?;
        Ok(())
    }

    /// Waits for radosgw, creates the S3 user and the bucket.
    async fn finish_start(&self) -> Result<()> {
        self.wait_for_http().await?;
        let mut cmd = Command::new(&self.programs.radosgw_admin);
        let secret = self.secret_key.expose_secret().to_owned();
        cmd.arg("-c")
            .arg(&self.conf)
            .args(["user", "create", "--uid", &self.uid])
            .args(["--display-name", "coffer test user"])
            .args(["--access-key", &self.access_key, "--secret", &secret]);
        tokio::task::spawn_blocking(move || run(&mut cmd, CLI_TIMEOUT, &[&secret]))
            .await
            .expect("the radosgw-admin runner does not panic")?;
        self.create_bucket(&self.bucket).await?;
        Ok(())
    }

    fn ceph_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.programs.ceph);
        // Without it the CLI waits 300 s for an unreachable monitor.
        cmd.arg("-c")
            .arg(&self.conf)
            .args(["--connect-timeout", "30"])
            .args(args);
        cmd
    }

    /// Runs one bootstrap step; a failure carries the daemons' logs.
    fn step(&self, cmd: &mut Command) -> Result<String> {
        run(cmd, CLI_TIMEOUT, &[])
            .map(|out| out.stdout)
            .map_err(|e| match e {
                HarnessError::Command {
                    command,
                    status,
                    output,
                } => HarnessError::Command {
                    command,
                    status,
                    output: format!("{output}\n{}", self.logs()),
                },
                other => other,
            })
    }

    fn spawn(&self, name: &str, ceph_name: &str, cmd: &mut Command) -> Result<()> {
        let log_dir = self.dir.path().join("log");
        let daemon = Daemon::spawn(name, cmd, &log_dir.join(format!("{ceph_name}.out")))?;
        self.watchdog.register(daemon.pid())?;
        self.members
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Member {
                daemon,
                ceph_log: log_dir.join(format!("{ceph_name}.log")),
            });
        Ok(())
    }

    fn check_alive(&self) -> Result<()> {
        let mut members = self
            .members
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for member in members.iter_mut() {
            if let Some(status) = member.daemon.exited() {
                return Err(HarnessError::Exited {
                    what: member.daemon.name().to_owned(),
                    status: status.to_string(),
                    logs: format!(
                        "--- {} ---\n{}\n--- {} ---\n{}",
                        member.daemon.log().display(),
                        log_tail(member.daemon.log(), 20),
                        member.ceph_log.display(),
                        log_tail(&member.ceph_log, 30)
                    ),
                });
            }
        }
        Ok(())
    }

    fn wait_for_osd(&self) -> Result<()> {
        let started = Instant::now();
        loop {
            self.check_alive()?;
            let stat = run(
                &mut self.ceph_command(&["osd", "stat", "-f", "json"]),
                CLI_TIMEOUT,
                &[],
            );
            let last = match stat {
                Ok(out) if out.stdout.contains("\"num_up_osds\":1") => return Ok(()),
                Ok(out) => out.stdout,
                Err(e) => e.to_string(),
            };
            if started.elapsed() > READY_TIMEOUT {
                return Err(HarnessError::Timeout {
                    what: "ceph-osd".to_owned(),
                    waited: started.elapsed(),
                    logs: format!("last `ceph osd stat`: {last}\n{}", self.logs()),
                });
            }
            pause(Duration::from_millis(250));
        }
    }

    async fn wait_for_http(&self) -> Result<()> {
        let started = Instant::now();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| HarnessError::io("building an HTTP client", std::io::Error::other(e)))?;
        loop {
            self.check_alive()?;
            let last = match http.get(format!("{}/", self.endpoint)).send().await {
                Ok(_) => return Ok(()),
                Err(e) => e.to_string(),
            };
            if started.elapsed() > READY_TIMEOUT {
                return Err(HarnessError::Timeout {
                    what: format!("radosgw at {}", self.endpoint),
                    waited: started.elapsed(),
                    logs: format!("last probe: {last}\n{}", self.logs()),
                });
            }
            pause_async(Duration::from_millis(100)).await;
        }
    }

    /// Base URL of the S3 API, e.g. `http://127.0.0.1:39017`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The region the harness signs for (`us-east-1`; radosgw accepts any).
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The bucket created at start.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The access key id of the S3 user (20 upper-case characters).
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// The secret access key (40 characters).
    pub fn secret_key(&self) -> &SecretString {
        &self.secret_key
    }

    /// The radosgw user id owning the key.
    pub fn uid(&self) -> &str {
        &self.uid
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

    /// A signed raw requester with the user's credentials.
    pub fn raw_s3(&self) -> RawS3 {
        self.target().raw_s3()
    }

    /// Creates bucket `name` through S3 (owned by the harness user).
    pub async fn create_bucket(&self, name: &str) -> Result<S3Target> {
        let context = format!("creating bucket {name} on radosgw {}", self.endpoint);
        let response =
            self.raw_s3()
                .create_bucket(name)
                .await
                .map_err(|source| HarnessError::S3 {
                    context: context.clone(),
                    source: Box::new(source),
                })?;
        if response.status != 200 {
            return Err(HarnessError::S3Status {
                context,
                status: response.status,
                body: response.text(),
            });
        }
        Ok(self.target_for(name))
    }

    /// Creates a bucket with a fresh random name (`coffer-<16 hex>`), for tests that share a
    /// cluster.
    pub async fn new_bucket(&self) -> Result<S3Target> {
        let name = format!("coffer-{}", random_hex(8)?);
        self.create_bucket(&name).await
    }

    /// Runs `ceph -c <conf> <args…>` and returns its stdout.
    pub async fn ceph(&self, args: &[&str]) -> Result<String> {
        let mut cmd = self.ceph_command(args);
        tokio::task::spawn_blocking(move || run(&mut cmd, CLI_TIMEOUT, &[]).map(|o| o.stdout))
            .await
            .expect("the ceph CLI runner does not panic")
    }

    /// Runs `radosgw-admin -c <conf> <args…>` and returns its stdout (e.g. to create a second
    /// user for permission tests).
    pub async fn radosgw_admin(&self, args: &[&str]) -> Result<String> {
        let mut cmd = Command::new(&self.programs.radosgw_admin);
        cmd.arg("-c").arg(&self.conf).args(args);
        tokio::task::spawn_blocking(move || run(&mut cmd, CLI_TIMEOUT, &[]).map(|o| o.stdout))
            .await
            .expect("the radosgw-admin runner does not panic")
    }

    /// The tails of every daemon's output and Ceph log.
    pub fn logs(&self) -> String {
        let members = self
            .members
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut text = String::new();
        for member in members.iter() {
            for (path, lines) in [(member.daemon.log(), 10), (member.ceph_log.as_path(), 25)] {
                let _ = writeln!(
                    text,
                    "--- {} ---\n{}",
                    path.display(),
                    log_tail(path, lines)
                );
            }
        }
        text
    }

    /// The cluster's temporary directory (config, logs, mon and OSD data).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for CephServer {
    fn drop(&mut self) {
        self.watchdog.disarm();
        let members = self
            .members
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // radosgw first, the monitor last.
        while let Some(mut member) = members.pop() {
            member.daemon.kill();
        }
        // `dir` (a TempDir) is removed when the fields drop, after the processes are gone.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_have_the_v4_layout() {
        let uuid = random_uuid().unwrap();
        let parts: Vec<&str> = uuid.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!("89ab".contains(&parts[3][..1]));
    }

    #[test]
    fn the_config_keeps_everything_on_loopback_and_in_the_directory() {
        let conf = ceph_conf(Path::new("/tmp/x"), "f", 1000, 2000, 7);
        for line in [
            "mon host = v2:127.0.0.1:1000",
            "public addr = 127.0.0.1",
            "cluster addr = 127.0.0.1",
            "ms mon client mode = crc",
            "memstore device bytes = 7",
            "osd pool default size = 1",
            "rgw frontends = beast endpoint=127.0.0.1:2000",
            "log file = /tmp/x/log/$name.log",
            "admin socket = /tmp/x/run/$name.asok",
        ] {
            assert!(
                conf.lines().any(|l| l == line),
                "missing `{line}` in\n{conf}"
            );
        }
    }

    #[test]
    fn the_manual_command_installs_every_package() {
        assert_eq!(
            manual_install(true),
            "sudo apt-get update && sudo apt-get install -y --no-install-recommends \
             radosgw ceph-mon ceph-osd ceph-common"
        );
    }
}
