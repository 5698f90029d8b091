//! Renders docs/benchmarks.md from `e2e.json`, the criterion results and `api-scale.json`.
//!
//! Every number in the report comes from those files: a part that did not run says "not run"
//! with the reason, never a guess.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::run::Results;
use crate::stats::{Sample, Spread, spread};

/// The hand-written part: what is measured, how, and how to run it.
const METHODOLOGY: &str = include_str!("../methodology.md");

const MIB: f64 = 1_048_576.0;

/// `coffer-bench report` options.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Where e2e.json, api-scale.json and the status files are (default `$COFFER_BENCH_OUT`,
    /// else `target/bench`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// criterion's output directory (`$CARGO_TARGET_DIR/criterion`).
    #[arg(long, default_value = "target/criterion")]
    criterion: PathBuf,
    /// The document to write.
    #[arg(long, default_value = "docs/benchmarks.md")]
    doc: PathBuf,
}

/// Writes the report.
pub fn report(args: &ReportArgs) -> Result<()> {
    let out = args.out.clone().unwrap_or_else(crate::default_out);
    let e2e_path = out.join("e2e.json");
    let results: Option<Results> = match std::fs::read(&e2e_path) {
        Ok(bytes) => Some(
            serde_json::from_slice(&bytes)
                .with_context(|| format!("parsing {}", e2e_path.display()))?,
        ),
        Err(_) => None,
    };
    let micro = Micro::load(&out, &args.criterion);
    let api = ApiScale::load(&out);
    let text = render(results.as_ref(), &micro, &api);
    std::fs::write(&args.doc, text).with_context(|| format!("writing {}", args.doc.display()))?;
    eprintln!("coffer-bench: wrote {}", args.doc.display());
    Ok(())
}

/// One criterion benchmark.
struct MicroResult {
    id: String,
    median_ns: f64,
    low_ns: f64,
    high_ns: f64,
    /// `Bytes`/`BytesDecimal`/`Elements` and the amount per iteration.
    throughput: Option<(String, f64)>,
}

/// The microbenchmarks of this run, or why there are none.
enum Micro {
    NotRun(String),
    Ran(Vec<MicroResult>),
}

impl Micro {
    /// The results written after `<out>/micro.started` was touched, if the status says the
    /// benches ran.
    fn load(out: &Path, criterion: &Path) -> Micro {
        let status = match std::fs::read_to_string(out.join("micro.status")) {
            Ok(s) => s.trim().to_owned(),
            Err(_) => {
                return Micro::NotRun(
                    "`cargo bench -p coffer-repository --bench hot_path` was not run".into(),
                );
            }
        };
        if status != "ok" {
            return Micro::NotRun(format!(
                "`cargo bench -p coffer-repository --bench hot_path`: {status}"
            ));
        }
        let since = std::fs::metadata(out.join("micro.started"))
            .and_then(|m| m.modified())
            .ok();
        let mut found = Vec::new();
        collect_criterion(criterion, since, &mut found);
        if found.is_empty() {
            return Micro::NotRun(format!(
                "the benches ran but left no results under {}",
                criterion.display()
            ));
        }
        found.sort_by(|a, b| a.id.cmp(&b.id));
        Micro::Ran(found)
    }
}

fn collect_criterion(dir: &Path, since: Option<SystemTime>, found: &mut Vec<MicroResult>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") {
            if let Some(r) = read_criterion(&path, since) {
                found.push(r);
            }
        } else if path
            .file_name()
            .is_none_or(|n| n != "base" && n != "report")
        {
            collect_criterion(&path, since, found);
        }
    }
}

