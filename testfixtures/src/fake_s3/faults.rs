//! Scriptable fault injection.
//!
//! A test adds [`FaultRule`]s to a running fake. Each authenticated request is matched against
//! the rules in insertion order (operation, key prefix, method, bucket); a matching rule fires
//! according to its [`Trigger`] (the next N matches, always, or with a probability drawn from
//! the fake's seeded rng) after letting `skip` matches pass. Latency rules add a delay and let
//! evaluation continue; the first firing terminal rule decides what happens to the request.

use std::time::Duration;

use http::Method;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::error::{ErrorCode, S3Error};
use super::router::Operation;

/// What a firing rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultAction {
    /// 500 `InternalError`, before the operation runs.
    InternalError,
    /// 503 `SlowDown`, before the operation runs, with an optional `Retry-After` (seconds).
    SlowDown {
        /// Value of `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// Any S3 error with its AWS status, before the operation runs.
    Error(ErrorCode),
    /// A `200 OK` whose body is an `<Error>` document with this code, before the operation
    /// runs: what AWS may answer to CompleteMultipartUpload and CopyObject.
    ErrorIn200(ErrorCode),
    /// Closes the connection (TCP reset) without a response, before the operation runs.
    Reset,
    /// Runs the operation (its effects are kept), then closes the connection (TCP reset)
    /// without a response: the client cannot know whether its write happened.
    ResetAfterApply,
    /// Runs the operation, sends the status, headers and the full `Content-Length`, then only
    /// the first `after` bytes of the body, then closes the connection.
    TruncateBody {
        /// Bytes of the body sent before the connection is closed.
        after: usize,
    },
    /// Runs the operation, sends the status, headers and the first `after` bytes of the body,
    /// pauses for `stall`, then sends the rest: a slow network, for read-timeout tests.
    StallBody {
        /// Bytes sent before the pause.
        after: usize,
        /// Length of the pause.
        stall: Duration,
    },
    /// Waits this long before handling the request (not terminal: later rules still apply).
    Latency(Duration),
    /// 301 `PermanentRedirect` naming `region` (`x-amz-bucket-region` header and
    /// `<Endpoint>`), as AWS answers a request sent to the wrong regional endpoint.
    RedirectToRegion {
        /// The region named in the redirect.
        region: String,
    },
    /// 400 `AuthorizationHeaderMalformed` naming `region` in `<Region>`, as AWS answers a
    /// request signed for the wrong region.
    WrongRegion {
        /// The region named as expected.
        region: String,
    },
    /// 412 `PreconditionFailed` without running the operation: a simulated lost race.
    PreconditionFailed,
    /// 409 `ConditionalRequestConflict` without running the operation: a simulated concurrent
    /// conditional write.
    ConditionalConflict,
    /// DeleteObjects only: keys starting with `key_prefix` are left in place and reported as
    /// per-key `<Error>` entries with `code` in an otherwise successful 200 answer.
    FailKeys {
        /// Keys starting with this fail.
        key_prefix: String,
        /// The per-key error code.
        code: ErrorCode,
    },
}

impl FaultAction {
    /// Whether this action stops rule evaluation.
    pub fn is_terminal(&self) -> bool {
        !matches!(self, Self::Latency(_))
    }

    /// The S3 error a pre-operation action responds with, if it is one.
    pub(crate) fn error(&self, bucket: Option<&str>, signed_region: &str) -> Option<S3Error> {
        match self {
            Self::InternalError => Some(S3Error::new(ErrorCode::InternalError)),
            Self::SlowDown { retry_after } => {
                let err = S3Error::new(ErrorCode::SlowDown);
                Some(match retry_after {
                    Some(d) => err.header("retry-after", d.as_secs().to_string()),
                    None => err,
                })
            }
            Self::Error(code) => Some(S3Error::new(*code)),
            Self::ErrorIn200(code) => {
                let mut err = S3Error::new(*code);
                err.status = http::StatusCode::OK;
                Some(err)
            }
            Self::RedirectToRegion { region } => Some(S3Error::permanent_redirect(
                bucket.unwrap_or_default(),
                region,
                &format!(
                    "{}s3.{region}.amazonaws.com",
                    bucket.map(|b| format!("{b}.")).unwrap_or_default()
                ),
            )),
            Self::WrongRegion { region } => Some(S3Error::wrong_region(signed_region, region)),
            Self::PreconditionFailed => Some(S3Error::precondition_failed("If-Match")),
            Self::ConditionalConflict => Some(S3Error::new(ErrorCode::ConditionalRequestConflict)),
            Self::Reset
            | Self::ResetAfterApply
            | Self::TruncateBody { .. }
            | Self::StallBody { .. }
            | Self::Latency(_)
            | Self::FailKeys { .. } => None,
        }
    }
}

