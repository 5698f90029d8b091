//! A repository in an S3 bucket (under an optional base path), over coffer's own client.
//!
//! Every blob coffer writes is at most a pack (a few MiB), so each is one PutObject: the
//! conditional headers then apply to a single request, which every server that honours them
//! at all honours (Ceph 16 ignores them on CompleteMultipartUpload). Errors keep the S3 code
//! and message, which verify turns into hints.

use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;
use coffer_client::{
    ByteRange, ETag, Error as S3Error, EtagQuoting, ListMultipartUploadsParams, PayloadSha256,
    S3Client,
};

use super::{BlobStore, ObjectMeta, PutMode, PutResult, validate_key};
use crate::{RepositoryError, Result};

/// A blob store in `bucket` under `base_path`.
#[derive(Debug, Clone)]
pub struct S3BlobStore {
    client: S3Client,
    bucket: String,
    /// Empty, or ending with `/`.
    base: String,
}

impl S3BlobStore {
    /// A store over `client` in `bucket`, with keys under `base_path` (ES's `base_path`
    /// setting; leading and trailing slashes are ignored).
    pub fn new(client: S3Client, bucket: impl Into<String>, base_path: &str) -> Self {
        let trimmed = base_path.trim_matches('/');
        let base = if trimmed.is_empty() {
            String::new()
        } else {
            format!("{trimmed}/")
        };
        Self {
            client,
            bucket: bucket.into(),
            base,
        }
    }

    /// The client, for metering.
    pub fn client(&self) -> &S3Client {
        &self.client
    }

    fn full(&self, key: &str) -> Result<String> {
        validate_key(key)?;
        Ok(format!("{}{key}", self.base))
    }

    fn strip<'a>(&self, key: &'a str) -> &'a str {
        key.strip_prefix(self.base.as_str()).unwrap_or(key)
    }
}

impl S3BlobStore {
    async fn put_inner(
        &self,
        key: &str,
        data: Bytes,
        mode: PutMode,
        sha256: Option<PayloadSha256>,
    ) -> Result<PutResult> {
        let full = self.full(key)?;
        let s3_mode = match &mode {
            PutMode::Overwrite => coffer_client::PutMode::Overwrite,
            PutMode::Create => coffer_client::PutMode::Create,
            PutMode::Update(etag) => coffer_client::PutMode::Update(ETag::parse(etag)),
        };
        let result = match sha256 {
            Some(h) => {
                self.client
                    .put_object_with_sha256(&self.bucket, &full, data, &s3_mode, h)
                    .await
            }
            None => {
                self.client
                    .put_object(&self.bucket, &full, data, &s3_mode)
                    .await
            }
        };
        match result {
            Ok(out) => Ok(PutResult {
                etag: out.etag.as_str().to_owned(),
            }),
            Err(S3Error::PreconditionFailed(_)) if mode == PutMode::Create => {
                Err(RepositoryError::AlreadyExists {
                    key: key.to_owned(),
                })
            }
            Err(e) => Err(map_err("put", key, e)),
        }
    }
}

