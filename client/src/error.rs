//! The one public error type of this crate, and the single table that maps an S3 answer
//! (HTTP status + `Code`) onto it.
//!
//! Callers branch on the variant; operators read the `Display` text, which names the S3
//! code, the HTTP status, the operation, the bucket/key, S3's message and the request id,
//! and never a secret.

use std::fmt;

use crate::ops::Operation;

/// What S3 (or the server in front of it) said when it refused a request.
///
/// Every variant of [`Error`] that came from an S3 answer keeps one of these, so that the
/// `Code`, `Message` and `RequestId` are never lost.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct S3Failure {
    /// The operation that failed.
    pub operation: Operation,
    /// The bucket addressed (empty for none).
    pub bucket: String,
    /// The key addressed, if the operation is object-level.
    pub key: Option<String>,
    /// HTTP status of the answer.
    pub status: u16,
    /// S3's error `Code`, or empty when the answer had no XML body (HEAD requests).
    pub code: String,
    /// S3's error `Message` (may be empty).
    pub message: String,
    /// `x-amz-request-id` header or `RequestId` element.
    pub request_id: Option<String>,
    /// `x-amz-id-2` header or `HostId` element.
    pub host_id: Option<String>,
}

impl S3Failure {
    /// The code to show: S3's `Code`, else a name for the bare status.
    pub fn display_code(&self) -> &str {
        if self.code.is_empty() {
            match self.status {
                301 => "MovedPermanently",
                307 => "TemporaryRedirect",
                400 => "BadRequest",
                401 => "Unauthorized",
                403 => "Forbidden",
                404 if self.operation.is_bucket_level() => "NoSuchBucket",
                404 => "NotFound",
                409 => "Conflict",
                412 => "PreconditionFailed",
                416 => "InvalidRange",
                429 => "TooManyRequests",
                500 => "InternalServerError",
                502 => "BadGateway",
                503 => "ServiceUnavailable",
                504 => "GatewayTimeout",
                _ => "HttpError",
            }
        } else {
            &self.code
        }
    }
}

impl fmt::Display for S3Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "S3 {} ({}) on {} {}",
            self.display_code(),
            self.status,
            self.operation,
            Target {
                bucket: &self.bucket,
                key: self.key.as_deref()
            }
        )?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " [request id {id}]")?;
        }
        Ok(())
    }
}

/// Where a request that never got an S3 answer was going.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestContext {
    /// The operation attempted.
    pub operation: Operation,
    /// The bucket addressed.
    pub bucket: String,
    /// The key addressed, if any.
    pub key: Option<String>,
    /// `scheme://host[:port]` the request went to.
    pub endpoint: String,
}

impl fmt::Display for RequestContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} at {}",
            self.operation,
            Target {
                bucket: &self.bucket,
                key: self.key.as_deref()
            },
            self.endpoint
        )
    }
}

struct Target<'a> {
    bucket: &'a str,
    key: Option<&'a str>,
}

impl fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.key {
            Some(key) => write!(f, "{}/{}", self.bucket, key),
            None => f.write_str(self.bucket),
        }
    }
}

