//! Live counters of a running snapshot or restore, read by `_snapshot/_status` while the
//! operation moves. Lock-free: workers bump atomics, readers take a consistent-enough view.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};

/// Where a shard is, with Elasticsearch's stage names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Stage {
    /// Not started.
    Init = 0,
    /// Reading and uploading.
    Started = 1,
    /// Writing its metadata.
    Finalize = 2,
    /// Stored.
    Done = 3,
    /// Failed.
    Failure = 4,
}

impl Stage {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Started,
            2 => Self::Finalize,
            3 => Self::Done,
            4 => Self::Failure,
            _ => Self::Init,
        }
    }

    /// The name `_status` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Init => "INIT",
            Self::Started => "STARTED",
            Self::Finalize => "FINALIZE",
            Self::Done => "DONE",
            Self::Failure => "FAILURE",
        }
    }
}

/// One shard's counters.
#[derive(Debug, Default)]
pub struct ShardProgress {
    stage: AtomicU8,
    /// Files in the shard.
    pub total_files: AtomicU64,
    /// Their bytes.
    pub total_bytes: AtomicU64,
    /// Files that must be read (new or changed).
    pub incremental_files: AtomicU64,
    /// Their bytes.
    pub incremental_bytes: AtomicU64,
    /// Files read so far.
    pub processed_files: AtomicU64,
    /// Bytes read so far.
    pub processed_bytes: AtomicU64,
    /// Bytes uploaded so far.
    pub uploaded_bytes: AtomicU64,
    /// Start, milliseconds since the epoch.
    pub start_ms: AtomicI64,
    /// End, milliseconds since the epoch (0 while running).
    pub end_ms: AtomicI64,
}

impl ShardProgress {
    /// The current stage.
    pub fn stage(&self) -> Stage {
        Stage::from_u8(self.stage.load(Ordering::Relaxed))
    }

    /// Moves to `stage`.
    pub fn set_stage(&self, stage: Stage) {
        self.stage.store(stage as u8, Ordering::Relaxed);
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Every shard of an operation, by index name and shard number.
#[derive(Debug, Default)]
pub struct Progress {
    shards: std::sync::Mutex<BTreeMap<(String, u32), Arc<ShardProgress>>>,
}

impl Progress {
    /// An empty progress tracker.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The counters of one shard, created on first use.
    pub fn shard(&self, index: &str, shard: u32) -> Arc<ShardProgress> {
        let mut map = self.shards.lock().expect("progress lock");
        Arc::clone(map.entry((index.to_owned(), shard)).or_default())
    }

    /// A copy of the map for reporting.
    pub fn snapshot(&self) -> BTreeMap<(String, u32), Arc<ShardProgress>> {
        self.shards.lock().expect("progress lock").clone()
    }
}
