//! The single-writer lease: acquisition, renewal, fencing, takeover and release, on the
//! conditional path (strict memory and fs stores) and the fallback path (a memory store that
//! ignores conditional writes, as Garage 2.5 does).
//!
//! Time is virtual. Tests that need the background renewal to run on schedule use tokio's
//! paused clock through [`PausedClock`] (sleeps complete instantly, in deadline order, when
//! every task is idle); tests that need a frozen process use `ManualClock`, which only moves
//! when told to.
#![allow(clippy::disallowed_methods)] // the paused test clock wraps tokio's virtual time

use std::collections::HashSet;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use coffer_repository::clock::{Clock, ManualClock};
use coffer_repository::envelope::{self, Kind};
use coffer_repository::layout;
use coffer_repository::lease::{
    Lease, LeaseConfig, LeaseGuard, LeaseMode, LeaseOwner, LeaseRecord,
};
use coffer_repository::store::{FsBlobStore, MemoryBlobStore};
use coffer_repository::{
    BlobStore, Capabilities, ObjectMeta, PutMode, PutResult, RepositoryError, Result,
};

const STRICT: Capabilities = Capabilities {
    conditional_create: true,
    conditional_update: true,
};
const LAX: Capabilities = Capabilities {
    conditional_create: false,
    conditional_update: false,
};

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 8, 0, 0).unwrap()
}

fn owner(node: &str, operation: &str) -> LeaseOwner {
    LeaseOwner {
        node_name: node.to_owned(),
        node_id: format!("{node}-id"),
        pid: 4242,
        repository_uuid: "repo-uuid".to_owned(),
        operation: operation.to_owned(),
    }
}

fn cfg() -> LeaseConfig {
    LeaseConfig::default()
}

/// Wall-clock time derived from tokio's (paused) clock, so that background renewals fire at
/// their virtual deadlines and a test's `sleep` lets them run.
#[derive(Debug, Clone)]
struct PausedClock {
    base: DateTime<Utc>,
    origin: tokio::time::Instant,
}

impl PausedClock {
    fn new() -> Self {
        Self {
            base: start(),
            origin: tokio::time::Instant::now(),
        }
    }
}

#[async_trait]
impl Clock for PausedClock {
    fn now(&self) -> DateTime<Utc> {
        self.base + chrono::Duration::from_std(tokio::time::Instant::now() - self.origin).unwrap()
    }

    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }
}

/// Time that moves only when the test advances it, and sleeps that never end: background
/// renewals never fire. For tests with real threads or real I/O, where `ManualClock`'s
/// self-advancing sleep would let a renewal task race the clock forward.
#[derive(Debug, Clone)]
struct StillClock(ManualClock);

impl StillClock {
    fn new() -> Self {
        Self(ManualClock::new(start()))
    }
}

#[async_trait]
impl Clock for StillClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.now()
    }

    async fn sleep(&self, d: Duration) {
        if !d.is_zero() {
            std::future::pending::<()>().await;
        }
    }
}

async fn virtual_sleep(d: Duration) {
    tokio::time::sleep(d).await;
}

/// A store wrapper that can freeze (every call waits, like a partitioned or suspended
/// process), fail puts, or hold two callers at a rendezvous before a chosen kind of call.
#[derive(Debug)]
struct Wrapper {
    inner: Arc<dyn BlobStore>,
    frozen: AtomicBool,
    failing_puts: AtomicU32,
    unfrozen: tokio::sync::Notify,
    rendezvous: Mutex<Option<(Rendezvous, Arc<tokio::sync::Barrier>)>>,
    after_list: Mutex<Option<Arc<tokio::sync::Barrier>>>,
    after_get: Mutex<Option<Arc<tokio::sync::Barrier>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rendezvous {
    /// Before a conditional update of the lease object (takeover).
    BeforeUpdate,
    /// Just before and just after a fallback lock object is written, and after the listing
    /// and the read that follow: both contenders have scanned before either writes, both
    /// have written before either scans again, and both have read the other's lock object
    /// before either acts on what it saw.
    AroundLockWrite,
}

impl Wrapper {
    fn new(inner: Arc<dyn BlobStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            frozen: AtomicBool::new(false),
            failing_puts: AtomicU32::new(0),
            unfrozen: tokio::sync::Notify::new(),
            rendezvous: Mutex::new(None),
            after_list: Mutex::new(None),
            after_get: Mutex::new(None),
        })
    }

    fn freeze(&self, on: bool) {
        self.frozen.store(on, Ordering::SeqCst);
        if !on {
            self.unfrozen.notify_waiters();
        }
    }

    fn fail_puts(&self, n: u32) {
        self.failing_puts.store(n, Ordering::SeqCst);
    }

    fn meet(&self, at: Rendezvous, barrier: &Arc<tokio::sync::Barrier>) {
        *self.rendezvous.lock().unwrap() = Some((at, Arc::clone(barrier)));
    }

    async fn gate(&self) {
        while self.frozen.load(Ordering::SeqCst) {
            let notified = self.unfrozen.notified();
            if !self.frozen.load(Ordering::SeqCst) {
                break;
            }
            notified.await;
        }
    }

    /// Disarms and returns the barrier if `at` is the armed rendezvous.
    fn armed(&self, at: Rendezvous) -> Option<Arc<tokio::sync::Barrier>> {
        let mut r = self.rendezvous.lock().unwrap();
        match r.as_ref() {
            Some((armed, _)) if *armed == at => r.take().map(|(_, b)| b),
            _ => None,
        }
    }

    /// Waits at the barrier once, if `at` is the armed rendezvous.
    async fn maybe_meet(&self, at: Rendezvous) {
        if let Some(b) = self.armed(at) {
            b.wait().await;
        }
    }
}

