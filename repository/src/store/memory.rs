//! An in-memory store for unit tests. It can be told to ignore conditional writes, as some
//! S3 servers do, so the lease's fallback path is testable without one.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;

use super::{BlobStore, ObjectMeta, PutMode, PutResult, content_etag, validate_key};
use crate::{RepositoryError, Result};

/// Objects in a `BTreeMap` behind a mutex; conditional writes are atomic under that mutex.
#[derive(Debug, Default)]
pub struct MemoryBlobStore {
    objects: Mutex<BTreeMap<String, Bytes>>,
    ignore_conditions: AtomicBool,
    puts: AtomicU64,
}

impl MemoryBlobStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes conditional writes behave like plain overwrites (Garage 2.5 does this).
    pub fn set_ignore_conditions(&self, ignore: bool) {
        self.ignore_conditions.store(ignore, Ordering::SeqCst);
    }

    /// An independent copy of every object, as if the storage were snapshotted: crash tests
    /// replay one operation many times from the same starting state.
    #[must_use]
    pub fn duplicate(&self) -> Self {
        let objects = self.objects.lock().expect("memory store lock").clone();
        Self {
            objects: Mutex::new(objects),
            ignore_conditions: AtomicBool::new(self.ignore_conditions.load(Ordering::SeqCst)),
            puts: AtomicU64::new(0),
        }
    }

    /// How many puts succeeded so far.
    pub fn put_count(&self) -> u64 {
        self.puts.load(Ordering::SeqCst)
    }

    /// Replaces an object's bytes behind the repository's back, for corruption tests.
    pub fn tamper(&self, key: &str, f: impl FnOnce(&mut Vec<u8>)) {
        let mut objects = self.objects.lock().expect("memory store lock");
        if let Some(b) = objects.get_mut(key) {
            let mut v = b.to_vec();
            f(&mut v);
            *b = Bytes::from(v);
        }
    }

    fn meta(key: &str, data: &Bytes) -> ObjectMeta {
        ObjectMeta {
            key: key.to_owned(),
            size: data.len() as u64,
            etag: content_etag(data),
        }
    }
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    fn location(&self) -> String {
        "memory".to_owned()
    }

    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<PutResult> {
        validate_key(key)?;
        let mut objects = self.objects.lock().expect("memory store lock");
        if !self.ignore_conditions.load(Ordering::SeqCst) {
            match (&mode, objects.get(key)) {
                (PutMode::Create, Some(_)) => {
                    return Err(RepositoryError::AlreadyExists {
                        key: key.to_owned(),
                    });
                }
                (PutMode::Update(etag), Some(cur)) if content_etag(cur) != *etag => {
                    return Err(RepositoryError::PreconditionFailed {
                        key: key.to_owned(),
                    });
                }
                (PutMode::Update(_), None) => {
                    return Err(RepositoryError::PreconditionFailed {
                        key: key.to_owned(),
                    });
                }
                _ => {}
            }
        }
        let etag = content_etag(&data);
        objects.insert(key.to_owned(), data);
        self.puts.fetch_add(1, Ordering::SeqCst);
        Ok(PutResult { etag })
    }

    async fn get(&self, key: &str) -> Result<(Bytes, ObjectMeta)> {
        // Every key is checked as the fs and S3 stores check it, so a test on this store
        // sees the same refusals (a `..` in a key from crafted metadata).
        validate_key(key)?;
        let objects = self.objects.lock().expect("memory store lock");
        let data = objects.get(key).ok_or_else(|| RepositoryError::NotFound {
            key: key.to_owned(),
        })?;
        Ok((data.clone(), Self::meta(key, data)))
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        let (data, _) = self.get(key).await?;
        let (start, end) = (usize::try_from(range.start), usize::try_from(range.end));
        match (start, end) {
            (Ok(s), Ok(e)) if s <= e && e <= data.len() => Ok(data.slice(s..e)),
            _ => Err(RepositoryError::Storage {
                operation: "get_range",
                key: key.to_owned(),
                code: Some("InvalidRange".to_owned()),
                message: format!("range {range:?} outside object of {} bytes", data.len()),
                retryable: false,
            }),
        }
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        self.get(key).await.map(|(_, m)| m)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let objects = self.objects.lock().expect("memory store lock");
        Ok(objects
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| Self::meta(k, v))
            .collect())
    }

    async fn delete_batch(&self, keys: &[String]) -> Result<()> {
        for k in keys {
            validate_key(k)?;
        }
        let mut objects = self.objects.lock().expect("memory store lock");
        for k in keys {
            objects.remove(k);
        }
        Ok(())
    }

    async fn remove_incomplete_writes(&self, _prefix: &str) -> Result<(u64, u64)> {
        // Memory writes are all-or-nothing; nothing is ever left half-written.
        Ok((0, 0))
    }
}
