//! API latency at scale: a repository on Garage holding 1,000 snapshots, served by the real
//! router on a loopback listener and driven over HTTP.
//!
//! It measures `GET /_snapshot/{repo}/_all` (verbose and `?verbose=false`) and the deletion
//! of one snapshot, and counts the S3 requests each makes through a counting proxy placed
//! between coffer and Garage. Results go to `$COFFER_BENCH_OUT/api-scale.json` (default
//! `<workspace>/target/bench`) and a summary to stdout.
//!
//! `cargo bench -p coffer-api --bench api_scale`. `COFFER_API_SCALE_SNAPSHOTS` changes the
//! number of snapshots (default 1,000); `COFFER_TOOLS_DIR` should point at the cached Garage
//! build (see `testfixtures`), or the first run builds it. `docs/microbenchmarks.md`
//! explains the numbers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use coffer_api::{AppConfig, AppState, AttachedIndex, SecureLoader, router};
use coffer_client::{ClientOptions, ClientRegistry, Environment, SecureValue};
use coffer_repository::clock::{Clock, SystemClock};
use coffer_repository::lease::{Lease, LeaseConfig, LeaseOwner};
use coffer_repository::model::SnapshotState;
use coffer_repository::progress::Progress;
use coffer_repository::snapshot::{IndexSource, SnapshotRequest, create_snapshot};
use coffer_repository::store::S3BlobStore;
use coffer_repository::{
    BlobStore, Capabilities, ExpectedGeneration, Repository, RepositorySettings,
};
use coffer_testfixtures::counting_proxy::{CountingProxy, RequestCounts};
use coffer_testfixtures::garage::Garage;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

const REPO: &str = "scale";
/// The repository's folder in the bucket.
const BASE_PATH: &str = "scale";
/// Timed rounds of each listing.
const LIST_ROUNDS: usize = 10;
/// Snapshots deleted one by one, each timed and counted.
const DELETE_ROUNDS: usize = 5;

fn main() -> Result<()> {
    let snapshots: usize = match std::env::var("COFFER_API_SCALE_SNAPSHOTS") {
        Ok(v) => v
            .parse()
            .with_context(|| format!("COFFER_API_SCALE_SNAPSHOTS={v}"))?,
        Err(_) => 1_000,
    };
    ensure!(
        snapshots > DELETE_ROUNDS,
        "COFFER_API_SCALE_SNAPSHOTS must be more than {DELETE_ROUNDS}"
    );
    // `cargo bench` passes `--bench`; this harness has no options of its own.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(snapshots))
}

/// Milliseconds, with microsecond resolution.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `{"median", "min", "max"}` of durations in milliseconds.
fn stats(samples: &[Duration]) -> Value {
    let mut v: Vec<f64> = samples.iter().copied().map(ms).collect();
    v.sort_by(f64::total_cmp);
    let median = if v.is_empty() {
        0.0
    } else if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        f64::midpoint(v[v.len() / 2 - 1], v[v.len() / 2])
    };
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    json!({
        "median": round(median),
        "min": round(v.first().copied().unwrap_or(0.0)),
        "max": round(v.last().copied().unwrap_or(0.0)),
        "rounds": v.len(),
    })
}

fn per_call(total: u64, calls: usize) -> f64 {
    #[allow(clippy::cast_precision_loss)] // request counts, far below 2^52
    let r = total as f64 / calls.max(1) as f64;
    r
}

fn counts_json(c: &RequestCounts) -> Value {
    let mut m = serde_json::Map::new();
    for method in ["GET", "HEAD", "PUT", "POST", "DELETE"] {
        m.insert(method.into(), c.method(method).into());
    }
    for (method, n) in &c.by_method {
        m.entry(method.clone()).or_insert_with(|| (*n).into());
    }
    m.insert("total".into(), c.total.into());
    m.insert("errors".into(), c.errors.into());
    m.insert("bytes_up".into(), c.bytes_up.into());
    m.insert("bytes_down".into(), c.bytes_down.into());
    Value::Object(m)
}

fn short(c: &RequestCounts) -> String {
    let methods: Vec<String> = c
        .by_method
        .iter()
        .map(|(m, n)| format!("{m} {n}"))
        .collect();
    format!(
        "{} requests ({}), {} B up, {} B down",
        c.total,
        methods.join(", "),
        c.bytes_up,
        c.bytes_down
    )
}

