//! The end-to-end run: datasets, rounds against a fresh Garage each, the 4 GiB scaling run.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use coffer_testfixtures::counting_proxy::CountingProxy;
use coffer_testfixtures::dataset::Manifest;
use coffer_testfixtures::garage::{Garage, GarageServer};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::coffer::{CofferServe, ServeSetup};
use crate::commands::Recorder;
use crate::measure::{self, Meter};
use crate::procfs::{self, Machine};
use crate::stats::Sample;

/// The restic repository password (a throwaway repository).
const RESTIC_PASSWORD: &str = "coffer-bench-restic";
/// The file coffer keeps at an index's root; it is not part of the dataset.
const COFFER_INDEX_FILE: &str = ".coffer-index.json";

/// `coffer-bench run` options.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Size of the `mixed` dataset, MiB.
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// Files of the `small` dataset.
    #[arg(long, default_value_t = 20_000)]
    small_files: u64,
    /// Rounds; each figure is the median of the rounds.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Size of the scaling run (coffer's peak RSS at this size vs `--size-mib`); 0 skips it.
    #[arg(long, default_value_t = 4096)]
    scale_mib: u64,
    /// The release coffer binary.
    #[arg(long, default_value = "target/release/coffer")]
    coffer: PathBuf,
    /// The dataset generator.
    #[arg(
        long,
        env = "COFFER_BENCH_MAKE_DATASET",
        default_value = "../shared/bench/make-dataset"
    )]
    make_dataset: PathBuf,
    /// Scratch directory: datasets, copies, restores.
    #[arg(long, env = "COFFER_BENCH_WORK", default_value = "target/bench/work")]
    work: PathBuf,
    /// Where `e2e.json` goes (default `$COFFER_BENCH_OUT`, else `target/bench`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Keep the page cache (by default it is dropped before every operation when possible).
    #[arg(long, env = "COFFER_BENCH_KEEP_CACHE")]
    keep_cache: bool,
    /// Keep the generated datasets for the next run (they are deleted at the end otherwise).
    #[arg(long, env = "COFFER_BENCH_KEEP_DATASETS")]
    keep_datasets: bool,
    /// Add to the existing `<out>/e2e.json` (its rounds, datasets and commands are kept): to
    /// add rounds, or the scaling run, to a run that was stopped.
    #[arg(long)]
    append: bool,
    /// A note for the report (repeatable).
    #[arg(long)]
    note: Vec<String>,
    /// A label for the report (`bench`, `bench-quick`).
    #[arg(long, default_value = "bench")]
    label: String,
}

/// What a run produced; `report` renders it.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Results {
    /// `bench` or `bench-quick`.
    pub label: String,
    /// UTC start and end, `date -u` style.
    pub started: String,
    /// UTC end.
    pub finished: String,
    /// The machine.
    pub machine: Machine,
    /// Tool → version line.
    pub versions: BTreeMap<String, String>,
    /// Dataset sizes and counts.
    pub datasets: Datasets,
    /// Rounds run.
    pub rounds: usize,
    /// Whether the page cache was dropped before each operation.
    pub dropped_caches: bool,
    /// `tool/operation` → one sample per round.
    pub measures: BTreeMap<String, Vec<Sample>>,
    /// The scaling run: `coffer/full`, `coffer/restore` at `datasets.scale_bytes`.
    pub scale: BTreeMap<String, Vec<Sample>>,
    /// The commands, in order, with placeholders.
    pub commands: Vec<String>,
    /// Configuration files written (name, text).
    pub files: Vec<(String, String)>,
    /// Anything the reader must know (skipped parts, failures of a verification).
    pub notes: Vec<String>,
}

/// The datasets of a run.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Datasets {
    /// `mixed` size argument, MiB.
    pub mixed_mib: u64,
    /// Files in `mixed`.
    pub mixed_files: usize,
    /// Bytes in `mixed`.
    pub mixed_bytes: u64,
    /// Files in `small`.
    pub small_files: usize,
    /// Bytes in `small`.
    pub small_bytes: u64,
    /// What `make-dataset mutate` changed: files added, removed, changed.
    pub mutation: String,
    /// The scaling dataset's size argument, MiB (0: not run).
    pub scale_mib: u64,
    /// Bytes in the scaling dataset.
    pub scale_bytes: u64,
}

