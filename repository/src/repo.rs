//! A repository: a blob store plus the rules for reading and advancing its root.
//!
//! The root moves from `index-N` to `index-N+1` only by a create-only write, after every
//! blob it references has been written. The caller keeps the generation it expects (in
//! `path.data`) and passes it in; a repository whose newest root is anything else has had
//! another writer, and is reported as such rather than "repaired".

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

use crate::clock::Clock;
use crate::envelope::{self, Kind};
use crate::model::{IndexEntry, RepositoryData, ShardGeneration};
use crate::store::{BlobStore, PutMode};
use crate::{RepositoryError, Result, layout};

/// Which root generation the caller believes is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedGeneration {
    /// First contact with this repository (registration): accept whatever is there.
    Unknown,
    /// The caller saw an empty repository.
    Empty,
    /// The caller saw (or wrote) `index-N`.
    At(u64),
}

impl ExpectedGeneration {
    fn as_i64(self) -> i64 {
        match self {
            Self::Unknown => -2,
            Self::Empty => -1,
            Self::At(n) => i64::try_from(n).unwrap_or(i64::MAX),
        }
    }

    /// What to expect after reading generation `found`.
    pub fn from_found(found: Option<u64>) -> Self {
        found.map_or(Self::Empty, Self::At)
    }
}

/// Settings of a registered repository that the layer itself uses.
#[derive(Debug, Clone)]
pub struct RepositorySettings {
    /// Compress data chunks when it shrinks them (metadata is always compressed).
    pub compress: bool,
    /// Average content-defined chunk size in bytes.
    pub chunk_size: u32,
    /// Target pack size in bytes.
    pub pack_size: u32,
    /// Refuse every write.
    pub readonly: bool,
    /// Upload rate limit, bytes per second (`None`: unlimited).
    pub max_snapshot_bytes_per_sec: Option<u64>,
    /// Download rate limit, bytes per second (`None`: unlimited).
    pub max_restore_bytes_per_sec: Option<u64>,
    /// Requests in flight per operation.
    pub concurrency: usize,
}

impl Default for RepositorySettings {
    fn default() -> Self {
        Self {
            compress: true,
            chunk_size: 1 << 20,
            pack_size: 8 << 20,
            readonly: false,
            max_snapshot_bytes_per_sec: None,
            max_restore_bytes_per_sec: None,
            concurrency: 4,
        }
    }
}

/// A repository handle. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Repository {
    pub(crate) store: Arc<dyn BlobStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) settings: RepositorySettings,
    /// The root last read, shared by the clones of this handle.
    root_cache: Arc<Mutex<Option<CachedRoot>>>,
}

/// A decoded root and the listing entry it was read under. Roots are written create-only
/// and never rewritten, so while the newest `index-N` is listed with the same size and ETag
/// it holds the same bytes, and [`Repository::load`] skips the read and the decode (one LIST
/// instead of LIST, GET and a parse of a document that grows with every snapshot).
/// Elasticsearch keeps its `RepositoryData` in memory the same way.
#[derive(Debug)]
struct CachedRoot {
    generation: u64,
    size: u64,
    etag: String,
    data: RepositoryData,
}