fn read_criterion(new: &Path, since: Option<SystemTime>) -> Option<MicroResult> {
    let estimates_path = new.join("estimates.json");
    if let Some(since) = since {
        let modified = std::fs::metadata(&estimates_path).ok()?.modified().ok()?;
        if modified < since {
            return None;
        }
    }
    let estimates: Value = serde_json::from_slice(&std::fs::read(&estimates_path).ok()?).ok()?;
    let benchmark: Value =
        serde_json::from_slice(&std::fs::read(new.join("benchmark.json")).ok()?).ok()?;
    let median = &estimates["median"];
    let throughput = benchmark["throughput"].as_object().and_then(|t| {
        t.iter()
            .next()
            .and_then(|(kind, amount)| Some((kind.clone(), amount.as_f64()?)))
    });
    Some(MicroResult {
        id: benchmark["full_id"].as_str()?.to_owned(),
        median_ns: median["point_estimate"].as_f64()?,
        low_ns: median["confidence_interval"]["lower_bound"].as_f64()?,
        high_ns: median["confidence_interval"]["upper_bound"].as_f64()?,
        throughput,
    })
}

impl MicroResult {
    /// Bytes per second at the median time, for byte throughputs.
    fn bytes_per_s(&self) -> Option<f64> {
        let (kind, amount) = self.throughput.as_ref()?;
        kind.starts_with("Bytes")
            .then(|| amount / (self.median_ns * 1e-9))
    }

    fn throughput_text(&self) -> String {
        match &self.throughput {
            Some((kind, amount)) if kind.starts_with("Bytes") => {
                let rate = amount / (self.median_ns * 1e-9);
                format!("{:.2} GB/s ({:.0} MiB/s)", rate / 1e9, rate / MIB)
            }
            Some((kind, amount)) if kind.starts_with("Elements") => {
                format!("{:.0} elements/s", amount / (self.median_ns * 1e-9))
            }
            Some((kind, amount)) => format!("{amount} {kind} per iteration"),
            None => "—".into(),
        }
    }
}

/// `api-scale.json`, or why there is none.
enum ApiScale {
    NotRun(String),
    Ran(Value),
}

