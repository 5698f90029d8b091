use std::collections::BTreeMap;
use std::path::Path;

use secrecy::{ExposeSecret, SecretString};

use crate::format::{self, CURRENT_VERSION, KdfParams};
use crate::setting::{SecureSetting, validate_setting_name};
use crate::{KeystoreError, crypto, file};

/// The keystore's file name inside the config directory.
pub const KEYSTORE_FILE_NAME: &str = "coffer.keystore";

/// A decrypted keystore held in memory. Values are zeroized when dropped; `Debug` shows
/// names only.
pub struct Keystore {
    settings: BTreeMap<String, SecureSetting>,
    loaded_version: u16,
    kdf: KdfParams,
}

impl Default for Keystore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Keystore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keystore")
            .field("names", &self.settings.keys().collect::<Vec<_>>())
            .field("loaded_version", &self.loaded_version)
            .finish_non_exhaustive()
    }
}

impl Keystore {
    /// An empty keystore in the current format.
    pub fn new() -> Self {
        Self {
            settings: BTreeMap::new(),
            loaded_version: CURRENT_VERSION,
            kdf: KdfParams::DEFAULT,
        }
    }

    /// Uses other key-derivation costs for the next save (tests use cheap ones).
    #[must_use]
    pub fn with_kdf_params(mut self, kdf: KdfParams) -> Self {
        self.kdf = kdf;
        self
    }

    /// Reads and decrypts the keystore at `path`. An empty password opens a keystore that
    /// is not password-protected.
    pub fn load(path: &Path, password: &SecretString) -> Result<Self, KeystoreError> {
        Self::from_bytes(&read(path)?, password)
    }

    /// Decrypts a keystore file already read into memory (what [`load`](Self::load) does
    /// after reading). Damage is `Corrupted`, a wrong password `WrongPassword`; a hostile
    /// file's key-derivation costs are bounded before any derivation runs.
    pub fn from_bytes(bytes: &[u8], password: &SecretString) -> Result<Self, KeystoreError> {
        let (header, entries) = format::decode(bytes, password.expose_secret().as_bytes())?;
        Ok(Self {
            settings: entries.into_iter().collect(),
            loaded_version: header.version,
            kdf: KdfParams::DEFAULT,
        })
    }

    /// Whether the file at `path` needs a password, read from its header. The file's
    /// checksum is verified first, so a damaged file is reported as such.
    pub fn is_password_protected(path: &Path) -> Result<bool, KeystoreError> {
        Self::bytes_are_password_protected(&read(path)?)
    }

    /// [`is_password_protected`](Self::is_password_protected) of a file already in memory.
    pub fn bytes_are_password_protected(bytes: &[u8]) -> Result<bool, KeystoreError> {
        Ok(format::read_header(bytes)?.password_protected)
    }

    /// Whether a keystore file exists at `path`.
    pub fn exists(path: &Path) -> bool {
        path.exists()
    }

    /// Encrypts and durably writes the keystore to `path` in the current format, with a
    /// fresh salt and nonce. An empty password writes a keystore that is not
    /// password-protected (still encrypted, as `elasticsearch-keystore` does).
    pub fn save(&self, path: &Path, password: &SecretString) -> Result<(), KeystoreError> {
        let entries: Vec<(&str, &SecureSetting)> =
            self.settings.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let bytes = format::encode(
            &entries,
            password.expose_secret().as_bytes(),
            self.kdf,
            crypto::random()?,
            crypto::random()?,
        )?;
        file::write_atomic(path, &bytes)
    }

    /// The format version the keystore was read in (what `upgrade` compares against).
    pub fn loaded_version(&self) -> u16 {
        self.loaded_version
    }

    /// Setting names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.settings.keys().map(String::as_str)
    }

    /// One setting, if present.
    pub fn get(&self, name: &str) -> Option<&SecureSetting> {
        self.settings.get(name)
    }

    /// Whether a setting is present.
    pub fn contains(&self, name: &str) -> bool {
        self.settings.contains_key(name)
    }

    /// Adds or replaces a setting, returning whether one was replaced.
    pub fn set(&mut self, name: &str, value: SecureSetting) -> Result<bool, KeystoreError> {
        validate_setting_name(name)?;
        Ok(self.settings.insert(name.to_owned(), value).is_some())
    }

    /// Removes a setting; a missing name is an error, as with `elasticsearch-keystore`.
    pub fn remove(&mut self, name: &str) -> Result<(), KeystoreError> {
        self.settings
            .remove(name)
            .map(drop)
            .ok_or_else(|| KeystoreError::SettingMissing {
                name: name.to_owned(),
            })
    }

    /// The settings whose names start with `prefix`, with the prefix kept, as copies the
    /// caller owns (they zeroize on drop too).
    pub fn with_prefix(&self, prefix: &str) -> BTreeMap<String, SecureSetting> {
        self.settings
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.duplicate()))
            .collect()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, KeystoreError> {
    std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            KeystoreError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            KeystoreError::io("reading keystore", path, e)
        }
    })
}
