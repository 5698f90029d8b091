//! In-process router tests (`oneshot`): every endpoint and its errors.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use coffer_client::{ClientOptions, ClientRegistry, Environment};
use coffer_repository::clock::SystemClock;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;

struct Harness {
    dir: tempfile::TempDir,
    repo_root: std::path::PathBuf,
    state: AppState,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let repo_root = dir.path().join("repos");
    std::fs::create_dir_all(&repo_root).unwrap();
    let config = AppConfig {
        node: NodeInfo {
            name: "n1".into(),
            node_id: "id1".into(),
            cluster_name: "coffer".into(),
            cluster_uuid: "uuid1".into(),
        },
        data_path: dir.path().join("data"),
        repo_paths: vec![repo_root.clone()],
        attached: Vec::new(),
        s3_settings: BTreeMap::new(),
    };
    let clients = ClientRegistry::new(
        &BTreeMap::new(),
        &BTreeMap::new(),
        &Environment::empty(),
        ClientOptions::default(),
    )
    .unwrap();
    let loader: SecureLoader = Arc::new(|pw: Option<&secrecy::SecretString>| {
        use secrecy::ExposeSecret as _;
        match pw {
            Some(p) if !p.expose_secret().is_empty() => {
                Err("Provided keystore password was incorrect".to_owned())
            }
            _ => Ok(BTreeMap::new()),
        }
    });
    let state = AppState::open(config, clients, loader, Arc::new(SystemClock)).unwrap();
    Harness {
        dir,
        repo_root,
        state,
    }
}

async fn call(
    state: &AppState,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let (status, bytes) = call_raw(state, method, uri, body.map(|b| b.to_string())).await;
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, v)
}

async fn call_raw(
    state: &AppState,
    method: &str,
    uri: &str,
    body: Option<String>,
) -> (StatusCode, Vec<u8>) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, Body::from))
        .unwrap();
    let resp = router(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, bytes)
}

#[tokio::test]
async fn root_answers_with_identity() {
    let h = harness();
    let (s, b) = call(&h.state, "GET", "/", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["name"], "n1");
    assert_eq!(b["version"]["number"], ES_COMPAT_VERSION);
    let req = Request::get("/").body(Body::empty()).unwrap();
    let resp = router(h.state.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.headers()["x-elastic-product"], "Elasticsearch");
}

#[tokio::test]
async fn unknown_path_and_parameter() {
    let h = harness();
    let (s, b) = call(&h.state, "GET", "/_nope/x/y/z", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b["error"],
        "no handler found for uri [/_nope/x/y/z] and method [GET]"
    );
    let (s, b) = call(&h.state, "GET", "/_snapshot?bogus=1", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["error"]["type"], "illegal_argument_exception");
    assert_eq!(
        b["error"]["reason"],
        "request [/_snapshot] contains unrecognized parameter: [bogus]"
    );
}

#[tokio::test]
async fn wrong_method_names_the_allowed_ones() {
    let h = harness();
    let (s, b) = call(&h.state, "GET", "/_snapshot/r/_verify", None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        b,
        json!({"error": "Incorrect HTTP method for uri [/_snapshot/r/_verify] and method [GET], allowed: [POST]",
               "status": 405})
    );
    let (s, b) = call(&h.state, "POST", "/_cluster/health?pretty", None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        b["error"]
            .as_str()
            .unwrap()
            .starts_with("Incorrect HTTP method for uri [/_cluster/health?pretty] and method [POST], allowed: [GET"),
        "{b}"
    );
}

