//! Blob names: Elasticsearch's repository shape, one function per kind of blob, so that no
//! other module formats a key by hand.

/// The repository root at generation `n`.
pub fn root(n: u64) -> String {
    format!("index-{n}")
}

/// Parses `index-N` back into `N`; `None` for any other name.
pub fn parse_root(key: &str) -> Option<u64> {
    let n = key.strip_prefix("index-")?;
    // Reject `index-007` and `index-+1`: only canonical names are generations.
    if n.is_empty() || (n.len() > 1 && n.starts_with('0')) || !n.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    n.parse().ok()
}

/// Prefix listing every root generation.
pub const ROOT_PREFIX: &str = "index-";

/// Hint holding the newest generation as 8 bytes big-endian.
pub const INDEX_LATEST: &str = "index.latest";

/// One snapshot's info.
pub fn snapshot_info(uuid: &str) -> String {
    format!("snap-{uuid}.dat")
}

/// A snapshot's global metadata.
pub fn global_meta(uuid: &str) -> String {
    format!("meta-{uuid}.dat")
}

/// Everything stored for one index.
pub fn index_dir(index_id: &str) -> String {
    format!("indices/{index_id}/")
}

/// An index's metadata (settings, shard count), content-addressed by `meta_id`.
pub fn index_meta(index_id: &str, meta_id: &str) -> String {
    format!("indices/{index_id}/meta-{meta_id}.dat")
}

/// Everything stored for one shard.
pub fn shard_dir(index_id: &str, shard: u32) -> String {
    format!("indices/{index_id}/{shard}/")
}

/// A shard generation: the shard's chunk index and the snapshots that use it.
pub fn shard_generation(index_id: &str, shard: u32, generation: &str) -> String {
    format!("indices/{index_id}/{shard}/index-{generation}")
}

/// The files of one shard in one snapshot.
pub fn shard_snapshot(index_id: &str, shard: u32, snapshot_uuid: &str) -> String {
    format!("indices/{index_id}/{shard}/snap-{snapshot_uuid}.dat")
}

/// A pack of chunks, named by the SHA-256 of its bytes.
pub fn pack(index_id: &str, shard: u32, pack_id: &str) -> String {
    format!("indices/{index_id}/{shard}/__{pack_id}")
}

/// The single-writer lease (stores with conditional writes).
pub const LEASE: &str = "coffer-lease.dat";

/// Prefix of fallback lease objects (stores without conditional writes).
pub const FALLBACK_LEASE_PREFIX: &str = "coffer-locks/";

/// A fallback lease object.
pub fn fallback_lease(id: &str) -> String {
    format!("{FALLBACK_LEASE_PREFIX}lease-{id}.dat")
}

/// Prefix of verification probes.
pub const PROBE_PREFIX: &str = "tests-";

/// A verification run's folder.
pub fn probe_dir(seed: &str) -> String {
    format!("{PROBE_PREFIX}{seed}/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots() {
        assert_eq!(root(12), "index-12");
        assert_eq!(parse_root("index-12"), Some(12));
        assert_eq!(parse_root("index-0"), Some(0));
        for bad in [
            "index-",
            "index-01",
            "index-x",
            "index.latest",
            "index--1",
            "index-1.dat",
        ] {
            assert_eq!(parse_root(bad), None, "{bad}");
        }
    }
}
