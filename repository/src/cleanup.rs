//! `_cleanup`: removes what no current metadata references. The referenced set is computed
//! from the current root and the current shard generations; everything else in coffer's
//! namespaces (stale roots, snapshot blobs of failed or deleted snapshots, index folders no
//! root mentions, old shard generations and shard file lists, orphan packs, verification
//! probes) goes, together with storage-level leftovers (incomplete multipart uploads,
//! temporary files). Blobs outside coffer's namespaces are never touched.

use std::collections::{BTreeSet, HashSet};

use crate::envelope::Kind;
use crate::fence::Fence;
use crate::model::ShardGeneration;
use crate::repo::{ExpectedGeneration, Repository};
use crate::{RepositoryError, Result, layout};

/// What cleanup removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanupResult {
    /// Bytes removed.
    pub deleted_bytes: u64,
    /// Blobs removed.
    pub deleted_blobs: u64,
}

/// Whether a root-level key belongs to coffer (and so may be judged garbage). Keys are the
/// exact names coffer writes, so the extension comparison is deliberately case-sensitive.
#[allow(clippy::case_sensitive_file_extension_comparisons)]
fn is_ours_at_root(key: &str) -> bool {
    layout::parse_root(key).is_some()
        || (key.starts_with("snap-") && key.ends_with(".dat") && !key.contains('/'))
        || (key.starts_with("meta-") && key.ends_with(".dat") && !key.contains('/'))
        || key.starts_with(layout::PROBE_PREFIX)
        || key.starts_with("indices/")
}

/// Removes every unreferenced blob and storage leftover.
pub async fn cleanup(
    repo: &Repository,
    fence: &dyn Fence,
    expected: ExpectedGeneration,
) -> Result<CleanupResult> {
    if repo.settings.readonly {
        return Err(RepositoryError::ReadOnly {
            operation: "clean up",
        });
    }
    let (generation, root) = repo.load(expected).await?;
    let mut keep: HashSet<String> = HashSet::new();
    if let Some(n) = generation {
        keep.insert(layout::root(n));
        if n > 0 {
            // The previous root stays for readers that listed just before the last write.
            keep.insert(layout::root(n - 1));
        }
    }
    for s in &root.snapshots {
        keep.insert(layout::snapshot_info(&s.uuid));
        keep.insert(layout::global_meta(&s.uuid));
    }
    let live_snapshots: HashSet<&str> = root.snapshots.iter().map(|s| s.uuid.as_str()).collect();
    for entry in root.indices.values() {
        for held in entry.snapshots.values() {
            keep.insert(layout::index_meta(&entry.id, &held.meta_id));
        }
        for (shard, gen_id) in entry.shard_generations.iter().enumerate() {
            let Some(gen_id) = gen_id else { continue };
            let shard = u32::try_from(shard).map_err(|_| {
                RepositoryError::corrupted(layout::index_dir(&entry.id), "shard number")
            })?;
            let key = layout::shard_generation(&entry.id, shard, gen_id);
            let generation: ShardGeneration = repo.get_meta(&key, Kind::ShardGeneration).await?;
            keep.insert(key);
            for uuid in generation
                .snapshots
                .iter()
                .filter(|u| live_snapshots.contains(u.as_str()))
            {
                keep.insert(layout::shard_snapshot(&entry.id, shard, uuid));
            }
            for pk in &generation.packs {
                keep.insert(layout::pack(&entry.id, shard, &pk.id));
            }
        }
    }

    let mut doomed = BTreeSet::new();
    let mut result = CleanupResult::default();
    for m in repo.store.list("").await? {
        if is_ours_at_root(&m.key) && !keep.contains(&m.key) {
            result.deleted_bytes += m.size;
            doomed.insert(m.key);
        }
    }
    let doomed: Vec<String> = doomed.into_iter().collect();
    for batch in doomed.chunks(1000) {
        fence.renew_now().await?;
        fence.check()?;
        repo.store.delete_batch(batch).await?;
    }
    result.deleted_blobs = doomed.len() as u64;
    fence.check()?;
    let (blobs, bytes) = repo.store.remove_incomplete_writes("").await?;
    result.deleted_blobs += blobs;
    result.deleted_bytes += bytes;
    Ok(result)
}
