//! AbortMultipartUpload: drops an upload and its parts.

use http::Method;

use super::{Operation, S3Request};

/// Builds the request.
pub fn request(bucket: &str, key: &str, upload_id: &str) -> S3Request {
    S3Request::new(Operation::AbortMultipartUpload, Method::DELETE, bucket)
        .key(key)
        .query("uploadId", upload_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    // From the AWS AbortMultipartUpload reference:
    // DELETE /example-object?uploadId=VXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZ
    #[test]
    fn builds_the_documented_request() {
        let r = request(
            "example-bucket",
            "example-object",
            "VXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZ",
        );
        assert_eq!(r.method, Method::DELETE);
        assert_eq!(
            r.query,
            vec![(
                "uploadId".to_owned(),
                "VXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZ".to_owned()
            )]
        );
    }
}
