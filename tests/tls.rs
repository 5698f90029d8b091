//! `coffer serve` with `http.tls.*`: HTTPS only, certificates from a test CA, reload on SIGHUP
//! without dropping open connections, a broken reload keeping the old certificate, and the
//! start-up refusals.

// Polling the child process for its exit needs a sleep; there is no clock to inject here.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SerialNumber,
};
use rustls::pki_types::{CertificateDer, ServerName};

struct Server {
    child: Child,
    port: u16,
    stderr: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Waits for a log line containing `needle` and returns it.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .stderr
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no log line with [{needle}]; log: {:#?}", self.log));
            self.log.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap()
                .success()
        );
    }
}

fn coffer(config: &Path, data: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(cargo_bin("coffer"));
    cmd.arg("--config-dir")
        .arg(config)
        .arg("serve")
        .arg("-E")
        .arg("http.port=0")
        .arg("-E")
        .arg(format!("path.data={}", data.display()))
        .args(extra)
        .env_remove("COFFER_KEYSTORE_PASSWORD")
        .env_remove("COFFER_LOG")
        .stdin(Stdio::null());
    cmd
}

/// Starts the server and waits for the line announcing HTTPS and its port.
fn start(cmd: &mut Command) -> Server {
    let child = cmd
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let mut server = Server {
        child,
        port: 0,
        stderr: rx,
        log: Vec::new(),
    };
    let stderr = server.child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = server.wait_for("coffer listening on ");
    let addr = line
        .split("coffer listening on https://")
        .nth(1)
        .unwrap_or_else(|| panic!("not an https listener: {line}"))
        .split_whitespace()
        .next()
        .unwrap();
    server.port = addr.rsplit(':').next().unwrap().parse().unwrap();
    server
}

/// A test certificate authority issuing `localhost` server certificates.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A server certificate and its key, PEM.
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

impl Ca {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "coffer test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    fn leaf(&self, common_name: &str, serial: u64) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.serial_number = Some(SerialNumber::from(serial));
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            // The chain as operators install it: leaf, then the CA.
            cert_pem: format!("{}{}", cert.pem(), self.pem()),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }
}

impl Leaf {
    fn key_body_lines(&self) -> Vec<String> {
        self.key_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::to_owned)
            .collect()
    }
}

/// `config/tls/{cert,key}.pem`, named relatively in `coffer.yml`.
struct ConfigDir {
    _tmp: tempfile::TempDir,
    config: PathBuf,
    data: PathBuf,
}

impl ConfigDir {
    fn new(leaf: &Leaf) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let config = tmp.path().join("config");
        std::fs::create_dir_all(config.join("tls")).unwrap();
        std::fs::write(
            config.join("coffer.yml"),
            "http:\n  tls:\n    certificate: tls/cert.pem\n    key: tls/key.pem\n",
        )
        .unwrap();
        let dir = Self {
            data: tmp.path().join("data"),
            config,
            _tmp: tmp,
        };
        dir.install(leaf);
        dir
    }

    fn cert_path(&self) -> PathBuf {
        self.config.join("tls/cert.pem")
    }

    fn key_path(&self) -> PathBuf {
        self.config.join("tls/key.pem")
    }

    fn install(&self, leaf: &Leaf) {
        std::fs::write(self.cert_path(), &leaf.cert_pem).unwrap();
        std::fs::write(self.key_path(), &leaf.key_pem).unwrap();
    }
}

fn client_config(
    ca: &Ca,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// One keep-alive HTTP/1.1 connection over TLS, driven by hand so that the test knows that
/// two requests travel on the same connection.
struct Connection {
    stream: BufReader<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>,
}

impl Connection {
    fn open(port: u16, config: Arc<rustls::ClientConfig>) -> Self {
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let conn =
            rustls::ClientConnection::new(config, ServerName::try_from("localhost").unwrap())
                .unwrap();
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock).unwrap();
        }
        Self {
            stream: BufReader::new(stream),
        }
    }

    fn peer_leaf(&self) -> CertificateDer<'static> {
        self.stream.get_ref().conn.peer_certificates().unwrap()[0].clone()
    }

    fn tls(&self) -> &rustls::ClientConnection {
        &self.stream.get_ref().conn
    }

    /// `GET /` on this connection: the status and the body.
    fn get_root(&mut self) -> (u16, serde_json::Value) {
        let s = self.stream.get_mut();
        s.write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
            .unwrap();
        s.flush().unwrap();
        let mut status_line = String::new();
        self.stream.read_line(&mut status_line).unwrap();
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .unwrap_or_else(|| panic!("bad status line [{status_line}]"))
            .parse()
            .unwrap();
        let mut length = None;
        loop {
            let mut line = String::new();
            self.stream.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            assert!(
                !name.eq_ignore_ascii_case("connection") || !value.contains("close"),
                "the server wants to close the connection"
            );
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.trim().parse::<usize>().unwrap());
            }
        }
        let mut body = vec![0; length.expect("a content-length")];
        self.stream.read_exact(&mut body).unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }
}

fn assert_exits_cleanly(server: &mut Server) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "coffer did not stop within 30 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean exit");
}