#[async_trait]
impl BlobStore for Wrapper {
    fn location(&self) -> String {
        self.inner.location()
    }

    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<PutResult> {
        self.gate().await;
        if self.failing_puts.load(Ordering::SeqCst) > 0 {
            self.failing_puts.fetch_sub(1, Ordering::SeqCst);
            return Err(RepositoryError::Storage {
                operation: "put",
                key: key.to_owned(),
                code: Some("InternalError".to_owned()),
                message: "We encountered an internal error. Please try again.".to_owned(),
                retryable: true,
            });
        }
        if matches!(mode, PutMode::Update(_)) {
            self.maybe_meet(Rendezvous::BeforeUpdate).await;
        }
        let lock_write = key.starts_with(layout::FALLBACK_LEASE_PREFIX);
        let around = if lock_write {
            self.armed(Rendezvous::AroundLockWrite)
        } else {
            None
        };
        if let Some(b) = &around {
            b.wait().await;
        }
        let r = self.inner.put(key, data, mode).await?;
        if let Some(b) = around {
            b.wait().await;
            *self.after_list.lock().unwrap() = Some(b);
        }
        Ok(r)
    }

    async fn get(&self, key: &str) -> Result<(Bytes, ObjectMeta)> {
        self.gate().await;
        let got = self.inner.get(key).await;
        if key.starts_with(layout::FALLBACK_LEASE_PREFIX) {
            let armed = self.after_get.lock().unwrap().take();
            if let Some(b) = armed {
                b.wait().await;
            }
        }
        got
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        self.gate().await;
        self.inner.get_range(key, range).await
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        self.gate().await;
        self.inner.head(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        self.gate().await;
        let listed = self.inner.list(prefix).await?;
        if prefix == layout::FALLBACK_LEASE_PREFIX {
            let armed = self.after_list.lock().unwrap().take();
            if let Some(b) = armed {
                b.wait().await;
                *self.after_get.lock().unwrap() = Some(b);
            }
        }
        Ok(listed)
    }

    async fn delete_batch(&self, keys: &[String]) -> Result<()> {
        self.gate().await;
        self.inner.delete_batch(keys).await
    }

    async fn remove_incomplete_writes(&self, prefix: &str) -> Result<(u64, u64)> {
        self.inner.remove_incomplete_writes(prefix).await
    }
}

/// Awaits a spawned contender, failing loudly instead of hanging if the protocol deadlocks.
async fn bounded<T>(h: tokio::task::JoinHandle<T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), h)
        .await
        .expect("contender did not finish within 60 s")
        .unwrap()
}

async fn stored_lease(store: &dyn BlobStore, key: &str) -> Option<LeaseRecord> {
    match store.get(key).await {
        Ok((b, _)) => Some(envelope::decode(key, Kind::Lease, &b).unwrap()),
        Err(RepositoryError::NotFound { .. }) => None,
        Err(e) => panic!("{e}"),
    }
}

fn expect_locked(r: Result<LeaseGuard>) -> RepositoryError {
    match r {
        Err(e @ RepositoryError::Locked { .. }) => e,
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(g) => panic!("expected Locked, got a lease with token {}", g.token()),
    }
}

fn expect_lost<T: std::fmt::Debug>(r: Result<T>) -> String {
    match r {
        Err(RepositoryError::LeaseLost { reason }) => reason,
        other => panic!("expected LeaseLost, got {other:?}"),
    }
}

