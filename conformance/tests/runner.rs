//! The runner end to end against an in-memory Elasticsearch stand-in: setup, stash, catch,
//! text bodies, failures with their step, skip list and prerequisites, and the wipe between
//! tests.

use std::cell::RefCell;
use std::collections::BTreeMap;

use coffer_conformance::Error;
use coffer_conformance::http::{HttpRequest, HttpResponse, Transport};
use coffer_conformance::runner::{Outcome, Runner, TestResult};
use coffer_conformance::skiplist::SkipList;
use coffer_conformance::spec::{ApiRegistry, ApiSpec};
use coffer_conformance::suite::TestFile;
use serde_json::{Value, json};

/// Repositories (name → snapshot names), indices, and every request seen.
#[derive(Default)]
struct FakeEs {
    repos: RefCell<BTreeMap<String, Vec<String>>>,
    indices: RefCell<Vec<String>>,
    log: RefCell<Vec<String>>,
}

fn json_response(status: u16, body: &Value) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        body: serde_json::to_vec(body).unwrap(),
    }
}

fn error(status: u16, kind: &str, reason: &str) -> HttpResponse {
    // Written by hand so that `type` precedes `reason`, as Elasticsearch writes them.
    let body = format!(
        r#"{{"error":{{"root_cause":[{{"type":"{kind}","reason":"{reason}"}}],"type":"{kind}","reason":"{reason}"}},"status":{status}}}"#
    );
    HttpResponse {
        status,
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        body: body.into_bytes(),
    }
}

impl Transport for FakeEs {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, Error> {
        self.log
            .borrow_mut()
            .push(format!("{} {}", request.method, request.path_and_query()));
        let segments: Vec<&str> = request.path.trim_start_matches('/').split('/').collect();
        let mut repos = self.repos.borrow_mut();
        let mut indices = self.indices.borrow_mut();
        let ack = || json_response(200, &json!({"acknowledged": true}));
        Ok(match (request.method.as_str(), segments.as_slice()) {
            ("GET", ["_snapshot"]) => json_response(
                200,
                &Value::Object(
                    repos
                        .keys()
                        .map(|r| {
                            (
                                r.clone(),
                                json!({"type": "fs", "uuid": format!("uuid-{r}")}),
                            )
                        })
                        .collect(),
                ),
            ),
            ("PUT", ["_snapshot", repo]) => {
                repos.entry((*repo).to_owned()).or_default();
                ack()
            }
            ("DELETE", ["_snapshot", repo]) => match repos.remove(*repo) {
                Some(_) => ack(),
                None => error(
                    404,
                    "repository_missing_exception",
                    &format!("[{repo}] missing"),
                ),
            },
            ("GET", ["_snapshot", repo, "_all"]) => match repos.get(*repo) {
                Some(snaps) => json_response(
                    200,
                    &json!({"snapshots": snaps.iter().map(|s| json!({"snapshot": s})).collect::<Vec<_>>()}),
                ),
                None => error(
                    404,
                    "repository_missing_exception",
                    &format!("[{repo}] missing"),
                ),
            },
            ("PUT", ["_snapshot", repo, snap]) => {
                let Some(snaps) = repos.get_mut(*repo) else {
                    return Ok(error(
                        404,
                        "repository_missing_exception",
                        &format!("[{repo}] missing"),
                    ));
                };
                snaps.push((*snap).to_owned());
                json_response(
                    200,
                    &json!({"snapshot": {"snapshot": snap, "state": "SUCCESS",
                            "shards": {"total": indices.len(), "successful": indices.len(), "failed": 0},
                            "indices": *indices, "failures": []}}),
                )
            }
            ("GET", ["_snapshot", repo, snap]) => {
                match repos.get(*repo).and_then(|s| s.iter().find(|n| n == snap)) {
                    Some(s) => json_response(
                        200,
                        &json!({"snapshots": [{"snapshot": s, "state": "SUCCESS"}]}),
                    ),
                    None => error(
                        404,
                        "snapshot_missing_exception",
                        &format!("[{repo}:{snap}] is missing"),
                    ),
                }
            }
            ("DELETE", ["_snapshot", repo, names]) => {
                let Some(snaps) = repos.get_mut(*repo) else {
                    return Ok(error(
                        404,
                        "repository_missing_exception",
                        &format!("[{repo}] missing"),
                    ));
                };
                let names: Vec<&str> = names.split(',').collect();
                snaps.retain(|s| !names.contains(&s.as_str()));
                ack()
            }
            ("GET", ["_cat", "repositories"]) => HttpResponse {
                status: 200,
                headers: vec![(
                    "content-type".to_owned(),
                    "text/plain; charset=UTF-8".to_owned(),
                )],
                body: repos
                    .keys()
                    .flat_map(|r| [r.as_bytes(), b" fs\n"].concat())
                    .collect(),
            },
            ("GET", ["_cat", "indices"]) => json_response(
                200,
                &Value::Array(indices.iter().map(|i| json!({"index": i})).collect()),
            ),
            ("PUT", [index]) => {
                indices.push((*index).to_owned());
                json_response(200, &json!({"acknowledged": true, "index": index}))
            }
            ("DELETE", [index]) => {
                indices.retain(|i| i != index);
                ack()
            }
            _ => error(400, "illegal_argument_exception", "no handler"),
        })
    }
}

