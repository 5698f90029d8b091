//! Named client settings: `s3.client.<name>.*` from `coffer.yml` and the secure settings
//! from the keystore, parsed by pure functions that name the offending key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{SecretSlice, SecretString};

use crate::credentials::Credentials;
use crate::error::Error;

/// The prefix of every client setting.
pub const PREFIX: &str = "s3.client.";

/// The client that always exists.
pub const DEFAULT_CLIENT: &str = "default";

/// `http` or `https`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    #[default]
    Https,
}

impl Protocol {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Https => "https",
        }
    }

    pub(crate) fn is_default_port(self, port: u16) -> bool {
        matches!((self, port), (Protocol::Http, 80) | (Protocol::Https, 443))
    }
}

/// An HTTP proxy (`s3.client.<name>.proxy.*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxySettings {
    /// Proxy host.
    pub host: String,
    /// Proxy port (default 80).
    pub port: u16,
    /// Proxy scheme (default `http`).
    pub scheme: Protocol,
}

/// The non-secret settings of one named client. Holds no secret, so `Debug` is derived.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientSettings {
    /// `endpoint`: host, `host:port` or URL; default the AWS regional endpoint.
    pub endpoint: Option<String>,
    /// `protocol`: used when the endpoint has no scheme. Default `https`.
    pub protocol: Protocol,
    /// `region`: signing region; default derived from the endpoint, else `us-east-1`.
    pub region: Option<String>,
    /// `path_style_access`: default `false`.
    pub path_style_access: bool,
    /// `read_timeout`: default `50s`.
    pub read_timeout: Duration,
    /// `max_retries`: default 3.
    pub max_retries: u32,
    /// `max_connections`: default 50. Also the starting limit of adaptive concurrency.
    pub max_connections: usize,
    /// `proxy.host`, `proxy.port`, `proxy.scheme`.
    pub proxy: Option<ProxySettings>,
    /// `ca_certificate`: a PEM bundle trusted in addition to the system roots.
    pub ca_certificate: Option<PathBuf>,
    /// `insecure`: skip TLS verification (test setups only; logged loudly).
    pub insecure: bool,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            endpoint: None,
            protocol: Protocol::Https,
            region: None,
            path_style_access: false,
            read_timeout: Duration::from_secs(50),
            max_retries: 3,
            max_connections: 50,
            proxy: None,
            ca_certificate: None,
            insecure: false,
        }
    }
}

const KEYS: [&str; 12] = [
    "endpoint",
    "protocol",
    "region",
    "path_style_access",
    "read_timeout",
    "max_retries",
    "max_connections",
    "proxy.host",
    "proxy.port",
    "proxy.scheme",
    "ca_certificate",
    "insecure",
];

const SECURE_KEYS: [&str; 6] = [
    "access_key",
    "secret_key",
    "session_token",
    "proxy.username",
    "proxy.password",
    "ca_certificate",
];

/// Splits `s3.client.<name>.<setting>` for one of `known`; `None` if it is not one.
fn split_key<'a>(full: &'a str, known: &[&str]) -> Option<(&'a str, &'static str)> {
    let rest = full.strip_prefix(PREFIX)?;
    let (name, setting) = rest.split_once('.')?;
    let valid_name = !name.is_empty()
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
    if !valid_name {
        return None;
    }
    KEYS.iter()
        .chain(SECURE_KEYS.iter())
        .find(|k| **k == setting && known.contains(k))
        .map(|k| (name, *k))
}

/// Parses an Elasticsearch time value: `500ms`, `50s`, `1m`, `2h`, `1d`, `10micros`, `5nanos`.
pub fn parse_time(value: &str) -> Option<Duration> {
    let v = value.trim();
    let split = v.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "d" => Duration::from_secs(n.checked_mul(86_400)?),
        "h" => Duration::from_secs(n.checked_mul(3_600)?),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "micros" => Duration::from_micros(n),
        "nanos" => Duration::from_nanos(n),
        _ => return None,
    })
}

fn parse_bool(key: &str, value: &str) -> Result<bool, Error> {
    match value.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Error::config(format!(
            "failed to parse value [{value}] for setting [{key}]: only [true] or [false] are allowed"
        ))),
    }
}

