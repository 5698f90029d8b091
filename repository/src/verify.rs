//! Proving that a repository's storage works, and finding out what it guarantees.
//!
//! [`verify`] runs the sequence of `_verify` and registration, below `tests-<seed>/`:
//!
//! | step | what | key |
//! |---|---|---|
//! | `write_master` | create-only put of `master.dat` | `tests-<seed>/master.dat` |
//! | `read_master` | read it back, compare bytes and envelope | same |
//! | `list_prefix` | list the folder, see it | `tests-<seed>/` |
//! | `write_node_data` | put `data-<node>.dat` | `tests-<seed>/data-<node>.dat` |
//! | `create_only_refused` | a create-only put over `master.dat` must be refused | `tests-<seed>/master.dat` |
//! | `if_match_refused` | a put conditional on a wrong ETag must be refused, on the right one accepted | same |
//! | `delete_prefix` | delete everything in the folder | `tests-<seed>/` |
//! | `confirm_deleted` | list and read again: gone | `tests-<seed>/` |
//!
//! A storage that accepts the conditional puts of steps 5 and 6 is *not* a failure: it is
//! recorded in [`VerifyReport::capabilities`], and the report flags that writers then use the
//! fallback lease (see [`crate::lease`]), whose guarantee is weaker. Any other failure stops
//! the run (later steps are not attempted), the folder is removed on a best-effort basis, and
//! the failed step names the key, the storage's error code and message and a hint for the
//! usual causes.
//!
//! [`verify_readonly`] only lists the roots and reads the newest, as a `readonly`
//! registration must not write. [`probe_capabilities`] is the cheap subset (write, the two
//! conditional checks, delete) used to choose the lease protocol.

use std::fmt;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::envelope::{self, Kind};
use crate::lease::{LeaseMode, iso};
use crate::store::{BlobStore, Capabilities, PutMode};
use crate::{RepositoryError, Result, layout};

/// Step names, as they appear in reports.
pub mod steps {
    /// Create-only put of `master.dat`.
    pub const WRITE_MASTER: &str = "write_master";
    /// Read `master.dat` back and compare.
    pub const READ_MASTER: &str = "read_master";
    /// List the probe folder.
    pub const LIST_PREFIX: &str = "list_prefix";
    /// Put `data-<node>.dat`.
    pub const WRITE_NODE_DATA: &str = "write_node_data";
    /// A create-only put over an existing key must be refused.
    pub const CREATE_ONLY_REFUSED: &str = "create_only_refused";
    /// A put conditional on a wrong ETag must be refused.
    pub const IF_MATCH_REFUSED: &str = "if_match_refused";
    /// Delete the probe folder.
    pub const DELETE_PREFIX: &str = "delete_prefix";
    /// The probe folder is gone.
    pub const CONFIRM_DELETED: &str = "confirm_deleted";
    /// Readonly: list the roots.
    pub const LIST_ROOTS: &str = "list_roots";
    /// Readonly: read the newest root.
    pub const READ_LATEST_ROOT: &str = "read_latest_root";
}

/// How one step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// It did what it should.
    Ok,
    /// It failed; the run stopped here.
    Failed {
        /// The storage's error code (`AccessDenied`, `NoSuchBucket`, `PermissionDenied`, …),
        /// when the failure came from the storage and it gave one.
        code: Option<String>,
        /// The storage's message, or what check failed.
        message: String,
        /// The usual causes of this failure and where to fix them.
        hint: String,
    },
}

/// One step of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    /// The step's name (see [`steps`]).
    pub step: &'static str,
    /// The key or prefix it worked on.
    pub key: String,
    /// How it ended.
    pub outcome: StepOutcome,
    /// Something worth knowing even though the step passed (a capability the storage
    /// lacks, an empty repository).
    pub note: Option<String>,
}

/// The result of a verification: every step attempted, and what the storage guarantees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// The store, as it names itself (`fs:/srv/repo`, `s3://bucket/base`).
    pub location: String,
    /// The probe folder (`tests-<seed>/`), empty for a readonly verification.
    pub prefix: String,
    /// When the run started, if a clock was given.
    pub started_at: Option<DateTime<Utc>>,
    /// The steps attempted, in order; the last one failed if any did.
    pub steps: Vec<StepReport>,
    /// What the conditional-write checks found; `None` if they did not run (readonly, or an
    /// earlier step failed).
    pub capabilities: Option<Capabilities>,
}

