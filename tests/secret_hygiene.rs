//! Secret hygiene, end to end: the real binary, logging at `trace`, drives an S3 repository
//! on the in-process fake S3 with an access key, a secret key and a session token from a
//! password-protected keystore. The scenario goes through the failure paths that are most
//! tempting to make verbose (a wrong secret key answered `SignatureDoesNotMatch`, a wrong
//! keystore password on `reload_secure_settings` and at start, repository settings carrying
//! keys) and the whole snapshot life (verify, snapshot, status, get, cat, restore, delete,
//! cleanup). Every byte the processes print, every HTTP answer (status line, headers and
//! body), every file coffer wrote under `path.data` and every object it stored in the bucket
//! is then searched for each secret, raw, in base64 (three alignments, both alphabets) and
//! in hex. The failure message names the artifact, the secret and the encoding, never the
//! secret itself.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use assert_cmd::cargo::cargo_bin;
use coffer_testfixtures::dataset;
use coffer_testfixtures::fake_s3::{Credential, FakeS3, FakeS3Config};
use secrecy::SecretString;
use serde_json::{Value, json};

// Values chosen to be unique in any output: none is a substring of anything coffer prints
// on its own, so a hit is a leak.
const ACCESS_KEY: &str = "GKhygieneAccessKey7Q2Z9W";
const SECRET_KEY: &str = "hyg/SecretKey+Zx81Lq0pW3vB6nM2cR4tY7uI9oP1aS5d";
const WRONG_SECRET_KEY: &str = "hygWrongSecretKey0Kd83nQm2Lx9vB7cZ4wE1rT6yU5i";
const SESSION_TOKEN: &str = "hygSessionToken//AbCdEf0123456789+zzYyXxWw==";
const KEYSTORE_PASSWORD: &str = "hyg keystore passphrase 4242";
const WRONG_KEYSTORE_PASSWORD: &str = "hyg not the passphrase 4343";
const SETTINGS_ACCESS_KEY: &str = "hygSettingsAccessKey3141";
const SETTINGS_SECRET_KEY: &str = "hygSettingsSecretKey2718281828";
const SETTINGS_SESSION_TOKEN: &str = "hygSettingsSessionToken1618";
const ADMIN_PASSWORD: &str = "hygAdminPassword!Manage7731";
const WATCHER_PASSWORD: &str = "hygWatcherPassword#Monitor5519";
const WRONG_USER_PASSWORD: &str = "hygWrongUserPassword%Guess3307";
const WRONG_API_KEY: &str = "hygWrongApiKeyValue0000Zz9Yy8Xx7Ww6Vv5";

const SECRETS: &[(&str, &str)] = &[
    ("the S3 access key", ACCESS_KEY),
    ("the S3 secret key", SECRET_KEY),
    ("the wrong S3 secret key", WRONG_SECRET_KEY),
    ("the S3 session token", SESSION_TOKEN),
    ("the keystore password", KEYSTORE_PASSWORD),
    ("the wrong keystore password", WRONG_KEYSTORE_PASSWORD),
    ("the access key in repository settings", SETTINGS_ACCESS_KEY),
    ("the secret key in repository settings", SETTINGS_SECRET_KEY),
    (
        "the session token in repository settings",
        SETTINGS_SESSION_TOKEN,
    ),
    ("the manage user's password", ADMIN_PASSWORD),
    ("the monitor user's password", WATCHER_PASSWORD),
    ("a wrong user password", WRONG_USER_PASSWORD),
    ("a wrong API key", WRONG_API_KEY),
];

const BUCKET: &str = "hygiene-bucket";

/// Polling and settling need real waits; test code may use the sleep library code injects.
#[allow(clippy::disallowed_methods)]
fn pause(d: Duration) {
    std::thread::sleep(d);
}

// ------------------------------------------------------------------ searching for leaks

