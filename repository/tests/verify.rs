//! Repository verification: the probe sequence against memory (strict and ignoring
//! conditional writes, like Garage 2.5) and fs stores, and failures injected at each step,
//! which the report must name with the key, the storage's code and message, and a hint.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{TimeZone, Utc};
use coffer_repository::clock::ManualClock;
use coffer_repository::envelope::{self, Kind};
use coffer_repository::model::RepositoryData;
use coffer_repository::store::{FsBlobStore, MemoryBlobStore};
use coffer_repository::verify::{StepOutcome, probe_capabilities, steps, verify, verify_readonly};
use coffer_repository::{
    BlobStore, Capabilities, ObjectMeta, PutMode, PutResult, RepositoryError, Result, layout,
};

fn clock() -> ManualClock {
    ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 24, 8, 0, 0).unwrap())
}

const ALL_STEPS: [&str; 8] = [
    steps::WRITE_MASTER,
    steps::READ_MASTER,
    steps::LIST_PREFIX,
    steps::WRITE_NODE_DATA,
    steps::CREATE_ONLY_REFUSED,
    steps::IF_MATCH_REFUSED,
    steps::DELETE_PREFIX,
    steps::CONFIRM_DELETED,
];

async fn leftovers(store: &dyn BlobStore) -> Vec<String> {
    store
        .list(layout::PROBE_PREFIX)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect()
}

#[tokio::test]
async fn strict_memory_store_passes_with_conditional_writes() {
    let store = MemoryBlobStore::new();
    let report = verify(&store, "node-1", "s1", &clock()).await;
    assert!(report.passed(), "{report}");
    assert_eq!(
        report.steps.iter().map(|s| s.step).collect::<Vec<_>>(),
        ALL_STEPS
    );
    assert!(report.steps.iter().all(|s| s.outcome == StepOutcome::Ok));
    assert_eq!(report.steps[0].key, "tests-s1/master.dat");
    assert_eq!(report.steps[3].key, "tests-s1/data-node-1.dat");
    assert_eq!(report.steps[6].key, "tests-s1/");
    assert_eq!(
        report.capabilities,
        Some(Capabilities {
            conditional_create: true,
            conditional_update: true
        })
    );
    assert!(!report.weaker_lease_guarantee());
    assert_eq!(report.prefix, "tests-s1/");
    assert_eq!(
        report.started_at,
        Some(Utc.with_ymd_and_hms(2026, 11, 24, 8, 0, 0).unwrap())
    );
    assert_eq!(
        report.to_string(),
        "repository verification on [memory] passed (8 steps); the storage honours conditional writes"
    );
    assert!(leftovers(&store).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_store_passes_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path().join("repo")).unwrap();
    let report = verify(&store, "node-1", "fs-seed", &clock()).await;
    assert!(report.passed(), "{report}");
    assert_eq!(report.steps.len(), 8);
    assert_eq!(
        report.capabilities,
        Some(Capabilities {
            conditional_create: true,
            conditional_update: true
        })
    );
    let left: Vec<_> = std::fs::read_dir(dir.path().join("repo"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn a_store_ignoring_conditional_writes_passes_but_is_flagged() {
    let store = MemoryBlobStore::new();
    store.set_ignore_conditions(true);
    let report = verify(&store, "node-1", "s2", &clock()).await;
    assert!(
        report.passed(),
        "not honouring conditional writes is not a failure: {report}"
    );
    assert_eq!(
        report.capabilities,
        Some(Capabilities {
            conditional_create: false,
            conditional_update: false
        })
    );
    assert!(report.weaker_lease_guarantee());
    let text = report.to_string();
    assert!(
        text.contains("WARNING: the storage does not honour conditional writes"),
        "{text}"
    );
    assert!(text.contains("never both succeed"), "{text}");
    assert!(text.contains("If-None-Match ignored"), "{text}");
    assert!(text.contains("If-Match ignored"), "{text}");
    assert!(leftovers(&store).await.is_empty());
}

#[tokio::test]
async fn node_names_and_seeds_are_made_key_safe() {
    let store = MemoryBlobStore::new();
    let report = verify(&store, "rack 1/node ü", "../x", &clock()).await;
    assert!(report.passed(), "{report}");
    assert_eq!(report.prefix, "tests-.._x/");
    assert_eq!(report.steps[3].key, "tests-.._x/data-rack_1_node__.dat");
}

#[tokio::test]
async fn probe_capabilities_finds_both_kinds_of_store() {
    let strict = MemoryBlobStore::new();
    assert_eq!(
        probe_capabilities(&strict).await.unwrap(),
        Capabilities {
            conditional_create: true,
            conditional_update: true
        }
    );
    assert!(leftovers(&strict).await.is_empty());
    let lax = MemoryBlobStore::new();
    lax.set_ignore_conditions(true);
    assert_eq!(
        probe_capabilities(&lax).await.unwrap(),
        Capabilities {
            conditional_create: false,
            conditional_update: false
        }
    );
    assert!(leftovers(&lax).await.is_empty());
}

// ---------------------------------------------------------------------------------------
// Injected failures
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Put,
    Get,
    Head,
    List,
    Delete,
}

#[derive(Clone)]
enum Action {
    Fail(Arc<dyn Fn(&str) -> RepositoryError + Send + Sync>),
    /// Reads return other bytes.
    Alter,
    /// Listings leave the key out.
    Hide,
    /// Deletes are acknowledged and not done.
    Ignore,
}

/// Applies `action` to the first `times` calls of `op` on keys containing `key_part`.
struct Rule {
    op: Op,
    key_part: &'static str,
    action: Action,
    /// For puts: only this mode (`None`: any).
    create_only: Option<bool>,
    /// Matching calls to let through before the rule applies.
    skip: usize,
}

struct Faulty {
    inner: MemoryBlobStore,
    rules: Mutex<Vec<Rule>>,
}

impl std::fmt::Debug for Faulty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Faulty")
    }
}

