//! The YAML test format: a file is a sequence of YAML documents; each maps `setup`,
//! `teardown` or a test name to a list of steps. A section may open with `skip` / `requires`
//! prerequisites.

use serde_json::{Map, Value};
use yaml_rust2::{Yaml, YamlLoader};

use crate::Error;
use crate::prereq::{Prereq, PrereqKind};
use crate::value::{show, yaml_key, yaml_to_json};

/// One parsed test file.
#[derive(Debug, Clone, Default)]
pub struct TestFile {
    /// The file's name relative to the test directory, e.g. `snapshot.get/10_basic.yml`.
    pub name: String,
    /// Run before every test.
    pub setup: Section,
    /// Run after every test.
    pub teardown: Section,
    /// The tests, in file order.
    pub tests: Vec<TestCase>,
}

/// A list of steps, with the prerequisites it opens with.
#[derive(Debug, Clone, Default)]
pub struct Section {
    /// `skip` / `requires` entries.
    pub prereqs: Vec<Prereq>,
    /// The steps.
    pub steps: Vec<Step>,
}

/// One named test.
#[derive(Debug, Clone)]
pub struct TestCase {
    /// Its name.
    pub name: String,
    /// Its body.
    pub section: Section,
}

/// Comparison operators of `gt`, `gte`, `lt`, `lte`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `<`
    Lt,
    /// `<=`
    Lte,
}

impl CompareOp {
    /// The step keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            Self::Gt => "gt",
            Self::Gte => "gte",
            Self::Lt => "lt",
            Self::Lte => "lte",
        }
    }
}

/// A `do` step: one API call.
#[derive(Debug, Clone, Default)]
pub struct DoStep {
    /// API name, e.g. `snapshot.create`.
    pub api: String,
    /// Path parts and query parameters.
    pub params: Map<String, Value>,
    /// The request body.
    pub body: Option<Value>,
    /// Statuses that are not errors (`ignore: 404`).
    pub ignore: Vec<u16>,
    /// The expected failure: `missing`, `request`, `param`, ... or `/regex/`.
    pub catch: Option<String>,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Warnings that must be present.
    pub warnings: Vec<String>,
    /// Warning patterns that must be present.
    pub warnings_regex: Vec<String>,
    /// Warnings that may be present.
    pub allowed_warnings: Vec<String>,
    /// Warning patterns that may be present.
    pub allowed_warnings_regex: Vec<String>,
    /// `node_selector`, which a single-node server cannot honour.
    pub node_selector: bool,
}

/// One step.
#[derive(Debug, Clone)]
pub enum Step {
    /// An API call.
    Do(Box<DoStep>),
    /// `match: {path: expected}`.
    Match {
        /// Response path.
        path: String,
        /// Expected value (or `/regex/`).
        expected: Value,
    },
    /// `length: {path: n}`.
    Length {
        /// Response path.
        path: String,
        /// Expected length.
        expected: Value,
    },
    /// `is_true: path`.
    IsTrue(String),
    /// `is_false: path`.
    IsFalse(String),
    /// `gt` / `gte` / `lt` / `lte`.
    Compare {
        /// Which comparison.
        op: CompareOp,
        /// Response path.
        path: String,
        /// Bound.
        expected: Value,
    },
    /// `contains: {path: value}`.
    Contains {
        /// Response path.
        path: String,
        /// The element the list must hold.
        expected: Value,
    },
    /// `close_to: {path: {value: v, error: e}}`.
    CloseTo {
        /// Response path.
        path: String,
        /// Expected value.
        value: f64,
        /// Allowed difference.
        error: f64,
    },
    /// `set: {path: key}`.
    Set {
        /// Response path.
        path: String,
        /// Stash key.
        key: String,
    },
    /// `transform_and_set: {key: "#function(args)"}`.
    TransformAndSet {
        /// Stash key.
        key: String,
        /// The transformation.
        expression: String,
    },
}

impl Step {
    /// A short description for reports, e.g. `match snapshots.0.state`.
    pub fn describe(&self) -> String {
        match self {
            Self::Do(d) => match &d.catch {
                Some(c) => format!("do {} (catch: {c})", d.api),
                None => format!("do {}", d.api),
            },
            Self::Match { path, expected } => format!("match {{{path}: {}}}", show(expected)),
            Self::Length { path, expected } => format!("length {{{path}: {}}}", show(expected)),
            Self::IsTrue(p) => format!("is_true {p}"),
            Self::IsFalse(p) => format!("is_false {p}"),
            Self::Compare { op, path, expected } => {
                format!("{} {{{path}: {}}}", op.keyword(), show(expected))
            }
            Self::Contains { path, expected } => format!("contains {{{path}: {}}}", show(expected)),
            Self::CloseTo { path, value, error } => {
                format!("close_to {{{path}: {value} ± {error}}}")
            }
            Self::Set { path, key } => format!("set {{{path}: {key}}}"),
            Self::TransformAndSet { key, expression } => {
                format!("transform_and_set {{{key}: {expression}}}")
            }
        }
    }
}

