//! `coffer keystore …`: the `elasticsearch-keystore` contract over coffer's keystore crate.

use std::fs::{self, File};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Subcommand;
use coffer_keystore::{
    CURRENT_VERSION, KEYSTORE_FILE_NAME, Keystore, KeystoreError, SecureSetting, os_keyring,
    validate_setting_name,
};
use secrecy::{ExposeSecret, SecretString};

use crate::exit::{CONFIG, CliError, DATA_ERROR, IO_ERROR, USAGE};
use crate::password::{self, NEW_PASSWORD_ENV, PASSWORD_ENV, Source};
use crate::terminal::Terminal;

/// The keystore subcommands.
#[derive(Debug, Subcommand)]
pub enum KeystoreCommand {
    /// Create a new keystore.
    Create {
        /// Protect the keystore with a password (from COFFER_KEYSTORE_PASSWORD, or asked twice).
        #[arg(short = 'p', long = "password")]
        password: bool,
        /// Also save the password in the OS keyring.
        #[arg(long, requires = "password")]
        save_to_keyring: bool,
    },
    /// Add string settings, asked without echo or read from standard input.
    Add {
        /// Overwrite existing settings and create a missing keystore without asking.
        #[arg(short, long)]
        force: bool,
        /// Read one value per setting name from standard input, one line each.
        #[arg(short = 'x', long = "stdin")]
        stdin: bool,
        /// Setting names.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
    /// Add settings whose values are the contents of files.
    AddFile {
        /// Overwrite existing settings and create a missing keystore without asking.
        #[arg(short, long)]
        force: bool,
        /// NAME PATH pairs.
        #[arg(required = true, num_args = 2.., value_name = "NAME PATH")]
        pairs: Vec<String>,
    },
    /// List setting names.
    List,
    /// Print the value of one setting.
    Show {
        /// Write the value to this file instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// The setting name.
        name: String,
    },
    /// Remove settings.
    Remove {
        /// Setting names.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
    /// Change the keystore password.
    Passwd {
        /// Save the new password in the OS keyring.
        #[arg(long, conflicts_with = "forget_keyring")]
        save_to_keyring: bool,
        /// Remove the password from the OS keyring.
        #[arg(long)]
        forget_keyring: bool,
    },
    /// Exit 0 if the keystore is password-protected, 1 if not.
    HasPasswd,
    /// Rewrite the keystore in the current format version.
    Upgrade,
}

/// Runs one keystore command; the result is the process exit code.
pub fn run(
    config_dir: &Path,
    command: KeystoreCommand,
    silent: bool,
    verbose: bool,
) -> Result<i32, CliError> {
    let path = config_dir.join(KEYSTORE_FILE_NAME);
    let mut term = Terminal::new(silent);
    let result = match command {
        KeystoreCommand::Create {
            password,
            save_to_keyring,
        } => create(config_dir, &path, &mut term, password, save_to_keyring),
        KeystoreCommand::Add {
            force,
            stdin,
            names,
        } => add(&path, &mut term, force, stdin, &names),
        KeystoreCommand::AddFile { force, pairs } => add_file(&path, &mut term, force, &pairs),
        KeystoreCommand::List => list(&path, &term),
        KeystoreCommand::Show { output, name } => show(&path, &term, &name, output.as_deref()),
        KeystoreCommand::Remove { names } => remove(&path, &term, &names),
        KeystoreCommand::Passwd {
            save_to_keyring,
            forget_keyring,
        } => passwd(&path, &term, save_to_keyring, forget_keyring),
        KeystoreCommand::HasPasswd => has_passwd(&path, &term),
        KeystoreCommand::Upgrade => upgrade(&path, &term),
    };
    result.map_err(|mut e| {
        if verbose && let Some(detail) = e.detail.take() {
            e.error.message = format!("{} ({detail})", e.error.message);
        }
        e.error
    })
}

/// A command failure plus optional diagnostic detail shown with `--verbose`.
pub(crate) struct Failure {
    pub(crate) error: CliError,
    pub(crate) detail: Option<String>,
}

impl<E: Into<CliError>> From<E> for Failure {
    fn from(e: E) -> Self {
        Self {
            error: e.into(),
            detail: None,
        }
    }
}

pub(crate) fn from_keystore(e: KeystoreError) -> Failure {
    let detail = match &e {
        KeystoreError::Corrupted { detail } => Some((*detail).to_owned()),
        _ => None,
    };
    Failure {
        error: e.into(),
        detail,
    }
}

pub(crate) type Outcome = Result<i32, Failure>;

/// Serialises read-modify-write cycles of concurrent `coffer keystore` processes so that
/// two `add`s cannot lose each other's setting.
pub(crate) struct WriteLock(#[allow(dead_code)] File);

pub(crate) fn lock(path: &Path) -> Result<WriteLock, CliError> {
    let lock_path = path.with_file_name(format!("{KEYSTORE_FILE_NAME}.lock"));
    if let Some(dir) = lock_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)
            .map_err(|e| CliError::new(IO_ERROR, format!("creating [{}]: {e}", dir.display())))?;
    }
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| CliError::new(IO_ERROR, format!("opening [{}]: {e}", lock_path.display())))?;
    file.lock()
        .map_err(|e| CliError::new(IO_ERROR, format!("locking [{}]: {e}", lock_path.display())))?;
    Ok(WriteLock(file))
}