fn base64(bytes: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The forms in which a secret could appear: raw, hex (both cases), and base64 in both
/// alphabets at each of the three alignments it can have inside a longer encoded text (only
/// the characters that depend on the secret's bytes alone, so a match is certain).
fn encodings(secret: &str) -> Vec<Artifact> {
    let raw = secret.as_bytes();
    let hex: String = raw.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    });
    let mut out = vec![
        ("raw".to_owned(), raw.to_vec()),
        ("hex".to_owned(), hex.clone().into_bytes()),
        ("HEX".to_owned(), hex.to_uppercase().into_bytes()),
    ];
    for (name, alphabet) in [("base64", STANDARD), ("base64url", URL_SAFE)] {
        for shift in 0..3 {
            let mut shifted = vec![0u8; shift];
            shifted.extend_from_slice(raw);
            let enc = base64(&shifted, alphabet);
            // Drop the group holding the padding bytes and the last, partial group.
            let start = if shift == 0 { 0 } else { 4 };
            let end = enc.len() - 4;
            out.push((
                format!("{name} (alignment {shift})"),
                enc.as_bytes()[start..end].to_vec(),
            ));
        }
    }
    out
}

/// Standard base64 with padding, as HTTP's `Basic` and `ApiKey` schemes use it.
fn base64_padded(text: &str) -> String {
    let mut e = base64(text.as_bytes(), STANDARD);
    while !e.len().is_multiple_of(4) {
        e.push('=');
    }
    e
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64_padded(&format!("{user}:{password}")))
}

/// The fixed secrets, as `(what, value)`.
fn fixed_secrets() -> Vec<(String, String)> {
    SECRETS
        .iter()
        .map(|(w, v)| ((*w).to_owned(), (*v).to_owned()))
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A named blob of captured bytes.
type Artifact = (String, Vec<u8>);

/// Everything captured, by label.
#[derive(Default, Clone)]
struct Captured(Arc<Mutex<Vec<Artifact>>>);

impl Captured {
    fn add(&self, label: impl Into<String>, bytes: Vec<u8>) {
        self.0.lock().unwrap().push((label.into(), bytes));
    }

    /// A sink that appends to the artifact `label` as bytes arrive.
    fn sink(&self, label: &str) -> usize {
        let mut all = self.0.lock().unwrap();
        all.push((label.to_owned(), Vec::new()));
        all.len() - 1
    }

    fn append(&self, index: usize, bytes: &[u8]) {
        self.0.lock().unwrap()[index].1.extend_from_slice(bytes);
    }

    fn snapshot(&self) -> Vec<Artifact> {
        self.0.lock().unwrap().clone()
    }
}

/// `artifact: secret (encoding)` for every hit; names only. `allowed` says where a secret
/// belongs (the one answer that shows a new API key).
fn leaks(
    artifacts: &[Artifact],
    secrets: &[(String, String)],
    allowed: &dyn Fn(&str, &str) -> bool,
) -> Vec<String> {
    let mut found = Vec::new();
    for (what, secret) in secrets {
        for (encoding, needle) in encodings(secret) {
            for (label, bytes) in artifacts {
                if contains(bytes, &needle) && !allowed(label, what) {
                    found.push(format!("{label}: {what} ({encoding})"));
                }
            }
        }
    }
    found
}

// ------------------------------------------------------------------ processes

/// Copies a child's stream into an artifact, and forwards lines to `lines` when given.
fn pump(
    mut stream: impl Read + Send + 'static,
    captured: Captured,
    index: usize,
    lines: Option<mpsc::Sender<String>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        let mut pending = Vec::new();
        loop {
            let n = match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            captured.append(index, &buf[..n]);
            if let Some(tx) = &lines {
                pending.extend_from_slice(&buf[..n]);
                while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=pos).collect();
                    let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
                }
            }
        }
    })
}

