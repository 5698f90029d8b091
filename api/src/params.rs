//! Query parameters and request bodies, checked the way Elasticsearch checks them: an unknown
//! parameter or body field is a 400 that names it, a malformed body names line and column.

use std::collections::BTreeMap;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde_json::{Map, Value};

use crate::error::{ApiResult, EsError};

/// Parameters every endpoint accepts.
pub const COMMON: &[&str] = &["pretty", "human", "error_trace", "filter_path"];

/// The query string of a request, with its path for error messages.
#[derive(Debug, Clone, Default)]
pub struct Params {
    path: String,
    map: BTreeMap<String, String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = EsError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::parse(
            parts.uri.path(),
            parts.uri.query().unwrap_or_default(),
        ))
    }
}

impl Params {
    /// Parses `query` (percent-decoded; a repeated key keeps its last value).
    pub fn parse(path: &str, query: &str) -> Self {
        let map = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Self {
            path: path.to_owned(),
            map,
        }
    }

    /// Fails with Elasticsearch's message when a parameter is neither common nor in
    /// `allowed`.
    pub fn check(&self, allowed: &[&str]) -> ApiResult<()> {
        let unknown: Vec<&str> = self
            .map
            .keys()
            .map(String::as_str)
            .filter(|k| !COMMON.contains(k) && !allowed.contains(k))
            .collect();
        match unknown.as_slice() {
            [] => Ok(()),
            [one] => Err(EsError::illegal_argument(format!(
                "request [{}] contains unrecognized parameter: [{one}]",
                self.path
            ))),
            many => Err(EsError::illegal_argument(format!(
                "request [{}] contains unrecognized parameters: {}",
                self.path,
                many.iter()
                    .map(|k| format!("[{k}]"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// A raw value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    /// A boolean with Elasticsearch's parsing: `true`, `false`, or empty (`?v`) for true.
    pub fn bool(&self, key: &str, default: bool) -> ApiResult<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => parse_bool(key, v),
        }
    }

    /// A non-negative integer.
    pub fn u64(&self, key: &str) -> ApiResult<Option<u64>> {
        self.get(key)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    EsError::illegal_argument(format!(
                        "failed to parse [{key}] value [{v}]: not a non-negative integer"
                    ))
                })
            })
            .transpose()
    }

    /// An integer that may be negative (`size=-1` means "all").
    pub fn i64(&self, key: &str) -> ApiResult<Option<i64>> {
        self.get(key)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    EsError::illegal_argument(format!(
                        "failed to parse [{key}] value [{v}]: not an integer"
                    ))
                })
            })
            .transpose()
    }
}

/// Elasticsearch's strict boolean.
pub fn parse_bool(key: &str, v: &str) -> ApiResult<bool> {
    match v {
        "" | "true" => Ok(true),
        "false" => Ok(false),
        other => Err(EsError::illegal_argument(format!(
            "Failed to parse value [{other}] as only [true] or [false] are allowed. (parameter [{key}])"
        ))),
    }
}

/// A JSON request body as an object; empty bodies are an empty object.
pub fn json_object(body: &[u8]) -> ApiResult<Map<String, Value>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(EsError::parse(
            "request body is required to be a JSON object",
        )),
        Err(e) => Err(EsError::x_content(format!(
            "[{}:{}] Failed to parse the request body: {e}",
            e.line(),
            e.column()
        ))),
    }
}

/// Reads the fields of a body object one by one, refusing any field no one asked for.
#[derive(Debug)]
pub struct Body {
    what: &'static str,
    map: Map<String, Value>,
}

impl Body {
    /// Parses `bytes` as the body of `what` (`create snapshot`, …).
    pub fn parse(what: &'static str, bytes: &[u8]) -> ApiResult<Self> {
        Ok(Self {
            what,
            map: json_object(bytes)?,
        })
    }

    /// Wraps an already parsed object.
    pub fn from_map(what: &'static str, map: Map<String, Value>) -> Self {
        Self { what, map }
    }

    /// Takes a field.
    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key)
    }

    /// A string field (a number or boolean is accepted as its text, as ES does).
    pub fn string(&mut self, key: &str) -> ApiResult<Option<String>> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(other) => Err(self.type_error(key, "a string", &other)),
        }
    }

    /// A boolean field (`"true"`/`"false"` strings accepted).
    pub fn bool(&mut self, key: &str) -> ApiResult<Option<bool>> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(Value::String(s)) => parse_bool(key, &s).map(Some),
            Some(other) => Err(self.type_error(key, "a boolean", &other)),
        }
    }

    /// A list of strings: a JSON array, or a comma-separated string.
    pub fn string_list(&mut self, key: &str) -> ApiResult<Option<Vec<String>>> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(split_list(&s))),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for i in items {
                    match i {
                        Value::String(s) => out.extend(split_list(&s)),
                        other => return Err(self.type_error(key, "a list of strings", &other)),
                    }
                }
                Ok(Some(out))
            }
            Some(other) => Err(self.type_error(key, "a string or a list of strings", &other)),
        }
    }

    /// An object field.
    pub fn object(&mut self, key: &str) -> ApiResult<Option<Map<String, Value>>> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(other) => Err(self.type_error(key, "an object", &other)),
        }
    }

    fn type_error(&self, key: &str, expected: &str, got: &Value) -> EsError {
        EsError::x_content(format!(
            "[{}] failed to parse field [{key}]: expected {expected}, got {}",
            self.what,
            kind_of(got)
        ))
    }

    /// Fails if any field was not taken.
    pub fn finish(self) -> ApiResult<()> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(k) => Err(EsError::x_content(format!(
                "[{}] unknown field [{k}]",
                self.what
            ))),
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Splits a comma-separated list, dropping empty items.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_parameters_are_named() {
        let p = Params::parse("/_snapshot/r", "verify=false&pretty&bogus=1");
        p.check(&["verify"]).unwrap_err();
        let e = p.check(&["verify"]).unwrap_err();
        assert_eq!(
            e.reason,
            "request [/_snapshot/r] contains unrecognized parameter: [bogus]"
        );
        assert!(p.bool("pretty", false).unwrap());
        assert!(!p.bool("verify", true).unwrap());
        assert!(p.bool("bogus", true).is_err());
    }

    #[test]
    fn bodies() {
        let e = json_object(b"{\"a\": 1,\n \"b\": }").unwrap_err();
        assert_eq!(e.kind, "x_content_parse_exception");
        assert!(e.reason.starts_with("[2:"), "{}", e.reason);
        let mut b = Body::parse("t", br#"{"indices": "a,b", "x": true, "extra": 1}"#).unwrap();
        assert_eq!(b.string_list("indices").unwrap().unwrap(), vec!["a", "b"]);
        assert_eq!(b.bool("x").unwrap(), Some(true));
        let e = b.finish().unwrap_err();
        assert_eq!(e.reason, "[t] unknown field [extra]");
        let mut b = Body::parse("t", br#"{"x": [1]}"#).unwrap();
        assert_eq!(b.bool("x").unwrap_err().status.as_u16(), 400);
    }
}
