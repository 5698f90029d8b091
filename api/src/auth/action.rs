//! Which Elasticsearch action a request is, and whether it only reads. Authorization is
//! decided on this, so the table mirrors the router (`lib.rs`) route by route; a request
//! that matches no route is a write unless its method is GET or HEAD (deny by default: a
//! route added later without a line here is closed to `monitor`, not open).

use axum::http::Method;

/// What a request does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// Elasticsearch's action name (`cluster:admin/snapshot/create`, …).
    pub name: &'static str,
    /// Whether the `monitor` role may do it.
    pub read_only: bool,
    /// The index the action applies to, for index actions (`on indices [x]`).
    pub index: Option<String>,
}

impl Action {
    fn cluster(name: &'static str, read_only: bool) -> Self {
        Self {
            name,
            read_only,
            index: None,
        }
    }

    fn index(name: &'static str, read_only: bool, index: &str) -> Self {
        Self {
            name,
            read_only,
            index: Some(index.to_owned()),
        }
    }

    /// Whether this is an index action (`indices:*`).
    pub fn is_index_action(&self) -> bool {
        self.name.starts_with("indices:")
    }
}

/// Classifies `method` on `path` (without the query).
// One arm per route, in the router's order, even where two routes share an action: the
// table is read against the router, not deduplicated.
#[allow(clippy::match_same_arms)]
pub fn classify(method: &Method, path: &str) -> Action {
    let read = *method == Method::GET || *method == Method::HEAD;
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let m = method.as_str();
    let c = Action::cluster;
    let i = Action::index;
    match (m, segs.as_slice()) {
        ("GET" | "HEAD", []) => c("cluster:monitor/main", true),
        ("GET", ["_capabilities"]) => c("cluster:monitor/nodes/capabilities", true),
        ("GET", ["_cluster", "health"] | ["_cluster", "health", _]) => {
            c("cluster:monitor/health", true)
        }
        ("GET", ["_security", "_authenticate"]) => {
            c("cluster:admin/xpack/security/user/authenticate", true)
        }
        (
            "POST",
            ["_nodes", "reload_secure_settings"] | ["_nodes", _, "reload_secure_settings"],
        ) => c("cluster:admin/nodes/reload_secure_settings", false),
        ("GET", ["_snapshot", "_status"]) => c("cluster:admin/snapshot/status", true),
        ("GET", ["_snapshot"] | ["_snapshot", _]) => c("cluster:admin/repository/get", true),
        ("PUT" | "POST", ["_snapshot", _]) => c("cluster:admin/repository/put", false),
        ("DELETE", ["_snapshot", _]) => c("cluster:admin/repository/delete", false),
        ("POST", ["_snapshot", _, "_verify"]) => c("cluster:admin/repository/verify", false),
        ("POST", ["_snapshot", _, "_cleanup"]) => c("cluster:admin/repository/_cleanup", false),
        ("GET", ["_snapshot", _, "_status"] | ["_snapshot", _, _, "_status"]) => {
            c("cluster:admin/snapshot/status", true)
        }
        ("GET", ["_snapshot", _, _]) => c("cluster:admin/snapshot/get", true),
        ("PUT" | "POST", ["_snapshot", _, _]) => c("cluster:admin/snapshot/create", false),
        ("DELETE", ["_snapshot", _, _]) => c("cluster:admin/snapshot/delete", false),
        ("POST", ["_snapshot", _, _, "_restore"]) => c("cluster:admin/snapshot/restore", false),
        ("PUT", ["_snapshot", _, _, "_clone", _]) => c("cluster:admin/snapshot/clone", false),
        ("GET", ["_cat", "repositories"]) => c("cluster:admin/repository/get", true),
        ("GET", ["_cat", "snapshots"] | ["_cat", "snapshots", _]) => {
            c("cluster:admin/snapshot/get", true)
        }
        ("GET", ["_cat", "indices"]) => i("indices:monitor/stats", true, "*"),
        ("GET", ["_cat", "indices", idx]) => i("indices:monitor/stats", true, idx),
        // Counting is a search: a read even as a POST.
        ("GET" | "POST", ["_count"]) => i("indices:data/read/search", true, "*"),
        ("GET" | "POST", [idx, "_count"]) => i("indices:data/read/search", true, idx),
        ("PUT", [idx]) => i("indices:admin/create", false, idx),
        ("GET" | "HEAD", [idx]) => i("indices:admin/get", true, idx),
        ("DELETE", [idx]) => i("indices:admin/delete", false, idx),
        ("POST", [idx, "_close"]) => i("indices:admin/close", false, idx),
        ("POST", [idx, "_open"]) => i("indices:admin/open", false, idx),
        ("POST", [idx, "_doc"]) | ("PUT" | "POST", [idx, "_doc", _]) => {
            i("indices:data/write/index", false, idx)
        }
        ("GET", [idx, "_doc", _]) => i("indices:data/read/get", true, idx),
        ("DELETE", [idx, "_doc", _]) => i("indices:data/write/delete", false, idx),
        // No route: the router answers 400 or 405. Reads may see that answer; anything
        // else needs `manage`, so an unlisted route is never a hole.
        _ => c(
            if read {
                "cluster:monitor/unknown"
            } else {
                "cluster:admin/unknown"
            },
            read,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(m: &str, p: &str) -> Action {
        classify(&Method::from_bytes(m.as_bytes()).unwrap(), p)
    }

    #[test]
    fn snapshot_api_actions() {
        assert_eq!(
            a("PUT", "/_snapshot/r").name,
            "cluster:admin/repository/put"
        );
        assert_eq!(
            a("POST", "/_snapshot/r").name,
            "cluster:admin/repository/put"
        );
        assert_eq!(
            a("DELETE", "/_snapshot/r").name,
            "cluster:admin/repository/delete"
        );
        assert_eq!(
            a("GET", "/_snapshot/r").name,
            "cluster:admin/repository/get"
        );
        assert_eq!(
            a("PUT", "/_snapshot/r/s").name,
            "cluster:admin/snapshot/create"
        );
        assert_eq!(
            a("DELETE", "/_snapshot/r/s").name,
            "cluster:admin/snapshot/delete"
        );
        assert_eq!(
            a("POST", "/_snapshot/r/s/_restore").name,
            "cluster:admin/snapshot/restore"
        );
        assert_eq!(
            a("PUT", "/_snapshot/r/s/_clone/t").name,
            "cluster:admin/snapshot/clone"
        );
        assert_eq!(
            a("GET", "/_snapshot/r/s/_status").name,
            "cluster:admin/snapshot/status"
        );
        assert_eq!(
            a("GET", "/_snapshot/_status").name,
            "cluster:admin/snapshot/status"
        );
        assert_eq!(
            a("POST", "/_snapshot/r/_verify").name,
            "cluster:admin/repository/verify"
        );
    }

    #[test]
    fn reads_and_writes() {
        for (m, p) in [
            ("GET", "/"),
            ("HEAD", "/"),
            ("GET", "/_cat/snapshots/r"),
            ("GET", "/_cat/indices"),
            ("GET", "/_cluster/health"),
            ("POST", "/_count"),
            ("POST", "/idx/_count"),
            ("HEAD", "/idx"),
            ("GET", "/idx/_doc/1"),
            ("GET", "/_nope/a/b/c"),
        ] {
            assert!(a(m, p).read_only, "{m} {p}");
        }
        for (m, p) in [
            ("POST", "/_nodes/reload_secure_settings"),
            ("POST", "/_nodes/n1/reload_secure_settings"),
            ("PUT", "/idx"),
            ("DELETE", "/idx"),
            ("POST", "/idx/_close"),
            ("POST", "/idx/_doc"),
            ("PUT", "/idx/_doc/1"),
            ("DELETE", "/idx/_doc/1"),
            ("POST", "/_snapshot/r/_cleanup"),
            ("PATCH", "/_snapshot/r"),
            ("POST", "/_nope/a/b/c"),
        ] {
            assert!(!a(m, p).read_only, "{m} {p}");
        }
        let create = a("PUT", "/logs");
        assert!(create.is_index_action());
        assert_eq!(create.index.as_deref(), Some("logs"));
    }
}
