//! Content-defined chunking at work: 4 KiB inserted in the middle of a 100 MiB file
//! re-uploads a few chunks, not the file.

mod common;

use std::io::Write;
use std::sync::Arc;

use coffer_repository::clock::Clock;
use coffer_repository::lease::{Lease, LeaseConfig};
use coffer_repository::progress::Progress;
use coffer_repository::snapshot::create_snapshot;
use coffer_repository::store::MemoryBlobStore;
use coffer_repository::{
    BlobStore, Capabilities, ExpectedGeneration, Repository, RepositorySettings,
};
use common::lifecycle::{Later, owner, request};

fn pseudo_random(len: usize, mut x: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_in_a_large_file_uploads_only_a_few_chunks() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let file = data.join("disk.img");
    let mut content = pseudo_random(100 << 20, 0x9E37_79B9_7F4A_7C15);
    std::fs::write(&file, &content).unwrap();

    let store: Arc<dyn BlobStore> = Arc::new(MemoryBlobStore::new());
    let clock: Arc<dyn Clock> = Arc::new(Later);
    // Production chunking: 1 MiB average (256 KiB to 4 MiB), 8 MiB packs.
    let repo = Repository::new(
        Arc::clone(&store),
        Arc::clone(&clock),
        RepositorySettings::default(),
    );
    let caps = Capabilities {
        conditional_create: true,
        conditional_update: true,
    };
    let lease = Lease::acquire(
        Arc::clone(&store),
        caps,
        clock,
        owner("dedup"),
        LeaseConfig::default(),
    )
    .await
    .unwrap();
    let first = create_snapshot(
        &repo,
        &lease,
        ExpectedGeneration::Empty,
        request("s1", &data, 1),
        Progress::new(),
    )
    .await
    .unwrap();
    assert!(first.summary.stats.uploaded_bytes >= 100 << 20);

    let middle = content.len() / 2 + 12_345;
    content.splice(middle..middle, pseudo_random(4096, 42));
    let mut f = std::fs::File::create(&file).unwrap();
    f.write_all(&content).unwrap();
    f.sync_all().unwrap();
    drop(f);

    let second = create_snapshot(
        &repo,
        &lease,
        ExpectedGeneration::At(0),
        request("s2", &data, 1),
        Progress::new(),
    )
    .await
    .unwrap();
    let stats = second.summary.stats;
    assert_eq!(stats.incremental_file_count, 1);
    assert_eq!(
        stats.incremental_size_in_bytes,
        (100 << 20) + 4096,
        "the changed file is read whole"
    );
    // One or two chunks around the insert change (each at most 4 MiB), plus metadata.
    assert!(
        stats.uploaded_bytes < 9 << 20,
        "uploaded {} bytes for a 4 KiB insert",
        stats.uploaded_bytes
    );
    eprintln!(
        "4 KiB insert into 100 MiB: uploaded {} bytes",
        stats.uploaded_bytes
    );
    lease.release().await.unwrap();
}
