//! Deleting snapshots, as a plan and then its execution.
//!
//! The plan is a pure function of what the deleted snapshots reference: their shard file
//! lists and the current generations of the shards they touch. It lowers each referenced
//! chunk's count once per deleted snapshot, drops packs with no live chunk, marks packs that
//! are mostly dead for repacking, and lists what becomes garbage. Nothing else in the
//! repository is read, so deleting one snapshot out of thousands costs what that snapshot
//! holds, not what the repository holds.
//!
//! Execution writes repacked packs and new shard generations, then the new root (the commit
//! point), then, under a freshly renewed lease, deletes the garbage. A crash anywhere leaves
//! either the old state or the new one plus garbage for `cleanup`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::envelope::Kind;
use crate::fence::Fence;
use crate::model::{ChunkRecord, PackRecord, RepositoryData, ShardGeneration, ShardSnapshot};
use crate::pack::{self, PackWriter};
use crate::repo::{ExpectedGeneration, Repository};
use crate::store::PutMode;
use crate::{RepositoryError, Result, layout};

/// A pack is repacked once more than 1/`REPACK_DEAD_DIVISOR` of its bytes is dead.
const REPACK_DEAD_DIVISOR: u64 = 2;

/// Everything the plan needs, loaded.
#[derive(Debug, Clone)]
pub struct DeleteInputs {
    /// The current root.
    pub root: RepositoryData,
    /// Uuids of the snapshots to delete.
    pub snapshots: Vec<String>,
    /// The shard file lists of the deleted snapshots, by (index id, shard, snapshot uuid).
    pub shard_snapshots: HashMap<(String, u32, String), ShardSnapshot>,
    /// Current generations of the affected shards, by (index id, shard): (generation id,
    /// contents).
    pub generations: HashMap<(String, u32), (String, ShardGeneration)>,
}

/// One shard's new generation.
#[derive(Debug, Clone)]
pub struct ShardRewrite {
    /// Index id.
    pub index_id: String,
    /// Shard.
    pub shard: u32,
    /// The generation being replaced.
    pub old_generation: String,
    /// Id of the new generation.
    pub new_generation: String,
    /// Its contents, before repacked packs are added.
    pub generation: ShardGeneration,
    /// Packs to rewrite with only their live chunks (reference counts kept).
    pub repack: Vec<PackRecord>,
}

/// What deleting the snapshots will do.
#[derive(Debug, Clone)]
pub struct DeletePlan {
    /// The new root (its generation number is set when it is written).
    pub root: RepositoryData,
    /// New shard generations.
    pub shards: Vec<ShardRewrite>,
    /// Blobs that become garbage once the new root is published.
    pub garbage: BTreeSet<String>,
    /// Folders (index folders with no snapshot left) whose every blob becomes garbage.
    pub garbage_folders: BTreeSet<String>,
}

