//! Streaming GetObject with resumption: when the body breaks off (reset, read timeout,
//! premature end), the rest is requested from the received offset with `If-Match` on the
//! first answer's ETag, so a changed object fails (412) instead of being stitched together.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures::stream::{BoxStream, Stream, StreamExt as _, TryStreamExt as _};

use crate::client::{Failure, S3Client};
use crate::endpoint;
use crate::error::{Error, RequestContext};
use crate::ops::get_object::{self, ByteRange};
use crate::ops::{ETag, ObjectMeta, Operation};
use crate::transport::chain_message;

/// A body streamed to the consumer. Yields the object's bytes in order; an error ends it.
pub struct ByteStream {
    inner: BoxStream<'static, Result<Bytes, Error>>,
}

impl std::fmt::Debug for ByteStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ByteStream")
    }
}

impl Stream for ByteStream {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl ByteStream {
    /// Reads everything into memory (for small objects).
    pub async fn collect(self) -> Result<Bytes, Error> {
        self.collect_with_capacity(0).await
    }

    /// [`collect`](Self::collect) into a buffer sized for `expected` bytes up front (the
    /// answer's `Content-Length`): growing by doubling instead would copy the body about
    /// twice and leave a buffer up to twice its size, which for concurrent multi-MiB
    /// ranged reads is most of the process's memory. A body longer than announced still
    /// arrives whole (the buffer grows).
    pub async fn collect_with_capacity(mut self, expected: u64) -> Result<Bytes, Error> {
        // The announcement is the server's word: never reserve more than this up front.
        const MAX_PRESIZE: u64 = 64 << 20;
        let first = match self.inner.next().await {
            None => return Ok(Bytes::new()),
            Some(chunk) => chunk?,
        };
        // A body that arrives in one piece needs no copy at all.
        let Some(second) = self.inner.next().await else {
            return Ok(first);
        };
        let cap = usize::try_from(expected.min(MAX_PRESIZE)).unwrap_or(0);
        let mut buf = BytesMut::with_capacity(cap.max(first.len()));
        buf.extend_from_slice(&first);
        drop(first);
        buf.extend_from_slice(&second?);
        while let Some(chunk) = self.inner.next().await {
            buf.extend_from_slice(&chunk?);
        }
        Ok(buf.freeze())
    }

