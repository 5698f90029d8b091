//! Object operations: PutObject, GetObject, HeadObject, DeleteObject, CopyObject and
//! DeleteObjects.

use http::{HeaderMap, StatusCode};

use super::checksum::{etag_list_matches, etag_of, has_integrity_header, verify_body};
use super::context::{Ctx, HandlerResult, S3Response, http_date, iso_date, parse_http_date};
use super::error::{ErrorCode, S3Error};
use super::store::{Object, WriteCondition};
use super::xml::{XmlWriter, parse_delete};

/// Headers stored with an object and returned on reads (besides `Content-Type`).
const STORED_HEADERS: &[&str] = &[
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
];

/// AWS's default content type.
pub(crate) const DEFAULT_CONTENT_TYPE: &str = "binary/octet-stream";

/// The largest single PUT AWS accepts.
const MAX_PUT_SIZE: usize = 5 * 1024 * 1024 * 1024;

/// Content type and stored metadata from request headers.
pub(crate) fn metadata_from(headers: &HeaderMap) -> (String, Vec<(String, String)>) {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(DEFAULT_CONTENT_TYPE)
        .to_owned();
    let mut metadata: Vec<(String, String)> = headers
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            name.starts_with("x-amz-meta-") || STORED_HEADERS.contains(&name)
        })
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    metadata.sort();
    (content_type, metadata)
}

/// The conditional-write headers, or nothing when the fake ignores them (Garage mode).
pub(crate) fn write_condition(ctx: &Ctx<'_>) -> Result<WriteCondition, S3Error> {
    if !ctx.state.enforces_conditions() {
        return Ok(WriteCondition::default());
    }
    let if_none_match_star = match ctx.req.header("if-none-match") {
        None => false,
        Some(v) if v.trim() == "*" => true,
        Some(_) => {
            return Err(S3Error::new(ErrorCode::NotImplemented).detail("Header", "If-None-Match"));
        }
    };
    Ok(WriteCondition {
        if_none_match_star,
        if_match: ctx.req.header("if-match").map(str::to_owned),
    })
}

/// Requires `Content-Length` on a body-carrying write, as AWS does (no chunked uploads).
pub(crate) fn require_content_length(ctx: &Ctx<'_>) -> Result<(), S3Error> {
    if ctx.req.headers.contains_key("content-length") {
        Ok(())
    } else {
        Err(S3Error::new(ErrorCode::MissingContentLength))
    }
}

/// PutObject.
pub(crate) fn put_object(ctx: &Ctx<'_>, bucket: &str, key: &str) -> HandlerResult {
    require_content_length(ctx)?;
    let body = &ctx.req.body;
    if body.len() > MAX_PUT_SIZE {
        return Err(S3Error::new(ErrorCode::EntityTooLarge));
    }
    verify_body(&ctx.req.headers, body)?;
    let condition = write_condition(ctx)?;
    let (content_type, metadata) = metadata_from(&ctx.req.headers);
    let etag = etag_of(body);
    let object = Object {
        data: body.clone(),
        etag: etag.clone(),
        last_modified: ctx.now,
        content_type,
        metadata,
        parts_count: None,
    };
    ctx.state
        .store()
        .put_object(bucket, key, object, &condition)?;
    Ok(S3Response::empty(StatusCode::OK).header("etag", etag))
}

/// A parsed `Range` header against an object size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeSpec {
    /// No (usable) range: the whole object.
    Full,
    /// Bytes `start..=end`.
    Partial { start: u64, end: u64 },
    /// The range starts past the end.
    Unsatisfiable,
}

/// Parses `Range: bytes=a-b | a- | -n`. Malformed or multiple ranges are ignored (whole
/// object), as S3 does.
pub(crate) fn parse_range(header: Option<&str>, size: u64) -> RangeSpec {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeSpec::Full;
    };
    if spec.contains(',') {
        return RangeSpec::Full;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return RangeSpec::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        let Ok(n) = last.parse::<u64>() else {
            return RangeSpec::Full;
        };
        if n == 0 || size == 0 {
            return RangeSpec::Unsatisfiable;
        }
        return RangeSpec::Partial {
            start: size - n.min(size),
            end: size - 1,
        };
    }
    let Ok(start) = first.parse::<u64>() else {
        return RangeSpec::Full;
    };
    let end = if last.is_empty() {
        None
    } else {
        match last.parse::<u64>() {
            Ok(end) if end >= start => Some(end),
            _ => return RangeSpec::Full,
        }
    };
    if start >= size {
        return RangeSpec::Unsatisfiable;
    }
    RangeSpec::Partial {
        start,
        end: end.map_or(size - 1, |e| e.min(size - 1)),
    }
}

