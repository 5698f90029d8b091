//! S3 errors as the fake server returns them: an AWS `Code`, its HTTP status, a message, the
//! extra elements AWS adds for some codes (`<Region>`, `<Key>`, …) and the XML body.

use std::fmt;

use http::StatusCode;

use super::xml::XmlWriter;

/// The AWS error codes the fake can return, each with the status AWS uses for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 403: signature valid but the request is not allowed (e.g. unsigned `x-amz-*` headers).
    AccessDenied,
    /// 400: bad `Authorization` header, credential scope or region.
    AuthorizationHeaderMalformed,
    /// 400: `Content-MD5` or `x-amz-checksum-*` does not match the body.
    BadDigest,
    /// 409: `CreateBucket` on a bucket the caller already owns.
    BucketAlreadyOwnedByYou,
    /// 409: `DeleteBucket` on a non-empty bucket.
    BucketNotEmpty,
    /// 409: a concurrent conditional write won the race.
    ConditionalRequestConflict,
    /// 400: a non-final multipart part is below the minimum part size.
    EntityTooSmall,
    /// 400: the body is larger than allowed.
    EntityTooLarge,
    /// 400: `CreateBucket` location constraint does not match the endpoint's region.
    IllegalLocationConstraintException,
    /// 400: the body is shorter than `Content-Length`.
    IncompleteBody,
    /// 500: internal error (retryable).
    InternalError,
    /// 403: the access key id is unknown.
    InvalidAccessKeyId,
    /// 400: an argument is invalid.
    InvalidArgument,
    /// 400: the bucket name is invalid.
    InvalidBucketName,
    /// 400: `Content-MD5` or a checksum header is not well formed.
    InvalidDigest,
    /// 400: a part in `CompleteMultipartUpload` is missing or its ETag differs.
    InvalidPart,
    /// 400: parts in `CompleteMultipartUpload` are not in ascending order.
    InvalidPartOrder,
    /// 416: the range is not satisfiable.
    InvalidRange,
    /// 400: the request is invalid (e.g. DeleteObjects without `Content-MD5`).
    InvalidRequest,
    /// 400: the session token is missing or wrong.
    InvalidToken,
    /// 400: the URI cannot be parsed (e.g. invalid UTF-8 after percent-decoding).
    InvalidURI,
    /// 400: the key is longer than 1024 bytes.
    KeyTooLongError,
    /// 400: the XML body is malformed.
    MalformedXML,
    /// 405: the method is not allowed on this resource.
    MethodNotAllowed,
    /// 411: `Content-Length` is required.
    MissingContentLength,
    /// 404: the bucket does not exist.
    NoSuchBucket,
    /// 404: the key does not exist.
    NoSuchKey,
    /// 404: the multipart upload does not exist.
    NoSuchUpload,
    /// 501: the feature is not implemented.
    NotImplemented,
    /// 301: the bucket must be addressed through another region's endpoint.
    PermanentRedirect,
    /// 412: a precondition (`If-Match`, `If-None-Match`, …) failed.
    PreconditionFailed,
    /// 403: the request time differs too much from the server's clock.
    RequestTimeTooSkewed,
    /// 503: service unavailable (retryable).
    ServiceUnavailable,
    /// 403: the signature does not match.
    SignatureDoesNotMatch,
    /// 503: reduce the request rate (retryable).
    SlowDown,
    /// 400: `x-amz-content-sha256` does not match the body.
    XAmzContentSHA256Mismatch,
}