/// Everything that can go wrong in this crate. Branch on the variant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key (or multipart upload) does not exist: `NoSuchKey`, `NoSuchUpload`, bare 404.
    #[error("{0}")]
    NotFound(Box<S3Failure>),
    /// A conditional write or read (`If-Match`, `If-None-Match`) did not hold: 412.
    #[error("{0}")]
    PreconditionFailed(Box<S3Failure>),
    /// A concurrent conditional write on the same key was in progress: 409. Retried by the
    /// client; surfaces only once the retries are exhausted.
    #[error("{0}")]
    Conflict(Box<S3Failure>),
    /// The credentials were refused. `code` tells why: `InvalidAccessKeyId`,
    /// `SignatureDoesNotMatch`, `RequestTimeTooSkewed`, `AccessDenied`, `ExpiredToken`, …
    /// Never retried.
    #[error("{0}")]
    AccessDenied(Box<S3Failure>),
    /// The bucket does not exist.
    #[error("{0}")]
    NoSuchBucket(Box<S3Failure>),
    /// The bucket lives in another region than the client signs for, and following the
    /// server's hint once did not fix it.
    #[error("{failure}; the bucket's region is [{expected}], set s3.client.<name>.region to it")]
    WrongRegion {
        /// The region the server named.
        expected: String,
        /// The server's answer.
        failure: Box<S3Failure>,
    },
    /// The server kept asking us to slow down (`SlowDown`, 503, 429) beyond `max_retries`.
    #[error("{0} (still throttled after retries)")]
    Throttled(Box<S3Failure>),
    /// A server-side failure (`InternalError`, `RequestTimeout`, 500/502/504) that outlived
    /// the retries.
    #[error("{0} (still failing after retries)")]
    Transient(Box<S3Failure>),
    /// CreateBucket: the bucket exists (`BucketAlreadyExists`, `BucketAlreadyOwnedByYou`).
    #[error("{0}")]
    BucketAlreadyExists(Box<S3Failure>),
    /// Any other refusal by S3 (`InvalidArgument`, `EntityTooSmall`, `InvalidPart`, …).
    #[error("{0}")]
    Rejected(Box<S3Failure>),
    /// The TLS handshake failed: unknown CA, wrong host name, expired certificate, ….
    #[error("TLS failure on {context}: {message}")]
    Tls {
        /// Where the request was going.
        context: Box<RequestContext>,
        /// What rustls reported.
        message: String,
    },
    /// No TCP connection could be made (refused, DNS, unreachable, proxy).
    #[error("cannot connect for {context}: {message}")]
    Connect {
        /// Where the request was going.
        context: Box<RequestContext>,
        /// The underlying error.
        message: String,
    },
    /// The server did not answer within `read_timeout` (after retries).
    #[error("timed out on {context}: {message}")]
    Timeout {
        /// Where the request was going.
        context: Box<RequestContext>,
        /// The underlying error.
        message: String,
    },
    /// The connection broke mid-request or mid-body (reset, truncated body) after retries.
    #[error("connection lost on {context}: {message}")]
    ConnectionLost {
        /// Where the request was going.
        context: Box<RequestContext>,
        /// The underlying error.
        message: String,
    },
    /// The server answered something we cannot interpret (bad XML, missing ETag, a body
    /// shorter than announced, a changed object during a resumed read, …).
    #[error("protocol error on {context}: {message}")]
    Protocol {
        /// Where the request was going.
        context: Box<RequestContext>,
        /// What was wrong.
        message: String,
    },
    /// A setting is wrong. The message names the setting.
    #[error("{message}")]
    InvalidConfig {
        /// Names the setting and the problem.
        message: String,
    },
    /// A caller passed something this client refuses to send (e.g. an unsafe key).
    #[error("invalid request: {message}")]
    InvalidRequest {
        /// What was wrong.
        message: String,
    },
    /// The registry has no client of that name.
    #[error("Unknown s3 client name [{name}]. Existing client configs: {}", existing.join(","))]
    UnknownClient {
        /// The name asked for.
        name: String,
        /// The names that exist, sorted.
        existing: Vec<String>,
    },
    /// The stream an upload reads from failed.
    #[error("reading the upload source for {context} failed: {source}")]
    Source {
        /// Where the upload was going.
        context: Box<RequestContext>,
        /// The source's error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The S3 answer behind this error, when there was one.
    pub fn s3_failure(&self) -> Option<&S3Failure> {
        match self {
            Error::NotFound(f)
            | Error::PreconditionFailed(f)
            | Error::Conflict(f)
            | Error::AccessDenied(f)
            | Error::NoSuchBucket(f)
            | Error::WrongRegion { failure: f, .. }
            | Error::Throttled(f)
            | Error::Transient(f)
            | Error::BucketAlreadyExists(f)
            | Error::Rejected(f) => Some(f),
            _ => None,
        }
    }

    /// S3's error code, when S3 answered.
    pub fn code(&self) -> Option<&str> {
        self.s3_failure().map(S3Failure::display_code)
    }

    /// HTTP status, when S3 answered.
    pub fn status(&self) -> Option<u16> {
        self.s3_failure().map(|f| f.status)
    }

    /// The kind in the mapping table (for retry decisions and metering).
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::PreconditionFailed(_) => ErrorKind::PreconditionFailed,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::AccessDenied(_) => ErrorKind::AccessDenied,
            Error::NoSuchBucket(_) => ErrorKind::NoSuchBucket,
            Error::WrongRegion { .. } => ErrorKind::WrongRegion,
            Error::Throttled(_) => ErrorKind::Throttled,
            Error::Transient(_) => ErrorKind::Transient,
            Error::BucketAlreadyExists(_) => ErrorKind::BucketAlreadyExists,
            Error::Rejected(_) => ErrorKind::Rejected,
            Error::Tls { .. } => ErrorKind::Tls,
            Error::Connect { .. } => ErrorKind::Connect,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::ConnectionLost { .. } => ErrorKind::ConnectionLost,
            Error::Protocol { .. } => ErrorKind::Protocol,
            Error::InvalidConfig { .. }
            | Error::InvalidRequest { .. }
            | Error::UnknownClient { .. }
            | Error::Source { .. } => ErrorKind::Local,
        }
    }

    pub(crate) fn protocol(context: &RequestContext, message: impl Into<String>) -> Error {
        Error::Protocol {
            context: Box::new(context.clone()),
            message: message.into(),
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Error {
        Error::InvalidConfig {
            message: message.into(),
        }
    }
}

/// The semantic class of a failure: what the mapping table produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    NotFound,
    PreconditionFailed,
    Conflict,
    AccessDenied,
    NoSuchBucket,
    WrongRegion,
    Throttled,
    Transient,
    BucketAlreadyExists,
    Rejected,
    Tls,
    Connect,
    Timeout,
    ConnectionLost,
    Protocol,
    Local,
}

