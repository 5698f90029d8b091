use std::path::PathBuf;

/// Everything the repository layer reports. Storage adapters map their own failures into
/// the first group of variants, so the layers above can branch on them whatever the backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepositoryError {
    /// The blob does not exist.
    #[error("blob [{key}] not found")]
    NotFound {
        /// The blob's key.
        key: String,
    },
    /// A create-only write found the key taken.
    #[error("blob [{key}] already exists")]
    AlreadyExists {
        /// The blob's key.
        key: String,
    },
    /// A conditional write's expected version did not match.
    #[error("blob [{key}] changed since it was read (precondition failed)")]
    PreconditionFailed {
        /// The blob's key.
        key: String,
    },
    /// The storage failed; `code` and `message` are the storage's own words (an S3 error
    /// code such as `AccessDenied`, or an OS error).
    #[error("{operation} [{key}] failed: {message}")]
    Storage {
        /// What was being done: `put`, `get`, `list`, …
        operation: &'static str,
        /// The key or prefix.
        key: String,
        /// The storage's error code, when it has one.
        code: Option<String>,
        /// Human-readable detail.
        message: String,
        /// Whether trying again later may succeed.
        retryable: bool,
    },
    /// A blob's bytes are not what was written: bad magic, checksum mismatch, undecodable.
    #[error("blob [{blob}] is corrupted: {reason}")]
    Corrupted {
        /// The blob's key.
        blob: String,
        /// What check failed.
        reason: String,
    },
    /// A blob written by a newer coffer.
    #[error(
        "blob [{blob}] has format version [{found}], newer than this coffer supports ([{supported}])"
    )]
    UnsupportedVersion {
        /// The blob's key.
        blob: String,
        /// Its version.
        found: u8,
        /// The newest this build reads.
        supported: u8,
    },
    /// A path inside a snapshot or under a repository root that would escape its directory.
    #[error("unsafe path [{path}]: {reason}")]
    UnsafePath {
        /// The offending path as stored or given.
        path: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// Another writer holds the repository's lease.
    #[error(
        "repository is locked by [{node}] for [{operation}] since [{since}]; lease expires at [{expires}]"
    )]
    Locked {
        /// The holder's node name (and id).
        node: String,
        /// What the holder is doing.
        operation: String,
        /// When it acquired the lease (ISO-8601).
        since: String,
        /// When the lease lapses unless renewed (ISO-8601).
        expires: String,
    },
    /// This writer lost its lease (renewal failed, or it could lapse before a write would
    /// finish); it stopped writing.
    #[error("lost the repository lease: {reason}")]
    LeaseLost {
        /// Why.
        reason: String,
    },
    /// The root generation is not the one this writer last saw: someone else wrote.
    #[error(
        "concurrent modification of the index-N file, expected current generation [{expected}], actual current generation [{actual}]"
    )]
    ConcurrentModification {
        /// The generation expected (`-1`: an empty repository).
        expected: i64,
        /// The generation found (`-1`: none).
        actual: i64,
    },
    /// A repository setting is out of range or inconsistent.
    #[error("invalid repository setting [{setting}]: {reason}")]
    InvalidSettings {
        /// The setting's name.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A write was attempted on a read-only registration.
    #[error("cannot {operation}: the repository is readonly")]
    ReadOnly {
        /// What was refused.
        operation: &'static str,
    },
    /// A local filesystem operation failed.
    #[error("{context} [{}]: {source}", .path.display())]
    Io {
        /// What was being done.
        context: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl RepositoryError {
    pub(crate) fn io(
        context: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            context,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupted(blob: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Corrupted {
            blob: blob.into(),
            reason: reason.into(),
        }
    }
}
