//! Executes test files against a server: setup, test, teardown, then Elasticsearch's
//! wipe-between-tests (every snapshot, every repository, every index is deleted through the
//! API), so each test starts from an empty server.

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Map, Value};

use crate::assert::{
    check_catch, check_close_to, check_compare, check_contains, check_length, check_match,
    is_false, is_true, java_regex, regex_literal,
};
use crate::http::{HttpRequest, HttpResponse, Transport};
use crate::prereq::{CapabilityCheck, Decision, Environment, Version, decide};
use crate::skiplist::SkipList;
use crate::spec::{ApiRegistry, encode_path_part};
use crate::stash::Stash;
use crate::suite::{DoStep, Section, Step, TestFile};
use crate::value::{evaluate, java_string, java_string_of_field, show};
use crate::{Error, SERVER_VERSION};

/// How a test ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every step passed.
    Pass,
    /// A step failed.
    Fail {
        /// Which step, e.g. `test step 3: match {snapshots.0.state: "SUCCESS"}`.
        step: String,
        /// What went wrong, with expected and actual values.
        message: String,
    },
    /// Not run, for this reason.
    Skip(String),
}

/// One test's result.
#[derive(Debug, Clone)]
pub struct TestResult {
    /// The file, e.g. `snapshot.get/10_basic.yml`.
    pub file: String,
    /// The test name.
    pub test: String,
    /// The outcome.
    pub outcome: Outcome,
    /// Time taken, wipe included.
    pub elapsed: Duration,
}

/// The last response, as assertions see it.
#[derive(Debug, Clone)]
struct LastResponse {
    body: Value,
}

/// Runs files against one server.
pub struct Runner<'a> {
    transport: &'a dyn Transport,
    registry: &'a ApiRegistry,
    skips: &'a SkipList,
    version: Version,
}

impl<'a> Runner<'a> {
    /// A runner sending requests through `transport`.
    pub fn new(
        transport: &'a dyn Transport,
        registry: &'a ApiRegistry,
        skips: &'a SkipList,
    ) -> Self {
        Self {
            transport,
            registry,
            skips,
            version: Version::parse(SERVER_VERSION).expect("SERVER_VERSION is a version"),
        }
    }

    /// Judges version-gated prerequisites against `version` instead of [`SERVER_VERSION`].
    #[must_use]
    pub fn with_version(mut self, version: Version) -> Self {
        self.version = version;
        self
    }