/// The outcome of `If-Match`, `If-None-Match`, `If-Modified-Since`, `If-Unmodified-Since`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadCondition {
    Proceed,
    NotModified,
    Failed(&'static str),
}

/// Evaluates read preconditions in RFC 9110 order (as S3 does): `If-Match`, else
/// `If-Unmodified-Since`; then `If-None-Match`, else `If-Modified-Since`.
pub(crate) fn read_condition(headers: &HeaderMap, object: &Object) -> ReadCondition {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // HTTP dates have second precision.
    let modified = object.last_modified.timestamp();
    if let Some(list) = get("if-match") {
        if !etag_list_matches(list, &object.etag) {
            return ReadCondition::Failed("If-Match");
        }
    } else if let Some(since) = get("if-unmodified-since").and_then(parse_http_date)
        && modified > since.timestamp()
    {
        return ReadCondition::Failed("If-Unmodified-Since");
    }
    if let Some(list) = get("if-none-match") {
        if etag_list_matches(list, &object.etag) {
            return ReadCondition::NotModified;
        }
    } else if let Some(since) = get("if-modified-since").and_then(parse_http_date)
        && modified <= since.timestamp()
    {
        return ReadCondition::NotModified;
    }
    ReadCondition::Proceed
}

fn object_headers(response: S3Response, object: &Object) -> S3Response {
    let mut response = response
        .header("etag", object.etag.clone())
        .header("last-modified", http_date(object.last_modified))
        .header("accept-ranges", "bytes")
        .header("content-type", object.content_type.clone());
    for (name, value) in &object.metadata {
        response = response.header(name.clone(), value.clone());
    }
    response
}

/// GetObject and HeadObject (`head` drops the body but keeps `Content-Length`).
pub(crate) fn get_object(ctx: &Ctx<'_>, bucket: &str, key: &str, head: bool) -> HandlerResult {
    // Clone the object's handle (its data is reference-counted) and release the lock.
    let object = ctx.state.store().object(bucket, key)?.clone();
    match read_condition(&ctx.req.headers, &object) {
        ReadCondition::Proceed => {}
        ReadCondition::NotModified => {
            return Ok(S3Response::empty(StatusCode::NOT_MODIFIED)
                .header("etag", object.etag.clone())
                .header("last-modified", http_date(object.last_modified)));
        }
        ReadCondition::Failed(condition) => {
            return Err(S3Error::precondition_failed(condition));
        }
    }
    let size = object.size();
    let (status, data) = match parse_range(ctx.req.header("range"), size) {
        RangeSpec::Full => (StatusCode::OK, object.data.clone()),
        RangeSpec::Partial { start, end } => {
            // Both bounds are below the object's in-memory length, so they fit in usize.
            let bound =
                |v: u64| usize::try_from(v).map_err(|_| S3Error::new(ErrorCode::InvalidRange));
            let (start, end) = (bound(start)?, bound(end)?);
            (StatusCode::PARTIAL_CONTENT, object.data.slice(start..=end))
        }
        RangeSpec::Unsatisfiable => {
            return Err(S3Error::new(ErrorCode::InvalidRange)
                .detail(
                    "RangeRequested",
                    ctx.req.header("range").unwrap_or_default(),
                )
                .detail("ActualObjectSize", size.to_string())
                .header("content-range", format!("bytes */{size}")));
        }
    };
    let mut response = object_headers(S3Response::empty(status), &object);
    if let RangeSpec::Partial { start, end } = parse_range(ctx.req.header("range"), size) {
        response = response.header("content-range", format!("bytes {start}-{end}/{size}"));
    }
    if head {
        response.declared_len = Some(data.len() as u64);
    } else {
        response.body = data;
    }
    Ok(response)
}

/// DeleteObject (idempotent: 204 whether or not the key existed), with `If-Match` support.
pub(crate) fn delete_object(ctx: &Ctx<'_>, bucket: &str, key: &str) -> HandlerResult {
    let condition = write_condition(ctx)?;
    ctx.state.store().delete_object(bucket, key, &condition)?;
    Ok(S3Response::empty(StatusCode::NO_CONTENT))
}

