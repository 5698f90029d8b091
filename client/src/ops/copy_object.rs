//! CopyObject: a server-side copy. Like CompleteMultipartUpload, S3 may answer 200 with an
//! `<Error>` body; the client checks the root element first.

use http::Method;
use serde::Deserialize;

use super::{ETag, Operation, S3Request};
use crate::xml;

/// Builds the request copying `source_bucket/source_key` to `bucket/key`.
pub fn request(bucket: &str, key: &str, source_bucket: &str, source_key: &str) -> S3Request {
    let source = format!(
        "/{}/{}",
        crate::endpoint::encode_path_segment(source_bucket),
        crate::endpoint::encode_key(source_key)
    );
    S3Request::new(Operation::CopyObject, Method::PUT, bucket)
        .key(key)
        .header("x-amz-copy-source", &source)
}

/// The answer to a copy.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CopyObjectOutput {
    /// ETag of the new object.
    pub etag: ETag,
    /// `LastModified`, as sent.
    pub last_modified: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CopyObjectResult {
    #[serde(rename = "ETag")]
    etag: String,
    #[serde(default)]
    last_modified: Option<String>,
}

/// Parses a `<CopyObjectResult>` body (the caller has ruled out `<Error>`).
pub fn parse(body: &[u8]) -> Result<CopyObjectOutput, String> {
    let r: CopyObjectResult = xml::from_body(body, "CopyObjectResult")?;
    Ok(CopyObjectOutput {
        etag: ETag::parse(&r.etag),
        last_modified: r.last_modified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // From the AWS CopyObject reference.
    const SAMPLE: &str = r#"<CopyObjectResult>
   <LastModified>2009-10-28T22:32:00</LastModified>
   <ETag>"9b2cf535f27731c974343645a3985328"</ETag>
</CopyObjectResult>"#;

    #[test]
    fn parses_the_documented_answer() {
        let out = parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(out.etag.as_str(), "9b2cf535f27731c974343645a3985328");
        assert_eq!(out.last_modified.as_deref(), Some("2009-10-28T22:32:00"));
    }

    #[test]
    fn encodes_the_copy_source() {
        let r = request("dst", "new key", "src", "dir/a b+é");
        assert_eq!(
            r.header_value("x-amz-copy-source"),
            Some("/src/dir/a%20b%2B%C3%A9")
        );
    }
}
