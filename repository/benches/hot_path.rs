//! Microbenchmarks of the snapshot hot path, single-threaded so every figure reads as
//! "per core": SHA-256, content-defined chunking, zstd, pack building, and the encode and
//! decode of the metadata documents (repository data at 100, 1,000 and 10,000 snapshots).
//!
//! Times are the benchmark thread's own CPU time (`CLOCK_THREAD_CPUTIME_ID`), not wall time:
//! the machine's cores are shared (compilers, S3 servers), and CPU time is what "per core"
//! means whatever else runs. Run with `cargo bench -p coffer-repository --bench hot_path`
//! (about three minutes).
//! Results land in `target/criterion/<group>/<bench>/[<param>/]new/estimates.json`;
//! `docs/microbenchmarks.md` lists what each benchmark measures.
//!
//! Every input is generated from a fixed seed, so two runs measure the same bytes.

use std::fmt::Write as _;
use std::hint::black_box;
use std::io::Cursor;
use std::time::Duration;

use coffer_repository::chunker::{self, Chunker, ChunkerParams};
use coffer_repository::envelope::{self, Kind};
use coffer_repository::model::{
    ChunkRecord, FileEntry, FileKind, IndexEntry, IndexInSnapshot, PackRecord, RepositoryData,
    ShardCounts, ShardGeneration, ShardSnapshot, SnapshotState, SnapshotStats, SnapshotSummary,
};
use coffer_repository::pack::{self, PackWriter};
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput};
use serde::Serialize;
use serde::de::DeserializeOwned;

const MIB: usize = 1 << 20;
/// The chunking and hashing input: large enough that caches do not flatter the result.
const BIG: usize = 64 * MIB;
/// zstd and packing run over a quarter of it: they are slower per byte, and 16 MiB is
/// still two full default-sized packs.
const MEDIUM: usize = 16 * MIB;

// ------------------------------------------------------------------- measurement

/// CPU time of the calling thread. Criterion runs every routine on the thread that calls
/// it, and every routine here is single-threaded, so this is the work itself: time the
/// thread spent waiting for a core while other processes ran is not counted.
struct CpuTime {
    /// Only for its formatter: values are nanoseconds, like wall time's.
    wall: WallTime,
}

fn thread_cpu_ns() -> u128 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    // The clock starts at the thread's creation: never negative.
    u128::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000 + u128::try_from(t.tv_nsec).unwrap_or(0)
}

impl Measurement for CpuTime {
    type Intermediate = u128;
    type Value = Duration;

    fn start(&self) -> u128 {
        thread_cpu_ns()
    }

    fn end(&self, start: u128) -> Duration {
        Duration::from_nanos(
            u64::try_from(thread_cpu_ns().saturating_sub(start)).unwrap_or(u64::MAX),
        )
    }

    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_secs_f64() * 1e9
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        self.wall.formatter()
    }
}

type Group<'a> = BenchmarkGroup<'a, CpuTime>;
type Bench = Criterion<CpuTime>;

// ------------------------------------------------------------------- inputs

/// SplitMix64: a tiny, well-mixed generator, so the inputs need no dependency and are the
/// same on every machine.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn hex(&mut self, bytes: usize) -> String {
        let mut out = String::with_capacity(bytes * 2);
        while out.len() < bytes * 2 {
            let _ = write!(out, "{:016x}", self.next());
        }
        out.truncate(bytes * 2);
        out
    }
}

