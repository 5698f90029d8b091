//! `_cluster/health`, `_nodes/reload_secure_settings` and the `_cat` APIs.

use std::cmp::Ordering;
use std::fmt::Write as _;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use coffer_repository::model::SnapshotState;
use secrecy::SecretString;
use serde_json::{Map, Value, json};

use crate::error::{ApiResult, EsError};
use crate::params::{Body, Params, split_list};
use crate::state::AppState;

/// `GET /_cluster/health[/{index}]`: red while a repository is marked corrupted.
pub async fn health(
    State(state): State<AppState>,
    index: Option<Path<String>>,
    params: Params,
) -> ApiResult<Response> {
    params.check(&[
        "expand_wildcards",
        "level",
        "local",
        "master_timeout",
        "timeout",
        "wait_for_active_shards",
        "wait_for_events",
        "wait_for_no_initializing_shards",
        "wait_for_no_relocating_shards",
        "wait_for_nodes",
        "wait_for_status",
    ])?;
    let catalog = state.indices().clone();
    if let Some(Path(expr)) = &index {
        let (_, missing) =
            crate::names::resolve(&split_list(expr), catalog.keys().map(String::as_str));
        if let Some(m) = missing.first() {
            return Err(EsError::index_not_found(m));
        }
    }
    let corrupted = state.repos().values().any(|r| r.record.corrupted.is_some());
    let status = if corrupted { "red" } else { "green" };
    let rank = |s: &str| match s {
        "green" => 0,
        "yellow" => 1,
        _ => 2,
    };
    let timed_out = match params.get("wait_for_status") {
        None => false,
        Some(w @ ("green" | "yellow" | "red")) => rank(status) > rank(w),
        Some(other) => {
            return Err(EsError::illegal_argument(format!(
                "unknown cluster health status [{other}]"
            )));
        }
    };
    let primaries: u32 = catalog
        .values()
        .filter(|r| r.open)
        .map(|r| r.number_of_shards)
        .sum();
    let body = json!({
        "cluster_name": state.node().cluster_name,
        "status": status,
        "timed_out": timed_out,
        "number_of_nodes": 1,
        "number_of_data_nodes": 1,
        "active_primary_shards": primaries,
        "active_shards": primaries,
        "relocating_shards": 0,
        "initializing_shards": 0,
        "unassigned_shards": 0,
        "unassigned_primary_shards": 0,
        "delayed_unassigned_shards": 0,
        "number_of_pending_tasks": 0,
        "number_of_in_flight_fetch": 0,
        "task_max_waiting_in_queue_millis": 0,
        "active_shards_percent_as_number": 100.0,
    });
    let code = if timed_out {
        StatusCode::REQUEST_TIMEOUT
    } else {
        StatusCode::OK
    };
    Ok((code, Json(body)).into_response())
}

/// `POST /_nodes[/{node_id}]/reload_secure_settings`.
pub async fn reload_secure_settings(
    State(state): State<AppState>,
    node_id: Option<Path<String>>,
    params: Params,
    body: Bytes,
) -> ApiResult<Response> {
    params.check(&["timeout"])?;
    let mut b = Body::parse("reload_secure_settings", &body)?;
    let password = b
        .string("secure_settings_password")?
        .map(SecretString::from);
    b.finish()?;
    let node = state.node().clone();
    let selected = node_id.as_ref().is_none_or(|Path(ids)| {
        split_list(ids).iter().any(|id| {
            matches!(id.as_str(), "_local" | "_all" | "_master" | "*")
                || *id == node.node_id
                || *id == node.name
        })
    });
    let mut nodes = Map::new();
    let mut failed = 0;
    if selected {
        let mut entry = Map::new();
        entry.insert("name".into(), node.name.clone().into());
        let result = {
            let state = state.clone();
            tokio::task::spawn_blocking(move || state.reload_secure_settings(password.as_ref()))
                .await
                .map_err(|e| EsError::internal(format!("reload task failed: {e}")))?
        };
        if let Err((kind, reason)) = result {
            tracing::warn!(%kind, %reason, "reload_secure_settings failed");
            entry.insert(
                "reload_exception".into(),
                json!({"type": kind, "reason": reason}),
            );
            failed = 0;
        } else {
            tracing::info!("secure settings reloaded");
        }
        nodes.insert(node.node_id.clone(), Value::Object(entry));
    }
    let total = nodes.len();
    Ok(Json(
        json!({"_nodes": {"total": total, "successful": total - failed, "failed": failed},
                   "cluster_name": node.cluster_name, "nodes": nodes}),
    )
    .into_response())
}

// ---------------------------------------------------------------- _cat

/// A `_cat` table: columns (name, description) and string rows.
struct Table {
    columns: Vec<(&'static str, &'static str)>,
    /// Columns shown without `h`.
    default: Vec<&'static str>,
    rows: Vec<Vec<Value>>,
}

const CAT_PARAMS: &[&str] = &[
    "format",
    "h",
    "help",
    "v",
    "s",
    "local",
    "master_timeout",
    "bytes",
    "time",
    "ignore_unavailable",
    "health",
    "pri",
    "expand_wildcards",
    "include_unloaded_segments",
];

fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        _ => cell_text(a).cmp(&cell_text(b)),
    }
}

fn render(params: &Params, mut t: Table) -> ApiResult<Response> {
    params.check(CAT_PARAMS)?;
    if params.bool("help", false)? {
        let width = t.columns.iter().map(|c| c.0.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (name, desc) in &t.columns {
            let _ = writeln!(out, "{name:width$} | | {desc}");
        }
        return Ok(text(out));
    }
    let names: Vec<&str> = t.columns.iter().map(|c| c.0).collect();
    let index_of = |n: &str| {
        names
            .iter()
            .position(|c| *c == n)
            .ok_or_else(|| EsError::illegal_argument(format!("Unknown column [{n}]")))
    };
    let shown: Vec<usize> = match params.get("h") {
        Some(h) => {
            let mut v = Vec::new();
            for item in split_list(h) {
                if item.contains('*') {
                    v.extend(
                        names
                            .iter()
                            .enumerate()
                            .filter(|(_, n)| crate::names::simple_match(&item, n))
                            .map(|(i, _)| i),
                    );
                } else {
                    v.push(index_of(&item)?);
                }
            }
            v
        }
        None => t
            .default
            .iter()
            .map(|n| index_of(n))
            .collect::<ApiResult<_>>()?,
    };
    if let Some(s) = params.get("s") {
        let mut keys = Vec::new();
        for item in split_list(s) {
            let (col, desc) = match item.split_once(':') {
                Some((c, "desc")) => (c.to_owned(), true),
                Some((c, "asc")) => (c.to_owned(), false),
                Some((_, other)) => {
                    return Err(EsError::illegal_argument(format!(
                        "Unsupported sort order [{other}]"
                    )));
                }
                None => (item.clone(), false),
            };
            keys.push((index_of(&col)?, desc));
        }
        t.rows.sort_by(|a, b| {
            for (i, desc) in &keys {
                let o = compare(&a[*i], &b[*i]);
                let o = if *desc { o.reverse() } else { o };
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        });
    }
    match params.get("format").unwrap_or("text") {
        "json" => {
            let rows: Vec<Value> = t
                .rows
                .iter()
                .map(|r| {
                    let m: Map<String, Value> = shown
                        .iter()
                        .map(|&i| (names[i].to_owned(), Value::String(cell_text(&r[i]))))
                        .collect();
                    Value::Object(m)
                })
                .collect();
            Ok(Json(Value::Array(rows)).into_response())
        }
        "text" | "txt" => {
            let mut lines: Vec<Vec<String>> = Vec::new();
            if params.bool("v", false)? {
                lines.push(shown.iter().map(|&i| names[i].to_owned()).collect());
            }
            for r in &t.rows {
                lines.push(shown.iter().map(|&i| cell_text(&r[i])).collect());
            }
            let widths: Vec<usize> = (0..shown.len())
                .map(|c| {
                    lines
                        .iter()
                        .map(|l| l[c].chars().count())
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let mut out = String::new();
            for l in &lines {
                let cells: Vec<String> = l
                    .iter()
                    .enumerate()
                    .map(|(c, s)| format!("{s:w$}", w = widths[c]))
                    .collect();
                out.push_str(cells.join(" ").trim_end());
                out.push('\n');
            }
            Ok(text(out))
        }
        other => Err(EsError::illegal_argument(format!(
            "unsupported format [{other}]: coffer's _cat answers text or json"
        ))),
    }
}

fn text(s: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=UTF-8")], s).into_response()
}

/// `GET /_cat/repositories`.
pub async fn cat_repositories(
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Response> {
    let rows = state
        .repos()
        .iter()
        .map(|(n, r)| vec![Value::from(n.clone()), Value::from(r.record.kind.clone())])
        .collect();
    render(
        &params,
        Table {
            columns: vec![("id", "unique repository id"), ("type", "repository type")],
            default: vec!["id", "type"],
            rows,
        },
    )
}

fn hms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%H:%M:%S").to_string())
        .unwrap_or_default()
}

/// A duration as Elasticsearch's `TimeValue` prints it (`36ms`, `1.5s`).
pub(crate) fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    #[allow(clippy::cast_precision_loss)]
    let f = ms as f64;
    if ms >= 3_600_000 {
        format!("{:.1}h", f / 3_600_000.0)
    } else if ms >= 60_000 {
        format!("{:.1}m", f / 60_000.0)
    } else if ms >= 1000 {
        format!("{:.1}s", f / 1000.0)
    } else {
        format!("{ms}ms")
    }
}

/// `GET /_cat/snapshots[/{repo}]`.
pub async fn cat_snapshots(
    State(state): State<AppState>,
    repo: Option<Path<String>>,
    params: Params,
) -> ApiResult<Response> {
    params.check(CAT_PARAMS)?;
    let repos = crate::repos::select(&state, repo.as_ref().map(|p| p.0.as_str()))?;
    let ignore_unavailable = params.bool("ignore_unavailable", false)?;
    let mut rows = Vec::new();
    for r in repos {
        let loaded = state.load_root(&r).await;
        let (root, record) = match loaded {
            Ok((_, root, record)) => (root, record),
            Err(_) if ignore_unavailable => continue,
            Err(e) => return Err(e),
        };
        let mut all = root.snapshots.clone();
        all.extend(record.failed.iter().cloned());
        if let Some(live) = state.repos().get(&r).and_then(|rt| rt.live.clone()) {
            all.push(live.summary);
        }
        all.sort_by_key(|s| (s.start_time_ms, s.name.clone()));
        for s in all {
            let running = s.state == SnapshotState::InProgress;
            let end = if running { 0 } else { s.end_time_ms };
            rows.push(vec![
                Value::from(s.name.clone()),
                Value::from(r.clone()),
                Value::from(match s.state {
                    SnapshotState::Success => "SUCCESS",
                    SnapshotState::Partial => "PARTIAL",
                    SnapshotState::Failed => "FAILED",
                    SnapshotState::InProgress => "IN_PROGRESS",
                }),
                Value::from(s.start_time_ms / 1000),
                Value::from(hms(s.start_time_ms)),
                Value::from(end / 1000),
                Value::from(hms(end)),
                Value::from(duration(if running {
                    state.now_ms() - s.start_time_ms
                } else {
                    s.end_time_ms - s.start_time_ms
                })),
                Value::from(s.indices.len()),
                Value::from(s.shards.successful),
                Value::from(s.shards.failed),
                Value::from(s.shards.total),
                Value::from(s.reason.clone().unwrap_or_default()),
            ]);
        }
    }
    render(
        &params,
        Table {
            columns: vec![
                ("id", "unique snapshot"),
                ("repository", "repository name"),
                ("status", "snapshot name"),
                (
                    "start_epoch",
                    "start time in seconds since 1970-01-01 00:00:00",
                ),
                ("start_time", "start time in HH:MM:SS"),
                ("end_epoch", "end time in seconds since 1970-01-01 00:00:00"),
                ("end_time", "end time in HH:MM:SS"),
                ("duration", "duration"),
                ("indices", "number of indices"),
                ("successful_shards", "number of successful shards"),
                ("failed_shards", "number of failed shards"),
                ("total_shards", "number of total shards"),
                ("reason", "reason for failures"),
            ],
            default: vec![
                "id",
                "repository",
                "status",
                "start_epoch",
                "start_time",
                "end_epoch",
                "end_time",
                "duration",
                "indices",
                "successful_shards",
                "failed_shards",
                "total_shards",
            ],
            rows,
        },
    )
}

fn human_bytes(b: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let f = b as f64;
    for (unit, div) in [("gb", 1u64 << 30), ("mb", 1 << 20), ("kb", 1 << 10)] {
        #[allow(clippy::cast_precision_loss)]
        let d = div as f64;
        if b >= div {
            return format!("{:.1}{unit}", f / d);
        }
    }
    format!("{b}b")
}

/// `GET /_cat/indices[/{index}]`.
pub async fn cat_indices(
    State(state): State<AppState>,
    index: Option<Path<String>>,
    params: Params,
) -> ApiResult<Response> {
    params.check(CAT_PARAMS)?;
    let catalog = state.indices().clone();
    let items = index.map(|p| split_list(&p.0)).unwrap_or_default();
    let (selected, missing) = crate::names::resolve(&items, catalog.keys().map(String::as_str));
    if let Some(m) = missing.first() {
        return Err(EsError::index_not_found(m));
    }
    let bytes_raw = params.get("bytes") == Some("b");
    let mut rows = Vec::new();
    for name in selected {
        let r = &catalog[&name];
        let (files, size) = {
            let path = r.path.clone();
            tokio::task::spawn_blocking(move || crate::indices::dir_usage(&path))
                .await
                .unwrap_or((0, 0))
        };
        let size_cell = if bytes_raw {
            Value::from(size)
        } else {
            Value::from(human_bytes(size))
        };
        rows.push(vec![
            Value::from(if r.open { "green" } else { "" }),
            Value::from(if r.open { "open" } else { "close" }),
            Value::from(name.clone()),
            Value::from(r.uuid.clone()),
            Value::from(r.number_of_shards),
            Value::from(r.number_of_replicas),
            Value::from(files),
            Value::from(0),
            size_cell.clone(),
            size_cell,
        ]);
    }
    render(
        &params,
        Table {
            columns: vec![
                ("health", "current health status"),
                ("status", "open/close status"),
                ("index", "index name"),
                ("uuid", "index uuid"),
                ("pri", "number of primary shards"),
                ("rep", "number of replica shards"),
                ("docs.count", "number of files in the index"),
                ("docs.deleted", "deleted files"),
                ("store.size", "store size of the index"),
                ("pri.store.size", "store size of primaries"),
            ],
            default: vec![
                "health",
                "status",
                "index",
                "uuid",
                "pri",
                "rep",
                "docs.count",
                "docs.deleted",
                "store.size",
                "pri.store.size",
            ],
            rows,
        },
    )
}
