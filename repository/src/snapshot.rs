//! Creating a snapshot: for each shard of each index, reuse the entries of unchanged files,
//! read and chunk the rest, upload only chunks the shard does not already hold (packed, and
//! compressed where it pays), then write the shard's file list and a new shard generation,
//! and finally publish a new root. Everything before the root is invisible until the root
//! is written; a failure or crash before that leaves only garbage for cleanup.
//!
//! Pipeline per shard: a blocking worker thread reads, chunks, hashes and packs; a full pack
//! is sealed only once the worker holds one of the `concurrency` upload permits, and goes
//! with it through a channel to uploads that run concurrently. Memory is bounded by
//! (workers × (pack being filled + chunker buffer + compression scratch)) + (concurrency ×
//! pack size), whatever the size of the data.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::chunker::ChunkerParams;
use crate::envelope::Kind;
use crate::fence::Fence;
use crate::model::{
    FileEntry, FileKind, IndexEntry, IndexInSnapshot, IndexMetadata, PackRecord, ShardCounts,
    ShardFailure, ShardGeneration, ShardSnapshot, SnapshotState, SnapshotStats, SnapshotSummary,
};
use crate::pack::{PackWriter, SealedPack};
use crate::progress::{Progress, ShardProgress, Stage};
use crate::repo::{ExpectedGeneration, Repository};
use crate::source::{self, ReadOutcome, ScannedEntry};
use crate::store::PutMode;
use crate::throttle::Throttle;
use crate::{RepositoryError, Result, layout};

/// How many times a file that changes while it is read is read again before its shard fails.
const READ_ATTEMPTS: usize = 3;

/// An index to snapshot.
#[derive(Debug, Clone)]
pub struct IndexSource {
    /// Its name.
    pub name: String,
    /// Its directory.
    pub root: PathBuf,
    /// Shards to split it into.
    pub number_of_shards: u32,
    /// Replicas, as configured (reported back only).
    pub number_of_replicas: u32,
}

/// What to snapshot.
#[derive(Debug, Clone)]
pub struct SnapshotRequest {
    /// Snapshot name (already validated and unique).
    pub name: String,
    /// Snapshot uuid.
    pub uuid: String,
    /// Indices.
    pub indices: Vec<IndexSource>,
    /// Record shard failures instead of failing the snapshot.
    pub partial: bool,
    /// As requested.
    pub include_global_state: bool,
    /// User metadata.
    pub metadata: Option<serde_json::Value>,
}

/// How a snapshot ended.
#[derive(Debug, Clone)]
pub struct SnapshotOutcome {
    /// Its summary (state `SUCCESS`, `PARTIAL` or `FAILED`).
    pub summary: SnapshotSummary,
    /// The root generation that holds it; `None` when it failed and nothing was published.
    pub generation: Option<u64>,
}

/// The global metadata blob of a snapshot (`meta-<uuid>.dat`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalMetadata {
    /// Index names in the snapshot.
    pub indices: Vec<String>,
    /// As requested.
    pub include_global_state: bool,
}

enum ShardError {
    /// The data could not be read: a shard failure.
    Source(String),
    /// The repository failed: the snapshot fails.
    Repository(RepositoryError),
}

impl From<RepositoryError> for ShardError {
    fn from(e: RepositoryError) -> Self {
        Self::Repository(e)
    }
}

struct ShardDone {
    generation: String,
    stats: SnapshotStats,
}

struct Ctx<'a> {
    repo: &'a Repository,
    fence: &'a dyn Fence,
    uploads: Arc<Semaphore>,
    throttle: Arc<Throttle>,
    params: ChunkerParams,
    snapshot_uuid: &'a str,
}

