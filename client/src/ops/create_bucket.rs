//! CreateBucket, with a `LocationConstraint` for any region but `us-east-1` (where AWS
//! rejects an explicit constraint).

use http::Method;

use super::{Operation, S3Request};
use crate::xml;

/// Builds the request for a bucket in `region`.
pub fn request(bucket: &str, region: &str) -> S3Request {
    let req = S3Request::new(Operation::CreateBucket, Method::PUT, bucket);
    if region == "us-east-1" {
        return req;
    }
    let body = format!(
        "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
         <LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
        xml::escape(region)
    );
    req.header("content-type", "application/xml")
        .body(body.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Body shape from the AWS CreateBucket reference.
    #[test]
    fn sends_a_location_constraint_outside_us_east_1() {
        let r = request("b", "eu-west-1");
        assert_eq!(
            std::str::from_utf8(&r.body).unwrap(),
            "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>"
        );
        assert!(request("b", "us-east-1").body.is_empty());
        assert_eq!(request("b", "garage").method, Method::PUT);
    }
}
