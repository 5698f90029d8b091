//! A minimal, test-only S3 request helper.
//!
//! [`RawS3`] signs one request with the `aws-sigv4` crate (AWS's own signer, so it is
//! independent of both coffer's client and the fake server's verifier) and sends it path-style
//! over plain HTTP with reqwest. It does no retries, no XML parsing and no redirects: tests see
//! exactly what the server answered, which is the point. It exists to drive the fake S3 server
//! and to prepare real servers (creating a bucket on Ceph, for instance) without depending on
//! `coffer-client`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), coffer_testfixtures::raw_s3::RawS3Error> {
//! use coffer_testfixtures::raw_s3::RawS3;
//! let s3 = RawS3::new("http://127.0.0.1:9000", "us-east-1", "AKIDEXAMPLE", "secret");
//! s3.create_bucket("bucket").await?.expect_success()?;
//! let put = s3
//!     .send("PUT", &RawS3::object_path("bucket", "a key/ü"), &[], b"hello".to_vec())
//!     .await?;
//! assert_eq!(put.status, 200);
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};

/// Characters that SigV4/S3 leave unescaped in a path segment: the RFC 3986 unreserved set.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Same as [`PATH_SEGMENT`] but keeps `/`, since object keys use it as a separator.
const OBJECT_KEY: &AsciiSet = &PATH_SEGMENT.remove(b'/');

/// How the payload is declared in `x-amz-content-sha256`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PayloadMode {
    /// The SHA-256 of the body, hex encoded, is signed (what AWS requires over plain HTTP).
    #[default]
    Signed,
    /// `UNSIGNED-PAYLOAD`.
    Unsigned,
}

/// The failure of [`RawS3::send`]: the request could not be signed, or the transport failed.
/// HTTP error statuses are *not* errors here; they come back as a [`RawResponse`]. These
/// are variants of the crate's one error enum.
pub type RawS3Error = crate::HarnessError;

/// A response as received: status, headers (names lower-cased, in order), body.
#[derive(Clone, PartialEq, Eq)]
pub struct RawResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response headers, names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    /// The whole response body.
    pub body: Vec<u8>,
}

impl fmt::Debug for RawResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .finish()
    }
}

impl RawResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The text of the first `<tag>…</tag>` element in the body, unescaped, if any.
    ///
    /// Enough for tests to read `<Code>`, `<UploadId>` or `<ETag>` without an XML parser.
    pub fn xml_value(&self, tag: &str) -> Option<String> {
        self.xml_values(tag).into_iter().next()
    }

    /// The texts of every `<tag>…</tag>` element in the body, unescaped, in document order.
    pub fn xml_values(&self, tag: &str) -> Vec<String> {
        let text = self.text();
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        let mut out = Vec::new();
        let mut rest = text.as_str();
        while let Some(start) = rest.find(&open) {
            let after = &rest[start + open.len()..];
            let Some(end) = after.find(&close) else { break };
            out.push(unescape_xml(&after[..end]));
            rest = &after[end + close.len()..];
        }
        out
    }

    /// The S3 error `<Code>` of an error body, if any.
    pub fn s3_code(&self) -> Option<String> {
        self.xml_value("Code")
    }

    /// `Ok(self)` for a 2xx status, else [`RawS3Error::Status`].
    pub fn expect_success(self) -> Result<Self, RawS3Error> {
        if (200..300).contains(&self.status) {
            Ok(self)
        } else {
            Err(RawS3Error::Status {
                status: self.status,
                body: self.text(),
            })
        }
    }
}

fn unescape_xml(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#13;", "\r")
        .replace("&#10;", "\n")
        .replace("&amp;", "&")
}

/// A test-only, path-style S3 requester signed with `aws-sigv4`.
#[derive(Clone)]
pub struct RawS3 {
    /// Base URL, without trailing slash, e.g. `http://127.0.0.1:9000`.
    pub endpoint: String,
    /// The region requests are signed for.
    pub region: String,
    /// The access key id.
    pub access_key: String,
    /// The secret access key (never printed).
    pub secret_key: SecretString,
    /// The optional session token, sent as `x-amz-security-token` (never printed).
    pub session_token: Option<SecretString>,
    /// Whether the payload hash is signed or `UNSIGNED-PAYLOAD`.
    pub payload: PayloadMode,
    /// Signing time; `None` means the system clock. Tests of clock skew set it.
    pub time: Option<SystemTime>,
    http: reqwest::Client,
}

impl fmt::Debug for RawS3 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawS3")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("payload", &self.payload)
            .field("time", &self.time)
            .finish_non_exhaustive()
    }
}

