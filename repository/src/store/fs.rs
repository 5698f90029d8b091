//! A repository in a local (or network-mounted) directory.
//!
//! Every write goes to a temporary sibling (`.<name>.tmp-<random>`), is fsynced, and is then
//! published atomically: `rename` for overwrites, `link` for create-only writes (which fails
//! with `EEXIST` if the name is taken, atomically, even on NFS), followed by an fsync of the
//! directory. Conditional updates hold an exclusive `flock` on a per-object lock file while
//! they compare and swap. ETags are derived from the inode, size and modification time, so
//! listing a directory never reads file contents.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use super::{BlobStore, ObjectMeta, PutMode, PutResult, validate_key};
use crate::{RepositoryError, Result};

const TMP_MARKER: &str = ".tmp-";

/// A blob store rooted at a directory that the caller has already confined to an allowed
/// location.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    /// A store rooted at `root`, which is created if missing.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root)
            .map_err(|e| RepositoryError::io("creating repository directory", &root, e))?;
        Ok(Self { root })
    }

    /// The directory this store writes to.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        refuse_symlinks(&self.root, key)?;
        Ok(self.root.join(key))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Path) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || f(&root))
            .await
            .map_err(|e| RepositoryError::Storage {
                operation: "fs task",
                key: String::new(),
                code: None,
                message: e.to_string(),
                retryable: false,
            })?
    }
}

fn etag_of(meta: &fs::Metadata) -> String {
    format!(
        "{:x}-{:x}-{:x}.{:x}",
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec()
    )
}

fn not_found_or(
    key: &str,
    context: &'static str,
    path: &Path,
    e: std::io::Error,
) -> RepositoryError {
    if e.kind() == std::io::ErrorKind::NotFound {
        RepositoryError::NotFound {
            key: key.to_owned(),
        }
    } else {
        RepositoryError::io(context, path, e)
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| RepositoryError::io("syncing directory", dir, e))
}

/// Creates `dir` and any missing parents below `root`, syncing each parent whose entries
/// changed so that the new directories survive a crash.
fn create_dirs(root: &Path, dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = dir.parent().unwrap_or(root);
    if parent != root {
        create_dirs(root, parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => sync_dir(parent),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(RepositoryError::io("creating directory", dir, e)),
    }
}

fn lock_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.lock"))
}

/// Writes `data` to a fresh temporary sibling of `target` and fsyncs it.
fn write_temp(target: &Path, data: &[u8]) -> Result<(PathBuf, fs::Metadata)> {
    let mut rnd = [0u8; 8];
    getrandom::fill(&mut rnd).map_err(|e| {
        RepositoryError::io(
            "reading random bytes",
            target,
            std::io::Error::other(e.to_string()),
        )
    })?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = target.with_file_name(format!(".{name}{TMP_MARKER}{}", hex::encode(rnd)));
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        f.metadata()
    })();
    match result {
        Ok(meta) => Ok((tmp, meta)),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(RepositoryError::io("writing temporary file", &tmp, e))
        }
    }
}

fn put_blocking(
    root: &Path,
    key: &str,
    target: &Path,
    data: &[u8],
    mode: &PutMode,
) -> Result<PutResult> {
    let dir = target.parent().unwrap_or(root);
    create_dirs(root, dir)?;
    let (tmp, meta) = write_temp(target, data)?;
    let etag = etag_of(&meta);
    let publish = || -> Result<()> {
        match mode {
            PutMode::Overwrite => fs::rename(&tmp, target)
                .map_err(|e| RepositoryError::io("renaming into place", target, e)),
            PutMode::Create => {
                let linked = fs::hard_link(&tmp, target);
                let _ = fs::remove_file(&tmp);
                match linked {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Err(RepositoryError::AlreadyExists {
                            key: key.to_owned(),
                        })
                    }
                    Err(e) => Err(RepositoryError::io("linking into place", target, e)),
                }
            }
            PutMode::Update(expected) => {
                let lock_path = lock_path(target);
                let lock = OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&lock_path)
                    .map_err(|e| RepositoryError::io("opening lock file", &lock_path, e))?;
                lock.lock()
                    .map_err(|e| RepositoryError::io("locking", &lock_path, e))?;
                let current = fs::metadata(target).map(|m| etag_of(&m));
                match current {
                    Ok(cur) if cur == *expected => fs::rename(&tmp, target)
                        .map_err(|e| RepositoryError::io("renaming into place", target, e)),
                    Ok(_) => Err(RepositoryError::PreconditionFailed {
                        key: key.to_owned(),
                    }),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        Err(RepositoryError::PreconditionFailed {
                            key: key.to_owned(),
                        })
                    }
                    Err(e) => Err(RepositoryError::io("reading", target, e)),
                }
            }
        }
    };
    let result = publish();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(dir)?;
    Ok(PutResult { etag })
}