impl TestFile {
    /// Parses a file's text. `name` labels it in errors and reports.
    pub fn parse(name: &str, text: &str) -> Result<Self, Error> {
        let err = |message: String| Error::Suite {
            file: name.to_owned(),
            message,
        };
        let docs = YamlLoader::load_from_str(text).map_err(|e| err(e.to_string()))?;
        let mut file = Self {
            name: name.to_owned(),
            ..Self::default()
        };
        let (mut seen_setup, mut seen_teardown) = (false, false);
        for doc in docs {
            let hash = match doc {
                Yaml::Null => continue,
                Yaml::Hash(h) => h,
                other => return Err(err(format!("a document is not a mapping: {other:?}"))),
            };
            for (key, value) in hash {
                let key = yaml_key(&key).map_err(&err)?;
                let section = parse_section(&value).map_err(|m| err(format!("in [{key}]: {m}")))?;
                match key.as_str() {
                    "setup" if seen_setup => return Err(err("two setup sections".to_owned())),
                    "setup" => {
                        seen_setup = true;
                        file.setup = section;
                    }
                    "teardown" if seen_teardown => {
                        return Err(err("two teardown sections".to_owned()));
                    }
                    "teardown" => {
                        seen_teardown = true;
                        file.teardown = section;
                    }
                    _ => {
                        if file.tests.iter().any(|t| t.name == key) {
                            return Err(err(format!("duplicate test name [{key}]")));
                        }
                        file.tests.push(TestCase { name: key, section });
                    }
                }
            }
        }
        Ok(file)
    }
}

/// Loads every `<api>/<file>.yml` under `dir`, sorted by name.
pub fn load_dir(dir: &std::path::Path) -> Result<Vec<TestFile>, Error> {
    let io = |path: &std::path::Path| {
        let path = path.to_owned();
        move |source| Error::Io { path, source }
    };
    let mut names = Vec::new();
    for api in std::fs::read_dir(dir).map_err(io(dir))? {
        let api = api.map_err(io(dir))?.path();
        if !api.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&api).map_err(io(&api))? {
            let file = file.map_err(io(&api))?.path();
            if file.extension().is_some_and(|e| e == "yml" || e == "yaml") {
                names.push(file);
            }
        }
    }
    names.sort();
    names
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).map_err(io(path))?;
            let name = path
                .strip_prefix(dir)
                .unwrap_or(path)
                .to_string_lossy()
                .replace('\\', "/");
            TestFile::parse(&name, &text)
        })
        .collect()
}

fn parse_section(yaml: &Yaml) -> Result<Section, String> {
    let Yaml::Array(items) = yaml else {
        return Err("a section must be a list of steps".to_owned());
    };
    let mut section = Section::default();
    for (i, item) in items.iter().enumerate() {
        let Yaml::Hash(hash) = item else {
            return Err(format!("step {} is not a mapping", i + 1));
        };
        if hash.len() != 1 {
            return Err(format!("step {} must have exactly one key", i + 1));
        }
        let (k, v) = hash.iter().next().expect("one entry");
        let keyword = yaml_key(k)?;
        let value = yaml_to_json(v).map_err(|m| format!("step {} ({keyword}): {m}", i + 1))?;
        let at = |m: String| format!("step {} ({keyword}): {m}", i + 1);
        match keyword.as_str() {
            "skip" | "requires" => {
                if !section.steps.is_empty() {
                    return Err(at("must come before every other step".to_owned()));
                }
                let kind = if keyword == "skip" {
                    PrereqKind::Skip
                } else {
                    PrereqKind::Requires
                };
                section
                    .prereqs
                    .push(Prereq::parse(kind, &value).map_err(at)?);
            }
            _ => section.steps.push(parse_step(&keyword, value).map_err(at)?),
        }
    }
    Ok(section)
}

