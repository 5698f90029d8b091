//! Credentials and the chain that finds them: the keystore's values for the named client,
//! else `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, else the shared
//! `~/.aws/credentials` and `~/.aws/config` files (profile from `AWS_PROFILE`). Web identity
//! and instance metadata are not implemented yet.
//!
//! The process environment and home directory are passed in as an [`Environment`], so the
//! chain is testable and nothing deep in the client reads global state.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

/// Static S3 credentials. `Debug` never shows the secret or the token.
#[derive(Clone)]
pub struct Credentials {
    access_key_id: String,
    secret_access_key: SecretString,
    session_token: Option<SecretString>,
}

impl Credentials {
    /// Builds credentials.
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: SecretString,
        session_token: Option<SecretString>,
    ) -> Credentials {
        Credentials {
            access_key_id: access_key_id.into(),
            secret_access_key,
            session_token,
        }
    }

    /// The access key id (not a secret, but shown only truncated in `Debug`).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    pub(crate) fn secret_access_key(&self) -> &SecretString {
        &self.secret_access_key
    }

    pub(crate) fn session_token(&self) -> Option<&SecretString> {
        self.session_token.as_ref()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: String = self.access_key_id.chars().take(4).collect();
        f.debug_struct("Credentials")
            .field("access_key_id", &format_args!("{shown}…"))
            .field("secret_access_key", &"[REDACTED]")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "[REDACTED]"),
            )
            .finish()
    }
}

/// Where the credentials in use came from (shown in logs and `_verify`-style answers).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialSource {
    /// `s3.client.<name>.access_key`/`secret_key` from the keystore.
    Keystore,
    /// `AWS_ACCESS_KEY_ID` and friends.
    Environment,
    /// A profile of the shared credentials/config files.
    Profile {
        /// Profile name.
        name: String,
        /// The file the keys were found in.
        file: PathBuf,
    },
}

/// The parts of the process environment the client consults, passed in explicitly.
/// `Debug` shows variable names only, never values.
#[derive(Clone, Default)]
pub struct Environment {
    vars: BTreeMap<String, Zeroizing<String>>,
    home: Option<PathBuf>,
}

impl Environment {
    /// The variables this crate reads.
    pub const VARIABLES: [&'static str; 7] = [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_CONFIG_FILE",
        "AWS_CA_BUNDLE",
    ];

    /// An empty environment (no variables, no home).
    pub fn empty() -> Environment {
        Environment::default()
    }

    /// Captures the relevant variables and `HOME` of this process.
    pub fn from_process() -> Environment {
        let mut env = Environment::empty();
        for name in Environment::VARIABLES {
            if let Ok(value) = std::env::var(name) {
                env = env.with_var(name, value);
            }
        }
        env.home = std::env::var_os("HOME").map(PathBuf::from);
        env
    }

    /// Adds a variable.
    #[must_use]
    pub fn with_var(mut self, name: &str, value: impl Into<String>) -> Environment {
        self.vars
            .insert(name.to_owned(), Zeroizing::new(value.into()));
        self
    }

    /// Sets the home directory (for `~/.aws`).
    #[must_use]
    pub fn with_home(mut self, home: impl Into<PathBuf>) -> Environment {
        self.home = Some(home.into());
        self
    }

    /// A variable's value; empty values count as unset, like the AWS CLI.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|v| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// The home directory.
    pub fn home(&self) -> Option<&Path> {
        self.home.as_deref()
    }
}

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Environment")
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .field("home", &self.home)
            .finish()
    }
}