impl Faulty {
    fn new(rule: Rule) -> Self {
        Self {
            inner: MemoryBlobStore::new(),
            rules: Mutex::new(vec![rule]),
        }
    }

    fn action(&self, op: Op, key: &str, mode: Option<&PutMode>) -> Option<Action> {
        let mut rules = self.rules.lock().unwrap();
        let rule = rules.iter_mut().find(|r| {
            r.op == op
                && key.contains(r.key_part)
                && match (r.create_only, mode) {
                    (Some(want), Some(m)) => want == (*m == PutMode::Create),
                    _ => true,
                }
        })?;
        if rule.skip > 0 {
            rule.skip -= 1;
            return None;
        }
        Some(rule.action.clone())
    }
}

#[async_trait]
impl BlobStore for Faulty {
    fn location(&self) -> String {
        "s3://bucket/base".to_owned()
    }

    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<PutResult> {
        if let Some(Action::Fail(f)) = self.action(Op::Put, key, Some(&mode)) {
            return Err(f(key));
        }
        self.inner.put(key, data, mode).await
    }

    async fn get(&self, key: &str) -> Result<(Bytes, ObjectMeta)> {
        match self.action(Op::Get, key, None) {
            Some(Action::Fail(f)) => Err(f(key)),
            Some(Action::Alter) => {
                let (b, m) = self.inner.get(key).await?;
                let mut v = b.to_vec();
                let last = v.len() - 1;
                v[last] ^= 1;
                Ok((Bytes::from(v), m))
            }
            _ => self.inner.get(key).await,
        }
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        self.inner.get_range(key, range).await
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        if let Some(Action::Fail(f)) = self.action(Op::Head, key, None) {
            return Err(f(key));
        }
        self.inner.head(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        match self.action(Op::List, prefix, None) {
            Some(Action::Fail(f)) => Err(f(prefix)),
            Some(Action::Hide) => Ok(self
                .inner
                .list(prefix)
                .await?
                .into_iter()
                .filter(|m| !m.key.ends_with("master.dat"))
                .collect()),
            _ => self.inner.list(prefix).await,
        }
    }

    async fn delete_batch(&self, keys: &[String]) -> Result<()> {
        for k in keys {
            match self.action(Op::Delete, k, None) {
                Some(Action::Fail(f)) => return Err(f(k)),
                Some(Action::Ignore) => return Ok(()),
                _ => {}
            }
        }
        self.inner.delete_batch(keys).await
    }

    async fn remove_incomplete_writes(&self, prefix: &str) -> Result<(u64, u64)> {
        self.inner.remove_incomplete_writes(prefix).await
    }
}

fn s3(operation: &'static str, code: &'static str, message: &'static str) -> Action {
    Action::Fail(Arc::new(move |key: &str| RepositoryError::Storage {
        operation,
        key: key.to_owned(),
        code: Some(code.to_owned()),
        message: message.to_owned(),
        retryable: false,
    }))
}

fn network(message: &'static str) -> Action {
    Action::Fail(Arc::new(move |key: &str| RepositoryError::Storage {
        operation: "put",
        key: key.to_owned(),
        code: None,
        message: message.to_owned(),
        retryable: true,
    }))
}

fn fs_denied() -> Action {
    Action::Fail(Arc::new(|key: &str| RepositoryError::Io {
        context: "writing temporary file",
        path: std::path::PathBuf::from("/srv/repo").join(key),
        source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
    }))
}

struct Case {
    rule: Rule,
    step: &'static str,
    key: &'static str,
    code: Option<&'static str>,
    message: &'static str,
    hint: &'static str,
    /// Whether the run could remove its probes afterwards.
    cleaned: bool,
}

fn rule(op: Op, key_part: &'static str, action: Action) -> Rule {
    Rule {
        op,
        key_part,
        action,
        create_only: None,
        skip: 0,
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            rule: rule(
                Op::Put,
                "master.dat",
                s3("put", "AccessDenied", "Access Denied"),
            ),
            step: steps::WRITE_MASTER,
            key: "tests-s9/master.dat",
            code: Some("AccessDenied"),
            message: "Access Denied",
            hint: "s3:PutObject",
            cleaned: true,
        },
        Case {
            rule: rule(
                Op::Put,
                "master.dat",
                s3(
                    "put",
                    "InvalidAccessKeyId",
                    "The AWS Access Key Id you provided does not exist in our records.",
                ),
            ),
            step: steps::WRITE_MASTER,
            key: "tests-s9/master.dat",
            code: Some("InvalidAccessKeyId"),
            message: "does not exist in our records",
            hint: "s3.client.<name>.access_key",
            cleaned: true,
        },
        Case {
            rule: rule(
                Op::Get,
                "master.dat",
                s3(
                    "get",
                    "SignatureDoesNotMatch",
                    "The request signature we calculated does not match the signature you provided.",
                ),
            ),
            step: steps::READ_MASTER,
            key: "tests-s9/master.dat",
            code: Some("SignatureDoesNotMatch"),
            message: "signature we calculated",
            hint: "s3.client.<name>.secret_key",
            cleaned: true,
        },
        Case {
            rule: rule(
                Op::Put,
                "master.dat",
                s3("put", "NoSuchBucket", "The specified bucket does not exist"),
            ),
            step: steps::WRITE_MASTER,
            key: "tests-s9/master.dat",
            code: Some("NoSuchBucket"),
            message: "The specified bucket does not exist",
            hint: "the bucket does not exist",
            cleaned: true,
        },
        Case {
            rule: rule(
                Op::List,
                "tests-",
                s3(
                    "list",
                    "AuthorizationHeaderMalformed",
                    "the region 'us-east-1' is wrong; expecting 'eu-west-1'",
                ),
            ),
            step: steps::LIST_PREFIX,
            key: "tests-s9/",
            code: Some("AuthorizationHeaderMalformed"),
            message: "expecting 'eu-west-1'",
            hint: "s3.client.<name>.region",
            cleaned: false,
        },
        Case {
            rule: rule(
                Op::Put,
                "master.dat",
                s3(
                    "put",
                    "RequestTimeTooSkewed",
                    "The difference between the request time and the current time is too large.",
                ),
            ),
            step: steps::WRITE_MASTER,
            key: "tests-s9/master.dat",
            code: Some("RequestTimeTooSkewed"),
            message: "difference between the request time",
            hint: "synchronise the clock (NTP)",
            cleaned: true,
        },
        Case {
            rule: rule(
                Op::Delete,
                "tests-",
                s3("delete", "AccessDenied", "Access Denied"),
            ),
            step: steps::DELETE_PREFIX,
            key: "tests-s9/",
            code: Some("AccessDenied"),
            message: "Access Denied",
            hint: "s3:DeleteObject",
            cleaned: false,
        },
        Case {
            rule: rule(
                Op::Put,
                "data-node-1.dat",
                network(
                    "cannot connect for PutObject bucket/tests-s9/data-node-1.dat at http://127.0.0.1:9: tcp connect error: Connection refused (os error 111)",
                ),
            ),
            step: steps::WRITE_NODE_DATA,
            key: "tests-s9/data-node-1.dat",
            code: None,
            message: "Connection refused",
            hint: "s3.client.<name>.endpoint, its port and protocol",
            cleaned: true,
        },
        Case {
            rule: rule(
                Op::Put,
                "master.dat",
                network(
                    "TLS failure on PutObject bucket/tests-s9/master.dat at https://127.0.0.1:9000: invalid peer certificate: UnknownIssuer",
                ),
            ),
            step: steps::WRITE_MASTER,
            key: "tests-s9/master.dat",
            code: None,
            message: "invalid peer certificate",
            hint: "s3.client.<name>.ca_certificate",
            cleaned: true,
        },
        Case {
            rule: rule(Op::Put, "master.dat", fs_denied()),
            step: steps::WRITE_MASTER,
            key: "tests-s9/master.dat",
            code: Some("PermissionDenied"),
            message: "/srv/repo/tests-s9/master.dat",
            hint: "path.repo",
            cleaned: true,
        },
        Case {
            rule: rule(Op::Get, "master.dat", Action::Alter),
            step: steps::READ_MASTER,
            key: "tests-s9/master.dat",
            code: None,
            message: "differ from the",
            hint: "alters objects",
            cleaned: true,
        },
        Case {
            rule: rule(Op::List, "tests-", Action::Hide),
            step: steps::LIST_PREFIX,
            key: "tests-s9/",
            code: None,
            message: "does not show [tests-s9/master.dat]",
            hint: "list-after-write consistency",
            cleaned: false,
        },
        Case {
            rule: Rule {
                op: Op::Put,
                key_part: "master.dat",
                action: s3(
                    "put",
                    "InternalError",
                    "We encountered an internal error. Please try again.",
                ),
                create_only: Some(true),
                skip: 1,
            },
            // The first create-only put of master.dat succeeds; the one over it fails.
            step: steps::CREATE_ONLY_REFUSED,
            key: "tests-s9/master.dat",
            code: Some("InternalError"),
            message: "internal error",
            hint: "storage's logs",
            cleaned: true,
        },
        Case {
            rule: rule(
                Op::Head,
                "master.dat",
                s3("head", "AccessDenied", "Forbidden"),
            ),
            step: steps::IF_MATCH_REFUSED,
            key: "tests-s9/master.dat",
            code: Some("AccessDenied"),
            message: "Forbidden",
            hint: "s3:PutObject",
            cleaned: true,
        },
        Case {
            rule: rule(Op::Delete, "tests-", Action::Ignore),
            step: steps::CONFIRM_DELETED,
            key: "tests-s9/",
            code: None,
            message: "objects still listed after delete",
            hint: "object lock or retention",
            cleaned: false,
        },
    ]
}

