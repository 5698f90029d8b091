//! `GET /_capabilities`: which method, path and parameters this server supports, so that
//! Elasticsearch clients and test suites can feature-detect. coffer supports no named
//! capabilities beyond its endpoints and their parameters.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::ApiResult;
use crate::params::{COMMON, Params, split_list};
use crate::state::AppState;

/// (method, path template, accepted parameters) of every endpoint.
const ENDPOINTS: &[(&str, &str, &[&str])] = &[
    ("GET", "/", &[]),
    ("GET", "/_snapshot", &["local", "master_timeout"]),
    (
        "GET",
        "/_snapshot/{repository}",
        &["local", "master_timeout"],
    ),
    (
        "PUT",
        "/_snapshot/{repository}",
        &["verify", "master_timeout", "timeout"],
    ),
    (
        "POST",
        "/_snapshot/{repository}",
        &["verify", "master_timeout", "timeout"],
    ),
    (
        "DELETE",
        "/_snapshot/{repository}",
        &["master_timeout", "timeout"],
    ),
    (
        "POST",
        "/_snapshot/{repository}/_verify",
        &["master_timeout", "timeout"],
    ),
    (
        "POST",
        "/_snapshot/{repository}/_cleanup",
        &["master_timeout", "timeout"],
    ),
    (
        "PUT",
        "/_snapshot/{repository}/{snapshot}",
        &["master_timeout", "wait_for_completion"],
    ),
    (
        "POST",
        "/_snapshot/{repository}/{snapshot}",
        &["master_timeout", "wait_for_completion"],
    ),
    (
        "DELETE",
        "/_snapshot/{repository}/{snapshot}",
        &["master_timeout", "wait_for_completion"],
    ),
    (
        "GET",
        "/_snapshot/{repository}/{snapshot}",
        &[
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
        ],
    ),
    (
        "GET",
        "/_snapshot/_status",
        &["ignore_unavailable", "master_timeout"],
    ),
    (
        "GET",
        "/_snapshot/{repository}/_status",
        &["ignore_unavailable", "master_timeout"],
    ),
    (
        "GET",
        "/_snapshot/{repository}/{snapshot}/_status",
        &["ignore_unavailable", "master_timeout"],
    ),
    (
        "POST",
        "/_snapshot/{repository}/{snapshot}/_restore",
        &["master_timeout", "wait_for_completion"],
    ),
    (
        "PUT",
        "/_snapshot/{repository}/{snapshot}/_clone/{target_snapshot}",
        &["master_timeout"],
    ),
    (
        "GET",
        "/_cluster/health",
        &[
            "wait_for_status",
            "timeout",
            "master_timeout",
            "level",
            "local",
        ],
    ),
    ("POST", "/_nodes/reload_secure_settings", &["timeout"]),
    (
        "POST",
        "/_nodes/{node_id}/reload_secure_settings",
        &["timeout"],
    ),
    (
        "GET",
        "/_cat/repositories",
        &["format", "h", "help", "v", "s", "local", "master_timeout"],
    ),
    (
        "GET",
        "/_cat/snapshots",
        &[
            "format",
            "h",
            "help",
            "v",
            "s",
            "ignore_unavailable",
            "master_timeout",
        ],
    ),
    (
        "GET",
        "/_cat/snapshots/{repository}",
        &[
            "format",
            "h",
            "help",
            "v",
            "s",
            "ignore_unavailable",
            "master_timeout",
        ],
    ),
    (
        "GET",
        "/_cat/indices",
        &["format", "h", "help", "v", "s", "bytes"],
    ),
    (
        "PUT",
        "/{index}",
        &["wait_for_active_shards", "timeout", "master_timeout"],
    ),
    (
        "GET",
        "/{index}",
        &["ignore_unavailable", "allow_no_indices", "expand_wildcards"],
    ),
    (
        "HEAD",
        "/{index}",
        &["ignore_unavailable", "allow_no_indices", "expand_wildcards"],
    ),
    (
        "DELETE",
        "/{index}",
        &[
            "ignore_unavailable",
            "allow_no_indices",
            "expand_wildcards",
            "timeout",
            "master_timeout",
        ],
    ),
    (
        "POST",
        "/{index}/_close",
        &[
            "ignore_unavailable",
            "allow_no_indices",
            "expand_wildcards",
            "timeout",
            "master_timeout",
        ],
    ),
    (
        "POST",
        "/{index}/_open",
        &[
            "ignore_unavailable",
            "allow_no_indices",
            "expand_wildcards",
            "timeout",
            "master_timeout",
        ],
    ),
    (
        "PUT",
        "/{index}/_doc/{id}",
        &[
            "refresh",
            "op_type",
            "timeout",
            "wait_for_active_shards",
            "routing",
        ],
    ),
    (
        "POST",
        "/{index}/_doc/{id}",
        &[
            "refresh",
            "op_type",
            "timeout",
            "wait_for_active_shards",
            "routing",
        ],
    ),
    (
        "POST",
        "/{index}/_doc",
        &[
            "refresh",
            "op_type",
            "timeout",
            "wait_for_active_shards",
            "routing",
        ],
    ),
    (
        "GET",
        "/{index}/_doc/{id}",
        &["realtime", "refresh", "routing", "preference", "_source"],
    ),
    (
        "DELETE",
        "/{index}/_doc/{id}",
        &["refresh", "timeout", "wait_for_active_shards", "routing"],
    ),
    (
        "GET",
        "/{index}/_count",
        &["ignore_unavailable", "allow_no_indices", "expand_wildcards"],
    ),
];

