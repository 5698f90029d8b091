//! The pure request-to-endpoint parser: method, path, query and a few headers in, the S3
//! operation with its bucket, key and parameters out. No I/O and no state, so every routing
//! rule is unit-tested here.

use std::fmt;

use http::{HeaderMap, Method};
use percent_encoding::percent_decode_str;

use super::error::{ErrorCode, S3Error};

/// The S3 operations the fake knows, without their parameters (for logs and fault rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Operation {
    /// `GET /`.
    ListBuckets,
    /// `PUT /bucket`.
    CreateBucket,
    /// `HEAD /bucket`.
    HeadBucket,
    /// `DELETE /bucket`.
    DeleteBucket,
    /// `GET /bucket?location`.
    GetBucketLocation,
    /// `GET /bucket?list-type=2`.
    ListObjectsV2,
    /// `GET /bucket` (version 1 listing).
    ListObjects,
    /// `GET /bucket?uploads`.
    ListMultipartUploads,
    /// `POST /bucket?delete`.
    DeleteObjects,
    /// `PUT /bucket/key`.
    PutObject,
    /// `PUT /bucket/key` with `x-amz-copy-source`.
    CopyObject,
    /// `GET /bucket/key`.
    GetObject,
    /// `HEAD /bucket/key`.
    HeadObject,
    /// `DELETE /bucket/key`.
    DeleteObject,
    /// `POST /bucket/key?uploads`.
    CreateMultipartUpload,
    /// `PUT /bucket/key?partNumber=N&uploadId=U`.
    UploadPart,
    /// `POST /bucket/key?uploadId=U`.
    CompleteMultipartUpload,
    /// `DELETE /bucket/key?uploadId=U`.
    AbortMultipartUpload,
    /// `GET /bucket/key?uploadId=U`.
    ListParts,
}

impl Operation {
    /// The operation's name as in the S3 API reference.
    pub fn name(self) -> &'static str {
        match self {
            Self::ListBuckets => "ListBuckets",
            Self::CreateBucket => "CreateBucket",
            Self::HeadBucket => "HeadBucket",
            Self::DeleteBucket => "DeleteBucket",
            Self::GetBucketLocation => "GetBucketLocation",
            Self::ListObjectsV2 => "ListObjectsV2",
            Self::ListObjects => "ListObjects",
            Self::ListMultipartUploads => "ListMultipartUploads",
            Self::DeleteObjects => "DeleteObjects",
            Self::PutObject => "PutObject",
            Self::CopyObject => "CopyObject",
            Self::GetObject => "GetObject",
            Self::HeadObject => "HeadObject",
            Self::DeleteObject => "DeleteObject",
            Self::CreateMultipartUpload => "CreateMultipartUpload",
            Self::UploadPart => "UploadPart",
            Self::CompleteMultipartUpload => "CompleteMultipartUpload",
            Self::AbortMultipartUpload => "AbortMultipartUpload",
            Self::ListParts => "ListParts",
        }
    }

    /// Whether the operation writes (creates, replaces or deletes) data.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Self::CreateBucket
                | Self::DeleteBucket
                | Self::DeleteObjects
                | Self::PutObject
                | Self::CopyObject
                | Self::DeleteObject
                | Self::CreateMultipartUpload
                | Self::UploadPart
                | Self::CompleteMultipartUpload
                | Self::AbortMultipartUpload
        )
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parameters of a listing (`ListObjectsV2` and `ListObjects`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListParams {
    /// `prefix`.
    pub prefix: String,
    /// `delimiter`.
    pub delimiter: Option<String>,
    /// `max-keys` (default 1000, capped at 1000).
    pub max_keys: usize,
    /// `continuation-token` (V2).
    pub continuation_token: Option<String>,
    /// `start-after` (V2) or `marker` (V1).
    pub start_after: Option<String>,
    /// `encoding-type=url`.
    pub url_encoding: bool,
}

/// Parameters of `ListMultipartUploads`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListUploadsParams {
    /// `prefix`.
    pub prefix: String,
    /// `key-marker`.
    pub key_marker: Option<String>,
    /// `upload-id-marker`.
    pub upload_id_marker: Option<String>,
    /// `max-uploads` (default 1000, capped at 1000).
    pub max_uploads: usize,
    /// `encoding-type=url`.
    pub url_encoding: bool,
}

