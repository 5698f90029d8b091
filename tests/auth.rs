//! Users, API keys and secure defaults with the real binary: `coffer users add`,
//! `coffer api-key create|invalidate|list`, and `coffer serve` answering Basic and ApiKey
//! credentials, refusing to start beyond loopback without credentials, and warning when
//! authentication is switched off.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use assert_cmd::cargo::cargo_bin;
use serde_json::Value;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    /// `coffer --config-dir <tmp>/config ARGS` with `stdin` fed in, no password in the
    /// environment; returns (exit code, stdout, stderr).
    fn cli(&self, args: &[&str], stdin: &str) -> (i32, String, String) {
        let mut cmd = assert_cmd::Command::cargo_bin("coffer").unwrap();
        cmd.arg("--config-dir")
            .arg(self.config())
            .args(args)
            .env_remove("COFFER_KEYSTORE_PASSWORD")
            .env_remove("COFFER_PATH_CONF")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .write_stdin(stdin)
            .timeout(Duration::from_secs(60));
        let out = cmd.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    fn serve_cmd(&self, extra: &[&str]) -> Command {
        let mut cmd = Command::new(cargo_bin("coffer"));
        cmd.arg("--config-dir")
            .arg(self.config())
            .arg("serve")
            .arg("-E")
            .arg("http.port=0")
            .arg("-E")
            .arg(format!(
                "path.data={}",
                self.dir.path().join("data").display()
            ))
            .args(extra)
            .env_remove("COFFER_KEYSTORE_PASSWORD")
            .env("COFFER_LOG", "info")
            .stdin(Stdio::null());
        cmd
    }
}

struct Server {
    child: Child,
    port: u16,
    log: Vec<String>,
    /// Kept open: a closed pipe would make the server's next log line fail.
    lines: mpsc::Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the server and waits for the line naming its port, keeping the lines before it.
fn start(cmd: &mut Command) -> Server {
    let mut child = cmd
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut server = Server {
        child,
        port: 0,
        log: Vec::new(),
        lines: rx,
    };
    while server.port == 0 {
        let line = server
            .lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("server did not report its address: {:?}", server.log));
        if let Some(rest) = line.split("listening on http://").nth(1) {
            server.port = rest.trim().rsplit(':').next().unwrap().parse().unwrap();
        }
        server.log.push(line);
    }
    server
}

fn request(
    port: u16,
    method: reqwest::Method,
    path: &str,
    auth: Option<&str>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let client = reqwest::blocking::Client::new();
    let mut req = client.request(method, format!("http://127.0.0.1:{port}{path}"));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
        headers,
    )
}

fn basic(user: &str, password: &str) -> String {
    use base64_shim::encode;
    format!("Basic {}", encode(format!("{user}:{password}").as_bytes()))
}

