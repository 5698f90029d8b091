//! `/_snapshot/{repo}`: register, get, delete, `_verify`, `_cleanup`.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use coffer_repository::verify::{self, VerifyReport};
use coffer_repository::{Capabilities, Repository};
use serde_json::{Map, Value, json};

use crate::error::{ApiResult, EsError};
use crate::names;
use crate::params::{Body, Params, split_list};
use crate::state::{AppState, RepoRecord, RepoRuntime};

fn settings_as_strings(map: Map<String, Value>) -> ApiResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (k, v) in flatten("", map) {
        let s = match v {
            Value::String(s) => s,
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::Null => continue,
            other => {
                return Err(EsError::illegal_argument(format!(
                    "repository setting [{k}] must be a string, number or boolean, got {other}"
                )));
            }
        };
        out.insert(k, s);
    }
    Ok(out)
}

fn flatten(prefix: &str, map: Map<String, Value>) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (k, v) in map {
        let key = if prefix.is_empty() {
            k
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Object(m) => out.extend(flatten(&key, m)),
            other => out.push((key, other)),
        }
    }
    out
}

/// Runs the verification appropriate to the registration and returns what the storage
/// guarantees (none for readonly); `Err` carries the report.
async fn run_verify(
    state: &AppState,
    repo: &Repository,
    readonly: bool,
) -> Result<Option<Capabilities>, VerifyReport> {
    let store = repo.store();
    if readonly {
        let report = verify::verify_readonly(store.as_ref()).await;
        return if report.passed() {
            Ok(None)
        } else {
            Err(report)
        };
    }
    let seed = uuid::Uuid::new_v4().simple().to_string();
    if let Err(e) = store.calibrate(&format!("tests-{seed}-calibrate/")).await {
        tracing::warn!(error = %e, "storage calibration failed; verification will report the cause");
    }
    let report = verify::verify(
        store.as_ref(),
        &state.node().name,
        &seed,
        repo.clock().as_ref(),
    )
    .await;
    if report.passed() {
        if report.weaker_lease_guarantee() {
            tracing::warn!(location = %report.location, "{report}");
        }
        Ok(report.capabilities)
    } else {
        Err(report)
    }
}

/// `PUT/POST /_snapshot/{repo}`.
pub async fn put(
    State(state): State<AppState>,
    Path(name): Path<String>,
    params: Params,
    body: Bytes,
) -> ApiResult<Response> {
    params.check(&["verify", "master_timeout", "timeout"])?;
    let verify_first = params.bool("verify", true)?;
    validate_repo_name(&name)?;
    let mut b = Body::parse("repository", &body)?;
    let kind = b
        .string("type")?
        .ok_or_else(|| EsError::validation(&["type is missing".to_owned()]))?;
    let settings = settings_as_strings(b.object("settings")?.unwrap_or_default())?;
    b.finish()?;
    let repo = state
        .build_repository(&kind, &settings)
        .map_err(|e| name_the_repository(&name, e))?;
    let mut record = RepoRecord {
        kind,
        settings,
        uuid: "_na_".into(),
        expected: None,
        corrupted: None,
        failed: Vec::new(),
        running: None,
    };
    if let Some(rt) = state.repos().get(&name)
        && rt.busy.is_some()
    {
        return Err(EsError::illegal_argument(format!(
            "trying to modify or unregister repository [{name}] that is currently used"
        )));
    }
    let readonly = record.readonly();
    let mut caps = None;
    if verify_first {
        caps = run_verify(&state, &repo, readonly)
            .await
            .map_err(|report| EsError::verification(&name, &report))?;
    }
    // Learn the uuid and generation now, so the first write already checks for others.
    match repo
        .load(coffer_repository::ExpectedGeneration::Unknown)
        .await
    {
        Ok((generation, data)) => {
            if !data.uuid.is_empty() {
                record.uuid = data.uuid;
            }
            if !readonly {
                record.expected =
                    Some(generation.map_or(-1, |g| i64::try_from(g).unwrap_or(i64::MAX)));
            }
        }
        Err(e) if verify_first => return Err(EsError::from_repository(&name, &e)),
        Err(e) => tracing::warn!(repository = %name, error = %e, "repository not readable yet"),
    }
    {
        let mut repos = state.repos();
        // Re-registration keeps failed-snapshot history of the same location.
        if let Some(old) = repos.get(&name) {
            if old.busy.is_some() {
                return Err(EsError::illegal_argument(format!(
                    "trying to modify or unregister repository [{name}] that is currently used"
                )));
            }
            if old.record.settings == record.settings && old.record.kind == record.kind {
                record.failed = old.record.failed.clone();
            }
        }
        repos.insert(
            name.clone(),
            RepoRuntime {
                record,
                repo,
                caps,
                busy: None,
                live: None,
            },
        );
    }
    state.persist_repos()?;
    tracing::info!(repository = %name, "repository registered");
    Ok(Json(json!({"acknowledged": true})).into_response())
}

