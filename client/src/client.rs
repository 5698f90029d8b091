//! The S3 client: one named client's state (settings, endpoint, HTTP client, credentials),
//! the request loop (address, sign, send, classify, retry, region self-correction,
//! adaptive concurrency, metering) and one async method per operation.
//!
//! Building requests, signing and parsing are pure functions in other modules; this is the
//! I/O edge.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue};
use md5::{Digest, Md5};

use crate::credentials::{self, CredentialSource, Credentials, Environment};
use crate::endpoint::{self, Endpoint};
use crate::error::{Error, ErrorKind, RequestContext, S3Failure, classify, from_failure};
use crate::limiter::{Limiter, Permit};
use crate::metering::{Meter, MeteringSnapshot, Outcome};
use crate::ops::complete_multipart_upload::{CompleteMultipartUploadOutput, CompletedPart};
use crate::ops::copy_object::CopyObjectOutput;
use crate::ops::delete_objects::DeleteObjectsOutput;
use crate::ops::head_bucket::HeadBucketOutput;
use crate::ops::list_multipart_uploads::{ListMultipartUploadsOutput, ListMultipartUploadsParams};
use crate::ops::list_objects_v2::{ListObjectsV2Output, ListObjectsV2Params, ObjectSummary};
use crate::ops::put_object::PutObjectOutput;
use crate::ops::{
    ETag, EtagQuoting, ObjectMeta, PayloadSha256, PutMode, S3Request, abort_multipart_upload,
    complete_multipart_upload, copy_object, create_bucket, create_multipart_upload, delete_object,
    delete_objects, head_bucket, head_object, list_multipart_uploads, list_objects_v2, put_object,
    upload_part,
};
use crate::retry::{self, Certainty, RetryPolicy};
use crate::runtime::Runtime;
use crate::settings::{ClientConfig, ClientSettings, Protocol};
use crate::signing::{PayloadHash, sign_request};
use crate::transport;
use crate::xml;

/// Largest XML answer we read (a ListObjectsV2 page of 1000 long keys is about 1 MiB).
const MAX_XML_BODY: usize = 16 << 20;
/// Largest error body we read.
const MAX_ERROR_BODY: usize = 64 << 10;
/// Hash bodies larger than this on the blocking pool rather than on an async worker.
const HASH_INLINE_LIMIT: usize = 256 << 10;

/// Options that are not `s3.client.*` settings: injected runtime and programmatic knobs.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ClientOptions {
    /// Clock, sleeper and jitter.
    pub runtime: Runtime,
    /// Overrides the retry policy (its `max_retries` wins over the setting).
    pub retry: Option<RetryPolicy>,
    /// Send `UNSIGNED-PAYLOAD` over HTTPS instead of hashing the body. Never over plain
    /// HTTP, where the signed hash is the only integrity check.
    pub unsigned_payload_over_https: bool,
}

impl ClientOptions {
    /// Options with this runtime.
    #[must_use]
    pub fn with_runtime(mut self, runtime: Runtime) -> ClientOptions {
        self.runtime = runtime;
        self
    }

    /// Options with this retry policy.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> ClientOptions {
        self.retry = Some(retry);
        self
    }
}

/// Everything a request needs that a reload may replace. Requests take an `Arc` of it at
/// start, so in-flight requests finish on the state they started with.
struct ClientState {
    settings: ClientSettings,
    endpoint: Endpoint,
    http: reqwest::Client,
    credentials: Result<(Credentials, CredentialSource), String>,
    retry: RetryPolicy,
}

impl ClientState {
    fn build(
        config: &ClientConfig,
        env: &Environment,
        options: &ClientOptions,
    ) -> Result<ClientState, Error> {
        let settings = config.settings.clone();
        let endpoint = Endpoint::resolve(&settings)?;
        let http = transport::http_client(&config.name, &settings, &config.secure, env)?;
        let credentials =
            credentials::resolve(&config.name, config.secure.credentials.as_ref(), env);
        match &credentials {
            Ok((_, source)) => {
                tracing::debug!(client = %config.name, ?source, "s3 credentials resolved");
            }
            Err(why) => {
                tracing::debug!(client = %config.name, why, "s3 client has no credentials yet");
            }
        }
        let retry = options
            .retry
            .unwrap_or_else(|| RetryPolicy::standard(settings.max_retries));
        Ok(ClientState {
            settings,
            endpoint,
            http,
            credentials,
            retry,
        })
    }
}

