//! Reading an index's directory tree safely: listing it without following symlinks, reading a
//! file only if it is still the file that was listed, and noticing when it changes while it
//! is read, so that a torn file is never stored.
//!
//! The protocol a snapshot follows for each file to read:
//! 1. [`scan`] lists the tree (`lstat`, never following a symlink);
//! 2. [`read_file_chunks`] opens the file with `O_NOFOLLOW`, checks with `fstat` that it is
//!    still the listed file (inode, size, mtime, ctime, mode), chunks it, `fstat`s again after
//!    every chunk and at the end, and counts the bytes;
//! 3. on [`ReadOutcome::Changed`] the caller discards the chunk list it collected (chunks
//!    already packed are harmless garbage), refreshes the entry with [`rescan_entry`] (which
//!    returns `None` when the file is gone: it then leaves the snapshot) and tries again, a
//!    bounded number of times before reporting the shard as failed.
//!
//! Incremental snapshots reuse a file's previous entry when [`is_unchanged`] (or, better,
//! [`is_unchanged_since`]) says the file has not changed.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::chunker::{ChunkRef, Chunker, ChunkerParams, sha256};
use crate::model::{FileEntry, FileKind};
use crate::paths::join_inside;
use crate::{RepositoryError, Result};

/// One entry of the tree as `lstat` saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedEntry {
    /// Path relative to the index root, `/`-separated.
    pub path: String,
    /// File, directory or symlink.
    pub kind: FileKind,
    /// Size in bytes for files; 0 for directories and symlinks (as stored in a [`FileEntry`]).
    pub size: u64,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Status change time, nanoseconds since the epoch.
    pub ctime_ns: i64,
    /// Inode number.
    pub inode: u64,
    /// A symlink's target, as stored in the link.
    pub target: Option<String>,
}

impl ScannedEntry {
    /// The snapshot entry for this file with the given chunk hashes (hex).
    pub fn to_file_entry(&self, chunks: Vec<String>) -> FileEntry {
        FileEntry {
            path: self.path.clone(),
            kind: self.kind,
            size: self.size,
            mode: self.mode,
            mtime_ns: self.mtime_ns,
            inode: self.inode,
            ctime_ns: self.ctime_ns,
            chunks,
            target: self.target.clone(),
        }
    }
}

/// Why an entry of the tree was left out of a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// A Unix socket.
    Socket,
    /// A named pipe.
    Fifo,
    /// A block device.
    BlockDevice,
    /// A character device.
    CharDevice,
    /// Listed by its directory, but gone by the time it was examined.
    Vanished,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Socket => "socket",
            Self::Fifo => "named pipe",
            Self::BlockDevice => "block device",
            Self::CharDevice => "character device",
            Self::Vanished => "vanished during the scan",
        })
    }
}

/// An entry left out of a scan, for the snapshot's warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedEntry {
    /// Its relative path.
    pub path: String,
    /// Why.
    pub reason: SkipReason,
}

/// What [`scan`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// Files, directories and symlinks, sorted by path (byte order).
    pub entries: Vec<ScannedEntry>,
    /// What was left out, sorted by path.
    pub skipped: Vec<SkippedEntry>,
}

