//! `coffer-conformance`: runs Elasticsearch's YAML REST tests against `coffer serve` and
//! prints one line per test, then `N passed, M failed, K skipped`.
//!
//! Exit status: 0 when no test failed (or, with `--enforce-max-failures`, when the failures
//! do not exceed the skip list's `max_failures`); 1 when tests failed; 2 when the runner itself
//! could not run (missing files, server did not start, ...).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use coffer_conformance::http::ReqwestTransport;
use coffer_conformance::runner::{Outcome, Runner, TestResult};
use coffer_conformance::server::Server;
use coffer_conformance::skiplist::SkipList;
use coffer_conformance::spec::ApiRegistry;
use coffer_conformance::suite::{Step, TestFile, load_dir};
use serde_json::Value;

#[derive(Debug, Parser)]
#[command(
    name = "coffer-conformance",
    about = "Run Elasticsearch's YAML REST tests against coffer"
)]
struct Cli {
    /// Run only tests whose `<file>/<test name>` contains this text (e.g. `snapshot.get`).
    filter: Option<String>,
    /// Directory holding Elasticsearch's `api/` specs and `test/` files
    /// [default: $COFFER_ES_YAML_DIR, else ../shared/conformance/es-yaml].
    #[arg(long, value_name = "DIR")]
    es_yaml_dir: Option<PathBuf>,
    /// The skip list [default: conformance/skip.yml].
    #[arg(long, value_name = "FILE")]
    skip_file: Option<PathBuf>,
    /// The coffer binary to start. Without it, `cargo build --bin coffer` is run in the
    /// workspace and its output used.
    #[arg(long, env = "COFFER_BIN", value_name = "PATH")]
    coffer_bin: Option<PathBuf>,
    /// Test an already running server at this URL instead of starting one (it is wiped!).
    #[arg(long, value_name = "URL", conflicts_with = "coffer_bin")]
    url: Option<String>,
    /// Exit 0 unless failures exceed the skip list's `max_failures` (CI while the API is being
    /// completed).
    #[arg(long)]
    enforce_max_failures: bool,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("coffer-conformance: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Builds the server binary with cargo and returns its path, from cargo's own artifact
/// messages (so the target directory and profile are whatever cargo uses).
fn build_coffer() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let root = coffer_conformance::workspace_root();
    eprintln!("coffer-conformance: building coffer (cargo build -p coffer --bin coffer)");
    let mut child = Command::new(cargo)
        .args([
            "build",
            "-p",
            "coffer",
            "--bin",
            "coffer",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(&root)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("running cargo build")?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut executable = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo's output")?;
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if msg["reason"] == "compiler-artifact"
            && msg["target"]["name"] == "coffer"
            && let Some(exe) = msg["executable"].as_str()
        {
            executable = Some(PathBuf::from(exe));
        }
    }
    let status = child.wait().context("waiting for cargo build")?;
    if !status.success() {
        bail!("cargo build of coffer failed ({status})");
    }
    executable.context("cargo build did not report the coffer executable")
}

fn apis_used(file: &TestFile) -> impl Iterator<Item = &str> {
    file.setup
        .steps
        .iter()
        .chain(&file.teardown.steps)
        .chain(file.tests.iter().flat_map(|t| &t.section.steps))
        .filter_map(|s| match s {
            Step::Do(d) => Some(d.api.as_str()),
            _ => None,
        })
}

fn print_result(r: &TestResult) {
    let ms = r.elapsed.as_millis();
    match &r.outcome {
        Outcome::Pass => println!("PASS {} :: {} ({ms} ms)", r.file, r.test),
        Outcome::Skip(reason) => println!("SKIP {} :: {} -- {reason}", r.file, r.test),
        Outcome::Fail { step, message } => {
            println!("FAIL {} :: {} ({ms} ms)", r.file, r.test);
            println!("    at {step}");
            for line in message.lines() {
                println!("    {line}");
            }
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let yaml_dir = cli
        .es_yaml_dir
        .clone()
        .unwrap_or_else(coffer_conformance::default_es_yaml_dir);
    if !yaml_dir.join("api").is_dir() || !yaml_dir.join("test").is_dir() {
        bail!(
            "[{}] does not hold api/ and test/: set COFFER_ES_YAML_DIR (or --es-yaml-dir) to the \
             directory with Elasticsearch's REST specs and YAML tests",
            yaml_dir.display()
        );
    }
    let registry = ApiRegistry::load_dir(&yaml_dir.join("api"))?;
    let mut files = load_dir(&yaml_dir.join("test"))?;
    let skip_path = cli
        .skip_file
        .clone()
        .unwrap_or_else(coffer_conformance::default_skip_file);
    let skips = SkipList::load(&skip_path)?;
    for stale in skips.unmatched(&files) {
        eprintln!(
            "coffer-conformance: warning: skip list entry matches no test: {}{}",
            stale.file,
            stale
                .test
                .as_deref()
                .map(|t| format!(" :: {t}"))
                .unwrap_or_default()
        );
    }
    for file in &files {
        let used: std::collections::BTreeSet<&str> = apis_used(file).collect();
        for api in used {
            if !registry.contains(api) {
                eprintln!(
                    "coffer-conformance: note: {} calls [{api}], which has no spec in {}",
                    file.name,
                    yaml_dir.join("api").display()
                );
            }
        }
    }
    if let Some(filter) = &cli.filter {
        for f in &mut files {
            let name = f.name.clone();
            f.tests
                .retain(|t| format!("{name}/{}", t.name).contains(filter.as_str()));
        }
        files.retain(|f| !f.tests.is_empty());
        if files.is_empty() {
            bail!("no test matches [{filter}]");
        }
    }

    let mut server = None;
    let url = if let Some(url) = &cli.url {
        url.clone()
    } else {
        let bin = match &cli.coffer_bin {
            Some(b) => b.clone(),
            None => build_coffer()?,
        };
        let s = Server::start(&bin, Duration::from_secs(60))?;
        eprintln!(
            "coffer-conformance: {} serving at {} (directory {})",
            bin.display(),
            s.base_url(),
            s.dir().display()
        );
        let url = s.base_url().to_owned();
        server = Some(s);
        url
    };
    let transport = ReqwestTransport::new(&url, Duration::from_secs(cli.timeout))?;
    let mut runner = Runner::new(&transport, &registry, &skips);
    match runner.server_version() {
        Ok(version) => {
            eprintln!("coffer-conformance: the server reports version {version}");
            runner = runner.with_version(version);
        }
        Err(m) => eprintln!(
            "coffer-conformance: warning: {m}; judging versions as {}",
            coffer_conformance::SERVER_VERSION
        ),
    }
    // A server left dirty by an earlier run (with --url) must not leak into the first test.
    // A server that cannot be wiped fails every test at its own wipe, so this only warns.
    if let Err(m) = runner.wipe() {
        eprintln!("coffer-conformance: warning: initial wipe of {url} failed: {m}");
    }

    let (mut passed, mut failed, mut skipped) = (0u64, 0u64, 0u64);
    for file in &files {
        runner.run_file(file, &mut |r| {
            match r.outcome {
                Outcome::Pass => passed += 1,
                Outcome::Fail { .. } => failed += 1,
                Outcome::Skip(_) => skipped += 1,
            }
            print_result(r);
        });
    }

    if let Some(mut s) = server {
        match s.stop(Duration::from_secs(30)) {
            Ok(status) if status.success() => {}
            Ok(status) => {
                eprintln!(
                    "coffer-conformance: coffer exited with {status} after SIGTERM; log at the end:\n{}",
                    tail(&s.log(), 40)
                );
            }
            Err(e) => eprintln!("coffer-conformance: stopping coffer: {e}"),
        }
        if failed > 0 {
            let log_copy = std::env::temp_dir().join("coffer-conformance-last.log");
            if std::fs::write(&log_copy, s.log()).is_ok() {
                eprintln!(
                    "coffer-conformance: server log saved to {}",
                    log_copy.display()
                );
            }
        }
    }

    let code = if cli.enforce_max_failures {
        let max = skips.max_failures.unwrap_or(0);
        if failed > max {
            eprintln!(
                "coffer-conformance: {failed} failures exceed max_failures {max} in {}",
                skip_path.display()
            );
            ExitCode::from(1)
        } else {
            eprintln!(
                "coffer-conformance: {failed} failures, within max_failures {max} of {}",
                skip_path.display()
            );
            ExitCode::SUCCESS
        }
    } else if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    };
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    Ok(code)
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
