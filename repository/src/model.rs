//! The typed contents of the metadata blobs. Each type is stored as JSON inside an
//! [`envelope`](crate::envelope); `docs/repository-format.md` shows each one.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

/// `index-N`: everything a reader needs to list snapshots and find their data, in one blob,
/// so that `GET _snapshot/repo/_all` costs one read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RepositoryData {
    /// The repository's uuid, fixed by the first write.
    pub uuid: String,
    /// The generation this blob was written as (must match its name).
    pub generation: u64,
    /// Snapshots, oldest first.
    pub snapshots: Vec<SnapshotSummary>,
    /// Indices by name.
    pub indices: BTreeMap<String, IndexEntry>,
}

/// A snapshot as listed by the root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotSummary {
    /// Its name, unique in the repository.
    pub name: String,
    /// Its uuid, unique everywhere.
    pub uuid: String,
    /// Final state.
    pub state: SnapshotState,
    /// Index names, sorted.
    pub indices: Vec<String>,
    /// When it started, milliseconds since the epoch.
    pub start_time_ms: i64,
    /// When it ended.
    pub end_time_ms: i64,
    /// Shard counts.
    pub shards: ShardCounts,
    /// Shard failures (a `PARTIAL` snapshot has some).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<ShardFailure>,
    /// Why it failed or is partial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `include_global_state` as requested.
    pub include_global_state: bool,
    /// User metadata, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    /// The coffer version that wrote it.
    pub version: String,
    /// Totals over its shards.
    pub stats: SnapshotStats,
}

/// A snapshot's final state, as Elasticsearch names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SnapshotState {
    /// Every shard was stored.
    Success,
    /// Some shards failed and `partial` allowed it.
    Partial,
    /// The snapshot failed; no data of it is usable.
    Failed,
    /// Still running (only ever reported live, never stored in a root).
    InProgress,
}

/// Shard counts of a snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardCounts {
    /// Shards in the snapshot.
    pub total: u32,
    /// Shards that failed.
    pub failed: u32,
    /// Shards stored.
    pub successful: u32,
}

/// One failed shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardFailure {
    /// Index name.
    pub index: String,
    /// Shard number.
    pub shard: u32,
    /// What went wrong.
    pub reason: String,
}

/// File and byte counts: `total` is what the snapshot holds, `incremental` what it had to
/// read and store anew.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotStats {
    /// Files in the snapshot.
    pub total_file_count: u64,
    /// Their bytes.
    pub total_size_in_bytes: u64,
    /// Files read because they were new or changed.
    pub incremental_file_count: u64,
    /// Bytes of those files.
    pub incremental_size_in_bytes: u64,
    /// Bytes actually uploaded (new chunks after dedup and compression, plus metadata).
    pub uploaded_bytes: u64,
}

/// An index in the root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The index's folder under `indices/`; stable for the life of the name in this
    /// repository.
    pub id: String,
    /// Snapshots (uuids) holding this index, with the index metadata each used.
    pub snapshots: BTreeMap<String, IndexInSnapshot>,
    /// Current generation of each shard (`None`: the shard has never been stored).
    pub shard_generations: Vec<Option<String>>,
}

/// How one snapshot holds one index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexInSnapshot {
    /// The content id of the index metadata blob.
    pub meta_id: String,
    /// Shards stored for this index in that snapshot.
    pub shards: Vec<u32>,
}

/// `indices/<id>/meta-<meta_id>.dat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexMetadata {
    /// The index name at snapshot time.
    pub name: String,
    /// Its shard count.
    pub number_of_shards: u32,
    /// Replicas as the user set them (meaningless to coffer, reported back).
    pub number_of_replicas: u32,
}

/// `indices/<id>/<shard>/index-<gen>`: every pack and chunk of a shard that any snapshot
/// uses, with reference counts, so that deleting a snapshot touches only that snapshot's
/// files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardGeneration {
    /// Snapshots (uuids) with a shard snapshot in this folder.
    pub snapshots: Vec<String>,
    /// Packs and their chunks.
    pub packs: Vec<PackRecord>,
}

/// A chunk whose reference count could not be changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefCountError {
    /// The chunk's hash.
    pub hash: String,
    /// Why: not in the generation, or the count would drop below zero.
    pub reason: &'static str,
}

impl std::fmt::Display for RefCountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "chunk {}: {}", self.hash, self.reason)
    }
}

impl ShardGeneration {
    /// Where each chunk is: hash → (pack index, chunk index).
    pub fn chunk_positions(&self) -> HashMap<&str, (usize, usize)> {
        let mut out = HashMap::new();
        for (p, pack) in self.packs.iter().enumerate() {
            for (c, chunk) in pack.chunks.iter().enumerate() {
                out.entry(chunk.hash()).or_insert((p, c));
            }
        }
        out
    }