/// Lists the tree below `root` (itself not included) without following symlinks.
///
/// `root` may itself be a symlink to a directory. A name that is not UTF-8 fails the scan
/// (`UnsafePath`, naming it): it could not be stored faithfully. An unreadable directory
/// fails it too (`Io`). Sockets, pipes and devices are skipped and reported, and so are
/// entries deleted while the scan runs.
pub fn scan(root: &Path) -> Result<Scan> {
    let meta = fs::metadata(root)
        .map_err(|e| RepositoryError::io("cannot read the index directory", root, e))?;
    if !meta.is_dir() {
        return Err(RepositoryError::io(
            "the index path is not a directory",
            root,
            std::io::Error::from(ErrorKind::NotADirectory),
        ));
    }
    let mut out = Scan::default();
    // Depth-first with an explicit stack: no recursion limit on deep trees.
    let mut stack: Vec<(PathBuf, String)> = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let listing = match fs::read_dir(&dir) {
            Ok(l) => l,
            Err(e) if e.kind() == ErrorKind::NotFound && !rel.is_empty() => {
                // Its entry was recorded as a directory; it went away since.
                out.skipped.push(SkippedEntry {
                    path: rel,
                    reason: SkipReason::Vanished,
                });
                continue;
            }
            Err(e) => return Err(RepositoryError::io("cannot list the directory", dir, e)),
        };
        for item in listing {
            let item =
                item.map_err(|e| RepositoryError::io("cannot list the directory", &dir, e))?;
            let name = item.file_name();
            let Some(name) = name.to_str() else {
                let lossy = name.to_string_lossy();
                let path = if rel.is_empty() {
                    lossy.into_owned()
                } else {
                    format!("{rel}/{lossy}")
                };
                return Err(RepositoryError::UnsafePath {
                    path,
                    reason: "file name is not valid UTF-8",
                });
            };
            let path = if rel.is_empty() {
                name.to_owned()
            } else {
                format!("{rel}/{name}")
            };
            let abs = item.path();
            // `DirEntry::metadata` is an `fstatat` relative to the open directory that does
            // not follow symlinks: no path walk per entry.
            match examine(&abs, path, item.metadata())? {
                Examined::Entry(entry) => {
                    if entry.kind == FileKind::Dir {
                        stack.push((abs, entry.path.clone()));
                    }
                    out.entries.push(entry);
                }
                Examined::Skipped(skipped) => out.skipped.push(skipped),
            }
        }
    }
    out.entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    out.skipped.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

enum Examined {
    Entry(ScannedEntry),
    Skipped(SkippedEntry),
}

/// Classifies an entry from its `lstat` result.
fn examine(abs: &Path, path: String, lstat: std::io::Result<Metadata>) -> Result<Examined> {
    let vanished = |path| {
        Ok(Examined::Skipped(SkippedEntry {
            path,
            reason: SkipReason::Vanished,
        }))
    };
    let meta = match lstat {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return vanished(path),
        Err(e) => return Err(RepositoryError::io("cannot examine", abs, e)),
    };
    let ft = meta.file_type();
    let (kind, target) = if ft.is_file() {
        (FileKind::File, None)
    } else if ft.is_dir() {
        (FileKind::Dir, None)
    } else if ft.is_symlink() {
        let target = match fs::read_link(abs) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => return vanished(path),
            Err(e) => return Err(RepositoryError::io("cannot read the symlink", abs, e)),
        };
        match target.into_os_string().into_string() {
            Ok(t) => (FileKind::Symlink, Some(t)),
            Err(_) => {
                return Err(RepositoryError::UnsafePath {
                    path,
                    reason: "symlink target is not valid UTF-8",
                });
            }
        }
    } else {
        let reason = if ft.is_socket() {
            SkipReason::Socket
        } else if ft.is_fifo() {
            SkipReason::Fifo
        } else if ft.is_block_device() {
            SkipReason::BlockDevice
        } else {
            SkipReason::CharDevice
        };
        return Ok(Examined::Skipped(SkippedEntry { path, reason }));
    };
    let size = if kind == FileKind::File {
        meta.len()
    } else {
        0
    };
    Ok(Examined::Entry(ScannedEntry {
        path,
        kind,
        size,
        mode: meta.mode() & 0o7777,
        mtime_ns: mtime_ns(&meta),
        ctime_ns: ctime_ns(&meta),
        inode: meta.ino(),
        target,
    }))
}

fn mtime_ns(m: &Metadata) -> i64 {
    m.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(m.mtime_nsec())
}

fn ctime_ns(m: &Metadata) -> i64 {
    m.ctime()
        .saturating_mul(1_000_000_000)
        .saturating_add(m.ctime_nsec())
}

/// `lstat`s one entry again (to retry a file that changed while it was read). `None`: it no
/// longer exists, or is no longer a file, directory or symlink.
pub fn rescan_entry(root: &Path, path: &str) -> Result<Option<ScannedEntry>> {
    let abs = join_inside(root, path)?;
    Ok(
        match examine(&abs, path.to_owned(), fs::symlink_metadata(&abs))? {
            Examined::Entry(e) => Some(e),
            Examined::Skipped(_) => None,
        },
    )
}

