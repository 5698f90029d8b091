//! Property tests for content-defined chunking and packing: chunking loses nothing, its
//! boundaries depend only on the bytes (not on how `read` splits them), an insertion disturbs
//! only the chunks around it, and packs round-trip and detect corruption.

use std::collections::HashSet;
use std::io::{ErrorKind, Read};

use coffer_repository::RepositoryError;
use coffer_repository::chunker::{Chunk, Chunker, ChunkerParams, chunk_boundaries, sha256};
use coffer_repository::pack::{self, PackWriter, decode_chunk, parse_pack_index};
use proptest::prelude::*;

/// Deterministic pseudo-random bytes (xorshift64).
fn noise(len: usize, seed: u64) -> Vec<u8> {
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

/// Text-like bytes: compressible.
fn text(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: [&str; 10] = [
        "shard", "segment", "snapshot", "lucene", "merge", "coffer", "term", "posting", "doc",
        "field",
    ];
    let r = noise(len / 4 + 16, seed);
    let mut out = Vec::with_capacity(len + 16);
    let mut i = 0;
    while out.len() < len {
        out.extend_from_slice(WORDS[r[i % r.len()] as usize % WORDS.len()].as_bytes());
        out.push(b' ');
        i += 1;
    }
    out.truncate(len);
    out
}

/// A reader that returns short reads of random sizes, with `Interrupted` errors mixed in.
struct ShortReads<'a> {
    data: &'a [u8],
    pos: usize,
    rng: u64,
    max_read: usize,
}

impl Read for ShortReads<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        if self.rng.is_multiple_of(7) {
            return Err(std::io::Error::from(ErrorKind::Interrupted));
        }
        let want = 1 + (self.rng >> 8) as usize % self.max_read;
        let n = want.min(buf.len()).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn chunks_of(reader: impl Read, params: ChunkerParams) -> Vec<Chunk> {
    Chunker::new(reader, params)
        .collect::<std::io::Result<Vec<_>>>()
        .unwrap()
}

fn spans(chunks: &[Chunk]) -> Vec<(u64, usize, [u8; 32])> {
    chunks.iter().map(|c| (c.offset, c.len(), c.hash)).collect()
}

