//! Restore of one index from a snapshot into a directory.
//!
//! Everything is built in a staging directory beside the target
//! (`.<name>.restoring-<uuid>`): directories first, then file contents, downloaded
//! concurrently as ranged reads of packs, every chunk verified against its SHA-256, then
//! modes and times, then symlinks (last, so no earlier write can follow one). Only when every
//! file is complete and synced is the staging directory swapped in, so a failed restore
//! leaves the previous contents untouched.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::envelope::Kind;
use crate::model::{ChunkRecord, FileEntry, FileKind, IndexEntry, RepositoryData, ShardSnapshot};
use crate::paths::{join_inside, symlink_stays_inside};
use crate::progress::{Progress, ShardProgress, Stage};
use crate::repo::Repository;
use crate::throttle::Throttle;
use crate::{RepositoryError, Result, layout, pack};

/// Reads closer than this are merged into one ranged GET.
const MERGE_GAP: u64 = 256 << 10;
/// No ranged GET spans more than this.
const MAX_RANGE: u64 = 8 << 20;

/// What a restore did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreStats {
    /// Files written.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Bytes downloaded.
    pub downloaded: u64,
    /// Shards restored.
    pub shards: u32,
}

/// One chunk's destinations in the staged files.
struct Placement {
    record: ChunkRecord,
    targets: Vec<(usize, u64)>,
}

struct ShardPlan {
    shard: u32,
    files: Vec<FileEntry>,
    /// Pack key → chunks to read from it, in pack order.
    packs: BTreeMap<String, Vec<Placement>>,
}

/// Restores `index` as it was in snapshot `snapshot_uuid` into `target`, replacing what is
/// there only once everything is ready. The caller ensures nothing else uses `target`.
pub async fn restore_index(
    repo: &Repository,
    root: &RepositoryData,
    snapshot_uuid: &str,
    index: &str,
    target: &Path,
    progress: Arc<Progress>,
) -> Result<RestoreStats> {
    let entry = root
        .indices
        .get(index)
        .ok_or_else(|| RepositoryError::NotFound {
            key: format!("index [{index}] in the repository"),
        })?;
    let in_snapshot =
        entry
            .snapshots
            .get(snapshot_uuid)
            .ok_or_else(|| RepositoryError::NotFound {
                key: format!("index [{index}] in snapshot [{snapshot_uuid}]"),
            })?;

    let mut plans = Vec::new();
    for &shard in &in_snapshot.shards {
        plans.push(plan_shard(repo, entry, shard, snapshot_uuid).await?);
    }

    let parent = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let name = target
        .file_name()
        .map_or_else(|| "index".to_owned(), |n| n.to_string_lossy().into_owned());
    let staging = parent.join(format!(
        ".{name}.restoring-{}",
        uuid::Uuid::new_v4().simple()
    ));
    {
        let (parent, staging) = (parent.clone(), staging.clone());
        crate::task::blocking("restore", move || {
            fs::create_dir_all(&parent).map_err(|e| RepositoryError::io("creating", &parent, e))?;
            fs::create_dir(&staging)
                .map_err(|e| RepositoryError::io("creating staging directory", &staging, e))
        })
        .await?;
    }

    let result = fill_staging(repo, index, &staging, plans, &progress).await;
    match result {
        Ok(stats) => {
            let (staging2, target2) = (staging.clone(), target.to_path_buf());
            crate::task::blocking("restore", move || swap_into_place(&staging2, &target2))
                .await
                .inspect_err(|_| {
                    let _ = fs::remove_dir_all(&staging);
                })?;
            Ok(stats)
        }
        Err(e) => {
            let staging = staging.clone();
            let _ = crate::task::blocking("restore", move || {
                fs::remove_dir_all(&staging)
                    .map_err(|e| RepositoryError::io("removing", "staging", e))
            })
            .await;
            Err(e)
        }
    }
}

