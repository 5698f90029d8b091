//! `/_snapshot/{repo}/{snap}`: create, get, `_status`, delete, `_restore`, `_clone`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{SecondsFormat, TimeZone, Utc};
use coffer_repository::model::{
    RepositoryData, ShardCounts, SnapshotState, SnapshotStats, SnapshotSummary,
};
use coffer_repository::progress::{Progress, ShardProgress, Stage};
use coffer_repository::snapshot::{IndexSource, SnapshotRequest};
use serde_json::{Map, Value, json};

use crate::error::{ApiResult, EsError};
use crate::names;
use crate::params::{Body, Params, split_list};
use crate::state::{AppState, IndexRecord, LiveSnapshot};

/// `version_id` for the compatibility version (8.17.0).
const VERSION_ID: u64 = 8_170_099;

fn state_str(s: SnapshotState) -> &'static str {
    match s {
        SnapshotState::Success => "SUCCESS",
        SnapshotState::Partial => "PARTIAL",
        SnapshotState::Failed => "FAILED",
        SnapshotState::InProgress => "IN_PROGRESS",
    }
}

fn iso(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// How a SnapshotInfo is rendered.
#[derive(Debug, Clone, Copy)]
// Each flag is one of Elasticsearch's independent query parameters.
#[allow(clippy::struct_excessive_bools)]
struct InfoOptions {
    verbose: bool,
    include_repository: bool,
    index_names: bool,
    /// `?human`: `duration` beside `duration_in_millis`.
    human: bool,
}

/// SnapshotInfo, in Elasticsearch's field order.
fn snapshot_info(
    repo: &str,
    s: &SnapshotSummary,
    opts: InfoOptions,
    index_details: Option<Value>,
) -> Value {
    let mut m = Map::new();
    m.insert("snapshot".into(), s.name.clone().into());
    m.insert("uuid".into(), s.uuid.clone().into());
    if opts.include_repository {
        m.insert("repository".into(), repo.into());
    }
    if opts.verbose {
        m.insert("version_id".into(), VERSION_ID.into());
        m.insert("version".into(), crate::ES_COMPAT_VERSION.into());
    }
    if opts.index_names {
        m.insert("indices".into(), json!(s.indices));
    }
    m.insert("data_streams".into(), json!([]));
    if !opts.verbose {
        m.insert("state".into(), state_str(s.state).into());
        return Value::Object(m);
    }
    m.insert("include_global_state".into(), s.include_global_state.into());
    if let Some(meta) = &s.metadata {
        m.insert("metadata".into(), meta.clone());
    }
    if let Some(d) = index_details {
        m.insert("index_details".into(), d);
    }
    m.insert("state".into(), state_str(s.state).into());
    if let Some(r) = &s.reason {
        m.insert("reason".into(), r.clone().into());
    }
    m.insert("start_time".into(), iso(s.start_time_ms).into());
    m.insert("start_time_in_millis".into(), s.start_time_ms.into());
    if s.state != SnapshotState::InProgress {
        m.insert("end_time".into(), iso(s.end_time_ms).into());
        m.insert("end_time_in_millis".into(), s.end_time_ms.into());
        let took = (s.end_time_ms - s.start_time_ms).max(0);
        if opts.human {
            m.insert("duration".into(), crate::misc::duration(took).into());
        }
        m.insert("duration_in_millis".into(), took.into());
    }
    let failures: Vec<Value> = s
        .failures
        .iter()
        .map(|f| {
            json!({"index": f.index, "index_uuid": f.index, "shard_id": f.shard,
                   "reason": f.reason, "node_id": Value::Null, "status": "INTERNAL_SERVER_ERROR"})
        })
        .collect();
    m.insert("failures".into(), Value::Array(failures));
    m.insert(
        "shards".into(),
        json!({"total": s.shards.total, "failed": s.shards.failed, "successful": s.shards.successful}),
    );
    m.insert("feature_states".into(), json!([]));
    Value::Object(m)
}

/// Every snapshot of a repository: published ones, failed ones (kept locally), and the one
/// running.
async fn all_snapshots(
    state: &AppState,
    repo: &str,
) -> ApiResult<(Vec<SnapshotSummary>, RepositoryData)> {
    let (_, root, record) = state.load_root(repo).await?;
    let mut out = root.snapshots.clone();
    out.extend(record.failed.iter().cloned());
    if let Some(live) = state.repos().get(repo).and_then(|r| r.live.clone()) {
        out.push(live.summary);
    }
    Ok((out, root))
}

// ---------------------------------------------------------------- create

/// `PUT/POST /_snapshot/{repo}/{snap}`.
pub async fn create(
    State(state): State<AppState>,
    Path((repo_name, snap)): Path<(String, String)>,
    params: Params,
    body: Bytes,
) -> ApiResult<Response> {
    params.check(&["master_timeout", "wait_for_completion"])?;
    let wait = params.bool("wait_for_completion", false)?;
    let name = names::resolve_date_math(&snap, state.now()).map_err(|e| {
        EsError::invalid_snapshot_name(&repo_name, &snap, &format!("invalid date math: {e}"))
    })?;
    names::validate_snapshot_name(&repo_name, &name)?;
    let mut b = Body::parse("create_snapshot", &body)?;
    let indices = b.string_list("indices")?.unwrap_or_default();
    let ignore_unavailable = b.bool("ignore_unavailable")?.unwrap_or(false);
    let allow_no_indices = b.bool("allow_no_indices")?.unwrap_or(true);
    let _ = b.string_list("expand_wildcards")?;
    let include_global_state = b.bool("include_global_state")?.unwrap_or(true);
    let partial = b.bool("partial")?.unwrap_or(false);
    let metadata = b.object("metadata")?.map(Value::Object);
    // coffer has no feature states; `[]` and `["none"]` are what clients send.
    if let Some(fs) = b.string_list("feature_states")?
        && fs.iter().any(|f| f != "none")
    {
        return Err(EsError::illegal_argument(format!(
            "feature states [{}] do not exist: coffer has no feature states",
            fs.join(",")
        )));
    }
    b.finish()?;

    let (_, record) = state.repo(&repo_name)?;
    AppState::check_writable(&repo_name, &record)?;

    let catalog: BTreeMap<String, IndexRecord> = state.indices().clone();
    let (selected, missing) = names::resolve(&indices, catalog.keys().map(String::as_str));
    if let Some(m) = missing.first()
        && !ignore_unavailable
    {
        return Err(EsError::index_not_found(m));
    }
    if selected.is_empty() && !allow_no_indices && !indices.is_empty() {
        return Err(EsError::index_not_found(&indices.join(",")));
    }
    // Checked before taking the write slot too: a foreign writer is reported as such
    // (reads during our own writes cannot tell).
    state.load_root(&repo_name).await?;
    let busy = state.begin(&repo_name, &name, "snapshot")?;
    let (_, root, _) = state.load_root(&repo_name).await?;
    let (_, record) = state.repo(&repo_name)?;
    if root.snapshots.iter().any(|s| s.name == name) || record.failed.iter().any(|s| s.name == name)
    {
        return Err(EsError::snapshot_name_in_use(&repo_name, &name));
    }
    let lease = state
        .lease(&repo_name, &format!("snapshot [{name}]"))
        .await?;
    let sources: Vec<IndexSource> = selected
        .iter()
        .filter_map(|n| catalog.get(n).map(|r| (n, r)))
        .map(|(n, r)| IndexSource {
            name: n.clone(),
            root: r.path.clone(),
            number_of_shards: r.number_of_shards.max(1),
            number_of_replicas: r.number_of_replicas,
        })
        .collect();
    let uuid = uuid::Uuid::new_v4().simple().to_string();
    let start = state.now_ms();
    let progress = Progress::new();
    let summary = SnapshotSummary {
        name: name.clone(),
        uuid: uuid.clone(),
        state: SnapshotState::InProgress,
        indices: {
            let mut v = selected.clone();
            v.sort();
            v
        },
        start_time_ms: start,
        end_time_ms: 0,
        shards: ShardCounts {
            total: sources.iter().map(|s| s.number_of_shards).sum(),
            failed: 0,
            successful: 0,
        },
        failures: Vec::new(),
        reason: None,
        include_global_state,
        metadata: metadata.clone(),
        version: crate::ES_COMPAT_VERSION.to_owned(),
        stats: SnapshotStats::default(),
    };
    if let Some(rt) = state.repos().get_mut(&repo_name) {
        rt.live = Some(LiveSnapshot {
            summary: summary.clone(),
            progress: Arc::clone(&progress),
            shards: sources
                .iter()
                .map(|s| (s.name.clone(), s.number_of_shards))
                .collect(),
        });
    }
    state.persist_repos()?;
    let request = SnapshotRequest {
        name: name.clone(),
        uuid,
        indices: sources,
        partial,
        include_global_state,
        metadata,
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task_state = state.clone();
    let task_repo = repo_name.clone();
    let handle = tokio::spawn(async move {
        let _busy = busy;
        let Ok((repo, record)) = task_state.repo(&task_repo) else {
            return;
        };
        let cancelled = task_state.shutdown_token();
        let result = tokio::select! {
            r = coffer_repository::snapshot::create_snapshot(
                &repo,
                &lease,
                record.expected_generation(),
                request,
                progress,
            ) => r,
            () = cancelled.cancelled() => Err(coffer_repository::RepositoryError::LeaseLost {
                reason: "the snapshot was abandoned because coffer shut down".to_owned(),
            }),
        };
        if let Err(e) = lease.release().await {
            tracing::warn!(repository = %task_repo, error = %e, "releasing the lease failed");
        }
        let final_summary = match result {
            Ok(outcome) => {
                if let Some(g) = outcome.generation {
                    task_state.after_write(&task_repo, g).await;
                }
                outcome.summary
            }
            Err(e) => {
                let reason = if task_state.shutdown_token().is_cancelled() {
                    "the snapshot was abandoned because coffer shut down".to_owned()
                } else {
                    task_state.repo_error(&task_repo, &e).reason.clone()
                };
                let mut s = summary;
                s.state = SnapshotState::Failed;
                s.reason = Some(reason);
                s.end_time_ms = task_state.now_ms();
                s
            }
        };
        {
            let mut repos = task_state.repos();
            if let Some(rt) = repos.get_mut(&task_repo) {
                rt.live = None;
                if final_summary.state == SnapshotState::Failed {
                    rt.record.failed.push(final_summary.clone());
                }
            }
        }
        if let Err(e) = task_state.save_repos() {
            tracing::error!(error = %e, "could not persist repository state");
        }
        tracing::info!(repository = %task_repo, snapshot = %final_summary.name,
                       state = state_str(final_summary.state), "snapshot finished");
        let _ = tx.send(final_summary);
    });
    state.track(handle);
    if !wait {
        return Ok(Json(json!({"accepted": true})).into_response());
    }
    let done = rx
        .await
        .map_err(|_| EsError::snapshot(&repo_name, &name, "the snapshot task was abandoned"))?;
    let opts = InfoOptions {
        verbose: true,
        include_repository: true,
        index_names: true,
        human: params.bool("human", false)?,
    };
    // As Elasticsearch's `CreateSnapshotResponse`: the SnapshotInfo, with the status its
    // state maps to (FAILED is 500), so the client sees the reason and the shard failures.
    let status = if done.state == SnapshotState::Failed {
        axum::http::StatusCode::INTERNAL_SERVER_ERROR
    } else {
        axum::http::StatusCode::OK
    };
    Ok((
        status,
        Json(json!({"snapshot": snapshot_info(&repo_name, &done, opts, None)})),
    )
        .into_response())
}

// ---------------------------------------------------------------- get

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortBy {
    StartTime,
    Name,
    Duration,
    IndexCount,
    ShardCount,
    FailedShardCount,
    Repository,
}

impl SortBy {
    fn parse(v: &str) -> ApiResult<Self> {
        Ok(match v {
            "start_time" => Self::StartTime,
            "name" => Self::Name,
            "duration" => Self::Duration,
            "index_count" => Self::IndexCount,
            "shard_count" => Self::ShardCount,
            "failed_shard_count" => Self::FailedShardCount,
            "repository" => Self::Repository,
            other => {
                return Err(EsError::illegal_argument(format!(
                    "invalid snapshot sort order [{other}]"
                )));
            }
        })
    }

    fn key(self, repo: &str, s: &SnapshotSummary) -> SortKey {
        let n = |v: i64| SortKey::Num(v);
        match self {
            Self::StartTime => n(s.start_time_ms),
            Self::Name => SortKey::Text(s.name.clone()),
            Self::Duration => n(if s.state == SnapshotState::InProgress {
                0
            } else {
                s.end_time_ms - s.start_time_ms
            }),
            Self::IndexCount => n(i64::try_from(s.indices.len()).unwrap_or(i64::MAX)),
            Self::ShardCount => n(i64::from(s.shards.total)),
            Self::FailedShardCount => n(i64::from(s.shards.failed)),
            Self::Repository => SortKey::Text(repo.to_owned()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum SortKey {
    Num(i64),
    Text(String),
}

impl SortKey {
    fn text(&self) -> String {
        match self {
            Self::Num(n) => n.to_string(),
            Self::Text(s) => s.clone(),
        }
    }

    fn parse_like(&self, s: &str) -> ApiResult<Self> {
        match self {
            Self::Num(_) => s
                .parse()
                .map(Self::Num)
                .map_err(|_| EsError::illegal_argument(format!("invalid sort value [{s}]"))),
            Self::Text(_) => Ok(Self::Text(s.to_owned())),
        }
    }
}

fn parse_states(v: &str) -> ApiResult<Vec<SnapshotState>> {
    split_list(v)
        .iter()
        .map(|s| match s.as_str() {
            "SUCCESS" => Ok(SnapshotState::Success),
            "PARTIAL" => Ok(SnapshotState::Partial),
            // coffer has no incompatible snapshots; they would be failed ones.
            "FAILED" | "INCOMPATIBLE" => Ok(SnapshotState::Failed),
            "IN_PROGRESS" => Ok(SnapshotState::InProgress),
            other => Err(EsError::illegal_argument(format!(
                "No enum constant org.elasticsearch.snapshots.SnapshotState.{other}"
            ))),
        })
        .collect()
}

/// `GET /_snapshot/{repo}/{snap}`.
pub async fn get(
    State(state): State<AppState>,
    Path((repo_expr, snap_expr)): Path<(String, String)>,
    params: Params,
) -> ApiResult<Response> {
    params.check(&[
        "after",
        "from_sort_value",
        "ignore_unavailable",
        "include_repository",
        "index_details",
        "index_names",
        "master_timeout",
        "offset",
        "order",
        "size",
        "slm_policy_filter",
        "sort",
        "verbose",
        "state",
    ])?;
    let ignore_unavailable = params.bool("ignore_unavailable", false)?;
    let opts = InfoOptions {
        verbose: params.bool("verbose", true)?,
        include_repository: params.bool("include_repository", true)?,
        index_names: params.bool("index_names", true)?,
        human: params.bool("human", false)?,
    };
    let index_details = params.bool("index_details", false)?;
    let human = params.bool("human", false)?;
    let sort = SortBy::parse(params.get("sort").unwrap_or("start_time"))?;
    let desc = match params.get("order").unwrap_or("asc") {
        "asc" => false,
        "desc" => true,
        other => {
            return Err(EsError::illegal_argument(format!(
                "unknown order [{other}], must be [asc] or [desc]"
            )));
        }
    };
    let size = params.i64("size")?.unwrap_or(-1);
    let offset = params.u64("offset")?.unwrap_or(0);
    let states = params.get("state").map(parse_states).transpose()?;
    if params.get("after").is_some()
        && (params.get("offset").is_some() || params.get("from_sort_value").is_some())
    {
        return Err(EsError::validation(&[
            "[after] cannot be used in combination with [offset] or [from_sort_value]".to_owned(),
        ]));
    }
    if !opts.verbose
        && (params
            .get("sort")
            .is_some_and(|s| s != "start_time" && s != "name"))
    {
        return Err(EsError::validation(&[
            "can only use sort [start_time] or [name] when verbose is false".to_owned(),
        ]));
    }
    let repos = crate::repos::select(&state, Some(&repo_expr))?;
    let items = split_list(&snap_expr);
    let mut rows: Vec<(String, SnapshotSummary, Option<Value>)> = Vec::new();
    for repo in &repos {
        let (all, root) = all_snapshots(&state, repo).await?;
        let selected: Vec<SnapshotSummary> = if items.iter().any(|i| i == "_current") {
            all.into_iter()
                .filter(|s| s.state == SnapshotState::InProgress)
                .collect()
        } else {
            let (names_sel, missing) = names::resolve(&items, all.iter().map(|s| s.name.as_str()));
            if let Some(m) = missing.first()
                && !ignore_unavailable
            {
                return Err(EsError::snapshot_missing(repo, m));
            }
            // By name, first occurrence: a linear search per name made `_all` quadratic in
            // the number of snapshots.
            let mut by_name: std::collections::HashMap<&str, &SnapshotSummary> =
                std::collections::HashMap::with_capacity(all.len());
            for s in &all {
                by_name.entry(s.name.as_str()).or_insert(s);
            }
            names_sel
                .iter()
                .filter_map(|n| by_name.get(n.as_str()).map(|s| (*s).clone()))
                .collect()
        };
        for s in selected {
            let details = if index_details && opts.verbose {
                Some(index_details_of(&state, repo, &root, &s, human).await?)
            } else {
                None
            };
            rows.push((repo.clone(), s, details));
        }
    }
    if let Some(states) = &states {
        rows.retain(|(_, s, _)| states.contains(&s.state));
    }
    let key = |r: &(String, SnapshotSummary, Option<Value>)| {
        (sort.key(&r.0, &r.1), r.1.name.clone(), r.0.clone())
    };
    // Cached: the key clones names, and a comparison sort would build it 2 n log n times.
    rows.sort_by_cached_key(key);
    if desc {
        rows.reverse();
    }
    if let Some(from) = params.get("from_sort_value")
        && let Some(first) = rows.first()
    {
        let bound = sort.key(&first.0, &first.1).parse_like(from)?;
        rows.retain(|r| {
            let k = sort.key(&r.0, &r.1);
            if desc { k <= bound } else { k >= bound }
        });
    }
    // Elasticsearch counts `total` before `after` (as it does before `offset`): a page
    // fetched with `after` reports the same total as the first page.
    let total = rows.len();
    if let Some(after) = params.get("after") {
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(after.trim_end_matches('='))
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| EsError::illegal_argument(format!("invalid after [{after}]")))?;
        let mut parts = decoded.splitn(3, ',');
        let (Some(v), Some(r), Some(n)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(EsError::illegal_argument(format!(
                "invalid after [{after}]"
            )));
        };
        if let Some(first) = rows.first() {
            let bound = (
                sort.key(&first.0, &first.1).parse_like(v)?,
                n.to_owned(),
                r.to_owned(),
            );
            rows.retain(|row| {
                let k = key(row);
                if desc { k < bound } else { k > bound }
            });
        }
    }
    let before_skip = rows.len();
    let skip = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(rows.len());
    rows.drain(..skip);
    let mut next = None;
    if size > 0 {
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        if rows.len() > size {
            rows.truncate(size);
            if let Some(last) = rows.last() {
                let token = format!(
                    "{},{},{}",
                    sort.key(&last.0, &last.1).text(),
                    last.0,
                    last.1.name
                );
                next = Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token));
            }
        }
    }
    let remaining = before_skip - skip - rows.len();
    let snapshots: Vec<Value> = rows
        .iter()
        .map(|(r, s, d)| snapshot_info(r, s, opts, d.clone()))
        .collect();
    let mut out = Map::new();
    out.insert("snapshots".into(), Value::Array(snapshots));
    if let Some(n) = next {
        out.insert("next".into(), n.into());
    }
    out.insert("total".into(), total.into());
    out.insert("remaining".into(), remaining.into());
    Ok(Json(Value::Object(out)).into_response())
}

fn human_size(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let b = bytes as f64;
    for (unit, div) in [
        ("tb", 1u64 << 40),
        ("gb", 1 << 30),
        ("mb", 1 << 20),
        ("kb", 1 << 10),
    ] {
        #[allow(clippy::cast_precision_loss)]
        let d = div as f64;
        if b >= d {
            return format!("{:.1}{unit}", b / d);
        }
    }
    format!("{bytes}b")
}

/// Per-index shard counts and sizes (read from the shard file lists).
async fn index_details_of(
    state: &AppState,
    repo: &str,
    root: &RepositoryData,
    s: &SnapshotSummary,
    human: bool,
) -> ApiResult<Value> {
    let mut out = Map::new();
    let published = root.snapshots.iter().any(|p| p.uuid == s.uuid);
    let mut sizes: BTreeMap<String, (u64, u32)> = BTreeMap::new();
    if published {
        let (handle, _) = state.repo(repo)?;
        let inputs =
            coffer_repository::delete::load_inputs(&handle, root.clone(), vec![s.uuid.clone()])
                .await
                .map_err(|e| state.repo_error(repo, &e))?;
        for shard in inputs.shard_snapshots.values() {
            let e = sizes.entry(shard.index.clone()).or_default();
            e.0 += shard.stats.total_size_in_bytes;
            e.1 += 1;
        }
    }
    for idx in &s.indices {
        let (size, shards) = sizes.get(idx).copied().unwrap_or_default();
        let mut m = Map::new();
        m.insert("shard_count".into(), shards.into());
        if human {
            m.insert("size".into(), human_size(size).into());
        }
        m.insert("size_in_bytes".into(), size.into());
        m.insert("max_segments_per_shard".into(), 0.into());
        out.insert(idx.clone(), Value::Object(m));
    }
    Ok(Value::Object(out))
}

// ---------------------------------------------------------------- status

fn stats_json(
    incr_files: u64,
    incr_bytes: u64,
    total_files: u64,
    total_bytes: u64,
    start: i64,
    time: i64,
) -> Value {
    json!({
        "incremental": {"file_count": incr_files, "size_in_bytes": incr_bytes},
        "total": {"file_count": total_files, "size_in_bytes": total_bytes},
        "start_time_in_millis": start,
        "time_in_millis": time.max(0),
    })
}

#[derive(Debug, Default, Clone, Copy)]
struct ShardTally {
    initializing: u64,
    started: u64,
    finalizing: u64,
    done: u64,
    failed: u64,
}

impl ShardTally {
    fn add(&mut self, stage: Stage) {
        match stage {
            Stage::Init => self.initializing += 1,
            Stage::Started => self.started += 1,
            Stage::Finalize => self.finalizing += 1,
            Stage::Done => self.done += 1,
            Stage::Failure => self.failed += 1,
        }
    }

    fn json(self) -> Value {
        let total = self.initializing + self.started + self.finalizing + self.done + self.failed;
        json!({"initializing": self.initializing, "started": self.started, "finalizing": self.finalizing,
               "done": self.done, "failed": self.failed, "total": total})
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Sums {
    incr_files: u64,
    incr_bytes: u64,
    total_files: u64,
    total_bytes: u64,
    start: i64,
    end: i64,
}

impl Sums {
    fn add(&mut self, other: &Sums) {
        self.incr_files += other.incr_files;
        self.incr_bytes += other.incr_bytes;
        self.total_files += other.total_files;
        self.total_bytes += other.total_bytes;
        if self.start == 0 || (other.start != 0 && other.start < self.start) {
            self.start = other.start;
        }
        self.end = self.end.max(other.end);
    }

    fn json(&self, now: i64) -> Value {
        let end = if self.end == 0 { now } else { self.end };
        stats_json(
            self.incr_files,
            self.incr_bytes,
            self.total_files,
            self.total_bytes,
            self.start,
            if self.start == 0 { 0 } else { end - self.start },
        )
    }
}

fn live_status(repo: &str, live: &LiveSnapshot, now: i64) -> Value {
    let mut indices = Map::new();
    let mut all = ShardTally::default();
    let mut total = Sums {
        start: live.summary.start_time_ms,
        ..Sums::default()
    };
    let shards = live.progress.snapshot();
    for (index, count) in &live.shards {
        let mut tally = ShardTally::default();
        let mut sums = Sums::default();
        let mut shard_map = Map::new();
        for shard in 0..*count {
            let p = shards.get(&(index.clone(), shard)).cloned();
            let (stage, s) = match p {
                Some(p) => {
                    let g = |c: &std::sync::atomic::AtomicU64| ShardProgress::get(c);
                    (
                        p.stage(),
                        Sums {
                            incr_files: g(&p.incremental_files),
                            incr_bytes: g(&p.incremental_bytes),
                            total_files: g(&p.total_files),
                            total_bytes: g(&p.total_bytes),
                            start: p.start_ms.load(std::sync::atomic::Ordering::Relaxed),
                            end: p.end_ms.load(std::sync::atomic::Ordering::Relaxed),
                        },
                    )
                }
                None => (Stage::Init, Sums::default()),
            };
            tally.add(stage);
            sums.add(&s);
            let mut stats = s.json(now);
            if let Some(p) = shards.get(&(index.clone(), shard)) {
                stats["processed"] = json!({
                    "file_count": ShardProgress::get(&p.processed_files),
                    "size_in_bytes": ShardProgress::get(&p.processed_bytes)});
            }
            shard_map.insert(
                shard.to_string(),
                json!({"stage": stage.as_str(), "stats": stats}),
            );
        }
        all.initializing += tally.initializing;
        all.started += tally.started;
        all.finalizing += tally.finalizing;
        all.done += tally.done;
        all.failed += tally.failed;
        total.add(&Sums { start: 0, ..sums });
        indices.insert(
            index.clone(),
            json!({"shards_stats": tally.json(), "stats": sums.json(now), "shards": shard_map}),
        );
    }
    let s = &live.summary;
    json!({"snapshot": s.name, "repository": repo, "uuid": s.uuid, "state": "STARTED",
           "include_global_state": s.include_global_state,
           "shards_stats": all.json(), "stats": Sums { end: 0, ..total }.json(now), "indices": indices})
}

async fn done_status(
    state: &AppState,
    repo: &str,
    root: &RepositoryData,
    s: &SnapshotSummary,
) -> ApiResult<Value> {
    let mut indices = Map::new();
    let mut all = ShardTally::default();
    if root.snapshots.iter().any(|p| p.uuid == s.uuid) {
        let (handle, _) = state.repo(repo)?;
        let inputs =
            coffer_repository::delete::load_inputs(&handle, root.clone(), vec![s.uuid.clone()])
                .await
                .map_err(|e| state.repo_error(repo, &e))?;
        let mut per_index: BTreeMap<String, BTreeMap<u32, Sums>> = BTreeMap::new();
        for shard in inputs.shard_snapshots.values() {
            per_index.entry(shard.index.clone()).or_default().insert(
                shard.shard,
                Sums {
                    incr_files: shard.stats.incremental_file_count,
                    incr_bytes: shard.stats.incremental_size_in_bytes,
                    total_files: shard.stats.total_file_count,
                    total_bytes: shard.stats.total_size_in_bytes,
                    start: shard.start_time_ms,
                    end: shard.start_time_ms + shard.time_ms,
                },
            );
        }
        for f in &s.failures {
            per_index.entry(f.index.clone()).or_default();
        }
        for (index, shards) in per_index {
            let mut tally = ShardTally::default();
            let mut sums = Sums::default();
            let mut shard_map = Map::new();
            for (n, st) in &shards {
                tally.add(Stage::Done);
                sums.add(st);
                shard_map.insert(
                    n.to_string(),
                    json!({"stage": "DONE", "stats": st.json(st.end)}),
                );
            }
            for f in s.failures.iter().filter(|f| f.index == index) {
                tally.add(Stage::Failure);
                shard_map.insert(
                    f.shard.to_string(),
                    json!({"stage": "FAILURE", "stats": Sums::default().json(0), "reason": f.reason}),
                );
            }
            all.done += tally.done;
            all.failed += tally.failed;
            indices.insert(
                index,
                json!({"shards_stats": tally.json(), "stats": sums.json(sums.end), "shards": shard_map}),
            );
        }
    } else {
        all.failed = u64::from(s.shards.failed);
    }
    let st = &s.stats;
    let stats = stats_json(
        st.incremental_file_count,
        st.incremental_size_in_bytes,
        st.total_file_count,
        st.total_size_in_bytes,
        s.start_time_ms,
        s.end_time_ms - s.start_time_ms,
    );
    Ok(
        json!({"snapshot": s.name, "repository": repo, "uuid": s.uuid, "state": state_str(s.state),
              "include_global_state": s.include_global_state,
              "shards_stats": all.json(), "stats": stats, "indices": indices}),
    )
}

/// `GET /_snapshot/_status`, `/_snapshot/{repo}/_status`, `/_snapshot/{repo}/{snap}/_status`.
pub async fn status(
    State(state): State<AppState>,
    path: Option<Path<BTreeMap<String, String>>>,
    params: Params,
) -> ApiResult<Response> {
    params.check(&["ignore_unavailable", "master_timeout"])?;
    let ignore_unavailable = params.bool("ignore_unavailable", false)?;
    let path = path.map(|p| p.0).unwrap_or_default();
    let now = state.now_ms();
    let mut out = Vec::new();
    match (path.get("repository"), path.get("snapshot")) {
        (repo, None) => {
            let repos = match repo {
                Some(r) => crate::repos::select(&state, Some(r))?,
                None => state.repos().keys().cloned().collect(),
            };
            let guard = state.repos();
            for r in repos {
                if let Some(live) = guard.get(&r).and_then(|rt| rt.live.as_ref()) {
                    out.push(live_status(&r, live, now));
                }
            }
        }
        (Some(repo), Some(snaps)) => {
            state.repo(repo)?;
            let (all, root) = all_snapshots(&state, repo).await?;
            let items = split_list(snaps);
            let (selected, missing) = names::resolve(&items, all.iter().map(|s| s.name.as_str()));
            if let Some(m) = missing.first()
                && !ignore_unavailable
            {
                return Err(EsError::snapshot_missing(repo, m));
            }
            for n in selected {
                let Some(s) = all.iter().find(|s| s.name == n) else {
                    continue;
                };
                let live = state.repos().get(repo).and_then(|rt| rt.live.clone());
                match live.filter(|l| l.summary.uuid == s.uuid) {
                    Some(l) => out.push(live_status(repo, &l, now)),
                    None => out.push(done_status(&state, repo, &root, s).await?),
                }
            }
        }
        (None, Some(_)) => return Err(EsError::illegal_argument("repository is required")),
    }
    Ok(Json(json!({"snapshots": out})).into_response())
}

// ---------------------------------------------------------------- delete

/// `DELETE /_snapshot/{repo}/{snap}` (comma lists and wildcards).
pub async fn delete(
    State(state): State<AppState>,
    Path((repo_name, snap_expr)): Path<(String, String)>,
    params: Params,
) -> ApiResult<Response> {
    params.check(&["master_timeout", "wait_for_completion"])?;
    // Deletion is always carried to its end before answering: an asynchronous delete would
    // make the next request on this repository fail with a concurrency error, which ES
    // avoids by queueing.
    let _ = params.bool("wait_for_completion", true)?;
    let (_, record) = state.repo(&repo_name)?;
    let (all, _) = all_snapshots(&state, &repo_name).await?;
    let items = split_list(&snap_expr);
    let (selected, missing) = names::resolve(&items, all.iter().map(|s| s.name.as_str()));
    if let Some(m) = missing.first() {
        return Err(EsError::snapshot_missing(&repo_name, m));
    }
    if selected.is_empty() && !items.iter().any(|i| names::is_pattern(i) || i == "_all") {
        return Err(EsError::snapshot_missing(&repo_name, &snap_expr));
    }
    let chosen: Vec<&SnapshotSummary> = selected
        .iter()
        .filter_map(|n| all.iter().find(|s| &s.name == n))
        .collect();
    if let Some(running) = chosen.iter().find(|s| s.state == SnapshotState::InProgress) {
        return Err(EsError::concurrent(
            &repo_name,
            &running.name,
            "delete snapshot",
            "a snapshot",
        ));
    }
    let failed_only: Vec<String> = chosen
        .iter()
        .filter(|s| record.failed.iter().any(|f| f.uuid == s.uuid))
        .map(|s| s.uuid.clone())
        .collect();
    let published: Vec<String> = chosen
        .iter()
        .filter(|s| !failed_only.contains(&s.uuid))
        .map(|s| s.uuid.clone())
        .collect();
    if !published.is_empty() {
        AppState::check_writable(&repo_name, &record)?;
        let _busy = state.begin(&repo_name, &snap_expr, "delete")?;
        let lease = state.lease(&repo_name, "delete").await?;
        let (repo, record) = state.repo(&repo_name)?;
        let result = coffer_repository::delete::delete_snapshots(
            &repo,
            &lease,
            record.expected_generation(),
            published,
        )
        .await;
        let _ = lease.release().await;
        let generation = result.map_err(|e| state.repo_error(&repo_name, &e))?;
        state.after_write(&repo_name, generation).await;
    }
    if !failed_only.is_empty() {
        if let Some(rt) = state.repos().get_mut(&repo_name) {
            rt.record.failed.retain(|f| !failed_only.contains(&f.uuid));
        }
        state.persist_repos()?;
    }
    Ok(Json(json!({"acknowledged": true})).into_response())
}

// ---------------------------------------------------------------- clone

/// `PUT /_snapshot/{repo}/{snap}/_clone/{target}`.
pub async fn clone(
    State(state): State<AppState>,
    Path((repo_name, source, target)): Path<(String, String, String)>,
    params: Params,
    body: Bytes,
) -> ApiResult<Response> {
    params.check(&["master_timeout"])?;
    let target = names::resolve_date_math(&target, state.now()).map_err(|e| {
        EsError::invalid_snapshot_name(&repo_name, &target, &format!("invalid date math: {e}"))
    })?;
    names::validate_snapshot_name(&repo_name, &target)?;
    let mut b = Body::parse("clone_snapshot", &body)?;
    let indices = b
        .string_list("indices")?
        .ok_or_else(|| EsError::validation(&["indices is missing".to_owned()]))?;
    b.finish()?;
    let (_, record) = state.repo(&repo_name)?;
    AppState::check_writable(&repo_name, &record)?;
    state.load_root(&repo_name).await?;
    let _busy = state.begin(&repo_name, &target, "clone")?;
    let (_, root, record) = state.load_root(&repo_name).await?;
    let src = root
        .snapshots
        .iter()
        .find(|s| s.name == source)
        .ok_or_else(|| EsError::snapshot_missing(&repo_name, &source))?;
    if root.snapshots.iter().any(|s| s.name == target)
        || record.failed.iter().any(|s| s.name == target)
    {
        return Err(EsError::snapshot_name_in_use(&repo_name, &target));
    }
    let (selected, missing) = names::resolve(&indices, src.indices.iter().map(String::as_str));
    if let Some(m) = missing.first() {
        return Err(EsError::index_not_found(m));
    }
    let lease = state
        .lease(&repo_name, &format!("clone [{source}] to [{target}]"))
        .await?;
    let (repo, record) = state.repo(&repo_name)?;
    let uuid = uuid::Uuid::new_v4().simple().to_string();
    let result = coffer_repository::clone::clone_snapshot(
        &repo,
        &lease,
        record.expected_generation(),
        &source,
        &target,
        &uuid,
        Some(&selected),
    )
    .await;
    let _ = lease.release().await;
    let (generation, _) = result.map_err(|e| state.repo_error(&repo_name, &e))?;
    state.after_write(&repo_name, generation).await;
    Ok(Json(json!({"acknowledged": true})).into_response())
}

// ---------------------------------------------------------------- restore

/// `POST /_snapshot/{repo}/{snap}/_restore`.
pub async fn restore(
    State(state): State<AppState>,
    Path((repo_name, snap)): Path<(String, String)>,
    params: Params,
    body: Bytes,
) -> ApiResult<Response> {
    params.check(&["master_timeout", "wait_for_completion"])?;
    let wait = params.bool("wait_for_completion", false)?;
    let mut b = Body::parse("restore_snapshot", &body)?;
    let indices = b.string_list("indices")?.unwrap_or_default();
    let ignore_unavailable = b.bool("ignore_unavailable")?.unwrap_or(false);
    let partial = b.bool("partial")?.unwrap_or(false);
    let rename_pattern = b.string("rename_pattern")?;
    let rename_replacement = b.string("rename_replacement")?;
    let _ = b.bool("include_global_state")?;
    let _ = b.bool("include_aliases")?;
    let _ = b.string_list("expand_wildcards")?;
    let _ = b.bool("allow_no_indices")?;
    // Index settings of Elasticsearch (routing, allocation) have no meaning for coffer's
    // directory trees; they are accepted so that ES restore requests work unchanged.
    let _ = b.object("index_settings")?;
    let _ = b.string_list("ignore_index_settings")?;
    let _ = b.string_list("feature_states")?;
    b.finish()?;

    let (_, root, record) = state.load_root(&repo_name).await?;
    let Some(summary) = root.snapshots.iter().find(|s| s.name == snap).cloned() else {
        if record.failed.iter().any(|s| s.name == snap) {
            return Err(EsError::restore(
                &repo_name,
                &snap,
                "unsupported snapshot state [FAILED]",
            ));
        }
        return Err(EsError::snapshot_missing(&repo_name, &snap));
    };
    let (selected, missing) = names::resolve(&indices, summary.indices.iter().map(String::as_str));
    if let Some(m) = missing.first()
        && !ignore_unavailable
    {
        return Err(EsError::restore(
            &repo_name,
            &snap,
            format!("indices [{m}] missing"),
        ));
    }
    let regex = match (&rename_pattern, &rename_replacement) {
        (Some(p), Some(_)) => Some(regex::Regex::new(p).map_err(|e| {
            EsError::illegal_argument(format!("invalid rename_pattern [{p}]: {e}"))
        })?),
        (Some(_), None) | (None, Some(_)) => {
            return Err(EsError::validation(&[
                "rename_pattern and rename_replacement must be given together".to_owned(),
            ]));
        }
        (None, None) => None,
    };
    if !partial
        && let Some(f) = summary
            .failures
            .iter()
            .find(|f| selected.contains(&f.index))
    {
        return Err(EsError::restore(
            &repo_name,
            &snap,
            format!(
                "index [{}] wasn't fully snapshotted - cannot restore (use partial to restore the shards that were)",
                f.index
            ),
        ));
    }
    let mut plan: Vec<(String, String)> = Vec::new();
    for src in &selected {
        let target = match (&regex, &rename_replacement) {
            (Some(re), Some(rep)) => re.replace_all(src, rep.as_str()).into_owned(),
            _ => src.clone(),
        };
        names::validate_index_name(&target)?;
        if plan.iter().any(|(_, t)| *t == target) {
            return Err(EsError::restore(
                &repo_name,
                &snap,
                format!("indices [{target}] and another index are renamed into the same index"),
            ));
        }
        plan.push((src.clone(), target));
    }
    // Claim the targets: refused over an open index or one already being restored.
    let mut targets: Vec<(String, String, std::path::PathBuf, bool)> = Vec::new();
    {
        let catalog = state.indices();
        let mut restoring = state.restoring();
        for (src, target) in &plan {
            if restoring.contains(target) {
                return Err(EsError::restore(
                    &repo_name,
                    &snap,
                    format!("cannot restore index [{target}] because it is being restored"),
                ));
            }
            if let Some(existing) = catalog.get(target) {
                if existing.open {
                    return Err(EsError::restore(
                        &repo_name,
                        &snap,
                        format!(
                            "cannot restore index [{target}] because an open index with same name already exists in the cluster. Either close or delete the existing index or restore the index under a different name by providing a rename pattern and replacement name"
                        ),
                    ));
                }
                targets.push((
                    src.clone(),
                    target.clone(),
                    existing.path.clone(),
                    existing.managed,
                ));
            } else {
                targets.push((
                    src.clone(),
                    target.clone(),
                    state.config().data_path.join("indices").join(target),
                    true,
                ));
            }
        }
        for (_, t, _, _) in &targets {
            restoring.insert(t.clone());
        }
    }
    let (repo, _) = state.repo(&repo_name)?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task_state = state.clone();
    let snap_uuid = summary.uuid.clone();
    let root = Arc::new(root);
    let handle = tokio::spawn(async move {
        let mut result: Result<(u32, u32), String> = Ok((0, 0));
        for (src, target, path, managed) in &targets {
            let shards = root.indices.get(src).map_or(1, |e| {
                u32::try_from(e.shard_generations.len()).unwrap_or(1).max(1)
            });
            let cancelled = task_state.shutdown_token();
            let r = tokio::select! {
                r = coffer_repository::restore::restore_index(
                    &repo,
                    &root,
                    &snap_uuid,
                    src,
                    path,
                    Progress::new(),
                ) => r,
                () = cancelled.cancelled() => Err(coffer_repository::RepositoryError::Storage {
                    operation: "restore",
                    key: target.clone(),
                    code: None,
                    message: "abandoned because coffer shut down".to_owned(),
                    retryable: true,
                }),
            };
            match r {
                Ok(stats) => {
                    let record = {
                        let mut catalog = task_state.indices();
                        let now = task_state.now_ms();
                        let rec = catalog
                            .entry(target.clone())
                            .or_insert_with(|| IndexRecord {
                                uuid: uuid::Uuid::new_v4().simple().to_string(),
                                managed: *managed,
                                path: path.clone(),
                                number_of_shards: shards,
                                number_of_replicas: 0,
                                open: true,
                                creation_date: now,
                            });
                        rec.open = true;
                        if rec.managed {
                            rec.number_of_shards = shards;
                        }
                        rec.clone()
                    };
                    // The restored identity file names the source; a managed index keeps
                    // its own.
                    // (Only when there is one: a copy of an attached index stays file for
                    // file what was snapshotted.)
                    if record.managed
                        && record.path.join(crate::indices::INDEX_META_FILE).exists()
                        && let Err(e) = crate::indices::write_meta(target, &record)
                    {
                        tracing::warn!(index = %target, error = %e, "cannot rewrite the index identity file");
                    }
                    if let Err(e) = task_state.save_indices() {
                        tracing::error!(error = %e, "could not persist the indices catalog");
                    }
                    if let Ok((ok, _)) = &mut result {
                        *ok += stats.shards.max(shards);
                    }
                }
                Err(e) => {
                    tracing::error!(index = %target, error = %e, "restore failed");
                    result = Err(format!("restore of index [{target}] failed: {e}"));
                    break;
                }
            }
        }
        {
            let mut restoring = task_state.restoring();
            for (_, t, _, _) in &targets {
                restoring.remove(t);
            }
        }
        let _ = tx.send((
            result,
            targets.iter().map(|t| t.1.clone()).collect::<Vec<_>>(),
        ));
    });
    state.track(handle);
    if !wait {
        return Ok(Json(json!({"accepted": true})).into_response());
    }
    let (result, restored) = rx
        .await
        .map_err(|_| EsError::restore(&repo_name, &snap, "the restore task was abandoned"))?;
    match result {
        Ok((ok, failed)) => Ok(
            Json(json!({"snapshot": {"snapshot": snap, "indices": restored,
            "shards": {"total": ok + failed, "failed": failed, "successful": ok}}}))
            .into_response(),
        ),
        Err(reason) => Err(EsError::restore(&repo_name, &snap, reason)),
    }
}
