//! Content-defined chunking: splits a byte stream into chunks whose boundaries depend only on
//! the content, so that inserting or deleting bytes in a large file changes about one chunk,
//! not everything after the edit.
//!
//! The cut points are FastCDC's (the 2020 variant, gear hash, normalisation level 1, the
//! crate's default gear table and no seed), computed by [`fastcdc::v2020::cut`] over a window of
//! at most `max` bytes starting at the current chunk. An independent reader never needs to
//! chunk; a writer that wants to deduplicate against coffer's chunks must use the same
//! function and parameters.
//!
//! [`Chunker`] drives the cut function over any [`Read`] with a buffer of `2 × max` bytes: it
//! reads as much as fits, cuts chunks out of the buffer until fewer than `max` bytes remain,
//! then moves that tail to the front and refills. Memory is therefore `O(max)` whatever the
//! stream's length, the tail copy is amortised over at least `max` new bytes, and the cut
//! points cannot depend on how the reader happens to split its `read` results (the cut
//! function always sees a full `max`-byte window, or everything up to the end of the stream).
//!
//! Chunk buffers come from a small process-wide pool and go back to it when a [`Chunk`] is
//! dropped, so a steady stream of megabyte-sized chunks does not allocate and fault fresh
//! pages for every chunk.

use std::io::{ErrorKind, Read};
use std::sync::{Mutex, PoisonError};

use fastcdc::v2020::{self as cdc, Normalization};
use sha2::{Digest, Sha256};

use crate::{RepositoryError, Result};

/// The smallest `min` FastCDC accepts.
pub const MIN_MIN: usize = cdc::MINIMUM_MIN;
/// The largest `min` FastCDC accepts.
pub const MAX_MIN: usize = cdc::MINIMUM_MAX;
/// The smallest `avg` FastCDC accepts.
pub const MIN_AVG: usize = cdc::AVERAGE_MIN;
/// The largest `avg` FastCDC accepts.
pub const MAX_AVG: usize = cdc::AVERAGE_MAX;
/// The smallest `max` FastCDC accepts.
pub const MIN_MAX: usize = cdc::MAXIMUM_MIN;
/// The largest chunk any valid parameters can produce; readers refuse chunk records that
/// claim more, so a crafted index cannot make them allocate gigabytes.
pub const MAX_CHUNK_SIZE: usize = cdc::MAXIMUM_MAX;

const NORMALIZATION: Normalization = Normalization::Level1;

/// SHA-256 of `data`.
///
/// `sha2` picks the fastest implementation the CPU supports at run time (`cpufeatures`): the
/// SHA-NI instructions on x86-64 when present (about 2 GB/s per core), the ARMv8 crypto
/// extensions on aarch64, portable code otherwise.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Chunk size bounds, in bytes: every chunk but a stream's last is at least `min` and at most
/// `max` long, and the sizes cluster around `avg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkerParams {
    min: usize,
    avg: usize,
    max: usize,
}

impl Default for ChunkerParams {
    /// 256 KiB / 1 MiB / 4 MiB.
    fn default() -> Self {
        Self {
            min: 256 << 10,
            avg: 1 << 20,
            max: 4 << 20,
        }
    }
}

impl ChunkerParams {
    /// Explicit bounds. They must satisfy `min < avg < max`, be even (FastCDC tests cut
    /// points in pairs), and lie within FastCDC's limits ([`MIN_MIN`]..=[`MAX_MIN`],
    /// [`MIN_AVG`]..=[`MAX_AVG`], [`MIN_MAX`]..=[`MAX_CHUNK_SIZE`]).
    pub fn new(min: usize, avg: usize, max: usize) -> Result<Self> {
        let invalid = |why: String| {
            Err(RepositoryError::InvalidSettings {
                setting: "chunk_size",
                reason: format!("chunk sizes min={min} avg={avg} max={max}: {why}"),
            })
        };
        if !(min < avg && avg < max) {
            return invalid("they must satisfy min < avg < max".into());
        }
        if !min.is_multiple_of(2) || !avg.is_multiple_of(2) || !max.is_multiple_of(2) {
            return invalid("they must be even".into());
        }
        if !(MIN_MIN..=MAX_MIN).contains(&min) {
            return invalid(format!("min must be within {MIN_MIN}..={MAX_MIN}"));
        }
        if !(MIN_AVG..=MAX_AVG).contains(&avg) {
            return invalid(format!("avg must be within {MIN_AVG}..={MAX_AVG}"));
        }
        if !(MIN_MAX..=MAX_CHUNK_SIZE).contains(&max) {
            return invalid(format!("max must be within {MIN_MAX}..={MAX_CHUNK_SIZE}"));
        }
        Ok(Self { min, avg, max })
    }

