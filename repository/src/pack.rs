//! Pack blobs: many chunks in one object, so that 100,000 small files do not cost 100,000
//! PUTs, each pack carrying its own index so it can be understood without any other blob.
//!
//! ```text
//! pack = chunk_0 … chunk_{n-1}              stored chunk bytes, back to back from offset 0
//!        index                              envelope, Kind::PackIndex, payload model::PackIndex
//!        index length   4 bytes             u32 big-endian: the envelope's length in bytes
//!        magic          4 bytes             "CFRP"
//! ```
//!
//! Rules a reader checks (and [`parse_pack_index`] enforces):
//! - the index lists the chunks in storage order; the first starts at offset 0, each next one
//!   where the previous ends, and the last ends where the index begins (no gaps, no overlap);
//! - a chunk record is `[sha256 hex, offset, stored length, raw length, compression,
//!   reference count]`: compression 0 means stored as is (stored length = raw length),
//!   1 means one zstd frame whose decompressed size is the raw length; the reference count
//!   is always 0 inside a pack (counts live in the shard generation);
//! - a chunk's raw bytes hash to its SHA-256, which a reader verifies before using them;
//! - the pack's name is `__<hex SHA-256 of all its bytes>`, index and trailer included.
//!
//! A chunk is stored compressed only when zstd saves at least 1/32 (about 3%) of it: restore
//! then decompresses only what was worth compressing. [`PackWriter`] stops trying on a file
//! whose chunks keep refusing to shrink (already compressed data), probing again now and then
//! in case the file's content changes character.

use std::cell::RefCell;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use zstd::bulk::{Compressor, Decompressor};

use crate::chunker::{MAX_CHUNK_SIZE, sha256};
use crate::envelope::{self, Kind};
use crate::model::{ChunkRecord, PackIndex};
use crate::{RepositoryError, Result};

/// The last four bytes of every pack.
pub const MAGIC: &[u8; 4] = b"CFRP";
/// Bytes after the index: its length (4) and the magic (4).
pub const TRAILER_LEN: usize = 8;
/// The pack size [`PackWriter::default`] aims for.
pub const DEFAULT_TARGET_SIZE: usize = 8 << 20;
/// The zstd level [`PackWriter`] uses unless told otherwise: level 1 compresses at several
/// hundred MB/s per core, which keeps up with reading and hashing.
pub const DEFAULT_LEVEL: i32 = 1;
/// A pack holding this many chunks is full whatever its size: it bounds the index (and the
/// time to parse it) for packs of tiny files.
pub const MAX_CHUNKS_PER_PACK: usize = 20_000;

/// `ChunkRecord` compression codes.
const STORED: u8 = 0;
const ZSTD: u8 = 1;
/// Chunks shorter than this are never worth a trial: a zstd frame costs about a dozen bytes.
const MIN_COMPRESS_LEN: usize = 64;
/// After this many chunks of one file that would not shrink, stop trying on that file…
const GIVE_UP_AFTER: u32 = 3;
/// … except for one probe every this many chunks.
const PROBE_EVERY: u32 = 16;

/// Per-file memory of whether compression pays.
#[derive(Debug, Clone, Copy, Default)]
struct Adaptive {
    misses: u32,
    since_probe: u32,
}

impl Adaptive {
    fn should_try(&mut self) -> bool {
        if self.misses < GIVE_UP_AFTER {
            return true;
        }
        self.since_probe += 1;
        if self.since_probe >= PROBE_EVERY {
            self.since_probe = 0;
            return true;
        }
        false
    }

    fn record(&mut self, shrank: bool) {
        if shrank {
            *self = Self::default();
        } else {
            self.misses = self.misses.saturating_add(1);
        }
    }
}

/// Counters of a writer's compression decisions since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompressionStats {
    /// Chunks compressed on trial.
    pub tried: u64,
    /// Chunks stored compressed.
    pub compressed: u64,
    /// Chunks not even tried (too small, or their file keeps refusing to shrink).
    pub skipped: u64,
}

