//! The `BlobStore` contract, run against each adapter.

mod common;

use std::sync::Arc;

use coffer_repository::store::{FsBlobStore, MemoryBlobStore};
use coffer_repository::{BlobStore, Capabilities};

const STRICT: Capabilities = Capabilities {
    conditional_create: true,
    conditional_update: true,
};

#[tokio::test]
async fn memory() {
    common::conformance::run(Arc::new(MemoryBlobStore::new()), STRICT, "conf/").await;
}

#[tokio::test]
async fn memory_ignoring_conditions_like_garage() {
    let store = MemoryBlobStore::new();
    store.set_ignore_conditions(true);
    let lax = Capabilities {
        conditional_create: false,
        conditional_update: false,
    };
    common::conformance::run(Arc::new(store), lax, "conf/").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fs() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn BlobStore> = Arc::new(FsBlobStore::open(dir.path().join("repo")).unwrap());
    common::conformance::run(Arc::clone(&store), STRICT, "conf/").await;
    // Deleting every object also removed the folders that held them.
    let left: Vec<_> = std::fs::read_dir(dir.path().join("repo"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn fs_leftover_temporary_files_are_invisible_and_removable() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    let store = FsBlobStore::open(&root).unwrap();
    std::fs::create_dir_all(root.join("indices/x")).unwrap();
    std::fs::write(
        root.join("indices/x/.__p.tmp-0011223344556677"),
        b"half a pack",
    )
    .unwrap();
    assert!(
        store.list("").await.unwrap().is_empty(),
        "temporary files are not objects"
    );
    assert_eq!(store.remove_incomplete_writes("").await.unwrap(), (1, 11));
    assert!(!root.join("indices/x/.__p.tmp-0011223344556677").exists());
}
