//! The envelope every metadata blob is stored in: a fixed header naming what the blob is and
//! how its payload is encoded, the payload, and a SHA-256 over both.
//!
//! ```text
//! offset size field
//!      0    4 magic "CFRB"
//!      4    1 envelope version (1)
//!      5    1 kind (see `Kind`)
//!      6    1 flags: bit 0 = payload is zstd-compressed; bits 1-7 reserved (encryption) = 0
//!      7    1 reserved, 0
//!      8    8 payload length N, u64 big-endian
//!     16    N payload (JSON, UTF-8, after decompression)
//!   16+N   32 SHA-256 of bytes 0..16+N
//! ```
//!
//! Reserved flag bits make a later client-side encryption layer a new flag, not a new format:
//! a reader that sees a flag it does not know refuses the blob instead of misreading it.

use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::{RepositoryError, Result};

const MAGIC: &[u8; 4] = b"CFRB";
/// The envelope version this build writes and the newest it reads.
pub const VERSION: u8 = 1;
const HEADER: usize = 16;
const DIGEST: usize = 32;
const FLAG_ZSTD: u8 = 1;
const KNOWN_FLAGS: u8 = FLAG_ZSTD;
/// Payloads smaller than this are stored uncompressed: zstd's frame overhead would win.
const COMPRESS_ABOVE: usize = 256;
/// A decompressed payload larger than this is refused: no metadata blob is legitimately
/// this big, and a crafted blob must not exhaust memory.
const MAX_PAYLOAD: usize = 1 << 30;
/// The largest zstd window a payload may ask for (8 MiB). [`wrap`] compresses at level 3,
/// whose window is at most 2 MiB; a crafted frame asking for more (zstd would otherwise
/// accept up to 128 MiB) is refused instead of making the decoder allocate it.
const MAX_WINDOW_LOG: u32 = 23;

/// What a metadata blob holds; stored in the header so a blob cannot be mistaken for another
/// kind (a shard generation passed off as a root, say).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// `index-N`: the repository root.
    Root = 1,
    /// `snap-<uuid>.dat`: one snapshot's info.
    SnapshotInfo = 2,
    /// `meta-<uuid>.dat`: a snapshot's global metadata.
    GlobalMeta = 3,
    /// `indices/<id>/meta-<id>.dat`: an index's metadata.
    IndexMeta = 4,
    /// `indices/<id>/<shard>/index-<gen>`: a shard generation.
    ShardGeneration = 5,
    /// `indices/<id>/<shard>/snap-<uuid>.dat`: a shard's files in one snapshot.
    ShardSnapshot = 6,
    /// The single-writer lease.
    Lease = 7,
    /// The index at the end of a pack blob.
    PackIndex = 8,
    /// A verification probe.
    Probe = 9,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            1 => Self::Root,
            2 => Self::SnapshotInfo,
            3 => Self::GlobalMeta,
            4 => Self::IndexMeta,
            5 => Self::ShardGeneration,
            6 => Self::ShardSnapshot,
            7 => Self::Lease,
            8 => Self::PackIndex,
            9 => Self::Probe,
            _ => return None,
        })
    }
}

/// Serialises `value` as JSON, compresses it when that helps, and wraps it.
pub fn encode<T: Serialize>(kind: Kind, value: &T) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(value).map_err(|e| {
        RepositoryError::corrupted(format!("{kind:?}"), format!("cannot encode: {e}"))
    })?;
    Ok(wrap(kind, &json))
}

/// Wraps an already-encoded payload.
pub fn wrap(kind: Kind, payload: &[u8]) -> Vec<u8> {
    let (flags, body) = if payload.len() > COMPRESS_ABOVE {
        match zstd::bulk::compress(payload, 3) {
            Ok(c) if c.len() < payload.len() => (FLAG_ZSTD, c),
            _ => (0, payload.to_vec()),
        }
    } else {
        (0, payload.to_vec())
    };
    let mut out = Vec::with_capacity(HEADER + body.len() + DIGEST);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(kind as u8);
    out.push(flags);
    out.push(0);
    out.extend_from_slice(&(body.len() as u64).to_be_bytes());
    out.extend_from_slice(&body);
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    out
}

/// Checks and unwraps a blob, returning its decompressed payload. `name` is the blob's key,
/// for error messages.
pub fn unwrap(name: &str, expected: Kind, bytes: &[u8]) -> Result<Vec<u8>> {
    let bad = |reason: &str| RepositoryError::corrupted(name, reason);
    if bytes.len() < HEADER + DIGEST || &bytes[..4] != MAGIC {
        return Err(bad("not a coffer metadata blob (bad magic or too short)"));
    }
    let (body, digest) = bytes.split_at(bytes.len() - DIGEST);
    if Sha256::digest(body).as_slice() != digest {
        return Err(bad("checksum mismatch"));
    }
    let version = bytes[4];
    if version == 0 {
        return Err(bad("envelope version 0"));
    }
    if version > VERSION {
        return Err(RepositoryError::UnsupportedVersion {
            blob: name.to_owned(),
            found: version,
            supported: VERSION,
        });
    }
    match Kind::from_u8(bytes[5]) {
        Some(k) if k == expected => {}
        Some(k) => return Err(bad(&format!("holds a {k:?}, expected a {expected:?}"))),
        None => return Err(bad("unknown blob kind")),
    }
    let flags = bytes[6];
    if flags & !KNOWN_FLAGS != 0 || bytes[7] != 0 {
        return Err(bad(
            "unknown flags (written by a newer coffer, or encrypted)",
        ));
    }
    let len = u64::from_be_bytes(bytes[8..16].try_into().map_err(|_| bad("header"))?);
    if len != (body.len() - HEADER) as u64 {
        return Err(bad("payload length mismatch"));
    }
    let payload = &body[HEADER..];
    if flags & FLAG_ZSTD != 0 {
        decompress(payload, MAX_PAYLOAD).map_err(|e| bad(&format!("decompression failed: {e}")))
    } else {
        Ok(payload.to_vec())
    }
}