/// A finished pack, ready to upload as `__<id>`.
#[derive(Debug, Clone)]
pub struct SealedPack {
    /// Hex SHA-256 of `bytes`.
    pub id: String,
    /// The whole blob.
    pub bytes: Bytes,
    /// Its chunks in storage order, reference counts 0.
    pub chunks: Vec<ChunkRecord>,
    /// Sum of the chunks' raw lengths.
    pub raw_len: u64,
}

/// Builds packs: add chunks until [`is_full`](Self::is_full), then [`finish`](Self::finish)
/// and start over with the same writer (it keeps its compression context and per-file state,
/// so a large file can span packs).
///
/// Memory: the pack being built (at most about the target size plus one chunk), one
/// compression scratch buffer of a chunk's size, and zstd's context.
pub struct PackWriter {
    target: usize,
    compress: bool,
    level: i32,
    buf: Vec<u8>,
    chunks: Vec<ChunkRecord>,
    raw_len: u64,
    hasher: Sha256,
    compressor: Option<Compressor<'static>>,
    compressor_broken: bool,
    scratch: Vec<u8>,
    file: Adaptive,
    stats: CompressionStats,
}

impl Default for PackWriter {
    fn default() -> Self {
        Self::new(DEFAULT_TARGET_SIZE, true)
    }
}