impl ApiScale {
    fn load(out: &Path) -> ApiScale {
        let status = std::fs::read_to_string(out.join("api-scale.status"))
            .map_or_else(|_| "not run".into(), |s| s.trim().to_owned());
        let json = std::fs::read(out.join("api-scale.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
        match json {
            Some(v) if status == "ok" => ApiScale::Ran(v),
            Some(_) => ApiScale::NotRun(format!(
                "`cargo bench -p coffer-api --bench api_scale`: {status} (an older api-scale.json is ignored)"
            )),
            None => ApiScale::NotRun(format!(
                "`cargo bench -p coffer-api --bench api_scale`: {status}"
            )),
        }
    }

    fn get_all_median_ms(&self) -> Option<f64> {
        match self {
            ApiScale::Ran(v) => v["get_all_ms"]["median"].as_f64(),
            ApiScale::NotRun(_) => None,
        }
    }
}

/// Formatting helpers.
fn fmt_spread(s: Option<Spread>, digits: usize) -> String {
    match s {
        None => "—".into(),
        Some(s) if (s.max - s.min).abs() < f64::EPSILON => format!("{:.*}", digits, s.median),
        Some(s) => format!(
            "{:.*} [{:.*}–{:.*}]",
            digits, s.median, digits, s.min, digits, s.max
        ),
    }
}

fn wall(samples: &[Sample]) -> Option<Spread> {
    spread(samples, |s| Some(s.wall_s))
}

fn rss_mib(samples: &[Sample]) -> Option<Spread> {
    spread(samples, |s| s.peak_rss_kib.map(|k| k as f64 / 1024.0))
}

fn req(samples: &[Sample], f: impl Fn(&crate::stats::Requests) -> f64) -> Option<Spread> {
    spread(samples, |s| s.requests.as_ref().map(&f))
}

struct Row<'a> {
    tool: &'static str,
    op: &'static str,
    key: &'static str,
    bytes: u64,
    samples: Option<&'a [Sample]>,
}

const OPERATIONS: [(&str, &str, &str); 16] = [
    ("coffer", "full snapshot", "coffer/full"),
    ("restic", "full backup", "restic/full"),
    ("rclone", "one object up", "rclone/object-up"),
    ("coffer", "unchanged re-snapshot", "coffer/unchanged"),
    ("restic", "unchanged re-backup", "restic/unchanged"),
    ("coffer", "snapshot after mutate", "coffer/mutated"),
    ("restic", "backup after mutate", "restic/mutated"),
    ("coffer", "full restore", "coffer/restore"),
    ("restic", "full restore", "restic/restore"),
    ("rclone", "one object down", "rclone/object-down"),
    ("coffer", "small files snapshot", "coffer/small"),
    ("restic", "small files backup", "restic/small"),
    ("rclone", "copy files up", "rclone/files-up"),
    ("rclone", "copy files down", "rclone/files-down"),
    (
        "rclone",
        "one object up, no proxy",
        "rclone/object-up-direct",
    ),
    (
        "rclone",
        "one object down, no proxy",
        "rclone/object-down-direct",
    ),
];

fn median(r: &Results, key: &str, f: impl Fn(&[Sample]) -> Option<Spread>) -> Option<f64> {
    r.measures.get(key).and_then(|s| f(s)).map(|s| s.median)
}

fn render(results: Option<&Results>, micro: &Micro, api: &ApiScale) -> String {
    let mut md = String::new();
    md.push_str(
        "<!-- Generated by `just bench` (coffer-bench report). Edit bench/methodology.md for the \
         text above \"Last run\"; the rest is regenerated. -->\n\n",
    );
    md.push_str(METHODOLOGY.trim_end());
    md.push_str("\n\n");
    if let Some(r) = results {
        render_run(&mut md, r, micro, api);
    } else {
        md.push_str(
            "## Last run\n\nThe end-to-end benchmark has not been run (no `e2e.json`).\n\n",
        );
        render_micro(&mut md, micro);
        render_api(&mut md, api);
    }
    md
}

fn render_run(md: &mut String, r: &Results, micro: &Micro, api: &ApiScale) {
    let d = &r.datasets;
    let _ = writeln!(md, "## Last run: `just {}`\n", r.label);
    let _ = writeln!(
        md,
        "From {} to {}; {} round{}, each figure the median with [min–max].\n",
        r.started,
        r.finished,
        r.rounds,
        if r.rounds == 1 { "" } else { "s" }
    );
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| CPU | {} |", r.machine.cpu);
    let _ = writeln!(md, "| cores | {} |", r.machine.cores);
    let _ = writeln!(md, "| RAM | {:.1} GiB |", r.machine.ram_mib as f64 / 1024.0);
    let _ = writeln!(md, "| kernel | {} |", r.machine.kernel);
    let _ = writeln!(
        md,
        "| load average (1, 5, 15 min) | {} at the start, {} at the end |",
        r.machine.load_at_start, r.machine.load_at_end
    );
    for (tool, version) in &r.versions {
        let _ = writeln!(md, "| {tool} | {version} |");
    }
    let _ = writeln!(
        md,
        "| page cache | {} |",
        if r.dropped_caches {
            "dropped (`sync; echo 3 > /proc/sys/vm/drop_caches`) before every operation"
        } else {
            "not dropped: every tool read warm data"
        }
    );
    let _ = writeln!(
        md,
        "| `mixed` | {} MiB argument: {} files, {} bytes |",
        d.mixed_mib, d.mixed_files, d.mixed_bytes
    );
    let _ = writeln!(
        md,
        "| `small` | {} files, {} bytes |",
        d.small_files, d.small_bytes
    );
    let _ = writeln!(md, "| `mutate` | {} |", d.mutation);
    md.push('\n');
    if r.machine
        .load_at_start
        .split_whitespace()
        .next()
        .and_then(|l| l.parse::<f64>().ok())
        > Some(r.machine.cores as f64 * 0.5)
    {
        let _ = writeln!(
            md,
            "**Measured under load**: other work (engineers compiling) shared the {} cores during \
             this run, as the load average shows. Absolute times are noisy; the ratios compare \
             tools measured side by side under the same load.\n",
            r.machine.cores
        );
    }
    for note in &r.notes {
        let _ = writeln!(md, "- {note}");
    }
    if !r.notes.is_empty() {
        md.push('\n');
    }

    render_table(md, r);
    render_proxy(md, r);
    render_targets(md, r, micro, api);
    render_scale(md, r);
    render_micro(md, micro);
    render_api(md, api);
    render_commands(md, r);
}

fn render_table(md: &mut String, r: &Results) {
    let d = &r.datasets;
    let rows: Vec<Row<'_>> = OPERATIONS
        .iter()
        .map(|&(tool, op, key)| Row {
            tool,
            op,
            key,
            bytes: if key.ends_with("small") {
                d.small_bytes
            } else {
                d.mixed_bytes
            },
            samples: r.measures.get(key).map(Vec::as_slice),
        })
        .collect();
    let _ = writeln!(md, "### Results\n");
    let _ = writeln!(
        md,
        "MiB/s is the dataset's size over the wall time (for re-snapshots: how fast an unchanged \
         or slightly changed dataset is covered). Requests and bytes are counted by the proxy; \
         bytes are HTTP body bytes. CPU is user + system seconds of the tool's process, and of \
         Garage meanwhile.\n"
    );
    let _ = writeln!(
        md,
        "| tool | operation | wall s | MiB/s | requests | PUT | MiB up | MiB down | peak RSS MiB | CPU s | Garage CPU s |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let Some(samples) = row.samples else {
            continue;
        };
        let bytes = row.bytes as f64;
        let rate = spread(samples, |s| Some(bytes / MIB / s.wall_s));
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.tool,
            row.op,
            fmt_spread(wall(samples), 2),
            fmt_spread(rate, 0),
            fmt_spread(req(samples, |q| q.total as f64), 0),
            fmt_spread(req(samples, |q| q.method("PUT") as f64), 0),
            fmt_spread(req(samples, |q| q.bytes_up as f64 / MIB), 1),
            fmt_spread(req(samples, |q| q.bytes_down as f64 / MIB), 1),
            fmt_spread(rss_mib(samples), 0),
            fmt_spread(spread(samples, |s| s.cpu_s), 1),
            fmt_spread(spread(samples, |s| s.server_cpu_s), 1),
        );
        let _ = row.key;
    }
    md.push('\n');
    // Errors are worth a line: retries inflate request counts.
    let errors: Vec<String> = r
        .measures
        .iter()
        .filter_map(|(k, s)| {
            let e = s
                .iter()
                .filter_map(|x| x.requests.as_ref())
                .map(|q| q.errors)
                .max()?;
            (e > 0).then(|| format!("{k}: up to {e} error responses in a round"))
        })
        .collect();
    if !errors.is_empty() {
        let _ = writeln!(
            md,
            "Error responses seen by the proxy: {}.\n",
            errors.join("; ")
        );
    }
}

