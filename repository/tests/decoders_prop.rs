//! Properties of the metadata decoders (docs/fuzzing.md), run by `cargo test` on every CI
//! run, beside the cargo-fuzz targets under `fuzz/`: every metadata type round-trips through
//! its envelope, and no byte string or JSON payload makes a decoder panic.

use coffer_repository::envelope::{self, Kind};
use coffer_repository::lease::LeaseRecord;
use coffer_repository::model::{
    ChunkRecord, FileEntry, FileKind, IndexEntry, IndexInSnapshot, IndexMetadata, PackIndex,
    PackRecord, RepositoryData, ShardCounts, ShardFailure, ShardGeneration, ShardSnapshot,
    SnapshotState, SnapshotStats, SnapshotSummary,
};
use coffer_repository::pack;
use coffer_repository::snapshot::GlobalMetadata;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    // Unicode, control characters and quotes included: JSON must escape them all.
    prop_oneof![any::<String>(), "[a-z0-9._/-]{0,12}"]
}

fn chunk() -> impl Strategy<Value = ChunkRecord> {
    (
        text(),
        any::<u64>(),
        any::<u32>(),
        any::<u32>(),
        any::<u8>(),
        any::<u32>(),
    )
        .prop_map(|(h, o, s, r, c, n)| ChunkRecord(h, o, s, r, c, n))
}

fn stats() -> impl Strategy<Value = SnapshotStats> {
    any::<[u64; 5]>().prop_map(|s| SnapshotStats {
        total_file_count: s[0],
        total_size_in_bytes: s[1],
        incremental_file_count: s[2],
        incremental_size_in_bytes: s[3],
        uploaded_bytes: s[4],
    })
}