impl std::fmt::Debug for PackWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackWriter")
            .field("target", &self.target)
            .field("level", &self.level)
            .field("len", &self.buf.len())
            .field("chunks", &self.chunks.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl PackWriter {
    /// A writer aiming at packs of `target_size` bytes; with `compress`, chunks are stored
    /// zstd-compressed (at [`DEFAULT_LEVEL`]) when that pays, otherwise always as they are.
    pub fn new(target_size: usize, compress: bool) -> Self {
        Self {
            target: target_size.max(1),
            compress,
            level: DEFAULT_LEVEL,
            buf: Vec::new(),
            chunks: Vec::new(),
            raw_len: 0,
            hasher: Sha256::new(),
            compressor: None,
            compressor_broken: false,
            scratch: Vec::new(),
            file: Adaptive::default(),
            stats: CompressionStats::default(),
        }
    }

    /// Sets the zstd level, clamped to 1..=3 (higher levels cost more CPU than a snapshot
    /// pipeline can spare for the few percent they gain). Applies to the next chunk.
    pub fn set_level(&mut self, level: i32) {
        self.level = level.clamp(1, 3);
        if let Some(c) = self.compressor.as_mut()
            && c.set_compression_level(self.level).is_err()
        {
            self.compressor = None;
        }
    }

    /// The chunks that follow belong to a new file: forget what the previous file taught
    /// about compressibility.
    pub fn start_file(&mut self) {
        self.file = Adaptive::default();
    }

    /// Appends a chunk whose raw bytes hash to `hash` (the caller computed it while chunking;
    /// it is not recomputed here). It is stored zstd-compressed if that saves at least 1/32.
    ///
    /// Fails only for a chunk larger than [`MAX_CHUNK_SIZE`] or an empty one. The caller
    /// deduplicates: adding the same chunk twice stores it twice.
    pub fn add(&mut self, hash: [u8; 32], raw: &[u8]) -> Result<()> {
        if raw.is_empty() || raw.len() > MAX_CHUNK_SIZE {
            return Err(RepositoryError::corrupted(
                "pack",
                format!(
                    "chunk {} has {} bytes; chunks hold 1..={MAX_CHUNK_SIZE}",
                    hex::encode(hash),
                    raw.len()
                ),
            ));
        }
        if self.buf.capacity() == 0 {
            // Reserved once per pack; untouched capacity costs address space, not memory.
            self.buf.reserve(self.target + raw.len() + (64 << 10));
        }
        let offset = self.buf.len() as u64;
        let compressed = self.try_compress(raw);
        let stored: &[u8] = if compressed { &self.scratch } else { raw };
        self.buf.extend_from_slice(stored);
        self.hasher.update(stored);
        let (stored_len, raw_len) = (len_u32(stored.len()), len_u32(raw.len()));
        self.chunks.push(ChunkRecord(
            hex::encode(hash),
            offset,
            stored_len,
            raw_len,
            if compressed { ZSTD } else { STORED },
            0,
        ));
        self.raw_len += raw.len() as u64;
        Ok(())
    }

    /// Compresses `raw` into `scratch` when the policy says to try; true if it shrank enough.
    fn try_compress(&mut self, raw: &[u8]) -> bool {
        if !self.compress
            || raw.len() < MIN_COMPRESS_LEN
            || self.compressor_broken
            || !self.file.should_try()
        {
            self.stats.skipped += 1;
            return false;
        }
        if self.compressor.is_none() {
            match Compressor::new(self.level) {
                Ok(c) => self.compressor = Some(c),
                Err(e) => {
                    // Compression is an optimisation: without a context, store raw.
                    tracing::warn!(error = %e, "cannot create a zstd context; storing chunks uncompressed");
                    self.compressor_broken = true;
                    self.stats.skipped += 1;
                    return false;
                }
            }
        }
        let Some(compressor) = self.compressor.as_mut() else {
            return false;
        };
        self.stats.tried += 1;
        // Output that is not at least 1/32 smaller is useless, so the buffer is only that
        // big: zstd stops with "destination too small" instead of finishing the frame.
        let useful = raw.len() - raw.len() / 32 - 1;
        self.scratch.clear();
        self.scratch.reserve(useful);
        let shrank = matches!(
            compressor.compress_to_buffer(raw, &mut self.scratch),
            Ok(n) if n <= useful && n > 0
        );
        self.file.record(shrank);
        if shrank {
            self.stats.compressed += 1;
        }
        shrank
    }

    /// Whether the pack reached its target size (or [`MAX_CHUNKS_PER_PACK`]) and should be
    /// finished.
    pub fn is_full(&self) -> bool {
        self.buf.len() >= self.target || self.chunks.len() >= MAX_CHUNKS_PER_PACK
    }

    /// Stored chunk bytes so far (the trailing index not counted).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether no chunk was added since the last [`finish`](Self::finish).
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Chunks added since the last [`finish`](Self::finish).
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Compression decisions so far.
    pub fn stats(&self) -> CompressionStats {
        self.stats
    }

    /// Seals the pack: appends the index and trailer and returns it, leaving the writer empty
    /// and ready for the next pack (keep using the same writer: it keeps its zstd context and
    /// what it learnt about the current file). An empty writer yields a valid pack with no
    /// chunks.
    pub fn finish(&mut self) -> Result<SealedPack> {
        let index = PackIndex {
            chunks: std::mem::take(&mut self.chunks),
        };
        let encoded = envelope::encode(Kind::PackIndex, &index)?;
        let mut buf = std::mem::take(&mut self.buf);
        buf.reserve_exact(encoded.len() + TRAILER_LEN);
        let mut trailer = [0u8; TRAILER_LEN];
        trailer[..4].copy_from_slice(&len_u32(encoded.len()).to_be_bytes());
        trailer[4..].copy_from_slice(MAGIC);
        buf.extend_from_slice(&encoded);
        buf.extend_from_slice(&trailer);
        self.hasher.update(&encoded);
        self.hasher.update(trailer);
        let id = hex::encode(self.hasher.finalize_reset());
        let raw_len = std::mem::take(&mut self.raw_len);
        Ok(SealedPack {
            id,
            bytes: Bytes::from(buf),
            chunks: index.chunks,
            raw_len,
        })
    }
}

fn len_u32(n: usize) -> u32 {
    // Chunks are at most MAX_CHUNK_SIZE (16 MiB) and index envelopes of at most
    // MAX_CHUNKS_PER_PACK records are a few MiB.
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Reads the trailer (the last [`TRAILER_LEN`] bytes of a pack, or any longer suffix) and
/// returns the length of the index envelope before it. With it, a reader that knows the
/// pack's size fetches the index alone with one ranged read.
pub fn read_trailer(name: &str, tail: &[u8]) -> Result<usize> {
    let Some(trailer) = tail.len().checked_sub(TRAILER_LEN).map(|at| &tail[at..]) else {
        return Err(RepositoryError::corrupted(name, "too short to be a pack"));
    };
    if &trailer[4..] != MAGIC {
        return Err(RepositoryError::corrupted(name, "not a pack (bad magic)"));
    }
    let len = u32::from_be_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    Ok(len as usize)
}

/// Parses and checks the index of a whole pack.
pub fn parse_pack_index(name: &str, bytes: &[u8]) -> Result<PackIndex> {
    parse_pack_index_tail(name, bytes, bytes.len() as u64)
}

/// Parses and checks a pack's index from `tail`, a suffix of the pack that holds at least
/// the index and the trailer; `pack_len` is the whole pack's length.
pub fn parse_pack_index_tail(name: &str, tail: &[u8], pack_len: u64) -> Result<PackIndex> {
    let index_len = read_trailer(name, tail)?;
    let bad = |reason: String| RepositoryError::corrupted(name, reason);
    let needed = index_len + TRAILER_LEN;
    if needed > tail.len() || tail.len() as u64 > pack_len {
        return Err(bad(format!(
            "index of {index_len} bytes does not fit the {} bytes given of a {pack_len}-byte pack",
            tail.len()
        )));
    }
    let data_end = pack_len - needed as u64;
    let envelope_bytes = &tail[tail.len() - needed..tail.len() - TRAILER_LEN];
    let index: PackIndex = envelope::decode(name, Kind::PackIndex, envelope_bytes)?;
    let mut at = 0u64;
    for c in &index.chunks {
        let hash = c.hash();
        if hash.len() != 64
            || !hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad(format!("chunk record [{hash}] has a malformed hash")));
        }
        if c.offset() != at {
            return Err(bad(format!(
                "chunk {hash} starts at {} but the previous chunk ends at {at}",
                c.offset()
            )));
        }
        check_record(c).map_err(|why| bad(format!("chunk {hash}: {why}")))?;
        if c.refs() != 0 {
            return Err(bad(format!(
                "chunk {hash}: reference count {} in a pack index (must be 0)",
                c.refs()
            )));
        }
        at += u64::from(c.stored_len());
    }
    if at != data_end {
        return Err(bad(format!(
            "chunks end at {at} but the index starts at {data_end}"
        )));
    }
    Ok(index)
}

