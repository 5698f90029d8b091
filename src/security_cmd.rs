//! `coffer users …` and `coffer api-key …`: users and API keys as reserved keystore entries
//! (`coffer.security.users.<name>`, `coffer.security.api_keys.<id>`, see
//! `docs/keystore-format.md`). Same password sources, lock, exit codes and message style as
//! `coffer keystore`. Only Argon2id hashes are written; an API key is printed once.

use std::io::Write;
use std::path::Path;

use clap::Subcommand;
use coffer_api::EsError;
use coffer_api::auth::store::{
    API_KEY_ID_BYTES, API_KEY_SECRET_BYTES, ApiKeyRandom, SALT_LEN, SECURITY_PREFIX,
    parse_expiration, validate_api_key_name, validate_username,
};
use coffer_api::auth::{ApiKeyRecord, CredentialStore, Role, UserRecord};
use coffer_keystore::{KEYSTORE_FILE_NAME, Keystore, SecureSetting};
use coffer_repository::clock::{Clock as _, SystemClock};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::exit::{CliError, DATA_ERROR, IO_ERROR, NO_USER};
use crate::keystore_cmd::{Failure, Outcome, from_keystore, lock, open};
use crate::terminal::Terminal;

const ROLES: [&str; 2] = ["monitor", "manage"];

/// `coffer users …`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user. The password is asked twice on the terminal, or read from the first line
    /// of standard input with --stdin; it is never taken from the command line.
    Add {
        /// The user name: 1 to 507 characters from [A-Za-z0-9_.-], not beginning with _.
        name: String,
        /// The role: monitor (read everything) or manage (everything).
        #[arg(long, value_parser = ROLES)]
        role: String,
        /// Read the password from the first line of standard input.
        #[arg(short = 'x', long)]
        stdin: bool,
        /// Replace an existing user of that name (new password and role).
        #[arg(short, long)]
        force: bool,
    },
    /// Remove a user.
    Remove {
        /// The user name.
        name: String,
    },
    /// List users and their roles (never the hashes).
    List,
}

/// `coffer api-key …`.
#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create an API key and print it, once, as Elasticsearch's create-API-key response:
    /// {"id","name","expiration"?,"api_key","encoded"}. Send `Authorization: ApiKey <encoded>`.
    Create {
        /// A name for the key (names need not be unique).
        #[arg(long)]
        name: String,
        /// The role: monitor or manage.
        #[arg(long, value_parser = ROLES)]
        role: String,
        /// Lifetime, as an Elasticsearch time value (30d, 12h, 90m, 3600s); none: no expiry.
        #[arg(long, value_name = "DURATION")]
        expiration: Option<String>,
    },
    /// Invalidate API keys, by id or by name (every key of that name).
    Invalidate {
        /// The key's id.
        #[arg(required_unless_present = "name", conflicts_with = "name")]
        id: Option<String>,
        /// Invalidate every key with this name.
        #[arg(long)]
        name: Option<String>,
    },
    /// List API keys: id, name, role, creation, expiration, invalidated (never the keys).
    List,
}

/// Runs `coffer users …`; the result is the exit code.
pub fn run_users(
    config_dir: &Path,
    command: UsersCommand,
    silent: bool,
    verbose: bool,
) -> Result<i32, CliError> {
    let path = config_dir.join(KEYSTORE_FILE_NAME);
    let mut term = Terminal::new(silent);
    let result = match command {
        UsersCommand::Add {
            name,
            role,
            stdin,
            force,
        } => users_add(&path, &mut term, &name, &role, stdin, force),
        UsersCommand::Remove { name } => users_remove(&path, &term, &name),
        UsersCommand::List => users_list(&path, &term),
    };
    finish(result, verbose)
}

/// Runs `coffer api-key …`; the result is the exit code.
pub fn run_api_key(
    config_dir: &Path,
    command: ApiKeyCommand,
    silent: bool,
    verbose: bool,
) -> Result<i32, CliError> {
    let path = config_dir.join(KEYSTORE_FILE_NAME);
    let term = Terminal::new(silent);
    let result = match command {
        ApiKeyCommand::Create {
            name,
            role,
            expiration,
        } => api_key_create(&path, &term, &name, &role, expiration.as_deref()),
        ApiKeyCommand::Invalidate { id, name } => {
            api_key_invalidate(&path, &term, id.as_deref(), name.as_deref())
        }
        ApiKeyCommand::List => api_key_list(&path, &term),
    };
    finish(result, verbose)
}

fn finish(result: Outcome, verbose: bool) -> Result<i32, CliError> {
    result.map_err(|mut e| {
        if verbose && let Some(detail) = e.detail.take() {
            e.error.message = format!("{} ({detail})", e.error.message);
        }
        e.error
    })
}

