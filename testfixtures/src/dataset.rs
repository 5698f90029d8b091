//! Deterministic datasets for snapshot tests and benchmarks, and manifests to compare them.
//!
//! A port of the shapes of `bench/make-dataset` (the Python benchmark script):
//!
//! * [`mixed`]: one large file (`large/disk.img`, half the size), 64 medium files
//!   (`medium/mNN.bin`, a quarter; every eighth is compressible text), and many small files
//!   of 1 to 31 KiB (`small/dXX/eYY/fNNNNNN.dat`, a quarter; every fourth is text).
//! * [`small`]: many small files of 0.5 to 16 KiB only.
//! * [`mutate`]: a realistic day of change, in place: four 64 KiB overwrites in the large
//!   file, 4 KiB inserted a third of the way into a medium file (shifting the rest), 1 MiB
//!   appended to another, 1 % of the small files deleted, as many new files under `added/`,
//!   and the first small directory renamed.
//! * [`Manifest`]: `sha256 size path` per file, sorted by path, and [`ManifestDiff`] between
//!   two of them.
//!
//! The same arguments always give the same bytes. Random content is incompressible and
//! byte-identical to the Python script's (SHAKE-128 of `"<tag>/<block>"`, the same tags and
//! block sizes); text content is numbered pseudo-log lines. Sizes, text and the choice of
//! deleted files come from a small self-contained generator (xoshiro256\*\*), so they differ
//! from Python's Mersenne Twister: the shapes are the same, the bytes are not.

use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use sha2::{Digest, Sha256};
use sha3::Shake128;
use sha3::digest::{ExtendableOutput, Update, XofReader};

use crate::error::{HarnessError, Result};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

const WORDS: [&str; 32] = [
    "snapshot",
    "shard",
    "index",
    "blob",
    "repository",
    "bucket",
    "restore",
    "verify",
    "keystore",
    "client",
    "region",
    "endpoint",
    "segment",
    "generation",
    "checksum",
    "lease",
    "writer",
    "reader",
    "chunk",
    "pack",
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
];

/// xoshiro256\*\* seeded through SplitMix64: tiny, fast, and fixed forever (unlike `StdRng`,
/// whose algorithm may change between `rand` releases).
#[derive(Debug, Clone)]
struct DatasetRng {
    s: [u64; 4],
}

impl DatasetRng {
    fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Self {
            s: [next(), next(), next(), next()],
        }
    }

    fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (`n > 0`), without modulo bias.
    fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "empty range");
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let v = self.next_u64();
            if v < zone {
                return v % n;
            }
        }
    }

    /// Uniform in `lo..hi` (`lo < hi`).
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo)
    }

    /// Uniform in `0..len` (`len > 0`).
    fn index(&mut self, len: usize) -> usize {
        usize::try_from(self.below(len as u64)).expect("below(len) < len fits usize")
    }

    /// `k` distinct indices of `0..n`, in selection order (partial Fisher–Yates).
    fn sample(&mut self, n: usize, k: usize) -> Vec<usize> {
        let mut pool: Vec<usize> = (0..n).collect();
        for i in 0..k.min(n) {
            let j = i + self.index(n - i);
            pool.swap(i, j);
        }
        pool.truncate(k.min(n));
        pool
    }
}

fn io_err(context: impl fmt::Display, path: &Path) -> impl FnOnce(io::Error) -> HarnessError {
    let context = format!("{context} {}", path.display());
    move |e| HarnessError::io(context, e)
}

/// The XOF of block `block` of `tag`: Python's `hashlib.shake_128(f"{tag}/{block}")`.
fn shake(tag: &str, block: u64) -> impl XofReader {
    let mut hasher = Shake128::default();
    hasher.update(format!("{tag}/{block}").as_bytes());
    hasher.finalize_xof()
}

/// Streams `n` incompressible bytes fixed by `tag`, in blocks of `block_size` (the Python
/// script uses 1 MiB in `random_bytes` and 4 MiB in `write_random_file`).
fn write_random(out: &mut impl Write, tag: &str, n: u64, block_size: u64) -> io::Result<()> {
    let mut buf = vec![0u8; 64 << 10];
    let mut done = 0;
    let mut block = 0;
    while done < n {
        let want = block_size.min(n - done);
        let mut reader = shake(tag, block);
        let mut left = want;
        while left > 0 {
            let chunk = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            reader.read(&mut buf[..chunk]);
            out.write_all(&buf[..chunk])?;
            left -= chunk as u64;
        }
        done += want;
        block += 1;
    }
    Ok(())
}

