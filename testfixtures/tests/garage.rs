//! The Garage harness against a real Garage 2.5.0 (built on first use; see
//! `coffer_testfixtures::garage`).

use coffer_testfixtures::garage::Garage;
use coffer_testfixtures::raw_s3::RawS3;

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[tokio::test]
async fn a_dedicated_server_round_trips_and_ignores_create_only_puts() -> TestResult {
    let garage = Garage::start().await?;
    assert_eq!(garage.region(), "garage");
    assert!(garage.endpoint().starts_with("http://127.0.0.1:"));
    assert!(garage.access_key().starts_with("GK") && garage.access_key().len() == 26);
    let s3 = garage.raw_s3();
    let key = "dir/a key ü+%.txt";
    let path = RawS3::object_path(garage.bucket(), key);

    let put = s3.send("PUT", &path, &[], b"first".to_vec()).await?;
    assert_eq!(put.status, 200, "{put:?}");
    let etag = put.header("etag").expect("PUT returns an ETag").to_owned();

    let get = s3.send("GET", &path, &[], Vec::new()).await?;
    assert_eq!(get.status, 200, "{get:?}");
    assert_eq!(get.body, b"first");
    assert_eq!(get.header("etag"), Some(etag.as_str()));

    let list = s3
        .send(
            "GET",
            &format!("/{}?list-type=2&prefix=dir%2F", garage.bucket()),
            &[],
            Vec::new(),
        )
        .await?;
    assert_eq!(list.status, 200, "{list:?}");
    assert_eq!(list.xml_values("Key"), vec![key.to_owned()]);

    // Garage 2.5 ignores conditional writes: a create-only PUT over an existing key succeeds
    // and overwrites. The conformance suite relies on this being detected, not assumed.
    let again = s3
        .send("PUT", &path, &[("if-none-match", "*")], b"second".to_vec())
        .await?;
    assert_eq!(
        again.status, 200,
        "Garage now honours If-None-Match: {again:?}"
    );
    let get = s3.send("GET", &path, &[], Vec::new()).await?;
    assert_eq!(get.body, b"second");

    // If-Match on a write is ignored too, while If-Match on a read is honoured.
    let stale = s3
        .send(
            "PUT",
            &path,
            &[("if-match", "\"not-the-etag\"")],
            b"third".to_vec(),
        )
        .await?;
    assert_eq!(
        stale.status, 200,
        "Garage now honours If-Match on PUT: {stale:?}"
    );
    let read = s3
        .send(
            "GET",
            &path,
            &[("if-match", "\"not-the-etag\"")],
            Vec::new(),
        )
        .await?;
    assert_eq!(read.status, 412, "{read:?}");

    // Strict SigV4: the region is checked, and the answer names the right one.
    let wrong_region = s3
        .clone()
        .with_region("us-east-1")
        .send("GET", &path, &[], Vec::new())
        .await?;
    assert_eq!(wrong_region.status, 400, "{wrong_region:?}");
    assert_eq!(
        wrong_region.s3_code().as_deref(),
        Some("AuthorizationHeaderMalformed")
    );
    assert_eq!(wrong_region.xml_value("Region").as_deref(), Some("garage"));

    // Extra buckets are usable with the same key.
    let other = garage.new_bucket().await?;
    assert_ne!(other.bucket, garage.bucket());
    let put = other
        .raw_s3()
        .send("PUT", &other.object_path("k"), &[], b"x".to_vec())
        .await?;
    assert_eq!(put.status, 200, "{put:?}");

    // Dropping the server kills it and removes its directory.
    let dir = garage.dir().to_path_buf();
    let endpoint = garage.endpoint().to_owned();
    drop(garage);
    assert!(!dir.exists(), "{} still exists", dir.display());
    let after = RawS3::new(&endpoint, "garage", "GK0", "x")
        .send("GET", "/", &[], Vec::new())
        .await;
    assert!(after.is_err(), "the server still answers: {after:?}");
    Ok(())
}

#[tokio::test]
async fn the_shared_server_hands_out_separate_buckets() -> TestResult {
    let first = Garage::shared().await?.new_bucket().await?;
    let second = Garage::shared().await?.new_bucket().await?;
    assert_eq!(first.endpoint, second.endpoint);
    assert_ne!(first.bucket, second.bucket);
    let s3 = first.raw_s3();
    assert_eq!(
        s3.send("PUT", &first.object_path("only-here"), &[], b"1".to_vec())
            .await?
            .status,
        200
    );
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