    /// An `AsyncRead` over the body; errors become `io::Error`s wrapping [`Error`].
    pub fn into_async_read(self) -> impl tokio::io::AsyncRead + Send + Unpin {
        tokio_util::io::StreamReader::new(self.inner.map_err(std::io::Error::other))
    }
}

/// The answer to a GetObject.
#[derive(Debug)]
#[non_exhaustive]
pub struct GetObjectOutput {
    /// Metadata of the whole object (`meta.size` is the whole object's length).
    pub meta: ObjectMeta,
    /// Offset of the body's first byte in the object.
    pub body_start: u64,
    /// Length of the body.
    pub body_length: u64,
    /// The body.
    pub body: ByteStream,
}

struct ResumeState {
    client: S3Client,
    bucket: String,
    key: String,
    etag: ETag,
    offset: u64,
    end: u64,
    current: Option<BoxStream<'static, reqwest::Result<Bytes>>>,
    resumes: u32,
    context: RequestContext,
    done: bool,
}

impl S3Client {
    /// GetObject, whole or ranged, streamed. Truncated bodies are resumed up to
    /// `max_retries` times.
    pub async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<GetObjectOutput, Error> {
        endpoint::validate_bucket(bucket)?;
        endpoint::validate_key(key)?;
        let Started {
            meta,
            start,
            length,
            stream,
            context,
        } = self.get_once(bucket, key, range, None).await?;
        let state = ResumeState {
            client: self.clone(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            etag: meta.etag.clone(),
            offset: start,
            end: start + length,
            current: Some(stream),
            resumes: 0,
            context,
            done: false,
        };
        Ok(GetObjectOutput {
            meta,
            body_start: start,
            body_length: length,
            body: ByteStream {
                inner: futures::stream::unfold(state, next_chunk).boxed(),
            },
        })
    }

    /// GetObject into memory.
    pub async fn get_object_bytes(
        &self,
        bucket: &str,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<Bytes, Error> {
        let out = self.get_object(bucket, key, range).await?;
        out.body.collect_with_capacity(out.body_length).await
    }

    async fn get_once(
        &self,
        bucket: &str,
        key: &str,
        range: Option<ByteRange>,
        if_match: Option<&ETag>,
    ) -> Result<Started, Error> {
        let req = get_object::request(bucket, key, range, if_match, self.quoting());
        let want_start = range.map_or(0, |r| r.start);
        let want_etag = if_match.cloned();
        self.execute(&req, |a| {
            let want_etag = want_etag.clone();
            async move {
                let head = get_object::parse(a.status, &a.headers)
                    .map_err(|m| Failure::protocol(&a.context, m))?;
                if head.body_start != want_start {
                    return Err(Failure::protocol(
                        &a.context,
                        format!(
                            "asked for bytes from {want_start}, the server sent from {} (Range ignored?)",
                            head.body_start
                        ),
                    ));
                }
                if let Some(want) = want_etag.filter(|w| *w != head.meta.etag) {
                    return Err(Failure::protocol(
                        &a.context,
                        format!(
                            "object changed during a resumed read (ETag {want} became {})",
                            head.meta.etag
                        ),
                    ));
                }
                // The concurrency slot is released once the headers are in: S3 throttles
                // request rates, and a consumer holding a slow stream open while issuing
                // other requests must not deadlock against a lowered limit.
                drop(a.permit);
                Ok(Started {
                    meta: head.meta,
                    start: head.body_start,
                    length: head.body_length,
                    stream: a.response.bytes_stream().boxed(),
                    context: a.context,
                })
            }
        })
        .await
    }
}

/// A GetObject whose headers arrived.
struct Started {
    meta: ObjectMeta,
    start: u64,
    length: u64,
    stream: BoxStream<'static, reqwest::Result<Bytes>>,
    context: RequestContext,
}

async fn next_chunk(mut st: ResumeState) -> Option<(Result<Bytes, Error>, ResumeState)> {
    if st.done {
        return None;
    }
    loop {
        let next = match st.current.as_mut() {
            Some(s) => s.next().await,
            None => None,
        };
        let why = match next {
            Some(Ok(chunk)) => {
                if chunk.is_empty() {
                    continue;
                }
                st.client
                    .meter()
                    .received(Operation::GetObject, chunk.len() as u64);
                let len = chunk.len() as u64;
                if len > st.end - st.offset {
                    st.done = true;
                    let e = Error::protocol(
                        &st.context,
                        format!("the body is longer than the announced {} bytes", st.end),
                    );
                    return Some((Err(e), st));
                }
                st.offset += len;
                return Some((Ok(chunk), st));
            }
            None if st.offset == st.end => return None,
            None => format!("body ended at byte {} of {}", st.offset, st.end),
            Some(Err(e)) => chain_message(&e),
        };
        st.current = None;
        let policy = st.client.retry_policy();
        if st.resumes >= policy.max_retries {
            st.done = true;
            let e = Error::ConnectionLost {
                context: Box::new(st.context.clone()),
                message: format!(
                    "body truncated at byte {} (wanted up to {}) after {} resumptions: {why}",
                    st.offset, st.end, st.resumes
                ),
            };
            return Some((Err(e), st));
        }
        let delay = policy.backoff(st.resumes, st.client.runtime().jitter.unit());
        st.resumes += 1;
        st.client.meter().retry(Operation::GetObject);
        tracing::debug!(bucket = %st.bucket, key = %st.key, offset = st.offset, %why, "resuming truncated GetObject");
        st.client.runtime().sleeper.sleep(delay).await;
        let range = ByteRange {
            start: st.offset,
            end_inclusive: Some(st.end - 1),
        };
        let etag = st.etag.clone();
        match st
            .client
            .get_once(&st.bucket, &st.key, Some(range), Some(&etag))
            .await
        {
            Ok(started) if started.length == st.end - st.offset => {
                st.current = Some(started.stream);
            }
            Ok(Started { length, .. }) => {
                st.done = true;
                let e = Error::protocol(
                    &st.context,
                    format!(
                        "resumed read returned {length} bytes, expected {}",
                        st.end - st.offset
                    ),
                );
                return Some((Err(e), st));
            }
            Err(e) => {
                st.done = true;
                return Some((Err(e), st));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(pieces: &[&'static [u8]]) -> ByteStream {
        let items: Vec<Result<Bytes, Error>> =
            pieces.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        ByteStream {
            inner: futures::stream::iter(items).boxed(),
        }
    }

    #[tokio::test]
    async fn collect_with_capacity_joins_pieces_whatever_the_announced_length() {
        let one = stream(&[b"whole"]).collect_with_capacity(5).await.unwrap();
        assert_eq!(&one[..], b"whole");
        let empty = stream(&[]).collect_with_capacity(0).await.unwrap();
        assert!(empty.is_empty());
        // Announced too short, too long and absurdly long: the bytes are what arrived.
        for expected in [3, 11, 12, 1 << 40] {
            let joined = stream(&[b"hello", b" ", b"world"])
                .collect_with_capacity(expected)
                .await
                .unwrap();
            assert_eq!(&joined[..], b"hello world", "{expected}");
        }
        assert_eq!(&stream(&[b"a", b"b"]).collect().await.unwrap()[..], b"ab");
    }
}