async fn acquire(
    store: &Arc<dyn BlobStore>,
    caps: Capabilities,
    clock: &Arc<dyn Clock>,
    node: &str,
) -> Result<LeaseGuard> {
    Lease::acquire(
        Arc::clone(store),
        caps,
        Arc::clone(clock),
        owner(node, "snapshot [nightly]"),
        cfg(),
    )
    .await
}

// ---------------------------------------------------------------------------------------
// Conditional path
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn acquire_renew_release_on_a_strict_store() {
    let mem = Arc::new(MemoryBlobStore::new());
    let store: Arc<dyn BlobStore> = mem.clone();
    let clock: Arc<dyn Clock> = Arc::new(PausedClock::new());

    let a = acquire(&store, STRICT, &clock, "node-a").await.unwrap();
    assert_eq!(a.mode(), LeaseMode::Conditional);
    assert_eq!(a.key(), layout::LEASE);
    let first = a.record();
    assert_eq!(first.expires_at, start() + chrono::Duration::seconds(60));
    assert_eq!(
        stored_lease(store.as_ref(), layout::LEASE).await.unwrap(),
        first
    );

    // Five virtual minutes: the background task renews every 15 s.
    let puts_before = mem.put_count();
    virtual_sleep(Duration::from_secs(307)).await;
    a.check().unwrap();
    let renewed = a.record();
    assert_eq!(renewed.token, first.token, "renewal keeps the token");
    assert_eq!(renewed.acquired_at, first.acquired_at);
    assert!(
        renewed.expires_at >= start() + chrono::Duration::seconds(345),
        "{}",
        renewed.expires_at
    );
    assert_eq!(mem.put_count() - puts_before, 20, "one renewal per 15 s");
    assert_eq!(
        stored_lease(store.as_ref(), layout::LEASE).await.unwrap(),
        renewed
    );

    // A second writer is refused while the first renews.
    let err = expect_locked(acquire(&store, STRICT, &clock, "node-b").await);
    assert!(err.to_string().contains("node-a (node-a-id)"), "{err}");

    a.renew_now().await.unwrap();
    let token_a = a.token();
    a.release().await.unwrap();
    assert!(
        stored_lease(store.as_ref(), layout::LEASE).await.is_none(),
        "release deletes the lease"
    );

    let b = acquire(&store, STRICT, &clock, "node-b").await.unwrap();
    assert!(
        b.token() > token_a,
        "tokens grow across a release: {} then {}",
        token_a,
        b.token()
    );
    b.release().await.unwrap();
}

