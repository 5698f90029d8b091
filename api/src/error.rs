//! The Elasticsearch error envelope. Every failure the API reports goes through [`EsError`],
//! which decides the HTTP status, the `type` and the `reason` in one place.

use std::fmt::Write as _;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coffer_repository::RepositoryError;
use coffer_repository::verify::{StepOutcome, VerifyReport};
use serde_json::{Map, Value, json};

/// An underlying cause, rendered as `caused_by`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// Its `type`.
    pub kind: String,
    /// Its `reason`.
    pub reason: String,
}

/// An error answered in Elasticsearch's envelope:
/// `{"error":{"root_cause":[…],"type","reason","caused_by"?},"status"}`. Boxed, so that
/// results stay small on the happy path; its fields are reached through `Deref`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {}", .0.kind, .0.reason)]
pub struct EsError(Box<ErrorData>);

impl std::ops::Deref for EsError {
    type Target = ErrorData;
    fn deref(&self) -> &ErrorData {
        &self.0
    }
}

impl std::ops::DerefMut for EsError {
    fn deref_mut(&mut self) -> &mut ErrorData {
        &mut self.0
    }
}

/// What an [`EsError`] holds.
#[derive(Debug, Clone)]
pub struct ErrorData {
    /// HTTP status.
    pub status: StatusCode,
    /// Elasticsearch's exception name (`repository_missing_exception`, …).
    pub kind: &'static str,
    /// What went wrong.
    pub reason: String,
    /// The underlying causes, outermost first.
    pub causes: Vec<Cause>,
    /// Extra fields shown beside `type` and `reason` (`index`, `resource.id`, …).
    pub extra: Map<String, Value>,
}

impl EsError {
    /// An error with no cause.
    pub fn new(status: StatusCode, kind: &'static str, reason: impl Into<String>) -> Self {
        Self(Box::new(ErrorData {
            status,
            kind,
            reason: reason.into(),
            causes: Vec::new(),
            extra: Map::new(),
        }))
    }

    /// Adds a `caused_by`.
    #[must_use]
    pub fn caused_by(mut self, kind: impl Into<String>, reason: impl Into<String>) -> Self {
        self.causes.push(Cause {
            kind: kind.into(),
            reason: reason.into(),
        });
        self
    }

