//! What a handler receives (the request and the server state) and returns (a response), plus
//! the small formatting helpers every handler shares.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderMap, Method, StatusCode};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::State;
use super::error::S3Error;
use super::xml::XmlWriter;

/// A request whose body has been read and whose signature has been verified.
#[derive(Debug)]
pub(crate) struct Request {
    pub method: Method,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Request {
    /// A header as a string, if present and ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Everything a handler needs.
pub(crate) struct Ctx<'a> {
    pub state: &'a State,
    pub req: &'a Request,
    pub now: DateTime<Utc>,
    /// A per-request number, for upload-id entropy.
    pub seq: u64,
    /// DeleteObjects keys to fail (prefix, code), from a [`super::FaultAction::FailKeys`].
    pub fail_keys: Option<(String, super::ErrorCode)>,
}

/// A successful (or 304) response before transport.
#[derive(Debug, Clone)]
pub(crate) struct S3Response {
    pub status: StatusCode,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// The body length to declare when `body` is empty on purpose (HEAD).
    pub declared_len: Option<u64>,
}

impl S3Response {
    pub fn empty(status: StatusCode) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
            declared_len: None,
        }
    }

    pub fn xml(doc: String) -> Self {
        Self {
            status: StatusCode::OK,
            headers: vec![("content-type".to_owned(), "application/xml".to_owned())],
            body: Bytes::from(doc),
            declared_len: None,
        }
    }

    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// The result of a handler.
pub(crate) type HandlerResult = Result<S3Response, S3Error>;

/// `Last-Modified` / `Date` format.
pub(crate) fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Timestamp format in XML bodies.
pub(crate) fn iso_date(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Parses an HTTP date (RFC 1123, as clients send in `If-Modified-Since`).
pub(crate) fn parse_http_date(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(value)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// What `encoding-type=url` leaves alone: unreserved characters and `/` (as AWS does).
const LIST_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Encodes a listing value for `encoding-type=url` the way AWS does: percent-encoding, except
/// that a space becomes `+` (and a literal `+` becomes `%2B`), so clients must decode form-style.
pub(crate) fn list_encode(value: &str, enabled: bool) -> String {
    if !enabled {
        return value.to_owned();
    }
    value
        .split(' ')
        .map(|part| utf8_percent_encode(part, LIST_ENCODE).to_string())
        .collect::<Vec<_>>()
        .join("+")
}

/// Writes the `<Owner>` element AWS includes in several listings.
pub(crate) fn write_owner(w: &mut XmlWriter, tag: &str, access_key: &str) {
    w.open(tag);
    w.element("ID", &format!("fake-s3-owner-{access_key}"));
    w.element("DisplayName", access_key);
    w.close(tag);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_encoding_matches_aws() {
        // As measured on AWS: space is '+', '+' is %2B, '/' stays, UTF-8 is percent-encoded.
        assert_eq!(list_encode("a b.txt", true), "a+b.txt");
        assert_eq!(list_encode("a+b.txt", true), "a%2Bb.txt");
        assert_eq!(list_encode("100%.csv", true), "100%25.csv");
        assert_eq!(list_encode("한/x.txt", true), "%ED%95%9C/x.txt");
        assert_eq!(list_encode("a b", false), "a b");
    }

    #[test]
    fn dates() {
        let t = DateTime::from_timestamp(1_445_412_480, 123_000_000).unwrap();
        assert_eq!(http_date(t), "Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(iso_date(t), "2015-10-21T07:28:00.123Z");
        assert_eq!(
            parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT")
                .unwrap()
                .timestamp(),
            1_445_412_480
        );
    }
}