struct Inner {
    name: String,
    state: ArcSwap<ClientState>,
    /// Per-bucket region learnt from the server's redirects. The empty key holds the region
    /// learnt for a non-AWS endpoint as a whole: such servers (Garage, Ceph, MinIO) have one
    /// region for all buckets, so one correction serves every bucket.
    regions: Mutex<HashMap<String, String>>,
    limiter: Arc<Limiter>,
    meter: Meter,
    options: ClientOptions,
    unquoted_etags: AtomicBool,
}

/// A named S3 client. Cheap to clone (an `Arc`); all clones share state, counters and the
/// adaptive concurrency limit.
#[derive(Clone)]
pub struct S3Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for S3Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.inner.state.load();
        f.debug_struct("S3Client")
            .field("name", &self.inner.name)
            .field("endpoint", &state.endpoint.origin())
            .field("region", &state.endpoint.region)
            .finish_non_exhaustive()
    }
}

/// A successful (2xx) HTTP answer, handed to an operation's parser.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) response: reqwest::Response,
    pub(crate) permit: Permit,
    pub(crate) context: RequestContext,
    pub(crate) client: S3Client,
}

impl Answer {
    /// Reads the whole body (bounded), counting bytes.
    pub(crate) async fn read_body(mut self, limit: usize) -> Result<(Bytes, Answer2), Failure> {
        let mut buf = BytesMut::new();
        loop {
            match self.response.chunk().await {
                Ok(Some(chunk)) => {
                    self.client
                        .inner
                        .meter
                        .received(self.context.operation, chunk.len() as u64);
                    if buf.len() + chunk.len() > limit {
                        return Err(Failure::protocol(
                            &self.context,
                            format!("answer body exceeds {limit} bytes"),
                        ));
                    }
                    buf.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(Failure::transport(&e, &self.context)),
            }
        }
        Ok((
            buf.freeze(),
            Answer2 {
                status: self.status,
                headers: self.headers,
                context: self.context,
            },
        ))
    }
}

/// The parts of an answer left after its body was read.
pub(crate) struct Answer2 {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) context: RequestContext,
}

/// A failed attempt, with what the retry decision needs.
pub(crate) struct Failure {
    pub(crate) error: Error,
    pub(crate) certainty: Certainty,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) region_hint: Option<String>,
}

impl Failure {
    pub(crate) fn protocol(ctx: &RequestContext, message: impl Into<String>) -> Failure {
        Failure {
            error: Error::protocol(ctx, message),
            certainty: Certainty::Answered,
            retry_after: None,
            region_hint: None,
        }
    }

    pub(crate) fn transport(e: &reqwest::Error, ctx: &RequestContext) -> Failure {
        let message = transport::chain_message(e);
        let context = Box::new(ctx.clone());
        let (error, certainty) = if transport::is_tls_error(e) {
            (Error::Tls { context, message }, Certainty::NotSent)
        } else if e.is_connect() {
            (Error::Connect { context, message }, Certainty::NotSent)
        } else if e.is_timeout() {
            (Error::Timeout { context, message }, Certainty::Ambiguous)
        } else {
            (
                Error::ConnectionLost { context, message },
                Certainty::Ambiguous,
            )
        };
        Failure {
            error,
            certainty,
            retry_after: None,
            region_hint: None,
        }
    }

    /// An S3 error answer (any status, including a 200 whose body is `<Error>`).
    pub(crate) fn from_answer(
        ctx: &RequestContext,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
        region: &str,
        now: std::time::SystemTime,
    ) -> Failure {
        let parsed = xml::parse_error(body);
        let hdr = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let failure = S3Failure {
            operation: ctx.operation,
            bucket: ctx.bucket.clone(),
            key: ctx.key.clone(),
            status,
            code: parsed.as_ref().map(|p| p.code.clone()).unwrap_or_default(),
            message: parsed
                .as_ref()
                .map_or_else(|| bare_status_hint(status), |p| p.message.clone()),
            request_id: parsed
                .as_ref()
                .and_then(|p| p.request_id.clone())
                .or_else(|| hdr("x-amz-request-id")),
            host_id: parsed
                .as_ref()
                .and_then(|p| p.host_id.clone())
                .or_else(|| hdr("x-amz-id-2")),
        };
        let region_hint = endpoint::region_hint(status, headers, parsed.as_ref(), region);
        let kind = classify(status, &failure.code, ctx.operation);
        let named_region = region_hint.clone().or_else(|| {
            headers
                .get("x-amz-bucket-region")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        });
        Failure {
            error: from_failure(kind, failure, named_region),
            certainty: Certainty::Answered,
            retry_after: retry::parse_retry_after(hdr("retry-after").as_deref(), now),
            region_hint,
        }
    }
}