/// A routed request: the operation and everything the URL says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Endpoint {
    /// `GET /`.
    ListBuckets,
    /// `PUT /bucket`.
    CreateBucket {
        /// Bucket name.
        bucket: String,
    },
    /// `HEAD /bucket`.
    HeadBucket {
        /// Bucket name.
        bucket: String,
    },
    /// `DELETE /bucket`.
    DeleteBucket {
        /// Bucket name.
        bucket: String,
    },
    /// `GET /bucket?location`.
    GetBucketLocation {
        /// Bucket name.
        bucket: String,
    },
    /// `GET /bucket?list-type=2`.
    ListObjectsV2 {
        /// Bucket name.
        bucket: String,
        /// Listing parameters.
        params: ListParams,
    },
    /// `GET /bucket`.
    ListObjects {
        /// Bucket name.
        bucket: String,
        /// Listing parameters (`marker` is in `start_after`).
        params: ListParams,
    },
    /// `GET /bucket?uploads`.
    ListMultipartUploads {
        /// Bucket name.
        bucket: String,
        /// Listing parameters.
        params: ListUploadsParams,
    },
    /// `POST /bucket?delete`.
    DeleteObjects {
        /// Bucket name.
        bucket: String,
    },
    /// `PUT /bucket/key`.
    PutObject {
        /// Bucket name.
        bucket: String,
        /// Decoded key.
        key: String,
    },
    /// `PUT /bucket/key` with `x-amz-copy-source: /src-bucket/src-key`.
    CopyObject {
        /// Destination bucket.
        bucket: String,
        /// Destination key.
        key: String,
        /// Source bucket.
        source_bucket: String,
        /// Source key (decoded).
        source_key: String,
    },
    /// `GET /bucket/key`.
    GetObject {
        /// Bucket name.
        bucket: String,
        /// Decoded key.
        key: String,
    },
    /// `HEAD /bucket/key`.
    HeadObject {
        /// Bucket name.
        bucket: String,
        /// Decoded key.
        key: String,
    },
    /// `DELETE /bucket/key`.
    DeleteObject {
        /// Bucket name.
        bucket: String,
        /// Decoded key.
        key: String,
    },
    /// `POST /bucket/key?uploads`.
    CreateMultipartUpload {
        /// Bucket name.
        bucket: String,
        /// Decoded key.
        key: String,
    },
    /// `PUT /bucket/key?partNumber=N&uploadId=U`.
    UploadPart {
        /// Bucket name.
        bucket: String,
        /// Decoded key.
        key: String,
        /// Part number (1..=10000).
        part_number: u32,
        /// Upload id.
        upload_id: String,
    },
    /// `POST /bucket/key?uploadId=U`.
    CompleteMultipartUpload {
        /// Bucket name.
        bucket: String,
        /// Decoded key.
        key: String,
        /// Upload id.
        upload_id: String,
    },
    /// `DELETE /bucket/key?uploadId=U`.
    AbortMultipartUpload {
        /// Bucket name.
        bucket: String,
        /// Decoded key.
        key: String,
        /// Upload id.
        upload_id: String,
    },
    /// `GET /bucket/key?uploadId=U`.
    ListParts {
        /// Bucket name.
        bucket: String,
        /// Decoded key.
        key: String,
        /// Upload id.
        upload_id: String,
        /// `part-number-marker`.
        part_number_marker: u32,
        /// `max-parts` (default 1000, capped at 1000).
        max_parts: usize,
    },
}