/// Plans the deletion. `new_id` supplies ids for new shard generations.
pub fn plan_delete(
    inputs: &DeleteInputs,
    new_id: &mut dyn FnMut() -> String,
) -> Result<DeletePlan> {
    let doomed: HashSet<&str> = inputs.snapshots.iter().map(String::as_str).collect();
    let mut root = inputs.root.clone();
    root.snapshots.retain(|s| !doomed.contains(s.uuid.as_str()));
    let mut garbage = BTreeSet::new();
    let mut garbage_folders = BTreeSet::new();
    for uuid in &inputs.snapshots {
        garbage.insert(layout::snapshot_info(uuid));
        garbage.insert(layout::global_meta(uuid));
    }

    // Affected shards: (index id, shard) -> deleted snapshots holding it.
    let mut affected: BTreeMap<(String, u32), Vec<String>> = BTreeMap::new();
    let mut emptied_indices = Vec::new();
    for (name, entry) in &mut root.indices {
        let before_meta: BTreeSet<String> = entry
            .snapshots
            .values()
            .map(|i| i.meta_id.clone())
            .collect();
        for uuid in &inputs.snapshots {
            if let Some(held) = entry.snapshots.remove(uuid) {
                for shard in held.shards {
                    affected
                        .entry((entry.id.clone(), shard))
                        .or_default()
                        .push(uuid.clone());
                    garbage.insert(layout::shard_snapshot(&entry.id, shard, uuid));
                }
            }
        }
        if entry.snapshots.is_empty() {
            emptied_indices.push(name.clone());
            garbage_folders.insert(layout::index_dir(&entry.id));
            continue;
        }
        let after_meta: BTreeSet<String> = entry
            .snapshots
            .values()
            .map(|i| i.meta_id.clone())
            .collect();
        for unused in before_meta.difference(&after_meta) {
            garbage.insert(layout::index_meta(&entry.id, unused));
        }
    }
    let emptied_ids: HashSet<String> = emptied_indices
        .iter()
        .filter_map(|n| root.indices.get(n).map(|e| e.id.clone()))
        .collect();
    for name in &emptied_indices {
        root.indices.remove(name);
    }

    let mut shards = Vec::new();
    for ((index_id, shard), uuids) in affected {
        if emptied_ids.contains(&index_id) {
            continue;
        }
        let (old_generation, current) = inputs
            .generations
            .get(&(index_id.clone(), shard))
            .ok_or_else(|| {
                RepositoryError::corrupted(
                    layout::shard_dir(&index_id, shard),
                    "the shard's current generation was not loaded",
                )
            })?;
        let mut generation = current.clone();
        for uuid in &uuids {
            let snap = inputs
                .shard_snapshots
                .get(&(index_id.clone(), shard, uuid.clone()))
                .ok_or_else(|| {
                    RepositoryError::corrupted(
                        layout::shard_snapshot(&index_id, shard, uuid),
                        "not loaded",
                    )
                })?;
            generation
                .adjust_refs(crate::model::referenced_chunks(&snap.files), -1)
                .map_err(|e| {
                    RepositoryError::corrupted(
                        layout::shard_generation(&index_id, shard, old_generation),
                        e.to_string(),
                    )
                })?;
            generation.snapshots.retain(|s| s != uuid);
        }
        let mut repack = Vec::new();
        let mut kept = Vec::new();
        for pk in std::mem::take(&mut generation.packs) {
            let live_bytes: u64 = pk
                .chunks
                .iter()
                .filter(|c| c.refs() > 0)
                .map(|c| u64::from(c.stored_len()))
                .sum();
            let dead_bytes: u64 = pk
                .chunks
                .iter()
                .filter(|c| c.refs() == 0)
                .map(|c| u64::from(c.stored_len()))
                .sum();
            if live_bytes == 0 {
                garbage.insert(layout::pack(&index_id, shard, &pk.id));
            } else if dead_bytes > 0 && dead_bytes * REPACK_DEAD_DIVISOR > live_bytes + dead_bytes {
                // Packs are named by their content: repacking a pack with no dead chunk
                // rewrites the very same blob, which the garbage list then deletes. Only
                // chunk bytes count: a small pack's header outweighs its chunks.
                garbage.insert(layout::pack(&index_id, shard, &pk.id));
                repack.push(pk);
            } else {
                kept.push(pk);
            }
        }
        generation.packs = kept;
        garbage.insert(layout::shard_generation(&index_id, shard, old_generation));
        shards.push(ShardRewrite {
            index_id: index_id.clone(),
            shard,
            old_generation: old_generation.clone(),
            new_generation: new_id(),
            generation,
            repack,
        });
    }
    for rewrite in &shards {
        if let Some(entry) = root.indices.values_mut().find(|e| e.id == rewrite.index_id)
            && let Some(slot) = entry.shard_generations.get_mut(rewrite.shard as usize)
        {
            *slot = Some(rewrite.new_generation.clone());
        }
    }
    Ok(DeletePlan {
        root,
        shards,
        garbage,
        garbage_folders,
    })
}

/// Loads the inputs for deleting `uuids` from the current root.
pub async fn load_inputs(
    repo: &Repository,
    root: RepositoryData,
    uuids: Vec<String>,
) -> Result<DeleteInputs> {
    let mut shard_snapshots = HashMap::new();
    let mut generations = HashMap::new();
    for entry in root.indices.values() {
        for uuid in &uuids {
            let Some(held) = entry.snapshots.get(uuid) else {
                continue;
            };
            for &shard in &held.shards {
                let key = layout::shard_snapshot(&entry.id, shard, uuid);
                let snap: ShardSnapshot = repo.get_meta(&key, Kind::ShardSnapshot).await?;
                shard_snapshots.insert((entry.id.clone(), shard, uuid.clone()), snap);
                if let std::collections::hash_map::Entry::Vacant(v) =
                    generations.entry((entry.id.clone(), shard))
                {
                    v.insert(repo.current_shard_generation(entry, shard).await?);
                }
            }
        }
    }
    Ok(DeleteInputs {
        root,
        snapshots: uuids,
        shard_snapshots,
        generations,
    })
}

