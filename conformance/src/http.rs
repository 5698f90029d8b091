//! The HTTP exchange, behind a trait so the runner can be tested against anything.

use std::time::Duration;

use percent_encoding::utf8_percent_encode;

use crate::Error;
use crate::spec::QUERY_VALUE;

/// A request built from a `do` step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Method, e.g. `PUT`.
    pub method: String,
    /// Path, already percent-encoded.
    pub path: String,
    /// Query parameters, not yet encoded.
    pub query: Vec<(String, String)>,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Option<Vec<u8>>,
}

impl HttpRequest {
    /// A request without query, headers or body.
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// Path plus encoded query string.
    pub fn path_and_query(&self) -> String {
        let mut out = self.path.clone();
        for (i, (k, v)) in self.query.iter().enumerate() {
            out.push(if i == 0 { '?' } else { '&' });
            out.extend(utf8_percent_encode(k, QUERY_VALUE));
            out.push('=');
            out.extend(utf8_percent_encode(v, QUERY_VALUE));
        }
        out
    }
}

/// A response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers (names lower-cased), in order; repeated headers appear repeatedly.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// All values of header `name` (case-insensitive).
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Something that answers requests: the real server, or a fake in tests.
pub trait Transport {
    /// Sends `request` and returns the response, whatever its status.
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, Error>;
}

/// HTTP/1.1 to a base URL, through reqwest's blocking client. No proxy is ever used: the
/// server is on loopback and a proxy from the environment would only get in the way.
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    base: String,
    client: reqwest::blocking::Client,
}

impl ReqwestTransport {
    /// A transport to `base` (e.g. `http://127.0.0.1:9200`) with a per-request timeout.
    pub fn new(base: &str, timeout: Duration) -> Result<Self, Error> {
        let client = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(timeout)
            .build()
            .map_err(|e| Error::Http {
                method: String::new(),
                url: base.to_owned(),
                message: format!("building the HTTP client: {e}"),
            })?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            client,
        })
    }
}

impl Transport for ReqwestTransport {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, Error> {
        let url = format!("{}{}", self.base, request.path_and_query());
        let fail = |message: String| Error::Http {
            method: request.method.clone(),
            url: url.clone(),
            message,
        };
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|e| fail(format!("bad method: {e}")))?;
        let mut builder = self.client.request(method, &url);
        for (k, v) in &request.headers {
            builder = builder.header(k, v);
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let response = builder.send().map_err(|e| fail(error_chain(&e)))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .bytes()
            .map_err(|e| fail(format!("reading the body: {}", error_chain(&e))))?
            .to_vec();
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