impl ErrorKind {
    /// Whether the failure is worth another attempt (the request's idempotency is decided
    /// separately, in `retry`).
    pub(crate) fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::Conflict
                | ErrorKind::Throttled
                | ErrorKind::Transient
                | ErrorKind::Connect
                | ErrorKind::Timeout
                | ErrorKind::ConnectionLost
        )
    }
}

/// THE table: S3 error `Code` first, then the bare HTTP status when the code is unknown
/// or absent (HEAD answers have no body). Documented in `docs/s3-client.md`.
pub(crate) fn classify(status: u16, code: &str, operation: Operation) -> ErrorKind {
    match code {
        "NoSuchKey" | "NoSuchUpload" | "NoSuchVersion" => return ErrorKind::NotFound,
        "NoSuchBucket" => return ErrorKind::NoSuchBucket,
        "PreconditionFailed" => return ErrorKind::PreconditionFailed,
        "ConditionalRequestConflict" | "OperationAborted" => return ErrorKind::Conflict,
        "AccessDenied"
        | "InvalidAccessKeyId"
        | "SignatureDoesNotMatch"
        | "RequestTimeTooSkewed"
        | "InvalidToken"
        | "ExpiredToken"
        | "TokenRefreshRequired"
        | "InvalidSecurity"
        | "MissingSecurityHeader"
        | "AccountProblem"
        | "AllAccessDisabled"
        | "NotSignedUp"
        | "InvalidPayer"
        // AuthorizationHeaderMalformed names the expected region when the signing region
        // is wrong; the region hint (endpoint::region_hint) acts on that before this
        // classification matters. Without one it is an authentication failure.
        | "AuthorizationHeaderMalformed" => return ErrorKind::AccessDenied,
        "PermanentRedirect" | "TemporaryRedirect" | "IllegalLocationConstraintException" => {
            return ErrorKind::WrongRegion;
        }
        "SlowDown"
        | "Throttling"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "TooManyRequests"
        | "ServiceUnavailable"
        | "RequestThrottled" => {
            return ErrorKind::Throttled;
        }
        "InternalError" | "RequestTimeout" | "InternalServerError" => {
            return ErrorKind::Transient;
        }
        "BucketAlreadyExists" | "BucketAlreadyOwnedByYou" => {
            return ErrorKind::BucketAlreadyExists;
        }
        _ => {}
    }
    match status {
        404 if operation.is_bucket_level() => ErrorKind::NoSuchBucket,
        404 => ErrorKind::NotFound,
        412 => ErrorKind::PreconditionFailed,
        409 => ErrorKind::Conflict,
        401 | 403 => ErrorKind::AccessDenied,
        301 | 307 => ErrorKind::WrongRegion,
        429 | 503 => ErrorKind::Throttled,
        500 | 502 | 504 => ErrorKind::Transient,
        _ => ErrorKind::Rejected,
    }
}