/// Deletes snapshots (by uuid) and returns the new root generation.
pub async fn delete_snapshots(
    repo: &Repository,
    fence: &dyn Fence,
    expected: ExpectedGeneration,
    uuids: Vec<String>,
) -> Result<u64> {
    if repo.settings.readonly {
        return Err(RepositoryError::ReadOnly {
            operation: "delete snapshots",
        });
    }
    let (generation, root) = repo.load(expected).await?;
    let inputs = load_inputs(repo, root, uuids).await?;
    let mut plan = plan_delete(&inputs, &mut || uuid::Uuid::new_v4().simple().to_string())?;
    for rewrite in &mut plan.shards {
        for pk in std::mem::take(&mut rewrite.repack) {
            let records = repack(repo, fence, &rewrite.index_id, rewrite.shard, &pk).await?;
            // A repacked pack identical to a doomed one has its name, and is live.
            for r in &records {
                plan.garbage
                    .remove(&layout::pack(&rewrite.index_id, rewrite.shard, &r.id));
            }
            rewrite.generation.packs.extend(records);
        }
        fence.check()?;
        repo.put_meta(
            &layout::shard_generation(&rewrite.index_id, rewrite.shard, &rewrite.new_generation),
            Kind::ShardGeneration,
            &rewrite.generation,
        )
        .await?;
    }
    fence.check()?;
    let new_generation = repo.write_root(generation, plan.root).await?;
    collect_garbage(
        repo,
        fence,
        new_generation,
        &plan.garbage,
        &plan.garbage_folders,
    )
    .await?;
    Ok(new_generation)
}

/// Rewrites a mostly-dead pack with its live chunks only, each verified on the way.
async fn repack(
    repo: &Repository,
    fence: &dyn Fence,
    index_id: &str,
    shard: u32,
    pk: &PackRecord,
) -> Result<Vec<PackRecord>> {
    let key = layout::pack(index_id, shard, &pk.id);
    let (bytes, _) = repo.store.get(&key).await?;
    let live: Vec<ChunkRecord> = pk.chunks.iter().filter(|c| c.refs() > 0).cloned().collect();
    let counts: HashMap<String, u32> = live
        .iter()
        .map(|c| (c.hash().to_owned(), c.refs()))
        .collect();
    let (pack_size, compress) = (repo.settings.pack_size as usize, repo.settings.compress);
    let sealed =
        crate::task::blocking("repack", move || -> Result<Vec<crate::pack::SealedPack>> {
            let mut out = Vec::new();
            let mut writer = PackWriter::new(pack_size, compress);
            for c in &live {
                let start = usize::try_from(c.offset())
                    .map_err(|_| RepositoryError::corrupted(&key, "offset"))?;
                let end = start + c.stored_len() as usize;
                let stored = bytes.get(start..end).ok_or_else(|| {
                    RepositoryError::corrupted(&key, format!("chunk {} past the end", c.hash()))
                })?;
                let raw = pack::decode_chunk(&key, c, stored)?;
                let mut hash = [0u8; 32];
                hex::decode_to_slice(c.hash(), &mut hash)
                    .map_err(|_| RepositoryError::corrupted(&key, "chunk hash"))?;
                writer.add(hash, &raw)?;
                if writer.is_full() {
                    out.push(
                        std::mem::replace(&mut writer, PackWriter::new(pack_size, compress))
                            .finish()?,
                    );
                }
            }
            if !writer.is_empty() {
                out.push(writer.finish()?);
            }
            Ok(out)
        })
        .await?;
    let mut records = Vec::new();
    for s in sealed {
        fence.check()?;
        let size = s.bytes.len() as u64;
        match repo
            .store
            .put(
                &layout::pack(index_id, shard, &s.id),
                s.bytes,
                PutMode::Create,
            )
            .await
        {
            Ok(_) | Err(RepositoryError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
        let chunks = s
            .chunks
            .into_iter()
            .map(|mut c| {
                c.5 = counts.get(c.hash()).copied().unwrap_or(0);
                c
            })
            .collect();
        records.push(PackRecord {
            id: s.id,
            size,
            chunks,
        });
    }
    Ok(records)
}

/// Deletes blobs made unreferenced by the root `generation`, plus roots older than its
/// predecessor, after renewing the lease.
pub(crate) async fn collect_garbage(
    repo: &Repository,
    fence: &dyn Fence,
    generation: u64,
    garbage: &BTreeSet<String>,
    folders: &BTreeSet<String>,
) -> Result<(u64, u64)> {
    let mut doomed: Vec<String> = garbage.iter().cloned().collect();
    let mut bytes = 0;
    for folder in folders {
        for m in repo.store.list(folder).await? {
            bytes += m.size;
            doomed.push(m.key);
        }
    }
    for m in repo.store.list(layout::ROOT_PREFIX).await? {
        if layout::parse_root(&m.key).is_some_and(|n| n + 1 < generation) {
            doomed.push(m.key);
        }
    }
    doomed.sort();
    doomed.dedup();
    let count = doomed.len() as u64;
    for batch in doomed.chunks(1000) {
        fence.renew_now().await?;
        fence.check()?;
        repo.store.delete_batch(batch).await?;
    }
    Ok((count, bytes))
}