#[test]
fn serves_https_only_and_reloads_certificates_on_sighup() {
    let ca = Ca::new();
    let first = ca.leaf("coffer-first", 1);
    let second = ca.leaf("coffer-second", 2);
    let dir = ConfigDir::new(&first);
    let mut server = start(&mut coffer(
        &dir.config,
        &dir.data,
        &["-E", "node.name=tls-node"],
    ));
    let port = server.port;

    // A client trusting only the test CA gets the API.
    let https = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .build()
        .unwrap();
    let resp = https
        .get(format!("https://localhost:{port}/"))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let v: serde_json::Value = resp.json().unwrap();
    assert_eq!(v["name"], "tls-node");

    // TLS only: plain HTTP on the same port gets no answer.
    let plain = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{port}/"))
        .send();
    assert!(plain.is_err(), "plain HTTP answered: {plain:?}");

    // Both TLS 1.3 and TLS 1.2, HTTP/1.1 through ALPN.
    let tls12 = Connection::open(port, client_config(&ca, &[&rustls::version::TLS12]));
    assert_eq!(
        tls12.tls().protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    let mut kept = Connection::open(port, client_config(&ca, &[&rustls::version::TLS13]));
    assert_eq!(
        kept.tls().protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert_eq!(kept.tls().alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(kept.peer_leaf(), first.der);
    assert_eq!(kept.get_root().0, 200);

    // Renewal: new files, SIGHUP. New connections see the new certificate; the connection
    // opened before keeps working.
    dir.install(&second);
    server.signal("-HUP");
    server.wait_for("reloaded the TLS certificate and key");
    let fresh = Connection::open(port, client_config(&ca, &[&rustls::version::TLS13]));
    assert_eq!(fresh.peer_leaf(), second.der);
    let (status, body) = kept.get_root();
    assert_eq!(status, 200);
    assert_eq!(body["name"], "tls-node");
    assert_eq!(kept.peer_leaf(), first.der);

    // A broken certificate file: the reload fails, names the file, and the certificate in
    // use stays.
    std::fs::write(dir.cert_path(), "not a certificate\n").unwrap();
    server.signal("-HUP");
    let line = server.wait_for("TLS reload failed");
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains("[http.tls.certificate]"), "{line}");
    assert!(
        line.contains(&dir.cert_path().display().to_string()),
        "{line}"
    );
    let mut after_failure = Connection::open(port, client_config(&ca, &[&rustls::version::TLS13]));
    assert_eq!(after_failure.peer_leaf(), second.der);
    assert_eq!(after_failure.get_root().0, 200);

    // Half a renewal (the new certificate, the old key) is refused too.
    let third = ca.leaf("coffer-third", 3);
    std::fs::write(dir.cert_path(), &third.cert_pem).unwrap();
    server.signal("-HUP");
    let line = server.wait_for("TLS reload failed");
    assert!(line.contains("does not match the certificate"), "{line}");
    let still = Connection::open(port, client_config(&ca, &[&rustls::version::TLS13]));
    assert_eq!(still.peer_leaf(), second.der);

    // Graceful shutdown as with plain HTTP, with idle keep-alive connections open.
    server.signal("-TERM");
    assert_exits_cleanly(&mut server);
    while let Ok(line) = server.stderr.recv_timeout(Duration::from_secs(10)) {
        server.log.push(line);
    }
    assert!(server.log.iter().any(|l| l.contains("SIGTERM")));
    drop((kept, fresh, tls12, still));

    // No key material in the log of the whole scenario.
    let log = server.log.join("\n");
    for leaf in [&first, &second, &third] {
        for line in leaf.key_body_lines() {
            assert!(!log.contains(&line), "key material in the log");
        }
    }
}

#[test]
fn bad_tls_settings_stop_the_start_with_a_named_setting() {
    let ca = Ca::new();
    let leaf = ca.leaf("coffer", 1);
    let other = ca.leaf("other", 2);
    let dir = ConfigDir::new(&leaf);
    let refuse = |extra: &[&str]| {
        // The file names both settings; `-E` overrides them per case.
        let out = coffer(&dir.config, &dir.data, extra).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(78), "{err}");
        assert!(!err.contains("listening"), "{err}");
        for line in leaf.key_body_lines().iter().chain(&other.key_body_lines()) {
            assert!(!err.contains(line), "key material in the message: {err}");
        }
        err
    };

    // Only one of the two.
    std::fs::write(
        dir.config.join("coffer.yml"),
        "http.tls.certificate: tls/cert.pem\n",
    )
    .unwrap();
    let err = refuse(&[]);
    assert!(
        err.contains("[http.tls.certificate] is set but [http.tls.key] is not"),
        "{err}"
    );
    std::fs::write(dir.config.join("coffer.yml"), "http.tls.key: tls/key.pem\n").unwrap();
    let err = refuse(&[]);
    assert!(
        err.contains("[http.tls.key] is set but [http.tls.certificate] is not"),
        "{err}"
    );

    // A missing file, named with the setting, resolved in the config directory.
    std::fs::write(
        dir.config.join("coffer.yml"),
        "http.tls.certificate: tls/cert.pem\nhttp.tls.key: tls/key.pem\n",
    )
    .unwrap();
    let err = refuse(&["-E", "http.tls.key=tls/missing.pem"]);
    let missing = dir.config.join("tls/missing.pem");
    assert!(
        err.contains(&format!(
            "[http.tls.key] cannot read [{}]",
            missing.display()
        )),
        "{err}"
    );

    // A key that is not the certificate's.
    std::fs::write(dir.config.join("other-key.pem"), &other.key_pem).unwrap();
    let err = refuse(&["-E", "http.tls.key=other-key.pem"]);
    assert!(
        err.contains(&format!(
            "[http.tls.key] file [{}] does not match the certificate in [http.tls.certificate] file [{}]",
            dir.config.join("other-key.pem").display(),
            dir.cert_path().display()
        )),
        "{err}"
    );

    // An absolute path is taken as it is, and with matching files the server starts.
    let mut server = start(&mut coffer(
        &dir.config,
        &dir.data,
        &["-E", &format!("http.tls.key={}", dir.key_path().display())],
    ));
    server.signal("-TERM");
    assert_exits_cleanly(&mut server);
}
