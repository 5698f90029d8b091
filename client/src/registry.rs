//! Named clients. Repositories ask the registry for a client by name; `reload` validates a
//! whole new configuration first and then swaps every client's state atomically, so a bad
//! reload changes nothing and in-flight requests finish on the state they started with.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::client::{ClientOptions, S3Client};
use crate::credentials::Environment;
use crate::error::Error;
use crate::settings::{ClientConfig, SecureValue, client_configs};

/// The named clients of this process.
#[derive(Debug)]
pub struct ClientRegistry {
    clients: ArcSwap<BTreeMap<String, S3Client>>,
    options: ClientOptions,
}

impl ClientRegistry {
    /// Builds every client from `s3.client.*` settings (`flat`, dotted keys) and the
    /// keystore's secure settings. `default` always exists.
    pub fn new(
        flat: &BTreeMap<String, String>,
        secure: &BTreeMap<String, SecureValue>,
        env: &Environment,
        options: ClientOptions,
    ) -> Result<ClientRegistry, Error> {
        let configs = client_configs(flat, secure)?;
        ClientRegistry::from_configs(&configs, env, options)
    }

    /// Builds every client from parsed configs (a `default` is added when missing).
    pub fn from_configs(
        configs: &BTreeMap<String, ClientConfig>,
        env: &Environment,
        options: ClientOptions,
    ) -> Result<ClientRegistry, Error> {
        let mut clients = BTreeMap::new();
        for (name, config) in with_default(configs) {
            clients.insert(name, S3Client::new(&config, env, options.clone())?);
        }
        Ok(ClientRegistry {
            clients: ArcSwap::from_pointee(clients),
            options,
        })
    }

    /// The client called `name`.
    pub fn client(&self, name: &str) -> Result<S3Client, Error> {
        let clients = self.clients.load();
        clients
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownClient {
                name: name.to_owned(),
                existing: clients.keys().cloned().collect(),
            })
    }

    /// The client names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.clients.load().keys().cloned().collect()
    }

    /// Re-reads settings and credentials (`reload_secure_settings`). All or nothing: every
    /// new client state is built before any is swapped in.
    pub fn reload(
        &self,
        flat: &BTreeMap<String, String>,
        secure: &BTreeMap<String, SecureValue>,
        env: &Environment,
    ) -> Result<(), Error> {
        let configs = with_default(&client_configs(flat, secure)?);
        let current = self.clients.load_full();
        // Validate everything first (builds throwaway clients for new names).
        let mut fresh = BTreeMap::new();
        for (name, config) in &configs {
            let candidate = S3Client::new(config, env, self.options.clone())?;
            fresh.insert(name.clone(), candidate);
        }
        let mut next = BTreeMap::new();
        for (name, config) in &configs {
            match current.get(name) {
                // Existing clients keep their identity (counters, limiter, learnt regions)
                // and swap their state, so repositories holding them see the new settings.
                Some(existing) => {
                    existing.reload(config, env)?;
                    next.insert(name.clone(), existing.clone());
                }
                None => {
                    if let Some(c) = fresh.remove(name) {
                        next.insert(name.clone(), c);
                    }
                }
            }
        }
        self.clients.store(Arc::new(next));
        Ok(())
    }
}

