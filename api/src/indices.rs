//! The index API (`PUT/GET/HEAD/DELETE /{index}`, `_close`, `_open`) and the minimal
//! document API of managed indices.
//!
//! A managed index is the directory `<path.data>/indices/<name>/`. coffer keeps the index's
//! identity in `.coffer-index.json` at its root (so it travels through snapshot and restore)
//! and each document in `_doc/<file name>.json`, whose content is the document's `_source`.
//! The file name is the id with every byte outside `[A-Za-z0-9_-]` written as `%XX`, so any
//! id maps to a distinct, safe name (no `/`, no `.` or `..`, no hidden files); an id whose
//! encoding would exceed 200 bytes is stored as `~` followed by the SHA-256 of the id, in hex.

use std::fmt::Write as _;
use std::path::{Path as FsPath, PathBuf};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use sha2::Digest;

use crate::error::{ApiResult, EsError};
use crate::names;
use crate::params::{Body, Params, json_object, split_list};
use crate::persist;
use crate::state::{AppState, IndexRecord};

/// The identity file at the root of a managed index.
pub const INDEX_META_FILE: &str = ".coffer-index.json";
/// The folder holding documents.
pub const DOC_DIR: &str = "_doc";

/// The file name of document `id` (see the module docs).
pub fn doc_file_name(id: &str) -> String {
    let mut out = String::new();
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    if out.len() > 200 {
        out = format!("~{}", hex::encode(sha2::Sha256::digest(id.as_bytes())));
    }
    format!("{out}.json")
}

fn parse_count(key: &str, v: &Value) -> ApiResult<u32> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse::<u64>().ok(),
        _ => None,
    };
    n.and_then(|n| u32::try_from(n).ok()).ok_or_else(|| {
        EsError::illegal_argument(format!(
            "Failed to parse value [{v}] for setting [index.{key}]"
        ))
    })
}

/// Reads `number_of_shards` / `number_of_replicas` from `settings` in any of ES's spellings
/// (`{"number_of_shards"}`, `{"index": {"number_of_shards"}}`, `{"index.number_of_shards"}`).
fn index_settings(settings: Map<String, Value>) -> ApiResult<(u32, u32)> {
    let mut flat = Map::new();
    for (k, v) in settings {
        match (k.as_str(), v) {
            ("index", Value::Object(inner)) => {
                for (ik, iv) in inner {
                    flat.insert(ik, iv);
                }
            }
            (_, v) => {
                flat.insert(k.strip_prefix("index.").unwrap_or(&k).to_owned(), v);
            }
        }
    }
    let mut shards = 1;
    let mut replicas = 1;
    for (k, v) in &flat {
        match k.as_str() {
            "number_of_shards" => {
                shards = parse_count(k, v)?;
                if !(1..=1024).contains(&shards) {
                    return Err(EsError::illegal_argument(format!(
                        "Failed to parse value [{shards}] for setting [index.number_of_shards] must be >= 1 and <= 1024"
                    )));
                }
            }
            "number_of_replicas" => replicas = parse_count(k, v)?,
            other => {
                return Err(EsError::illegal_argument(format!(
                    "unknown setting [index.{other}]: coffer indices take only number_of_shards and number_of_replicas"
                )));
            }
        }
    }
    Ok((shards, replicas))
}

/// `PUT /{index}`.
pub async fn create(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
    body: Bytes,
) -> ApiResult<Response> {
    params.check(&["wait_for_active_shards", "timeout", "master_timeout"])?;
    names::validate_index_name(&index)?;
    let mut b = Body::parse("create_index", &body)?;
    let (shards, replicas) = index_settings(b.object("settings")?.unwrap_or_default())?;
    // Mappings and aliases have no meaning for a directory tree; empty ones are what generic
    // clients send.
    for field in ["mappings", "aliases"] {
        if let Some(m) = b.object(field)?
            && !m.is_empty()
        {
            return Err(EsError::illegal_argument(format!(
                "[{field}] are not supported by coffer indices"
            )));
        }
    }
    b.finish()?;
    let path = state.config().data_path.join("indices").join(&index);
    let record = {
        let mut catalog = state.indices();
        if catalog.contains_key(&index) || state.restoring().contains(&index) {
            return Err(EsError::index_exists(&index));
        }
        let record = IndexRecord {
            uuid: uuid::Uuid::new_v4().simple().to_string(),
            managed: true,
            path: path.clone(),
            number_of_shards: shards,
            number_of_replicas: replicas,
            open: true,
            creation_date: state.now_ms(),
        };
        catalog.insert(index.clone(), record.clone());
        record
    };
    let made = (|| -> std::io::Result<()> {
        if path.exists() {
            // Leftovers of an index deleted while the process died: start clean.
            std::fs::remove_dir_all(&path)?;
        }
        std::fs::create_dir_all(path.join(DOC_DIR))?;
        write_meta(&index, &record)
    })();
    if let Err(e) = made {
        state.indices().remove(&index);
        return Err(EsError::internal(format!(
            "cannot create index directory [{}]: {e}",
            path.display()
        )));
    }
    state.persist_indices()?;
    Ok(
        Json(json!({"acknowledged": true, "shards_acknowledged": true, "index": index}))
            .into_response(),
    )
}

