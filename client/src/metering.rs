//! Per-operation request counters by outcome, retries, and bytes in and out. Every HTTP
//! attempt counts as a request, as in Elasticsearch's repository metering.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::ErrorKind;
use crate::ops::Operation;

/// How one HTTP attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Outcome {
    /// 2xx and a well-formed answer.
    Success,
    /// 404.
    NotFound,
    /// 412.
    PreconditionFailed,
    /// 409.
    Conflict,
    /// Throttled (SlowDown, 503, 429).
    Throttled,
    /// Refused credentials.
    AccessDenied,
    /// Another 4xx.
    ClientError,
    /// 5xx other than throttling.
    ServerError,
    /// No usable answer: connect, TLS, timeout, reset, truncated or malformed body.
    TransportError,
}

impl Outcome {
    const ALL: [Outcome; 9] = [
        Outcome::Success,
        Outcome::NotFound,
        Outcome::PreconditionFailed,
        Outcome::Conflict,
        Outcome::Throttled,
        Outcome::AccessDenied,
        Outcome::ClientError,
        Outcome::ServerError,
        Outcome::TransportError,
    ];

    pub(crate) fn from_kind(kind: ErrorKind) -> Outcome {
        match kind {
            ErrorKind::NotFound | ErrorKind::NoSuchBucket => Outcome::NotFound,
            ErrorKind::PreconditionFailed => Outcome::PreconditionFailed,
            ErrorKind::Conflict => Outcome::Conflict,
            ErrorKind::Throttled => Outcome::Throttled,
            ErrorKind::AccessDenied => Outcome::AccessDenied,
            ErrorKind::Transient => Outcome::ServerError,
            ErrorKind::WrongRegion
            | ErrorKind::BucketAlreadyExists
            | ErrorKind::Rejected
            | ErrorKind::Local => Outcome::ClientError,
            ErrorKind::Tls
            | ErrorKind::Connect
            | ErrorKind::Timeout
            | ErrorKind::ConnectionLost
            | ErrorKind::Protocol => Outcome::TransportError,
        }
    }
}

#[derive(Debug, Default)]
struct OpCounters {
    outcomes: [AtomicU64; 9],
    retries: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
}

/// The live counters of one client.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    ops: [OpCounters; 14],
}

impl Meter {
    pub(crate) fn record(&self, op: Operation, outcome: Outcome) {
        let i = Outcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or_default();
        self.ops[op.index()].outcomes[i].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn retry(&self, op: Operation) {
        self.ops[op.index()].retries.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn sent(&self, op: Operation, bytes: u64) {
        self.ops[op.index()]
            .bytes_sent
            .fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn received(&self, op: Operation, bytes: u64) {
        self.ops[op.index()]
            .bytes_received
            .fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, concurrency_limit: usize, in_flight: usize) -> MeteringSnapshot {
        let mut operations = BTreeMap::new();
        for op in Operation::ALL {
            let c = &self.ops[op.index()];
            let mut outcomes = BTreeMap::new();
            for (i, o) in Outcome::ALL.iter().enumerate() {
                let n = c.outcomes[i].load(Ordering::Relaxed);
                if n > 0 {
                    outcomes.insert(*o, n);
                }
            }
            let stats = OperationStats {
                requests: outcomes.values().sum(),
                outcomes,
                retries: c.retries.load(Ordering::Relaxed),
                bytes_sent: c.bytes_sent.load(Ordering::Relaxed),
                bytes_received: c.bytes_received.load(Ordering::Relaxed),
            };
            if stats.requests > 0 || stats.bytes_sent > 0 || stats.bytes_received > 0 {
                operations.insert(op, stats);
            }
        }
        MeteringSnapshot {
            operations,
            concurrency_limit,
            in_flight,
        }
    }
}

/// Counters of one operation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OperationStats {
    /// HTTP attempts made.
    pub requests: u64,
    /// Attempts by outcome (only non-zero entries).
    pub outcomes: BTreeMap<Outcome, u64>,
    /// Attempts that were retries (or resumptions of a truncated download).
    pub retries: u64,
    /// Request body bytes sent.
    pub bytes_sent: u64,
    /// Response body bytes received.
    pub bytes_received: u64,
}

/// A point-in-time copy of a client's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MeteringSnapshot {
    /// Per operation (only operations used).
    pub operations: BTreeMap<Operation, OperationStats>,
    /// The adaptive concurrency limit right now.
    pub concurrency_limit: usize,
    /// Requests holding a concurrency slot right now.
    pub in_flight: usize,
}

impl MeteringSnapshot {
    /// Counters of one operation (zero if unused).
    pub fn operation(&self, op: Operation) -> OperationStats {
        self.operations.get(&op).cloned().unwrap_or_default()
    }

    /// Total HTTP attempts.
    pub fn total_requests(&self) -> u64 {
        self.operations.values().map(|s| s.requests).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_operation_and_outcome() {
        let m = Meter::default();
        m.record(Operation::PutObject, Outcome::Success);
        m.record(Operation::PutObject, Outcome::Throttled);
        m.retry(Operation::PutObject);
        m.sent(Operation::PutObject, 10);
        m.sent(Operation::PutObject, 10);
        m.record(Operation::GetObject, Outcome::NotFound);
        m.received(Operation::GetObject, 5);
        let s = m.snapshot(7, 0);
        let put = s.operation(Operation::PutObject);
        assert_eq!((put.requests, put.retries, put.bytes_sent), (2, 1, 20));
        assert_eq!(put.outcomes[&Outcome::Throttled], 1);
        assert_eq!(s.operation(Operation::GetObject).bytes_received, 5);
        assert_eq!(
            s.operation(Operation::HeadObject),
            OperationStats::default()
        );
        assert_eq!((s.total_requests(), s.concurrency_limit), (3, 7));
        assert_eq!(
            Outcome::from_kind(ErrorKind::Connect),
            Outcome::TransportError
        );
    }
}