/// Consistency of one record's lengths and codes.
fn check_record(c: &ChunkRecord) -> std::result::Result<(), String> {
    let (stored, raw) = (c.stored_len() as usize, c.raw_len() as usize);
    if raw == 0 || raw > MAX_CHUNK_SIZE {
        return Err(format!("raw length {raw} outside 1..={MAX_CHUNK_SIZE}"));
    }
    match c.4 {
        STORED if stored != raw => Err(format!("stored uncompressed but {stored} != {raw} bytes")),
        ZSTD if stored == 0 => Err("compressed to 0 bytes".into()),
        // Reference counts live in shard generations; decoding does not depend on them.
        STORED | ZSTD => Ok(()),
        other => Err(format!("unknown compression {other}")),
    }
}

thread_local! {
    // One decompression context per thread: creating one per chunk would dominate the cost
    // of restoring many tiny files.
    static DECOMPRESSOR: RefCell<Option<Decompressor<'static>>> = const { RefCell::new(None) };
}

/// Decodes one chunk read from `pack_name` at the record's range: decompresses it (never
/// beyond its raw length) and verifies its SHA-256. Any mismatch is
/// `Corrupted { blob: pack_name, reason: "chunk <hash> …" }`.
pub fn decode_chunk(pack_name: &str, record: &ChunkRecord, stored: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    decode_chunk_into(pack_name, record, stored, &mut out)?;
    Ok(out)
}

