//! Response post-processing shared by every endpoint: `?pretty`, `?filter_path`,
//! `?error_trace`, the `X-Elastic-Product` header, and turning a handler panic into a 500
//! envelope instead of a dropped connection.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use http_body_util::BodyExt;
use serde_json::{Map, Value};

use crate::error::EsError;
use crate::params::Params;

/// Largest JSON answer the middleware re-renders in memory.
const MAX_RENDER: usize = 64 << 20;

/// The middleware: see the module docs.
pub async fn layer(req: Request, next: Next) -> Response {
    let params = Params::parse(req.uri().path(), req.uri().query().unwrap_or_default());
    let pretty = params.get("pretty").is_some_and(|v| v != "false");
    let error_trace = params.get("error_trace").is_some_and(|v| v != "false");
    let filter = params
        .get("filter_path")
        .map(str::to_owned)
        .filter(|f| !f.is_empty());
    let is_head = req.method() == axum::http::Method::HEAD;
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let mut resp = match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(r) => r,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            tracing::error!(panic = %what, "request handler panicked");
            EsError::internal(format!("internal error: {what}")).into_response()
        }
    };
    resp.headers_mut().insert(
        "x-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    if is_head {
        return resp;
    }
    resp = as_envelope(resp, &method, &uri).await;
    if error_trace && let Some(e) = resp.extensions().get::<EsError>().cloned() {
        let status = resp.status();
        let mut r = (status, axum::Json(e.body(true))).into_response();
        // Keep what the error's own headers say (`WWW-Authenticate` on a 401, `Retry-After`
        // on a 429); only the body changes.
        for (name, value) in resp.headers() {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                r.headers_mut().append(name.clone(), value.clone());
            }
        }
        r.extensions_mut().insert(e);
        resp = r;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json || (!pretty && filter.is_none()) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = http_body_util::Limited::new(body, MAX_RENDER)
        .collect()
        .await
    else {
        return EsError::internal("response too large to render").into_response();
    };
    let bytes = bytes.to_bytes();
    let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    if let Some(f) = &filter {
        value = filter_path(&value, f);
    }
    let mut out = if pretty {
        serde_json::to_vec_pretty(&value).unwrap_or_default()
    } else {
        serde_json::to_vec(&value).unwrap_or_default()
    };
    if pretty {
        out.push(b'\n');
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(out))
}

/// Gives the answers axum builds itself the shapes Elasticsearch uses: a 405 names the
/// allowed methods, and a plain-text rejection (a body over the size limit, a path that is
/// not UTF-8) becomes the JSON error envelope.
async fn as_envelope(
    resp: Response,
    method: &axum::http::Method,
    uri: &axum::http::Uri,
) -> Response {
    let status = resp.status();
    if status == axum::http::StatusCode::METHOD_NOT_ALLOWED {
        let allowed: Vec<String> = resp
            .headers()
            .get(header::ALLOW)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_owned)
            .collect();
        let body = serde_json::json!({
            "error": format!(
                "Incorrect HTTP method for uri [{uri}] and method [{method}], allowed: [{}]",
                allowed.join(", ")
            ),
            "status": 405,
        });
        let (mut parts, _) = resp.into_parts();
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return Response::from_parts(parts, Body::from(body.to_string()));
    }
    let is_text = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !is_text {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = match http_body_util::Limited::new(body, 64 << 10).collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
        Err(_) => String::new(),
    };
    let (kind, reason) = if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        (
            "content_too_long_exception",
            format!(
                "request body is too large: it exceeds the limit of [{}] bytes",
                crate::MAX_BODY
            ),
        )
    } else if status.is_client_error() {
        ("illegal_argument_exception", text)
    } else {
        ("exception", text)
    };
    let mut out = EsError::new(status, kind, reason).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

type Path<'a> = Vec<&'a str>;

/// Applies Elasticsearch's `filter_path`: comma-separated dotted paths, `*` inside a
/// segment, `**` for any depth, a leading `-` for an exclusion. Arrays are transparent.
pub fn filter_path(value: &Value, spec: &str) -> Value {
    let mut includes: Vec<Path> = Vec::new();
    let mut excludes: Vec<Path> = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if let Some(ex) = item.strip_prefix('-') {
            excludes.push(ex.split('.').collect());
        } else {
            includes.push(item.split('.').collect());
        }
    }
    let mut v = if includes.is_empty() {
        value.clone()
    } else {
        let refs: Vec<&[&str]> = includes.iter().map(Vec::as_slice).collect();
        include(value, &refs).unwrap_or_else(|| Value::Object(Map::new()))
    };
    if !excludes.is_empty() {
        let refs: Vec<&[&str]> = excludes.iter().map(Vec::as_slice).collect();
        exclude(&mut v, &refs);
    }
    v
}

fn glob(pattern: &str, s: &str) -> bool {
    crate::names::simple_match(pattern, s)
}

