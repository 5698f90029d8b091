//! End-to-end behaviour of the client over a real socket (127.0.0.1) against the small
//! in-test server of `common`: streaming, multipart concurrency, resume, retries,
//! non-replay of non-idempotent requests, region self-correction, 200-with-Error,
//! conditional writes, DeleteObjects, listing, metering and reload.

// Tests may sleep for real to interleave a reload with an in-flight request.
#![allow(clippy::disallowed_methods)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use coffer_client::{
    ByteRange, ClientOptions, ClientRegistry, Environment, Error, ListObjectsV2Params, Operation,
    Outcome, PutMode, RetryPolicy, UploadOptions,
};
use common::{Fault, Server, data, source};
use futures::StreamExt as _;
use http::Method;
use md5::{Digest, Md5};

const MIB: usize = 1 << 20;

#[tokio::test]
async fn put_get_head_delete_roundtrip_with_odd_keys() {
    let s = Server::start("us-east-1").await;
    let (c, _) = s.client(None, 3);
    let key = "dir/a b+c/été ünïcode.bin";
    let out = c
        .put_object(
            "bkt",
            key,
            Bytes::from_static(b"hello world"),
            &PutMode::Overwrite,
        )
        .await
        .unwrap();
    assert_eq!(out.etag.as_str(), hex::encode(Md5::digest(b"hello world")));
    assert_eq!(s.get("bkt", key).unwrap().data.as_ref(), b"hello world");
    let meta = c.head_object("bkt", key).await.unwrap();
    assert_eq!((meta.size, &meta.etag), (11, &out.etag));
    assert_eq!(
        c.get_object_bytes("bkt", key, None).await.unwrap().as_ref(),
        b"hello world"
    );
    assert_eq!(
        c.get_object_bytes("bkt", key, Some(ByteRange::new(6, 11)))
            .await
            .unwrap()
            .as_ref(),
        b"world"
    );
    let ranged = c
        .get_object("bkt", key, Some(ByteRange::from_offset(2)))
        .await
        .unwrap();
    assert_eq!(
        (ranged.body_start, ranged.body_length, ranged.meta.size),
        (2, 9, 11)
    );
    c.delete_object("bkt", key).await.unwrap();
    let missing = c.head_object("bkt", key).await.unwrap_err();
    assert!(matches!(missing, Error::NotFound(_)), "{missing}");
    let missing = c.get_object("bkt", key, None).await.unwrap_err();
    assert!(
        matches!(&missing, Error::NotFound(f) if f.code == "NoSuchKey" && f.request_id.as_deref() == Some("REQ123")),
        "{missing}"
    );
    // The signed payload hash is sent over plain HTTP.
    let put = s
        .log()
        .into_iter()
        .find(|l| l.method == Method::PUT)
        .unwrap();
    assert_eq!(
        put.headers["x-amz-content-sha256"],
        hex::encode(sha2::Sha256::digest(b"hello world")).as_str()
    );
    let m = c.metering();
    assert_eq!(m.operation(Operation::PutObject).bytes_sent, 11);
    assert_eq!(
        m.operation(Operation::HeadObject)
            .outcomes
            .get(&Outcome::NotFound),
        Some(&1)
    );
}

#[tokio::test]
async fn conditional_writes() {
    let s = Server::start("us-east-1").await;
    let (c, _) = s.client(None, 3);
    let first = c
        .put_object("b", "lease", Bytes::from_static(b"v1"), &PutMode::Create)
        .await
        .unwrap();
    let again = c
        .put_object("b", "lease", Bytes::from_static(b"v2"), &PutMode::Create)
        .await
        .unwrap_err();
    assert!(matches!(again, Error::PreconditionFailed(_)), "{again}");
    let second = c
        .put_object(
            "b",
            "lease",
            Bytes::from_static(b"v2"),
            &PutMode::Update(first.etag.clone()),
        )
        .await
        .unwrap();
    let stale = c
        .put_object(
            "b",
            "lease",
            Bytes::from_static(b"v3"),
            &PutMode::Update(first.etag),
        )
        .await
        .unwrap_err();
    assert!(matches!(stale, Error::PreconditionFailed(_)), "{stale}");
    assert_eq!(s.get("b", "lease").unwrap().etag, second.etag.as_str());
    // Ceph wants unquoted ETags in If-Match.
    c.set_etag_quoting(coffer_client::EtagQuoting::Unquoted);
    c.put_object(
        "b",
        "lease",
        Bytes::from_static(b"v4"),
        &PutMode::Update(second.etag.clone()),
    )
    .await
    .unwrap();
    let last = s
        .log()
        .into_iter()
        .rev()
        .find(|l| l.method == Method::PUT)
        .unwrap();
    assert_eq!(last.headers["if-match"], second.etag.as_str());
}