fn protocol_err(ctx: &RequestContext) -> impl Fn(String) -> Failure + '_ {
    move |m| Failure::protocol(ctx, m)
}

/// What an answer without an error body (HEAD) most likely means, for operators.
fn bare_status_hint(status: u16) -> String {
    match status {
        403 => "access denied (the answer carries no S3 error code, as for every HEAD): check \
                the access key, the secret key, the clock and the bucket policy"
            .to_owned(),
        400 => "bad request (the answer carries no S3 error code, as for every HEAD): check \
                the region and the endpoint"
            .to_owned(),
        301 | 307 => "the bucket is served from another endpoint or region".to_owned(),
        _ => String::new(),
    }
}

fn hex_md5(body: &[u8]) -> String {
    hex::encode(Md5::digest(body))
}

impl S3Client {
    /// Builds a client. Fails on a bad endpoint, CA bundle or proxy. Missing credentials are
    /// not an error here (the `default` client always exists); requests then fail with
    /// [`Error::InvalidConfig`] saying where credentials were looked for.
    pub fn new(
        config: &ClientConfig,
        env: &Environment,
        options: ClientOptions,
    ) -> Result<S3Client, Error> {
        let state = ClientState::build(config, env, &options)?;
        let limiter = Limiter::new(state.settings.max_connections);
        Ok(S3Client {
            inner: Arc::new(Inner {
                name: config.name.clone(),
                state: ArcSwap::from_pointee(state),
                regions: Mutex::new(HashMap::new()),
                limiter,
                meter: Meter::default(),
                options,
                unquoted_etags: AtomicBool::new(false),
            }),
        })
    }

    /// Validates a new configuration and swaps it in atomically. Requests already running
    /// finish with the old settings and credentials; later ones use the new.
    pub fn reload(&self, config: &ClientConfig, env: &Environment) -> Result<(), Error> {
        let state = ClientState::build(config, env, &self.inner.options)?;
        self.swap(state);
        Ok(())
    }

    fn swap(&self, state: ClientState) {
        let endpoint_changed = self.inner.state.load().endpoint != state.endpoint;
        self.inner.state.store(Arc::new(state));
        if endpoint_changed {
            self.inner
                .regions
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
        }
    }

    /// The client's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The settings in use.
    pub fn settings(&self) -> ClientSettings {
        self.inner.state.load().settings.clone()
    }

    /// Where the credentials in use come from, or why there are none.
    pub fn credential_source(&self) -> Result<CredentialSource, String> {
        self.inner
            .state
            .load()
            .credentials
            .as_ref()
            .map(|(_, s)| s.clone())
            .map_err(Clone::clone)
    }

    /// The region requests on `bucket` are signed for (after any self-correction).
    pub fn region_for(&self, bucket: &str) -> String {
        let state = self.inner.state.load();
        self.region_with(&state, bucket)
    }

    fn region_with(&self, state: &ClientState, bucket: &str) -> String {
        let regions = self
            .inner
            .regions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        regions
            .get(bucket)
            .or_else(|| regions.get(""))
            .cloned()
            .unwrap_or_else(|| state.endpoint.region.clone())
    }

    /// Sends `If-Match` ETags unquoted (Ceph radosgw 16) or quoted (default). The
    /// repository's verify probe decides.
    pub fn set_etag_quoting(&self, quoting: EtagQuoting) {
        self.inner
            .unquoted_etags
            .store(quoting == EtagQuoting::Unquoted, Ordering::Relaxed);
    }

