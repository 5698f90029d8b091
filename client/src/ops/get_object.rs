//! GetObject: the whole object or a byte range. The body is streamed by the client; this
//! module builds the request and reads the answer's headers.

use http::{HeaderMap, Method};

use super::{
    ETag, EtagQuoting, ObjectMeta, Operation, S3Request, header_str, header_u64, required_etag,
};

/// A byte range `start..=end` (HTTP's inclusive form), or `start..` when `end` is `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// Last byte, inclusive; `None` reads to the end.
    pub end_inclusive: Option<u64>,
}

impl ByteRange {
    /// `start..end` (exclusive end, like a Rust range). `end` must be greater than `start`.
    pub fn new(start: u64, end_exclusive: u64) -> ByteRange {
        ByteRange {
            start,
            end_inclusive: Some(end_exclusive.saturating_sub(1).max(start)),
        }
    }

    /// From `start` to the end of the object.
    pub fn from_offset(start: u64) -> ByteRange {
        ByteRange {
            start,
            end_inclusive: None,
        }
    }

    /// The `Range` header value.
    pub fn header(&self) -> String {
        match self.end_inclusive {
            Some(end) => format!("bytes={}-{end}", self.start),
            None => format!("bytes={}-", self.start),
        }
    }
}

/// Builds the request. `if_match` pins the version: a resumed read sends the first answer's
/// ETag so that a changed object fails with 412 instead of being stitched.
pub fn request(
    bucket: &str,
    key: &str,
    range: Option<ByteRange>,
    if_match: Option<&ETag>,
    quoting: EtagQuoting,
) -> S3Request {
    let mut req = S3Request::new(Operation::GetObject, Method::GET, bucket).key(key);
    if let Some(range) = range {
        req = req.header("range", &range.header());
    }
    if let Some(etag) = if_match {
        req = req.header("if-match", &etag.for_header(quoting));
    }
    req
}

/// What the answer's headers say about the body that follows.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GetObjectHead {
    /// Metadata of the whole object (`size` is the whole object's length).
    pub meta: ObjectMeta,
    /// Offset in the object of the body's first byte.
    pub body_start: u64,
    /// Length of the body that follows.
    pub body_length: u64,
}

/// Parses the answer headers of a 200 or 206.
pub fn parse(status: u16, headers: &HeaderMap) -> Result<GetObjectHead, String> {
    let length = header_u64(headers, "content-length")?
        .ok_or_else(|| "the answer has no Content-Length".to_owned())?;
    let (start, size) = if status == 206 {
        let cr = header_str(headers, "content-range")
            .ok_or_else(|| "a 206 answer without Content-Range".to_owned())?;
        let (start, end, total) = parse_content_range(&cr)?;
        if end + 1 - start != length {
            return Err(format!(
                "Content-Range {cr} disagrees with Content-Length {length}"
            ));
        }
        (start, total)
    } else {
        (0, length)
    };
    Ok(GetObjectHead {
        meta: ObjectMeta {
            size,
            etag: required_etag(headers)?,
            last_modified: header_str(headers, "last-modified"),
            version_id: header_str(headers, "x-amz-version-id"),
            content_type: header_str(headers, "content-type"),
        },
        body_start: start,
        body_length: length,
    })
}

/// `bytes 0-9/443` → `(0, 9, 443)`.
pub(crate) fn parse_content_range(value: &str) -> Result<(u64, u64, u64), String> {
    let bad = || format!("invalid Content-Range {value:?}");
    let rest = value.trim().strip_prefix("bytes ").ok_or_else(bad)?;
    let (range, total) = rest.split_once('/').ok_or_else(bad)?;
    let (start, end) = range.split_once('-').ok_or_else(bad)?;
    let start: u64 = start.trim().parse().map_err(|_| bad())?;
    let end: u64 = end.trim().parse().map_err(|_| bad())?;
    let total: u64 = total.trim().parse().map_err(|_| bad())?;
    if end < start || end >= total {
        return Err(bad());
    }
    Ok((start, end, total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn range_headers() {
        assert_eq!(ByteRange::new(0, 10).header(), "bytes=0-9");
        assert_eq!(ByteRange::from_offset(5).header(), "bytes=5-");
        let r = request(
            "b",
            "k",
            Some(ByteRange::from_offset(7)),
            Some(&ETag::parse("\"e\"")),
            EtagQuoting::Quoted,
        );
        assert_eq!(r.header_value("range"), Some("bytes=7-"));
        assert_eq!(r.header_value("if-match"), Some("\"e\""));
    }

    // Ranged answer sample from the AWS GetObject reference.
    #[test]
    fn parses_the_documented_ranged_answer() {
        let mut h = HeaderMap::new();
        h.insert(
            "last-modified",
            HeaderValue::from_static("Wed, 28 Oct 2009 22:32:00 GMT"),
        );
        h.insert(
            "etag",
            HeaderValue::from_static("\"fba9dede5f27731c9771645a39863328\""),
        );
        h.insert("content-length", HeaderValue::from_static("10"));
        h.insert("content-range", HeaderValue::from_static("bytes 0-9/443"));
        h.insert("content-type", HeaderValue::from_static("text/plain"));
        let got = parse(206, &h).unwrap();
        assert_eq!(
            (got.body_start, got.body_length, got.meta.size),
            (0, 10, 443)
        );
        assert_eq!(got.meta.etag.as_str(), "fba9dede5f27731c9771645a39863328");
    }

    #[test]
    fn parses_a_whole_answer_and_rejects_inconsistent_ranges() {
        let mut h = HeaderMap::new();
        h.insert("etag", HeaderValue::from_static("\"e\""));
        h.insert("content-length", HeaderValue::from_static("434234"));
        let got = parse(200, &h).unwrap();
        assert_eq!(
            (got.body_start, got.body_length, got.meta.size),
            (0, 434_234, 434_234)
        );
        h.insert("content-range", HeaderValue::from_static("bytes 5-9/443"));
        assert!(parse(206, &h).is_err());
        assert!(parse_content_range("bytes 9-5/443").is_err());
        assert!(parse_content_range("bytes */443").is_err());
        assert_eq!(
            parse_content_range("bytes 100-199/200").unwrap(),
            (100, 199, 200)
        );
    }
}