#[tokio::test]
async fn a_conflict_409_is_retried() {
    let s = Server::start("us-east-1").await;
    let (c, sleeper) = s.client(None, 3);
    s.fault(
        Some(Method::PUT),
        Fault::Status {
            status: 409,
            code: "ConditionalRequestConflict",
            retry_after: None,
        },
    );
    c.put_object("b", "k", Bytes::from_static(b"x"), &PutMode::Create)
        .await
        .unwrap();
    assert_eq!(sleeper.slept().len(), 1);
}

#[tokio::test]
async fn an_ambiguous_conditional_put_recognises_its_own_write() {
    let s = Server::start("us-east-1").await;
    let (c, _) = s.client(None, 3);
    // The first attempt is stored but its answer is lost; the replay then gets 412.
    s.put("b", "gen-1", b"our bytes");
    s.fault(Some(Method::PUT), Fault::Reset);
    let out = c
        .put_object(
            "b",
            "gen-1",
            Bytes::from_static(b"our bytes"),
            &PutMode::Create,
        )
        .await
        .unwrap();
    assert_eq!(out.etag.as_str(), hex::encode(Md5::digest(b"our bytes")));
    // Someone else's bytes are a real precondition failure.
    s.put("b", "gen-2", b"their bytes");
    s.fault(Some(Method::PUT), Fault::Reset);
    let e = c
        .put_object(
            "b",
            "gen-2",
            Bytes::from_static(b"our bytes"),
            &PutMode::Create,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::PreconditionFailed(_)), "{e}");
}

#[tokio::test]
async fn multipart_upload_streams_with_bounded_parallel_parts_and_downloads_identically() {
    let s = Server::start("us-east-1").await;
    let (c, _) = s.client(None, 3);
    let blob = data(23 * MIB + 12345, 7);
    let opts = UploadOptions::default()
        .with_part_size(5 * MIB)
        .with_parts_in_flight(3)
        .with_mode(PutMode::Create);
    let out = c
        .upload("b", "big/blob", blob.len() as u64, source(&blob), &opts)
        .await
        .unwrap();
    assert!(out.etag.as_str().ends_with("-5"), "{}", out.etag);
    assert_eq!(s.count(&Method::PUT, "partNumber"), 5);
    let peak = s.state.lock().unwrap().max_parts_in_flight_seen;
    assert!((2..=3).contains(&peak), "parts in flight peaked at {peak}");
    let complete = s
        .log()
        .into_iter()
        .find(|l| l.method == Method::POST && l.query.contains("uploadId"))
        .unwrap();
    assert_eq!(complete.headers["if-none-match"], "*");
    let got = c.get_object("b", "big/blob", None).await.unwrap();
    assert_eq!(got.meta.size, blob.len() as u64);
    let mut body = got.body;
    let mut received = Vec::with_capacity(blob.len());
    while let Some(chunk) = body.next().await {
        received.extend_from_slice(&chunk.unwrap());
    }
    assert!(received == blob, "downloaded bytes differ");
    // A small upload is a single PutObject.
    c.upload("b", "small", 3, source(b"abc"), &opts)
        .await
        .unwrap();
    assert_eq!(s.get("b", "small").unwrap().data.as_ref(), b"abc");
    // A source shorter than announced fails and aborts the upload.
    let e = c
        .upload(
            "b",
            "short",
            (12 * MIB) as u64,
            source(&blob[..11 * MIB]),
            &opts,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Source { .. }), "{e}");
    assert_eq!(
        s.count(&Method::DELETE, "uploadId"),
        1,
        "the failed upload was aborted"
    );
    assert!(s.state.lock().unwrap().uploads.is_empty());
}

