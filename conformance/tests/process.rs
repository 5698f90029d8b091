//! `Server` against a stand-in executable: the keystore is created, `serve` gets the free-port,
//! data and repository settings, the listening line is found, requests go over real HTTP, and
//! SIGTERM stops the process. The stand-in is a shell script that announces a loopback HTTP
//! listener run by this test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use coffer_conformance::http::{HttpRequest, ReqwestTransport, Transport};
use coffer_conformance::server::Server;

/// Answers every request with a JSON echo of its method, target and body.
fn spawn_http() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut parts = request_line.split_whitespace();
            let echo = serde_json::json!({
                "method": parts.next(),
                "target": parts.next(),
                "body": String::from_utf8_lossy(&body),
            })
            .to_string();
            write!(
                stream,
                "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nWarning: 299 Elasticsearch-8.17.0 \"careful\"\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{echo}",
                echo.len()
            )
            .unwrap();
        }
    });
    format!("http://{addr}")
}

#[test]
fn starts_talks_and_stops() {
    let url = spawn_http();
    let dir = tempfile::tempdir().unwrap();
    let args_file = dir.path().join("args");
    let script = dir.path().join("coffer");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             echo \"$@\" >> '{args}'\n\
             case \"$*\" in\n\
             *' keystore create'*) exit 0 ;;\n\
             *' serve '*) echo 'INFO coffer::serve: starting coffer' >&2\n\
             echo 'INFO coffer::serve: coffer listening on {url} local=x' >&2\n\
             exec sleep 600 ;;\n\
             esac\n\
             exit 64\n",
            args = args_file.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut server = Server::start(&script, Duration::from_secs(20)).unwrap();
    assert_eq!(server.base_url(), url);
    let args = std::fs::read_to_string(&args_file).unwrap();
    let lines: Vec<&str> = args.lines().collect();
    let config = server.dir().join("config");
    assert_eq!(
        lines[0],
        format!("--config-dir {} --silent keystore create", config.display())
    );
    assert!(lines[1].starts_with(&format!(
        "--config-dir {} serve -E http.port=0",
        config.display()
    )));
    assert!(lines[1].contains(&format!(
        "-E path.repo={}",
        server.dir().join("repos").display()
    )));
    assert!(lines[1].contains(&format!(
        "-E path.data={}",
        server.dir().join("data").display()
    )));
    assert!(server.log().contains("starting coffer"));

    let transport = ReqwestTransport::new(server.base_url(), Duration::from_secs(10)).unwrap();
    let mut request = HttpRequest::new("PUT", "/_snapshot/r%20x");
    request
        .query
        .push(("s".to_owned(), "type,id:desc".to_owned()));
    request.query.push(("q".to_owned(), "a&b c".to_owned()));
    request.body = Some(b"{\"type\":\"fs\"}".to_vec());
    let response = transport.send(&request).unwrap();
    assert_eq!(response.status, 201);
    assert_eq!(
        response.header_values("warning").collect::<Vec<_>>(),
        vec!["299 Elasticsearch-8.17.0 \"careful\""]
    );
    let echo: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(echo["method"], "PUT");
    assert_eq!(
        echo["target"],
        "/_snapshot/r%20x?s=type,id:desc&q=a%26b%20c"
    );
    assert_eq!(echo["body"], "{\"type\":\"fs\"}");

    let status = server.stop(Duration::from_secs(10)).unwrap();
    // `sleep` dies of the SIGTERM (the real coffer exits 0 on it).
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(15)
    );
}

#[test]
fn a_server_that_exits_early_is_an_error_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("coffer");
    std::fs::write(
        &script,
        "#!/bin/sh\ncase \"$*\" in *keystore*) exit 0 ;; esac\necho 'ERROR: unknown setting [x]' >&2\nexit 78\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = Server::start(&script, Duration::from_secs(20))
        .unwrap_err()
        .to_string();
    assert!(err.contains("exited before listening"), "{err}");
    assert!(err.contains("unknown setting [x]"), "{err}");

    let missing = dir.path().join("no-such-coffer");
    assert!(Server::start(&missing, Duration::from_secs(1)).is_err());
}