/// [`decode_chunk`] into a caller's buffer (cleared first), so a restore can reuse one.
pub fn decode_chunk_into(
    pack_name: &str,
    record: &ChunkRecord,
    stored: &[u8],
    out: &mut Vec<u8>,
) -> Result<()> {
    let expected = precheck(pack_name, record, stored)?;
    let bad = |why: String| chunk_error(pack_name, record, &why);
    let raw_len = record.raw_len() as usize;
    out.clear();
    if record.is_compressed() {
        out.reserve_exact(raw_len);
        let result = DECOMPRESSOR.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                *slot = Some(Decompressor::new()?);
            }
            match slot.as_mut() {
                Some(d) => d.decompress_to_buffer(stored, out),
                None => Err(std::io::Error::other("no zstd context")),
            }
        });
        match result {
            Ok(n) if n == raw_len => {}
            Ok(n) => {
                out.clear();
                return Err(bad(format!(
                    "decompresses to {n} bytes, the index says {raw_len}"
                )));
            }
            Err(e) => {
                out.clear();
                return Err(bad(format!(
                    "does not decompress to its {raw_len} bytes: {e}"
                )));
            }
        }
    } else {
        out.extend_from_slice(stored);
    }
    if sha256(out) != expected {
        out.clear();
        return Err(bad("does not match its SHA-256".into()));
    }
    Ok(())
}

/// [`decode_chunk`] without a copy for a chunk stored uncompressed: `stored` (a slice of the
/// downloaded range, `Bytes::slice`) is verified and returned as is. A compressed chunk is
/// decompressed into a new buffer.
pub fn decode_chunk_bytes(pack_name: &str, record: &ChunkRecord, stored: Bytes) -> Result<Bytes> {
    if record.is_compressed() {
        return decode_chunk(pack_name, record, &stored).map(Bytes::from);
    }
    let expected = precheck(pack_name, record, &stored)?;
    if sha256(&stored) != expected {
        return Err(chunk_error(pack_name, record, "does not match its SHA-256"));
    }
    Ok(stored)
}

fn chunk_error(pack_name: &str, record: &ChunkRecord, why: &str) -> RepositoryError {
    RepositoryError::corrupted(pack_name, format!("chunk {} {why}", record.hash()))
}

