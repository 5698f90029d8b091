//! The single-writer lease on a repository.
//!
//! Every operation that writes (snapshot, delete, cleanup, clone) holds a lease for its whole
//! duration; `readonly` registrations never call [`Lease::acquire`] and so never contend.
//!
//! # Conditional path (stores that honour `If-None-Match` / `If-Match`)
//! The lease is one object, [`layout::LEASE`], holding an enveloped [`LeaseRecord`].
//! - **Acquire** by a create-only put. If the object exists it is read: unless it expired
//!   more than `skew_margin` ago (by the contender's clock) the contender fails with
//!   [`RepositoryError::Locked`]. An expired lease is taken over *only* by a put conditional
//!   on the ETag just read, so of two contenders at most one succeeds; the loser re-reads and
//!   reports the winner as the holder.
//! - **Renew** every `renew_interval` on a task of its own (never queued behind the
//!   operation's uploads) by a put conditional on the ETag of the last renewal. A refused
//!   renewal means someone took the lease over or removed it: the lease is *lost* (unless a
//!   re-read shows our own record: an earlier renewal landed although its answer was lost,
//!   and the renewal is retried on the fresh ETag). Other storage errors are retried every
//!   `renew_interval / 4` until the fencing check below gives up.
//! - **Release** re-reads the object and deletes it only if it still holds this holder's id
//!   and token, and only while the lease is valid, so it cannot remove a successor's lease.
//!
//! # Fallback path (stores that ignore conditional writes, such as Garage 2.5)
//! Each acquisition writes its own object, [`layout::fallback_lease`]`(<holder id>)`, so no
//! write can clobber a competitor's. The sequence is: scan the lock folder (delete records
//! that expired more than `skew_margin` ago; fail if another valid one exists), write ours,
//! scan again, wait `settle_delay`, scan again. Whoever sees another valid lease during
//! any scan deletes its own object and fails with `Locked`. Renewal overwrites our own
//! object after checking it is still there and still ours; release deletes it.
//!
//! The guarantee is weaker than on the conditional path, and it is exactly this: **two
//! writers never both win; both may lose** (each sees the other and backs off; the
//! operation fails with `Locked` and can be retried). Proof sketch: of two contenders, the
//! one whose lock object was written second lists the folder after that write, so it sees
//! the first one's object unless that one already backed off. This holds if listings show
//! an object at most `settle_delay` after its put returned (Garage's listings are
//! immediately consistent; the settle delay covers stores whose listings lag), and if
//! clocks differ by less than `skew_margin` (otherwise a live lease could be judged expired
//! and deleted), and if a renewal (read our object, overwrite it) completes within
//! `safety_margin` (otherwise a renewal begun just before the holder's deadline could
//! resurrect an object a contender has since deleted as expired).
//!
//! # Fencing
//! [`LeaseGuard::check`] must be called before every write. It fails with
//! [`RepositoryError::LeaseLost`] once the lease is lost, and also as soon as
//! `now + safety_margin >= expires_at` of the last successful renewal: a writer that cannot
//! renew stops `safety_margin` *before* its lease could lapse, and a competitor waits a
//! further `skew_margin` after the lapse before taking over. A write that started before
//! the check must complete within `safety_margin + skew_margin` for this to be airtight.
//! Once failed, `check` keeps failing: a writer never resumes after a gap.
//! Deletes of unreferenced data must happen only under a freshly renewed lease: call
//! [`LeaseGuard::renew_now`] just before them.
//!
//! Each acquisition carries a fencing token, `max(previous holder's token + 1, acquisition
//! time in ms)`: strictly greater than the token it took over from, and (clock skew
//! permitting) greater than any earlier holder's even after a release deleted the object.
//! Writers record it in what they write so that a reader can tell writers apart.
//!
//! # Testing with a manual clock
//! The renewal task sleeps on the injected clock. `ManualClock::sleep` moves time forward
//! instead of waiting, so with a live guard, time advances by `renew_interval` whenever the
//! renewal task gets to run (and it renews each time). Tests that need time to stand still
//! while a guard lives should use a clock whose `sleep` really waits (tokio's paused time,
//! as in `tests/lease.rs`).
//!
//! # Dropping a guard
//! Dropping a [`LeaseGuard`] without [`LeaseGuard::release`] stops the renewal task but
//! leaves the lease object in place; it lapses after its `ttl`, and another writer can take
//! it over `skew_margin` later. That is what happens after a crash, too.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::envelope::{self, Kind};
use crate::fence::Fence;
use crate::store::{BlobStore, Capabilities, PutMode};
use crate::{RepositoryError, Result, layout};

