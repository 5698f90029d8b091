//! Secure defaults for `coffer serve`: whether authentication is on, and refusing to start
//! where it would be on with nobody able to log in.
//!
//! The rule (also in `docs/security.md`):
//! - `http.auth.enabled: true` or `false` decides, when set. `false` logs a warning at every
//!   start.
//! - Otherwise authentication is on when `http.host` is not a loopback address (anything
//!   but 127.0.0.0/8, `::1` and `localhost`; a host name counts as loopback only when every
//!   address it resolves to is; `0.0.0.0` and `::` are not loopback), or when the keystore
//!   holds any user or API key.
//! - Authentication on with no user and no API key refuses to start, saying how to create
//!   one.

use std::collections::BTreeMap;
use std::net::{IpAddr, ToSocketAddrs};

use anyhow::bail;
use coffer_api::auth::store::SECURITY_PREFIX;
use coffer_api::auth::{AuthPolicy, CredentialStore};
use coffer_client::SecureValue;
use coffer_keystore::Keystore;
use secrecy::SecretString;

use crate::config::Settings;

/// The setting that turns authentication on or off explicitly.
pub const AUTH_ENABLED: &str = "http.auth.enabled";

/// The keystore's users and API keys as secure values (what the reload loader returns
/// besides the S3 settings).
pub fn secure_entries(keystore: &Keystore) -> BTreeMap<String, SecureValue> {
    keystore
        .with_prefix(SECURITY_PREFIX)
        .into_iter()
        .map(|(k, v)| {
            let value = if v.is_file() {
                SecureValue::Bytes(secrecy::SecretSlice::from(v.expose_bytes().to_vec()))
            } else {
                SecureValue::Text(SecretString::from(
                    v.expose_str().unwrap_or_default().to_owned(),
                ))
            };
            (k, value)
        })
        .collect()
}

/// The users and API keys in the keystore (none without a keystore).
pub fn credential_store(keystore: Option<&Keystore>) -> anyhow::Result<CredentialStore> {
    let Some(ks) = keystore else {
        return Ok(CredentialStore::empty());
    };
    coffer_api::state::credential_store(&secure_entries(ks))
        .map_err(|e| anyhow::anyhow!("{}", e.reason))
}

/// Whether `host` (the value of `http.host`) only ever means this machine.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return ip.to_canonical().is_loopback();
    }
    if bare.eq_ignore_ascii_case("localhost") || bare == "_local_" {
        return true;
    }
    // A name: loopback only if everything it resolves to is; failing to resolve is not.
    match (bare, 0).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| a.ip().to_canonical().is_loopback())
        }
        Err(_) => false,
    }
}

/// The policy for `settings`, checked against the credentials that exist; logs why
/// authentication is on or off, or fails when no one could authenticate.
pub fn decide(
    settings: &Settings,
    host: &str,
    store: &CredentialStore,
) -> anyhow::Result<AuthPolicy> {
    let setting = match settings.get(AUTH_ENABLED)? {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => bail!(
            "invalid value [{other}] for setting [{AUTH_ENABLED}]: expected [true] or [false]"
        ),
    };
    let policy = AuthPolicy {
        setting,
        loopback_only: is_loopback_host(host),
    };
    check(policy, host, store)?;
    Ok(policy)
}

/// The start-up decision on `policy`, as log lines or a refusal.
pub fn check(policy: AuthPolicy, host: &str, store: &CredentialStore) -> anyhow::Result<()> {
    let why = policy.explain(store);
    if policy.setting == Some(false) {
        tracing::warn!(
            http.host = %host,
            "authentication is DISABLED by http.auth.enabled: false; anyone who can reach http.host:http.port can create, delete and restore snapshots"
        );
        return Ok(());
    }
    if !policy.enabled(store) {
        tracing::info!(http.host = %host, "authentication is off: {why}");
        return Ok(());
    }
    if store.is_empty() {
        bail!(
            "authentication is required ({why}) but the keystore holds no user and no API key, so no one could use the API. Create one first: 'coffer users add <name> --role manage' (or 'coffer api-key create --name <name> --role manage'), then start coffer again. To serve without authentication, set http.host to a loopback address, or set http.auth.enabled: false explicitly."
        );
    }
    let (users, keys) = (store.users().len(), store.api_keys().len());
    tracing::info!(http.host = %host, users, api_keys = keys, "authentication is on: {why}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "[::1]",
            "localhost",
            "LOCALHOST",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "0.0.0.0",
            "::",
            "192.168.1.10",
            "10.0.0.1",
            "[2001:db8::1]",
            "no-such-host.invalid",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn decisions() {
        let empty = CredentialStore::empty();
        let s = |yaml: &str| Settings::parse_yaml(yaml).unwrap();
        // Loopback without credentials: off.
        let p = decide(&s(""), "127.0.0.1", &empty).unwrap();
        assert!(!p.enabled(&empty));
        // Beyond loopback without credentials: refused, saying how to fix it.
        let e = decide(&s(""), "0.0.0.0", &empty).unwrap_err().to_string();
        assert!(e.contains("coffer users add <name> --role manage"), "{e}");
        // Explicitly on without credentials: refused too.
        assert!(decide(&s("http.auth.enabled: true\n"), "127.0.0.1", &empty).is_err());
        // The explicit opt-out starts anywhere.
        let p = decide(&s("http.auth.enabled: false\n"), "0.0.0.0", &empty).unwrap();
        assert!(!p.enabled(&empty));
        assert!(decide(&s("http.auth.enabled: maybe\n"), "127.0.0.1", &empty).is_err());
    }
}
