//! What one timed operation measured, and the median/min/max over rounds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Requests and body bytes counted by the proxy during one operation.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Requests {
    /// Requests per HTTP method.
    pub by_method: BTreeMap<String, u64>,
    /// All requests.
    pub total: u64,
    /// Responses ≥ 400 and requests the server did not answer.
    pub errors: u64,
    /// Request body bytes (uploads).
    pub bytes_up: u64,
    /// Response body bytes (downloads).
    pub bytes_down: u64,
}

impl Requests {
    /// Requests with `method`.
    pub fn method(&self, method: &str) -> u64 {
        self.by_method.get(method).copied().unwrap_or(0)
    }
}

impl From<coffer_testfixtures::counting_proxy::RequestCounts> for Requests {
    fn from(c: coffer_testfixtures::counting_proxy::RequestCounts) -> Self {
        Self {
            by_method: c.by_method,
            total: c.total,
            errors: c.errors,
            bytes_up: c.bytes_up,
            bytes_down: c.bytes_down,
        }
    }
}

/// One operation of one round.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Sample {
    /// Wall time in seconds.
    pub wall_s: f64,
    /// User + system CPU seconds of the process doing the work.
    pub cpu_s: Option<f64>,
    /// CPU seconds Garage spent meanwhile.
    pub server_cpu_s: Option<f64>,
    /// Peak resident set of the process doing the work, KiB.
    pub peak_rss_kib: Option<u64>,
    /// What went over the wire (through the counting proxy).
    pub requests: Option<Requests>,
}

/// Median, minimum and maximum of some samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// The median (mean of the two middle values for an even count).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`; `None` when there are none.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            f64::midpoint(v[n / 2 - 1], v[n / 2])
        };
        Some(Spread {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }
}

/// The spread of one field over samples that have it.
pub fn spread(samples: &[Sample], field: impl Fn(&Sample) -> Option<f64>) -> Option<Spread> {
    Spread::of(samples.iter().filter_map(field))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_min_max() {
        let s = Spread::of([3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        let s = Spread::of([4.0, 1.0, 2.0, 3.0]).unwrap();
        assert!((s.median - 2.5).abs() < 1e-12);
        assert!(Spread::of([]).is_none());
        assert!(Spread::of([f64::NAN]).is_none());
    }
}