fn registry() -> ApiRegistry {
    let mut r = ApiRegistry::default();
    for spec in [
        r#"{"snapshot.create_repository": {"url": {"paths": [{"path": "/_snapshot/{repository}", "methods": ["PUT", "POST"]}]}, "params": {"verify": {}}, "body": {"required": true}}}"#,
        r#"{"snapshot.create": {"url": {"paths": [{"path": "/_snapshot/{repository}/{snapshot}", "methods": ["PUT", "POST"]}]}, "params": {"wait_for_completion": {}}, "body": {}}}"#,
        r#"{"snapshot.get": {"url": {"paths": [{"path": "/_snapshot/{repository}/{snapshot}", "methods": ["GET"]}]}, "params": {"verbose": {}}}}"#,
        r#"{"snapshot.get_repository": {"url": {"paths": [{"path": "/_snapshot", "methods": ["GET"]}, {"path": "/_snapshot/{repository}", "methods": ["GET"]}]}}}"#,
        r#"{"cat.repositories": {"url": {"paths": [{"path": "/_cat/repositories", "methods": ["GET"]}]}, "params": {"v": {}}}}"#,
        r#"{"indices.create": {"methods": ["PUT"], "url": {"path": "/{index}", "paths": ["/{index}"], "parts": {"index": {}}}, "body": {}}}"#,
    ] {
        r.insert(ApiSpec::parse("inline", spec).unwrap());
    }
    r.global_params.insert("human".to_owned());
    r
}

const FILE: &str = r#"
---
setup:
  - do:
      snapshot.create_repository:
        repository: repo1
        body: { type: fs, settings: { location: "loc" } }
  - do:
      indices.create:
        index: idx
---
"Passes":
  - do:
      snapshot.create:
        repository: repo1
        snapshot: snap1
        wait_for_completion: true
  - match: { snapshot.snapshot: snap1 }
  - match: { snapshot.shards.successful: 1 }
  - is_true: snapshot.failures
  - length: { snapshot.indices: 1 }
  - gt: { snapshot.shards.total: 0 }
  - set: { snapshot.snapshot: name }
  - do:
      snapshot.get:
        repository: repo1
        snapshot: $name
  - match: { snapshots.0.snapshot: $name }
  - match: { $body.snapshots.0.state: SUCCESS }
  - do:
      catch: /snapshot_missing_exception.+ is missing/
      snapshot.get:
        repository: repo1
        snapshot: nope
  - match: { error.type: snapshot_missing_exception }
  - do:
      catch: missing
      snapshot.get:
        repository: repo1
        snapshot: "${name}-other"
  - do:
      catch: param
      snapshot.get:
        repository: repo1
        snapshot: x
        no_such_param: true
  - do:
      cat.repositories: {}
  - match:
      $body: |
               /^ repo1 \s+ fs \n
               $/
  - do:
      snapshot.get_repository: {}
  - set: { _arbitrary_key_: some_repo }
  - match: { $some_repo: repo1 }
  - match: { $some_repo.type: fs }
