//! `coffer-bench`: the end-to-end benchmark behind `just bench`.
//!
//! `coffer-bench run` starts a Garage per round, puts a counting proxy in front of it, and
//! measures coffer (release binary, `coffer serve`, REST API, keystore), restic and rclone on
//! the same datasets; it writes the samples to `$COFFER_BENCH_OUT/e2e.json`.
//! `coffer-bench report` renders `docs/benchmarks.md` from that file, the criterion results
//! and `api-scale.json`. See `bench/methodology.md` for what is measured and why.

// Byte counts, request counts and core counts become f64 for rates and ratios; they are far
// below 2^52, where the conversion would lose precision.
#![allow(clippy::cast_precision_loss)]

mod coffer;
mod commands;
mod measure;
mod procfs;
mod report;
mod run;
mod stats;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "coffer against restic and rclone on the same Garage")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the end-to-end measurements and write `<out>/e2e.json`.
    Run(run::RunArgs),
    /// Render docs/benchmarks.md from `<out>/e2e.json`, criterion and api-scale results.
    Report(report::ReportArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Run(args) => run::run(&args),
        Cmd::Report(args) => report::report(&args),
    }
}

/// Waits a little between polls. The bench is a measuring harness, not library code: there
/// is no clock to inject, and waiting on a child process is all it does.
#[allow(clippy::disallowed_methods)]
pub fn pause(d: Duration) {
    std::thread::sleep(d);
}

/// `target/bench` unless `COFFER_BENCH_OUT` says otherwise.
pub fn default_out() -> PathBuf {
    std::env::var_os("COFFER_BENCH_OUT")
        .map_or_else(|| PathBuf::from("target/bench"), PathBuf::from)
}