    /// Bounds derived from the user-facing average chunk size: `min = avg / 4`,
    /// `max = avg × 4` (`min` rounded down to even). `avg` must be even and within
    /// 256 B..=4 MiB.
    pub fn from_average(avg: usize) -> Result<Self> {
        Self::new((avg / 4) & !1, avg, avg.saturating_mul(4))
    }

    /// The smallest chunk size (except for a stream's last chunk).
    pub fn min(&self) -> usize {
        self.min
    }

    /// The target average chunk size.
    pub fn avg(&self) -> usize {
        self.avg
    }

    /// The largest chunk size.
    pub fn max(&self) -> usize {
        self.max
    }
}

/// One chunk of a stream: its bytes, where it starts, and its SHA-256.
///
/// The buffer returns to a shared pool when the chunk is dropped (so `data` can be borrowed,
/// not moved out; use [`Chunk::into_data`] to keep it).
pub struct Chunk {
    /// The chunk's bytes.
    pub data: Vec<u8>,
    /// Offset of the chunk's first byte in the stream.
    pub offset: u64,
    /// SHA-256 of the chunk's bytes.
    pub hash: [u8; 32],
}

impl Chunk {
    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether it is empty (never, for a chunk produced by a [`Chunker`]).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The hash as lowercase hex, the form the metadata stores.
    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }

    /// Takes the bytes out, so that they do not return to the pool.
    pub fn into_data(mut self) -> Vec<u8> {
        std::mem::take(&mut self.data)
    }
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunk")
            .field("offset", &self.offset)
            .field("len", &self.data.len())
            .field("hash", &self.hash_hex())
            .finish()
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        POOL.put(std::mem::take(&mut self.data));
    }
}

/// A chunk borrowed from the chunker's buffer, valid until the next call: the zero-copy form,
/// for a caller that consumes each chunk before asking for the next (a [`PackWriter`]
/// copies it into its pack anyway).
///
/// [`PackWriter`]: crate::pack::PackWriter
#[derive(Debug, Clone, Copy)]
pub struct ChunkRef<'a> {
    /// The chunk's bytes.
    pub data: &'a [u8],
    /// Offset of the chunk's first byte in the stream.
    pub offset: u64,
    /// SHA-256 of the chunk's bytes.
    pub hash: [u8; 32],
}

impl ChunkRef<'_> {
    /// The hash as lowercase hex, the form the metadata stores.
    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }
}

/// A streaming content-defined chunker over a reader; see the module documentation.
///
/// It is an [`Iterator`] of owned [`Chunk`]s; [`Chunker::next_ref`] is the borrowing form.
pub struct Chunker<R> {
    reader: R,
    params: ChunkerParams,
    mask_s: u64,
    mask_l: u64,
    /// Holds the unconsumed bytes `buf[start..end]`; its length is its usable size (the
    /// bytes past `end` are stale but initialised, so reads need no zeroing).
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Stream offset of `buf[start]`.
    offset: u64,
    eof: bool,
    failed: bool,
}

impl<R: Read> Chunker<R> {
    /// A chunker over `reader`.
    pub fn new(reader: R, params: ChunkerParams) -> Self {
        let (mask_s, mask_l) = cdc::select_masks(params.avg, NORMALIZATION);
        Self {
            reader,
            params,
            mask_s,
            mask_l,
            buf: Vec::new(),
            start: 0,
            end: 0,
            offset: 0,
            eof: false,
            failed: false,
        }
    }

    /// Bytes consumed so far as chunks (the offset of the next chunk).
    pub fn position(&self) -> u64 {
        self.offset
    }

    /// The reader.
    pub fn get_ref(&self) -> &R {
        &self.reader
    }