/// `n` incompressible bytes fixed by `tag` (Python's `random_bytes`).
fn random_bytes(tag: &str, n: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    write_random(&mut out, tag, n, MIB).expect("writing to a Vec cannot fail");
    out
}

/// `n` compressible bytes of numbered pseudo-log lines (Python's `text_bytes`).
fn write_text(out: &mut impl Write, rng: &mut DatasetRng, n: u64) -> io::Result<()> {
    let mut size = 0u64;
    let mut i = 0u64;
    let mut line = String::new();
    while size < n {
        line.clear();
        let number = rng.below(1 << 30);
        let _ = write!(line, "{i:08} {number:09} ");
        for w in 0..8 {
            if w > 0 {
                line.push(' ');
            }
            line.push_str(WORDS[rng.index(WORDS.len())]);
        }
        line.push('\n');
        let keep = line
            .len()
            .min(usize::try_from(n - size).unwrap_or(usize::MAX));
        out.write_all(&line.as_bytes()[..keep])?;
        size += line.len() as u64;
        i += 1;
    }
    Ok(())
}

/// Creates `path` (and its parents) and fills it with `fill`.
fn create_with(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_err("creating", parent))?;
    }
    let file = File::create(path).map_err(io_err("creating", path))?;
    let mut out = BufWriter::with_capacity(256 << 10, file);
    fill(&mut out).map_err(io_err("writing", path))?;
    out.flush().map_err(io_err("writing", path))
}

fn write_random_file(path: &Path, tag: &str, n: u64) -> Result<()> {
    create_with(path, |out| write_random(out, tag, n, 4 * MIB))
}

/// Python's `small_files`: `count` files under `<root>/<prefix>/dXX/eYY/`, sizes in
/// `lo..hi`, every fourth one text. Returns their paths relative to `root`.
fn small_files(
    root: &Path,
    rng: &mut DatasetRng,
    count: u64,
    (lo, hi): (u64, u64),
    seed: &str,
    prefix: &str,
) -> Result<Vec<String>> {
    let mut written = Vec::new();
    for i in 0..count {
        let rel = format!("{prefix}/d{:02}/e{:02}/f{i:06}.dat", i % 16, (i / 16) % 16);
        let n = rng.range(lo, hi);
        let path = root.join(&rel);
        if i % 4 == 0 {
            create_with(&path, |out| write_text(out, rng, n))?;
        } else {
            let data = random_bytes(&format!("{seed}/{prefix}/{i}"), n);
            create_with(&path, |out| out.write_all(&data))?;
        }
        written.push(rel);
    }
    Ok(written)
}

/// One large file, medium files and many small files, `size_mib` MiB in all (the Python
/// script's `mixed`, default 1024 MiB there).
pub fn mixed(dir: &Path, size_mib: u64, seed: u64) -> Result<()> {
    mixed_bytes(dir, size_mib * MIB, seed)
}

/// [`mixed`] with the total size in bytes, for tests that want less than a MiB per part.
pub fn mixed_bytes(dir: &Path, total: u64, seed: u64) -> Result<()> {
    let mut rng = DatasetRng::new(seed);
    write_random_file(
        &dir.join("large").join("disk.img"),
        &format!("{seed}/large"),
        total / 2,
    )?;
    let medium_total = total / 4;
    for i in 0..64u64 {
        let n = medium_total / 64;
        let path = dir.join("medium").join(format!("m{i:02}.bin"));
        if i % 8 == 0 {
            create_with(&path, |out| write_text(out, &mut rng, n))?;
        } else {
            write_random_file(&path, &format!("{seed}/medium/{i}"), n)?;
        }
    }
    let small_total = total / 4;
    let count = (small_total / (16 * KIB)).max(1);
    small_files(
        dir,
        &mut rng,
        count,
        (KIB, 31 * KIB),
        &seed.to_string(),
        "small",
    )?;
    Ok(())
}

/// `files` small files of 512 B to 16 KiB (the Python script's `small`, default 20 000
/// files there).
pub fn small(dir: &Path, files: u64, seed: u64) -> Result<()> {
    let mut rng = DatasetRng::new(seed);
    small_files(
        dir,
        &mut rng,
        files,
        (512, 16 * KIB),
        &seed.to_string(),
        "small",
    )?;
    Ok(())
}