struct Env {
    coffer: PathBuf,
    make_dataset: PathBuf,
    work: PathBuf,
    rt: tokio::runtime::Runtime,
    ticks: f64,
    drop_caches: bool,
    rec: Recorder,
}

/// Runs the whole measurement and writes `<out>/e2e.json`.
pub fn run(args: &RunArgs) -> Result<()> {
    let out = args.out.clone().unwrap_or_else(crate::default_out);
    std::fs::create_dir_all(&out)?;
    let coffer = std::fs::canonicalize(&args.coffer).with_context(|| {
        format!(
            "the coffer binary {} (build it: cargo build --release -p coffer)",
            args.coffer.display()
        )
    })?;
    let make_dataset = std::fs::canonicalize(&args.make_dataset).with_context(|| {
        format!(
            "the dataset generator {} (set COFFER_BENCH_MAKE_DATASET)",
            args.make_dataset.display()
        )
    })?;
    std::fs::create_dir_all(&args.work)?;
    let work = std::fs::canonicalize(&args.work)?;
    for tool in ["restic", "rclone", "python3"] {
        which(tool).with_context(|| {
            format!("{tool} is not installed (`just bench` installs it: apt-get install -y restic rclone python3 time)")
        })?;
    }
    if !measure::exists(Path::new(measure::GNU_TIME)) {
        bail!("{} is missing: apt-get install -y time", measure::GNU_TIME);
    }
    let drop_caches = !args.keep_cache && procfs::can_drop_caches();
    let mut results = Results {
        label: args.label.clone(),
        started: utc_now(),
        machine: Machine::read(),
        rounds: args.rounds,
        dropped_caches: drop_caches,
        ..Results::default()
    };
    let mut previous_commands = (Vec::new(), Vec::new());
    let mut previous_datasets = None;
    if args.append {
        let path = out.join("e2e.json");
        let previous: Results = serde_json::from_slice(
            &std::fs::read(&path)
                .with_context(|| format!("--append: reading {}", path.display()))?,
        )?;
        results.label = previous.label;
        results.started = previous.started;
        results.machine.load_at_start = previous.machine.load_at_start;
        results.measures = previous.measures;
        results.scale = previous.scale;
        results.notes = previous.notes;
        previous_commands = (previous.commands, previous.files);
        previous_datasets = Some(previous.datasets);
    }
    results.notes.extend(args.note.iter().cloned());
    results.rounds = results.measures.values().map(Vec::len).max().unwrap_or(0);
    if !args.keep_cache && !drop_caches {
        results.notes.push(
            "The page cache could not be dropped (not root?): every tool read warm data.".into(),
        );
    }
    let mut env = Env {
        coffer,
        make_dataset,
        work,
        rt: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?,
        ticks: procfs::clock_ticks(),
        drop_caches,
        rec: Recorder::default(),
    };
    results.versions = versions(&env)?;
    for (k, v) in &results.versions {
        eprintln!("coffer-bench: {k}: {v}");
    }

    let mixed = env.dataset("mixed", args.size_mib)?;
    let small = env.dataset("small", args.small_files)?;
    let mixed_manifest = env.manifest_of_dataset(&mixed)?;
    let small_manifest = env.manifest_of_dataset(&small)?;
    results.datasets = Datasets {
        mixed_mib: args.size_mib,
        mixed_files: mixed_manifest.len(),
        mixed_bytes: mixed_manifest.total_bytes(),
        small_files: small_manifest.len(),
        small_bytes: small_manifest.total_bytes(),
        ..Datasets::default()
    };
    if let Some(previous) = previous_datasets {
        results.datasets.mutation = previous.mutation;
        results.datasets.scale_mib = previous.scale_mib;
        results.datasets.scale_bytes = previous.scale_bytes;
    }
    let object = Env::one_object(&mixed, &mixed_manifest)?;
    env.rec.substitute(mixed.display().to_string(), "$MIXED");
    env.rec.substitute(small.display().to_string(), "$SMALL");
    env.rec
        .substitute(object.display().to_string(), "$ONE_OBJECT");
    env.rec
        .substitute(env.coffer.display().to_string(), "coffer");
    env.rec
        .substitute(env.make_dataset.display().to_string(), "make-dataset");

    for round in 1..=args.rounds {
        eprintln!("coffer-bench: round {round} of {}", args.rounds);
        let samples = env.round(
            round,
            &mixed,
            &small,
            &object,
            &mixed_manifest,
            &mut results,
        )?;
        for (name, sample) in samples {
            results.measures.entry(name).or_default().push(sample);
        }
        results.rounds = results.measures.values().map(Vec::len).max().unwrap_or(0);
        // Written after every round, so a late failure still leaves the rounds done.
        write_results(&out, &results)?;
    }

    if args.scale_mib > 0 {
        let big = env.dataset("mixed", args.scale_mib)?;
        let big_manifest = env.manifest_of_dataset(&big)?;
        results.datasets.scale_mib = args.scale_mib;
        results.datasets.scale_bytes = big_manifest.total_bytes();
        eprintln!("coffer-bench: scaling run at {} MiB", args.scale_mib);
        for (name, sample) in env.scale_round(&big, &big_manifest)? {
            results.scale.entry(name).or_default().push(sample);
        }
        if !args.keep_datasets {
            remove_dataset(&big)?;
        }
    }
    if !args.keep_datasets {
        remove_dataset(&mixed)?;
        remove_dataset(&small)?;
        let _ = std::fs::remove_file(&object);
    }
    results.finished = utc_now();
    results.machine.load_at_end = procfs::load_average();
    let (commands, files) = std::mem::take(&mut env.rec).into_parts();
    let (mut all_commands, mut all_files) = previous_commands;
    for line in commands {
        if !all_commands.contains(&line) {
            all_commands.push(line);
        }
    }
    for file in files {
        if !all_files.iter().any(|(n, _)| *n == file.0) {
            all_files.push(file);
        }
    }
    results.commands = all_commands;
    results.files = all_files;
    write_results(&out, &results)?;
    eprintln!("coffer-bench: wrote {}", out.join("e2e.json").display());
    Ok(())
}

