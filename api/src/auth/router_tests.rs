//! The router with authentication on, in process (`oneshot`): 401, 403, 429, the roles,
//! API keys, `_security/_authenticate` and reloads.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::TimeDelta;
use coffer_client::{ClientOptions, ClientRegistry, Environment, SecureValue};
use coffer_repository::clock::{Clock as _, ManualClock};
use http_body_util::BodyExt;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tower::ServiceExt;
use zeroize::Zeroizing;

use super::store::{API_KEY_ID_BYTES, API_KEY_SECRET_BYTES, ApiKeyRandom, SALT_LEN};
use super::*;
use crate::{AppConfig, AppState, NodeInfo, SecureLoader, router};

type Entries = Arc<Mutex<BTreeMap<String, String>>>;

struct Harness {
    dir: tempfile::TempDir,
    state: AppState,
    clock: ManualClock,
    entries: Entries,
    monitor_key: String,
    manage_key: String,
}

fn user(name: &str, role: Role, password: &str, salt: u8) -> UserRecord {
    UserRecord::new(
        name,
        role,
        &SecretString::from(password.to_owned()),
        &[salt; SALT_LEN],
    )
    .unwrap()
}

fn new_key(
    name: &str,
    role: Role,
    clock: &ManualClock,
    expires: Option<TimeDelta>,
    seed: u8,
) -> store::NewApiKey {
    ApiKeyRecord::create(
        name,
        role,
        clock.now(),
        expires,
        &ApiKeyRandom {
            id: [seed; API_KEY_ID_BYTES],
            key: Zeroizing::new([seed ^ 0xff; API_KEY_SECRET_BYTES]),
            salt: [seed; SALT_LEN],
        },
    )
    .unwrap()
}

fn store_of(entries: &BTreeMap<String, String>) -> CredentialStore {
    CredentialStore::from_entries(entries.iter().map(|(k, v)| (k.as_str(), Some(v.as_str()))))
        .unwrap()
}