#[tokio::test]
async fn a_truncated_download_resumes_byte_identically() {
    let s = Server::start("us-east-1").await;
    let (c, _) = s.client(None, 3);
    let blob = data(3 * MIB + 17, 3);
    s.put("b", "k", &blob);
    s.fault(Some(Method::GET), Fault::Truncate { after: MIB + 5 });
    s.fault(Some(Method::GET), Fault::Truncate { after: 1000 });
    let got = c.get_object_bytes("b", "k", None).await.unwrap();
    assert!(got.as_ref() == blob.as_slice(), "resumed download differs");
    let gets: Vec<_> = s
        .log()
        .into_iter()
        .filter(|l| l.method == Method::GET)
        .collect();
    assert_eq!(gets.len(), 3);
    let etag = format!("\"{}\"", hex::encode(Md5::digest(&blob)));
    assert_eq!(
        gets[1].headers["range"],
        format!("bytes={}-{}", MIB + 5, blob.len() - 1).as_str()
    );
    assert_eq!(gets[1].headers["if-match"], etag.as_str());
    assert_eq!(
        gets[2].headers["range"],
        format!("bytes={}-{}", MIB + 5 + 1000, blob.len() - 1).as_str()
    );
    assert_eq!(c.metering().operation(Operation::GetObject).retries, 2);
}

#[tokio::test]
async fn a_resumed_download_never_stitches_a_changed_object() {
    let s = Server::start("us-east-1").await;
    let (c, _) = s.client(None, 3);
    s.put("b", "k", &data(MIB, 1));
    s.fault(Some(Method::GET), Fault::Truncate { after: 4096 });
    let got = c.get_object("b", "k", None).await.unwrap();
    let mut body = got.body;
    let first = body.next().await.unwrap().unwrap();
    assert!(!first.is_empty());
    // The object changes while we read.
    s.put("b", "k", &data(MIB, 2));
    let mut err = None;
    while let Some(chunk) = body.next().await {
        if let Err(e) = chunk {
            err = Some(e);
        }
    }
    let err = err.expect("the read must fail");
    assert!(matches!(err, Error::PreconditionFailed(_)), "{err}");
}

#[tokio::test]
async fn a_ranged_read_truncated_too_often_fails_cleanly() {
    let s = Server::start("us-east-1").await;
    let (c, _) = s.client(None, 1);
    s.put("b", "k", &data(100_000, 1));
    s.fault(Some(Method::GET), Fault::Truncate { after: 10 });
    s.fault(Some(Method::GET), Fault::Truncate { after: 10 });
    let e = c
        .get_object_bytes("b", "k", Some(ByteRange::new(100, 50_000)))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ConnectionLost { .. }), "{e}");
    assert!(e.to_string().contains("GetObject b/k"), "{e}");
}

#[tokio::test]
async fn throttling_is_retried_with_backoff_and_retry_after_then_gives_up() {
    let s = Server::start("us-east-1").await;
    let (c, sleeper) = s.client(None, 3);
    s.fault(
        None,
        Fault::Status {
            status: 503,
            code: "SlowDown",
            retry_after: None,
        },
    );
    s.fault(
        None,
        Fault::Status {
            status: 500,
            code: "InternalError",
            retry_after: Some(2),
        },
    );
    c.put_object("b", "k", Bytes::from_static(b"x"), &PutMode::Overwrite)
        .await
        .unwrap();
    // Full jitter with the fixed draw 0.5: 50ms, then Retry-After 2s wins over 100ms.
    assert_eq!(
        sleeper.slept(),
        vec![Duration::from_millis(50), Duration::from_secs(2)]
    );
    let m = c.metering();
    let put = m.operation(Operation::PutObject);
    assert_eq!((put.requests, put.retries), (3, 2));
    assert_eq!(put.outcomes.get(&Outcome::Throttled), Some(&1));
    assert_eq!(put.outcomes.get(&Outcome::ServerError), Some(&1));
    assert!(
        m.concurrency_limit < 50,
        "SlowDown lowered the concurrency limit to {}",
        m.concurrency_limit
    );
    for _ in 0..4 {
        s.fault(
            None,
            Fault::Status {
                status: 503,
                code: "SlowDown",
                retry_after: None,
            },
        );
    }
    let e = c
        .put_object("b", "k", Bytes::from_static(b"x"), &PutMode::Overwrite)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Throttled(_)), "{e}");
    assert!(
        e.to_string().starts_with(
            "S3 SlowDown (503) on PutObject b/k: test says SlowDown [request id REQ123]"
        ),
        "{e}"
    );
}

