//! TLS: an unknown CA is a precise `Tls` error; the per-client CA bundle (file setting or
//! keystore bytes), `AWS_CA_BUNDLE` and the explicit `insecure` switch each make it work.
//! The server is a real rustls endpoint on 127.0.0.1 with a test certificate signed by a
//! throwaway CA (`tests/fixtures/tls`).

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use coffer_client::{
    ClientConfig, ClientOptions, ClientSettings, Credentials, Environment, Error, RetryPolicy,
    S3Client, SecureClientSettings,
};
use http_body_util::Full;
use secrecy::SecretString;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

type Seen = Arc<std::sync::Mutex<Vec<String>>>;

async fn tls_server() -> u16 {
    tls_server_recording().await.0
}

/// Also records each request's `x-amz-content-sha256`.
async fn tls_server_recording() -> (u16, Seen) {
    let seen: Seen = Arc::default();
    let seen_out = Arc::clone(&seen);
    let certs: Vec<_> =
        rustls_pemfile::certs(&mut std::fs::read(fixture("server.pem")).unwrap().as_slice())
            .collect::<Result<_, _>>()
            .unwrap();
    let key =
        rustls_pemfile::private_key(&mut std::fs::read(fixture("server.key")).unwrap().as_slice())
            .unwrap()
            .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let sha = req
                            .headers()
                            .get("x-amz-content-sha256")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        seen.lock().unwrap().push(sha);
                        async {
                            let mut r = hyper::Response::new(Full::new(Bytes::new()));
                            r.headers_mut()
                                .insert("etag", http::HeaderValue::from_static("\"e\""));
                            Ok::<_, std::convert::Infallible>(r)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (port, seen_out)
}

fn client(
    port: u16,
    tweak: impl FnOnce(&mut ClientSettings, &mut SecureClientSettings),
    env: &Environment,
) -> S3Client {
    let mut settings = ClientSettings::default();
    settings.endpoint = Some(format!("https://127.0.0.1:{port}"));
    let mut secure = SecureClientSettings::default();
    secure.credentials = Some(Credentials::new("AKID", SecretString::from("secret"), None));
    tweak(&mut settings, &mut secure);
    let options = ClientOptions::default().with_retry(RetryPolicy::for_test(2));
    S3Client::new(
        &ClientConfig::new("tlstest", settings, secure),
        env,
        options,
    )
    .unwrap()
}

#[tokio::test]
async fn an_unknown_ca_is_a_precise_tls_error_and_not_retried() {
    let port = tls_server().await;
    let c = client(port, |_, _| {}, &Environment::empty());
    let e = c.head_bucket("b").await.unwrap_err();
    assert!(matches!(e, Error::Tls { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "TLS failure on HeadBucket b at https://127.0.0.1:{port}"
        )),
        "{text}"
    );
    assert!(text.to_lowercase().contains("certificate"), "{text}");
    assert_eq!(
        c.metering()
            .operation(coffer_client::Operation::HeadBucket)
            .requests,
        1,
        "TLS failures are not retried"
    );
}

#[tokio::test]
async fn a_ca_bundle_from_settings_keystore_or_aws_ca_bundle_is_trusted() {
    let port = tls_server().await;
    let by_path = client(
        port,
        |s, _| s.ca_certificate = Some(fixture("ca.pem")),
        &Environment::empty(),
    );
    by_path.head_bucket("b").await.unwrap();
    let pem = std::fs::read(fixture("ca.pem")).unwrap();
    let by_bytes = client(
        port,
        |_, sec| sec.ca_certificate = Some(pem),
        &Environment::empty(),
    );
    by_bytes.head_bucket("b").await.unwrap();
    let env = Environment::empty().with_var("AWS_CA_BUNDLE", fixture("ca.pem").to_str().unwrap());
    let by_env = client(port, |_, _| {}, &env);
    by_env.head_bucket("b").await.unwrap();
}

#[tokio::test]
async fn insecure_skips_verification() {
    let port = tls_server().await;
    let c = client(port, |s, _| s.insecure = true, &Environment::empty());
    c.head_bucket("b").await.unwrap();
}

#[tokio::test]
async fn unsigned_payload_only_when_asked_and_only_over_https() {
    let (port, seen) = tls_server_recording().await;
    let mut settings = ClientSettings::default();
    settings.endpoint = Some(format!("https://127.0.0.1:{port}"));
    settings.insecure = true;
    let mut secure = SecureClientSettings::default();
    secure.credentials = Some(Credentials::new("AKID", SecretString::from("secret"), None));
    let config = ClientConfig::new("unsigned", settings, secure);
    let signed = S3Client::new(&config, &Environment::empty(), ClientOptions::default()).unwrap();
    signed
        .put_object(
            "b",
            "k",
            Bytes::from_static(b"abc"),
            &coffer_client::PutMode::Overwrite,
        )
        .await
        .unwrap();
    let mut options = ClientOptions::default();
    options.unsigned_payload_over_https = true;
    let unsigned = S3Client::new(&config, &Environment::empty(), options).unwrap();
    unsigned
        .put_object(
            "b",
            "k",
            Bytes::from_static(b"abc"),
            &coffer_client::PutMode::Overwrite,
        )
        .await
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".to_owned(),
            "UNSIGNED-PAYLOAD".to_owned(),
        ]
    );
}