/// Takes a snapshot and publishes it in a new root after `expected`.
pub async fn create_snapshot(
    repo: &Repository,
    fence: &dyn Fence,
    expected: ExpectedGeneration,
    req: SnapshotRequest,
    progress: Arc<Progress>,
) -> Result<SnapshotOutcome> {
    if repo.settings.readonly {
        return Err(RepositoryError::ReadOnly {
            operation: "snapshot",
        });
    }
    let start_ms = repo.clock.now().timestamp_millis();
    let (generation, mut root) = repo.load(expected).await?;
    let ctx = Ctx {
        repo,
        fence,
        // A worker takes a permit before sealing a pack and the upload returns it: this
        // bounds the sealed packs in memory to `concurrency`, whatever the shard count.
        uploads: Arc::new(Semaphore::new(repo.settings.concurrency.max(1))),
        throttle: Arc::new(Throttle::new(
            repo.settings.max_snapshot_bytes_per_sec,
            Arc::clone(&repo.clock),
        )),
        params: ChunkerParams::from_average(repo.settings.chunk_size as usize)?,
        snapshot_uuid: &req.uuid,
    };

    let mut failures = Vec::new();
    let mut superseded = BTreeSet::new();
    let mut counts = ShardCounts::default();
    let mut totals = SnapshotStats::default();
    let mut index_names = Vec::new();
    for source in &req.indices {
        index_names.push(source.name.clone());
        let entry = root
            .indices
            .entry(source.name.clone())
            .or_insert_with(|| IndexEntry {
                id: uuid::Uuid::new_v4().simple().to_string(),
                snapshots: BTreeMap::new(),
                shard_generations: Vec::new(),
            });
        let index_id = entry.id.clone();
        let n = source.number_of_shards.max(1);
        if entry.shard_generations.len() < n as usize {
            entry.shard_generations.resize(n as usize, None);
        }
        let previous_gens = entry.shard_generations.clone();
        let previous_snaps: Vec<(String, Vec<u32>)> = root
            .snapshots
            .iter()
            .rev()
            .filter_map(|s| {
                entry
                    .snapshots
                    .get(&s.uuid)
                    .map(|i| (s.uuid.clone(), i.shards.clone()))
            })
            .collect();
        counts.total += n;

        let scanned = {
            let root_dir = source.root.clone();
            tokio::task::spawn_blocking(move || source::scan(&root_dir))
                .await
                .map_err(|e| crate::task::join_error("snapshot", &e))?
        };
        let mut by_shard: Vec<Vec<ScannedEntry>> = (0..n).map(|_| Vec::new()).collect();
        let scan_error = match scanned {
            Ok(scan) => {
                for e in scan.entries {
                    let s = source::shard_of(&e.path, n);
                    by_shard[s as usize].push(e);
                }
                None
            }
            Err(e) => Some(e.to_string()),
        };

        let results: Vec<(u32, std::result::Result<ShardDone, ShardError>)> = stream::iter(0..n)
            .map(|shard| {
                let entries = std::mem::take(&mut by_shard[shard as usize]);
                let prev_gen = previous_gens.get(shard as usize).cloned().flatten();
                let prev_snap = previous_snaps
                    .iter()
                    .find(|(_, shards)| shards.contains(&shard))
                    .map(|(u, _)| u.clone());
                let shard_progress = progress.shard(&source.name, shard);
                let (ctx, index_id, scan_error, name) = (
                    &ctx,
                    index_id.clone(),
                    scan_error.clone(),
                    source.name.clone(),
                );
                async move {
                    let result = match scan_error {
                        Some(e) => Err(ShardError::Source(format!(
                            "cannot read index directory: {e}"
                        ))),
                        None => {
                            snapshot_shard(
                                ctx,
                                &index_id,
                                &name,
                                shard,
                                entries,
                                prev_gen,
                                prev_snap,
                                &source.root,
                                &shard_progress,
                            )
                            .await
                        }
                    };
                    shard_progress.set_stage(if result.is_ok() {
                        Stage::Done
                    } else {
                        Stage::Failure
                    });
                    shard_progress
                        .end_ms
                        .store(ctx.repo.clock.now().timestamp_millis(), Ordering::Relaxed);
                    (shard, result)
                }
            })
            .buffer_unordered(workers())
            .collect()
            .await;

        let mut stored_shards = Vec::new();
        for (shard, result) in results {
            match result {
                Ok(done) => {
                    if let Some(old) =
                        entry.shard_generations[shard as usize].replace(done.generation)
                    {
                        superseded.insert(layout::shard_generation(&index_id, shard, &old));
                    }
                    add_stats(&mut totals, &done.stats);
                    stored_shards.push(shard);
                    counts.successful += 1;
                }
                Err(ShardError::Source(reason)) => {
                    failures.push(ShardFailure {
                        index: source.name.clone(),
                        shard,
                        reason,
                    });
                    counts.failed += 1;
                }
                Err(ShardError::Repository(e)) => return Err(e),
            }
        }
        stored_shards.sort_unstable();
        let meta = IndexMetadata {
            name: source.name.clone(),
            number_of_shards: n,
            number_of_replicas: source.number_of_replicas,
        };
        let meta_id = content_id(&meta)?;
        fence.check()?;
        totals.uploaded_bytes += repo
            .put_meta(
                &layout::index_meta(&index_id, &meta_id),
                Kind::IndexMeta,
                &meta,
            )
            .await?;
        entry.snapshots.insert(
            req.uuid.clone(),
            IndexInSnapshot {
                meta_id,
                shards: stored_shards,
            },
        );
    }
    index_names.sort();
    failures.sort_by(|a, b| (&a.index, a.shard).cmp(&(&b.index, b.shard)));

    let state = if failures.is_empty() {
        SnapshotState::Success
    } else if req.partial {
        SnapshotState::Partial
    } else {
        SnapshotState::Failed
    };
    let mut summary = SnapshotSummary {
        name: req.name.clone(),
        uuid: req.uuid.clone(),
        state,
        indices: index_names.clone(),
        start_time_ms: start_ms,
        end_time_ms: repo.clock.now().timestamp_millis(),
        shards: counts,
        reason: failures
            .first()
            .map(|f| format!("[{}][{}] {}", f.index, f.shard, f.reason)),
        failures,
        include_global_state: req.include_global_state,
        metadata: req.metadata.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        stats: totals,
    };
    if state == SnapshotState::Failed {
        // Nothing is published: the repository stays as it was, plus garbage for cleanup.
        return Ok(SnapshotOutcome {
            summary,
            generation: None,
        });
    }
    fence.check()?;
    let global = GlobalMetadata {
        indices: index_names,
        include_global_state: req.include_global_state,
    };
    summary.stats.uploaded_bytes += repo
        .put_meta(&layout::global_meta(&req.uuid), Kind::GlobalMeta, &global)
        .await?;
    summary.end_time_ms = repo.clock.now().timestamp_millis();
    repo.put_meta(
        &layout::snapshot_info(&req.uuid),
        Kind::SnapshotInfo,
        &summary,
    )
    .await?;
    root.snapshots.push(summary.clone());
    fence.check()?;
    let new_generation = repo.write_root(generation, root).await?;
    // The snapshot is committed. Shard generations it replaced are now garbage; remove them
    // (and roots older than the previous one) so the repository does not accumulate them.
    // A failure here is only a warning: cleanup finds whatever is left.
    if let Err(e) =
        crate::delete::collect_garbage(repo, fence, new_generation, &superseded, &BTreeSet::new())
            .await
    {
        tracing::warn!(error = %e, "snapshot committed; removing superseded shard generations failed");
    }
    Ok(SnapshotOutcome {
        summary,
        generation: Some(new_generation),
    })
}

