//! Snapshot, mutate, snapshot, restore, delete, cleanup on each local backend.

mod common;

use std::sync::Arc;

use coffer_repository::Capabilities;
use coffer_repository::store::{FsBlobStore, MemoryBlobStore};

const STRICT: Capabilities = Capabilities {
    conditional_create: true,
    conditional_update: true,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory() {
    common::lifecycle::run(Arc::new(MemoryBlobStore::new()), STRICT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs() {
    let dir = tempfile::tempdir().unwrap();
    common::lifecycle::run(
        Arc::new(FsBlobStore::open(dir.path().join("repo")).unwrap()),
        STRICT,
    )
    .await;
}
