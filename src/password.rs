//! Where the keystore password comes from: `COFFER_KEYSTORE_PASSWORD`, then the OS keyring,
//! then a prompt on a terminal. With none of these the command fails at once.

use std::path::Path;

use coffer_keystore::{Keystore, os_keyring};
use secrecy::{ExposeSecret, SecretString};

use crate::exit::{CliError, DATA_ERROR};
use crate::terminal::Terminal;

pub const PASSWORD_ENV: &str = "COFFER_KEYSTORE_PASSWORD";
pub const NEW_PASSWORD_ENV: &str = "COFFER_KEYSTORE_NEW_PASSWORD";

/// Where a password came from; a wrong password from the keyring deserves its own hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    NotProtected,
    Environment,
    Keyring,
    Prompt,
}

/// The password that opens the existing keystore at `path`.
pub fn existing(
    path: &Path,
    terminal: Option<&Terminal>,
) -> Result<(SecretString, Source), CliError> {
    if !Keystore::is_password_protected(path)? {
        return Ok((SecretString::from(String::new()), Source::NotProtected));
    }
    if let Some(p) = env(PASSWORD_ENV) {
        return Ok((p, Source::Environment));
    }
    if let Some(p) = os_keyring::load(path)? {
        return Ok((p, Source::Keyring));
    }
    let hint = format!(
        "the coffer keystore at [{}] is password-protected and no password is available: set \
         {PASSWORD_ENV}, save the password in the OS keyring with 'coffer keystore passwd \
         --save-to-keyring', or run on a terminal",
        path.display()
    );
    match terminal {
        Some(t) => Ok((
            t.read_secret("Enter password for the coffer keystore : ", &hint)?,
            Source::Prompt,
        )),
        None => Err(CliError::new(DATA_ERROR, hint)),
    }
}

/// A new password: from `env_var` when set (scripts), else asked twice on the terminal.
pub fn new_password(terminal: &Terminal, env_var: &str) -> Result<SecretString, CliError> {
    if let Some(p) = env(env_var) {
        return Ok(p);
    }
    let hint = format!("no terminal to ask for the new keystore password: set {env_var}");
    let first = terminal.read_secret(
        "Enter new password for the coffer keystore (empty for no password): ",
        &hint,
    )?;
    let second = terminal.read_secret("Enter same password again: ", &hint)?;
    if first.expose_secret() != second.expose_secret() {
        return Err(CliError::new(
            DATA_ERROR,
            "Passwords are not equal, exiting.",
        ));
    }
    Ok(first)
}

fn env(name: &str) -> Option<SecretString> {
    std::env::var(name).ok().map(SecretString::from)
}