fn render_proxy(md: &mut String, r: &Results) {
    let pairs = [
        (
            "one object up",
            "rclone/object-up",
            "rclone/object-up-direct",
        ),
        (
            "one object down",
            "rclone/object-down",
            "rclone/object-down-direct",
        ),
    ];
    let _ = writeln!(md, "### The counting proxy's cost\n");
    let _ = writeln!(
        md,
        "Every tool's S3 traffic went through the counting proxy (`coffer-testfixtures` \
         `counting_proxy`), so request counts and bytes are measured the same way for all, and the \
         timings above include it for all. Its cost, measured with rclone's one-object transfer \
         through it and directly to Garage in the same rounds:\n"
    );
    let _ = writeln!(
        md,
        "| transfer | through the proxy, s | direct, s | proxy overhead |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|");
    for (label, via, direct) in pairs {
        let a = median(r, via, wall);
        let b = median(r, direct, wall);
        let overhead = a.zip(b).map_or("—".into(), |(a, b)| {
            format!("{:+.0}%", (a / b - 1.0) * 100.0)
        });
        let _ = writeln!(
            md,
            "| {label} | {} | {} | {overhead} |",
            fmt_spread(r.measures.get(via).and_then(|s| wall(s)), 2),
            fmt_spread(r.measures.get(direct).and_then(|s| wall(s)), 2),
        );
    }
    md.push('\n');
}

