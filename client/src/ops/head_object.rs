//! HeadObject: an object's metadata without its body.

use http::{HeaderMap, Method};

use super::{ObjectMeta, Operation, S3Request, header_str, header_u64, required_etag};

/// Builds the request.
pub fn request(bucket: &str, key: &str) -> S3Request {
    S3Request::new(Operation::HeadObject, Method::HEAD, bucket).key(key)
}

/// Parses the answer headers.
pub fn parse(headers: &HeaderMap) -> Result<ObjectMeta, String> {
    Ok(ObjectMeta {
        size: header_u64(headers, "content-length")?
            .ok_or_else(|| "the answer has no Content-Length".to_owned())?,
        etag: required_etag(headers)?,
        last_modified: header_str(headers, "last-modified"),
        version_id: header_str(headers, "x-amz-version-id"),
        content_type: header_str(headers, "content-type"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    // Response sample from the AWS HeadObject reference.
    #[test]
    fn parses_the_documented_answer() {
        let mut h = HeaderMap::new();
        h.insert(
            "last-modified",
            HeaderValue::from_static("Sun, 1 Jan 2006 12:00:00 GMT"),
        );
        h.insert(
            "etag",
            HeaderValue::from_static("\"fba9dede5f27731c9771645a39863328\""),
        );
        h.insert("content-length", HeaderValue::from_static("434234"));
        h.insert("content-type", HeaderValue::from_static("text/plain"));
        let m = parse(&h).unwrap();
        assert_eq!(m.size, 434_234);
        assert_eq!(m.etag.as_str(), "fba9dede5f27731c9771645a39863328");
        assert_eq!(
            m.last_modified.as_deref(),
            Some("Sun, 1 Jan 2006 12:00:00 GMT")
        );
        assert_eq!(m.content_type.as_deref(), Some("text/plain"));
        assert_eq!(m.version_id, None);
    }

    #[test]
    fn rejects_answers_without_length_or_etag() {
        let mut h = HeaderMap::new();
        h.insert("etag", HeaderValue::from_static("\"e\""));
        assert!(parse(&h).is_err());
        h.insert("content-length", HeaderValue::from_static("x"));
        assert!(parse(&h).is_err());
        let r = request("b", "k");
        assert_eq!(r.method, Method::HEAD);
    }
}
