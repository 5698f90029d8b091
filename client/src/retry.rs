//! Retry policy (quickwit `retry.rs` style): exponential backoff with full jitter, capped by
//! `max_retries`, honouring `Retry-After`. The decision is a pure function of the failure
//! class, what we know about whether the request reached the server, and the request's
//! idempotency; sleeping and randomness are injected.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::ErrorKind;
use crate::ops::Idempotency;

/// How many times and how long to wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Retries after the first attempt (`s3.client.<name>.max_retries`).
    pub max_retries: u32,
    /// Backoff ceiling of the first retry; doubles per attempt.
    pub base_delay: Duration,
    /// The backoff ceiling never exceeds this.
    pub max_delay: Duration,
    /// A server's `Retry-After` is honoured up to this.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    /// The production preset.
    pub fn standard(max_retries: u32) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(60),
        }
    }

    /// Never retry.
    pub fn no_retries() -> RetryPolicy {
        RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::standard(0)
        }
    }

    /// Tiny delays, for tests against a real socket.
    pub fn for_test(max_retries: u32) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_retry_after: Duration::from_millis(50),
        }
    }

    /// Full jitter: a uniform draw in `[0, min(max_delay, base_delay * 2^attempt))`, where
    /// `attempt` counts retries already made (0 for the first retry) and `unit` is in [0, 1).
    pub fn backoff(&self, attempt: u32, unit: f64) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(30));
        let ceiling = self.base_delay.saturating_mul(factor).min(self.max_delay);
        ceiling.mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// What we know about whether a failed request took effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Certainty {
    /// No connection was made: the request never reached the server.
    NotSent,
    /// The server answered with a failure status: it says the request did not take effect.
    Answered,
    /// The request may have been processed (reset or timeout after sending, lost body).
    Ambiguous,
}

/// The retry decision: `Some(delay)` to retry after `delay`, `None` to give up.
pub(crate) fn decide(
    policy: &RetryPolicy,
    retries_done: u32,
    kind: ErrorKind,
    certainty: Certainty,
    idempotency: Idempotency,
    retry_after: Option<Duration>,
    unit: f64,
) -> Option<Duration> {
    if retries_done >= policy.max_retries || !kind.is_transient() {
        return None;
    }
    if idempotency == Idempotency::NotIdempotent && certainty == Certainty::Ambiguous {
        return None;
    }
    let backoff = policy.backoff(retries_done, unit);
    Some(match retry_after {
        Some(ra) => backoff.max(ra.min(policy.max_retry_after)),
        None => backoff,
    })
}

