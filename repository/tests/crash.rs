//! Crash safety: snapshot, delete and cleanup are each killed after every possible number
//! of writes. After every crash, a new process (a clock far enough ahead to take over the
//! dead writer's lease) must find every committed snapshot restorable byte for byte, and
//! cleanup must remove the garbage, leaving nothing for a second cleanup.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use coffer_repository::clock::Clock;
use coffer_repository::lease::{Lease, LeaseConfig};
use coffer_repository::progress::Progress;
use coffer_repository::snapshot::create_snapshot;
use coffer_repository::store::MemoryBlobStore;
use coffer_repository::{BlobStore, Capabilities, ExpectedGeneration, Repository};
use coffer_testfixtures::dataset::{self, Manifest};
use common::crash::{CrashingStore, Shifted};
use common::lifecycle::{owner, request, settings};

const STRICT: Capabilities = Capabilities {
    conditional_create: true,
    conditional_update: true,
};

#[derive(Clone, Copy, Debug)]
enum Op {
    Snapshot,
    Delete,
    Cleanup,
}

/// Runs `op` against `store` as one process, with its own lease.
async fn run_op(
    op: Op,
    store: Arc<dyn BlobStore>,
    clock: Arc<dyn Clock>,
    data: &Path,
    s1_uuid: &str,
) -> Result<(), coffer_repository::RepositoryError> {
    let repo = Repository::new(Arc::clone(&store), Arc::clone(&clock), settings());
    let lease = Lease::acquire(
        Arc::clone(&store),
        STRICT,
        clock,
        owner("crash test"),
        LeaseConfig::default(),
    )
    .await?;
    let result = match op {
        Op::Snapshot => create_snapshot(
            &repo,
            &lease,
            ExpectedGeneration::Unknown,
            request("s2", data, 2),
            Progress::new(),
        )
        .await
        .map(drop),
        Op::Delete => coffer_repository::delete::delete_snapshots(
            &repo,
            &lease,
            ExpectedGeneration::Unknown,
            vec![s1_uuid.to_owned()],
        )
        .await
        .map(drop),
        Op::Cleanup => {
            coffer_repository::cleanup::cleanup(&repo, &lease, ExpectedGeneration::Unknown)
                .await
                .map(drop)
        }
    };
    if result.is_ok() {
        lease.release().await?;
    }
    result
}