fn path_matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.trim_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_matches('/').split('/').collect();
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(a, b)| (a.starts_with('{') && !b.is_empty()) || a == b)
}

/// Whether `method path` with `parameters` is supported.
pub fn supported(method: &str, path: &str, parameters: &[String], capabilities: &[String]) -> bool {
    if !capabilities.is_empty() {
        return false;
    }
    // A concrete path matches its literal template first ("/_snapshot/_status"), as the
    // router does.
    let mut candidates: Vec<&(&str, &str, &[&str])> = ENDPOINTS
        .iter()
        .filter(|(m, t, _)| m.eq_ignore_ascii_case(method) && path_matches(t, path))
        .collect();
    candidates.sort_by_key(|(_, t, _)| t.matches('{').count());
    candidates.first().is_some_and(|(_, _, params)| {
        parameters
            .iter()
            .all(|p| params.contains(&p.as_str()) || COMMON.contains(&p.as_str()))
    })
}

/// `GET /_capabilities?method&path&parameters&capabilities`.
pub async fn handler(State(_state): State<AppState>, params: Params) -> ApiResult<Response> {
    params.check(&["method", "path", "parameters", "capabilities", "local_only"])?;
    let method = params.get("method").unwrap_or("GET");
    let path = params.get("path").unwrap_or("/");
    let parameters = params.get("parameters").map(split_list).unwrap_or_default();
    let capabilities = params
        .get("capabilities")
        .map(split_list)
        .unwrap_or_default();
    Ok(
        Json(json!({"supported": supported(method, path, &parameters, &capabilities)}))
            .into_response(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        let p = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(supported(
            "DELETE",
            "/_snapshot/{repository}/{snapshot}",
            &p(&["wait_for_completion"]),
            &[]
        ));
        assert!(supported(
            "GET",
            "/_snapshot/r/s",
            &p(&["verbose", "pretty"]),
            &[]
        ));
        assert!(!supported("GET", "/_snapshot/r/s", &p(&["bogus"]), &[]));
        assert!(!supported("PATCH", "/_snapshot/r", &[], &[]));
        assert!(!supported("GET", "/_snapshot/r/s", &[], &p(&["x"])));
    }
}