/// Incompressible bytes (what zstd cannot shrink: already-compressed segment files).
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = SplitMix(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Log-like text (timestamps, levels, index names, numbers): zstd level 1 shrinks it about
/// four times, like the JSON sources and translogs of a typical index.
fn compressible_bytes(len: usize, seed: u64) -> Vec<u8> {
    const LEVELS: [&str; 4] = ["INFO", "WARN", "DEBUG", "INFO"];
    const VERBS: [&str; 6] = [
        "merged segment",
        "flushed",
        "refreshed reader",
        "committed translog",
        "indexed document",
        "recovered shard",
    ];
    let mut rng = SplitMix(seed);
    let mut out = Vec::with_capacity(len + 256);
    while out.len() < len {
        let line = format!(
            "2026-11-{:02}T{:02}:{:02}:{:02}.{:03}Z {} [logs-{:04}][{}] {} _{:x} docs={} size={} took={}ms\n",
            1 + rng.below(28),
            rng.below(24),
            rng.below(60),
            rng.below(60),
            rng.below(1000),
            LEVELS[usize::try_from(rng.below(4)).unwrap_or(0)],
            rng.below(40),
            rng.below(5),
            VERBS[usize::try_from(rng.below(6)).unwrap_or(0)],
            rng.below(1 << 20),
            rng.below(1_000_000),
            rng.below(100_000_000),
            rng.below(5_000),
        );
        out.extend_from_slice(line.as_bytes());
    }
    out.truncate(len);
    out
}

fn bytes_of(n: usize) -> Throughput {
    Throughput::Bytes(n as u64)
}

/// A group for inputs that take tens of milliseconds per iteration: flat sampling (every
/// sample runs the same number of iterations) keeps the whole suite within minutes. Warm-up
/// and measurement times are the suite's (set in `main`, overridable on the command line).
fn heavy<'a>(c: &'a mut Bench, name: &str) -> Group<'a> {
    let mut g = c.benchmark_group(name);
    g.sampling_mode(SamplingMode::Flat).sample_size(10);
    g
}

/// A group for inputs of microseconds to a few milliseconds.
fn light<'a>(c: &'a mut Bench, name: &str) -> Group<'a> {
    let mut g = c.benchmark_group(name);
    g.sample_size(20);
    g
}

// ------------------------------------------------------------------- data path

/// SHA-256 through the repository's own call (`chunker::sha256`, which is `sha2`'s
/// `Sha256::digest`, SHA-NI when the CPU has it): once over 64 MiB and once per 1 MiB piece
/// of it, both streaming from memory; and over one 1 MiB chunk already in the CPU's cache,
/// which is the chunker's case (it hashes each chunk right after its cut-point scan read
/// the same bytes). SHA-256 waits on memory when it streams: on the reference machine it
/// hashes about 1.25 GB/s from memory and 1.9 GB/s from cache.
fn sha256(c: &mut Bench) {
    let data = random_bytes(BIG, 1);
    let mut g = heavy(c, "sha256");
    g.throughput(bytes_of(BIG));
    g.bench_function("64MiB", |b| b.iter(|| chunker::sha256(black_box(&data))));
    g.bench_function("1MiB_calls", |b| {
        b.iter(|| {
            for piece in data.chunks(MIB) {
                black_box(chunker::sha256(black_box(piece)));
            }
        });
    });
    g.finish();
    let chunk = &data[..MIB];
    let mut g = light(c, "sha256");
    g.throughput(bytes_of(MIB));
    g.bench_function("1MiB_in_cache", |b| {
        b.iter(|| chunker::sha256(black_box(chunk)));
    });
    g.finish();
}

/// FastCDC cut points alone (`cut`), and the streaming [`Chunker`] the snapshot pipeline
/// runs (cut points, buffer refills and one SHA-256 per chunk), at the default 1 MiB
/// average.
fn chunking(c: &mut Bench) {
    let params = ChunkerParams::default();
    let inputs = [
        ("random", random_bytes(BIG, 2)),
        ("compressible", compressible_bytes(BIG, 3)),
    ];
    let mut g = heavy(c, "chunking");
    g.throughput(bytes_of(BIG));
    for (name, data) in &inputs {
        g.bench_with_input(format!("cut/{name}"), data, |b, data| {
            b.iter(|| chunker::chunk_boundaries(black_box(data), params).len());
        });
        g.bench_with_input(format!("chunker_sha256/{name}"), data, |b, data| {
            b.iter(|| {
                let mut chunker = Chunker::new(Cursor::new(black_box(data.as_slice())), params);
                let mut n = 0usize;
                while let Some(chunk) = chunker.next_ref().expect("in-memory read") {
                    n += chunk.data.len();
                    black_box(chunk.hash);
                }
                n
            });
        });
    }
    g.finish();
}

/// The input split at its content-defined cut points, as the pack writer receives it.
fn chunks_of(data: &[u8]) -> Vec<(&[u8], [u8; 32])> {
    chunker::chunk_boundaries(data, ChunkerParams::default())
        .into_iter()
        .map(|(at, len)| {
            let piece = &data[at..at + len];
            (piece, chunker::sha256(piece))
        })
        .collect()
}

