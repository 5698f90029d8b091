//! ListObjectsV2: one page of keys. We always ask for `encoding-type=url` (keys may hold
//! characters XML 1.0 cannot carry) and decode `Key`, `Prefix`, `Delimiter` and
//! `StartAfter` when the server says it encoded them.

use http::Method;
use serde::Deserialize;

use super::{ETag, Operation, S3Request};
use crate::xml;

/// What to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListObjectsV2Params {
    /// Only keys starting with this.
    pub prefix: Option<String>,
    /// Roll keys up to the first occurrence of this after the prefix into common prefixes.
    pub delimiter: Option<String>,
    /// `NextContinuationToken` of the previous page.
    pub continuation_token: Option<String>,
    /// Start listing after this key.
    pub start_after: Option<String>,
    /// Page size (S3 caps it at 1000).
    pub max_keys: Option<u32>,
}

/// Builds the request.
pub fn request(bucket: &str, params: &ListObjectsV2Params) -> S3Request {
    let mut req = S3Request::new(Operation::ListObjectsV2, Method::GET, bucket)
        .query("list-type", "2")
        .query("encoding-type", "url");
    if let Some(t) = &params.continuation_token {
        req = req.query("continuation-token", t.clone());
    }
    if let Some(d) = &params.delimiter {
        req = req.query("delimiter", d.clone());
    }
    if let Some(m) = params.max_keys {
        req = req.query("max-keys", m.to_string());
    }
    if let Some(p) = &params.prefix {
        req = req.query("prefix", p.clone());
    }
    if let Some(s) = &params.start_after {
        req = req.query("start-after", s.clone());
    }
    req
}

/// One listed object.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObjectSummary {
    /// The key, decoded.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// ETag.
    pub etag: Option<ETag>,
    /// `LastModified`, as sent (ISO 8601).
    pub last_modified: Option<String>,
}

