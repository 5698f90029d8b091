//! Streaming uploads of known length. Up to `part_size` bytes go in one PutObject; above it,
//! a multipart upload with up to `parts_in_flight` parts uploading concurrently. Memory is
//! bounded by `(parts_in_flight + 1) × part_size`: the parts in flight plus the one being
//! filled from the source. Every part is in memory while it uploads, so it can be hashed,
//! signed and retried.

use std::io;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt as _};
use tokio::task::JoinSet;

use crate::client::{S3Client, local_context};
use crate::error::Error;
use crate::ops::complete_multipart_upload::CompletedPart;
use crate::ops::put_object::PutObjectOutput;
use crate::ops::{Operation, PutMode};

/// S3's smallest part (except the last).
pub const MIN_PART_SIZE: usize = 5 << 20;
/// S3's largest part.
pub const MAX_PART_SIZE: usize = 5 << 30;
/// S3's most parts per upload.
pub const MAX_PARTS: u64 = 10_000;

/// How to upload.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadOptions {
    /// Create-only, update-this-version or overwrite.
    pub mode: PutMode,
    /// The repository's `buffer_size`: the multipart threshold and the part size.
    pub part_size: usize,
    /// Parts uploading at once.
    pub parts_in_flight: usize,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            mode: PutMode::Overwrite,
            part_size: 100 << 20,
            parts_in_flight: 4,
        }
    }
}

impl UploadOptions {
    /// Options with this mode.
    #[must_use]
    pub fn with_mode(mut self, mode: PutMode) -> UploadOptions {
        self.mode = mode;
        self
    }

    /// Options with this part size (and multipart threshold).
    #[must_use]
    pub fn with_part_size(mut self, part_size: usize) -> UploadOptions {
        self.part_size = part_size;
        self
    }

    /// Options with this many parts in flight.
    #[must_use]
    pub fn with_parts_in_flight(mut self, n: usize) -> UploadOptions {
        self.parts_in_flight = n;
        self
    }
}

/// The part size to use: at least the configured one, large enough to fit in 10 000 parts.
pub(crate) fn effective_part_size(length: u64, part_size: usize) -> usize {
    let needed = length.div_ceil(MAX_PARTS);
    let needed = usize::try_from(needed).unwrap_or(usize::MAX);
    part_size.max(needed)
}

/// Cuts a stream of arbitrary chunks into parts of exactly `size` bytes (the last shorter),
/// and checks that the total is the announced length.
struct PartReader<S> {
    source: S,
    pending: Bytes,
    remaining: u64,
}

impl<S: Stream<Item = io::Result<Bytes>> + Unpin> PartReader<S> {
    async fn next_part(&mut self, size: usize) -> io::Result<Option<Bytes>> {
        if self.remaining == 0 {
            // The source must be exhausted too, or the announced length was wrong.
            if !self.pending.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the source is longer than the announced length",
                ));
            }
            while let Some(chunk) = self.source.next().await {
                if !chunk?.is_empty() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the source is longer than the announced length",
                    ));
                }
            }
            return Ok(None);
        }
        let want = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(size);
        let mut buf = BytesMut::with_capacity(want);
        while buf.len() < want {
            if self.pending.is_empty() {
                match self.source.next().await {
                    Some(chunk) => self.pending = chunk?,
                    None => {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!(
                                "the source ended {} bytes before the announced length",
                                self.remaining - buf.len() as u64
                            ),
                        ));
                    }
                }
            }
            let take = (want - buf.len()).min(self.pending.len());
            buf.extend_from_slice(&self.pending.split_to(take));
        }
        self.remaining -= want as u64;
        Ok(Some(buf.freeze()))
    }
}

impl S3Client {
    /// Uploads `length` bytes read from `source`, with PutObject when they fit in one part
    /// and multipart otherwise. The conditional `mode` applies to the PutObject or to the
    /// CompleteMultipartUpload. On failure, a started multipart upload is aborted.
    pub async fn upload<S>(
        &self,
        bucket: &str,
        key: &str,
        length: u64,
        source: S,
        options: &UploadOptions,
    ) -> Result<PutObjectOutput, Error>
    where
        S: Stream<Item = io::Result<Bytes>> + Send + Unpin,
    {
        if options.part_size < MIN_PART_SIZE || options.part_size > MAX_PART_SIZE {
            return Err(Error::config(format!(
                "part size (buffer_size) {} is outside S3's limits [{MIN_PART_SIZE}, {MAX_PART_SIZE}]",
                options.part_size
            )));
        }
        let source_error = |op: Operation, e: io::Error| Error::Source {
            context: Box::new(local_context(self, op, bucket, key)),
            source: e,
        };
        let mut reader = PartReader {
            source,
            pending: Bytes::new(),
            remaining: length,
        };
        if length <= options.part_size as u64 {
            let body = reader
                .next_part(options.part_size)
                .await
                .map_err(|e| source_error(Operation::PutObject, e))?
                .unwrap_or_default();
            reader
                .next_part(options.part_size)
                .await
                .map_err(|e| source_error(Operation::PutObject, e))?;
            return self.put_object(bucket, key, body, &options.mode).await;
        }
        let part_size = effective_part_size(length, options.part_size);
        let upload_id = self.create_multipart_upload(bucket, key).await?;
        let result = self
            .upload_parts(
                bucket,
                key,
                &upload_id,
                &mut reader,
                part_size,
                options.parts_in_flight.max(1),
            )
            .await;
        let parts = match result {
            Ok(parts) => parts,
            Err(e) => {
                self.abort_quietly(bucket, key, &upload_id).await;
                return Err(match e {
                    PartsError::Source(io) => source_error(Operation::UploadPart, io),
                    PartsError::S3(e) => e,
                });
            }
        };
        match self
            .complete_multipart_upload(bucket, key, &upload_id, &parts, &options.mode)
            .await
        {
            Ok(out) => Ok(PutObjectOutput {
                etag: out.etag,
                version_id: None,
            }),
            Err(e) => {
                // A failed completion (412 included) leaves the parts behind; drop them.
                self.abort_quietly(bucket, key, &upload_id).await;
                Err(e)
            }
        }
    }