/// zstd as the repository calls it: chunks compressed one by one with a reused context at
/// the pack writer's level ([`pack::DEFAULT_LEVEL`]), decompressed with a reused context;
/// and metadata compressed whole at the envelope's level 3.
fn zstd(c: &mut Bench) {
    let text = compressible_bytes(MEDIUM, 4);
    let noise = random_bytes(MEDIUM, 5);
    let text_chunks = chunks_of(&text);
    let compressed: Vec<(Vec<u8>, usize)> = {
        let mut z = zstd::bulk::Compressor::new(pack::DEFAULT_LEVEL).expect("zstd context");
        text_chunks
            .iter()
            .map(|(raw, _)| (z.compress(raw).expect("compress"), raw.len()))
            .collect()
    };
    let packed: usize = compressed.iter().map(|(c, _)| c.len()).sum();
    eprintln!(
        "zstd level {}: compressible input {} -> {} bytes ({:.2}x)",
        pack::DEFAULT_LEVEL,
        text.len(),
        packed,
        ratio(text.len(), packed)
    );

    let mut g = heavy(c, "zstd");
    g.throughput(bytes_of(MEDIUM));
    let mut z = zstd::bulk::Compressor::new(pack::DEFAULT_LEVEL).expect("zstd context");
    let mut out = Vec::with_capacity(ChunkerParams::default().max() + 4096);
    g.bench_function("compress/compressible", |b| {
        b.iter(|| {
            let mut total = 0;
            for (raw, _) in &text_chunks {
                out.clear();
                total += z
                    .compress_to_buffer(black_box(*raw), &mut out)
                    .expect("fits");
            }
            total
        });
    });
    // The pack writer's trial on data that does not shrink: the output buffer is only
    // 31/32 of the input, so zstd gives up as soon as it would not save enough.
    let noise_chunks = chunks_of(&noise);
    g.bench_function("compress_trial/random", |b| {
        b.iter(|| {
            let mut refused = 0;
            for (raw, _) in &noise_chunks {
                // Exactly the writer's scratch handling: cleared, then at least the
                // useful size reserved.
                out.clear();
                out.reserve(raw.len() - raw.len() / 32 - 1);
                if z.compress_to_buffer(black_box(*raw), &mut out).is_err() {
                    refused += 1;
                }
            }
            refused
        });
    });
    let mut d = zstd::bulk::Decompressor::new().expect("zstd context");
    g.bench_function("decompress/compressible", |b| {
        b.iter(|| {
            let mut total = 0;
            for (frame, raw_len) in &compressed {
                out.clear();
                out.reserve(*raw_len);
                total += d
                    .decompress_to_buffer(black_box(frame.as_slice()), &mut out)
                    .expect("decompress");
            }
            total
        });
    });
    g.finish();
}

fn ratio(a: usize, b: usize) -> f64 {
    #[allow(clippy::cast_precision_loss)] // a display ratio of two buffer sizes
    let r = a as f64 / b.max(1) as f64;
    r
}

/// [`PackWriter`]: chunks added (compression trial, copy, pack hash) and packs sealed,
/// as the snapshot worker does, over 16 MiB of each kind of data; and the parse of a full
/// pack's index (a pack of 20,000 small chunks, the most a pack holds).
fn packing(c: &mut Bench) {
    let inputs = [
        ("compressible", compressible_bytes(MEDIUM, 6)),
        ("random", random_bytes(MEDIUM, 7)),
    ];
    let mut g = heavy(c, "pack");
    g.throughput(bytes_of(MEDIUM));
    for (name, data) in &inputs {
        let chunks = chunks_of(data);
        g.bench_with_input(format!("build/{name}"), &chunks, |b, chunks| {
            let mut writer = PackWriter::default();
            b.iter(|| {
                let mut sealed = 0;
                writer.start_file();
                for (raw, hash) in chunks {
                    writer.add(*hash, raw).expect("valid chunk");
                    if writer.is_full() {
                        sealed += writer.finish().expect("seal").bytes.len();
                    }
                }
                if !writer.is_empty() {
                    sealed += writer.finish().expect("seal").bytes.len();
                }
                sealed
            });
        });
    }
    g.finish();

    let small = random_bytes(pack::MAX_CHUNKS_PER_PACK * 256, 8);
    let mut writer = PackWriter::new(usize::MAX, false);
    for piece in small.chunks(256) {
        writer
            .add(chunker::sha256(piece), piece)
            .expect("valid chunk");
    }
    let sealed = writer.finish().expect("seal");
    let index_len = pack::read_trailer("bench", &sealed.bytes).expect("trailer");
    let mut g = light(c, "pack");
    g.throughput(bytes_of(index_len + pack::TRAILER_LEN));
    g.bench_function("parse_index/20000_chunks", |b| {
        b.iter(|| {
            pack::parse_pack_index(black_box("bench"), black_box(&sealed.bytes))
                .expect("valid pack")
                .chunks
                .len()
        });
    });
    g.finish();
}

