//! The service's state: registered repositories, the indices catalog, operations in flight,
//! and their persistence in `path.data` (`repositories.json`, `indices.json`).

use std::collections::{BTreeMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use coffer_client::{ClientRegistry, Environment, SecureValue};
use coffer_repository::clock::Clock;
use coffer_repository::lease::{Lease, LeaseConfig, LeaseGuard, LeaseOwner};
use coffer_repository::model::{RepositoryData, SnapshotSummary};
use coffer_repository::progress::Progress;
use coffer_repository::store::{FsBlobStore, S3BlobStore};
use coffer_repository::{
    BlobStore, Capabilities, ExpectedGeneration, Repository, RepositoryError, RepositorySettings,
};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::NodeInfo;
use crate::auth::store::SECURITY_PREFIX;
use crate::auth::{CredentialStore, Security, SecurityLimits};
use crate::error::{ApiResult, EsError};
use crate::persist;

/// Re-reads the keystore for `reload_secure_settings`: given the password from the request
/// body (or `None` for the usual sources), returns the secure settings or the reason it
/// could not (`Provided keystore password was incorrect`, …).
pub type SecureLoader = Arc<
    dyn Fn(Option<&SecretString>) -> Result<BTreeMap<String, SecureValue>, String> + Send + Sync,
>;

/// An index attached by the operator (`indices.<name>.path` in `coffer.yml`).
#[derive(Debug, Clone)]
pub struct AttachedIndex {
    /// Its name.
    pub name: String,
    /// Its directory.
    pub path: PathBuf,
    /// `indices.<name>.number_of_shards` (default 1).
    pub number_of_shards: u32,
}

/// What the API needs from the configuration.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Node identity.
    pub node: NodeInfo,
    /// `path.data`.
    pub data_path: PathBuf,
    /// `path.repo`.
    pub repo_paths: Vec<PathBuf>,
    /// Attached indices.
    pub attached: Vec<AttachedIndex>,
    /// The `s3.client.*` settings, flat, for rebuilding clients on reload.
    pub s3_settings: BTreeMap<String, String>,
}

/// A registered repository as persisted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepoRecord {
    /// `fs` or `s3`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Settings as given, as strings.
    pub settings: BTreeMap<String, String>,
    /// The repository's uuid (`_na_` until it has a root).
    pub uuid: String,
    /// The root generation this service last saw or wrote (`None`: not known yet, `-1`:
    /// empty).
    pub expected: Option<i64>,
    /// Set when a foreign writer was detected: writes are refused until re-registration.
    #[serde(default)]
    pub corrupted: Option<String>,
    /// Snapshots that failed (the repository keeps no trace of them).
    #[serde(default)]
    pub failed: Vec<SnapshotSummary>,
    /// A snapshot running when this was written; on start it becomes a failed one.
    #[serde(default)]
    pub running: Option<SnapshotSummary>,
}

impl RepoRecord {
    /// The generation to check the repository against.
    pub fn expected_generation(&self) -> ExpectedGeneration {
        match self.expected {
            None => ExpectedGeneration::Unknown,
            Some(n) if n < 0 => ExpectedGeneration::Empty,
            Some(n) => ExpectedGeneration::At(u64::try_from(n).unwrap_or(0)),
        }
    }

    /// Whether the registration is readonly.
    pub fn readonly(&self) -> bool {
        ["readonly", "read_only"]
            .iter()
            .any(|k| self.settings.get(*k).is_some_and(|v| v == "true"))
    }
}

/// A snapshot being taken.
#[derive(Debug, Clone)]
pub struct LiveSnapshot {
    /// Its summary so far (state `IN_PROGRESS`).
    pub summary: SnapshotSummary,
    /// Live counters.
    pub progress: Arc<Progress>,
    /// Shards per index.
    pub shards: BTreeMap<String, u32>,
}

/// A registered repository in memory.
#[derive(Debug)]
pub struct RepoRuntime {
    /// As persisted.
    pub record: RepoRecord,
    /// The handle.
    pub repo: Repository,
    /// What the storage guarantees, once probed.
    pub caps: Option<Capabilities>,
    /// The write operation running (`snapshot [x]`, `delete`, …), if any.
    pub busy: Option<String>,
    /// The snapshot being taken, if any.
    pub live: Option<LiveSnapshot>,
}

