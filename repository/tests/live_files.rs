//! A file that changes while it is read is read again or reported, never stored torn.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use coffer_repository::clock::Clock;
use coffer_repository::lease::{Lease, LeaseConfig};
use coffer_repository::model::SnapshotState;
use coffer_repository::progress::Progress;
use coffer_repository::snapshot::create_snapshot;
use coffer_repository::store::MemoryBlobStore;
use coffer_repository::{BlobStore, Capabilities, ExpectedGeneration, Repository};
use common::lifecycle::{Later, owner, request, settings};

const VERSION_LEN: usize = 3 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_rewritten_during_the_snapshot_is_never_stored_torn() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let hot = data.join("hot.bin");
    std::fs::write(&hot, vec![0u8; VERSION_LEN]).unwrap();
    std::fs::write(data.join("cold.txt"), b"steady").unwrap();

    // A writer rewrites the file in place, version after version (every byte of version k is
    // k), so any mixture of two versions is detectable.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, hot) = (Arc::clone(&stop), hot.clone());
        std::thread::spawn(move || {
            use std::io::{Seek, Write};
            let mut k: u8 = 1;
            while !stop.load(Ordering::Relaxed) {
                let mut f = std::fs::OpenOptions::new().write(true).open(&hot).unwrap();
                let block = vec![k; 65536];
                for _ in 0..(VERSION_LEN / 65536) {
                    f.write_all(&block).unwrap();
                }
                f.rewind().unwrap();
                k = k.wrapping_add(1).max(1);
            }
        })
    };

    let store: Arc<dyn BlobStore> = Arc::new(MemoryBlobStore::new());
    let clock: Arc<dyn Clock> = Arc::new(Later);
    let repo = Repository::new(Arc::clone(&store), Arc::clone(&clock), settings());
    let caps = Capabilities {
        conditional_create: true,
        conditional_update: true,
    };
    let lease = Lease::acquire(
        Arc::clone(&store),
        caps,
        clock,
        owner("live"),
        LeaseConfig::default(),
    )
    .await
    .unwrap();
    let mut req = request("live", &data, 1);
    req.partial = true;
    let outcome = create_snapshot(
        &repo,
        &lease,
        ExpectedGeneration::Empty,
        req,
        Progress::new(),
    )
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();

    match outcome.summary.state {
        SnapshotState::Partial => {
            let reason = &outcome.summary.failures[0].reason;
            assert!(
                reason.contains("hot.bin") && reason.contains("changing"),
                "{reason}"
            );
        }
        SnapshotState::Success => {
            // It caught a quiet moment: what was stored must be one whole version.
            let (_, root) = repo.load(ExpectedGeneration::At(0)).await.unwrap();
            let target = work.path().join("restored");
            coffer_repository::restore::restore_index(
                &repo,
                &root,
                &outcome.summary.uuid,
                "idx",
                &target,
                Progress::new(),
            )
            .await
            .unwrap();
            let bytes = std::fs::read(target.join("hot.bin")).unwrap();
            assert_eq!(bytes.len(), VERSION_LEN);
            assert!(
                bytes.iter().all(|b| *b == bytes[0]),
                "a torn file was stored"
            );
        }
        other => panic!("unexpected state {other:?}"),
    }
    lease.release().await.unwrap();
}