struct Env {
    _tmp: tempfile::TempDir,
    config: PathBuf,
    data: PathBuf,
    repo: PathBuf,
    source: PathBuf,
    captured: Captured,
    cli_runs: usize,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let env = Env {
            config: tmp.path().join("config"),
            data: tmp.path().join("data"),
            repo: tmp.path().join("repo"),
            source: tmp.path().join("source"),
            _tmp: tmp,
            captured: Captured::default(),
            cli_runs: 0,
        };
        for p in [&env.config, &env.data, &env.repo] {
            std::fs::create_dir_all(p).unwrap();
        }
        dataset::mixed_bytes(&env.source, 512 << 10, 11).unwrap();
        // The snapshot must see the files as settled, not written in the same instant.
        pause(Duration::from_millis(20));
        env
    }

    fn coffer(&self) -> Command {
        let mut cmd = Command::new(cargo_bin("coffer"));
        cmd.arg("--config-dir")
            .arg(&self.config)
            .env("COFFER_LOG", "trace")
            .env("RUST_LOG", "trace")
            .env("RUST_BACKTRACE", "1")
            .env_remove("COFFER_KEYSTORE_NEW_PASSWORD")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SHARED_CREDENTIALS_FILE")
            .env_remove("AWS_CONFIG_FILE");
        cmd
    }

    /// Runs a CLI command with `stdin`, capturing both streams; returns the exit code.
    fn cli(&mut self, args: &[&str], password: &str, stdin: &str) -> i32 {
        self.cli_output(args, password, stdin).0
    }

    /// [`cli`](Self::cli), also returning standard output.
    fn cli_output(&mut self, args: &[&str], password: &str, stdin: &str) -> (i32, Vec<u8>) {
        self.cli_runs += 1;
        let label = format!("cli #{} ({})", self.cli_runs, args[..2].join(" "));
        let mut child = self
            .coffer()
            .args(args)
            .env("COFFER_KEYSTORE_PASSWORD", password)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        self.captured
            .add(format!("{label} stdout"), out.stdout.clone());
        self.captured
            .add(format!("{label} stderr"), out.stderr.clone());
        (out.status.code().unwrap_or(-1), out.stdout)
    }

    fn keystore_add(&mut self, pairs: &[(&str, &str)]) {
        let mut args = vec!["keystore", "add", "-f", "--stdin"];
        args.extend(pairs.iter().map(|p| p.0));
        let stdin: String = pairs.iter().flat_map(|p| [p.1, "\n"]).collect();
        assert_eq!(
            self.cli(&args, KEYSTORE_PASSWORD, &stdin),
            0,
            "keystore add"
        );
    }

    fn serve_command(&self, s3: &FakeS3, password: &str) -> Command {
        let mut cmd = self.coffer();
        cmd.arg("serve");
        for setting in [
            "http.port=0".to_owned(),
            format!("path.data={}", self.data.display()),
            format!("path.repo={}", self.repo.display()),
            format!("indices.src.path={}", self.source.display()),
            "node.name=hygiene-node".to_owned(),
            format!("s3.client.hyg.endpoint={}", s3.endpoint()),
            format!("s3.client.hyg.region={}", s3.region()),
            "s3.client.hyg.path_style_access=true".to_owned(),
            "s3.client.hyg.max_retries=0".to_owned(),
        ] {
            cmd.arg("-E").arg(setting);
        }
        cmd.env("COFFER_KEYSTORE_PASSWORD", password)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }
}

struct Server {
    child: Child,
    port: u16,
    pumps: Vec<std::thread::JoinHandle<()>>,
    captured: Captured,
    http: reqwest::blocking::Client,
    requests: usize,
    /// The `Authorization` header sent by [`call`](Self::call).
    auth: Option<String>,
}