/// What a later process must find after the crash.
async fn check_recovery(
    store: Arc<dyn BlobStore>,
    manifests: &BTreeMap<String, Manifest>,
    required: &[&str],
    work: &Path,
    label: &str,
) {
    let clock: Arc<dyn Clock> = Arc::new(Shifted(chrono::Duration::hours(3)));
    let repo = Repository::new(Arc::clone(&store), Arc::clone(&clock), settings());
    let (_, root) = repo
        .load(ExpectedGeneration::Unknown)
        .await
        .unwrap_or_else(|e| panic!("{label}: root unreadable: {e}"));
    for name in required {
        assert!(
            root.snapshots.iter().any(|s| s.name == *name),
            "{label}: lost committed snapshot {name}"
        );
    }
    for snap in &root.snapshots {
        let expected = manifests
            .get(&snap.name)
            .unwrap_or_else(|| panic!("{label}: unexpected snapshot {}", snap.name));
        let target = work.join(format!("restore-{}", uuid::Uuid::new_v4().simple()));
        coffer_repository::restore::restore_index(
            &repo,
            &root,
            &snap.uuid,
            "idx",
            &target,
            Progress::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("{label}: {} does not restore: {e}", snap.name));
        expected
            .ensure_same(&dataset::manifest(&target).unwrap())
            .unwrap_or_else(|e| panic!("{label}: {}: {e}", snap.name));
        std::fs::remove_dir_all(&target).unwrap();
    }
    // The dead writer's lease has expired for this process: cleanup takes it over.
    let lease = Lease::acquire(
        Arc::clone(&store),
        STRICT,
        Arc::clone(&clock),
        owner("recovery"),
        LeaseConfig::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("{label}: cannot take over the dead writer's lease: {e}"));
    coffer_repository::cleanup::cleanup(&repo, &lease, ExpectedGeneration::Unknown)
        .await
        .unwrap();
    let again = coffer_repository::cleanup::cleanup(&repo, &lease, ExpectedGeneration::Unknown)
        .await
        .unwrap();
    assert_eq!(
        again.deleted_blobs, 0,
        "{label}: a second cleanup still found garbage"
    );
    lease.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_crash_point_loses_a_committed_snapshot() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    dataset::mixed_bytes(&data, 2 << 20, 3).unwrap();
    let m1 = dataset::manifest(&data).unwrap();

    // Starting state: s1 committed.
    let base = MemoryBlobStore::new();
    let clock: Arc<dyn Clock> = Arc::new(Shifted(chrono::Duration::zero()));
    let base_arc: Arc<dyn BlobStore> = Arc::new(base.duplicate());
    let repo = Repository::new(Arc::clone(&base_arc), Arc::clone(&clock), settings());
    let lease = Lease::acquire(
        Arc::clone(&base_arc),
        STRICT,
        Arc::clone(&clock),
        owner("setup"),
        LeaseConfig::default(),
    )
    .await
    .unwrap();
    let s1 = create_snapshot(
        &repo,
        &lease,
        ExpectedGeneration::Empty,
        request("s1", &data, 2),
        Progress::new(),
    )
    .await
    .unwrap();
    lease.release().await.unwrap();
    drop(base);

    dataset::mutate(&data, 9).unwrap();
    let m2 = dataset::manifest(&data).unwrap();
    let mut manifests = BTreeMap::new();
    manifests.insert("s1".to_owned(), m1);
    manifests.insert("s2".to_owned(), m2);

    // A memory store is cheap to copy: take the state with s1 (and, for delete and cleanup,
    // with s2 too) as the starting point of every crash run.
    let with_s1 = snapshot_of(&base_arc);
    let with_both = {
        let store: Arc<dyn BlobStore> = Arc::new(with_s1.duplicate());
        run_op(
            Op::Snapshot,
            Arc::clone(&store),
            Arc::clone(&clock),
            &data,
            &s1.summary.uuid,
        )
        .await
        .unwrap();
        snapshot_of(&store)
    };

    let mut crash_points = 0;
    // What each operation must never lose, whenever it dies.
    let cases: [(Op, &MemoryBlobStore, &[&str]); 3] = [
        (Op::Snapshot, &with_s1, &["s1"]),
        (Op::Delete, &with_both, &["s2"]),
        (Op::Cleanup, &with_both, &["s1", "s2"]),
    ];
    for (op, start, required) in cases {
        for writes in 0.. {
            let copy: Arc<dyn BlobStore> = Arc::new(start.duplicate());
            let crashing = Arc::new(CrashingStore::new(Arc::clone(&copy), writes));
            let result = run_op(
                op,
                Arc::clone(&crashing) as Arc<dyn BlobStore>,
                Arc::clone(&clock),
                &data,
                &s1.summary.uuid,
            )
            .await;
            let label = format!("{op:?} crashed after {writes} writes");
            match result {
                Err(_) if crashing.crashed() => crash_points += 1,
                Err(e) => panic!("{label}: failed without crashing: {e}"),
                Ok(()) => {
                    check_recovery(
                        copy,
                        &manifests,
                        required,
                        work.path(),
                        &format!("{op:?} completed"),
                    )
                    .await;
                    break;
                }
            }
            check_recovery(copy, &manifests, required, work.path(), &label).await;
        }
    }
    assert!(
        crash_points >= 20,
        "only {crash_points} crash points exercised"
    );
    eprintln!("exercised {crash_points} crash points");
}

/// A copy of whatever `store` (a memory store behind the trait) holds.
fn snapshot_of(store: &Arc<dyn BlobStore>) -> MemoryBlobStore {
    let listed = futures::executor::block_on(store.list("")).unwrap();
    let copy = MemoryBlobStore::new();
    for m in listed {
        let (bytes, _) = futures::executor::block_on(store.get(&m.key)).unwrap();
        futures::executor::block_on(copy.put(&m.key, bytes, coffer_repository::PutMode::Overwrite))
            .unwrap();
    }
    copy
}
