//! A small in-process S3 stand-in on 127.0.0.1:0 for the client's I/O tests: objects,
//! conditional writes, ranges, multipart, DeleteObjects (Content-MD5 required), CopyObject,
//! a signing-region check, a request log, and scripted faults (error statuses, resets,
//! truncated bodies, 200-with-Error). The fully featured fake S3 with independent SigV4
//! verification lives in `coffer-testfixtures`; this one exists so the client's streaming,
//! retry and resume behaviour is tested without depending on it.

// A test server: real sleeps (it plays a slow network), terse names and unwraps are fine.
#![allow(
    dead_code,
    clippy::disallowed_methods,
    clippy::many_single_char_names,
    clippy::match_same_arms,
    clippy::collapsible_if,
    clippy::missing_panics_doc,
    clippy::too_many_lines,
    clippy::cast_possible_truncation,
    clippy::format_push_string
)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use coffer_client::runtime::testing::{FixedJitter, RecordingSleeper};
use coffer_client::runtime::{Runtime, SystemClock};
use coffer_client::{
    ClientConfig, ClientOptions, ClientSettings, Credentials, Environment, RetryPolicy, S3Client,
    SecureClientSettings,
};
use futures::StreamExt as _;
use http::{HeaderMap, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use md5::{Digest, Md5};
use secrecy::SecretString;

pub type BoxBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status and S3 code.
    Status {
        status: u16,
        code: &'static str,
        retry_after: Option<u32>,
    },
    /// Close the connection without answering.
    Reset,
    /// Send the headers of the real answer, then only `after` bytes of the body.
    Truncate { after: usize },
    /// Answer 200 with an `<Error>` body.
    ErrorIn200 { code: &'static str },
    /// Answer 301 naming another region.
    Redirect { region: &'static str },
    /// Complete the upload but answer `<ETag></ETag>` (Ceph radosgw 16).
    EmptyCompleteEtag,
    /// Wait before handling.
    Delay(Duration),
}

#[derive(Clone, Debug)]
pub struct Logged {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body_len: usize,
}

#[derive(Clone, Debug)]
pub struct Obj {
    pub data: Bytes,
    pub etag: String,
}

#[derive(Default)]
pub struct State {
    pub objects: BTreeMap<String, Obj>,
    pub uploads: HashMap<String, BTreeMap<u32, Bytes>>,
    pub faults: VecDeque<(Option<Method>, Fault)>,
    pub log: Vec<Logged>,
    pub region: String,
    pub next_upload: u64,
    pub max_parts_in_flight_seen: usize,
    pub parts_in_flight: usize,
}

#[derive(Clone)]
pub struct Server {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
}

impl Server {
    pub async fn start(region: &str) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            region: region.to_owned(),
            ..State::default()
        }));
        let st = Arc::clone(&state);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let st = Arc::clone(&st);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let st = Arc::clone(&st);
                        async move { handle(st, req).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Server { addr, state }
    }

    pub fn fault(&self, method: Option<Method>, fault: Fault) {
        self.state.lock().unwrap().faults.push_back((method, fault));
    }

    pub fn put(&self, bucket: &str, key: &str, data: &[u8]) {
        let etag = hex::encode(Md5::digest(data));
        self.state.lock().unwrap().objects.insert(
            format!("{bucket}/{key}"),
            Obj {
                data: Bytes::copy_from_slice(data),
                etag,
            },
        );
    }

    pub fn get(&self, bucket: &str, key: &str) -> Option<Obj> {
        self.state
            .lock()
            .unwrap()
            .objects
            .get(&format!("{bucket}/{key}"))
            .cloned()
    }

    pub fn log(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn count(&self, method: &Method, query_contains: &str) -> usize {
        self.log()
            .iter()
            .filter(|l| l.method == *method && l.query.contains(query_contains))
            .count()
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A client for this server, with instant sleeps and fixed jitter.
    pub fn client(
        &self,
        region: Option<&str>,
        max_retries: u32,
    ) -> (S3Client, Arc<RecordingSleeper>) {
        self.client_with(region, max_retries, "AKIDTEST", "test-secret-key")
    }

    pub fn client_with(
        &self,
        region: Option<&str>,
        max_retries: u32,
        ak: &str,
        sk: &str,
    ) -> (S3Client, Arc<RecordingSleeper>) {
        let sleeper = Arc::new(RecordingSleeper::default());
        let runtime = Runtime {
            clock: Arc::new(SystemClock),
            sleeper: sleeper.clone(),
            jitter: Arc::new(FixedJitter(0.5)),
        };
        let options = ClientOptions::default()
            .with_runtime(runtime)
            .with_retry(RetryPolicy::standard(max_retries));
        let client =
            S3Client::new(&self.config(region, ak, sk), &Environment::empty(), options).unwrap();
        (client, sleeper)
    }

    pub fn config(&self, region: Option<&str>, ak: &str, sk: &str) -> ClientConfig {
        let mut settings = ClientSettings::default();
        settings.endpoint = Some(self.endpoint());
        settings.region = region.map(str::to_owned);
        let mut secure = SecureClientSettings::default();
        secure.credentials = Some(Credentials::new(
            ak,
            SecretString::from(sk.to_owned()),
            None,
        ));
        ClientConfig::new("test", settings, secure)
    }
}

fn full(status: u16, body: impl Into<Bytes>) -> Response<BoxBody> {
    Response::builder()
        .status(status)
        .header("x-amz-request-id", "REQ123")
        .body(
            Full::new(body.into())
                .map_err(|never: Infallible| match never {})
                .boxed(),
        )
        .unwrap()
}

fn error(status: u16, code: &str, extra: &str) -> Response<BoxBody> {
    full(
        status,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>test says {code}</Message>{extra}<RequestId>REQ123</RequestId></Error>"
        ),
    )
}