/// An API validation error as a command failure (its reason only: never a value).
fn invalid(e: &EsError) -> Failure {
    CliError::new(DATA_ERROR, e.reason.clone()).into()
}

fn role(s: &str) -> Result<Role, Failure> {
    Role::parse(s).map_err(|e| invalid(&e))
}

fn random<const N: usize>() -> Result<[u8; N], CliError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out)
        .map_err(|e| CliError::new(IO_ERROR, format!("no randomness from the OS: {e}")))?;
    Ok(out)
}

/// The keystore for a change; a missing one is created unprotected (as `keystore add -f`),
/// which the caller reports.
fn open_for_change(
    path: &Path,
    term: &Terminal,
) -> Result<(Keystore, SecretString, bool), Failure> {
    if path.exists() {
        let (ks, pw) = open(path, term)?;
        Ok((ks, pw, false))
    } else {
        Ok((Keystore::new(), SecretString::from(String::new()), true))
    }
}

fn save(
    ks: &Keystore,
    path: &Path,
    password: &SecretString,
    created: bool,
    term: &Terminal,
) -> Result<(), Failure> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::new(IO_ERROR, format!("creating [{}]: {e}", dir.display())))?;
    }
    ks.save(path, password).map_err(from_keystore)?;
    if created {
        term.println(&format!(
            "Created coffer keystore in {}",
            path.parent()
                .map_or_else(|| ".".into(), |d| d.display().to_string())
        ));
    }
    Ok(())
}

/// The users and API keys in `ks`. A damaged reserved entry is an error naming it.
fn credentials(ks: &Keystore) -> Result<CredentialStore, Failure> {
    let entries = ks.with_prefix(SECURITY_PREFIX);
    CredentialStore::from_entries(
        entries
            .iter()
            .map(|(k, v)| (k.as_str(), if v.is_file() { None } else { v.expose_str() })),
    )
    .map_err(|e| invalid(&e))
}

fn set(ks: &mut Keystore, name: &str, value: &Zeroizing<String>) -> Result<(), Failure> {
    ks.set(name, SecureSetting::string(value.as_str()))?;
    Ok(())
}

fn read_password(term: &mut Terminal, name: &str, stdin: bool) -> Result<SecretString, Failure> {
    if stdin {
        return match term.read_line()? {
            Some(line) => Ok(SecretString::from(line.as_str().to_owned())),
            None => Err(CliError::new(
                DATA_ERROR,
                format!("Missing password for user [{name}]: standard input ended"),
            )
            .into()),
        };
    }
    let hint =
        format!("no terminal to ask for the password of user [{name}]: pipe it with --stdin");
    let first = term.read_secret(&format!("Enter password for [{name}]: "), &hint)?;
    let second = term.read_secret(&format!("Retype password for [{name}]: "), &hint)?;
    if first.expose_secret() != second.expose_secret() {
        return Err(CliError::new(DATA_ERROR, "Passwords are not equal, exiting.").into());
    }
    Ok(first)
}

fn users_add(
    path: &Path,
    term: &mut Terminal,
    name: &str,
    role_name: &str,
    stdin: bool,
    force: bool,
) -> Outcome {
    validate_username(name).map_err(|e| invalid(&e))?;
    let role = role(role_name)?;
    let _lock = lock(path)?;
    let (mut ks, password, created) = open_for_change(path, term)?;
    let store = credentials(&ks)?;
    if store.user(name).is_some() && !force {
        return Err(CliError::new(
            DATA_ERROR,
            format!("User [{name}] already exists; use --force to replace it, or 'coffer users remove {name}'"),
        )
        .into());
    }
    let user_password = read_password(term, name, stdin)?;
    let record = UserRecord::new(name, role, &user_password, &random::<SALT_LEN>()?)
        .map_err(|e| invalid(&e))?;
    drop(user_password);
    set(&mut ks, &record.entry_name(), &record.entry_value())?;
    save(&ks, path, &password, created, term)?;
    term.println(&format!(
        "User [{name}] saved with role [{role}]. A running coffer picks it up at the next 'POST _nodes/reload_secure_settings', SIGHUP or restart."
    ));
    Ok(0)
}

fn users_remove(path: &Path, term: &Terminal, name: &str) -> Outcome {
    let _lock = lock(path)?;
    let (mut ks, password) = open(path, term)?;
    let store = credentials(&ks)?;
    let Some(record) = store.user(name) else {
        return Err(CliError::new(NO_USER, format!("User [{name}] doesn't exist")).into());
    };
    ks.remove(&record.entry_name())?;
    ks.save(path, &password).map_err(from_keystore)?;
    term.println(&format!("User [{name}] removed."));
    Ok(0)
}

