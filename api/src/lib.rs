//! coffer's Elasticsearch-compatible REST API.
//!
//! The Elasticsearch `_snapshot` API over coffer's repository layer, plus the index,
//! document, `_cat`, `_cluster/health` and `_nodes/reload_secure_settings` endpoints it needs.
//! Module map: [`error`] (the ES error envelope), [`params`] (query and body checking),
//! [`state`] (registered repositories, indices catalog, persistence), [`names`] (name rules,
//! date math, wildcard expressions); the handlers live in private modules per family.

pub use error::{ApiResult, EsError};
pub use state::{AppConfig, AppState, AttachedIndex, SecureLoader};

pub mod auth;
mod capabilities;
pub mod error;
pub mod indices;
mod misc;
pub mod names;
pub mod params;
pub mod persist;
mod render;
pub mod repo_settings;
mod repos;
mod snapshots;
pub mod state;

use std::sync::Arc;

use axum::Router;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

/// The compatibility level reported in `version.number`: clients such as elasticsearch-py
/// refuse to talk to a server reporting less than 8.
pub const ES_COMPAT_VERSION: &str = "8.17.0";

/// Who this node is, shown by `GET /`.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// `node.name`.
    pub name: String,
    /// A stable id for this node, persisted in `path.data`.
    pub node_id: String,
    /// `cluster.name`.
    pub cluster_name: String,
    /// A stable id persisted in `path.data`.
    pub cluster_uuid: String,
}

/// Largest request body accepted (Elasticsearch's `http.max_content_length` default).
pub const MAX_BODY: usize = 100 << 20;

/// The HTTP router over `state`.
pub fn router(state: AppState) -> Router {
    use axum::routing::{delete, head, post, put};
    let security = Arc::clone(state.security());
    let routes = Router::new()
        .route("/", get(info).head(info_head))
        .route("/_capabilities", get(capabilities::handler))
        .route("/_cluster/health", get(misc::health))
        .route("/_cluster/health/{index}", get(misc::health))
        .route("/_security/_authenticate", get(auth::authenticate))
        .route(
            "/_nodes/reload_secure_settings",
            post(misc::reload_secure_settings),
        )
        .route(
            "/_nodes/{node_id}/reload_secure_settings",
            post(misc::reload_secure_settings),
        )
        .route("/_snapshot", get(repos::get))
        .route("/_snapshot/_status", get(status_all))
        .route(
            "/_snapshot/{repository}",
            get(repos::get)
                .put(repos::put)
                .post(repos::put)
                .delete(repos::delete),
        )
        .route("/_snapshot/{repository}/_verify", post(repos::verify))
        .route("/_snapshot/{repository}/_cleanup", post(repos::cleanup))
        .route("/_snapshot/{repository}/_status", get(snapshots::status))
        .route(
            "/_snapshot/{repository}/{snapshot}",
            get(snapshots::get)
                .put(snapshots::create)
                .post(snapshots::create)
                .delete(snapshots::delete),
        )
        .route(
            "/_snapshot/{repository}/{snapshot}/_status",
            get(snapshots::status),
        )
        .route(
            "/_snapshot/{repository}/{snapshot}/_restore",
            post(snapshots::restore),
        )
        .route(
            "/_snapshot/{repository}/{snapshot}/_clone/{target}",
            put(snapshots::clone),
        )
        .route("/_cat/repositories", get(misc::cat_repositories))
        .route("/_cat/snapshots", get(misc::cat_snapshots))
        .route("/_cat/snapshots/{repository}", get(misc::cat_snapshots))
        .route("/_cat/indices", get(misc::cat_indices))
        .route("/_cat/indices/{index}", get(misc::cat_indices))
        .route("/_count", get(indices::count).post(indices::count))
        .route(
            "/{index}",
            put(indices::create)
                .get(indices::get)
                .delete(indices::delete)
                .merge(head(indices::exists)),
        )
        .route("/{index}/_close", post(indices::close))
        .route("/{index}/_open", post(indices::open))
        .route("/{index}/_count", get(indices::count).post(indices::count))
        .route("/{index}/_doc", post(indices::post_doc))
        .route(
            "/{index}/_doc/{id}",
            put(indices::put_doc)
                .post(indices::put_doc)
                .get(indices::get_doc)
                .merge(delete(indices::delete_doc)),
        )
        .fallback(no_handler)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state);
    // The response middleware wraps the whole router rather than each route: axum adds the
    // `Allow` header of a 405 outside the route's own layers, and the middleware needs it
    // for Elasticsearch's `allowed: [...]` message.
    // Authentication runs inside the response middleware, so its 401/403/429 answers get
    // the same `X-Elastic-Product`, `?pretty` and `?error_trace` treatment as any other.
    Router::new()
        .fallback_service(routes)
        .layer(axum::middleware::from_fn_with_state(security, auth::layer))
        .layer(axum::middleware::from_fn(render::layer))
}

async fn status_all(
    s: axum::extract::State<AppState>,
    params: params::Params,
) -> error::ApiResult<Response> {
    snapshots::status(s, None, params).await
}

async fn info(
    axum::extract::State(state): axum::extract::State<AppState>,
    params: params::Params,
) -> error::ApiResult<Response> {
    params.check(&[])?;
    Ok(root(state.node()))
}

async fn info_head() -> StatusCode {
    StatusCode::OK
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let body = json!({
        "error": format!("Incorrect HTTP method for uri [{uri}] and method [{method}]"),
        "status": 405,
    });
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}

fn root(node: &NodeInfo) -> Response {
    axum::Json(json!({
        "name": node.name,
        "cluster_name": node.cluster_name,
        "cluster_uuid": node.cluster_uuid,
        "version": {
            "number": ES_COMPAT_VERSION,
            "build_flavor": "default",
            "build_type": "coffer",
            "build_hash": "coffer",
            "build_snapshot": false,
            "lucene_version": "none",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0",
            "coffer_version": env!("CARGO_PKG_VERSION"),
        },
        "tagline": "You Know, for Search",
    }))
    .into_response()
}

async fn no_handler(method: Method, uri: Uri) -> Response {
    let body = json!({
        "error": format!("no handler found for uri [{uri}] and method [{method}]"),
        "status": 400,
    });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests;
