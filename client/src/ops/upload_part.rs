//! UploadPart: one part of a multipart upload. Addressed by upload id and part number, so a
//! replay overwrites the same part: idempotent.

use bytes::Bytes;
use http::{HeaderMap, Method};

use super::{ETag, Operation, S3Request, required_etag};

/// Builds the request. `part_number` is 1..=10000.
pub fn request(
    bucket: &str,
    key: &str,
    upload_id: &str,
    part_number: u32,
    body: Bytes,
) -> S3Request {
    S3Request::new(Operation::UploadPart, Method::PUT, bucket)
        .key(key)
        .query("partNumber", part_number.to_string())
        .query("uploadId", upload_id)
        .body(body)
}

/// Parses the answer headers: the part's ETag.
pub fn parse(headers: &HeaderMap) -> Result<ETag, String> {
    required_etag(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    // From the AWS UploadPart reference.
    #[test]
    fn builds_the_request_and_parses_the_documented_answer() {
        let r = request(
            "example-bucket",
            "my-movie.m2ts",
            "VCVsb2FkIElEIGZvciBlbZZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZR",
            1,
            Bytes::from_static(b"x"),
        );
        assert_eq!(r.query[0], ("partNumber".to_owned(), "1".to_owned()));
        assert_eq!(r.query[1].0, "uploadId");
        let mut h = HeaderMap::new();
        h.insert(
            "etag",
            HeaderValue::from_static("\"b54357faf0632cce46e942fa68356b38\""),
        );
        assert_eq!(
            parse(&h).unwrap().as_str(),
            "b54357faf0632cce46e942fa68356b38"
        );
    }
}