/// Resolves the chain. `explicit` is what the keystore held for this client. Reads the
/// shared files (the only I/O here). The error says what was tried.
pub fn resolve(
    client: &str,
    explicit: Option<&Credentials>,
    env: &Environment,
) -> Result<(Credentials, CredentialSource), String> {
    if let Some(c) = explicit {
        return Ok((c.clone(), CredentialSource::Keystore));
    }
    match (
        env.var("AWS_ACCESS_KEY_ID"),
        env.var("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(id), Some(secret)) => {
            let creds = Credentials::new(
                id,
                SecretString::from(secret.to_owned()),
                env.var("AWS_SESSION_TOKEN")
                    .map(|t| SecretString::from(t.to_owned())),
            );
            return Ok((creds, CredentialSource::Environment));
        }
        (Some(_), None) => {
            return Err("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not".to_owned());
        }
        (None, Some(_)) => {
            return Err("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not".to_owned());
        }
        (None, None) => {}
    }
    let profile = env.var("AWS_PROFILE").unwrap_or("default").to_owned();
    let credentials_file = env
        .var("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| env.home().map(|h| h.join(".aws").join("credentials")));
    let config_file = env
        .var("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .or_else(|| env.home().map(|h| h.join(".aws").join("config")));
    let mut looked = Vec::new();
    for (path, is_config) in [(credentials_file, false), (config_file, true)] {
        let Some(path) = path else { continue };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => Zeroizing::new(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        looked.push(path.display().to_string());
        if let Some(c) = profile_credentials(&text, &profile, is_config)
            .map_err(|e| format!("{}: {e}", path.display()))?
        {
            return Ok((
                c,
                CredentialSource::Profile {
                    name: profile,
                    file: path,
                },
            ));
        }
    }
    Err(format!(
        "no credentials for s3 client [{client}]: add s3.client.{client}.access_key and \
         s3.client.{client}.secret_key to the keystore, or set AWS_ACCESS_KEY_ID and \
         AWS_SECRET_ACCESS_KEY, or put profile [{profile}] in ~/.aws/credentials (looked in: {}). \
         Web identity and instance metadata credentials are not supported yet",
        if looked.is_empty() {
            "no shared file found".to_owned()
        } else {
            looked.join(", ")
        }
    ))
}

/// A parsed INI file: section → key → value. Values are zeroized on drop.
type Ini = BTreeMap<String, BTreeMap<String, Zeroizing<String>>>;

/// Parses the AWS shared-file INI dialect: `[section]`, `key = value`, `#`/`;` comments,
/// indented continuation lines (nested sub-sections such as `s3 =`) ignored.
pub(crate) fn parse_ini(text: &str) -> Result<Ini, String> {
    let mut out = Ini::new();
    let mut section: Option<String> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            // Continuation of a nested value; we use no nested settings.
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            let name = rest
                .split_once(']')
                .map(|(name, _)| name.trim())
                .ok_or_else(|| format!("line {}: unclosed section header", n + 1))?;
            section = Some(name.to_owned());
            out.entry(name.to_owned()).or_default();
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            return Err(format!("line {}: expected key = value", n + 1));
        };
        let Some(section) = &section else {
            return Err(format!("line {}: setting outside of a [section]", n + 1));
        };
        let value = strip_inline_comment(value.trim());
        out.entry(section.clone()).or_default().insert(
            key.trim().to_ascii_lowercase(),
            Zeroizing::new(value.to_owned()),
        );
    }
    Ok(out)
}

fn strip_inline_comment(value: &str) -> &str {
    // The AWS CLI treats ` #` / ` ;` (preceded by whitespace) as a comment start.
    let bytes = value.as_bytes();
    for i in 1..bytes.len() {
        if (bytes[i] == b'#' || bytes[i] == b';') && bytes[i - 1].is_ascii_whitespace() {
            return value[..i].trim_end();
        }
    }
    value
}

/// Static keys of `profile` in a credentials file (`[name]`) or a config file
/// (`[profile name]`, and `[default]`).
pub(crate) fn profile_credentials(
    text: &str,
    profile: &str,
    is_config: bool,
) -> Result<Option<Credentials>, String> {
    let ini = parse_ini(text)?;
    let section = if is_config && profile != "default" {
        ini.get(&format!("profile {profile}"))
    } else {
        ini.get(profile)
            .or_else(|| is_config.then(|| ini.get("profile default")).flatten())
    };
    let Some(section) = section else {
        return Ok(None);
    };
    let id = section.get("aws_access_key_id").map(|v| v.as_str());
    let secret = section.get("aws_secret_access_key").map(|v| v.as_str());
    match (id, secret) {
        (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => {
            Ok(Some(Credentials::new(
                id,
                SecretString::from(secret.to_owned()),
                section
                    .get("aws_session_token")
                    .filter(|t| !t.is_empty())
                    .map(|t| SecretString::from(t.as_str().to_owned())),
            )))
        }
        (None, None) => Ok(None),
        _ => Err(format!(
            "profile [{profile}] has only one of aws_access_key_id and aws_secret_access_key"
        )),
    }
}

/// For signing: the secret's bytes, exposed only for the duration of a call.
pub(crate) fn expose(s: &SecretString) -> &str {
    s.expose_secret()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREDS: &str = "\
# comment
[default]
aws_access_key_id = AKIDDEFAULT
aws_secret_access_key = defaultsecret ; trailing comment

[prod]
aws_access_key_id=AKIDPROD
aws_secret_access_key=prod/secret+key
aws_session_token = tok
s3 =
    max_concurrent_requests = 20
";

    const CONFIG: &str = "\
[default]
region = us-west-2
[profile dev]
aws_access_key_id = AKIDDEV
aws_secret_access_key = devsecret
[profile half]
aws_access_key_id = AKIDHALF
";

    #[test]
    fn ini_parsing() {
        let ini = parse_ini(CREDS).unwrap();
        assert_eq!(
            ini["default"]["aws_secret_access_key"].as_str(),
            "defaultsecret"
        );
        assert_eq!(
            ini["prod"]["aws_secret_access_key"].as_str(),
            "prod/secret+key"
        );
        assert_eq!(ini["prod"]["s3"].as_str(), "");
        assert!(!ini["prod"].contains_key("max_concurrent_requests"));
        assert!(parse_ini("key = v").is_err());
        assert!(parse_ini("[open").is_err());
        assert!(parse_ini("[s]\nnovalue").is_err());
    }

    #[test]
    fn profiles_from_both_files() {
        let c = profile_credentials(CREDS, "prod", false).unwrap().unwrap();
        assert_eq!(c.access_key_id(), "AKIDPROD");
        assert_eq!(expose(c.secret_access_key()), "prod/secret+key");
        assert_eq!(c.session_token().map(expose), Some("tok"));
        assert!(
            profile_credentials(CREDS, "missing", false)
                .unwrap()
                .is_none()
        );
        let d = profile_credentials(CONFIG, "dev", true).unwrap().unwrap();
        assert_eq!(d.access_key_id(), "AKIDDEV");
        // In the config file, `[dev]` without the `profile ` prefix is not profile dev.
        assert!(
            profile_credentials(
                "[dev]\naws_access_key_id=a\naws_secret_access_key=b",
                "dev",
                true
            )
            .unwrap()
            .is_none()
        );
        assert!(
            profile_credentials(CONFIG, "default", true)
                .unwrap()
                .is_none()
        );
        assert!(profile_credentials(CONFIG, "half", true).is_err());
    }

    #[test]
    fn chain_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".aws")).unwrap();
        std::fs::write(dir.path().join(".aws/credentials"), CREDS).unwrap();
        std::fs::write(dir.path().join(".aws/config"), CONFIG).unwrap();
        let explicit = Credentials::new("AKIDKS", SecretString::from("kssecret"), None);
        let env = Environment::empty()
            .with_home(dir.path())
            .with_var("AWS_ACCESS_KEY_ID", "AKIDENV")
            .with_var("AWS_SECRET_ACCESS_KEY", "envsecret");
        let (c, s) = resolve("default", Some(&explicit), &env).unwrap();
        assert_eq!(
            (c.access_key_id(), s),
            ("AKIDKS", CredentialSource::Keystore)
        );
        let (c, s) = resolve("default", None, &env).unwrap();
        assert_eq!(
            (c.access_key_id(), s),
            ("AKIDENV", CredentialSource::Environment)
        );
        let files = Environment::empty().with_home(dir.path());
        let (c, s) = resolve("default", None, &files).unwrap();
        assert_eq!(c.access_key_id(), "AKIDDEFAULT");
        assert!(matches!(s, CredentialSource::Profile { name, .. } if name == "default"));
        let dev = files.clone().with_var("AWS_PROFILE", "dev");
        let (c, _) = resolve("default", None, &dev).unwrap();
        assert_eq!(
            c.access_key_id(),
            "AKIDDEV",
            "falls through to the config file"
        );
        let half = Environment::empty().with_var("AWS_ACCESS_KEY_ID", "x");
        assert!(
            resolve("c", None, &half)
                .unwrap_err()
                .contains("AWS_SECRET_ACCESS_KEY")
        );
        let none = resolve("backup", None, &Environment::empty()).unwrap_err();
        assert!(none.contains("s3.client.backup.access_key"), "{none}");
        let missing = files.with_var("AWS_PROFILE", "nope");
        assert!(
            resolve("c", None, &missing)
                .unwrap_err()
                .contains("profile [nope]")
        );
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            SecretString::from("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            Some(SecretString::from("SESSIONTOKENVALUE")),
        );
        let d = format!("{c:?}");
        assert!(!d.contains("wJalrXUtnFEMI"), "{d}");
        assert!(!d.contains("SESSIONTOKENVALUE"), "{d}");
        assert!(!d.contains("AKIAIOSFODNN7EXAMPLE"), "{d}");
        let env = Environment::empty().with_var("AWS_SECRET_ACCESS_KEY", "envsecretvalue");
        let d = format!("{env:?}");
        assert!(
            d.contains("AWS_SECRET_ACCESS_KEY") && !d.contains("envsecretvalue"),
            "{d}"
        );
    }
}