/// What [`mutate`] changed, paths relative to the dataset root with `/` separators.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Mutation {
    /// Offsets in `large/disk.img` overwritten with 64 KiB of new random bytes.
    pub overwritten: Vec<u64>,
    /// The medium file that got 4 KiB inserted a third of the way in.
    pub inserted: Option<String>,
    /// The medium file that got 1 MiB appended.
    pub appended: Option<String>,
    /// Deleted small files.
    pub deleted: Vec<String>,
    /// New files, under `added/`.
    pub added: Vec<String>,
    /// The small directory renamed, `(from, to)`.
    pub renamed: Option<(String, String)>,
}

/// A realistic day of change, in place (the Python script's `mutate`): overwrite ranges in
/// the large file, insert bytes into a medium file (shifting its content), append to another,
/// delete 1 % of the small files, add as many new ones, rename the first small directory.
pub fn mutate(dir: &Path, seed: u64) -> Result<Mutation> {
    let mut rng = DatasetRng::new(seed.wrapping_add(7919));
    let mut done = Mutation::default();

    let large = dir.join("large").join("disk.img");
    if large.exists() {
        let size = fs::metadata(&large)
            .map_err(io_err("reading", &large))?
            .len();
        let mut file = OpenOptions::new()
            .write(true)
            .open(&large)
            .map_err(io_err("opening", &large))?;
        for k in 0..4 {
            let offset = rng.below(size.saturating_sub(64 * KIB).max(1));
            let data = random_bytes(&format!("mutate/{seed}/large/{k}"), 64 * KIB);
            file.seek(SeekFrom::Start(offset))
                .and_then(|_| file.write_all(&data))
                .map_err(io_err("overwriting", &large))?;
            done.overwritten.push(offset);
        }
    }

    let medium_dir = dir.join("medium");
    if medium_dir.is_dir() {
        let names = sorted_names(&medium_dir)?;
        if !names.is_empty() {
            let name = &names[1 % names.len()];
            insert_third_of_the_way(
                &medium_dir.join(name),
                &random_bytes(&format!("mutate/{seed}/insert"), 4 * KIB),
            )?;
            done.inserted = Some(format!("medium/{name}"));
            let name = &names[2 % names.len()];
            let path = medium_dir.join(name);
            OpenOptions::new()
                .append(true)
                .open(&path)
                .and_then(|mut f| f.write_all(&random_bytes(&format!("mutate/{seed}/append"), MIB)))
                .map_err(io_err("appending to", &path))?;
            done.appended = Some(format!("medium/{name}"));
        }
    }

    let small_dir = dir.join("small");
    let mut files = Vec::new();
    if small_dir.is_dir() {
        walk_files(dir, &small_dir, &mut files)?;
    }
    files.sort();
    for index in rng.sample(files.len(), files.len() / 100) {
        let rel = &files[index];
        let path = dir.join(rel);
        fs::remove_file(&path).map_err(io_err("deleting", &path))?;
        done.deleted.push(rel.clone());
    }
    done.added = small_files(
        dir,
        &mut rng,
        (files.len() as u64 / 100).max(1),
        (KIB, 31 * KIB),
        &format!("mutate-{seed}"),
        "added",
    )?;

    if small_dir.is_dir()
        && let Some(first) = sorted_names(&small_dir)?.into_iter().next()
    {
        let to = format!("{first}-renamed");
        let from_path = small_dir.join(&first);
        fs::rename(&from_path, small_dir.join(&to)).map_err(io_err("renaming", &from_path))?;
        done.renamed = Some((format!("small/{first}"), format!("small/{to}")));
    }
    Ok(done)
}

