//! A store that "dies" after a number of writes: from then on every request fails, as if
//! the process had been killed at that point. Used to prove that no crash point damages an
//! earlier snapshot.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use coffer_repository::clock::{Clock, SystemClock};
use coffer_repository::{BlobStore, ObjectMeta, PutMode, PutResult, RepositoryError};

#[derive(Debug)]
pub struct CrashingStore {
    inner: Arc<dyn BlobStore>,
    /// Writes allowed before the crash; negative once crashed.
    budget: AtomicI64,
}

impl CrashingStore {
    pub fn new(inner: Arc<dyn BlobStore>, writes_before_crash: i64) -> Self {
        Self {
            inner,
            budget: AtomicI64::new(writes_before_crash),
        }
    }

    pub fn crashed(&self) -> bool {
        self.budget.load(Ordering::SeqCst) < 0
    }

    fn dead() -> RepositoryError {
        RepositoryError::Storage {
            operation: "crash",
            key: String::new(),
            code: Some("InjectedCrash".into()),
            message: "the process died here".into(),
            retryable: false,
        }
    }

    fn alive(&self) -> Result<(), RepositoryError> {
        if self.crashed() {
            Err(Self::dead())
        } else {
            Ok(())
        }
    }

    fn write(&self) -> Result<(), RepositoryError> {
        if self.budget.fetch_sub(1, Ordering::SeqCst) <= 0 {
            self.budget.store(-1, Ordering::SeqCst);
            return Err(Self::dead());
        }
        Ok(())
    }
}

#[async_trait]
impl BlobStore for CrashingStore {
    fn location(&self) -> String {
        format!("crashing {}", self.inner.location())
    }
    async fn put(
        &self,
        key: &str,
        data: Bytes,
        mode: PutMode,
    ) -> Result<PutResult, RepositoryError> {
        self.write()?;
        self.inner.put(key, data, mode).await
    }
    async fn get(&self, key: &str) -> Result<(Bytes, ObjectMeta), RepositoryError> {
        self.alive()?;
        self.inner.get(key).await
    }
    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, RepositoryError> {
        self.alive()?;
        self.inner.get_range(key, range).await
    }
    async fn head(&self, key: &str) -> Result<ObjectMeta, RepositoryError> {
        self.alive()?;
        self.inner.head(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, RepositoryError> {
        self.alive()?;
        self.inner.list(prefix).await
    }
    async fn delete_batch(&self, keys: &[String]) -> Result<(), RepositoryError> {
        self.write()?;
        self.inner.delete_batch(keys).await
    }
    async fn remove_incomplete_writes(&self, prefix: &str) -> Result<(u64, u64), RepositoryError> {
        self.write()?;
        self.inner.remove_incomplete_writes(prefix).await
    }
}

/// Wall-clock time shifted by a fixed offset: a "later process" whose clock says the
/// crashed writer's lease has long expired.
#[derive(Debug)]
pub struct Shifted(pub chrono::Duration);

#[async_trait]
impl Clock for Shifted {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        SystemClock.now() + self.0
    }
    async fn sleep(&self, d: std::time::Duration) {
        SystemClock.sleep(d).await;
    }
}
