//! The fake S3 server driven over real sockets by `raw_s3` (signed with AWS's `aws-sigv4`),
//! covering every operation, each fault kind, conditional-write atomicity and the auth errors.

#![allow(clippy::disallowed_methods)] // Tests read the wall clock to build skewed requests.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, TimeDelta, Utc};
use coffer_testfixtures::fake_s3::{
    ConditionalWrites, DEFAULT_BUCKET, ErrorCode, FakeS3, FakeS3Config, FaultAction, FaultRule,
    ManualClock, Operation, Outcome,
};
use coffer_testfixtures::raw_s3::{PayloadMode, RawResponse, RawS3, RawS3Error};
use md5::{Digest, Md5};

const B: &str = DEFAULT_BUCKET;

fn content_md5(body: &[u8]) -> String {
    STANDARD.encode(Md5::digest(body))
}

fn md5_hex(body: &[u8]) -> String {
    hex::encode(Md5::digest(body))
}

async fn start() -> (FakeS3, RawS3) {
    let fake = FakeS3::start_default().await.expect("fake starts");
    let s3 = fake.raw_client();
    (fake, s3)
}

async fn put(s3: &RawS3, key: &str, body: &[u8], headers: &[(&str, &str)]) -> RawResponse {
    s3.send("PUT", &RawS3::object_path(B, key), headers, body.to_vec())
        .await
        .expect("transport")
}

async fn get(s3: &RawS3, key: &str, headers: &[(&str, &str)]) -> RawResponse {
    s3.send("GET", &RawS3::object_path(B, key), headers, Vec::new())
        .await
        .expect("transport")
}

fn delete_body(keys: &[&str], quiet: bool) -> Vec<u8> {
    let mut xml = String::from("<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    if quiet {
        xml.push_str("<Quiet>true</Quiet>");
    }
    for key in keys {
        write!(
            xml,
            "<Object><Key>{}</Key></Object>",
            key.replace('&', "&amp;").replace('<', "&lt;")
        )
        .unwrap();
    }
    xml.push_str("</Delete>");
    xml.into_bytes()
}