impl RawS3 {
    /// A requester for `endpoint` (e.g. `http://127.0.0.1:9000`) signing for `region`.
    pub fn new(endpoint: &str, region: &str, access_key: &str, secret_key: &str) -> Self {
        let http = reqwest::Client::builder()
            // Tests must see the server's redirect, not follow it.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(300))
            .build()
            .expect("reqwest client with no TLS configuration always builds");
        Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            region: region.to_owned(),
            access_key: access_key.to_owned(),
            secret_key: SecretString::from(secret_key.to_owned()),
            session_token: None,
            payload: PayloadMode::Signed,
            time: None,
            http,
        }
    }

    /// The same requester signing for another region.
    #[must_use]
    pub fn with_region(mut self, region: &str) -> Self {
        region.clone_into(&mut self.region);
        self
    }

    /// The same requester with other credentials.
    #[must_use]
    pub fn with_credentials(mut self, access_key: &str, secret_key: &str) -> Self {
        access_key.clone_into(&mut self.access_key);
        self.secret_key = SecretString::from(secret_key.to_owned());
        self
    }

    /// The same requester with another payload mode.
    #[must_use]
    pub fn with_payload(mut self, payload: PayloadMode) -> Self {
        self.payload = payload;
        self
    }

    /// The same requester signing at a fixed time (for clock-skew tests).
    #[must_use]
    pub fn with_time(mut self, time: SystemTime) -> Self {
        self.time = Some(time);
        self
    }

    /// `/<bucket>/<key>`, with the key percent-encoded the way SigV4 canonicalises S3 paths
    /// (everything but unreserved characters and `/`).
    pub fn object_path(bucket: &str, key: &str) -> String {
        format!(
            "/{}/{}",
            utf8_percent_encode(bucket, PATH_SEGMENT),
            utf8_percent_encode(key, OBJECT_KEY)
        )
    }

    /// Percent-encodes a query-string value (everything but unreserved characters).
    pub fn encode_query_value(value: &str) -> String {
        utf8_percent_encode(value, PATH_SEGMENT).to_string()
    }

    #[allow(clippy::disallowed_methods)] // Test-only helper: real requests sign with the wall clock.
    fn now(&self) -> SystemTime {
        self.time.unwrap_or_else(SystemTime::now)
    }

    /// Signs and sends one request. `path_and_query` must already be percent-encoded (see
    /// [`RawS3::object_path`]); `headers` are added and signed.
    ///
    /// Returns the response whatever its status; fails only on signing or transport errors.
    pub async fn send(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<RawResponse, RawS3Error> {
        let url = format!("{}{}", self.endpoint, path_and_query);
        let mut settings = SigningSettings::default();
        // S3 canonicalises the path as sent: single encoding, no dot-segment normalisation.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let credentials = Credentials::new(
            self.access_key.clone(),
            self.secret_key.expose_secret().to_owned(),
            self.session_token
                .as_ref()
                .map(|t| t.expose_secret().to_owned()),
            None,
            "coffer-testfixtures-raw-s3",
        );
        let identity: Identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(self.now())
            .settings(settings)
            .build()
            .map_err(|e| RawS3Error::Sign(e.to_string()))?
            .into();
        let signable_body = match self.payload {
            PayloadMode::Signed => SignableBody::Bytes(&body),
            PayloadMode::Unsigned => SignableBody::UnsignedPayload,
        };
        let signable =
            SignableRequest::new(method, url.as_str(), headers.iter().copied(), signable_body)
                .map_err(|e| RawS3Error::Sign(e.to_string()))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| RawS3Error::Sign(e.to_string()))?
            .into_parts();

        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| RawS3Error::Sign(e.to_string()))?;
        let mut request = self.http.request(method, &url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        for (name, value) in instructions.headers() {
            request = request.header(name, value);
        }
        let mut response = request
            .body(body)
            .send()
            .await
            .map_err(RawS3Error::Transport)?;
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut received = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => received.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(source) => {
                    return Err(RawS3Error::Body {
                        status,
                        headers,
                        received,
                        source,
                    });
                }
            }
        }
        Ok(RawResponse {
            status,
            headers,
            body: received,
        })
    }

    /// `PUT /<name>` with a `LocationConstraint` for regions other than `us-east-1`.
    ///
    /// Returns the response whatever its status (200, or 409 `BucketAlreadyOwnedByYou`, …).
    pub async fn create_bucket(&self, name: &str) -> Result<RawResponse, RawS3Error> {
        let body = if self.region == "us-east-1" {
            Vec::new()
        } else {
            format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                self.region
            )
            .into_bytes()
        };
        let path = format!("/{}", utf8_percent_encode(name, PATH_SEGMENT));
        self.send("PUT", &path, &[], body).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_path_encodes_like_sigv4() {
        assert_eq!(
            RawS3::object_path("b", "dir/a b+c%d~é"),
            "/b/dir/a%20b%2Bc%25d~%C3%A9"
        );
    }

    #[test]
    fn debug_redacts_secrets() {
        let mut s3 = RawS3::new("http://127.0.0.1:1", "r", "AKID", "very-secret-key");
        s3.session_token = Some(SecretString::from("session-tok".to_owned()));
        let printed = format!("{s3:?}");
        assert!(printed.contains("AKID"));
        assert!(!printed.contains("very-secret-key"));
        assert!(!printed.contains("session-tok"));
    }

    #[test]
    fn xml_values_are_unescaped_in_order() {
        let r = RawResponse {
            status: 200,
            headers: vec![],
            body: b"<a><Key>x &amp; y</Key><Key>&lt;z&gt;</Key></a>".to_vec(),
        };
        assert_eq!(r.xml_values("Key"), vec!["x & y", "<z>"]);
        assert_eq!(r.xml_value("Missing"), None);
    }
}