fn write_results(out: &Path, results: &Results) -> Result<()> {
    let path = out.join("e2e.json");
    let tmp = out.join("e2e.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(results)?)?;
    std::fs::rename(&tmp, &path)?;
    Ok(())
}

fn remove_dataset(dir: &Path) -> Result<()> {
    let _ = std::fs::remove_file(done_marker(dir));
    let _ = std::fs::remove_file(manifest_file(dir));
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    Ok(())
}

fn done_marker(dir: &Path) -> PathBuf {
    dir.with_extension("done")
}

fn manifest_file(dir: &Path) -> PathBuf {
    dir.with_extension("manifest")
}

fn which(tool: &str) -> Result<PathBuf> {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || path.is_empty() {
        bail!("{tool} not found in PATH");
    }
    Ok(PathBuf::from(path))
}

fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M:%S UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").trim().to_owned()
}

fn versions(env: &Env) -> Result<BTreeMap<String, String>> {
    let mut v = BTreeMap::new();
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let hash = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    v.insert(
        "coffer".into(),
        format!(
            "{hash}{} ({})",
            if dirty { " + uncommitted changes" } else { "" },
            first_line(
                &measure::run(Command::new(&env.coffer).arg("--version")).unwrap_or_default()
            )
        ),
    );
    v.insert(
        "restic".into(),
        first_line(&measure::run(Command::new("restic").arg("version"))?),
    );
    v.insert(
        "rclone".into(),
        first_line(&measure::run(Command::new("rclone").arg("version"))?),
    );
    let garage = env.rt.block_on(Garage::binary())?;
    v.insert(
        "garage".into(),
        first_line(&measure::run(Command::new(&garage).arg("--version"))?),
    );
    v.insert(
        "python3".into(),
        first_line(&measure::run(Command::new("python3").arg("--version"))?),
    );
    Ok(v)
}

/// Buckets of one round.
const BUCKETS: [&str; 6] = [
    "coffer-mixed",
    "coffer-small",
    "restic-mixed",
    "restic-small",
    "rclone-object",
    "rclone-files",
];

/// One Garage with the proxy in front, for one round.
struct Server {
    garage: GarageServer,
    proxy: CountingProxy,
    pid: Option<u32>,
}

impl Server {
    fn endpoint(&self) -> String {
        self.proxy.endpoint()
    }
}

impl Env {
    /// Generates a dataset once (cached until removed) and returns its directory.
    fn dataset(&self, kind: &str, n: u64) -> Result<PathBuf> {
        let dir = self.work.join("datasets").join(format!("{kind}-{n}"));
        if done_marker(&dir).exists() {
            return Ok(dir);
        }
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(dir.parent().expect("has a parent"))?;
        let flag = if kind == "small" {
            "--files"
        } else {
            "--size-mib"
        };
        eprintln!(
            "coffer-bench: make-dataset {kind} {} {flag} {n}",
            dir.display()
        );
        let mut cmd = Command::new("python3");
        cmd.arg(&self.make_dataset)
            .arg(kind)
            .arg(&dir)
            .args([flag, &n.to_string()]);
        measure::run(&mut cmd)?;
        std::fs::write(done_marker(&dir), "")?;
        Ok(dir)
    }