fn parse_protocol(key: &str, value: &str) -> Result<Protocol, Error> {
    match value.trim().to_ascii_lowercase().as_str() {
        "http" => Ok(Protocol::Http),
        "https" => Ok(Protocol::Https),
        _ => Err(Error::config(format!(
            "failed to parse value [{value}] for setting [{key}]: expected [http] or [https]"
        ))),
    }
}

fn parse_number<T: std::str::FromStr + PartialOrd + fmt::Display>(
    key: &str,
    value: &str,
    min: &T,
) -> Result<T, Error> {
    match value.trim().parse::<T>() {
        Ok(n) if n >= *min => Ok(n),
        Ok(_) => Err(Error::config(format!(
            "failed to parse value [{value}] for setting [{key}]: must be >= {min}"
        ))),
        Err(_) => Err(Error::config(format!(
            "failed to parse value [{value}] for setting [{key}]: not a number"
        ))),
    }
}

/// Parses every `s3.client.*` key of `flat` (dotted keys, values as strings) into named
/// client settings. The `default` client is always present. An unknown key is an error that
/// names it (`unknown setting [s3.client.x.endpiont]`); so is a bad value.
pub fn parse_settings(
    flat: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, ClientSettings>, Error> {
    type ProxyParts = (Option<String>, Option<u16>, Option<Protocol>);
    let mut out: BTreeMap<String, ClientSettings> = BTreeMap::new();
    out.insert(DEFAULT_CLIENT.to_owned(), ClientSettings::default());
    let mut proxy_parts: BTreeMap<String, ProxyParts> = BTreeMap::new();
    for (key, value) in flat.range(PREFIX.to_owned()..) {
        if !key.starts_with(PREFIX) {
            break;
        }
        let Some((name, setting)) = split_key(key, &KEYS) else {
            if let Some(secure) = split_key(key, &SECURE_KEYS) {
                return Err(Error::config(format!(
                    "setting [{key}] is a secure setting and must be stored in the keystore, not \
                     in coffer.yml ({} s3.client.{}.{})",
                    "coffer keystore add", secure.0, secure.1
                )));
            }
            return Err(Error::config(format!("unknown setting [{key}]")));
        };
        let s = out.entry(name.to_owned()).or_default();
        match setting {
            "endpoint" => s.endpoint = Some(value.trim().to_owned()).filter(|v| !v.is_empty()),
            "protocol" => s.protocol = parse_protocol(key, value)?,
            "region" => s.region = Some(value.trim().to_owned()).filter(|v| !v.is_empty()),
            "path_style_access" => s.path_style_access = parse_bool(key, value)?,
            "read_timeout" => {
                s.read_timeout = parse_time(value).filter(|d| !d.is_zero()).ok_or_else(|| {
                    Error::config(format!(
                        "failed to parse value [{value}] for setting [{key}]: expected a positive \
                         time value with a unit (d, h, m, s, ms, micros, nanos), e.g. 50s"
                    ))
                })?;
            }
            "max_retries" => s.max_retries = parse_number(key, value, &0u32)?,
            "max_connections" => s.max_connections = parse_number(key, value, &1usize)?,
            "proxy.host" => {
                proxy_parts.entry(name.to_owned()).or_default().0 = Some(value.trim().to_owned());
            }
            "proxy.port" => {
                proxy_parts.entry(name.to_owned()).or_default().1 =
                    Some(parse_number(key, value, &1u16)?);
            }
            "proxy.scheme" => {
                proxy_parts.entry(name.to_owned()).or_default().2 =
                    Some(parse_protocol(key, value)?);
            }
            "ca_certificate" => s.ca_certificate = Some(PathBuf::from(value.trim())),
            "insecure" => s.insecure = parse_bool(key, value)?,
            _ => return Err(Error::config(format!("unknown setting [{key}]"))),
        }
    }
    for (name, (host, port, scheme)) in proxy_parts {
        let Some(host) = host.filter(|h| !h.is_empty()) else {
            return Err(Error::config(format!(
                "setting [{PREFIX}{name}.proxy.port] or [{PREFIX}{name}.proxy.scheme] requires \
                 [{PREFIX}{name}.proxy.host]"
            )));
        };
        if let Some(s) = out.get_mut(&name) {
            s.proxy = Some(ProxySettings {
                host,
                port: port.unwrap_or(80),
                scheme: scheme.unwrap_or(Protocol::Http),
            });
        }
    }
    Ok(out)
}

/// A value from the keystore: a string (`add`) or a file's bytes (`add-file`).
#[derive(Clone)]
pub enum SecureValue {
    /// A string setting.
    Text(SecretString),
    /// A file setting.
    Bytes(SecretSlice<u8>),
}

impl fmt::Debug for SecureValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecureValue::Text(_) => f.write_str("Text([REDACTED])"),
            SecureValue::Bytes(_) => f.write_str("Bytes([REDACTED])"),
        }
    }
}