---
"Fails on a match":
  - do:
      snapshot.create:
        repository: repo1
        snapshot: snap2
  - match: { snapshot.state: FAILED }
---
"Fails on an unexpected error":
  - do:
      snapshot.get:
        repository: repo1
        snapshot: missing
---
"On the skip list":
  - do:
      snapshot.get:
        repository: repo1
        snapshot: missing
---
"Too old for this server":
  - skip:
      version: "8.0.0 - "
      reason: "not for 8.x"
  - do:
      snapshot.get:
        repository: repo1
        snapshot: missing
"#;

#[test]
fn runs_a_file_and_wipes_between_tests() {
    let fake = FakeEs::default();
    let registry = registry();
    let skips = SkipList::parse(
        "skip:\n  - file: fake/10_basic.yml\n    test: \"On the skip list\"\n    reason: \"principled\"\n",
    )
    .unwrap();
    let file = TestFile::parse("fake/10_basic.yml", FILE).unwrap();
    let runner = Runner::new(&fake, &registry, &skips);
    let mut results: Vec<TestResult> = Vec::new();
    runner.run_file(&file, &mut |r| results.push(r.clone()));
    let outcomes: Vec<(&str, &Outcome)> = results
        .iter()
        .map(|r| (r.test.as_str(), &r.outcome))
        .collect();

    // Everything up to the last step passes; `$some_repo.type` looks inside the stashed string,
    // which has no fields, exactly as in Elasticsearch's runner.
    assert_eq!(
        outcomes[0],
        (
            "Passes",
            &Outcome::Fail {
                step: "test step 20: match {$some_repo.type: \"fs\"}".to_owned(),
                message: "stashed value not found for key [some_repo.type]".to_owned()
            }
        ),
        "{outcomes:#?}"
    );

    let Outcome::Fail { step, message } = outcomes[1].1 else {
        panic!("{outcomes:#?}")
    };
    assert_eq!(step, "test step 2: match {snapshot.state: \"FAILED\"}");
    assert_eq!(message, "expected \"FAILED\" but was \"SUCCESS\"");

    let Outcome::Fail { step, message } = outcomes[2].1 else {
        panic!("{outcomes:#?}")
    };
    assert_eq!(step, "test step 1: do snapshot.get");
    assert!(
        message.contains("status 404") && message.contains("is missing"),
        "{message}"
    );

    assert_eq!(
        outcomes[3].1,
        &Outcome::Skip("skip list: principled".to_owned())
    );
    assert!(matches!(outcomes[4].1, Outcome::Skip(r) if r.contains("not for 8.x")));
    assert_eq!(results.len(), 5);

    // Every run test was followed by a wipe, and the server is empty at the end.
    assert!(fake.repos.borrow().is_empty());
    assert!(
        fake.indices.borrow().is_empty(),
        "{:?} {:#?}",
        fake.indices.borrow(),
        fake.log.borrow()
    );
    let log = fake.log.borrow();
    let wipes = log
        .iter()
        .filter(|l| *l == "GET /_cat/indices?format=json")
        .count();
    assert_eq!(wipes, 3, "{log:#?}");
    assert!(
        log.contains(&"DELETE /_snapshot/repo1/snap1".to_owned()),
        "{log:#?}"
    );
    assert!(log.contains(&"DELETE /idx".to_owned()), "{log:#?}");
    // The stashed name went into the path, and `${name}` was embedded.
    assert!(
        log.contains(&"GET /_snapshot/repo1/snap1".to_owned()),
        "{log:#?}"
    );
    assert!(
        log.contains(&"GET /_snapshot/repo1/snap1-other".to_owned()),
        "{log:#?}"
    );
    assert!(log.contains(&"PUT /_snapshot/repo1/snap1?wait_for_completion=true".to_owned()));
    // `catch: param` never reached the server.
    assert!(!log.iter().any(|l| l.contains("no_such_param")));
}
