//! CreateMultipartUpload: starts an upload and returns its id.
//!
//! A POST: replaying it creates a second upload (the first one leaks until aborted), so it
//! is marked [`Idempotency::NotIdempotent`].

use http::Method;
use serde::Deserialize;

use super::{Idempotency, Operation, S3Request};
use crate::xml;

/// Builds the request.
pub fn request(bucket: &str, key: &str) -> S3Request {
    let mut req = S3Request::new(Operation::CreateMultipartUpload, Method::POST, bucket)
        .key(key)
        .query("uploads", "")
        .header("content-type", "application/octet-stream");
    req.idempotency = Idempotency::NotIdempotent;
    req
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InitiateMultipartUploadResult {
    upload_id: String,
}

/// Parses the answer body; returns the upload id.
pub fn parse(body: &[u8]) -> Result<String, String> {
    let r: InitiateMultipartUploadResult = xml::from_body(body, "InitiateMultipartUploadResult")?;
    if r.upload_id.is_empty() {
        return Err("InitiateMultipartUploadResult has an empty UploadId".to_owned());
    }
    Ok(r.upload_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    // From the AWS CreateMultipartUpload reference.
    const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>example-bucket</Bucket>
  <Key>example-object</Key>
  <UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>
</InitiateMultipartUploadResult>"#;

    #[test]
    fn parses_the_documented_answer() {
        assert_eq!(
            parse(SAMPLE.as_bytes()).unwrap(),
            "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA"
        );
        assert!(parse(b"<InitiateMultipartUploadResult><UploadId></UploadId></InitiateMultipartUploadResult>").is_err());
        assert!(parse(b"garbage").is_err());
    }

    #[test]
    fn is_a_post_on_uploads_and_not_idempotent() {
        let r = request("b", "k");
        assert_eq!(r.method, Method::POST);
        assert_eq!(r.query, vec![("uploads".to_owned(), String::new())]);
        assert_eq!(r.idempotency, Idempotency::NotIdempotent);
    }
}
