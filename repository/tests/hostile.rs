//! A crafted repository cannot make a restore write outside its target (the zip-slip class
//! of bug): stored paths that climb out, absolute paths and symlinks pointing out are refused,
//! and nothing is written anywhere, not even in the target.

mod common;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use coffer_repository::clock::Clock;
use coffer_repository::envelope::{self, Kind};
use coffer_repository::lease::{Lease, LeaseConfig};
use coffer_repository::model::{FileEntry, FileKind, RepositoryData, ShardSnapshot};
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

/// A repository holding one snapshot of a one-file index, and what a crafted shard
/// snapshot must overwrite to attack a restore.
struct Crafted {
    work: tempfile::TempDir,
    store: Arc<dyn BlobStore>,
    repo: Repository,
    root: RepositoryData,
    snapshot_uuid: String,
    /// The shard snapshot blob a crafted repository rewrites.
    key: String,
    original: ShardSnapshot,
}

impl Crafted {
    async fn new() -> Crafted {
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
        Crafted {
            work,
            store,
            repo,
            root,
            snapshot_uuid: snap.summary.uuid,
            key,
            original,
        }
    }

    fn file(&self) -> FileEntry {
        self.original
            .files
            .iter()
            .find(|f| f.kind == FileKind::File)
            .unwrap()
            .clone()
    }

    /// Replaces the shard snapshot's file list, then restores into `target`.
    async fn restore(&self, files: Vec<FileEntry>, target: &Path) -> Result<(), RepositoryError> {
        let crafted = ShardSnapshot {
            files,
            ..self.original.clone()
        };
        let blob = envelope::encode(Kind::ShardSnapshot, &crafted).unwrap();
        self.store
            .put(&self.key, Bytes::from(blob), PutMode::Overwrite)
            .await
            .unwrap();
        coffer_repository::restore::restore_index(
            &self.repo,
            &self.root,
            &self.snapshot_uuid,
            "idx",
            target,
            Progress::new(),
        )
        .await
        .map(|_| ())
    }
}

