//! coffer's encrypted keystore: the secure settings (S3 keys, session tokens, proxy passwords,
//! CA bundles) that must never sit in plain text in `coffer.yml`.
//!
//! The contract follows `elasticsearch-keystore`; the on-disk format is coffer's own and is
//! specified in `docs/keystore-format.md`. This crate holds the format, the cryptography and
//! the durable file I/O. The command line lives in the `coffer` binary.
//!
//! ```no_run
//! use coffer_keystore::{Keystore, SecureSetting};
//! use secrecy::SecretString;
//!
//! let path = std::path::Path::new("config/coffer.keystore");
//! let password = SecretString::from("");
//! let mut ks = Keystore::load(path, &password)?;
//! ks.set("s3.client.default.access_key", SecureSetting::string("GK123"))?;
//! ks.save(path, &password)?;
//! # Ok::<(), coffer_keystore::KeystoreError>(())
//! ```

mod crypto;
mod error;
mod file;
mod format;
mod keystore;
pub mod os_keyring;
mod setting;

pub use error::KeystoreError;
pub use file::write_atomic;
pub use format::{CURRENT_VERSION, KdfParams};
pub use keystore::{KEYSTORE_FILE_NAME, Keystore};
pub use setting::{SecureSetting, validate_setting_name};