/// An index in the catalog.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexRecord {
    /// Its uuid.
    pub uuid: String,
    /// Managed (under `path.data`) or attached.
    pub managed: bool,
    /// Its directory.
    pub path: PathBuf,
    /// Shards.
    pub number_of_shards: u32,
    /// Replicas (reported only).
    pub number_of_replicas: u32,
    /// Open or closed.
    pub open: bool,
    /// Creation time, milliseconds since the epoch.
    pub creation_date: i64,
}

/// Shared application state. Cheap to clone.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("node", &self.0.config.node.name)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub config: AppConfig,
    pub clients: ClientRegistry,
    pub clock: Arc<dyn Clock>,
    pub secure_loader: SecureLoader,
    /// Users, API keys and the authentication policy.
    pub security: Arc<Security>,
    pub repos: Mutex<BTreeMap<String, RepoRuntime>>,
    pub indices: Mutex<BTreeMap<String, IndexRecord>>,
    /// Indices a restore is writing.
    pub restoring: Mutex<HashSet<String>>,
    pub tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Cancelled at shutdown: background work stops at its next await and cleans up.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Serialises state-file writes so an older view never overwrites a newer one.
    persist_lock: Mutex<()>,
    pub lease_config: LeaseConfig,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock is caught by the HTTP layer; the state it guards is
    // only ever updated in whole steps, so continuing with it is safe.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

const REPOS_FILE: &str = "repositories.json";
const INDICES_FILE: &str = "indices.json";

impl AppState {
    /// Loads the persisted state (or starts empty), attaches configured indices, and turns
    /// any snapshot that was running when the process stopped into a failed one.
    pub fn open(
        config: AppConfig,
        clients: ClientRegistry,
        secure_loader: SecureLoader,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, String> {
        std::fs::create_dir_all(config.data_path.join("indices")).map_err(|e| {
            format!(
                "creating [{}]: {e}",
                config.data_path.join("indices").display()
            )
        })?;
        let records: BTreeMap<String, RepoRecord> =
            persist::load_json(&config.data_path.join(REPOS_FILE))?.unwrap_or_default();
        let mut indices: BTreeMap<String, IndexRecord> =
            persist::load_json(&config.data_path.join(INDICES_FILE))?.unwrap_or_default();
        // Attached indices come from the configuration (a name removed from it is dropped);
        // only whether each was open survives from the saved catalog.
        let was_open: BTreeMap<String, bool> = indices
            .iter()
            .filter(|(_, r)| !r.managed)
            .map(|(n, r)| (n.clone(), r.open))
            .collect();
        indices.retain(|_, r| r.managed);
        for a in &config.attached {
            crate::names::validate_index_name(&a.name)
                .map_err(|e| format!("indices.{}.path: {}", a.name, e.reason))?;
            let open = was_open.get(&a.name).copied().unwrap_or(true);
            if indices.get(&a.name).is_some_and(|r| r.managed) {
                return Err(format!(
                    "indices.{}.path: a managed index with this name already exists",
                    a.name
                ));
            }
            indices.insert(
                a.name.clone(),
                IndexRecord {
                    uuid: {
                        use sha2::Digest as _;
                        // Stable across restarts: derived from the name.
                        hex::encode(&sha2::Sha256::digest(format!("attached:{}", a.name))[..16])
                    },
                    managed: false,
                    path: a.path.clone(),
                    number_of_shards: a.number_of_shards.max(1),
                    number_of_replicas: 0,
                    open,
                    creation_date: 0,
                },
            );
        }
        let mut cache_key = [0u8; 32];
        getrandom::fill(&mut cache_key)
            .map_err(|e| format!("no randomness for the authentication cache key: {e}"))?;
        let security = Arc::new(Security::new(
            Arc::clone(&clock),
            SecurityLimits::default(),
            cache_key,
        ));
        zeroize::Zeroize::zeroize(&mut cache_key);
        let inner = Inner {
            config,
            clients,
            clock,
            secure_loader,
            security,
            repos: Mutex::new(BTreeMap::new()),
            indices: Mutex::new(indices),
            restoring: Mutex::new(HashSet::new()),
            tasks: Mutex::new(Vec::new()),
            shutdown: tokio_util::sync::CancellationToken::new(),
            persist_lock: Mutex::new(()),
            lease_config: LeaseConfig::default(),
        };
        let state = Self(Arc::new(inner));
        remove_restore_leftovers(&state.0.config.data_path.join("indices"));
        let mut repos = BTreeMap::new();
        for (name, mut record) in records {
            if let Some(mut running) = record.running.take() {
                running.state = coffer_repository::model::SnapshotState::Failed;
                running.reason =
                    Some("the coffer process stopped while the snapshot was running".into());
                running.end_time_ms = state.now_ms();
                record.failed.push(running);
            }
            let repo = match state.build_repository(&record.kind, &record.settings) {
                Ok(r) => r,
                Err(e) => {
                    // Keep the registration (it may be fixed by a later reload) but mark it.
                    tracing::warn!(repository = %name, error = %e.reason, "cannot open registered repository");
                    record.corrupted.get_or_insert(e.reason.clone());
                    Repository::new(
                        Arc::new(coffer_repository::store::MemoryBlobStore::new()),
                        Arc::clone(&state.0.clock),
                        RepositorySettings {
                            readonly: true,
                            ..RepositorySettings::default()
                        },
                    )
                }
            };
            repos.insert(
                name,
                RepoRuntime {
                    record,
                    repo,
                    caps: None,
                    busy: None,
                    live: None,
                },
            );
        }
        *lock(&state.0.repos) = repos;
        state.save_repos()?;
        state.save_indices()?;
        Ok(state)
    }

    /// The node.
    pub fn node(&self) -> &NodeInfo {
        &self.0.config.node
    }

    /// The configuration.
    pub fn config(&self) -> &AppConfig {
        &self.0.config
    }

    /// Milliseconds since the epoch, from the injected clock.
    pub fn now_ms(&self) -> i64 {
        self.0.clock.now().timestamp_millis()
    }

    /// Now, from the injected clock.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.clock.now()
    }

