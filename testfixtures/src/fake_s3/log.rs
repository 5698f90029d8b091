//! The request log tests assert on.

use chrono::{DateTime, Utc};
use http::{HeaderMap, Method};

use super::router::Operation;

/// Request headers copied into the log (lower-case names).
pub const LOGGED_HEADERS: &[&str] = &[
    "content-length",
    "content-md5",
    "content-type",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-unmodified-since",
    "range",
    "x-amz-checksum-crc32",
    "x-amz-checksum-crc32c",
    "x-amz-checksum-crc64nvme",
    "x-amz-checksum-sha1",
    "x-amz-checksum-sha256",
    "x-amz-content-sha256",
    "x-amz-copy-source",
    "x-amz-copy-source-if-match",
    "x-amz-copy-source-if-none-match",
    "x-amz-metadata-directive",
    "x-amz-sdk-checksum-algorithm",
];

/// How the request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// A complete response was produced.
    Responded,
    /// The connection was reset without a response.
    Reset,
    /// The response head and part of the body were sent, then the connection was closed.
    Truncated {
        /// Body bytes actually sent.
        sent: u64,
    },
}

/// One request as the fake saw and answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Arrival order, from 0.
    pub seq: u64,
    /// Arrival time (injected clock).
    pub time: DateTime<Utc>,
    /// The `x-amz-request-id` sent back.
    pub request_id: String,
    /// The routed operation; `None` if routing failed.
    pub operation: Option<Operation>,
    /// HTTP method.
    pub method: Method,
    /// Raw path and query as received.
    pub path_and_query: String,
    /// Bucket, if routed.
    pub bucket: Option<String>,
    /// Decoded key (or listing prefix), if routed.
    pub key: Option<String>,
    /// The access key that signed the request, if verified.
    pub access_key: Option<String>,
    /// Response status (what was or would have been sent; for resets the status the
    /// operation produced before the reset, if it ran).
    pub status: Option<u16>,
    /// S3 error code of an error response.
    pub error_code: Option<String>,
    /// Request body size.
    pub request_bytes: u64,
    /// Response body size (as declared by `Content-Length`).
    pub response_bytes: u64,
    /// Logged request headers (see [`LOGGED_HEADERS`]), in that order.
    pub headers: Vec<(String, String)>,
    /// Fault rules that fired, described.
    pub faults: Vec<String>,
    /// How the exchange ended.
    pub outcome: Outcome,
}

impl LogEntry {
    /// A logged request header (lower-case name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the request carried `If-Match` or `If-None-Match`.
    pub fn is_conditional(&self) -> bool {
        self.header("if-match").is_some() || self.header("if-none-match").is_some()
    }

    /// Whether the operation is `op`.
    pub fn is(&self, op: Operation) -> bool {
        self.operation == Some(op)
    }
}

/// Copies the logged headers out of a request.
pub fn logged_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    LOGGED_HEADERS
        .iter()
        .filter_map(|name| {
            headers.get(*name).map(|v| {
                (
                    (*name).to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
        })
        .collect()
}