impl VerifyReport {
    /// Whether every step passed.
    pub fn passed(&self) -> bool {
        self.failure().is_none()
    }

    /// The failed step, if any.
    pub fn failure(&self) -> Option<&StepReport> {
        self.steps
            .iter()
            .find(|s| matches!(s.outcome, StepOutcome::Failed { .. }))
    }

    /// Whether the storage was found not to honour conditional writes, so that writers use
    /// the fallback lease: two writers can then both fail, but never both succeed.
    pub fn weaker_lease_guarantee(&self) -> bool {
        self.lease_mode() == Some(LeaseMode::Fallback)
    }

    /// The lease protocol writers will use on this storage, when the checks ran.
    pub fn lease_mode(&self) -> Option<LeaseMode> {
        self.capabilities.map(LeaseMode::for_capabilities)
    }

    fn record(
        &mut self,
        step: &'static str,
        key: &str,
        outcome: StepOutcome,
        note: Option<String>,
    ) {
        self.steps.push(StepReport {
            step,
            key: key.to_owned(),
            outcome,
            note,
        });
    }
}

const WEAKER: &str = "the storage does not honour conditional writes (a create-only or If-Match put over an existing \
                      object was accepted); writers use the fallback lease (a lock object per writer, list, settle, \
                      list again), under which two writers can both fail but never both succeed";

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = self.failure() {
            write!(
                f,
                "repository verification on [{}] failed at step [{}] on key [{}]: ",
                self.location, s.step, s.key
            )?;
            if let StepOutcome::Failed {
                code,
                message,
                hint,
            } = &s.outcome
            {
                match code {
                    Some(code) => write!(f, "[{code}] {message}")?,
                    None => f.write_str(message)?,
                }
                write!(f, "; hint: {hint}")?;
            }
            return Ok(());
        }
        write!(
            f,
            "repository verification on [{}] passed ({} steps)",
            self.location,
            self.steps.len()
        )?;
        match self.capabilities {
            Some(_) if self.weaker_lease_guarantee() => write!(f, "; WARNING: {WEAKER}"),
            Some(_) => f.write_str("; the storage honours conditional writes"),
            None => Ok(()),
        }?;
        for s in &self.steps {
            if let Some(note) = &s.note {
                write!(f, "; {}: {note}", s.step)?;
            }
        }
        Ok(())
    }
}

/// What a probe object holds (JSON in a [`Kind::Probe`] envelope); unique per run so a
/// read-back cannot be satisfied by a stale copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ProbeRecord {
    node: String,
    seed: String,
    nonce: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    written_at: Option<String>,
}

/// Keeps only characters that are safe in a key segment everywhere.
fn key_safe(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.chars().all(|c| c == '.') {
        "_".to_owned()
    } else {
        out
    }
}

/// The storage's error code for `e`, as a report shows it.
pub fn error_code(e: &RepositoryError) -> Option<String> {
    match e {
        RepositoryError::Storage { code, .. } => code.clone(),
        RepositoryError::Io { source, .. } => Some(format!("{:?}", source.kind())),
        RepositoryError::NotFound { .. } => Some("NoSuchKey".to_owned()),
        RepositoryError::AlreadyExists { .. } | RepositoryError::PreconditionFailed { .. } => {
            Some("PreconditionFailed".to_owned())
        }
        RepositoryError::Corrupted { .. } => Some("Corrupted".to_owned()),
        _ => None,
    }
}

fn error_message(e: &RepositoryError) -> String {
    match e {
        RepositoryError::Storage { message, .. } => message.clone(),
        RepositoryError::Io {
            source,
            path,
            context,
        } => format!("{context} [{}]: {source}", path.display()),
        other => other.to_string(),
    }
}

