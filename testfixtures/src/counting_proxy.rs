//! A counting HTTP/1.1 reverse proxy: it forwards every request to one upstream S3 server
//! unchanged and counts requests per method and the body bytes in each direction.
//!
//! Point a client (coffer, restic, rclone, [`crate::raw_s3::RawS3`]) at
//! [`CountingProxy::endpoint`] instead of the server's endpoint and every tool's requests are
//! measured the same way:
//!
//! ```no_run
//! # async fn demo() -> Result<(), coffer_testfixtures::HarnessError> {
//! use coffer_testfixtures::counting_proxy::CountingProxy;
//! use coffer_testfixtures::garage::Garage;
//!
//! let garage = Garage::start().await?;
//! let upstream = garage.endpoint().trim_start_matches("http://").parse().expect("an address");
//! let proxy = CountingProxy::start(upstream).await?;
//! // … run a client against proxy.endpoint() …
//! let counts = proxy.counts();
//! println!("{} PUTs, {} bytes up", counts.method("PUT"), counts.bytes_up);
//! proxy.reset();
//! # Ok(()) }
//! ```
//!
//! Why it is built this way:
//! * **The `Host` header is forwarded as received.** SigV4 signs it, and the client signed the
//!   proxy's address; the server checks the signature against the header it receives, so it
//!   stays valid. Nothing else is rewritten either (no `Via`, no `X-Forwarded-*`).
//! * **Bodies stream.** Request and response bodies pass frame by frame through a counting
//!   wrapper, never buffered whole: multi-GiB transfers go through it in bounded memory, with
//!   the back-pressure of the two connections.
//! * **One upstream connection per client connection.** HTTP/1.1 handles one request at a
//!   time per connection, so each accepted connection gets its own upstream connection, opened
//!   on its first request and reopened if the server closed it. The client's keep-alive and
//!   concurrency are therefore exactly what the server sees.
//! * Bytes are body bytes (what `Content-Length` measures), not header or framing bytes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper::client::conn::http1 as client_http1;
use hyper::server::conn::http1 as server_http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex as AsyncMutex, oneshot};
use tokio::task::{JoinHandle, JoinSet};

use crate::error::{HarnessError, Result};

/// What went through a [`CountingProxy`] since it started or was last [reset](CountingProxy::reset).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestCounts {
    /// Requests per HTTP method (`GET`, `PUT`, `HEAD`, …), as received.
    pub by_method: BTreeMap<String, u64>,
    /// All requests received.
    pub total: u64,
    /// Responses with a status of 400 or more, and requests the upstream did not answer
    /// (those get 502 from the proxy): retries and failures show up here.
    pub errors: u64,
    /// Body bytes sent by clients (uploads).
    pub bytes_up: u64,
    /// Body bytes sent by the server (downloads).
    pub bytes_down: u64,
    /// Client connections accepted.
    pub connections: u64,
}

impl RequestCounts {
    /// The number of requests with `method` (case-sensitive, as on the wire: `"PUT"`).
    pub fn method(&self, method: &str) -> u64 {
        self.by_method.get(method).copied().unwrap_or(0)
    }
}

/// The live counters, shared by the connection tasks.
#[derive(Debug, Default)]
struct Counters {
    by_method: Mutex<BTreeMap<String, u64>>,
    total: AtomicU64,
    errors: AtomicU64,
    bytes_up: Arc<AtomicU64>,
    bytes_down: Arc<AtomicU64>,
    connections: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> RequestCounts {
        RequestCounts {
            by_method: self
                .by_method
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            total: self.total.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            bytes_up: self.bytes_up.load(Ordering::Relaxed),
            bytes_down: self.bytes_down.load(Ordering::Relaxed),
            connections: self.connections.load(Ordering::Relaxed),
        }
    }

    fn reset(&self) {
        self.by_method
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.total.store(0, Ordering::Relaxed);
        self.errors.store(0, Ordering::Relaxed);
        self.bytes_up.store(0, Ordering::Relaxed);
        self.bytes_down.store(0, Ordering::Relaxed);
        self.connections.store(0, Ordering::Relaxed);
    }

    fn count_request(&self, method: &str) {
        self.total.fetch_add(1, Ordering::Relaxed);
        *self
            .by_method
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(method.to_owned())
            .or_insert(0) += 1;
    }
}

