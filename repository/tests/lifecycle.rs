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

/// Small files make packs whose trailing index outweighs their chunks. Deleting one of two
/// snapshots that share such a pack must keep it: repacking a pack with no dead chunk would
/// rewrite the same content-named blob, which the garbage list would then delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_snapshot_keeps_small_packs_the_other_one_shares() {
    use coffer_repository::clock::Clock;
    use coffer_repository::lease::{Lease, LeaseConfig};
    use coffer_repository::progress::Progress;
    use coffer_repository::snapshot::create_snapshot;
    use coffer_repository::{BlobStore, ExpectedGeneration, Repository, RepositorySettings};

    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("doc.json"), br#"{"a":1}"#).unwrap();
    let store: Arc<dyn BlobStore> = Arc::new(MemoryBlobStore::new());
    let clock: Arc<dyn Clock> = Arc::new(common::lifecycle::Later);
    let repo = Repository::new(
        Arc::clone(&store),
        Arc::clone(&clock),
        RepositorySettings::default(),
    );
    let lease = Lease::acquire(
        Arc::clone(&store),
        STRICT,
        clock,
        common::lifecycle::owner("small"),
        LeaseConfig::default(),
    )
    .await
    .unwrap();
    let s1 = create_snapshot(
        &repo,
        &lease,
        ExpectedGeneration::Empty,
        common::lifecycle::request("s1", &data, 1),
        Progress::new(),
    )
    .await
    .unwrap();
    let s2 = create_snapshot(
        &repo,
        &lease,
        ExpectedGeneration::At(0),
        common::lifecycle::request("s2", &data, 1),
        Progress::new(),
    )
    .await
    .unwrap();
    coffer_repository::delete::delete_snapshots(
        &repo,
        &lease,
        ExpectedGeneration::At(1),
        vec![s2.summary.uuid],
    )
    .await
    .unwrap();
    let (_, root) = repo.load(ExpectedGeneration::At(2)).await.unwrap();
    let target = work.path().join("restored");
    coffer_repository::restore::restore_index(
        &repo,
        &root,
        &s1.summary.uuid,
        "idx",
        &target,
        Progress::new(),
    )
    .await
    .unwrap();
    assert_eq!(
        std::fs::read(target.join("doc.json")).unwrap(),
        br#"{"a":1}"#
    );
    lease.release().await.unwrap();
}