/// Ratio helper: `Some(a / b)`.
fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    let (a, b) = (a?, b?);
    (b != 0.0).then(|| a / b)
}

fn met(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "**met**",
        Some(false) => "**not met**",
        None => "not measured",
    }
}

fn render_targets(md: &mut String, r: &Results, micro: &Micro, api: &ApiScale) {
    let d = &r.datasets;
    let w = |k: &str| median(r, k, wall);
    let up = |k: &str| median(r, k, |s| req(s, |q| q.bytes_up as f64));
    let puts = |k: &str| median(r, k, |s| req(s, |q| q.method("PUT") as f64));
    let peak = |tool: &str| {
        r.measures
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("{tool}/")))
            .filter_map(|(_, s)| rss_mib(s).map(|x| x.median))
            .reduce(f64::max)
    };

    let _ = writeln!(md, "### Ratios\n");
    let _ = writeln!(
        md,
        "Speed ratios: above 1 means coffer is faster. coffer/rclone compares with the one-object \
         transfer (the S3 server's limit on this machine) for snapshot and restore.\n"
    );
    let _ = writeln!(
        md,
        "| measure | coffer s | restic s | rclone one-object s | coffer speed / restic | coffer speed / rclone |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|");
    let lines = [
        (
            "full snapshot",
            "coffer/full",
            "restic/full",
            Some("rclone/object-up"),
        ),
        (
            "unchanged re-snapshot",
            "coffer/unchanged",
            "restic/unchanged",
            None,
        ),
        ("after mutate", "coffer/mutated", "restic/mutated", None),
        (
            "full restore",
            "coffer/restore",
            "restic/restore",
            Some("rclone/object-down"),
        ),
        ("small files", "coffer/small", "restic/small", None),
    ];
    let f = |x: Option<f64>, digits: usize| x.map_or("—".into(), |v| format!("{v:.digits$}"));
    for (label, c, rs, rc) in lines {
        let _ = writeln!(
            md,
            "| {label} | {} | {} | {} | {} | {} |",
            f(w(c), 2),
            f(w(rs), 2),
            f(rc.and_then(w), 2),
            f(ratio(w(rs), w(c)), 2),
            f(rc.and_then(|k| ratio(w(k), w(c))), 2),
        );
    }
    let _ = writeln!(
        md,
        "| peak RSS (largest median over the operations) | {} MiB | {} MiB | | coffer/restic = {} | |",
        f(peak("coffer"), 0),
        f(peak("restic"), 0),
        f(ratio(peak("coffer"), peak("restic")), 2)
    );
    md.push('\n');

    let _ = writeln!(md, "### Targets (issue 7)\n");
    let _ = writeln!(md, "| measure | target | measured | |");
    let _ = writeln!(md, "|---|---|---|---|");
    let mut row = |measure: &str, target: &str, measured: String, ok: Option<bool>| {
        let _ = writeln!(md, "| {measure} | {target} | {measured} | {} |", met(ok));
    };
    let full = ratio(w("rclone/object-up"), w("coffer/full"));
    row(
        "full snapshot",
        "≥ 0.9× the one-object upload speed",
        f(full, 2) + "×",
        full.map(|x| x >= 0.9),
    );
    let restore = ratio(w("rclone/object-down"), w("coffer/restore"));
    row(
        "restore",
        "≥ 0.9× the one-object download speed",
        f(restore, 2) + "×",
        restore.map(|x| x >= 0.9),
    );
    let unchanged = ratio(w("restic/unchanged"), w("coffer/unchanged"));
    row(
        "unchanged re-snapshot",
        "≥ 3× restic",
        f(unchanged, 2) + "×",
        unchanged.map(|x| x >= 3.0),
    );
    let (cu, ru) = (up("coffer/mutated"), up("restic/mutated"));
    row(
        "after mutate: bytes uploaded",
        "≤ restic",
        format!(
            "coffer {} MiB, restic {} MiB",
            f(cu.map(|b| b / MIB), 1),
            f(ru.map(|b| b / MIB), 1)
        ),
        cu.zip(ru).map(|(c, r)| c <= r),
    );
    let mt = ratio(w("coffer/mutated"), w("restic/mutated"));
    row(
        "after mutate: time",
        "≤ 0.5× restic",
        f(mt, 2) + "× restic's time",
        mt.map(|x| x <= 0.5),
    );
    let small = ratio(w("restic/small"), w("coffer/small"));
    row(
        &format!("{} small files: speed", d.small_files),
        "≥ 2× restic",
        f(small, 2) + "×",
        small.map(|x| x >= 2.0),
    );
    let small_puts = puts("coffer/small");
    let limit = d.small_files as f64 / 100.0;
    row(
        &format!("{} small files: PUTs", d.small_files),
        "≤ 1% of the file count",
        format!(
            "{} PUTs (limit {limit:.0}; restic {})",
            f(small_puts, 0),
            f(puts("restic/small"), 0)
        ),
        small_puts.map(|p| p <= limit),
    );
    let rss = ratio(peak("coffer"), peak("restic"));
    row(
        "peak RSS",
        "≤ 0.5× restic",
        format!(
            "{}× (coffer {} MiB, restic {} MiB)",
            f(rss, 2),
            f(peak("coffer"), 0),
            f(peak("restic"), 0)
        ),
        rss.map(|x| x <= 0.5),
    );
    let growth = scale_growth(r);
    row(
        &format!("peak RSS growth {} → {} MiB", d.mixed_mib, d.scale_mib),
        "≤ 10%",
        growth.map_or("not run".into(), |g| {
            format!("{:+.1}% (largest of snapshot and restore)", g * 100.0)
        }),
        growth.map(|g| g <= 0.10),
    );
    // The SHA-256 case over the most bytes per iteration (data streaming through memory, as
    // in a snapshot), and the slowest if several: a small buffer hashed over and over from
    // the CPU cache is not what a snapshot does.
    let hashing = match micro {
        Micro::Ran(results) => {
            let sha: Vec<&MicroResult> = results
                .iter()
                .filter(|m| m.id.starts_with("sha256/"))
                .filter(|m| m.bytes_per_s().is_some())
                .collect();
            let largest = sha
                .iter()
                .filter_map(|m| m.throughput.as_ref().map(|t| t.1))
                .reduce(f64::max);
            sha.into_iter()
                .filter(|m| m.throughput.as_ref().map(|t| t.1) == largest)
                .filter_map(|m| m.bytes_per_s().map(|b| (m.id.clone(), b)))
                .min_by(|a, b| a.1.total_cmp(&b.1))
        }
        Micro::NotRun(_) => None,
    };
    row(
        "hashing",
        "≥ 1.5 GB/s/core",
        hashing.as_ref().map_or("not run".into(), |(id, b)| {
            format!("{:.2} GB/s (`{id}`, the largest input; all SHA-256 cases in the microbenchmark table)", b / 1e9)
        }),
        hashing.map(|(_, b)| b >= 1.5e9),
    );
    let all = api.get_all_median_ms();
    row(
        "`_all` over 1,000 snapshots",
        "< 100 ms",
        all.map_or("not run".into(), |ms| format!("{ms:.1} ms")),
        all.map(|ms| ms < 100.0),
    );
    md.push('\n');
}

