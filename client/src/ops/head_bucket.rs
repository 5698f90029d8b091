//! HeadBucket: does the bucket exist and may we use it; which region holds it.

use http::{HeaderMap, Method};

use super::{Operation, S3Request, header_str};

/// Builds the request.
pub fn request(bucket: &str) -> S3Request {
    S3Request::new(Operation::HeadBucket, Method::HEAD, bucket)
}

/// The answer to a HeadBucket.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeadBucketOutput {
    /// `x-amz-bucket-region`, when the server sends it.
    pub region: Option<String>,
}

/// Parses the answer headers.
pub fn parse(headers: &HeaderMap) -> HeadBucketOutput {
    HeadBucketOutput {
        region: header_str(headers, "x-amz-bucket-region"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn reads_the_bucket_region() {
        let mut h = HeaderMap::new();
        h.insert("x-amz-bucket-region", HeaderValue::from_static("us-west-2"));
        assert_eq!(parse(&h).region.as_deref(), Some("us-west-2"));
        assert_eq!(parse(&HeaderMap::new()).region, None);
        let r = request("b");
        assert_eq!((r.method, r.key), (Method::HEAD, None));
    }
}