/// Query parameters that only select a sub-resource the fake does not implement.
const UNSUPPORTED_SUBRESOURCES: &[&str] = &[
    "acl",
    "analytics",
    "accelerate",
    "attributes",
    "cors",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "legal-hold",
    "lifecycle",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "restore",
    "retention",
    "select",
    "tagging",
    "torrent",
    "versioning",
    "versions",
    "website",
];

/// Longest key AWS accepts, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// Decoded query parameters, in order.
#[derive(Debug, Default)]
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: Option<&str>) -> Result<Self, S3Error> {
        let mut out = Vec::new();
        for pair in raw.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            out.push((
                decode_query_component(name)?,
                decode_query_component(value)?,
            ));
        }
        Ok(Self(out))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }
}

/// Percent-decodes a path component into UTF-8. `+` stays a literal `+`: SigV4 clients encode
/// spaces as `%20`, and AWS treats `+` in the path as a plus sign.
pub fn decode_component(raw: &str) -> Result<String, S3Error> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| {
            S3Error::with_message(
                ErrorCode::InvalidURI,
                format!("Couldn't parse the specified URI: {raw} is not valid UTF-8 once decoded"),
            )
        })
}

/// Decodes a query component form-style: `+` is a space, as in AWS's signer and servers.
fn decode_query_component(raw: &str) -> Result<String, S3Error> {
    decode_component(&raw.replace('+', " "))
}

fn bounded(query: &Query, name: &str, default: usize, max: usize) -> Result<usize, S3Error> {
    match query.get(name) {
        None => Ok(default),
        Some(v) => v.parse::<usize>().map(|n| n.min(max)).map_err(|_| {
            S3Error::invalid_argument(
                format!("Provided {name} not an integer or within integer range"),
                name,
                v,
            )
        }),
    }
}

fn url_encoding(query: &Query) -> Result<bool, S3Error> {
    match query.get("encoding-type") {
        None => Ok(false),
        Some("url") => Ok(true),
        Some(other) => Err(S3Error::invalid_argument(
            "Invalid Encoding Method specified in Request",
            "encoding-type",
            other,
        )),
    }
}

fn list_params(query: &Query, v2: bool) -> Result<ListParams, S3Error> {
    Ok(ListParams {
        prefix: query.get("prefix").unwrap_or_default().to_owned(),
        delimiter: query
            .get("delimiter")
            .filter(|d| !d.is_empty())
            .map(str::to_owned),
        max_keys: bounded(query, "max-keys", 1000, 1000)?,
        continuation_token: if v2 {
            query.get("continuation-token").map(str::to_owned)
        } else {
            None
        },
        start_after: query
            .get(if v2 { "start-after" } else { "marker" })
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        url_encoding: url_encoding(query)?,
    })
}

fn required<'q>(query: &'q Query, name: &str) -> Result<&'q str, S3Error> {
    query.get(name).filter(|v| !v.is_empty()).ok_or_else(|| {
        S3Error::invalid_argument(format!("Missing required parameter {name}"), name, "")
    })
}

/// Splits `x-amz-copy-source` (`[/]bucket/key[?versionId=…]`, URL-encoded) into bucket and
/// decoded key.
pub fn parse_copy_source(raw: &str) -> Result<(String, String), S3Error> {
    let invalid = || {
        S3Error::invalid_argument(
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
            "x-amz-copy-source",
            raw,
        )
    };
    let (path, query) = raw.split_once('?').unwrap_or((raw, ""));
    if query.starts_with("versionId=") {
        return Err(S3Error::with_message(
            ErrorCode::NotImplemented,
            "the fake S3 does not support versioning",
        ));
    }
    let path = path.strip_prefix('/').unwrap_or(path);
    let (bucket, key) = path.split_once('/').ok_or_else(invalid)?;
    if bucket.is_empty() || key.is_empty() {
        return Err(invalid());
    }
    Ok((decode_component(bucket)?, decode_component(key)?))
}