/// When a matching rule fires.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Trigger {
    /// The next `n` matching requests (after `skip`), then never again.
    Times(u32),
    /// Every matching request (after `skip`).
    Always,
    /// Each matching request (after `skip`) with probability `p`, drawn from the fake's seeded
    /// rng, so a run is reproducible for a given seed and request order.
    Probability(f64),
}

/// A fault rule: what to match, when to fire, what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    /// Match this operation only.
    pub operation: Option<Operation>,
    /// Match keys (or listing prefixes) starting with this only.
    pub key_prefix: Option<String>,
    /// Match this HTTP method only.
    pub method: Option<Method>,
    /// Match this bucket only.
    pub bucket: Option<String>,
    /// Let this many matching requests pass before firing.
    pub skip: u32,
    /// When to fire.
    pub trigger: Trigger,
    /// What to do.
    pub action: FaultAction,
}

impl FaultRule {
    /// A rule that fires on the next matching request with `action`; narrow it with the
    /// builder methods.
    pub fn new(action: FaultAction) -> Self {
        Self {
            operation: None,
            key_prefix: None,
            method: None,
            bucket: None,
            skip: 0,
            trigger: Trigger::Times(1),
            action,
        }
    }

    /// Only for `operation`.
    #[must_use]
    pub fn operation(mut self, operation: Operation) -> Self {
        self.operation = Some(operation);
        self
    }

    /// Only for keys starting with `prefix`.
    #[must_use]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = Some(prefix.into());
        self
    }

    /// Only for `method`.
    #[must_use]
    pub fn method(mut self, method: Method) -> Self {
        self.method = Some(method);
        self
    }

    /// Only for `bucket`.
    #[must_use]
    pub fn bucket(mut self, bucket: impl Into<String>) -> Self {
        self.bucket = Some(bucket.into());
        self
    }

    /// Let the first `n` matching requests through.
    #[must_use]
    pub fn skip(mut self, n: u32) -> Self {
        self.skip = n;
        self
    }

    /// Fire on the next `n` matching requests.
    #[must_use]
    pub fn times(mut self, n: u32) -> Self {
        self.trigger = Trigger::Times(n);
        self
    }

    /// Fire on every matching request.
    #[must_use]
    pub fn always(mut self) -> Self {
        self.trigger = Trigger::Always;
        self
    }

    /// Fire with probability `p` (0.0..=1.0) on each matching request.
    #[must_use]
    pub fn probability(mut self, p: f64) -> Self {
        self.trigger = Trigger::Probability(p.clamp(0.0, 1.0));
        self
    }

    fn matches(
        &self,
        operation: Option<Operation>,
        method: &Method,
        bucket: Option<&str>,
        key: Option<&str>,
    ) -> bool {
        self.operation.is_none_or(|o| Some(o) == operation)
            && self.method.as_ref().is_none_or(|m| m == method)
            && self.bucket.as_deref().is_none_or(|b| Some(b) == bucket)
            && self
                .key_prefix
                .as_deref()
                .is_none_or(|p| key.is_some_and(|k| k.starts_with(p)))
    }
}

/// Identifies an injected rule, to read its hit count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FaultId(pub(crate) usize);

#[derive(Debug)]
struct RuleState {
    rule: FaultRule,
    seen: u32,
    fired: u32,
    removed: bool,
}

/// The faults that apply to one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultPlan {
    /// Total injected delay.
    pub latency: Duration,
    /// The terminal action, if any.
    pub action: Option<FaultAction>,
    /// Descriptions of every rule that fired, for the request log.
    pub fired: Vec<String>,
}

/// The rule table with its seeded rng.
#[derive(Debug)]
pub struct FaultTable {
    rules: Vec<RuleState>,
    rng: StdRng,
}

impl FaultTable {
    /// An empty table whose probabilities draw from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rules: Vec::new(),
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Adds a rule.
    pub fn add(&mut self, rule: FaultRule) -> FaultId {
        self.rules.push(RuleState {
            rule,
            seen: 0,
            fired: 0,
            removed: false,
        });
        FaultId(self.rules.len() - 1)
    }

    /// Disables a rule (its hit count stays readable).
    pub fn remove(&mut self, id: FaultId) {
        if let Some(state) = self.rules.get_mut(id.0) {
            state.removed = true;
        }
    }