/// How a read ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// The file was read whole and did not change: its chunks, in the order delivered, are
    /// the content the entry describes.
    Complete,
    /// The file is not the one scanned any more, or changed (or vanished) while it was read:
    /// discard the chunk list, [`rescan_entry`] and retry.
    Changed,
}

/// Reads the file `entry` (a [`FileKind::File`] from [`scan`]) and hands its chunks to
/// `on_chunk` in order (each borrowed until the next); see the module documentation for
/// the protocol.
///
/// Errors: `UnsafePath` for a path that is not a clean relative path or an entry that is not
/// a file; `Io` for a failure to open or read (other than the file having gone, which is
/// `Changed`); and whatever `on_chunk` returns, which stops the read.
pub fn read_file_chunks(
    root: &Path,
    entry: &ScannedEntry,
    params: &ChunkerParams,
    mut on_chunk: impl FnMut(ChunkRef<'_>) -> Result<()>,
) -> Result<ReadOutcome> {
    if entry.kind != FileKind::File {
        return Err(RepositoryError::UnsafePath {
            path: entry.path.clone(),
            reason: "not a regular file",
        });
    }
    let abs = join_inside(root, &entry.path)?;
    // O_NOFOLLOW: a file replaced by a symlink since the scan is not followed (ELOOP).
    // O_NONBLOCK: nor does one replaced by a FIFO block the open; for regular files it has
    // no effect on reads.
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&abs)
    {
        Ok(f) => f,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            return Ok(ReadOutcome::Changed);
        }
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(ReadOutcome::Changed),
        Err(e) => return Err(RepositoryError::io("cannot open", abs, e)),
    };
    let before = fstat(&file, &abs)?;
    if !before.is_file()
        || before.ino() != entry.inode
        || before.len() != entry.size
        || mtime_ns(&before) != entry.mtime_ns
        || ctime_ns(&before) != entry.ctime_ns
        || before.mode() & 0o7777 != entry.mode
    {
        return Ok(ReadOutcome::Changed);
    }
    let same = |now: &Metadata| {
        now.len() == before.len()
            && mtime_ns(now) == mtime_ns(&before)
            && ctime_ns(now) == ctime_ns(&before)
    };
    let mut chunker = Chunker::new(&file, *params);
    let mut read = 0u64;
    loop {
        // Borrowed from the chunker's buffer: the pack copies (or compresses) it anyway, so
        // an owned copy per chunk would only cost a memcpy and a buffer.
        let chunk = match chunker.next_ref() {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => return Err(RepositoryError::io("cannot read", abs, e)),
        };
        read += chunk.data.len() as u64;
        // Past the size it had when opened: it is growing, and what was read is not the
        // content of any one moment.
        if read > before.len() {
            return Ok(ReadOutcome::Changed);
        }
        // An fstat per chunk (about a microsecond per megabyte) stops a long read of a file
        // that is being rewritten early.
        if !same(&fstat(&file, &abs)?) {
            return Ok(ReadOutcome::Changed);
        }
        on_chunk(chunk)?;
    }
    drop(chunker);
    if read != before.len() || !same(&fstat(&file, &abs)?) {
        return Ok(ReadOutcome::Changed);
    }
    Ok(ReadOutcome::Complete)
}

fn fstat(file: &File, path: &Path) -> Result<Metadata> {
    file.metadata()
        .map_err(|e| RepositoryError::io("cannot stat", path, e))
}

/// Whether `current` is, by its metadata, the file `previous` recorded, so that a snapshot
/// may reuse `previous`'s chunks without reading it: same path, kind, size, mtime, mode,
/// inode and ctime (and target, for symlinks). ctime catches what mtime can be made to
/// hide (`touch -d`, a file renamed over another).
pub fn is_unchanged(previous: &FileEntry, current: &ScannedEntry) -> bool {
    previous.path == current.path
        && previous.kind == current.kind
        && previous.size == current.size
        && previous.mtime_ns == current.mtime_ns
        && previous.mode == current.mode
        && previous.inode == current.inode
        && previous.ctime_ns == current.ctime_ns
        && previous.target == current.target
}