/// Writes a managed index's identity file.
pub(crate) fn write_meta(name: &str, r: &IndexRecord) -> std::io::Result<()> {
    persist::save_json(
        &r.path.join(INDEX_META_FILE),
        &json!({"name": name, "uuid": r.uuid, "number_of_shards": r.number_of_shards,
                "number_of_replicas": r.number_of_replicas, "creation_date": r.creation_date}),
    )
}

/// Names selected by an index expression; a concrete missing name is a 404 unless
/// `ignore_unavailable`.
fn select(state: &AppState, expr: &str, ignore_unavailable: bool) -> ApiResult<Vec<String>> {
    let items = split_list(expr);
    let catalog = state.indices();
    let (selected, missing) = names::resolve(&items, catalog.keys().map(String::as_str));
    if let Some(m) = missing.first()
        && !ignore_unavailable
    {
        return Err(EsError::index_not_found(m));
    }
    Ok(selected)
}

const SELECT_PARAMS: &[&str] = &[
    "allow_no_indices",
    "expand_wildcards",
    "ignore_unavailable",
    "master_timeout",
    "timeout",
    "flat_settings",
    "include_defaults",
    "local",
    "features",
    "wait_for_active_shards",
];

/// `GET /{index}`.
pub async fn get(
    State(state): State<AppState>,
    Path(expr): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    params.check(SELECT_PARAMS)?;
    let selected = select(&state, &expr, params.bool("ignore_unavailable", false)?)?;
    let catalog = state.indices();
    let mut out = Map::new();
    for name in selected {
        if let Some(r) = catalog.get(&name) {
            out.insert(
                name.clone(),
                json!({"aliases": {}, "mappings": {}, "settings": {"index": {
                    "number_of_shards": r.number_of_shards.to_string(),
                    "number_of_replicas": r.number_of_replicas.to_string(),
                    "uuid": r.uuid,
                    "creation_date": r.creation_date.to_string(),
                    "provided_name": name,
                    "verified_before_close": (!r.open).to_string(),
                    "coffer": {"managed": r.managed.to_string(), "state": if r.open { "open" } else { "close" }},
                }}}),
            );
        }
    }
    Ok(Json(Value::Object(out)).into_response())
}

/// `HEAD /{index}`.
pub async fn exists(
    State(state): State<AppState>,
    Path(expr): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    params.check(SELECT_PARAMS)?;
    Ok(match select(&state, &expr, false) {
        Ok(s) if !s.is_empty() => StatusCode::OK.into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    })
}

/// `DELETE /{index}`.
pub async fn delete(
    State(state): State<AppState>,
    Path(expr): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    params.check(SELECT_PARAMS)?;
    let selected = select(&state, &expr, params.bool("ignore_unavailable", false)?)?;
    let removed: Vec<IndexRecord> = {
        let mut catalog = state.indices();
        let restoring = state.restoring();
        for name in &selected {
            if restoring.contains(name) {
                return Err(EsError::illegal_argument(format!(
                    "cannot delete index [{name}]: it is being restored"
                )));
            }
            if let Some(r) = catalog.get(name)
                && !r.managed
                && r.open
            {
                return Err(EsError::illegal_argument(format!(
                    "index [{name}] is attached from [{}]; close it before deleting it",
                    r.path.display()
                )));
            }
        }
        selected.iter().filter_map(|n| catalog.remove(n)).collect()
    };
    state.persist_indices()?;
    for r in removed {
        let result = if r.managed {
            std::fs::remove_dir_all(&r.path)
        } else {
            clear_dir(&r.path)
        };
        if let Err(e) = result
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(EsError::internal(format!(
                "index removed from the catalog, but deleting [{}] failed: {e}",
                r.path.display()
            )));
        }
    }
    Ok(Json(json!({"acknowledged": true})).into_response())
}

fn clear_dir(dir: &FsPath) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