async fn plan_shard(
    repo: &Repository,
    entry: &IndexEntry,
    shard: u32,
    snapshot_uuid: &str,
) -> Result<ShardPlan> {
    let index_id = entry.id.as_str();
    let snap: ShardSnapshot = repo
        .get_meta(
            &layout::shard_snapshot(index_id, shard, snapshot_uuid),
            Kind::ShardSnapshot,
        )
        .await?;
    let (generation, shard_gen) = repo.current_shard_generation(entry, shard).await?;
    let gen_key = layout::shard_generation(index_id, shard, &generation);
    let location = shard_gen.chunk_positions();
    let mut by_pack: BTreeMap<usize, BTreeMap<usize, Vec<(usize, u64)>>> = BTreeMap::new();
    for (file_idx, file) in snap.files.iter().enumerate() {
        crate::paths::validate_relative(&file.path)?;
        if file.kind != FileKind::File {
            continue;
        }
        let mut offset = 0u64;
        for hash in &file.chunks {
            let &(p, c) = location.get(hash.as_str()).ok_or_else(|| {
                RepositoryError::corrupted(
                    &gen_key,
                    format!("chunk {hash} of [{}] is in no pack", file.path),
                )
            })?;
            by_pack
                .entry(p)
                .or_default()
                .entry(c)
                .or_default()
                .push((file_idx, offset));
            offset += u64::from(shard_gen.packs[p].chunks[c].raw_len());
        }
        if offset != file.size {
            return Err(RepositoryError::corrupted(
                layout::shard_snapshot(index_id, shard, snapshot_uuid),
                format!(
                    "[{}] has {} bytes of chunks for a size of {}",
                    file.path, offset, file.size
                ),
            ));
        }
    }
    let packs = by_pack
        .into_iter()
        .map(|(p, chunks)| {
            let pack = &shard_gen.packs[p];
            let placements = chunks
                .into_iter()
                .map(|(c, targets)| Placement {
                    record: pack.chunks[c].clone(),
                    targets,
                })
                .collect();
            (layout::pack(index_id, shard, &pack.id), placements)
        })
        .collect();
    Ok(ShardPlan {
        shard,
        files: snap.files,
        packs,
    })
}

async fn fill_staging(
    repo: &Repository,
    index: &str,
    staging: &Path,
    plans: Vec<ShardPlan>,
    progress: &Progress,
) -> Result<RestoreStats> {
    let throttle = Arc::new(Throttle::new(
        repo.settings.max_restore_bytes_per_sec,
        Arc::clone(&repo.clock),
    ));
    let staging = Arc::new(staging.to_path_buf());
    let mut stats = RestoreStats::default();
    // Every shard's tree first, then one download stream over all their ranges: restoring
    // shard by shard would drain the pipeline (and idle the connections) at each boundary.
    let mut shards = Vec::with_capacity(plans.len());
    let mut work = Vec::new();
    for plan in plans {
        let shard_progress = progress.shard(index, plan.shard);
        shard_progress.start_ms.store(
            repo.clock.now().timestamp_millis(),
            std::sync::atomic::Ordering::Relaxed,
        );
        shard_progress.set_stage(Stage::Started);
        let files = Arc::new(plan.files);
        {
            let (files, staging) = (Arc::clone(&files), Arc::clone(&staging));
            crate::task::blocking("restore", move || create_entries(&staging, &files)).await?;
        }
        for f in files.iter().filter(|f| f.kind == FileKind::File) {
            ShardProgress::add(&shard_progress.total_files, 1);
            ShardProgress::add(&shard_progress.total_bytes, f.size);
            stats.files += 1;
            stats.bytes += f.size;
        }
        let remaining: Arc<Vec<AtomicU64>> = Arc::new(
            files
                .iter()
                .map(|f| AtomicU64::new(if f.kind == FileKind::File { f.size } else { 0 }))
                .collect(),
        );
        let shard = StagedShard {
            files,
            remaining,
            progress: shard_progress,
        };
        for (key, placements) in plan.packs {
            for range in ranges(&key, placements) {
                work.push((shard.clone(), range));
            }
        }
        shards.push(shard);
    }
    stats.downloaded = stream::iter(work)
        .map(|(shard, (key, start, end, placements))| {
            let (staging, throttle) = (Arc::clone(&staging), Arc::clone(&throttle));
            async move {
                throttle.acquire(end - start).await;
                let data = repo.store.get_range(&key, start..end).await?;
                ShardProgress::add(&shard.progress.processed_bytes, end - start);
                crate::task::blocking("restore", move || {
                    write_range(&staging, &shard, &key, start, &data, &placements)?;
                    Ok(end - start)
                })
                .await
            }
        })
        .buffer_unordered(repo.settings.concurrency.max(1))
        .try_fold(0u64, |acc, n| async move { Ok(acc + n) })
        .await?;
    for shard in &shards {
        shard.progress.set_stage(Stage::Finalize);
        if let Some((i, _)) = shard
            .remaining
            .iter()
            .enumerate()
            .find(|(_, r)| r.load(Ordering::Acquire) != 0)
        {
            return Err(RepositoryError::corrupted(
                "restore plan",
                format!("[{}] was not completely written", shard.files[i].path),
            ));
        }
        {
            let (files, staging) = (Arc::clone(&shard.files), Arc::clone(&staging));
            crate::task::blocking("restore", move || finish_entries(&staging, &files)).await?;
        }
        ShardProgress::add(
            &shard.progress.processed_files,
            ShardProgress::get(&shard.progress.total_files),
        );
        shard.progress.end_ms.store(
            repo.clock.now().timestamp_millis(),
            std::sync::atomic::Ordering::Relaxed,
        );
        stats.shards += 1;
    }
    {
        let staging = Arc::clone(&staging);
        crate::task::blocking("restore", move || sync_staging(&staging)).await?;
    }
    for shard in &shards {
        shard.progress.set_stage(Stage::Done);
    }
    Ok(stats)
}

