//! One module per S3 operation (rusty-s3 style). Each holds a pure request builder that
//! produces an [`S3Request`], the response DTO, the response parser, and tests against the
//! AWS documentation's samples. Nothing here does I/O or reads the clock.

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};

pub mod abort_multipart_upload;
pub mod complete_multipart_upload;
pub mod copy_object;
pub mod create_bucket;
pub mod create_multipart_upload;
pub mod delete_object;
pub mod delete_objects;
pub mod get_object;
pub mod head_bucket;
pub mod head_object;
pub mod list_multipart_uploads;
pub mod list_objects_v2;
pub mod put_object;
pub mod upload_part;

/// The S3 operations this client performs (metering and error context use it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Operation {
    /// PutObject.
    PutObject,
    /// GetObject (whole or ranged, including resumed reads).
    GetObject,
    /// HeadObject.
    HeadObject,
    /// DeleteObject.
    DeleteObject,
    /// DeleteObjects (batch).
    DeleteObjects,
    /// ListObjectsV2.
    ListObjectsV2,
    /// CreateMultipartUpload.
    CreateMultipartUpload,
    /// UploadPart.
    UploadPart,
    /// CompleteMultipartUpload.
    CompleteMultipartUpload,
    /// AbortMultipartUpload.
    AbortMultipartUpload,
    /// ListMultipartUploads.
    ListMultipartUploads,
    /// CopyObject.
    CopyObject,
    /// HeadBucket.
    HeadBucket,
    /// CreateBucket.
    CreateBucket,
}

impl Operation {
    /// Every operation, in a stable order.
    pub const ALL: [Operation; 14] = [
        Operation::PutObject,
        Operation::GetObject,
        Operation::HeadObject,
        Operation::DeleteObject,
        Operation::DeleteObjects,
        Operation::ListObjectsV2,
        Operation::CreateMultipartUpload,
        Operation::UploadPart,
        Operation::CompleteMultipartUpload,
        Operation::AbortMultipartUpload,
        Operation::ListMultipartUploads,
        Operation::CopyObject,
        Operation::HeadBucket,
        Operation::CreateBucket,
    ];

    /// The AWS API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::PutObject => "PutObject",
            Operation::GetObject => "GetObject",
            Operation::HeadObject => "HeadObject",
            Operation::DeleteObject => "DeleteObject",
            Operation::DeleteObjects => "DeleteObjects",
            Operation::ListObjectsV2 => "ListObjectsV2",
            Operation::CreateMultipartUpload => "CreateMultipartUpload",
            Operation::UploadPart => "UploadPart",
            Operation::CompleteMultipartUpload => "CompleteMultipartUpload",
            Operation::AbortMultipartUpload => "AbortMultipartUpload",
            Operation::ListMultipartUploads => "ListMultipartUploads",
            Operation::CopyObject => "CopyObject",
            Operation::HeadBucket => "HeadBucket",
            Operation::CreateBucket => "CreateBucket",
        }
    }

    /// Operations on the bucket itself, where a bare 404 means the bucket is missing.
    pub fn is_bucket_level(self) -> bool {
        matches!(
            self,
            Operation::HeadBucket
                | Operation::CreateBucket
                | Operation::ListObjectsV2
                | Operation::ListMultipartUploads
                | Operation::DeleteObjects
        )
    }

    pub(crate) fn index(self) -> usize {
        Operation::ALL
            .iter()
            .position(|o| *o == self)
            .unwrap_or_default()
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a request may be replayed after a failure whose outcome is unknown. Decided by the
/// request builder, because only the operation knows its semantics (see `retry`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idempotency {
    /// Replaying has the same effect as sending once (GET, HEAD, PUT of a key, DELETE,
    /// DeleteObjects, UploadPart, and conditional writes, which are replayable by key).
    Idempotent,
    /// Replaying may have a second effect (CreateMultipartUpload creates a second upload
    /// id): retried only when the server answered with a retryable failure or the
    /// connection was never made, never after an ambiguous failure.
    NotIdempotent,
}