impl Endpoint {
    /// Routes a request.
    ///
    /// * `path` is the raw (still percent-encoded) path; `query` the raw query string.
    /// * `host_bucket` is the bucket taken from a virtual-hosted `Host`, if any: then the whole
    ///   path is the key.
    /// * `headers` is consulted only where S3 routes on a header (`x-amz-copy-source`).
    pub fn from_request(
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
        host_bucket: Option<&str>,
    ) -> Result<Self, S3Error> {
        let query = Query::parse(query)?;
        let path = path.strip_prefix('/').unwrap_or(path);
        let (bucket, raw_key) = if let Some(bucket) = host_bucket {
            (bucket.to_owned(), path)
        } else {
            let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
            (decode_component(bucket)?, key)
        };
        if bucket.is_empty() {
            return if *method == Method::GET {
                Ok(Self::ListBuckets)
            } else {
                Err(S3Error::new(ErrorCode::MethodNotAllowed).detail("Method", method.as_str()))
            };
        }
        if let Some(sub) = UNSUPPORTED_SUBRESOURCES.iter().find(|s| query.has(s)) {
            return Err(S3Error::with_message(
                ErrorCode::NotImplemented,
                format!("the fake S3 does not implement the ?{sub} sub-resource"),
            ));
        }
        let key = decode_component(raw_key)?;
        if key.len() > MAX_KEY_LEN {
            return Err(S3Error::new(ErrorCode::KeyTooLongError)
                .detail("Size", key.len().to_string())
                .detail("MaxSizeAllowed", MAX_KEY_LEN.to_string()));
        }
        if key.is_empty() {
            Self::bucket_endpoint(method, bucket, &query)
        } else {
            Self::object_endpoint(method, bucket, key, &query, headers)
        }
    }