/// The usual causes of `e` at `step`, and where to fix them.
pub fn hint(step: &str, e: &RepositoryError) -> String {
    let code = error_code(e).unwrap_or_default();
    let message = error_message(e).to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| message.contains(n));
    let io_kind = match e {
        RepositoryError::Io { source, .. } => Some(source.kind()),
        _ => None,
    };
    let h = match code.as_str() {
        "InvalidAccessKeyId" => {
            "the storage does not know this access key: check s3.client.<name>.access_key in the keystore \
             (coffer keystore list), or AWS_ACCESS_KEY_ID if the keystore has none"
        }
        "SignatureDoesNotMatch" => {
            "the secret key does not belong to the access key: check s3.client.<name>.secret_key in the keystore; \
             a proxy that rewrites the host or path also breaks signatures"
        }
        "NoSuchBucket" => {
            "the bucket does not exist: create it, or fix the repository's bucket setting (or s3.client.<name>.endpoint if it points at another service)"
        }
        "AuthorizationHeaderMalformed"
        | "PermanentRedirect"
        | "IllegalLocationConstraintException"
        | "WrongRegion"
        | "MovedPermanently" => {
            "the bucket is in another region than the one signed for: set s3.client.<name>.region to the bucket's region"
        }
        "RequestTimeTooSkewed" => {
            "this machine's clock and the storage's differ by more than 15 minutes: synchronise the clock (NTP); \
             clock skew also weakens the repository lease"
        }
        "ExpiredToken" | "InvalidToken" | "TokenRefreshRequired" => {
            "the session token is invalid or expired: renew s3.client.<name>.session_token in the keystore"
        }
        "AccessDenied" | "Forbidden" | "PermissionDenied" => match step {
            steps::DELETE_PREFIX => {
                "the credentials may not delete objects: grant s3:DeleteObject on the repository's bucket and base path \
                 (coffer deletes probes, stale generations and unreferenced data); on a filesystem, write permission on the directory"
            }
            steps::LIST_PREFIX | steps::LIST_ROOTS | steps::CONFIRM_DELETED => {
                "the credentials may not list the bucket: grant s3:ListBucket on it; on a filesystem, read and execute permission on the directory"
            }
            steps::READ_MASTER | steps::READ_LATEST_ROOT => {
                "the credentials may not read objects: grant s3:GetObject on the repository's base path; on a filesystem, read permission"
            }
            _ if io_kind.is_some() => {
                "the coffer process may not write in this directory: check its owner and mode, and that it is below path.repo"
            }
            _ => {
                "the credentials may not write objects: grant s3:PutObject on the repository's bucket and base path, and check bucket policies"
            }
        },
        "ReadOnlyFilesystem" => {
            "the directory is on a read-only filesystem: remount it read-write, or register the repository with readonly: true"
        }
        "StorageFull" | "QuotaExceeded" => {
            "the storage is full or over quota: free space or raise the quota"
        }
        "NotImplemented" => {
            "the storage does not implement this request: it is not S3-compatible enough for coffer"
        }
        "SlowDown" | "TooManyRequests" | "ServiceUnavailable" => {
            "the storage is throttling: retry later, or lower max_snapshot_bytes_per_sec and the concurrency"
        }
        "Corrupted" => {
            "the storage returned other bytes than were written: a proxy or gateway alters objects, or the storage is faulty"
        }
        _ => "",
    };
    if !h.is_empty() {
        return h.to_owned();
    }
    let h = if has(&["certificate", "tls", "ssl", "unknownissuer", "handshake"])
        || code.eq_ignore_ascii_case("tls")
    {
        "the storage's TLS certificate is not trusted or does not match the host name: add its CA with \
         s3.client.<name>.ca_certificate, or fix the host in s3.client.<name>.endpoint"
    } else if has(&[
        "dns error",
        "failed to lookup",
        "name or service not known",
        "no such host",
        "nodename nor servname",
        "name resolution",
    ]) {
        // Before the connection check: the client reports a failed lookup as a failed
        // connection too.
        "the endpoint's host name does not resolve: check s3.client.<name>.endpoint"
    } else if has(&[
        "connection refused",
        "cannot connect",
        "connect error",
        "tcp connect",
    ]) || code.eq_ignore_ascii_case("connect")
    {
        "nothing accepts connections there: check s3.client.<name>.endpoint, its port and protocol (http/https), and that the storage is running"
    } else if has(&["timed out", "timeout"]) {
        "the storage did not answer in time: check the network path to s3.client.<name>.endpoint and the client's timeouts"
    } else if has(&["region"]) {
        "the bucket is in another region than the one signed for: set s3.client.<name>.region to the bucket's region"
    } else if has(&["permission denied"]) {
        "the coffer process may not access this directory: check its owner and mode, and that it is below path.repo"
    } else if has(&["read-only file system"]) {
        "the directory is on a read-only filesystem: remount it read-write, or register the repository with readonly: true"
    } else if has(&["no space left"]) {
        "the filesystem is full: free space"
    } else {
        "see the storage's error code and message; check the repository and s3.client.<name> settings and the storage's logs"
    };
    h.to_owned()
}

