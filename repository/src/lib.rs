//! coffer's repository layer: incremental, deduplicated, crash-safe snapshots of directory
//! trees ("indices") into a blob store, with a single-writer lease on the store itself.
//!
//! The layout keeps Elasticsearch's shape (`index-N`, `snap-<uuid>.dat`,
//! `indices/<id>/<shard>/…`) in coffer's own encoding, specified in
//! `docs/repository-format.md`.
//!
//! Module map:
//! - [`store`]: the [`BlobStore`] port and its fs and memory adapters;
//! - [`envelope`]: the versioned, checksummed wrapper every metadata blob is stored in;
//! - [`clock`]: injected time and sleeps.

pub mod chunker;
pub mod cleanup;
pub mod clock;
pub mod clone;
pub mod delete;
pub mod envelope;
mod error;
pub mod fence;
pub mod layout;
pub mod lease;
pub mod model;
pub mod pack;
pub mod paths;
pub mod progress;
pub mod repo;
pub mod restore;
pub mod snapshot;
pub mod source;
pub mod store;
mod task;
pub mod throttle;
pub mod verify;

pub use error::RepositoryError;
pub use repo::{ExpectedGeneration, Repository, RepositorySettings};
pub use store::{BlobStore, Capabilities, ObjectMeta, PutMode, PutResult};

/// The crate's result type.
pub type Result<T, E = RepositoryError> = std::result::Result<T, E>;
