//! An in-process fake S3 server for tests, with independent SigV4 verification, atomic
//! conditional writes, scriptable fault injection and a request log.
//!
//! It listens on `127.0.0.1:0` on the current tokio runtime and stops when its [`FakeS3`]
//! handle is dropped (or [`FakeS3::shutdown`] is awaited). Its structure follows Garage's S3
//! API: a pure request router ([`Endpoint::from_request`]), a SigV4 verifier written from the
//! specification ([`sigv4`]), an error type that knows its AWS code, status and XML body
//! ([`S3Error`]), and one handler module per operation family.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::time::Duration;
//! use coffer_testfixtures::fake_s3::{FakeS3, FakeS3Config, FaultAction, FaultRule, Operation};
//!
//! let fake = FakeS3::start(FakeS3Config::default().bucket("snapshots")).await?;
//! // The next two PutObject requests under "indices/" get 503 SlowDown with Retry-After: 1.
//! let rule = fake.inject(
//!     FaultRule::new(FaultAction::SlowDown { retry_after: Some(Duration::from_secs(1)) })
//!         .operation(Operation::PutObject)
//!         .key_prefix("indices/")
//!         .times(2),
//! );
//! // … run the code under test against fake.endpoint(), fake.region(), fake.access_key() …
//! assert_eq!(fake.fault_hits(rule), 2);
//! let puts = fake.requests(Operation::PutObject);
//! assert!(puts.iter().all(|e| e.header("content-md5").is_some()));
//! # Ok(()) }
//! ```
//!
//! Semantics worth knowing:
//! * Requests are authenticated before fault rules are evaluated, so only well-signed requests
//!   consume a rule's count.
//! * Conditional writes (`If-None-Match: *`, `If-Match`) on PutObject, CopyObject,
//!   CompleteMultipartUpload and DeleteObject are checked and applied under one lock: exactly
//!   one of many concurrent create-only writers wins. [`ConditionalWrites::Ignore`] makes the
//!   fake ignore them, like Garage.
//! * DeleteObjects requires `Content-MD5` or an `x-amz-checksum-*` header, like AWS.
//! * `encoding-type=url` listings encode a space as `+` (as AWS does): clients must decode
//!   them form-style.
//! * aws-chunked (`STREAMING-*`) payloads and presigned URLs are answered `501 NotImplemented`.

mod body;
mod bucket;
mod checksum;
mod clock;
mod context;
mod error;
mod faults;
mod log;
mod multipart;
mod object;
mod router;
pub mod sigv4;
mod store;
mod xml;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use chrono::TimeDelta;
use http::{HeaderName, HeaderValue, Method, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

pub use self::clock::{Clock, ManualClock, SystemClock};
pub use self::error::{ErrorCode, S3Error};
pub use self::faults::{FaultAction, FaultId, FaultRule, Trigger};
pub use self::log::{LOGGED_HEADERS, LogEntry, Outcome};
pub use self::router::{Endpoint, ListParams, ListUploadsParams, Operation};
pub use self::sigv4::Credential;
pub use self::store::Object;

use self::body::{ConnStream, ResponseBody};
use self::context::{Ctx, Request, S3Response};
use self::faults::FaultTable;
use self::store::{Store, WriteCondition};
use crate::S3Target;
use crate::raw_s3::RawS3;

/// Access key of the default credential.
pub const DEFAULT_ACCESS_KEY: &str = "FAKES3ACCESSKEY00001";
/// Secret key of the default credential.
pub const DEFAULT_SECRET_KEY: &str = "fake-s3-secret-access-key-0000000000000001";
/// The bucket a default configuration creates.
pub const DEFAULT_BUCKET: &str = "test-bucket";

/// Whether the fake honours conditional-write headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ConditionalWrites {
    /// Check `If-None-Match: *` and `If-Match` atomically, like AWS and Ceph.
    #[default]
    Enforce,
    /// Ignore them and overwrite, like Garage 2.5.
    Ignore,
}