fn workers() -> usize {
    std::thread::available_parallelism()
        .map_or(2, std::num::NonZero::get)
        .clamp(1, 4)
}

fn add_stats(total: &mut SnapshotStats, s: &SnapshotStats) {
    total.total_file_count += s.total_file_count;
    total.total_size_in_bytes += s.total_size_in_bytes;
    total.incremental_file_count += s.incremental_file_count;
    total.incremental_size_in_bytes += s.incremental_size_in_bytes;
    total.uploaded_bytes += s.uploaded_bytes;
}

/// A short content id for content-addressed metadata.
fn content_id<T: Serialize>(value: &T) -> Result<String> {
    use sha2::Digest;
    let json = serde_json::to_vec(value)
        .map_err(|e| RepositoryError::corrupted("index metadata", e.to_string()))?;
    Ok(hex::encode(&sha2::Sha256::digest(&json)[..16]))
}

fn entry_for(e: &ScannedEntry, chunks: Vec<String>) -> FileEntry {
    FileEntry {
        path: e.path.clone(),
        kind: e.kind,
        size: if e.kind == FileKind::File { e.size } else { 0 },
        mode: e.mode,
        mtime_ns: e.mtime_ns,
        inode: e.inode,
        ctime_ns: e.ctime_ns,
        chunks,
        target: e.target.clone(),
    }
}

