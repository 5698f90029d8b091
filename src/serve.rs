//! `coffer serve`: read the configuration and the keystore, then serve the API until SIGTERM
//! or SIGINT.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, bail};
use coffer_api::{AppConfig, AppState, AttachedIndex, NodeInfo, SecureLoader};
use coffer_client::{ClientOptions, ClientRegistry, Environment, SecureValue};
use coffer_keystore::{KEYSTORE_FILE_NAME, Keystore, KeystoreError};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::config::Settings;
use crate::password;
use crate::terminal::Terminal;
use crate::tls::{TlsFiles, TlsReloader};

/// The settings `serve` uses, validated.
#[derive(Debug)]
pub struct ServeConfig {
    pub node_name: String,
    pub cluster_name: String,
    pub host: String,
    pub port: u16,
    pub data_path: PathBuf,
    pub repo_paths: Vec<PathBuf>,
    /// `indices.<name>.path` (+ `.number_of_shards`).
    pub attached: Vec<AttachedIndex>,
    /// `s3.client.*`, flat.
    pub s3_settings: BTreeMap<String, String>,
}

impl ServeConfig {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        Ok(Self {
            node_name: settings
                .get("node.name")?
                .map_or_else(host_name, str::to_owned),
            cluster_name: settings.get("cluster.name")?.unwrap_or("coffer").to_owned(),
            host: settings.get("http.host")?.unwrap_or("127.0.0.1").to_owned(),
            port: settings.parse("http.port")?.unwrap_or(9200),
            data_path: PathBuf::from(settings.get("path.data")?.unwrap_or("data")),
            repo_paths: settings
                .get_list("path.repo")
                .into_iter()
                .map(PathBuf::from)
                .collect(),
            attached: attached_indices(settings)?,
            s3_settings: settings.with_prefix(coffer_client::settings::PREFIX),
        })
    }
}

fn attached_indices(settings: &Settings) -> anyhow::Result<Vec<AttachedIndex>> {
    let mut out = Vec::new();
    let flat = settings.with_prefix("indices.");
    let names: std::collections::BTreeSet<&str> = flat
        .keys()
        .filter_map(|k| k.strip_prefix("indices.")?.rsplit_once('.').map(|(n, _)| n))
        .collect();
    for name in names {
        let path = settings
            .get(&format!("indices.{name}.path"))?
            .with_context(|| {
                format!("indices.{name}.number_of_shards is set but indices.{name}.path is missing")
            })?;
        let path = PathBuf::from(path);
        if !path.is_dir() {
            bail!(
                "indices.{name}.path [{}] is not a directory",
                path.display()
            );
        }
        let shards: u32 = settings
            .parse(&format!("indices.{name}.number_of_shards"))?
            .unwrap_or(1);
        if shards == 0 {
            bail!("indices.{name}.number_of_shards must be at least 1");
        }
        out.push(AttachedIndex {
            name: name.to_owned(),
            path,
            number_of_shards: shards,
        });
    }
    Ok(out)
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "coffer".to_owned())
}

/// Identity that must survive restarts, kept in `path.data/node.json`.
#[derive(Debug, Serialize, Deserialize)]
struct NodeState {
    node_id: String,
    cluster_uuid: String,
}

fn load_or_create_node_state(data: &Path) -> anyhow::Result<NodeState> {
    std::fs::create_dir_all(data)
        .with_context(|| format!("creating path.data [{}]", data.display()))?;
    let file = data.join("node.json");
    match std::fs::read(&file) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("[{}] is not valid node state", file.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let state = NodeState {
                node_id: uuid::Uuid::new_v4().simple().to_string(),
                cluster_uuid: uuid::Uuid::new_v4().simple().to_string(),
            };
            coffer_keystore::write_atomic(&file, &serde_json::to_vec_pretty(&state)?)?;
            Ok(state)
        }
        Err(e) => Err(e).with_context(|| format!("reading [{}]", file.display())),
    }
}