/// How to start a fake.
#[derive(Debug, Clone)]
pub struct FakeS3Config {
    /// The region requests must be signed for (default `us-east-1`).
    pub region: String,
    /// Accepted credentials (default: [`DEFAULT_ACCESS_KEY`] / [`DEFAULT_SECRET_KEY`]).
    pub credentials: Vec<Credential>,
    /// Buckets created at start (default: [`DEFAULT_BUCKET`]).
    pub buckets: Vec<String>,
    /// The server's clock (default: the system clock).
    pub clock: Arc<dyn Clock>,
    /// Largest accepted difference between a request's time and the clock (default 15 min).
    pub max_skew: Duration,
    /// Minimum size of a non-final multipart part (default 5 MiB, as AWS).
    pub min_part_size: u64,
    /// Seed of the rng behind probabilistic faults.
    pub seed: u64,
    /// Domain for virtual-hosted addressing: `Host: <bucket>.<suffix>` selects the bucket
    /// (default `localhost`).
    pub virtual_host_suffix: Option<String>,
    /// Conditional-write behaviour.
    pub conditional_writes: ConditionalWrites,
}

impl Default for FakeS3Config {
    fn default() -> Self {
        Self {
            region: "us-east-1".to_owned(),
            credentials: vec![Credential {
                access_key: DEFAULT_ACCESS_KEY.to_owned(),
                secret_key: SecretString::from(DEFAULT_SECRET_KEY.to_owned()),
                session_token: None,
            }],
            buckets: vec![DEFAULT_BUCKET.to_owned()],
            clock: Arc::new(SystemClock),
            max_skew: Duration::from_secs(15 * 60),
            min_part_size: 5 * 1024 * 1024,
            seed: 0x5EED,
            virtual_host_suffix: Some("localhost".to_owned()),
            conditional_writes: ConditionalWrites::Enforce,
        }
    }
}

impl FakeS3Config {
    /// Sets the region.
    #[must_use]
    pub fn region(mut self, region: &str) -> Self {
        region.clone_into(&mut self.region);
        self
    }

    /// Adds an accepted credential.
    #[must_use]
    pub fn credential(mut self, access_key: &str, secret_key: &str) -> Self {
        self.credentials.push(Credential {
            access_key: access_key.to_owned(),
            secret_key: SecretString::from(secret_key.to_owned()),
            session_token: None,
        });
        self
    }

    /// Adds a bucket created at start.
    #[must_use]
    pub fn bucket(mut self, name: &str) -> Self {
        self.buckets.push(name.to_owned());
        self
    }

    /// Starts without any bucket.
    #[must_use]
    pub fn no_buckets(mut self) -> Self {
        self.buckets.clear();
        self
    }

    /// Sets the clock.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the allowed clock skew.
    #[must_use]
    pub fn max_skew(mut self, skew: Duration) -> Self {
        self.max_skew = skew;
        self
    }

    /// Sets the minimum size of non-final parts (0 disables the check, like Garage).
    #[must_use]
    pub fn min_part_size(mut self, bytes: u64) -> Self {
        self.min_part_size = bytes;
        self
    }

    /// Sets the fault rng seed.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the conditional-write behaviour.
    #[must_use]
    pub fn conditional_writes(mut self, mode: ConditionalWrites) -> Self {
        self.conditional_writes = mode;
        self
    }

    /// Sets (or with `None`, disables) the virtual-hosted domain.
    #[must_use]
    pub fn virtual_host_suffix(mut self, suffix: Option<&str>) -> Self {
        self.virtual_host_suffix = suffix.map(str::to_owned);
        self
    }
}

/// Settings fixed for the life of a server.
#[derive(Debug)]
pub(crate) struct Settings {
    pub region: String,
    pub credentials: BTreeMap<String, Credential>,
    pub max_skew: TimeDelta,
    pub min_part_size: u64,
    pub virtual_host_suffix: Option<String>,
}