/// Deterministic file contents: an index of a few segment-like files.
fn write_index(dir: &Path, seed: u8) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for f in 0..6u8 {
        let body: Vec<u8> = (0..16 * 1024u32)
            .map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed ^ f)
            .collect();
        std::fs::write(dir.join(format!("_{f}.seg")), body)?;
    }
    Ok(())
}

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        Ok(self.timed(method, path, body).await?.1)
    }

    /// The call and the time until its whole response body arrived (the client's own JSON
    /// parse is not counted).
    async fn timed(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(Duration, Value)> {
        let started = Instant::now();
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        let elapsed = started.elapsed();
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            bail!(
                "{method} {path} answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        Ok((elapsed, value))
    }
}

/// Takes `count` snapshots of every attached index under one lease, changing `changing`
/// before each; returns how long each took.
async fn build(
    s3_settings: &BTreeMap<String, String>,
    secure: &BTreeMap<String, SecureValue>,
    bucket: &str,
    attached: &[AttachedIndex],
    changing: &Path,
    count: usize,
) -> Result<(Vec<Duration>, Capabilities)> {
    let clients = ClientRegistry::new(
        s3_settings,
        secure,
        &Environment::empty(),
        ClientOptions::default(),
    )?;
    let store: Arc<dyn BlobStore> = Arc::new(S3BlobStore::new(
        clients.client("default")?,
        bucket,
        BASE_PATH,
    ));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let repo = Repository::new(
        Arc::clone(&store),
        Arc::clone(&clock),
        RepositorySettings::default(),
    );
    let caps = coffer_repository::verify::probe_capabilities(store.as_ref()).await?;
    let lease = Lease::acquire(
        store,
        caps,
        clock,
        LeaseOwner {
            node_name: "bench".into(),
            node_id: "bench-node".into(),
            pid: std::process::id(),
            repository_uuid: String::new(),
            operation: "api_scale build".into(),
        },
        LeaseConfig::default(),
    )
    .await?;
    let indices: Vec<IndexSource> = attached
        .iter()
        .map(|a| IndexSource {
            name: a.name.clone(),
            root: a.path.clone(),
            number_of_shards: a.number_of_shards,
            number_of_replicas: 0,
        })
        .collect();
    let mut expected = ExpectedGeneration::Empty;
    let mut times = Vec::with_capacity(count);
    let start = Instant::now();
    for n in 0..count {
        std::fs::write(changing, format!("snapshot {n}\n").repeat(64))?;
        let t = Instant::now();
        let outcome = create_snapshot(
            &repo,
            &lease,
            expected,
            SnapshotRequest {
                name: format!("snap-{n:05}"),
                uuid: uuid::Uuid::new_v4().simple().to_string(),
                indices: indices.clone(),
                partial: false,
                include_global_state: false,
                metadata: None,
            },
            Progress::new(),
        )
        .await?;
        times.push(t.elapsed());
        ensure!(
            outcome.summary.state == SnapshotState::Success,
            "snapshot {n}: {:?}",
            outcome.summary
        );
        expected = ExpectedGeneration::from_found(outcome.generation);
        if (n + 1) % 100 == 0 {
            println!(
                "  {} snapshots, {:.1} s, last one {:.1} ms",
                n + 1,
                start.elapsed().as_secs_f64(),
                ms(times[n])
            );
        }
    }
    lease.release().await?;
    Ok((times, caps))
}

#[allow(clippy::too_many_lines)]
async fn run(snapshots: usize) -> Result<()> {
    if std::env::var_os("COFFER_TOOLS_DIR").is_none() {
        eprintln!(
            "note: COFFER_TOOLS_DIR is not set; the Garage harness may build Garage first (slow)"
        );
    }
    let garage = Garage::start()
        .await
        .context("starting Garage (set COFFER_TOOLS_DIR to reuse a built binary)")?;
    let upstream: SocketAddr = garage
        .endpoint()
        .trim_start_matches("http://")
        .parse()
        .context("Garage's endpoint as an address")?;
    let proxy = CountingProxy::start(upstream).await?;

    let dir = tempfile::tempdir()?;
    let indices_dir = dir.path().join("indices");
    let attached: Vec<AttachedIndex> = [("logs-a", 2), ("logs-b", 2)]
        .into_iter()
        .enumerate()
        .map(|(i, (name, shards))| -> Result<AttachedIndex> {
            let path = indices_dir.join(name);
            write_index(&path, u8::try_from(i)?)?;
            Ok(AttachedIndex {
                name: name.to_owned(),
                path,
                number_of_shards: shards,
            })
        })
        .collect::<Result<_>>()?;
    // One small file changes before every snapshot: each snapshot adds a chunk only it
    // references, so a delete has real garbage to collect.
    let changing: PathBuf = attached[0].path.join("_live.log");

    let s3_settings: BTreeMap<String, String> = [
        ("s3.client.default.endpoint", proxy.endpoint()),
        ("s3.client.default.region", garage.region().to_owned()),
        ("s3.client.default.path_style_access", "true".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let secure: BTreeMap<String, SecureValue> = [
        (
            "s3.client.default.access_key",
            SecureValue::Text(SecretString::from(garage.access_key().to_owned())),
        ),
        (
            "s3.client.default.secret_key",
            SecureValue::Text(SecretString::from(
                garage.secret_key().expose_secret().to_owned(),
            )),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let clients = ClientRegistry::new(
        &s3_settings,
        &secure,
        &Environment::empty(),
        ClientOptions::default(),
    )?;
    let reload_secure = secure.clone();
    let loader: SecureLoader = Arc::new(move |_| Ok(reload_secure.clone()));
    let config = AppConfig {
        node: coffer_api::NodeInfo {
            name: "bench".into(),
            node_id: "bench-node".into(),
            cluster_name: "coffer".into(),
            cluster_uuid: "bench-cluster".into(),
        },
        data_path: dir.path().join("data"),
        repo_paths: Vec::new(),
        attached: attached.clone(),
        s3_settings: s3_settings.clone(),
    };
    let state = AppState::open(config, clients, loader, Arc::new(SystemClock))
        .map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let api = Api {
        http: reqwest::Client::builder().no_proxy().build()?,
        base: format!("http://{addr}"),
    };
    // ------------------------------------------------------------ build
    // The snapshots are taken through the repository layer under one lease: through the API
    // each would take its own lease, and on a store without conditional writes (Garage)
    // every lease waits out a 2 s settle delay, which would make the build half an hour.
    // The repository is the same either way: same code, same blobs, same root.
    println!("building {snapshots} snapshots on Garage through the repository layer …");
    let build_start = Instant::now();
    let (creates, caps) = build(
        &s3_settings,
        &secure,
        garage.bucket(),
        &attached,
        &changing,
        snapshots,
    )
    .await?;
    let build_secs = build_start.elapsed().as_secs_f64();
    proxy.reset();

    api.call(
        Method::PUT,
        &format!("/_snapshot/{REPO}"),
        Some(
            json!({"type": "s3", "settings": {"bucket": garage.bucket(), "base_path": BASE_PATH}}),
        ),
    )
    .await?;

    // ------------------------------------------------------------ _all
    let all_path = format!("/_snapshot/{REPO}/_all");
    let terse_path = format!("/_snapshot/{REPO}/_all?verbose=false");
    let mut lists = BTreeMap::new();
    let mut list_requests = BTreeMap::new();
    for (label, path) in [("verbose", &all_path), ("verbose_false", &terse_path)] {
        // One untimed call: connections open, caches (if any) warm, as on a live server.
        api.call(Method::GET, path, None).await?;
        proxy.reset();
        let mut samples = Vec::with_capacity(LIST_ROUNDS);
        for _ in 0..LIST_ROUNDS {
            let (took, v) = api.timed(Method::GET, path, None).await?;
            samples.push(took);
            let listed = v["snapshots"].as_array().map_or(0, Vec::len);
            ensure!(
                listed == snapshots && v["total"] == snapshots,
                "{path} listed {listed} snapshots, expected {snapshots}"
            );
        }
        let c = proxy.counts();
        list_requests.insert(label, (per_call(c.total, LIST_ROUNDS), c));
        lists.insert(label, samples);
    }

    // ------------------------------------------------------------ storage part
    // What `_all` costs below the API: the root read from scratch (LIST, GET, decode) by a
    // fresh handle, and by a handle that already read it (LIST only).
    let reader = Repository::new(
        Arc::new(S3BlobStore::new(
            ClientRegistry::new(
                &s3_settings,
                &secure,
                &Environment::empty(),
                ClientOptions::default(),
            )?
            .client("default")?,
            garage.bucket(),
            BASE_PATH,
        )),
        Arc::new(SystemClock),
        RepositorySettings::default(),
    );
    let mut cold = Vec::with_capacity(LIST_ROUNDS);
    let mut warm = Vec::with_capacity(LIST_ROUNDS);
    for _ in 0..LIST_ROUNDS {
        let fresh = Repository::new(
            Arc::clone(reader.store()),
            Arc::new(SystemClock),
            RepositorySettings::default(),
        );
        let t = Instant::now();
        let (_, data) = fresh.load(ExpectedGeneration::Unknown).await?;
        cold.push(t.elapsed());
        ensure!(
            data.snapshots.len() == snapshots,
            "root lists {}",
            data.snapshots.len()
        );
    }
    reader.load(ExpectedGeneration::Unknown).await?;
    for _ in 0..LIST_ROUNDS {
        let t = Instant::now();
        reader.load(ExpectedGeneration::Unknown).await?;
        warm.push(t.elapsed());
    }

    // ------------------------------------------------------------ delete
    let mut deletes = Vec::with_capacity(DELETE_ROUNDS);
    let mut delete_counts = Vec::with_capacity(DELETE_ROUNDS);
    for r in 0..DELETE_ROUNDS {
        // Spread over the repository's history: old and recent snapshots alike.
        let n = (2 * r + 1) * snapshots / (2 * DELETE_ROUNDS);
        proxy.reset();
        let (took, v) = api
            .timed(
                Method::DELETE,
                &format!("/_snapshot/{REPO}/snap-{n:05}"),
                None,
            )
            .await?;
        deletes.push(took);
        delete_counts.push(proxy.counts());
        ensure!(v["acknowledged"] == true, "delete of snap-{n:05}: {v}");
    }
    let v = api.call(Method::GET, &terse_path, None).await?;
    ensure!(
        v["total"] == snapshots - DELETE_ROUNDS,
        "after the deletes: {}",
        v["total"]
    );

    // ------------------------------------------------------------ report
    let first = &delete_counts[0];
    let mut report = json!({
        "snapshots": snapshots,
        "get_all_ms": stats(&lists["verbose"]),
        "get_all_verbose_false_ms": stats(&lists["verbose_false"]),
        "delete_ms": stats(&deletes),
        "delete_requests": counts_json(first),
        "delete_requests_per_round": delete_counts.iter().map(counts_json).collect::<Vec<_>>(),
        "get_all_requests_per_call": list_requests["verbose"].0,
        "root_read_uncached_ms": stats(&cold),
        "root_read_cached_ms": stats(&warm),
        "get_all_verbose_false_requests_per_call": list_requests["verbose_false"].0,
        "create_ms": stats(&creates),
        "create_last_100_ms": stats(&creates[creates.len().saturating_sub(100)..]),
        "create_via": "repository layer under one lease (not timed through the API)",
        "build_seconds": (build_secs * 10.0).round() / 10.0,
        "counting": "testfixtures CountingProxy between coffer and Garage (every HTTP request coffer sent)",
        "storage": "Garage (single node, loopback)",
        "storage_capabilities": {
            "conditional_create": caps.conditional_create,
            "conditional_update": caps.conditional_update,
        },
        "lease": if caps.conditional_create && caps.conditional_update {
            "conditional"
        } else {
            "list-and-settle fallback: every write operation (a delete included) waits the 2 s settle delay"
        },
    });
    if let Some(o) = report.as_object_mut() {
        o.insert("indices".into(), json!({"count": 2, "shards_each": 2}));
    }
    let out_dir = std::env::var_os("COFFER_BENCH_OUT").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&out_dir)?;
    let out = out_dir.join("api-scale.json");
    std::fs::write(&out, serde_json::to_string_pretty(&report)? + "\n")?;

    let line = |label: &str, s: &Value| {
        println!(
            "{label:<32} median {:>9.2} ms   min {:>9.2}   max {:>9.2}",
            s["median"].as_f64().unwrap_or(0.0),
            s["min"].as_f64().unwrap_or(0.0),
            s["max"].as_f64().unwrap_or(0.0)
        );
    };
    println!("\nAPI latency with {snapshots} snapshots (2 indices × 2 shards, Garage on loopback)");
    println!("built in {build_secs:.1} s");
    line("create, repository layer (all)", &report["create_ms"]);
    line(
        "create, repository layer (last 100)",
        &report["create_last_100_ms"],
    );
    line("GET _all", &report["get_all_ms"]);
    line(
        "GET _all?verbose=false",
        &report["get_all_verbose_false_ms"],
    );
    line(
        "root read, uncached (LIST+GET)",
        &report["root_read_uncached_ms"],
    );
    line("root read, cached (LIST)", &report["root_read_cached_ms"]);
    line("DELETE one snapshot", &report["delete_ms"]);
    println!("lease: {}", report["lease"].as_str().unwrap_or_default());
    println!(
        "S3 requests per GET _all: {}; per GET _all?verbose=false: {}",
        list_requests["verbose"].0, list_requests["verbose_false"].0
    );
    for (i, c) in delete_counts.iter().enumerate() {
        println!("S3 requests of delete {}: {}", i + 1, short(c));
    }
    println!("written to {}", out.display());

    state.shutdown().await;
    server.abort();
    drop(proxy);
    drop(garage);
    Ok(())
}