/// A shard being restored, shared by the tasks writing its ranges.
#[derive(Clone)]
struct StagedShard {
    files: Arc<Vec<FileEntry>>,
    /// Bytes not yet written, per file: the write that takes a file's count to zero
    /// finishes that file.
    remaining: Arc<Vec<AtomicU64>>,
    progress: Arc<ShardProgress>,
}

/// Verifies and writes the chunks of one downloaded range, and finishes each file whose
/// last bytes this was (mode, time) while its handle is open.
fn write_range(
    staging: &Path,
    shard: &StagedShard,
    key: &str,
    start: u64,
    data: &bytes::Bytes,
    placements: &[Placement],
) -> Result<()> {
    let mut open: HashMap<usize, File> = HashMap::new();
    for p in placements {
        let from = usize::try_from(p.record.offset() - start)
            .map_err(|_| RepositoryError::corrupted(key, "offset"))?;
        let to = from + p.record.stored_len() as usize;
        if to > data.len() {
            return Err(RepositoryError::corrupted(key, "chunk beyond its range"));
        }
        // A stored chunk is verified in place: a slice of the download, not a copy.
        let raw = pack::decode_chunk_bytes(key, &p.record, data.slice(from..to))?;
        for &(file_idx, offset) in &p.targets {
            let entry = &shard.files[file_idx];
            let path = staging.join(&entry.path);
            // Consecutive chunks of a range mostly belong to the same files: open each
            // once per range, not once per chunk.
            let f = match open.entry(file_idx) {
                Entry::Occupied(o) => o.into_mut(),
                Entry::Vacant(v) => v.insert(
                    OpenOptions::new()
                        .write(true)
                        .custom_flags(libc::O_NOFOLLOW)
                        .open(&path)
                        .map_err(|e| RepositoryError::io("opening", &path, e))?,
                ),
            };
            f.write_all_at(&raw, offset)
                .map_err(|e| RepositoryError::io("writing", &path, e))?;
            let len = raw.len() as u64;
            start_writeback(f, offset, len);
            let before = shard.remaining[file_idx].fetch_sub(len, Ordering::AcqRel);
            if before < len {
                return Err(RepositoryError::corrupted(
                    key,
                    format!("[{}] receives more bytes than its size", entry.path),
                ));
            }
            if before == len {
                // Every other write of this file happened before its count reached zero.
                finish_file(&path, entry, f)?;
                open.remove(&file_idx);
            }
        }
    }
    Ok(())
}