/// Users `alice` (manage, password `alice-password`) and `bob` (monitor, `bob-password`),
/// a monitor API key and a manage API key; authentication on; a manual clock.
fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let repo_root = dir.path().join("repos");
    std::fs::create_dir_all(&repo_root).unwrap();
    let clock = ManualClock::new(chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap());
    let mut map = BTreeMap::new();
    for u in [
        user("alice", Role::Manage, "alice-password", 1),
        user("bob", Role::Monitor, "bob-password", 2),
    ] {
        map.insert(u.entry_name(), u.entry_value().to_string());
    }
    let monitor = new_key("reader", Role::Monitor, &clock, None, 3);
    let manage = new_key("ci", Role::Manage, &clock, Some(TimeDelta::days(1)), 4);
    for k in [&monitor, &manage] {
        map.insert(k.record.entry_name(), k.record.entry_value().to_string());
    }
    let entries: Entries = Arc::new(Mutex::new(map));
    let for_loader = Arc::clone(&entries);
    let loader: SecureLoader = Arc::new(move |_pw: Option<&SecretString>| {
        Ok(for_loader
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), SecureValue::Text(SecretString::from(v.clone()))))
            .collect())
    });
    let config = AppConfig {
        node: NodeInfo {
            name: "n1".into(),
            node_id: "id1".into(),
            cluster_name: "coffer".into(),
            cluster_uuid: "uuid1".into(),
        },
        data_path: dir.path().join("data"),
        repo_paths: vec![repo_root],
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
    let state = AppState::open(config, clients, loader, Arc::new(clock.clone())).unwrap();
    state.security().install(
        AuthPolicy {
            setting: None,
            loopback_only: false,
        },
        store_of(&entries.lock().unwrap()),
    );
    Harness {
        dir,
        state,
        clock,
        entries,
        monitor_key: monitor.encoded().expose_secret().to_owned(),
        manage_key: manage.encoded().expose_secret().to_owned(),
    }
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

fn api_key(encoded: &str) -> String {
    format!("ApiKey {encoded}")
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

async fn send(
    h: &Harness,
    method: &str,
    uri: &str,
    auth: Option<&str>,
    peer: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let mut req = req
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    if let Some(p) = peer {
        let addr: SocketAddr = p.parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(addr));
    }
    let resp = router(h.state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Answer {
        status,
        headers,
        body,
    }
}

async fn get(h: &Harness, uri: &str, auth: Option<&str>) -> Answer {
    send(h, "GET", uri, auth, None, None).await
}

fn challenges(a: &Answer) -> Vec<String> {
    a.headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn no_credentials_is_401_with_elasticsearch_challenges() {
    let h = harness();
    let a = get(&h, "/_snapshot?pretty", None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.body["status"], 401);
    assert_eq!(a.body["error"]["type"], "security_exception");
    assert_eq!(
        a.body["error"]["reason"],
        "missing authentication credentials for REST request [/_snapshot?pretty]"
    );
    assert_eq!(
        a.body["error"]["root_cause"][0]["reason"],
        a.body["error"]["reason"]
    );
    let expected = json!([
        "Basic realm=\"security\" charset=\"UTF-8\"",
        "Bearer realm=\"security\"",
        "ApiKey"
    ]);
    assert_eq!(a.body["error"]["header"]["WWW-Authenticate"], expected);
    assert_eq!(json!(challenges(&a)), expected);
    assert_eq!(a.headers["x-elastic-product"], "Elasticsearch");
    // `error_trace` re-renders the body and keeps the challenges.
    let a = get(&h, "/_snapshot?error_trace=true", None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.body["error"]["stack_trace"].is_string(), "{}", a.body);
    assert_eq!(json!(challenges(&a)), expected);
    // Every endpoint is protected, including the root.
    assert_eq!(get(&h, "/", None).await.status, StatusCode::UNAUTHORIZED);
    // A scheme coffer does not know counts as no credentials.
    let a = get(&h, "/", Some("Negotiate abc")).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(
        a.body["error"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("missing")
    );
}

#[tokio::test]
async fn wrong_or_unknown_user_is_401() {
    let h = harness();
    for auth in [
        basic("alice", "wrong-password"),
        basic("mallory", "alice-password"),
    ] {
        let a = get(&h, "/_cat/snapshots", Some(&auth)).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
        let user = if auth == basic("alice", "wrong-password") {
            "alice"
        } else {
            "mallory"
        };
        assert_eq!(
            a.body["error"]["reason"],
            format!("unable to authenticate user [{user}] for REST request [/_cat/snapshots]")
        );
        assert_eq!(challenges(&a).len(), 3);
        assert!(!a.body.to_string().contains("password"), "{}", a.body);
    }
    let a = get(&h, "/", Some("Basic %%%")).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn users_and_roles() {
    let h = harness();
    let alice = basic("alice", "alice-password");
    let bob = basic("bob", "bob-password");
    std::fs::create_dir_all(h.dir.path().join("repos/r")).unwrap();
    // manage may write.
    let a = send(
        &h,
        "PUT",
        "/_snapshot/r",
        Some(&alice),
        None,
        Some(json!({"type": "fs", "settings": {"location": "r"}})),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = send(&h, "PUT", "/logs", Some(&alice), None, None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = send(
        &h,
        "PUT",
        "/_snapshot/r/s1?wait_for_completion=true",
        Some(&alice),
        None,
        Some(json!({"indices": "logs"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // monitor reads everything.
    for uri in [
        "/",
        "/_snapshot",
        "/_snapshot/r",
        "/_snapshot/r/s1",
        "/_snapshot/r/s1/_status",
        "/_cat/snapshots/r",
        "/_cat/repositories",
        "/_cat/indices",
        "/_cluster/health",
        "/logs",
        "/_count",
    ] {
        let a = get(&h, uri, Some(&bob)).await;
        assert_eq!(a.status, StatusCode::OK, "{uri}: {}", a.body);
    }
    let a = send(&h, "POST", "/logs/_count", Some(&bob), None, None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // …and changes nothing.
    for (method, uri, action) in [
        ("PUT", "/_snapshot/r2", "cluster:admin/repository/put"),
        ("DELETE", "/_snapshot/r", "cluster:admin/repository/delete"),
        ("PUT", "/_snapshot/r/s2", "cluster:admin/snapshot/create"),
        ("DELETE", "/_snapshot/r/s1", "cluster:admin/snapshot/delete"),
        (
            "POST",
            "/_snapshot/r/s1/_restore",
            "cluster:admin/snapshot/restore",
        ),
        (
            "PUT",
            "/_snapshot/r/s1/_clone/s3",
            "cluster:admin/snapshot/clone",
        ),
        (
            "POST",
            "/_nodes/reload_secure_settings",
            "cluster:admin/nodes/reload_secure_settings",
        ),
    ] {
        let a = send(&h, method, uri, Some(&bob), None, Some(json!({}))).await;
        assert_eq!(
            a.status,
            StatusCode::FORBIDDEN,
            "{method} {uri}: {}",
            a.body
        );
        assert_eq!(a.body["error"]["type"], "security_exception");
        assert_eq!(
            a.body["error"]["reason"],
            format!(
                "action [{action}] is unauthorized for user [bob] with effective roles [monitor], this action is granted by the cluster privileges [manage]"
            )
        );
        assert!(a.headers.get("www-authenticate").is_none());
    }
    let a = send(&h, "DELETE", "/logs", Some(&bob), None, None).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(
        a.body["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("[indices:admin/delete] is unauthorized for user [bob] with effective roles [monitor] on indices [logs]")
    );
    // The snapshot is still there.
    let a = get(&h, "/_snapshot/r/s1", Some(&alice)).await;
    assert_eq!(a.body["snapshots"][0]["snapshot"], "s1", "{}", a.body);
}

#[tokio::test]
async fn api_keys_authenticate_until_invalidated_or_expired() {
    let h = harness();
    let a = get(&h, "/_snapshot", Some(&api_key(&h.monitor_key))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = send(
        &h,
        "PUT",
        "/_snapshot/x",
        Some(&api_key(&h.monitor_key)),
        None,
        Some(json!({})),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let monitor_id = STANDARD.decode(&h.monitor_key).unwrap();
    let monitor_id = String::from_utf8(monitor_id).unwrap();
    let (monitor_id, _) = monitor_id.split_once(':').unwrap();
    assert_eq!(
        a.body["error"]["reason"],
        format!(
            "action [cluster:admin/repository/put] is unauthorized for API key id [{monitor_id}] of user [reader], this action is granted by the cluster privileges [manage]"
        )
    );
    // Unknown id, wrong secret.
    let unknown = STANDARD.encode("nosuchid:whatever");
    let a = get(&h, "/", Some(&api_key(&unknown))).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        a.body["error"]["reason"],
        "unable to authenticate with provided credentials and anonymous access is not allowed for this request"
    );
    assert_eq!(
        a.body["error"]["additional_unsuccessful_credentials"],
        "API key: unable to find apikey with id nosuchid"
    );
    assert_eq!(challenges(&a).len(), 3);
    let wrong = STANDARD.encode(format!("{monitor_id}:not-the-key"));
    let a = get(&h, "/", Some(&api_key(&wrong))).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        a.body["error"]["additional_unsuccessful_credentials"],
        format!("API key: invalid credentials for API key [{monitor_id}]")
    );
    // The manage key expires after a day, even though its success is cached.
    let manage = api_key(&h.manage_key);
    assert_eq!(get(&h, "/", Some(&manage)).await.status, StatusCode::OK);
    h.clock.advance(Duration::from_secs(86_400));
    let a = get(&h, "/", Some(&manage)).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    assert_eq!(
        a.body["error"]["additional_unsuccessful_credentials"],
        "API key: api key is expired"
    );
    // Invalidating (what `coffer api-key invalidate` writes) and reloading.
    {
        let mut entries = h.entries.lock().unwrap();
        let name = format!("{}{monitor_id}", store::API_KEYS_PREFIX);
        let mut v: Value = serde_json::from_str(&entries[&name]).unwrap();
        v["invalidated"] = json!(true);
        entries.insert(name, v.to_string());
    }
    h.state.reload_credentials().unwrap();
    let a = get(&h, "/", Some(&api_key(&h.monitor_key))).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        a.body["error"]["additional_unsuccessful_credentials"],
        "API key: api key has been invalidated"
    );
}

#[tokio::test]
async fn authenticate_endpoint_says_who() {
    let h = harness();
    let a = get(
        &h,
        "/_security/_authenticate",
        Some(&basic("bob", "bob-password")),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["username"], "bob");
    assert_eq!(a.body["roles"], json!(["monitor"]));
    assert_eq!(a.body["authentication_type"], "realm");
    assert!(a.body.get("api_key").is_none());
    let a = get(
        &h,
        "/_security/_authenticate",
        Some(&api_key(&h.manage_key)),
    )
    .await;
    assert_eq!(a.body["username"], "ci");
    assert_eq!(a.body["roles"], json!(["manage"]));
    assert_eq!(a.body["authentication_type"], "api_key");
    assert_eq!(a.body["api_key"]["name"], "ci");
    assert_eq!(a.body["api_key"]["id"].as_str().unwrap().len(), 20);
    assert!(!a.body.to_string().contains(&h.manage_key));
    assert_eq!(
        get(&h, "/_security/_authenticate", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    // With authentication off, everyone is the anonymous manager.
    h.state.security().install(
        AuthPolicy {
            setting: Some(false),
            loopback_only: false,
        },
        CredentialStore::empty(),
    );
    let a = get(&h, "/_security/_authenticate", None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["authentication_type"], "anonymous");
    assert_eq!(get(&h, "/_snapshot", None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn failed_attempts_are_rate_limited_per_address_and_expire() {
    let h = harness();
    let attacker = Some("192.0.2.7:40000");
    let neighbour = Some("192.0.2.8:40000");
    let max = LimiterConfig::default().max_failures;
    for i in 0..max {
        let a = send(
            &h,
            "GET",
            "/",
            Some(&basic("alice", &format!("guess-{i}"))),
            attacker,
            None,
        )
        .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    // Over the limit: refused without checking, even the right password.
    let a = send(
        &h,
        "GET",
        "/",
        Some(&basic("alice", "alice-password")),
        attacker,
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    assert_eq!(a.body["error"]["type"], "security_exception");
    let retry: i64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let a = send(
        &h,
        "GET",
        "/?error_trace=true&pretty",
        Some(&basic("alice", "x")),
        attacker,
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(a.headers.get("retry-after").is_some());
    // Missing credentials are still a plain 401 (nothing was guessed).
    assert_eq!(
        send(&h, "GET", "/", None, attacker, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Another address is not affected.
    let a = send(
        &h,
        "GET",
        "/",
        Some(&basic("alice", "alice-password")),
        neighbour,
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    // The window passes.
    h.clock.advance(Duration::from_secs(61));
    let a = send(
        &h,
        "GET",
        "/",
        Some(&basic("alice", "alice-password")),
        attacker,
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // Without ConnectInfo (in-process callers), all requests share one bucket.
    for i in 0..max {
        send(
            &h,
            "GET",
            "/",
            Some(&basic("x", &format!("g{i}"))),
            None,
            None,
        )
        .await;
    }
    let a = send(
        &h,
        "GET",
        "/",
        Some(&basic("alice", "alice-password")),
        None,
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn reload_swaps_credentials_and_drops_cached_verifications() {
    let h = harness();
    let alice = basic("alice", "alice-password");
    assert_eq!(get(&h, "/", Some(&alice)).await.status, StatusCode::OK);
    // A new user appears, alice is removed; the reload API picks both up.
    {
        let mut entries = h.entries.lock().unwrap();
        entries.remove("coffer.security.users.alice");
        let carol = user("carol", Role::Manage, "carol-password", 9);
        entries.insert(carol.entry_name(), carol.entry_value().to_string());
    }
    let carol = basic("carol", "carol-password");
    assert_eq!(
        get(&h, "/", Some(&carol)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let a = send(
        &h,
        "POST",
        "/_nodes/reload_secure_settings",
        Some(&alice),
        None,
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(
        a.body["nodes"]["id1"].get("reload_exception").is_none(),
        "{}",
        a.body
    );
    assert_eq!(get(&h, "/", Some(&carol)).await.status, StatusCode::OK);
    // alice's earlier success was cached, but the cache went with the old snapshot.
    assert_eq!(
        get(&h, "/", Some(&alice)).await.status,
        StatusCode::UNAUTHORIZED
    );
    // A damaged entry is reported and the credentials in force stay.
    h.entries
        .lock()
        .unwrap()
        .insert("coffer.security.users.dave".into(), "not json".into());
    let a = send(
        &h,
        "POST",
        "/_nodes/reload_secure_settings",
        Some(&carol),
        None,
        None,
    )
    .await;
    let ex = &a.body["nodes"]["id1"]["reload_exception"];
    assert_eq!(ex["type"], "security_exception", "{}", a.body);
    assert!(
        ex["reason"]
            .as_str()
            .unwrap()
            .contains("[coffer.security.users.dave]")
    );
    assert!(!ex["reason"].as_str().unwrap().contains("not json"));
    assert_eq!(get(&h, "/", Some(&carol)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn loopback_without_credentials_is_open_and_credentials_turn_it_on() {
    let h = harness();
    let security = h.state.security();
    security.install(AuthPolicy::LOOPBACK_DEFAULT, CredentialStore::empty());
    assert!(!security.enabled());
    assert_eq!(get(&h, "/_snapshot", None).await.status, StatusCode::OK);
    // The first user created and reloaded turns authentication on.
    h.state.reload_credentials().unwrap();
    assert!(security.enabled());
    assert_eq!(
        get(&h, "/_snapshot", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}