#[tokio::test]
async fn axum_rejections_answer_in_the_envelope() {
    let h = harness();
    // A path segment that is not UTF-8 is refused by axum's extractor, in plain text.
    let (s, b) = call(&h.state, "GET", "/_snapshot/%FF%FE", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["status"], 400, "{b}");
    assert_eq!(b["error"]["type"], "illegal_argument_exception", "{b}");
    assert_eq!(
        b["error"]["root_cause"][0]["type"],
        "illegal_argument_exception"
    );
    // A body over the limit.
    let big = " ".repeat(MAX_BODY + 1);
    let (s, bytes) = call_raw(&h.state, "PUT", "/_snapshot/r", Some(big)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let b: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(b["status"], 413, "{b}");
    assert_eq!(b["error"]["type"], "content_too_long_exception", "{b}");
}

#[tokio::test]
async fn repository_lifecycle_and_errors() {
    let h = harness();
    let st = &h.state;
    let (s, b) = call(
        st,
        "PUT",
        "/_snapshot/r1",
        Some(json!({"type": "fs", "settings": {"location": "r1", "compress": true}})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b, json!({"acknowledged": true}));
    let (s, b) = call(st, "GET", "/_snapshot/r*", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["r1"]["type"], "fs");
    assert_eq!(
        b["r1"]["settings"],
        json!({"location": "r1", "compress": "true"})
    );
    assert!(b["r1"].get("expected").is_none());
    let (s, b) = call(st, "GET", "/_snapshot/nope", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(b["error"]["type"], "repository_missing_exception");
    assert_eq!(b["error"]["reason"], "[nope] missing");
    assert_eq!(b["status"], 404);
    let (s, b) = call(st, "POST", "/_snapshot/r1/_verify", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b, json!({"nodes": {"id1": {"name": "n1"}}}));
    let (s, b) = call(st, "POST", "/_snapshot/r1/_cleanup", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        b,
        json!({"results": {"deleted_bytes": 0, "deleted_blobs": 0}})
    );
    // Location outside path.repo, `..`, unknown setting, bad JSON, unknown field.
    let (s, b) = call(
        st,
        "PUT",
        "/_snapshot/r2",
        Some(json!({"type": "fs", "settings": {"location": "/etc"}})),
    )
    .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(b["error"]["type"], "repository_exception");
    assert_eq!(
        b["error"]["reason"],
        "[r2] location [/etc] doesn't match any of the locations specified by path.repo"
    );
    let (s, b) = call(st, "PUT", "/_snapshot/r2", Some(json!({"type": "fs"}))).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(b["error"]["reason"], "[r2] missing location");
    let (s, b) = call(st, "PUT", "/_snapshot/r2", Some(json!({"type": "nope"}))).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        b["error"]["reason"],
        "[r2] repository type [nope] does not exist"
    );
    let (s, _) = call(
        st,
        "PUT",
        "/_snapshot/r2",
        Some(json!({"type": "fs", "settings": {"location": "../x"}})),
    )
    .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    let (s, b) = call(
        st,
        "PUT",
        "/_snapshot/r2",
        Some(json!({"type": "fs", "settings": {"location": "x", "lcoation": "y"}})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        b["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("[lcoation]")
    );
    let (s, b) = call_raw(st, "PUT", "/_snapshot/r2", Some("{\"type\": ".into())).await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&b)
    );
    let (s, b) = call(
        st,
        "PUT",
        "/_snapshot/r2",
        Some(json!({"type": "fs", "settings": {"location": "x"}, "extra": 1})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["error"]["reason"], "[repository] unknown field [extra]");
    let (s, b) = call(
        st,
        "PUT",
        "/_snapshot/r3",
        Some(json!({"type": "s3", "settings": {"bucket": "b", "client": "nope"}})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b["error"]["reason"],
        "Unknown s3 client name [nope]. Existing client configs: default"
    );
    let (s, b) = call(
        st,
        "PUT",
        "/_snapshot/r3",
        Some(json!({"type": "s3", "settings": {"bucket": "b", "secret_key": "sekrit"}})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(!b.to_string().contains("sekrit"));
    // A failing verification registers nothing.
    std::fs::write(h.repo_root.join("blocked"), b"file, not a directory").unwrap();
    let (s, b) = call(
        st,
        "PUT",
        "/_snapshot/r4",
        Some(json!({"type": "fs", "settings": {"location": "blocked/sub"}})),
    )
    .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{b}");
    let (s, _) = call(st, "GET", "/_snapshot/r4", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Pretty and filter_path apply everywhere, errors included.
    let (s, b) = call_raw(
        st,
        "GET",
        "/_snapshot/nope?pretty&filter_path=error.type",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let text = String::from_utf8(b).unwrap();
    assert!(text.contains('\n'), "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"error": {"type": "repository_missing_exception"}})
    );
    let (s, b) = call(st, "GET", "/_snapshot/nope?error_trace=true", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(b["error"]["stack_trace"].is_string());
    let (s, _) = call(st, "DELETE", "/_snapshot/r1", None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = call(st, "GET", "/_snapshot", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b, json!({}));
}

/// Registers the `fs` repository `r` (location `r`), creates `index` and puts document `1`
/// into it: the starting point of most snapshot tests.
async fn fs_repository_and_index(st: &AppState, index: &str) {
    let (s, b) = call(
        st,
        "PUT",
        "/_snapshot/r",
        Some(json!({"type": "fs", "settings": {"location": "r"}})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = call(st, "PUT", &format!("/{index}"), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        put_doc(st, index, "1", json!({"a": 1})).await,
        StatusCode::CREATED
    );
}

async fn put_doc(st: &AppState, index: &str, id: &str, body: Value) -> StatusCode {
    call(st, "PUT", &format!("/{index}/_doc/{id}"), Some(body))
        .await
        .0
}

#[tokio::test]
async fn snapshot_restore_round_trip_with_documents() {
    let h = harness();
    let st = &h.state;
    assert_eq!(
        call(
            st,
            "PUT",
            "/_snapshot/r",
            Some(json!({"type": "fs", "settings": {"location": "r"}}))
        )
        .await
        .0,
        StatusCode::OK
    );
    let (s, b) = call(
        st,
        "PUT",
        "/idx",
        Some(json!({"settings": {"number_of_shards": 2, "number_of_replicas": 0}})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = call(st, "PUT", "/idx", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["error"]["type"], "resource_already_exists_exception");
    let (s, b) = call(st, "PUT", "/Bad", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["error"]["type"], "invalid_index_name_exception");
    assert_eq!(
        put_doc(st, "idx", "1", json!({"a": 1})).await,
        StatusCode::CREATED
    );
    assert_eq!(
        put_doc(st, "idx", "a%2Fb", json!({"a": 2})).await,
        StatusCode::CREATED
    );
    assert_eq!(
        put_doc(st, "idx", "1", json!({"a": 3})).await,
        StatusCode::OK
    );
    let (_, b) = call(st, "GET", "/idx/_count", None).await;
    assert_eq!(b["count"], 2);

    // Names: invalid, date math, in use.
    let (s, b) = call(
        st,
        "PUT",
        "/_snapshot/r/Snap?wait_for_completion=true",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b["error"]["reason"],
        "[r:Snap] Invalid snapshot name [Snap], must be lowercase"
    );
    let (s, b) = call(
        st,
        "PUT",
        "/_snapshot/r/s1?wait_for_completion=true",
        Some(json!({"indices": "idx", "metadata": {"k": "v"}})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let info = &b["snapshot"];
    assert_eq!(info["state"], "SUCCESS");
    assert_eq!(
        info["shards"],
        json!({"total": 2, "failed": 0, "successful": 2})
    );
    let keys: Vec<&str> = info
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        vec![
            "snapshot",
            "uuid",
            "repository",
            "version_id",
            "version",
            "indices",
            "data_streams",
            "include_global_state",
            "metadata",
            "state",
            "start_time",
            "start_time_in_millis",
            "end_time",
            "end_time_in_millis",
            "duration_in_millis",
            "failures",
            "shards",
            "feature_states"
        ]
    );
    let (s, b) = call(st, "PUT", "/_snapshot/r/s1", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["error"]["type"], "snapshot_name_already_in_use_exception");
    let (s, b) = call(
        st,
        "PUT",
        "/_snapshot/r/%3Cnightly-%7Bnow%2Fd%7D%3E?wait_for_completion=true",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(
        b["snapshot"]["snapshot"]
            .as_str()
            .unwrap()
            .starts_with("nightly-20")
    );
    let (s, b) = call(
        st,
        "PUT",
        "/_snapshot/r/s9?wait_for_completion=true",
        Some(json!({"indices": "missing"})),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");

    // Get with lists, wildcards, sort, size and paging.
    let (s, b) = call(
        st,
        "GET",
        "/_snapshot/r/_all?sort=name&order=desc&size=1",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["total"], 2);
    assert_eq!(b["remaining"], 1);
    assert_eq!(b["snapshots"][0]["snapshot"], "s1");
    let next = b["next"].as_str().unwrap().to_owned();
    let (_, b) = call(
        st,
        "GET",
        &format!("/_snapshot/r/*?sort=name&order=desc&size=1&after={next}"),
        None,
    )
    .await;
    assert!(
        b["snapshots"][0]["snapshot"]
            .as_str()
            .unwrap()
            .starts_with("nightly-"),
        "{b}"
    );
    assert_eq!(b["remaining"], 0);
    // Elasticsearch's `total` ignores `after`, as it ignores `size` and `offset`.
    assert_eq!(b["total"], 2, "{b}");
    let (_, b) = call(st, "GET", "/_snapshot/r/s1?verbose=false", None).await;
    assert!(b["snapshots"][0].get("shards").is_none());
    assert_eq!(b["snapshots"][0]["state"], "SUCCESS");
    let (_, b) = call(
        st,
        "GET",
        "/_snapshot/r/s1?index_details=true&human=true",
        None,
    )
    .await;
    assert!(
        b["snapshots"][0]["index_details"]["idx"]["size_in_bytes"]
            .as_u64()
            .unwrap()
            > 0,
        "{b}"
    );
    // `?human` adds `duration` just before `duration_in_millis`, as Elasticsearch does.
    let info = b["snapshots"][0].as_object().unwrap();
    let keys: Vec<&str> = info.keys().map(String::as_str).collect();
    let at = keys
        .iter()
        .position(|k| *k == "duration")
        .expect("duration");
    assert_eq!(keys[at + 1], "duration_in_millis", "{b}");
    assert!(info["duration"].as_str().unwrap().ends_with('s'), "{b}");
    let (s, b) = call(st, "GET", "/_snapshot/r/nope", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(b["error"]["reason"], "[r:nope] is missing");
    let (s, _) = call(st, "GET", "/_snapshot/r/nope?ignore_unavailable=true", None).await;
    assert_eq!(s, StatusCode::OK);

    // Status from stored stats.
    let (s, b) = call(st, "GET", "/_snapshot/r/s1/_status", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let snap = &b["snapshots"][0];
    assert_eq!(snap["state"], "SUCCESS");
    assert_eq!(snap["shards_stats"]["done"], 2);
    assert!(snap["stats"]["total"]["file_count"].as_u64().unwrap() >= 3);
    assert_eq!(
        snap["indices"]["idx"]["shards"].as_object().unwrap().len(),
        2
    );
    let (_, b) = call(st, "GET", "/_snapshot/_status", None).await;
    assert_eq!(b, json!({"snapshots": []}));

    // Restore over an open index is refused; under a new name it works.
    let (s, b) = call(
        st,
        "POST",
        "/_snapshot/r/s1/_restore?wait_for_completion=true",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(b["error"]["type"], "snapshot_restore_exception");
    assert!(b["error"]["reason"].as_str().unwrap().contains(
        "cannot restore index [idx] because an open index with same name already exists"
    ));
    let (s, b) = call(st, "POST", "/_snapshot/r/s1/_restore?wait_for_completion=true",
        Some(json!({"indices": "idx", "rename_pattern": "(.+)", "rename_replacement": "restored-$1"}))).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["snapshot"]["indices"], json!(["restored-idx"]));
    let (_, b) = call(st, "GET", "/restored-idx/_doc/a%2Fb", None).await;
    assert_eq!(b["_source"], json!({"a": 2}));
    let (_, b) = call(st, "GET", "/restored-idx/_count", None).await;
    assert_eq!(b["count"], 2);

    // Close, change, restore over the closed index: contents come back.
    assert_eq!(
        call(st, "POST", "/idx/_close", None).await.0,
        StatusCode::OK
    );
    let (s, b) = call(st, "GET", "/idx/_doc/1", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["error"]["type"], "index_closed_exception");
    let (s, _) = call(
        st,
        "POST",
        "/_snapshot/r/s1/_restore?wait_for_completion=true",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (_, b) = call(st, "GET", "/idx/_doc/1", None).await;
    assert_eq!(b["_source"], json!({"a": 3}));

    // Clone, cat, delete with wildcard.
    let (s, b) = call(
        st,
        "PUT",
        "/_snapshot/r/s1/_clone/s1-copy",
        Some(json!({"indices": "*"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = call_raw(st, "GET", "/_cat/snapshots/r?v&h=id,status", None).await;
    assert_eq!(s, StatusCode::OK);
    let text = String::from_utf8(b).unwrap();
    assert!(text.starts_with("id "), "{text}");
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["s1-copy", "SUCCESS"]),
        "{text}"
    );
    let (_, b) = call(
        st,
        "GET",
        "/_cat/indices?format=json&h=index,status&s=index",
        None,
    )
    .await;
    assert_eq!(b[0], json!({"index": "idx", "status": "open"}));
    let (_, b) = call_raw(st, "GET", "/_cat/repositories", None).await;
    assert_eq!(String::from_utf8(b).unwrap(), "r fs\n");
    let (s, b) = call(st, "DELETE", "/_snapshot/r/s1*,nightly-*", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, b) = call(st, "GET", "/_snapshot/r/_all", None).await;
    assert_eq!(b["total"], 0);
    let (s, b) = call(st, "DELETE", "/_snapshot/r/gone", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");

    let (s, b) = call(st, "GET", "/_cluster/health", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["status"], "green");
}

#[tokio::test]
async fn state_survives_a_restart_and_running_snapshots_become_failed() {
    let h = harness();
    let st = &h.state;
    call(
        st,
        "PUT",
        "/_snapshot/r",
        Some(json!({"type": "fs", "settings": {"location": "r"}})),
    )
    .await;
    call(st, "PUT", "/i", None).await;
    let (s, _) = call(st, "PUT", "/_snapshot/r/s1?wait_for_completion=true", None).await;
    assert_eq!(s, StatusCode::OK);
    // Simulate a crash mid-snapshot by persisting a running snapshot.
    {
        let mut repos = st.repos();
        let rt = repos.get_mut("r").unwrap();
        let mut running = rt.record.failed.first().cloned().unwrap_or_else(|| {
            coffer_repository::model::SnapshotSummary {
                name: "s2".into(),
                uuid: "u2".into(),
                state: coffer_repository::model::SnapshotState::InProgress,
                indices: vec!["i".into()],
                start_time_ms: 1,
                end_time_ms: 0,
                shards: coffer_repository::model::ShardCounts::default(),
                failures: vec![],
                reason: None,
                include_global_state: true,
                metadata: None,
                version: "x".into(),
                stats: coffer_repository::model::SnapshotStats::default(),
            }
        });
        running.name = "s2".into();
        rt.record.running = Some(running);
    }
    let records: BTreeMap<String, state::RepoRecord> = st
        .repos()
        .iter()
        .map(|(k, v)| (k.clone(), v.record.clone()))
        .collect();
    persist::save_json(&st.config().data_path.join("repositories.json"), &records).unwrap();
    let reopened = AppState::open(
        st.config().clone(),
        ClientRegistry::new(
            &BTreeMap::new(),
            &BTreeMap::new(),
            &Environment::empty(),
            ClientOptions::default(),
        )
        .unwrap(),
        Arc::clone(&st.0.secure_loader),
        Arc::new(SystemClock),
    )
    .unwrap();
    let (_, b) = call(&reopened, "GET", "/_snapshot/r/_all", None).await;
    let states: Vec<(&str, &str)> = b["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["snapshot"].as_str().unwrap(),
                s["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(states.contains(&("s1", "SUCCESS")), "{b}");
    assert!(states.contains(&("s2", "FAILED")), "{b}");
    let (_, b) = call(&reopened, "GET", "/i", None).await;
    assert!(b["i"].is_object());
}

#[tokio::test]
async fn foreign_writer_marks_the_repository_corrupted() {
    let h = harness();
    let st = &h.state;
    call(
        st,
        "PUT",
        "/_snapshot/a",
        Some(json!({"type": "fs", "settings": {"location": "shared"}})),
    )
    .await;
    call(
        st,
        "PUT",
        "/_snapshot/b",
        Some(json!({"type": "fs", "settings": {"location": "shared"}})),
    )
    .await;
    call(st, "PUT", "/i", None).await;
    assert_eq!(
        call(st, "PUT", "/_snapshot/a/s1?wait_for_completion=true", None)
            .await
            .0,
        StatusCode::OK
    );
    // `b` still expects an empty repository: another writer was there.
    let (s, b) = call(st, "PUT", "/_snapshot/b/s2?wait_for_completion=true", None).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{b}");
    assert_eq!(b["error"]["type"], "repository_exception");
    assert!(
        b["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("concurrent modification"),
        "{b}"
    );
    let (_, b) = call(st, "GET", "/_cluster/health", None).await;
    assert_eq!(b["status"], "red");
    let (s, b) = call(st, "PUT", "/_snapshot/b/s3?wait_for_completion=true", None).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        b["error"]["reason"].as_str().unwrap().contains("corrupted"),
        "{b}"
    );
    // Re-registering clears it.
    call(
        st,
        "PUT",
        "/_snapshot/b",
        Some(json!({"type": "fs", "settings": {"location": "shared"}})),
    )
    .await;
    let (_, b) = call(st, "GET", "/_cluster/health", None).await;
    assert_eq!(b["status"], "green");
}

#[tokio::test]
async fn reload_secure_settings_reports_wrong_passwords_in_the_node_entry() {
    let h = harness();
    let (s, b) = call(
        &h.state,
        "POST",
        "/_nodes/reload_secure_settings",
        Some(json!({"secure_settings_password": "wrong"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        b["nodes"]["id1"]["reload_exception"]["type"],
        "security_exception"
    );
    assert_eq!(
        b["nodes"]["id1"]["reload_exception"]["reason"],
        "Provided keystore password was incorrect"
    );
    let (s, b) = call(
        &h.state,
        "POST",
        "/_nodes/_local/reload_secure_settings",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(b["nodes"]["id1"].get("reload_exception").is_none(), "{b}");
    assert_eq!(b["_nodes"]["total"], 1);
}

#[tokio::test]
async fn concurrent_snapshot_is_refused() {
    let h = harness();
    let st = &h.state;
    call(
        st,
        "PUT",
        "/_snapshot/r",
        Some(json!({"type": "fs", "settings": {"location": "r"}})),
    )
    .await;
    let guard = st.begin("r", "x", "snapshot").unwrap();
    let (s, b) = call(st, "PUT", "/_snapshot/r/s1", None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        b["error"]["type"],
        "concurrent_snapshot_execution_exception"
    );
    assert_eq!(
        b["error"]["reason"],
        "[r:s1] cannot snapshot while a snapshot is in progress"
    );
    drop(guard);
    let (s, _) = call(st, "PUT", "/_snapshot/r/s1?wait_for_completion=true", None).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn smaller_endpoints_and_errors() {
    let h = harness();
    let st = &h.state;
    let (s, b) = call(st, "PATCH", "/_snapshot/r", None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{b}");
    let (s, b) = call(st, "GET", "/_capabilities?method=DELETE&path=/_snapshot/%7Brepository%7D/%7Bsnapshot%7D&parameters=wait_for_completion", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b, json!({"supported": true}));
    let (s, b) = call(
        st,
        "GET",
        "/_cluster/health?wait_for_status=yellow&filter_path=-active*,-unassigned*",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["status"], "green");
    assert!(b.get("active_shards").is_none());
    assert!(b.get("cluster_name").is_some());
    let (s, b) = call_raw(st, "GET", "/_cat/repositories?help", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(String::from_utf8(b).unwrap().starts_with("id   | | "));
    let (s, _) = call(st, "GET", "/_cat/repositories?h=nope", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Documents: missing index, closed, create-only conflict, delete, HEAD.
    let (s, b) = call(st, "GET", "/nope/_doc/1", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(b["error"]["reason"], "no such index [nope]");
    call(
        st,
        "PUT",
        "/d",
        Some(json!({"settings": {"index": {"number_of_shards": "1"}}})),
    )
    .await;
    assert_eq!(
        call(st, "PUT", "/d/_doc/x?op_type=create", Some(json!({"v": 1})))
            .await
            .0,
        StatusCode::CREATED
    );
    let (s, b) = call(st, "PUT", "/d/_doc/x?op_type=create", Some(json!({"v": 2}))).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let (s, b) = call(st, "POST", "/d/_doc", Some(json!({"v": 3}))).await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(b["_id"].as_str().is_some());
    let (s, _) = call(st, "PUT", "/d/_doc/y", Some(json!([1]))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        call(st, "DELETE", "/d/_doc/x", None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(st, "DELETE", "/d/_doc/x", None).await.0,
        StatusCode::NOT_FOUND
    );
    let (s, b) = call(st, "GET", "/d/_doc/x", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(b["found"], false);
    assert_eq!(call(st, "HEAD", "/d", None).await.0, StatusCode::OK);
    assert_eq!(call(st, "HEAD", "/zz", None).await.0, StatusCode::NOT_FOUND);
    let (_, b) = call(
        st,
        "GET",
        "/_cat/indices?format=json&h=index,docs.count",
        None,
    )
    .await;
    assert_eq!(b, json!([{"index": "d", "docs.count": "1"}]));
    assert_eq!(call(st, "DELETE", "/d", None).await.0, StatusCode::OK);
    assert!(!st.config().data_path.join("indices/d").exists());
    let (s, _) = call(st, "GET", "/d", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Restore and clone errors.
    call(
        st,
        "PUT",
        "/_snapshot/r",
        Some(json!({"type": "fs", "settings": {"location": "r"}})),
    )
    .await;
    let (s, b) = call(st, "POST", "/_snapshot/r/none/_restore", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    let (s, b) = call(
        st,
        "PUT",
        "/_snapshot/r/none/_clone/x",
        Some(json!({"indices": "*"})),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    let (s, b) = call(st, "PUT", "/_snapshot/r/none/_clone/x", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, b) = call(st, "GET", "/_snapshot/r/_all?sort=bogus", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, b) = call(st, "GET", "/_snapshot/r/_all?verbose=maybe", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    // Readonly registrations refuse writes.
    call(
        st,
        "PUT",
        "/_snapshot/ro",
        Some(json!({"type": "fs", "settings": {"location": "r", "readonly": true}})),
    )
    .await;
    let (s, b) = call(st, "PUT", "/_snapshot/ro/s?wait_for_completion=true", None).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        b["error"]["reason"].as_str().unwrap().contains("readonly"),
        "{b}"
    );
}

fn reopen(st: &AppState, attached: Vec<AttachedIndex>) -> AppState {
    let mut config = st.config().clone();
    config.attached = attached;
    AppState::open(
        config,
        ClientRegistry::new(
            &BTreeMap::new(),
            &BTreeMap::new(),
            &Environment::empty(),
            ClientOptions::default(),
        )
        .unwrap(),
        Arc::clone(&st.0.secure_loader),
        Arc::new(SystemClock),
    )
    .unwrap()
}

#[tokio::test]
async fn attached_indices_keep_their_state_and_are_protected() {
    let h = harness();
    let dir = h.dir.path().join("attached");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/f.txt"), b"payload").unwrap();
    let attached = vec![AttachedIndex {
        name: "att".into(),
        path: dir.clone(),
        number_of_shards: 2,
    }];
    let st = reopen(&h.state, attached.clone());
    let (_, b) = call(&st, "GET", "/att", None).await;
    assert_eq!(b["att"]["settings"]["index"]["number_of_shards"], "2");
    assert_eq!(b["att"]["settings"]["index"]["coffer"]["managed"], "false");
    let (s, _) = call(&st, "DELETE", "/att", None).await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "an open attached index is not deleted"
    );
    let (s, _) = call(&st, "PUT", "/att/_doc/1", Some(json!({"a": 1}))).await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "no documents in attached indices"
    );
    call(
        &st,
        "PUT",
        "/_snapshot/r",
        Some(json!({"type": "fs", "settings": {"location": "r"}})),
    )
    .await;
    let (s, b) = call(
        &st,
        "PUT",
        "/_snapshot/r/s?wait_for_completion=true",
        Some(json!({"indices": "att"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["snapshot"]["shards"]["total"], 2);
    call(&st, "POST", "/att/_close", None).await;
    std::fs::write(dir.join("sub/f.txt"), b"changed").unwrap();
    let st = reopen(&st, attached);
    let (_, b) = call(&st, "GET", "/att", None).await;
    assert_eq!(b["att"]["settings"]["index"]["coffer"]["state"], "close");
    let (s, b) = call(
        &st,
        "POST",
        "/_snapshot/r/s/_restore?wait_for_completion=true",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(std::fs::read(dir.join("sub/f.txt")).unwrap(), b"payload");
    let (_, b) = call(&st, "GET", "/att", None).await;
    assert_eq!(b["att"]["settings"]["index"]["coffer"]["state"], "open");
    // Without the configuration, the index is gone from the catalog.
    let st = reopen(&st, Vec::new());
    let (s, _) = call(&st, "GET", "/att", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_failed_snapshot_is_answered_as_its_snapshot_info_with_500() {
    let h = harness();
    let st = &h.state;
    fs_repository_and_index(st, "i").await;
    // The repository's `indices` folder becomes a file: every shard write fails.
    let indices = h.repo_root.join("r").join("indices");
    let _ = std::fs::remove_dir_all(&indices);
    std::fs::write(&indices, b"not a directory").unwrap();
    let (s, b) = call(st, "PUT", "/_snapshot/r/s1?wait_for_completion=true", None).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{b}");
    assert_eq!(b["snapshot"]["snapshot"], "s1", "{b}");
    assert_eq!(b["snapshot"]["state"], "FAILED", "{b}");
    assert!(b["snapshot"]["reason"].is_string(), "{b}");
}

#[tokio::test]
async fn deleting_a_snapshot_keeps_the_blobs_other_snapshots_share() {
    let h = harness();
    let st = &h.state;
    // Small files: a pack's header outweighs its chunks, the case that once sent a fully
    // live pack to repacking, which rewrote the same content-named blob and deleted it.
    fs_repository_and_index(st, "i").await;
    for snap in ["s1", "s2"] {
        let (s, b) = call(
            st,
            "PUT",
            &format!("/_snapshot/r/{snap}?wait_for_completion=true"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    let (s, _) = call(
        st,
        "PUT",
        "/_snapshot/r/s1/_clone/c1",
        Some(json!({"indices": "i"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = call(st, "DELETE", "/_snapshot/r/s2,c1", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = call(
        st,
        "POST",
        "/_snapshot/r/s1/_restore?wait_for_completion=true",
        Some(json!({"rename_pattern": "i", "rename_replacement": "back"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = call(st, "GET", "/back/_doc/1", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["_source"], json!({"a": 1}));
}

mod hostile;
