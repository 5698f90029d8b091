//! Users and API keys as keystore entries (see `docs/keystore-format.md`, "Reserved
//! entries"). Only salted Argon2id hashes are stored; the plaintext of a password or of an
//! API key exists only while it is hashed or verified. Randomness and time are parameters,
//! so every function here is deterministic.

use std::collections::BTreeMap;
use std::fmt;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeDelta, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::EsError;

/// Every entry this module owns starts with this prefix.
pub const SECURITY_PREFIX: &str = "coffer.security.";
/// `coffer.security.users.<username>`.
pub const USERS_PREFIX: &str = "coffer.security.users.";
/// `coffer.security.api_keys.<id>`.
pub const API_KEYS_PREFIX: &str = "coffer.security.api_keys.";

/// Argon2id costs for new hashes: the second recommendation of RFC 9106 as OWASP words it
/// (19 MiB, 2 passes, 1 lane). A verification takes tens of milliseconds, which is why the
/// middleware caches successes.
pub const HASH_M_COST_KIB: u32 = 19 * 1024;
/// Passes, see [`HASH_M_COST_KIB`].
pub const HASH_T_COST: u32 = 2;
/// Lanes, see [`HASH_M_COST_KIB`].
pub const HASH_P_COST: u32 = 1;

// Bounds on costs read back from the keystore, so a damaged entry cannot make every
// authentication allocate gigabytes.
const MAX_M_COST_KIB: u32 = 256 * 1024;
const MAX_T_COST: u32 = 16;
const MAX_P_COST: u32 = 8;

/// Salt length for new hashes.
pub const SALT_LEN: usize = 16;
/// Random bytes in an API key id (20 characters once encoded, as Elasticsearch's ids).
pub const API_KEY_ID_BYTES: usize = 15;
/// Random bytes in an API key (256 bits).
pub const API_KEY_SECRET_BYTES: usize = 32;
/// Shortest password accepted (Elasticsearch's native realm minimum).
pub const MIN_PASSWORD_LEN: usize = 6;
/// Longest user name (Elasticsearch's limit).
pub const MAX_USERNAME_LEN: usize = 507;
/// Longest API key name (Elasticsearch's limit).
pub const MAX_API_KEY_NAME_LEN: usize = 1024;

/// The two roles. `monitor` reads everything and changes nothing; `manage` does
/// everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Every read: GET and HEAD on every endpoint, plus the read-only POSTs (`_count`).
    Monitor,
    /// Everything.
    Manage,
}

impl Role {
    /// The role's name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Monitor => "monitor",
            Self::Manage => "manage",
        }
    }

    /// Parses `monitor` or `manage`.
    pub fn parse(s: &str) -> Result<Self, EsError> {
        match s {
            "monitor" => Ok(Self::Monitor),
            "manage" => Ok(Self::Manage),
            other => Err(EsError::illegal_argument(format!(
                "unknown role [{other}]: coffer has the roles [monitor] and [manage]"
            ))),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = EsError;
    fn from_str(s: &str) -> Result<Self, EsError> {
        Self::parse(s)
    }
}

/// An Argon2id hash in PHC string form. Not the secret itself, but an offline-guessable
/// derivative: it never appears in `Debug`, logs or responses, and is zeroized on drop.
#[derive(Clone)]
pub struct SecretHash(SecretString);

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(<redacted>)")
    }
}

impl SecretHash {
    /// Hashes `secret` with a fresh `salt`.
    pub fn new(secret: &[u8], salt: &[u8; SALT_LEN]) -> Result<Self, EsError> {
        let salt = SaltString::encode_b64(salt)
            .map_err(|e| EsError::internal(format!("encoding a salt: {e}")))?;
        let params = Params::new(HASH_M_COST_KIB, HASH_T_COST, HASH_P_COST, None)
            .map_err(|e| EsError::internal(format!("argon2 parameters: {e}")))?;
        let hash = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(secret, &salt)
            .map_err(|e| EsError::internal(format!("hashing: {e}")))?;
        Ok(Self(SecretString::from(hash.to_string())))
    }