    pub(crate) fn repos(&self) -> MutexGuard<'_, BTreeMap<String, RepoRuntime>> {
        lock(&self.0.repos)
    }

    pub(crate) fn indices(&self) -> MutexGuard<'_, BTreeMap<String, IndexRecord>> {
        lock(&self.0.indices)
    }

    pub(crate) fn restoring(&self) -> MutexGuard<'_, HashSet<String>> {
        lock(&self.0.restoring)
    }

    /// Persists the repositories (records only).
    pub(crate) fn save_repos(&self) -> Result<(), String> {
        let _g = lock(&self.0.persist_lock);
        let records: BTreeMap<String, RepoRecord> = self
            .repos()
            .iter()
            .map(|(k, v)| {
                let mut r = v.record.clone();
                r.running = v.live.as_ref().map(|l| l.summary.clone());
                (k.clone(), r)
            })
            .collect();
        persist::save_json(&self.0.config.data_path.join(REPOS_FILE), &records)
            .map_err(|e| format!("saving {REPOS_FILE}: {e}"))
    }

    /// Persists the indices catalog.
    pub(crate) fn save_indices(&self) -> Result<(), String> {
        let _g = lock(&self.0.persist_lock);
        let records = self.indices().clone();
        persist::save_json(&self.0.config.data_path.join(INDICES_FILE), &records)
            .map_err(|e| format!("saving {INDICES_FILE}: {e}"))
    }

    /// [`save_repos`](Self::save_repos) as an API error.
    pub(crate) fn persist_repos(&self) -> ApiResult<()> {
        self.save_repos().map_err(EsError::internal)
    }

    /// [`save_indices`](Self::save_indices) as an API error.
    pub(crate) fn persist_indices(&self) -> ApiResult<()> {
        self.save_indices().map_err(EsError::internal)
    }

    /// Remembers a background task so shutdown can abandon it cleanly.
    pub(crate) fn track(&self, handle: JoinHandle<()>) {
        let mut tasks = lock(&self.0.tasks);
        tasks.retain(|h| !h.is_finished());
        tasks.push(handle);
    }

    /// A token cancelled when the service shuts down.
    pub(crate) fn shutdown_token(&self) -> tokio_util::sync::CancellationToken {
        self.0.shutdown.clone()
    }

    /// First step of a graceful stop, at the signal: tells background work to stop, so
    /// that requests waiting for it (`wait_for_completion=true`) are answered and the HTTP
    /// server can drain.
    pub fn begin_shutdown(&self) {
        self.0.shutdown.cancel();
    }

    /// Graceful stop: running background work is told to stop (a snapshot that never
    /// published its root leaves only garbage for `_cleanup`; its lease is released; a
    /// restore's staging directory is removed at the next start) and recorded as failed, so
    /// nothing shows as running after a restart.
    pub async fn shutdown(&self) {
        self.0.shutdown.cancel();
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *lock(&self.0.tasks));
        for mut t in tasks {
            // Releasing a lease is one request; do not let a hung storage hold the exit.
            if tokio::time::timeout(std::time::Duration::from_secs(30), &mut t)
                .await
                .is_err()
            {
                t.abort();
            }
        }
        let now = self.now_ms();
        {
            let mut repos = self.repos();
            for rt in repos.values_mut() {
                if let Some(live) = rt.live.take() {
                    let mut s = live.summary;
                    s.state = coffer_repository::model::SnapshotState::Failed;
                    s.reason = Some("the snapshot was abandoned because coffer shut down".into());
                    s.end_time_ms = now;
                    rt.record.failed.push(s);
                }
                rt.busy = None;
            }
        }
        if let Err(e) = self.save_repos() {
            tracing::error!(error = %e, "could not persist state at shutdown");
        }
    }

    /// Resolves an `fs` location under `path.repo`: relative locations resolve under the
    /// first entry; the canonical result must lie under some entry (no `..`, no symlink
    /// escape).
    pub(crate) fn resolve_fs_location(&self, location: &str) -> ApiResult<PathBuf> {
        let roots = &self.0.config.repo_paths;
        let refuse = || {
            EsError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "repository_exception",
                format!(
                    "location [{location}] doesn't match any of the locations specified by path.repo{}",
                    if roots.is_empty() {
                        " because this setting is empty".to_owned()
                    } else {
                        String::new()
                    }
                ),
            )
        };
        if location.is_empty() {
            return Err(EsError::illegal_argument("[location] must not be empty"));
        }
        let given = Path::new(location);
        if given
            .components()
            .any(|c| matches!(c, Component::ParentDir))
        {
            return Err(refuse());
        }
        let candidate = if given.is_absolute() {
            given.to_path_buf()
        } else {
            roots.first().ok_or_else(refuse)?.join(given)
        };
        // Canonicalise the longest existing ancestor, so a symlink anywhere on the way is
        // followed before the containment check. A dangling symlink counts as existing (its
        // canonicalisation then fails): skipping it would let the store create the directory
        // it points to, outside path.repo.
        let mut existing = candidate.clone();
        let mut tail = Vec::new();
        while existing.symlink_metadata().is_err() {
            let Some(name) = existing.file_name().map(ToOwned::to_owned) else {
                return Err(refuse());
            };
            tail.push(name);
            if !existing.pop() {
                return Err(refuse());
            }
        }
        let mut resolved = existing.canonicalize().map_err(|_| refuse())?;
        for t in tail.into_iter().rev() {
            resolved.push(t);
        }
        for root in roots {
            if let Ok(r) = root.canonicalize()
                && resolved.starts_with(&r)
            {
                return Ok(resolved);
            }
        }
        Err(refuse())
    }

    /// Builds a repository handle from validated settings.
    pub(crate) fn build_repository(
        &self,
        kind: &str,
        settings: &BTreeMap<String, String>,
    ) -> ApiResult<Repository> {
        let rs = crate::repo_settings::parse(kind, settings)?;
        let store: Arc<dyn BlobStore> = match kind {
            "fs" => {
                let location = settings
                    .get("location")
                    .ok_or_else(|| EsError::illegal_argument("[location] is required"))?;
                let path = self.resolve_fs_location(location)?;
                Arc::new(FsBlobStore::open(path).map_err(|e| {
                    EsError::new(
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        "repository_exception",
                        format!("cannot open fs repository at [{location}]: {e}"),
                    )
                })?)
            }
            "s3" => {
                let bucket = settings.get("bucket").cloned().unwrap_or_default();
                let client_name = settings
                    .get("client")
                    .map_or("default", String::as_str)
                    .to_owned();
                let client = self
                    .0
                    .clients
                    .client(&client_name)
                    .map_err(|e| EsError::illegal_argument(e.to_string()))?;
                let base = settings.get("base_path").map_or("", String::as_str);
                Arc::new(S3BlobStore::new(client, bucket, base))
            }
            other => {
                return Err(EsError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "repository_exception",
                    format!("repository type [{other}] does not exist"),
                ));
            }
        };
        Ok(Repository::new(store, Arc::clone(&self.0.clock), rs))
    }

    /// The handle and record of a registered repository.
    pub(crate) fn repo(&self, name: &str) -> ApiResult<(Repository, RepoRecord)> {
        let repos = self.repos();
        let rt = repos
            .get(name)
            .ok_or_else(|| EsError::repository_missing(name))?;
        Ok((rt.repo.clone(), rt.record.clone()))
    }

    /// Reads the current root, checking it against the expected generation for writable
    /// registrations. A foreign writer marks the repository corrupted.
    pub(crate) async fn load_root(
        &self,
        name: &str,
    ) -> ApiResult<(Option<u64>, RepositoryData, RepoRecord)> {
        let (repo, record, busy) = {
            let repos = self.repos();
            let rt = repos
                .get(name)
                .ok_or_else(|| EsError::repository_missing(name))?;
            (rt.repo.clone(), rt.record.clone(), rt.busy.is_some())
        };
        // While one of our own writes runs, the root may move under this read at any
        // moment: that is not a foreign writer, so the check waits for the write to end
        // (the writer itself checks the generation under the lease).
        let expected = if record.readonly() || record.corrupted.is_some() || busy {
            ExpectedGeneration::Unknown
        } else {
            record.expected_generation()
        };
        match repo.load(expected).await {
            Ok((generation, data)) => {
                self.observe(name, generation, &data.uuid, !record.readonly() && !busy);
                Ok((generation, data, record))
            }
            Err(e) => Err(self.repo_error(name, &e)),
        }
    }

    /// Records the generation seen (for writable registrations) and the uuid.
    pub(crate) fn observe(&self, name: &str, generation: Option<u64>, uuid: &str, track: bool) {
        let changed = {
            let mut repos = self.repos();
            let Some(rt) = repos.get_mut(name) else {
                return;
            };
            let mut changed = false;
            if !uuid.is_empty() && rt.record.uuid != uuid {
                uuid.clone_into(&mut rt.record.uuid);
                changed = true;
            }
            let g = generation.map_or(-1, |g| i64::try_from(g).unwrap_or(i64::MAX));
            if track && rt.record.corrupted.is_none() && rt.record.expected != Some(g) {
                rt.record.expected = Some(g);
                changed = true;
            }
            changed
        };
        if changed && let Err(e) = self.save_repos() {
            tracing::error!(error = %e, "could not persist repository state");
        }
    }

    /// After one of our writes published root `generation`: remembers it, and the
    /// repository's uuid (fixed by the first root) for `GET /_snapshot`.
    pub(crate) async fn after_write(&self, name: &str, generation: u64) {
        let uuid = match self.repo(name) {
            Ok((repo, record)) if record.uuid == "_na_" || record.uuid.is_empty() => repo
                .read_root(generation)
                .await
                .map(|d| d.uuid)
                .unwrap_or_default(),
            _ => String::new(),
        };
        self.observe(name, Some(generation), &uuid, true);
    }

    /// Converts a repository-layer error, marking the repository corrupted on a foreign
    /// writer.
    pub(crate) fn repo_error(&self, name: &str, e: &RepositoryError) -> EsError {
        if matches!(e, RepositoryError::ConcurrentModification { .. }) {
            {
                let mut repos = self.repos();
                if let Some(rt) = repos.get_mut(name) {
                    rt.record.corrupted = Some(e.to_string());
                }
            }
            tracing::error!(repository = %name, error = %e, "foreign writer detected; repository marked corrupted");
            if let Err(err) = self.save_repos() {
                tracing::error!(error = %err, "could not persist repository state");
            }
        }
        EsError::from_repository(name, e)
    }

    /// Refuses writes to corrupted or readonly registrations.
    pub(crate) fn check_writable(name: &str, record: &RepoRecord) -> ApiResult<()> {
        if let Some(why) = &record.corrupted {
            return Err(EsError::repository(
                name,
                format!(
                    "the repository is marked corrupted and refuses writes until it is registered again: {why}"
                ),
            ));
        }
        if record.readonly() {
            return Err(EsError::repository(
                name,
                "cannot write: the repository is readonly",
            ));
        }
        Ok(())
    }

    /// Takes the repository's single write slot (one snapshot, delete, clone or cleanup at
    /// a time), or fails with `concurrent_snapshot_execution_exception`.
    pub(crate) fn begin(&self, name: &str, snap: &str, what: &str) -> ApiResult<BusyGuard> {
        let mut repos = self.repos();
        let rt = repos
            .get_mut(name)
            .ok_or_else(|| EsError::repository_missing(name))?;
        if let Some(running) = &rt.busy {
            return Err(EsError::concurrent(name, snap, what, running));
        }
        rt.busy = Some(match what {
            w if w.starts_with("snapshot") => "a snapshot".to_owned(),
            "delete" => "a snapshot deletion".to_owned(),
            other => format!("a [{other}]"),
        });
        Ok(BusyGuard {
            state: self.clone(),
            repo: name.to_owned(),
        })
    }

    /// Takes the repository's lease for `operation`.
    pub(crate) async fn lease(&self, name: &str, operation: &str) -> ApiResult<LeaseGuard> {
        let (repo, record, caps) = {
            let repos = self.repos();
            let rt = repos
                .get(name)
                .ok_or_else(|| EsError::repository_missing(name))?;
            (rt.repo.clone(), rt.record.clone(), rt.caps)
        };
        let caps = if let Some(c) = caps {
            c
        } else {
            let c = coffer_repository::verify::probe_capabilities(repo.store().as_ref())
                .await
                .map_err(|e| self.repo_error(name, &e))?;
            if let Some(rt) = self.repos().get_mut(name) {
                rt.caps = Some(c);
            }
            c
        };
        let node = self.node();
        Lease::acquire(
            Arc::clone(repo.store()),
            caps,
            Arc::clone(repo.clock()),
            LeaseOwner {
                node_name: node.name.clone(),
                node_id: node.node_id.clone(),
                pid: std::process::id(),
                repository_uuid: record.uuid.clone(),
                operation: operation.to_owned(),
            },
            self.0.lease_config,
        )
        .await
        .map_err(|e| self.repo_error(name, &e))
    }

    /// The S3 client registry.
    pub fn clients(&self) -> &ClientRegistry {
        &self.0.clients
    }

    /// Authentication: the policy, the users and API keys in force.
    pub fn security(&self) -> &Arc<Security> {
        &self.0.security
    }

    /// Re-reads the keystore (with the usual non-interactive password sources) and swaps in
    /// its users and API keys; what SIGHUP does. Returns the number of users and keys.
    pub fn reload_credentials(&self) -> Result<(usize, usize), String> {
        let secure = (self.0.secure_loader)(None)?;
        let store = credential_store(&secure).map_err(|e| e.reason.clone())?;
        self.0.security.replace_store(store);
        Ok(self.0.security.counts())
    }

    /// Re-reads the keystore, swaps in its users and API keys, and reloads every S3
    /// client. The credentials are swapped first and independently: a revoked key must stop
    /// working even when an S3 client setting fails to reload.
    pub(crate) fn reload_secure_settings(
        &self,
        password: Option<&SecretString>,
    ) -> Result<(), (String, String)> {
        let mut secure = (self.0.secure_loader)(password)
            .map_err(|reason| ("security_exception".to_owned(), reason))?;
        let store = credential_store(&secure)
            .map_err(|e| ("security_exception".to_owned(), e.reason.clone()))?;
        self.0.security.replace_store(store);
        let (users, keys) = self.0.security.counts();
        tracing::info!(users, api_keys = keys, "users and API keys reloaded");
        secure.retain(|k, _| !k.starts_with(SECURITY_PREFIX));
        self.0
            .clients
            .reload(
                &self.0.config.s3_settings,
                &secure,
                &Environment::from_process(),
            )
            .map_err(|e| ("illegal_argument_exception".to_owned(), e.to_string()))
    }
}