#[tokio::test]
async fn the_loser_is_told_who_holds_the_lease_and_until_when() {
    let store: Arc<dyn BlobStore> = Arc::new(MemoryBlobStore::new());
    let manual = ManualClock::new(start());
    let clock: Arc<dyn Clock> = Arc::new(manual.clone());
    let _a = Lease::acquire(
        Arc::clone(&store),
        STRICT,
        Arc::clone(&clock),
        owner("node-a", "snapshot [nightly-1]"),
        cfg(),
    )
    .await
    .unwrap();
    manual.advance(Duration::from_secs(5));
    let err = expect_locked(acquire(&store, STRICT, &clock, "node-b").await);
    assert_eq!(
        err.to_string(),
        "repository is locked by [node-a (node-a-id)] for [snapshot [nightly-1]] since [2026-11-24T08:00:00.000Z]; \
         lease expires at [2026-11-24T08:01:00.000Z]"
    );
    match err {
        RepositoryError::Locked {
            node,
            operation,
            since,
            expires,
        } => {
            assert_eq!(node, "node-a (node-a-id)");
            assert_eq!(operation, "snapshot [nightly-1]");
            assert_eq!(since, "2026-11-24T08:00:00.000Z");
            assert_eq!(expires, "2026-11-24T08:01:00.000Z");
        }
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_only_after_the_skew_margin() {
    let store: Arc<dyn BlobStore> = Arc::new(MemoryBlobStore::new());
    let manual = ManualClock::new(start());
    let clock: Arc<dyn Clock> = Arc::new(manual.clone());
    let a = acquire(&store, STRICT, &clock, "node-a").await.unwrap();
    let token_a = a.token();
    // A crash: no release, no more renewals.
    drop(a);

    manual.advance(Duration::from_secs(60)); // expired, but within the skew margin
    expect_locked(acquire(&store, STRICT, &clock, "node-b").await);
    manual.advance(Duration::from_secs(30)); // exactly expiry + skew: still not stale
    expect_locked(acquire(&store, STRICT, &clock, "node-b").await);
    manual.advance(Duration::from_millis(1));
    let b = acquire(&store, STRICT, &clock, "node-b").await.unwrap();
    assert!(b.token() > token_a);
    let stored = stored_lease(store.as_ref(), layout::LEASE).await.unwrap();
    assert_eq!(stored.node_name, "node-b");
    assert_eq!(stored.token, b.token());
    assert_eq!(stored.acquired_at, manual.now());
    b.release().await.unwrap();
}

/// Two contenders read the same expired lease, then both try to take it over with a put
/// conditional on its ETag: exactly one succeeds, the other reports the winner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_takeovers_exactly_one_wins() {
    let mem: Arc<dyn BlobStore> = Arc::new(MemoryBlobStore::new());
    let still = StillClock::new();
    let clock: Arc<dyn Clock> = Arc::new(still.clone());
    drop(acquire(&mem, STRICT, &clock, "node-a").await.unwrap());
    still.0.advance(Duration::from_secs(120));

    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let (wb, wc) = (
        Wrapper::new(Arc::clone(&mem)),
        Wrapper::new(Arc::clone(&mem)),
    );
    wb.meet(Rendezvous::BeforeUpdate, &barrier);
    wc.meet(Rendezvous::BeforeUpdate, &barrier);
    let (sb, sc): (Arc<dyn BlobStore>, Arc<dyn BlobStore>) = (wb, wc);
    let (cb, cc) = (Arc::clone(&clock), Arc::clone(&clock));
    let hb = tokio::spawn(async move { acquire(&sb, STRICT, &cb, "node-b").await });
    let hc = tokio::spawn(async move { acquire(&sc, STRICT, &cc, "node-c").await });
    let (rb, rc) = (bounded(hb).await, bounded(hc).await);

    let (winner, loser) = match (rb, rc) {
        (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
        (Ok(_), Ok(_)) => panic!("both contenders won"),
        (Err(b), Err(c)) => panic!("both lost: {b} / {c}"),
    };
    let holder = winner.record().node_name;
    assert!(
        matches!(loser, RepositoryError::Locked { ref node, .. } if node.starts_with(&holder)),
        "{loser}"
    );
    assert_eq!(
        stored_lease(mem.as_ref(), layout::LEASE)
            .await
            .unwrap()
            .node_name,
        holder
    );
    winner.release().await.unwrap();
}

/// The same race on a real directory, with real threads and no rendezvous, many times.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_acquisitions_on_fs_never_both_win() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn BlobStore> = Arc::new(FsBlobStore::open(dir.path().join("repo")).unwrap());
    let still = StillClock::new();
    let clock: Arc<dyn Clock> = Arc::new(still.clone());
    for round in 0..20 {
        // Every other round starts from an expired lease, so the takeover path races too.
        if round % 2 == 1 {
            drop(acquire(&store, STRICT, &clock, "crashed").await.unwrap());
            still.0.advance(Duration::from_secs(91));
        }
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let (s, c) = (Arc::clone(&store), Arc::clone(&clock));
                tokio::spawn(async move { acquire(&s, STRICT, &c, &format!("node-{i}")).await })
            })
            .collect();
        let mut winners = Vec::new();
        for h in handles {
            match bounded(h).await {
                Ok(g) => winners.push(g),
                Err(RepositoryError::Locked { .. }) => {}
                Err(e) => panic!("round {round}: {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one winner");
        let w = winners.pop().unwrap();
        assert_eq!(
            stored_lease(store.as_ref(), layout::LEASE)
                .await
                .unwrap()
                .holder,
            w.record().holder
        );
        w.release().await.unwrap();
        assert!(stored_lease(store.as_ref(), layout::LEASE).await.is_none());
    }
}

/// A writer whose process froze (or whose clock lagged) resumes after another took the
/// lease over: its renewal is refused, it stops writing, and its release leaves the new
/// holder's lease alone.
#[tokio::test]
async fn a_stale_writer_resuming_after_takeover_is_fenced_off() {
    let store: Arc<dyn BlobStore> = Arc::new(MemoryBlobStore::new());
    // A's clock lags far behind (the worst case: it does not notice its own expiry).
    let clock_a: Arc<dyn Clock> = Arc::new(ManualClock::new(start()));
    let manual_b = ManualClock::new(start());
    let clock_b: Arc<dyn Clock> = Arc::new(manual_b.clone());
    let a = acquire(&store, STRICT, &clock_a, "node-a").await.unwrap();
    manual_b.advance(Duration::from_secs(600));
    let b = acquire(&store, STRICT, &clock_b, "node-b").await.unwrap();
    assert!(b.token() > a.token());

    a.check().unwrap(); // its own clock says all is well …
    let reason = expect_lost(a.renew_now().await); // … but the conditional renewal is refused
    assert!(
        reason.contains("taken over by [node-b (node-b-id)]"),
        "{reason}"
    );
    expect_lost(a.check());
    let fence = a.fence();
    expect_lost(fence.check());
    expect_lost(a.release().await);

    let stored = stored_lease(store.as_ref(), layout::LEASE).await.unwrap();
    assert_eq!(
        stored.node_name, "node-b",
        "the stale writer did not delete the new lease"
    );
    b.check().unwrap();
    b.renew_now().await.unwrap();
    b.release().await.unwrap();
}

/// A partitioned writer cannot reach the store: it stops writing before its lease could
/// lapse, a contender takes over only after expiry plus skew, and when the partition heals
/// the stale writer can neither renew nor release.
#[tokio::test(start_paused = true)]
async fn a_partitioned_writer_stops_before_the_lease_lapses() {
    let mem: Arc<dyn BlobStore> = Arc::new(MemoryBlobStore::new());
    let clock: Arc<dyn Clock> = Arc::new(PausedClock::new());
    let wa = Wrapper::new(Arc::clone(&mem));
    let sa: Arc<dyn BlobStore> = wa.clone();
    let a = acquire(&sa, STRICT, &clock, "node-a").await.unwrap();
    virtual_sleep(Duration::from_secs(20)).await; // one renewal at 15 s: expires at 75 s
    let expires = a.expires_at();
    assert_eq!(expires, start() + chrono::Duration::seconds(75));

    wa.freeze(true);
    virtual_sleep(Duration::from_secs(39)).await; // t = 59 s: 75 - 15 = 60 is the stop line
    a.check().unwrap();
    virtual_sleep(Duration::from_secs(1)).await; // t = 60 s
    let reason = expect_lost(a.check());
    assert!(reason.contains("could not be renewed in time"), "{reason}");

    // node-b waits for expiry (75 s) plus skew (30 s).
    virtual_sleep(Duration::from_secs(44)).await; // t = 104 s
    expect_locked(acquire(&mem, STRICT, &clock, "node-b").await);
    virtual_sleep(Duration::from_secs(2)).await; // t = 106 s
    let b = acquire(&mem, STRICT, &clock, "node-b").await.unwrap();

    wa.freeze(false);
    virtual_sleep(Duration::from_secs(1)).await;
    expect_lost(a.renew_now().await);
    expect_lost(a.release().await);
    assert_eq!(
        stored_lease(mem.as_ref(), layout::LEASE)
            .await
            .unwrap()
            .holder,
        b.record().holder
    );
    b.release().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn renewal_retries_through_storage_errors_and_gives_up_before_the_lapse() {
    let mem: Arc<dyn BlobStore> = Arc::new(MemoryBlobStore::new());
    let clock: Arc<dyn Clock> = Arc::new(PausedClock::new());
    let w = Wrapper::new(Arc::clone(&mem));
    let s: Arc<dyn BlobStore> = w.clone();
    let a = acquire(&s, STRICT, &clock, "node-a").await.unwrap();

    // Two failures, then the retry (every 3.75 s) succeeds: the lease survives.
    w.fail_puts(2);
    virtual_sleep(Duration::from_secs(30)).await;
    a.check().unwrap();
    assert!(
        a.expires_at() > start() + chrono::Duration::seconds(80),
        "{}",
        a.expires_at()
    );

    // From now on every put fails: the writer stops at expiry - safety margin.
    w.fail_puts(u32::MAX);
    let expires = a.expires_at();
    let stop = expires - chrono::Duration::seconds(15);
    while clock.now() + chrono::Duration::milliseconds(500) < stop {
        a.check().unwrap();
        virtual_sleep(Duration::from_millis(500)).await;
    }
    virtual_sleep(Duration::from_secs(1)).await;
    expect_lost(a.check());
    // The store recovers, but a writer never resumes after a gap.
    w.fail_puts(0);
    expect_lost(a.renew_now().await);
    expect_lost(a.check());
}

#[tokio::test(start_paused = true)]
async fn renew_now_concurrent_with_the_background_renewal_is_not_a_loss() {
    let store: Arc<dyn BlobStore> = Arc::new(MemoryBlobStore::new());
    let clock: Arc<dyn Clock> = Arc::new(PausedClock::new());
    let a = Arc::new(acquire(&store, STRICT, &clock, "node-a").await.unwrap());
    for _ in 0..5 {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let a = Arc::clone(&a);
                tokio::spawn(async move { a.renew_now().await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        virtual_sleep(Duration::from_secs(15)).await;
    }
    a.check().unwrap();
    Arc::into_inner(a).unwrap().release().await.unwrap();
}

/// An earlier renewal that failed from our side but landed on the store leaves us with a
/// stale ETag; the next renewal notices the lease is still ours and carries on.
#[tokio::test]
async fn a_renewal_that_landed_despite_an_error_is_adopted() {
    let store: Arc<dyn BlobStore> = Arc::new(MemoryBlobStore::new());
    let manual = ManualClock::new(start());
    let clock: Arc<dyn Clock> = Arc::new(manual.clone());
    let a = acquire(&store, STRICT, &clock, "node-a").await.unwrap();
    // Someone (our own lost write, in effect) rewrites our record with a new expiry.
    let mut rec = stored_lease(store.as_ref(), layout::LEASE).await.unwrap();
    rec.expires_at += chrono::Duration::seconds(5);
    store
        .put(
            layout::LEASE,
            Bytes::from(envelope::encode(Kind::Lease, &rec).unwrap()),
            PutMode::Overwrite,
        )
        .await
        .unwrap();
    manual.advance(Duration::from_secs(10));
    a.renew_now().await.unwrap();
    assert_eq!(
        stored_lease(store.as_ref(), layout::LEASE).await.unwrap(),
        a.record()
    );
    a.release().await.unwrap();
}

#[tokio::test]
async fn a_deleted_lease_is_lost_and_a_corrupted_one_is_not_overwritten() {
    let mem = Arc::new(MemoryBlobStore::new());
    let store: Arc<dyn BlobStore> = mem.clone();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(start()));
    let a = acquire(&store, STRICT, &clock, "node-a").await.unwrap();
    store
        .delete_batch(&[layout::LEASE.to_owned()])
        .await
        .unwrap();
    let reason = expect_lost(a.renew_now().await);
    assert!(reason.contains("deleted"), "{reason}");
    drop(a);

    store
        .put(
            layout::LEASE,
            Bytes::from_static(b"garbage"),
            PutMode::Overwrite,
        )
        .await
        .unwrap();
    let err = acquire(&store, STRICT, &clock, "node-b").await.unwrap_err();
    assert!(matches!(err, RepositoryError::Corrupted { .. }), "{err}");
    assert_eq!(
        store.get(layout::LEASE).await.unwrap().0,
        Bytes::from_static(b"garbage")
    );
}

#[tokio::test]
async fn fs_store_acquire_renew_release() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn BlobStore> = Arc::new(FsBlobStore::open(dir.path().join("repo")).unwrap());
    let still = StillClock::new();
    let clock: Arc<dyn Clock> = Arc::new(still.clone());
    let a = acquire(&store, STRICT, &clock, "node-a").await.unwrap();
    expect_locked(acquire(&store, STRICT, &clock, "node-b").await);
    still.0.advance(Duration::from_secs(10));
    a.renew_now().await.unwrap();
    assert_eq!(
        stored_lease(store.as_ref(), layout::LEASE).await.unwrap(),
        a.record()
    );
    a.release().await.unwrap();
    assert!(!dir.path().join("repo").join(layout::LEASE).exists());
    acquire(&store, STRICT, &clock, "node-b")
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_live_fallback_lock_also_blocks_the_conditional_path() {
    let mem = Arc::new(MemoryBlobStore::new());
    let store: Arc<dyn BlobStore> = mem.clone();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(start()));
    let a = acquire(&store, LAX, &clock, "node-a").await.unwrap();
    let err = expect_locked(acquire(&store, STRICT, &clock, "node-b").await);
    assert!(err.to_string().contains("node-a"), "{err}");
    assert!(
        stored_lease(store.as_ref(), layout::LEASE).await.is_none(),
        "the refused contender removed its lease"
    );
    a.release().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Fallback path
// ---------------------------------------------------------------------------------------

fn lax_store() -> (Arc<MemoryBlobStore>, Arc<dyn BlobStore>) {
    let mem = Arc::new(MemoryBlobStore::new());
    mem.set_ignore_conditions(true);
    let store: Arc<dyn BlobStore> = mem.clone();
    (mem, store)
}

async fn lock_objects(store: &dyn BlobStore) -> Vec<String> {
    store
        .list(layout::FALLBACK_LEASE_PREFIX)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn fallback_acquire_renew_release() {
    let (mem, store) = lax_store();
    let clock: Arc<dyn Clock> = Arc::new(PausedClock::new());
    let a = acquire(&store, LAX, &clock, "node-a").await.unwrap();
    assert_eq!(a.mode(), LeaseMode::Fallback);
    assert!(
        a.key().starts_with(layout::FALLBACK_LEASE_PREFIX),
        "{}",
        a.key()
    );
    assert_eq!(lock_objects(store.as_ref()).await, vec![a.key().to_owned()]);
    // The settle delay passed during acquisition.
    assert_eq!(clock.now(), start() + chrono::Duration::seconds(2));

    let puts = mem.put_count();
    virtual_sleep(Duration::from_secs(155)).await;
    a.check().unwrap();
    assert_eq!(
        mem.put_count() - puts,
        10,
        "renewed every 15 s by overwriting its own object"
    );
    assert_eq!(
        stored_lease(store.as_ref(), a.key()).await.unwrap(),
        a.record()
    );

    let err = expect_locked(acquire(&store, LAX, &clock, "node-b").await);
    assert!(
        err.to_string()
            .starts_with("repository is locked by [node-a (node-a-id)] for [snapshot [nightly]]"),
        "{err}"
    );
    assert_eq!(
        lock_objects(store.as_ref()).await,
        vec![a.key().to_owned()],
        "the loser left nothing behind"
    );

    let token_a = a.token();
    a.release().await.unwrap();
    assert!(lock_objects(store.as_ref()).await.is_empty());
    let b = acquire(&store, LAX, &clock, "node-b").await.unwrap();
    assert!(b.token() > token_a);
    b.release().await.unwrap();
}

#[tokio::test]
async fn fallback_removes_expired_locks_and_takes_over() {
    let (_mem, store) = lax_store();
    let manual = ManualClock::new(start());
    let clock: Arc<dyn Clock> = Arc::new(manual.clone());
    let a = acquire(&store, LAX, &clock, "node-a").await.unwrap();
    let (key_a, token_a) = (a.key().to_owned(), a.token());
    drop(a); // crash
    manual.advance(Duration::from_secs(60));
    expect_locked(acquire(&store, LAX, &clock, "node-b").await);
    manual.advance(Duration::from_secs(31));
    let b = acquire(&store, LAX, &clock, "node-b").await.unwrap();
    assert!(b.token() > token_a);
    let left = lock_objects(store.as_ref()).await;
    assert_eq!(
        left,
        vec![b.key().to_owned()],
        "the expired lock [{key_a}] was removed"
    );
    b.release().await.unwrap();
}

/// Both contenders write their lock object before either lists: each sees the other, and
/// both back off. Neither wins, nothing is left behind, and a retry succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_simultaneous_contenders_both_back_off() {
    let (_mem, store) = lax_store();
    let clock: Arc<dyn Clock> = Arc::new(StillClock::new());
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let (wb, wc) = (
        Wrapper::new(Arc::clone(&store)),
        Wrapper::new(Arc::clone(&store)),
    );
    wb.meet(Rendezvous::AroundLockWrite, &barrier);
    wc.meet(Rendezvous::AroundLockWrite, &barrier);
    let (sb, sc): (Arc<dyn BlobStore>, Arc<dyn BlobStore>) = (wb, wc);
    let (cb, cc) = (Arc::clone(&clock), Arc::clone(&clock));
    let hb = tokio::spawn(async move { acquire(&sb, LAX, &cb, "node-b").await });
    let hc = tokio::spawn(async move { acquire(&sc, LAX, &cc, "node-c").await });
    let eb = expect_locked(bounded(hb).await);
    let ec = expect_locked(bounded(hc).await);
    assert!(eb.to_string().contains("node-c"), "{eb}");
    assert!(ec.to_string().contains("node-b"), "{ec}");
    assert!(
        lock_objects(store.as_ref()).await.is_empty(),
        "both removed their lock objects"
    );

    let cfg = LeaseConfig {
        settle_delay: Duration::ZERO,
        ..cfg()
    };
    let b = Lease::acquire(
        Arc::clone(&store),
        LAX,
        clock,
        owner("node-b", "retry"),
        cfg,
    )
    .await
    .unwrap();
    b.release().await.unwrap();
}

/// A contender that arrives during the first one's settle delay sees it and backs off; the
/// first one's final check then finds the field clear: exactly one wins.
#[tokio::test(start_paused = true)]
async fn fallback_contender_during_the_settle_delay_loses() {
    let (_mem, store) = lax_store();
    let clock: Arc<dyn Clock> = Arc::new(PausedClock::new());
    let (sa, ca) = (Arc::clone(&store), Arc::clone(&clock));
    let ha = tokio::spawn(async move { acquire(&sa, LAX, &ca, "node-a").await });
    virtual_sleep(Duration::from_secs(1)).await; // A is settling
    assert_eq!(lock_objects(store.as_ref()).await.len(), 1);
    let err = expect_locked(acquire(&store, LAX, &clock, "node-b").await);
    assert!(err.to_string().contains("node-a"), "{err}");
    let a = ha.await.unwrap().unwrap();
    assert_eq!(lock_objects(store.as_ref()).await, vec![a.key().to_owned()]);
    a.release().await.unwrap();
}

/// Many contenders at once on the ignoring store, repeatedly: never two winners.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fallback_never_two_winners_under_real_concurrency() {
    let (_mem, store) = lax_store();
    let clock: Arc<dyn Clock> = Arc::new(StillClock::new());
    let mut total_winners = 0;
    for round in 0..30 {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let (s, c) = (Arc::clone(&store), Arc::clone(&clock));
                tokio::spawn(async move {
                    let cfg = LeaseConfig {
                        settle_delay: Duration::ZERO,
                        ..cfg()
                    };
                    Lease::acquire(s, LAX, c, owner(&format!("node-{i}"), "delete"), cfg).await
                })
            })
            .collect();
        let mut winners = Vec::new();
        for h in handles {
            match bounded(h).await {
                Ok(g) => winners.push(g),
                Err(RepositoryError::Locked { .. }) => {}
                Err(e) => panic!("round {round}: {e}"),
            }
        }
        assert!(
            winners.len() <= 1,
            "round {round}: {} winners",
            winners.len()
        );
        total_winners += winners.len();
        let holders: HashSet<String> = lock_objects(store.as_ref()).await.into_iter().collect();
        assert_eq!(
            holders.len(),
            winners.len(),
            "round {round}: losers left no lock objects"
        );
        for w in winners {
            w.release().await.unwrap();
        }
    }
    assert!(total_winners > 0, "some round had a winner");
}