    /// Disables every rule.
    pub fn clear(&mut self) {
        for state in &mut self.rules {
            state.removed = true;
        }
    }

    /// How many times a rule fired.
    pub fn hits(&self, id: FaultId) -> u32 {
        self.rules.get(id.0).map_or(0, |s| s.fired)
    }

    /// Reseeds the rng.
    pub fn reseed(&mut self, seed: u64) {
        self.rng = StdRng::seed_from_u64(seed);
    }

    /// Evaluates the rules for one request, updating counters.
    pub fn plan(
        &mut self,
        operation: Option<Operation>,
        method: &Method,
        bucket: Option<&str>,
        key: Option<&str>,
    ) -> FaultPlan {
        let mut plan = FaultPlan::default();
        for (index, state) in self.rules.iter_mut().enumerate() {
            if state.removed || !state.rule.matches(operation, method, bucket, key) {
                continue;
            }
            state.seen += 1;
            if state.seen <= state.rule.skip {
                continue;
            }
            let fire = match state.rule.trigger {
                Trigger::Times(n) => state.fired < n,
                Trigger::Always => true,
                Trigger::Probability(p) => self.rng.random_bool(p),
            };
            if !fire {
                continue;
            }
            state.fired += 1;
            plan.fired.push(format!("#{index} {:?}", state.rule.action));
            match &state.rule.action {
                FaultAction::Latency(d) => plan.latency += *d,
                action => {
                    plan.action = Some(action.clone());
                    break;
                }
            }
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_skip() {
        let mut table = FaultTable::new(1);
        let id = table.add(
            FaultRule::new(FaultAction::InternalError)
                .operation(Operation::PutObject)
                .key_prefix("idx/")
                .skip(1)
                .times(2),
        );
        let put = |t: &mut FaultTable, key: &str| {
            t.plan(
                Some(Operation::PutObject),
                &Method::PUT,
                Some("b"),
                Some(key),
            )
            .action
        };
        assert_eq!(put(&mut table, "other"), None);
        assert_eq!(put(&mut table, "idx/1"), None, "skipped");
        assert_eq!(put(&mut table, "idx/2"), Some(FaultAction::InternalError));
        assert_eq!(put(&mut table, "idx/3"), Some(FaultAction::InternalError));
        assert_eq!(put(&mut table, "idx/4"), None, "exhausted");
        assert_eq!(
            table
                .plan(
                    Some(Operation::GetObject),
                    &Method::GET,
                    Some("b"),
                    Some("idx/1")
                )
                .action,
            None
        );
        assert_eq!(table.hits(id), 2);
    }

    #[test]
    fn latency_accumulates_and_terminal_wins() {
        let mut table = FaultTable::new(1);
        table.add(FaultRule::new(FaultAction::Latency(Duration::from_millis(5))).always());
        table.add(FaultRule::new(FaultAction::Reset).method(Method::GET));
        table.add(FaultRule::new(FaultAction::InternalError).always());
        let plan = table.plan(None, &Method::GET, None, None);
        assert_eq!(plan.latency, Duration::from_millis(5));
        assert_eq!(plan.action, Some(FaultAction::Reset));
        assert_eq!(plan.fired.len(), 2);
        let plan = table.plan(None, &Method::GET, None, None);
        assert_eq!(plan.action, Some(FaultAction::InternalError));
        table.clear();
        assert_eq!(
            table.plan(None, &Method::GET, None, None),
            FaultPlan::default()
        );
    }

    #[test]
    fn probability_is_reproducible_per_seed() {
        let run = |seed| {
            let mut table = FaultTable::new(seed);
            table.add(FaultRule::new(FaultAction::InternalError).probability(0.5));
            (0..64)
                .map(|_| table.plan(None, &Method::GET, None, None).action.is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        let fired = run(42).iter().filter(|f| **f).count();
        assert!((10..54).contains(&fired), "{fired} of 64");
    }

    #[test]
    fn slow_down_carries_retry_after() {
        let err = FaultAction::SlowDown {
            retry_after: Some(Duration::from_secs(2)),
        }
        .error(None, "us-east-1")
        .unwrap();
        assert_eq!(err.code, ErrorCode::SlowDown);
        assert_eq!(err.headers, vec![("retry-after", "2".to_owned())]);
        let err = FaultAction::RedirectToRegion {
            region: "eu-west-3".into(),
        }
        .error(Some("bkt"), "us-east-1")
        .unwrap();
        assert_eq!(err.status.as_u16(), 301);
        assert!(
            err.details
                .contains(&("Endpoint", "bkt.s3.eu-west-3.amazonaws.com".into()))
        );
    }
}