    fn bucket_endpoint(method: &Method, bucket: String, query: &Query) -> Result<Self, S3Error> {
        match *method {
            Method::PUT => Ok(Self::CreateBucket { bucket }),
            Method::HEAD => Ok(Self::HeadBucket { bucket }),
            Method::DELETE => Ok(Self::DeleteBucket { bucket }),
            Method::POST if query.has("delete") => Ok(Self::DeleteObjects { bucket }),
            Method::GET if query.has("location") => Ok(Self::GetBucketLocation { bucket }),
            Method::GET if query.has("uploads") => Ok(Self::ListMultipartUploads {
                bucket,
                params: ListUploadsParams {
                    prefix: query.get("prefix").unwrap_or_default().to_owned(),
                    key_marker: query
                        .get("key-marker")
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned),
                    upload_id_marker: query
                        .get("upload-id-marker")
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned),
                    max_uploads: bounded(query, "max-uploads", 1000, 1000)?,
                    url_encoding: url_encoding(query)?,
                },
            }),
            Method::GET => match query.get("list-type") {
                Some("2") => Ok(Self::ListObjectsV2 {
                    params: list_params(query, true)?,
                    bucket,
                }),
                None => Ok(Self::ListObjects {
                    params: list_params(query, false)?,
                    bucket,
                }),
                Some(other) => Err(S3Error::invalid_argument(
                    "Invalid list type",
                    "list-type",
                    other,
                )),
            },
            _ => Err(S3Error::new(ErrorCode::MethodNotAllowed)
                .detail("Method", method.as_str())
                .detail("ResourceType", "BUCKET")),
        }
    }

    fn object_endpoint(
        method: &Method,
        bucket: String,
        key: String,
        query: &Query,
        headers: &HeaderMap,
    ) -> Result<Self, S3Error> {
        let upload_id = query.get("uploadId").map(str::to_owned);
        match *method {
            Method::PUT => {
                let copy_source = headers
                    .get("x-amz-copy-source")
                    .map(|v| {
                        v.to_str().map_err(|_| {
                            S3Error::invalid_argument(
                                "x-amz-copy-source is not ASCII",
                                "x-amz-copy-source",
                                "",
                            )
                        })
                    })
                    .transpose()?;
                if query.has("partNumber") || upload_id.is_some() {
                    if copy_source.is_some() {
                        return Err(S3Error::with_message(
                            ErrorCode::NotImplemented,
                            "the fake S3 does not implement UploadPartCopy",
                        ));
                    }
                    let upload_id = required(query, "uploadId")?.to_owned();
                    let raw = required(query, "partNumber")?;
                    let part_number = raw
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=10_000).contains(n))
                        .ok_or_else(|| {
                            S3Error::invalid_argument(
                                "Part number must be an integer between 1 and 10000, inclusive",
                                "partNumber",
                                raw,
                            )
                        })?;
                    return Ok(Self::UploadPart {
                        bucket,
                        key,
                        part_number,
                        upload_id,
                    });
                }
                if let Some(source) = copy_source {
                    let (source_bucket, source_key) = parse_copy_source(source)?;
                    return Ok(Self::CopyObject {
                        bucket,
                        key,
                        source_bucket,
                        source_key,
                    });
                }
                Ok(Self::PutObject { bucket, key })
            }
            Method::GET => {
                if let Some(upload_id) = upload_id {
                    let marker = match query.get("part-number-marker") {
                        None | Some("") => 0,
                        Some(v) => v.parse().map_err(|_| {
                            S3Error::invalid_argument(
                                "Part number marker must be an integer",
                                "part-number-marker",
                                v,
                            )
                        })?,
                    };
                    return Ok(Self::ListParts {
                        bucket,
                        key,
                        upload_id,
                        part_number_marker: marker,
                        max_parts: bounded(query, "max-parts", 1000, 1000)?,
                    });
                }
                if query.has("partNumber") {
                    return Err(S3Error::with_message(
                        ErrorCode::NotImplemented,
                        "the fake S3 does not implement GetObject by partNumber",
                    ));
                }
                Ok(Self::GetObject { bucket, key })
            }
            Method::HEAD => Ok(Self::HeadObject { bucket, key }),
            Method::DELETE => Ok(match upload_id {
                Some(upload_id) => Self::AbortMultipartUpload {
                    bucket,
                    key,
                    upload_id,
                },
                None => Self::DeleteObject { bucket, key },
            }),
            Method::POST if query.has("uploads") => Ok(Self::CreateMultipartUpload { bucket, key }),
            Method::POST if upload_id.is_some() => Ok(Self::CompleteMultipartUpload {
                bucket,
                key,
                upload_id: required(query, "uploadId")?.to_owned(),
            }),
            _ => Err(S3Error::new(ErrorCode::MethodNotAllowed)
                .detail("Method", method.as_str())
                .detail("ResourceType", "OBJECT")),
        }
    }

    /// The operation, without parameters.
    pub fn operation(&self) -> Operation {
        match self {
            Self::ListBuckets => Operation::ListBuckets,
            Self::CreateBucket { .. } => Operation::CreateBucket,
            Self::HeadBucket { .. } => Operation::HeadBucket,
            Self::DeleteBucket { .. } => Operation::DeleteBucket,
            Self::GetBucketLocation { .. } => Operation::GetBucketLocation,
            Self::ListObjectsV2 { .. } => Operation::ListObjectsV2,
            Self::ListObjects { .. } => Operation::ListObjects,
            Self::ListMultipartUploads { .. } => Operation::ListMultipartUploads,
            Self::DeleteObjects { .. } => Operation::DeleteObjects,
            Self::PutObject { .. } => Operation::PutObject,
            Self::CopyObject { .. } => Operation::CopyObject,
            Self::GetObject { .. } => Operation::GetObject,
            Self::HeadObject { .. } => Operation::HeadObject,
            Self::DeleteObject { .. } => Operation::DeleteObject,
            Self::CreateMultipartUpload { .. } => Operation::CreateMultipartUpload,
            Self::UploadPart { .. } => Operation::UploadPart,
            Self::CompleteMultipartUpload { .. } => Operation::CompleteMultipartUpload,
            Self::AbortMultipartUpload { .. } => Operation::AbortMultipartUpload,
            Self::ListParts { .. } => Operation::ListParts,
        }
    }

    /// The bucket, if the endpoint has one.
    pub fn bucket(&self) -> Option<&str> {
        match self {
            Self::ListBuckets => None,
            Self::CreateBucket { bucket }
            | Self::HeadBucket { bucket }
            | Self::DeleteBucket { bucket }
            | Self::GetBucketLocation { bucket }
            | Self::ListObjectsV2 { bucket, .. }
            | Self::ListObjects { bucket, .. }
            | Self::ListMultipartUploads { bucket, .. }
            | Self::DeleteObjects { bucket }
            | Self::PutObject { bucket, .. }
            | Self::CopyObject { bucket, .. }
            | Self::GetObject { bucket, .. }
            | Self::HeadObject { bucket, .. }
            | Self::DeleteObject { bucket, .. }
            | Self::CreateMultipartUpload { bucket, .. }
            | Self::UploadPart { bucket, .. }
            | Self::CompleteMultipartUpload { bucket, .. }
            | Self::AbortMultipartUpload { bucket, .. }
            | Self::ListParts { bucket, .. } => Some(bucket),
        }
    }

    /// The key, if the endpoint addresses an object (for listings: the prefix).
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::PutObject { key, .. }
            | Self::CopyObject { key, .. }
            | Self::GetObject { key, .. }
            | Self::HeadObject { key, .. }
            | Self::DeleteObject { key, .. }
            | Self::CreateMultipartUpload { key, .. }
            | Self::UploadPart { key, .. }
            | Self::CompleteMultipartUpload { key, .. }
            | Self::AbortMultipartUpload { key, .. }
            | Self::ListParts { key, .. } => Some(key),
            Self::ListObjectsV2 { params, .. } | Self::ListObjects { params, .. } => {
                Some(&params.prefix)
            }
            Self::ListMultipartUploads { params, .. } => Some(&params.prefix),
            _ => None,
        }
    }
}