// ------------------------------------------------------------------- metadata

/// Indices in the synthetic repository, and shards per index.
const INDICES: u32 = 8;
const SHARDS: u32 = 2;

/// A repository that took `snapshots` nightly snapshots of the same eight two-shard indices:
/// the shape that makes the root grow (each index lists every snapshot holding it).
fn repository_data(snapshots: usize) -> RepositoryData {
    let mut rng = SplitMix(0x5eed ^ snapshots as u64);
    let index_names: Vec<String> = (0..INDICES).map(|i| format!("logs-app-{i:02}")).collect();
    let mut data = RepositoryData {
        uuid: rng.hex(16),
        generation: snapshots as u64 * 2,
        snapshots: Vec::with_capacity(snapshots),
        indices: index_names
            .iter()
            .map(|name| {
                (
                    name.clone(),
                    IndexEntry {
                        id: rng.hex(16),
                        snapshots: std::collections::BTreeMap::new(),
                        shard_generations: (0..SHARDS).map(|_| Some(rng.hex(16))).collect(),
                    },
                )
            })
            .collect(),
    };
    let start = 1_700_000_000_000_i64;
    for n in 0..snapshots {
        let uuid = rng.hex(16);
        let began = start + i64::try_from(n).unwrap_or(0) * 86_400_000;
        let size = 1_000_000_000 + rng.below(1_000_000_000);
        data.snapshots.push(SnapshotSummary {
            name: format!("nightly-{n:06}"),
            uuid: uuid.clone(),
            state: SnapshotState::Success,
            indices: index_names.clone(),
            start_time_ms: began,
            end_time_ms: began + i64::try_from(rng.below(600_000)).unwrap_or(0),
            shards: ShardCounts {
                total: INDICES * SHARDS,
                failed: 0,
                successful: INDICES * SHARDS,
            },
            failures: Vec::new(),
            reason: None,
            include_global_state: false,
            metadata: (n % 4 == 0)
                .then(|| serde_json::json!({"taken_by": "slm-nightly", "policy": "nightly"})),
            version: "0.1.0".to_owned(),
            stats: SnapshotStats {
                total_file_count: 400 + rng.below(100),
                total_size_in_bytes: size,
                incremental_file_count: rng.below(40),
                incremental_size_in_bytes: rng.below(size / 20),
                uploaded_bytes: rng.below(size / 40),
            },
        });
        for entry in data.indices.values_mut() {
            entry.snapshots.insert(
                uuid.clone(),
                IndexInSnapshot {
                    // Index metadata rarely changes: a handful of distinct ids.
                    meta_id: format!("{:032x}", n / 100),
                    shards: (0..SHARDS).collect(),
                },
            );
        }
    }
    data
}

/// A shard generation of `chunks` chunks in 8 MiB packs (128 chunks of 64 KiB each, as a
/// shard of small segment files packs them), used by `snapshots` snapshots.
fn shard_generation(chunks: usize, snapshots: usize) -> ShardGeneration {
    let mut rng = SplitMix(0x9e4 ^ chunks as u64);
    let per_pack = 128;
    let packs = chunks.div_ceil(per_pack);
    ShardGeneration {
        snapshots: (0..snapshots).map(|_| rng.hex(16)).collect(),
        packs: (0..packs)
            .map(|p| {
                let n = per_pack.min(chunks - p * per_pack);
                let mut offset = 0u64;
                let chunks = (0..n)
                    .map(|_| {
                        let raw = 65_536;
                        let stored = 20_000 + u32::try_from(rng.below(45_000)).unwrap_or(0);
                        let rec = ChunkRecord(
                            rng.hex(32),
                            offset,
                            stored,
                            raw,
                            1,
                            1 + u32::try_from(rng.below(30)).unwrap_or(0),
                        );
                        offset += u64::from(stored);
                        rec
                    })
                    .collect();
                PackRecord {
                    id: rng.hex(32),
                    size: offset + 4096,
                    chunks,
                }
            })
            .collect(),
    }
}