/// Starts writing `len` bytes at `offset` of `file` to disk now, without waiting.
///
/// Left alone, the kernel holds a restore's dirty pages until the final [`sync_staging`]
/// (its background writeback starts at 10% of RAM dirty, or after 30 s), which then waits
/// for the disk to take the whole index; started here, the disk writes while the next
/// ranges download. On Linux `POSIX_FADV_DONTNEED` starts writeback of the dirty pages of
/// the range (and drops only pages that are already clean). Advice: a failure changes
/// nothing but timing, so it is ignored.
fn start_writeback(file: &File, offset: u64, len: u64) {
    let _ = rustix::fs::fadvise(
        file,
        offset,
        std::num::NonZeroU64::new(len),
        rustix::fs::Advice::DontNeed,
    );
}

/// Mode and modification time of a completely written file (durability comes from one
/// [`sync_staging`] once everything is written).
fn finish_file(path: &Path, entry: &FileEntry, file: &File) -> Result<()> {
    file.set_permissions(fs::Permissions::from_mode(safe_mode(entry.mode)))
        .map_err(|e| RepositoryError::io("setting mode", path, e))?;
    file.set_modified(mtime(entry.mtime_ns))
        .map_err(|e| RepositoryError::io("setting time", path, e))
}

/// Splits a pack's chunks into ranged reads: neighbours closer than `MERGE_GAP` share a
/// read, no read exceeds `MAX_RANGE` (unless one chunk does).
fn ranges(key: &str, mut placements: Vec<Placement>) -> Vec<(String, u64, u64, Vec<Placement>)> {
    placements.sort_by_key(|p| p.record.offset());
    let mut out: Vec<(String, u64, u64, Vec<Placement>)> = Vec::new();
    for p in placements {
        let (start, end) = (
            p.record.offset(),
            p.record.offset() + u64::from(p.record.stored_len()),
        );
        match out.last_mut() {
            Some(last) if start <= last.2 + MERGE_GAP && end - last.1 <= MAX_RANGE => {
                last.2 = last.2.max(end);
                last.3.push(p);
            }
            _ => out.push((key.to_owned(), start, end, vec![p])),
        }
    }
    out
}

/// Directories and empty files of the staged tree (files are created at their final size).
fn create_entries(staging: &Path, files: &[FileEntry]) -> Result<()> {
    for f in files {
        let path = join_inside(staging, &f.path)?;
        match f.kind {
            FileKind::Dir => {
                fs::create_dir_all(&path).map_err(|e| RepositoryError::io("creating", &path, e))?;
            }
            FileKind::File => {
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent)
                        .map_err(|e| RepositoryError::io("creating", parent, e))?;
                }
                let file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&path)
                    .map_err(|e| RepositoryError::io("creating", &path, e))?;
                file.set_len(f.size)
                    .map_err(|e| RepositoryError::io("sizing", &path, e))?;
            }
            FileKind::Symlink => {
                let target = f.target.as_deref().unwrap_or_default();
                if !symlink_stays_inside(&f.path, target) {
                    return Err(RepositoryError::UnsafePath {
                        path: format!("{} -> {target}", f.path),
                        reason: "symlink target leaves the index",
                    });
                }
            }
        }
    }
    Ok(())
}

fn mtime(ns: i64) -> std::time::SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}

/// Modes and times of empty files (the others were finished as they were written), then
/// symlinks; directories last and deepest first so that
/// setting a directory's time is not undone by writing inside it.
fn finish_entries(staging: &Path, files: &[FileEntry]) -> Result<()> {
    // Files with content were finished as their last bytes were written (`write_range`).
    for f in files
        .iter()
        .filter(|f| f.kind == FileKind::File && f.size == 0)
    {
        let path = staging.join(&f.path);
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| RepositoryError::io("opening", &path, e))?;
        finish_file(&path, f, &file)?;
    }
    for f in files.iter().filter(|f| f.kind == FileKind::Symlink) {
        let path = staging.join(&f.path);
        create_parents_not_through_symlinks(staging, &f.path)?;
        std::os::unix::fs::symlink(f.target.as_deref().unwrap_or_default(), &path)
            .map_err(|e| RepositoryError::io("creating symlink", &path, e))?;
    }
    let mut dirs: Vec<&FileEntry> = files.iter().filter(|f| f.kind == FileKind::Dir).collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.path.matches('/').count()));
    for d in dirs {
        let path = staging.join(&d.path);
        fs::set_permissions(&path, fs::Permissions::from_mode(safe_mode(d.mode)))
            .map_err(|e| RepositoryError::io("setting mode", &path, e))?;
        File::open(&path)
            .and_then(|h| h.set_modified(mtime(d.mtime_ns)))
            .map_err(|e| RepositoryError::io("finishing directory", &path, e))?;
    }
    Ok(())
}

