//! coffer's Elasticsearch-compatible REST API.
//!
//! Today it answers `GET /` (and `HEAD /`) with the node's identity, and every other path with
//! Elasticsearch's "no handler found" answer. The snapshot API arrives with the repository
//! layer.

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, Method, StatusCode, Uri};
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

/// The HTTP router.
pub fn router(node: NodeInfo) -> Router {
    let node = Arc::new(node);
    Router::new()
        .route(
            "/",
            get(move || {
                let node = Arc::clone(&node);
                async move { root(&node) }
            }),
        )
        .fallback(no_handler)
        .layer(axum::middleware::map_response(product_header))
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

/// Elasticsearch clients (elasticsearch-py 8, the Java client) check this header and refuse
/// a server that does not send it.
async fn product_header(mut response: Response) -> Response {
    response.headers_mut().insert(
        "x-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn node() -> NodeInfo {
        NodeInfo {
            name: "n1".into(),
            node_id: "id1".into(),
            cluster_name: "coffer".into(),
            cluster_uuid: "uuid1".into(),
        }
    }

    #[tokio::test]
    async fn root_answers_with_identity_and_product_header() {
        let resp = router(node())
            .oneshot(axum::http::Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["x-elastic-product"], "Elasticsearch");
        let body: serde_json::Value =
            serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(body["name"], "n1");
        assert_eq!(body["cluster_name"], "coffer");
        assert_eq!(body["cluster_uuid"], "uuid1");
        assert_eq!(body["version"]["number"], ES_COMPAT_VERSION);
    }

    #[tokio::test]
    async fn unknown_path_is_400_like_elasticsearch() {
        let resp = router(node())
            .oneshot(
                axum::http::Request::get("/_nope")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let body: serde_json::Value =
            serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(
            body["error"],
            "no handler found for uri [/_nope] and method [GET]"
        );
    }
}