/// Maps a client error to the repository's vocabulary, keeping S3's code and message.
fn map_err(operation: &'static str, key: &str, e: S3Error) -> RepositoryError {
    match e {
        S3Error::NotFound(_) => RepositoryError::NotFound {
            key: key.to_owned(),
        },
        S3Error::PreconditionFailed(_) => RepositoryError::PreconditionFailed {
            key: key.to_owned(),
        },
        other => {
            let code = other.code().map(str::to_owned).or_else(|| {
                Some(
                    match &other {
                        S3Error::Tls { .. } => "Tls",
                        S3Error::Connect { .. } => "Connect",
                        S3Error::Timeout { .. } => "Timeout",
                        S3Error::ConnectionLost { .. } => "ConnectionLost",
                        S3Error::Protocol { .. } => "Protocol",
                        S3Error::InvalidConfig { .. } => "InvalidConfig",
                        _ => "Unknown",
                    }
                    .to_owned(),
                )
            });
            let retryable = matches!(
                other,
                S3Error::Throttled(_)
                    | S3Error::Transient(_)
                    | S3Error::Timeout { .. }
                    | S3Error::ConnectionLost { .. }
                    | S3Error::Connect { .. }
                    | S3Error::Conflict(_)
            );
            RepositoryError::Storage {
                operation,
                key: key.to_owned(),
                code,
                message: other.to_string(),
                retryable,
            }
        }
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.base)
    }

    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<PutResult> {
        self.put_inner(key, data, mode, None).await
    }

    async fn put_hashed(
        &self,
        key: &str,
        data: Bytes,
        mode: PutMode,
        sha256: [u8; 32],
    ) -> Result<PutResult> {
        self.put_inner(key, data, mode, Some(PayloadSha256::new(sha256)))
            .await
    }

    async fn get(&self, key: &str) -> Result<(Bytes, ObjectMeta)> {
        let full = self.full(key)?;
        let out = self
            .client
            .get_object(&self.bucket, &full, None)
            .await
            .map_err(|e| map_err("get", key, e))?;
        let meta = ObjectMeta {
            key: key.to_owned(),
            size: out.meta.size,
            etag: out.meta.etag.as_str().to_owned(),
        };
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| map_err("get", key, e))?;
        Ok((bytes, meta))
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        let full = self.full(key)?;
        if range.start >= range.end {
            // S3 cannot express an empty range; an empty read of an existing object is empty.
            self.head(key).await?;
            return Ok(Bytes::new());
        }
        let bytes = self
            .client
            .get_object_bytes(
                &self.bucket,
                &full,
                Some(ByteRange::new(range.start, range.end)),
            )
            .await
            .map_err(|e| map_err("get_range", key, e))?;
        if bytes.len() as u64 != range.end - range.start {
            return Err(RepositoryError::Storage {
                operation: "get_range",
                key: key.to_owned(),
                code: Some("InvalidRange".to_owned()),
                message: format!("asked for {range:?}, got {} bytes", bytes.len()),
                retryable: false,
            });
        }
        Ok(bytes)
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        let full = self.full(key)?;
        let m = self
            .client
            .head_object(&self.bucket, &full)
            .await
            .map_err(|e| map_err("head", key, e))?;
        Ok(ObjectMeta {
            key: key.to_owned(),
            size: m.size,
            etag: m.etag.as_str().to_owned(),
        })
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let full_prefix = format!("{}{prefix}", self.base);
        let listed = self
            .client
            .list_all(&self.bucket, &full_prefix)
            .await
            .map_err(|e| map_err("list", prefix, e))?;
        let mut out: Vec<ObjectMeta> = listed
            .into_iter()
            .map(|o| ObjectMeta {
                key: self.strip(&o.key).to_owned(),
                size: o.size,
                etag: o.etag.map(|e| e.as_str().to_owned()).unwrap_or_default(),
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete_batch(&self, keys: &[String]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let full = keys
            .iter()
            .map(|k| self.full(k))
            .collect::<Result<Vec<_>>>()?;
        let out = self
            .client
            .delete_objects(&self.bucket, &full)
            .await
            .map_err(|e| map_err("delete", &keys[0], e))?;
        if let Some(err) = out.errors.first() {
            return Err(RepositoryError::Storage {
                operation: "delete",
                key: self.strip(&err.key).to_owned(),
                code: Some(err.code.clone()),
                message: format!(
                    "{} ({} of {} keys not deleted)",
                    err.message,
                    out.errors.len(),
                    keys.len()
                ),
                retryable: false,
            });
        }
        Ok(())
    }

    /// Finds out whether `If-Match` must carry the ETag quoted (RFC 9110, AWS, MinIO) or
    /// unquoted (Ceph radosgw 16, which otherwise refuses every conditional update).
    async fn calibrate(&self, scratch_prefix: &str) -> Result<()> {
        let key = format!("{scratch_prefix}etag-quoting.dat");
        let first = self
            .put(&key, Bytes::from_static(b"probe-1"), PutMode::Overwrite)
            .await?;
        self.client.set_etag_quoting(EtagQuoting::Quoted);
        let quoted = self
            .put(
                &key,
                Bytes::from_static(b"probe-2"),
                PutMode::Update(first.etag.clone()),
            )
            .await;
        let result = match quoted {
            Ok(_) => Ok(()),
            Err(RepositoryError::PreconditionFailed { .. }) => {
                self.client.set_etag_quoting(EtagQuoting::Unquoted);
                match self
                    .put(
                        &key,
                        Bytes::from_static(b"probe-3"),
                        PutMode::Update(first.etag),
                    )
                    .await
                {
                    Ok(_) => {
                        tracing::info!(location = %self.location(), "storage matches If-Match only with unquoted ETags; using them");
                        Ok(())
                    }
                    // Neither form matches: leave the standard one; verify reports that
                    // conditional updates do not work.
                    Err(RepositoryError::PreconditionFailed { .. }) => {
                        self.client.set_etag_quoting(EtagQuoting::Quoted);
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        self.delete_batch(&[key]).await?;
        result
    }

    async fn remove_incomplete_writes(&self, prefix: &str) -> Result<(u64, u64)> {
        let mut params = ListMultipartUploadsParams {
            prefix: Some(format!("{}{prefix}", self.base)),
            ..Default::default()
        };
        let mut removed = 0;
        loop {
            let page = self
                .client
                .list_multipart_uploads(&self.bucket, &params)
                .await
                .map_err(|e| map_err("list multipart uploads", prefix, e))?;
            for upload in &page.uploads {
                self.client
                    .abort_multipart_upload(&self.bucket, &upload.key, &upload.upload_id)
                    .await
                    .map_err(|e| map_err("abort multipart upload", self.strip(&upload.key), e))?;
                removed += 1;
            }
            if !page.is_truncated {
                break;
            }
            params.key_marker = page.next_key_marker;
            params.upload_id_marker = page.next_upload_id_marker;
        }
        // S3 does not say how many bytes the parts of an aborted upload held.
        Ok((removed, 0))
    }
}