/// Builds the public error for an S3 answer, given its class.
pub(crate) fn from_failure(kind: ErrorKind, failure: S3Failure, region: Option<String>) -> Error {
    let failure = Box::new(failure);
    match kind {
        ErrorKind::NotFound => Error::NotFound(failure),
        ErrorKind::PreconditionFailed => Error::PreconditionFailed(failure),
        ErrorKind::Conflict => Error::Conflict(failure),
        ErrorKind::AccessDenied => Error::AccessDenied(failure),
        ErrorKind::NoSuchBucket => Error::NoSuchBucket(failure),
        ErrorKind::WrongRegion => match region {
            Some(expected) => Error::WrongRegion { expected, failure },
            None => Error::Rejected(failure),
        },
        ErrorKind::Throttled => Error::Throttled(failure),
        ErrorKind::Transient => Error::Transient(failure),
        ErrorKind::BucketAlreadyExists => Error::BucketAlreadyExists(failure),
        _ => Error::Rejected(failure),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(status: u16, code: &str) -> S3Failure {
        S3Failure {
            operation: Operation::PutObject,
            bucket: "b".into(),
            key: Some("k/x".into()),
            status,
            code: code.into(),
            message: "The request signature we calculated does not match".into(),
            request_id: Some("4442587FB7D0A2F9".into()),
            host_id: None,
        }
    }

    #[test]
    fn table_maps_codes_before_statuses() {
        use ErrorKind as K;
        let op = Operation::GetObject;
        let cases: &[(u16, &str, ErrorKind)] = &[
            (404, "NoSuchKey", K::NotFound),
            (404, "NoSuchUpload", K::NotFound),
            (404, "NoSuchBucket", K::NoSuchBucket),
            (404, "", K::NotFound),
            (412, "PreconditionFailed", K::PreconditionFailed),
            (412, "", K::PreconditionFailed),
            (409, "ConditionalRequestConflict", K::Conflict),
            (409, "OperationAborted", K::Conflict),
            (409, "BucketAlreadyOwnedByYou", K::BucketAlreadyExists),
            (409, "BucketAlreadyExists", K::BucketAlreadyExists),
            (409, "", K::Conflict),
            (403, "InvalidAccessKeyId", K::AccessDenied),
            (403, "SignatureDoesNotMatch", K::AccessDenied),
            (403, "RequestTimeTooSkewed", K::AccessDenied),
            (403, "AccessDenied", K::AccessDenied),
            (400, "ExpiredToken", K::AccessDenied),
            (403, "", K::AccessDenied),
            (400, "AuthorizationHeaderMalformed", K::AccessDenied),
            (301, "PermanentRedirect", K::WrongRegion),
            (301, "", K::WrongRegion),
            (503, "SlowDown", K::Throttled),
            (503, "", K::Throttled),
            (429, "", K::Throttled),
            (500, "InternalError", K::Transient),
            (400, "RequestTimeout", K::Transient),
            (502, "", K::Transient),
            (504, "", K::Transient),
            (400, "InvalidArgument", K::Rejected),
            (400, "EntityTooSmall", K::Rejected),
            (416, "InvalidRange", K::Rejected),
        ];
        for (status, code, want) in cases {
            assert_eq!(classify(*status, code, op), *want, "{status} {code}");
        }
        assert_eq!(classify(404, "", Operation::HeadBucket), K::NoSuchBucket);
    }

    #[test]
    fn retryable_kinds() {
        assert!(classify(503, "SlowDown", Operation::PutObject).is_transient());
        assert!(classify(409, "", Operation::PutObject).is_transient());
        assert!(classify(400, "RequestTimeout", Operation::PutObject).is_transient());
        assert!(!classify(403, "SignatureDoesNotMatch", Operation::PutObject).is_transient());
        assert!(!classify(412, "", Operation::PutObject).is_transient());
        assert!(!classify(404, "NoSuchKey", Operation::GetObject).is_transient());
    }

    #[test]
    fn display_names_code_status_operation_target_message_and_request_id() {
        let e = from_failure(
            ErrorKind::AccessDenied,
            failure(403, "SignatureDoesNotMatch"),
            None,
        );
        assert_eq!(
            e.to_string(),
            "S3 SignatureDoesNotMatch (403) on PutObject b/k/x: The request signature we \
             calculated does not match [request id 4442587FB7D0A2F9]"
        );
        assert_eq!(e.code(), Some("SignatureDoesNotMatch"));
        assert_eq!(e.status(), Some(403));
    }

    #[test]
    fn bare_status_gets_a_readable_code() {
        let mut f = failure(404, "");
        f.message.clear();
        f.request_id = None;
        f.operation = Operation::HeadObject;
        assert_eq!(f.to_string(), "S3 NotFound (404) on HeadObject b/k/x");
    }

    #[test]
    fn wrong_region_says_how_to_fix() {
        let e = from_failure(
            ErrorKind::WrongRegion,
            failure(301, "PermanentRedirect"),
            Some("eu-west-1".into()),
        );
        assert!(matches!(&e, Error::WrongRegion { expected, .. } if expected == "eu-west-1"));
        assert!(e.to_string().contains("the bucket's region is [eu-west-1]"));
    }

    #[test]
    fn unknown_client_text() {
        let e = Error::UnknownClient {
            name: "x".into(),
            existing: vec!["default".into(), "y".into()],
        };
        assert_eq!(
            e.to_string(),
            "Unknown s3 client name [x]. Existing client configs: default,y"
        );
    }
}
