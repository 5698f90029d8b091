//! Exit codes (the BSD `sysexits.h` values `elasticsearch-keystore` uses) and the error type
//! the commands return.

use std::fmt;

use coffer_keystore::KeystoreError;

/// Wrong command-line usage.
pub const USAGE: i32 = 64;
/// Bad input data: a wrong password, a corrupted file, a missing keystore.
pub const DATA_ERROR: i32 = 65;
/// An unknown user or API key (`elasticsearch-users`' `NO_USER`).
pub const NO_USER: i32 = 67;
/// An input/output error.
pub const IO_ERROR: i32 = 74;
/// A configuration error, e.g. a setting that is not in the keystore.
pub const CONFIG: i32 = 78;

/// A failed command: what to print after `ERROR: ` and the process exit code.
#[derive(Debug)]
pub struct CliError {
    pub code: i32,
    pub message: String,
}

impl CliError {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<KeystoreError> for CliError {
    fn from(e: KeystoreError) -> Self {
        let code = match &e {
            KeystoreError::InvalidSettingName { .. } => USAGE,
            KeystoreError::SettingMissing { .. } => CONFIG,
            KeystoreError::Io { .. } | KeystoreError::Keyring(_) => IO_ERROR,
            _ => DATA_ERROR,
        };
        Self::new(code, e.to_string())
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        Self::new(IO_ERROR, e.to_string())
    }
}