/// Elasticsearch's `RepositoryException` always starts its reason with `[repo]`; the
/// settings checks that raise one do not know the name.
fn name_the_repository(name: &str, mut e: EsError) -> EsError {
    let prefix = format!("[{name}] ");
    if e.kind == "repository_exception" && !e.reason.starts_with(&prefix) {
        e.reason.insert_str(0, &prefix);
    }
    e
}

fn validate_repo_name(name: &str) -> ApiResult<()> {
    let bad = |why: &str| {
        Err(EsError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_repository_name_exception",
            format!("[{name}] Invalid repository name [{name}], {why}"),
        ))
    };
    if name.is_empty() {
        return bad("cannot be empty");
    }
    if name.chars().any(char::is_whitespace) {
        return bad("must not contain whitespace");
    }
    if name.contains(',') {
        return bad("must not contain ','");
    }
    if name.contains('#') {
        return bad("must not contain '#'");
    }
    if name.starts_with('_') {
        return bad("must not start with '_'");
    }
    if name.chars().any(|c| "\\/*?\"<>|".contains(c)) {
        return bad(&format!(
            "must not contain the following characters {}",
            names::INVALID_FILENAME_CHARS_TEXT
        ));
    }
    Ok(())
}

/// Repository names selected by an expression (comma list, wildcards, `_all`); a concrete
/// name that is missing is a 404.
pub(crate) fn select(state: &AppState, expr: Option<&str>) -> ApiResult<Vec<String>> {
    let items = expr.map(split_list).unwrap_or_default();
    let repos = state.repos();
    let (selected, missing) = names::resolve(&items, repos.keys().map(String::as_str));
    if let Some(m) = missing.first() {
        return Err(EsError::repository_missing(m));
    }
    Ok(selected)
}

/// `GET /_snapshot` and `GET /_snapshot/{repo}`.
pub async fn get(
    State(state): State<AppState>,
    repo: Option<Path<String>>,
    params: Params,
) -> ApiResult<Response> {
    params.check(&["local", "master_timeout"])?;
    // Single node: `local` changes nothing, but a value that is not a boolean is refused as
    // Elasticsearch refuses it.
    params.bool("local", false)?;
    let selected = select(&state, repo.as_deref().map(String::as_str))?;
    let repos = state.repos();
    let mut out = Map::new();
    for name in selected {
        if let Some(rt) = repos.get(&name) {
            out.insert(
                name,
                json!({"type": rt.record.kind, "uuid": rt.record.uuid, "settings": rt.record.settings}),
            );
        }
    }
    Ok(Json(Value::Object(out)).into_response())
}

/// `DELETE /_snapshot/{repo}`: unregisters; the data stays.
pub async fn delete(
    State(state): State<AppState>,
    Path(expr): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    params.check(&["master_timeout", "timeout"])?;
    let selected = select(&state, Some(&expr))?;
    if selected.is_empty() {
        return Err(EsError::repository_missing(&expr));
    }
    {
        let mut repos = state.repos();
        for name in &selected {
            if repos.get(name).is_some_and(|r| r.busy.is_some()) {
                return Err(EsError::illegal_argument(format!(
                    "trying to modify or unregister repository [{name}] that is currently used"
                )));
            }
        }
        for name in &selected {
            repos.remove(name);
        }
    }
    state.persist_repos()?;
    Ok(Json(json!({"acknowledged": true})).into_response())
}

/// `POST /_snapshot/{repo}/_verify`.
pub async fn verify(
    State(state): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    params.check(&["master_timeout", "timeout"])?;
    let (repo, record) = state.repo(&name)?;
    let caps = run_verify(&state, &repo, record.readonly())
        .await
        .map_err(|report| EsError::verification(&name, &report))?;
    if let Some(c) = caps
        && let Some(rt) = state.repos().get_mut(&name)
    {
        rt.caps = Some(c);
    }
    let node = state.node();
    Ok(Json(json!({"nodes": {node.node_id.clone(): {"name": node.name}}})).into_response())
}

/// `POST /_snapshot/{repo}/_cleanup`.
pub async fn cleanup(
    State(state): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    params.check(&["master_timeout", "timeout"])?;
    let (repo, record) = state.repo(&name)?;
    AppState::check_writable(&name, &record)?;
    let _busy = state.begin(&name, "_cleanup", "cleanup")?;
    let lease = state.lease(&name, "cleanup").await?;
    let (_, record) = state.repo(&name)?;
    let result =
        coffer_repository::cleanup::cleanup(&repo, &lease, record.expected_generation()).await;
    let _ = lease.release().await;
    let r = result.map_err(|e| state.repo_error(&name, &e))?;
    Ok(Json(
        json!({"results": {"deleted_bytes": r.deleted_bytes, "deleted_blobs": r.deleted_blobs}}),
    )
    .into_response())
}