#[tokio::test]
async fn every_injected_failure_is_named_with_its_step_key_code_message_and_hint() {
    for case in cases() {
        let store = Faulty::new(case.rule);
        let report = verify(&store, "node-1", "s9", &clock()).await;
        let label = format!("{} / {}", case.step, case.message);
        assert!(!report.passed(), "{label}: {report}");
        let failed = report.failure().unwrap();
        assert_eq!(failed.step, case.step, "{label}: {report}");
        assert_eq!(failed.key, case.key, "{label}");
        assert!(
            std::ptr::eq(failed, report.steps.last().unwrap()),
            "{label}: the run stops at the failure"
        );
        let StepOutcome::Failed {
            code,
            message,
            hint,
        } = &failed.outcome
        else {
            unreachable!()
        };
        assert_eq!(code.as_deref(), case.code, "{label}");
        assert!(message.contains(case.message), "{label}: {message}");
        assert!(hint.contains(case.hint), "{label}: {hint}");
        let text = report.to_string();
        assert!(
            text.starts_with(&format!(
                "repository verification on [s3://bucket/base] failed at step [{}] on key [{}]: ",
                case.step, case.key
            )),
            "{text}"
        );
        if let Some(c) = case.code {
            assert!(text.contains(&format!("[{c}]")), "{text}");
        }
        assert!(text.contains(case.message), "{text}");
        assert!(text.contains(&format!("; hint: {hint}")), "{text}");
        if case.cleaned {
            assert!(
                leftovers(&store.inner).await.is_empty(),
                "{label}: probes removed after the failure"
            );
        }
    }
}

