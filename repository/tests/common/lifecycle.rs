//! The whole repository layer on one store: snapshot, mutate, snapshot, restore both, delete
//! the first, restore the second again, cleanup finds nothing. Run against every backend.

use std::path::Path;
use std::sync::Arc;

use coffer_repository::clock::{Clock, SystemClock};
use coffer_repository::lease::{Lease, LeaseConfig, LeaseOwner};
use coffer_repository::model::SnapshotState;
use coffer_repository::progress::Progress;
use coffer_repository::snapshot::{IndexSource, SnapshotRequest, create_snapshot};
use coffer_repository::{
    BlobStore, Capabilities, ExpectedGeneration, Repository, RepositorySettings,
};
use coffer_testfixtures::dataset;

/// Wall-clock time an hour ahead: the dataset's files then look long settled to the
/// snapshots, as they would in production, instead of "racily" fresh (written in the same
/// timestamp tick as the read, which makes a snapshot read them again).
#[derive(Debug)]
pub struct Later;

#[async_trait::async_trait]
impl Clock for Later {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        SystemClock.now() + chrono::Duration::hours(1)
    }

    async fn sleep(&self, d: std::time::Duration) {
        SystemClock.sleep(d).await;
    }
}

/// Small chunks and packs so a few MiB of data exercise many packs.
pub fn settings() -> RepositorySettings {
    RepositorySettings {
        chunk_size: 64 << 10,
        pack_size: 512 << 10,
        ..RepositorySettings::default()
    }
}

pub fn owner(operation: &str) -> LeaseOwner {
    LeaseOwner {
        node_name: "test-node".into(),
        node_id: "node-1".into(),
        pid: std::process::id(),
        repository_uuid: "repo".into(),
        operation: operation.into(),
    }
}

pub fn request(name: &str, root: &Path, shards: u32) -> SnapshotRequest {
    SnapshotRequest {
        name: name.into(),
        uuid: uuid::Uuid::new_v4().simple().to_string(),
        indices: vec![IndexSource {
            name: "idx".into(),
            root: root.to_path_buf(),
            number_of_shards: shards,
            number_of_replicas: 0,
        }],
        partial: false,
        include_global_state: false,
        metadata: None,
    }
}

pub async fn run(store: Arc<dyn BlobStore>, caps: Capabilities) {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    dataset::mixed_bytes(&data, 6 << 20, 11).unwrap();
    let m1 = dataset::manifest(&data).unwrap();

    let clock: Arc<dyn Clock> = Arc::new(Later);
    let repo = Repository::new(Arc::clone(&store), Arc::clone(&clock), settings());
    let lease = Lease::acquire(
        Arc::clone(&store),
        caps,
        Arc::clone(&clock),
        owner("lifecycle"),
        LeaseConfig::default(),
    )
    .await
    .unwrap();

    let first = create_snapshot(
        &repo,
        &lease,
        ExpectedGeneration::Empty,
        request("s1", &data, 3),
        Progress::new(),
    )
    .await
    .unwrap();
    assert_eq!(first.summary.state, SnapshotState::Success);
    assert_eq!(first.generation, Some(0));
    assert_eq!(first.summary.shards.successful, 3);
    assert_eq!(first.summary.stats.total_file_count, m1.len() as u64);

    // An unchanged re-snapshot reads nothing and uploads no data.
    let again = create_snapshot(
        &repo,
        &lease,
        ExpectedGeneration::At(0),
        request("s1-again", &data, 3),
        Progress::new(),
    )
    .await
    .unwrap();
    assert_eq!(
        again.summary.stats.incremental_file_count, 0,
        "{:?}",
        again.summary.stats
    );
    let data_uploaded_first = first.summary.stats.uploaded_bytes;
    assert!(
        again.summary.stats.uploaded_bytes < data_uploaded_first / 20,
        "{:?}",
        again.summary.stats
    );

    let mutation = dataset::mutate(&data, 5).unwrap();
    let m2 = dataset::manifest(&data).unwrap();
    assert_ne!(m1, m2);
    let second = create_snapshot(
        &repo,
        &lease,
        ExpectedGeneration::At(1),
        request("s2", &data, 3),
        Progress::new(),
    )
    .await
    .unwrap();
    assert_eq!(second.generation, Some(2));
    assert!(second.summary.stats.incremental_file_count > 0);
    assert!(
        second.summary.stats.uploaded_bytes < data_uploaded_first / 2,
        "after {mutation:?} uploaded {} of {}",
        second.summary.stats.uploaded_bytes,
        data_uploaded_first
    );

    // Restore both and compare by manifest.
    let (_, root) = repo.load(ExpectedGeneration::At(2)).await.unwrap();
    for (snap, manifest) in [(&first, &m1), (&second, &m2)] {
        let target = work.path().join(format!("restored-{}", snap.summary.name));
        coffer_repository::restore::restore_index(
            &repo,
            &root,
            &snap.summary.uuid,
            "idx",
            &target,
            Progress::new(),
        )
        .await
        .unwrap();
        manifest
            .ensure_same(&dataset::manifest(&target).unwrap())
            .unwrap();
    }

    // Delete the first two snapshots: the second still restores, and nothing is left over.
    let generation = coffer_repository::delete::delete_snapshots(
        &repo,
        &lease,
        ExpectedGeneration::At(2),
        vec![first.summary.uuid.clone(), again.summary.uuid.clone()],
    )
    .await
    .unwrap();
    assert_eq!(generation, 3);
    let (_, root) = repo.load(ExpectedGeneration::At(3)).await.unwrap();
    assert_eq!(root.snapshots.len(), 1);
    let target = work.path().join("restored-after-delete");
    coffer_repository::restore::restore_index(
        &repo,
        &root,
        &second.summary.uuid,
        "idx",
        &target,
        Progress::new(),
    )
    .await
    .unwrap();
    m2.ensure_same(&dataset::manifest(&target).unwrap())
        .unwrap();

    let cleaned = coffer_repository::cleanup::cleanup(&repo, &lease, ExpectedGeneration::At(3))
        .await
        .unwrap();
    assert_eq!(cleaned.deleted_blobs, 0, "{cleaned:?}");

    // Restoring over an existing directory replaces its contents.
    std::fs::write(target.join("stray-file"), b"x").unwrap();
    coffer_repository::restore::restore_index(
        &repo,
        &root,
        &second.summary.uuid,
        "idx",
        &target,
        Progress::new(),
    )
    .await
    .unwrap();
    m2.ensure_same(&dataset::manifest(&target).unwrap())
        .unwrap();

    lease.release().await.unwrap();
}