/// Who takes a lease, recorded in it so a refused writer can say who holds the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseOwner {
    /// The node's name (`node.name`).
    pub node_name: String,
    /// The node's persistent id.
    pub node_id: String,
    /// The process id of the writer.
    pub pid: u32,
    /// The uuid of the repository being written.
    pub repository_uuid: String,
    /// What the writer is doing: `snapshot [name]`, `delete`, `cleanup`, `clone`, ….
    pub operation: String,
}

/// Timing of a lease. All durations are wall-clock time as measured by the injected clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseConfig {
    /// How long a lease lives after each renewal (default 60 s).
    pub ttl: Duration,
    /// How often the lease is renewed (default `ttl / 4`).
    pub renew_interval: Duration,
    /// How long after a lease's expiry a contender still treats it as alive, to allow for
    /// clocks that disagree (default 30 s).
    pub skew_margin: Duration,
    /// Fallback path only: how long to wait between writing our lock object and the final
    /// check for competitors (default 2 s).
    pub settle_delay: Duration,
    /// How long before the lease's expiry the holder stops writing if it could not renew
    /// (default `ttl / 4`).
    pub safety_margin: Duration,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        Self::with_ttl(Duration::from_secs(60))
    }
}

impl LeaseConfig {
    /// The defaults scaled to `ttl`: renew and stop writing at a quarter of it.
    pub fn with_ttl(ttl: Duration) -> Self {
        Self {
            ttl,
            renew_interval: ttl / 4,
            skew_margin: Duration::from_secs(30),
            settle_delay: Duration::from_secs(2),
            safety_margin: ttl / 4,
        }
    }

    /// Brings inconsistent settings back into a working shape instead of failing: a zero
    /// ttl, a safety margin that is not below the ttl, or a renewal interval that leaves
    /// no room for a retry before the writer would have to stop.
    fn normalized(self) -> Self {
        let mut c = self;
        c.ttl = c.ttl.max(Duration::from_secs(1));
        if c.safety_margin >= c.ttl {
            c.safety_margin = c.ttl / 4;
        }
        let usable = c.ttl.saturating_sub(c.safety_margin);
        if c.renew_interval.is_zero() || c.renew_interval > usable / 2 {
            c.renew_interval = usable / 2;
        }
        c.renew_interval = c.renew_interval.max(Duration::from_millis(10));
        c
    }

    /// Pause after a renewal that failed for a reason other than losing the lease.
    fn retry_delay(&self) -> Duration {
        (self.renew_interval / 4).max(Duration::from_millis(10))
    }
}

/// What a lease object holds (JSON inside a [`Kind::Lease`] envelope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// The holder's node name.
    pub node_name: String,
    /// The holder's node id.
    pub node_id: String,
    /// The holder's process id.
    pub pid: u32,
    /// The repository's uuid as the holder knows it.
    pub repository_uuid: String,
    /// What the holder is doing.
    pub operation: String,
    /// Unique id of this acquisition (a random uuid): tells two acquisitions by the same
    /// node apart, and names the fallback lock object.
    pub holder: String,
    /// When the lease was acquired.
    pub acquired_at: DateTime<Utc>,
    /// When it was last renewed.
    pub renewed_at: DateTime<Utc>,
    /// When it lapses unless renewed again.
    pub expires_at: DateTime<Utc>,
    /// The fencing token of this acquisition.
    pub token: u64,
}

impl LeaseRecord {
    fn new(
        owner: &LeaseOwner,
        holder: &str,
        now: DateTime<Utc>,
        ttl: Duration,
        token: u64,
    ) -> Self {
        Self {
            node_name: owner.node_name.clone(),
            node_id: owner.node_id.clone(),
            pid: owner.pid,
            repository_uuid: owner.repository_uuid.clone(),
            operation: owner.operation.clone(),
            holder: holder.to_owned(),
            acquired_at: now,
            renewed_at: now,
            expires_at: add(now, ttl),
            token,
        }
    }

    /// Whether a contender reading the clock at `now` may take this lease over: it expired
    /// more than `skew_margin` ago.
    pub fn is_stale(&self, now: DateTime<Utc>, skew_margin: Duration) -> bool {
        now > add(self.expires_at, skew_margin)
    }

    /// `node-name (node-id)`, as shown in the `Locked` message.
    pub fn holder_label(&self) -> String {
        if self.node_id.is_empty() {
            self.node_name.clone()
        } else {
            format!("{} ({})", self.node_name, self.node_id)
        }
    }

    /// The error a refused contender reports.
    pub fn locked_error(&self) -> RepositoryError {
        RepositoryError::Locked {
            node: self.holder_label(),
            operation: self.operation.clone(),
            since: iso(self.acquired_at),
            expires: iso(self.expires_at),
        }
    }