#[tokio::test]
async fn steps_after_a_failure_are_not_attempted() {
    let store = Faulty::new(rule(
        Op::Get,
        "master.dat",
        s3("get", "AccessDenied", "Access Denied"),
    ));
    let report = verify(&store, "node-1", "s3", &clock()).await;
    assert_eq!(
        report.steps.iter().map(|s| s.step).collect::<Vec<_>>(),
        [steps::WRITE_MASTER, steps::READ_MASTER]
    );
    assert_eq!(report.capabilities, None);
    let StepOutcome::Failed { hint, .. } = &report.failure().unwrap().outcome else {
        unreachable!()
    };
    assert!(hint.contains("s3:GetObject"), "{hint}");
}

#[tokio::test]
async fn probe_capabilities_returns_the_storage_error() {
    let store = Faulty::new(rule(
        Op::Put,
        "master.dat",
        s3("put", "AccessDenied", "Access Denied"),
    ));
    match probe_capabilities(&store).await {
        Err(RepositoryError::Storage { code, key, .. }) => {
            assert_eq!(code.as_deref(), Some("AccessDenied"));
            assert!(
                key.starts_with("tests-probe-") && key.ends_with("/master.dat"),
                "{key}"
            );
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Readonly
// ---------------------------------------------------------------------------------------

async fn put_root(store: &dyn BlobStore, n: u64) {
    let data = RepositoryData {
        uuid: "u".to_owned(),
        generation: n,
        ..RepositoryData::default()
    };
    store
        .put(
            &layout::root(n),
            Bytes::from(envelope::encode(Kind::Root, &data).unwrap()),
            PutMode::Create,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn readonly_verification_lists_and_reads_the_latest_root_only() {
    let store = MemoryBlobStore::new();
    let empty = verify_readonly(&store).await;
    assert!(empty.passed(), "{empty}");
    assert_eq!(empty.steps.len(), 1);
    assert!(
        empty.to_string().contains("the repository is empty"),
        "{empty}"
    );
    assert_eq!(store.put_count(), 0, "readonly verification never writes");

    for n in [0, 1, 9, 10] {
        put_root(&store, n).await;
    }
    store
        .put(
            "index.latest",
            Bytes::from_static(&[0; 8]),
            PutMode::Overwrite,
        )
        .await
        .unwrap();
    let puts = store.put_count();
    let report = verify_readonly(&store).await;
    assert!(report.passed(), "{report}");
    assert_eq!(
        report
            .steps
            .iter()
            .map(|s| (s.step, s.key.as_str()))
            .collect::<Vec<_>>(),
        [
            (steps::LIST_ROOTS, "index-"),
            (steps::READ_LATEST_ROOT, "index-10")
        ]
    );
    assert_eq!(report.capabilities, None);
    assert_eq!(
        store.put_count(),
        puts,
        "readonly verification never writes"
    );

    store.tamper("index-10", |b| b[20] ^= 0xff);
    let report = verify_readonly(&store).await;
    let failed = report.failure().expect("a corrupted root fails");
    assert_eq!(
        (failed.step, failed.key.as_str()),
        (steps::READ_LATEST_ROOT, "index-10")
    );
    let StepOutcome::Failed { code, message, .. } = &failed.outcome else {
        unreachable!()
    };
    assert_eq!(code.as_deref(), Some("Corrupted"));
    assert!(message.contains("checksum mismatch"), "{message}");
}

#[tokio::test]
async fn readonly_verification_reports_a_listing_failure() {
    let store = Faulty::new(rule(
        Op::List,
        "index-",
        s3("list", "AccessDenied", "Access Denied"),
    ));
    let report = verify_readonly(&store).await;
    let failed = report.failure().unwrap();
    assert_eq!(
        (failed.step, failed.key.as_str()),
        (steps::LIST_ROOTS, "index-")
    );
    let StepOutcome::Failed { hint, .. } = &failed.outcome else {
        unreachable!()
    };
    assert!(hint.contains("s3:ListBucket"), "{hint}");
}