impl Server {
    fn start(env: &Env, s3: &FakeS3, run: &str) -> Server {
        let mut child = env.serve_command(s3, KEYSTORE_PASSWORD).spawn().unwrap();
        let (tx, rx) = mpsc::channel();
        let out = env.captured.sink(&format!("server {run} stdout"));
        let err = env.captured.sink(&format!("server {run} stderr"));
        let pumps = vec![
            pump(
                child.stdout.take().unwrap(),
                env.captured.clone(),
                out,
                Some(tx.clone()),
            ),
            pump(
                child.stderr.take().unwrap(),
                env.captured.clone(),
                err,
                Some(tx),
            ),
        ];
        let mut port = 0;
        while port == 0 {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("the server did not report its address");
            if let Some(rest) = line.split("listening on http://").nth(1) {
                port = rest
                    .split_whitespace()
                    .next()
                    .and_then(|a| a.rsplit(':').next())
                    .and_then(|p| p.trim_end_matches(['"', '\'']).parse().ok())
                    .unwrap_or(0);
            }
        }
        // Keep draining the channel so the pumps never block on it.
        std::thread::spawn(move || for _ in rx {});
        Server {
            child,
            port,
            pumps,
            captured: env.captured.clone(),
            http: reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(300))
                .build()
                .unwrap(),
            requests: 0,
            auth: None,
        }
    }

    /// Sends a request and captures the whole answer; returns the status and the JSON body
    /// (or the text as a JSON string).
    fn call(&mut self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let auth = self.auth.clone();
        self.call_as(auth.as_deref(), method, path, body)
    }

    /// [`call`](Self::call) with this `Authorization` header (or none).
    fn call_as(
        &mut self,
        auth: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        self.send(auth, method, path, body.map(Value::to_string))
    }

    /// Sends `body` as it is (which need not be valid JSON).
    fn send(
        &mut self,
        auth: Option<&str>,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> (u16, Value) {
        self.requests += 1;
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let mut req = self.http.request(method.parse().unwrap(), url);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let mut head = format!("{:?} {}\n", resp.version(), resp.status());
        for (k, v) in resp.headers() {
            let _ = writeln!(head, "{k}: {}", String::from_utf8_lossy(v.as_bytes()));
        }
        let bytes = resp.bytes().unwrap().to_vec();
        let mut artifact = head.into_bytes();
        artifact.push(b'\n');
        artifact.extend_from_slice(&bytes);
        self.captured.add(
            format!("response #{} to {method} {path}", self.requests),
            artifact,
        );
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, v)
    }

    /// A call that must answer 200. On failure, prints the status and the error type only
    /// (the body is searched for secrets after the scenario, not printed before).
    fn ok(&mut self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let (s, v) = self.call(method, path, body);
        assert_eq!(
            s, 200,
            "{method} {path}: status {s}, error type {}",
            v["error"]["type"]
        );
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
        for p in self.pumps.drain(..) {
            p.join().unwrap();
        }
        assert!(status.success(), "exit status {status:?}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every file under `dir` (except the keystore, which is encrypted on purpose and checked by
/// the keystore's own tests), as artifacts.
fn files_under(dir: &Path, label: &str, captured: &Captured) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().filter_map(Result::ok) {
            let p = e.path();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(p);
            } else if t.is_file() && p.file_name().is_some_and(|n| n != "coffer.keystore") {
                captured.add(
                    format!("{label} {}", p.strip_prefix(dir).unwrap().display()),
                    std::fs::read(&p).unwrap(),
                );
                n += 1;
            }
        }
    }
    n
}

// ------------------------------------------------------------------ the scenario

#[test]
fn the_search_finds_every_encoding() {
    // The search itself must be able to fail: plant each secret in each form.
    let secrets = fixed_secrets();
    let nowhere = |_: &str, _: &str| false;
    for (_, secret) in SECRETS {
        for (encoding, needle) in encodings(secret) {
            let mut planted = b"prefix ".to_vec();
            planted.extend_from_slice(&needle);
            planted.extend_from_slice(b" suffix");
            assert!(
                !leaks(&[("planted".to_owned(), planted)], &secrets, &nowhere).is_empty(),
                "{encoding} not found"
            );
        }
        // Base64 of the secret inside a longer text, at each offset.
        for prefix in ["", "x", "xy", "user:"] {
            let text = format!("{prefix}{secret}!");
            for alphabet in [STANDARD, URL_SAFE] {
                let enc = base64(text.as_bytes(), alphabet).into_bytes();
                assert!(
                    !leaks(&[("planted".to_owned(), enc)], &secrets, &nowhere).is_empty(),
                    "base64 after [{prefix}] not found"
                );
            }
        }
    }
    assert!(
        leaks(
            &[("clean".to_owned(), b"nothing here".to_vec())],
            &secrets,
            &nowhere
        )
        .is_empty()
    );
}