    fn same_acquisition(&self, other: &LeaseRecord) -> bool {
        self.holder == other.holder && self.token == other.token
    }
}

/// An ISO-8601 UTC timestamp with milliseconds, as used in lease messages.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A token greater than `previous` and, clocks permitting, than any token issued earlier.
fn next_token(previous: Option<u64>, now: DateTime<Utc>) -> u64 {
    let by_time = u64::try_from(now.timestamp_millis()).unwrap_or(0);
    previous.map_or(by_time, |p| by_time.max(p.saturating_add(1)))
}

/// Which protocol a lease uses, chosen from the store's [`Capabilities`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseMode {
    /// One lease object, created and renewed by conditional puts.
    Conditional,
    /// One lock object per holder, then list and check (stores without conditional writes).
    Fallback,
}

impl LeaseMode {
    /// The mode a store with `caps` gets.
    pub fn for_capabilities(caps: Capabilities) -> Self {
        if caps.conditional_create && caps.conditional_update {
            Self::Conditional
        } else {
            Self::Fallback
        }
    }
}

/// Entry point: taking the lease.
#[derive(Debug)]
pub struct Lease;

impl Lease {
    /// Takes the repository's lease for `owner`, or fails with [`RepositoryError::Locked`]
    /// naming the current holder. Must run inside a tokio runtime: the returned guard renews
    /// the lease on a spawned task.
    pub async fn acquire(
        store: Arc<dyn BlobStore>,
        caps: Capabilities,
        clock: Arc<dyn Clock>,
        owner: LeaseOwner,
        cfg: LeaseConfig,
    ) -> Result<LeaseGuard> {
        let cfg = cfg.normalized();
        let mode = LeaseMode::for_capabilities(caps);
        let holder = uuid::Uuid::new_v4().simple().to_string();
        let ctx = Acquire {
            store: store.as_ref(),
            clock: clock.as_ref(),
            owner: &owner,
            cfg: &cfg,
            holder: &holder,
        };
        let (key, record, etag) = match mode {
            LeaseMode::Conditional => {
                let (record, etag) = ctx.conditional().await?;
                (layout::LEASE.to_owned(), record, etag)
            }
            LeaseMode::Fallback => {
                let key = layout::fallback_lease(&holder);
                let (record, etag) = ctx.fallback(&key).await?;
                (key, record, etag)
            }
        };
        tracing::info!(
            location = %store.location(), key = %key, mode = ?mode, token = record.token,
            expires_at = %iso(record.expires_at), operation = %record.operation, "acquired repository lease"
        );
        let shared = Arc::new(Shared {
            store,
            clock,
            cfg,
            mode,
            key,
            state: Mutex::new(State {
                record,
                etag,
                lost: None,
                stopping: false,
            }),
            renew_lock: tokio::sync::Mutex::new(()),
        });
        let renewer = tokio::spawn(renew_loop(Arc::clone(&shared)));
        Ok(LeaseGuard {
            shared,
            renewer: Some(renewer),
        })
    }

    /// Every lease record currently stored (conditional object and fallback lock objects),
    /// expired or not, with its key: for status displays and diagnostics. Undecodable
    /// objects are reported as errors.
    pub async fn stored(store: &dyn BlobStore) -> Result<Vec<(String, LeaseRecord)>> {
        let mut out = Vec::new();
        if let Some((rec, _)) = read_record(store, layout::LEASE).await? {
            out.push((layout::LEASE.to_owned(), rec));
        }
        for meta in store.list(layout::FALLBACK_LEASE_PREFIX).await? {
            if let Some((rec, _)) = read_record(store, &meta.key).await? {
                out.push((meta.key, rec));
            }
        }
        Ok(out)
    }
}

/// A conditional write refused because the object is not in the state we expected. S3
/// answers 409 `ConditionalRequestConflict` when another conditional write on the key is in
/// flight: the same situation, seen a moment earlier.
fn is_refusal(e: &RepositoryError) -> bool {
    match e {
        RepositoryError::AlreadyExists { .. }
        | RepositoryError::PreconditionFailed { .. }
        | RepositoryError::NotFound { .. } => true,
        RepositoryError::Storage {
            code: Some(code), ..
        } => code == "ConditionalRequestConflict" || code == "Conflict",
        _ => false,
    }
}

