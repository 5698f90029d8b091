//! The upload pipeline under pressure: many packs, more shards in parallel than upload slots.
//! A regression test for a deadlock where a shard waited for an upload permit while its own
//! unpolled uploads held every permit.

mod common;

use std::sync::Arc;
use std::time::Duration;

use coffer_repository::clock::Clock;
use coffer_repository::lease::{Lease, LeaseConfig};
use coffer_repository::progress::Progress;
use coffer_repository::snapshot::create_snapshot;
use coffer_repository::store::MemoryBlobStore;
use coffer_repository::{
    BlobStore, Capabilities, ExpectedGeneration, Repository, RepositorySettings,
};
use coffer_testfixtures::dataset;
use common::lifecycle::{Later, owner, request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_packs_through_one_upload_slot() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    dataset::mixed_bytes(&data, 6 << 20, 17).unwrap();
    let store: Arc<dyn BlobStore> = Arc::new(MemoryBlobStore::new());
    let clock: Arc<dyn Clock> = Arc::new(Later);
    let settings = RepositorySettings {
        chunk_size: 16 << 10,
        pack_size: 64 << 10,
        concurrency: 1,
        ..RepositorySettings::default()
    };
    let repo = Repository::new(Arc::clone(&store), Arc::clone(&clock), settings);
    let caps = Capabilities {
        conditional_create: true,
        conditional_update: true,
    };
    let lease = Lease::acquire(
        Arc::clone(&store),
        caps,
        clock,
        owner("pipeline"),
        LeaseConfig::default(),
    )
    .await
    .unwrap();
    let outcome = tokio::time::timeout(
        Duration::from_secs(120),
        create_snapshot(
            &repo,
            &lease,
            ExpectedGeneration::Empty,
            request("s", &data, 4),
            Progress::new(),
        ),
    )
    .await
    .expect("the snapshot pipeline stalled")
    .unwrap();
    let packs = store
        .list("indices/")
        .await
        .unwrap()
        .iter()
        .filter(|m| m.key.contains("/__"))
        .count();
    assert!(
        packs > 40,
        "only {packs} packs: the test must push many packs through one slot"
    );
    assert_eq!(outcome.summary.shards.successful, 4);
    lease.release().await.unwrap();
}