    /// Checks a stored PHC string: Argon2id, with salt and output, costs within bounds.
    fn parse(phc: String) -> Result<Self, String> {
        let out = Self(SecretString::from(phc));
        {
            let hash = PasswordHash::new(out.0.expose_secret())
                .map_err(|_| "the hash is not a PHC string".to_owned())?;
            if hash.algorithm != Algorithm::Argon2id.ident() {
                return Err("the hash is not Argon2id".to_owned());
            }
            if hash.salt.is_none() || hash.hash.is_none() {
                return Err("the hash has no salt or no output".to_owned());
            }
            let params = Params::try_from(&hash)
                .map_err(|_| "the hash has invalid parameters".to_owned())?;
            if params.m_cost() > MAX_M_COST_KIB
                || params.t_cost() > MAX_T_COST
                || params.p_cost() > MAX_P_COST
            {
                return Err("the hash's costs are out of bounds".to_owned());
            }
        }
        Ok(out)
    }

    /// Whether `secret` hashes to this value. Slow by design; the comparison of the
    /// outputs is constant-time (`password-hash`'s `Output`).
    pub fn verify(&self, secret: &[u8]) -> bool {
        let Ok(hash) = PasswordHash::new(self.0.expose_secret()) else {
            return false;
        };
        Argon2::default().verify_password(secret, &hash).is_ok()
    }

    fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// Checks a user name: Elasticsearch's rule (1 to 507 characters, no leading or trailing
/// space) narrowed to `[A-Za-z0-9_.-]` so the name is also a valid keystore entry name, and
/// not beginning with `_` (Elasticsearch reserves those names).
pub fn validate_username(name: &str) -> Result<(), EsError> {
    let ok = (1..=MAX_USERNAME_LEN).contains(&name.len())
        && !name.starts_with('_')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(EsError::illegal_argument(format!(
            "Invalid username [{}]: coffer user names are 1 to {MAX_USERNAME_LEN} characters from [A-Za-z0-9_.-] and do not begin with [_]",
            printable(name)
        )))
    }
}

/// Checks an API key name as Elasticsearch does: required, at most 1024 characters, no
/// leading or trailing whitespace, not beginning with `_`; coffer also refuses control
/// characters, so names print safely.
pub fn validate_api_key_name(name: &str) -> Result<(), EsError> {
    let problem = if name.is_empty() {
        Some("api key name is required".to_owned())
    } else if name.chars().count() > MAX_API_KEY_NAME_LEN {
        Some(format!(
            "api key name may not be more than [{MAX_API_KEY_NAME_LEN}] characters long"
        ))
    } else if name.trim() != name {
        Some("api key name may not begin or end with whitespace".to_owned())
    } else if name.starts_with('_') {
        Some("api key name may not begin with an underscore".to_owned())
    } else if name.chars().any(char::is_control) {
        Some("api key name may not contain control characters".to_owned())
    } else {
        None
    };
    match problem {
        Some(p) => Err(EsError::validation(&[p])),
        None => Ok(()),
    }
}

fn validate_password(password: &str) -> Result<(), EsError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(EsError::illegal_argument(format!(
            "passwords must be at least [{MIN_PASSWORD_LEN}] characters long"
        )));
    }
    if password.chars().any(char::is_control) {
        return Err(EsError::illegal_argument(
            "passwords may not contain control characters",
        ));
    }
    Ok(())
}