/// A shard's file list: `files` segment files of a few chunks each.
fn shard_snapshot(files: usize) -> ShardSnapshot {
    let mut rng = SplitMix(0x5a ^ files as u64);
    ShardSnapshot {
        index: "logs-app-00".to_owned(),
        shard: 0,
        files: (0..files)
            .map(|i| {
                let chunks = 1 + usize::try_from(rng.below(6)).unwrap_or(0);
                FileEntry {
                    path: format!(
                        "index/_{i:x}_Lucene90_0.{}",
                        ["tim", "doc", "pos", "dvd"][i % 4]
                    ),
                    kind: FileKind::File,
                    size: rng.below(8 << 20),
                    mode: 0o644,
                    mtime_ns: 1_700_000_000_000_000_000
                        + i64::try_from(rng.below(1 << 40)).unwrap_or(0),
                    inode: rng.next() >> 16,
                    ctime_ns: 1_700_000_000_000_000_000
                        + i64::try_from(rng.below(1 << 40)).unwrap_or(0),
                    chunks: (0..chunks).map(|_| rng.hex(32)).collect(),
                    target: None,
                }
            })
            .collect(),
        stats: SnapshotStats::default(),
        start_time_ms: 1_700_000_000_000,
        time_ms: 1234,
    }
}

/// Encode (JSON, zstd level 3, SHA-256: [`envelope::encode`]) and decode (the checks,
/// decompression and JSON parse: [`envelope::decode`]) of `value`, under
/// `<group>/encode/<param>` and `<group>/decode/<param>`. Throughput is the JSON payload's
/// size, the document's logical size.
fn encode_decode<T: Serialize + DeserializeOwned>(
    g: &mut Group<'_>,
    kind: Kind,
    param: &str,
    value: &T,
) {
    let json_len = serde_json::to_vec(value).expect("serialisable").len();
    let blob = envelope::encode(kind, value).expect("encode");
    eprintln!(
        "{kind:?} {param}: {json_len} bytes of JSON, {} bytes stored",
        blob.len()
    );
    g.throughput(bytes_of(json_len));
    g.bench_function(format!("encode/{param}"), |b| {
        b.iter(|| envelope::encode(kind, black_box(value)).expect("encode"));
    });
    g.bench_function(format!("decode/{param}"), |b| {
        b.iter(|| envelope::decode::<T>("bench", kind, black_box(&blob)).expect("decode"));
    });
}

fn metadata(c: &mut Bench) {
    {
        let mut g = light(c, "repository_data");
        for n in [100, 1_000] {
            encode_decode(&mut g, Kind::Root, &n.to_string(), &repository_data(n));
        }
        g.finish();
        let mut g = heavy(c, "repository_data");
        encode_decode(&mut g, Kind::Root, "10000", &repository_data(10_000));
        g.finish();
    }
    {
        let mut g = light(c, "shard_generation");
        encode_decode(
            &mut g,
            Kind::ShardGeneration,
            "1000_chunks",
            &shard_generation(1_000, 1_000),
        );
        g.finish();
        let mut g = heavy(c, "shard_generation");
        encode_decode(
            &mut g,
            Kind::ShardGeneration,
            "100000_chunks",
            &shard_generation(100_000, 1_000),
        );
        g.finish();
    }
    {
        let mut g = light(c, "shard_snapshot");
        encode_decode(
            &mut g,
            Kind::ShardSnapshot,
            "1000_files",
            &shard_snapshot(1_000),
        );
        g.finish();
    }
    {
        let mut g = light(c, "snapshot_info");
        let info = repository_data(1).snapshots.remove(0);
        encode_decode(&mut g, Kind::SnapshotInfo, "one", &info);
        g.finish();
    }
}

fn main() {
    // Short defaults keep the suite near three minutes of CPU time; `--warm-up-time` and
    // `--measurement-time` on the command line override them.
    let mut c = Criterion::default()
        .with_measurement(CpuTime { wall: WallTime })
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        eprintln!("load average when starting: {}", load.trim());
    }
    sha256(&mut c);
    chunking(&mut c);
    zstd(&mut c);
    packing(&mut c);
    metadata(&mut c);
    c.final_summary();
}
