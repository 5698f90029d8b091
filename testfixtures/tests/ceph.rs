//! The Ceph harness against a real radosgw 16.2 (installed on first use; see
//! `coffer_testfixtures::ceph`).

use coffer_testfixtures::ceph::Ceph;
use coffer_testfixtures::raw_s3::RawS3;

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[tokio::test]
async fn a_dedicated_cluster_round_trips_and_honours_create_only_puts() -> TestResult {
    let ceph = Ceph::start().await?;
    assert_eq!(ceph.region(), "us-east-1");
    assert!(ceph.endpoint().starts_with("http://127.0.0.1:"));
    assert_eq!(ceph.access_key().len(), 20);
    let s3 = ceph.raw_s3();
    let key = "dir/a key ü+%.txt";
    let path = RawS3::object_path(ceph.bucket(), key);

    let put = s3.send("PUT", &path, &[], b"first".to_vec()).await?;
    assert_eq!(put.status, 200, "{put:?}");
    let etag = put.header("etag").expect("PUT returns an ETag").to_owned();
    let get = s3.send("GET", &path, &[], Vec::new()).await?;
    assert_eq!(get.status, 200, "{get:?}");
    assert_eq!(get.body, b"first");

    let list = s3
        .send(
            "GET",
            &format!("/{}?list-type=2&prefix=dir%2F", ceph.bucket()),
            &[],
            Vec::new(),
        )
        .await?;
    assert_eq!(list.status, 200, "{list:?}");
    assert_eq!(list.xml_values("Key"), vec![key.to_owned()]);

    // Create-only over an existing key: refused, content unchanged.
    let again = s3
        .send("PUT", &path, &[("if-none-match", "*")], b"second".to_vec())
        .await?;
    assert_eq!(again.status, 412, "{again:?}");
    assert_eq!(again.s3_code().as_deref(), Some("PreconditionFailed"));
    let get = s3.send("GET", &path, &[], Vec::new()).await?;
    assert_eq!(get.body, b"first");
    // Create-only on a new key succeeds.
    let fresh = s3
        .send(
            "PUT",
            &RawS3::object_path(ceph.bucket(), "fresh"),
            &[("if-none-match", "*")],
            b"x".to_vec(),
        )
        .await?;
    assert_eq!(fresh.status, 200, "{fresh:?}");

    // If-Match: radosgw 16 compares the unquoted ETag; the quoted form never matches.
    let quoted = s3
        .send("PUT", &path, &[("if-match", &etag)], b"third".to_vec())
        .await?;
    assert_eq!(quoted.status, 412, "quoted If-Match now works: {quoted:?}");
    let unquoted = s3
        .send(
            "PUT",
            &path,
            &[("if-match", etag.trim_matches('"'))],
            b"third".to_vec(),
        )
        .await?;
    assert_eq!(unquoted.status, 200, "{unquoted:?}");

    // Strict SigV4: a wrong secret is refused.
    let forged = s3
        .clone()
        .with_credentials(ceph.access_key(), "not-the-secret")
        .send("GET", &path, &[], Vec::new())
        .await?;
    assert_eq!(forged.status, 403, "{forged:?}");
    assert_eq!(forged.s3_code().as_deref(), Some("SignatureDoesNotMatch"));

    // Teardown kills every daemon and removes the directory.
    let dir = ceph.dir().to_path_buf();
    let endpoint = ceph.endpoint().to_owned();
    drop(ceph);
    assert!(!dir.exists(), "{} still exists", dir.display());
    let after = RawS3::new(&endpoint, "us-east-1", "AK", "x")
        .send("GET", "/", &[], Vec::new())
        .await;
    assert!(after.is_err(), "radosgw still answers: {after:?}");
    Ok(())
}

#[tokio::test]
async fn the_shared_cluster_hands_out_separate_buckets() -> TestResult {
    let first = Ceph::shared().await?.new_bucket().await?;
    let second = Ceph::shared().await?.new_bucket().await?;
    assert_eq!(first.endpoint, second.endpoint);
    assert_ne!(first.bucket, second.bucket);
    let put = first
        .raw_s3()
        .send("PUT", &first.object_path("only-here"), &[], b"1".to_vec())
        .await?;
    assert_eq!(put.status, 200, "{put:?}");
    let listed = second
        .raw_s3()
        .send(
            "GET",
            &format!("/{}?list-type=2", second.bucket),
            &[],
            Vec::new(),
        )
        .await?;
    assert_eq!(listed.status, 200, "{listed:?}");
    assert!(listed.xml_values("Key").is_empty(), "{listed:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_create_only_puts_have_exactly_one_winner() -> TestResult {
    let target = Ceph::shared().await?.new_bucket().await?;
    for round in 0..3 {
        let path = target.object_path(&format!("race-{round}"));
        let mut racers = tokio::task::JoinSet::new();
        for racer in 0..8u8 {
            let (s3, path) = (target.raw_s3(), path.clone());
            racers.spawn(async move {
                s3.send("PUT", &path, &[("if-none-match", "*")], vec![racer; 1024])
                    .await
                    .map(|r| (racer, r.status))
            });
        }
        let mut winners = Vec::new();
        while let Some(result) = racers.join_next().await {
            let (racer, status) = result??;
            match status {
                200 => winners.push(racer),
                // 409 ConcurrentModification is allowed by S3 for overlapping conditional writes.
                412 | 409 => {}
                other => panic!("racer {racer} got HTTP {other}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let stored = target.raw_s3().send("GET", &path, &[], Vec::new()).await?;
        assert_eq!(
            stored.body,
            vec![winners[0]; 1024],
            "the winner's bytes are stored"
        );
    }
    Ok(())
}