/// What remains of each path after matching `key`; an empty remainder is a full match.
///
/// Every remainder is a suffix of one of the requested paths, and each suffix is stepped and
/// kept at most once per key. Without that, each `**` would multiply the list at every level
/// of the answer (`filter_path=**.**.**…` grows exponentially).
fn advance<'a>(paths: &[&'a [&'a str]], key: &str) -> Vec<&'a [&'a str]> {
    let mut visited = HashSet::new();
    let mut out = Vec::new();
    for p in paths {
        step(p, key, &mut visited, &mut out);
    }
    let mut kept = HashSet::new();
    out.retain(|r| kept.insert(slice_id(r)));
    out
}

/// Identifies a suffix of one of the parsed paths (they all borrow the same vectors).
fn slice_id(s: &[&str]) -> (usize, usize) {
    (s.as_ptr().addr(), s.len())
}

/// Iterative, not recursive: a run of `**` is as long as the query string allows, and
/// recursing once per `**` would let a request overflow the stack.
fn step<'a>(
    mut p: &'a [&'a str],
    key: &str,
    visited: &mut HashSet<(usize, usize)>,
    out: &mut Vec<&'a [&'a str]>,
) {
    loop {
        if !visited.insert(slice_id(p)) {
            // Stepped already for this key, and so was everything after it.
            return;
        }
        match p.split_first() {
            Some((&"**", rest)) => {
                // `**` consumes this key and stays, or matches nothing and lets the rest
                // try the key; at the end it matches everything below.
                out.push(p);
                if rest.is_empty() {
                    out.push(rest);
                    return;
                }
                p = rest;
            }
            Some((first, rest)) if glob(first, key) => {
                out.push(rest);
                return;
            }
            None | Some(_) => return,
        }
    }
}

fn include(v: &Value, paths: &[&[&str]]) -> Option<Value> {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, child) in m {
                let rests = advance(paths, k);
                if rests.is_empty() {
                    continue;
                }
                if rests.iter().any(|r| r.is_empty()) {
                    out.insert(k.clone(), child.clone());
                } else if let Some(c) = include(child, &rests) {
                    out.insert(k.clone(), c);
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Value::Array(items) => {
            let kept: Vec<Value> = items.iter().filter_map(|i| include(i, paths)).collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        _ => None,
    }
}

fn exclude(v: &mut Value, paths: &[&[&str]]) {
    match v {
        Value::Object(m) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                let rests = advance(paths, &k);
                if rests.iter().any(|r| r.is_empty()) {
                    m.remove(&k);
                } else if !rests.is_empty()
                    && let Some(child) = m.get_mut(&k)
                {
                    exclude(child, &rests);
                }
            }
        }
        Value::Array(items) => {
            for i in items {
                exclude(i, paths);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filter_path_semantics() {
        let v = json!({"snapshots": [{"snapshot": "a", "state": "SUCCESS", "shards": {"total": 1}},
                                     {"snapshot": "b", "state": "FAILED", "shards": {"total": 2}}],
                       "total": 2});
        assert_eq!(
            filter_path(&v, "snapshots.snapshot"),
            json!({"snapshots": [{"snapshot": "a"}, {"snapshot": "b"}]})
        );
        assert_eq!(
            filter_path(&v, "**.total"),
            json!({"snapshots": [{"shards": {"total": 1}}, {"shards": {"total": 2}}], "total": 2})
        );
        assert_eq!(
            filter_path(&v, "snapshots.s*"),
            json!({"snapshots": [{"snapshot": "a", "state": "SUCCESS", "shards": {"total": 1}},
                                 {"snapshot": "b", "state": "FAILED", "shards": {"total": 2}}]})
        );
        assert_eq!(filter_path(&v, "-snapshots,-nothing"), json!({"total": 2}));
        assert_eq!(
            filter_path(&v, "snapshots,-snapshots.shards"),
            json!({"snapshots": [{"snapshot": "a", "state": "SUCCESS"}, {"snapshot": "b", "state": "FAILED"}]})
        );
        assert_eq!(filter_path(&v, "nope"), json!({}));
    }

    /// A request cannot make filtering explode: a long run of `**` over a deep answer
    /// finishes at once (the remainders are deduplicated) and does not recurse per `**`.
    #[test]
    fn filter_path_abuse_stays_cheap() {
        let mut deep = json!({"leaf": 1});
        for i in 0..12 {
            deep = json!({format!("k{i}"): deep.clone(), format!("j{i}"): deep});
        }
        let spec = vec!["**"; 60].join(".") + ".leaf";
        let started = std::time::Instant::now();
        let out = filter_path(&deep, &spec);
        assert_eq!(out, deep);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "filter_path took {:?}",
            started.elapsed()
        );
        // Far more `**` than a recursive matcher's stack could take.
        let spec = vec!["**"; 200_000].join(".") + ".leaf";
        std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || filter_path(&json!({"a": {"leaf": 1}}), &spec))
            .unwrap()
            .join()
            .expect("filter_path overflowed a small stack");
    }
}