fn single_entry(value: Value) -> Result<(String, Value), String> {
    match value {
        Value::Object(map) if map.len() == 1 => Ok(map.into_iter().next().expect("one entry")),
        other => Err(format!(
            "expected a single `path: value` entry, got {}",
            show(&other)
        )),
    }
}

fn path_string(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(format!("expected a path, got {}", show(other))),
    }
}

fn string_list(value: Value, what: &str) -> Result<Vec<String>, String> {
    match value {
        Value::String(s) => Ok(vec![s]),
        Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(format!(
                    "[{what}] entries must be strings, got {}",
                    show(&other)
                )),
            })
            .collect(),
        Value::Null => Ok(Vec::new()),
        other => Err(format!(
            "[{what}] must be a string or a list, got {}",
            show(&other)
        )),
    }
}

fn as_f64(value: &Value, what: &str) -> Result<f64, String> {
    value
        .as_f64()
        .ok_or_else(|| format!("[{what}] must be a number, got {}", show(value)))
}

fn parse_step(keyword: &str, value: Value) -> Result<Step, String> {
    Ok(match keyword {
        "do" => Step::Do(Box::new(parse_do(value)?)),
        "match" => {
            let (path, expected) = single_entry(value)?;
            Step::Match { path, expected }
        }
        "length" => {
            let (path, expected) = single_entry(value)?;
            Step::Length { path, expected }
        }
        "contains" => {
            let (path, expected) = single_entry(value)?;
            Step::Contains { path, expected }
        }
        "is_true" => Step::IsTrue(path_string(&value)?),
        "is_false" => Step::IsFalse(path_string(&value)?),
        "gt" | "gte" | "lt" | "lte" => {
            let op = match keyword {
                "gt" => CompareOp::Gt,
                "gte" => CompareOp::Gte,
                "lt" => CompareOp::Lt,
                _ => CompareOp::Lte,
            };
            let (path, expected) = single_entry(value)?;
            Step::Compare { op, path, expected }
        }
        "close_to" => {
            let (path, spec) = single_entry(value)?;
            let value = as_f64(spec.get("value").unwrap_or(&Value::Null), "value")?;
            let error = as_f64(spec.get("error").unwrap_or(&Value::Null), "error")?;
            Step::CloseTo { path, value, error }
        }
        "set" => {
            let (path, key) = single_entry(value)?;
            let Value::String(key) = key else {
                return Err("the stash key must be a string".to_owned());
            };
            Step::Set { path, key }
        }
        "transform_and_set" => {
            let (key, expression) = single_entry(value)?;
            let Value::String(expression) = expression else {
                return Err("the transformation must be a string".to_owned());
            };
            Step::TransformAndSet { key, expression }
        }
        other => return Err(format!("unknown step [{other}]")),
    })
}

fn parse_do(value: Value) -> Result<DoStep, String> {
    let Value::Object(map) = value else {
        return Err("`do` must be a mapping".to_owned());
    };
    let mut step = DoStep::default();
    let mut api = None;
    for (k, v) in map {
        match k.as_str() {
            "catch" => step.catch = Some(path_string(&v)?),
            "headers" => {
                let Value::Object(h) = v else {
                    return Err("[headers] must be a mapping".to_owned());
                };
                for (name, value) in h {
                    let value = match value {
                        Value::String(s) => s,
                        other => crate::value::java_string(&other),
                    };
                    step.headers.push((name, value));
                }
            }
            "warnings" => step.warnings = string_list(v, "warnings")?,
            "warnings_regex" => step.warnings_regex = string_list(v, "warnings_regex")?,
            "allowed_warnings" => step.allowed_warnings = string_list(v, "allowed_warnings")?,
            "allowed_warnings_regex" => {
                step.allowed_warnings_regex = string_list(v, "allowed_warnings_regex")?;
            }
            "node_selector" => step.node_selector = true,
            _ => {
                if api.is_some() {
                    return Err(format!(
                        "`do` calls more than one API ([{}] and [{k}])",
                        api.unwrap_or_default()
                    ));
                }
                api = Some(k);
                match v {
                    Value::Null => {}
                    Value::Object(params) => {
                        for (name, value) in params {
                            match name.as_str() {
                                "body" => step.body = Some(value),
                                "ignore" => step.ignore = ignore_codes(&value)?,
                                _ => {
                                    step.params.insert(name, value);
                                }
                            }
                        }
                    }
                    other => {
                        return Err(format!(
                            "API arguments must be a mapping, got {}",
                            show(&other)
                        ));
                    }
                }
            }
        }
    }
    step.api = api.ok_or("`do` names no API")?;
    Ok(step)
}