/// Makes everything staged durable with one `syncfs(2)` of the staging directory's
/// filesystem, before the staged tree is swapped in.
///
/// An `fsync` per file and directory costs a journal commit each (about 3 ms on ext4 here:
/// ~50 s for the 16,000 small files of a 1 GiB `mixed` index, longer than the download);
/// one `syncfs` commits them all at once. The price: it also flushes whatever else is dirty
/// on that filesystem, which on a busy machine may take longer than our own files would.
/// Since Linux 5.8 it reports writeback errors of the filesystem, so a failed write of
/// ours is not silently lost.
fn sync_staging(staging: &Path) -> Result<()> {
    let dir = File::open(staging).map_err(|e| RepositoryError::io("opening", staging, e))?;
    rustix::fs::syncfs(&dir)
        .map_err(|e| RepositoryError::io("syncing", staging, std::io::Error::from(e)))?;
    // syncfs may not report an error that happened before this open on old kernels; the
    // directory's own fsync is cheap once everything is clean and does.
    dir.sync_all()
        .map_err(|e| RepositoryError::io("syncing", staging, e))
}

/// The permission bits restored: setuid and setgid are dropped, so that a crafted
/// repository cannot plant a set-id executable (restore may run as a privileged user, and
/// index files never need those bits).
fn safe_mode(mode: u32) -> u32 {
    mode & 0o1777
}

/// Creates the directories above `rel` (a validated relative path) inside `staging`, refusing
/// to go through a symlink: symlinks are created last, but one symlink entry must not lead
/// another one (`a -> .` then `a/b/link`) to a place its target check did not see.
fn create_parents_not_through_symlinks(staging: &Path, rel: &str) -> Result<()> {
    let mut dir = staging.to_path_buf();
    let Some((parents, _)) = rel.rsplit_once('/') else {
        return Ok(());
    };
    for seg in parents.split('/') {
        dir.push(seg);
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(RepositoryError::UnsafePath {
                    path: rel.to_owned(),
                    reason: "an entry lies under a symlink",
                });
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(RepositoryError::io(
                    "creating",
                    &dir,
                    std::io::Error::from(std::io::ErrorKind::NotADirectory),
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir(&dir).map_err(|e| RepositoryError::io("creating", &dir, e))?;
            }
            Err(e) => return Err(RepositoryError::io("inspecting", &dir, e)),
        }
    }
    Ok(())
}

/// Puts the staged tree at `target`, moving any previous contents aside first and deleting
/// them only once the new tree is in place.
fn swap_into_place(staging: &Path, target: &Path) -> Result<()> {
    let parent = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let old: Option<PathBuf> = if fs::symlink_metadata(target).is_ok() {
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let aside = parent.join(format!(
            ".{name}.replaced-{}",
            uuid::Uuid::new_v4().simple()
        ));
        fs::rename(target, &aside).map_err(|e| RepositoryError::io("moving aside", target, e))?;
        Some(aside)
    } else {
        None
    };
    if let Err(e) = fs::rename(staging, target) {
        if let Some(aside) = &old {
            let _ = fs::rename(aside, target);
        }
        return Err(RepositoryError::io(
            "moving restored index into place",
            target,
            e,
        ));
    }
    File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(|e| RepositoryError::io("syncing", parent, e))?;
    if let Some(aside) = old {
        fs::remove_dir_all(&aside)
            .map_err(|e| RepositoryError::io("removing previous contents", &aside, e))?;
    }
    Ok(())
}