/// Runs the probe steps, recording each; the first failure's error is kept for callers
/// that want the error itself.
struct Runner<'a> {
    store: &'a dyn BlobStore,
    report: VerifyReport,
    error: Option<RepositoryError>,
}

impl<'a> Runner<'a> {
    fn new(store: &'a dyn BlobStore, prefix: String, started_at: Option<DateTime<Utc>>) -> Self {
        Self {
            store,
            report: VerifyReport {
                location: store.location(),
                prefix,
                started_at,
                steps: Vec::new(),
                capabilities: None,
            },
            error: None,
        }
    }

    fn ok(&mut self, step: &'static str, key: &str, note: Option<String>) {
        self.report.record(step, key, StepOutcome::Ok, note);
    }

    /// Records a storage failure. Returns `None` so callers can `?` out of the run.
    fn storage_failed<T>(
        &mut self,
        step: &'static str,
        key: &str,
        e: RepositoryError,
    ) -> Option<T> {
        let outcome = StepOutcome::Failed {
            code: error_code(&e),
            message: error_message(&e),
            hint: hint(step, &e),
        };
        self.report.record(step, key, outcome, None);
        self.error.get_or_insert(e);
        None
    }

    /// Records a failed check (the storage answered, but wrongly).
    fn check_failed<T>(
        &mut self,
        step: &'static str,
        key: &str,
        message: String,
        hint: &str,
    ) -> Option<T> {
        self.report.record(
            step,
            key,
            StepOutcome::Failed {
                code: None,
                message: message.clone(),
                hint: hint.to_owned(),
            },
            None,
        );
        self.error.get_or_insert(RepositoryError::Storage {
            operation: step,
            key: key.to_owned(),
            code: None,
            message,
            retryable: false,
        });
        None
    }

    async fn put(
        &mut self,
        step: &'static str,
        key: &str,
        data: Bytes,
        mode: PutMode,
    ) -> Option<String> {
        match self.store.put(key, data, mode).await {
            Ok(r) => {
                self.ok(step, key, None);
                Some(r.etag)
            }
            Err(e) => self.storage_failed(step, key, e),
        }
    }

    async fn read_back(&mut self, key: &str, expected: &Bytes) -> Option<()> {
        let step = steps::READ_MASTER;
        let data = match self.store.get(key).await {
            Ok((data, _)) => data,
            Err(e) => return self.storage_failed(step, key, e),
        };
        if data != *expected {
            return self.check_failed(
                step,
                key,
                format!("read back {} bytes that differ from the {} bytes written", data.len(), expected.len()),
                "the storage returned other bytes than were written: a proxy or gateway alters objects, or another \
                 writer uses the same probe folder (seed)",
            );
        }
        if let Err(e) = envelope::decode::<ProbeRecord>(key, Kind::Probe, &data) {
            return self.storage_failed(step, key, e);
        }
        self.ok(step, key, None);
        Some(())
    }

    async fn list_sees(&mut self, prefix: &str, key: &str) -> Option<()> {
        let step = steps::LIST_PREFIX;
        match self.store.list(prefix).await {
            Ok(list) if list.iter().any(|m| m.key == key) => {
                self.ok(step, prefix, None);
                Some(())
            }
            Ok(list) => self.check_failed(
                step,
                prefix,
                format!("the listing ({} objects) does not show [{key}], which was just written", list.len()),
                "the storage's listings are not consistent with its writes (or the prefix is mapped elsewhere); coffer \
                 needs list-after-write consistency to find generations and leases",
            ),
            Err(e) => self.storage_failed(step, prefix, e),
        }
    }