    fn manifest_text(&self, dir: &Path) -> Result<String> {
        let mut cmd = Command::new("python3");
        cmd.arg(&self.make_dataset).arg("manifest").arg(dir);
        let text = measure::run(&mut cmd)?;
        // coffer's identity file of an index is not part of the data.
        let skip = format!(" {COFFER_INDEX_FILE}");
        let mut kept = String::with_capacity(text.len());
        for line in text.lines().filter(|l| !l.ends_with(&skip)) {
            kept.push_str(line);
            kept.push('\n');
        }
        Ok(kept)
    }

    fn manifest_of_dataset(&self, dir: &Path) -> Result<Manifest> {
        let file = manifest_file(dir);
        let text = if let Ok(text) = std::fs::read_to_string(&file) {
            text
        } else {
            let text = self.manifest_text(dir)?;
            std::fs::write(&file, &text)?;
            text
        };
        Ok(Manifest::parse(&text)?)
    }

    /// Measures the restore of `mixed` from `snap-1` into a new index, verifies it against
    /// the source's manifest, then removes it so the next operation starts clean.
    fn coffer_restore(
        &mut self,
        coffer: &CofferServe,
        meter: &Meter<'_>,
        pid: u32,
        expected: &Manifest,
        what: &str,
    ) -> Result<Sample> {
        let sample = meter.in_process(pid, || {
            coffer.restore("bench", "snap-1", "mixed", "restored-mixed", &mut self.rec)
        })?;
        self.verify(&coffer.managed_index_dir("restored-mixed"), expected, what)?;
        coffer.delete_index("restored-mixed")?;
        Ok(sample)
    }

    /// Verifies a restored tree against the source's manifest.
    fn verify(&self, restored: &Path, expected: &Manifest, what: &str) -> Result<()> {
        let actual = Manifest::parse(&self.manifest_text(restored)?)?;
        expected
            .ensure_same(&actual)
            .with_context(|| format!("{what}: the restored tree differs from the source"))?;
        eprintln!(
            "coffer-bench: {what}: verified {} files, {} bytes",
            actual.len(),
            actual.total_bytes()
        );
        Ok(())
    }

    /// One file holding every byte of the dataset, for the one-object transfer limit.
    fn one_object(dir: &Path, manifest: &Manifest) -> Result<PathBuf> {
        let path = dir.with_extension("one-object");
        if path
            .metadata()
            .is_ok_and(|m| m.len() == manifest.total_bytes())
        {
            return Ok(path);
        }
        let mut out = std::fs::File::create(&path)?;
        for name in manifest.entries().keys() {
            let mut input = std::fs::File::open(dir.join(name))?;
            std::io::copy(&mut input, &mut out)?;
        }
        out.sync_all()?;
        Ok(path)
    }

    fn start_server(&mut self) -> Result<Server> {
        let garage = self.rt.block_on(Garage::start())?;
        let upstream: SocketAddr = garage
            .endpoint()
            .trim_start_matches("http://")
            .parse()
            .context("garage's endpoint is not host:port")?;
        let proxy = self.rt.block_on(CountingProxy::start(upstream))?;
        for bucket in BUCKETS {
            self.rt.block_on(garage.create_bucket(bucket))?;
        }
        let pid = procfs::find_pid_with_arg(&garage.dir().join("garage.toml"));
        self.rec.substitute(proxy.endpoint(), "$S3");
        self.rec
            .substitute(garage.access_key().to_owned(), "$ACCESS_KEY");
        Ok(Server { garage, proxy, pid })
    }