#[tokio::test]
async fn auth_errors_are_never_retried() {
    let s = Server::start("us-east-1").await;
    let (c, sleeper) = s.client_with(None, 3, "AKIDBAD", "whatever-secret");
    let e = c
        .put_object("b", "k", Bytes::from_static(b"x"), &PutMode::Overwrite)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::AccessDenied(f) if f.code == "InvalidAccessKeyId"),
        "{e}"
    );
    assert!(sleeper.slept().is_empty());
    assert!(!format!("{e} {e:?}").contains("whatever-secret"));
    assert_eq!(s.log().len(), 1);
}

#[tokio::test]
async fn resets_are_retried_for_idempotent_requests_only() {
    let s = Server::start("us-east-1").await;
    let (c, _) = s.client(None, 3);
    s.fault(Some(Method::PUT), Fault::Reset);
    c.put_object("b", "k", Bytes::from_static(b"x"), &PutMode::Overwrite)
        .await
        .unwrap();
    assert_eq!(s.count(&Method::PUT, ""), 2);
    // CreateMultipartUpload is a POST: a reset after sending is ambiguous, not replayed.
    s.fault(Some(Method::POST), Fault::Reset);
    let e = c.create_multipart_upload("b", "k").await.unwrap_err();
    assert!(matches!(e, Error::ConnectionLost { .. }), "{e}");
    assert_eq!(s.count(&Method::POST, "uploads"), 1);
    // A server-declared failure is safe to retry even for it.
    s.fault(
        Some(Method::POST),
        Fault::Status {
            status: 503,
            code: "SlowDown",
            retry_after: None,
        },
    );
    c.create_multipart_upload("b", "k").await.unwrap();
    assert_eq!(s.count(&Method::POST, "uploads"), 3);
}

#[tokio::test]
async fn region_self_corrects_once_and_is_remembered() {
    let s = Server::start("garage").await;
    let (c, _) = s.client(None, 3);
    assert_eq!(c.region_for("b"), "us-east-1");
    c.put_object("b", "k", Bytes::from_static(b"x"), &PutMode::Overwrite)
        .await
        .unwrap();
    assert_eq!(c.region_for("b"), "garage");
    c.head_object("b", "k").await.unwrap();
    assert_eq!(
        s.log().len(),
        3,
        "one failed attempt, then the corrected PUT, then HEAD"
    );
    // A non-AWS endpoint has one region: the correction serves every bucket.
    assert_eq!(c.region_for("other"), "garage");
    // A redirect that keeps naming a region we just switched to is reported, not looped.
    s.fault(
        None,
        Fault::Redirect {
            region: "eu-west-1",
        },
    );
    s.fault(
        None,
        Fault::Redirect {
            region: "ap-south-1",
        },
    );
    let e = c.head_object("b", "k").await.unwrap_err();
    assert!(
        matches!(&e, Error::WrongRegion { expected, .. } if expected == "ap-south-1"),
        "{e}"
    );
}

#[tokio::test]
async fn complete_and_copy_with_an_error_inside_a_200() {
    let s = Server::start("us-east-1").await;
    let (c, _) = s.client(None, 2);
    s.put("b", "src", b"data");
    s.fault(
        Some(Method::PUT),
        Fault::ErrorIn200 {
            code: "InternalError",
        },
    );
    let out = c.copy_object("b", "src", "b", "dst").await.unwrap();
    assert_eq!(out.etag.as_str(), hex::encode(Md5::digest(b"data")));
    assert_eq!(
        s.count(&Method::PUT, ""),
        2,
        "the 200-with-InternalError was retried"
    );
    s.fault(
        Some(Method::PUT),
        Fault::ErrorIn200 {
            code: "AccessDenied",
        },
    );
    let e = c.copy_object("b", "src", "b", "dst2").await.unwrap_err();
    assert!(
        matches!(&e, Error::AccessDenied(f) if f.status == 200),
        "{e}"
    );
    let up = c.create_multipart_upload("b", "mp").await.unwrap();
    let etag = c
        .upload_part("b", "mp", &up, 1, Bytes::from_static(b"part"))
        .await
        .unwrap();
    let parts = [coffer_client::CompletedPart {
        part_number: 1,
        etag,
    }];
    s.fault(Some(Method::POST), Fault::ErrorIn200 { code: "SlowDown" });
    s.fault(Some(Method::POST), Fault::ErrorIn200 { code: "SlowDown" });
    s.fault(Some(Method::POST), Fault::ErrorIn200 { code: "SlowDown" });
    let e = c
        .complete_multipart_upload("b", "mp", &up, &parts, &PutMode::Overwrite)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Throttled(_)), "{e}");
    c.complete_multipart_upload("b", "mp", &up, &parts, &PutMode::Overwrite)
        .await
        .unwrap();
    assert_eq!(s.get("b", "mp").unwrap().data.as_ref(), b"part");
}