fn copy_source_condition(ctx: &Ctx<'_>, source: &Object) -> Result<(), S3Error> {
    let get = |name: &str| ctx.req.header(name);
    let modified = source.last_modified.timestamp();
    if let Some(list) = get("x-amz-copy-source-if-match") {
        if !etag_list_matches(list, &source.etag) {
            return Err(S3Error::precondition_failed("x-amz-copy-source-If-Match"));
        }
    } else if let Some(since) =
        get("x-amz-copy-source-if-unmodified-since").and_then(parse_http_date)
        && modified > since.timestamp()
    {
        return Err(S3Error::precondition_failed(
            "x-amz-copy-source-If-Unmodified-Since",
        ));
    }
    if let Some(list) = get("x-amz-copy-source-if-none-match") {
        if etag_list_matches(list, &source.etag) {
            return Err(S3Error::precondition_failed(
                "x-amz-copy-source-If-None-Match",
            ));
        }
    } else if let Some(since) = get("x-amz-copy-source-if-modified-since").and_then(parse_http_date)
        && modified <= since.timestamp()
    {
        return Err(S3Error::precondition_failed(
            "x-amz-copy-source-If-Modified-Since",
        ));
    }
    Ok(())
}

/// CopyObject (server-side, atomic with respect to the destination's conditions).
pub(crate) fn copy_object(
    ctx: &Ctx<'_>,
    bucket: &str,
    key: &str,
    source_bucket: &str,
    source_key: &str,
) -> HandlerResult {
    let replace = match ctx.req.header("x-amz-metadata-directive") {
        None | Some("COPY") => false,
        Some("REPLACE") => true,
        Some(other) => {
            return Err(S3Error::invalid_argument(
                "Unknown metadata directive.",
                "x-amz-metadata-directive",
                other,
            ));
        }
    };
    if !replace && bucket == source_bucket && key == source_key {
        return Err(S3Error::with_message(
            ErrorCode::InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself \
             without changing the object's metadata, storage class, website redirect location or \
             encryption attributes.",
        ));
    }
    let condition = write_condition(ctx)?;
    let mut store = ctx.state.store();
    let source = store.object(source_bucket, source_key)?.clone();
    copy_source_condition(ctx, &source)?;
    let (content_type, metadata) = if replace {
        metadata_from(&ctx.req.headers)
    } else {
        (source.content_type.clone(), source.metadata.clone())
    };
    let etag = etag_of(&source.data);
    let object = Object {
        data: source.data.clone(),
        etag: etag.clone(),
        last_modified: ctx.now,
        content_type,
        metadata,
        parts_count: None,
    };
    store.put_object(bucket, key, object, &condition)?;
    drop(store);
    let mut w = XmlWriter::new();
    w.open_root("CopyObjectResult");
    w.element("LastModified", &iso_date(ctx.now));
    w.element("ETag", &etag);
    w.close("CopyObjectResult");
    Ok(S3Response::xml(w.finish()))
}