    /// Raises (`delta = 1`) or lowers (`delta = -1`) the count of each chunk in `hashes`,
    /// which must be distinct: one snapshot references a chunk once, however many files
    /// share it. Nothing changes when an error is returned.
    pub fn adjust_refs<'h>(
        &mut self,
        hashes: impl IntoIterator<Item = &'h str>,
        delta: i32,
    ) -> Result<(), RefCountError> {
        let positions = self.chunk_positions();
        let mut targets = Vec::new();
        for hash in hashes {
            let &(p, c) = positions.get(hash).ok_or_else(|| RefCountError {
                hash: hash.to_owned(),
                reason: "not in the shard generation",
            })?;
            let updated = self.packs[p].chunks[c]
                .5
                .checked_add_signed(delta)
                .ok_or_else(|| RefCountError {
                    hash: hash.to_owned(),
                    reason: "reference count would drop below zero",
                })?;
            targets.push((p, c, updated));
        }
        for (p, c, updated) in targets {
            self.packs[p].chunks[c].5 = updated;
        }
        Ok(())
    }
}

/// Every distinct chunk the given entries reference.
pub fn referenced_chunks(files: &[FileEntry]) -> HashSet<&str> {
    files
        .iter()
        .flat_map(|f| f.chunks.iter().map(String::as_str))
        .collect()
}

/// A pack blob and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackRecord {
    /// The pack's id (SHA-256 of its bytes, hex); the blob is `__<id>`.
    pub id: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its chunks, in the order they are stored.
    pub chunks: Vec<ChunkRecord>,
}

/// `[sha256 hex, offset, stored length, raw length, compression (0 none, 1 zstd),
/// reference count]`: a tuple, so a shard with a million chunks stays compact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRecord(pub String, pub u64, pub u32, pub u32, pub u8, pub u32);

impl ChunkRecord {
    /// The chunk's SHA-256, hex.
    pub fn hash(&self) -> &str {
        &self.0
    }
    /// Where it starts in the pack.
    pub fn offset(&self) -> u64 {
        self.1
    }
    /// Its length in the pack.
    pub fn stored_len(&self) -> u32 {
        self.2
    }
    /// Its length after decompression.
    pub fn raw_len(&self) -> u32 {
        self.3
    }
    /// Whether it is zstd-compressed.
    pub fn is_compressed(&self) -> bool {
        self.4 == 1
    }
    /// How many snapshots reference it.
    pub fn refs(&self) -> u32 {
        self.5
    }
}

/// `indices/<id>/<shard>/snap-<uuid>.dat`: the files of one shard in one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSnapshot {
    /// Index name.
    pub index: String,
    /// Shard number.
    pub shard: u32,
    /// Entries, sorted by path.
    pub files: Vec<FileEntry>,
    /// What this shard's snapshot read and stored.
    pub stats: SnapshotStats,
    /// When the shard started, milliseconds since the epoch.
    pub start_time_ms: i64,
    /// How long it took.
    pub time_ms: i64,
}

/// One entry of an index's directory tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the index root, `/`-separated, never absolute, never with `..`.
    pub path: String,
    /// What it is.
    pub kind: FileKind,
    /// Size in bytes (files).
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Change-detection fields of the source file, compared on the next snapshot, never
    /// restored.
    pub inode: u64,
    /// Status change time of the source file, nanoseconds since the epoch.
    pub ctime_ns: i64,
    /// Chunk hashes in order (files); their concatenation is the content.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunks: Vec<String>,
    /// The link target (symlinks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// The kinds of entry a snapshot stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory (stored so empty ones survive).
    Dir,
    /// A symbolic link, restored only if its target stays inside the index.
    Symlink,
}

/// The payload of a pack's trailing index (the same facts as the shard generation's record,
/// so a pack can be understood on its own).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackIndex {
    /// Chunks in storage order; reference counts are always 0 here.
    pub chunks: Vec<ChunkRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generation() -> ShardGeneration {
        ShardGeneration {
            snapshots: vec![],
            packs: vec![PackRecord {
                id: "p".into(),
                size: 10,
                chunks: vec![
                    ChunkRecord("a".into(), 0, 5, 5, 0, 1),
                    ChunkRecord("b".into(), 5, 5, 5, 0, 0),
                ],
            }],
        }
    }

    #[test]
    fn reference_counts_move_together_or_not_at_all() {
        let mut g = generation();
        g.adjust_refs(["a", "b"], 1).unwrap();
        assert_eq!(
            (g.packs[0].chunks[0].refs(), g.packs[0].chunks[1].refs()),
            (2, 1)
        );
        g.adjust_refs(["a", "b"], -1).unwrap();
        // "b" would drop below zero: nothing changes, "a" included.
        let err = g.adjust_refs(["a", "b"], -1).unwrap_err();
        assert_eq!(err.hash, "b");
        assert_eq!(
            (g.packs[0].chunks[0].refs(), g.packs[0].chunks[1].refs()),
            (1, 0)
        );
        let err = g.adjust_refs(["zz"], 1).unwrap_err();
        assert_eq!(err.reason, "not in the shard generation");
        assert_eq!(g.chunk_positions()["b"], (0, 1));
    }
}
