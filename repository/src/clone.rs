//! `_clone`: a new snapshot sharing all data with its source. Only metadata is written: the
//! shard file lists are copied under the new uuid and each shared chunk's count is raised,
//! in new shard generations, then a new root.

use crate::envelope::Kind;
use crate::fence::Fence;
use crate::model::{ShardSnapshot, SnapshotSummary};
use crate::repo::{ExpectedGeneration, Repository};
use crate::snapshot::GlobalMetadata;
use crate::{RepositoryError, Result, layout};

/// Clones snapshot `source` (by name) as `target` (name and uuid), keeping only `indices`
/// (all when `None`). Returns the new root generation and the new snapshot's summary.
pub async fn clone_snapshot(
    repo: &Repository,
    fence: &dyn Fence,
    expected: ExpectedGeneration,
    source: &str,
    target: &str,
    target_uuid: &str,
    indices: Option<&[String]>,
) -> Result<(u64, SnapshotSummary)> {
    if repo.settings.readonly {
        return Err(RepositoryError::ReadOnly { operation: "clone" });
    }
    let (generation, mut root) = repo.load(expected).await?;
    let src = root
        .snapshots
        .iter()
        .find(|s| s.name == source)
        .cloned()
        .ok_or_else(|| RepositoryError::NotFound {
            key: format!("snapshot [{source}]"),
        })?;
    let wanted: Vec<String> = match indices {
        Some(list) => {
            for i in list {
                if !src.indices.contains(i) {
                    return Err(RepositoryError::NotFound {
                        key: format!("index [{i}] in snapshot [{source}]"),
                    });
                }
            }
            list.to_vec()
        }
        None => src.indices.clone(),
    };
    let now = repo.clock.now().timestamp_millis();
    for name in &wanted {
        let entry = root.indices.get_mut(name).ok_or_else(|| {
            RepositoryError::corrupted(
                layout::root(generation.unwrap_or(0)),
                format!("index [{name}] is listed by a snapshot but missing"),
            )
        })?;
        let held = entry.snapshots.get(&src.uuid).cloned().ok_or_else(|| {
            RepositoryError::corrupted(
                layout::index_dir(&entry.id),
                format!("snapshot [{source}] missing"),
            )
        })?;
        for &shard in &held.shards {
            let (gen_id, mut shard_gen) = repo.current_shard_generation(entry, shard).await?;
            let snap: ShardSnapshot = repo
                .get_meta(
                    &layout::shard_snapshot(&entry.id, shard, &src.uuid),
                    Kind::ShardSnapshot,
                )
                .await?;
            shard_gen
                .adjust_refs(crate::model::referenced_chunks(&snap.files), 1)
                .map_err(|e| {
                    RepositoryError::corrupted(
                        layout::shard_generation(&entry.id, shard, &gen_id),
                        e.to_string(),
                    )
                })?;
            shard_gen.snapshots.push(target_uuid.to_owned());
            fence.check()?;
            repo.put_meta(
                &layout::shard_snapshot(&entry.id, shard, target_uuid),
                Kind::ShardSnapshot,
                &snap,
            )
            .await?;
            let new_gen = uuid::Uuid::new_v4().simple().to_string();
            repo.put_meta(
                &layout::shard_generation(&entry.id, shard, &new_gen),
                Kind::ShardGeneration,
                &shard_gen,
            )
            .await?;
            entry.shard_generations[shard as usize] = Some(new_gen);
        }
        entry.snapshots.insert(target_uuid.to_owned(), held);
    }
    let mut summary = src.clone();
    summary.name = target.to_owned();
    summary.uuid = target_uuid.to_owned();
    summary.indices = wanted.clone();
    summary.indices.sort();
    summary.start_time_ms = now;
    summary.end_time_ms = repo.clock.now().timestamp_millis();
    summary.failures.retain(|f| wanted.contains(&f.index));
    let global = GlobalMetadata {
        indices: summary.indices.clone(),
        include_global_state: summary.include_global_state,
    };
    fence.check()?;
    repo.put_meta(&layout::global_meta(target_uuid), Kind::GlobalMeta, &global)
        .await?;
    repo.put_meta(
        &layout::snapshot_info(target_uuid),
        Kind::SnapshotInfo,
        &summary,
    )
    .await?;
    root.snapshots.push(summary.clone());
    fence.check()?;
    let new_generation = repo.write_root(generation, root).await?;
    Ok((new_generation, summary))
}