/// One page of a listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListObjectsV2Output {
    /// Objects on this page.
    pub contents: Vec<ObjectSummary>,
    /// Common prefixes (with a delimiter), decoded.
    pub common_prefixes: Vec<String>,
    /// Whether another page follows.
    pub is_truncated: bool,
    /// Token for the next page.
    pub next_continuation_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Contents {
    key: String,
    #[serde(default)]
    size: u64,
    #[serde(rename = "ETag", default)]
    etag: Option<String>,
    #[serde(default)]
    last_modified: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CommonPrefix {
    prefix: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListBucketResult {
    #[serde(default)]
    contents: Vec<Contents>,
    #[serde(default)]
    common_prefixes: Vec<CommonPrefix>,
    #[serde(default)]
    is_truncated: bool,
    #[serde(default)]
    next_continuation_token: Option<String>,
    #[serde(default)]
    encoding_type: Option<String>,
}

/// Parses a `<ListBucketResult>` body.
pub fn parse(body: &[u8]) -> Result<ListObjectsV2Output, String> {
    let r: ListBucketResult = xml::from_body(body, "ListBucketResult")?;
    let encoded = r.encoding_type.as_deref() == Some("url");
    let decode = |s: String| if encoded { url_decode(&s) } else { Ok(s) };
    let mut out = ListObjectsV2Output {
        is_truncated: r.is_truncated,
        next_continuation_token: r.next_continuation_token.filter(|t| !t.is_empty()),
        ..ListObjectsV2Output::default()
    };
    for c in r.contents {
        out.contents.push(ObjectSummary {
            key: decode(c.key)?,
            size: c.size,
            etag: c.etag.as_deref().map(ETag::parse),
            last_modified: c.last_modified,
        });
    }
    for p in r.common_prefixes {
        out.common_prefixes.push(decode(p.prefix)?);
    }
    if out.is_truncated && out.next_continuation_token.is_none() {
        return Err("ListBucketResult is truncated but has no NextContinuationToken".to_owned());
    }
    Ok(out)
}

/// Decodes S3's `encoding-type=url` form. AWS encodes a space as `+` (and a literal plus as
/// `%2B`), like HTML forms; other servers use `%20`. Both decode correctly here.
pub(crate) fn url_decode(s: &str) -> Result<String, String> {
    let plus_as_space = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| format!("listed key {s:?} is not UTF-8 once decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // From the AWS ListObjectsV2 reference ("Listing keys using the prefix and delimiter").
    const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>example-bucket</Name>
  <Prefix></Prefix>
  <KeyCount>2</KeyCount>
  <MaxKeys>1000</MaxKeys>
  <Delimiter>/</Delimiter>
  <IsTruncated>false</IsTruncated>
  <Contents>
    <Key>sample.jpg</Key>
    <LastModified>2011-02-26T01:56:20.000Z</LastModified>
    <ETag>"bf1d737a4d46a19f3bced6905cc8b902"</ETag>
    <Size>142863</Size>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
  <CommonPrefixes>
    <Prefix>photos/</Prefix>
  </CommonPrefixes>
</ListBucketResult>"#;

    // From the AWS ListObjectsV2 reference ("Using a continuation token").
    const TRUNCATED: &str = r#"<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>bucket</Name>
  <Prefix></Prefix>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
  <KeyCount>1</KeyCount>
  <MaxKeys>1</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <Contents>
    <Key>happyface.jpg</Key>
    <LastModified>2014-11-21T19:40:05.000Z</LastModified>
    <ETag>"70ee1738b6b21e2c8a43f3a5ab0eee71"</ETag>
    <Size>11</Size>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
</ListBucketResult>"#;

    #[test]
    fn parses_the_documented_answers() {
        let out = parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(out.contents.len(), 1);
        assert_eq!(out.contents[0].key, "sample.jpg");
        assert_eq!(out.contents[0].size, 142_863);
        assert_eq!(
            out.contents[0].etag.as_ref().unwrap().as_str(),
            "bf1d737a4d46a19f3bced6905cc8b902"
        );
        assert_eq!(out.common_prefixes, vec!["photos/"]);
        assert!(!out.is_truncated);
        let t = parse(TRUNCATED.as_bytes()).unwrap();
        assert!(t.is_truncated);
        assert_eq!(
            t.next_continuation_token.as_deref(),
            Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
        );
    }

    #[test]
    fn decodes_url_encoded_keys_only_when_told() {
        let body = "<ListBucketResult><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>\
            <Contents><Key>a+b%2Bc/%C3%A9t%C3%A9%20x</Key><Size>1</Size></Contents>\
            <CommonPrefixes><Prefix>p%2F+q/</Prefix></CommonPrefixes></ListBucketResult>";
        let out = parse(body.as_bytes()).unwrap();
        assert_eq!(out.contents[0].key, "a b+c/été x");
        assert_eq!(out.common_prefixes, vec!["p/ q/"]);
        let raw = "<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a+b%2B</Key>\
            <Size>1</Size></Contents></ListBucketResult>";
        assert_eq!(parse(raw.as_bytes()).unwrap().contents[0].key, "a+b%2B");
    }

    #[test]
    fn empty_listing_and_truncation_without_token() {
        let out = parse(b"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>")
            .unwrap();
        assert!(out.contents.is_empty() && out.common_prefixes.is_empty());
        assert!(
            parse(b"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>").is_err()
        );
    }

    #[test]
    fn builds_all_parameters() {
        let r = request(
            "b",
            &ListObjectsV2Params {
                prefix: Some("indices/".into()),
                delimiter: Some("/".into()),
                continuation_token: Some("tok".into()),
                start_after: Some("indices/a".into()),
                max_keys: Some(10),
            },
        );
        let q: Vec<(&str, &str)> = r
            .query
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        assert_eq!(
            q,
            vec![
                ("list-type", "2"),
                ("encoding-type", "url"),
                ("continuation-token", "tok"),
                ("delimiter", "/"),
                ("max-keys", "10"),
                ("prefix", "indices/"),
                ("start-after", "indices/a")
            ]
        );
    }
}