fn walk(
    root: &Path,
    dir: &Path,
    name_prefix: &str,
    out: &mut Vec<ObjectMeta>,
    temps: bool,
) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(RepositoryError::io("listing", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| RepositoryError::io("listing", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(name_prefix) {
            continue;
        }
        let is_temp = name.starts_with('.') && name.contains(TMP_MARKER);
        if name.starts_with('.') && !(temps && is_temp) {
            continue;
        }
        let path = entry.path();
        let meta =
            fs::symlink_metadata(&path).map_err(|e| RepositoryError::io("reading", &path, e))?;
        if meta.is_dir() {
            walk(root, &path, "", out, temps)?;
        } else if meta.is_file() {
            let key = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            out.push(ObjectMeta {
                key,
                size: meta.size(),
                etag: etag_of(&meta),
            });
        }
        // Symlinks and special files are never repository objects: ignored.
    }
    Ok(())
}

/// Refuses `key` when an existing part of its path below `root` is a symlink. coffer never
/// creates one, so one there was planted by someone else who can write the directory; going
/// through it would read, write, list or delete outside the repository (the listing of a
/// directory linked to `/etc` would offer its files to cleanup as garbage).
fn refuse_symlinks(root: &Path, key: &str) -> Result<()> {
    let mut path = root.to_path_buf();
    for seg in key.split('/') {
        path.push(seg);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(RepositoryError::UnsafePath {
                    path: key.to_owned(),
                    reason: "a symlink inside the repository (coffer never creates one)",
                });
            }
            Ok(_) => {}
            // Nothing below a missing part exists yet.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(RepositoryError::io("inspecting", &path, e)),
        }
    }
    Ok(())
}