    /// The version the server reports in `GET /` (`version.number`).
    pub fn server_version(&self) -> Result<Version, String> {
        let info = self.call("GET", "/", &[])?;
        let number = info
            .pointer("/version/number")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("GET / has no version.number: {}", show(&info)))?;
        Version::parse(number)
    }

    /// Runs every test of `file`, calling `report` after each.
    pub fn run_file(&self, file: &TestFile, report: &mut dyn FnMut(&TestResult)) {
        for case in &file.tests {
            let started = Instant::now();
            let outcome = self.run_test(file, &case.name, &case.section);
            let result = TestResult {
                file: file.name.clone(),
                test: case.name.clone(),
                outcome,
                elapsed: started.elapsed(),
            };
            report(&result);
        }
    }

    fn run_test(&self, file: &TestFile, name: &str, section: &Section) -> Outcome {
        if let Some(entry) = self.skips.lookup(&file.name, name) {
            return Outcome::Skip(format!("skip list: {}", entry.reason));
        }
        let capabilities = |c: &CapabilityCheck| self.capability(c);
        let env = Environment {
            version: self.version,
            capabilities: &capabilities,
        };
        let prereqs: Vec<_> = file
            .setup
            .prereqs
            .iter()
            .chain(&section.prereqs)
            .cloned()
            .collect();
        match decide(&prereqs, &env) {
            Ok(Decision::Run) => {}
            Ok(Decision::Skip(reason)) => return Outcome::Skip(reason),
            Err(message) => {
                return Outcome::Fail {
                    step: "prerequisites".to_owned(),
                    message,
                };
            }
        }
        let mut ctx = Context::default();
        let mut outcome = self
            .run_steps(&mut ctx, "setup", &file.setup.steps)
            .and_then(|()| self.run_steps(&mut ctx, "test", &section.steps));
        // Teardown and wipe run whatever happened, so the next test starts clean; their
        // failure is reported only when the test itself passed.
        let teardown = self.run_steps(&mut ctx, "teardown", &file.teardown.steps);
        if outcome.is_ok() {
            outcome = teardown;
        }
        let wipe = self
            .wipe()
            .map_err(|message| ("wipe after the test".to_owned(), message));
        if outcome.is_ok() {
            outcome = wipe;
        }
        match outcome {
            Ok(()) => Outcome::Pass,
            Err((step, message)) => Outcome::Fail { step, message },
        }
    }

    fn run_steps(
        &self,
        ctx: &mut Context,
        label: &str,
        steps: &[Step],
    ) -> Result<(), (String, String)> {
        for (i, step) in steps.iter().enumerate() {
            self.run_step(ctx, step)
                .map_err(|m| (format!("{label} step {}: {}", i + 1, step.describe()), m))?;
        }
        Ok(())
    }

    fn run_step(&self, ctx: &mut Context, step: &Step) -> Result<(), String> {
        match step {
            Step::Do(d) => self.run_do(ctx, d),
            Step::Match { path, expected } => {
                let expected = ctx.stash.replace(expected)?;
                let actual = ctx.actual(path)?;
                check_match(actual.as_ref(), &expected)
            }
            Step::Length { path, expected } => {
                check_length(ctx.actual(path)?.as_ref(), &ctx.stash.replace(expected)?)
            }
            Step::IsTrue(path) => {
                let actual = ctx.actual(path)?;
                if is_true(actual.as_ref()) {
                    Ok(())
                } else {
                    Err(format!(
                        "expected a true value but was {}",
                        actual.map_or_else(|| "missing".to_owned(), |v| show(&v))
                    ))
                }
            }
            Step::IsFalse(path) => {
                let actual = ctx.actual(path)?;
                if is_false(actual.as_ref()) {
                    Ok(())
                } else {
                    Err(format!(
                        "expected a false value or none but was {}",
                        actual.map_or_else(|| "missing".to_owned(), |v| show(&v))
                    ))
                }
            }
            Step::Compare { op, path, expected } => check_compare(
                *op,
                ctx.actual(path)?.as_ref(),
                &ctx.stash.replace(expected)?,
            ),
            Step::Contains { path, expected } => {
                check_contains(ctx.actual(path)?.as_ref(), &ctx.stash.replace(expected)?)
            }
            Step::CloseTo { path, value, error } => {
                check_close_to(ctx.actual(path)?.as_ref(), *value, *error)
            }
            Step::Set { path, key } => {
                let value = ctx
                    .actual(path)?
                    .ok_or_else(|| format!("nothing at [{path}] to stash"))?;
                ctx.stash.set(key, value);
                Ok(())
            }
            Step::TransformAndSet { key, expression } => {
                let value = transform(ctx, expression)?;
                ctx.stash.set(key, value);
                Ok(())
            }
        }
    }

    fn run_do(&self, ctx: &mut Context, step: &DoStep) -> Result<(), String> {
        if step.node_selector {
            return Err("node_selector is not supported by this runner".to_owned());
        }
        let params = match ctx.stash.replace(&Value::Object(step.params.clone()))? {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let body = step
            .body
            .as_ref()
            .map(|b| ctx.stash.replace(b))
            .transpose()?;
        let built = self.registry.get(&step.api).and_then(|spec| {
            spec.build_request(&params, body.as_ref(), &self.registry.global_params)
        });
        let mut request = match (built, step.catch.as_deref()) {
            (Err(Error::Param(message)), Some("param")) => {
                ctx.last = None;
                let _ = message;
                return Ok(());
            }
            (Err(e), _) => return Err(e.to_string()),
            (Ok(_), Some("param")) => {
                return Err("expected a parameter error, but the request is valid".to_owned());
            }
            (Ok(r), _) => r,
        };
        for (k, v) in &step.headers {
            let v = java_string(&ctx.stash.replace(&Value::String(v.clone()))?);
            request
                .headers
                .retain(|(name, _)| !name.eq_ignore_ascii_case(k));
            request.headers.push((k.clone(), v));
        }
        let response = self.transport.send(&request).map_err(|e| e.to_string())?;
        let body = parse_body(&request, &response)?;
        ctx.stash.set("body", body.clone());
        ctx.last = Some(LastResponse { body: body.clone() });
        check_warnings(step, &response)?;
        let status = response.status;
        match &step.catch {
            Some(catch) => check_catch(
                catch,
                status,
                java_string_of_field(&response.body, "error").as_deref(),
            )
            .map_err(|m| {
                format!(
                    "{m}\n  request: {} {}\n  response: {}",
                    request.method,
                    request.path_and_query(),
                    excerpt(&response.body)
                )
            }),
            None if status >= 400 && !step.ignore.contains(&status) => Err(format!(
                "{} {} failed with status {status}: {}",
                request.method,
                request.path_and_query(),
                excerpt(&response.body)
            )),
            None => Ok(()),
        }
    }

    /// Asks `GET /_capabilities`. A 4xx means the server has no such API (`None`).
    fn capability(&self, check: &CapabilityCheck) -> Result<Option<bool>, String> {
        let mut request = HttpRequest::new("GET", "/_capabilities");
        request
            .query
            .push(("method".to_owned(), check.method.clone()));
        request.query.push(("path".to_owned(), check.path.clone()));
        if !check.parameters.is_empty() {
            request
                .query
                .push(("parameters".to_owned(), check.parameters.join(",")));
        }
        if !check.capabilities.is_empty() {
            request
                .query
                .push(("capabilities".to_owned(), check.capabilities.join(",")));
        }
        let response = self.transport.send(&request).map_err(|e| e.to_string())?;
        match response.status {
            200 => {
                let body: Value = serde_json::from_slice(&response.body)
                    .map_err(|e| format!("GET /_capabilities answered invalid JSON: {e}"))?;
                Ok(body.get("supported").and_then(Value::as_bool))
            }
            400..=499 => Ok(None),
            other => Err(format!(
                "GET /_capabilities failed with status {other}: {}",
                String::from_utf8_lossy(&response.body)
            )),
        }
    }

    fn call(&self, method: &str, path: &str, query: &[(&str, &str)]) -> Result<Value, String> {
        let mut request = HttpRequest::new(method, path);
        request.query = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let response = self.transport.send(&request).map_err(|e| e.to_string())?;
        let body = parse_body(&request, &response)?;
        if response.status >= 400 {
            return Err(format!(
                "{method} {} failed with status {}: {}",
                request.path_and_query(),
                response.status,
                excerpt(&response.body)
            ));
        }
        Ok(body)
    }

    /// Deletes every snapshot, repository and index, as Elasticsearch's test framework does
    /// between tests.
    pub fn wipe(&self) -> Result<(), String> {
        let listed = self.call("GET", "/_snapshot", &[])?;
        let repos: Vec<String> = listed
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for repo in &repos {
            // As Elasticsearch's own test cleanup does, snapshots are not deleted through a
            // read-only registration (it would refuse); the registration itself is removed
            // below, and the data belongs to whichever registration wrote it.
            let settings = &listed[repo.as_str()]["settings"];
            let readonly = ["readonly", "read_only"].iter().any(|k| {
                settings[*k].as_str() == Some("true") || settings[*k] == Value::Bool(true)
            });
            if readonly {
                continue;
            }
            let listing = self.call(
                "GET",
                &format!("/_snapshot/{}/_all", encode_path_part(repo)),
                &[],
            )?;
            let names: Vec<String> = listing
                .get("snapshots")
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|s| {
                            s.get("snapshot").and_then(Value::as_str).map(str::to_owned)
                        })
                        .collect()
                })
                .unwrap_or_default();
            if !names.is_empty() {
                self.call(
                    "DELETE",
                    &format!(
                        "/_snapshot/{}/{}",
                        encode_path_part(repo),
                        encode_path_part(&names.join(","))
                    ),
                    &[],
                )?;
            }
        }
        for repo in &repos {
            self.call(
                "DELETE",
                &format!("/_snapshot/{}", encode_path_part(repo)),
                &[],
            )?;
        }
        let indices = self.call("GET", "/_cat/indices", &[("format", "json")])?;
        let names: Vec<String> = indices
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| r.get("index").and_then(Value::as_str).map(str::to_owned))
                    .collect()
            })
            .ok_or_else(|| {
                format!(
                    "GET /_cat/indices?format=json did not answer a list: {}",
                    show(&indices)
                )
            })?;
        for index in names {
            self.call("DELETE", &format!("/{}", encode_path_part(&index)), &[])?;
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Context {
    stash: Stash,
    last: Option<LastResponse>,
}

impl Context {
    /// The value an assertion looks at: a stashed value for `$name` paths, else the path in
    /// the last response body.
    fn actual(&self, path: &str) -> Result<Option<Value>, String> {
        if path.starts_with('$') && Stash::is_reference(path) {
            return self.stash.resolve_reference(path).map(Some);
        }
        let last = self
            .last
            .as_ref()
            .ok_or("no response to look at: no `do` step ran before this assertion")?;
        evaluate(&last.body, path, &self.stash)
    }
}

/// The body as assertions see it: parsed JSON for JSON answers, text otherwise. A HEAD answer
/// has no body; its "body" is whether the status was a success, as in Elasticsearch's runner
/// (`is_true: ''` after `indices.exists`).
fn parse_body(request: &HttpRequest, response: &HttpResponse) -> Result<Value, String> {
    if request.method == "HEAD" && response.body.is_empty() {
        return Ok(Value::Bool(response.status < 400));
    }
    let json = response
        .header_values("content-type")
        .next()
        .is_some_and(|ct| ct.contains("json"));
    if json && !response.body.is_empty() {
        return serde_json::from_slice(&response.body).map_err(|e| {
            format!(
                "{} {} answered invalid JSON ({e}): {}",
                request.method,
                request.path_and_query(),
                String::from_utf8_lossy(&response.body)
            )
        });
    }
    Ok(Value::String(
        String::from_utf8_lossy(&response.body).into_owned(),
    ))
}

/// The start of a body as the server wrote it (key order and all), for messages.
fn excerpt(raw: &[u8]) -> String {
    const MAX: usize = 2000;
    let text = String::from_utf8_lossy(raw).into_owned();
    if text.len() <= MAX {
        return text;
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &text[..end], text.len())
}

/// The text of each `Warning` header (`299 Elasticsearch-8.17.0 "text" "date"`).
fn warnings_of(response: &HttpResponse) -> Vec<String> {
    response
        .header_values("warning")
        .map(|h| {
            let Some(start) = h.find('"') else {
                return h.to_owned();
            };
            let mut text = String::new();
            let mut chars = h[start + 1..].chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => text.extend(chars.next()),
                    '"' => break,
                    other => text.push(other),
                }
            }
            text
        })
        .collect()
}

