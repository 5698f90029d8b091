//! Transport pieces: the response body (whole, or cut short by a fault) and the connection
//! stream that can be reset instead of closed.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::clock;

/// How long a truncated body waits after its last byte before failing, so the bytes reach the
/// socket before hyper aborts the connection.
const TRUNCATE_GRACE: Duration = Duration::from_millis(50);

/// A response body.
#[derive(Debug)]
pub enum ResponseBody {
    /// The whole body (its length is known to hyper).
    Full(Option<Bytes>),
    /// No bytes, with the length left to the `Content-Length` header (HEAD responses).
    Empty,
    /// A body sent in timed segments, with its length left to the `Content-Length` header:
    /// each segment is sent after its delay; if `fail_at_end`, the body then fails, which makes
    /// hyper close the connection before the promised length was sent.
    Paced {
        /// Segments still to send, each with the delay before it.
        segments: VecDeque<(Duration, Bytes)>,
        /// Whether to fail (cut the connection) after the last segment.
        fail_at_end: bool,
        /// The delay in progress.
        sleeping: Option<Pin<Box<tokio::time::Sleep>>>,
    },
}

impl ResponseBody {
    /// The first `after` bytes of `data`, then a cut connection.
    pub fn truncated(mut data: Bytes, after: usize) -> Self {
        data.truncate(after);
        Self::Paced {
            segments: VecDeque::from([(Duration::ZERO, data), (TRUNCATE_GRACE, Bytes::new())]),
            fail_at_end: true,
            sleeping: None,
        }
    }

    /// The first `after` bytes of `data`, a pause of `stall`, then the rest.
    pub fn stalled(mut data: Bytes, after: usize, stall: Duration) -> Self {
        let rest = data.split_off(after.min(data.len()));
        Self::Paced {
            segments: VecDeque::from([(Duration::ZERO, data), (stall, rest)]),
            fail_at_end: false,
            sleeping: None,
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            Self::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Self::Empty => Poll::Ready(None),
            Self::Paced {
                segments,
                fail_at_end,
                sleeping,
            } => loop {
                if let Some(sleep) = sleeping {
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    *sleeping = None;
                } else if let Some((delay, _)) = segments.front_mut()
                    && !delay.is_zero()
                {
                    *sleeping = Some(Box::pin(clock::sleep(*delay)));
                    *delay = Duration::ZERO;
                    continue;
                }
                match segments.pop_front() {
                    Some((_, data)) if data.is_empty() => {}
                    Some((_, data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                    None if *fail_at_end => {
                        return Poll::Ready(Some(Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            "response body truncated by fault injection",
                        ))));
                    }
                    None => return Poll::Ready(None),
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Full(data) => data.is_none(),
            Self::Empty => true,
            Self::Paced { .. } => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Self::Empty => SizeHint::with_exact(0),
            // Unknown, so that hyper takes the length from our Content-Length header.
            Self::Paced { .. } => SizeHint::default(),
        }
    }
}

/// A TCP stream that sends a reset (RST, via `SO_LINGER` 0) instead of a clean close when
/// `reset` is set by the time it is dropped.
#[derive(Debug)]
pub struct ConnStream {
    inner: TcpStream,
    reset: Arc<AtomicBool>,
}

impl ConnStream {
    /// Wraps an accepted stream; setting `reset` makes the close a reset.
    pub fn new(inner: TcpStream, reset: Arc<AtomicBool>) -> Self {
        Self { inner, reset }
    }
}

impl Drop for ConnStream {
    fn drop(&mut self) {
        if self.reset.load(Ordering::SeqCst) {
            // Best effort: if it fails the close is a FIN, which the client also sees as a
            // connection closed without a response.
            let _ = self.inner.set_zero_linger();
        }
    }
}

impl AsyncRead for ConnStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ConnStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
