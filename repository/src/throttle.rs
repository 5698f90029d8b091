//! Byte-rate limits (`max_snapshot_bytes_per_sec`, `max_restore_bytes_per_sec`): a token
//! bucket on the injected clock, shared by all transfers of one operation.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Mutex;

use crate::clock::Clock;

/// A token bucket allowing `rate` bytes per second with bursts of one second's worth.
#[derive(Debug)]
pub struct Throttle {
    rate: Option<u64>,
    clock: Arc<dyn Clock>,
    state: Mutex<Option<DateTime<Utc>>>,
}

impl Throttle {
    /// `None` means unlimited.
    pub fn new(rate: Option<u64>, clock: Arc<dyn Clock>) -> Self {
        Self {
            rate: rate.filter(|r| *r > 0),
            clock,
            state: Mutex::new(None),
        }
    }

    /// Waits until `bytes` more may be transferred.
    pub async fn acquire(&self, bytes: u64) {
        let Some(rate) = self.rate else { return };
        let wait = {
            let mut next_free = self.state.lock().await;
            let now = self.clock.now();
            // The bucket holds at most one second of credit.
            let start = match *next_free {
                Some(t) if t > now - chrono::Duration::seconds(1) => t,
                _ => now - chrono::Duration::seconds(1),
            };
            let cost_ms = i64::try_from(bytes.saturating_mul(1000) / rate).unwrap_or(i64::MAX);
            let free_at = start + chrono::Duration::milliseconds(cost_ms);
            *next_free = Some(free_at);
            (free_at - now).to_std().unwrap_or(Duration::ZERO)
        };
        if !wait.is_zero() {
            self.clock.sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[tokio::test]
    async fn limits_the_average_rate() {
        let clock = ManualClock::new(chrono::DateTime::UNIX_EPOCH);
        let t = Throttle::new(Some(1000), Arc::new(clock.clone()));
        let start = clock.now();
        for _ in 0..10 {
            t.acquire(1000).await;
        }
        // 10 kB at 1 kB/s with a one-second burst: about nine seconds.
        let took = (clock.now() - start).num_milliseconds();
        assert!((8_900..=9_100).contains(&took), "{took}");
    }

    #[tokio::test]
    async fn unlimited_never_waits() {
        let clock = ManualClock::new(chrono::DateTime::UNIX_EPOCH);
        let t = Throttle::new(None, Arc::new(clock.clone()));
        t.acquire(u64::MAX).await;
        assert_eq!(clock.now(), chrono::DateTime::UNIX_EPOCH);
    }
}