/// Reads and decodes a lease object; `None` if it does not exist.
async fn read_record(store: &dyn BlobStore, key: &str) -> Result<Option<(LeaseRecord, String)>> {
    match store.get(key).await {
        Ok((bytes, meta)) => Ok(Some((
            envelope::decode(key, Kind::Lease, &bytes)?,
            meta.etag,
        ))),
        Err(RepositoryError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

fn encode(record: &LeaseRecord) -> Result<Bytes> {
    envelope::encode(Kind::Lease, record).map(Bytes::from)
}

/// One acquisition attempt's context.
struct Acquire<'a> {
    store: &'a dyn BlobStore,
    clock: &'a dyn Clock,
    owner: &'a LeaseOwner,
    cfg: &'a LeaseConfig,
    holder: &'a str,
}

/// Whether process `pid` exists on this host.
fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

impl Acquire<'_> {
    /// Whether `rec` may be taken over now: it expired (plus the skew margin), or it was
    /// left by an earlier process of this very node that no longer runs. The node id lives
    /// in `path.data`, so the same id means the same host, where the process table is the
    /// truth: a node restarted after a crash does not wait out its own dead lease. A reused
    /// pid only makes us wait, never take over a live lease.
    fn may_take_over(&self, rec: &LeaseRecord) -> bool {
        rec.is_stale(self.clock.now(), self.cfg.skew_margin)
            || (!rec.node_id.is_empty()
                && rec.node_id == self.owner.node_id
                && rec.pid != self.owner.pid
                && !process_alive(rec.pid))
    }

    fn record(&self, previous_token: Option<u64>) -> LeaseRecord {
        let now = self.clock.now();
        LeaseRecord::new(
            self.owner,
            self.holder,
            now,
            self.cfg.ttl,
            next_token(previous_token, now),
        )
    }

    /// After a put whose outcome is unknown (an error that is not a refusal), looks whether
    /// it landed anyway, so a lease we hold is not left to block everyone for a ttl.
    async fn landed(&self, key: &str, ours: &LeaseRecord) -> Option<String> {
        match read_record(self.store, key).await {
            Ok(Some((rec, etag))) if rec == *ours => Some(etag),
            _ => None,
        }
    }

    async fn conditional(&self) -> Result<(LeaseRecord, String)> {
        // A handful of rounds: each lost race means someone else now holds a fresh lease,
        // so the next round normally ends in `Locked`; the bound only stops a pathological
        // create/delete churn from spinning.
        const ROUNDS: usize = 5;
        let key = layout::LEASE;
        let mut last_seen: Option<LeaseRecord> = None;
        for _ in 0..ROUNDS {
            let ours = self.record(None);
            match self.store.put(key, encode(&ours)?, PutMode::Create).await {
                Ok(r) => {
                    self.refuse_if_fallback_holder(key).await?;
                    return Ok((ours, r.etag));
                }
                Err(e) if is_refusal(&e) => {}
                Err(e) => {
                    return match self.landed(key, &ours).await {
                        Some(etag) => Ok((ours, etag)),
                        None => Err(e),
                    };
                }
            }
            let Some((current, etag)) = read_record(self.store, key).await? else {
                // Released between our create and our read: try again.
                continue;
            };
            if !self.may_take_over(&current) {
                return Err(current.locked_error());
            }
            let ours = self.record(Some(current.token));
            match self
                .store
                .put(key, encode(&ours)?, PutMode::Update(etag))
                .await
            {
                Ok(r) => {
                    tracing::warn!(
                        previous_holder = %current.holder_label(), previous_operation = %current.operation,
                        previous_expiry = %iso(current.expires_at), token = ours.token,
                        "took over an expired repository lease"
                    );
                    return Ok((ours, r.etag));
                }
                // Another contender took it over (or its holder released it) first.
                Err(e) if is_refusal(&e) => last_seen = Some(current),
                Err(e) => {
                    return match self.landed(key, &ours).await {
                        Some(etag) => Ok((ours, etag)),
                        None => Err(e),
                    };
                }
            }
        }
        Err(match last_seen {
            Some(rec) => rec.locked_error(),
            None => RepositoryError::Storage {
                operation: "acquire lease",
                key: key.to_owned(),
                code: None,
                message: format!("the lease object kept changing during {ROUNDS} attempts"),
                retryable: true,
            },
        })
    }

    /// A node that believes the store lacks conditional writes uses lock objects instead; a
    /// live one of those also holds the repository. Our freshly created lease is removed.
    async fn refuse_if_fallback_holder(&self, key: &str) -> Result<()> {
        for meta in self.store.list(layout::FALLBACK_LEASE_PREFIX).await? {
            if let Some((rec, _)) = read_record(self.store, &meta.key).await?
                && !self.may_take_over(&rec)
            {
                self.store.delete_batch(&[key.to_owned()]).await?;
                return Err(rec.locked_error());
            }
        }
        Ok(())
    }

    async fn fallback(&self, ours_key: &str) -> Result<(LeaseRecord, String)> {
        // A conditional-path lease written by a node that found the store strict.
        if let Some((rec, _)) = read_record(self.store, layout::LEASE).await?
            && !self.may_take_over(&rec)
        {
            return Err(rec.locked_error());
        }
        let max_token = self.scan(ours_key).await?;
        let ours = self.record(max_token);
        let etag = match self
            .store
            .put(ours_key, encode(&ours)?, PutMode::Overwrite)
            .await
        {
            Ok(r) => r.etag,
            Err(e) => {
                let _ = self.store.delete_batch(&[ours_key.to_owned()]).await;
                return Err(e);
            }
        };
        let outcome = async {
            self.scan_after_write(ours_key, &ours).await?;
            self.clock.sleep(self.cfg.settle_delay).await;
            self.scan_after_write(ours_key, &ours).await
        }
        .await;
        match outcome {
            Ok(()) => {
                // The settle delay consumed part of the ttl; the guard's first renewal
                // comes `renew_interval` later, well before `expires_at - safety_margin`
                // as long as settle_delay is small against the ttl.
                Ok((ours, etag))
            }
            Err(e) => {
                // Back off: our object must not block the other contender.
                if let Err(d) = self.store.delete_batch(&[ours_key.to_owned()]).await {
                    tracing::warn!(key = %ours_key, error = %d, "could not remove our lock object after backing off");
                }
                Err(e)
            }
        }
    }

    /// Scans the lock folder: deletes stale lock objects, fails with `Locked` on a live one
    /// that is not ours, and returns the highest token seen.
    async fn scan(&self, ours_key: &str) -> Result<Option<u64>> {
        let mut max_token: Option<u64> = None;
        let mut stale = Vec::new();
        let mut live: Vec<LeaseRecord> = Vec::new();
        for meta in self.store.list(layout::FALLBACK_LEASE_PREFIX).await? {
            if meta.key == ours_key {
                continue;
            }
            // Vanished between list and get: its holder released it.
            let Some((rec, _)) = read_record(self.store, &meta.key).await? else {
                continue;
            };
            max_token = max_token.max(Some(rec.token));
            if self.may_take_over(&rec) {
                stale.push(meta.key);
            } else {
                live.push(rec);
            }
        }
        if !stale.is_empty() {
            tracing::warn!(keys = ?stale, "removing expired lock objects");
            self.store.delete_batch(&stale).await?;
        }
        live.sort_by_key(|r| r.acquired_at);
        match live.first() {
            Some(rec) => Err(rec.locked_error()),
            None => Ok(max_token),
        }
    }

    async fn scan_after_write(&self, ours_key: &str, ours: &LeaseRecord) -> Result<()> {
        self.scan(ours_key).await?;
        match read_record(self.store, ours_key).await? {
            Some((rec, _)) if rec == *ours => {}
            Some(_) => {
                return Err(RepositoryError::LeaseLost {
                    reason: format!("our lock object [{ours_key}] was overwritten"),
                });
            }
            None => {
                return Err(RepositoryError::LeaseLost {
                    reason: format!(
                        "our lock object [{ours_key}] disappeared right after it was written (deleted by another writer?)"
                    ),
                });
            }
        }
        let listed = self.store.list(ours_key).await?;
        if !listed.iter().any(|m| m.key == ours_key) {
            return Err(RepositoryError::Storage {
                operation: "list",
                key: layout::FALLBACK_LEASE_PREFIX.to_owned(),
                code: None,
                message: format!(
                    "lock object [{ours_key}] is readable but not listed: the store's listings are not consistent \
                     with its writes, so the fallback lease cannot protect this repository"
                ),
                retryable: true,
            });
        }
        Ok(())
    }
}

#[derive(Debug)]
struct State {
    record: LeaseRecord,
    etag: String,
    lost: Option<String>,
    stopping: bool,
}

#[derive(Debug)]
struct Shared {
    store: Arc<dyn BlobStore>,
    clock: Arc<dyn Clock>,
    cfg: LeaseConfig,
    mode: LeaseMode,
    key: String,
    state: Mutex<State>,
    /// Serialises renewals (the background task, `renew_now`, `release`): two concurrent
    /// conditional renewals from the same ETag would refuse each other.
    renew_lock: tokio::sync::Mutex<()>,
}

/// Outcome of one renewal write, before it is applied to the state.
enum Renewal {
    Done(String),
    Lost(String),
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state half-updated (every update
        // is a single assignment), so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn mark_lost(&self, reason: String) -> RepositoryError {
        let mut st = self.state();
        let reason = st.lost.get_or_insert(reason).clone();
        tracing::error!(key = %self.key, reason = %reason, "repository lease lost; writes stop");
        RepositoryError::LeaseLost { reason }
    }

    fn check(&self) -> Result<()> {
        let now = self.clock.now();
        let mut st = self.state();
        if let Some(reason) = &st.lost {
            return Err(RepositoryError::LeaseLost {
                reason: reason.clone(),
            });
        }
        if add(now, self.cfg.safety_margin) >= st.record.expires_at {
            let reason = format!(
                "the lease expires at [{}] and could not be renewed in time (now [{}], safety margin {:?})",
                iso(st.record.expires_at),
                iso(now),
                self.cfg.safety_margin
            );
            st.lost = Some(reason.clone());
            drop(st);
            tracing::error!(key = %self.key, reason = %reason, "repository lease lost; writes stop");
            return Err(RepositoryError::LeaseLost { reason });
        }
        Ok(())
    }

    /// One renewal. `Err(LeaseLost)` is final; any other error is transient and may be
    /// retried while the lease is still valid.
    async fn renew(&self) -> Result<()> {
        let _serial = self.renew_lock.lock().await;
        self.renew_locked().await
    }

    async fn renew_locked(&self) -> Result<()> {
        self.check()?;
        if self.state().stopping {
            return Err(RepositoryError::LeaseLost {
                reason: "the lease is being released".to_owned(),
            });
        }
        let (current, etag) = {
            let st = self.state();
            (st.record.clone(), st.etag.clone())
        };
        let now = self.clock.now();
        let next = LeaseRecord {
            renewed_at: now,
            expires_at: add(now, self.cfg.ttl),
            ..current.clone()
        };
        // No timeout of our own around the write: a stuck request is bounded by the store's
        // timeouts, and `check` stops writers on time whether or not the renewal returns.
        // (Racing the write against `Clock::sleep` would also misbehave under a manual
        // clock, whose sleep moves time forward at once.)
        let outcome = self.write_renewal(&current, &next, etag).await;
        match outcome {
            Ok(Renewal::Done(etag)) => {
                let mut st = self.state();
                if st.lost.is_none() {
                    st.record = next;
                    st.etag = etag;
                }
                Ok(())
            }
            Ok(Renewal::Lost(reason)) => Err(self.mark_lost(reason)),
            Err(e) => {
                tracing::warn!(key = %self.key, error = %e, "lease renewal failed; will retry while the lease is valid");
                Err(e)
            }
        }
    }

    async fn write_renewal(
        &self,
        current: &LeaseRecord,
        next: &LeaseRecord,
        etag: String,
    ) -> Result<Renewal> {
        let bytes = encode(next)?;
        match self.mode {
            LeaseMode::Conditional => {
                match self
                    .store
                    .put(&self.key, bytes.clone(), PutMode::Update(etag))
                    .await
                {
                    Ok(r) => return Ok(Renewal::Done(r.etag)),
                    Err(e) if is_refusal(&e) => {}
                    Err(e) => return Err(e),
                }
                // Refused. Either someone else wrote the lease, or an earlier renewal of
                // ours landed although we saw it fail, leaving us with a stale ETag.
                match read_record(self.store.as_ref(), &self.key).await? {
                    Some((stored, fresh)) if stored.same_acquisition(current) => {
                        match self
                            .store
                            .put(&self.key, bytes, PutMode::Update(fresh))
                            .await
                        {
                            Ok(r) => Ok(Renewal::Done(r.etag)),
                            Err(e) if is_refusal(&e) => Ok(Renewal::Lost(
                                "the lease object changed under a renewal twice in a row"
                                    .to_owned(),
                            )),
                            Err(e) => Err(e),
                        }
                    }
                    Some((stored, _)) => Ok(Renewal::Lost(format!(
                        "the lease was taken over by [{}] for [{}] (token {})",
                        stored.holder_label(),
                        stored.operation,
                        stored.token
                    ))),
                    None => Ok(Renewal::Lost(
                        "the lease object was deleted by someone else".to_owned(),
                    )),
                }
            }
            LeaseMode::Fallback => {
                // Overwrites are unconditional here, so look first: never resurrect a lock
                // object someone removed, and never overwrite one that is not ours.
                match read_record(self.store.as_ref(), &self.key).await? {
                    Some((stored, _)) if stored.same_acquisition(current) => {}
                    Some(_) => {
                        return Ok(Renewal::Lost(format!(
                            "lock object [{}] was overwritten",
                            self.key
                        )));
                    }
                    None => {
                        return Ok(Renewal::Lost(format!(
                            "lock object [{}] vanished (removed by another writer that judged it expired?)",
                            self.key
                        )));
                    }
                }
                let r = self.store.put(&self.key, bytes, PutMode::Overwrite).await?;
                Ok(Renewal::Done(r.etag))
            }
        }
    }

    async fn release(&self) -> Result<()> {
        let _serial = self.renew_lock.lock().await;
        self.state().stopping = true;
        let (ours, lost) = {
            let st = self.state();
            (st.record.clone(), st.lost.clone())
        };
        if self.mode == LeaseMode::Fallback {
            // Our lock object's key is ours alone: deleting it can never hurt a successor.
            self.store
                .delete_batch(std::slice::from_ref(&self.key))
                .await?;
            self.state()
                .lost
                .get_or_insert_with(|| "the lease was released".to_owned());
            tracing::info!(key = %self.key, "released repository lease");
            return match lost {
                Some(reason) => Err(RepositoryError::LeaseLost { reason }),
                None => Ok(()),
            };
        }
        if let Some(reason) = lost {
            return Err(RepositoryError::LeaseLost { reason });
        }
        let stored = read_record(self.store.as_ref(), &self.key).await?;
        match stored {
            Some((rec, _)) if rec.same_acquisition(&ours) => {
                // Nobody can take a lease over before `expires_at + skew_margin`, so deleting
                // while `check` passes cannot remove a successor's lease. Past that point
                // the lease is left to lapse.
                self.check()?;
                self.store
                    .delete_batch(std::slice::from_ref(&self.key))
                    .await?;
                self.state().lost = Some("the lease was released".to_owned());
                tracing::info!(key = %self.key, token = ours.token, "released repository lease");
                Ok(())
            }
            Some((rec, _)) => Err(self.mark_lost(format!(
                "the lease was taken over by [{}] for [{}] (token {}); leaving it in place",
                rec.holder_label(),
                rec.operation,
                rec.token
            ))),
            None => Err(self.mark_lost("the lease object was deleted by someone else".to_owned())),
        }
    }
}

async fn renew_loop(shared: Arc<Shared>) {
    let mut delay = shared.cfg.renew_interval;
    loop {
        shared.clock.sleep(delay).await;
        if shared.state().stopping {
            return;
        }
        match shared.renew().await {
            Ok(()) => delay = shared.cfg.renew_interval,
            Err(RepositoryError::LeaseLost { .. }) => return,
            Err(_) => delay = shared.cfg.retry_delay(),
        }
    }
}

/// Proof of holding the lease. Call [`check`](Self::check) before every write and
/// [`release`](Self::release) at the end. See the [module docs](self) for the semantics.
#[derive(Debug)]
pub struct LeaseGuard {
    shared: Arc<Shared>,
    renewer: Option<JoinHandle<()>>,
}

/// A cheap, clonable handle to a guard's fencing check, for upload tasks that cannot borrow
/// the guard. It stays usable after the guard is gone, and then fails once the lease has
/// lapsed (the guard's renewal stopped with it).
#[derive(Debug, Clone)]
pub struct LeaseFence {
    shared: Arc<Shared>,
}

impl LeaseFence {
    /// See [`LeaseGuard::check`].
    pub fn check(&self) -> Result<()> {
        self.shared.check()
    }

    /// See [`LeaseGuard::renew_now`].
    pub async fn renew_now(&self) -> Result<()> {
        self.shared.renew().await?;
        self.shared.check()
    }

    /// See [`LeaseGuard::token`].
    pub fn token(&self) -> u64 {
        self.shared.state().record.token
    }
}

#[async_trait::async_trait]
impl Fence for LeaseFence {
    fn check(&self) -> Result<()> {
        LeaseFence::check(self)
    }

    async fn renew_now(&self) -> Result<()> {
        LeaseFence::renew_now(self).await
    }
}

#[async_trait::async_trait]
impl Fence for LeaseGuard {
    fn check(&self) -> Result<()> {
        LeaseGuard::check(self)
    }

    async fn renew_now(&self) -> Result<()> {
        LeaseGuard::renew_now(self).await
    }
}

impl LeaseGuard {
    /// `Ok` while this writer may write: the lease is not lost and will not lapse within the
    /// safety margin. Once it fails it keeps failing.
    pub fn check(&self) -> Result<()> {
        self.shared.check()
    }

    /// Renews now, in the caller's task, and fails with `LeaseLost` if the lease is gone or
    /// with the storage error if the renewal could not be written (the lease may still be
    /// valid then; `check` tells). Call it right before deleting blobs.
    pub async fn renew_now(&self) -> Result<()> {
        self.shared.renew().await?;
        self.shared.check()
    }

    /// This acquisition's fencing token.
    pub fn token(&self) -> u64 {
        self.shared.state().record.token
    }

    /// The record as last written.
    pub fn record(&self) -> LeaseRecord {
        self.shared.state().record.clone()
    }

    /// When the lease lapses unless renewed again.
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.shared.state().record.expires_at
    }

    /// Whether the lease is known to be lost.
    pub fn is_lost(&self) -> bool {
        self.shared.state().lost.is_some()
    }

    /// The protocol this lease uses.
    pub fn mode(&self) -> LeaseMode {
        self.shared.mode
    }

    /// The key of the lease object.
    pub fn key(&self) -> &str {
        &self.shared.key
    }

    /// A handle for other tasks to run the fencing check.
    pub fn fence(&self) -> LeaseFence {
        LeaseFence {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Stops renewing and deletes the lease object if it is still this acquisition's.
    /// Fails with `LeaseLost` (deleting nothing on the conditional path) if the lease had
    /// been lost: the caller's writes were already fenced off, so this is for reporting.
    pub async fn release(mut self) -> Result<()> {
        let result = self.shared.release().await;
        if let Some(h) = self.renewer.take() {
            h.abort();
        }
        result
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if let Some(h) = self.renewer.take() {
            h.abort();
            tracing::warn!(key = %self.shared.key, "lease guard dropped without release; the lease will lapse on its own");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::store::MemoryBlobStore;
    use chrono::TimeZone;

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
    }

    fn owner(node: &str) -> LeaseOwner {
        LeaseOwner {
            node_name: node.to_owned(),
            node_id: format!("{node}-id"),
            pid: 42,
            repository_uuid: "repo-uuid".to_owned(),
            operation: "snapshot [s1]".to_owned(),
        }
    }

    const STRICT: Capabilities = Capabilities {
        conditional_create: true,
        conditional_update: true,
    };

    #[test]
    fn config_defaults_and_normalisation() {
        let c = LeaseConfig::default();
        assert_eq!(c.ttl, Duration::from_secs(60));
        assert_eq!(c.renew_interval, Duration::from_secs(15));
        assert_eq!(c.skew_margin, Duration::from_secs(30));
        assert_eq!(c.settle_delay, Duration::from_secs(2));
        assert_eq!(c.normalized(), c, "defaults are consistent");
        let odd = LeaseConfig {
            renew_interval: Duration::from_secs(59),
            safety_margin: Duration::from_secs(90),
            ..c
        }
        .normalized();
        assert_eq!(odd.safety_margin, Duration::from_secs(15));
        assert_eq!(odd.renew_interval, Duration::from_millis(22_500));
    }

    #[test]
    fn conflicts_count_as_refusals() {
        let storage = |code: &str| RepositoryError::Storage {
            operation: "put",
            key: "k".to_owned(),
            code: Some(code.to_owned()),
            message: String::new(),
            retryable: true,
        };
        assert!(is_refusal(&storage("ConditionalRequestConflict")));
        assert!(is_refusal(&RepositoryError::PreconditionFailed {
            key: "k".to_owned()
        }));
        assert!(!is_refusal(&storage("InternalError")));
        assert!(!is_refusal(&RepositoryError::LeaseLost {
            reason: String::new()
        }));
    }

    #[test]
    fn tokens_grow() {
        let t = start();
        assert_eq!(
            next_token(None, t),
            u64::try_from(t.timestamp_millis()).unwrap()
        );
        assert_eq!(next_token(Some(u64::MAX - 1), t), u64::MAX);
        let later = next_token(Some(next_token(None, t)), t);
        assert!(later > next_token(None, t));
    }

    #[test]
    fn staleness_includes_the_skew_margin() {
        let rec = LeaseRecord::new(&owner("a"), "h", start(), Duration::from_secs(60), 1);
        let skew = Duration::from_secs(30);
        assert!(!rec.is_stale(add(start(), Duration::from_secs(90)), skew));
        assert!(rec.is_stale(add(start(), Duration::from_millis(90_001)), skew));
    }

    #[tokio::test]
    async fn check_fails_before_expiry_without_renewal() {
        let store: Arc<dyn BlobStore> = Arc::new(MemoryBlobStore::new());
        let clock = ManualClock::new(start());
        let guard = Lease::acquire(
            Arc::clone(&store),
            STRICT,
            Arc::new(clock.clone()),
            owner("a"),
            LeaseConfig::default(),
        )
        .await
        .unwrap();
        // The renewer task has not run (this task never yielded): time passes without
        // renewals, as in a frozen process.
        clock.advance(Duration::from_secs(44));
        guard.check().unwrap();
        clock.advance(Duration::from_secs(1));
        let err = guard.check().unwrap_err();
        assert!(matches!(err, RepositoryError::LeaseLost { .. }), "{err}");
        assert!(guard.is_lost());
        // Stays failed, and renewing cannot revive it.
        assert!(guard.renew_now().await.is_err());
        assert!(guard.check().is_err());
    }
}