impl SecureValue {
    fn text(&self, key: &str) -> Result<SecretString, Error> {
        use secrecy::ExposeSecret as _;
        match self {
            SecureValue::Text(s) => Ok(s.clone()),
            SecureValue::Bytes(b) => std::str::from_utf8(b.expose_secret())
                .map(|s| SecretString::from(s.trim_end_matches(['\r', '\n']).to_owned()))
                .map_err(|_| Error::config(format!("secure setting [{key}] is not UTF-8 text"))),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        use secrecy::ExposeSecret as _;
        match self {
            SecureValue::Text(s) => s.expose_secret().as_bytes().to_vec(),
            SecureValue::Bytes(b) => b.expose_secret().to_vec(),
        }
    }
}

/// The keystore's settings for one client. `Debug` redacts everything secret.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct SecureClientSettings {
    /// `access_key` + `secret_key` (+ `session_token`).
    pub credentials: Option<Credentials>,
    /// `proxy.username`.
    pub proxy_username: Option<SecretString>,
    /// `proxy.password`.
    pub proxy_password: Option<SecretString>,
    /// `ca_certificate` stored with `add-file`: PEM bytes (public data).
    pub ca_certificate: Option<Vec<u8>>,
}

impl fmt::Debug for SecureClientSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecureClientSettings")
            .field("credentials", &self.credentials)
            .field(
                "proxy_username",
                &self.proxy_username.as_ref().map(|_| "[REDACTED]"),
            )
            .field(
                "proxy_password",
                &self.proxy_password.as_ref().map(|_| "[REDACTED]"),
            )
            .field(
                "ca_certificate",
                &self
                    .ca_certificate
                    .as_ref()
                    .map(|c| format!("{} bytes", c.len())),
            )
            .finish()
    }
}

/// Parses the keystore entries under `s3.client.`; other entries are ignored (the keystore
/// holds more than S3 settings). An unknown `s3.client.*` entry is an error naming it.
pub fn parse_secure_settings(
    secure: &BTreeMap<String, SecureValue>,
) -> Result<BTreeMap<String, SecureClientSettings>, Error> {
    type Parts = (Option<String>, Option<SecretString>, Option<SecretString>);
    let mut keys: BTreeMap<String, Parts> = BTreeMap::new();
    let mut out: BTreeMap<String, SecureClientSettings> = BTreeMap::new();
    for (key, value) in secure {
        if !key.starts_with(PREFIX) {
            continue;
        }
        let Some((name, setting)) = split_key(key, &SECURE_KEYS) else {
            return Err(Error::config(format!("unknown secure setting [{key}]")));
        };
        let entry = out.entry(name.to_owned()).or_default();
        match setting {
            "access_key" => {
                use secrecy::ExposeSecret as _;
                keys.entry(name.to_owned()).or_default().0 =
                    Some(value.text(key)?.expose_secret().trim().to_owned());
            }
            "secret_key" => keys.entry(name.to_owned()).or_default().1 = Some(value.text(key)?),
            "session_token" => keys.entry(name.to_owned()).or_default().2 = Some(value.text(key)?),
            "proxy.username" => entry.proxy_username = Some(value.text(key)?),
            "proxy.password" => entry.proxy_password = Some(value.text(key)?),
            "ca_certificate" => entry.ca_certificate = Some(value.bytes()),
            _ => return Err(Error::config(format!("unknown secure setting [{key}]"))),
        }
    }
    for (name, (access, secret, token)) in keys {
        let creds = match (access, secret) {
            (Some(a), Some(s)) => Credentials::new(a, s, token),
            (Some(_), None) => {
                return Err(Error::config(format!(
                    "secure setting [{PREFIX}{name}.access_key] is set but \
                     [{PREFIX}{name}.secret_key] is missing from the keystore"
                )));
            }
            (None, Some(_)) => {
                return Err(Error::config(format!(
                    "secure setting [{PREFIX}{name}.secret_key] is set but \
                     [{PREFIX}{name}.access_key] is missing from the keystore"
                )));
            }
            (None, None) => {
                return Err(Error::config(format!(
                    "secure setting [{PREFIX}{name}.session_token] requires \
                     [{PREFIX}{name}.access_key] and [{PREFIX}{name}.secret_key]"
                )));
            }
        };
        if let Some(e) = out.get_mut(&name) {
            e.credentials = Some(creds);
        }
    }
    for (name, s) in &out {
        if s.proxy_username.is_some() != s.proxy_password.is_some() {
            return Err(Error::config(format!(
                "secure settings [{PREFIX}{name}.proxy.username] and \
                 [{PREFIX}{name}.proxy.password] must be set together"
            )));
        }
    }
    Ok(out)
}