/// Shared server state.
#[derive(Debug)]
pub(crate) struct State {
    pub config: Settings,
    pub endpoint: String,
    clock: Arc<dyn Clock>,
    store: Mutex<Store>,
    faults: Mutex<FaultTable>,
    log: Mutex<Vec<LogEntry>>,
    seq: AtomicU64,
    enforce_conditions: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not hide the fake's state from the next assertion.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl State {
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    pub(crate) fn enforces_conditions(&self) -> bool {
        self.enforce_conditions.load(Ordering::SeqCst)
    }
}

/// A running fake S3 server. Dropping it stops the server and closes its connections.
#[derive(Debug)]
pub struct FakeS3 {
    state: Arc<State>,
    addr: SocketAddr,
    access_key: String,
    secret_key: SecretString,
    first_bucket: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl FakeS3 {
    /// Starts a fake on `127.0.0.1:<free port>` on the current tokio runtime.
    pub async fn start(config: FakeS3Config) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let endpoint = format!("http://{addr}");
        let now = config.clock.now();
        let mut store = Store::default();
        for bucket in &config.buckets {
            store.create_bucket(bucket, now).map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
            })?;
        }
        let first = config.credentials.first().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "no credential configured")
        })?;
        let access_key = first.access_key.clone();
        let secret_key = first.secret_key.clone();
        let first_bucket = config.buckets.first().cloned();
        let state = Arc::new(State {
            config: Settings {
                region: config.region,
                credentials: config
                    .credentials
                    .into_iter()
                    .map(|c| (c.access_key.clone(), c))
                    .collect(),
                max_skew: TimeDelta::from_std(config.max_skew).unwrap_or(TimeDelta::MAX),
                min_part_size: config.min_part_size,
                virtual_host_suffix: config.virtual_host_suffix,
            },
            endpoint,
            clock: config.clock,
            store: Mutex::new(store),
            faults: Mutex::new(FaultTable::new(config.seed)),
            log: Mutex::new(Vec::new()),
            seq: AtomicU64::new(0),
            enforce_conditions: AtomicBool::new(
                config.conditional_writes == ConditionalWrites::Enforce,
            ),
        });
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(serve(listener, Arc::clone(&state), rx));
        Ok(Self {
            state,
            addr,
            access_key,
            secret_key,
            first_bucket,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// Starts a fake with the default configuration.
    pub async fn start_default() -> std::io::Result<Self> {
        Self::start(FakeS3Config::default()).await
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.state.endpoint
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The region requests must be signed for.
    pub fn region(&self) -> &str {
        &self.state.config.region
    }

    /// The first configured access key.
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// The first configured secret key.
    pub fn secret_key(&self) -> &SecretString {
        &self.secret_key
    }

    /// A [`RawS3`] signed with the first credential for the fake's region.
    pub fn raw_client(&self) -> RawS3 {
        use secrecy::ExposeSecret;
        RawS3::new(
            self.endpoint(),
            self.region(),
            &self.access_key,
            self.secret_key.expose_secret(),
        )
    }

    /// This fake as an [`S3Target`] on the first bucket it was started with (the form every
    /// harness hands out, so conformance tests run unchanged on the fake, Garage and Ceph).
    ///
    /// Panics if the fake was started without buckets; use [`FakeS3::target_for`] then.
    pub fn target(&self) -> S3Target {
        let bucket = self
            .first_bucket
            .as_deref()
            .expect("the fake was started without buckets; use FakeS3::target_for");
        self.target_for(bucket)
    }

    /// This fake as an [`S3Target`] on `bucket`.
    pub fn target_for(&self, bucket: &str) -> S3Target {
        S3Target {
            endpoint: self.endpoint().to_owned(),
            region: self.region().to_owned(),
            bucket: bucket.to_owned(),
            access_key: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
        }
    }

    /// Adds a fault rule; returns its id.
    pub fn inject(&self, rule: FaultRule) -> FaultId {
        lock(&self.state.faults).add(rule)
    }

    /// Disables a fault rule.
    pub fn remove_fault(&self, id: FaultId) {
        lock(&self.state.faults).remove(id);
    }

    /// Disables every fault rule.
    pub fn clear_faults(&self) {
        lock(&self.state.faults).clear();
    }

    /// How many times a rule fired.
    pub fn fault_hits(&self, id: FaultId) -> u32 {
        lock(&self.state.faults).hits(id)
    }

    /// Reseeds the rng behind probabilistic faults.
    pub fn reseed_faults(&self, seed: u64) {
        lock(&self.state.faults).reseed(seed);
    }

    /// Switches conditional-write behaviour at run time.
    pub fn set_conditional_writes(&self, mode: ConditionalWrites) {
        self.state
            .enforce_conditions
            .store(mode == ConditionalWrites::Enforce, Ordering::SeqCst);
    }

    /// A copy of the request log, in arrival order.
    pub fn log(&self) -> Vec<LogEntry> {
        lock(&self.state.log).clone()
    }

    /// Empties the request log.
    pub fn clear_log(&self) {
        lock(&self.state.log).clear();
    }

    /// Logged requests routed to `operation`.
    pub fn requests(&self, operation: Operation) -> Vec<LogEntry> {
        lock(&self.state.log)
            .iter()
            .filter(|e| e.operation == Some(operation))
            .cloned()
            .collect()
    }

    /// How many logged requests were routed to `operation`.
    pub fn count(&self, operation: Operation) -> usize {
        lock(&self.state.log)
            .iter()
            .filter(|e| e.operation == Some(operation))
            .count()
    }

    /// Creates a bucket directly (no request).
    pub fn create_bucket(&self, name: &str) -> Result<(), S3Error> {
        let now = self.state.clock.now();
        self.state.store().create_bucket(name, now)
    }

    /// Stores an object directly (no request, no conditions); returns its ETag.
    pub fn put_object(
        &self,
        bucket: &str,
        key: &str,
        data: impl Into<Bytes>,
    ) -> Result<String, S3Error> {
        let data = data.into();
        let etag = checksum::etag_of(&data);
        let object = Object {
            data,
            etag: etag.clone(),
            last_modified: self.state.clock.now(),
            content_type: object::DEFAULT_CONTENT_TYPE.to_owned(),
            metadata: Vec::new(),
            parts_count: None,
        };
        self.state
            .store()
            .put_object(bucket, key, object, &WriteCondition::default())?;
        Ok(etag)
    }

    /// A stored object (its data is shared, not copied).
    pub fn object(&self, bucket: &str, key: &str) -> Option<Object> {
        self.state.store().object(bucket, key).ok().cloned()
    }

    /// Deletes an object directly; returns whether it existed.
    pub fn delete_object(&self, bucket: &str, key: &str) -> Result<bool, S3Error> {
        self.state
            .store()
            .delete_object(bucket, key, &WriteCondition::default())
    }

    /// All keys of a bucket, in order (empty if the bucket does not exist).
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        self.state
            .store()
            .bucket(bucket)
            .map(|b| b.objects.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// In-progress multipart uploads of a bucket as `(key, upload id)`.
    pub fn multipart_uploads(&self, bucket: &str) -> Vec<(String, String)> {
        self.state
            .store()
            .bucket(bucket)
            .map(|b| b.uploads.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Stops the server and waits for its accept loop to end.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for FakeS3 {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The accept loop. Connections live in a `JoinSet`, so ending the loop aborts them all.
async fn serve(listener: TcpListener, state: Arc<State>, mut shutdown: oneshot::Receiver<()>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let state = Arc::clone(&state);
                connections.spawn(serve_connection(stream, state));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Why a request got no response: the fault asked for a reset.
#[derive(Debug)]
struct ResetConnection;

impl std::fmt::Display for ResetConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset by fault injection")
    }
}

impl std::error::Error for ResetConnection {}

async fn serve_connection(stream: tokio::net::TcpStream, state: Arc<State>) {
    let reset = Arc::new(AtomicBool::new(false));
    let io = TokioIo::new(ConnStream::new(stream, Arc::clone(&reset)));
    let service = service_fn(move |req| {
        let state = Arc::clone(&state);
        let reset = Arc::clone(&reset);
        async move {
            let response = handle(&state, req).await;
            if response.is_err() {
                reset.store(true, Ordering::SeqCst);
            }
            response
        }
    });
    // Errors here are client disconnects, resets we asked for, or truncations: all expected.
    let _ = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service)
        .await;
}

/// What the pipeline decided to send.
enum Reply {
    Ok(S3Response),
    Err(S3Error),
    Reset {
        status: Option<u16>,
    },
    Paced {
        response: S3Response,
        pacing: Pacing,
    },
}

fn request_id(seq: u64) -> String {
    // Looks like AWS's 16 upper-case hex digits and is unique per server.
    format!(
        "{:016X}",
        seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x00FA_CE53
    )
}

async fn handle(
    state: &State,
    req: hyper::Request<Incoming>,
) -> Result<Response<ResponseBody>, ResetConnection> {
    let seq = state.seq.fetch_add(1, Ordering::SeqCst);
    let now = state.clock.now();
    let request_id = request_id(seq);
    let (parts, body) = req.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    let mut entry = LogEntry {
        seq,
        time: now,
        request_id: request_id.clone(),
        operation: None,
        method: parts.method.clone(),
        path_and_query,
        bucket: None,
        key: None,
        access_key: None,
        status: None,
        error_code: None,
        request_bytes: 0,
        response_bytes: 0,
        headers: log::logged_headers(&parts.headers),
        faults: Vec::new(),
        outcome: Outcome::Reset,
    };
    let Ok(collected) = body.collect().await else {
        // The client went away mid-body: nothing to answer.
        lock(&state.log).push(entry);
        return Err(ResetConnection);
    };
    let body = collected.to_bytes();
    entry.request_bytes = body.len() as u64;
    let request = Request {
        method: parts.method.clone(),
        headers: parts.headers.clone(),
        body,
    };
    let reply = process(state, &parts.uri, &request, now, seq, &mut entry).await;
    let head = parts.method == Method::HEAD;
    let host_id = format!("fake-s3/{request_id}");
    let result = match reply {
        Reply::Reset { status } => {
            entry.status = status;
            entry.outcome = Outcome::Reset;
            Err(ResetConnection)
        }
        Reply::Err(err) => {
            entry.status = Some(err.status.as_u16());
            entry.error_code = Some(err.code.as_str().to_owned());
            let xml = err.to_xml(&request_id, &host_id);
            let mut response = S3Response {
                status: err.status,
                headers: vec![("content-type".to_owned(), "application/xml".to_owned())],
                body: if head { Bytes::new() } else { Bytes::from(xml) },
                declared_len: None,
            };
            for (name, value) in &err.headers {
                response.headers.push(((*name).to_owned(), value.clone()));
            }
            entry.response_bytes = response.body.len() as u64;
            entry.outcome = Outcome::Responded;
            Ok(build(response, &request_id, &host_id, None))
        }
        Reply::Ok(response) => {
            entry.status = Some(response.status.as_u16());
            entry.response_bytes = response.declared_len.unwrap_or(response.body.len() as u64);
            entry.outcome = Outcome::Responded;
            Ok(build(response, &request_id, &host_id, None))
        }
        Reply::Paced { response, pacing } => {
            entry.status = Some(response.status.as_u16());
            entry.response_bytes = response.body.len() as u64;
            entry.outcome = match pacing {
                Pacing::Truncate { after } if after < response.body.len() => {
                    Outcome::Truncated { sent: after as u64 }
                }
                _ => Outcome::Responded,
            };
            Ok(build(response, &request_id, &host_id, Some(pacing)))
        }
    };
    lock(&state.log).push(entry);
    result
}

/// Routes, authenticates, applies faults and runs the handler.
async fn process(
    state: &State,
    uri: &http::Uri,
    request: &Request,
    now: chrono::DateTime<chrono::Utc>,
    seq: u64,
    entry: &mut LogEntry,
) -> Reply {
    let host_bucket = state
        .config
        .virtual_host_suffix
        .as_deref()
        .and_then(|suffix| {
            request
                .header("host")
                .and_then(|host| router::host_bucket(host, suffix))
        });
    let routed = Endpoint::from_request(
        &request.method,
        uri.path(),
        uri.query(),
        &request.headers,
        host_bucket,
    );
    if let Ok(endpoint) = &routed {
        entry.operation = Some(endpoint.operation());
        entry.bucket = endpoint.bucket().map(str::to_owned);
        entry.key = endpoint.key().map(str::to_owned);
    }
    let verifier = sigv4::Verifier {
        credentials: &state.config.credentials,
        region: &state.config.region,
        now,
        max_skew: state.config.max_skew,
    };
    let verified = verifier.verify(&sigv4::SignedRequest {
        method: &request.method,
        raw_path: uri.path(),
        raw_query: uri.query(),
        headers: &request.headers,
        body: &request.body,
    });
    let verified = match verified {
        Ok(v) => v,
        Err(err) => return Reply::Err(err),
    };
    entry.access_key = Some(verified.access_key.clone());
    let endpoint = match routed {
        Ok(endpoint) => endpoint,
        Err(err) => return Reply::Err(err),
    };

    let plan = lock(&state.faults).plan(
        Some(endpoint.operation()),
        &request.method,
        endpoint.bucket(),
        endpoint.key(),
    );
    entry.faults.clone_from(&plan.fired);
    if !plan.latency.is_zero() {
        clock::sleep(plan.latency).await;
    }
    let signed_region = request
        .header("authorization")
        .and_then(|a| sigv4::parse_authorization(a).ok())
        .map(|a| a.region)
        .unwrap_or_default();
    match &plan.action {
        Some(FaultAction::Reset) => return Reply::Reset { status: None },
        Some(action) => {
            if let Some(err) = action.error(endpoint.bucket(), &signed_region) {
                if err.status == StatusCode::OK {
                    // A 200 whose body is an <Error> document.
                    let xml = err.to_xml(&request_id(seq), &format!("fake-s3/{}", request_id(seq)));
                    entry.error_code = Some(err.code.as_str().to_owned());
                    return Reply::Ok(S3Response::xml(xml));
                }
                return Reply::Err(err);
            }
        }
        None => {}
    }

    let fail_keys = match &plan.action {
        Some(FaultAction::FailKeys { key_prefix, code }) => Some((key_prefix.clone(), *code)),
        _ => None,
    };
    let ctx = Ctx {
        state,
        req: request,
        now,
        seq,
        fail_keys,
    };
    let result = dispatch(&ctx, &endpoint, &verified.access_key);
    match (plan.action, result) {
        (Some(FaultAction::ResetAfterApply), result) => Reply::Reset {
            status: Some(match &result {
                Ok(r) => r.status.as_u16(),
                Err(e) => e.status.as_u16(),
            }),
        },
        (Some(FaultAction::TruncateBody { after }), Ok(response)) => Reply::Paced {
            response,
            pacing: Pacing::Truncate { after },
        },
        (Some(FaultAction::StallBody { after, stall }), Ok(response)) => Reply::Paced {
            response,
            pacing: Pacing::Stall { after, stall },
        },
        (_, Ok(response)) => Reply::Ok(response),
        (_, Err(err)) => Reply::Err(err),
    }
}

fn dispatch(ctx: &Ctx<'_>, endpoint: &Endpoint, access_key: &str) -> Result<S3Response, S3Error> {
    match endpoint {
        Endpoint::ListBuckets => bucket::list_buckets(ctx, access_key),
        Endpoint::CreateBucket { bucket } => bucket::create(ctx, bucket),
        Endpoint::HeadBucket { bucket } => bucket::head(ctx, bucket),
        Endpoint::DeleteBucket { bucket } => bucket::delete(ctx, bucket),
        Endpoint::GetBucketLocation { bucket } => bucket::location(ctx, bucket),
        Endpoint::ListObjectsV2 { bucket, params } => {
            bucket::list_objects(ctx, bucket, params, true)
        }
        Endpoint::ListObjects { bucket, params } => {
            bucket::list_objects(ctx, bucket, params, false)
        }
        Endpoint::ListMultipartUploads { bucket, params } => {
            multipart::list_uploads(ctx, bucket, params, access_key)
        }
        Endpoint::DeleteObjects { bucket } => object::delete_objects(ctx, bucket),
        Endpoint::PutObject { bucket, key } => object::put_object(ctx, bucket, key),
        Endpoint::CopyObject {
            bucket,
            key,
            source_bucket,
            source_key,
        } => object::copy_object(ctx, bucket, key, source_bucket, source_key),
        Endpoint::GetObject { bucket, key } => object::get_object(ctx, bucket, key, false),
        Endpoint::HeadObject { bucket, key } => object::get_object(ctx, bucket, key, true),
        Endpoint::DeleteObject { bucket, key } => object::delete_object(ctx, bucket, key),
        Endpoint::CreateMultipartUpload { bucket, key } => multipart::create(ctx, bucket, key),
        Endpoint::UploadPart {
            bucket,
            key,
            part_number,
            upload_id,
        } => multipart::upload_part(ctx, bucket, key, *part_number, upload_id),
        Endpoint::CompleteMultipartUpload {
            bucket,
            key,
            upload_id,
        } => multipart::complete(ctx, bucket, key, upload_id),
        Endpoint::AbortMultipartUpload {
            bucket,
            key,
            upload_id,
        } => multipart::abort(ctx, bucket, key, upload_id),
        Endpoint::ListParts {
            bucket,
            key,
            upload_id,
            part_number_marker,
            max_parts,
        } => multipart::list_parts(
            ctx,
            bucket,
            key,
            upload_id,
            *part_number_marker,
            *max_parts,
            access_key,
        ),
    }
}

/// How a faulted body is sent.
#[derive(Debug, Clone, Copy)]
enum Pacing {
    /// The first `after` bytes, then a cut connection.
    Truncate { after: usize },
    /// The first `after` bytes, a pause, then the rest.
    Stall { after: usize, stall: Duration },
}

/// Turns a response into hyper's, adding AWS's request-id headers. A `pacing` sends the full
/// `Content-Length` with the body cut or paused part-way.
fn build(
    response: S3Response,
    request_id: &str,
    host_id: &str,
    pacing: Option<Pacing>,
) -> Response<ResponseBody> {
    let body_len = response.body.len();
    let declared = response.declared_len;
    let (body, paced) = match (pacing, declared) {
        (_, Some(_)) => (ResponseBody::Empty, false),
        (Some(Pacing::Truncate { after }), None) if after < body_len => {
            (ResponseBody::truncated(response.body, after), true)
        }
        (Some(Pacing::Stall { after, stall }), None) => {
            (ResponseBody::stalled(response.body, after, stall), true)
        }
        _ => (ResponseBody::Full(Some(response.body)), false),
    };
    let mut out = Response::new(body);
    *out.status_mut() = response.status;
    let headers = out.headers_mut();
    let mut insert = |name: &str, value: &str| {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(name, value);
        }
    };
    insert("x-amz-request-id", request_id);
    insert("x-amz-id-2", host_id);
    insert("server", "FakeS3");
    for (name, value) in &response.headers {
        insert(name, value);
    }
    if let Some(len) = declared {
        insert("content-length", &len.to_string());
    } else if paced {
        insert("content-length", &body_len.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_is_send_and_sync() {
        fn is<T: Send + Sync>() {}
        is::<FakeS3>();
    }

    #[test]
    fn config_debug_redacts_secrets() {
        let config = FakeS3Config::default().credential("AKIDOTHER", "other-secret-value");
        let printed = format!("{config:?}");
        assert!(printed.contains(DEFAULT_ACCESS_KEY));
        assert!(printed.contains("AKIDOTHER"));
        assert!(!printed.contains(DEFAULT_SECRET_KEY));
        assert!(!printed.contains("other-secret-value"));
    }

    #[test]
    fn request_ids_look_like_aws_and_differ() {
        let a = request_id(0);
        let b = request_id(1);
        assert_eq!(a.len(), 16);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
        );
        assert_ne!(a, b);
    }
}
