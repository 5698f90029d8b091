//! What a writing operation needs from the single-writer lease, as a trait so that every
//! write path can be handed the lease guard without depending on how the lease is kept.

use async_trait::async_trait;

use crate::Result;

/// Proof that this writer still holds the repository lease.
#[async_trait]
pub trait Fence: Send + Sync {
    /// Fails once writing is no longer safe (lease lost, or it could lapse before a write
    /// finishes). Called before every write.
    fn check(&self) -> Result<()>;

    /// Renews the lease now. Deletes of unreferenced blobs happen only right after this
    /// succeeds, so a writer that was fenced off cannot delete what a new holder references.
    async fn renew_now(&self) -> Result<()>;
}