/// The users and API keys among the keystore's entries.
pub fn credential_store(
    secure: &BTreeMap<String, SecureValue>,
) -> Result<CredentialStore, EsError> {
    use secrecy::ExposeSecret as _;
    CredentialStore::from_entries(secure.iter().map(|(k, v)| {
        let text = match v {
            SecureValue::Text(t) => Some(t.expose_secret()),
            SecureValue::Bytes(_) => None,
        };
        (k.as_str(), text)
    }))
}

/// Removes staging directories of restores interrupted by a crash or shutdown
/// (`.<name>.restoring-<uuid>` beside the index).
fn remove_restore_leftovers(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.contains(".restoring-") {
            match std::fs::remove_dir_all(e.path()) {
                Ok(()) => {
                    tracing::info!(path = %e.path().display(), "removed an interrupted restore's staging directory");
                }
                Err(err) => {
                    tracing::warn!(path = %e.path().display(), error = %err, "cannot remove an interrupted restore's staging directory");
                }
            }
        }
    }
}

/// Releases a repository's write slot when dropped.
#[derive(Debug)]
pub(crate) struct BusyGuard {
    state: AppState,
    repo: String,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        if let Some(rt) = self.state.repos().get_mut(&self.repo) {
            rt.busy = None;
        }
    }
}