/// Names from untrusted input, made safe to print in a message.
fn printable(s: &str) -> String {
    s.chars()
        .take(MAX_USERNAME_LEN)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredUser {
    role: Role,
    hash: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredApiKey {
    name: String,
    role: Role,
    hash: String,
    /// Milliseconds since the epoch.
    creation: i64,
    /// Milliseconds since the epoch.
    expiration: Option<i64>,
    invalidated: bool,
}

/// A user: name, role and password hash.
#[derive(Debug, Clone)]
pub struct UserRecord {
    /// The user name.
    pub name: String,
    /// The role.
    pub role: Role,
    hash: SecretHash,
}

impl UserRecord {
    /// A new user with `password` hashed under `salt` (fresh random bytes from the caller).
    pub fn new(
        name: &str,
        role: Role,
        password: &SecretString,
        salt: &[u8; SALT_LEN],
    ) -> Result<Self, EsError> {
        validate_username(name)?;
        validate_password(password.expose_secret())?;
        Ok(Self {
            name: name.to_owned(),
            role,
            hash: SecretHash::new(password.expose_secret().as_bytes(), salt)?,
        })
    }

    /// The keystore entry name.
    pub fn entry_name(&self) -> String {
        format!("{USERS_PREFIX}{}", self.name)
    }

    /// The keystore entry value (JSON holding the role and the hash).
    pub fn entry_value(&self) -> Zeroizing<String> {
        let stored = StoredUser {
            role: self.role,
            hash: self.hash.expose().to_owned(),
        };
        let out = Zeroizing::new(serde_json::to_string(&stored).unwrap_or_default());
        zeroize_stored_hash(stored.hash);
        out
    }

    fn from_entry(name: &str, value: &str) -> Result<Self, String> {
        validate_username(name).map_err(|e| e.reason.clone())?;
        let stored: StoredUser = serde_json::from_str(value)
            .map_err(|e| format!("not a user record: {}", e.classify_text()))?;
        Ok(Self {
            name: name.to_owned(),
            role: stored.role,
            hash: SecretHash::parse(stored.hash)?,
        })
    }

    /// Whether `password` is this user's.
    pub fn verify(&self, password: &[u8]) -> bool {
        self.hash.verify(password)
    }
}

/// An API key as stored: never the key itself.
#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    /// Its id (public: it is half of the credential's encoding).
    pub id: String,
    /// Its name (not unique, as in Elasticsearch).
    pub name: String,
    /// Its role.
    pub role: Role,
    /// When it was created.
    pub creation: DateTime<Utc>,
    /// When it stops working, if ever.
    pub expiration: Option<DateTime<Utc>>,
    /// Invalidated keys are kept (and listed) but never authenticate.
    pub invalidated: bool,
    hash: SecretHash,
}

/// The random input of a new API key, drawn by the caller.
pub struct ApiKeyRandom {
    /// For the id.
    pub id: [u8; API_KEY_ID_BYTES],
    /// For the key itself.
    pub key: Zeroizing<[u8; API_KEY_SECRET_BYTES]>,
    /// For the hash's salt.
    pub salt: [u8; SALT_LEN],
}

impl fmt::Debug for ApiKeyRandom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeyRandom(<redacted>)")
    }
}

/// A key just created: the record to store and the key to show once.
pub struct NewApiKey {
    /// What goes into the keystore.
    pub record: ApiKeyRecord,
    key: SecretString,
}

impl fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewApiKey")
            .field("record", &self.record)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl NewApiKey {
    /// The key (shown once, at creation).
    pub fn api_key(&self) -> &SecretString {
        &self.key
    }

    /// `base64(id:api_key)`, what goes after `Authorization: ApiKey `.
    pub fn encoded(&self) -> SecretString {
        let joined = Zeroizing::new(format!("{}:{}", self.record.id, self.key.expose_secret()));
        SecretString::from(STANDARD.encode(joined.as_bytes()))
    }

    /// Elasticsearch's create-API-key response: `id`, `name`, `expiration` (when set,
    /// milliseconds), `api_key`, `encoded`. It holds the key: print it once, log it never.
    pub fn response_json(&self) -> Zeroizing<String> {
        let mut v = serde_json::Map::new();
        v.insert("id".into(), self.record.id.clone().into());
        v.insert("name".into(), self.record.name.clone().into());
        if let Some(e) = self.record.expiration {
            v.insert("expiration".into(), e.timestamp_millis().into());
        }
        v.insert("api_key".into(), self.key.expose_secret().into());
        v.insert("encoded".into(), self.encoded().expose_secret().into());
        let value = serde_json::Value::Object(v);
        let text = Zeroizing::new(value.to_string());
        zeroize_json(value);
        text
    }
}

fn zeroize_stored_hash(s: String) {
    drop(Zeroizing::new(s));
}

fn zeroize_json(v: serde_json::Value) {
    if let serde_json::Value::Object(m) = v {
        for (_, v) in m {
            if let serde_json::Value::String(s) = v {
                drop(Zeroizing::new(s));
            }
        }
    }
}

impl ApiKeyRecord {
    /// A new key named `name` with `role`, created `now`, expiring after `expires_in` when
    /// given.
    pub fn create(
        name: &str,
        role: Role,
        now: DateTime<Utc>,
        expires_in: Option<TimeDelta>,
        random: &ApiKeyRandom,
    ) -> Result<NewApiKey, EsError> {
        validate_api_key_name(name)?;
        let expiration = match expires_in {
            None => None,
            Some(d) if d <= TimeDelta::zero() => {
                return Err(EsError::illegal_argument("[expiration] must be positive"));
            }
            Some(d) => Some(now.checked_add_signed(d).ok_or_else(|| {
                EsError::illegal_argument("[expiration] is too far in the future")
            })?),
        };
        let id = URL_SAFE_NO_PAD.encode(random.id);
        let key = SecretString::from(URL_SAFE_NO_PAD.encode(*random.key));
        let hash = SecretHash::new(key.expose_secret().as_bytes(), &random.salt)?;
        Ok(NewApiKey {
            record: Self {
                id,
                name: name.to_owned(),
                role,
                creation: now,
                expiration,
                invalidated: false,
                hash,
            },
            key,
        })
    }

