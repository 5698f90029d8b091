//! Elasticsearch REST API specs (`api/*.json`): which paths and methods an API has, which of its
//! parameters are path parts and which go in the query string, and whether it takes a body.
//!
//! Two layouts exist. Since 7.4 each entry of `url.paths` is an object with its own `methods`
//! and `parts`, and `params` sits at the top level. Before that, `methods` is at the top level,
//! `url.paths` is a list of strings, and `parts` and `params` live under `url`. Both are read;
//! path parts are always taken from the `{braces}` of the path itself, which both layouts agree
//! on.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use percent_encoding::{AsciiSet, CONTROLS, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value};

use crate::Error;
use crate::http::HttpRequest;
use crate::value::java_string;

/// Query parameters every API accepts (Elasticsearch's `_common.json`), used when the spec
/// directory has no `_common.json` of its own.
pub const DEFAULT_GLOBAL_PARAMS: &[&str] =
    &["pretty", "human", "error_trace", "source", "filter_path"];

/// One URL template of an API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecPath {
    /// The template, e.g. `/_snapshot/{repository}/{snapshot}`.
    pub template: String,
    /// Allowed methods, in the spec's order.
    pub methods: Vec<String>,
    /// The parts the template needs, in order of appearance.
    pub parts: Vec<String>,
}

/// Whether and how an API takes a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyRule {
    /// No body.
    None,
    /// An optional JSON body.
    Optional,
    /// A JSON body is required.
    Required,
    /// A newline-delimited body (`bulk` and friends).
    Bulk,
}

/// One API, e.g. `snapshot.create`.
#[derive(Debug, Clone)]
pub struct ApiSpec {
    /// The API name.
    pub name: String,
    /// Its URL templates.
    pub paths: Vec<SpecPath>,
    /// Its query-string parameters.
    pub params: BTreeSet<String>,
    /// Its body rule.
    pub body: BodyRule,
}