fn ignore_codes(value: &Value) -> Result<Vec<u16>, String> {
    let one = |v: &Value| {
        v.as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .ok_or_else(|| format!("[ignore] must hold status codes, got {}", show(v)))
    };
    match value {
        Value::Array(items) => items.iter().map(one).collect(),
        Value::String(s) if s.contains(',') => s
            .split(',')
            .map(|p| one(&Value::String(p.to_owned())))
            .collect(),
        other => Ok(vec![one(other)?]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FILE: &str = r##"
---
setup:
  - skip:
      features: [arbitrary_key]
  - do:
      snapshot.create_repository:
        repository: r
        body:
          type: fs
          settings:
            location: "loc"
---
teardown:
  - do:
      snapshot.delete_repository:
        repository: r
        ignore: 404
---
"First test":
  - requires:
      cluster_features: ["gte_v7.7.0"]
      reason: old
  - do:
      catch: /snapshot_missing_exception.+ is missing/
      headers:
        Authorization: "Basic x"
      allowed_warnings: ["w"]
      snapshot.get:
        repository: r
        snapshot: s
  - match: { error.type: "snapshot_missing_exception" }
  - is_true: snapshots
  - is_false: ''
  - length: { snapshots: 0 }
  - gte: { snapshots.0.stats.time_in_millis: 0 }
  - set: { nodes._arbitrary_key_: node_id }
  - contains: { list: { a: 1 } }
  - close_to: { x: { value: 1.5, error: 0.1 } }
  - transform_and_set: { login: "#base64EncodeCredentials(id,api_key)" }
---
"Second test":
  - do:
      cat.repositories: {}
  - match:
      $body: |
               /^$/
"##;

    #[test]
    fn a_whole_file_parses() {
        let f = TestFile::parse("x/10_basic.yml", FILE).unwrap();
        assert_eq!(f.setup.prereqs.len(), 1);
        assert_eq!(f.setup.steps.len(), 1);
        let Step::Do(d) = &f.setup.steps[0] else {
            panic!("not a do")
        };
        assert_eq!(d.api, "snapshot.create_repository");
        assert_eq!(
            d.params,
            json!({"repository": "r"}).as_object().unwrap().clone()
        );
        assert_eq!(
            d.body,
            Some(json!({"type": "fs", "settings": {"location": "loc"}}))
        );
        let Step::Do(t) = &f.teardown.steps[0] else {
            panic!("not a do")
        };
        assert_eq!(t.ignore, vec![404]);
        assert_eq!(f.tests.len(), 2);
        let first = &f.tests[0];
        assert_eq!(first.name, "First test");
        assert_eq!(first.section.prereqs.len(), 1);
        let steps = &first.section.steps;
        assert_eq!(steps.len(), 10);
        let Step::Do(d) = &steps[0] else {
            panic!("not a do")
        };
        assert_eq!(
            d.catch.as_deref(),
            Some("/snapshot_missing_exception.+ is missing/")
        );
        assert_eq!(
            d.headers,
            vec![("Authorization".to_owned(), "Basic x".to_owned())]
        );
        assert_eq!(d.allowed_warnings, vec!["w"]);
        assert!(matches!(&steps[3], Step::IsFalse(p) if p.is_empty()));
        assert!(matches!(
            &steps[5],
            Step::Compare {
                op: CompareOp::Gte,
                ..
            }
        ));
        assert!(matches!(&steps[6], Step::Set { key, .. } if key == "node_id"));
        assert!(matches!(&steps[8], Step::CloseTo { value, .. } if (*value - 1.5).abs() < 1e-9));
        let Step::Match { path, expected } = &f.tests[1].section.steps[1] else {
            panic!("not a match")
        };
        assert_eq!(path, "$body");
        assert_eq!(expected, &json!("/^$/\n"));
    }

    #[test]
    fn malformed_files_are_errors() {
        for bad in [
            "\"t\":\n  - do: {}\n",
            "\"t\":\n  - frobnicate: x\n",
            "\"t\":\n  - do: {a.b: {}, c.d: {}}\n",
            "\"t\":\n  - is_true: x\n  - skip: {version: all, reason: r}\n",
            "\"t\": not a list\n",
            "\"t\":\n  - match: {a: 1, b: 2}\n",
            "---\n\"t\": []\n---\n\"t\": []\n",
        ] {
            assert!(TestFile::parse("bad.yml", bad).is_err(), "accepted: {bad}");
        }
    }
}