impl Repository {
    /// A handle over `store`.
    pub fn new(
        store: Arc<dyn BlobStore>,
        clock: Arc<dyn Clock>,
        settings: RepositorySettings,
    ) -> Self {
        Self {
            store,
            clock,
            settings,
            root_cache: Arc::new(Mutex::new(None)),
        }
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn BlobStore> {
        &self.store
    }

    /// The clock this repository uses.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The settings.
    pub fn settings(&self) -> &RepositorySettings {
        &self.settings
    }

    /// The newest root generation present, by listing (authoritative; `index.latest` is
    /// only a hint for other readers).
    pub async fn latest_generation(&self) -> Result<Option<u64>> {
        Ok(self.latest_root().await?.map(|(n, _)| n))
    }

    /// The newest root generation listed, with its listing entry.
    async fn latest_root(&self) -> Result<Option<(u64, crate::ObjectMeta)>> {
        let listed = self.store.list(layout::ROOT_PREFIX).await?;
        Ok(listed
            .into_iter()
            .filter_map(|m| layout::parse_root(&m.key).map(|n| (n, m)))
            .max_by_key(|(n, _)| *n))
    }

    /// `index-N` as listed under `meta`: from the cache when the same blob was read before.
    async fn read_listed_root(
        &self,
        generation: u64,
        meta: &crate::ObjectMeta,
    ) -> Result<RepositoryData> {
        let cacheable = !meta.etag.is_empty();
        if cacheable {
            let cache = self
                .root_cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(c) = cache.as_ref()
                && c.generation == generation
                && c.size == meta.size
                && c.etag == meta.etag
            {
                return Ok(c.data.clone());
            }
        }
        let data = self.read_root(generation).await?;
        if cacheable {
            *self
                .root_cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(CachedRoot {
                generation,
                size: meta.size,
                etag: meta.etag.clone(),
                data: data.clone(),
            });
        }
        Ok(data)
    }

    /// Reads and checks `index-N`.
    pub async fn read_root(&self, generation: u64) -> Result<RepositoryData> {
        let key = layout::root(generation);
        let (bytes, _) = self.store.get(&key).await?;
        let data: RepositoryData = envelope::decode(&key, Kind::Root, &bytes)?;
        if data.generation != generation {
            return Err(RepositoryError::corrupted(
                key,
                format!("claims generation {}", data.generation),
            ));
        }
        Ok(data)
    }

    /// The current root, checked against what the caller expects. Returns the generation
    /// found (`None` for an empty repository) and the data (empty for an empty repository).
    pub async fn load(
        &self,
        expected: ExpectedGeneration,
    ) -> Result<(Option<u64>, RepositoryData)> {
        let latest = self.latest_root().await?;
        let found = latest.as_ref().map(|(n, _)| *n);
        let consistent = match expected {
            ExpectedGeneration::Unknown => true,
            ExpectedGeneration::Empty => found.is_none(),
            ExpectedGeneration::At(n) => found == Some(n),
        };
        if !consistent {
            return Err(RepositoryError::ConcurrentModification {
                expected: expected.as_i64(),
                actual: found.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX)),
            });
        }
        match latest {
            None => Ok((None, RepositoryData::default())),
            Some((n, meta)) => Ok((Some(n), self.read_listed_root(n, &meta).await?)),
        }
    }

    /// Publishes `data` as the root after `previous`: a create-only write of
    /// `index-(previous+1)`, then the `index.latest` hint. Losing the create race means
    /// another writer got there first.
    pub async fn write_root(&self, previous: Option<u64>, mut data: RepositoryData) -> Result<u64> {
        if self.settings.readonly {
            return Err(RepositoryError::ReadOnly {
                operation: "write the repository root",
            });
        }
        let next = previous.map_or(0, |n| n + 1);
        data.generation = next;
        if data.uuid.is_empty() {
            data.uuid = uuid::Uuid::new_v4().simple().to_string();
        }
        let bytes = envelope::encode(Kind::Root, &data)?;
        match self
            .store
            .put(&layout::root(next), Bytes::from(bytes), PutMode::Create)
            .await
        {
            Ok(_) => {}
            Err(RepositoryError::AlreadyExists { .. }) => {
                let actual = self.latest_generation().await?;
                return Err(RepositoryError::ConcurrentModification {
                    expected: previous.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX)),
                    actual: actual.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX)),
                });
            }
            Err(e) => return Err(e),
        }
        // Best effort: readers list the roots anyway; a stale hint costs them a listing.
        if let Err(e) = self
            .store
            .put(
                layout::INDEX_LATEST,
                Bytes::copy_from_slice(&next.to_be_bytes()),
                PutMode::Overwrite,
            )
            .await
        {
            tracing::warn!(error = %e, "could not update index.latest");
        }
        Ok(next)
    }

    /// Writes a metadata blob create-only. A blob that already exists with the same key is
    /// accepted only when its bytes are identical (content-addressed blobs, retries).
    pub(crate) async fn put_meta<T: serde::Serialize>(
        &self,
        key: &str,
        kind: Kind,
        value: &T,
    ) -> Result<u64> {
        let bytes = Bytes::from(envelope::encode(kind, value)?);
        let len = bytes.len() as u64;
        match self.store.put(key, bytes.clone(), PutMode::Create).await {
            Ok(_) => Ok(len),
            Err(RepositoryError::AlreadyExists { .. }) => {
                let (existing, _) = self.store.get(key).await?;
                if existing == bytes {
                    Ok(len)
                } else {
                    Err(RepositoryError::corrupted(
                        key,
                        "a different blob already exists under this name",
                    ))
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The current generation of one shard of an index: its id and contents. A shard that a
    /// snapshot references but that has no generation is corruption.
    pub(crate) async fn current_shard_generation(
        &self,
        entry: &IndexEntry,
        shard: u32,
    ) -> Result<(String, ShardGeneration)> {
        let id = entry
            .shard_generations
            .get(shard as usize)
            .cloned()
            .flatten()
            .ok_or_else(|| {
                RepositoryError::corrupted(
                    layout::shard_dir(&entry.id, shard),
                    "no current generation",
                )
            })?;
        let generation = self
            .get_meta(
                &layout::shard_generation(&entry.id, shard, &id),
                Kind::ShardGeneration,
            )
            .await?;
        Ok((id, generation))
    }

    /// Reads and decodes a metadata blob.
    pub(crate) async fn get_meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        kind: Kind,
    ) -> Result<T> {
        let (bytes, _) = self.store.get(key).await?;
        envelope::decode(key, kind, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::store::MemoryBlobStore;

    fn repo() -> Repository {
        Repository::new(
            Arc::new(MemoryBlobStore::new()),
            Arc::new(ManualClock::new(chrono::DateTime::UNIX_EPOCH)),
            RepositorySettings::default(),
        )
    }

    #[tokio::test]
    async fn generations_advance_and_foreign_writers_are_detected() {
        let r = repo();
        let (generation, data) = r.load(ExpectedGeneration::Empty).await.unwrap();
        assert_eq!(generation, None);
        let g0 = r.write_root(generation, data.clone()).await.unwrap();
        assert_eq!(g0, 0);
        let (generation, loaded) = r.load(ExpectedGeneration::At(0)).await.unwrap();
        assert_eq!(generation, Some(0));
        assert!(!loaded.uuid.is_empty());
        let g1 = r.write_root(Some(0), loaded.clone()).await.unwrap();
        assert_eq!(g1, 1);
        // A writer still believing in generation 0 loses, and is told both numbers.
        let err = r.write_root(Some(0), loaded).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "concurrent modification of the index-N file, expected current generation [0], actual current generation [1]"
        );
        let err = r.load(ExpectedGeneration::At(0)).await.unwrap_err();
        assert!(matches!(
            err,
            RepositoryError::ConcurrentModification {
                expected: 0,
                actual: 1
            }
        ));
        let err = r.load(ExpectedGeneration::Empty).await.unwrap_err();
        assert!(matches!(
            err,
            RepositoryError::ConcurrentModification {
                expected: -1,
                actual: 1
            }
        ));
        let (bytes, _) = r.store.get(layout::INDEX_LATEST).await.unwrap();
        assert_eq!(bytes.as_ref(), &1u64.to_be_bytes());
    }

    #[tokio::test]
    async fn a_root_under_the_wrong_name_is_corruption() {
        let r = repo();
        let data = RepositoryData {
            generation: 7,
            ..Default::default()
        };
        let bytes = envelope::encode(Kind::Root, &data).unwrap();
        r.store
            .put("index-3", Bytes::from(bytes), PutMode::Overwrite)
            .await
            .unwrap();
        assert!(matches!(
            r.read_root(3).await,
            Err(RepositoryError::Corrupted { .. })
        ));
    }

    #[tokio::test]
    async fn the_cached_root_is_served_only_while_the_listing_is_unchanged() {
        let r = repo();
        let g0 = r.write_root(None, RepositoryData::default()).await.unwrap();
        let (_, first) = r.load(ExpectedGeneration::At(g0)).await.unwrap();
        assert!(
            r.root_cache.lock().unwrap().is_some(),
            "the root read is cached"
        );
        let (_, again) = r.load(ExpectedGeneration::At(g0)).await.unwrap();
        assert_eq!(again, first);
        // Rewritten under the same name (never done by coffer; a foreign tool could): the
        // listing's size and ETag change, so the new bytes are read.
        let changed = RepositoryData {
            uuid: "someone-else".into(),
            generation: g0,
            ..Default::default()
        };
        let bytes = envelope::encode(Kind::Root, &changed).unwrap();
        r.store
            .put(&layout::root(g0), Bytes::from(bytes), PutMode::Overwrite)
            .await
            .unwrap();
        let (_, reread) = r.load(ExpectedGeneration::At(g0)).await.unwrap();
        assert_eq!(reread.uuid, "someone-else");
        // A newer generation is read, not served from the cache.
        let g1 = r.write_root(Some(g0), reread).await.unwrap();
        let (found, newest) = r.load(ExpectedGeneration::At(g1)).await.unwrap();
        assert_eq!((found, newest.generation), (Some(g1), g1));
    }

    #[tokio::test]
    async fn readonly_never_writes() {
        let mut r = repo();
        r.settings.readonly = true;
        assert!(matches!(
            r.write_root(None, RepositoryData::default()).await,
            Err(RepositoryError::ReadOnly { .. })
        ));
    }
}