/// The fallback holder's object is removed behind its back (a contender judged it expired
/// while it was frozen): the holder finds out at its next renewal and stops; its release
/// removes only its own key.
#[tokio::test]
async fn fallback_stale_writer_resuming_is_fenced_off() {
    let (_mem, store) = lax_store();
    let clock_a: Arc<dyn Clock> = Arc::new(ManualClock::new(start()));
    let manual_b = ManualClock::new(start());
    let clock_b: Arc<dyn Clock> = Arc::new(manual_b.clone());
    let a = acquire(&store, LAX, &clock_a, "node-a").await.unwrap();
    manual_b.advance(Duration::from_secs(600));
    let b = acquire(&store, LAX, &clock_b, "node-b").await.unwrap();
    assert_eq!(lock_objects(store.as_ref()).await, vec![b.key().to_owned()]);

    let reason = expect_lost(a.renew_now().await);
    assert!(reason.contains("vanished"), "{reason}");
    expect_lost(a.check());
    expect_lost(a.release().await);
    assert_eq!(
        lock_objects(store.as_ref()).await,
        vec![b.key().to_owned()],
        "B's lock object is intact"
    );
    b.check().unwrap();
    b.release().await.unwrap();
}

#[tokio::test]
async fn a_live_conditional_lease_also_blocks_the_fallback_path() {
    let store: Arc<dyn BlobStore> = Arc::new(MemoryBlobStore::new());
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(start()));
    let a = acquire(&store, STRICT, &clock, "node-a").await.unwrap();
    expect_locked(acquire(&store, LAX, &clock, "node-b").await);
    assert!(lock_objects(store.as_ref()).await.is_empty());
    a.release().await.unwrap();
}

#[tokio::test]
async fn stored_leases_are_listed() {
    let store: Arc<dyn BlobStore> = Arc::new(MemoryBlobStore::new());
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(start()));
    assert!(Lease::stored(store.as_ref()).await.unwrap().is_empty());
    let a = acquire(&store, STRICT, &clock, "node-a").await.unwrap();
    let stored = Lease::stored(store.as_ref()).await.unwrap();
    assert_eq!(stored, vec![(layout::LEASE.to_owned(), a.record())]);
    a.release().await.unwrap();
}