/// How close to the start of a read a file's timestamps may be before they prove nothing:
/// filesystems stamp times from a coarse clock (a few milliseconds on Linux; a second or
/// two on some filesystems), so a write in the same tick as the read leaves them unchanged.
pub const RACY_MARGIN_NS: i64 = 2_000_000_000;

/// Now, in nanoseconds since the epoch, on the clock the kernel stamps files with. File
/// timestamps are compared with this, not with the injected clock of the repository: only
/// the kernel's own clock says whether a file was touched during a read.
#[allow(clippy::disallowed_methods)]
pub fn file_clock_now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// How recently before a read a file must have changed for a write *during* the read to
/// possibly leave its timestamps as they were. Linux stamps files from its coarse clock (one
/// jiffy, at most 10 ms) on ext4, xfs, btrfs and tmpfs, so a file last changed more than
/// this before the read would show any write during the read as a newer mtime/ctime.
/// Filesystems with coarser timestamps (FAT's 2 s, some network filesystems) are not fully
/// covered by this margin; the between-snapshots check (`RACY_MARGIN_NS`) is wider.
pub const HOT_MARGIN_NS: i64 = 100_000_000;

/// Whether `entry` was modified so recently before `read_started_ns` (a
/// [`file_clock_now_ns`] reading taken before the read) that a write during the read could
/// have left its timestamps unchanged. Such a file's content is confirmed by a second read.
pub fn is_hot(entry: &ScannedEntry, read_started_ns: i64) -> bool {
    entry.mtime_ns.max(entry.ctime_ns) >= read_started_ns.saturating_sub(HOT_MARGIN_NS)
}

/// [`is_unchanged`], and also that the previous snapshot read the file well after its last
/// change (its mtime and ctime are more than [`RACY_MARGIN_NS`] before
/// `previous_read_start_ms`, the time that snapshot started reading the shard).
///
/// Otherwise a write that landed in the same timestamp tick as the previous read, without
/// changing the size, would go unnoticed forever: this is git's "racily clean" problem, and
/// the same fix. Such a file is read again once (the content is deduplicated, so little is
/// uploaded); the new entry then has old enough timestamps.
pub fn is_unchanged_since(
    previous: &FileEntry,
    current: &ScannedEntry,
    previous_read_start_ms: i64,
) -> bool {
    let threshold = previous_read_start_ms
        .saturating_mul(1_000_000)
        .saturating_sub(RACY_MARGIN_NS);
    is_unchanged(previous, current)
        && previous.mtime_ns < threshold
        && previous.ctime_ns < threshold
}

