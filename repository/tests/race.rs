//! Two writers. Racing for the lease, exactly one wins where the storage honours conditional
//! writes (never two on storage that ignores them, like Garage). A writer that was paused past
//! its lease and taken over cannot damage anything when it resumes.

mod common;

use std::sync::Arc;

use coffer_repository::clock::Clock;
use coffer_repository::lease::{Lease, LeaseConfig};
use coffer_repository::progress::Progress;
use coffer_repository::snapshot::create_snapshot;
use coffer_repository::store::MemoryBlobStore;
use coffer_repository::{BlobStore, Capabilities, ExpectedGeneration, Repository, RepositoryError};
use coffer_testfixtures::dataset;
use common::crash::Shifted;
use common::lifecycle::{owner, request, settings};

const STRICT: Capabilities = Capabilities {
    conditional_create: true,
    conditional_update: true,
};
const LAX: Capabilities = Capabilities {
    conditional_create: false,
    conditional_update: false,
};

async fn race(store: Arc<dyn BlobStore>, caps: Capabilities) {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    dataset::mixed_bytes(&data, 1 << 20, 8).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(Shifted(chrono::Duration::hours(1)));

    // Both try at once.
    let mut tasks = Vec::new();
    for name in ["writer-a", "writer-b"] {
        let (store, clock, data) = (Arc::clone(&store), Arc::clone(&clock), data.clone());
        tasks.push(tokio::spawn(async move {
            let lease = Lease::acquire(
                Arc::clone(&store),
                caps,
                Arc::clone(&clock),
                owner(name),
                LeaseConfig::default(),
            )
            .await?;
            let repo = Repository::new(store, clock, settings());
            let out = create_snapshot(
                &repo,
                &lease,
                ExpectedGeneration::Unknown,
                request(name, &data, 1),
                Progress::new(),
            )
            .await;
            lease.release().await?;
            out
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(RepositoryError::Locked {
                node, operation, ..
            }) => {
                assert_eq!(node, "test-node (node-1)");
                assert!(operation.starts_with("writer-"), "{operation}");
            }
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    if caps.conditional_create {
        assert_eq!(won, 1, "exactly one writer wins");
    } else {
        assert!(
            won <= 1,
            "two writers won on a store without conditional writes"
        );
    }

    // A stale writer: A holds the lease, is paused past its expiry, B takes over and writes.
    let repo_a = Repository::new(Arc::clone(&store), Arc::clone(&clock), settings());
    let lease_a = Lease::acquire(
        Arc::clone(&store),
        caps,
        Arc::clone(&clock),
        owner("stale-a"),
        LeaseConfig::default(),
    )
    .await
    .unwrap();
    let later: Arc<dyn Clock> = Arc::new(Shifted(chrono::Duration::hours(4)));
    let repo_b = Repository::new(Arc::clone(&store), Arc::clone(&later), settings());
    let lease_b = Lease::acquire(
        Arc::clone(&store),
        caps,
        Arc::clone(&later),
        owner("b"),
        LeaseConfig::default(),
    )
    .await
    .unwrap();
    let b = create_snapshot(
        &repo_b,
        &lease_b,
        ExpectedGeneration::Unknown,
        request("after-takeover", &data, 1),
        Progress::new(),
    )
    .await
    .unwrap();

    // A resumes: its renewal fails, and so does any write it attempts.
    assert!(
        lease_a.renew_now().await.is_err(),
        "the stale writer must learn it lost the lease"
    );
    let err = create_snapshot(
        &repo_a,
        &lease_a,
        ExpectedGeneration::Unknown,
        request("stale", &data, 1),
        Progress::new(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            RepositoryError::LeaseLost { .. } | RepositoryError::ConcurrentModification { .. }
        ),
        "{err}"
    );
    let _ = lease_a.release().await;

    // B's lease survived A's release, and B's snapshot is intact.
    lease_b.check().unwrap();
    lease_b.renew_now().await.unwrap();
    let (_, root) = repo_b.load(ExpectedGeneration::Unknown).await.unwrap();
    assert!(root.snapshots.iter().all(|s| s.name != "stale"));
    let target = work.path().join("restored");
    coffer_repository::restore::restore_index(
        &repo_b,
        &root,
        &b.summary.uuid,
        "idx",
        &target,
        Progress::new(),
    )
    .await
    .unwrap();
    dataset::manifest(&data)
        .unwrap()
        .ensure_same(&dataset::manifest(&target).unwrap())
        .unwrap();
    lease_b.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_strict() {
    race(Arc::new(MemoryBlobStore::new()), STRICT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_ignoring_conditions() {
    let store = MemoryBlobStore::new();
    store.set_ignore_conditions(true);
    race(Arc::new(store), LAX).await;
}

fn s3(t: &coffer_testfixtures::S3Target) -> Arc<coffer_repository::store::S3BlobStore> {
    common::s3_store(t, "race", None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_s3() {
    let fake = coffer_testfixtures::fake_s3::FakeS3::start_default()
        .await
        .unwrap();
    race(s3(&fake.target()), STRICT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ceph() {
    let ceph = coffer_testfixtures::ceph::Ceph::shared().await.unwrap();
    let store = s3(&ceph.new_bucket().await.unwrap());
    store.calibrate("calibration/").await.unwrap();
    race(store, STRICT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garage_fallback() {
    let garage = coffer_testfixtures::garage::Garage::start().await.unwrap();
    race(s3(&garage.target()), LAX).await;
}
