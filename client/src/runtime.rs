//! The injected clock, sleeper and randomness. The system implementations here are the only
//! place in the crate allowed to read the wall clock, sleep or draw random numbers
//! (clippy's `disallowed-methods` enforces it); tests swap them for deterministic ones.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Tells the time (for SigV4's `x-amz-date`).
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now.
    fn now(&self) -> SystemTime;
}

/// Waits (for retry backoff).
pub trait Sleeper: Send + Sync + std::fmt::Debug {
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// Draws the jitter of full-jitter backoff.
pub trait Jitter: Send + Sync + std::fmt::Debug {
    /// A uniformly random value in `[0, 1)`.
    fn unit(&self) -> f64;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place that reads the wall clock
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// The real sleeper (tokio's timer).
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    #[allow(clippy::disallowed_methods)] // the one place that really sleeps
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Thread-local randomness.
#[derive(Debug, Default, Clone, Copy)]
pub struct ThreadRngJitter;

impl Jitter for ThreadRngJitter {
    #[allow(clippy::disallowed_methods)] // the one place that draws randomness
    fn unit(&self) -> f64 {
        use rand::Rng as _;
        rand::rng().random::<f64>()
    }
}

/// The clock, sleeper and jitter a client uses.
#[derive(Clone, Debug)]
pub struct Runtime {
    /// Clock.
    pub clock: Arc<dyn Clock>,
    /// Sleeper.
    pub sleeper: Arc<dyn Sleeper>,
    /// Jitter.
    pub jitter: Arc<dyn Jitter>,
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime {
            clock: Arc::new(SystemClock),
            sleeper: Arc::new(TokioSleeper),
            jitter: Arc::new(ThreadRngJitter),
        }
    }
}

/// Test doubles, public so that other crates' tests can drive the client deterministically.
pub mod testing {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Mutex;
    use std::time::{Duration, SystemTime};

    use super::{Clock, Jitter, Sleeper};

    /// A clock stuck at one instant.
    #[derive(Debug, Clone, Copy)]
    pub struct FixedClock(pub SystemTime);

    impl Clock for FixedClock {
        fn now(&self) -> SystemTime {
            self.0
        }
    }

    /// A sleeper that returns at once and records what it was asked to wait.
    #[derive(Debug, Default)]
    pub struct RecordingSleeper {
        slept: Mutex<Vec<Duration>>,
    }

    impl RecordingSleeper {
        /// The waits requested so far.
        pub fn slept(&self) -> Vec<Duration> {
            self.slept.lock().map(|v| v.clone()).unwrap_or_default()
        }
    }

    impl Sleeper for RecordingSleeper {
        fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
            if let Ok(mut v) = self.slept.lock() {
                v.push(duration);
            }
            Box::pin(std::future::ready(()))
        }
    }

    /// Always the same jitter value.
    #[derive(Debug, Clone, Copy)]
    pub struct FixedJitter(pub f64);

    impl Jitter for FixedJitter {
        fn unit(&self) -> f64 {
            self.0
        }
    }
}