/// Opens the keystore when there is one, so a wrong password or a damaged file stops the
/// service at start rather than at the first S3 request.
fn open_keystore(config_dir: &Path) -> anyhow::Result<Option<Keystore>> {
    let path = config_dir.join(KEYSTORE_FILE_NAME);
    if !path.exists() {
        return Ok(None);
    }
    let terminal = Terminal::new(false);
    let (pw, _) = password::existing(&path, Some(&terminal)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let ks = Keystore::load(&path, &pw)
        .with_context(|| format!("opening keystore [{}]", path.display()))?;
    Ok(Some(ks))
}

/// The keystore's `s3.client.*` entries in the client crate's vocabulary.
fn secure_values(keystore: Option<&Keystore>) -> BTreeMap<String, SecureValue> {
    let Some(ks) = keystore else {
        return BTreeMap::new();
    };
    ks.with_prefix(coffer_client::settings::PREFIX)
        .into_iter()
        .map(|(k, v)| {
            let value = if v.is_file() {
                SecureValue::Bytes(secrecy::SecretSlice::from(v.expose_bytes().to_vec()))
            } else {
                SecureValue::Text(SecretString::from(
                    v.expose_str().unwrap_or_default().to_owned(),
                ))
            };
            (k, value)
        })
        .collect()
}

/// What `reload_secure_settings` calls: open the keystore again with the password given in
/// the request, or else from the usual non-interactive sources.
fn secure_loader(config_dir: &Path) -> SecureLoader {
    let path = config_dir.join(KEYSTORE_FILE_NAME);
    Arc::new(move |given: Option<&SecretString>| {
        let given = given.filter(|p| !p.expose_secret().is_empty());
        if !path.exists() {
            // As Elasticsearch: a password for a keystore that has none cannot be right.
            return match given {
                Some(_) => Err(KeystoreError::WrongPassword.to_string()),
                None => Ok(BTreeMap::new()),
            };
        }
        let pw = match given {
            Some(p) => p.clone(),
            None => password::existing(&path, None).map_err(|e| e.message)?.0,
        };
        let ks = Keystore::load(&path, &pw).map_err(|e| e.to_string())?;
        let mut values = secure_values(Some(&ks));
        values.extend(crate::auth_setup::secure_entries(&ks));
        Ok(values)
    })
}

pub fn run(config_dir: &Path, settings: &Settings) -> anyhow::Result<()> {
    let config = ServeConfig::from_settings(settings)?;
    // Loaded first: a wrong path or a key that does not match stops the start before anything
    // else is opened, and TLS asked for is never served as plain HTTP.
    let tls = match TlsFiles::from_settings(settings, config_dir)? {
        Some(files) => {
            let server_config = files.load()?;
            Some(TlsReloader::new(files, server_config))
        }
        None => None,
    };
    let keystore = open_keystore(config_dir)?;
    let secure = secure_values(keystore.as_ref());
    let secure_count = keystore.as_ref().map_or(0, |k| k.names().count());
    // Decided before anything is bound: a server beyond loopback with no one able to log in
    // must not start at all.
    let credentials = crate::auth_setup::credential_store(keystore.as_ref())?;
    let auth_policy = crate::auth_setup::decide(settings, &config.host, &credentials)?;
    drop(keystore);
    let state = load_or_create_node_state(&config.data_path)?;
    tracing::info!(
        node.name = %config.node_name,
        path.data = %config.data_path.display(),
        path.repo = ?config.repo_paths,
        secure_settings = secure_count,
        "starting coffer"
    );
    let node = NodeInfo {
        name: config.node_name.clone(),
        node_id: state.node_id,
        cluster_name: config.cluster_name.clone(),
        cluster_uuid: state.cluster_uuid,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let app_config = AppConfig {
        node,
        data_path: config.data_path.clone(),
        repo_paths: config.repo_paths.clone(),
        attached: config.attached.clone(),
        s3_settings: config.s3_settings.clone(),
    };
    runtime.block_on(async move {
        // The registry builds HTTP clients, which need the runtime.
        let clients = ClientRegistry::new(
            &config.s3_settings,
            &secure,
            &Environment::from_process(),
            ClientOptions::default(),
        )
        .context("building the S3 clients")?;
        drop(secure);
        let state = AppState::open(
            app_config,
            clients,
            secure_loader(config_dir),
            Arc::new(coffer_repository::clock::SystemClock),
        )
        .map_err(|e| anyhow::anyhow!("loading the state in path.data: {e}"))?;
        state.security().install(auth_policy, credentials);
        // Installed before the listener is announced: the default action of these signals
        // ends the process, so a SIGHUP or SIGTERM sent right after start-up must already
        // find its handler.
        let hangup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
        let terminate =
            signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let reloads = tokio::spawn(reload_on_sighup(hangup, tls.clone(), state.clone()));
        let addr = format!("{}:{}", config.host, config.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("binding http.host:http.port [{addr}]"))?;
        let local: SocketAddr = listener.local_addr()?;
        // Middleware (authentication, per-client rate limits) reads the peer address as
        // `ConnectInfo<SocketAddr>`, in both modes.
        let app =
            coffer_api::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let stopping = state.clone();
        let shutdown = async move {
            shutdown_signal(terminate, interrupt).await;
            stopping.begin_shutdown();
        };
        match &tls {
            None => {
                tracing::info!(%local, "coffer listening on http://{local}");
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await
                    .context("serving HTTP")?;
            }
            Some(tls) => {
                tracing::info!(
                    %local,
                    http.tls.certificate = %tls.files().certificate.display(),
                    "coffer listening on https://{local}"
                );
                tls.serve(listener, app, shutdown)
                    .await
                    .context("serving HTTPS")?;
            }
        }
        reloads.abort();
        state.shutdown().await;
        tracing::info!("stopped");
        anyhow::Ok(())
    })
}

/// Reloads, at each SIGHUP, what can change without a restart. A failed reload logs why and
/// keeps what was in use: a typo in a renewed certificate must not take the API down.
async fn reload_on_sighup(mut hangup: Signal, tls: Option<TlsReloader>, state: AppState) {
    while hangup.recv().await.is_some() {
        tracing::info!("SIGHUP received, reloading");
        if let Some(tls) = &tls {
            let files = tls.files();
            match tls.reload() {
                Ok(()) => tracing::info!(
                    http.tls.certificate = %files.certificate.display(),
                    http.tls.key = %files.key.display(),
                    "reloaded the TLS certificate and key; new connections use them"
                ),
                Err(e) => tracing::error!(
                    "TLS reload failed, still serving the previous certificate: {e}"
                ),
            }
        }
        // Users and API keys: the keystore is opened with the non-interactive password
        // sources (COFFER_KEYSTORE_PASSWORD, the OS keyring), off the async threads.
        let reloading = state.clone();
        match tokio::task::spawn_blocking(move || reloading.reload_credentials()).await {
            Ok(Ok((users, api_keys))) => {
                tracing::info!(
                    users,
                    api_keys,
                    "reloaded users and API keys from the keystore"
                );
            }
            Ok(Err(e)) => tracing::error!(
                "reloading users and API keys failed, keeping the previous ones: {e}"
            ),
            Err(e) => tracing::error!("reloading users and API keys failed: {e}"),
        }
        // Other reloads triggered by SIGHUP belong here, each logging its own failure
        // without stopping the others.
    }
}

async fn shutdown_signal(mut term: Signal, mut int: Signal) {
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
    }
}
