//! Flaky storage and damaged data: with 10 % of S3 requests failing (5xx, SlowDown, resets,
//! truncated bodies), snapshots and restores still succeed and verify; a corrupted or missing
//! pack fails the restore with the blob's name and leaves the target untouched.

mod common;

use std::sync::Arc;

use coffer_repository::clock::Clock;
use coffer_repository::lease::{Lease, LeaseConfig};
use coffer_repository::progress::Progress;
use coffer_repository::snapshot::create_snapshot;
use coffer_repository::store::S3BlobStore;
use coffer_repository::{BlobStore, Capabilities, ExpectedGeneration, Repository, RepositoryError};
use coffer_testfixtures::dataset;
use coffer_testfixtures::fake_s3::{FakeS3, FakeS3Config, FaultAction, FaultRule};
use common::lifecycle::{Later, owner, request, settings};

const STRICT: Capabilities = Capabilities {
    conditional_create: true,
    conditional_update: true,
};

fn s3_store(fake: &FakeS3, retries: u32) -> Arc<S3BlobStore> {
    common::s3_store(&fake.target(), "repo", Some(retries))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_percent_of_requests_fail_and_everything_still_works() {
    let fake = FakeS3::start(FakeS3Config::default().seed(7))
        .await
        .unwrap();
    let store = s3_store(&fake, 8);
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    dataset::mixed_bytes(&data, 4 << 20, 21).unwrap();
    let m1 = dataset::manifest(&data).unwrap();

    for action in [
        FaultAction::InternalError,
        FaultAction::SlowDown { retry_after: None },
        FaultAction::Reset,
        FaultAction::TruncateBody { after: 100 },
    ] {
        fake.inject(FaultRule::new(action).probability(0.025));
    }
    let clock: Arc<dyn Clock> = Arc::new(Later);
    let repo = Repository::new(
        Arc::clone(&store) as Arc<dyn BlobStore>,
        Arc::clone(&clock),
        settings(),
    );
    let lease = Lease::acquire(
        Arc::clone(&store) as Arc<dyn BlobStore>,
        STRICT,
        Arc::clone(&clock),
        owner("faults"),
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
    dataset::mutate(&data, 2).unwrap();
    let m2 = dataset::manifest(&data).unwrap();
    let s2 = create_snapshot(
        &repo,
        &lease,
        ExpectedGeneration::At(0),
        request("s2", &data, 2),
        Progress::new(),
    )
    .await
    .unwrap();
    let (_, root) = repo.load(ExpectedGeneration::At(1)).await.unwrap();
    for (snap, m) in [(&s1, &m1), (&s2, &m2)] {
        let target = work.path().join(&snap.summary.name);
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
        m.ensure_same(&dataset::manifest(&target).unwrap()).unwrap();
    }
    lease.release().await.unwrap();
    let fired: usize = fake.log().iter().filter(|e| !e.faults.is_empty()).count();
    assert!(fired >= 5, "the faults must actually have fired ({fired})");
    eprintln!("{fired} of {} requests hit a fault", fake.log().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_or_missing_pack_fails_the_restore_by_name_and_changes_nothing() {
    let fake = FakeS3::start_default().await.unwrap();
    let store = s3_store(&fake, 2);
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    dataset::mixed_bytes(&data, 2 << 20, 4).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(Later);
    let repo = Repository::new(
        Arc::clone(&store) as Arc<dyn BlobStore>,
        Arc::clone(&clock),
        settings(),
    );
    let lease = Lease::acquire(
        Arc::clone(&store) as Arc<dyn BlobStore>,
        STRICT,
        Arc::clone(&clock),
        owner("corrupt"),
        LeaseConfig::default(),
    )
    .await
    .unwrap();
    let s1 = create_snapshot(
        &repo,
        &lease,
        ExpectedGeneration::Empty,
        request("s1", &data, 1),
        Progress::new(),
    )
    .await
    .unwrap();
    lease.release().await.unwrap();
    let (_, root) = repo.load(ExpectedGeneration::At(0)).await.unwrap();

    // An existing target with content that must survive a failed restore.
    let target = work.path().join("target");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("precious"), b"keep me").unwrap();

    let bucket = fake.target().bucket;
    let packs: Vec<String> = fake
        .keys(&bucket)
        .into_iter()
        .filter(|k| k.contains("/__"))
        .collect();
    assert!(!packs.is_empty());
    let victim = packs[packs.len() / 2].clone();
    let mut bytes = fake.object(&bucket, &victim).unwrap().data.to_vec();
    bytes[10] ^= 0xff;
    fake.put_object(&bucket, &victim, bytes::Bytes::from(bytes))
        .unwrap();
    let err = coffer_repository::restore::restore_index(
        &repo,
        &root,
        &s1.summary.uuid,
        "idx",
        &target,
        Progress::new(),
    )
    .await
    .unwrap_err();
    let blob = victim.strip_prefix("repo/").unwrap();
    assert!(
        matches!(&err, RepositoryError::Corrupted { blob: b, .. } if b == blob),
        "{err}"
    );
    assert_eq!(std::fs::read(target.join("precious")).unwrap(), b"keep me");
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 1);
    let leftovers: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");

    fake.delete_object(&bucket, &victim).unwrap();
    let err = coffer_repository::restore::restore_index(
        &repo,
        &root,
        &s1.summary.uuid,
        "idx",
        &target,
        Progress::new(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains(blob), "{err}");
    assert_eq!(std::fs::read(target.join("precious")).unwrap(), b"keep me");
}