    pub(crate) fn quoting(&self) -> EtagQuoting {
        if self.inner.unquoted_etags.load(Ordering::Relaxed) {
            EtagQuoting::Unquoted
        } else {
            EtagQuoting::Quoted
        }
    }

    /// A snapshot of the counters.
    pub fn metering(&self) -> MeteringSnapshot {
        self.inner
            .meter
            .snapshot(self.inner.limiter.limit(), self.inner.limiter.in_flight())
    }

    pub(crate) fn meter(&self) -> &Meter {
        &self.inner.meter
    }

    pub(crate) fn runtime(&self) -> &Runtime {
        &self.inner.options.runtime
    }

    pub(crate) fn retry_policy(&self) -> RetryPolicy {
        self.inner.state.load().retry
    }

    async fn payload_hash(&self, state: &ClientState, req: &S3Request) -> PayloadHash {
        let body = &req.body;
        // Known already (the body is content-addressed by it): signing it is free, and
        // better than UNSIGNED-PAYLOAD even over TLS.
        if let Some(sha256) = &req.payload_sha256 {
            return PayloadHash::Sha256(sha256.to_hex());
        }
        if self.inner.options.unsigned_payload_over_https
            && state.endpoint.scheme == Protocol::Https
            && !body.is_empty()
        {
            return PayloadHash::Unsigned;
        }
        if body.len() <= HASH_INLINE_LIMIT {
            return PayloadHash::of(body);
        }
        let b = body.clone();
        match tokio::task::spawn_blocking(move || PayloadHash::of(&b)).await {
            Ok(h) => h,
            Err(_) => PayloadHash::of(body),
        }
    }

    fn context(req: &S3Request, state: &ClientState) -> RequestContext {
        RequestContext {
            operation: req.operation,
            bucket: req.bucket.clone(),
            key: req.key.clone(),
            endpoint: state.endpoint.origin(),
        }
    }

    async fn attempt(
        &self,
        state: &ClientState,
        credentials: &Credentials,
        req: &S3Request,
        payload: &PayloadHash,
        region: &str,
        permit: Permit,
    ) -> Result<Answer, Failure> {
        let ctx = Self::context(req, state);
        let addr = state
            .endpoint
            .address(region, &req.bucket, req.key.as_deref(), &req.query);
        let mut headers = req.headers.clone();
        let host = HeaderValue::from_str(&addr.host)
            .map_err(|_| Failure::protocol(&ctx, format!("invalid host [{}]", addr.host)))?;
        headers.insert(http::header::HOST, host);
        let time = self.inner.options.runtime.clock.now();
        let signed = sign_request(
            req.method.as_str(),
            &addr.url,
            &headers,
            payload,
            credentials,
            region,
            time,
        )
        .map_err(|m| Failure {
            error: Error::InvalidRequest { message: m },
            certainty: Certainty::NotSent,
            retry_after: None,
            region_hint: None,
        })?;
        for (name, value) in signed {
            let v = HeaderValue::from_str(&value)
                .map_err(|_| Failure::protocol(&ctx, format!("unsendable {name} header")))?;
            headers.insert(name, v);
        }
        // hyper omits `Content-Length: 0` for an empty body, and S3 answers a PUT or POST
        // without it with 411 MissingContentLength.
        if matches!(req.method, http::Method::PUT | http::Method::POST) {
            headers.insert(
                http::header::CONTENT_LENGTH,
                HeaderValue::from(req.body.len()),
            );
        }
        self.inner.meter.sent(req.operation, req.body.len() as u64);
        let response = state
            .http
            .request(req.method.clone(), &addr.url)
            .headers(headers)
            .body(req.body.clone())
            .send()
            .await
            .map_err(|e| Failure::transport(&e, &ctx))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        if (200..300).contains(&status) {
            return Ok(Answer {
                status,
                headers,
                response,
                permit,
                context: ctx,
                client: self.clone(),
            });
        }
        let answer = Answer {
            status,
            headers: headers.clone(),
            response,
            permit,
            context: ctx.clone(),
            client: self.clone(),
        };
        // A lost error body is no reason to lose the status: classify on what we have.
        let body = match answer.read_body(MAX_ERROR_BODY).await {
            Ok((b, _)) => b,
            Err(_) => Bytes::new(),
        };
        let now = self.inner.options.runtime.clock.now();
        Err(Failure::from_answer(
            &ctx, status, &headers, &body, region, now,
        ))
    }