/// `Retry-After`: delta-seconds, or an HTTP-date (IMF-fixdate) compared with `now` (a date
/// in the past means "now"). Other forms are ignored and the backoff applies.
pub(crate) fn parse_retry_after(value: Option<&str>, now: SystemTime) -> Option<Duration> {
    let value = value?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = parse_imf_fixdate(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `Wed, 21 Oct 2015 07:28:00 GMT`.
fn parse_imf_fixdate(s: &str) -> Option<SystemTime> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (_weekday, rest) = s.split_once(", ")?;
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let day: i64 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    let month = i64::try_from(MONTHS.iter().position(|m| m == month)? + 1).ok()?;
    let year: i64 = year.parse().ok().filter(|y| *y >= 1970)?;
    let hms: Vec<i64> = time
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, sec] = hms.as_slice() else {
        return None;
    };
    if !(0..24).contains(h) || !(0..60).contains(m) || !(0..61).contains(sec) {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm), years >= 1970 only.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days * 86_400 + h * 3_600 + m * 60 + sec).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDEM: Idempotency = Idempotency::Idempotent;

    #[test]
    fn full_jitter_bounds() {
        let p = RetryPolicy::standard(10);
        assert_eq!(p.backoff(0, 0.0), Duration::ZERO);
        assert_eq!(p.backoff(0, 0.5), Duration::from_millis(50));
        assert_eq!(p.backoff(3, 0.5), Duration::from_millis(400));
        assert!(p.backoff(3, 0.999_999) < Duration::from_millis(800));
        assert_eq!(
            p.backoff(40, 0.5),
            Duration::from_secs(10),
            "capped at max_delay"
        );
    }

    #[test]
    fn retries_transient_failures_up_to_max() {
        let p = RetryPolicy::standard(3);
        for kind in [
            ErrorKind::Throttled,
            ErrorKind::Transient,
            ErrorKind::Conflict,
            ErrorKind::Connect,
            ErrorKind::Timeout,
            ErrorKind::ConnectionLost,
        ] {
            assert!(
                decide(&p, 0, kind, Certainty::Answered, IDEM, None, 0.5).is_some(),
                "{kind:?}"
            );
            assert!(decide(&p, 2, kind, Certainty::Answered, IDEM, None, 0.5).is_some());
            assert!(
                decide(&p, 3, kind, Certainty::Answered, IDEM, None, 0.5).is_none(),
                "beyond max_retries"
            );
        }
        assert!(
            decide(
                &RetryPolicy::no_retries(),
                0,
                ErrorKind::Transient,
                Certainty::Answered,
                IDEM,
                None,
                0.5
            )
            .is_none()
        );
    }

    #[test]
    fn never_retries_permanent_failures() {
        let p = RetryPolicy::standard(3);
        for kind in [
            ErrorKind::AccessDenied,
            ErrorKind::NotFound,
            ErrorKind::PreconditionFailed,
            ErrorKind::NoSuchBucket,
            ErrorKind::WrongRegion,
            ErrorKind::Rejected,
            ErrorKind::Tls,
            ErrorKind::Protocol,
            ErrorKind::Local,
            ErrorKind::BucketAlreadyExists,
        ] {
            assert!(
                decide(&p, 0, kind, Certainty::Answered, IDEM, None, 0.5).is_none(),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn non_idempotent_requests_are_not_replayed_blindly() {
        let p = RetryPolicy::standard(3);
        let post = Idempotency::NotIdempotent;
        assert!(
            decide(
                &p,
                0,
                ErrorKind::ConnectionLost,
                Certainty::Ambiguous,
                post,
                None,
                0.5
            )
            .is_none()
        );
        assert!(
            decide(
                &p,
                0,
                ErrorKind::Timeout,
                Certainty::Ambiguous,
                post,
                None,
                0.5
            )
            .is_none()
        );
        assert!(
            decide(
                &p,
                0,
                ErrorKind::Connect,
                Certainty::NotSent,
                post,
                None,
                0.5
            )
            .is_some()
        );
        assert!(
            decide(
                &p,
                0,
                ErrorKind::Throttled,
                Certainty::Answered,
                post,
                None,
                0.5
            )
            .is_some()
        );
        assert!(
            decide(
                &p,
                0,
                ErrorKind::ConnectionLost,
                Certainty::Ambiguous,
                IDEM,
                None,
                0.5
            )
            .is_some()
        );
    }

    #[test]
    fn honours_retry_after_within_a_cap() {
        let p = RetryPolicy::standard(3);
        let d = decide(
            &p,
            0,
            ErrorKind::Throttled,
            Certainty::Answered,
            IDEM,
            Some(Duration::from_secs(3)),
            0.5,
        );
        assert_eq!(d, Some(Duration::from_secs(3)));
        let d = decide(
            &p,
            0,
            ErrorKind::Throttled,
            Certainty::Answered,
            IDEM,
            Some(Duration::from_secs(3600)),
            0.5,
        );
        assert_eq!(d, Some(Duration::from_secs(60)));
        let now = UNIX_EPOCH + Duration::from_secs(1_445_412_480 - 90);
        assert_eq!(
            parse_retry_after(Some(" 7 "), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT"), now),
            Some(Duration::from_secs(90))
        );
        let later = now + Duration::from_secs(3600);
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT"), later),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_imf_fixdate("Thu, 29 Feb 2024 23:59:59 GMT"),
            Some(UNIX_EPOCH + Duration::from_secs(1_709_251_199))
        );
        assert_eq!(parse_retry_after(Some("soon"), now), None);
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 CET"), now),
            None
        );
        assert_eq!(parse_retry_after(None, now), None);
    }
}