/// A fully described S3 request, before addressing and signing. Pure data.
#[derive(Clone, Debug)]
pub struct S3Request {
    /// Which operation this is.
    pub operation: Operation,
    /// HTTP method.
    pub method: Method,
    /// Bucket name.
    pub bucket: String,
    /// Object key, for object-level operations.
    pub key: Option<String>,
    /// Query parameters, not yet encoded, in order. A subresource (`uploads`, `delete`) has
    /// an empty value.
    pub query: Vec<(String, String)>,
    /// Headers other than `host`, `x-amz-date`, `x-amz-content-sha256` and
    /// `authorization`, which signing adds.
    pub headers: HeaderMap,
    /// The body. Always in memory: uploads are cut into parts of bounded size first, so
    /// that every request is replayable and its SHA-256 can be signed.
    pub body: Bytes,
    /// Replay rule.
    pub idempotency: Idempotency,
    /// The body's SHA-256 when the caller already computed it (a content-addressed blob
    /// is named by it): signing then uses it instead of hashing the body a second time. A
    /// wrong value is not silently accepted: S3 checks the signed hash against the bytes
    /// it receives and refuses the request (`XAmzContentSHA256Mismatch`).
    pub payload_sha256: Option<PayloadSha256>,
}

impl S3Request {
    pub(crate) fn new(operation: Operation, method: Method, bucket: &str) -> S3Request {
        S3Request {
            operation,
            method,
            bucket: bucket.to_owned(),
            key: None,
            query: Vec::new(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
            idempotency: Idempotency::Idempotent,
            payload_sha256: None,
        }
    }

    pub(crate) fn key(mut self, key: &str) -> S3Request {
        self.key = Some(key.to_owned());
        self
    }

    pub(crate) fn query(mut self, name: &str, value: impl Into<String>) -> S3Request {
        self.query.push((name.to_owned(), value.into()));
        self
    }

    pub(crate) fn header(mut self, name: &'static str, value: &str) -> S3Request {
        // Every value we set is either ASCII we produced or a caller value we validated;
        // an invalid one is dropped rather than panicking, and validation catches it earlier.
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.insert(HeaderName::from_static(name), v);
        }
        self
    }

    pub(crate) fn body(mut self, body: Bytes) -> S3Request {
        self.body = body;
        self
    }

    pub(crate) fn payload_sha256(mut self, sha256: Option<PayloadSha256>) -> S3Request {
        self.payload_sha256 = sha256;
        self
    }

    /// Value of a header set on this request.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A SHA-256 digest of a request body, computed by the caller (see
/// [`S3Client::put_object_with_sha256`](crate::S3Client::put_object_with_sha256)).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PayloadSha256([u8; 32]);

impl PayloadSha256 {
    /// The digest as computed by `sha2::Sha256` (or any SHA-256) over the exact body bytes.
    pub fn new(digest: [u8; 32]) -> PayloadSha256 {
        PayloadSha256(digest)
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(hex_digest: &str) -> Option<PayloadSha256> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_digest, &mut out).ok()?;
        Some(PayloadSha256(out))
    }

    /// Lower-case hex, the form `x-amz-content-sha256` carries.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Debug for PayloadSha256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PayloadSha256({})", self.to_hex())
    }
}

/// An entity tag, stored without quotes. S3 sends it quoted; Ceph 16 wants it unquoted in
/// `If-Match`, the RFC and AWS take it quoted. Which form to send is a client option.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ETag(String);

impl ETag {
    /// Parses a header or XML value: strips a weak prefix and surrounding quotes.
    pub fn parse(raw: &str) -> ETag {
        let raw = raw.trim();
        let raw = raw.strip_prefix("W/").unwrap_or(raw);
        let raw = raw
            .strip_prefix('"')
            .and_then(|r| r.strip_suffix('"'))
            .unwrap_or(raw);
        // Some servers send the XML entity form inside ListObjects answers.
        let raw = raw
            .strip_prefix("&quot;")
            .and_then(|r| r.strip_suffix("&quot;"))
            .unwrap_or(raw);
        ETag(raw.to_owned())
    }