fn users_list(path: &Path, term: &Terminal) -> Outcome {
    if !path.exists() {
        return Ok(0);
    }
    let (ks, _) = open(path, term)?;
    let store = credentials(&ks)?;
    let mut out = std::io::stdout().lock();
    for (name, user) in store.users() {
        // The layout of `elasticsearch-users list`.
        writeln!(out, "{name:<15}: {}", user.role)?;
    }
    Ok(0)
}

fn api_key_create(
    path: &Path,
    term: &Terminal,
    name: &str,
    role_name: &str,
    expiration: Option<&str>,
) -> Outcome {
    validate_api_key_name(name).map_err(|e| invalid(&e))?;
    let role = role(role_name)?;
    let expires_in = expiration
        .map(parse_expiration)
        .transpose()
        .map_err(|e| invalid(&e))?;
    let _lock = lock(path)?;
    let (mut ks, password, created) = open_for_change(path, term)?;
    let store = credentials(&ks)?;
    let randomness = ApiKeyRandom {
        id: random::<API_KEY_ID_BYTES>()?,
        key: Zeroizing::new(random::<API_KEY_SECRET_BYTES>()?),
        salt: random::<SALT_LEN>()?,
    };
    let new = ApiKeyRecord::create(name, role, SystemClock.now(), expires_in, &randomness)
        .map_err(|e| invalid(&e))?;
    drop(randomness);
    if store.api_key(&new.record.id).is_some() {
        // 120 random bits: a collision means a broken random source, not bad luck.
        return Err(CliError::new(
            IO_ERROR,
            "the new API key id collides with an existing one; the OS random source is suspect",
        )
        .into());
    }
    set(&mut ks, &new.record.entry_name(), &new.record.entry_value())?;
    save(&ks, path, &password, created, term)?;
    // Printed only once it is saved, so a key shown is a key that works.
    let response = new.response_json();
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", response.as_str())?;
    out.flush()?;
    drop(out);
    if !term.is_silent() {
        eprintln!(
            "Keep the api_key now: coffer stores only its hash and cannot show it again. A running coffer accepts it after the next 'POST _nodes/reload_secure_settings', SIGHUP or restart."
        );
    }
    Ok(0)
}

fn api_key_invalidate(
    path: &Path,
    term: &Terminal,
    id: Option<&str>,
    name: Option<&str>,
) -> Outcome {
    let _lock = lock(path)?;
    let (mut ks, password) = open(path, term)?;
    let store = credentials(&ks)?;
    let matches: Vec<&ApiKeyRecord> = store
        .api_keys()
        .values()
        .filter(|k| id.is_some_and(|i| k.id == i) || name.is_some_and(|n| k.name == n))
        .collect();
    if matches.is_empty() {
        let what = match (id, name) {
            (Some(i), _) => format!("id [{i}]"),
            (None, Some(n)) => format!("name [{n}]"),
            (None, None) => String::new(),
        };
        return Err(CliError::new(NO_USER, format!("No API key with {what}")).into());
    }
    let mut invalidated = Vec::new();
    let mut previously = Vec::new();
    for k in matches {
        if k.invalidated {
            previously.push(k.id.clone());
            continue;
        }
        let mut updated = k.clone();
        updated.invalidated = true;
        set(&mut ks, &updated.entry_name(), &updated.entry_value())?;
        invalidated.push(k.id.clone());
    }
    if !invalidated.is_empty() {
        ks.save(path, &password).map_err(from_keystore)?;
    }
    // Elasticsearch's invalidate-API-key response.
    let body = json!({
        "invalidated_api_keys": invalidated,
        "previously_invalidated_api_keys": previously,
        "error_count": 0,
    });
    writeln!(std::io::stdout().lock(), "{body}")?;
    Ok(0)
}

fn api_key_list(path: &Path, term: &Terminal) -> Outcome {
    let store = if path.exists() {
        let (ks, _) = open(path, term)?;
        credentials(&ks)?
    } else {
        CredentialStore::empty()
    };
    let keys: Vec<Value> = store
        .api_keys()
        .values()
        .map(|k| {
            let mut v = json!({
                "id": k.id,
                "name": k.name,
                "role": k.role.as_str(),
                "creation": k.creation.timestamp_millis(),
                "invalidated": k.invalidated,
            });
            if let Some(e) = k.expiration {
                v["expiration"] = e.timestamp_millis().into();
            }
            v
        })
        .collect();
    writeln!(std::io::stdout().lock(), "{}", json!({"api_keys": keys}))?;
    Ok(0)
}