#[tokio::test]
async fn a_replayed_completion_recognises_its_own_upload() {
    let s = Server::start("us-east-1").await;
    let (c, _) = s.client(None, 3);
    let up = c.create_multipart_upload("b", "mp").await.unwrap();
    let etag = c
        .upload_part("b", "mp", &up, 1, Bytes::from_static(b"part"))
        .await
        .unwrap();
    let parts = [coffer_client::CompletedPart {
        part_number: 1,
        etag,
    }];
    // Simulate: the first completion succeeded server-side, the answer was lost.
    c.complete_multipart_upload("b", "mp", &up, &parts, &PutMode::Overwrite)
        .await
        .unwrap();
    s.fault(Some(Method::POST), Fault::Reset);
    let out = c
        .complete_multipart_upload("b", "mp", &up, &parts, &PutMode::Create)
        .await
        .unwrap();
    assert!(out.etag.as_str().ends_with("-1"));
}

#[tokio::test]
async fn delete_objects_sends_content_md5_and_reports_per_key_errors() {
    let s = Server::start("us-east-1").await;
    let (c, _) = s.client(None, 3);
    let keys: Vec<String> = (0..2500)
        .map(|i| format!("k/{i:05}&x"))
        .chain(["locked-1".to_owned()])
        .collect();
    for k in &keys {
        s.put("b", k, b"1");
    }
    let out = c.delete_objects("b", &keys).await.unwrap();
    assert_eq!(out.errors.len(), 1);
    assert_eq!(
        (out.errors[0].key.as_str(), out.errors[0].code.as_str()),
        ("locked-1", "AccessDenied")
    );
    assert_eq!(
        s.count(&Method::POST, "delete"),
        3,
        "batches of at most 1000"
    );
    assert_eq!(s.state.lock().unwrap().objects.len(), 1);
}

#[tokio::test]
async fn listing_paginates_and_decodes_keys() {
    let s = Server::start("us-east-1").await;
    let (c, _) = s.client(None, 3);
    for i in 0..25 {
        s.put("b", &format!("p/é {i:02}+x"), b"1");
    }
    s.put("b", "other", b"1");
    let page = c
        .list_objects_v2(
            "b",
            &ListObjectsV2Params {
                prefix: Some("p/".into()),
                max_keys: Some(10),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(page.is_truncated);
    assert_eq!(page.contents[0].key, "p/é 00+x");
    let all = c.list_all("b", "p/").await.unwrap();
    assert_eq!(all.len(), 25);
    assert_eq!(all[24].key, "p/é 24+x");
}

#[tokio::test]
async fn missing_credentials_say_where_they_were_looked_for() {
    let s = Server::start("us-east-1").await;
    let mut cfg = s.config(None, "a", "b");
    cfg.secure.credentials = None;
    let c = coffer_client::S3Client::new(&cfg, &Environment::empty(), ClientOptions::default())
        .unwrap();
    let e = c.head_bucket("b").await.unwrap_err();
    assert!(matches!(e, Error::InvalidConfig { .. }), "{e}");
    assert!(e.to_string().contains("s3.client.test.access_key"), "{e}");
    assert!(s.log().is_empty());
}

#[tokio::test]
async fn connection_refused_is_a_connect_error_after_retries() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut settings = coffer_client::ClientSettings::default();
    settings.endpoint = Some(format!("http://127.0.0.1:{port}"));
    let mut secure = coffer_client::SecureClientSettings::default();
    secure.credentials = Some(coffer_client::Credentials::new(
        "a",
        secrecy::SecretString::from("b"),
        None,
    ));
    let cfg = coffer_client::ClientConfig::new("refused", settings, secure);
    let opts = ClientOptions::default().with_retry(RetryPolicy::for_test(2));
    let c = coffer_client::S3Client::new(&cfg, &Environment::empty(), opts).unwrap();
    let e = c.head_bucket("b").await.unwrap_err();
    assert!(matches!(e, Error::Connect { .. }), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("HeadBucket b at http://127.0.0.1:{port}")),
        "{e}"
    );
    assert_eq!(c.metering().operation(Operation::HeadBucket).requests, 3);
}