#[tokio::test]
async fn put_get_head_delete_round_trip_awkward_keys() {
    let (fake, s3) = start().await;
    for key in [
        "plain.txt",
        "dir/with space/file name.bin",
        "plus+sign/a+b",
        "percent%25/100%",
        "unicode/é ü 한글 ሴ",
        "tilde~and-dots..._",
        "amp&eq=q?hash#",
    ] {
        let body = format!("content of {key}").into_bytes();
        let r = put(
            &s3,
            key,
            &body,
            &[
                ("content-type", "text/plain"),
                ("x-amz-meta-origin", "test"),
            ],
        )
        .await;
        assert_eq!(r.status, 200, "{key}: {r:?}");
        let etag = format!("\"{}\"", md5_hex(&body));
        assert_eq!(r.header("etag"), Some(etag.as_str()), "{key}");

        let r = get(&s3, key, &[]).await;
        assert_eq!(r.status, 200, "{key}: {r:?}");
        assert_eq!(r.body, body, "{key}");
        assert_eq!(r.header("content-type"), Some("text/plain"));
        assert_eq!(r.header("x-amz-meta-origin"), Some("test"));
        assert_eq!(r.header("etag"), Some(etag.as_str()));
        assert!(r.header("last-modified").is_some());
        assert!(r.header("x-amz-request-id").is_some());

        let r = s3
            .send("HEAD", &RawS3::object_path(B, key), &[], Vec::new())
            .await
            .unwrap();
        assert_eq!(r.status, 200);
        assert!(r.body.is_empty());
        assert_eq!(
            r.header("content-length"),
            Some(body.len().to_string().as_str())
        );
        assert_eq!(
            fake.object(B, key).unwrap().data,
            body,
            "stored under the decoded key"
        );

        let r = s3
            .send("DELETE", &RawS3::object_path(B, key), &[], Vec::new())
            .await
            .unwrap();
        assert_eq!(r.status, 204);
        assert!(fake.object(B, key).is_none());
    }
    // Deleting a missing key is fine; reading it is NoSuchKey, HEAD is a bare 404.
    let r = s3
        .send("DELETE", &RawS3::object_path(B, "missing"), &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(r.status, 204);
    let r = get(&s3, "missing", &[]).await;
    assert_eq!((r.status, r.s3_code().as_deref()), (404, Some("NoSuchKey")));
    assert_eq!(r.xml_value("Key").as_deref(), Some("missing"));
    assert!(r.xml_value("RequestId").is_some());
    let r = s3
        .send("HEAD", &RawS3::object_path(B, "missing"), &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn ranged_and_conditional_reads() {
    let (_fake, s3) = start().await;
    let body: Vec<u8> = (0..=255u8).collect();
    let etag = put(&s3, "r", &body, &[])
        .await
        .header("etag")
        .unwrap()
        .to_owned();

    let r = get(&s3, "r", &[("range", "bytes=10-19")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, body[10..20]);
    assert_eq!(r.header("content-range"), Some("bytes 10-19/256"));
    let r = get(&s3, "r", &[("range", "bytes=250-")]).await;
    assert_eq!((r.status, &r.body[..]), (206, &body[250..]));
    let r = get(&s3, "r", &[("range", "bytes=-6")]).await;
    assert_eq!((r.status, &r.body[..]), (206, &body[250..]));
    assert_eq!(r.header("content-range"), Some("bytes 250-255/256"));
    let r = get(&s3, "r", &[("range", "bytes=100-10000")]).await;
    assert_eq!((r.status, r.body.len()), (206, 156));
    let r = get(&s3, "r", &[("range", "bytes=256-")]).await;
    assert_eq!(
        (r.status, r.s3_code().as_deref()),
        (416, Some("InvalidRange"))
    );

    // Resuming with If-Match on the first ETag.
    let r = get(&s3, "r", &[("range", "bytes=128-"), ("if-match", &etag)]).await;
    assert_eq!(r.status, 206);
    put(&s3, "r", b"changed", &[]).await;
    let r = get(&s3, "r", &[("range", "bytes=128-"), ("if-match", &etag)]).await;
    assert_eq!(
        (r.status, r.s3_code().as_deref()),
        (412, Some("PreconditionFailed"))
    );
    let new_etag = format!("\"{}\"", md5_hex(b"changed"));
    let r = get(&s3, "r", &[("if-none-match", &new_etag)]).await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    let r = get(&s3, "r", &[("if-none-match", &etag)]).await;
    assert_eq!((r.status, &r.body[..]), (200, &b"changed"[..]));
}

#[tokio::test]
async fn conditional_writes_follow_aws() {
    let (fake, s3) = start().await;
    let r = put(&s3, "c", b"v1", &[("if-none-match", "*")]).await;
    assert_eq!(r.status, 200);
    let v1 = r.header("etag").unwrap().to_owned();
    let r = put(&s3, "c", b"v2", &[("if-none-match", "*")]).await;
    assert_eq!(
        (r.status, r.s3_code().as_deref()),
        (412, Some("PreconditionFailed"))
    );
    let r = put(&s3, "c", b"v2", &[("if-match", "\"0123\"")]).await;
    assert_eq!(r.status, 412);
    let r = put(&s3, "c", b"v2", &[("if-match", &v1)]).await;
    assert_eq!(r.status, 200);
    // Ceph 16 wants the ETag unquoted; accept both.
    let v2 = md5_hex(b"v2");
    let r = put(&s3, "c", b"v3", &[("if-match", &v2)]).await;
    assert_eq!(r.status, 200);
    let r = put(&s3, "nope", b"x", &[("if-match", &v1)]).await;
    assert_eq!((r.status, r.s3_code().as_deref()), (404, Some("NoSuchKey")));
    let r = put(&s3, "c", b"x", &[("if-none-match", "\"etag\"")]).await;
    assert_eq!(
        (r.status, r.s3_code().as_deref()),
        (501, Some("NotImplemented"))
    );
    assert_eq!(&fake.object(B, "c").unwrap().data[..], b"v3");

    // Conditional delete.
    let r = s3
        .send(
            "DELETE",
            &RawS3::object_path(B, "c"),
            &[("if-match", &v1)],
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 412);
    let v3 = format!("\"{}\"", md5_hex(b"v3"));
    let r = s3
        .send(
            "DELETE",
            &RawS3::object_path(B, "c"),
            &[("if-match", &v3)],
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 204);

    // Garage mode: the headers are ignored and writes overwrite.
    fake.set_conditional_writes(ConditionalWrites::Ignore);
    assert_eq!(
        put(&s3, "g", b"1", &[("if-none-match", "*")]).await.status,
        200
    );
    assert_eq!(
        put(&s3, "g", b"2", &[("if-none-match", "*")]).await.status,
        200
    );
    assert_eq!(&fake.object(B, "g").unwrap().data[..], b"2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_create_only_puts_have_exactly_one_winner() {
    let (fake, s3) = start().await;
    let mut tasks = Vec::new();
    for i in 0..48u32 {
        let s3 = s3.clone();
        tasks.push(tokio::spawn(async move {
            let body = format!("writer {i}").into_bytes();
            let r = s3
                .send(
                    "PUT",
                    &RawS3::object_path(B, "lease"),
                    &[("if-none-match", "*")],
                    body.clone(),
                )
                .await
                .expect("transport");
            (r.status, body)
        }));
    }
    let mut winners = Vec::new();
    let mut losers = 0;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            200 => winners.push(body),
            412 => losers += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one create-only put wins");
    assert_eq!(losers, 47);
    assert_eq!(fake.object(B, "lease").unwrap().data, winners[0]);
    assert_eq!(fake.count(Operation::PutObject), 48);
    assert!(
        fake.requests(Operation::PutObject)
            .iter()
            .all(coffer_testfixtures::fake_s3::LogEntry::is_conditional)
    );
}

#[tokio::test]
async fn delete_objects_requires_content_md5() {
    let (fake, s3) = start().await;
    for key in ["a", "b & c", "d"] {
        fake.put_object(B, key, &b"x"[..]).unwrap();
    }
    let body = delete_body(&["a", "b & c", "never-existed"], false);
    let path = format!("/{B}?delete");
    let r = s3.send("POST", &path, &[], body.clone()).await.unwrap();
    assert_eq!(
        (r.status, r.s3_code().as_deref()),
        (400, Some("InvalidRequest"))
    );
    assert!(r.xml_value("Message").unwrap().contains("Content-MD5"));
    assert_eq!(fake.keys(B).len(), 3, "nothing deleted");

    let r = s3
        .send(
            "POST",
            &path,
            &[("content-md5", &content_md5(b"other"))],
            body.clone(),
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.s3_code().as_deref()), (400, Some("BadDigest")));

    let md5 = content_md5(&body);
    let r = s3
        .send("POST", &path, &[("content-md5", &md5)], body)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.xml_values("Key"), vec!["a", "b & c", "never-existed"]);
    assert_eq!(fake.keys(B), vec!["d"]);

    // A checksum header instead of Content-MD5 is accepted too; Quiet lists nothing.
    let body = delete_body(&["d"], true);
    let sha = STANDARD.encode(sha2::Sha256::digest(&body));
    let r = s3
        .send("POST", &path, &[("x-amz-checksum-sha256", &sha)], body)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.xml_values("Key").is_empty());
    assert!(fake.keys(B).is_empty());
    let logged = fake.requests(Operation::DeleteObjects);
    assert_eq!(logged.len(), 4);

    // Per-key failures inside a 200 answer.
    for key in ["keep/1", "gone/1"] {
        fake.put_object(B, key, &b"x"[..]).unwrap();
    }
    fake.inject(
        FaultRule::new(FaultAction::FailKeys {
            key_prefix: "keep/".into(),
            code: ErrorCode::InternalError,
        })
        .operation(Operation::DeleteObjects),
    );
    let body = delete_body(&["keep/1", "gone/1"], true);
    let r = s3
        .send("POST", &path, &[("content-md5", &content_md5(&body))], body)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.xml_values("Key"), vec!["keep/1"]);
    assert_eq!(r.xml_value("Code").as_deref(), Some("InternalError"));
    assert_eq!(fake.keys(B), vec!["keep/1"]);
    assert_eq!(logged[0].header("content-md5"), None);
    assert_eq!(logged[2].header("content-md5"), Some(md5.as_str()));
}

fn list_path(query: &str) -> String {
    format!("/{B}?list-type=2&{query}")
}

#[tokio::test]
async fn list_objects_v2_paginates_2500_keys() {
    let (fake, s3) = start().await;
    let mut expected = Vec::new();
    for i in 0..2500 {
        let key = format!("idx/{:02}/{i:05}", i % 7);
        fake.put_object(B, &key, format!("{i}")).unwrap();
        expected.push(key);
    }
    fake.put_object(B, "other", &b"o"[..]).unwrap();
    expected.sort();

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut query = "prefix=idx%2F".to_owned();
        if let Some(t) = &token {
            write!(
                query,
                "&continuation-token={}",
                RawS3::encode_query_value(t)
            )
            .unwrap();
        }
        let r = s3
            .send("GET", &list_path(&query), &[], Vec::new())
            .await
            .unwrap();
        assert_eq!(r.status, 200);
        pages += 1;
        let keys = r.xml_values("Key");
        assert_eq!(r.xml_value("KeyCount"), Some(keys.len().to_string()));
        seen.extend(keys);
        if r.xml_value("IsTruncated").as_deref() == Some("true") {
            token = Some(
                r.xml_value("NextContinuationToken")
                    .expect("token when truncated"),
            );
        } else {
            assert!(r.xml_value("NextContinuationToken").is_none());
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, expected);

    // Delimiter and common prefixes, with a small max-keys.
    let r = s3
        .send(
            "GET",
            &list_path("prefix=idx%2F&delimiter=%2F&max-keys=5"),
            &[],
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        r.xml_values("Prefix"),
        vec![
            "idx/", "idx/00/", "idx/01/", "idx/02/", "idx/03/", "idx/04/"
        ]
    );
    assert_eq!(r.xml_value("IsTruncated").as_deref(), Some("true"));
    let token = r.xml_value("NextContinuationToken").unwrap();
    let r = s3
        .send(
            "GET",
            &list_path(&format!(
                "prefix=idx%2F&delimiter=%2F&continuation-token={}",
                RawS3::encode_query_value(&token)
            )),
            &[],
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(r.xml_values("Prefix"), vec!["idx/", "idx/05/", "idx/06/"]);
    assert!(r.xml_values("Key").is_empty());

    let r = s3
        .send(
            "GET",
            &list_path("start-after=idx%2F06%2F02498&max-keys=3"),
            &[],
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(r.xml_values("Key"), vec!["other"]);
    let r = s3
        .send("GET", &list_path("max-keys=0"), &[], Vec::new())
        .await
        .unwrap();
    assert!(r.xml_values("Key").is_empty());
    let r = s3
        .send(
            "GET",
            &list_path("continuation-token=%21%21"),
            &[],
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(r.s3_code().as_deref(), Some("InvalidArgument"));
}

#[tokio::test]
async fn list_encoding_type_url_encodes_keys_like_aws() {
    let (fake, s3) = start().await;
    for key in [
        "run books/x.txt",
        "a+b.txt",
        "a b.txt",
        "100%.csv",
        "한글/x.txt",
    ] {
        put(&s3, key, b"x", &[]).await;
    }
    let r = s3
        .send("GET", &list_path("encoding-type=url"), &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(r.xml_value("EncodingType").as_deref(), Some("url"));
    assert_eq!(
        r.xml_values("Key"),
        vec![
            "100%25.csv",
            "a+b.txt",
            "a%2Bb.txt",
            "run+books/x.txt",
            "%ED%95%9C%EA%B8%80/x.txt"
        ]
    );
    let r = s3
        .send(
            "GET",
            &list_path("encoding-type=url&delimiter=%2F"),
            &[],
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        r.xml_values("Prefix")[1..],
        ["run+books/".to_owned(), "%ED%95%9C%EA%B8%80/".to_owned()]
    );
    // In the query string, '+' is a space (form encoding), '%2B' a plus.
    let r = s3
        .send("GET", &list_path("prefix=a+b"), &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(r.xml_values("Key"), vec!["a b.txt"]);
    let r = s3
        .send("GET", &list_path("prefix=a%2Bb"), &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(r.xml_values("Key"), vec!["a+b.txt"]);
    // Without encoding-type, keys come back raw (XML-escaped only).
    let r = s3
        .send("GET", &list_path(""), &[], Vec::new())
        .await
        .unwrap();
    assert!(r.xml_values("Key").contains(&"a b.txt".to_owned()));
    assert_eq!(fake.keys(B).len(), 5);
    // Version 1 listing.
    let r = s3
        .send(
            "GET",
            &format!("/{B}?marker=a%2Bb.txt&max-keys=1"),
            &[],
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(r.xml_values("Key"), vec!["run books/x.txt"]);
    assert_eq!(
        r.xml_value("NextMarker").as_deref(),
        Some("run books/x.txt")
    );
}

async fn create_upload(s3: &RawS3, key: &str) -> String {
    let r = s3
        .send(
            "POST",
            &format!("{}?uploads", RawS3::object_path(B, key)),
            &[("content-type", "application/x-test")],
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    r.xml_value("UploadId").unwrap()
}

async fn upload_part(s3: &RawS3, key: &str, id: &str, n: u32, data: Vec<u8>) -> String {
    let path = format!(
        "{}?partNumber={n}&uploadId={id}",
        RawS3::object_path(B, key)
    );
    let r = s3.send("PUT", &path, &[], data).await.unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    r.header("etag").unwrap().to_owned()
}

fn complete_body(etags: &[String]) -> Vec<u8> {
    let mut xml = String::from("<CompleteMultipartUpload>");
    for (i, etag) in etags.iter().enumerate() {
        write!(
            xml,
            "<Part><PartNumber>{}</PartNumber><ETag>{etag}</ETag></Part>",
            i + 1
        )
        .unwrap();
    }
    xml.push_str("</CompleteMultipartUpload>");
    xml.into_bytes()
}

#[tokio::test]
async fn multipart_upload_lifecycle() {
    const MIB: usize = 1024 * 1024;
    let (fake, s3) = start().await;
    let key = "multi part/ü";
    let id = create_upload(&s3, key).await;
    let parts: Vec<Vec<u8>> = vec![vec![1u8; 5 * MIB], vec![2u8; 5 * MIB], vec![3u8; 1000]];
    let mut etags = Vec::new();
    for (i, data) in parts.iter().enumerate() {
        etags.push(upload_part(&s3, key, &id, u32::try_from(i).unwrap() + 1, data.clone()).await);
    }

    let r = s3
        .send("GET", &format!("/{B}?uploads"), &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(r.xml_values("UploadId"), vec![id.clone()]);
    assert_eq!(r.xml_values("Key"), vec![key.to_owned()]);
    let r = s3
        .send(
            "GET",
            &format!("{}?uploadId={id}&max-parts=2", RawS3::object_path(B, key)),
            &[],
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(r.xml_values("PartNumber"), vec!["1", "2"]);
    assert_eq!(r.xml_value("IsTruncated").as_deref(), Some("true"));
    assert_eq!(r.xml_value("NextPartNumberMarker").as_deref(), Some("2"));

    // Out-of-order parts are refused; then complete for real.
    let complete_path = format!("{}?uploadId={id}", RawS3::object_path(B, key));
    let mut swapped = etags.clone();
    swapped.swap(0, 1);
    let bad = String::from_utf8(complete_body(&swapped))
        .unwrap()
        .replace("<PartNumber>1</PartNumber>", "<PartNumber>9</PartNumber>");
    let r = s3
        .send("POST", &complete_path, &[], bad.into_bytes())
        .await
        .unwrap();
    assert_eq!(r.s3_code().as_deref(), Some("InvalidPartOrder"));
    let r = s3
        .send(
            "POST",
            &complete_path,
            &[("if-none-match", "*")],
            complete_body(&etags),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let mut md5s = Vec::new();
    for data in &parts {
        md5s.extend_from_slice(&Md5::digest(data));
    }
    let expected_etag = format!("\"{}-3\"", md5_hex(&md5s));
    assert_eq!(r.xml_value("ETag"), Some(expected_etag.clone()));
    let r = get(&s3, key, &[]).await;
    assert_eq!(r.header("etag"), Some(expected_etag.as_str()));
    assert_eq!(r.header("content-type"), Some("application/x-test"));
    assert_eq!(r.body, parts.concat());
    assert!(fake.multipart_uploads(B).is_empty());

    // Completing again: NoSuchUpload. A create-only complete on an existing key: 412.
    let r = s3
        .send("POST", &complete_path, &[], complete_body(&etags))
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.s3_code().as_deref()),
        (404, Some("NoSuchUpload"))
    );
    let id2 = create_upload(&s3, key).await;
    let e = upload_part(&s3, key, &id2, 1, b"small".to_vec()).await;
    let r = s3
        .send(
            "POST",
            &format!("{}?uploadId={id2}", RawS3::object_path(B, key)),
            &[("if-none-match", "*")],
            complete_body(&[e]),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.s3_code().as_deref()),
        (412, Some("PreconditionFailed"))
    );

    // Too-small non-final part.
    let id3 = create_upload(&s3, "small").await;
    let e1 = upload_part(&s3, "small", &id3, 1, vec![0; 10]).await;
    let e2 = upload_part(&s3, "small", &id3, 2, vec![0; 10]).await;
    let r = s3
        .send(
            "POST",
            &format!("{}?uploadId={id3}", RawS3::object_path(B, "small")),
            &[],
            complete_body(&[e1, e2]),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.s3_code().as_deref()),
        (400, Some("EntityTooSmall"))
    );

    // Abort, then the upload is gone.
    let r = s3
        .send(
            "DELETE",
            &format!("{}?uploadId={id3}", RawS3::object_path(B, "small")),
            &[],
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 204);
    let r = s3
        .send(
            "PUT",
            &format!(
                "{}?partNumber=3&uploadId={id3}",
                RawS3::object_path(B, "small")
            ),
            &[],
            vec![1],
        )
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.s3_code().as_deref()),
        (404, Some("NoSuchUpload"))
    );
    assert_eq!(fake.multipart_uploads(B).len(), 1, "id2 is still open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_of_105_mib() {
    const PART: usize = 5 * 1024 * 1024;
    let (fake, s3) = start().await;
    let s3 = s3.with_payload(PayloadMode::Unsigned);
    let key = "big/blob";
    let id = create_upload(&s3, key).await;
    let mut tasks = Vec::new();
    for n in 1..=21u32 {
        let s3 = s3.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let data = vec![u8::try_from(n).unwrap(); PART];
            upload_part(&s3, key, &id, n, data).await
        }));
    }
    let mut etags = Vec::new();
    for t in tasks {
        etags.push(t.await.unwrap());
    }
    let r = s3
        .send(
            "POST",
            &format!("{}?uploadId={id}", RawS3::object_path(B, key)),
            &[],
            complete_body(&etags),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.xml_value("ETag").unwrap().ends_with("-21\""));
    let object = fake.object(B, key).unwrap();
    assert_eq!(object.size(), 21 * PART as u64);
    assert!(object.data[..PART].iter().all(|b| *b == 1));
    assert!(object.data[20 * PART..].iter().all(|b| *b == 21));
    let r = get(&s3, key, &[("range", "bytes=-10")]).await;
    assert_eq!(r.body, vec![21u8; 10]);
}

#[tokio::test]
async fn copy_object_and_buckets() {
    let (fake, s3) = start().await;
    put(&s3, "src key+1", b"payload", &[("x-amz-meta-a", "1")]).await;
    // A URL-encoded "/bucket/key", as clients send it.
    let source = RawS3::object_path(B, "src key+1");
    let r = put(&s3, "dst", b"", &[("x-amz-copy-source", &source)]).await;
    assert_eq!(r.status, 200, "{r:?}");
    let etag = format!("\"{}\"", md5_hex(b"payload"));
    assert_eq!(r.xml_value("ETag"), Some(etag.clone()));
    let r = get(&s3, "dst", &[]).await;
    assert_eq!(
        (&r.body[..], r.header("x-amz-meta-a")),
        (&b"payload"[..], Some("1"))
    );
    let r = put(
        &s3,
        "dst2",
        b"",
        &[
            ("x-amz-copy-source", &source),
            ("x-amz-copy-source-if-match", "\"nope\""),
        ],
    )
    .await;
    assert_eq!(r.status, 412);
    let r = put(
        &s3,
        "dst",
        b"",
        &[("x-amz-copy-source", &source), ("if-none-match", "*")],
    )
    .await;
    assert_eq!(r.status, 412, "conditional copy onto an existing key");
    let self_copy = format!("/{B}/dst");
    let r = put(&s3, "dst", b"", &[("x-amz-copy-source", &self_copy)]).await;
    assert_eq!(r.s3_code().as_deref(), Some("InvalidRequest"));
    let r = put(
        &s3,
        "dst3",
        b"",
        &[("x-amz-copy-source", &format!("/{B}/missing"))],
    )
    .await;
    assert_eq!(r.s3_code().as_deref(), Some("NoSuchKey"));

    // Buckets.
    let r = s3.create_bucket("second-bucket").await.unwrap();
    assert_eq!(r.status, 200);
    let r = s3.create_bucket("second-bucket").await.unwrap();
    assert_eq!(
        (r.status, r.s3_code().as_deref()),
        (409, Some("BucketAlreadyOwnedByYou"))
    );
    let r = s3.create_bucket("Bad_Name").await.unwrap();
    assert_eq!(r.s3_code().as_deref(), Some("InvalidBucketName"));
    let r = s3
        .send("HEAD", "/second-bucket", &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-amz-bucket-region"), Some("us-east-1"));
    let r = s3
        .send("HEAD", "/no-such-bucket", &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    let r = s3
        .send("GET", "/no-such-bucket/k", &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.s3_code().as_deref()),
        (404, Some("NoSuchBucket"))
    );
    let r = s3.send("GET", "/", &[], Vec::new()).await.unwrap();
    assert_eq!(r.xml_values("Name"), vec!["second-bucket", B]);
    let r = s3
        .send("GET", &format!("/{B}?location"), &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let r = s3
        .send("DELETE", &format!("/{B}"), &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.s3_code().as_deref()),
        (409, Some("BucketNotEmpty"))
    );
    let r = s3
        .send("DELETE", "/second-bucket", &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(r.status, 204);
    assert!(fake.keys("second-bucket").is_empty());

    // The uniform target every harness hands out.
    let target = fake.target();
    assert_eq!(target.bucket, B);
    assert_eq!(target.endpoint, fake.endpoint());
    let r = target
        .raw_s3()
        .send("GET", &target.object_path("dst"), &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(r.status, 200);

    // Virtual-hosted addressing through the Host header.
    let host = format!("{B}.localhost:{}", fake.addr().port());
    let r = s3
        .send("GET", "/dst", &[("host", &host)], Vec::new())
        .await
        .unwrap();
    assert_eq!((r.status, &r.body[..]), (200, &b"payload"[..]));
}

#[tokio::test]
async fn region_constraint_on_create_bucket() {
    let fake = FakeS3::start(FakeS3Config::default().region("eu-west-3").no_buckets())
        .await
        .unwrap();
    let s3 = fake.raw_client();
    let r = s3.create_bucket("regional").await.unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let r = s3
        .send("PUT", "/no-constraint", &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(
        r.s3_code().as_deref(),
        Some("IllegalLocationConstraintException")
    );
    let r = s3
        .send("GET", "/regional?location", &[], Vec::new())
        .await
        .unwrap();
    assert!(
        r.text().contains(">eu-west-3</LocationConstraint>"),
        "{r:?}"
    );
}

#[tokio::test]
async fn authentication_failures_carry_aws_codes() {
    let (fake, s3) = start().await;
    let path = RawS3::object_path(B, "k");

    let r = s3
        .clone()
        .with_credentials(fake.access_key(), "wrong-secret")
        .send("GET", &path, &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.s3_code().as_deref()),
        (403, Some("SignatureDoesNotMatch"))
    );
    assert!(r.xml_value("CanonicalRequest").is_some());

    let r = s3
        .clone()
        .with_region("eu-central-1")
        .send("GET", &path, &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.s3_code().as_deref()),
        (400, Some("AuthorizationHeaderMalformed"))
    );
    assert_eq!(r.xml_value("Region").as_deref(), Some("us-east-1"));
    assert_eq!(r.header("x-amz-bucket-region"), Some("us-east-1"));

    let r = s3
        .clone()
        .with_credentials("AKIDUNKNOWN", "whatever")
        .send("GET", &path, &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.s3_code().as_deref()),
        (403, Some("InvalidAccessKeyId"))
    );

    let skewed = SystemTime::now() - Duration::from_secs(3600);
    let r = s3
        .clone()
        .with_time(skewed)
        .send("GET", &path, &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.s3_code().as_deref()),
        (403, Some("RequestTimeTooSkewed"))
    );

    // UNSIGNED-PAYLOAD is accepted.
    let r = s3
        .clone()
        .with_payload(PayloadMode::Unsigned)
        .send("PUT", &path, &[], b"body".to_vec())
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let log = fake.log();
    let codes: Vec<_> = log.iter().map(|e| e.error_code.as_deref()).collect();
    assert_eq!(
        codes,
        vec![
            Some("SignatureDoesNotMatch"),
            Some("AuthorizationHeaderMalformed"),
            Some("InvalidAccessKeyId"),
            Some("RequestTimeTooSkewed"),
            None
        ]
    );
    assert_eq!(
        log[4].header("x-amz-content-sha256"),
        Some("UNSIGNED-PAYLOAD")
    );
}

#[tokio::test]
async fn injected_clock_drives_skew_and_last_modified() {
    let t0: DateTime<Utc> = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let fake = FakeS3::start(FakeS3Config::default().clock(clock.clone()))
        .await
        .unwrap();
    let s3 = fake.raw_client().with_time(SystemTime::from(t0));
    assert_eq!(put(&s3, "t", b"x", &[]).await.status, 200);
    assert_eq!(fake.object(B, "t").unwrap().last_modified, t0);
    assert_eq!(
        get(&s3, "t", &[]).await.header("last-modified"),
        Some("Tue, 14 Nov 2023 22:13:20 GMT")
    );
    clock.advance(TimeDelta::minutes(16));
    assert_eq!(get(&s3, "t", &[]).await.status, 403);
    let s3 = s3.with_time(SystemTime::from(t0 + TimeDelta::minutes(16)));
    assert_eq!(get(&s3, "t", &[]).await.status, 200);
}

#[tokio::test]
async fn faults_500_and_503_for_the_next_n_requests() {
    let (fake, s3) = start().await;
    let rule = fake.inject(
        FaultRule::new(FaultAction::InternalError)
            .operation(Operation::PutObject)
            .key_prefix("flaky/")
            .times(2),
    );
    assert_eq!(put(&s3, "other", b"x", &[]).await.status, 200, "no match");
    for _ in 0..2 {
        let r = put(&s3, "flaky/1", b"x", &[]).await;
        assert_eq!(
            (r.status, r.s3_code().as_deref()),
            (500, Some("InternalError"))
        );
    }
    assert!(
        fake.object(B, "flaky/1").is_none(),
        "failed before the write"
    );
    assert_eq!(put(&s3, "flaky/1", b"x", &[]).await.status, 200);
    assert_eq!(fake.fault_hits(rule), 2);

    fake.inject(
        FaultRule::new(FaultAction::SlowDown {
            retry_after: Some(Duration::from_secs(3)),
        })
        .method(http::Method::GET)
        .times(1),
    );
    let r = get(&s3, "flaky/1", &[]).await;
    assert_eq!((r.status, r.s3_code().as_deref()), (503, Some("SlowDown")));
    assert_eq!(r.header("retry-after"), Some("3"));
    assert_eq!(get(&s3, "flaky/1", &[]).await.status, 200);

    fake.inject(
        FaultRule::new(FaultAction::Error(ErrorCode::ServiceUnavailable))
            .skip(1)
            .times(1),
    );
    assert_eq!(get(&s3, "flaky/1", &[]).await.status, 200, "skipped");
    assert_eq!(get(&s3, "flaky/1", &[]).await.status, 503);
    let faulted: Vec<_> = fake
        .log()
        .into_iter()
        .filter(|e| !e.faults.is_empty())
        .collect();
    assert_eq!(faulted.len(), 4);
}

#[tokio::test]
async fn probabilistic_faults_are_reproducible() {
    async fn run(seed: u64) -> Vec<u16> {
        let fake = FakeS3::start(FakeS3Config::default().seed(seed))
            .await
            .unwrap();
        let s3 = fake.raw_client();
        fake.put_object(B, "k", &b"x"[..]).unwrap();
        fake.inject(FaultRule::new(FaultAction::InternalError).probability(0.5));
        let mut statuses = Vec::new();
        for _ in 0..40 {
            statuses.push(get(&s3, "k", &[]).await.status);
        }
        statuses
    }
    let a = run(7).await;
    assert_eq!(a, run(7).await);
    let failures = a.iter().filter(|s| **s == 500).count();
    assert!((5..35).contains(&failures), "{failures} of 40");
}

#[tokio::test]
async fn connection_reset_before_and_after_apply() {
    let (fake, s3) = start().await;
    fake.inject(FaultRule::new(FaultAction::Reset).operation(Operation::PutObject));
    let err = s3
        .send("PUT", &RawS3::object_path(B, "r1"), &[], b"x".to_vec())
        .await
        .unwrap_err();
    assert!(matches!(err, RawS3Error::Transport(_)), "{err:?}");
    assert!(fake.object(B, "r1").is_none());

    fake.inject(FaultRule::new(FaultAction::ResetAfterApply).operation(Operation::PutObject));
    let err = s3
        .send("PUT", &RawS3::object_path(B, "r2"), &[], b"x".to_vec())
        .await
        .unwrap_err();
    assert!(matches!(err, RawS3Error::Transport(_)), "{err:?}");
    assert!(fake.object(B, "r2").is_some(), "the write happened");

    let log = fake.requests(Operation::PutObject);
    assert_eq!(log[0].outcome, Outcome::Reset);
    assert_eq!(log[0].status, None);
    assert_eq!(log[1].outcome, Outcome::Reset);
    assert_eq!(log[1].status, Some(200));
    // The server keeps serving new connections.
    assert_eq!(put(&s3, "r3", b"x", &[]).await.status, 200);
}

#[tokio::test]
async fn truncated_body_promises_the_full_length() {
    let (fake, s3) = start().await;
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    put(&s3, "t", &body, &[]).await;
    fake.inject(
        FaultRule::new(FaultAction::TruncateBody { after: 1000 }).operation(Operation::GetObject),
    );
    let err = s3
        .send("GET", &RawS3::object_path(B, "t"), &[], Vec::new())
        .await
        .unwrap_err();
    let RawS3Error::Body {
        status,
        headers,
        received,
        ..
    } = err
    else {
        panic!("expected a body error, got {err:?}");
    };
    assert_eq!(status, 200);
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "content-length" && v == "100000")
    );
    assert_eq!(received, body[..1000]);
    let entry = fake.requests(Operation::GetObject).pop().unwrap();
    assert_eq!(entry.outcome, Outcome::Truncated { sent: 1000 });
    assert_eq!(entry.response_bytes, 100_000);

    // The resume: a ranged read with If-Match returns the rest.
    let etag = format!("\"{}\"", md5_hex(&body));
    let r = get(&s3, "t", &[("range", "bytes=1000-"), ("if-match", &etag)]).await;
    assert_eq!(r.status, 206);
    assert_eq!([&received[..], &r.body[..]].concat(), body);
    let entry = fake.requests(Operation::GetObject).pop().unwrap();
    assert_eq!(entry.header("range"), Some("bytes=1000-"));
    assert_eq!(entry.header("if-match"), Some(etag.as_str()));
}

#[tokio::test]
async fn stalled_body_arrives_late_but_whole() {
    let (fake, s3) = start().await;
    let body = vec![7u8; 50_000];
    put(&s3, "s", &body, &[]).await;
    fake.inject(
        FaultRule::new(FaultAction::StallBody {
            after: 100,
            stall: Duration::from_millis(300),
        })
        .operation(Operation::GetObject),
    );
    let started = Instant::now();
    let r = get(&s3, "s", &[]).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!((r.status, r.body.len()), (200, 50_000));
    assert_eq!(r.header("content-length"), Some("50000"));
    assert_eq!(
        fake.requests(Operation::GetObject)[0].outcome,
        Outcome::Responded
    );
}

#[tokio::test]
async fn latency_and_region_faults() {
    let (fake, s3) = start().await;
    fake.inject(
        FaultRule::new(FaultAction::Latency(Duration::from_millis(300)))
            .operation(Operation::HeadBucket),
    );
    let started = Instant::now();
    let r = s3
        .send("HEAD", &format!("/{B}"), &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    fake.inject(FaultRule::new(FaultAction::RedirectToRegion {
        region: "eu-west-3".into(),
    }));
    let r = get(&s3, "k", &[]).await;
    assert_eq!(
        (r.status, r.s3_code().as_deref()),
        (301, Some("PermanentRedirect"))
    );
    assert_eq!(r.header("x-amz-bucket-region"), Some("eu-west-3"));
    assert_eq!(
        r.xml_value("Endpoint").as_deref(),
        Some("test-bucket.s3.eu-west-3.amazonaws.com")
    );

    fake.inject(FaultRule::new(FaultAction::WrongRegion {
        region: "ap-south-1".into(),
    }));
    let r = get(&s3, "k", &[]).await;
    assert_eq!(
        (r.status, r.s3_code().as_deref()),
        (400, Some("AuthorizationHeaderMalformed"))
    );
    assert_eq!(r.xml_value("Region").as_deref(), Some("ap-south-1"));
    assert!(
        r.xml_value("Message")
            .unwrap()
            .contains("'us-east-1' is wrong")
    );
}

#[tokio::test]
async fn simulated_races_on_conditional_writes() {
    let (fake, s3) = start().await;
    fake.inject(FaultRule::new(FaultAction::PreconditionFailed).operation(Operation::PutObject));
    let r = put(&s3, "race", b"x", &[("if-none-match", "*")]).await;
    assert_eq!(
        (r.status, r.s3_code().as_deref()),
        (412, Some("PreconditionFailed"))
    );
    assert!(fake.object(B, "race").is_none());
    fake.inject(FaultRule::new(FaultAction::ConditionalConflict).operation(Operation::PutObject));
    let r = put(&s3, "race", b"x", &[("if-none-match", "*")]).await;
    assert_eq!(
        (r.status, r.s3_code().as_deref()),
        (409, Some("ConditionalRequestConflict"))
    );
    assert_eq!(
        put(&s3, "race", b"x", &[("if-none-match", "*")])
            .await
            .status,
        200
    );

    // A 200 whose body is an <Error> on CompleteMultipartUpload; the upload stays open.
    let id = create_upload(&s3, "m").await;
    let e = upload_part(&s3, "m", &id, 1, b"p".to_vec()).await;
    fake.inject(
        FaultRule::new(FaultAction::ErrorIn200(ErrorCode::InternalError))
            .operation(Operation::CompleteMultipartUpload),
    );
    let path = format!("{}?uploadId={id}", RawS3::object_path(B, "m"));
    let r = s3
        .send("POST", &path, &[], complete_body(std::slice::from_ref(&e)))
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.s3_code().as_deref()),
        (200, Some("InternalError"))
    );
    let r = s3
        .send("POST", &path, &[], complete_body(&[e]))
        .await
        .unwrap();
    assert_eq!((r.status, r.s3_code()), (200, None));
}

#[tokio::test]
async fn request_log_records_what_tests_assert_on() {
    let (fake, s3) = start().await;
    let body = b"0123456789";
    let md5 = content_md5(body);
    put(
        &s3,
        "logged/k",
        body,
        &[("content-md5", &md5), ("if-none-match", "*")],
    )
    .await;
    get(&s3, "logged/k", &[("range", "bytes=2-5")]).await;
    let log = fake.log();
    assert_eq!(log.len(), 2);
    let put_entry = &log[0];
    assert_eq!(put_entry.operation, Some(Operation::PutObject));
    assert_eq!(put_entry.method, http::Method::PUT);
    assert_eq!(put_entry.bucket.as_deref(), Some(B));
    assert_eq!(put_entry.key.as_deref(), Some("logged/k"));
    assert_eq!(put_entry.status, Some(200));
    assert_eq!(put_entry.request_bytes, 10);
    assert_eq!(put_entry.header("content-md5"), Some(md5.as_str()));
    assert_eq!(put_entry.header("if-none-match"), Some("*"));
    assert_eq!(put_entry.access_key.as_deref(), Some(fake.access_key()));
    let get_entry = &log[1];
    assert_eq!(get_entry.status, Some(206));
    assert_eq!(get_entry.response_bytes, 4);
    assert_eq!(get_entry.header("range"), Some("bytes=2-5"));
    assert!(get_entry.seq > put_entry.seq);
    assert!(get_entry.time >= put_entry.time);
    fake.clear_log();
    assert!(fake.log().is_empty());

    // A wrong body MD5 is refused.
    let r = put(
        &s3,
        "logged/k2",
        body,
        &[("content-md5", &content_md5(b"no"))],
    )
    .await;
    assert_eq!(r.s3_code().as_deref(), Some("BadDigest"));
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let (fake, s3) = start().await;
    assert_eq!(
        s3.send("HEAD", &format!("/{B}"), &[], Vec::new())
            .await
            .unwrap()
            .status,
        200
    );
    drop(fake);
    tokio::task::yield_now().await;
    let fresh = RawS3::new(&s3.endpoint, &s3.region, &s3.access_key, "x");
    let err = fresh
        .send("HEAD", &format!("/{B}"), &[], Vec::new())
        .await
        .unwrap_err();
    assert!(matches!(err, RawS3Error::Transport(_)), "{err:?}");

    let (fake, _s3) = start().await;
    fake.shutdown().await;
}
