//! The `BlobStore` port: the handful of operations the repository needs from storage, with
//! the semantics it relies on spelled out, so that every adapter (fs, memory, S3) can be held
//! to them by one shared conformance suite (`repository/tests/store_conformance.rs`).
//!
//! Semantics every adapter must provide:
//! - keys are `/`-separated relative names of printable characters; no `..` segments;
//! - `put` is atomic: a reader sees the old object or the new one, never a mixture;
//! - `PutMode::Create` fails with `AlreadyExists` if the key exists, and `PutMode::Update`
//!   with `PreconditionFailed` if the current ETag differs, *when the store honours
//!   conditional writes* (see [`Capabilities`]; some S3 servers silently ignore them);
//! - `list` is recursive below the prefix, sorted by key, and complete;
//! - `delete_batch` of a missing key succeeds (deletes are idempotent).

mod fs;
mod memory;
mod s3;

use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;

pub use fs::FsBlobStore;
pub use memory::MemoryBlobStore;
pub use s3::S3BlobStore;

use crate::Result;

/// How a `put` treats an existing object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutMode {
    /// Replace whatever is there.
    Overwrite,
    /// Only if the key does not exist (`If-None-Match: *`, `O_EXCL`/`link`).
    Create,
    /// Only if the current object has this ETag (`If-Match`).
    Update(String),
}

/// What a successful `put` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutResult {
    /// The new object's ETag, the version to pass to a later `PutMode::Update`.
    pub etag: String,
}

/// One object as listed or headed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Its key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its ETag.
    pub etag: String,
}

/// What a store guarantees, as found by probing it (or declared by an adapter that knows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// `PutMode::Create` really refuses to overwrite.
    pub conditional_create: bool,
    /// `PutMode::Update` really refuses a stale ETag.
    pub conditional_update: bool,
}

/// Storage for a repository: a directory, a bucket prefix, or memory.
#[async_trait]
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    /// Where this store keeps its blobs, for messages (`fs:/srv/backups/repo`,
    /// `s3://bucket/base`).
    fn location(&self) -> String;

    /// Writes a whole object atomically.
    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<PutResult>;

    /// [`put`](Self::put) of a blob whose SHA-256 the caller already computed (packs are
    /// named by theirs). A store that hashes what it writes (S3 signs the payload's SHA-256)
    /// uses `sha256` instead of hashing `data` a second time. `sha256` must be the digest of
    /// `data`: S3 refuses a mismatch, other stores ignore it. The default is `put`.
    async fn put_hashed(
        &self,
        key: &str,
        data: Bytes,
        mode: PutMode,
        sha256: [u8; 32],
    ) -> Result<PutResult> {
        let _ = sha256;
        self.put(key, data, mode).await
    }

    /// Reads a whole object with its metadata.
    async fn get(&self, key: &str) -> Result<(Bytes, ObjectMeta)>;

    /// Reads `range` of an object. A range past the end is an error, not a short read.
    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes>;

    /// An object's metadata.
    async fn head(&self, key: &str) -> Result<ObjectMeta>;

    /// Every object whose key starts with `prefix`, sorted by key.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>>;

    /// Deletes objects; missing keys are not an error.
    async fn delete_batch(&self, keys: &[String]) -> Result<()>;

    /// Adapts to quirks of the storage that only an experiment reveals, using scratch keys
    /// below `scratch_prefix` (removed afterwards). Called once when a repository is
    /// registered or verified. The default does nothing.
    async fn calibrate(&self, scratch_prefix: &str) -> Result<()> {
        let _ = scratch_prefix;
        Ok(())
    }

    /// Removes storage-level leftovers below `prefix` that no listing shows (incomplete S3
    /// multipart uploads, temporary files of interrupted local writes). Returns the number
    /// removed and their bytes where known.
    async fn remove_incomplete_writes(&self, prefix: &str) -> Result<(u64, u64)>;
}

/// Checks a key against the rules every adapter relies on, so that a key can never name a
/// file outside an fs repository's root.
pub(crate) fn validate_key(key: &str) -> Result<()> {
    let bad = |reason| {
        Err(crate::RepositoryError::UnsafePath {
            path: key.to_owned(),
            reason,
        })
    };
    if key.is_empty() {
        return bad("empty key");
    }
    if key.starts_with('/') || key.ends_with('/') {
        return bad("keys are relative and name objects, not folders");
    }
    if key
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return bad("empty, '.' or '..' path segment");
    }
    if key.chars().any(|c| c.is_control() || c == '\\') {
        return bad("control character or backslash");
    }
    Ok(())
}

/// A strong ETag for stores that do not have one of their own: the first 16 bytes of the
/// content's SHA-256, in hex.
pub(crate) fn content_etag(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(data)[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for good in [
            "index-0",
            "indices/abc/0/__x",
            "tests-1/data-node.dat",
            "a b/ü",
        ] {
            validate_key(good).unwrap();
        }
        for bad in [
            "", "/abs", "a/../b", "..", "a//b", "dir/", "./a", "a\\b", "a\nb",
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
    }
}