    async fn abort_quietly(&self, bucket: &str, key: &str, upload_id: &str) {
        if let Err(e) = self.abort_multipart_upload(bucket, key, upload_id).await {
            tracing::warn!(bucket, key, upload_id, error = %e, "could not abort a failed multipart upload; ListMultipartUploads cleanup will find it");
        }
    }

    async fn upload_parts<S>(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        reader: &mut PartReader<S>,
        part_size: usize,
        in_flight: usize,
    ) -> Result<Vec<CompletedPart>, PartsError>
    where
        S: Stream<Item = io::Result<Bytes>> + Send + Unpin,
    {
        // Parts run as tasks so they progress while the source is being read; dropping the
        // JoinSet on an early return aborts the rest.
        let mut tasks: JoinSet<Result<CompletedPart, Error>> = JoinSet::new();
        let mut done = Vec::new();
        let mut part_number = 0u32;
        loop {
            while tasks.len() >= in_flight {
                done.push(join_one(&mut tasks).await?);
            }
            let Some(body) = reader
                .next_part(part_size)
                .await
                .map_err(PartsError::Source)?
            else {
                break;
            };
            part_number += 1;
            let (client, bucket, key, upload_id) = (
                self.clone(),
                bucket.to_owned(),
                key.to_owned(),
                upload_id.to_owned(),
            );
            tasks.spawn(async move {
                let etag = client
                    .upload_part(&bucket, &key, &upload_id, part_number, body)
                    .await?;
                Ok(CompletedPart { part_number, etag })
            });
        }
        while !tasks.is_empty() {
            done.push(join_one(&mut tasks).await?);
        }
        done.sort_by_key(|p| p.part_number);
        Ok(done)
    }
}

enum PartsError {
    Source(io::Error),
    S3(Error),
}

impl From<Error> for PartsError {
    fn from(e: Error) -> Self {
        PartsError::S3(e)
    }
}

async fn join_one(
    tasks: &mut JoinSet<Result<CompletedPart, Error>>,
) -> Result<CompletedPart, PartsError> {
    match tasks.join_next().await {
        Some(Ok(r)) => r.map_err(PartsError::S3),
        Some(Err(join)) => Err(PartsError::Source(io::Error::other(format!(
            "part upload task failed: {join}"
        )))),
        None => Err(PartsError::Source(io::Error::other(
            "no part upload in flight",
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;

    fn chunks(sizes: &[usize]) -> impl Stream<Item = io::Result<Bytes>> + Unpin {
        let mut n = 0u8;
        let v: Vec<io::Result<Bytes>> = sizes
            .iter()
            .map(|s| {
                let b: Vec<u8> = (0..*s)
                    .map(|_| {
                        n = n.wrapping_add(1);
                        n
                    })
                    .collect();
                Ok(Bytes::from(b))
            })
            .collect();
        stream::iter(v)
    }

    #[tokio::test]
    async fn part_reader_rechunks_exactly() {
        let mut r = PartReader {
            source: chunks(&[3, 7, 1, 9]),
            pending: Bytes::new(),
            remaining: 20,
        };
        let mut all = Vec::new();
        let mut sizes = Vec::new();
        while let Some(p) = r.next_part(8).await.unwrap() {
            sizes.push(p.len());
            all.extend_from_slice(&p);
        }
        assert_eq!(sizes, vec![8, 8, 4]);
        assert_eq!(all, (1..=20).collect::<Vec<u8>>());
    }

    #[tokio::test]
    async fn part_reader_checks_the_length() {
        let mut short = PartReader {
            source: chunks(&[3]),
            pending: Bytes::new(),
            remaining: 5,
        };
        assert_eq!(
            short.next_part(8).await.unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        let mut long = PartReader {
            source: chunks(&[3, 3]),
            pending: Bytes::new(),
            remaining: 4,
        };
        assert!(long.next_part(8).await.unwrap().is_some());
        assert_eq!(
            long.next_part(8).await.unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        let mut failing = PartReader {
            source: stream::iter(vec![Err(io::Error::other("disk on fire"))]),
            pending: Bytes::new(),
            remaining: 4,
        };
        assert!(
            failing
                .next_part(8)
                .await
                .unwrap_err()
                .to_string()
                .contains("disk on fire")
        );
    }

    #[test]
    fn part_size_grows_to_fit_ten_thousand_parts() {
        assert_eq!(effective_part_size(1 << 30, MIN_PART_SIZE), MIN_PART_SIZE);
        let huge = 100u64 << 30;
        let size = effective_part_size(huge, MIN_PART_SIZE);
        assert!(huge.div_ceil(size as u64) <= MAX_PARTS);
        assert!(size > MIN_PART_SIZE);
    }
}