    /// The keystore entry name.
    pub fn entry_name(&self) -> String {
        format!("{API_KEYS_PREFIX}{}", self.id)
    }

    /// The keystore entry value (JSON; the hash, never the key).
    pub fn entry_value(&self) -> Zeroizing<String> {
        let stored = StoredApiKey {
            name: self.name.clone(),
            role: self.role,
            hash: self.hash.expose().to_owned(),
            creation: self.creation.timestamp_millis(),
            expiration: self.expiration.map(|e| e.timestamp_millis()),
            invalidated: self.invalidated,
        };
        let out = Zeroizing::new(serde_json::to_string(&stored).unwrap_or_default());
        zeroize_stored_hash(stored.hash);
        out
    }

    fn from_entry(id: &str, value: &str) -> Result<Self, String> {
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
        {
            return Err("the API key id is not base64url".to_owned());
        }
        let stored: StoredApiKey = serde_json::from_str(value)
            .map_err(|e| format!("not an API key record: {}", e.classify_text()))?;
        let millis = |ms: i64| {
            DateTime::from_timestamp_millis(ms).ok_or_else(|| "a time is out of range".to_owned())
        };
        Ok(Self {
            id: id.to_owned(),
            name: stored.name,
            role: stored.role,
            creation: millis(stored.creation)?,
            expiration: stored.expiration.map(millis).transpose()?,
            invalidated: stored.invalidated,
            hash: SecretHash::parse(stored.hash)?,
        })
    }

    /// Whether the key has expired at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expiration.is_some_and(|e| now >= e)
    }

    /// Whether `key` is this API key's secret.
    pub fn verify(&self, key: &[u8]) -> bool {
        self.hash.verify(key)
    }
}

/// serde_json errors can quote the input; only the category is safe to show for a value
/// that holds a hash.
trait ClassifyText {
    fn classify_text(&self) -> &'static str;
}

impl ClassifyText for serde_json::Error {
    fn classify_text(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "invalid JSON",
            serde_json::error::Category::Data => "unexpected fields or types",
            serde_json::error::Category::Eof => "truncated JSON",
        }
    }
}

/// All users and API keys, as read from the keystore.
#[derive(Debug, Clone, Default)]
pub struct CredentialStore {
    users: BTreeMap<String, UserRecord>,
    api_keys: BTreeMap<String, ApiKeyRecord>,
}

impl CredentialStore {
    /// No users, no keys.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Builds the store from keystore entries (name, string value); entries outside
    /// [`SECURITY_PREFIX`] are ignored. A damaged reserved entry is an error naming the
    /// entry (never its value): starting with part of the credentials silently missing
    /// would be worse.
    pub fn from_entries<'a>(
        entries: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Result<Self, EsError> {
        let mut store = Self::default();
        for (name, value) in entries {
            let Some(rest) = name.strip_prefix(SECURITY_PREFIX) else {
                continue;
            };
            let bad = |why: String| {
                EsError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "security_exception",
                    format!("keystore entry [{name}] is not valid: {why}"),
                )
            };
            let value = value.ok_or_else(|| bad("it is not a string setting".to_owned()))?;
            if let Some(user) = name.strip_prefix(USERS_PREFIX) {
                let record = UserRecord::from_entry(user, value).map_err(bad)?;
                store.users.insert(record.name.clone(), record);
            } else if let Some(id) = name.strip_prefix(API_KEYS_PREFIX) {
                let record = ApiKeyRecord::from_entry(id, value).map_err(bad)?;
                store.api_keys.insert(record.id.clone(), record);
            } else {
                let _ = rest;
                return Err(bad(format!(
                    "coffer reserves [{SECURITY_PREFIX}*] for [{USERS_PREFIX}<name>] and [{API_KEYS_PREFIX}<id>]"
                )));
            }
        }
        Ok(store)
    }

    /// Whether there is neither a user nor an API key (invalidated keys count: they
    /// show that the operator set up authentication).
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.api_keys.is_empty()
    }

    /// Users by name.
    pub fn users(&self) -> &BTreeMap<String, UserRecord> {
        &self.users
    }

    /// API keys by id.
    pub fn api_keys(&self) -> &BTreeMap<String, ApiKeyRecord> {
        &self.api_keys
    }

    /// One user.
    pub fn user(&self, name: &str) -> Option<&UserRecord> {
        self.users.get(name)
    }

    /// One API key.
    pub fn api_key(&self, id: &str) -> Option<&ApiKeyRecord> {
        self.api_keys.get(id)
    }
}