    /// Step 5: a create-only put over an existing key. `Some(honoured)`.
    async fn create_only_refused(&mut self, key: &str, data: Bytes) -> Option<bool> {
        let step = steps::CREATE_ONLY_REFUSED;
        match self.store.put(key, data, PutMode::Create).await {
            Err(
                RepositoryError::AlreadyExists { .. } | RepositoryError::PreconditionFailed { .. },
            ) => {
                self.ok(step, key, None);
                Some(true)
            }
            Ok(_) => {
                self.ok(step, key, Some("a create-only put over an existing object was accepted (If-None-Match ignored)".to_owned()));
                Some(false)
            }
            Err(e) if error_code(&e).as_deref() == Some("NotImplemented") => {
                self.ok(
                    step,
                    key,
                    Some(format!(
                        "create-only puts are not implemented: {}",
                        error_message(&e)
                    )),
                );
                Some(false)
            }
            Err(e) => self.storage_failed(step, key, e),
        }
    }

    /// Step 6: a put on a wrong ETag must be refused, and one on the right ETag accepted.
    async fn if_match_refused(&mut self, key: &str, data: Bytes) -> Option<bool> {
        let step = steps::IF_MATCH_REFUSED;
        let current = match self.store.head(key).await {
            Ok(m) => m.etag,
            Err(e) => return self.storage_failed(step, key, e),
        };
        // Plausible in shape (32 hex digits, like an S3 ETag) but matching nothing we wrote.
        let wrong = if current.contains("0123456789abcdef0123456789abcdef") {
            "fedcba9876543210fedcba9876543210"
        } else {
            "0123456789abcdef0123456789abcdef"
        };
        match self
            .store
            .put(key, data.clone(), PutMode::Update(wrong.to_owned()))
            .await
        {
            Err(
                RepositoryError::PreconditionFailed { .. } | RepositoryError::AlreadyExists { .. },
            ) => {}
            Ok(_) => {
                self.ok(
                    step,
                    key,
                    Some(
                        "a put conditional on a wrong ETag was accepted (If-Match ignored)"
                            .to_owned(),
                    ),
                );
                return Some(false);
            }
            Err(e) if error_code(&e).as_deref() == Some("NotImplemented") => {
                self.ok(
                    step,
                    key,
                    Some(format!(
                        "conditional puts are not implemented: {}",
                        error_message(&e)
                    )),
                );
                return Some(false);
            }
            Err(e) => return self.storage_failed(step, key, e),
        }
        // The lease renews by If-Match on the ETag the store reported: that must work.
        match self.store.put(key, data, PutMode::Update(current)).await {
            Ok(_) => {
                self.ok(step, key, None);
                Some(true)
            }
            Err(
                RepositoryError::PreconditionFailed { .. } | RepositoryError::AlreadyExists { .. },
            ) => {
                self.ok(
                    step,
                    key,
                    Some("a put conditional on the object's own ETag was refused: the ETags the storage reports are not the ones it compares".to_owned()),
                );
                Some(false)
            }
            Err(e) => self.storage_failed(step, key, e),
        }
    }

    async fn delete_prefix(&mut self, prefix: &str) -> Option<()> {
        let step = steps::DELETE_PREFIX;
        let keys: Vec<String> = match self.store.list(prefix).await {
            Ok(list) => list.into_iter().map(|m| m.key).collect(),
            Err(e) => return self.storage_failed(step, prefix, e),
        };
        if let Err(e) = self.store.delete_batch(&keys).await {
            return self.storage_failed(step, prefix, e);
        }
        self.ok(step, prefix, None);
        Some(())
    }

    async fn confirm_deleted(&mut self, prefix: &str, key: &str) -> Option<()> {
        const HINT: &str = "the storage keeps objects after a successful delete: check for object lock or retention \
                            on the bucket, a gateway that acknowledges deletes without doing them, or a listing cache";
        let step = steps::CONFIRM_DELETED;
        match self.store.list(prefix).await {
            Ok(list) if list.is_empty() => {}
            Ok(list) => {
                let left: Vec<String> = list.into_iter().map(|m| m.key).collect();
                return self.check_failed(
                    step,
                    prefix,
                    format!("objects still listed after delete: {left:?}"),
                    HINT,
                );
            }
            Err(e) => return self.storage_failed(step, prefix, e),
        }
        match self.store.get(key).await {
            Err(RepositoryError::NotFound { .. }) => {
                self.ok(step, prefix, None);
                Some(())
            }
            Ok(_) => self.check_failed(
                step,
                key,
                "the object can still be read after delete".to_owned(),
                HINT,
            ),
            Err(e) => self.storage_failed(step, key, e),
        }
    }