/// Standard base64, so the test does not depend on the implementation's encoder.
mod base64_shim {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(input: &[u8]) -> String {
        let mut out = String::new();
        for chunk in input.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

fn keystore_bytes(env: &Env) -> Vec<u8> {
    std::fs::read(env.config().join("coffer.keystore")).unwrap()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn users_and_api_keys_authenticate_against_a_running_server() {
    let env = Env::new();
    let (code, _, err) = env.cli(
        &["users", "add", "alice", "--role", "manage", "--stdin"],
        "alice-secret-pw\n",
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = env.cli(
        &["users", "add", "bob", "--role", "monitor", "--stdin"],
        "bob-secret-pw\n",
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = env.cli(&["users", "list"], "");
    assert_eq!(code, 0);
    assert_eq!(out, "alice          : manage\nbob            : monitor\n");
    assert!(!contains(&keystore_bytes(&env), "alice-secret-pw"));
    // A second add of the same name is refused; --force replaces.
    let (code, _, err) = env.cli(
        &["users", "add", "bob", "--role", "monitor", "--stdin"],
        "another-pw\n",
    );
    assert_eq!(code, 65, "{err}");
    assert!(err.contains("User [bob] already exists"), "{err}");

    let (code, created, err) = env.cli(
        &[
            "api-key",
            "create",
            "--name",
            "nightly",
            "--role",
            "manage",
            "--expiration",
            "30d",
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let created: Value = serde_json::from_str(created.trim()).unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let key = created["api_key"].as_str().unwrap().to_owned();
    let encoded = created["encoded"].as_str().unwrap().to_owned();
    assert_eq!(
        encoded,
        base64_shim::encode(format!("{id}:{key}").as_bytes())
    );
    assert_eq!(created["name"], "nightly");
    assert!(created["expiration"].as_i64().is_some());
    let (code, listed, _) = env.cli(&["api-key", "list"], "");
    assert_eq!(code, 0);
    assert!(listed.contains(&id) && !listed.contains(&key), "{listed}");
    assert!(!contains(&keystore_bytes(&env), &key));

    // Loopback, but users exist: authentication is on.
    let server = start(&mut env.serve_cmd(&[]));
    assert!(
        server
            .log
            .iter()
            .any(|l| l.contains("authentication is on")),
        "{:?}",
        server.log
    );
    let port = server.port;
    let (status, body, headers) = request(port, reqwest::Method::GET, "/_snapshot", None);
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        body["error"]["reason"],
        "missing authentication credentials for REST request [/_snapshot]"
    );
    assert_eq!(headers.get_all("www-authenticate").iter().count(), 3);
    let alice = basic("alice", "alice-secret-pw");
    let (status, body, _) = request(
        port,
        reqwest::Method::GET,
        "/_security/_authenticate",
        Some(&alice),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["username"], "alice");
    assert_eq!(body["roles"][0], "manage");
    let (status, body, _) = request(
        port,
        reqwest::Method::GET,
        "/",
        Some(&basic("alice", "wrong-password")),
    );
    assert_eq!(status, 401);
    assert_eq!(
        body["error"]["reason"],
        "unable to authenticate user [alice] for REST request [/]"
    );
    // bob reads, but may not register a repository.
    let bob = basic("bob", "bob-secret-pw");
    assert_eq!(
        request(port, reqwest::Method::GET, "/_cat/snapshots", Some(&bob)).0,
        200
    );
    let (status, body, _) = request(port, reqwest::Method::PUT, "/_snapshot/r", Some(&bob));
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("action [cluster:admin/repository/put] is unauthorized for user [bob]")
    );

    // The API key works as `Authorization: ApiKey <encoded>`.
    let api = format!("ApiKey {encoded}");
    let (status, body, _) = request(
        port,
        reqwest::Method::GET,
        "/_security/_authenticate",
        Some(&api),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["authentication_type"], "api_key");
    assert_eq!(body["api_key"]["id"], id.as_str());

    // Invalidated with the CLI, then reloaded: refused.
    let (code, out, err) = env.cli(&["api-key", "invalidate", &id], "");
    assert_eq!(code, 0, "{err}");
    let out: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(out["invalidated_api_keys"][0], id.as_str());
    assert_eq!(
        request(port, reqwest::Method::GET, "/", Some(&api)).0,
        200,
        "cached until reload"
    );
    let (status, body, _) = request(
        port,
        reqwest::Method::POST,
        "/_nodes/reload_secure_settings",
        Some(&alice),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body, _) = request(port, reqwest::Method::GET, "/", Some(&api));
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        body["error"]["additional_unsuccessful_credentials"],
        "API key: api key has been invalidated"
    );
    drop(server);
}

#[test]
fn beyond_loopback_without_credentials_refuses_to_start() {
    let env = Env::new();
    let out = env
        .serve_cmd(&["-E", "http.host=0.0.0.0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("coffer users add <name> --role manage"),
        "{stderr}"
    );
    assert!(!stderr.contains("listening"), "{stderr}");
}

#[test]
fn explicit_opt_out_warns_and_loopback_default_is_open() {
    let env = Env::new();
    let server = start(&mut env.serve_cmd(&["-E", "http.auth.enabled=false"]));
    assert!(
        server
            .log
            .iter()
            .any(|l| l.contains("WARN") && l.contains("authentication is DISABLED")),
        "{:?}",
        server.log
    );
    assert_eq!(request(server.port, reqwest::Method::GET, "/", None).0, 200);
    drop(server);

    // Loopback and no credentials: off, and said so at info level.
    let server = start(&mut env.serve_cmd(&[]));
    assert!(
        server
            .log
            .iter()
            .any(|l| l.contains("INFO") && l.contains("authentication is off")),
        "{:?}",
        server.log
    );
    assert!(!server.log.iter().any(|l| l.contains("DISABLED")));
    let (status, body, _) = request(
        server.port,
        reqwest::Method::GET,
        "/_security/_authenticate",
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(body["authentication_type"], "anonymous");
}

#[test]
fn cli_refuses_bad_input_with_keystore_style_exit_codes() {
    let env = Env::new();
    let (code, _, err) = env.cli(
        &["users", "add", "_reserved", "--role", "manage", "--stdin"],
        "password1\n",
    );
    assert_eq!(code, 65, "{err}");
    assert!(err.contains("Invalid username [_reserved]"), "{err}");
    let (code, _, err) = env.cli(
        &["users", "add", "carol", "--role", "root", "--stdin"],
        "password1\n",
    );
    assert_eq!(code, 64, "{err}");
    let (code, _, err) = env.cli(
        &["users", "add", "carol", "--role", "manage", "--stdin"],
        "short\n",
    );
    assert_eq!(code, 65, "{err}");
    assert!(err.contains("at least [6]"), "{err}");
    // No terminal and no --stdin: fails at once instead of waiting for a prompt.
    let (code, _, err) = env.cli(&["users", "add", "carol", "--role", "manage"], "");
    assert_eq!(code, 65, "{err}");
    assert!(err.contains("--stdin"), "{err}");
    let (code, _, err) = env.cli(&["users", "remove", "nobody"], "");
    assert_ne!(code, 0, "{err}");
    let (code, _, err) = env.cli(
        &[
            "api-key",
            "create",
            "--name",
            "k",
            "--role",
            "manage",
            "--expiration",
            "soon",
        ],
        "",
    );
    assert_eq!(code, 65, "{err}");
    let (code, _, err) = env.cli(&["api-key", "invalidate", "nope"], "");
    assert_ne!(code, 0, "{err}");
    // A password-protected keystore needs its password, as `coffer keystore` does.
    let mut cmd = assert_cmd::Command::cargo_bin("coffer").unwrap();
    cmd.arg("--config-dir")
        .arg(env.config())
        .args(["keystore", "create", "-p"])
        .env("COFFER_KEYSTORE_PASSWORD", "ks-password")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .timeout(Duration::from_secs(60))
        .assert()
        .success();
    let (code, _, err) = env.cli(
        &["users", "add", "carol", "--role", "manage", "--stdin"],
        "password1\n",
    );
    assert_eq!(code, 65, "{err}");
    assert!(err.contains("COFFER_KEYSTORE_PASSWORD"), "{err}");
    let mut cmd = assert_cmd::Command::cargo_bin("coffer").unwrap();
    cmd.arg("--config-dir")
        .arg(env.config())
        .args(["users", "add", "carol", "--role", "manage", "--stdin"])
        .env("COFFER_KEYSTORE_PASSWORD", "ks-password")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .write_stdin("password1\n")
        .timeout(Duration::from_secs(60))
        .assert()
        .success();
}

#[test]
fn sighup_reloads_users_and_api_keys() {
    let env = Env::new();
    let (code, _, err) = env.cli(
        &["users", "add", "alice", "--role", "manage", "--stdin"],
        "alice-secret-pw\n",
    );
    assert_eq!(code, 0, "{err}");
    let server = start(&mut env.serve_cmd(&[]));
    let carol = basic("carol", "carol-secret-pw");
    assert_eq!(
        request(server.port, reqwest::Method::GET, "/", Some(&carol)).0,
        401
    );
    let (code, _, err) = env.cli(
        &["users", "add", "carol", "--role", "monitor", "--stdin"],
        "carol-secret-pw\n",
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = env.cli(&["users", "remove", "alice"], "");
    assert_eq!(code, 0, "{err}");
    assert!(
        Command::new("kill")
            .args(["-HUP", &server.child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while request(server.port, reqwest::Method::GET, "/", Some(&carol)).0 != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "SIGHUP did not reload the users"
        );
        // Test code: polling a real process needs a real pause.
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(100));
    }
    let alice = basic("alice", "alice-secret-pw");
    assert_eq!(
        request(server.port, reqwest::Method::GET, "/", Some(&alice)).0,
        401
    );
}