/// The bucket named by a virtual-hosted `Host` header (`bucket.<suffix>[:port]`), if any.
pub fn host_bucket<'h>(host: &'h str, suffix: &str) -> Option<&'h str> {
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    let bucket = host.strip_suffix(suffix)?.strip_suffix('.')?;
    (!bucket.is_empty()).then_some(bucket)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &Method, uri: &str) -> Result<Endpoint, S3Error> {
        route_with(method, uri, &HeaderMap::new())
    }

    fn route_with(method: &Method, uri: &str, headers: &HeaderMap) -> Result<Endpoint, S3Error> {
        let (path, query) = match uri.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (uri, None),
        };
        Endpoint::from_request(method, path, query, headers, None)
    }

    fn b(s: &str) -> String {
        s.to_owned()
    }

    #[test]
    fn object_operations() {
        assert_eq!(
            route(&Method::PUT, "/bkt/a/b.txt").unwrap(),
            Endpoint::PutObject {
                bucket: b("bkt"),
                key: b("a/b.txt")
            }
        );
        assert_eq!(
            route(&Method::GET, "/bkt/k").unwrap().operation(),
            Operation::GetObject
        );
        assert_eq!(
            route(&Method::HEAD, "/bkt/k").unwrap().operation(),
            Operation::HeadObject
        );
        assert_eq!(
            route(&Method::DELETE, "/bkt/k").unwrap().operation(),
            Operation::DeleteObject
        );
        assert_eq!(
            route(&Method::POST, "/bkt/k?uploads").unwrap().operation(),
            Operation::CreateMultipartUpload
        );
        assert_eq!(
            route(&Method::PUT, "/bkt/k?partNumber=3&uploadId=U1").unwrap(),
            Endpoint::UploadPart {
                bucket: b("bkt"),
                key: b("k"),
                part_number: 3,
                upload_id: b("U1")
            }
        );
        assert_eq!(
            route(&Method::POST, "/bkt/k?uploadId=U1")
                .unwrap()
                .operation(),
            Operation::CompleteMultipartUpload
        );
        assert_eq!(
            route(&Method::DELETE, "/bkt/k?uploadId=U1")
                .unwrap()
                .operation(),
            Operation::AbortMultipartUpload
        );
        assert_eq!(
            route(
                &Method::GET,
                "/bkt/k?uploadId=U1&max-parts=5000&part-number-marker=2"
            )
            .unwrap(),
            Endpoint::ListParts {
                bucket: b("bkt"),
                key: b("k"),
                upload_id: b("U1"),
                part_number_marker: 2,
                max_parts: 1000
            }
        );
    }

    #[test]
    fn bucket_operations() {
        assert_eq!(route(&Method::GET, "/").unwrap(), Endpoint::ListBuckets);
        assert_eq!(
            route(&Method::PUT, "/bkt").unwrap(),
            Endpoint::CreateBucket { bucket: b("bkt") }
        );
        assert_eq!(
            route(&Method::HEAD, "/bkt/").unwrap(),
            Endpoint::HeadBucket { bucket: b("bkt") }
        );
        assert_eq!(
            route(&Method::POST, "/bkt?delete").unwrap(),
            Endpoint::DeleteObjects { bucket: b("bkt") }
        );
        assert_eq!(
            route(&Method::POST, "/bkt?delete=").unwrap().operation(),
            Operation::DeleteObjects
        );
        assert_eq!(
            route(&Method::GET, "/bkt?location").unwrap().operation(),
            Operation::GetBucketLocation
        );
        assert_eq!(
            route(&Method::GET, "/bkt?uploads&prefix=p%2F&max-uploads=7").unwrap(),
            Endpoint::ListMultipartUploads {
                bucket: b("bkt"),
                params: ListUploadsParams {
                    prefix: b("p/"),
                    max_uploads: 7,
                    ..ListUploadsParams::default()
                }
            }
        );
        assert_eq!(
            route(&Method::POST, "/bkt").unwrap_err().code,
            ErrorCode::MethodNotAllowed
        );
    }

    #[test]
    fn list_v2_parameters() {
        let endpoint = route(
            &Method::GET,
            "/bkt?list-type=2&prefix=a%20b%2F&delimiter=%2F&max-keys=2500&continuation-token=abc%3D&start-after=x&encoding-type=url",
        )
        .unwrap();
        assert_eq!(
            endpoint,
            Endpoint::ListObjectsV2 {
                bucket: b("bkt"),
                params: ListParams {
                    prefix: b("a b/"),
                    delimiter: Some(b("/")),
                    max_keys: 1000,
                    continuation_token: Some(b("abc=")),
                    start_after: Some(b("x")),
                    url_encoding: true,
                }
            }
        );
        assert_eq!(endpoint.key(), Some("a b/"));
        assert_eq!(
            route(&Method::GET, "/bkt?list-type=2&max-keys=x")
                .unwrap_err()
                .code,
            ErrorCode::InvalidArgument
        );
        assert_eq!(
            route(&Method::GET, "/bkt?list-type=2&encoding-type=base64")
                .unwrap_err()
                .code,
            ErrorCode::InvalidArgument
        );
        assert_eq!(
            route(&Method::GET, "/bkt?list-type=2&prefix=a+b%2Bc")
                .unwrap()
                .key(),
            Some("a b+c")
        );
        assert_eq!(
            route(&Method::GET, "/bkt?marker=m").unwrap(),
            Endpoint::ListObjects {
                bucket: b("bkt"),
                params: ListParams {
                    max_keys: 1000,
                    start_after: Some(b("m")),
                    ..ListParams::default()
                }
            }
        );
    }

    #[test]
    fn keys_are_percent_decoded_and_plus_is_literal() {
        assert_eq!(
            route(&Method::GET, "/bkt/dir/a%20b+c%25d%C3%A9%2F").unwrap(),
            Endpoint::GetObject {
                bucket: b("bkt"),
                key: b("dir/a b+c%dé/")
            }
        );
        // Raw UTF-8 and double slashes are kept as sent.
        assert_eq!(route(&Method::GET, "/bkt//x").unwrap().key(), Some("/x"));
        assert_eq!(
            route(&Method::GET, "/bkt/%FF").unwrap_err().code,
            ErrorCode::InvalidURI
        );
        let long = format!("/bkt/{}", "k".repeat(MAX_KEY_LEN + 1));
        assert_eq!(
            route(&Method::PUT, &long).unwrap_err().code,
            ErrorCode::KeyTooLongError
        );
    }

    #[test]
    fn copy_source_routes_to_copy_object() {
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-copy-source", "/src/a%20b%2Bc".parse().unwrap());
        assert_eq!(
            route_with(&Method::PUT, "/dst/k", &headers).unwrap(),
            Endpoint::CopyObject {
                bucket: b("dst"),
                key: b("k"),
                source_bucket: b("src"),
                source_key: b("a b+c")
            }
        );
        headers.insert("x-amz-copy-source", "src-no-key".parse().unwrap());
        assert_eq!(
            route_with(&Method::PUT, "/dst/k", &headers)
                .unwrap_err()
                .code,
            ErrorCode::InvalidArgument
        );
        headers.insert("x-amz-copy-source", "s/k".parse().unwrap());
        assert_eq!(
            route_with(&Method::PUT, "/dst/k?partNumber=1&uploadId=u", &headers)
                .unwrap_err()
                .code,
            ErrorCode::NotImplemented
        );
    }

    #[test]
    fn bad_part_numbers_and_unsupported_subresources() {
        for uri in [
            "/b/k?partNumber=0&uploadId=u",
            "/b/k?partNumber=10001&uploadId=u",
            "/b/k?partNumber=x&uploadId=u",
            "/b/k?partNumber=1",
        ] {
            assert_eq!(
                route(&Method::PUT, uri).unwrap_err().code,
                ErrorCode::InvalidArgument,
                "{uri}"
            );
        }
        assert_eq!(
            route(&Method::GET, "/b/k?tagging").unwrap_err().code,
            ErrorCode::NotImplemented
        );
        assert_eq!(
            route(&Method::GET, "/b?versioning").unwrap_err().code,
            ErrorCode::NotImplemented
        );
    }

    #[test]
    fn virtual_hosted_addressing() {
        assert_eq!(host_bucket("bkt.localhost:9000", "localhost"), Some("bkt"));
        assert_eq!(host_bucket("a.b.s3.test", "s3.test"), Some("a.b"));
        assert_eq!(host_bucket("localhost:9000", "localhost"), None);
        assert_eq!(host_bucket("127.0.0.1:9000", "localhost"), None);
        let endpoint = Endpoint::from_request(
            &Method::GET,
            "/x/y%20z",
            None,
            &HeaderMap::new(),
            Some("bkt"),
        )
        .unwrap();
        assert_eq!(
            endpoint,
            Endpoint::GetObject {
                bucket: b("bkt"),
                key: b("x/y z")
            }
        );
        let endpoint = Endpoint::from_request(
            &Method::GET,
            "/",
            Some("list-type=2"),
            &HeaderMap::new(),
            Some("bkt"),
        )
        .unwrap();
        assert_eq!(endpoint.operation(), Operation::ListObjectsV2);
    }
}