#[tokio::test]
async fn reload_swaps_credentials_while_in_flight_requests_finish_on_the_old_ones() {
    let s = Server::start("us-east-1").await;
    let mut flat = std::collections::BTreeMap::new();
    flat.insert("s3.client.default.endpoint".to_owned(), s.endpoint());
    let secure = |ak: &str| {
        let mut m = std::collections::BTreeMap::new();
        m.insert(
            "s3.client.default.access_key".to_owned(),
            coffer_client::SecureValue::Text(ak.to_owned().into()),
        );
        m.insert(
            "s3.client.default.secret_key".to_owned(),
            coffer_client::SecureValue::Text("sk".to_owned().into()),
        );
        m
    };
    let reg = Arc::new(
        ClientRegistry::new(
            &flat,
            &secure("AKIDOLD"),
            &Environment::empty(),
            ClientOptions::default(),
        )
        .unwrap(),
    );
    let c = reg.client("default").unwrap();
    s.fault(Some(Method::PUT), Fault::Delay(Duration::from_millis(300)));
    let slow = tokio::spawn({
        let c = c.clone();
        async move {
            c.put_object("b", "slow", Bytes::from_static(b"1"), &PutMode::Overwrite)
                .await
        }
    });
    // Reload only once the slow request has reached the server (signed with the old key).
    for _ in 0..200 {
        if s.log().iter().any(|l| l.path.ends_with("/slow")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    reg.reload(&flat, &secure("AKIDNEW"), &Environment::empty())
        .unwrap();
    c.put_object("b", "fast", Bytes::from_static(b"2"), &PutMode::Overwrite)
        .await
        .unwrap();
    slow.await.unwrap().unwrap();
    let auth_of = |key: &str| {
        s.log()
            .into_iter()
            .find(|l| l.path.ends_with(key))
            .unwrap()
            .headers["authorization"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert!(auth_of("/slow").contains("Credential=AKIDOLD/"));
    assert!(auth_of("/fast").contains("Credential=AKIDNEW/"));
}

#[tokio::test]
async fn create_bucket_rebuilds_its_location_constraint_after_a_region_correction() {
    let s = Server::start("garage").await;
    let (c, _) = s.client(None, 3);
    c.create_bucket("fresh").await.unwrap();
    let puts: Vec<_> = s
        .log()
        .into_iter()
        .filter(|l| l.method == Method::PUT)
        .collect();
    assert_eq!(
        puts.len(),
        3,
        "wrong signing region, then missing constraint, then right"
    );
    assert!(puts[2].body_len > 0);
    let (c2, _) = s.client(Some("garage"), 3);
    c2.create_bucket("fresh2").await.unwrap();
}

#[tokio::test]
async fn requests_go_through_the_configured_proxy_with_its_credentials() {
    let s = Server::start("us-east-1").await;
    let mut flat = std::collections::BTreeMap::new();
    // The endpoint does not resolve: only the proxy can carry the request.
    flat.insert(
        "s3.client.p.endpoint".to_owned(),
        "http://s3.example.invalid:9000".to_owned(),
    );
    flat.insert(
        "s3.client.p.path_style_access".to_owned(),
        "true".to_owned(),
    );
    flat.insert("s3.client.p.proxy.host".to_owned(), "127.0.0.1".to_owned());
    flat.insert(
        "s3.client.p.proxy.port".to_owned(),
        s.addr.port().to_string(),
    );
    let mut secure = std::collections::BTreeMap::new();
    let text = |v: &str| coffer_client::SecureValue::Text(v.to_owned().into());
    secure.insert("s3.client.p.access_key".to_owned(), text("AKIDPROXY"));
    secure.insert("s3.client.p.secret_key".to_owned(), text("sk"));
    secure.insert("s3.client.p.proxy.username".to_owned(), text("puser"));
    secure.insert("s3.client.p.proxy.password".to_owned(), text("ppass"));
    let reg = ClientRegistry::new(
        &flat,
        &secure,
        &Environment::empty(),
        ClientOptions::default(),
    )
    .unwrap();
    let c = reg.client("p").unwrap();
    c.put_object(
        "b",
        "via-proxy",
        Bytes::from_static(b"1"),
        &PutMode::Overwrite,
    )
    .await
    .unwrap();
    let logged = s.log().pop().unwrap();
    assert_eq!(logged.path, "/b/via-proxy");
    assert_eq!(logged.headers["host"], "s3.example.invalid:9000");
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "puser:ppass")
    );
    assert_eq!(logged.headers["proxy-authorization"], basic.as_str());
    let debug = format!("{reg:?} {c:?}");
    assert!(
        !debug.contains("ppass") && !debug.contains("AKIDPROXY"),
        "{debug}"
    );
}

#[tokio::test]
async fn a_bare_400_to_a_head_is_probed_for_the_region() {
    // Garage answers a HEAD signed for the wrong region with a bare 400: no body, no
    // x-amz-bucket-region. The client asks a GET, which names the region, and corrects.
    let s = Server::start("garage").await;
    s.put("b", "k", b"1");
    let (c, _) = s.client(None, 3);
    let meta = c.head_object("b", "k").await.unwrap();
    assert_eq!(meta.size, 1);
    let log = s.log();
    assert_eq!(log.len(), 3, "HEAD (bare 400), GET ?location probe, HEAD");
    assert_eq!(
        (log[1].method.clone(), log[1].query.as_str()),
        (Method::GET, "location=")
    );
    assert_eq!(c.region_for("b"), "garage");
}

#[tokio::test]
async fn a_stalled_answer_is_a_timeout_and_is_retried() {
    let s = Server::start("us-east-1").await;
    let mut cfg = s.config(None, "AKIDTEST", "sk");
    cfg.settings.read_timeout = Duration::from_millis(150);
    let opts = ClientOptions::default().with_retry(RetryPolicy::for_test(1));
    let c = coffer_client::S3Client::new(&cfg, &Environment::empty(), opts).unwrap();
    s.put("b", "k", b"1");
    s.fault(Some(Method::HEAD), Fault::Delay(Duration::from_millis(600)));
    c.head_object("b", "k").await.unwrap();
    s.fault(Some(Method::HEAD), Fault::Delay(Duration::from_millis(600)));
    s.fault(Some(Method::HEAD), Fault::Delay(Duration::from_millis(600)));
    let e = c.head_object("b", "k").await.unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(
        e.to_string()
            .starts_with("timed out on HeadObject b/k at http://127.0.0.1:"),
        "{e}"
    );
}

#[tokio::test]
async fn unsigned_payload_is_never_used_over_plain_http() {
    let s = Server::start("us-east-1").await;
    let mut options = ClientOptions::default();
    options.unsigned_payload_over_https = true;
    let c = coffer_client::S3Client::new(
        &s.config(None, "AKIDTEST", "sk"),
        &Environment::empty(),
        options,
    )
    .unwrap();
    c.put_object("b", "k", Bytes::from_static(b"abc"), &PutMode::Overwrite)
        .await
        .unwrap();
    let put = s.log().pop().unwrap();
    assert_eq!(
        put.headers["x-amz-content-sha256"],
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[tokio::test]
async fn an_empty_completion_etag_is_filled_in() {
    let s = Server::start("us-east-1").await;
    let (c, _) = s.client(None, 3);
    let up = c.create_multipart_upload("b", "mp").await.unwrap();
    let etag = c
        .upload_part("b", "mp", &up, 1, Bytes::from_static(b"part"))
        .await
        .unwrap();
    let parts = [coffer_client::CompletedPart {
        part_number: 1,
        etag,
    }];
    s.fault(Some(Method::POST), Fault::EmptyCompleteEtag);
    let out = c
        .complete_multipart_upload("b", "mp", &up, &parts, &PutMode::Overwrite)
        .await
        .unwrap();
    assert_eq!(out.etag.as_str(), s.get("b", "mp").unwrap().etag);
}
