//! A crafted repository cannot make a restore write outside its target (the zip-slip class
//! of bug): stored paths that climb out, absolute paths and symlinks pointing out are refused,
//! and nothing is written anywhere, not even in the target.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use coffer_repository::clock::Clock;
use coffer_repository::envelope::{self, Kind};
use coffer_repository::lease::{Lease, LeaseConfig};
use coffer_repository::model::{FileEntry, FileKind, ShardSnapshot};
use coffer_repository::progress::Progress;
use coffer_repository::snapshot::create_snapshot;
use coffer_repository::store::MemoryBlobStore;
use coffer_repository::{
    BlobStore, Capabilities, ExpectedGeneration, PutMode, Repository, RepositoryError, layout,
};
use common::lifecycle::{Later, owner, request, settings};

const STRICT: Capabilities = Capabilities {
    conditional_create: true,
    conditional_update: true,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_paths_and_symlinks_never_escape_the_target() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    std::fs::create_dir_all(data.join("dir")).unwrap();
    std::fs::write(data.join("dir/file.txt"), b"payload").unwrap();
    let store: Arc<dyn BlobStore> = Arc::new(MemoryBlobStore::new());
    let clock: Arc<dyn Clock> = Arc::new(Later);
    let repo = Repository::new(Arc::clone(&store), Arc::clone(&clock), settings());
    let lease = Lease::acquire(
        Arc::clone(&store),
        STRICT,
        clock,
        owner("hostile"),
        LeaseConfig::default(),
    )
    .await
    .unwrap();
    let snap = create_snapshot(
        &repo,
        &lease,
        ExpectedGeneration::Empty,
        request("s", &data, 1),
        Progress::new(),
    )
    .await
    .unwrap();
    lease.release().await.unwrap();
    let (_, root) = repo.load(ExpectedGeneration::At(0)).await.unwrap();
    let index_id = root.indices["idx"].id.clone();
    let key = layout::shard_snapshot(&index_id, 0, &snap.summary.uuid);
    let (bytes, _) = store.get(&key).await.unwrap();
    let original: ShardSnapshot = envelope::decode(&key, Kind::ShardSnapshot, &bytes).unwrap();

    let file = original
        .files
        .iter()
        .find(|f| f.kind == FileKind::File)
        .unwrap()
        .clone();
    let symlink = |path: &str, target: &str| FileEntry {
        path: path.into(),
        kind: FileKind::Symlink,
        size: 0,
        mode: 0o777,
        mtime_ns: 0,
        inode: 0,
        ctime_ns: 0,
        chunks: vec![],
        target: Some(target.into()),
    };
    let attacks: Vec<(&str, Vec<FileEntry>)> = vec![
        (
            "climbing path",
            vec![FileEntry {
                path: "../../escaped.txt".into(),
                ..file.clone()
            }],
        ),
        (
            "absolute path",
            vec![FileEntry {
                path: work.path().join("abs.txt").to_string_lossy().into_owned(),
                ..file.clone()
            }],
        ),
        (
            "dot segments",
            vec![FileEntry {
                path: "dir/./../../escaped.txt".into(),
                ..file.clone()
            }],
        ),
        ("symlink out", vec![symlink("link", "../../outside")]),
        ("absolute symlink", vec![symlink("link", "/etc")]),
        // A symlink to a directory inside, followed by a file "through" it, must not let the
        // file land where the link points: links are created last and files never follow them.
        (
            "file through a symlink",
            vec![
                symlink("dir", "../.."),
                FileEntry {
                    path: "dir/escaped.txt".into(),
                    ..file.clone()
                },
            ],
        ),
    ];
    for (name, files) in attacks {
        let crafted = ShardSnapshot {
            files,
            ..original.clone()
        };
        let blob = envelope::encode(Kind::ShardSnapshot, &crafted).unwrap();
        store
            .put(&key, Bytes::from(blob), PutMode::Overwrite)
            .await
            .unwrap();
        let parent = work
            .path()
            .join(format!("restore-{}", name.replace(' ', "-")));
        let target = parent.join("a").join("target");
        let result = coffer_repository::restore::restore_index(
            &repo,
            &root,
            &snap.summary.uuid,
            "idx",
            &target,
            Progress::new(),
        )
        .await;
        match result {
            Err(RepositoryError::UnsafePath { .. }) => {}
            Err(RepositoryError::Io { .. }) if name == "file through a symlink" => {}
            other => panic!("{name}: expected a refusal, got {other:?}"),
        }
        assert!(
            !target.exists(),
            "{name}: a refused restore leaves no target"
        );
        for escaped in [
            work.path().join("escaped.txt"),
            parent.join("escaped.txt"),
            work.path().join("abs.txt"),
            parent.join("outside"),
        ] {
            assert!(!escaped.exists(), "{name}: wrote {}", escaped.display());
        }
        let leftovers: Vec<_> = std::fs::read_dir(parent.join("a"))
            .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(leftovers.is_empty(), "{name}: left {leftovers:?}");
    }
}
