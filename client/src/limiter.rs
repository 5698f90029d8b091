//! Adaptive concurrency (AIMD): requests in flight are bounded by a limit that starts at
//! `max_connections`, halves when S3 says `SlowDown`, and grows back by one per window of
//! successes (`+1/limit` per success). A burst of throttles from requests that were all
//! started under the same limit halves it only once: each permit remembers the generation
//! of the limit it was granted under.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

/// The pure AIMD state.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Aimd {
    limit: f64,
    max: f64,
    in_flight: usize,
    generation: u64,
}

impl Aimd {
    pub(crate) fn new(max: usize) -> Aimd {
        // Connection counts are small; u32 keeps the conversion exact.
        let max = f64::from(u32::try_from(max.max(1)).unwrap_or(u32::MAX));
        Aimd {
            limit: max,
            max,
            in_flight: 0,
            generation: 0,
        }
    }

    /// The current whole limit (at least 1).
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    pub(crate) fn limit(&self) -> usize {
        self.limit.floor().max(1.0) as usize
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Takes a slot if one is free; returns the generation to remember.
    pub(crate) fn try_acquire(&mut self) -> Option<u64> {
        (self.in_flight < self.limit()).then(|| {
            self.in_flight += 1;
            self.generation
        })
    }

    pub(crate) fn release(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Multiplicative decrease, once per generation.
    pub(crate) fn on_throttle(&mut self, generation: u64) {
        if generation == self.generation {
            self.limit = (self.limit / 2.0).max(1.0);
            self.generation += 1;
        }
    }

    /// Additive increase: +1 after about `limit` successes.
    pub(crate) fn on_success(&mut self) {
        if self.limit < self.max {
            self.limit = (self.limit + 1.0 / self.limit).min(self.max);
        }
    }
}

/// The shared limiter.
#[derive(Debug)]
pub(crate) struct Limiter {
    state: Mutex<Aimd>,
    notify: Notify,
}

/// A slot; released on drop.
#[derive(Debug)]
pub(crate) struct Permit {
    limiter: Arc<Limiter>,
    generation: u64,
}

impl Permit {
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.limiter.lock().release();
        self.limiter.notify.notify_waiters();
    }
}

impl Limiter {
    pub(crate) fn new(max: usize) -> Arc<Limiter> {
        Arc::new(Limiter {
            state: Mutex::new(Aimd::new(max)),
            notify: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Aimd> {
        // The state stays consistent even if a holder panicked: every update is one step.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) async fn acquire(self: &Arc<Self>) -> Permit {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(generation) = self.lock().try_acquire() {
                return Permit {
                    limiter: Arc::clone(self),
                    generation,
                };
            }
            notified.await;
        }
    }

    pub(crate) fn on_throttle(&self, generation: u64) {
        let mut s = self.lock();
        let before = s.limit();
        s.on_throttle(generation);
        if s.limit() != before {
            tracing::info!(
                limit = s.limit(),
                "S3 asked us to slow down; lowering concurrency"
            );
        }
    }

    pub(crate) fn on_success(&self) {
        let grew = {
            let mut s = self.lock();
            let before = s.limit();
            s.on_success();
            s.limit() > before
        };
        if grew {
            self.notify.notify_waiters();
        }
    }

    pub(crate) fn limit(&self) -> usize {
        self.lock().limit()
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.lock().in_flight()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_once_per_generation_and_recovers_slowly() {
        let mut a = Aimd::new(8);
        let gens: Vec<u64> = (0..8).map(|_| a.try_acquire().unwrap()).collect();
        assert!(a.try_acquire().is_none(), "bounded by the limit");
        // All eight get SlowDown: one halving, not eight.
        for g in &gens {
            a.on_throttle(*g);
        }
        assert_eq!(a.limit(), 4);
        for _ in 0..8 {
            a.release();
        }
        // A throttle under the new generation halves again.
        let g = a.try_acquire().unwrap();
        a.on_throttle(g);
        assert_eq!(a.limit(), 2);
        a.release();
        // Recovery: about `limit` successes per +1 (2 -> 2.5 -> 2.9 -> 3.24).
        a.on_success();
        a.on_success();
        assert_eq!(a.limit(), 2);
        a.on_success();
        assert_eq!(a.limit(), 3);
        for _ in 0..100 {
            a.on_success();
        }
        assert_eq!(a.limit(), 8, "capped at max_connections");
        let mut one = Aimd::new(1);
        let g = one.try_acquire().unwrap();
        one.on_throttle(g);
        assert_eq!(one.limit(), 1, "never below one");
    }

    #[tokio::test]
    async fn permits_bound_in_flight_and_wake_waiters() {
        let l = Limiter::new(2);
        let p1 = l.acquire().await;
        let _p2 = l.acquire().await;
        assert_eq!(l.in_flight(), 2);
        let l2 = Arc::clone(&l);
        let waiter = tokio::spawn(async move { l2.acquire().await.generation() });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(p1);
        assert_eq!(waiter.await.unwrap(), 0);
    }
}