fn query_map(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8()
                    .unwrap()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect()
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find(open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(close) else { break };
        out.push(&after[..j]);
        rest = &after[j + close.len()..];
    }
    out
}

fn unquote(s: &str) -> &str {
    s.trim().trim_matches('"')
}

async fn handle(
    st: Arc<Mutex<State>>,
    req: hyper::Request<Incoming>,
) -> Result<Response<BoxBody>, std::io::Error> {
    let method = req.method().clone();
    let path = percent_encoding::percent_decode_str(req.uri().path())
        .decode_utf8()
        .unwrap()
        .into_owned();
    let raw_query = req.uri().query().unwrap_or("").to_owned();
    let headers = req.headers().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    let fault = {
        let mut s = st.lock().unwrap();
        s.log.push(Logged {
            method: method.clone(),
            path: path.clone(),
            query: raw_query.clone(),
            headers: headers.clone(),
            body_len: body.len(),
        });
        let pos = s
            .faults
            .iter()
            .position(|(m, _)| m.as_ref().is_none_or(|m| *m == method));
        pos.and_then(|p| s.faults.remove(p)).map(|(_, f)| f)
    };
    let mut truncate = None;
    let mut empty_etag = false;
    match fault {
        Some(Fault::Status {
            status,
            code,
            retry_after,
        }) => {
            let mut r = error(status, code, "");
            if let Some(ra) = retry_after {
                r.headers_mut()
                    .insert("retry-after", ra.to_string().parse().unwrap());
            }
            return Ok(r);
        }
        Some(Fault::Reset) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "scripted reset",
            ));
        }
        Some(Fault::ErrorIn200 { code }) => return Ok(error(200, code, "")),
        Some(Fault::Redirect { region }) => {
            let mut r = error(301, "PermanentRedirect", "<Endpoint>elsewhere</Endpoint>");
            r.headers_mut()
                .insert("x-amz-bucket-region", region.parse().unwrap());
            return Ok(r);
        }
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        Some(Fault::Truncate { after }) => truncate = Some(after),
        Some(Fault::EmptyCompleteEtag) => empty_etag = true,
        None => {}
    }
    // Signing region check, as Garage does.
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let region_signed = auth
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split('/').nth(2))
        .unwrap_or("")
        .to_owned();
    let expected_region = st.lock().unwrap().region.clone();
    if region_signed != expected_region {
        return Ok(error(
            400,
            "AuthorizationHeaderMalformed",
            &format!("<Region>{expected_region}</Region>"),
        ));
    }
    if auth.contains("Credential=AKIDBAD/") {
        return Ok(error(403, "InvalidAccessKeyId", ""));
    }
    let q = query_map(&raw_query);
    let trimmed = path.trim_start_matches('/');
    let (bucket, key) = trimmed
        .split_once('/')
        .map_or((trimmed.to_owned(), String::new()), |(b, k)| {
            (b.to_owned(), k.to_owned())
        });
    let id = format!("{bucket}/{key}");
    let hdr = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };

    let resp = match (method.clone(), key.is_empty()) {
        (Method::PUT, false) if q.contains_key("partNumber") => {
            {
                let mut s = st.lock().unwrap();
                s.parts_in_flight += 1;
                s.max_parts_in_flight_seen = s.max_parts_in_flight_seen.max(s.parts_in_flight);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            let mut s = st.lock().unwrap();
            s.parts_in_flight -= 1;
            let n: u32 = q["partNumber"].parse().unwrap();
            let Some(up) = s.uploads.get_mut(&q["uploadId"]) else {
                return Ok(error(404, "NoSuchUpload", ""));
            };
            up.insert(n, body.clone());
            let mut r = full(200, "");
            r.headers_mut().insert(
                "etag",
                format!("\"{}\"", hex::encode(Md5::digest(&body)))
                    .parse()
                    .unwrap(),
            );
            r
        }
        (Method::PUT, false) if hdr("x-amz-copy-source").is_some() => {
            let src = percent_encoding::percent_decode_str(&hdr("x-amz-copy-source").unwrap())
                .decode_utf8()
                .unwrap()
                .into_owned();
            let mut s = st.lock().unwrap();
            let Some(obj) = s.objects.get(src.trim_start_matches('/')).cloned() else {
                return Ok(error(404, "NoSuchKey", ""));
            };
            let etag = obj.etag.clone();
            s.objects.insert(id, obj);
            full(
                200,
                format!(
                    "<CopyObjectResult><LastModified>2009-10-28T22:32:00</LastModified><ETag>\"{etag}\"</ETag></CopyObjectResult>"
                ),
            )
        }
        (Method::PUT, false) => {
            let mut s = st.lock().unwrap();
            if let Some(r) = precondition(&s, &id, &headers) {
                return Ok(r);
            }
            let etag = hex::encode(Md5::digest(&body));
            s.objects.insert(
                id,
                Obj {
                    data: body.clone(),
                    etag: etag.clone(),
                },
            );
            let mut r = full(200, "");
            r.headers_mut()
                .insert("etag", format!("\"{etag}\"").parse().unwrap());
            r
        }
        (Method::PUT, true) => {
            let region = st.lock().unwrap().region.clone();
            let text = String::from_utf8_lossy(&body).into_owned();
            let constraint = between(&text, "<LocationConstraint>", "</LocationConstraint>")
                .first()
                .map(|s| (*s).to_owned());
            let ok = if region == "us-east-1" {
                constraint.is_none()
            } else {
                constraint.as_deref() == Some(region.as_str())
            };
            if !ok {
                return Ok(error(400, "IllegalLocationConstraintException", ""));
            }
            full(200, "")
        }
        (Method::HEAD, true) => full(200, ""),
        (Method::GET | Method::HEAD, false) => {
            let s = st.lock().unwrap();
            let Some(obj) = s.objects.get(&id).cloned() else {
                return Ok(if method == Method::HEAD {
                    full(404, "")
                } else {
                    error(404, "NoSuchKey", "")
                });
            };
            drop(s);
            if let Some(m) = hdr("if-match") {
                if unquote(&m) != obj.etag {
                    return Ok(error(412, "PreconditionFailed", ""));
                }
            }
            let total = obj.data.len();
            let (status, start, end) = match hdr("range") {
                Some(r) => {
                    let spec = r.trim_start_matches("bytes=");
                    let (a, b) = spec.split_once('-').unwrap();
                    let a: usize = a.parse().unwrap();
                    let b: usize = if b.is_empty() {
                        total - 1
                    } else {
                        b.parse::<usize>().unwrap().min(total - 1)
                    };
                    (206, a, b + 1)
                }
                None => (200, 0, total),
            };
            let slice = obj.data.slice(start..end);
            let mut builder = Response::builder()
                .status(status)
                .header("etag", format!("\"{}\"", obj.etag))
                .header("content-length", slice.len())
                .header("last-modified", "Wed, 28 Oct 2009 22:32:00 GMT");
            if status == 206 {
                builder = builder.header(
                    "content-range",
                    format!("bytes {start}-{}/{total}", end - 1),
                );
            }
            if method == Method::HEAD {
                return Ok(builder
                    .body(
                        Full::new(Bytes::new())
                            .map_err(|n: Infallible| match n {})
                            .boxed(),
                    )
                    .unwrap());
            }
            match truncate {
                Some(after) => {
                    let first = slice.slice(..after.min(slice.len()));
                    // The pause lets hyper flush the bytes before the connection drops.
                    let frames = futures::stream::once(async move {
                        Ok::<_, std::io::Error>(Frame::data(first))
                    })
                    .chain(futures::stream::once(async {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Err(std::io::Error::new(
                            std::io::ErrorKind::ConnectionReset,
                            "scripted truncation",
                        ))
                    }));
                    builder
                        .body(BodyExt::boxed(StreamBody::new(frames)))
                        .unwrap()
                }
                None => builder
                    .body(Full::new(slice).map_err(|n: Infallible| match n {}).boxed())
                    .unwrap(),
            }
        }
        (Method::DELETE, false) if q.contains_key("uploadId") => {
            st.lock().unwrap().uploads.remove(&q["uploadId"]);
            full(204, "")
        }
        (Method::DELETE, false) => {
            st.lock().unwrap().objects.remove(&id);
            full(204, "")
        }
        (Method::POST, false) if q.contains_key("uploads") => {
            let mut s = st.lock().unwrap();
            s.next_upload += 1;
            let up = format!("upload-{}", s.next_upload);
            s.uploads.insert(up.clone(), BTreeMap::new());
            full(
                200,
                format!(
                    "<InitiateMultipartUploadResult><Bucket>{bucket}</Bucket><Key>{key}</Key><UploadId>{up}</UploadId></InitiateMultipartUploadResult>"
                ),
            )
        }
        (Method::POST, false) if q.contains_key("uploadId") => {
            let mut s = st.lock().unwrap();
            if let Some(r) = precondition(&s, &id, &headers) {
                return Ok(r);
            }
            let Some(parts) = s.uploads.remove(&q["uploadId"]) else {
                return Ok(error(404, "NoSuchUpload", ""));
            };
            let text = std::str::from_utf8(&body).unwrap();
            let numbers: Vec<u32> = between(text, "<PartNumber>", "</PartNumber>")
                .iter()
                .map(|n| n.parse().unwrap())
                .collect();
            let mut data = Vec::new();
            let mut md5s = Vec::new();
            for n in &numbers {
                let Some(p) = parts.get(n) else {
                    return Ok(error(400, "InvalidPart", ""));
                };
                data.extend_from_slice(p);
                md5s.extend_from_slice(&Md5::digest(p));
            }
            let etag = format!("{}-{}", hex::encode(Md5::digest(&md5s)), numbers.len());
            s.objects.insert(
                id,
                Obj {
                    data: data.into(),
                    etag: etag.clone(),
                },
            );
            let etag = if empty_etag {
                String::new()
            } else {
                format!("\"{etag}\"")
            };
            full(
                200,
                format!(
                    "<CompleteMultipartUploadResult><Bucket>{bucket}</Bucket><Key>{key}</Key><ETag>{etag}</ETag></CompleteMultipartUploadResult>"
                ),
            )
        }
        (Method::POST, true) if q.contains_key("delete") => {
            let want = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&body));
            if hdr("content-md5").as_deref() != Some(want.as_str()) {
                return Ok(error(400, "InvalidRequest", ""));
            }
            let text = std::str::from_utf8(&body).unwrap().to_owned();
            let mut s = st.lock().unwrap();
            let mut errors = String::new();
            for k in between(&text, "<Key>", "</Key>") {
                let k = k
                    .replace("&amp;", "&")
                    .replace("&lt;", "<")
                    .replace("&gt;", ">");
                if k.starts_with("locked") {
                    errors.push_str(&format!("<Error><Key>{k}</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"));
                } else {
                    s.objects.remove(&format!("{bucket}/{k}"));
                }
            }
            full(200, format!("<DeleteResult>{errors}</DeleteResult>"))
        }
        (Method::GET, true) if q.get("list-type").map(String::as_str) == Some("2") => {
            let s = st.lock().unwrap();
            let prefix = q.get("prefix").cloned().unwrap_or_default();
            let after = q.get("continuation-token").cloned().unwrap_or_default();
            let max: usize = q.get("max-keys").map_or(1000, |m| m.parse().unwrap());
            let keys: Vec<(String, Obj)> = s
                .objects
                .iter()
                .filter_map(|(id, o)| {
                    id.strip_prefix(&format!("{bucket}/"))
                        .map(|k| (k.to_owned(), o.clone()))
                })
                .filter(|(k, _)| k.starts_with(&prefix) && k.as_str() > after.as_str())
                .collect();
            let page = &keys[..keys.len().min(max)];
            let truncated = keys.len() > max;
            let mut xml = String::from("<ListBucketResult><EncodingType>url</EncodingType>");
            xml.push_str(&format!("<IsTruncated>{truncated}</IsTruncated>"));
            if truncated {
                xml.push_str(&format!(
                    "<NextContinuationToken>{}</NextContinuationToken>",
                    page.last().unwrap().0.replace('&', "&amp;")
                ));
            }
            for (k, o) in page {
                let enc =
                    percent_encoding::utf8_percent_encode(k, percent_encoding::NON_ALPHANUMERIC)
                        .to_string();
                xml.push_str(&format!(
                    "<Contents><Key>{enc}</Key><Size>{}</Size><ETag>\"{}\"</ETag></Contents>",
                    o.data.len(),
                    o.etag
                ));
            }
            xml.push_str("</ListBucketResult>");
            full(200, xml)
        }
        _ => error(400, "NotImplemented", ""),
    };
    Ok(resp)
}

fn precondition(s: &State, id: &str, headers: &HeaderMap) -> Option<Response<BoxBody>> {
    let existing = s.objects.get(id);
    if let Some(v) = headers.get("if-none-match") {
        if v == "*" && existing.is_some() {
            return Some(error(412, "PreconditionFailed", ""));
        }
    }
    if let Some(v) = headers.get("if-match") {
        match existing {
            Some(o) if unquote(v.to_str().unwrap()) == o.etag => {}
            _ => return Some(error(412, "PreconditionFailed", "")),
        }
    }
    None
}

/// Deterministic pseudo-random bytes.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A source stream that hands out `data` in uneven chunks.
pub fn source(
    data: &[u8],
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send + Unpin + use<> {
    let chunks: Vec<std::io::Result<Bytes>> = data
        .chunks(700_001)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(chunks)
}

pub fn status_code(s: u16) -> StatusCode {
    StatusCode::from_u16(s).unwrap()
}