/// The largest relative growth of coffer's peak RSS (snapshot, restore) at the scaling size.
fn scale_growth(r: &Results) -> Option<f64> {
    ["coffer/full", "coffer/restore"]
        .iter()
        .filter_map(|k| {
            let small = median(r, k, rss_mib)?;
            let big = rss_mib(r.scale.get(*k)?)?.median;
            Some(big / small - 1.0)
        })
        .reduce(f64::max)
}

fn render_scale(md: &mut String, r: &Results) {
    let d = &r.datasets;
    let _ = writeln!(md, "### Scaling: coffer's peak RSS\n");
    if d.scale_mib == 0 || r.scale.is_empty() {
        let _ = writeln!(
            md,
            "Not run (`just bench-quick` skips the {}-MiB run).\n",
            4096
        );
        return;
    }
    let _ = writeln!(
        md,
        "| operation | {} MiB: peak RSS MiB | {} MiB: peak RSS MiB | growth | {} MiB: wall s, MiB/s |",
        d.mixed_mib, d.scale_mib, d.scale_mib
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|");
    for (label, key) in [
        ("full snapshot", "coffer/full"),
        ("full restore", "coffer/restore"),
    ] {
        let small = median(r, key, rss_mib);
        let big = r.scale.get(key).and_then(|s| rss_mib(s)).map(|s| s.median);
        let big_wall = r.scale.get(key).and_then(|s| wall(s)).map(|s| s.median);
        let _ = writeln!(
            md,
            "| {label} | {} | {} | {} | {} |",
            small.map_or("—".into(), |v| format!("{v:.0}")),
            big.map_or("—".into(), |v| format!("{v:.0}")),
            ratio(big, small).map_or("—".into(), |g| format!("{:+.1}%", (g - 1.0) * 100.0)),
            big_wall.map_or("—".into(), |w| format!(
                "{w:.2} s, {:.0} MiB/s",
                d.scale_bytes as f64 / MIB / w
            )),
        );
    }
    md.push('\n');
}

fn render_micro(md: &mut String, micro: &Micro) {
    let _ = writeln!(md, "### Microbenchmarks (criterion, one thread)\n");
    match micro {
        Micro::NotRun(why) => {
            let _ = writeln!(md, "Not run: {why}.\n");
        }
        Micro::Ran(results) => {
            let _ = writeln!(
                md,
                "`cargo bench -p coffer-repository --bench hot_path`. The benchmarks run on one \
                 thread, so the throughput is per core. Time is criterion's median estimate with \
                 its 95% interval.\n"
            );
            let _ = writeln!(
                md,
                "| benchmark | time per iteration | throughput per core |"
            );
            let _ = writeln!(md, "|---|---:|---:|");
            for m in results {
                let _ = writeln!(
                    md,
                    "| `{}` | {} [{}–{}] | {} |",
                    m.id,
                    human_ns(m.median_ns),
                    human_ns(m.low_ns),
                    human_ns(m.high_ns),
                    m.throughput_text()
                );
            }
            md.push('\n');
        }
    }
}

fn human_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn render_api(md: &mut String, api: &ApiScale) {
    let _ = writeln!(md, "### API latency at scale\n");
    match api {
        ApiScale::NotRun(why) => {
            let _ = writeln!(md, "Not run: {why}.\n");
        }
        ApiScale::Ran(v) => {
            let _ = writeln!(
                md,
                "`cargo bench -p coffer-api --bench api_scale` (its `api-scale.json`, rendered as \
                 written):\n"
            );
            let _ = writeln!(md, "| measure | value |");
            let _ = writeln!(md, "|---|---|");
            flatten(md, "", v);
            md.push('\n');
        }
    }
}

/// One table row per leaf; `{median, min, max}` objects become one row `median [min–max]`.
fn flatten(md: &mut String, prefix: &str, v: &Value) {
    match v {
        Value::Object(map) => {
            let (m, lo, hi) = (map.get("median"), map.get("min"), map.get("max"));
            if let (Some(m), Some(lo), Some(hi)) = (
                m.and_then(Value::as_f64),
                lo.and_then(Value::as_f64),
                hi.and_then(Value::as_f64),
            ) {
                let _ = writeln!(md, "| {prefix} | {m:.2} [{lo:.2}–{hi:.2}] |");
                for (k, v) in map {
                    if !matches!(k.as_str(), "median" | "min" | "max") {
                        flatten(md, &join(prefix, k), v);
                    }
                }
                return;
            }
            for (k, v) in map {
                flatten(md, &join(prefix, k), v);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(md, &join(prefix, &i.to_string()), v);
            }
        }
        Value::String(s) => {
            let _ = writeln!(md, "| {prefix} | {s} |");
        }
        other => {
            let _ = writeln!(md, "| {prefix} | {other} |");
        }
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        format!("`{key}`")
    } else {
        format!("{}.{key}`", prefix.trim_end_matches('`'))
    }
}

fn render_commands(md: &mut String, r: &Results) {
    let _ = writeln!(md, "### The commands of this run\n");
    let _ = writeln!(
        md,
        "In order of first use (each round repeats them). `$S3` is the counting proxy in front of \
         that round's Garage, `$COFFER` coffer's API address, `$WORKING_COPY` the round's copy of \
         `$MIXED`; secrets are elided.\n"
    );
    for (name, text) in &r.files {
        let _ = writeln!(md, "`{name}`:\n\n```yaml\n{text}```\n");
    }
    md.push_str("```sh\n");
    for line in &r.commands {
        md.push_str(line);
        md.push('\n');
    }
    md.push_str("```\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Requests;

    fn sample(wall: f64, rss_kib: u64, puts: u64, up: u64) -> Sample {
        let mut by_method = std::collections::BTreeMap::new();
        by_method.insert("PUT".to_owned(), puts);
        Sample {
            wall_s: wall,
            cpu_s: Some(wall / 2.0),
            server_cpu_s: Some(1.0),
            peak_rss_kib: Some(rss_kib),
            requests: Some(Requests {
                by_method,
                total: puts + 3,
                errors: 0,
                bytes_up: up,
                bytes_down: 0,
            }),
        }
    }

    #[test]
    fn a_run_renders_with_targets_and_missing_parts_say_not_run() {
        let mut r = Results {
            label: "bench-quick".into(),
            rounds: 2,
            ..Results::default()
        };
        r.datasets.mixed_mib = 256;
        r.datasets.mixed_bytes = 256 << 20;
        r.datasets.small_files = 2000;
        r.datasets.small_bytes = 16 << 20;
        for (k, w) in [
            ("coffer/full", 2.0),
            ("restic/full", 4.0),
            ("rclone/object-up", 2.0),
            ("coffer/unchanged", 0.1),
            ("restic/unchanged", 0.6),
            ("coffer/small", 1.0),
            ("restic/small", 1.5),
        ] {
            r.measures.insert(
                k.into(),
                vec![
                    sample(w, 100 << 10, 10, 5 << 20),
                    sample(w * 1.1, 110 << 10, 12, 5 << 20),
                ],
            );
        }
        let md = render(
            Some(&r),
            &Micro::NotRun("not run here".into()),
            &ApiScale::NotRun("missing".into()),
        );
        assert!(md.contains("## Last run: `just bench-quick`"), "{md}");
        assert!(
            md.contains("| full snapshot | ≥ 0.9× the one-object upload speed | 1.00× | **met** |"),
            "{md}"
        );
        assert!(
            md.contains("| unchanged re-snapshot | ≥ 3× restic | 6.00× | **met** |"),
            "{md}"
        );
        assert!(
            md.contains("| 2000 small files: speed | ≥ 2× restic | 1.50× | **not met** |"),
            "{md}"
        );
        assert!(
            md.contains("| hashing | ≥ 1.5 GB/s/core | not run | not measured |"),
            "{md}"
        );
        assert!(
            md.contains("Microbenchmarks (criterion, one thread)\n\nNot run: not run here."),
            "{md}"
        );
        assert!(md.contains("2.10 [2.00–2.20]"), "{md}");
    }

    #[test]
    fn api_scale_json_is_rendered_generically() {
        let v: Value = serde_json::json!({
            "snapshots": 1000,
            "get_all_ms": {"median": 12.5, "min": 10.0, "max": 20.0},
            "delete_requests": {"GET": 3, "PUT": 2}
        });
        let mut md = String::new();
        render_api(&mut md, &ApiScale::Ran(v));
        assert!(md.contains("| `snapshots` | 1000 |"), "{md}");
        assert!(
            md.contains("| `get_all_ms` | 12.50 [10.00–20.00] |"),
            "{md}"
        );
        assert!(md.contains("| `delete_requests.GET` | 3 |"), "{md}");
    }
}