fn state() -> impl Strategy<Value = SnapshotState> {
    prop_oneof![
        Just(SnapshotState::Success),
        Just(SnapshotState::Partial),
        Just(SnapshotState::Failed),
        Just(SnapshotState::InProgress),
    ]
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        text().prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            btree_map(text(), inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn summary() -> impl Strategy<Value = SnapshotSummary> {
    (
        (
            text(),
            text(),
            state(),
            vec(text(), 0..4),
            any::<i64>(),
            any::<i64>(),
        ),
        (
            any::<[u32; 3]>(),
            vec((text(), any::<u32>(), text()), 0..3),
            proptest::option::of(text()),
            any::<bool>(),
            proptest::option::of(json_value()),
            text(),
            stats(),
        ),
    )
        .prop_map(
            |(
                (name, uuid, state, indices, start_time_ms, end_time_ms),
                (shards, failures, reason, include_global_state, metadata, version, stats),
            )| SnapshotSummary {
                name,
                uuid,
                state,
                indices,
                start_time_ms,
                end_time_ms,
                shards: ShardCounts {
                    total: shards[0],
                    failed: shards[1],
                    successful: shards[2],
                },
                failures: failures
                    .into_iter()
                    .map(|(index, shard, reason)| ShardFailure {
                        index,
                        shard,
                        reason,
                    })
                    .collect(),
                reason,
                include_global_state,
                // `null` metadata is stored as absent.
                metadata: metadata.filter(|m| !m.is_null()),
                version,
                stats,
            },
        )
}

fn root() -> impl Strategy<Value = RepositoryData> {
    let entry = (
        text(),
        btree_map(text(), (text(), vec(any::<u32>(), 0..4)), 0..3),
        vec(proptest::option::of(text()), 0..4),
    )
        .prop_map(|(id, snaps, shard_generations)| IndexEntry {
            id,
            snapshots: snaps
                .into_iter()
                .map(|(k, (meta_id, shards))| (k, IndexInSnapshot { meta_id, shards }))
                .collect(),
            shard_generations,
        });
    (
        text(),
        any::<u64>(),
        vec(summary(), 0..3),
        btree_map(text(), entry, 0..3),
    )
        .prop_map(|(uuid, generation, snapshots, indices)| RepositoryData {
            uuid,
            generation,
            snapshots,
            indices,
        })
}

fn file_entry() -> impl Strategy<Value = FileEntry> {
    (
        text(),
        prop_oneof![
            Just(FileKind::File),
            Just(FileKind::Dir),
            Just(FileKind::Symlink)
        ],
        any::<(u64, u32, i64, u64, i64)>(),
        vec(text(), 0..3),
        proptest::option::of(text()),
    )
        .prop_map(
            |(path, kind, (size, mode, mtime_ns, inode, ctime_ns), chunks, target)| FileEntry {
                path,
                kind,
                size,
                mode,
                mtime_ns,
                inode,
                ctime_ns,
                chunks,
                target,
            },
        )
}

fn round_trip<T>(kind: Kind, value: &T) -> Result<(), TestCaseError>
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let blob = envelope::encode(kind, value).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back: T =
        envelope::decode("p", kind, &blob).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, value);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn repository_data_round_trips(value in root()) {
        round_trip(Kind::Root, &value)?;
    }

    #[test]
    fn snapshot_info_round_trips(value in summary()) {
        round_trip(Kind::SnapshotInfo, &value)?;
    }

    #[test]
    fn small_blobs_round_trip(
        indices in vec(text(), 0..5),
        g in any::<bool>(),
        name in text(),
        counts in any::<(u32, u32)>(),
    ) {
        round_trip(Kind::GlobalMeta, &GlobalMetadata { indices, include_global_state: g })?;
        round_trip(Kind::IndexMeta, &IndexMetadata {
            name,
            number_of_shards: counts.0,
            number_of_replicas: counts.1,
        })?;
    }

    #[test]
    fn shard_blobs_round_trip(
        snapshots in vec(text(), 0..4),
        packs in vec((text(), any::<u64>(), vec(chunk(), 0..5)), 0..4),
        files in vec(file_entry(), 0..6),
        index in text(),
        shard in any::<u32>(),
        stats in stats(),
        times in any::<(i64, i64)>(),
    ) {
        let generation = ShardGeneration {
            snapshots,
            packs: packs
                .into_iter()
                .map(|(id, size, chunks)| PackRecord { id, size, chunks })
                .collect(),
        };
        round_trip(Kind::ShardGeneration, &generation)?;
        let chunks = generation.packs.iter().flat_map(|p| p.chunks.clone()).collect();
        round_trip(Kind::PackIndex, &PackIndex { chunks })?;
        round_trip(Kind::ShardSnapshot, &ShardSnapshot {
            index,
            shard,
            files,
            stats,
            start_time_ms: times.0,
            time_ms: times.1,
        })?;
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_json(
        value in json_value(),
        kind in 0usize..8,
    ) {
        // A valid envelope around any JSON: only the typed decoding can refuse it.
        let kinds = [
            Kind::Root, Kind::SnapshotInfo, Kind::GlobalMeta, Kind::IndexMeta,
            Kind::ShardGeneration, Kind::ShardSnapshot, Kind::Lease, Kind::PackIndex,
        ];
        let kind = kinds[kind];
        let blob = envelope::encode(kind, &value).unwrap();
        let _ = envelope::decode::<RepositoryData>("p", kind, &blob);
        let _ = envelope::decode::<SnapshotSummary>("p", kind, &blob);
        let _ = envelope::decode::<GlobalMetadata>("p", kind, &blob);
        let _ = envelope::decode::<IndexMetadata>("p", kind, &blob);
        let _ = envelope::decode::<ShardGeneration>("p", kind, &blob);
        let _ = envelope::decode::<ShardSnapshot>("p", kind, &blob);
        let _ = envelope::decode::<LeaseRecord>("p", kind, &blob);
        let _ = envelope::decode::<PackIndex>("p", kind, &blob);
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(
        bytes in vec(any::<u8>(), 0..512),
        header in any::<[u8; 16]>(),
    ) {
        // Raw bytes, and the same bytes behind an arbitrary header re-sealed with a valid
        // checksum (so the header checks and zstd see them).
        let _ = envelope::decode::<RepositoryData>("p", Kind::Root, &bytes);
        let mut sealed = b"CFRB".to_vec();
        sealed.extend_from_slice(&header[4..]);
        sealed.extend_from_slice(&bytes);
        let digest = <sha2::Sha256 as sha2::Digest>::digest(&sealed);
        sealed.extend_from_slice(&digest);
        for kind in [Kind::Root, Kind::ShardSnapshot, Kind::PackIndex] {
            let _ = envelope::unwrap("p", kind, &sealed);
        }
        let _ = pack::parse_pack_index("p", &bytes);
        let mut packish = bytes.clone();
        packish.extend_from_slice(&u32::try_from(bytes.len() / 2).unwrap().to_be_bytes());
        packish.extend_from_slice(pack::MAGIC);
        let _ = pack::parse_pack_index("p", &packish);
    }
}

#[test]
fn a_length_field_of_two_to_the_sixtieth_is_refused_without_allocating() {
    let mut blob = envelope::wrap(Kind::Root, b"{}");
    blob.truncate(blob.len() - 32);
    blob[8..16].copy_from_slice(&(1u64 << 60).to_be_bytes());
    let digest = <sha2::Sha256 as sha2::Digest>::digest(&blob);
    blob.extend_from_slice(&digest);
    let err = envelope::unwrap("index-0", Kind::Root, &blob).unwrap_err();
    assert!(err.to_string().contains("length mismatch"), "{err}");
}

#[test]
fn user_metadata_numbers_survive_rewrites_unchanged() {
    // Found by the `metadata` fuzz target: this number parsed to one f64, printed, and
    // parsed back to a neighbouring one, so each new root generation changed it.
    let json = br#"{"n": 2222222222222222222220222222220, "m": 0.30000000000000004, "k": 1e-320}"#;
    let first: serde_json::Value = serde_json::from_slice(json).unwrap();
    let blob = envelope::encode(Kind::Probe, &first).unwrap();
    let second: serde_json::Value = envelope::decode("p", Kind::Probe, &blob).unwrap();
    assert_eq!(first, second);
    let third: serde_json::Value = envelope::decode(
        "p",
        Kind::Probe,
        &envelope::encode(Kind::Probe, &second).unwrap(),
    )
    .unwrap();
    assert_eq!(second, third);
}
