//! The keystore password in the operating system's keyring, so an operator can run
//! `coffer serve` and `coffer keystore` without typing it and without an environment
//! variable.
//!
//! Two backends, tried in order:
//! - the Secret Service (GNOME Keyring, KWallet) through the `keyring` crate, when a D-Bus
//!   session is present (desktops);
//! - the Linux kernel keyring (keyutils) otherwise: headless servers and containers. The
//!   entry goes into the *user* keyring, readable by every process of the same uid, and is
//!   linked into the user's persistent keyring so it outlives a logout for a few days. It is
//!   lost at reboot. We talk to keyutils directly rather than through `keyring`'s keyutils
//!   store because that store files keys in the session keyring with possessor-only
//!   permissions, which a service started outside the login session cannot read.
//!
//! Entries are keyed by the keystore's canonical path, so several keystores on one machine
//! keep separate passwords.

use std::path::Path;

use linux_keyutils::{KeyError, KeyPermissionsBuilder, KeyRing, KeyRingIdentifier, Permission};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::KeystoreError;

const SERVICE: &str = "coffer-keystore";

fn account(keystore: &Path) -> String {
    // The file may not exist yet (create); canonicalise its directory instead.
    let dir = keystore
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let name = keystore.file_name().unwrap_or_default();
    dir.join(name).to_string_lossy().into_owned()
}

fn description(keystore: &Path) -> String {
    format!("{SERVICE}:{}", account(keystore))
}

fn secret_service(keystore: &Path) -> Option<keyring::Entry> {
    std::env::var_os("DBUS_SESSION_BUS_ADDRESS")?;
    let cred =
        keyring::secret_service::SsCredential::new_with_target(None, SERVICE, &account(keystore))
            .ok()?;
    Some(keyring::Entry::new_with_credential(Box::new(cred)))
}

fn user_keyring() -> Result<KeyRing, KeyError> {
    KeyRing::from_special_id(KeyRingIdentifier::User, true)
}

fn keyutils_error(e: KeyError) -> KeystoreError {
    KeystoreError::Keyring(format!("kernel keyring: {e:?}"))
}

/// The saved password for this keystore, if a backend has one. A backend that is merely
/// unavailable (no Secret Service daemon, keyutils blocked by a sandbox) yields `None`, so the
/// other password sources still apply.
pub fn load(keystore: &Path) -> Result<Option<SecretString>, KeystoreError> {
    if let Some(entry) = secret_service(keystore)
        && let Ok(p) = entry.get_password()
    {
        return Ok(Some(SecretString::from(p)));
    }
    let Ok(ring) = user_keyring() else {
        return Ok(None);
    };
    let Ok(key) = ring.search(&description(keystore)) else {
        return Ok(None);
    };
    let bytes = Zeroizing::new(key.read_to_vec().map_err(keyutils_error)?);
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| KeystoreError::Keyring("the saved password is not UTF-8".to_owned()))?;
    Ok(Some(SecretString::from(text.to_owned())))
}

/// Saves the password for this keystore: in the Secret Service when there is one, else in
/// the kernel keyring.
pub fn save(keystore: &Path, password: &SecretString) -> Result<(), KeystoreError> {
    if let Some(entry) = secret_service(keystore)
        && entry.set_password(password.expose_secret()).is_ok()
    {
        return Ok(());
    }
    let ring = user_keyring().map_err(keyutils_error)?;
    let key = ring
        .add_key(&description(keystore), password.expose_secret().as_bytes())
        .map_err(keyutils_error)?;
    // Readable by our uid without "possessing" the key: `coffer serve` run by a service
    // manager is not in the session that ran `coffer keystore`.
    let perms = KeyPermissionsBuilder::builder()
        .posessor(Permission::ALL)
        .user(
            Permission::VIEW
                | Permission::READ
                | Permission::WRITE
                | Permission::SEARCH
                | Permission::SETATTR,
        )
        .build();
    key.set_perms(perms).map_err(keyutils_error)?;
    if let Ok(persistent) = KeyRing::get_persistent(KeyRingIdentifier::User) {
        // Best effort: the persistent keyring keeps the entry across logouts where the
        // kernel offers it.
        let _ = persistent.link_key(key);
    }
    Ok(())
}

/// Removes the saved password from every backend. Returns whether any entry existed.
pub fn forget(keystore: &Path) -> Result<bool, KeystoreError> {
    let mut found = false;
    if let Some(entry) = secret_service(keystore)
        && entry.delete_credential().is_ok()
    {
        found = true;
    }
    if let Ok(ring) = user_keyring()
        && let Ok(key) = ring.search(&description(keystore))
    {
        key.invalidate().map_err(keyutils_error)?;
        found = true;
    }
    Ok(found)
}