    /// Runs a request to completion: retries, region self-correction, adaptive
    /// concurrency and metering. Returns whether an attempt failed ambiguously (the
    /// request may have taken effect), which conditional writes use to recognise their
    /// own earlier success.
    pub(crate) async fn execute_tracked<T, F, Fut>(
        &self,
        req: &S3Request,
        mut handle: F,
    ) -> (Result<T, Error>, bool)
    where
        F: FnMut(Answer) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let state = self.inner.state.load_full();
        let credentials = match &state.credentials {
            Ok((c, _)) => c,
            Err(why) => return (Err(Error::config(why.clone())), false),
        };
        let payload = self.payload_hash(&state, req).await;
        let op = req.operation;
        let mut retries = 0u32;
        let mut corrected = false;
        let mut ambiguous = false;
        loop {
            let region = self.region_with(&state, &req.bucket);
            let permit = self.inner.limiter.acquire().await;
            let generation = permit.generation();
            let result = match self
                .attempt(&state, credentials, req, &payload, &region, permit)
                .await
            {
                Ok(answer) => handle(answer).await,
                Err(f) => Err(f),
            };
            let failure = match result {
                Ok(v) => {
                    self.inner.meter.record(op, Outcome::Success);
                    self.inner.limiter.on_success();
                    return (Ok(v), ambiguous);
                }
                Err(f) => f,
            };
            let kind = failure.error.kind();
            self.inner.meter.record(op, Outcome::from_kind(kind));
            if kind == ErrorKind::Throttled {
                self.inner.limiter.on_throttle(generation);
            }
            if failure.certainty == Certainty::Ambiguous {
                ambiguous = true;
            }
            let mut failure = failure;
            if failure.region_hint.is_none()
                && !corrected
                && req.method == http::Method::HEAD
                && failure.error.status() == Some(400)
                && failure
                    .error
                    .s3_failure()
                    .is_some_and(|f| f.code.is_empty())
            {
                // A HEAD answer has no body, and some servers (Garage) send no
                // x-amz-bucket-region either: ask a GET what the region is.
                failure.region_hint = self
                    .probe_region(&state, credentials, &req.bucket, &region)
                    .await;
            }
            if let Some(hint) = failure.region_hint.clone() {
                if !corrected {
                    corrected = true;
                    tracing::warn!(
                        client = %self.inner.name, bucket = %req.bucket, from = %region, to = %hint,
                        "S3 says the bucket is in another region; switching the signing region for it"
                    );
                    {
                        let mut regions = self
                            .inner
                            .regions
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner);
                        if !state.endpoint.aws_regional {
                            regions.insert(String::new(), hint.clone());
                        }
                        regions.insert(req.bucket.clone(), hint);
                    }
                    self.inner.meter.retry(op);
                    continue;
                }
                let error = match failure.error.s3_failure() {
                    Some(f) => Error::WrongRegion {
                        expected: hint,
                        failure: Box::new(f.clone()),
                    },
                    None => failure.error,
                };
                return (Err(error), ambiguous);
            }
            let unit = self.inner.options.runtime.jitter.unit();
            match retry::decide(
                &state.retry,
                retries,
                kind,
                failure.certainty,
                req.idempotency,
                failure.retry_after,
                unit,
            ) {
                Some(delay) => {
                    retries += 1;
                    self.inner.meter.retry(op);
                    tracing::debug!(client = %self.inner.name, error = %failure.error, ?delay, retries, "retrying S3 request");
                    self.inner.options.runtime.sleeper.sleep(delay).await;
                }
                None => return (Err(failure.error), ambiguous),
            }
        }
    }

    /// Sends `GET /<bucket>?location` once, signed for `region`, and returns the region its
    /// error answer names, if any. Used when a bare 400 to a HEAD hides a region mismatch.
    async fn probe_region(
        &self,
        state: &ClientState,
        credentials: &Credentials,
        bucket: &str,
        region: &str,
    ) -> Option<String> {
        let probe = S3Request::new(crate::ops::Operation::HeadBucket, http::Method::GET, bucket)
            .query("location", "");
        let payload = PayloadHash::of(&[]);
        let permit = self.inner.limiter.acquire().await;
        match self
            .attempt(state, credentials, &probe, &payload, region, permit)
            .await
        {
            Ok(_) => None,
            Err(f) => f.region_hint,
        }
    }

    pub(crate) async fn execute<T, F, Fut>(&self, req: &S3Request, handle: F) -> Result<T, Error>
    where
        F: FnMut(Answer) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        self.execute_tracked(req, handle).await.0
    }

    /// Reads an XML body, turning a 200 whose body is `<Error>` into the error it carries.
    pub(crate) async fn read_xml(
        answer: Answer,
        region: String,
    ) -> Result<(Bytes, Answer2), Failure> {
        let now = answer.client.inner.options.runtime.clock.now();
        let (body, rest) = answer.read_body(MAX_XML_BODY).await?;
        if xml::root_element(&body).as_deref() == Some("Error") {
            return Err(Failure::from_answer(
                &rest.context,
                rest.status,
                &rest.headers,
                &body,
                &region,
                now,
            ));
        }
        Ok((body, rest))
    }

    // ---------------------------------------------------------------- operations

    /// PutObject of an in-memory body. With [`PutMode::Create`] or [`PutMode::Update`], a
    /// 412 after an attempt whose outcome was unknown is checked against the object: if it
    /// now holds exactly our bytes (ETag = MD5 of the body), our earlier attempt won and
    /// this is a success.
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        mode: &PutMode,
    ) -> Result<PutObjectOutput, Error> {
        self.put_object_inner(bucket, key, body, mode, None).await
    }

    /// [`put_object`](Self::put_object) of a body whose SHA-256 the caller already knows
    /// (a content-addressed blob is named by it): the request is signed with `sha256`
    /// instead of hashing the body again, which on a snapshot saves one full SHA-256 pass
    /// over every uploaded byte. The server checks the signed hash against the bytes it
    /// receives, so a wrong `sha256` fails the request (`XAmzContentSHA256Mismatch`, not
    /// retried) rather than storing anything.
    pub async fn put_object_with_sha256(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        mode: &PutMode,
        sha256: PayloadSha256,
    ) -> Result<PutObjectOutput, Error> {
        self.put_object_inner(bucket, key, body, mode, Some(sha256))
            .await
    }

    async fn put_object_inner(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        mode: &PutMode,
        sha256: Option<PayloadSha256>,
    ) -> Result<PutObjectOutput, Error> {
        endpoint::validate_bucket(bucket)?;
        endpoint::validate_key(key)?;
        let req = put_object::request(bucket, key, body.clone(), mode, self.quoting())
            .payload_sha256(sha256);
        let (result, ambiguous) = self
            .execute_tracked(&req, |a| async move {
                put_object::parse(&a.headers).map_err(protocol_err(&a.context))
            })
            .await;
        match result {
            Err(Error::PreconditionFailed(f)) if ambiguous && *mode != PutMode::Overwrite => {
                match self.head_object(bucket, key).await {
                    Ok(meta) if meta.etag.as_str() == hex_md5(&body) => {
                        tracing::info!(
                            bucket,
                            key,
                            "conditional PUT replay found our own earlier write"
                        );
                        Ok(PutObjectOutput {
                            etag: meta.etag,
                            version_id: meta.version_id,
                        })
                    }
                    _ => Err(Error::PreconditionFailed(f)),
                }
            }
            other => other,
        }
    }

    /// HeadObject.
    pub async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectMeta, Error> {
        endpoint::validate_bucket(bucket)?;
        endpoint::validate_key(key)?;
        let req = head_object::request(bucket, key);
        self.execute(&req, |a| async move {
            head_object::parse(&a.headers).map_err(protocol_err(&a.context))
        })
        .await
    }

    /// DeleteObject. A missing key is not an error (S3 answers 204).
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), Error> {
        endpoint::validate_bucket(bucket)?;
        endpoint::validate_key(key)?;
        let req = delete_object::request(bucket, key);
        self.execute(&req, |_a| async move { Ok(()) }).await
    }

    /// DeleteObjects, in batches of up to 1000 keys. Per-key failures are returned, not
    /// raised; a request-level failure is an error.
    pub async fn delete_objects(
        &self,
        bucket: &str,
        keys: &[String],
    ) -> Result<DeleteObjectsOutput, Error> {
        endpoint::validate_bucket(bucket)?;
        for k in keys {
            endpoint::validate_key(k)?;
        }
        let mut out = DeleteObjectsOutput::default();
        for batch in keys.chunks(delete_objects::MAX_KEYS) {
            let req = delete_objects::request(bucket, batch)
                .map_err(|message| Error::InvalidRequest { message })?;
            let region = self.region_for(bucket);
            let page = self
                .execute(&req, |a| {
                    let region = region.clone();
                    async move {
                        let (body, rest) = Self::read_xml(a, region).await?;
                        delete_objects::parse(&body).map_err(protocol_err(&rest.context))
                    }
                })
                .await?;
            out.deleted.extend(page.deleted);
            out.errors.extend(page.errors);
        }
        Ok(out)
    }

    /// One page of ListObjectsV2.
    pub async fn list_objects_v2(
        &self,
        bucket: &str,
        params: &ListObjectsV2Params,
    ) -> Result<ListObjectsV2Output, Error> {
        endpoint::validate_bucket(bucket)?;
        let req = list_objects_v2::request(bucket, params);
        let region = self.region_for(bucket);
        self.execute(&req, |a| {
            let region = region.clone();
            async move {
                let (body, rest) = Self::read_xml(a, region).await?;
                list_objects_v2::parse(&body).map_err(protocol_err(&rest.context))
            }
        })
        .await
    }

    /// Every object under `prefix`, following continuation tokens.
    pub async fn list_all(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectSummary>, Error> {
        let mut params = ListObjectsV2Params {
            prefix: Some(prefix.to_owned()).filter(|p| !p.is_empty()),
            ..ListObjectsV2Params::default()
        };
        let mut out = Vec::new();
        loop {
            let page = self.list_objects_v2(bucket, &params).await?;
            out.extend(page.contents);
            match page.next_continuation_token {
                Some(t) if page.is_truncated => params.continuation_token = Some(t),
                _ => return Ok(out),
            }
        }
    }

    /// CreateMultipartUpload; returns the upload id.
    pub async fn create_multipart_upload(&self, bucket: &str, key: &str) -> Result<String, Error> {
        endpoint::validate_bucket(bucket)?;
        endpoint::validate_key(key)?;
        let req = create_multipart_upload::request(bucket, key);
        let region = self.region_for(bucket);
        self.execute(&req, |a| {
            let region = region.clone();
            async move {
                let (body, rest) = Self::read_xml(a, region).await?;
                create_multipart_upload::parse(&body).map_err(protocol_err(&rest.context))
            }
        })
        .await
    }

    /// UploadPart; returns the part's ETag.
    pub async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
    ) -> Result<ETag, Error> {
        endpoint::validate_bucket(bucket)?;
        endpoint::validate_key(key)?;
        if !(1..=10_000).contains(&part_number) {
            return Err(Error::InvalidRequest {
                message: format!("part number {part_number} is outside 1..=10000"),
            });
        }
        let req = upload_part::request(bucket, key, upload_id, part_number, body);
        self.execute(&req, |a| async move {
            upload_part::parse(&a.headers).map_err(protocol_err(&a.context))
        })
        .await
    }

    /// CompleteMultipartUpload, optionally conditional. A 200 whose body is `<Error>` is an
    /// error. If a replay finds the upload gone (`NoSuchUpload`) or the precondition failed
    /// after an attempt with an unknown outcome, the object's ETag is compared with the one
    /// our parts produce: equal means our completion succeeded.
    pub async fn complete_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
        mode: &PutMode,
    ) -> Result<CompleteMultipartUploadOutput, Error> {
        endpoint::validate_bucket(bucket)?;
        endpoint::validate_key(key)?;
        let req =
            complete_multipart_upload::request(bucket, key, upload_id, parts, mode, self.quoting());
        let region = self.region_for(bucket);
        let (result, ambiguous) = self
            .execute_tracked(&req, |a| {
                let region = region.clone();
                async move {
                    let (body, rest) = Self::read_xml(a, region).await?;
                    complete_multipart_upload::parse(&body).map_err(protocol_err(&rest.context))
                }
            })
            .await;
        match result {
            Err(e @ (Error::NotFound(_) | Error::PreconditionFailed(_))) if ambiguous => {
                let expected = complete_multipart_upload::expected_etag(parts);
                match (self.head_object(bucket, key).await, expected) {
                    (Ok(meta), Some(want)) if meta.etag == want => {
                        tracing::info!(
                            bucket,
                            key,
                            "replayed completion found our own completed upload"
                        );
                        Ok(CompleteMultipartUploadOutput {
                            etag: meta.etag,
                            location: None,
                        })
                    }
                    _ => Err(e),
                }
            }
            // Ceph radosgw 16 answers `<ETag></ETag>`: the ETag our parts produce is the one
            // it stores (MD5 of part MD5s), else ask the object.
            Ok(out) if out.etag.as_str().is_empty() => {
                let etag = match complete_multipart_upload::expected_etag(parts) {
                    Some(etag) => etag,
                    None => self.head_object(bucket, key).await?.etag,
                };
                Ok(CompleteMultipartUploadOutput { etag, ..out })
            }
            other => other,
        }
    }

    /// AbortMultipartUpload. An upload already gone counts as aborted.
    pub async fn abort_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), Error> {
        endpoint::validate_bucket(bucket)?;
        endpoint::validate_key(key)?;
        let req = abort_multipart_upload::request(bucket, key, upload_id);
        match self.execute(&req, |_a| async move { Ok(()) }).await {
            Err(Error::NotFound(_)) | Ok(()) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// One page of ListMultipartUploads.
    pub async fn list_multipart_uploads(
        &self,
        bucket: &str,
        params: &ListMultipartUploadsParams,
    ) -> Result<ListMultipartUploadsOutput, Error> {
        endpoint::validate_bucket(bucket)?;
        let req = list_multipart_uploads::request(bucket, params);
        let region = self.region_for(bucket);
        self.execute(&req, |a| {
            let region = region.clone();
            async move {
                let (body, rest) = Self::read_xml(a, region).await?;
                list_multipart_uploads::parse(&body).map_err(protocol_err(&rest.context))
            }
        })
        .await
    }

    /// CopyObject (server-side). A 200 whose body is `<Error>` is an error.
    pub async fn copy_object(
        &self,
        source_bucket: &str,
        source_key: &str,
        bucket: &str,
        key: &str,
    ) -> Result<CopyObjectOutput, Error> {
        endpoint::validate_bucket(source_bucket)?;
        endpoint::validate_key(source_key)?;
        endpoint::validate_bucket(bucket)?;
        endpoint::validate_key(key)?;
        let req = copy_object::request(bucket, key, source_bucket, source_key);
        let region = self.region_for(bucket);
        self.execute(&req, |a| {
            let region = region.clone();
            async move {
                let (body, rest) = Self::read_xml(a, region).await?;
                copy_object::parse(&body).map_err(protocol_err(&rest.context))
            }
        })
        .await
    }

    /// HeadBucket: `Ok` if the bucket exists and the credentials may use it.
    pub async fn head_bucket(&self, bucket: &str) -> Result<HeadBucketOutput, Error> {
        endpoint::validate_bucket(bucket)?;
        let req = head_bucket::request(bucket);
        self.execute(&req, |a| async move { Ok(head_bucket::parse(&a.headers)) })
            .await
    }

    /// CreateBucket in the client's region for this bucket.
    pub async fn create_bucket(&self, bucket: &str) -> Result<(), Error> {
        endpoint::validate_bucket(bucket)?;
        let region = self.region_for(bucket);
        let req = create_bucket::request(bucket, &region);
        let result = self.execute(&req, |_a| async move { Ok(()) }).await;
        // The body names the region: after a self-correction it must be rebuilt.
        let corrected = self.region_for(bucket);
        match result {
            Err(_) if corrected != region => {
                let req = create_bucket::request(bucket, &corrected);
                self.execute(&req, |_a| async move { Ok(()) }).await
            }
            other => other,
        }
    }
}

/// Builds the error context of a request that has not been sent (upload source failures).
pub(crate) fn local_context(
    client: &S3Client,
    op: crate::ops::Operation,
    bucket: &str,
    key: &str,
) -> RequestContext {
    RequestContext {
        operation: op,
        bucket: bucket.to_owned(),
        key: Some(key.to_owned()),
        endpoint: client.inner.state.load().endpoint.origin(),
    }
}
