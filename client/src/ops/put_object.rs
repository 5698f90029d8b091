//! PutObject: one PUT of a whole object, optionally conditional.

use bytes::Bytes;
use http::{HeaderMap, Method};

use super::{ETag, EtagQuoting, Operation, PutMode, S3Request, header_str, required_etag};

/// Builds the request. The body is in memory (at most `buffer_size`; larger uploads go
/// multipart), so it can be hashed, signed and replayed.
pub fn request(
    bucket: &str,
    key: &str,
    body: Bytes,
    mode: &PutMode,
    quoting: EtagQuoting,
) -> S3Request {
    let req = S3Request::new(Operation::PutObject, Method::PUT, bucket)
        .key(key)
        .header("content-type", "application/octet-stream")
        .body(body);
    mode.apply(req, quoting)
}

/// The answer to a PutObject (or a completed multipart upload).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PutObjectOutput {
    /// ETag of the new object.
    pub etag: ETag,
    /// `x-amz-version-id`, when versioning is on.
    pub version_id: Option<String>,
}

/// Parses the answer headers.
pub fn parse(headers: &HeaderMap) -> Result<PutObjectOutput, String> {
    Ok(PutObjectOutput {
        etag: required_etag(headers)?,
        version_id: header_str(headers, "x-amz-version-id"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn builds_a_create_only_put() {
        let r = request(
            "b",
            "dir/k",
            Bytes::from_static(b"hello"),
            &PutMode::Create,
            EtagQuoting::Quoted,
        );
        assert_eq!(r.method, Method::PUT);
        assert_eq!(r.key.as_deref(), Some("dir/k"));
        assert_eq!(r.header_value("if-none-match"), Some("*"));
        assert_eq!(&r.body[..], b"hello");
        assert!(r.query.is_empty());
    }

    // Response sample from the AWS PutObject reference.
    #[test]
    fn parses_the_documented_answer() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-amz-id-2",
            HeaderValue::from_static(
                "LriYPLdmOdAiIfgSm/F1YsViT1LW94/xUQxMsF7xiEb1a0wiIOIxl+zbwZ163pt7",
            ),
        );
        h.insert(
            "x-amz-request-id",
            HeaderValue::from_static("0A49CE4060975EAC"),
        );
        h.insert(
            "etag",
            HeaderValue::from_static("\"1b2cf535f27731c974343645a3985328\""),
        );
        h.insert(
            "x-amz-version-id",
            HeaderValue::from_static("43jfkodU8493jnFJD9fjj3HHNVfdsQUIFDNsidf038jfdsjGFDSIRp"),
        );
        let out = parse(&h).unwrap();
        assert_eq!(out.etag.as_str(), "1b2cf535f27731c974343645a3985328");
        assert_eq!(
            out.version_id.as_deref(),
            Some("43jfkodU8493jnFJD9fjj3HHNVfdsQUIFDNsidf038jfdsjGFDSIRp")
        );
        assert!(parse(&HeaderMap::new()).is_err());
    }
}
