//! The snapshot API through the real binary: an fs repository end to end (register, verify,
//! snapshot without waiting while polling `_status`, restore under a new name, compare, restart
//! and find everything again), and S3 repositories on Garage and Ceph with keys from the
//! keystore, including wrong keys fixed by `reload_secure_settings` without a restart.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin;
use coffer_testfixtures::dataset;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

/// Polling needs real waits; test code is allowed the sleep the library code must inject.
#[allow(clippy::disallowed_methods)]
fn pause(d: Duration) {
    std::thread::sleep(d);
}

struct Server {
    child: Child,
    port: u16,
    stderr_lines: mpsc::Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(config: &Path, data: &Path, extra: &[String]) -> Server {
        let mut cmd = Command::new(cargo_bin("coffer"));
        cmd.arg("--config-dir")
            .arg(config)
            .arg("serve")
            .arg("-E")
            .arg("http.port=0")
            .arg("-E")
            .arg(format!("path.data={}", data.display()))
            .args(extra.iter().flat_map(|e| ["-E", e.as_str()]))
            .env_remove("COFFER_KEYSTORE_PASSWORD")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("[coffer] {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child,
            port: 0,
            stderr_lines: rx,
        };
        while server.port == 0 {
            let line = server
                .stderr_lines
                .recv_timeout(Duration::from_secs(60))
                .expect("server did not report its address");
            if let Some(rest) = line.split("listening on http://").nth(1) {
                server.port = rest.trim().rsplit(':').next().unwrap().parse().unwrap();
            }
        }
        server
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let client = reqwest::blocking::Client::new();
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let mut req = client.request(method.parse().unwrap(), url);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.timeout(Duration::from_secs(300)).send().unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (s, v) = self.call(method, path, body);
        assert_eq!(s, 200, "{method} {path}: {v}");
        v
    }

    fn stop(mut self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = self.child.wait().unwrap();
        assert!(status.success(), "exit status {status:?}");
    }

    /// Starts a snapshot without waiting and polls `_status` until it is done; returns the
    /// states seen.
    fn snapshot_polling(&self, repo: &str, snap: &str, indices: &str) -> Vec<String> {
        let v = self.ok(
            "PUT",
            &format!("/_snapshot/{repo}/{snap}?wait_for_completion=false"),
            Some(json!({"indices": indices})),
        );
        assert_eq!(v, json!({"accepted": true}));
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut seen = Vec::new();
        loop {
            let v = self.ok("GET", &format!("/_snapshot/{repo}/{snap}/_status"), None);
            let state = v["snapshots"][0]["state"].as_str().unwrap().to_owned();
            if seen.last() != Some(&state) {
                seen.push(state.clone());
            }
            if state == "SUCCESS" {
                let stats = &v["snapshots"][0]["stats"];
                assert!(stats["total"]["file_count"].as_u64().unwrap() > 0, "{v}");
                return seen;
            }
            assert!(
                state == "STARTED" || state == "IN_PROGRESS",
                "unexpected state {state}: {v}"
            );
            assert!(Instant::now() < deadline, "snapshot did not finish: {v}");
            pause(Duration::from_millis(50));
        }
    }
}

fn keystore_add(config: &Path, pairs: &[(&str, &str)]) {
    let names: Vec<&str> = pairs.iter().map(|p| p.0).collect();
    let mut child = Command::new(cargo_bin("coffer"))
        .arg("--config-dir")
        .arg(config)
        .args(["keystore", "add", "-f", "--stdin"])
        .args(&names)
        .env_remove("COFFER_KEYSTORE_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        for (_, v) in pairs {
            writeln!(stdin, "{v}").unwrap();
        }
    }
    assert!(child.wait().unwrap().success());
}

struct Dirs {
    _tmp: tempfile::TempDir,
    config: PathBuf,
    data: PathBuf,
    repo: PathBuf,
    source: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let d = Dirs {
        config: tmp.path().join("config"),
        data: tmp.path().join("data"),
        repo: tmp.path().join("repo"),
        source: tmp.path().join("source"),
        _tmp: tmp,
    };
    for p in [&d.config, &d.data, &d.repo] {
        std::fs::create_dir_all(p).unwrap();
    }
    dataset::mixed_bytes(&d.source, 3 << 20, 7).unwrap();
    // The snapshot must see the files as settled, not written in the same instant.
    pause(Duration::from_millis(20));
    d
}

fn base_settings(d: &Dirs) -> Vec<String> {
    vec![
        format!("path.repo={}", d.repo.display()),
        format!("indices.src.path={}", d.source.display()),
        "indices.src.number_of_shards=3".to_owned(),
        "node.name=flow-node".to_owned(),
    ]
}