    /// After a failure: remove what the run wrote, quietly (cleanup removes leftover
    /// probes anyway).
    async fn clean_up(&self, prefix: &str) {
        let Ok(list) = self.store.list(prefix).await else {
            return;
        };
        let keys: Vec<String> = list.into_iter().map(|m| m.key).collect();
        if let Err(e) = self.store.delete_batch(&keys).await {
            tracing::warn!(prefix = %prefix, error = %e, "could not remove verification probes");
        }
    }
}

fn probe_bytes(node: &str, seed: &str, written_at: Option<String>) -> Result<Bytes> {
    let record = ProbeRecord {
        node: node.to_owned(),
        seed: seed.to_owned(),
        nonce: uuid::Uuid::new_v4().simple().to_string(),
        written_at,
    };
    envelope::encode(Kind::Probe, &record).map(Bytes::from)
}

/// Runs the full verification below `tests-<seed>/` (see the module docs). Never fails as
/// a call: everything it finds is in the report. `node_name` and `seed` are made key-safe.
pub async fn verify(
    store: &dyn BlobStore,
    node_name: &str,
    seed: &str,
    clock: &dyn Clock,
) -> VerifyReport {
    let started = clock.now();
    let seed = key_safe(seed);
    let node = key_safe(node_name);
    let prefix = layout::probe_dir(&seed);
    let mut run = Runner::new(store, prefix.clone(), Some(started));
    let full = run_full(&mut run, &prefix, &node, &seed, Some(iso(started))).await;
    if full.is_none() {
        run.clean_up(&prefix).await;
    }
    run.report
}

async fn run_full(
    run: &mut Runner<'_>,
    prefix: &str,
    node: &str,
    seed: &str,
    at: Option<String>,
) -> Option<()> {
    let master = format!("{prefix}master.dat");
    let data_key = format!("{prefix}data-{node}.dat");
    let bytes = match probe_bytes(node, seed, at.clone()) {
        Ok(b) => b,
        Err(e) => return run.storage_failed(steps::WRITE_MASTER, &master, e),
    };
    run.put(steps::WRITE_MASTER, &master, bytes.clone(), PutMode::Create)
        .await?;
    run.read_back(&master, &bytes).await?;
    run.list_sees(prefix, &master).await?;
    let node_bytes = match probe_bytes(node, seed, at) {
        Ok(b) => b,
        Err(e) => return run.storage_failed(steps::WRITE_NODE_DATA, &data_key, e),
    };
    run.put(
        steps::WRITE_NODE_DATA,
        &data_key,
        node_bytes.clone(),
        PutMode::Create,
    )
    .await?;
    let conditional_create = run.create_only_refused(&master, node_bytes.clone()).await?;
    let conditional_update = run.if_match_refused(&master, node_bytes).await?;
    run.report.capabilities = Some(Capabilities {
        conditional_create,
        conditional_update,
    });
    run.delete_prefix(prefix).await?;
    run.confirm_deleted(prefix, &master).await
}

/// The cheap subset of [`verify`] that finds out whether the store honours conditional
/// writes: write a probe, try a create-only put and a wrong-ETag put over it, delete it.
/// Fails with the first storage error met.
pub async fn probe_capabilities(store: &dyn BlobStore) -> Result<Capabilities> {
    let seed = format!("probe-{}", uuid::Uuid::new_v4().simple());
    let prefix = layout::probe_dir(&seed);
    let mut run = Runner::new(store, prefix.clone(), None);
    let outcome = async {
        let master = format!("{prefix}master.dat");
        let bytes = match probe_bytes("probe", &seed, None) {
            Ok(b) => b,
            Err(e) => return run.storage_failed(steps::WRITE_MASTER, &master, e),
        };
        run.put(steps::WRITE_MASTER, &master, bytes.clone(), PutMode::Create)
            .await?;
        let conditional_create = run.create_only_refused(&master, bytes.clone()).await?;
        let conditional_update = run.if_match_refused(&master, bytes).await?;
        run.delete_prefix(&prefix).await?;
        Some(Capabilities {
            conditional_create,
            conditional_update,
        })
    }
    .await;
    if let Some(caps) = outcome {
        return Ok(caps);
    }
    run.clean_up(&prefix).await;
    Err(run
        .error
        .take()
        .unwrap_or_else(|| RepositoryError::Storage {
            operation: "probe",
            key: prefix,
            code: None,
            message: "capability probe failed".to_owned(),
            retryable: false,
        }))
}

