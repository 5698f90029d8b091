//! Successful verifications, remembered for a short time so that a busy client does not
//! pay an Argon2 verification (tens of milliseconds, 19 MiB) on every request.
//!
//! The key is an HMAC-SHA256 of the presented credential under a random per-process key:
//! the cache never holds a password, an API key or anything from which one could be
//! checked offline after the process is gone. Entries expire after `ttl`; the cache holds
//! at most `capacity` entries. It lives inside one credential snapshot, so a reload of the
//! keystore (a removed user, an invalidated key) starts from an empty cache.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::Principal;

/// A credential's fingerprint under the process key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fingerprint(<redacted>)")
    }
}

/// The keyed hash: `scheme`, then each part length-prefixed so that `("ab","c")` and
/// `("a","bc")` differ.
pub fn fingerprint(key: &Zeroizing<[u8; 32]>, scheme: &str, parts: &[&[u8]]) -> Fingerprint {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_slice())
        .expect("HMAC takes keys of any length");
    mac.update(scheme.as_bytes());
    for p in parts {
        mac.update(&(p.len() as u64).to_be_bytes());
        mac.update(p);
    }
    Fingerprint(mac.finalize().into_bytes().into())
}

/// The cache's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// How long a verification is trusted.
    pub ttl: TimeDelta,
    /// Entries at most.
    pub capacity: usize,
}

impl Default for CacheConfig {
    /// Five minutes, 1 000 credentials.
    fn default() -> Self {
        Self {
            ttl: TimeDelta::minutes(5),
            capacity: 1_000,
        }
    }
}

#[derive(Debug)]
struct Entry {
    principal: Principal,
    expires: DateTime<Utc>,
}

/// Verified credentials.
#[derive(Debug)]
pub struct VerifiedCache {
    config: CacheConfig,
    entries: HashMap<Fingerprint, Entry>,
}

impl VerifiedCache {
    /// An empty cache.
    pub fn new(config: CacheConfig) -> Self {
        Self {
            config,
            entries: HashMap::new(),
        }
    }

    /// The principal verified under `fp`, if still fresh.
    pub fn get(&mut self, fp: &Fingerprint, now: DateTime<Utc>) -> Option<Principal> {
        match self.entries.get(fp) {
            Some(e) if e.expires > now => Some(e.principal.clone()),
            Some(_) => {
                self.entries.remove(fp);
                None
            }
            None => None,
        }
    }

    /// Remembers a successful verification. When full, expired entries go first, and if
    /// that frees nothing the whole cache is dropped (the next requests verify again).
    pub fn insert(&mut self, fp: Fingerprint, principal: Principal, now: DateTime<Utc>) {
        if self.config.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.config.capacity && !self.entries.contains_key(&fp) {
            self.entries.retain(|_, e| e.expires > now);
            if self.entries.len() >= self.config.capacity {
                self.entries.clear();
            }
        }
        self.entries.insert(
            fp,
            Entry {
                principal,
                expires: now + self.config.ttl,
            },
        );
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::store::Role;

    fn principal(name: &str) -> Principal {
        Principal::user(name, Role::Monitor)
    }

    #[test]
    fn fingerprints_separate_parts_and_keys() {
        let k1 = Zeroizing::new([1; 32]);
        let k2 = Zeroizing::new([2; 32]);
        let a = fingerprint(&k1, "basic", &[b"ab", b"c"]);
        assert_ne!(a, fingerprint(&k1, "basic", &[b"a", b"bc"]));
        assert_ne!(a, fingerprint(&k1, "apikey", &[b"ab", b"c"]));
        assert_ne!(a, fingerprint(&k2, "basic", &[b"ab", b"c"]));
        assert_eq!(a, fingerprint(&k1, "basic", &[b"ab", b"c"]));
        assert!(!format!("{a:?}").contains(&hex::encode(a.0)));
    }

    #[test]
    fn entries_expire_and_capacity_is_bounded() {
        let k = Zeroizing::new([0; 32]);
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let mut c = VerifiedCache::new(CacheConfig {
            ttl: TimeDelta::seconds(10),
            capacity: 3,
        });
        let fp = |i: u8| fingerprint(&k, "basic", &[&[i]]);
        c.insert(fp(0), principal("a"), t0);
        assert_eq!(
            c.get(&fp(0), t0 + TimeDelta::seconds(9)).unwrap().username,
            "a"
        );
        assert!(c.get(&fp(0), t0 + TimeDelta::seconds(10)).is_none());
        assert!(c.is_empty(), "an expired entry is dropped when seen");
        for i in 0..50 {
            c.insert(fp(i), principal("x"), t0);
            assert!(c.len() <= 3);
        }
        assert!(c.get(&fp(49), t0).is_some());
    }
}