/// The shard a path belongs to: the first 8 bytes of SHA-256 of the path's UTF-8 bytes, read
/// as a big-endian `u64`, modulo `number_of_shards`.
///
/// Stable across versions and platforms (it is part of the repository format: a later
/// snapshot must put a file in the same shard to deduplicate against it) and spreads paths
/// evenly whatever their names.
///
/// # Panics
/// If `number_of_shards` is 0.
pub fn shard_of(relative_path: &str, number_of_shards: u32) -> u32 {
    assert!(number_of_shards > 0, "an index has at least one shard");
    let digest = sha256(relative_path.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let shard = u64::from_be_bytes(first) % u64::from(number_of_shards);
    u32::try_from(shard).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;

    fn params() -> ChunkerParams {
        ChunkerParams::new(1024, 4096, 16384).unwrap()
    }

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        fs::create_dir_all(r.join("a/b")).unwrap();
        fs::create_dir(r.join("empty")).unwrap();
        fs::write(r.join("a/b/seg_1.cfs"), vec![7u8; 50_000]).unwrap();
        fs::write(r.join("a.txt"), b"hello").unwrap();
        fs::write(r.join("zero"), b"").unwrap();
        fs::set_permissions(r.join("a.txt"), fs::Permissions::from_mode(0o640)).unwrap();
        symlink("a/b/seg_1.cfs", r.join("link")).unwrap();
        symlink("/etc/passwd", r.join("a/escape")).unwrap();
        dir
    }

    #[test]
    fn scan_lists_without_following_symlinks() {
        let dir = tree();
        let scan = scan(dir.path()).unwrap();
        let paths: Vec<&str> = scan.entries.iter().map(|e| e.path.as_str()).collect();
        // Byte order: '.' (0x2e) sorts before '/' (0x2f).
        assert_eq!(
            paths,
            [
                "a",
                "a.txt",
                "a/b",
                "a/b/seg_1.cfs",
                "a/escape",
                "empty",
                "link",
                "zero"
            ]
        );
        let get = |p: &str| scan.entries.iter().find(|e| e.path == p).unwrap();
        assert_eq!(get("a").kind, FileKind::Dir);
        assert_eq!(get("a").size, 0);
        let txt = get("a.txt");
        assert_eq!((txt.kind, txt.size, txt.mode), (FileKind::File, 5, 0o640));
        let meta = fs::symlink_metadata(dir.path().join("a.txt")).unwrap();
        assert_eq!((txt.inode, txt.mtime_ns), (meta.ino(), mtime_ns(&meta)));
        assert!(txt.mtime_ns > 1_600_000_000 * 1_000_000_000);
        let link = get("link");
        assert_eq!(
            (link.kind, link.target.as_deref()),
            (FileKind::Symlink, Some("a/b/seg_1.cfs"))
        );
        assert_eq!(get("a/escape").target.as_deref(), Some("/etc/passwd"));
        assert!(scan.skipped.is_empty());
        let fe = txt.to_file_entry(vec!["ab".into()]);
        assert!(is_unchanged(&fe, txt));
    }

    #[test]
    fn scan_skips_special_files_and_refuses_non_utf8() {
        let dir = tree();
        let sock = dir.path().join("a/live.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let scan = scan(dir.path()).unwrap();
        assert_eq!(
            scan.skipped,
            vec![SkippedEntry {
                path: "a/live.sock".into(),
                reason: SkipReason::Socket
            }]
        );
        assert!(!scan.entries.iter().any(|e| e.path.contains("sock")));

        let name = std::ffi::OsStr::from_bytes(b"bad\xffname");
        fs::write(dir.path().join("a/b").join(name), b"x").unwrap();
        let err = super::scan(dir.path()).unwrap_err();
        assert!(
            matches!(&err, RepositoryError::UnsafePath { path, .. } if path.starts_with("a/b/bad")),
            "{err}"
        );
        assert!(err.to_string().contains("not valid UTF-8"));
    }

    #[test]
    fn scan_refuses_a_missing_or_file_root() {
        let dir = tree();
        assert!(scan(&dir.path().join("nope")).is_err());
        assert!(scan(&dir.path().join("a.txt")).is_err());
        // A root that is a symlink to a directory is followed (only the root).
        let outer = tempfile::tempdir().unwrap();
        symlink(dir.path(), outer.path().join("idx")).unwrap();
        assert_eq!(scan(&outer.path().join("idx")).unwrap().entries.len(), 8);
    }

    fn read_all(root: &Path, e: &ScannedEntry) -> (ReadOutcome, Vec<u8>) {
        let mut out = Vec::new();
        let outcome = read_file_chunks(root, e, &params(), |c| {
            assert_eq!(c.hash, sha256(c.data));
            out.extend_from_slice(c.data);
            Ok(())
        })
        .unwrap();
        (outcome, out)
    }

    #[test]
    fn reads_unchanged_files_whole() {
        let dir = tree();
        let scan = scan(dir.path()).unwrap();
        for e in scan.entries.iter().filter(|e| e.kind == FileKind::File) {
            let (outcome, bytes) = read_all(dir.path(), e);
            assert_eq!(outcome, ReadOutcome::Complete, "{}", e.path);
            assert_eq!(bytes, fs::read(dir.path().join(&e.path)).unwrap());
        }
    }

    #[test]
    fn changed_replaced_or_vanished_files_are_detected() {
        let dir = tree();
        let r = dir.path();
        let scan = scan(r).unwrap();
        let get = |p: &str| scan.entries.iter().find(|e| e.path == p).unwrap().clone();

        // Same size, new content and times.
        let mut seg = get("a/b/seg_1.cfs");
        seg.mtime_ns -= 1;
        assert_eq!(read_all(r, &seg).0, ReadOutcome::Changed);
        // Replaced by another file (new inode) of the same size.
        let txt = get("a.txt");
        fs::write(r.join("tmp"), b"HELLO").unwrap();
        fs::rename(r.join("tmp"), r.join("a.txt")).unwrap();
        assert_eq!(read_all(r, &txt).0, ReadOutcome::Changed);
        let fresh = rescan_entry(r, "a.txt").unwrap().unwrap();
        assert!(!is_unchanged(&txt.to_file_entry(vec![]), &fresh));
        assert_eq!(
            read_all(r, &fresh),
            (ReadOutcome::Complete, b"HELLO".to_vec())
        );
        // Replaced by a symlink: not followed.
        let zero = get("zero");
        fs::remove_file(r.join("zero")).unwrap();
        symlink("a.txt", r.join("zero")).unwrap();
        assert_eq!(read_all(r, &zero).0, ReadOutcome::Changed);
        // Gone.
        fs::remove_file(r.join("zero")).unwrap();
        assert_eq!(read_all(r, &zero).0, ReadOutcome::Changed);
        assert_eq!(rescan_entry(r, "zero").unwrap(), None);
        // Not a file, or a path escaping the root.
        assert!(read_file_chunks(r, &get("a"), &params(), |_| Ok(())).is_err());
        let mut evil = fresh.clone();
        evil.path = "../a.txt".into();
        assert!(matches!(
            read_file_chunks(r, &evil, &params(), |_| Ok(())),
            Err(RepositoryError::UnsafePath { .. })
        ));
    }

    #[test]
    fn a_file_written_during_the_read_is_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("growing");
        fs::write(&path, vec![1u8; 100_000]).unwrap();
        let e = rescan_entry(dir.path(), "growing").unwrap().unwrap();
        let mut calls = 0;
        let outcome = read_file_chunks(dir.path(), &e, &params(), |_| {
            calls += 1;
            if calls == 2 {
                let mut f = OpenOptions::new().append(true).open(&path).unwrap();
                f.write_all(b"more").unwrap();
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(outcome, ReadOutcome::Changed);
        assert!(calls < 100_000 / 16384 + 2, "stopped early: {calls}");
        // The callback's error stops the read and is returned as is.
        let e = rescan_entry(dir.path(), "growing").unwrap().unwrap();
        let err = read_file_chunks(dir.path(), &e, &params(), |_| {
            Err(RepositoryError::ReadOnly { operation: "x" })
        });
        assert!(matches!(err, Err(RepositoryError::ReadOnly { .. })));
    }

    #[test]
    fn unchanged_rules() {
        let e = ScannedEntry {
            path: "a".into(),
            kind: FileKind::File,
            size: 10,
            mode: 0o644,
            mtime_ns: 1_000_000_000_000,
            ctime_ns: 1_000_000_000_000,
            inode: 5,
            target: None,
        };
        let prev = e.to_file_entry(vec!["x".into()]);
        assert!(is_unchanged(&prev, &e));
        let variants: [fn(&mut ScannedEntry); 8] = [
            |e| e.path = "b".into(),
            |e| e.kind = FileKind::Symlink,
            |e| e.size += 1,
            |e| e.mode = 0o600,
            |e| e.mtime_ns += 1,
            |e| e.ctime_ns += 1,
            |e| e.inode += 1,
            |e| e.target = Some("t".into()),
        ];
        for (i, change) in variants.iter().enumerate() {
            let mut c = e.clone();
            change(&mut c);
            assert!(!is_unchanged(&prev, &c), "variant {i}");
        }
        // Read 1000 s after its last change: trusted. Read 1 s after: read again.
        assert!(is_unchanged_since(&prev, &e, 2_000_000));
        assert!(!is_unchanged_since(&prev, &e, 1_001_000));
    }

    #[test]
    fn shards_are_stable_and_spread() {
        // Pinned (computed independently with Python's hashlib): the partition is part of
        // the repository format.
        assert_eq!(shard_of("segments_1", 5), 0);
        assert_eq!(shard_of("indices/x/_0.cfs", 7), 5);
        assert_eq!(shard_of("a", 1000), 250);
        assert_eq!(shard_of("anything", 1), 0);
        let mut counts = [0u32; 4];
        for i in 0..4000 {
            counts[shard_of(&format!("dir/file-{i}.dat"), 4) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (850..=1150).contains(&c)),
            "{counts:?}"
        );
    }
}