fn with_default(configs: &BTreeMap<String, ClientConfig>) -> BTreeMap<String, ClientConfig> {
    let mut out = configs.clone();
    out.entry(crate::settings::DEFAULT_CLIENT.to_owned())
        .or_insert_with(|| {
            ClientConfig::new(
                crate::settings::DEFAULT_CLIENT,
                crate::settings::ClientSettings::default(),
                crate::settings::SecureClientSettings::default(),
            )
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_always_exists_and_unknown_names_are_listed() {
        let mut flat = BTreeMap::new();
        flat.insert(
            "s3.client.y.endpoint".to_owned(),
            "http://127.0.0.1:9".to_owned(),
        );
        let reg = ClientRegistry::new(
            &flat,
            &BTreeMap::new(),
            &Environment::empty(),
            ClientOptions::default(),
        )
        .unwrap();
        assert_eq!(reg.names(), vec!["default", "y"]);
        assert_eq!(reg.client("y").unwrap().name(), "y");
        let err = reg.client("x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Unknown s3 client name [x]. Existing client configs: default,y"
        );
    }

    /// `Debug` of everything that holds a client's secure settings, along the whole path
    /// from the keystore's values to a built client, shows none of them.
    #[test]
    fn debug_of_configs_registry_and_clients_shows_no_secret() {
        use crate::settings::client_configs;
        use secrecy::{SecretSlice, SecretString};
        const SECRETS: [&str; 5] = [
            "AKIDSECRETACCESSKEY1",
            "SecretKeyValue/With+Chars",
            "SessionTokenValue",
            "proxyuservalue",
            "proxypasswordvalue",
        ];
        let mut flat = BTreeMap::new();
        flat.insert(
            "s3.client.backup.endpoint".to_owned(),
            "http://127.0.0.1:9".to_owned(),
        );
        flat.insert(
            "s3.client.backup.proxy.host".to_owned(),
            "127.0.0.1".to_owned(),
        );
        let text = |v: &str| SecureValue::Text(SecretString::from(v.to_owned()));
        let mut secure = BTreeMap::new();
        secure.insert("s3.client.backup.access_key".to_owned(), text(SECRETS[0]));
        secure.insert(
            "s3.client.backup.secret_key".to_owned(),
            SecureValue::Bytes(SecretSlice::from(SECRETS[1].as_bytes().to_vec())),
        );
        secure.insert(
            "s3.client.backup.session_token".to_owned(),
            text(SECRETS[2]),
        );
        secure.insert(
            "s3.client.backup.proxy.username".to_owned(),
            text(SECRETS[3]),
        );
        secure.insert(
            "s3.client.backup.proxy.password".to_owned(),
            text(SECRETS[4]),
        );
        let configs = client_configs(&flat, &secure).unwrap();
        let reg =
            ClientRegistry::from_configs(&configs, &Environment::empty(), ClientOptions::default())
                .unwrap();
        let client = reg.client("backup").unwrap();
        for (i, shown) in [
            format!("{secure:?}"),
            format!("{secure:#?}"),
            format!("{configs:?}"),
            format!("{configs:#?}"),
            format!("{reg:?}"),
            format!("{reg:#?}"),
            format!("{client:?}"),
            format!("{:?}", client.settings()),
        ]
        .iter()
        .enumerate()
        {
            for (j, secret) in SECRETS.iter().enumerate() {
                // The message names the output and the secret by number only.
                assert!(!shown.contains(secret), "Debug output {i} shows secret {j}");
            }
        }
        assert!(format!("{configs:?}").contains("REDACTED"));
    }

    #[test]
    fn reload_is_all_or_nothing_and_keeps_client_identity() {
        let mut flat = BTreeMap::new();
        flat.insert(
            "s3.client.y.endpoint".to_owned(),
            "http://127.0.0.1:9".to_owned(),
        );
        let reg = ClientRegistry::new(
            &flat,
            &BTreeMap::new(),
            &Environment::empty(),
            ClientOptions::default(),
        )
        .unwrap();
        let held = reg.client("y").unwrap();
        let mut bad = flat.clone();
        bad.insert(
            "s3.client.z.ca_certificate".to_owned(),
            "/nonexistent.pem".to_owned(),
        );
        assert!(
            reg.reload(&bad, &BTreeMap::new(), &Environment::empty())
                .is_err()
        );
        assert_eq!(
            reg.names(),
            vec!["default", "y"],
            "a failed reload changes nothing"
        );
        let mut good = BTreeMap::new();
        good.insert(
            "s3.client.y.endpoint".to_owned(),
            "http://127.0.0.1:10".to_owned(),
        );
        good.insert("s3.client.w.region".to_owned(), "garage".to_owned());
        reg.reload(&good, &BTreeMap::new(), &Environment::empty())
            .unwrap();
        assert_eq!(reg.names(), vec!["default", "w", "y"]);
        assert_eq!(
            held.settings().endpoint.as_deref(),
            Some("http://127.0.0.1:10"),
            "held clients see the reload"
        );
    }
}