fn small_params() -> impl Strategy<Value = ChunkerParams> {
    prop_oneof![
        Just(ChunkerParams::new(256, 1024, 4096).unwrap()),
        Just(ChunkerParams::from_average(4096).unwrap()),
        Just(ChunkerParams::new(2048, 16384, 65536).unwrap()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn split_then_join_is_identity(
        len in 0usize..300_000,
        seed in any::<u64>(),
        compressible in any::<bool>(),
        params in small_params(),
    ) {
        let data = if compressible { text(len, seed) } else { noise(len, seed) };
        let chunks = chunks_of(&data[..], params);
        let mut joined = Vec::with_capacity(data.len());
        let mut at = 0u64;
        for (i, c) in chunks.iter().enumerate() {
            prop_assert_eq!(c.offset, at);
            prop_assert!(!c.is_empty() && c.len() <= params.max());
            if i + 1 < chunks.len() {
                prop_assert!(c.len() >= params.min());
            }
            prop_assert_eq!(c.hash, sha256(&c.data));
            joined.extend_from_slice(&c.data);
            at += c.len() as u64;
        }
        prop_assert_eq!(joined, data);
    }

    #[test]
    fn boundaries_do_not_depend_on_read_sizes(
        len in 0usize..200_000,
        seed in any::<u64>(),
        read_seed in 1u64..u64::MAX,
        max_read in prop_oneof![Just(1usize), 2usize..64, 64usize..70_000],
        params in small_params(),
    ) {
        let data = noise(len, seed);
        let whole = spans(&chunks_of(&data[..], params));
        let short = ShortReads { data: &data, pos: 0, rng: read_seed, max_read };
        prop_assert_eq!(&spans(&chunks_of(short, params)), &whole);
        let in_memory: Vec<(u64, usize)> =
            chunk_boundaries(&data, params).into_iter().map(|(o, l)| (o as u64, l)).collect();
        let streamed: Vec<(u64, usize)> = whole.iter().map(|&(o, l, _)| (o, l)).collect();
        prop_assert_eq!(in_memory, streamed);
    }

    #[test]
    fn packs_round_trip_through_ranged_reads(
        pieces in prop::collection::vec((1usize..40_000, any::<u64>(), any::<bool>()), 1..40),
        target in 20_000usize..200_000,
        compress in any::<bool>(),
    ) {
        let mut writer = PackWriter::new(target, compress);
        let mut sealed = Vec::new();
        let mut expected = Vec::new();
        for (len, seed, is_text) in &pieces {
            let raw = if *is_text { text(*len, *seed) } else { noise(*len, *seed) };
            writer.start_file();
            writer.add(sha256(&raw), &raw).unwrap();
            expected.push(raw);
            if writer.is_full() {
                prop_assert!(writer.len() >= target);
                sealed.push(writer.finish().unwrap());
            }
        }
        if !writer.is_empty() {
            sealed.push(writer.finish().unwrap());
        }
        let mut decoded = Vec::new();
        for p in &sealed {
            prop_assert_eq!(&p.id, &hex::encode(sha256(&p.bytes)));
            let name = format!("__{}", p.id);
            let index = parse_pack_index(&name, &p.bytes).unwrap();
            prop_assert_eq!(&index.chunks, &p.chunks);
            for c in &index.chunks {
                prop_assert!(compress || !c.is_compressed());
                let start = usize::try_from(c.offset()).unwrap();
                let range = start..start + c.stored_len() as usize;
                decoded.push(decode_chunk(&name, c, &p.bytes[range]).unwrap());
            }
        }
        prop_assert_eq!(decoded, expected);
    }
}

#[test]
fn an_insert_changes_only_the_chunks_around_it() {
    let params = ChunkerParams::default();
    for seed in [1u64, 0xdead_beef, 42] {
        let original = noise(20 << 20, seed);
        let at = original.len() / 2 + usize::try_from(seed % 100_000).unwrap();
        let mut edited = original[..at].to_vec();
        edited.extend_from_slice(&noise(4096, seed ^ 0x5555));
        edited.extend_from_slice(&original[at..]);

        let before = spans(&chunks_of(&original[..], params));
        let after = spans(&chunks_of(&edited[..], params));
        let untouched = before
            .iter()
            .take_while(|(o, l, _)| usize::try_from(*o).unwrap() + l <= at)
            .count();
        assert!(untouched >= 3, "seed {seed}: the edit is in the middle");
        assert_eq!(
            before[..untouched],
            after[..untouched],
            "seed {seed}: chunks before the edit moved"
        );
        let old: HashSet<[u8; 32]> = before.iter().map(|s| s.2).collect();
        let new_chunks = after.iter().filter(|s| !old.contains(&s.2)).count();
        assert!(
            (1..=3).contains(&new_chunks),
            "seed {seed}: {new_chunks} new chunks out of {}",
            after.len()
        );
        // The tail after the edit is the same chunks, shifted by the insert.
        let new_tail: Vec<[u8; 32]> = after.iter().rev().take(5).map(|s| s.2).collect();
        let old_tail: Vec<[u8; 32]> = before.iter().rev().take(5).map(|s| s.2).collect();
        assert_eq!(new_tail, old_tail, "seed {seed}");
        // Chunks of 1 to 2 MiB on average (FastCDC's mean exceeds `avg` when min = avg / 4).
        assert!(
            (8..=30).contains(&before.len()),
            "seed {seed}: {} chunks",
            before.len()
        );
    }
}

#[test]
fn a_corrupted_pack_byte_is_reported_with_the_pack_and_the_chunk() {
    let mut writer = PackWriter::new(1 << 20, true);
    let pieces = [text(30_000, 1), noise(30_000, 2), text(5_000, 3)];
    for p in &pieces {
        writer.add(sha256(p), p).unwrap();
    }
    let sealed = writer.finish().unwrap();
    let name = format!("indices/i/0/__{}", sealed.id);
    let index = parse_pack_index(&name, &sealed.bytes).unwrap();
    for (c, raw) in index.chunks.iter().zip(&pieces) {
        let start = usize::try_from(c.offset()).unwrap();
        let end = start + c.stored_len() as usize;
        for victim in [start, usize::midpoint(start, end), end - 1] {
            let mut bytes = sealed.bytes.to_vec();
            bytes[victim] ^= 0x20;
            match decode_chunk(&name, c, &bytes[start..end]) {
                Err(RepositoryError::Corrupted { blob, reason }) => {
                    assert_eq!(blob, name);
                    assert!(
                        reason.starts_with(&format!("chunk {}", hex::encode(sha256(raw)))),
                        "{reason}"
                    );
                }
                other => panic!("byte {victim}: {other:?}"),
            }
        }
    }
    // A damaged index names the pack too.
    let mut bytes = sealed.bytes.to_vec();
    let last = bytes.len() - pack::TRAILER_LEN - 40;
    bytes[last] ^= 1;
    let err = parse_pack_index(&name, &bytes).unwrap_err();
    assert!(
        matches!(&err, RepositoryError::Corrupted { blob, .. } if *blob == name),
        "{err}"
    );
}

#[test]
fn compression_is_chosen_for_text_and_not_for_random_data() {
    let mut writer = PackWriter::new(64 << 20, true);
    writer.start_file();
    let t = text(1 << 20, 7);
    writer.add(sha256(&t), &t).unwrap();
    writer.start_file();
    let n = noise(1 << 20, 8);
    writer.add(sha256(&n), &n).unwrap();
    let sealed = writer.finish().unwrap();
    let (text_rec, noise_rec) = (&sealed.chunks[0], &sealed.chunks[1]);
    assert!(text_rec.is_compressed());
    assert!(
        text_rec.stored_len() < text_rec.raw_len() / 3,
        "{text_rec:?}"
    );
    assert!(!noise_rec.is_compressed());
    assert_eq!(noise_rec.stored_len(), noise_rec.raw_len());
    assert_eq!(sealed.raw_len, 2 << 20);
    assert!(sealed.bytes.len() < (1 << 20) + (1 << 19));
    // With compression off, nothing is compressed.
    let mut plain = PackWriter::new(64 << 20, false);
    plain.add(sha256(&t), &t).unwrap();
    assert!(!plain.finish().unwrap().chunks[0].is_compressed());
}

/// The three modules together, as a snapshot and a restore use them (without a store): scan
/// a tree, read each file into packs, then rebuild every file from the packs alone.
#[test]
fn scan_read_pack_and_rebuild_a_tree() {
    use std::collections::HashMap;

    use coffer_repository::model::{ChunkRecord, FileKind};
    use coffer_repository::source::{self, ReadOutcome};

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("idx/0")).unwrap();
    let files: Vec<(String, Vec<u8>)> = vec![
        ("idx/0/_0.cfs".into(), noise(3 << 20, 1)),
        ("idx/0/_0.si".into(), text(700, 2)),
        ("idx/0/segments_1".into(), text(300_000, 3)),
        ("idx/0/empty".into(), Vec::new()),
        // Same content twice: stored once.
        ("idx/copy.cfs".into(), noise(3 << 20, 1)),
    ];
    for (p, d) in &files {
        std::fs::write(root.join(p), d).unwrap();
    }
    let scan = source::scan(root).unwrap();
    let params = ChunkerParams::from_average(64 << 10).unwrap();
    let mut writer = PackWriter::new(1 << 20, true);
    let mut packs = Vec::new();
    let mut known = HashSet::new();
    let mut manifest: HashMap<String, Vec<String>> = HashMap::new();
    for e in scan.entries.iter().filter(|e| e.kind == FileKind::File) {
        let mut chunks = Vec::new();
        writer.start_file();
        let outcome = source::read_file_chunks(root, e, &params, |chunk| {
            chunks.push(chunk.hash_hex());
            if known.insert(chunk.hash) {
                writer.add(chunk.hash, chunk.data)?;
                if writer.is_full() {
                    packs.push(writer.finish()?);
                }
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(outcome, ReadOutcome::Complete, "{}", e.path);
        manifest.insert(e.path.clone(), chunks);
    }
    packs.push(writer.finish().unwrap());
    assert!(packs.len() >= 3, "{} packs", packs.len());

    // Restore side: every chunk located through the packs' own indexes.
    let mut located: HashMap<String, (usize, ChunkRecord)> = HashMap::new();
    for (i, p) in packs.iter().enumerate() {
        for c in parse_pack_index(&p.id, &p.bytes).unwrap().chunks {
            assert!(
                located.insert(c.hash().to_owned(), (i, c)).is_none(),
                "stored twice"
            );
        }
    }
    let stored: u64 = packs.iter().map(|p| p.bytes.len() as u64).sum();
    assert!(
        stored < (3 << 20) + 400_000,
        "the duplicate file was stored again: {stored}"
    );
    for (path, data) in &files {
        let mut rebuilt = Vec::new();
        for h in &manifest[path] {
            let (i, c) = &located[h];
            let start = usize::try_from(c.offset()).unwrap();
            let range = packs[*i]
                .bytes
                .slice(start..start + c.stored_len() as usize);
            rebuilt.extend_from_slice(&pack::decode_chunk_bytes(&packs[*i].id, c, range).unwrap());
        }
        assert_eq!(&rebuilt, data, "{path}");
    }
}