    /// The next chunk, borrowed from the internal buffer; `None` at the end of the stream.
    /// `Interrupted` reads are retried; any other read error is returned, and the chunker
    /// then yields nothing more.
    pub fn next_ref(&mut self) -> std::io::Result<Option<ChunkRef<'_>>> {
        let Some((start, len)) = self.next_span()? else {
            return Ok(None);
        };
        let data = &self.buf[start..start + len];
        let offset = self.offset - len as u64;
        Ok(Some(ChunkRef {
            data,
            offset,
            hash: sha256(data),
        }))
    }

    /// The next chunk as an owned buffer (from the pool); `None` at the end of the stream.
    pub fn next_chunk(&mut self) -> std::io::Result<Option<Chunk>> {
        let Some((start, len)) = self.next_span()? else {
            return Ok(None);
        };
        let src = &self.buf[start..start + len];
        let mut data = POOL.take(len);
        data.extend_from_slice(src);
        Ok(Some(Chunk {
            hash: sha256(&data),
            data,
            offset: self.offset - len as u64,
        }))
    }

    /// Finds the next cut and consumes it, returning its place in `buf`.
    fn next_span(&mut self) -> std::io::Result<Option<(usize, usize)>> {
        if self.failed {
            return Ok(None);
        }
        if let Err(e) = self.fill() {
            self.failed = true;
            return Err(e);
        }
        let avail = self.end - self.start;
        if avail == 0 {
            return Ok(None);
        }
        let window = &self.buf[self.start..self.end];
        let (_, len) = cdc::cut(
            window,
            self.params.min,
            self.params.avg,
            self.params.max,
            self.mask_s,
            self.mask_l,
            self.mask_s << 1,
            self.mask_l << 1,
        );
        // `cut` returns the whole window when it is shorter than `min` (a stream's tail),
        // and never more than `max`; zero only for an empty window, excluded above.
        debug_assert!(len > 0 && len <= avail);
        let start = self.start;
        self.start += len;
        self.offset += len as u64;
        Ok(Some((start, len)))
    }

    /// Ensures that at least `max` bytes are buffered, or everything up to the end of the
    /// stream: the cut function must see the same window whatever sizes `read` returns.
    fn fill(&mut self) -> std::io::Result<()> {
        let max = self.params.max;
        while !self.eof && self.end - self.start < max {
            if self.buf.is_empty() {
                // Pooled, so a run of small files neither faults in nor zeroes a fresh
                // 2 × max buffer each.
                self.buf = POOL.take_initialized(2 * max);
            }
            if self.buf.len() - self.end < max - (self.end - self.start) {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl<R> Drop for Chunker<R> {
    fn drop(&mut self) {
        POOL.put(std::mem::take(&mut self.buf));
    }
}

impl<R: Read> Iterator for Chunker<R> {
    type Item = std::io::Result<Chunk>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_chunk().transpose()
    }
}

/// Splits an in-memory buffer (tests, and small inputs already in memory). Same cut points
/// as [`Chunker`] over the same bytes. Returns `(offset, len)` pairs.
pub fn chunk_boundaries(data: &[u8], params: ChunkerParams) -> Vec<(usize, usize)> {
    let (mask_s, mask_l) = cdc::select_masks(params.avg, NORMALIZATION);
    let mut out = Vec::with_capacity(data.len() / params.avg + 1);
    let mut at = 0;
    while at < data.len() {
        let window = &data[at..data.len().min(at + params.max)];
        let (_, len) = cdc::cut(
            window,
            params.min,
            params.avg,
            params.max,
            mask_s,
            mask_l,
            mask_s << 1,
            mask_l << 1,
        );
        out.push((at, len));
        at += len;
    }
    out
}

/// Buffers kept for reuse. Only buffers of at least [`POOLED_MIN`] bytes are pooled (smaller
/// allocations are cheap), a request takes the smallest buffer that fits and is not wastefully
/// large, and the pool keeps at most [`POOL_MAX_BYTES`], so it never holds memory the
/// pipeline is not using anyway.
struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
}

const POOLED_MIN: usize = 64 << 10;
const POOL_MAX_BYTES: usize = 16 << 20;
const POOL_MAX_BUFFERS: usize = 32;

static POOL: BufferPool = BufferPool {
    free: Mutex::new(Vec::new()),
};

impl BufferPool {
    /// A pooled buffer with room for at least `capacity` bytes, if one fits.
    fn find(&self, capacity: usize) -> Option<Vec<u8>> {
        if capacity < POOLED_MIN {
            return None;
        }
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        // Best fit, and at most 4× too big: a 300 KiB chunk must not pin an 8 MiB buffer.
        let best = free
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= capacity && b.capacity() / 4 <= capacity)
            .min_by_key(|(_, b)| b.capacity())
            .map(|(i, _)| i)?;
        Some(free.swap_remove(best))
    }

    /// An empty buffer with room for at least `capacity` bytes.
    fn take(&self, capacity: usize) -> Vec<u8> {
        match self.find(capacity) {
            Some(mut buf) => {
                buf.clear();
                buf
            }
            None => Vec::with_capacity(capacity),
        }
    }

    /// A buffer of exactly `len` initialised (stale) bytes, for reading into: a pooled one is
    /// only zeroed beyond what it already held, and a fresh one comes from `calloc`, whose
    /// pages the kernel zeroes lazily, when first touched.
    fn take_initialized(&self, len: usize) -> Vec<u8> {
        match self.find(len) {
            Some(mut buf) => {
                buf.resize(len, 0);
                buf
            }
            None => vec![0; len],
        }
    }

    fn put(&self, buf: Vec<u8>) {
        if buf.capacity() < POOLED_MIN {
            return;
        }
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        let held: usize = free.iter().map(Vec::capacity).sum();
        if free.len() < POOL_MAX_BUFFERS && held + buf.capacity() <= POOL_MAX_BYTES {
            free.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random bytes (xorshift), fast enough for tens of MiB in tests.
    pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut s = seed | 1;
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            out.extend_from_slice(&s.to_le_bytes());
        }
        out.truncate(len);
        out
    }

    fn small() -> ChunkerParams {
        ChunkerParams::new(1024, 4096, 16384).unwrap()
    }

    #[test]
    fn defaults_and_validation() {
        let d = ChunkerParams::default();
        assert_eq!((d.min(), d.avg(), d.max()), (256 << 10, 1 << 20, 4 << 20));
        assert_eq!(ChunkerParams::from_average(1 << 20).unwrap(), d);
        let p = ChunkerParams::from_average(64 << 10).unwrap();
        assert_eq!((p.min(), p.avg(), p.max()), (16 << 10, 64 << 10, 256 << 10));
        for (min, avg, max) in [
            (4096, 4096, 16384),    // min == avg
            (1024, 4096, 4096),     // avg == max
            (1025, 4096, 16384),    // odd
            (32, 4096, 16384),      // min below FastCDC's limit
            (1024, 4096, 32 << 20), // max above it
        ] {
            let err = ChunkerParams::new(min, avg, max).unwrap_err();
            assert!(
                matches!(
                    err,
                    RepositoryError::InvalidSettings {
                        setting: "chunk_size",
                        ..
                    }
                ),
                "{err}"
            );
        }
        assert!(ChunkerParams::from_average(8 << 20).is_err());
        assert!(ChunkerParams::from_average(128).is_err());
        assert!(ChunkerParams::from_average(0).is_err());
    }

    #[test]
    fn sha256_matches_the_standard_vector() {
        assert_eq!(
            hex::encode(sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn chunks_cover_the_stream_within_bounds() {
        let p = small();
        let data = noise(1 << 20, 7);
        let chunks: Vec<Chunk> = Chunker::new(&data[..], p).map(Result::unwrap).collect();
        let mut at = 0u64;
        for (i, c) in chunks.iter().enumerate() {
            assert_eq!(c.offset, at);
            assert!(c.len() <= p.max());
            if i + 1 < chunks.len() {
                assert!(c.len() >= p.min(), "chunk {i} is {} bytes", c.len());
            }
            assert_eq!(c.hash, sha256(&c.data[..]));
            at += c.len() as u64;
        }
        assert_eq!(at, data.len() as u64);
        let joined: Vec<u8> = chunks.iter().flat_map(|c| c.data.iter().copied()).collect();
        assert_eq!(joined, data);
        // Random data with avg 4 KiB: the count is in the right ballpark.
        assert!((100..=600).contains(&chunks.len()), "{}", chunks.len());
        let spans: Vec<(usize, usize)> = chunks
            .iter()
            .map(|c| (usize::try_from(c.offset).unwrap(), c.len()))
            .collect();
        assert_eq!(spans, chunk_boundaries(&data, p));
    }

    #[test]
    fn borrowed_and_owned_forms_agree() {
        let data = noise(300_000, 3);
        let mut a = Chunker::new(&data[..], small());
        let mut b = Chunker::new(&data[..], small());
        loop {
            let owned = b.next_chunk().unwrap();
            let borrowed = a.next_ref().unwrap();
            match (borrowed, owned) {
                (None, None) => break,
                (Some(r), Some(o)) => {
                    assert_eq!((r.data, r.offset, r.hash), (&o.data[..], o.offset, o.hash));
                }
                other => panic!("diverged: {other:?}"),
            }
        }
        assert_eq!(a.position(), data.len() as u64);
    }

    #[test]
    fn empty_and_tiny_streams() {
        assert!(Chunker::new(&[][..], small()).next().is_none());
        let chunks: Vec<Chunk> = Chunker::new(&b"hello"[..], small())
            .map(Result::unwrap)
            .collect();
        assert_eq!(chunks.len(), 1);
        assert_eq!(&chunks[0].data[..], b"hello");
        assert_eq!(chunks[0].hash_hex(), hex::encode(sha256(b"hello")));
    }

    #[test]
    fn memory_stays_bounded_by_max_whatever_the_stream_length() {
        let p = small();
        // 64 MiB streamed without ever being in memory: the buffer never grows past 2 × max.
        let endless = std::io::repeat(0x5a).take(64 << 20);
        let mut c = Chunker::new(endless, p);
        let mut total = 0;
        while let Some(r) = c.next_ref().unwrap() {
            total += r.data.len();
            assert!(c.buf.len() <= 2 * p.max() && c.buf.capacity() <= 4 * 2 * p.max());
        }
        assert_eq!(total, 64 << 20);
    }

    #[test]
    fn zeroes_cut_at_max() {
        let p = small();
        let data = vec![0u8; p.max() * 3 + 5];
        let lens: Vec<usize> = Chunker::new(&data[..], p)
            .map(|c| c.unwrap().len())
            .collect();
        assert_eq!(lens, vec![p.max(), p.max(), p.max(), 5]);
    }

    struct Failing {
        served: usize,
    }

    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match self.served {
                0 => {
                    self.served += 1;
                    Err(std::io::Error::from(ErrorKind::Interrupted))
                }
                1 => {
                    self.served += 1;
                    let n = buf.len().min(100);
                    buf[..n].fill(9);
                    Ok(n)
                }
                _ => Err(std::io::Error::other("disk on fire")),
            }
        }
    }

    #[test]
    fn read_errors_surface_once_and_interrupts_are_retried() {
        let mut c = Chunker::new(Failing { served: 0 }, small());
        let err = c.next().unwrap().unwrap_err();
        assert_eq!(err.to_string(), "disk on fire");
        assert!(c.next().is_none());
    }

    #[test]
    fn pool_reuses_big_buffers_and_ignores_small_ones() {
        let pool = BufferPool {
            free: Mutex::new(Vec::new()),
        };
        let big = Vec::<u8>::with_capacity(1 << 20);
        let ptr = big.as_ptr();
        pool.put(big);
        pool.put(Vec::with_capacity(10));
        assert_eq!(pool.free.lock().unwrap().len(), 1);
        // A request far smaller than the pooled buffer gets a fresh allocation.
        let fresh = pool.take(100 << 10);
        assert_ne!(fresh.as_ptr(), ptr);
        assert_eq!(pool.free.lock().unwrap().len(), 1);
        let again = pool.take(700 << 10);
        assert_eq!(again.as_ptr(), ptr);
        assert!(again.is_empty());
        assert!(pool.free.lock().unwrap().is_empty());
        // A read buffer keeps its initialised length: no zeroing on reuse.
        let mut read = pool.take_initialized(1 << 20);
        assert_eq!(read.len(), 1 << 20);
        read[5] = 42;
        let ptr = read.as_ptr();
        pool.put(read);
        let read = pool.take_initialized(1 << 20);
        assert_eq!((read.as_ptr(), read.len(), read[5]), (ptr, 1 << 20, 42));
        for _ in 0..100 {
            pool.put(Vec::with_capacity(4 << 20));
        }
        let held: usize = pool.free.lock().unwrap().iter().map(Vec::capacity).sum();
        assert!(held <= POOL_MAX_BYTES);
    }
}