fn symlink(path: &str, target: &str) -> FileEntry {
    FileEntry {
        path: path.into(),
        kind: FileKind::Symlink,
        size: 0,
        mode: 0o777,
        mtime_ns: 0,
        inode: 0,
        ctime_ns: 0,
        chunks: vec![],
        target: Some(target.into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_paths_and_symlinks_never_escape_the_target() {
    let c = Crafted::new().await;
    let work = c.work.path();
    let file = c.file();
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
                path: work.join("abs.txt").to_string_lossy().into_owned(),
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
        // The same with a link that points inside: the file is created first, as a real
        // directory, so the link cannot take its place.
        (
            "file under an inside symlink",
            vec![
                symlink("dir", "."),
                FileEntry {
                    path: "dir/escaped.txt".into(),
                    ..file.clone()
                },
            ],
        ),
        // `s -> .` is inside, but `s/../x` climbs from where `s` leads: out of the index.
        (
            "climb through a symlink",
            vec![symlink("s", "."), symlink("l", "s/../outside")],
        ),
        // `a -> .` is inside, and `a/b/l -> ../../outside` looks inside from `a/b`, but
        // creating `a/b/l` through the link `a` would put the link one level higher.
        (
            "symlink under a symlink",
            vec![symlink("a", "."), symlink("a/b/l", "../../outside")],
        ),
        // The same entry twice, or a file and a link at one path: no second write wins.
        ("duplicate file", vec![file.clone(), file.clone()]),
        (
            "file and symlink at one path",
            vec![file.clone(), symlink(&file.path, "../../outside")],
        ),
        (
            "symlink and file at one path",
            vec![symlink(&file.path, "x"), file.clone()],
        ),
    ];
    for (name, files) in attacks {
        let parent = work.join(format!("restore-{}", name.replace(' ', "-")));
        let target = parent.join("a").join("target");
        let result = c.restore(files, &target).await;
        match result {
            Err(RepositoryError::UnsafePath { .. }) => {}
            // Refused by the file system (the path exists already): still nothing written.
            Err(RepositoryError::Io { .. })
                if [
                    "file through a symlink",
                    "file under an inside symlink",
                    "duplicate file",
                    "file and symlink at one path",
                    "symlink and file at one path",
                ]
                .contains(&name) => {}
            other => panic!("{name}: expected a refusal, got {other:?}"),
        }
        assert!(
            !target.exists(),
            "{name}: a refused restore leaves no target"
        );
        for escaped in [
            work.join("escaped.txt"),
            parent.join("escaped.txt"),
            work.join("abs.txt"),
            parent.join("outside"),
            parent.join("a").join("outside"),
        ] {
            assert!(!escaped.exists(), "{name}: wrote {}", escaped.display());
        }
        let leftovers: Vec<_> = std::fs::read_dir(parent.join("a"))
            .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(leftovers.is_empty(), "{name}: left {leftovers:?}");
    }
}

/// Set-id bits in a crafted repository are not restored: restore may run as a privileged
/// user, and a set-uid executable planted in the target would be a privilege escalation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_id_bits_are_not_restored() {
    use std::os::unix::fs::PermissionsExt;
    let c = Crafted::new().await;
    let file = c.file();
    let files = vec![
        FileEntry {
            path: "bin".into(),
            kind: FileKind::Dir,
            size: 0,
            mode: 0o2775,
            mtime_ns: 0,
            inode: 0,
            ctime_ns: 0,
            chunks: vec![],
            target: None,
        },
        FileEntry {
            path: "bin/tool".into(),
            mode: 0o6755,
            ..file
        },
    ];
    let target = c.work.path().join("restored");
    c.restore(files, &target).await.unwrap();
    let mode = |p: &str| {
        std::fs::metadata(target.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("bin/tool"), 0o755);
    assert_eq!(mode("bin"), 0o775);
    assert_eq!(std::fs::read(target.join("bin/tool")).unwrap(), b"payload");
}

/// Someone who can write an `fs` repository's directory plants symlinks to a directory
/// outside: no read, write, listing or deletion goes through them. (The listing matters
/// most: cleanup deletes what it lists and no snapshot references.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_symlinks_in_an_fs_repository_are_not_followed() {
    use coffer_repository::store::FsBlobStore;
    let work = tempfile::tempdir().unwrap();
    let outside = work.path().join("outside");
    std::fs::create_dir_all(outside.join("0")).unwrap();
    std::fs::write(outside.join("victim"), b"precious").unwrap();
    std::fs::write(outside.join("0/victim"), b"precious").unwrap();
    let root = work.path().join("repo");
    let store = FsBlobStore::open(&root).unwrap();
    store
        .put(
            "indices/real/0/blob",
            Bytes::from_static(b"ok"),
            PutMode::Overwrite,
        )
        .await
        .unwrap();
    // A linked directory, and a linked file.
    std::os::unix::fs::symlink(&outside, root.join("indices/linked")).unwrap();
    std::os::unix::fs::symlink(outside.join("victim"), root.join("indices/real/0/file")).unwrap();
    let refused = |r: Result<(), RepositoryError>, what: &str| match r {
        Err(RepositoryError::UnsafePath { .. }) => {}
        other => panic!("{what}: expected a refusal, got {other:?}"),
    };
    refused(store.get("indices/linked/victim").await.map(|_| ()), "get");
    refused(
        store.get("indices/real/0/file").await.map(|_| ()),
        "get a linked file",
    );
    refused(
        store
            .get_range("indices/linked/victim", 0..1)
            .await
            .map(|_| ()),
        "get_range",
    );
    refused(
        store.head("indices/linked/victim").await.map(|_| ()),
        "head",
    );
    refused(store.list("indices/linked/").await.map(|_| ()), "list");
    refused(
        store.list("indices/linked/0/").await.map(|_| ()),
        "list below",
    );
    refused(
        store
            .put(
                "indices/linked/new",
                Bytes::from_static(b"x"),
                PutMode::Overwrite,
            )
            .await
            .map(|_| ()),
        "put",
    );
    refused(
        store
            .delete_batch(&["indices/linked/victim".to_owned()])
            .await,
        "delete",
    );
    refused(
        store
            .delete_batch(&["indices/linked/0/victim".to_owned()])
            .await,
        "delete below",
    );
    // A listing from above skips the links: nothing outside is offered as a key.
    let keys: Vec<String> = store
        .list("indices/")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(keys, vec!["indices/real/0/blob"]);
    assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"precious");
    assert_eq!(
        std::fs::read(outside.join("0/victim")).unwrap(),
        b"precious"
    );
    assert!(!outside.join("new").exists());
}

/// Names a crafted root gives to blobs (an index's folder, a shard generation, a snapshot's
/// uuid) become blob keys; one that climbs out of the repository is refused before any
/// read, so nothing outside is read, and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_blob_names_in_the_root_are_refused() {
    let c = Crafted::new().await;
    let mut by_id = c.root.clone();
    by_id.indices.get_mut("idx").unwrap().id = "../../escaped".to_owned();
    let mut by_generation = c.root.clone();
    by_generation
        .indices
        .get_mut("idx")
        .unwrap()
        .shard_generations = vec![Some("../../../x".to_owned())];
    for (name, root, uuid) in [
        ("index id", &by_id, c.snapshot_uuid.as_str()),
        ("shard generation", &by_generation, c.snapshot_uuid.as_str()),
        ("snapshot uuid", &c.root, "../../../x"),
    ] {
        let target = c.work.path().join(name.replace(' ', "-")).join("target");
        let result = coffer_repository::restore::restore_index(
            &c.repo,
            root,
            uuid,
            "idx",
            &target,
            Progress::new(),
        )
        .await;
        match result {
            Err(RepositoryError::UnsafePath { .. }) => {}
            // A uuid the root does not list is not in the snapshot at all.
            Err(RepositoryError::NotFound { .. }) if name == "snapshot uuid" => {}
            other => panic!("{name}: expected a refusal, got {other:?}"),
        }
        assert!(
            !target.exists(),
            "{name}: a refused restore leaves no target"
        );
    }
}