pub(crate) fn open(path: &Path, term: &Terminal) -> Result<(Keystore, SecretString), Failure> {
    let (password, source) = password::existing(path, Some(term))?;
    match Keystore::load(path, &password) {
        Ok(ks) => Ok((ks, password)),
        Err(KeystoreError::WrongPassword) => Err(Failure {
            error: KeystoreError::WrongPassword.into(),
            detail: Some(match source {
                Source::Keyring => "the password saved in the OS keyring is wrong; run 'coffer keystore passwd --forget-keyring'".to_owned(),
                Source::Environment => format!("the password came from {PASSWORD_ENV}"),
                Source::Prompt | Source::NotProtected => "the password was typed".to_owned(),
            }),
        }),
        Err(e) => Err(from_keystore(e)),
    }
}

fn create(
    config_dir: &Path,
    path: &Path,
    term: &mut Terminal,
    with_password: bool,
    save_to_keyring: bool,
) -> Outcome {
    let _lock = lock(path)?;
    if path.exists() && !term.confirm("A coffer keystore already exists. Overwrite?")? {
        term.println("Exiting without creating keystore.");
        return Ok(0);
    }
    let password = if with_password {
        password::new_password(term, PASSWORD_ENV)?
    } else {
        SecretString::from(String::new())
    };
    fs::create_dir_all(config_dir).map_err(|e| {
        CliError::new(
            IO_ERROR,
            format!("creating [{}]: {e}", config_dir.display()),
        )
    })?;
    Keystore::new()
        .save(path, &password)
        .map_err(from_keystore)?;
    if save_to_keyring && !password.expose_secret().is_empty() {
        os_keyring::save(path, &password)?;
    }
    term.println(&format!(
        "Created coffer keystore in {}",
        config_dir.display()
    ));
    Ok(0)
}

/// Opens the keystore for changes, or offers to create it (unprotected) when missing.
/// `None` means the operator declined.
fn open_or_create(
    path: &Path,
    term: &mut Terminal,
    force: bool,
) -> Result<Option<(Keystore, SecretString)>, Failure> {
    if path.exists() {
        return open(path, term).map(Some);
    }
    if !force && !term.confirm("The coffer keystore does not exist. Do you want to create it?")? {
        term.println("Exiting without creating keystore.");
        return Ok(None);
    }
    Ok(Some((Keystore::new(), SecretString::from(String::new()))))
}

fn add(path: &Path, term: &mut Terminal, force: bool, stdin: bool, names: &[String]) -> Outcome {
    for name in names {
        validate_setting_name(name)?;
    }
    let _lock = lock(path)?;
    let Some((mut ks, password)) = open_or_create(path, term, force)? else {
        return Ok(0);
    };
    for name in names {
        if ks.contains(name)
            && !force
            && !term.confirm(&format!("Setting {name} already exists. Overwrite?"))?
        {
            term.println("Exiting without modifying keystore.");
            return Ok(0);
        }
        let value = if stdin {
            match term.read_line()? {
                Some(line) => SecureSetting::string(line.as_str()),
                None => {
                    return Err(CliError::new(
                        DATA_ERROR,
                        format!("Missing value for setting [{name}]: standard input ended"),
                    )
                    .into());
                }
            }
        } else {
            let secret = term.read_secret(
                &format!("Enter value for {name}: "),
                &format!("no terminal to ask for the value of [{name}]: use --stdin"),
            )?;
            SecureSetting::String(secret)
        };
        ks.set(name, value)?;
    }
    ks.save(path, &password).map_err(from_keystore)?;
    Ok(0)
}

