//! DeleteObject: removes one key. Deleting a missing key succeeds (204), which is what makes
//! it safe to replay.

use http::Method;

use super::{Operation, S3Request};

/// Builds the request.
pub fn request(bucket: &str, key: &str) -> S3Request {
    S3Request::new(Operation::DeleteObject, Method::DELETE, bucket).key(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_delete() {
        let r = request("b", "a b/c");
        assert_eq!(r.method, Method::DELETE);
        assert_eq!(r.key.as_deref(), Some("a b/c"));
        assert!(r.body.is_empty());
    }
}
