//! Measures the repository layer on a real Garage, for the closing note and as a
//! quick profile target (`cargo run --release -p coffer-repository --example measure`):
//! snapshot and restore MB/s of a `mixed` dataset, what `mutate` costs, the PUT count for many
//! small files, and peak RSS. Environment: `MEASURE_MIB` (default 1024), `MEASURE_SMALL`
//! (default 20000), `MEASURE_DATA` (a dataset made beforehand; mutated in place),
//! `MEASURE_CONCURRENCY`.
//!
//! This example runs on the system allocator; the `coffer` binary uses jemalloc with a
//! dirty-page decay of 0. To measure peak RSS as the binary has it, preload the system's
//! jemalloc: `LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
//! MALLOC_CONF=dirty_decay_ms:0,muzzy_decay_ms:0` (Debian package `libjemalloc2`).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use coffer_client::{
    ClientConfig, ClientOptions, ClientSettings, Credentials, Environment, Operation, S3Client,
    SecureClientSettings,
};
use coffer_repository::clock::{Clock, SystemClock};
use coffer_repository::lease::{Lease, LeaseConfig, LeaseOwner};
use coffer_repository::progress::Progress;
use coffer_repository::snapshot::{IndexSource, SnapshotRequest, create_snapshot};
use coffer_repository::store::S3BlobStore;
use coffer_repository::{BlobStore, ExpectedGeneration, Repository, RepositorySettings};
use coffer_testfixtures::dataset;

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// Resets the peak-RSS counter (Linux ≥ 4.0), so each phase reports its own peak rather
/// than the dataset generator's.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn request(name: &str, root: &Path, index: &str) -> SnapshotRequest {
    SnapshotRequest {
        name: name.into(),
        uuid: uuid::Uuid::new_v4().simple().to_string(),
        indices: vec![IndexSource {
            name: index.into(),
            root: root.to_path_buf(),
            number_of_shards: 2,
            number_of_replicas: 0,
        }],
        partial: false,
        include_global_state: false,
        metadata: None,
    }
}

#[allow(clippy::cast_precision_loss)] // a report, not arithmetic that must be exact
fn mb_per_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let mib: u64 = std::env::var("MEASURE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let small: u64 = std::env::var("MEASURE_SMALL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let garage = coffer_testfixtures::garage::Garage::start().await?;
    let t = garage.target();
    let mut s = ClientSettings::default();
    s.endpoint = Some(t.endpoint.clone());
    s.region = Some(t.region.clone());
    let mut secure = SecureClientSettings::default();
    secure.credentials = Some(Credentials::new(&t.access_key, t.secret_key.clone(), None));
    let client = S3Client::new(
        &ClientConfig::new("measure", s, secure),
        &Environment::empty(),
        ClientOptions::default(),
    )?;
    let store = Arc::new(S3BlobStore::new(
        client.clone(),
        t.bucket.clone(),
        "measure",
    ));
    let dyn_store: Arc<dyn BlobStore> = Arc::clone(&store) as Arc<dyn BlobStore>;
    let caps = coffer_repository::verify::probe_capabilities(store.as_ref()).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let repo = Repository::new(
        Arc::clone(&dyn_store),
        Arc::clone(&clock),
        RepositorySettings {
            concurrency: std::env::var("MEASURE_CONCURRENCY")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(RepositorySettings::default().concurrency),
            ..RepositorySettings::default()
        },
    );
    let owner = LeaseOwner {
        node_name: "measure".into(),
        node_id: "m".into(),
        pid: std::process::id(),
        repository_uuid: String::new(),
        operation: "measure".into(),
    };
    let lease = Lease::acquire(
        Arc::clone(&dyn_store),
        caps,
        Arc::clone(&clock),
        owner,
        LeaseConfig::default(),
    )
    .await?;

    let work =
        tempfile::tempdir_in(std::env::var("MEASURE_DIR").unwrap_or_else(|_| "/tmp".into()))?;
    // `MEASURE_DATA` names a dataset made beforehand, so that this process's peak RSS is the
    // snapshot's and not the generator's. It is mutated in place by the run.
    let data = if let Some(dir) = std::env::var_os("MEASURE_DATA") {
        std::path::PathBuf::from(dir)
    } else {
        let data = work.path().join("mixed");
        eprintln!("generating {mib} MiB mixed dataset …");
        dataset::mixed(&data, mib, 1).context("dataset")?;
        data
    };
    let total: u64 = dataset::manifest(&data)?
        .entries()
        .values()
        .map(|e| e.size)
        .sum();

    reset_peak();
    let t0 = Instant::now();
    let full = create_snapshot(
        &repo,
        &lease,
        ExpectedGeneration::Empty,
        request("full", &data, "mixed"),
        Progress::new(),
    )
    .await?;
    let full_s = t0.elapsed().as_secs_f64();
    let full_rss = peak_rss_mib();
    let t0 = Instant::now();
    let unchanged = create_snapshot(
        &repo,
        &lease,
        ExpectedGeneration::At(0),
        request("unchanged", &data, "mixed"),
        Progress::new(),
    )
    .await?;
    let unchanged_s = t0.elapsed().as_secs_f64();
    dataset::mutate(&data, 1)?;
    let t0 = Instant::now();
    let mutated = create_snapshot(
        &repo,
        &lease,
        ExpectedGeneration::At(1),
        request("mutated", &data, "mixed"),
        Progress::new(),
    )
    .await?;
    let mutated_s = t0.elapsed().as_secs_f64();

    let (_, root) = repo.load(ExpectedGeneration::At(2)).await?;
    let target = work.path().join("restored");
    reset_peak();
    let t0 = Instant::now();
    coffer_repository::restore::restore_index(
        &repo,
        &root,
        &full.summary.uuid,
        "mixed",
        &target,
        Progress::new(),
    )
    .await?;
    let restore_s = t0.elapsed().as_secs_f64();
    let restore_rss = peak_rss_mib();
    std::fs::remove_dir_all(&target)?;

    let small_dir = work.path().join("small");
    dataset::small(&small_dir, small, 1)?;
    let puts_before = client.metering().operation(Operation::PutObject).requests;
    let t0 = Instant::now();
    create_snapshot(
        &repo,
        &lease,
        ExpectedGeneration::At(2),
        request("small", &small_dir, "small"),
        Progress::new(),
    )
    .await?;
    let small_s = t0.elapsed().as_secs_f64();
    let puts = client.metering().operation(Operation::PutObject).requests - puts_before;
    lease.release().await?;

    println!("dataset: mixed {mib} MiB ({total} bytes), small {small} files");
    println!(
        "full snapshot:      {full_s:7.2} s  {:7.1} MB/s  uploaded {} bytes",
        mb_per_s(total, full_s),
        full.summary.stats.uploaded_bytes
    );
    println!(
        "unchanged snapshot: {unchanged_s:7.2} s  uploaded {} bytes",
        unchanged.summary.stats.uploaded_bytes
    );
    println!(
        "after mutate:       {mutated_s:7.2} s  uploaded {} bytes ({} files re-read)",
        mutated.summary.stats.uploaded_bytes, mutated.summary.stats.incremental_file_count
    );
    println!(
        "restore:            {restore_s:7.2} s  {:7.1} MB/s",
        mb_per_s(total, restore_s)
    );
    println!("small files:        {small_s:7.2} s  {puts} PUTs for {small} files");
    println!("peak RSS:           snapshot {full_rss:.1} MiB, restore {restore_rss:.1} MiB");
    Ok(())
}