/// DeleteObjects: requires `Content-MD5` or an `x-amz-checksum-*` header like AWS.
pub(crate) fn delete_objects(ctx: &Ctx<'_>, bucket: &str) -> HandlerResult {
    if !has_integrity_header(&ctx.req.headers) {
        return Err(S3Error::with_message(
            ErrorCode::InvalidRequest,
            "Missing required header for this request: Content-MD5 OR x-amz-checksum-*",
        ));
    }
    verify_body(&ctx.req.headers, &ctx.req.body)?;
    let request = parse_delete(&ctx.req.body)?;
    let mut deleted = Vec::new();
    let mut failed = Vec::new();
    {
        let mut store = ctx.state.store();
        store.bucket(bucket)?;
        for key in &request.keys {
            match &ctx.fail_keys {
                Some((prefix, code)) if key.starts_with(prefix.as_str()) => {
                    failed.push((key, *code));
                }
                _ => {
                    store.delete_object(bucket, key, &WriteCondition::default())?;
                    deleted.push(key);
                }
            }
        }
    }
    let mut w = XmlWriter::new();
    w.open_root("DeleteResult");
    if !request.quiet {
        for key in deleted {
            w.open("Deleted");
            w.element("Key", key);
            w.close("Deleted");
        }
    }
    for (key, code) in failed {
        w.open("Error");
        w.element("Key", key);
        w.element("Code", code.as_str());
        w.element("Message", code.default_message());
        w.close("Error");
    }
    w.close("DeleteResult");
    Ok(S3Response::xml(w.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use chrono::{DateTime, TimeDelta};

    #[test]
    fn ranges() {
        use RangeSpec::{Full, Partial, Unsatisfiable};
        let r = |h: &str, size| parse_range(Some(h), size);
        assert_eq!(r("bytes=0-4", 10), Partial { start: 0, end: 4 });
        assert_eq!(r("bytes=5-", 10), Partial { start: 5, end: 9 });
        assert_eq!(r("bytes=-3", 10), Partial { start: 7, end: 9 });
        assert_eq!(r("bytes=-30", 10), Partial { start: 0, end: 9 });
        assert_eq!(r("bytes=8-100", 10), Partial { start: 8, end: 9 });
        assert_eq!(r("bytes=10-", 10), Unsatisfiable);
        assert_eq!(r("bytes=-0", 10), Unsatisfiable);
        assert_eq!(r("bytes=0-", 0), Unsatisfiable);
        assert_eq!(r("bytes=5-4", 10), Full);
        assert_eq!(r("bytes=0-1,3-4", 10), Full);
        assert_eq!(r("items=0-1", 10), Full);
        assert_eq!(parse_range(None, 10), Full);
    }

    fn object() -> Object {
        Object {
            data: Bytes::from_static(b"x"),
            etag: "\"abc\"".into(),
            last_modified: DateTime::from_timestamp(1_000_000, 0).unwrap(),
            content_type: DEFAULT_CONTENT_TYPE.into(),
            metadata: vec![],
            parts_count: None,
        }
    }

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn read_conditions() {
        let o = object();
        let before = http_date(o.last_modified - TimeDelta::seconds(10));
        let after = http_date(o.last_modified + TimeDelta::seconds(10));
        let c = |pairs: &[(&'static str, String)]| read_condition(&headers(pairs), &o);
        assert_eq!(c(&[]), ReadCondition::Proceed);
        assert_eq!(c(&[("if-match", "\"abc\"".into())]), ReadCondition::Proceed);
        assert_eq!(c(&[("if-match", "abc".into())]), ReadCondition::Proceed);
        assert_eq!(
            c(&[("if-match", "\"x\"".into())]),
            ReadCondition::Failed("If-Match")
        );
        assert_eq!(
            c(&[("if-none-match", "\"abc\"".into())]),
            ReadCondition::NotModified
        );
        assert_eq!(
            c(&[("if-none-match", "\"x\"".into())]),
            ReadCondition::Proceed
        );
        assert_eq!(
            c(&[("if-modified-since", after.clone())]),
            ReadCondition::NotModified
        );
        assert_eq!(
            c(&[("if-modified-since", before.clone())]),
            ReadCondition::Proceed
        );
        assert_eq!(
            c(&[("if-unmodified-since", before.clone())]),
            ReadCondition::Failed("If-Unmodified-Since")
        );
        // If-Match true wins over a failing If-Unmodified-Since.
        assert_eq!(
            c(&[
                ("if-match", "\"abc\"".into()),
                ("if-unmodified-since", before)
            ]),
            ReadCondition::Proceed
        );
        // If-None-Match false: If-Modified-Since is not consulted.
        assert_eq!(
            c(&[
                ("if-none-match", "\"x\"".into()),
                ("if-modified-since", after)
            ]),
            ReadCondition::Proceed
        );
    }

    #[test]
    fn metadata_is_collected_sorted() {
        let h = headers(&[
            ("x-amz-meta-b", "2".into()),
            ("content-type", "text/plain".into()),
            ("x-amz-meta-a", "1".into()),
            ("cache-control", "no-cache".into()),
            ("x-amz-date", "ignored".into()),
        ]);
        let (ct, md) = metadata_from(&h);
        assert_eq!(ct, "text/plain");
        assert_eq!(
            md,
            vec![
                ("cache-control".to_owned(), "no-cache".to_owned()),
                ("x-amz-meta-a".to_owned(), "1".to_owned()),
                ("x-amz-meta-b".to_owned(), "2".to_owned()),
            ]
        );
        assert_eq!(metadata_from(&HeaderMap::new()).0, DEFAULT_CONTENT_TYPE);
    }
}
