//! The counting proxy in front of the fake S3 (which verifies SigV4, `Host` included) and of
//! a real Garage: requests signed for the proxy's endpoint succeed, and every request and
//! body byte is counted.

use std::net::SocketAddr;

use coffer_testfixtures::counting_proxy::CountingProxy;
use coffer_testfixtures::fake_s3::{DEFAULT_BUCKET, FakeS3, Operation};
use coffer_testfixtures::garage::Garage;
use coffer_testfixtures::raw_s3::RawS3;
use secrecy::ExposeSecret;

/// Deterministic, incompressible-looking bytes.
fn payload(len: usize) -> Vec<u8> {
    let mut state: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()[0]
        })
        .collect()
}

async fn fake_behind_proxy() -> (FakeS3, CountingProxy, RawS3) {
    let fake = FakeS3::start_default().await.expect("fake starts");
    let proxy = CountingProxy::start(fake.addr())
        .await
        .expect("proxy starts");
    let s3 = RawS3::new(
        &proxy.endpoint(),
        fake.region(),
        fake.access_key(),
        fake.secret_key().expose_secret(),
    );
    (fake, proxy, s3)
}

#[tokio::test]
async fn counting_proxy_forwards_signed_requests_and_counts_them() {
    let (fake, proxy, s3) = fake_behind_proxy().await;
    assert!(proxy.endpoint().starts_with("http://127.0.0.1:"));
    let body = payload(3 * 1024 * 1024 + 17);
    let path = RawS3::object_path(DEFAULT_BUCKET, "dir/object one.bin");

    let put = s3.send("PUT", &path, &[], body.clone()).await.unwrap();
    assert_eq!(put.status, 200, "{put:?}");
    let head = s3.send("HEAD", &path, &[], Vec::new()).await.unwrap();
    assert_eq!(head.status, 200, "{head:?}");
    assert_eq!(
        head.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    let get = s3.send("GET", &path, &[], Vec::new()).await.unwrap();
    assert_eq!(get.status, 200);
    assert_eq!(get.body, body, "the download is byte-identical");
    let missing = s3
        .send(
            "GET",
            &RawS3::object_path(DEFAULT_BUCKET, "absent"),
            &[],
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(missing.status, 404);
    let delete = s3.send("DELETE", &path, &[], Vec::new()).await.unwrap();
    assert_eq!(delete.status, 204);

    let counts = proxy.counts();
    assert_eq!(counts.total, 5, "{counts:?}");
    assert_eq!(counts.method("PUT"), 1);
    assert_eq!(counts.method("HEAD"), 1);
    assert_eq!(counts.method("GET"), 2);
    assert_eq!(counts.method("DELETE"), 1);
    assert_eq!(counts.errors, 1, "the 404");
    assert_eq!(counts.bytes_up, body.len() as u64);
    // The object plus the 404's XML error body.
    assert!(counts.bytes_down > body.len() as u64, "{counts:?}");
    assert!(counts.bytes_down < body.len() as u64 + 4096, "{counts:?}");
    assert_eq!(
        counts.connections, 1,
        "the client's keep-alive connection is kept: {counts:?}"
    );

    // The server saw the requests exactly as sent, with the proxy's Host (it verified the
    // signatures over it).
    let puts = fake.requests(Operation::PutObject);
    assert_eq!(puts.len(), 1);

    proxy.reset();
    let counts = proxy.counts();
    assert_eq!(
        (counts.total, counts.bytes_up, counts.bytes_down),
        (0, 0, 0)
    );
    assert!(counts.by_method.is_empty());
    let list = s3
        .send("GET", &format!("/{DEFAULT_BUCKET}"), &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(list.status, 200);
    assert_eq!(proxy.counts().method("GET"), 1);
    assert_eq!(proxy.counts().bytes_down, list.body.len() as u64);
}

#[tokio::test]
async fn counting_proxy_counts_concurrent_clients_separately_connected() {
    let (_fake, proxy, s3) = fake_behind_proxy().await;
    let body = payload(256 * 1024);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let s3 = s3.clone();
        let body = body.clone();
        tasks.spawn(async move {
            let path = RawS3::object_path(DEFAULT_BUCKET, &format!("c/{i}"));
            let put = s3.send("PUT", &path, &[], body.clone()).await.unwrap();
            assert_eq!(put.status, 200, "{put:?}");
            let get = s3.send("GET", &path, &[], Vec::new()).await.unwrap();
            assert_eq!(get.body, body);
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let counts = proxy.counts();
    assert_eq!(counts.method("PUT"), 16);
    assert_eq!(counts.method("GET"), 16);
    assert_eq!(counts.errors, 0);
    assert_eq!(counts.bytes_up, 16 * body.len() as u64);
    assert_eq!(counts.bytes_down, 16 * body.len() as u64);
}

#[tokio::test]
async fn counting_proxy_answers_502_when_the_upstream_is_down() {
    // A port nobody listens on: bind, read the port, close.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead: SocketAddr = listener.local_addr().unwrap();
    drop(listener);
    let proxy = CountingProxy::start(dead).await.unwrap();
    let s3 = RawS3::new(&proxy.endpoint(), "us-east-1", "AK", "SK");
    let response = s3
        .send("GET", "/bucket/key", &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(response.status, 502);
    assert!(response.text().contains("counting proxy"), "{response:?}");
    let counts = proxy.counts();
    assert_eq!((counts.total, counts.errors), (1, 1));
}

#[tokio::test]
async fn counting_proxy_in_front_of_garage_keeps_sigv4_valid() {
    let garage = Garage::start().await.expect("garage starts");
    let upstream: SocketAddr = garage
        .endpoint()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let proxy = CountingProxy::start(upstream).await.unwrap();
    let s3 = RawS3::new(
        &proxy.endpoint(),
        garage.region(),
        garage.access_key(),
        garage.secret_key().expose_secret(),
    );
    let body = payload(8 * 1024 * 1024);
    let path = RawS3::object_path(garage.bucket(), "big.bin");
    let put = s3.send("PUT", &path, &[], body.clone()).await.unwrap();
    assert_eq!(put.status, 200, "{put:?}");
    let get = s3.send("GET", &path, &[], Vec::new()).await.unwrap();
    assert_eq!(get.status, 200, "{get:?}");
    assert_eq!(get.body, body);
    let counts = proxy.counts();
    assert_eq!(counts.method("PUT"), 1);
    assert_eq!(counts.method("GET"), 1);
    assert_eq!(counts.errors, 0);
    assert_eq!(counts.bytes_up, body.len() as u64);
    assert_eq!(counts.bytes_down, body.len() as u64);
}