/// Snapshot of the attached index, restore under a new name, compare; returns nothing but
/// asserts throughout.
fn round_trip(server: &Server, d: &Dirs, repo: &str, target: &str) {
    let seen = server.snapshot_polling(repo, "snap-1", "src,docs");
    assert_eq!(seen.last().map(String::as_str), Some("SUCCESS"), "{seen:?}");
    let v = server.ok("GET", &format!("/_snapshot/{repo}/snap-1"), None);
    assert_eq!(v["snapshots"][0]["state"], "SUCCESS");
    assert_eq!(v["snapshots"][0]["indices"], json!(["docs", "src"]));
    let v = server.ok(
        "POST",
        &format!("/_snapshot/{repo}/snap-1/_restore?wait_for_completion=true"),
        Some(json!({"indices": "src", "rename_pattern": "src", "rename_replacement": target})),
    );
    assert_eq!(v["snapshot"]["indices"], json!([target]));
    let restored = d.data.join("indices").join(target);
    dataset::manifest(&d.source)
        .unwrap()
        .ensure_same(&dataset::manifest(&restored).unwrap())
        .unwrap();
    // Documents round-trip through snapshot and restore too.
    server.ok("POST", "/docs/_close", None);
    server.ok(
        "POST",
        &format!("/_snapshot/{repo}/snap-1/_restore?wait_for_completion=true"),
        Some(json!({"indices": "docs"})),
    );
    let v = server.ok("GET", "/docs/_doc/d1", None);
    assert_eq!(v["_source"], json!({"title": "hello"}));
}

fn make_docs(server: &Server) {
    server.ok(
        "PUT",
        "/docs",
        Some(json!({"settings": {"number_of_shards": 1}})),
    );
    let (s, _) = server.call("PUT", "/docs/_doc/d1", Some(json!({"title": "hello"})));
    assert_eq!(s, 201);
}

#[test]
fn fs_repository_full_flow_survives_a_restart() {
    let d = dirs();
    let settings = base_settings(&d);
    let server = Server::start(&d.config, &d.data, &settings);
    server.ok(
        "PUT",
        "/_snapshot/fsrepo",
        Some(json!({"type": "fs", "settings": {"location": "fs-1", "chunk_size": "256kb"}})),
    );
    let v = server.ok("POST", "/_snapshot/fsrepo/_verify", None);
    assert_eq!(v["nodes"].as_object().unwrap().len(), 1);
    make_docs(&server);
    round_trip(&server, &d, "fsrepo", "src-restored");
    let (s, v) = server.call("GET", "/_cat/indices?v", None);
    assert_eq!(s, 200);
    assert!(v.as_str().unwrap().contains("src-restored"), "{v}");
    server.stop();

    let server = Server::start(&d.config, &d.data, &settings);
    let v = server.ok("GET", "/_snapshot", None);
    assert_eq!(v["fsrepo"]["type"], "fs");
    assert_eq!(v["fsrepo"]["settings"]["location"], "fs-1");
    let v = server.ok("GET", "/_snapshot/fsrepo/_all", None);
    assert_eq!(v["snapshots"][0]["snapshot"], "snap-1");
    assert_eq!(v["snapshots"][0]["state"], "SUCCESS");
    server.ok("GET", "/src-restored", None);
    let v = server.ok("GET", "/docs/_doc/d1", None);
    assert_eq!(v["found"], true);
    // An incremental snapshot after the restart continues the same repository.
    server.snapshot_polling("fsrepo", "snap-2", "src");
    server.ok("DELETE", "/_snapshot/fsrepo/snap-*", None);
    let v = server.ok("POST", "/_snapshot/fsrepo/_cleanup", None);
    assert!(v["results"]["deleted_blobs"].is_u64());
    server.stop();
}

struct S3 {
    endpoint: String,
    region: String,
    bucket: String,
    access_key: String,
    secret_key: String,
}

