//! Running blocking work (file I/O, hashing, compression) off the async workers, with a
//! join failure (a panic in the task) reported as a repository error naming the operation.

use crate::{RepositoryError, Result};

/// The error for a blocking task that did not finish (it panicked or was cancelled).
pub(crate) fn join_error(operation: &'static str, e: &tokio::task::JoinError) -> RepositoryError {
    RepositoryError::Storage {
        operation,
        key: String::new(),
        code: None,
        message: e.to_string(),
        retryable: false,
    }
}

/// Runs `f` on the blocking pool and waits for it.
pub(crate) async fn blocking<T: Send + 'static>(
    operation: &'static str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| join_error(operation, &e))?
}