fn set_open(state: &AppState, expr: &str, params: &Params, open: bool) -> ApiResult<Vec<String>> {
    params.check(SELECT_PARAMS)?;
    let selected = select(state, expr, params.bool("ignore_unavailable", false)?)?;
    if selected.is_empty() && !params.bool("allow_no_indices", true)? {
        return Err(EsError::index_not_found(expr));
    }
    {
        let mut catalog = state.indices();
        let restoring = state.restoring();
        for n in &selected {
            if restoring.contains(n) {
                return Err(EsError::illegal_argument(format!(
                    "cannot open or close index [{n}]: it is being restored"
                )));
            }
        }
        for n in &selected {
            if let Some(r) = catalog.get_mut(n) {
                r.open = open;
            }
        }
    }
    state.persist_indices()?;
    Ok(selected)
}

/// `POST /{index}/_close`.
pub async fn close(
    State(state): State<AppState>,
    Path(expr): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let selected = set_open(&state, &expr, &params, false)?;
    let indices: Map<String, Value> = selected
        .into_iter()
        .map(|n| (n, json!({"closed": true})))
        .collect();
    Ok(
        Json(json!({"acknowledged": true, "shards_acknowledged": true, "indices": indices}))
            .into_response(),
    )
}

/// `POST /{index}/_open`.
pub async fn open(
    State(state): State<AppState>,
    Path(expr): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    set_open(&state, &expr, &params, true)?;
    Ok(Json(json!({"acknowledged": true, "shards_acknowledged": true})).into_response())
}

/// The documents folder of an open managed index.
fn doc_dir(state: &AppState, index: &str) -> ApiResult<(PathBuf, IndexRecord)> {
    let catalog = state.indices();
    let r = catalog
        .get(index)
        .ok_or_else(|| EsError::index_not_found(index))?;
    if !r.open {
        return Err(EsError::index_closed(index));
    }
    if !r.managed {
        return Err(EsError::illegal_argument(format!(
            "index [{index}] is attached; the document API works on managed indices only"
        )));
    }
    if state.restoring().contains(index) {
        return Err(EsError::index_closed(index));
    }
    Ok((r.path.join(DOC_DIR), r.clone()))
}

fn check_id(id: &str) -> ApiResult<()> {
    if id.is_empty() {
        return Err(EsError::validation(&["id is missing".to_owned()]));
    }
    if id.len() > 512 {
        return Err(EsError::validation(&[format!(
            "id [{id}] is too long, must be no longer than 512 bytes but was: {}",
            id.len()
        )]));
    }
    Ok(())
}

fn shards_ok() -> Value {
    json!({"total": 1, "successful": 1, "failed": 0})
}

const DOC_WRITE_PARAMS: &[&str] = &[
    "refresh",
    "op_type",
    "timeout",
    "wait_for_active_shards",
    "routing",
];

/// `PUT/POST /{index}/_doc/{id}`.
pub async fn put_doc(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    params: Params,
    body: Bytes,
) -> ApiResult<Response> {
    params.check(DOC_WRITE_PARAMS)?;
    write_doc(&state, &index, &id, &params, &body)
}

/// `POST /{index}/_doc` (id generated).
pub async fn post_doc(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
    body: Bytes,
) -> ApiResult<Response> {
    params.check(DOC_WRITE_PARAMS)?;
    let id = uuid::Uuid::new_v4().simple().to_string();
    write_doc(&state, &index, &id, &params, &body)
}

fn write_doc(
    state: &AppState,
    index: &str,
    id: &str,
    params: &Params,
    body: &[u8],
) -> ApiResult<Response> {
    check_id(id)?;
    let create_only = match params.get("op_type") {
        None | Some("index") => false,
        Some("create") => true,
        Some(other) => {
            return Err(EsError::illegal_argument(format!(
                "opType must be 'create' or 'index', found: [{other}]"
            )));
        }
    };
    let source = json_object(body)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(EsError::validation(&["source is missing".to_owned()]));
    }
    let (dir, _) = doc_dir(state, index)?;
    let file = dir.join(doc_file_name(id));
    let existed = file.exists();
    if existed && create_only {
        return Err(EsError::new(
            StatusCode::CONFLICT,
            "version_conflict_engine_exception",
            format!("[{id}]: version conflict, document already exists (current version [1])"),
        )
        .with("index", index));
    }
    let bytes =
        serde_json::to_vec(&Value::Object(source)).map_err(|e| EsError::internal(e.to_string()))?;
    persist::write_atomic(&file, &bytes)
        .map_err(|e| EsError::internal(format!("writing document [{id}]: {e}")))?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(json!({"_index": index, "_id": id, "_version": 1,
                    "result": if existed { "updated" } else { "created" },
                    "_shards": shards_ok(), "_seq_no": 0, "_primary_term": 1})),
    )
        .into_response())
}