    fn meter<'a>(&self, server: &'a Server, scratch: &Path) -> Meter<'a> {
        Meter {
            proxy: &server.proxy,
            server_pid: server.pid,
            ticks: self.ticks,
            drop_caches: self.drop_caches,
            scratch: scratch.to_path_buf(),
        }
    }

    fn restic(server: &Server, bucket: &str, cache: &Path) -> Command {
        let mut cmd = Command::new("restic");
        cmd.arg("-r")
            .arg(format!("s3:{}/{bucket}", server.endpoint()))
            .args(["-o", &format!("s3.region={}", server.garage.region())])
            .arg("--cache-dir")
            .arg(cache)
            .env("AWS_ACCESS_KEY_ID", server.garage.access_key())
            .env(
                "AWS_SECRET_ACCESS_KEY",
                server.garage.secret_key().expose_secret(),
            )
            .env("RESTIC_PASSWORD", RESTIC_PASSWORD);
        cmd
    }

    fn rclone(server: &Server, endpoint: &str) -> Command {
        let mut cmd = Command::new("rclone");
        cmd.env("RCLONE_CONFIG_BENCH_TYPE", "s3")
            .env("RCLONE_CONFIG_BENCH_PROVIDER", "Other")
            .env("RCLONE_CONFIG_BENCH_ENDPOINT", endpoint)
            .env("RCLONE_CONFIG_BENCH_REGION", server.garage.region())
            .env("RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE", "true")
            .env(
                "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID",
                server.garage.access_key(),
            )
            .env(
                "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY",
                server.garage.secret_key().expose_secret(),
            )
            // The buckets exist; rclone would otherwise try to create them.
            .env("RCLONE_CONFIG_BENCH_NO_CHECK_BUCKET", "true")
            // The endpoint is plain HTTP; a CA bundle from the environment makes rclone's
            // AWS SDK fail to build its client ("unsupported transport").
            .env_remove("AWS_CA_BUNDLE");
        cmd
    }

    fn record_rclone_env(&mut self) {
        self.rec.line(
            "export RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Other \
             RCLONE_CONFIG_BENCH_ENDPOINT=$S3 RCLONE_CONFIG_BENCH_REGION=garage \
             RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE=true RCLONE_CONFIG_BENCH_NO_CHECK_BUCKET=true \
             RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=$ACCESS_KEY RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=…",
        );
    }

    fn round(
        &mut self,
        round: usize,
        mixed: &Path,
        small: &Path,
        object: &Path,
        mixed_manifest: &Manifest,
        results: &mut Results,
    ) -> Result<Vec<(String, Sample)>> {
        let dir = self.work.join(format!("round-{round}"));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        let scratch = dir.join("scratch");
        std::fs::create_dir_all(&scratch)?;
        let live = dir.join("mixed");
        measure::run(Command::new("cp").arg("-a").arg(mixed).arg(&live))?;
        self.rec
            .substitute(live.display().to_string(), "$WORKING_COPY");
        self.rec.substitute(dir.display().to_string(), "$ROUND");
        let server = self.start_server()?;
        let mut out = Vec::new();
        let meter = self.meter(&server, &scratch);

        // coffer, as a user sets it up.
        let coffer = CofferServe::start(
            &ServeSetup {
                binary: &self.coffer,
                dir: &dir.join("coffer"),
                endpoint: &server.endpoint(),
                region: server.garage.region(),
                access_key: server.garage.access_key(),
                secret_key: server.garage.secret_key().expose_secret(),
                indices: &[("mixed", &live), ("small", small)],
            },
            &mut self.rec,
        )?;
        self.rec.substitute(coffer.base().to_owned(), "$COFFER");
        coffer.register_s3("bench", "coffer-mixed", &mut self.rec)?;
        coffer.register_s3("small", "coffer-small", &mut self.rec)?;
        let pid = coffer.pid();

        // restic, as its documentation sets it up.
        let restic_cache = dir.join("restic-cache");
        self.rec
            .line("export AWS_ACCESS_KEY_ID=$ACCESS_KEY AWS_SECRET_ACCESS_KEY=… RESTIC_PASSWORD=…");
        for bucket in ["restic-mixed", "restic-small"] {
            let mut init = Self::restic(&server, bucket, &restic_cache);
            init.arg("init");
            self.rec.command(&init, "");
            measure::run(&mut init)?;
        }
        let restic_backup =
            |env: &mut Env, bucket: &str, source: &Path| -> Result<(Sample, String)> {
                let mut cmd = Env::restic(&server, bucket, &restic_cache);
                cmd.args(["backup", "--json", "."]).current_dir(source);
                env.rec
                    .command(&cmd, &format!("cd {} && ", source.display()));
                let (sample, output) = meter.command(&mut cmd)?;
                let id = restic_snapshot_id(&output.stdout)
                    .context("restic backup printed no summary with a snapshot_id")?;
                Ok((sample, id))
            };

        // Full snapshot into empty repositories.
        out.push((
            "coffer/full".to_owned(),
            meter.in_process(pid, || {
                coffer
                    .snapshot("bench", "snap-1", "mixed", &mut self.rec)
                    .map(drop)
            })?,
        ));
        let (sample, restic_full_id) = restic_backup(self, "restic-mixed", &live)?;
        out.push(("restic/full".to_owned(), sample));
        // Unchanged re-snapshot.
        out.push((
            "coffer/unchanged".to_owned(),
            meter.in_process(pid, || {
                coffer
                    .snapshot("bench", "snap-2", "mixed", &mut self.rec)
                    .map(drop)
            })?,
        ));
        out.push((
            "restic/unchanged".to_owned(),
            restic_backup(self, "restic-mixed", &live)?.0,
        ));
        // A day of change, then a snapshot of it.
        let mut mutate = Command::new("python3");
        mutate.arg(&self.make_dataset).arg("mutate").arg(&live);
        self.rec.command(&mutate, "");
        measure::run(&mut mutate)?;
        if results.datasets.mutation.is_empty() {
            let after = Manifest::parse(&self.manifest_text(&live)?)?;
            let diff = mixed_manifest.diff(&after);
            let added: u64 = diff.added.iter().map(|(_, e)| e.size).sum();
            results.datasets.mutation = format!(
                "{} files added ({:.1} MiB), {} removed, {} changed in place or by insertion/append, {} renamed",
                diff.added.len(),
                added as f64 / 1_048_576.0,
                diff.removed.len(),
                diff.changed.len(),
                diff.renamed.len()
            );
        }
        out.push((
            "coffer/mutated".to_owned(),
            meter.in_process(pid, || {
                coffer
                    .snapshot("bench", "snap-3", "mixed", &mut self.rec)
                    .map(drop)
            })?,
        ));
        out.push((
            "restic/mutated".to_owned(),
            restic_backup(self, "restic-mixed", &live)?.0,
        ));
        // Full restore of the first snapshot, verified against the dataset.
        out.push((
            "coffer/restore".to_owned(),
            self.coffer_restore(&coffer, &meter, pid, mixed_manifest, "coffer restore")?,
        ));
        let target = dir.join("restic-restore");
        let mut restore = Self::restic(&server, "restic-mixed", &restic_cache);
        restore
            .args(["restore", &restic_full_id, "--target"])
            .arg(&target);
        self.rec.command(&restore, "");
        let restore_id = restic_full_id.clone();
        out.push(("restic/restore".to_owned(), meter.command(&mut restore)?.0));
        let restored = restic_restored_root(&target, &live);
        self.verify(&restored, mixed_manifest, "restic restore")
            .with_context(|| format!("restic snapshot {restore_id}"))?;
        std::fs::remove_dir_all(&target)?;

        // Many small files.
        out.push((
            "coffer/small".to_owned(),
            meter.in_process(pid, || {
                coffer
                    .snapshot("small", "small-1", "small", &mut self.rec)
                    .map(drop)
            })?,
        ));
        out.push((
            "restic/small".to_owned(),
            restic_backup(self, "restic-small", small)?.0,
        ));
        coffer.stop()?;

        // rclone: one object of the dataset's size, then the dataset's files.
        self.record_rclone_env();
        let name = object
            .file_name()
            .expect("a file name")
            .to_string_lossy()
            .into_owned();
        for (label, endpoint) in [
            ("", server.endpoint()),
            ("-direct", server.garage.endpoint().to_owned()),
        ] {
            let mut up = Self::rclone(&server, &endpoint);
            up.arg("copy").arg(object).arg("bench:rclone-object/");
            let mut down = Self::rclone(&server, &endpoint);
            let down_dir = dir.join("rclone-object-down");
            down.arg("copy")
                .arg(format!("bench:rclone-object/{name}"))
                .arg(&down_dir);
            if label.is_empty() {
                self.rec.command(&up, "");
                self.rec.command(&down, "");
            }
            out.push((
                format!("rclone/object-up{label}"),
                meter.command(&mut up)?.0,
            ));
            out.push((
                format!("rclone/object-down{label}"),
                meter.command(&mut down)?.0,
            ));
            let got = down_dir.join(&name).metadata()?.len();
            if got != mixed_manifest.total_bytes() {
                bail!(
                    "rclone downloaded {got} bytes of {}",
                    mixed_manifest.total_bytes()
                );
            }
            std::fs::remove_dir_all(&down_dir)?;
            // The next upload must really upload: rclone skips an identical object.
            let mut purge = Self::rclone(&server, &endpoint);
            purge
                .arg("deletefile")
                .arg(format!("bench:rclone-object/{name}"));
            measure::run(&mut purge)?;
        }
        let mut up = Self::rclone(&server, &server.endpoint());
        up.arg("copy").arg(mixed).arg("bench:rclone-files/");
        self.rec.command(&up, "");
        out.push(("rclone/files-up".to_owned(), meter.command(&mut up)?.0));
        let down_dir = dir.join("rclone-files-down");
        let mut down = Self::rclone(&server, &server.endpoint());
        down.arg("copy").arg("bench:rclone-files/").arg(&down_dir);
        self.rec.command(&down, "");
        out.push(("rclone/files-down".to_owned(), meter.command(&mut down)?.0));
        self.verify(&down_dir, mixed_manifest, "rclone copy down")?;

        drop(server);
        std::fs::remove_dir_all(&dir)?;
        for (name, s) in &out {
            eprintln!(
                "coffer-bench: round {round}: {name}: {:.2} s, peak RSS {} MiB, {} requests, {} MiB up",
                s.wall_s,
                s.peak_rss_kib.unwrap_or(0) / 1024,
                s.requests.as_ref().map_or(0, |r| r.total),
                s.requests.as_ref().map_or(0, |r| r.bytes_up >> 20),
            );
        }
        Ok(out)
    }

    /// coffer alone at the scaling size: full snapshot and restore, for peak RSS.
    fn scale_round(&mut self, big: &Path, manifest: &Manifest) -> Result<Vec<(String, Sample)>> {
        let dir = self.work.join("scale");
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        let scratch = dir.join("scratch");
        std::fs::create_dir_all(&scratch)?;
        let server = self.start_server()?;
        let meter = self.meter(&server, &scratch);
        let coffer = CofferServe::start(
            &ServeSetup {
                binary: &self.coffer,
                dir: &dir.join("coffer"),
                endpoint: &server.endpoint(),
                region: server.garage.region(),
                access_key: server.garage.access_key(),
                secret_key: server.garage.secret_key().expose_secret(),
                indices: &[("mixed", big)],
            },
            &mut self.rec,
        )?;
        coffer.register_s3("bench", "coffer-mixed", &mut self.rec)?;
        let pid = coffer.pid();
        let mut out = Vec::new();
        out.push((
            "coffer/full".to_owned(),
            meter.in_process(pid, || {
                coffer
                    .snapshot("bench", "snap-1", "mixed", &mut self.rec)
                    .map(drop)
            })?,
        ));
        out.push((
            "coffer/restore".to_owned(),
            self.coffer_restore(
                &coffer,
                &meter,
                pid,
                manifest,
                "coffer restore (scaling run)",
            )?,
        ));
        coffer.stop()?;
        drop(server);
        std::fs::remove_dir_all(&dir)?;
        for (name, s) in &out {
            eprintln!(
                "coffer-bench: scale: {name}: {:.2} s, peak RSS {} MiB",
                s.wall_s,
                s.peak_rss_kib.unwrap_or(0) / 1024
            );
        }
        Ok(out)
    }
}

/// The `snapshot_id` of `restic backup --json`'s summary line.
fn restic_snapshot_id(stdout: &str) -> Option<String> {
    stdout.lines().rev().find_map(|line| {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        (v["message_type"] == "summary").then(|| v["snapshot_id"].as_str().map(str::to_owned))?
    })
}

/// Where restic put the files: at the target's root for a relative backup path (`.`), else
/// under the source's absolute path.
fn restic_restored_root(target: &Path, source: &Path) -> PathBuf {
    let nested = target.join(source.strip_prefix("/").unwrap_or(source));
    if nested.is_dir() {
        nested
    } else {
        target.to_path_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restic_summary_is_parsed() {
        let out = "{\"message_type\":\"status\",\"percent_done\":1}\n\
                   {\"message_type\":\"summary\",\"data_added\":12,\"snapshot_id\":\"abc123\"}\n";
        assert_eq!(restic_snapshot_id(out).as_deref(), Some("abc123"));
        assert_eq!(restic_snapshot_id("{\"message_type\":\"status\"}"), None);
    }
}