/// Checks a record and the stored length before decoding; returns the expected hash.
fn precheck(pack_name: &str, record: &ChunkRecord, stored: &[u8]) -> Result<[u8; 32]> {
    let mut expected = [0u8; 32];
    hex::decode_to_slice(record.hash(), &mut expected)
        .map_err(|_| chunk_error(pack_name, record, "has a malformed hash in its record"))?;
    check_record(record)
        .map_err(|why| chunk_error(pack_name, record, &format!("has a bad record: {why}")))?;
    if stored.len() != record.stored_len() as usize {
        let why = format!(
            "is {} bytes, the index says {}",
            stored.len(),
            record.stored_len()
        );
        return Err(chunk_error(pack_name, record, &why));
    }
    Ok(expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(len: usize) -> Vec<u8> {
        let words = [
            "shard", "snapshot", "segment", "lucene", "coffer", "index", "merge", "doc",
        ];
        let mut out = Vec::with_capacity(len + 16);
        let mut i = 0usize;
        while out.len() < len {
            out.extend_from_slice(words[(i * 7 + i / 3) % words.len()].as_bytes());
            out.push(if i.is_multiple_of(11) { b'\n' } else { b' ' });
            i += 1;
        }
        out.truncate(len);
        out
    }

    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut s = seed | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                s.to_le_bytes()[3]
            })
            .collect()
    }

    /// The stored bytes of a chunk within a whole pack.
    fn stored<'a>(pack: &'a [u8], c: &ChunkRecord) -> &'a [u8] {
        let start = usize::try_from(c.offset()).unwrap();
        &pack[start..start + c.stored_len() as usize]
    }

    fn add(w: &mut PackWriter, data: &[u8]) -> [u8; 32] {
        let h = sha256(data);
        w.add(h, data).unwrap();
        h
    }

    #[test]
    fn round_trip_with_mixed_chunks() {
        let mut w = PackWriter::new(1 << 20, true);
        assert!(w.is_empty());
        let inputs = [text(100_000), noise(50_000, 1), b"tiny".to_vec(), text(10)];
        for d in &inputs {
            w.start_file();
            add(&mut w, d);
        }
        assert_eq!(w.chunk_count(), 4);
        assert!(!w.is_full());
        let sealed = w.finish().unwrap();
        assert!(w.is_empty());
        assert_eq!(w.len(), 0);
        assert_eq!(sealed.id, hex::encode(sha256(&sealed.bytes)));
        assert_eq!(
            sealed.raw_len,
            inputs.iter().map(|d| d.len() as u64).sum::<u64>()
        );
        let index = parse_pack_index("__p", &sealed.bytes).unwrap();
        assert_eq!(index.chunks, sealed.chunks);
        let codes: Vec<u8> = index.chunks.iter().map(|c| c.4).collect();
        assert_eq!(codes, vec![ZSTD, STORED, STORED, STORED]);
        assert!(index.chunks[0].stored_len() < 100_000 / 4);
        for (c, d) in index.chunks.iter().zip(&inputs) {
            assert_eq!(
                &decode_chunk("__p", c, stored(&sealed.bytes, c)).unwrap(),
                d
            );
        }
        // The tail alone is enough to read the index.
        let index_len =
            read_trailer("__p", &sealed.bytes[sealed.bytes.len() - TRAILER_LEN..]).unwrap();
        let tail = &sealed.bytes[sealed.bytes.len() - index_len - TRAILER_LEN..];
        assert_eq!(
            parse_pack_index_tail("__p", tail, sealed.bytes.len() as u64).unwrap(),
            index
        );
    }

    #[test]
    fn writer_is_reusable_and_full_at_target() {
        let mut w = PackWriter::new(100_000, true);
        let mut sealed = Vec::new();
        for i in 0..10u64 {
            add(&mut w, &noise(30_000, i + 1));
            if w.is_full() {
                assert!(w.len() >= 100_000 && w.len() < 130_000);
                sealed.push(w.finish().unwrap());
            }
        }
        sealed.push(w.finish().unwrap());
        assert_eq!(
            sealed.iter().map(|p| p.chunks.len()).collect::<Vec<_>>(),
            vec![4, 4, 2]
        );
        for p in &sealed {
            assert_eq!(p.id, hex::encode(sha256(&p.bytes)));
            assert_eq!(parse_pack_index("x", &p.bytes).unwrap().chunks, p.chunks);
            assert_eq!(p.chunks[0].offset(), 0);
        }
        let empty = PackWriter::default().finish().unwrap();
        assert!(
            parse_pack_index("empty", &empty.bytes)
                .unwrap()
                .chunks
                .is_empty()
        );
    }

    #[test]
    fn incompressible_files_stop_paying_for_trials() {
        let mut w = PackWriter::new(64 << 20, true);
        w.start_file();
        for i in 0..40 {
            add(&mut w, &noise(20_000, 100 + i));
        }
        let s = w.stats();
        // 3 trials, then one probe per 16 chunks: 3 + floor(37 / 16) = 5.
        assert_eq!((s.tried, s.compressed, s.skipped), (5, 0, 35));
        // The last probe was 5 chunks ago; the next comes 11 chunks later, and once it finds
        // compressible data, compression is back on for the rest of the file.
        for _ in 0..10 {
            add(&mut w, &text(20_000));
        }
        assert_eq!(w.stats().compressed, 0, "no probe yet");
        add(&mut w, &text(20_000));
        assert_eq!(w.stats().compressed, 1, "the probe");
        add(&mut w, &text(20_000));
        assert_eq!(w.stats().compressed, 2);
        // A new file starts with a clean slate.
        w.start_file();
        for i in 0..3 {
            add(&mut w, &noise(20_000, 500 + i));
        }
        w.start_file();
        add(&mut w, &text(20_000));
        assert_eq!(w.stats().compressed, 3);
        let sealed = w.finish().unwrap();
        parse_pack_index("p", &sealed.bytes).unwrap();
    }

    #[test]
    fn rejects_empty_and_oversized_chunks() {
        let mut w = PackWriter::default();
        assert!(w.add([0; 32], &[]).is_err());
        let huge = vec![0u8; MAX_CHUNK_SIZE + 1];
        assert!(w.add(sha256(&huge), &huge).is_err());
        assert!(w.is_empty());
    }

    #[test]
    fn corruption_is_reported_with_pack_and_chunk() {
        let mut w = PackWriter::default();
        let t = text(50_000);
        let n = noise(5_000, 9);
        let ht = add(&mut w, &t);
        let hn = add(&mut w, &n);
        let sealed = w.finish().unwrap();
        let index = parse_pack_index("__abc", &sealed.bytes).unwrap();
        for (c, h) in index.chunks.iter().zip([ht, hn]) {
            let mut damaged = stored(&sealed.bytes, c).to_vec();
            damaged[c.stored_len() as usize / 2] ^= 1;
            let err = decode_chunk("__abc", c, &damaged).unwrap_err().to_string();
            assert!(
                err.contains("[__abc]") && err.contains(&hex::encode(h)),
                "{err}"
            );
            let err = decode_chunk("__abc", c, &damaged[1..])
                .unwrap_err()
                .to_string();
            assert!(err.contains("index says"), "{err}");
        }
        // A record lying about the raw length cannot make a compressed chunk expand past it.
        let mut lying = index.chunks[0].clone();
        lying.3 = 1000;
        let stored = &sealed.bytes[..index.chunks[0].stored_len() as usize];
        let err = decode_chunk("__abc", &lying, stored)
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not decompress"), "{err}");
        // The zero-copy form: an uncompressed chunk comes back as the same bytes.
        let whole = sealed.bytes.clone();
        let plain = &index.chunks[1];
        let start = usize::try_from(plain.offset()).unwrap();
        let range = whole.slice(start..start + plain.stored_len() as usize);
        let decoded = decode_chunk_bytes("__abc", plain, range.clone()).unwrap();
        assert_eq!((decoded.as_ptr(), &decoded[..]), (range.as_ptr(), &n[..]));
        let packed = &index.chunks[0];
        let range = whole.slice(..packed.stored_len() as usize);
        assert_eq!(decode_chunk_bytes("__abc", packed, range).unwrap(), t);
        let mut flipped = whole
            .slice(start..start + plain.stored_len() as usize)
            .to_vec();
        flipped[0] ^= 1;
        let err = decode_chunk_bytes("__abc", plain, Bytes::from(flipped)).unwrap_err();
        assert!(
            err.to_string().contains("does not match its SHA-256"),
            "{err}"
        );
        let mut reused = Vec::with_capacity(10);
        decode_chunk_into("__abc", &index.chunks[0], stored, &mut reused).unwrap();
        assert_eq!(reused, t);
    }

    #[test]
    fn damaged_trailers_and_indexes_are_refused() {
        let mut w = PackWriter::default();
        add(&mut w, &text(3000));
        add(&mut w, &text(4000));
        let bytes = w.finish().unwrap().bytes.to_vec();
        let len = bytes.len();
        let err = |b: &[u8]| parse_pack_index("__x", b).unwrap_err().to_string();
        assert!(err(&bytes[..4]).contains("too short"));
        assert!(err(&bytes[..len - 1]).contains("bad magic"));
        let mut b = bytes.clone();
        b[len - 5] ^= 0x40; // index length
        assert!(err(&b).contains("[__x]"));
        let mut b = bytes.clone();
        b[len - 20] ^= 1; // inside the index envelope
        assert!(err(&b).contains("checksum"));
        // Extra bytes before the index break the offsets' contiguity check.
        let mut b = bytes[..10].to_vec();
        b.extend_from_slice(&bytes);
        assert!(err(&b).contains("chunks end at"));
        // Every flipped byte anywhere is either refused by the index or by a chunk's hash.
        for i in (0..len).step_by(97) {
            let mut b = bytes.clone();
            b[i] ^= 0x08;
            let ok = parse_pack_index("__x", &b).is_ok_and(|idx| {
                idx.chunks
                    .iter()
                    .all(|c| decode_chunk("__x", c, stored(&b, c)).is_ok())
            });
            assert!(!ok, "flip at {i} went unnoticed");
        }
    }

    #[test]
    fn parse_never_panics_on_garbage() {
        for seed in 1..200u64 {
            let mut g = noise(usize::try_from(seed * 13 % 400).unwrap(), seed);
            if seed % 2 == 0 {
                g.extend_from_slice(&(u32::try_from(seed).unwrap() * 3).to_be_bytes());
                g.extend_from_slice(MAGIC);
            }
            let _ = parse_pack_index("g", &g);
        }
    }
}
