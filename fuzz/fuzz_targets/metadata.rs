//! Repository metadata decoders: the checksummed envelope and the JSON of every blob kind
//! (`index-N`, `snap-*.dat`, `meta-*.dat`, shard generations and snapshots, the lease).
//!
//! Input: `[kind selector][mode][header bytes…][payload…]`. Mode 0 hands the bytes after
//! the selector to the decoder as they are (almost always a checksum mismatch); the other
//! modes build an envelope around the payload, optionally damage its header fields, and
//! re-seal the SHA-256, so that the fuzzer reaches the header checks, zstd and JSON.
//!
//! Properties: decoding returns `Ok` or `Err`, never panics or allocates beyond
//! `ALLOCATION_CAP`; what decodes re-encodes and decodes to the same value; every path a
//! decoded shard snapshot holds either fails `validate_relative` or joins inside the root.
#![no_main]

use std::fmt::Debug;
use std::path::Path;

use coffer_fuzz::{CappedAlloc, Input};
use coffer_repository::envelope::{self, Kind};
use coffer_repository::lease::LeaseRecord;
use coffer_repository::model::{
    IndexMetadata, PackIndex, RepositoryData, ShardGeneration, ShardSnapshot, SnapshotSummary,
};
use coffer_repository::paths;
use coffer_repository::snapshot::GlobalMetadata;
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

#[global_allocator]
static ALLOC: CappedAlloc = CappedAlloc;

const KINDS: [Kind; 9] = [
    Kind::Root,
    Kind::SnapshotInfo,
    Kind::GlobalMeta,
    Kind::IndexMeta,
    Kind::ShardGeneration,
    Kind::ShardSnapshot,
    Kind::Lease,
    Kind::PackIndex,
    Kind::Probe,
];

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let kind = KINDS[usize::from(input.byte()) % KINDS.len()];
    let mode = input.byte() % 4;
    let blob = if mode == 0 {
        input.rest().to_vec()
    } else {
        let [version, kind_byte, flags, reserved, len_mode] = input.array::<5>();
        let len_override = input.array::<8>();
        let payload = input.rest();
        let mut blob = envelope::wrap(kind, payload);
        blob.truncate(blob.len() - 32);
        if mode >= 2 {
            // Damage the header the checksum would otherwise protect.
            blob[4] = version;
            if kind_byte & 0x80 != 0 {
                blob[5] = kind_byte & 0x7f;
            }
            blob[6] ^= flags;
            blob[7] = reserved;
            match len_mode % 3 {
                0 => {}
                1 => blob[8..16].copy_from_slice(&len_override),
                _ => blob[8..16].copy_from_slice(&(1u64 << 60).to_be_bytes()),
            }
        }
        if mode == 3 {
            // Compress the payload ourselves, whatever its size, so zstd sees it.
            let body = blob.split_off(16);
            blob[6] |= 1;
            let compressed = zstd::bulk::compress(&body, 1).unwrap_or_default();
            blob[8..16].copy_from_slice(&(compressed.len() as u64).to_be_bytes());
            blob.extend_from_slice(&compressed);
        }
        let digest = Sha256::digest(&blob);
        blob.extend_from_slice(&digest);
        blob
    };
    let _ = envelope::unwrap("fuzz", kind, &blob);
    match kind {
        Kind::Root => drop(check::<RepositoryData>(kind, &blob)),
        Kind::SnapshotInfo => drop(check::<SnapshotSummary>(kind, &blob)),
        Kind::GlobalMeta => drop(check::<GlobalMetadata>(kind, &blob)),
        Kind::IndexMeta => drop(check::<IndexMetadata>(kind, &blob)),
        Kind::ShardGeneration => {
            if let Some(mut generation) = check::<ShardGeneration>(kind, &blob) {
                let hashes: Vec<String> = generation
                    .packs
                    .iter()
                    .flat_map(|p| p.chunks.iter().map(|c| c.0.clone()))
                    .take(64)
                    .collect();
                let mut distinct = hashes.clone();
                distinct.sort();
                distinct.dedup();
                let _ = generation.adjust_refs(distinct.iter().map(String::as_str), 1);
                let _ = generation.adjust_refs(distinct.iter().map(String::as_str), -1);
            }
        }
        Kind::ShardSnapshot => {
            if let Some(snap) = check::<ShardSnapshot>(kind, &blob) {
                let root = Path::new("/restore/target");
                for f in &snap.files {
                    if let Ok(joined) = paths::join_inside(root, &f.path) {
                        assert!(joined.starts_with(root), "{} escaped", f.path);
                        assert!(
                            !joined
                                .components()
                                .any(|c| matches!(c, std::path::Component::ParentDir)),
                            "{} climbs",
                            f.path
                        );
                    }
                    if let Some(target) = &f.target {
                        let _ = paths::symlink_stays_inside(&f.path, target);
                    }
                }
            }
        }
        Kind::Lease => drop(check::<LeaseRecord>(kind, &blob)),
        Kind::PackIndex => drop(check::<PackIndex>(kind, &blob)),
        Kind::Probe => drop(check::<serde_json::Value>(kind, &blob)),
    }
});

/// Decodes as `T`; what decodes must survive a re-encode unchanged.
fn check<T>(kind: Kind, blob: &[u8]) -> Option<T>
where
    T: DeserializeOwned + Serialize + PartialEq + Debug,
{
    let value: T = envelope::decode("fuzz", kind, blob).ok()?;
    let again = envelope::encode(kind, &value).expect("a decoded value re-encodes");
    let back: T = envelope::decode("fuzz", kind, &again).expect("a re-encoded value decodes");
    assert_eq!(back, value, "round trip changed the value");
    Some(value)
}