/// The entry names of `dir`, sorted.
fn sorted_names(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("listing", dir))? {
        let entry = entry.map_err(io_err("listing", dir))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// Rewrites `path` with `insert` placed at a third of its length, streaming through a
/// temporary file next to it.
fn insert_third_of_the_way(path: &Path, insert: &[u8]) -> Result<()> {
    let len = fs::metadata(path).map_err(io_err("reading", path))?.len();
    let cut = len / 3;
    let tmp = path.with_extension("coffer-insert.tmp");
    {
        let mut src = File::open(path).map_err(io_err("opening", path))?;
        create_with(&tmp, |out| {
            io::copy(&mut (&mut src).take(cut), out)?;
            out.write_all(insert)?;
            io::copy(&mut src, out)?;
            Ok(())
        })?;
    }
    fs::rename(&tmp, path).map_err(io_err("replacing", path))
}

/// Collects the files under `dir` as `/`-separated paths relative to `root`. Like Python's
/// `os.walk`, symbolic links to directories are not followed (and not listed); symbolic links
/// to files are listed.
fn walk_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(io_err("listing", dir))? {
        let entry = entry.map_err(io_err("listing", dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(io_err("reading", &path))?;
        if kind.is_dir() {
            walk_files(root, &path, out)?;
        } else if kind.is_symlink() && path.is_dir() {
            // os.walk lists it among directories and does not descend.
        } else {
            out.push(relative(root, &path));
        }
    }
    Ok(())
}

fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The content of one file in a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ManifestEntry {
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// Every file under a directory with its SHA-256 and size, keyed by `/`-separated relative
/// path. Its text form is the Python script's: `sha256 size path` lines sorted by path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    entries: BTreeMap<String, ManifestEntry>,
}

/// The manifest of `dir` (see [`Manifest::of`]).
pub fn manifest(dir: &Path) -> Result<Manifest> {
    Manifest::of(dir)
}

impl Manifest {
    /// Hashes every file under `dir`, streaming each one.
    pub fn of(dir: &Path) -> Result<Self> {
        let mut files = Vec::new();
        walk_files(dir, dir, &mut files)?;
        let mut entries = BTreeMap::new();
        let mut buf = vec![0u8; 1 << 20];
        for rel in files {
            let path = dir.join(&rel);
            let mut file = File::open(&path).map_err(io_err("opening", &path))?;
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            loop {
                let n = file.read(&mut buf).map_err(io_err("reading", &path))?;
                if n == 0 {
                    break;
                }
                Digest::update(&mut hasher, &buf[..n]);
                size += n as u64;
            }
            entries.insert(
                rel,
                ManifestEntry {
                    sha256: hex::encode(hasher.finalize()),
                    size,
                },
            );
        }
        Ok(Self { entries })
    }

    /// Parses the text form (`sha256 size path` per line; blank lines ignored).
    pub fn parse(text: &str) -> Result<Self> {
        let mut entries = BTreeMap::new();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let bad = || HarnessError::ManifestSyntax {
                line: index + 1,
                text: line.to_owned(),
            };
            let mut parts = line.splitn(3, ' ');
            let (Some(sha256), Some(size), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(bad());
            };
            if sha256.len() != 64
                || !sha256.bytes().all(|b| b.is_ascii_hexdigit())
                || path.is_empty()
            {
                return Err(bad());
            }
            let size = size.parse().map_err(|_| bad())?;
            entries.insert(
                path.to_owned(),
                ManifestEntry {
                    sha256: sha256.to_ascii_lowercase(),
                    size,
                },
            );
        }
        Ok(Self { entries })
    }

    /// The entries, sorted by path.
    pub fn entries(&self) -> &BTreeMap<String, ManifestEntry> {
        &self.entries
    }

    /// The entry of `path`, if present.
    pub fn get(&self, path: &str) -> Option<&ManifestEntry> {
        self.entries.get(path)
    }

    /// The number of files.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no files.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The sum of the file sizes.
    pub fn total_bytes(&self) -> u64 {
        self.entries.values().map(|e| e.size).sum()
    }

    /// What changed from `self` to `after`. A file removed from one path and added at another
    /// with identical content is reported as renamed.
    pub fn diff(&self, after: &Manifest) -> ManifestDiff {
        let mut diff = ManifestDiff::default();
        let mut added: Vec<(String, ManifestEntry)> = Vec::new();
        for (path, entry) in &after.entries {
            match self.entries.get(path) {
                None => added.push((path.clone(), entry.clone())),
                Some(before) if before != entry => {
                    diff.changed
                        .push((path.clone(), before.clone(), entry.clone()));
                }
                Some(_) => {}
            }
        }
        // Pair removals with additions of the same content, first come first served.
        let mut by_content: HashMap<&ManifestEntry, Vec<usize>> = HashMap::new();
        for (index, (_, entry)) in added.iter().enumerate().rev() {
            by_content.entry(entry).or_default().push(index);
        }
        let mut taken = vec![false; added.len()];
        for (path, entry) in &self.entries {
            if after.entries.contains_key(path) {
                continue;
            }
            match by_content.get_mut(entry).and_then(Vec::pop) {
                Some(index) => {
                    taken[index] = true;
                    diff.renamed.push((path.clone(), added[index].0.clone()));
                }
                None => diff.removed.push((path.clone(), entry.clone())),
            }
        }
        diff.added = added
            .iter()
            .zip(taken)
            .filter(|(_, taken)| !taken)
            .map(|(item, _)| item.clone())
            .collect();
        diff
    }

    /// `Ok` if `actual` lists exactly the same files with the same contents, else an error
    /// whose message is the diff.
    pub fn ensure_same(&self, actual: &Manifest) -> Result<()> {
        let diff = self.diff(actual);
        if diff.is_empty() {
            Ok(())
        } else {
            Err(HarnessError::ManifestMismatch(Box::new(diff)))
        }
    }
}

impl fmt::Display for Manifest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (path, entry) in &self.entries {
            writeln!(f, "{} {} {path}", entry.sha256, entry.size)?;
        }
        Ok(())
    }
}