fn list_blocking(root: &Path, prefix: &str, temps: bool) -> Result<Vec<ObjectMeta>> {
    let (dir_part, name_prefix) = match prefix.rfind('/') {
        Some(i) => (&prefix[..i], &prefix[i + 1..]),
        None => ("", prefix),
    };
    if !dir_part.is_empty() {
        validate_key(dir_part)?;
        refuse_symlinks(root, dir_part)?;
    }
    let mut out = Vec::new();
    walk(root, &root.join(dir_part), name_prefix, &mut out, temps)?;
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// Removes now-empty directories from `dir` up to (not including) the root, as
/// Elasticsearch's fs repository does, so deleted indices leave no folders behind.
fn prune_empty_dirs(root: &Path, mut dir: &Path) {
    while dir != root && dir.starts_with(root) {
        if fs::remove_dir(dir).is_err() {
            break;
        }
        match dir.parent() {
            Some(p) => dir = p,
            None => break,
        }
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    fn location(&self) -> String {
        format!("fs:{}", self.root.display())
    }

    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<PutResult> {
        let target = self.path(key)?;
        let key = key.to_owned();
        self.blocking(move |root| put_blocking(root, &key, &target, &data, &mode))
            .await
    }

    async fn get(&self, key: &str) -> Result<(Bytes, ObjectMeta)> {
        let path = self.path(key)?;
        let key = key.to_owned();
        self.blocking(move |_| {
            let mut f = File::open(&path).map_err(|e| not_found_or(&key, "opening", &path, e))?;
            let meta = f
                .metadata()
                .map_err(|e| RepositoryError::io("reading", &path, e))?;
            let mut buf = Vec::with_capacity(usize::try_from(meta.size()).unwrap_or(0));
            f.read_to_end(&mut buf)
                .map_err(|e| RepositoryError::io("reading", &path, e))?;
            Ok((
                Bytes::from(buf),
                ObjectMeta {
                    key,
                    size: meta.size(),
                    etag: etag_of(&meta),
                },
            ))
        })
        .await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        let path = self.path(key)?;
        let key = key.to_owned();
        self.blocking(move |_| {
            let mut f = File::open(&path).map_err(|e| not_found_or(&key, "opening", &path, e))?;
            let size = f
                .metadata()
                .map_err(|e| RepositoryError::io("reading", &path, e))?
                .size();
            if range.start > range.end || range.end > size {
                return Err(RepositoryError::Storage {
                    operation: "get_range",
                    key,
                    code: Some("InvalidRange".to_owned()),
                    message: format!("range {range:?} outside object of {size} bytes"),
                    retryable: false,
                });
            }
            let len = usize::try_from(range.end - range.start).map_err(|_| {
                RepositoryError::io("reading", &path, std::io::Error::other("range too large"))
            })?;
            let mut buf = vec![0u8; len];
            f.seek(SeekFrom::Start(range.start))
                .map_err(|e| RepositoryError::io("seeking", &path, e))?;
            f.read_exact(&mut buf)
                .map_err(|e| RepositoryError::io("reading", &path, e))?;
            Ok(Bytes::from(buf))
        })
        .await
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        let path = self.path(key)?;
        let key = key.to_owned();
        self.blocking(move |_| {
            let meta = fs::metadata(&path).map_err(|e| not_found_or(&key, "reading", &path, e))?;
            if !meta.is_file() {
                return Err(RepositoryError::NotFound { key });
            }
            Ok(ObjectMeta {
                key,
                size: meta.size(),
                etag: etag_of(&meta),
            })
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let prefix = prefix.to_owned();
        self.blocking(move |root| list_blocking(root, &prefix, false))
            .await
    }

    async fn delete_batch(&self, keys: &[String]) -> Result<()> {
        let paths = keys
            .iter()
            .map(|k| self.path(k))
            .collect::<Result<Vec<_>>>()?;
        self.blocking(move |root| {
            let mut dirs = std::collections::BTreeSet::new();
            for p in &paths {
                match fs::remove_file(p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(RepositoryError::io("deleting", p, e)),
                }
                // The compare-and-swap lock file, if this object was ever updated.
                let _ = fs::remove_file(lock_path(p));
                if let Some(d) = p.parent() {
                    dirs.insert(d.to_path_buf());
                }
            }
            for d in &dirs {
                sync_dir(d).or_else(|e| match e {
                    RepositoryError::Io { ref source, .. }
                        if source.kind() == std::io::ErrorKind::NotFound =>
                    {
                        Ok(())
                    }
                    other => Err(other),
                })?;
            }
            // Deepest first, so a parent is tried after its children.
            for d in dirs.iter().rev() {
                prune_empty_dirs(root, d);
            }
            Ok(())
        })
        .await
    }

    async fn remove_incomplete_writes(&self, prefix: &str) -> Result<(u64, u64)> {
        let prefix = prefix.to_owned();
        self.blocking(move |root| {
            let mut removed = (0, 0);
            for m in list_blocking(root, &prefix, true)? {
                let name = m.key.rsplit('/').next().unwrap_or_default();
                if name.starts_with('.') && name.contains(TMP_MARKER) {
                    let p = root.join(&m.key);
                    if fs::remove_file(&p).is_ok() {
                        removed.0 += 1;
                        removed.1 += m.size;
                    }
                }
            }
            Ok(removed)
        })
        .await
    }
}