/// What the worker thread produces for a shard.
struct WorkerOutput {
    files: Vec<FileEntry>,
    incremental_files: u64,
    incremental_bytes: u64,
}

#[allow(clippy::too_many_arguments)]
async fn snapshot_shard(
    ctx: &Ctx<'_>,
    index_id: &str,
    index: &str,
    shard: u32,
    entries: Vec<ScannedEntry>,
    prev_gen: Option<String>,
    prev_snap: Option<String>,
    root_dir: &std::path::Path,
    progress: &Arc<ShardProgress>,
) -> std::result::Result<ShardDone, ShardError> {
    let repo = ctx.repo;
    progress
        .start_ms
        .store(repo.clock.now().timestamp_millis(), Ordering::Relaxed);
    progress.set_stage(Stage::Started);
    let generation: ShardGeneration = match &prev_gen {
        Some(g) => {
            repo.get_meta(
                &layout::shard_generation(index_id, shard, g),
                Kind::ShardGeneration,
            )
            .await?
        }
        None => ShardGeneration::default(),
    };
    // The previous snapshot of this shard, and when it started reading: a file whose
    // timestamps are not clearly older than that read may have changed within the same
    // timestamp tick, so it is read again (see `source::is_unchanged_since`).
    let (previous, previous_read_ms): (HashMap<String, FileEntry>, i64) = match &prev_snap {
        Some(u) => {
            let snap: ShardSnapshot = repo
                .get_meta(
                    &layout::shard_snapshot(index_id, shard, u),
                    Kind::ShardSnapshot,
                )
                .await?;
            let started = snap.start_time_ms;
            (
                snap.files
                    .into_iter()
                    .map(|f| (f.path.clone(), f))
                    .collect(),
                started,
            )
        }
        None => (HashMap::new(), 0),
    };

    // Plan: which entries are reused, which must be read.
    let mut planned: Vec<Option<FileEntry>> = Vec::with_capacity(entries.len());
    let mut to_read = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if e.kind == FileKind::File {
            ShardProgress::add(&progress.total_files, 1);
            ShardProgress::add(&progress.total_bytes, e.size);
        }
        match previous.get(&e.path) {
            Some(prev)
                if e.kind == FileKind::File
                    && source::is_unchanged_since(prev, e, previous_read_ms) =>
            {
                planned.push(Some(prev.clone()));
            }
            _ if e.kind == FileKind::File => {
                ShardProgress::add(&progress.incremental_files, 1);
                ShardProgress::add(&progress.incremental_bytes, e.size);
                planned.push(None);
                to_read.push(i);
            }
            _ => planned.push(Some(entry_for(e, Vec::new()))),
        }
    }
    let start_ms = progress.start_ms.load(Ordering::Relaxed);

    let known: HashSet<[u8; 32]> = generation
        .packs
        .iter()
        .flat_map(|p| p.chunks.iter())
        .filter_map(|c| hex_hash(c.hash()))
        .collect();

    // Worker: read, chunk, hash, pack. Sealed packs flow to the uploads below.
    let (tx, mut rx) = mpsc::channel::<(SealedPack, OwnedSemaphorePermit)>(1);
    let worker = {
        let uploads = Arc::clone(&ctx.uploads);
        let entries = entries.clone();
        let root_dir = root_dir.to_path_buf();
        let params = ctx.params;
        let pack_size = repo.settings.pack_size as usize;
        let compress = repo.settings.compress;
        let progress = Arc::clone(progress);
        tokio::task::spawn_blocking(move || -> std::result::Result<WorkerOutput, ShardError> {
            read_and_pack(
                &root_dir, &entries, &to_read, known, params, pack_size, compress, &tx, &uploads,
                &progress, planned,
            )
        })
    };

    let mut new_packs: Vec<PackRecord> = Vec::new();
    let mut uploaded = 0u64;
    let mut in_flight = futures::stream::FuturesUnordered::new();
    let mut channel_open = true;
    // Each sealed pack arrives with the upload permit its worker took before sealing it, so
    // a pack is only ever built and waiting, or uploading: this loop takes packs as they
    // come and keeps polling the uploads, which is what frees permits for the workers.
    while channel_open || !in_flight.is_empty() {
        tokio::select! {
            sealed = rx.recv(), if channel_open => match sealed {
                Some((pack, permit)) => {
                    let key = layout::pack(index_id, shard, &pack.id);
                    let (store, throttle, progress) = (Arc::clone(&repo.store), Arc::clone(&ctx.throttle), Arc::clone(progress));
                    ctx.fence.check()?;
                    in_flight.push(async move {
                        let _permit = permit;
                        let len = pack.bytes.len() as u64;
                        throttle.acquire(len).await;
                        // The pack's name is its SHA-256: S3 signs it instead of hashing
                        // the pack again.
                        let put = match hex_hash(&pack.id) {
                            Some(sha256) => store.put_hashed(&key, pack.bytes.clone(), PutMode::Create, sha256).await,
                            None => store.put(&key, pack.bytes.clone(), PutMode::Create).await,
                        };
                        match put {
                            // Packs are named by their content: an existing one is this one.
                            Ok(_) | Err(RepositoryError::AlreadyExists { .. }) => {}
                            Err(e) => return Err(e),
                        }
                        ShardProgress::add(&progress.uploaded_bytes, len);
                        Ok(PackRecord { id: pack.id, size: len, chunks: pack.chunks })
                    });
                }
                None => channel_open = false,
            },
            Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                let record = done?;
                uploaded += record.size;
                new_packs.push(record);
            }
        }
    }
    let output = worker
        .await
        .map_err(|e| crate::task::join_error("snapshot", &e))??;

    progress.set_stage(Stage::Finalize);
    // New generation: old packs + new ones, each chunk's count raised once per snapshot
    // that references it.
    let mut generation = generation;
    generation.packs.extend(new_packs);
    generation
        .adjust_refs(crate::model::referenced_chunks(&output.files), 1)
        .map_err(|e| {
            RepositoryError::corrupted(layout::shard_dir(index_id, shard), e.to_string())
        })?;
    generation.snapshots.push(ctx.snapshot_uuid.to_owned());

    let total_file_count = output
        .files
        .iter()
        .filter(|f| f.kind == FileKind::File)
        .count() as u64;
    let total_size: u64 = output.files.iter().map(|f| f.size).sum();
    let mut stats = SnapshotStats {
        total_file_count,
        total_size_in_bytes: total_size,
        incremental_file_count: output.incremental_files,
        incremental_size_in_bytes: output.incremental_bytes,
        uploaded_bytes: uploaded,
    };
    let shard_snapshot = ShardSnapshot {
        index: index.to_owned(),
        shard,
        files: output.files,
        stats,
        start_time_ms: start_ms,
        time_ms: repo.clock.now().timestamp_millis() - start_ms,
    };
    ctx.fence.check()?;
    stats.uploaded_bytes += repo
        .put_meta(
            &layout::shard_snapshot(index_id, shard, ctx.snapshot_uuid),
            Kind::ShardSnapshot,
            &shard_snapshot,
        )
        .await?;
    let new_gen = uuid::Uuid::new_v4().simple().to_string();
    ctx.fence.check()?;
    stats.uploaded_bytes += repo
        .put_meta(
            &layout::shard_generation(index_id, shard, &new_gen),
            Kind::ShardGeneration,
            &generation,
        )
        .await?;
    Ok(ShardDone {
        generation: new_gen,
        stats,
    })
}