/// The `{part}` names of a template, in order.
fn template_parts(template: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        parts.push(rest[open + 1..open + close].to_owned());
        rest = &rest[open + close + 1..];
    }
    parts
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn keys(value: Option<&Value>) -> BTreeSet<String> {
    value
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

impl ApiSpec {
    /// Parses one spec file's text. `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self, Error> {
        let err = |message: String| Error::Spec {
            file: file.to_owned(),
            message,
        };
        let root: Value =
            serde_json::from_str(text).map_err(|e| err(format!("invalid JSON: {e}")))?;
        let Some(root) = root.as_object() else {
            return Err(err("top level is not an object".to_owned()));
        };
        let mut apis = root.iter();
        let (Some((name, api)), None) = (apis.next(), apis.next()) else {
            return Err(err("expected exactly one API at the top level".to_owned()));
        };
        let api = api
            .as_object()
            .ok_or_else(|| err(format!("[{name}] is not an object")))?;
        let url = api
            .get("url")
            .and_then(Value::as_object)
            .ok_or_else(|| err(format!("[{name}] has no url object")))?;
        let raw_paths = url
            .get("paths")
            .and_then(Value::as_array)
            .cloned()
            .or_else(|| url.get("path").map(|p| vec![p.clone()]))
            .ok_or_else(|| err(format!("[{name}] has no url.paths")))?;
        let legacy_methods = strings(api.get("methods"));
        let mut paths = Vec::new();
        for raw in raw_paths {
            let (template, methods) = match &raw {
                // Pre-7.4: a template string, methods shared by all paths.
                Value::String(t) => (t.clone(), legacy_methods.clone()),
                Value::Object(p) => {
                    let t = p
                        .get("path")
                        .and_then(Value::as_str)
                        .ok_or_else(|| err(format!("[{name}] has a path without `path`")))?;
                    (t.to_owned(), strings(p.get("methods")))
                }
                other => return Err(err(format!("[{name}] has a malformed path {other}"))),
            };
            if methods.is_empty() {
                return Err(err(format!("[{name}] path [{template}] has no methods")));
            }
            paths.push(SpecPath {
                parts: template_parts(&template),
                template,
                methods,
            });
        }
        let mut params = keys(api.get("params"));
        params.extend(keys(url.get("params")));
        let body = match api.get("body") {
            None | Some(Value::Null) => BodyRule::None,
            Some(Value::Object(b)) => {
                if b.get("serialize").and_then(Value::as_str) == Some("bulk") {
                    BodyRule::Bulk
                } else if b.get("required").and_then(Value::as_bool) == Some(true) {
                    BodyRule::Required
                } else {
                    BodyRule::Optional
                }
            }
            Some(other) => return Err(err(format!("[{name}] has a malformed body {other}"))),
        };
        Ok(Self {
            name: name.clone(),
            paths,
            params,
            body,
        })
    }

    fn is_part(&self, key: &str) -> bool {
        self.paths.iter().any(|p| p.parts.iter().any(|k| k == key))
    }

    /// Builds the request for this API. `params` are the `do` step's arguments (stash already
    /// applied); those naming a path part fill the path, the rest become query parameters and
    /// must be declared by the spec or be `global` parameters.
    ///
    /// The path is the one whose parts are all given and that uses the most of them, as in
    /// Elasticsearch's runner; among equals, the first in the spec. The method is that path's
    /// first method.
    pub fn build_request(
        &self,
        params: &Map<String, Value>,
        body: Option<&Value>,
        global: &BTreeSet<String>,
    ) -> Result<HttpRequest, Error> {
        let given: BTreeSet<&str> = params
            .keys()
            .map(String::as_str)
            .filter(|k| self.is_part(k))
            .collect();
        let path = self
            .paths
            .iter()
            .filter(|p| p.parts.iter().all(|k| given.contains(k.as_str())))
            .fold(None::<&SpecPath>, |best, p| match best {
                Some(b) if b.parts.len() >= p.parts.len() => Some(b),
                _ => Some(p),
            })
            .ok_or_else(|| {
                Error::Param(format!(
                    "no path of api [{}] can be built from the parts given [{}]; paths: {}",
                    self.name,
                    given.iter().copied().collect::<Vec<_>>().join(", "),
                    self.paths
                        .iter()
                        .map(|p| p.template.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        let mut url = path.template.clone();
        let mut query = Vec::new();
        for (key, value) in params {
            let text = param_string(key, value)?;
            if path.parts.contains(key) {
                if text.is_empty() {
                    return Err(Error::Param(format!(
                        "path part [{key}] of api [{}] is empty",
                        self.name
                    )));
                }
                url = url.replace(&format!("{{{key}}}"), &encode_path_part(&text));
            } else if self.params.contains(key) || global.contains(key) {
                query.push((key.clone(), text));
            } else {
                return Err(Error::Param(format!(
                    "path/param [{key}] not supported by [{}] api",
                    self.name
                )));
            }
        }
        // Sorted, so the request does not depend on how the JSON map of params iterates
        // (serde_json's `preserve_order` may be on in a workspace build).
        query.sort();
        let (body, content_type) = match (body, self.body) {
            (None, BodyRule::Required) => {
                return Err(Error::Param(format!("api [{}] requires a body", self.name)));
            }
            (None, _) => (None, None),
            (Some(_), BodyRule::None) => {
                return Err(Error::Param(format!(
                    "api [{}] does not support a body",
                    self.name
                )));
            }
            (Some(b), BodyRule::Bulk) => (Some(ndjson(b)?), Some("application/x-ndjson")),
            (Some(b), _) => (Some(json_body(b)?), Some("application/json")),
        };
        Ok(HttpRequest {
            method: path.methods[0].clone(),
            path: url,
            query,
            headers: content_type
                .map(|ct| vec![("Content-Type".to_owned(), ct.to_owned())])
                .unwrap_or_default(),
            body,
        })
    }
}

/// Characters escaped in a path part: what a URI path cannot hold literally, plus `/` so a
/// part stays one segment. Commas, `*` and `:` stay, as Elasticsearch's client leaves them.
const PATH_PART: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'|')
    .add(b'\\')
    .add(b'^')
    .add(b'[')
    .add(b']');

/// Percent-encodes one path segment (a repository, snapshot or index name).
pub fn encode_path_part(text: &str) -> String {
    utf8_percent_encode(text, PATH_PART).to_string()
}

/// Characters escaped in a query value.
pub const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'*')
    .remove(b',')
    .remove(b':');

/// A parameter as text: lists are comma-joined, scalars printed as Java would.
fn param_string(key: &str, value: &Value) -> Result<String, Error> {
    match value {
        Value::Array(items) => Ok(items
            .iter()
            .map(|v| param_string(key, v))
            .collect::<Result<Vec<_>, _>>()?
            .join(",")),
        Value::Object(_) => Err(Error::Param(format!(
            "parameter [{key}] is an object; only scalars and lists are allowed"
        ))),
        other => Ok(java_string(other)),
    }
}

fn json_body(body: &Value) -> Result<Vec<u8>, Error> {
    match body {
        // A string body is sent exactly as written (tests use it for hand-written JSON).
        Value::String(s) => Ok(s.clone().into_bytes()),
        other => serde_json::to_vec(other).map_err(|e| Error::Param(format!("body: {e}"))),
    }
}

fn ndjson(body: &Value) -> Result<Vec<u8>, Error> {
    let lines = match body {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    let mut out = Vec::new();
    for line in &lines {
        let mut bytes = json_body(line)?;
        while bytes.last() == Some(&b'\n') {
            bytes.pop();
        }
        out.extend_from_slice(&bytes);
        out.push(b'\n');
    }
    Ok(out)
}

/// All specs of a directory, by API name.
#[derive(Debug, Clone, Default)]
pub struct ApiRegistry {
    apis: BTreeMap<String, ApiSpec>,
    /// Query parameters every API accepts.
    pub global_params: BTreeSet<String>,
}

impl ApiRegistry {
    /// Reads every `*.json` in `dir`. `_common.json`, when present, supplies the global
    /// parameters.
    pub fn load_dir(dir: &Path) -> Result<Self, Error> {
        let io = |source| Error::Io {
            path: dir.to_owned(),
            source,
        };
        let mut registry = Self {
            apis: BTreeMap::new(),
            global_params: DEFAULT_GLOBAL_PARAMS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        };
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(io)?
            .into_iter()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|source| Error::Io {
                path: file.clone(),
                source,
            })?;
            let label = file.file_name().map_or_else(
                || file.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            if label == "_common.json" {
                let common: Value = serde_json::from_str(&text).map_err(|e| Error::Spec {
                    file: label.clone(),
                    message: e.to_string(),
                })?;
                registry.global_params.extend(keys(common.get("params")));
                continue;
            }
            registry.insert(ApiSpec::parse(&label, &text)?);
        }
        Ok(registry)
    }

    /// Adds (or replaces) one API.
    pub fn insert(&mut self, spec: ApiSpec) {
        self.apis.insert(spec.name.clone(), spec);
    }

    /// The spec of `api`.
    pub fn get(&self, api: &str) -> Result<&ApiSpec, Error> {
        self.apis
            .get(api)
            .ok_or_else(|| Error::UnknownApi(api.to_owned()))
    }

    /// Whether `api` has a spec.
    pub fn contains(&self, api: &str) -> bool {
        self.apis.contains_key(api)
    }

    /// Number of APIs.
    pub fn len(&self) -> usize {
        self.apis.len()
    }

    /// Whether no API was loaded.
    pub fn is_empty(&self) -> bool {
        self.apis.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MODERN: &str = r#"{
      "snapshot.get": {
        "documentation": {"url": "x"},
        "url": {"paths": [
          {"path": "/_snapshot/{repository}/{snapshot}", "methods": ["GET"],
           "parts": {"repository": {"type": "string"}, "snapshot": {"type": "list"}}}
        ]},
        "params": {"verbose": {"type": "boolean"}, "sort": {"type": "enum"}}
      }
    }"#;

    const MODERN_MULTI: &str = r#"{
      "nodes.reload_secure_settings": {
        "url": {"paths": [
          {"path": "/_nodes/reload_secure_settings", "methods": ["POST"]},
          {"path": "/_nodes/{node_id}/reload_secure_settings", "methods": ["POST"],
           "parts": {"node_id": {"type": "list"}}}
        ]},
        "params": {"timeout": {}},
        "body": {"description": "x", "required": false}
      }
    }"#;

    const LEGACY: &str = r#"{
      "cat.indices": {
        "methods": ["GET"],
        "url": {
          "path": "/_cat/indices",
          "paths": ["/_cat/indices", "/_cat/indices/{index}"],
          "parts": {"index": {"type": "list"}},
          "params": {"format": {}, "v": {}, "s": {}}
        },
        "body": null
      }
    }"#;

    const LEGACY_CREATE: &str = r#"{
      "indices.create": {
        "methods": ["PUT", "POST"],
        "url": {"path": "/{index}", "paths": ["/{index}"],
                "parts": {"index": {"required": true}}, "params": {"timeout": {}}},
        "body": {"description": "settings"}
      }
    }"#;

    fn globals() -> BTreeSet<String> {
        DEFAULT_GLOBAL_PARAMS
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    }

    #[allow(clippy::needless_pass_by_value)]
    fn params(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn modern_layout_is_read() {
        let spec = ApiSpec::parse("snapshot.get.json", MODERN).unwrap();
        assert_eq!(spec.name, "snapshot.get");
        assert_eq!(spec.paths.len(), 1);
        assert_eq!(spec.paths[0].methods, vec!["GET"]);
        assert_eq!(spec.paths[0].parts, vec!["repository", "snapshot"]);
        assert!(spec.params.contains("verbose"));
        assert_eq!(spec.body, BodyRule::None);
    }

    #[test]
    fn legacy_layout_is_read() {
        let spec = ApiSpec::parse("cat.indices.json", LEGACY).unwrap();
        assert_eq!(spec.paths.len(), 2);
        assert_eq!(spec.paths[1].template, "/_cat/indices/{index}");
        assert_eq!(spec.paths[1].methods, vec!["GET"]);
        assert!(spec.params.contains("format"));
        let create = ApiSpec::parse("indices.create.json", LEGACY_CREATE).unwrap();
        assert_eq!(create.paths[0].methods, vec!["PUT", "POST"]);
        assert_eq!(create.body, BodyRule::Optional);
    }

    #[test]
    fn most_specific_complete_path_wins() {
        let spec = ApiSpec::parse("x", MODERN_MULTI).unwrap();
        let r = spec
            .build_request(&params(json!({})), None, &globals())
            .unwrap();
        assert_eq!(r.path, "/_nodes/reload_secure_settings");
        let r = spec
            .build_request(&params(json!({"node_id": "_local"})), None, &globals())
            .unwrap();
        assert_eq!(r.path, "/_nodes/_local/reload_secure_settings");
        assert_eq!(r.method, "POST");

        let cat = ApiSpec::parse("x", LEGACY).unwrap();
        let r = cat
            .build_request(
                &params(json!({"index": ["a", "b"], "v": true, "s": ["index", "x:desc"]})),
                None,
                &globals(),
            )
            .unwrap();
        assert_eq!(r.path, "/_cat/indices/a,b");
        assert_eq!(
            r.query,
            vec![
                ("s".to_owned(), "index,x:desc".to_owned()),
                ("v".to_owned(), "true".to_owned())
            ]
        );
    }

    #[test]
    fn missing_required_parts_and_unknown_params_are_param_errors() {
        let spec = ApiSpec::parse("x", MODERN).unwrap();
        let e = spec
            .build_request(&params(json!({"repository": "r"})), None, &globals())
            .unwrap_err();
        assert!(matches!(e, Error::Param(_)), "{e}");
        let e = spec
            .build_request(
                &params(json!({"repository": "r", "snapshot": "s", "bogus": 1})),
                None,
                &globals(),
            )
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "path/param [bogus] not supported by [snapshot.get] api"
        );
        let e = spec
            .build_request(
                &params(json!({"repository": "r", "snapshot": "s"})),
                Some(&json!({})),
                &globals(),
            )
            .unwrap_err();
        assert!(e.to_string().contains("does not support a body"));
        // Global parameters are accepted everywhere.
        let r = spec
            .build_request(
                &params(json!({"repository": "r", "snapshot": "s", "human": true})),
                None,
                &globals(),
            )
            .unwrap();
        assert_eq!(r.query, vec![("human".to_owned(), "true".to_owned())]);
    }

    #[test]
    fn parts_are_percent_encoded_and_bodies_serialised() {
        let spec = ApiSpec::parse("x", LEGACY_CREATE).unwrap();
        let r = spec
            .build_request(
                &params(json!({"index": "<logs-{now/d}>"})),
                Some(&json!({"settings": {"number_of_shards": "1"}})),
                &globals(),
            )
            .unwrap();
        assert_eq!(r.path, "/%3Clogs-%7Bnow%2Fd%7D%3E");
        assert_eq!(r.method, "PUT");
        assert_eq!(r.body.unwrap(), br#"{"settings":{"number_of_shards":"1"}}"#);
        let r = spec
            .build_request(
                &params(json!({"index": "i"})),
                Some(&json!("{ \"raw\": 1 }")),
                &globals(),
            )
            .unwrap();
        assert_eq!(r.body.unwrap(), b"{ \"raw\": 1 }");
    }

    #[test]
    fn malformed_specs_are_rejected() {
        assert!(ApiSpec::parse("x", "{}").is_err());
        assert!(ApiSpec::parse("x", r#"{"a": {"url": {}}}"#).is_err());
        assert!(ApiSpec::parse("x", r#"{"a": {"url": {"paths": ["/x"]}}}"#).is_err());
        assert!(ApiSpec::parse("x", "not json").is_err());
    }
}
