//! Pack blobs: the trailer, the trailing index and the chunk decoder (`pack.rs`).
//!
//! Input: `[mode][…]`.
//! - mode 0: the bytes are a pack as read from the store.
//! - mode 1: `[data length][JSON]`: a pack of that many filler bytes whose index envelope
//!   (re-sealed, so its checksum holds) carries the fuzzer's JSON.
//! - mode 2: `[flip offset, 2 bytes][flip mask][chunks…]`: a real pack written by
//!   `PackWriter` from the fuzzer's chunks, then one byte flipped (mask 0: none).
//!
//! Properties: no panic and no allocation above the cap; every chunk that decodes hashes to
//! its record; an undamaged pack decodes back to exactly the chunks written.
#![no_main]

use coffer_fuzz::{CappedAlloc, Input};
use coffer_repository::chunker::sha256;
use coffer_repository::envelope::{self, Kind};
use coffer_repository::model::ChunkRecord;
use coffer_repository::pack::{self, MAGIC, PackWriter};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: CappedAlloc = CappedAlloc;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    match input.byte() % 3 {
        0 => check_pack(input.rest()),
        1 => {
            let [hi, lo] = input.array::<2>();
            let data_len = usize::from(u16::from_be_bytes([hi, lo]) % 4096);
            let index = envelope::wrap(Kind::PackIndex, input.rest());
            let mut blob = vec![0x5a; data_len];
            blob.extend_from_slice(&index);
            blob.extend_from_slice(&u32::try_from(index.len()).unwrap().to_be_bytes());
            blob.extend_from_slice(MAGIC);
            check_pack(&blob);
        }
        _ => {
            let [hi, lo] = input.array::<2>();
            let mask = input.byte();
            let mut writer = PackWriter::new(1 << 20, true);
            let mut written: Vec<Vec<u8>> = Vec::new();
            while written.len() < 32 {
                let chunk = input.short();
                if chunk.is_empty() {
                    break;
                }
                // Repeat the chunk so some compress.
                let raw: Vec<u8> = chunk
                    .iter()
                    .copied()
                    .cycle()
                    .take(chunk.len() * 8)
                    .collect();
                writer
                    .add(sha256(&raw), &raw)
                    .expect("a 1..=2040-byte chunk is accepted");
                written.push(raw);
            }
            let sealed = writer.finish().expect("sealing an in-memory pack");
            let mut bytes = sealed.bytes.to_vec();
            if mask == 0 {
                let index = pack::parse_pack_index("fuzz", &bytes).expect("a fresh pack parses");
                assert_eq!(index.chunks, sealed.chunks);
                for (record, raw) in index.chunks.iter().zip(&written) {
                    let decoded = pack::decode_chunk("fuzz", record, stored(&bytes, record))
                        .expect("a fresh chunk decodes");
                    assert_eq!(&decoded, raw);
                }
                assert_eq!(index.chunks.len(), written.len());
            } else {
                let at = usize::from(u16::from_be_bytes([hi, lo])) % bytes.len();
                bytes[at] ^= mask;
                check_pack(&bytes);
            }
        }
    }
});

fn stored<'a>(pack: &'a [u8], record: &ChunkRecord) -> &'a [u8] {
    let start = usize::try_from(record.offset()).unwrap();
    &pack[start..start + record.stored_len() as usize]
}

fn check_pack(bytes: &[u8]) {
    let _ = pack::read_trailer("fuzz", bytes);
    for cut in [0, 1, bytes.len() / 2] {
        let _ =
            pack::parse_pack_index_tail("fuzz", &bytes[cut.min(bytes.len())..], bytes.len() as u64);
    }
    let _ = pack::parse_pack_index_tail("fuzz", bytes, u64::MAX);
    let Ok(index) = pack::parse_pack_index("fuzz", bytes) else {
        return;
    };
    let mut out = Vec::new();
    for record in &index.chunks {
        // parse_pack_index guarantees the records tile the data region.
        let stored = stored(bytes, record);
        if let Ok(raw) = pack::decode_chunk("fuzz", record, stored) {
            assert_eq!(hex_of(&sha256(&raw)), record.hash());
            assert_eq!(raw.len(), record.raw_len() as usize);
        }
        let _ = pack::decode_chunk_into("fuzz", record, stored, &mut out);
        let _ = pack::decode_chunk_bytes("fuzz", record, bytes::Bytes::copy_from_slice(stored));
    }
}

fn hex_of(hash: &[u8; 32]) -> String {
    use std::fmt::Write as _;
    hash.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