fn s3_flow(s3: &S3) {
    let d = dirs();
    // Wrong keys first.
    keystore_add(
        &d.config,
        &[
            ("s3.client.store.access_key", "GK0123456789abcdef01234567"),
            (
                "s3.client.store.secret_key",
                "0000000000000000000000000000000000000000000000000000000000000000",
            ),
        ],
    );
    let mut settings = base_settings(&d);
    settings.extend([
        format!("s3.client.store.endpoint={}", s3.endpoint),
        format!("s3.client.store.region={}", s3.region),
        "s3.client.store.path_style_access=true".to_owned(),
        "s3.client.store.max_retries=0".to_owned(),
    ]);
    let server = Server::start(&d.config, &d.data, &settings);
    let repo = json!({"type": "s3", "settings": {"bucket": s3.bucket, "client": "store", "base_path": "flow"}});
    let (s, v) = server.call("PUT", "/_snapshot/s3repo", Some(repo.clone()));
    assert_eq!(s, 500, "{v}");
    assert_eq!(v["error"]["type"], "repository_verification_exception");
    let (s, _) = server.call("GET", "/_snapshot/s3repo", None);
    assert_eq!(s, 404, "a failed verification registers nothing");
    server.ok("PUT", "/_snapshot/s3repo?verify=false", Some(repo));
    let (s, v) = server.call("POST", "/_snapshot/s3repo/_verify", None);
    assert_eq!(s, 500, "{v}");
    assert_eq!(v["error"]["type"], "repository_verification_exception");
    let reason = v["error"]["reason"].as_str().unwrap();
    assert!(
        [
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "AccessDenied"
        ]
        .iter()
        .any(|c| reason.contains(c)),
        "{reason}"
    );
    assert!(!v.to_string().contains(&s3.secret_key));

    // Fix the keystore and reload without a restart.
    keystore_add(
        &d.config,
        &[
            ("s3.client.store.access_key", &s3.access_key),
            ("s3.client.store.secret_key", &s3.secret_key),
        ],
    );
    let v = server.ok("POST", "/_nodes/reload_secure_settings", Some(json!({})));
    let node = v["nodes"].as_object().unwrap().values().next().unwrap();
    assert!(node.get("reload_exception").is_none(), "{v}");
    server.ok("POST", "/_snapshot/s3repo/_verify", None);
    make_docs(&server);
    round_trip(&server, &d, "s3repo", "src-from-s3");
    server.stop();

    let server = Server::start(&d.config, &d.data, &settings);
    let v = server.ok("GET", "/_snapshot/s3repo", None);
    assert_eq!(v["s3repo"]["settings"]["bucket"], s3.bucket);
    let v = server.ok("GET", "/_snapshot/s3repo/snap-1", None);
    assert_eq!(v["snapshots"][0]["state"], "SUCCESS");
    server.stop();
}

#[test]
fn s3_repository_on_garage_with_keystore_keys_and_reload() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let garage = rt
        .block_on(coffer_testfixtures::garage::Garage::start())
        .expect("Garage (set COFFER_TOOLS_DIR to reuse a built binary)");
    s3_flow(&S3 {
        endpoint: garage.endpoint().to_owned(),
        region: garage.region().to_owned(),
        bucket: garage.bucket().to_owned(),
        access_key: garage.access_key().to_owned(),
        secret_key: garage.secret_key().expose_secret().to_owned(),
    });
    drop(garage);
}

#[test]
fn s3_repository_on_ceph_with_keystore_keys_and_reload() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ceph = rt
        .block_on(coffer_testfixtures::ceph::Ceph::start())
        .expect("Ceph radosgw (installed by the test fixtures)");
    s3_flow(&S3 {
        endpoint: ceph.endpoint().to_owned(),
        region: ceph.region().to_owned(),
        bucket: ceph.bucket().to_owned(),
        access_key: ceph.access_key().to_owned(),
        secret_key: ceph.secret_key().expose_secret().to_owned(),
    });
    drop(ceph);
}

#[test]
fn sigterm_abandons_a_running_snapshot_which_shows_failed_after_restart() {
    let d = dirs();
    let settings = base_settings(&d);
    let server = Server::start(&d.config, &d.data, &settings);
    // Throttled so that the snapshot is still running when the signal arrives.
    server.ok(
        "PUT",
        "/_snapshot/slow",
        Some(json!({"type": "fs", "settings": {"location": "slow", "max_snapshot_bytes_per_sec": "256kb"}})),
    );
    server.ok(
        "PUT",
        "/_snapshot/slow/interrupted?wait_for_completion=false",
        Some(json!({"indices": "src"})),
    );
    let v = server.ok("GET", "/_snapshot/slow/interrupted/_status", None);
    assert_eq!(v["snapshots"][0]["state"], "STARTED", "{v}");
    let v = server.ok("GET", "/_snapshot/_status", None);
    assert_eq!(v["snapshots"][0]["snapshot"], "interrupted");
    server.stop();

    let server = Server::start(&d.config, &d.data, &settings);
    let v = server.ok("GET", "/_snapshot/slow/interrupted", None);
    assert_eq!(v["snapshots"][0]["state"], "FAILED", "{v}");
    assert!(
        v["snapshots"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("shut down"),
        "{v}"
    );
    // The lease was released: the repository takes a new snapshot at once, and cleanup
    // removes what the abandoned one left.
    server.ok(
        "PUT",
        "/_snapshot/slow",
        Some(json!({"type": "fs", "settings": {"location": "slow"}})),
    );
    let v = server.ok(
        "PUT",
        "/_snapshot/slow/after?wait_for_completion=true",
        Some(json!({"indices": "src"})),
    );
    assert_eq!(v["snapshot"]["state"], "SUCCESS");
    server.ok("POST", "/_snapshot/slow/_cleanup", None);
    server.stop();
}
