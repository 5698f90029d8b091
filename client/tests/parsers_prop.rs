//! Properties of the S3 answer parsers (docs/fuzzing.md), run by `cargo test` on every CI
//! run beside the cargo-fuzz target `s3_xml`: no body or header set, however hostile, makes
//! a parser panic, and well-formed listings parse back to what they say.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use coffer_client::Operation;
use coffer_client::ops::{
    complete_multipart_upload, copy_object, create_multipart_upload, delete_objects, get_object,
    head_object, list_multipart_uploads, list_objects_v2, put_object, upload_part,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::collection::vec;
use proptest::prelude::*;

/// Bodies that look like S3 answers: the documented elements, nested and shuffled, with
/// arbitrary text, entities and CDATA.
fn xmlish() -> impl Strategy<Value = String> {
    let names = prop_oneof![
        Just("ListBucketResult"),
        Just("Contents"),
        Just("Key"),
        Just("Size"),
        Just("ETag"),
        Just("IsTruncated"),
        Just("NextContinuationToken"),
        Just("EncodingType"),
        Just("CommonPrefixes"),
        Just("Prefix"),
        Just("Error"),
        Just("Code"),
        Just("Message"),
        Just("Region"),
        Just("Endpoint"),
        Just("DeleteResult"),
        Just("Deleted"),
        Just("Upload"),
        Just("UploadId"),
        Just("ListMultipartUploadsResult"),
        Just("CompleteMultipartUploadResult"),
        Just("CopyObjectResult"),
        Just("InitiateMultipartUploadResult"),
    ];
    let text = prop_oneof![
        "[a-zA-Z0-9 %+/]{0,12}",
        Just("&amp;&lt;&#x41;&#65;&bogus;".to_owned()),
        Just("<![CDATA[x]]>".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("-1".to_owned()),
        Just("true".to_owned()),
        Just("url".to_owned()),
        Just("%ZZ%C3".to_owned()),
    ];
    let leaf = (names.clone(), text).prop_map(|(n, t)| format!("<{n}>{t}</{n}>"));
    leaf.prop_recursive(4, 32, 5, move |inner| {
        (names.clone(), vec(inner, 0..5), any::<bool>()).prop_map(|(n, kids, close)| {
            let body = kids.concat();
            if close {
                format!("<{n}>{body}</{n}>")
            } else {
                format!("<{n}>{body}")
            }
        })
    })
}

fn headers(pairs: &[(String, Vec<u8>)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in pairs {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(n.as_bytes()),
            HeaderValue::from_bytes(v),
        ) {
            h.append(n, v);
        }
    }
    h
}

fn header_pairs() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    let name = prop_oneof![
        Just("etag".to_owned()),
        Just("content-length".to_owned()),
        Just("content-range".to_owned()),
        Just("last-modified".to_owned()),
        Just("retry-after".to_owned()),
        Just("x-amz-bucket-region".to_owned()),
        Just("x-amz-request-id".to_owned()),
        "[a-z-]{1,10}",
    ];
    let value = prop_oneof![
        vec(any::<u8>(), 0..24),
        "bytes [0-9]{0,20}-[0-9]{0,20}/[0-9*]{0,20}".prop_map(String::into_bytes),
        "\"?[0-9a-f]{0,32}(-[0-9]{1,3})?\"?".prop_map(String::into_bytes),
        "[0-9]{0,25}".prop_map(String::into_bytes),
    ];
    vec((name, value), 0..6)
}

fn parse_everything(body: &[u8]) {
    let _ = list_objects_v2::parse(body);
    let _ = list_multipart_uploads::parse(body);
    let _ = delete_objects::parse(body);
    let _ = complete_multipart_upload::parse(body);
    let _ = copy_object::parse(body);
    let _ = create_multipart_upload::parse(body);
}

fn interpret(status: u16, h: &HeaderMap, body: &[u8]) {
    for op in Operation::ALL {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let (_, error, _, _) =
            coffer_client::interpret_error_answer(op, status, h, body, "us-east-1", now);
        let _ = error.to_string();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn body_parsers_never_panic_on_bytes(body in vec(any::<u8>(), 0..300)) {
        parse_everything(&body);
    }

    #[test]
    fn body_parsers_never_panic_on_xmlish_bodies(body in xmlish()) {
        parse_everything(body.as_bytes());
        let declared = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>{body}");
        parse_everything(declared.as_bytes());
    }

    #[test]
    fn header_parsers_and_error_answers_never_panic(
        status in any::<u16>(),
        pairs in header_pairs(),
        body in xmlish(),
    ) {
        let h = headers(&pairs);
        let _ = get_object::parse(status, &h);
        let _ = head_object::parse(&h);
        let _ = put_object::parse(&h);
        let _ = upload_part::parse(&h);
        interpret(status, &h, body.as_bytes());
    }

    #[test]
    fn listings_parse_to_what_they_say(
        keys in vec("[a-zA-Z0-9/._-]{1,20}", 0..8),
        sizes in vec(any::<u64>(), 8),
    ) {
        let mut contents = String::new();
        for (k, s) in keys.iter().zip(&sizes) {
            write!(contents, "<Contents><Key>{k}</Key><Size>{s}</Size></Contents>").unwrap();
        }
        let body = format!(
            "<ListBucketResult><IsTruncated>false</IsTruncated>{contents}</ListBucketResult>"
        );
        let out = list_objects_v2::parse(body.as_bytes()).unwrap();
        prop_assert_eq!(out.contents.len(), keys.len());
        for ((got, k), s) in out.contents.iter().zip(&keys).zip(&sizes) {
            prop_assert_eq!(&got.key, k);
            prop_assert_eq!(got.size, *s);
        }
    }
}