impl ErrorCode {
    /// The code as AWS spells it in `<Code>`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessDenied => "AccessDenied",
            Self::AuthorizationHeaderMalformed => "AuthorizationHeaderMalformed",
            Self::BadDigest => "BadDigest",
            Self::BucketAlreadyOwnedByYou => "BucketAlreadyOwnedByYou",
            Self::BucketNotEmpty => "BucketNotEmpty",
            Self::ConditionalRequestConflict => "ConditionalRequestConflict",
            Self::EntityTooSmall => "EntityTooSmall",
            Self::EntityTooLarge => "EntityTooLarge",
            Self::IllegalLocationConstraintException => "IllegalLocationConstraintException",
            Self::IncompleteBody => "IncompleteBody",
            Self::InternalError => "InternalError",
            Self::InvalidAccessKeyId => "InvalidAccessKeyId",
            Self::InvalidArgument => "InvalidArgument",
            Self::InvalidBucketName => "InvalidBucketName",
            Self::InvalidDigest => "InvalidDigest",
            Self::InvalidPart => "InvalidPart",
            Self::InvalidPartOrder => "InvalidPartOrder",
            Self::InvalidRange => "InvalidRange",
            Self::InvalidRequest => "InvalidRequest",
            Self::InvalidToken => "InvalidToken",
            Self::InvalidURI => "InvalidURI",
            Self::KeyTooLongError => "KeyTooLongError",
            Self::MalformedXML => "MalformedXML",
            Self::MethodNotAllowed => "MethodNotAllowed",
            Self::MissingContentLength => "MissingContentLength",
            Self::NoSuchBucket => "NoSuchBucket",
            Self::NoSuchKey => "NoSuchKey",
            Self::NoSuchUpload => "NoSuchUpload",
            Self::NotImplemented => "NotImplemented",
            Self::PermanentRedirect => "PermanentRedirect",
            Self::PreconditionFailed => "PreconditionFailed",
            Self::RequestTimeTooSkewed => "RequestTimeTooSkewed",
            Self::ServiceUnavailable => "ServiceUnavailable",
            Self::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            Self::SlowDown => "SlowDown",
            Self::XAmzContentSHA256Mismatch => "XAmzContentSHA256Mismatch",
        }
    }

    /// The HTTP status AWS returns with this code.
    pub fn status(self) -> StatusCode {
        match self {
            Self::PermanentRedirect => StatusCode::MOVED_PERMANENTLY,
            Self::AuthorizationHeaderMalformed
            | Self::BadDigest
            | Self::EntityTooSmall
            | Self::EntityTooLarge
            | Self::IllegalLocationConstraintException
            | Self::IncompleteBody
            | Self::InvalidArgument
            | Self::InvalidBucketName
            | Self::InvalidDigest
            | Self::InvalidPart
            | Self::InvalidPartOrder
            | Self::InvalidRequest
            | Self::InvalidToken
            | Self::InvalidURI
            | Self::KeyTooLongError
            | Self::MalformedXML
            | Self::XAmzContentSHA256Mismatch => StatusCode::BAD_REQUEST,
            Self::AccessDenied
            | Self::InvalidAccessKeyId
            | Self::RequestTimeTooSkewed
            | Self::SignatureDoesNotMatch => StatusCode::FORBIDDEN,
            Self::NoSuchBucket | Self::NoSuchKey | Self::NoSuchUpload => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::BucketAlreadyOwnedByYou
            | Self::BucketNotEmpty
            | Self::ConditionalRequestConflict => StatusCode::CONFLICT,
            Self::MissingContentLength => StatusCode::LENGTH_REQUIRED,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::InvalidRange => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            Self::ServiceUnavailable | Self::SlowDown => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// AWS's usual message for this code.
    pub fn default_message(self) -> &'static str {
        match self {
            Self::AccessDenied => "Access Denied",
            Self::AuthorizationHeaderMalformed => "The authorization header is malformed.",
            Self::BadDigest => "The Content-MD5 you specified did not match what we received.",
            Self::BucketAlreadyOwnedByYou => {
                "Your previous request to create the named bucket succeeded and you already own it."
            }
            Self::BucketNotEmpty => "The bucket you tried to delete is not empty",
            Self::ConditionalRequestConflict => {
                "A conflicting conditional operation is currently in progress against this \
                 resource. Please try again."
            }
            Self::EntityTooSmall => "Your proposed upload is smaller than the minimum allowed size",
            Self::EntityTooLarge => "Your proposed upload exceeds the maximum allowed size",
            Self::IllegalLocationConstraintException => {
                "The specified location-constraint is not valid for this endpoint."
            }
            Self::IncompleteBody => {
                "You did not provide the number of bytes specified by the Content-Length HTTP \
                 header"
            }
            Self::InternalError => "We encountered an internal error. Please try again.",
            Self::InvalidAccessKeyId => {
                "The AWS Access Key Id you provided does not exist in our records."
            }
            Self::InvalidArgument => "Invalid Argument",
            Self::InvalidBucketName => "The specified bucket is not valid.",
            Self::InvalidDigest => "The Content-MD5 you specified was invalid.",
            Self::InvalidPart => {
                "One or more of the specified parts could not be found.  The part may not have \
                 been uploaded, or the specified entity tag may not match the part's entity tag."
            }
            Self::InvalidPartOrder => {
                "The list of parts was not in ascending order. Parts must be ordered by part \
                 number."
            }
            Self::InvalidRange => "The requested range is not satisfiable",
            Self::InvalidRequest => "Invalid Request",
            Self::InvalidToken => "The provided token is malformed or otherwise invalid.",
            Self::InvalidURI => "Couldn't parse the specified URI.",
            Self::KeyTooLongError => "Your key is too long",
            Self::MalformedXML => {
                "The XML you provided was not well-formed or did not validate against our \
                 published schema"
            }
            Self::MethodNotAllowed => "The specified method is not allowed against this resource.",
            Self::MissingContentLength => "You must provide the Content-Length HTTP header.",
            Self::NoSuchBucket => "The specified bucket does not exist",
            Self::NoSuchKey => "The specified key does not exist.",
            Self::NoSuchUpload => {
                "The specified upload does not exist. The upload ID may be invalid, or the upload \
                 may have been aborted or completed."
            }
            Self::NotImplemented => {
                "A header you provided implies functionality that is not implemented"
            }
            Self::PermanentRedirect => {
                "The bucket you are attempting to access must be addressed using the specified \
                 endpoint. Please send all future requests to this endpoint."
            }
            Self::PreconditionFailed => {
                "At least one of the pre-conditions you specified did not hold"
            }
            Self::RequestTimeTooSkewed => {
                "The difference between the request time and the current time is too large."
            }
            Self::ServiceUnavailable => "Service is unable to handle request.",
            Self::SignatureDoesNotMatch => {
                "The request signature we calculated does not match the signature you provided. \
                 Check your key and signing method."
            }
            Self::SlowDown => "Please reduce your request rate.",
            Self::XAmzContentSHA256Mismatch => {
                "The provided 'x-amz-content-sha256' header does not match what was computed."
            }
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An S3 error response: code, status, message, extra XML elements and extra headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Error {
    /// The AWS error code.
    pub code: ErrorCode,
    /// The HTTP status (normally `code.status()`).
    pub status: StatusCode,
    /// The `<Message>`.
    pub message: String,
    /// Extra elements AWS puts after `<Message>` (e.g. `Region`, `Key`, `BucketName`).
    pub details: Vec<(&'static str, String)>,
    /// Extra response headers (e.g. `x-amz-bucket-region`, `Retry-After`).
    pub headers: Vec<(&'static str, String)>,
}

impl S3Error {
    /// An error with AWS's default message and status for `code`.
    pub fn new(code: ErrorCode) -> Self {
        Self {
            code,
            status: code.status(),
            message: code.default_message().to_owned(),
            details: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// An error with a specific message.
    pub fn with_message(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            ..Self::new(code)
        }
    }

    /// Adds an extra XML element after `<Message>`.
    #[must_use]
    pub fn detail(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.details.push((name, value.into()));
        self
    }

    /// Adds a response header.
    #[must_use]
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// `NoSuchBucket` naming the bucket.
    pub fn no_such_bucket(bucket: &str) -> Self {
        Self::new(ErrorCode::NoSuchBucket).detail("BucketName", bucket)
    }

    /// `NoSuchKey` naming the key.
    pub fn no_such_key(key: &str) -> Self {
        Self::new(ErrorCode::NoSuchKey).detail("Key", key)
    }

    /// `NoSuchUpload` naming the upload id.
    pub fn no_such_upload(upload_id: &str) -> Self {
        Self::new(ErrorCode::NoSuchUpload).detail("UploadId", upload_id)
    }

    /// `PreconditionFailed` naming the failed condition.
    pub fn precondition_failed(condition: &str) -> Self {
        Self::new(ErrorCode::PreconditionFailed).detail("Condition", condition)
    }

    /// `InvalidArgument` naming the argument.
    pub fn invalid_argument(message: impl Into<String>, name: &str, value: &str) -> Self {
        Self::with_message(ErrorCode::InvalidArgument, message)
            .detail("ArgumentName", name)
            .detail("ArgumentValue", value)
    }

    /// `AuthorizationHeaderMalformed` for a request signed for `wrong` while the server is in
    /// `expected`, with `<Region>` like AWS (clients read it to self-correct).
    pub fn wrong_region(wrong: &str, expected: &str) -> Self {
        Self::with_message(
            ErrorCode::AuthorizationHeaderMalformed,
            format!(
                "The authorization header is malformed; the region '{wrong}' is wrong; \
                 expecting '{expected}'"
            ),
        )
        .detail("Region", expected)
        .header("x-amz-bucket-region", expected.to_owned())
    }

    /// `PermanentRedirect` to `region`'s endpoint, with `<Endpoint>`, `<Bucket>` and the
    /// `x-amz-bucket-region` header like AWS.
    pub fn permanent_redirect(bucket: &str, region: &str, endpoint_host: &str) -> Self {
        Self::new(ErrorCode::PermanentRedirect)
            .detail("Endpoint", endpoint_host)
            .detail("Bucket", bucket)
            .header("x-amz-bucket-region", region.to_owned())
    }

    /// The XML body AWS sends for this error.
    pub fn to_xml(&self, request_id: &str, host_id: &str) -> String {
        let mut w = XmlWriter::new();
        w.open("Error");
        w.element("Code", self.code.as_str());
        w.element("Message", &self.message);
        for (name, value) in &self.details {
            w.element(name, value);
        }
        w.element("RequestId", request_id);
        w.element("HostId", host_id);
        w.close("Error");
        w.finish()
    }
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.code,
            self.status.as_u16(),
            self.message
        )
    }
}

impl std::error::Error for S3Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_aws_statuses() {
        assert_eq!(ErrorCode::NoSuchKey.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            ErrorCode::SlowDown.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            ErrorCode::PreconditionFailed.status(),
            StatusCode::PRECONDITION_FAILED
        );
        assert_eq!(
            ErrorCode::ConditionalRequestConflict.status(),
            StatusCode::CONFLICT
        );
        assert_eq!(
            ErrorCode::PermanentRedirect.status(),
            StatusCode::MOVED_PERMANENTLY
        );
        assert_eq!(
            ErrorCode::InvalidRange.status(),
            StatusCode::RANGE_NOT_SATISFIABLE
        );
        assert_eq!(
            ErrorCode::AuthorizationHeaderMalformed.status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            ErrorCode::InvalidAccessKeyId.status(),
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn wrong_region_body_names_the_expected_region() {
        let xml = S3Error::wrong_region("us-east-1", "eu-west-3").to_xml("REQ1", "HOST1");
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\
             <Code>AuthorizationHeaderMalformed</Code>\
             <Message>The authorization header is malformed; the region &apos;us-east-1&apos; \
             is wrong; expecting &apos;eu-west-3&apos;</Message>\
             <Region>eu-west-3</Region><RequestId>REQ1</RequestId><HostId>HOST1</HostId>\
             </Error>"
        );
    }

    #[test]
    fn details_are_escaped() {
        let xml = S3Error::no_such_key("a&b<c>").to_xml("R", "H");
        assert!(xml.contains("<Key>a&amp;b&lt;c&gt;</Key>"), "{xml}");
    }
}