/// Decompresses a payload into a buffer that grows with the output, refusing more than
/// `limit` bytes. `zstd::bulk::decompress(payload, limit)` reserved `limit` (1 GiB) up
/// front for every compressed blob, however small (found while writing the fuzz targets,
/// whose allocator refuses such reservations; docs/fuzzing.md).
fn decompress(payload: &[u8], limit: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut decoder = zstd::stream::read::Decoder::with_buffer(payload)?;
    decoder.window_log_max(MAX_WINDOW_LOG)?;
    let mut out = Vec::new();
    decoder.take(limit as u64 + 1).read_to_end(&mut out)?;
    if out.len() > limit {
        return Err(std::io::Error::other(format!(
            "payload decompresses to more than {limit} bytes"
        )));
    }
    Ok(out)
}

/// Unwraps a blob and parses its JSON payload.
pub fn decode<T: DeserializeOwned>(name: &str, expected: Kind, bytes: &[u8]) -> Result<T> {
    let payload = unwrap(name, expected, bytes)?;
    serde_json::from_slice(&payload)
        .map_err(|e| RepositoryError::corrupted(name, format!("undecodable payload: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Sample {
        name: String,
        items: Vec<u32>,
    }

    fn sample() -> Sample {
        Sample {
            name: "x".repeat(50),
            items: (0..200).collect(),
        }
    }

    #[test]
    fn round_trip_compressed_and_plain() {
        let big = encode(Kind::Root, &sample()).unwrap();
        assert_eq!(big[6], FLAG_ZSTD);
        assert_eq!(
            decode::<Sample>("index-0", Kind::Root, &big).unwrap(),
            sample()
        );
        let small = encode(Kind::Lease, &"tiny").unwrap();
        assert_eq!(small[6], 0);
        assert_eq!(
            decode::<String>("lease", Kind::Lease, &small).unwrap(),
            "tiny"
        );
    }

    #[test]
    fn every_flipped_byte_and_truncation_is_caught() {
        let blob = encode(Kind::ShardSnapshot, &sample()).unwrap();
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x10;
            assert!(
                decode::<Sample>("b", Kind::ShardSnapshot, &bad).is_err(),
                "byte {i}"
            );
        }
        for len in 0..blob.len() {
            assert!(
                decode::<Sample>("b", Kind::ShardSnapshot, &blob[..len]).is_err(),
                "len {len}"
            );
        }
    }

    #[test]
    fn kind_and_version_are_enforced() {
        let blob = encode(Kind::ShardGeneration, &sample()).unwrap();
        let err = decode::<Sample>("index-5", Kind::Root, &blob).unwrap_err();
        assert!(err.to_string().contains("expected a Root"), "{err}");
        let mut newer = blob[..blob.len() - DIGEST].to_vec();
        newer[4] = 2;
        let d = Sha256::digest(&newer);
        newer.extend_from_slice(&d);
        assert!(matches!(
            decode::<Sample>("x", Kind::ShardGeneration, &newer),
            Err(RepositoryError::UnsupportedVersion { found: 2, .. })
        ));
        let mut flagged = blob[..blob.len() - DIGEST].to_vec();
        flagged[6] |= 0x02;
        let d = Sha256::digest(&flagged);
        flagged.extend_from_slice(&d);
        assert!(
            decode::<Sample>("x", Kind::ShardGeneration, &flagged)
                .unwrap_err()
                .to_string()
                .contains("unknown flags")
        );
    }

    #[test]
    fn decompression_allocates_for_the_output_not_the_limit() {
        // Regression (docs/fuzzing.md): every compressed blob reserved MAX_PAYLOAD (1 GiB).
        let blob = encode(Kind::Root, &sample()).unwrap();
        assert_eq!(blob[6], FLAG_ZSTD);
        let payload = unwrap("index-0", Kind::Root, &blob).unwrap();
        assert!(payload.capacity() < 1 << 20, "{}", payload.capacity());
    }

    #[test]
    fn decompression_bombs_and_huge_windows_are_refused() {
        let zeros = vec![0u8; 1 << 20];
        let bomb = zstd::bulk::compress(&zeros, 3).unwrap();
        assert!(bomb.len() < 1024);
        let err = decompress(&bomb, 64 << 10).unwrap_err();
        assert!(err.to_string().contains("more than 65536 bytes"), "{err}");
        assert_eq!(decompress(&bomb, 1 << 20).unwrap().len(), 1 << 20);
        // A frame compressed with a 256 MiB window asks the decoder
        // for that window: refused, not allocated.
        let mut big = Vec::new();
        let mut z = zstd::stream::write::Encoder::new(&mut big, 3).unwrap();
        z.set_parameter(zstd::zstd_safe::CParameter::WindowLog(28))
            .unwrap();
        std::io::Write::write_all(&mut z, &zeros).unwrap();
        z.finish().unwrap();
        assert!(decompress(&big, MAX_PAYLOAD).is_err());
        // Trailing garbage after the frame is not ignored.
        let mut trailing = bomb.clone();
        trailing.extend_from_slice(b"garbage");
        assert!(decompress(&trailing, MAX_PAYLOAD).is_err());
    }

    proptest::proptest! {
        #[test]
        fn unwrap_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = unwrap("fuzz", Kind::Root, &bytes);
        }
    }
}