/// Expected warnings must all be there, and every warning must be expected or allowed.
fn check_warnings(step: &DoStep, response: &HttpResponse) -> Result<(), String> {
    let actual = warnings_of(response);
    let compile = |patterns: &[String]| -> Result<Vec<regex::Regex>, String> {
        patterns
            .iter()
            .map(|p| java_regex(regex_literal(&Value::String(p.clone())).unwrap_or(p), false))
            .collect()
    };
    let expected_re = compile(&step.warnings_regex)?;
    let allowed_re = compile(&step.allowed_warnings_regex)?;
    let mut problems = Vec::new();
    for w in &step.warnings {
        if !actual.contains(w) {
            problems.push(format!("expected warning [{w}] was not returned"));
        }
    }
    for re in &expected_re {
        if !actual.iter().any(|w| re.is_match(w)) {
            problems.push(format!("no warning matched /{}/", re.as_str()));
        }
    }
    for w in &actual {
        let known = step.warnings.contains(w)
            || step.allowed_warnings.contains(w)
            || expected_re
                .iter()
                .chain(&allowed_re)
                .any(|re| re.is_match(w));
        if !known {
            problems.push(format!("unexpected warning [{w}]"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// `transform_and_set` functions. Only `#base64EncodeCredentials(id_path,key_path)` exists in
/// Elasticsearch's runner: base64 of `id:key` taken from the last response.
fn transform(ctx: &Context, expression: &str) -> Result<Value, String> {
    let args = expression
        .strip_prefix("#base64EncodeCredentials(")
        .and_then(|rest| rest.strip_suffix(')'))
        .ok_or_else(|| format!("unsupported transformation [{expression}]"))?;
    let (id, key) = args
        .split_once(',')
        .ok_or_else(|| format!("[{expression}] needs two arguments"))?;
    let get = |path: &str| -> Result<String, String> {
        ctx.actual(path.trim())?
            .map(|v| java_string(&v))
            .ok_or_else(|| format!("nothing at [{}]", path.trim()))
    };
    let credentials = format!("{}:{}", get(id)?, get(key)?);
    Ok(Value::String(
        base64::engine::general_purpose::STANDARD.encode(credentials),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn response(headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
        HttpResponse {
            status: 200,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.to_vec(),
        }
    }

    #[test]
    fn warnings_must_be_expected_or_allowed() {
        let r = response(
            &[
                (
                    "warning",
                    r#"299 Elasticsearch-8.17.0 "the [x] \"param\" is deprecated""#,
                ),
                (
                    "warning",
                    r#"299 Elasticsearch-8.17.0 "other" "Mon, 01 Jan 2024""#,
                ),
            ],
            b"",
        );
        assert_eq!(
            warnings_of(&r),
            vec!["the [x] \"param\" is deprecated", "other"]
        );
        let mut step = DoStep::default();
        let err = check_warnings(&step, &r).unwrap_err();
        assert!(err.contains("unexpected warning [other]"), "{err}");
        step.warnings = vec!["the [x] \"param\" is deprecated".to_owned()];
        step.allowed_warnings_regex = vec!["/^oth/".to_owned()];
        check_warnings(&step, &r).unwrap();
        step.warnings.push("never sent".to_owned());
        assert!(
            check_warnings(&step, &r)
                .unwrap_err()
                .contains("[never sent] was not returned")
        );
        check_warnings(&DoStep::default(), &response(&[], b"")).unwrap();
    }

    #[test]
    fn bodies_are_json_text_or_head_success() {
        let get = HttpRequest::new("GET", "/");
        let json = response(
            &[("content-type", "application/json; charset=UTF-8")],
            br#"{"a":1}"#,
        );
        assert_eq!(parse_body(&get, &json).unwrap(), json!({"a": 1}));
        let text = response(&[("content-type", "text/plain")], b"repo fs\n");
        assert_eq!(parse_body(&get, &text).unwrap(), json!("repo fs\n"));
        let bad = response(&[("content-type", "application/json")], b"{nope");
        assert!(parse_body(&get, &bad).is_err());
        let head = HttpRequest::new("HEAD", "/idx");
        let mut missing = response(&[], b"");
        missing.status = 404;
        assert_eq!(parse_body(&head, &missing).unwrap(), json!(false));
        assert_eq!(parse_body(&head, &response(&[], b"")).unwrap(), json!(true));
    }

    #[test]
    fn base64_credentials_transformation() {
        let ctx = Context {
            stash: Stash::default(),
            last: Some(LastResponse {
                body: json!({"id": "abc", "api_key": "xyz"}),
            }),
        };
        assert_eq!(
            transform(&ctx, "#base64EncodeCredentials(id,api_key)").unwrap(),
            json!("YWJjOnh5eg==")
        );
        assert!(transform(&ctx, "#somethingElse(id)").is_err());
        assert!(transform(&ctx, "#base64EncodeCredentials(id,missing)").is_err());
    }
}