fn add_file(path: &Path, term: &mut Terminal, force: bool, pairs: &[String]) -> Outcome {
    if !pairs.len().is_multiple_of(2) {
        return Err(CliError::new(
            USAGE,
            "add-file takes NAME PATH pairs; the last setting has no file path",
        )
        .into());
    }
    let mut files = Vec::new();
    for pair in pairs.chunks(2) {
        validate_setting_name(&pair[0])?;
        let file = Path::new(&pair[1]);
        let bytes = fs::read(file).map_err(|e| {
            let what = if e.kind() == std::io::ErrorKind::NotFound {
                format!("File [{}] does not exist", file.display())
            } else {
                format!("reading [{}]: {e}", file.display())
            };
            CliError::new(IO_ERROR, what)
        })?;
        files.push((pair[0].clone(), bytes));
    }
    let _lock = lock(path)?;
    let Some((mut ks, password)) = open_or_create(path, term, force)? else {
        return Ok(0);
    };
    for (name, bytes) in files {
        if ks.contains(&name)
            && !force
            && !term.confirm(&format!("Setting {name} already exists. Overwrite?"))?
        {
            term.println("Exiting without modifying keystore.");
            return Ok(0);
        }
        ks.set(&name, SecureSetting::file(bytes))?;
    }
    ks.save(path, &password).map_err(from_keystore)?;
    Ok(0)
}

fn list(path: &Path, term: &Terminal) -> Outcome {
    let (ks, _) = open(path, term)?;
    let mut out = std::io::stdout().lock();
    for name in ks.names() {
        writeln!(out, "{name}")?;
    }
    Ok(0)
}

fn show(path: &Path, term: &Terminal, name: &str, output: Option<&Path>) -> Outcome {
    let (ks, _) = open(path, term)?;
    let value = ks.get(name).ok_or_else(|| {
        CliError::new(
            CONFIG,
            format!("Setting [{name}] does not exist in the keystore."),
        )
    })?;
    if let Some(file) = output {
        coffer_keystore::write_atomic(file, value.expose_bytes())?;
        return Ok(0);
    }
    let mut out = std::io::stdout().lock();
    match value.expose_str() {
        Some(text) if !value.is_file() => writeln!(out, "{text}")?,
        _ if std::io::stdout().is_terminal() => {
            return Err(CliError::new(
                DATA_ERROR,
                format!(
                    "The value of setting [{name}] is binary; redirect standard output or use --output FILE"
                ),
            )
            .into());
        }
        _ => out.write_all(value.expose_bytes())?,
    }
    Ok(0)
}

fn remove(path: &Path, term: &Terminal, names: &[String]) -> Outcome {
    let _lock = lock(path)?;
    let (mut ks, password) = open(path, term)?;
    for name in names {
        ks.remove(name)?;
    }
    ks.save(path, &password).map_err(from_keystore)?;
    Ok(0)
}

fn passwd(path: &Path, term: &Terminal, save_to_keyring: bool, forget_keyring: bool) -> Outcome {
    let _lock = lock(path)?;
    let (ks, old) = open(path, term)?;
    let new = password::new_password(term, NEW_PASSWORD_ENV)?;
    ks.save(path, &new).map_err(from_keystore)?;
    let had_keyring_entry = os_keyring::load(path)?.is_some_and(|saved| {
        saved.expose_secret() == old.expose_secret() && !old.expose_secret().is_empty()
    });
    if forget_keyring || new.expose_secret().is_empty() {
        if os_keyring::forget(path)? {
            term.println("The keystore password was removed from the OS keyring.");
        }
    } else if save_to_keyring || had_keyring_entry {
        // A stale keyring entry would lock the operator out on the next command.
        os_keyring::save(path, &new)?;
        term.println("The new keystore password was saved in the OS keyring.");
    }
    term.println("coffer keystore password changed successfully.");
    Ok(0)
}

fn has_passwd(path: &Path, term: &Terminal) -> Outcome {
    if Keystore::is_password_protected(path).map_err(from_keystore)? {
        term.println("Keystore is password-protected");
        Ok(0)
    } else {
        term.println("Keystore is not password-protected");
        Ok(1)
    }
}

fn upgrade(path: &Path, term: &Terminal) -> Outcome {
    let _lock = lock(path)?;
    let (ks, password) = open(path, term)?;
    let from = ks.loaded_version();
    ks.save(path, &password).map_err(from_keystore)?;
    if from == CURRENT_VERSION {
        term.println(&format!(
            "Keystore is already at format version [{CURRENT_VERSION}]; rewritten with fresh salt and current key-derivation costs."
        ));
    } else {
        term.println(&format!(
            "Keystore upgraded from format version [{from}] to [{CURRENT_VERSION}]."
        ));
    }
    Ok(0)
}