    /// Adds a field beside `type` and `reason`.
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    /// 400 `illegal_argument_exception`.
    pub fn illegal_argument(reason: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            reason,
        )
    }

    /// 400 `parse_exception`.
    pub fn parse(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "parse_exception", reason)
    }

    /// 400 `x_content_parse_exception` (malformed or mistyped JSON body).
    pub fn x_content(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "x_content_parse_exception", reason)
    }

    /// 400 `action_request_validation_exception`.
    pub fn validation(problems: &[String]) -> Self {
        let mut reason = String::from("Validation Failed: ");
        for (i, p) in problems.iter().enumerate() {
            let _ = write!(reason, "{}: {p};", i + 1);
        }
        Self::new(
            StatusCode::BAD_REQUEST,
            "action_request_validation_exception",
            reason,
        )
    }

    /// 404 `repository_missing_exception`.
    pub fn repository_missing(repo: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "repository_missing_exception",
            format!("[{repo}] missing"),
        )
    }

    /// 404 `snapshot_missing_exception`.
    pub fn snapshot_missing(repo: &str, snap: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "snapshot_missing_exception",
            format!("[{repo}:{snap}] is missing"),
        )
    }

    /// 404 `index_not_found_exception`.
    pub fn index_not_found(index: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "index_not_found_exception",
            format!("no such index [{index}]"),
        )
        .with("resource.type", "index_or_alias")
        .with("resource.id", index)
        .with("index", index)
    }

    /// 400 `resource_already_exists_exception`.
    pub fn index_exists(index: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "resource_already_exists_exception",
            format!("index [{index}] already exists"),
        )
        .with("index", index)
    }

    /// 400 `invalid_index_name_exception`.
    pub fn invalid_index_name(index: &str, why: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_index_name_exception",
            format!("Invalid index name [{index}], {why}"),
        )
        .with("index", index)
    }

    /// 400 `index_closed_exception`.
    pub fn index_closed(index: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "index_closed_exception", "closed").with("index", index)
    }

    /// 400 `invalid_snapshot_name_exception`.
    pub fn invalid_snapshot_name(repo: &str, snap: &str, why: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_snapshot_name_exception",
            format!("[{repo}:{snap}] Invalid snapshot name [{snap}], {why}"),
        )
    }

    /// 400 `snapshot_name_already_in_use_exception`.
    pub fn snapshot_name_in_use(repo: &str, snap: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "snapshot_name_already_in_use_exception",
            format!(
                "[{repo}:{snap}] Invalid snapshot name [{snap}], snapshot with the same name already exists"
            ),
        )
    }

    /// 503 `concurrent_snapshot_execution_exception`.
    pub fn concurrent(repo: &str, snap: &str, action: &str, running: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "concurrent_snapshot_execution_exception",
            format!("[{repo}:{snap}] cannot {action} while {running} is in progress"),
        )
    }

    /// 500 `repository_exception`.
    pub fn repository(repo: &str, reason: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "repository_exception",
            format!("[{repo}] {reason}"),
        )
    }

    /// 500 `snapshot_exception`.
    pub fn snapshot(repo: &str, snap: &str, reason: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "snapshot_exception",
            format!("[{repo}:{snap}] {reason}"),
        )
    }

    /// 500 `snapshot_restore_exception`.
    pub fn restore(repo: &str, snap: &str, reason: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "snapshot_restore_exception",
            format!("[{repo}:{snap}] {reason}"),
        )
    }

    /// 500 for a fault of coffer itself.
    pub fn internal(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "exception", reason)
    }

    /// 500 `repository_verification_exception` built from a failed verification: the
    /// reason names the step, the key, the storage's code and message and a hint; the
    /// storage's code is the `caused_by`.
    pub fn verification(repo: &str, report: &VerifyReport) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "repository_verification_exception",
            format!("[{repo}] {report}"),
        );
        if let Some(step) = report.failure() {
            e = e.with("step", step.step).with("key", step.key.clone());
            if let StepOutcome::Failed {
                code,
                message,
                hint,
            } = &step.outcome
            {
                let cause = match code {
                    Some(c) => format!("[{c}] {message}"),
                    None => message.clone(),
                };
                e = e.caused_by("storage_exception", cause);
                if let Some(c) = code {
                    e = e.with("storage_code", c.clone());
                }
                if !hint.is_empty() {
                    e = e.with("hint", hint.clone());
                }
            }
        }
        e
    }

    /// A repository-layer failure on repository `repo`: always `repository_exception` 500,
    /// with the storage's own code as the cause when there is one.
    pub fn from_repository(repo: &str, err: &RepositoryError) -> Self {
        let mut e = Self::repository(repo, err);
        if let RepositoryError::Storage {
            code: Some(code),
            message,
            ..
        } = err
        {
            e = e.caused_by("storage_exception", format!("[{code}] {message}"));
        }
        e
    }

    /// The JSON body.
    pub fn body(&self, error_trace: bool) -> Value {
        let mut error = Map::new();
        let mut root = Map::new();
        root.insert("type".into(), self.kind.into());
        root.insert("reason".into(), self.reason.clone().into());
        for (k, v) in &self.extra {
            root.insert(k.clone(), v.clone());
        }
        error.insert("root_cause".into(), Value::Array(vec![Value::Object(root)]));
        error.insert("type".into(), self.kind.into());
        error.insert("reason".into(), self.reason.clone().into());
        for (k, v) in &self.extra {
            error.insert(k.clone(), v.clone());
        }
        let mut nested: Option<Value> = None;
        for c in self.causes.iter().rev() {
            let mut m = Map::new();
            m.insert("type".into(), c.kind.clone().into());
            m.insert("reason".into(), c.reason.clone().into());
            if let Some(n) = nested.take() {
                m.insert("caused_by".into(), n);
            }
            nested = Some(Value::Object(m));
        }
        if let Some(n) = nested {
            error.insert("caused_by".into(), n);
        }
        if error_trace {
            let mut trace = format!("{}: {}", self.kind, self.reason);
            for c in &self.causes {
                let _ = write!(trace, "\nCaused by: {}: {}", c.kind, c.reason);
            }
            error.insert("stack_trace".into(), trace.into());
        }
        json!({"error": Value::Object(error), "status": self.status.as_u16()})
    }
}

impl IntoResponse for EsError {
    fn into_response(self) -> Response {
        // `error_trace` is applied by the response middleware, which knows the query.
        let status = self.status;
        let mut resp = (status, axum::Json(self.body(false))).into_response();
        resp.extensions_mut().insert(self);
        resp
    }
}

/// The API's result type.
pub type ApiResult<T> = Result<T, EsError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_shape() {
        let e = EsError::repository_missing("nope");
        assert_eq!(
            e.body(false),
            json!({"error": {"root_cause": [{"type": "repository_missing_exception", "reason": "[nope] missing"}],
                  "type": "repository_missing_exception", "reason": "[nope] missing"}, "status": 404})
        );
        let e = EsError::repository("r", "x")
            .caused_by("a", "outer")
            .caused_by("b", "inner");
        let b = e.body(true);
        assert_eq!(b["error"]["caused_by"]["type"], "a");
        assert_eq!(b["error"]["caused_by"]["caused_by"]["reason"], "inner");
        assert!(
            b["error"]["stack_trace"]
                .as_str()
                .unwrap()
                .contains("inner")
        );
    }

    #[test]
    fn repository_errors_keep_the_storage_code() {
        let err = RepositoryError::Storage {
            operation: "put",
            key: "k".into(),
            code: Some("AccessDenied".into()),
            message: "denied".into(),
            retryable: false,
        };
        let e = EsError::from_repository("r", &err);
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.kind, "repository_exception");
        assert!(e.reason.starts_with("[r] put [k] failed"));
        assert_eq!(e.causes[0].reason, "[AccessDenied] denied");
    }
}
