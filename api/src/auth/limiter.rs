//! Failed-authentication rate limiting per client address: after `max_failures` failures
//! within `window` from one address, that address is refused (HTTP 429, `Retry-After`)
//! without its credentials being checked, until the oldest failure in the window ages out.
//!
//! Addresses are grouped as attackers get them: one IPv4 address, or one IPv6 /64 (a
//! single host can pick any address in its /64). A request whose peer address is unknown
//! (in-process calls without `ConnectInfo`) shares one bucket. Memory is bounded: at most
//! `max_clients` addresses are tracked, each with at most `max_failures` timestamps.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use chrono::{DateTime, TimeDelta, Utc};

/// The limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimiterConfig {
    /// Failures allowed within `window`; the next attempt is refused.
    pub max_failures: usize,
    /// How long a failure counts.
    pub window: TimeDelta,
    /// Addresses tracked at most.
    pub max_clients: usize,
}

impl Default for LimiterConfig {
    /// 10 failures a minute, 10 000 addresses (about 1 MiB at worst).
    fn default() -> Self {
        Self {
            max_failures: 10,
            window: TimeDelta::seconds(60),
            max_clients: 10_000,
        }
    }
}

/// The client address as the limiter counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// One IPv4 address.
    V4([u8; 4]),
    /// One IPv6 /64.
    V6Prefix([u8; 8]),
    /// No peer address known.
    Unknown,
}

impl ClientKey {
    /// The bucket for `ip`.
    pub fn of(ip: Option<IpAddr>) -> Self {
        match ip.map(|i| i.to_canonical()) {
            None => Self::Unknown,
            Some(IpAddr::V4(v4)) => Self::V4(v4.octets()),
            Some(IpAddr::V6(v6)) => {
                let mut p = [0; 8];
                p.copy_from_slice(&v6.octets()[..8]);
                Self::V6Prefix(p)
            }
        }
    }
}

/// Failure timestamps per client.
#[derive(Debug)]
pub struct FailureLimiter {
    config: LimiterConfig,
    clients: HashMap<ClientKey, VecDeque<DateTime<Utc>>>,
}

impl FailureLimiter {
    /// An empty limiter.
    pub fn new(config: LimiterConfig) -> Self {
        Self {
            config,
            clients: HashMap::new(),
        }
    }

    /// The limits in force.
    pub fn config(&self) -> LimiterConfig {
        self.config
    }

    fn prune(&self, failures: &mut VecDeque<DateTime<Utc>>, now: DateTime<Utc>) {
        while failures
            .front()
            .is_some_and(|t| *t + self.config.window <= now)
        {
            failures.pop_front();
        }
    }

    /// How long `client` must wait before its credentials are checked again, or `None`
    /// when it may try now.
    pub fn retry_after(&mut self, client: ClientKey, now: DateTime<Utc>) -> Option<TimeDelta> {
        let mut failures = self.clients.remove(&client)?;
        self.prune(&mut failures, now);
        let wait = (failures.len() >= self.config.max_failures)
            .then(|| failures.front().map(|t| *t + self.config.window - now))
            .flatten();
        if !failures.is_empty() {
            self.clients.insert(client, failures);
        }
        wait
    }

    /// Counts one failed authentication from `client`.
    pub fn record_failure(&mut self, client: ClientKey, now: DateTime<Utc>) {
        if !self.clients.contains_key(&client) && self.clients.len() >= self.config.max_clients {
            self.evict(now);
        }
        let max = self.config.max_failures.max(1);
        let mut failures = self.clients.remove(&client).unwrap_or_default();
        self.prune(&mut failures, now);
        failures.push_back(now);
        while failures.len() > max {
            failures.pop_front();
        }
        self.clients.insert(client, failures);
    }

    /// Frees room: addresses whose failures have all aged out go first; if that is not
    /// enough, the address with the oldest last failure.
    fn evict(&mut self, now: DateTime<Utc>) {
        let window = self.config.window;
        self.clients
            .retain(|_, f| f.back().is_some_and(|t| *t + window > now));
        if self.clients.len() >= self.config.max_clients
            && let Some(oldest) = self
                .clients
                .iter()
                .min_by_key(|(_, f)| f.back().copied())
                .map(|(k, _)| *k)
        {
            self.clients.remove(&oldest);
        }
    }

    /// Addresses tracked now.
    pub fn tracked(&self) -> usize {
        self.clients.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    fn key(last: u8) -> ClientKey {
        ClientKey::of(Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))))
    }

    #[test]
    fn blocks_after_max_failures_until_the_window_passes() {
        let mut l = FailureLimiter::new(LimiterConfig {
            max_failures: 3,
            window: TimeDelta::seconds(60),
            max_clients: 10,
        });
        let a = key(1);
        for s in 0..3 {
            assert_eq!(l.retry_after(a, t(s)), None);
            l.record_failure(a, t(s));
        }
        assert_eq!(l.retry_after(a, t(3)), Some(TimeDelta::seconds(57)));
        assert_eq!(
            l.retry_after(key(2), t(3)),
            None,
            "other addresses are unaffected"
        );
        assert_eq!(l.retry_after(a, t(59)), Some(TimeDelta::seconds(1)));
        // The first failure ages out: one more attempt is allowed.
        assert_eq!(l.retry_after(a, t(60)), None);
        l.record_failure(a, t(60));
        assert!(l.retry_after(a, t(60)).is_some());
        assert_eq!(l.retry_after(a, t(200)), None);
        assert_eq!(l.tracked(), 0, "aged-out addresses are forgotten");
    }

    #[test]
    fn memory_is_bounded() {
        let mut l = FailureLimiter::new(LimiterConfig {
            max_failures: 2,
            window: TimeDelta::seconds(60),
            max_clients: 4,
        });
        for i in 0..100u8 {
            l.record_failure(key(i), t(i64::from(i)));
            l.record_failure(key(i), t(i64::from(i)));
            l.record_failure(key(i), t(i64::from(i)));
            assert!(l.tracked() <= 4);
        }
        assert!(l.clients.values().all(|f| f.len() <= 2));
        // The newest address is still tracked and blocked.
        assert!(l.retry_after(key(99), t(99)).is_some());
    }

    #[test]
    fn ipv6_is_grouped_by_slash_64_and_mapped_v4_is_v4() {
        let a: Ipv6Addr = "2001:db8:1:2::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: Ipv6Addr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ClientKey::of(Some(a.into())), ClientKey::of(Some(b.into())));
        assert_ne!(ClientKey::of(Some(a.into())), ClientKey::of(Some(c.into())));
        let mapped: Ipv6Addr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(ClientKey::of(Some(mapped.into())), key(1));
        assert_eq!(ClientKey::of(None), ClientKey::Unknown);
    }
}
