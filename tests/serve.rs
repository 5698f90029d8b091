//! `coffer serve` as a process: configuration errors, the keystore check at start, `GET /`
//! and a clean exit on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use assert_cmd::cargo::cargo_bin;

struct Server {
    child: Child,
    port: u16,
    stderr: mpsc::Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn coffer(config: &std::path::Path, data: &std::path::Path, extra: &[&str]) -> Command {
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
        .stdin(Stdio::null());
    cmd
}

/// Starts the server and waits for the line that names the port it picked.
fn start(cmd: &mut Command) -> Server {
    let child = cmd
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    // Owned by `Server` from here on, so a failed wait below still kills the process.
    let mut server = Server {
        child,
        port: 0,
        stderr: rx,
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
    while server.port == 0 {
        let line = server
            .stderr
            .recv_timeout(Duration::from_secs(60))
            .expect("server did not report its address");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            server.port = rest.trim().rsplit(':').next().unwrap().parse().unwrap();
        }
    }
    server
}

fn get(port: u16, path: &str) -> (u16, String, Option<String>) {
    let resp = reqwest::blocking::get(format!("http://127.0.0.1:{port}{path}")).unwrap();
    let product = resp
        .headers()
        .get("x-elastic-product")
        .map(|v| v.to_str().unwrap().to_owned());
    (resp.status().as_u16(), resp.text().unwrap(), product)
}

#[test]
fn serves_root_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start(&mut coffer(
        &dir.path().join("config"),
        &data,
        &["-E", "node.name=n-1", "-E", "cluster.name=c-1"],
    ));
    let (status, body, product) = get(server.port, "/");
    assert_eq!(status, 200);
    assert_eq!(product.as_deref(), Some("Elasticsearch"));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["name"], "n-1");
    assert_eq!(v["cluster_name"], "c-1");
    let uuid = v["cluster_uuid"].as_str().unwrap().to_owned();
    assert!(v["version"]["number"].as_str().unwrap().starts_with('8'));

    let mut server = server;
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = server.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean exit");
    // The reader thread forwards lines until end of file; take them all, not just those
    // already forwarded when the process exited.
    let mut log = Vec::new();
    while let Ok(line) = server.stderr.recv_timeout(Duration::from_secs(10)) {
        log.push(line);
    }
    assert!(log.iter().any(|l| l.contains("SIGTERM")), "{log:?}");

    // The cluster identity survives a restart.
    let again = start(&mut coffer(&dir.path().join("config"), &data, &[]));
    let (_, body, _) = get(again.port, "/");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["cluster_uuid"], uuid.as_str());
}

#[test]
fn unknown_settings_stop_the_start_and_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("coffer.yml"),
        "http:\n  port: 0\ns3.client.default.endpiont: http://x\n",
    )
    .unwrap();
    let out = coffer(&config, &dir.path().join("data"), &[])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown setting [s3.client.default.endpiont]"),
        "{err}"
    );
    assert!(
        err.contains("did you mean [s3.client.default.endpoint]"),
        "{err}"
    );

    let out = coffer(
        &dir.path().join("none"),
        &dir.path().join("data"),
        &["-E", "http.prot=1"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown setting [http.prot]"));
}

#[test]
fn a_keystore_that_cannot_be_opened_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let status = Command::new(cargo_bin("coffer"))
        .arg("--config-dir")
        .arg(&config)
        .args(["keystore", "create", "-p"])
        .env("COFFER_KEYSTORE_PASSWORD", "right")
        .status()
        .unwrap();
    assert!(status.success());
    let out = coffer(&config, &dir.path().join("data"), &[])
        .env("COFFER_KEYSTORE_PASSWORD", "wrong")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Provided keystore password was incorrect"),
        "{err}"
    );
    assert!(
        !err.contains("wrong"),
        "the password is never echoed: {err}"
    );

    let server = start(
        coffer(&config, &dir.path().join("data"), &[]).env("COFFER_KEYSTORE_PASSWORD", "right"),
    );
    assert_eq!(get(server.port, "/").0, 200);
}

#[test]
fn a_closed_stderr_does_not_break_requests() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = coffer(&dir.path().join("config"), &dir.path().join("data"), &[]);
    // Every request logs something at trace, so each one writes to the closed pipe.
    cmd.env("COFFER_LOG", "trace");
    let mut server = start(&mut cmd);
    // Dropping the receiver makes the reader thread stop at the next line and close its
    // end of the pipe: from then on every log write by the server fails with EPIPE.
    drop(std::mem::replace(&mut server.stderr, mpsc::channel().1));
    for round in 0..5 {
        let resp = reqwest::blocking::get(format!(
            "http://127.0.0.1:{}/_snapshot/missing",
            server.port
        ))
        .unwrap_or_else(|e| panic!("request {round} after stderr closed: {e}"));
        assert_eq!(resp.status().as_u16(), 404, "request {round}");
    }
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server exited after its stderr closed"
    );
}