/// Everything needed to build one named client.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The client's name.
    pub name: String,
    /// `coffer.yml` settings.
    pub settings: ClientSettings,
    /// Keystore settings.
    pub secure: SecureClientSettings,
}

impl ClientConfig {
    /// A config from parts (tests, programmatic use).
    pub fn new(name: &str, settings: ClientSettings, secure: SecureClientSettings) -> ClientConfig {
        ClientConfig {
            name: name.to_owned(),
            settings,
            secure,
        }
    }
}

/// Combines both sources into one config per client name. Secure settings for a name that
/// has no plain settings create that client too (as Elasticsearch does).
pub fn client_configs(
    flat: &BTreeMap<String, String>,
    secure: &BTreeMap<String, SecureValue>,
) -> Result<BTreeMap<String, ClientConfig>, Error> {
    let mut plain = parse_settings(flat)?;
    let mut secure = parse_secure_settings(secure)?;
    let names: Vec<String> = plain.keys().chain(secure.keys()).cloned().collect();
    let mut out = BTreeMap::new();
    for name in names {
        if out.contains_key(&name) {
            continue;
        }
        let settings = plain.remove(&name).unwrap_or_default();
        let sec = secure.remove(&name).unwrap_or_default();
        out.insert(name.clone(), ClientConfig::new(&name, settings, sec));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn time_units() {
        assert_eq!(parse_time("50s"), Some(Duration::from_secs(50)));
        assert_eq!(parse_time("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_time("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_time("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_time("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_time("7micros"), Some(Duration::from_micros(7)));
        assert_eq!(parse_time("9nanos"), Some(Duration::from_nanos(9)));
        for bad in ["50", "s", "1.5s", "-1s", "10 sec", ""] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn defaults_and_named_clients() {
        let all = parse_settings(&flat(&[
            ("s3.client.secondary.endpoint", "http://127.0.0.1:3900"),
            ("s3.client.secondary.region", "garage"),
            ("s3.client.secondary.path_style_access", "true"),
            ("s3.client.secondary.read_timeout", "1m"),
            ("s3.client.secondary.max_retries", "5"),
            ("s3.client.secondary.max_connections", "8"),
            ("s3.client.secondary.proxy.host", "proxy.local"),
            ("s3.client.secondary.proxy.port", "3128"),
            ("s3.client.secondary.ca_certificate", "/etc/ca.pem"),
            ("s3.client.secondary.insecure", "false"),
            ("s3.client.default.protocol", "http"),
            ("path.repo", "ignored: not ours"),
        ]))
        .unwrap();
        assert_eq!(all.keys().collect::<Vec<_>>(), vec!["default", "secondary"]);
        assert_eq!(all["default"].protocol, Protocol::Http);
        assert_eq!(all["default"].max_retries, 3);
        let s = &all["secondary"];
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:3900"));
        assert_eq!(s.region.as_deref(), Some("garage"));
        assert!(s.path_style_access);
        assert_eq!(s.read_timeout, Duration::from_secs(60));
        assert_eq!((s.max_retries, s.max_connections), (5, 8));
        assert_eq!(
            s.proxy,
            Some(ProxySettings {
                host: "proxy.local".into(),
                port: 3128,
                scheme: Protocol::Http
            })
        );
        assert_eq!(
            s.ca_certificate.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        let empty = parse_settings(&BTreeMap::new()).unwrap();
        assert_eq!(empty["default"], ClientSettings::default());
    }

    #[test]
    fn unknown_and_bad_settings_are_named() {
        let e = parse_settings(&flat(&[("s3.client.x.endpiont", "h")])).unwrap_err();
        assert_eq!(e.to_string(), "unknown setting [s3.client.x.endpiont]");
        let e = parse_settings(&flat(&[("s3.client.endpoint", "h")])).unwrap_err();
        assert_eq!(e.to_string(), "unknown setting [s3.client.endpoint]");
        let e = parse_settings(&flat(&[("s3.client.x.read_timeout", "50")])).unwrap_err();
        assert!(e.to_string().contains("[s3.client.x.read_timeout]"), "{e}");
        let e = parse_settings(&flat(&[("s3.client.x.max_retries", "-1")])).unwrap_err();
        assert!(e.to_string().contains("[s3.client.x.max_retries]"), "{e}");
        let e = parse_settings(&flat(&[("s3.client.x.max_connections", "0")])).unwrap_err();
        assert!(e.to_string().contains("must be >= 1"), "{e}");
        let e = parse_settings(&flat(&[("s3.client.x.path_style_access", "yes")])).unwrap_err();
        assert!(
            e.to_string().contains("[s3.client.x.path_style_access]"),
            "{e}"
        );
        let e = parse_settings(&flat(&[("s3.client.x.protocol", "ftp")])).unwrap_err();
        assert!(e.to_string().contains("[s3.client.x.protocol]"), "{e}");
        let e = parse_settings(&flat(&[("s3.client.x.proxy.port", "8080")])).unwrap_err();
        assert!(e.to_string().contains("proxy.host"), "{e}");
        let e = parse_settings(&flat(&[("s3.client.x.secret_key", "oops")])).unwrap_err();
        assert!(
            e.to_string().contains("must be stored in the keystore"),
            "{e}"
        );
        assert!(
            !e.to_string().contains("oops"),
            "the value must not be echoed"
        );
    }

    fn text(s: &str) -> SecureValue {
        SecureValue::Text(SecretString::from(s.to_owned()))
    }

    #[test]
    fn secure_settings() {
        let mut sec = BTreeMap::new();
        sec.insert("s3.client.default.access_key".to_owned(), text("AKIDX"));
        sec.insert(
            "s3.client.default.secret_key".to_owned(),
            text("topsecretvalue"),
        );
        sec.insert(
            "s3.client.default.session_token".to_owned(),
            text("tokenvalue"),
        );
        sec.insert(
            "s3.client.other.ca_certificate".to_owned(),
            SecureValue::Bytes(b"PEM".to_vec().into()),
        );
        sec.insert("s3.client.other.proxy.username".to_owned(), text("u"));
        sec.insert(
            "s3.client.other.proxy.password".to_owned(),
            text("proxypassvalue"),
        );
        sec.insert("keystore.seed".to_owned(), text("not ours"));
        let configs = client_configs(&BTreeMap::new(), &sec).unwrap();
        assert_eq!(configs.keys().collect::<Vec<_>>(), vec!["default", "other"]);
        let d = &configs["default"].secure;
        assert_eq!(d.credentials.as_ref().unwrap().access_key_id(), "AKIDX");
        assert_eq!(
            configs["other"].secure.ca_certificate.as_deref(),
            Some(&b"PEM"[..])
        );
        let dbg = format!("{configs:?} {sec:?}");
        for secret in ["topsecretvalue", "tokenvalue", "proxypassvalue"] {
            assert!(!dbg.contains(secret), "{secret} leaked in {dbg}");
        }

        let mut bad = BTreeMap::new();
        bad.insert("s3.client.x.acess_key".to_owned(), text("a"));
        assert_eq!(
            parse_secure_settings(&bad).unwrap_err().to_string(),
            "unknown secure setting [s3.client.x.acess_key]"
        );
        let mut half = BTreeMap::new();
        half.insert("s3.client.x.access_key".to_owned(), text("a"));
        assert!(
            parse_secure_settings(&half)
                .unwrap_err()
                .to_string()
                .contains("[s3.client.x.secret_key] is missing")
        );
        let mut token_only = BTreeMap::new();
        token_only.insert("s3.client.x.session_token".to_owned(), text("t"));
        assert!(parse_secure_settings(&token_only).is_err());
        let mut proxy_half = BTreeMap::new();
        proxy_half.insert("s3.client.x.proxy.username".to_owned(), text("u"));
        assert!(parse_secure_settings(&proxy_half).is_err());
    }
}
