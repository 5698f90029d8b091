//! `coffer.yml`: flat dotted keys or nested YAML (as in `elasticsearch.yml`), overridden by
//! `-E key=value`. Every key is checked against the settings coffer knows, and a typo is a
//! start-up error that names it: a setting silently ignored is a backup silently misconfigured.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

/// The configuration file's name inside the config directory.
pub const CONFIG_FILE_NAME: &str = "coffer.yml";

/// A setting's raw value: a scalar, or a list (only `path.repo` takes one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Scalar(String),
    List(Vec<String>),
}

/// All settings, by their flat dotted key.
#[derive(Debug, Default, Clone)]
pub struct Settings {
    values: BTreeMap<String, Value>,
}

/// A configuration problem, naming the key and the file where there is one.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn err(message: impl Into<String>) -> ConfigError {
    ConfigError(message.into())
}

const FIXED_KEYS: &[&str] = &[
    "node.name",
    "cluster.name",
    "http.host",
    "http.port",
    "http.auth.enabled",
    "http.tls.certificate",
    "http.tls.key",
    "path.data",
    "path.repo",
];
const LIST_KEYS: &[&str] = &["path.repo"];
const INDEX_SUFFIXES: &[&str] = &["path", "number_of_shards"];
/// Known `s3.client.<name>.*` suffixes, used only to suggest a correction for a typo (the
/// client crate decides what is valid).
const S3_CLIENT_SUFFIXES: &[&str] = &[
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
const S3_CLIENT_SECURE_SUFFIXES: &[&str] = &[
    "access_key",
    "secret_key",
    "session_token",
    "proxy.username",
    "proxy.password",
];

impl Settings {
    /// Reads `coffer.yml` from `config_dir` when present, then applies `-E` overrides.
    pub fn load(config_dir: &Path, overrides: &[String]) -> Result<Self, ConfigError> {
        let file = config_dir.join(CONFIG_FILE_NAME);
        let mut settings = match std::fs::read_to_string(&file) {
            Ok(text) => {
                Self::parse_yaml(&text).map_err(|e| err(format!("{}: {}", file.display(), e.0)))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::default(),
            Err(e) => return Err(err(format!("reading {}: {e}", file.display()))),
        };
        for o in overrides {
            let (key, value) = o
                .split_once('=')
                .ok_or_else(|| err(format!("-E expects key=value, got [{o}]")))?;
            let key = key.trim();
            let value = if LIST_KEYS.contains(&key) {
                Value::List(
                    value
                        .split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect(),
                )
            } else {
                Value::Scalar(value.to_owned())
            };
            check_key(key)?;
            settings.values.insert(key.to_owned(), value);
        }
        settings.check_s3_clients()?;
        Ok(settings)
    }

    /// Parses the YAML text of `coffer.yml` into flat keys and checks every key.
    pub fn parse_yaml(text: &str) -> Result<Self, ConfigError> {
        let docs =
            YamlLoader::load_from_str(text).map_err(|e| err(format!("invalid YAML: {e}")))?;
        let mut values = BTreeMap::new();
        match docs.as_slice() {
            [] | [Yaml::Null] => {}
            [Yaml::Hash(_)] => flatten("", &docs[0], &mut values)?,
            [_] => return Err(err("the top level must be a mapping of settings")),
            _ => return Err(err("expected one YAML document")),
        }
        for key in values.keys() {
            check_key(key)?;
        }
        Ok(Self { values })
    }

    /// Every scalar setting whose key starts with `prefix`, flat (lists joined with commas).
    pub fn with_prefix(&self, prefix: &str) -> BTreeMap<String, String> {
        self.values
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| {
                let v = match v {
                    Value::Scalar(s) => s.clone(),
                    Value::List(l) => l.join(","),
                };
                (k.clone(), v)
            })
            .collect()
    }

    /// Checks the `s3.client.*` settings as a whole with the S3 client's own parser (the
    /// one that will use them), so values and combinations are validated at start-up.
    pub fn check_s3_clients(&self) -> Result<(), ConfigError> {
        coffer_client::settings::parse_settings(&self.with_prefix(coffer_client::settings::PREFIX))
            .map(|_| ())
            .map_err(|e| err(e.to_string()))
    }

    /// A scalar setting's value.
    pub fn get(&self, key: &str) -> Result<Option<&str>, ConfigError> {
        match self.values.get(key) {
            None => Ok(None),
            Some(Value::Scalar(s)) => Ok(Some(s)),
            Some(Value::List(_)) => Err(err(format!(
                "setting [{key}] takes a single value, not a list"
            ))),
        }
    }

    /// A list setting's values (a scalar counts as a one-element list).
    pub fn get_list(&self, key: &str) -> Vec<String> {
        match self.values.get(key) {
            None => Vec::new(),
            Some(Value::Scalar(s)) => vec![s.clone()],
            Some(Value::List(l)) => l.clone(),
        }
    }

    /// A setting parsed with `FromStr`, naming the key when the value does not parse.
    pub fn parse<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, ConfigError>
    where
        T::Err: fmt::Display,
    {
        self.get(key)?
            .map(|v| {
                v.parse()
                    .map_err(|e| err(format!("invalid value [{v}] for setting [{key}]: {e}")))
            })
            .transpose()
    }
}

fn flatten(
    prefix: &str,
    node: &Yaml,
    out: &mut BTreeMap<String, Value>,
) -> Result<(), ConfigError> {
    let Yaml::Hash(map) = node else {
        unreachable!("flatten is only called on mappings")
    };
    for (k, v) in map {
        let part = scalar_text(k)
            .ok_or_else(|| err(format!("setting keys must be strings (under [{prefix}])")))?;
        let key = if prefix.is_empty() {
            part
        } else {
            format!("{prefix}.{part}")
        };
        let value = match v {
            Yaml::Hash(_) => {
                flatten(&key, v, out)?;
                continue;
            }
            // As in Elasticsearch, a null value leaves the setting at its default.
            Yaml::Null => continue,
            Yaml::Array(items) => Value::List(
                items
                    .iter()
                    .map(|i| {
                        scalar_text(i).ok_or_else(|| {
                            err(format!("setting [{key}] must be a list of plain values"))
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
            other => Value::Scalar(
                scalar_text(other)
                    .ok_or_else(|| err(format!("setting [{key}] has an unsupported value")))?,
            ),
        };
        if out.insert(key.clone(), value).is_some() {
            return Err(err(format!("setting [{key}] is given more than once")));
        }
    }
    Ok(())
}

fn scalar_text(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn is_name_segment(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

/// Accepts only the keys coffer uses; for anything else the error names the key and, when a
/// known key is close, suggests it.
fn check_key(key: &str) -> Result<(), ConfigError> {
    if FIXED_KEYS.contains(&key) {
        return Ok(());
    }
    if let Some(rest) = key.strip_prefix("indices.")
        && let Some((name, suffix)) = rest.split_once('.')
        && !name.is_empty()
        && INDEX_SUFFIXES.contains(&suffix)
    {
        return Ok(());
    }
    if let Some(rest) = key.strip_prefix("s3.client.")
        && let Some((name, suffix)) = rest.split_once('.')
        && is_name_segment(name)
    {
        if S3_CLIENT_SECURE_SUFFIXES.contains(&suffix) {
            return Err(err(format!(
                "setting [{key}] is a secure setting and cannot be set in coffer.yml: store it in the keystore with 'coffer keystore add {key}'"
            )));
        }
        // The S3 client's parser is the authority on which keys exist; probe it with a
        // value every known key accepts syntactically or rejects for its value only.
        let probe: BTreeMap<String, String> = [(key.to_owned(), "1".to_owned())].into();
        match coffer_client::settings::parse_settings(&probe) {
            Ok(_) => return Ok(()),
            Err(e) if !e.to_string().contains("unknown setting") => return Ok(()),
            Err(_) => {}
        }
    }
    Err(err(match suggestion(key) {
        Some(s) => format!("unknown setting [{key}], did you mean [{s}]?"),
        None => format!("unknown setting [{key}]"),
    }))
}

fn suggestion(key: &str) -> Option<String> {
    let mut candidates: Vec<String> = FIXED_KEYS.iter().map(|s| (*s).to_owned()).collect();
    if let Some(rest) = key.strip_prefix("s3.client.")
        && let Some((name, _)) = rest.split_once('.')
    {
        candidates.extend(
            S3_CLIENT_SUFFIXES
                .iter()
                .map(|s| format!("s3.client.{name}.{s}")),
        );
    }
    if let Some(rest) = key.strip_prefix("indices.")
        && let Some((name, _)) = rest.split_once('.')
    {
        candidates.extend(INDEX_SUFFIXES.iter().map(|s| format!("indices.{name}.{s}")));
    }
    candidates
        .into_iter()
        .map(|c| (edit_distance(key, &c), c))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The config directory: `--config-dir` (or `COFFER_PATH_CONF`, through clap) else `./config`.
pub fn config_dir(cli: Option<PathBuf>) -> PathBuf {
    cli.unwrap_or_else(|| PathBuf::from("config"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_and_nested_are_the_same() {
        let flat = Settings::parse_yaml(
            "node.name: n1\ns3.client.backup.endpoint: http://127.0.0.1:3900\n",
        )
        .unwrap();
        let nested =
            Settings::parse_yaml("node:\n  name: n1\ns3:\n  client:\n    backup:\n      endpoint: http://127.0.0.1:3900\n").unwrap();
        assert_eq!(flat.values, nested.values);
        assert_eq!(
            flat.get("s3.client.backup.endpoint").unwrap(),
            Some("http://127.0.0.1:3900")
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = Settings::parse_yaml("s3.client.default.endpiont: x\n").unwrap_err();
        assert_eq!(
            e.0,
            "unknown setting [s3.client.default.endpiont], did you mean [s3.client.default.endpoint]?"
        );
        let e = Settings::parse_yaml("http:\n  prot: 1\n").unwrap_err();
        assert!(e.0.starts_with("unknown setting [http.prot]"), "{}", e.0);
        let e = Settings::parse_yaml("banana: 1\n").unwrap_err();
        assert_eq!(e.0, "unknown setting [banana]");
    }

    #[test]
    fn s3_client_settings_are_checked_by_the_client_parser() {
        let dir = tempfile::tempdir().unwrap();
        let ok = Settings::load(
            dir.path(),
            &[
                "s3.client.x.insecure=true".into(),
                "s3.client.x.endpoint=http://127.0.0.1:9000".into(),
            ],
        )
        .unwrap();
        assert_eq!(
            ok.with_prefix("s3.client.x.").len(),
            2,
            "keys the client knows are accepted"
        );
        let e = Settings::load(dir.path(), &["s3.client.x.protocol=ftp".into()]).unwrap_err();
        assert!(e.0.contains("[s3.client.x.protocol]"), "{}", e.0);
        let e = Settings::load(dir.path(), &["s3.client.x.proxy.port=80".into()]).unwrap_err();
        assert!(e.0.contains("proxy.host"), "{}", e.0);
    }

    #[test]
    fn secrets_are_refused_in_the_file() {
        let e = Settings::parse_yaml("s3.client.default.secret_key: x\n").unwrap_err();
        assert!(e.0.contains("keystore"), "{}", e.0);
        assert!(!e.0.contains(": x"), "{}", e.0);
    }

    #[test]
    fn duplicates_lists_and_nulls() {
        assert!(
            Settings::parse_yaml("node.name: a\nnode:\n  name: b\n")
                .unwrap_err()
                .0
                .contains("more than once")
        );
        let s = Settings::parse_yaml("path.repo: [/a, /b]\nnode.name:\n").unwrap();
        assert_eq!(s.get_list("path.repo"), vec!["/a", "/b"]);
        assert_eq!(s.get("node.name").unwrap(), None);
        assert!(Settings::parse_yaml("- a\n").is_err());
        assert!(Settings::parse_yaml("a: [\n").is_err());
    }

    #[test]
    fn overrides_win_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE_NAME), "http.port: 9300\n").unwrap();
        let s = Settings::load(
            dir.path(),
            &["http.port=0".into(), "path.repo=/x,/y".into()],
        )
        .unwrap();
        assert_eq!(s.parse::<u16>("http.port").unwrap(), Some(0));
        assert_eq!(s.get_list("path.repo"), vec!["/x", "/y"]);
        assert!(
            Settings::load(dir.path(), &["nope=1".into()])
                .unwrap_err()
                .0
                .contains("[nope]")
        );
        assert!(Settings::load(dir.path(), &["http.port".into()]).is_err());
        let bad = Settings::load(dir.path(), &["http.port=abc".into()]).unwrap();
        assert!(
            bad.parse::<u16>("http.port")
                .unwrap_err()
                .0
                .contains("[http.port]")
        );
    }
}
