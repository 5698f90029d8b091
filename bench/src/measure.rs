//! Timing one operation: the page cache dropped first, the proxy's counters reset, the peak
//! RSS and CPU time of the process doing the work read around it, and Garage's CPU time.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use coffer_testfixtures::counting_proxy::CountingProxy;

use crate::procfs;
use crate::stats::Sample;

/// GNU time, which reports the peak RSS (`ru_maxrss`) of the command it runs.
pub const GNU_TIME: &str = "/usr/bin/time";

/// What every measurement of one server (one round) shares.
pub struct Meter<'a> {
    /// The proxy in front of Garage.
    pub proxy: &'a CountingProxy,
    /// Garage's pid, for its CPU time.
    pub server_pid: Option<u32>,
    /// Clock ticks per second.
    pub ticks: f64,
    /// Whether to drop the page cache before each operation.
    pub drop_caches: bool,
    /// Scratch directory for GNU time's output.
    pub scratch: PathBuf,
}

/// What an external command printed, for callers that parse it.
pub struct Output {
    /// Standard output.
    pub stdout: String,
}

impl Meter<'_> {
    fn before(&self) -> Result<(Instant, Option<f64>)> {
        if self.drop_caches {
            procfs::drop_caches()?;
        }
        self.proxy.reset();
        let server = self
            .server_pid
            .and_then(|p| procfs::cpu_seconds(p, self.ticks));
        Ok((Instant::now(), server))
    }

    fn server_cpu(&self, before: Option<f64>) -> Option<f64> {
        let after = self
            .server_pid
            .and_then(|p| procfs::cpu_seconds(p, self.ticks))?;
        Some(after - before?)
    }

    /// Times `work`, done by the long-running process `pid` (coffer serve).
    pub fn in_process(&self, pid: u32, work: impl FnOnce() -> Result<()>) -> Result<Sample> {
        procfs::reset_peak_rss(pid)?;
        let cpu_before = procfs::cpu_seconds(pid, self.ticks);
        let (started, server_before) = self.before()?;
        work()?;
        let wall_s = started.elapsed().as_secs_f64();
        let requests = self.proxy.counts().into();
        let peak = procfs::peak_rss_kib(pid)?;
        let cpu_s = procfs::cpu_seconds(pid, self.ticks)
            .zip(cpu_before)
            .map(|(a, b)| a - b);
        Ok(Sample {
            wall_s,
            cpu_s,
            server_cpu_s: self.server_cpu(server_before),
            peak_rss_kib: Some(peak),
            requests: Some(requests),
        })
    }

    /// Times an external command under GNU time; a failure is an error with its output.
    pub fn command(&self, cmd: &mut Command) -> Result<(Sample, Output)> {
        let time_file = self.scratch.join("gnu-time.txt");
        let stdout_file = self.scratch.join("stdout.txt");
        let stderr_file = self.scratch.join("stderr.txt");
        let mut timed = Command::new(GNU_TIME);
        timed
            .args(["-f", "%e %U %S %M", "-o"])
            .arg(&time_file)
            .arg(cmd.get_program())
            .args(cmd.get_args());
        for (key, value) in cmd.get_envs() {
            match value {
                Some(v) => timed.env(key, v),
                None => timed.env_remove(key),
            };
        }
        if let Some(dir) = cmd.get_current_dir() {
            timed.current_dir(dir);
        }
        timed
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout_file)?)
            .stderr(std::fs::File::create(&stderr_file)?);
        let (started, server_before) = self.before()?;
        let status = timed
            .status()
            .with_context(|| format!("running {GNU_TIME} (install it: apt-get install -y time)"))?;
        let wall_s = started.elapsed().as_secs_f64();
        let requests = self.proxy.counts().into();
        let server_cpu_s = self.server_cpu(server_before);
        let stdout = std::fs::read_to_string(&stdout_file).unwrap_or_default();
        if !status.success() {
            let stderr = std::fs::read_to_string(&stderr_file).unwrap_or_default();
            bail!(
                "`{}` failed ({status}):\n{}\n{}",
                crate::commands::describe(cmd),
                tail(&stdout, 20),
                tail(&stderr, 40)
            );
        }
        let time = std::fs::read_to_string(&time_file)?;
        let (cpu_s, peak_rss_kib) = parse_gnu_time(&time)
            .with_context(|| format!("unexpected {GNU_TIME} output: {time:?}"))?;
        Ok((
            Sample {
                wall_s,
                cpu_s: Some(cpu_s),
                server_cpu_s,
                peak_rss_kib: Some(peak_rss_kib),
                requests: Some(requests),
            },
            Output { stdout },
        ))
    }
}

/// `%e %U %S %M` → (user + system seconds, max RSS KiB). The last line is used: GNU time
/// writes "Command exited with non-zero status" before it on failures.
fn parse_gnu_time(text: &str) -> Option<(f64, u64)> {
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    let f: Vec<&str> = line.split_whitespace().collect();
    let user: f64 = f.get(1)?.parse().ok()?;
    let system: f64 = f.get(2)?.parse().ok()?;
    let rss: u64 = f.get(3)?.parse().ok()?;
    Some((user + system, rss))
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs a helper command (not measured); a failure is an error with its output.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", crate::commands::describe(cmd)))?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}):\n{}\n{}",
            crate::commands::describe(cmd),
            out.status,
            tail(&String::from_utf8_lossy(&out.stdout), 20),
            tail(&String::from_utf8_lossy(&out.stderr), 40)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether `path` exists as an executable file.
pub fn exists(path: &Path) -> bool {
    path.is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gnu_time_lines() {
        assert_eq!(parse_gnu_time("1.50 2.25 0.75 12345\n"), Some((3.0, 12345)));
        assert_eq!(
            parse_gnu_time("Command exited with non-zero status 1\n0.1 0.0 0.0 99\n"),
            Some((0.0, 99))
        );
        assert_eq!(parse_gnu_time("garbage"), None);
    }
}