/// Parses an Elasticsearch time value for `expiration`: `<n>d`, `h`, `m`, `s` or `ms`.
pub fn parse_expiration(s: &str) -> Result<TimeDelta, EsError> {
    let bad = || {
        EsError::parse(format!(
            "failed to parse setting [expiration] with value [{s}] as a time value: use a number with a unit among d, h, m, s, ms (e.g. 30d)"
        ))
    };
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().map_err(|_| bad())?;
    let d = match unit {
        "d" => TimeDelta::try_days(n),
        "h" => TimeDelta::try_hours(n),
        "m" => TimeDelta::try_minutes(n),
        "s" => TimeDelta::try_seconds(n),
        "ms" => TimeDelta::try_milliseconds(n),
        _ => None,
    }
    .ok_or_else(bad)?;
    if d <= TimeDelta::zero() {
        return Err(EsError::illegal_argument("[expiration] must be positive"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(seed: u8) -> ApiKeyRandom {
        ApiKeyRandom {
            id: [seed; API_KEY_ID_BYTES],
            key: Zeroizing::new([seed.wrapping_add(1); API_KEY_SECRET_BYTES]),
            salt: [seed.wrapping_add(2); SALT_LEN],
        }
    }

    #[test]
    fn users_round_trip_through_entries_and_verify() {
        let pw = SecretString::from("correct horse".to_owned());
        let u = UserRecord::new("alice", Role::Manage, &pw, &[7; SALT_LEN]).unwrap();
        let value = u.entry_value();
        assert!(!value.contains("correct horse"));
        assert!(
            value.contains("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            *value
        );
        let name = u.entry_name();
        assert_eq!(name, "coffer.security.users.alice");
        let store = CredentialStore::from_entries([(name.as_str(), Some(value.as_str()))]).unwrap();
        let back = store.user("alice").unwrap();
        assert_eq!(back.role, Role::Manage);
        assert!(back.verify(b"correct horse"));
        assert!(!back.verify(b"correct horsE"));
        assert!(!back.verify(b""));
    }

    #[test]
    fn salts_make_equal_passwords_hash_differently() {
        let pw = SecretString::from("samepassword".to_owned());
        let a = UserRecord::new("a", Role::Monitor, &pw, &[1; SALT_LEN]).unwrap();
        let b = UserRecord::new("b", Role::Monitor, &pw, &[2; SALT_LEN]).unwrap();
        assert_ne!(a.hash.expose(), b.hash.expose());
    }

    #[test]
    fn api_keys_round_trip_and_expire() {
        let now = DateTime::from_timestamp_millis(1_700_000_000_000).unwrap();
        let created = ApiKeyRecord::create(
            "ci",
            Role::Monitor,
            now,
            Some(parse_expiration("1d").unwrap()),
            &random(9),
        )
        .unwrap();
        let rec = &created.record;
        assert_eq!(rec.id.len(), 20);
        let json: serde_json::Value = serde_json::from_str(&created.response_json()).unwrap();
        let key = created.api_key().expose_secret().to_owned();
        assert_eq!(json["api_key"], key.as_str());
        assert_eq!(json["id"], rec.id.as_str());
        let decoded = STANDARD.decode(json["encoded"].as_str().unwrap()).unwrap();
        assert_eq!(decoded, format!("{}:{key}", rec.id).into_bytes());
        assert_eq!(
            json["expiration"],
            now.timestamp_millis() + 86_400_000,
            "{json}"
        );
        let value = rec.entry_value();
        assert!(!value.contains(&key));
        let name = rec.entry_name();
        let store = CredentialStore::from_entries([(name.as_str(), Some(value.as_str()))]).unwrap();
        let back = store.api_key(&rec.id).unwrap();
        assert!(back.verify(key.as_bytes()));
        assert!(!back.verify(b"nope"));
        assert!(!back.is_expired(now));
        assert!(back.is_expired(now + TimeDelta::days(1)));
        assert_eq!(back.name, "ci");
        assert!(!back.invalidated);
    }

    #[test]
    fn debug_output_never_holds_secrets_or_hashes() {
        let pw = SecretString::from("hunter2-password".to_owned());
        let u = UserRecord::new("bob", Role::Monitor, &pw, &[3; SALT_LEN]).unwrap();
        let now = DateTime::from_timestamp_millis(0).unwrap();
        let k = ApiKeyRecord::create("k", Role::Manage, now, None, &random(4)).unwrap();
        let key = k.api_key().expose_secret().to_owned();
        let store = CredentialStore::from_entries([
            (u.entry_name().as_str(), Some(u.entry_value().as_str())),
            (
                k.record.entry_name().as_str(),
                Some(k.record.entry_value().as_str()),
            ),
        ])
        .unwrap();
        for shown in [
            format!("{u:?}"),
            format!("{k:?}"),
            format!("{store:?}"),
            format!("{:?}", random(4)),
        ] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(!shown.contains(&key), "{shown}");
            assert!(!shown.contains("argon2"), "{shown}");
            assert!(!shown.contains(u.hash.expose()), "{shown}");
        }
    }

    #[test]
    fn names_and_passwords_are_validated() {
        for good in ["alice", "a", "svc.backup-1", "A_b"] {
            validate_username(good).unwrap();
        }
        for bad in ["", "_x", "a b", "a:b", "é", "a/b", &"x".repeat(508)] {
            assert!(validate_username(bad).is_err(), "{bad}");
        }
        validate_api_key_name("nightly backups").unwrap();
        for bad in ["", " x", "x ", "_x", "a\nb"] {
            assert!(validate_api_key_name(bad).is_err(), "{bad:?}");
        }
        let short = SecretString::from("12345".to_owned());
        let e = UserRecord::new("a", Role::Manage, &short, &[0; SALT_LEN]).unwrap_err();
        assert!(e.reason.contains("at least [6]"), "{}", e.reason);
    }

    #[test]
    fn damaged_entries_are_refused_without_quoting_them() {
        let e = CredentialStore::from_entries([(
            "coffer.security.users.x",
            Some("{\"role\":\"manage\",\"hash\":\"secretish\"}"),
        )])
        .unwrap_err();
        assert!(
            e.reason.contains("[coffer.security.users.x]"),
            "{}",
            e.reason
        );
        assert!(!e.reason.contains("secretish"), "{}", e.reason);
        let e = CredentialStore::from_entries([(
            "coffer.security.users.x",
            Some("{\"role\":\"root\",\"hash\":\"secretish\"}"),
        )])
        .unwrap_err();
        assert!(!e.reason.contains("secretish"), "{}", e.reason);
        let e = CredentialStore::from_entries([("coffer.security.other", Some("{}"))]).unwrap_err();
        assert!(e.reason.contains("reserves"), "{}", e.reason);
        // Entries of other families are not ours.
        let s =
            CredentialStore::from_entries([("s3.client.default.access_key", Some("x"))]).unwrap();
        assert!(s.is_empty());
        // Costs out of bounds are refused (a damaged entry must not allocate gigabytes).
        let e = CredentialStore::from_entries([(
            "coffer.security.users.x",
            Some("{\"role\":\"manage\",\"hash\":\"$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g\"}"),
        )])
        .unwrap_err();
        assert!(e.reason.contains("out of bounds"), "{}", e.reason);
    }

    #[test]
    fn expirations_parse() {
        assert_eq!(parse_expiration("30d").unwrap(), TimeDelta::days(30));
        assert_eq!(parse_expiration("2h").unwrap(), TimeDelta::hours(2));
        assert_eq!(parse_expiration("15m").unwrap(), TimeDelta::minutes(15));
        assert_eq!(parse_expiration("10s").unwrap(), TimeDelta::seconds(10));
        assert_eq!(
            parse_expiration("500ms").unwrap(),
            TimeDelta::milliseconds(500)
        );
        for bad in [
            "",
            "d",
            "30",
            "30y",
            "-1d",
            "0d",
            "1.5d",
            "99999999999999999d",
        ] {
            assert!(parse_expiration(bad).is_err(), "{bad}");
        }
    }
}