fn hex_hash(h: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(h, &mut out).ok()?;
    Some(out)
}

/// Waits for an upload permit, then seals the pack being filled and hands it to the
/// uploads with the permit. Waiting *before* sealing is the back-pressure that bounds
/// memory: packs exist only as one being filled per worker plus one per permit. The writer
/// is reset and keeps its compression state.
fn seal(
    writer: &mut PackWriter,
    tx: &mpsc::Sender<(SealedPack, OwnedSemaphorePermit)>,
    uploads: &Arc<Semaphore>,
) -> Result<()> {
    // The receiving side only goes away when an upload failed; that failure is what the
    // snapshot reports, so this error is never the one a user sees.
    let stopped = || RepositoryError::Storage {
        operation: "snapshot",
        key: String::new(),
        code: None,
        message: "the upload pipeline stopped".to_owned(),
        retryable: false,
    };
    // A blocking worker thread, not an async worker: blocking here is what it is for.
    let permit =
        futures::executor::block_on(Arc::clone(uploads).acquire_owned()).map_err(|_| stopped())?;
    let sealed = writer.finish()?;
    tx.blocking_send((sealed, permit)).map_err(|_| stopped())
}

#[allow(clippy::too_many_arguments)]
fn read_and_pack(
    root: &std::path::Path,
    entries: &[ScannedEntry],
    to_read: &[usize],
    mut known: HashSet<[u8; 32]>,
    params: ChunkerParams,
    pack_size: usize,
    compress: bool,
    tx: &mpsc::Sender<(SealedPack, OwnedSemaphorePermit)>,
    uploads: &Arc<Semaphore>,
    progress: &ShardProgress,
    mut planned: Vec<Option<FileEntry>>,
) -> std::result::Result<WorkerOutput, ShardError> {
    let mut writer = PackWriter::new(pack_size, compress);
    let (mut incremental_files, mut incremental_bytes) = (0, 0);
    for &i in to_read {
        let mut entry = entries[i].clone();
        let mut attempt = 0;
        // `None`: the file disappeared after the scan, so it is not part of the snapshot.
        let read: Option<Vec<String>> = loop {
            attempt += 1;
            let mut chunks = Vec::new();
            writer.start_file();
            let read_started_ns = source::file_clock_now_ns();
            let outcome = source::read_file_chunks(root, &entry, &params, |chunk| {
                chunks.push(hex::encode(chunk.hash));
                if known.insert(chunk.hash) {
                    writer.add(chunk.hash, chunk.data)?;
                    if writer.is_full() {
                        seal(&mut writer, tx, uploads)?;
                    }
                }
                Ok(())
            });
            match outcome {
                Ok(ReadOutcome::Complete) if !source::is_hot(&entry, read_started_ns) => {
                    break Some(chunks);
                }
                // Written to moments ago: a write during the read may not have moved the
                // timestamps (the kernel stamps files from a coarse clock). Keep the result
                // only if a second read sees exactly the same content.
                Ok(ReadOutcome::Complete) => {
                    let mut again = Vec::with_capacity(chunks.len());
                    let second = source::read_file_chunks(root, &entry, &params, |chunk| {
                        again.push(hex::encode(chunk.hash));
                        Ok(())
                    });
                    match second {
                        Ok(ReadOutcome::Complete) if again == chunks => break Some(chunks),
                        Ok(_) if attempt < READ_ATTEMPTS => {}
                        Ok(_) => {
                            return Err(ShardError::Source(format!(
                                "[{}] kept changing while it was read ({READ_ATTEMPTS} attempts)",
                                entry.path
                            )));
                        }
                        Err(e) => return Err(ShardError::Source(format!("[{}]: {e}", entry.path))),
                    }
                }
                Ok(ReadOutcome::Changed) if attempt < READ_ATTEMPTS => {
                    // The file is not what the scan saw: look again and read the new one.
                    match source::rescan_entry(root, &entry.path) {
                        Ok(Some(fresh)) if fresh.kind == FileKind::File => entry = fresh,
                        Ok(_) => break None,
                        Err(e) => return Err(ShardError::Source(format!("[{}]: {e}", entry.path))),
                    }
                }
                Ok(ReadOutcome::Changed) => {
                    return Err(ShardError::Source(format!(
                        "[{}] kept changing while it was read ({READ_ATTEMPTS} attempts)",
                        entry.path
                    )));
                }
                Err(e @ (RepositoryError::Io { .. } | RepositoryError::UnsafePath { .. })) => {
                    return Err(ShardError::Source(format!("[{}]: {e}", entry.path)));
                }
                Err(e) => return Err(ShardError::Repository(e)),
            }
        };
        ShardProgress::add(&progress.processed_files, 1);
        ShardProgress::add(&progress.processed_bytes, entry.size);
        planned[i] = read.map(|chunks| {
            incremental_files += 1;
            incremental_bytes += entry.size;
            entry_for(&entry, chunks)
        });
    }
    if !writer.is_empty() {
        seal(&mut writer, tx, uploads)?;
    }
    Ok(WorkerOutput {
        files: planned.into_iter().flatten().collect(),
        incremental_files,
        incremental_bytes,
    })
}