#[test]
fn no_secret_in_any_output_of_a_full_scenario() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut config = FakeS3Config::default().bucket(BUCKET);
    config.credentials = vec![Credential {
        access_key: ACCESS_KEY.to_owned(),
        secret_key: SecretString::from(SECRET_KEY.to_owned()),
        session_token: Some(SecretString::from(SESSION_TOKEN.to_owned())),
    }];
    let s3 = rt
        .block_on(FakeS3::start(config))
        .expect("starting the fake S3");
    let mut env = Env::new();

    // A password-protected keystore holding the wrong secret key at first.
    assert_eq!(
        env.cli(&["keystore", "create", "-p"], KEYSTORE_PASSWORD, ""),
        0,
        "keystore create"
    );
    env.keystore_add(&[
        ("s3.client.hyg.access_key", ACCESS_KEY),
        ("s3.client.hyg.secret_key", WRONG_SECRET_KEY),
        ("s3.client.hyg.session_token", SESSION_TOKEN),
    ]);
    assert_eq!(env.cli(&["keystore", "list"], KEYSTORE_PASSWORD, ""), 0);
    assert_eq!(
        env.cli(&["keystore", "has-passwd"], KEYSTORE_PASSWORD, ""),
        0
    );
    // Users and an API key: with them in the keystore, authentication is on.
    for (user, role, password) in [
        ("hyg-admin", "manage", ADMIN_PASSWORD),
        ("hyg-watcher", "monitor", WATCHER_PASSWORD),
    ] {
        assert_eq!(
            env.cli(
                &["users", "add", user, "--role", role, "--stdin"],
                KEYSTORE_PASSWORD,
                &format!("{password}\n"),
            ),
            0,
            "users add {user}"
        );
    }
    let (code, out) = env.cli_output(
        &["api-key", "create", "--name", "hyg-ci", "--role", "manage"],
        KEYSTORE_PASSWORD,
        "",
    );
    assert_eq!(code, 0, "api-key create");
    let created: Value = String::from_utf8_lossy(&out)
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .expect("api-key create prints the key as JSON");
    let field = |k: &str| {
        created[k]
            .as_str()
            .expect("a field of the new API key")
            .to_owned()
    };
    let (key_id, api_key, encoded) = (field("id"), field("api_key"), field("encoded"));
    let mut secrets = fixed_secrets();
    secrets.push(("the API key".to_owned(), api_key.clone()));
    secrets.push(("the encoded API key".to_owned(), encoded.clone()));
    // Shown once, at creation: the only place it may appear.
    let allowed = |label: &str, what: &str| {
        label.contains("(api-key create) stdout")
            && (what == "the API key" || what == "the encoded API key")
    };
    assert!(contains(&out, api_key.as_bytes()) && contains(&out, encoded.as_bytes()));
    assert_eq!(env.cli(&["users", "list"], KEYSTORE_PASSWORD, ""), 0);
    assert_eq!(env.cli(&["api-key", "list"], KEYSTORE_PASSWORD, ""), 0);
    let admin = basic("hyg-admin", ADMIN_PASSWORD);
    let watcher = basic("hyg-watcher", WATCHER_PASSWORD);
    let with_key = format!("ApiKey {encoded}");

    // A CLI command given the wrong keystore password.
    assert_ne!(
        env.cli(&["keystore", "list"], WRONG_KEYSTORE_PASSWORD, ""),
        0,
        "a wrong password opens nothing"
    );
    // The server refuses to start with the wrong keystore password.
    let out = env
        .serve_command(&s3, WRONG_KEYSTORE_PASSWORD)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "started with a wrong keystore password"
    );
    env.captured
        .add("server with a wrong password stdout", out.stdout);
    env.captured
        .add("server with a wrong password stderr", out.stderr);
    // A secure setting given as an ordinary setting is refused without being repeated.
    let out = env
        .serve_command(&s3, KEYSTORE_PASSWORD)
        .arg("-E")
        .arg(format!("s3.client.hyg.secret_key={SETTINGS_SECRET_KEY}"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "started with a secret key in -E");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("keystore"),
        "the refusal points to the keystore"
    );
    env.captured
        .add("server with -E secret_key stdout", out.stdout);
    env.captured
        .add("server with -E secret_key stderr", out.stderr);

    let mut server = Server::start(&env, &s3, "1");
    // No credentials, a wrong password, a wrong API key, and the wrong role.
    let (s, _) = server.call_as(None, "GET", "/_snapshot", None);
    assert_eq!(s, 401, "no credentials");
    let (s, _) = server.call_as(
        Some(&basic("hyg-admin", WRONG_USER_PASSWORD)),
        "GET",
        "/_snapshot",
        None,
    );
    assert_eq!(s, 401, "a wrong password");
    let wrong_key = format!(
        "ApiKey {}",
        base64_padded(&format!("{key_id}:{WRONG_API_KEY}"))
    );
    let (s, _) = server.call_as(Some(&wrong_key), "GET", "/_cat/snapshots", None);
    assert_eq!(s, 401, "a wrong API key");
    server.auth = Some(admin.clone());
    server.ok("GET", "/", None);
    let repo = json!({"type": "s3", "settings": {"bucket": BUCKET, "client": "hyg", "base_path": "hygiene"}});
    // The wrong secret key: SignatureDoesNotMatch at registration and at verify.
    let (s, v) = server.call("PUT", "/_snapshot/s3repo", Some(&repo));
    assert_eq!(s, 500, "registration with a wrong secret key: status {s}");
    assert_eq!(v["error"]["type"], "repository_verification_exception");
    let (s, _) = server.call_as(
        Some(&watcher),
        "PUT",
        "/_snapshot/s3repo?verify=false",
        Some(&repo),
    );
    assert_eq!(s, 403, "a monitor user registers nothing");
    server.ok("PUT", "/_snapshot/s3repo?verify=false", Some(&repo));
    for path in [
        "/_snapshot/s3repo/_verify",
        "/_snapshot/s3repo/_verify?error_trace=true",
    ] {
        let (s, v) = server.call("POST", path, None);
        assert_eq!(s, 500, "verify with a wrong secret key: status {s}");
        assert!(
            v.to_string().contains("SignatureDoesNotMatch"),
            "the verification failure names SignatureDoesNotMatch"
        );
    }
    let (s, _) = server.call(
        "PUT",
        "/_snapshot/s3repo/early?wait_for_completion=true",
        Some(&json!({"indices": "src"})),
    );
    assert!(
        s >= 400,
        "a snapshot with a wrong secret key fails: status {s}"
    );
    // Repository settings that carry keys are refused, with a pointer to the keystore.
    for (key, value) in [
        ("access_key", SETTINGS_ACCESS_KEY),
        ("secret_key", SETTINGS_SECRET_KEY),
        ("session_token", SETTINGS_SESSION_TOKEN),
    ] {
        let (s, v) = server.call(
            "PUT",
            "/_snapshot/keys-in-settings?verify=false",
            Some(
                &json!({"type": "s3", "settings": {"bucket": BUCKET, "client": "hyg", key: value}}),
            ),
        );
        assert_eq!(s, 400, "settings with [{key}]: status {s}");
        assert!(
            v["error"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("keystore") && r.contains(key)),
            "the refusal of [{key}] points to the keystore"
        );
    }

    // Bodies that carry the keystore password but are malformed: the parse errors must not
    // quote it.
    let auth = server.auth.clone();
    for body in [
        format!(r#"{{"secure_settings_password": "{WRONG_KEYSTORE_PASSWORD}""#),
        format!(r#"{{"secure_settings_password": "{WRONG_KEYSTORE_PASSWORD}" "x": 1}}"#),
        format!(r#"{{"secure_settings_password": ["{WRONG_KEYSTORE_PASSWORD}"]}}"#),
        format!(r#"{{"secure_settings_password": {{"p": "{WRONG_KEYSTORE_PASSWORD}"}}}}"#),
        format!(r#"["{WRONG_KEYSTORE_PASSWORD}"]"#),
        format!("{{\"secure_settings_password\": \"{WRONG_KEYSTORE_PASSWORD}\u{1}\"}}"),
    ] {
        let (s, _) = server.send(
            auth.as_deref(),
            "POST",
            "/_nodes/reload_secure_settings?error_trace=true",
            Some(body),
        );
        assert_eq!(s, 400, "a malformed reload body: status {s}");
    }

    // Fix the key; a reload with the wrong keystore password fails and changes nothing,
    // the right one (from the request, then from the environment) works.
    env.keystore_add(&[("s3.client.hyg.secret_key", SECRET_KEY)]);
    let v = server.ok(
        "POST",
        "/_nodes/reload_secure_settings",
        Some(&json!({"secure_settings_password": WRONG_KEYSTORE_PASSWORD})),
    );
    let node = v["nodes"].as_object().unwrap().values().next().unwrap();
    assert!(
        node.get("reload_exception").is_some(),
        "a wrong keystore password is reported"
    );
    let (s, _) = server.call("POST", "/_snapshot/s3repo/_verify", None);
    assert_eq!(s, 500, "the failed reload kept the old key");
    let v = server.ok(
        "POST",
        "/_nodes/reload_secure_settings?error_trace=true",
        Some(&json!({"secure_settings_password": KEYSTORE_PASSWORD})),
    );
    let node = v["nodes"].as_object().unwrap().values().next().unwrap();
    assert!(node.get("reload_exception").is_none(), "reload failed");
    server.ok("POST", "/_nodes/reload_secure_settings", None);
    server.ok("POST", "/_snapshot/s3repo/_verify", None);

    // The snapshot life, with the API key; the monitor user watches.
    server.auth = Some(with_key.clone());
    server.ok(
        "PUT",
        "/docs",
        Some(&json!({"settings": {"number_of_shards": 1}})),
    );
    let (s, _) = server.call("PUT", "/docs/_doc/d1", Some(&json!({"title": "hello"})));
    assert_eq!(s, 201);
    let v = server.ok(
        "PUT",
        "/_snapshot/s3repo/snap-1?wait_for_completion=true",
        Some(&json!({"indices": "src,docs"})),
    );
    assert_eq!(v["snapshot"]["state"], "SUCCESS");
    server.ok(
        "PUT",
        "/_snapshot/s3repo/snap-2?wait_for_completion=false",
        Some(&json!({"indices": "src"})),
    );
    server.auth = Some(watcher.clone());
    for path in [
        "/_snapshot/s3repo/snap-2/_status",
        "/_snapshot/_status",
        "/_snapshot/s3repo/_status",
    ] {
        server.ok("GET", path, None);
    }
    for _ in 0..600 {
        let v = server.ok("GET", "/_snapshot/s3repo/snap-2/_status", None);
        if v["snapshots"][0]["state"] == "SUCCESS" {
            break;
        }
        pause(Duration::from_millis(50));
    }
    for path in [
        "/_snapshot",
        "/_snapshot/s3repo",
        "/_snapshot/s3repo/snap-1",
        "/_snapshot/s3repo/_all?verbose=true&pretty",
        "/_snapshot/s3repo/snap-1/_status",
        "/_cat/snapshots/s3repo?v",
        "/_cat/repositories?v",
        "/_cat/indices?v",
        "/_cluster/health",
        "/_snapshot/s3repo/*?error_trace=true",
    ] {
        server.ok("GET", path, None);
    }
    let (s, _) = server.call("GET", "/_snapshot/s3repo/missing?error_trace=true", None);
    assert_eq!(s, 404);
    server.auth = Some(with_key.clone());
    let v = server.ok(
        "POST",
        "/_snapshot/s3repo/snap-1/_restore?wait_for_completion=true",
        Some(&json!({"indices": "src", "rename_pattern": "src", "rename_replacement": "src-restored"})),
    );
    assert_eq!(v["snapshot"]["indices"], json!(["src-restored"]));
    dataset::manifest(&env.source)
        .unwrap()
        .ensure_same(&dataset::manifest(&env.data.join("indices/src-restored")).unwrap())
        .unwrap();
    server.ok(
        "PUT",
        "/_snapshot/s3repo/snap-1/_clone/snap-3",
        Some(&json!({"indices": "docs"})),
    );
    server.ok("DELETE", "/_snapshot/s3repo/snap-2,snap-3", None);
    server.ok("POST", "/_snapshot/s3repo/_cleanup", None);
    server.stop();

    // A restart reads the keystore again and finds everything.
    let mut server = Server::start(&env, &s3, "2");
    server.auth = Some(admin.clone());
    let v = server.ok("GET", "/_snapshot/s3repo/snap-1", None);
    assert_eq!(v["snapshots"][0]["state"], "SUCCESS");
    server.ok("POST", "/_snapshot/s3repo/_verify", None);
    server.ok("DELETE", "/_snapshot/s3repo/snap-1", None);
    server.stop();

    // Everything coffer wrote: its state files, and the repository in the bucket.
    assert!(files_under(&env.data, "file in path.data:", &env.captured) > 0);
    files_under(&env.config, "file in the config directory:", &env.captured);
    let keys = s3.keys(BUCKET);
    assert!(
        !keys.is_empty(),
        "the repository left its root in the bucket"
    );
    for key in keys {
        if let Some(object) = s3.object(BUCKET, &key) {
            let mut bytes = object.data.to_vec();
            for (k, v) in &object.metadata {
                bytes.extend_from_slice(format!("\n{k}: {v}").as_bytes());
            }
            env.captured
                .add(format!("object {key} in the bucket"), bytes);
        }
    }

    let artifacts = env.captured.snapshot();
    // The capture is real: trace-level lines of the server, every CLI run and every
    // response are there.
    let server_log: Vec<u8> = artifacts
        .iter()
        .filter(|(l, _)| l.starts_with("server 1 std"))
        .flat_map(|(_, b)| b.clone())
        .collect();
    assert!(
        contains(&server_log, b"TRACE") && contains(&server_log, b"DEBUG"),
        "the server did not log at trace level"
    );
    assert!(contains(&server_log, b"s3repo"));
    assert!(
        artifacts
            .iter()
            .filter(|(l, _)| l.starts_with("response"))
            .count()
            > 30
    );
    // To investigate a failure: every artifact, as captured, written to this directory
    // (the artifacts hold the secrets if there is a leak; they are test values).
    if let Ok(dir) = std::env::var("COFFER_HYGIENE_DUMP") {
        for (i, (l, b)) in artifacts.iter().enumerate() {
            std::fs::write(format!("{dir}/{i:03}-{}", l.replace(['/', ' '], "_")), b).unwrap();
        }
    }
    let found = leaks(&artifacts, &secrets, &allowed);
    assert!(
        found.is_empty(),
        "secrets leaked ({} hits):\n{}",
        found.len(),
        found.join("\n")
    );
    drop(s3);
}