/// What a `readonly` registration may check: that the roots can be listed and the newest
/// one read and unwrapped. An empty repository passes with a note.
pub async fn verify_readonly(store: &dyn BlobStore) -> VerifyReport {
    let mut run = Runner::new(store, String::new(), None);
    let _ = readonly_steps(&mut run).await;
    run.report
}

async fn readonly_steps(run: &mut Runner<'_>) -> Option<()> {
    let roots = match run.store.list(layout::ROOT_PREFIX).await {
        Ok(list) => list,
        Err(e) => return run.storage_failed(steps::LIST_ROOTS, layout::ROOT_PREFIX, e),
    };
    let Some(latest) = roots
        .iter()
        .filter_map(|m| layout::parse_root(&m.key))
        .max()
    else {
        run.ok(
            steps::LIST_ROOTS,
            layout::ROOT_PREFIX,
            Some("no root blob yet: the repository is empty".to_owned()),
        );
        return Some(());
    };
    run.ok(steps::LIST_ROOTS, layout::ROOT_PREFIX, None);
    let key = layout::root(latest);
    let data = match run.store.get(&key).await {
        Ok((data, _)) => data,
        Err(e) => return run.storage_failed(steps::READ_LATEST_ROOT, &key, e),
    };
    if let Err(e) = envelope::unwrap(&key, Kind::Root, &data) {
        return run.storage_failed(steps::READ_LATEST_ROOT, &key, e);
    }
    run.ok(steps::READ_LATEST_ROOT, &key, None);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage(code: &str, message: &str) -> RepositoryError {
        RepositoryError::Storage {
            operation: "put",
            key: "k".to_owned(),
            code: Some(code.to_owned()),
            message: message.to_owned(),
            retryable: false,
        }
    }

    /// The codes the S3 adapter gives errors that carry no S3 code of their own.
    #[test]
    fn hints_for_transport_failures_as_the_s3_adapter_reports_them() {
        let h = hint(
            steps::WRITE_MASTER,
            &storage(
                "Connect",
                "cannot connect for PutObject b/k at https://s3.example:443: dns error: failed to lookup address information",
            ),
        );
        assert!(h.contains("does not resolve"), "{h}");
        let h = hint(
            steps::WRITE_MASTER,
            &storage(
                "Connect",
                "cannot connect for PutObject b/k at http://127.0.0.1:9: Connection refused",
            ),
        );
        assert!(h.contains("nothing accepts connections"), "{h}");
        let h = hint(
            steps::WRITE_MASTER,
            &storage(
                "Tls",
                "TLS failure on PutObject b/k: invalid peer certificate",
            ),
        );
        assert!(h.contains("ca_certificate"), "{h}");
        let h = hint(
            steps::READ_MASTER,
            &storage("Timeout", "timed out on GetObject b/k"),
        );
        assert!(h.contains("did not answer in time"), "{h}");
        let h = hint(
            steps::LIST_PREFIX,
            &storage(
                "PermanentRedirect",
                "the bucket's region is [eu-west-1], set s3.client.<name>.region to it",
            ),
        );
        assert!(h.contains("s3.client.<name>.region"), "{h}");
    }

    #[test]
    fn access_denied_hints_name_the_missing_permission() {
        let denied = storage("AccessDenied", "Access Denied");
        for (step, permission) in [
            (steps::WRITE_MASTER, "s3:PutObject"),
            (steps::READ_MASTER, "s3:GetObject"),
            (steps::LIST_PREFIX, "s3:ListBucket"),
            (steps::DELETE_PREFIX, "s3:DeleteObject"),
        ] {
            assert!(hint(step, &denied).contains(permission), "{step}");
        }
    }

    #[test]
    fn keys_are_made_safe() {
        assert_eq!(key_safe("node-1.a_b"), "node-1.a_b");
        assert_eq!(key_safe("a/b c"), "a_b_c");
        assert_eq!(key_safe(""), "_");
        assert_eq!(key_safe(".."), "_");
    }
}