    /// The bare value.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The quoted form, `"…"`.
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }

    /// The form to put in `If-Match`.
    pub(crate) fn for_header(&self, quoting: EtagQuoting) -> String {
        match quoting {
            EtagQuoting::Quoted => self.quoted(),
            EtagQuoting::Unquoted => self.0.clone(),
        }
    }
}

impl fmt::Display for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How `If-Match` carries an ETag.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EtagQuoting {
    /// `If-Match: "abc"` (RFC 9110, AWS, MinIO, Garage).
    #[default]
    Quoted,
    /// `If-Match: abc` (what Ceph radosgw 16 matches against).
    Unquoted,
}

/// How a write treats an existing object (object_store's `PutMode`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PutMode {
    /// Replace whatever is there.
    #[default]
    Overwrite,
    /// Create only: `If-None-Match: *`. Fails with `PreconditionFailed` if the key exists.
    Create,
    /// Replace only this version: `If-Match: <etag>`. Fails with `PreconditionFailed` if the
    /// object changed or is gone.
    Update(ETag),
}

impl PutMode {
    pub(crate) fn apply(&self, req: S3Request, quoting: EtagQuoting) -> S3Request {
        match self {
            PutMode::Overwrite => req,
            PutMode::Create => req.header("if-none-match", "*"),
            PutMode::Update(etag) => req.header("if-match", &etag.for_header(quoting)),
        }
    }
}

pub(crate) fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

pub(crate) fn header_u64(headers: &HeaderMap, name: &str) -> Result<Option<u64>, String> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| format!("invalid {name} header {v:?}")),
    }
}

pub(crate) fn required_etag(headers: &HeaderMap) -> Result<ETag, String> {
    header_str(headers, "etag")
        .map(|e| ETag::parse(&e))
        .ok_or_else(|| "the answer has no ETag header".to_owned())
}

/// Metadata common to GetObject and HeadObject answers.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObjectMeta {
    /// Length of the whole object.
    pub size: u64,
    /// ETag of the object.
    pub etag: ETag,
    /// `Last-Modified`, as sent.
    pub last_modified: Option<String>,
    /// `x-amz-version-id`, when versioning is on.
    pub version_id: Option<String>,
    /// `Content-Type`.
    pub content_type: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_forms() {
        let e = ETag::parse("\"fba9dede5f27731c9771645a39863328\"");
        assert_eq!(e.as_str(), "fba9dede5f27731c9771645a39863328");
        assert_eq!(e.quoted(), "\"fba9dede5f27731c9771645a39863328\"");
        assert_eq!(e.for_header(EtagQuoting::Unquoted), e.as_str());
        assert_eq!(ETag::parse("W/\"x-2\"").as_str(), "x-2");
        assert_eq!(ETag::parse("&quot;ab&quot;").as_str(), "ab");
        assert_eq!(ETag::parse("plain").as_str(), "plain");
    }

    #[test]
    fn put_modes_set_the_conditional_headers() {
        let base = || S3Request::new(Operation::PutObject, Method::PUT, "b").key("k");
        let r = PutMode::Overwrite.apply(base(), EtagQuoting::Quoted);
        assert!(r.headers.get("if-match").is_none() && r.headers.get("if-none-match").is_none());
        let r = PutMode::Create.apply(base(), EtagQuoting::Quoted);
        assert_eq!(r.header_value("if-none-match"), Some("*"));
        let r = PutMode::Update(ETag::parse("\"e1\"")).apply(base(), EtagQuoting::Quoted);
        assert_eq!(r.header_value("if-match"), Some("\"e1\""));
        let r = PutMode::Update(ETag::parse("\"e1\"")).apply(base(), EtagQuoting::Unquoted);
        assert_eq!(r.header_value("if-match"), Some("e1"));
    }

    #[test]
    fn operation_index_is_stable() {
        for (i, op) in Operation::ALL.iter().enumerate() {
            assert_eq!(op.index(), i);
        }
    }
}