/// A running counting proxy on `127.0.0.1:<free port>`. Dropping it stops the proxy and
/// closes its connections.
#[derive(Debug)]
pub struct CountingProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    counters: Arc<Counters>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl CountingProxy {
    /// Starts a proxy to `upstream` on the current tokio runtime.
    pub async fn start(upstream: SocketAddr) -> Result<CountingProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| HarnessError::io("binding the counting proxy to 127.0.0.1", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| HarnessError::io("reading the counting proxy's address", e))?;
        let counters = Arc::new(Counters::default());
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, upstream, Arc::clone(&counters), rx));
        Ok(CountingProxy {
            addr,
            upstream,
            counters,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:<port>`: the endpoint clients should be configured with.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server requests are forwarded to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// The counts since start or the last [`reset`](Self::reset). Bodies still in flight are
    /// counted up to the bytes forwarded so far.
    pub fn counts(&self) -> RequestCounts {
        self.counters.snapshot()
    }

    /// Sets every counter to zero (open connections stay open).
    pub fn reset(&self) {
        self.counters.reset();
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Accepts client connections until shut down; ending the loop drops the `JoinSet`, which
/// aborts every connection task.
async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    counters: Arc<Counters>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                counters.connections.fetch_add(1, Ordering::Relaxed);
                connections.spawn(serve_client(stream, upstream, Arc::clone(&counters)));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// The upstream connection of one client connection, opened lazily.
struct Upstream {
    addr: SocketAddr,
    sender: Option<client_http1::SendRequest<CountingBody<Incoming>>>,
}

impl Upstream {
    /// A sender ready for the next request, reconnecting if the server closed the last one.
    async fn ready(
        &mut self,
    ) -> std::result::Result<&mut client_http1::SendRequest<CountingBody<Incoming>>, String> {
        if let Some(sender) = &mut self.sender
            && sender.ready().await.is_err()
        {
            self.sender = None;
        }
        if self.sender.is_none() {
            let stream = TcpStream::connect(self.addr)
                .await
                .map_err(|e| format!("connecting to {}: {e}", self.addr))?;
            let _ = stream.set_nodelay(true);
            let (sender, connection) = client_http1::Builder::new()
                .handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("HTTP handshake with {}: {e}", self.addr))?;
            // The connection future drives the socket; it ends when the sender is dropped
            // or the server closes.
            tokio::spawn(async move {
                let _ = connection.await;
            });
            self.sender = Some(sender);
        }
        Ok(self.sender.as_mut().expect("set above"))
    }

    /// Sends one request. A keep-alive connection the server closed while idle is only
    /// noticed when a request is written to it; hyper hands back a request it could not start
    /// sending, which is then sent once more on a fresh connection.
    async fn send(
        &mut self,
        request: hyper::Request<CountingBody<Incoming>>,
    ) -> std::result::Result<hyper::Response<Incoming>, String> {
        let mut request = request;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sender = self.ready().await?;
            match sender.try_send_request(request).await {
                Ok(response) => return Ok(response),
                Err(mut failed) => match failed.take_message() {
                    Some(unsent) if attempt < 2 => {
                        self.sender = None;
                        request = unsent;
                    }
                    _ => {
                        self.sender = None;
                        return Err(format!(
                            "forwarding to {}: {}",
                            self.addr,
                            failed.into_error()
                        ));
                    }
                },
            }
        }
    }
}

async fn serve_client(stream: TcpStream, upstream: SocketAddr, counters: Arc<Counters>) {
    let upstream = Arc::new(AsyncMutex::new(Upstream {
        addr: upstream,
        sender: None,
    }));
    let service = service_fn(move |request: hyper::Request<Incoming>| {
        let upstream = Arc::clone(&upstream);
        let counters = Arc::clone(&counters);
        async move { forward(request, &upstream, &counters).await }
    });
    // Errors here are client disconnects or upstream failures already answered: expected.
    let _ = server_http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn forward(
    request: hyper::Request<Incoming>,
    upstream: &AsyncMutex<Upstream>,
    counters: &Counters,
) -> std::result::Result<hyper::Response<ProxyBody>, std::convert::Infallible> {
    counters.count_request(request.method().as_str());
    let (parts, body) = request.into_parts();
    let request = hyper::Request::from_parts(
        parts,
        CountingBody::new(body, Arc::clone(&counters.bytes_up)),
    );
    // One request at a time per client connection, as HTTP/1.1 serves them: the lock is
    // never contended, it only gives the future mutable access to the connection.
    let mut upstream = upstream.lock().await;
    let sent = upstream.send(request).await;
    drop(upstream);
    match sent {
        Ok(response) => {
            if response.status().as_u16() >= 400 {
                counters.errors.fetch_add(1, Ordering::Relaxed);
            }
            let (parts, body) = response.into_parts();
            let body = CountingBody::new(body, Arc::clone(&counters.bytes_down)).boxed();
            Ok(hyper::Response::from_parts(parts, body))
        }
        Err(message) => {
            counters.errors.fetch_add(1, Ordering::Relaxed);
            let body =
                http_body_util::Full::new(Bytes::from(format!("counting proxy: {message}\n")))
                    .map_err(|never| match never {})
                    .boxed();
            let mut response = hyper::Response::new(body);
            *response.status_mut() = http::StatusCode::BAD_GATEWAY;
            Ok(response)
        }
    }
}

/// A body that adds the length of every data frame it yields to a shared counter.
struct CountingBody<B> {
    inner: B,
    counter: Arc<AtomicU64>,
}

impl<B> CountingBody<B> {
    fn new(inner: B, counter: Arc<AtomicU64>) -> Self {
        Self { inner, counter }
    }
}

impl<B> Body for CountingBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.counter.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        // Passing the hint through keeps `Content-Length` framing on both sides.
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_snapshot_and_reset() {
        let counters = Counters::default();
        counters.count_request("PUT");
        counters.count_request("PUT");
        counters.count_request("GET");
        counters.bytes_up.fetch_add(10, Ordering::Relaxed);
        counters.bytes_down.fetch_add(7, Ordering::Relaxed);
        let counts = counters.snapshot();
        assert_eq!(counts.total, 3);
        assert_eq!(counts.method("PUT"), 2);
        assert_eq!(counts.method("GET"), 1);
        assert_eq!(counts.method("DELETE"), 0);
        assert_eq!((counts.bytes_up, counts.bytes_down), (10, 7));
        counters.reset();
        assert_eq!(counters.snapshot(), RequestCounts::default());
    }

    #[tokio::test]
    async fn counting_body_counts_data_frames() {
        let counter = Arc::new(AtomicU64::new(0));
        let inner = http_body_util::Full::new(Bytes::from_static(b"hello world"));
        let body = CountingBody::new(inner, Arc::clone(&counter));
        assert_eq!(body.size_hint().exact(), Some(11));
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(&collected[..], b"hello world");
        assert_eq!(counter.load(Ordering::Relaxed), 11);
    }
}