/// The differences between two manifests, from "before" to "after".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManifestDiff {
    /// Paths only in "after" (and not explained by a rename).
    pub added: Vec<(String, ManifestEntry)>,
    /// Paths only in "before" (and not explained by a rename).
    pub removed: Vec<(String, ManifestEntry)>,
    /// Paths in both with different content: `(path, before, after)`.
    pub changed: Vec<(String, ManifestEntry, ManifestEntry)>,
    /// Identical content that moved: `(from, to)`.
    pub renamed: Vec<(String, String)>,
}

impl ManifestDiff {
    /// Whether the manifests are identical.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.renamed.is_empty()
    }
}

impl fmt::Display for ManifestDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 20;
        fn more(f: &mut fmt::Formatter<'_>, total: usize) -> fmt::Result {
            if total > SHOWN {
                writeln!(f, "  … and {} more", total - SHOWN)?;
            }
            Ok(())
        }
        let short = |sha: &str| sha.get(..12).unwrap_or(sha).to_owned();
        writeln!(
            f,
            "{} added, {} removed, {} changed, {} renamed",
            self.added.len(),
            self.removed.len(),
            self.changed.len(),
            self.renamed.len()
        )?;
        for (path, before, after) in self.changed.iter().take(SHOWN) {
            writeln!(
                f,
                "~ {path}: {} bytes {} -> {} bytes {}",
                before.size,
                short(&before.sha256),
                after.size,
                short(&after.sha256)
            )?;
        }
        more(f, self.changed.len())?;
        for (path, entry) in self.removed.iter().take(SHOWN) {
            writeln!(
                f,
                "- {path} ({} bytes {})",
                entry.size,
                short(&entry.sha256)
            )?;
        }
        more(f, self.removed.len())?;
        for (path, entry) in self.added.iter().take(SHOWN) {
            writeln!(
                f,
                "+ {path} ({} bytes {})",
                entry.size,
                short(&entry.sha256)
            )?;
        }
        more(f, self.added.len())?;
        for (from, to) in self.renamed.iter().take(SHOWN) {
            writeln!(f, "> {from} -> {to}")?;
        }
        more(f, self.renamed.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_content_matches_the_python_script() {
        // hashlib.shake_128(b"1/large/0").digest(16).hex(): block 0 of tag "1/large".
        assert_eq!(
            hex::encode(random_bytes("1/large", 16)),
            "6c2bf0c4ab145710f9b9008606f233e1"
        );
        assert_eq!(
            hex::encode(random_bytes("mutate-7/added/3", 16)),
            "ab55a3acb68f8d87d48b90036c03d280"
        );
    }

    #[test]
    fn long_random_streams_match_the_python_script() {
        let sha = |data: &[u8]| hex::encode(Sha256::digest(data));
        // hashlib.sha256(hashlib.shake_128(b'1/large/0').digest(200 * 1024)).hexdigest()
        let mut file = Vec::new();
        write_random(&mut file, "1/large", 200 * KIB, 4 * MIB).unwrap();
        assert_eq!(
            sha(&file),
            "12131345412a02d7b645b6edf1599147c56e464aef4d3f513f0e2cbf787e1115"
        );
        // random_bytes("x", 2**20 + 100): two blocks, x/0 and x/1.
        assert_eq!(
            sha(&random_bytes("x", MIB + 100)),
            "86b7a7e8da423f9e04f4606e9d53f75265548257f739a2bab8a616005aea8860"
        );
    }

    #[test]
    fn random_blocks_restart_the_xof() {
        // Block 1 of a 1 MiB-block stream is shake("tag/1"), not the continuation of block 0.
        let two_blocks = random_bytes("t", MIB + 8);
        let mut second = [0u8; 8];
        shake("t", 1).read(&mut second);
        assert_eq!(&two_blocks[1 << 20..], &second);
        let mut four_mib = Vec::new();
        write_random(&mut four_mib, "t", MIB + 8, 4 * MIB).unwrap();
        assert_ne!(&four_mib[1 << 20..], &second, "one 4 MiB block continues");
    }

    #[test]
    fn text_is_numbered_lines_of_the_exact_size() {
        let mut rng = DatasetRng::new(5);
        let mut out = Vec::new();
        write_text(&mut out, &mut rng, 1000).unwrap();
        assert_eq!(out.len(), 1000);
        let text = String::from_utf8(out).unwrap();
        let first = text.lines().next().unwrap();
        assert!(first.starts_with("00000000 "), "{first}");
        assert_eq!(first.split(' ').count(), 10, "{first}");
        assert!(text.lines().nth(1).unwrap().starts_with("00000001 "));
    }

    #[test]
    fn the_generator_is_uniform_enough_and_fixed() {
        let mut a = DatasetRng::new(1);
        let mut b = DatasetRng::new(1);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(DatasetRng::new(2).next_u64(), xs[0]);
        let mut counts = [0u32; 4];
        for _ in 0..4000 {
            counts[usize::try_from(a.below(4)).unwrap()] += 1;
        }
        assert!(
            counts.iter().all(|&c| (850..1150).contains(&c)),
            "{counts:?}"
        );
        let picked = a.sample(100, 10);
        let mut unique = picked.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 10);
        assert!(picked.iter().all(|&i| i < 100));
    }

    #[test]
    fn manifests_round_trip_through_text() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("a/b")).unwrap();
        fs::write(dir.path().join("a/b/x y.txt"), b"hello").unwrap();
        fs::write(dir.path().join("z"), b"").unwrap();
        let m = Manifest::of(dir.path()).unwrap();
        let text = m.to_string();
        assert_eq!(
            text,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824 5 a/b/x y.txt\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 z\n"
        );
        assert_eq!(Manifest::parse(&text).unwrap(), m);
        assert!(matches!(
            Manifest::parse("nothex 1 p"),
            Err(HarnessError::ManifestSyntax { line: 1, .. })
        ));
    }

    #[test]
    fn diffs_name_every_kind_of_change() {
        let entry = |sha: char, size| ManifestEntry {
            sha256: sha.to_string().repeat(64),
            size,
        };
        let mut before = Manifest::default();
        before.entries.insert("same".into(), entry('a', 1));
        before.entries.insert("edited".into(), entry('b', 2));
        before.entries.insert("gone".into(), entry('c', 3));
        before.entries.insert("old/name".into(), entry('d', 4));
        let mut after = Manifest::default();
        after.entries.insert("same".into(), entry('a', 1));
        after.entries.insert("edited".into(), entry('e', 2));
        after.entries.insert("new".into(), entry('f', 5));
        after.entries.insert("new/name".into(), entry('d', 4));
        let diff = before.diff(&after);
        assert_eq!(diff.changed.len(), 1);
        assert_eq!(diff.removed, vec![("gone".to_owned(), entry('c', 3))]);
        assert_eq!(diff.added, vec![("new".to_owned(), entry('f', 5))]);
        assert_eq!(
            diff.renamed,
            vec![("old/name".to_owned(), "new/name".to_owned())]
        );
        let text = before.ensure_same(&after).unwrap_err().to_string();
        assert!(
            text.contains("1 added, 1 removed, 1 changed, 1 renamed"),
            "{text}"
        );
        assert!(
            text.contains("~ edited: 2 bytes bbbbbbbbbbbb -> 2 bytes eeeeeeeeeeee"),
            "{text}"
        );
        assert!(text.contains("> old/name -> new/name"), "{text}");
        assert!(before.ensure_same(&before.clone()).is_ok());
    }
}