/// `GET /{index}/_doc/{id}`.
pub async fn get_doc(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    params: Params,
) -> ApiResult<Response> {
    params.check(&["realtime", "refresh", "routing", "preference", "_source"])?;
    check_id(&id)?;
    let (dir, _) = doc_dir(&state, &index)?;
    match std::fs::read(dir.join(doc_file_name(&id))) {
        Ok(bytes) => {
            let source: Value = serde_json::from_slice(&bytes).map_err(|e| {
                EsError::internal(format!(
                    "document [{id}] of index [{index}] is not JSON: {e}"
                ))
            })?;
            let with_source = params.bool("_source", true)?;
            let mut m = json!({"_index": index, "_id": id, "_version": 1, "_seq_no": 0,
                               "_primary_term": 1, "found": true});
            if with_source {
                m["_source"] = source;
            }
            Ok(Json(m).into_response())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((
            StatusCode::NOT_FOUND,
            Json(json!({"_index": index, "_id": id, "found": false})),
        )
            .into_response()),
        Err(e) => Err(EsError::internal(format!("reading document [{id}]: {e}"))),
    }
}

/// `DELETE /{index}/_doc/{id}`.
pub async fn delete_doc(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    params: Params,
) -> ApiResult<Response> {
    params.check(&["refresh", "timeout", "wait_for_active_shards", "routing"])?;
    check_id(&id)?;
    let (dir, _) = doc_dir(&state, &index)?;
    let (status, result) = match std::fs::remove_file(dir.join(doc_file_name(&id))) {
        Ok(()) => (StatusCode::OK, "deleted"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (StatusCode::NOT_FOUND, "not_found"),
        Err(e) => return Err(EsError::internal(format!("deleting document [{id}]: {e}"))),
    };
    Ok((
        status,
        Json(
            json!({"_index": index, "_id": id, "_version": 1, "result": result,
                    "_shards": shards_ok(), "_seq_no": 0, "_primary_term": 1}),
        ),
    )
        .into_response())
}

/// Documents in a managed index.
pub fn count_docs(path: &FsPath) -> u64 {
    std::fs::read_dir(path.join(DOC_DIR)).map_or(0, |rd| {
        rd.filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .count() as u64
    })
}

/// Files and bytes below `path` (the index's `docs.count` and `store.size` in `_cat`).
pub fn dir_usage(path: &FsPath) -> (u64, u64) {
    let mut files = 0;
    let mut bytes = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.filter_map(Result::ok) {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                if dir == path && e.file_name() == INDEX_META_FILE {
                    continue;
                }
                files += 1;
                bytes += e.metadata().map_or(0, |m| m.len());
            }
        }
    }
    (files, bytes)
}

/// `GET /{index}/_count` and `GET /_count`.
pub async fn count(
    State(state): State<AppState>,
    index: Option<Path<String>>,
    params: Params,
) -> ApiResult<Response> {
    params.check(&[
        "ignore_unavailable",
        "allow_no_indices",
        "expand_wildcards",
        "q",
        "routing",
        "preference",
    ])?;
    if params.get("q").is_some() {
        return Err(EsError::illegal_argument(
            "coffer's _count does not support queries [q]",
        ));
    }
    let expr = index.map_or_else(|| "_all".to_owned(), |p| p.0);
    let selected = select(&state, &expr, params.bool("ignore_unavailable", false)?)?;
    let catalog = state.indices().clone();
    let mut total = 0;
    let mut shards = 0;
    for n in &selected {
        let r = &catalog[n];
        if !r.open {
            return Err(EsError::index_closed(n));
        }
        shards += r.number_of_shards;
        if r.managed {
            total += count_docs(&r.path);
        }
    }
    Ok(Json(json!({"count": total, "_shards": {"total": shards, "successful": shards, "skipped": 0, "failed": 0}})).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_file_names_are_safe_and_distinct() {
        assert_eq!(doc_file_name("abc-1_X"), "abc-1_X.json");
        assert_eq!(doc_file_name("a/b"), "a%2Fb.json");
        assert_eq!(doc_file_name(".."), "%2E%2E.json");
        assert_ne!(doc_file_name("a%2Fb"), doc_file_name("a/b"));
        let long = doc_file_name(&"é".repeat(100));
        assert!(long.starts_with('~') && long.len() < 100);
    }

    #[test]
    fn settings_spellings() {
        let m = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(
            index_settings(m(json!({"number_of_shards": 3}))).unwrap(),
            (3, 1)
        );
        assert_eq!(
            index_settings(m(
                json!({"index": {"number_of_shards": "2", "number_of_replicas": 0}})
            ))
            .unwrap(),
            (2, 0)
        );
        assert_eq!(
            index_settings(m(json!({"index.number_of_shards": 4}))).unwrap(),
            (4, 1)
        );
        assert!(index_settings(m(json!({"number_of_shards": 0}))).is_err());
        assert!(index_settings(m(json!({"refresh_interval": "1s"}))).is_err());
    }
}
