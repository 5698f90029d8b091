//! TLS for the API: `http.tls.certificate` and `http.tls.key` (PEM) turned into a rustls
//! `ServerConfig`, served through axum-server, and swapped in place on reload.
//!
//! axum-server's `RustlsConfig` keeps the `ServerConfig` behind an `ArcSwap` and reads it at
//! every handshake, so a reload changes what new connections see and leaves established ones
//! (and their keep-alive requests) alone. Its accept loop also bounds the handshake (10 s) and
//! shuts down gracefully through a `Handle`; writing that loop by hand would only repeat it.

use std::fmt;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::connect_info::IntoMakeServiceWithConnectInfo;
use axum_server::tls_rustls::RustlsConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::ServerConfig;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{Error as RustlsError, InconsistentKeys};
use zeroize::Zeroizing;

use crate::config::{ConfigError, Settings};

/// The setting naming the PEM certificate chain.
pub const CERTIFICATE_SETTING: &str = "http.tls.certificate";
/// The setting naming the PEM private key.
pub const KEY_SETTING: &str = "http.tls.key";

/// A certificate chain or a key is a few KiB; a file this big is the wrong file, and reading
/// it whole would not be bounded.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// The protocol coffer offers: the API is HTTP/1.1, as Elasticsearch's is.
const ALPN_HTTP11: &[u8] = b"http/1.1";

/// The two PEM files, resolved against the config directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub certificate: PathBuf,
    /// The private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub key: PathBuf,
}

/// Why the TLS configuration could not be built. Messages name the setting and the file,
/// and never carry bytes of the key file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Only one of the two settings is set.
    #[error("[{set}] is set but [{missing}] is not: TLS needs both, or neither for plain HTTP")]
    Incomplete {
        /// The setting that is set.
        set: &'static str,
        /// The setting that is missing.
        missing: &'static str,
    },
    /// A setting is set to an empty string.
    #[error("[{setting}] is empty: give the path of a PEM file")]
    Empty {
        /// The setting.
        setting: &'static str,
    },
    /// A file cannot be read.
    #[error("[{setting}] cannot read [{}]: {source}", path.display())]
    Read {
        /// The setting naming the file.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is larger than any PEM certificate chain or key.
    #[error("[{setting}] file [{}] is larger than {} bytes, too big for a PEM certificate or key", path.display(), MAX_PEM_BYTES)]
    TooLarge {
        /// The setting naming the file.
        setting: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// The certificate file holds no usable certificate chain.
    #[error("[{CERTIFICATE_SETTING}] file [{}] is not a usable PEM certificate chain: {reason}", path.display())]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The key file holds no usable private key. The reason is one of a fixed set of
    /// sentences or a rustls message, never text taken from the file.
    #[error("[{KEY_SETTING}] file [{}] holds no usable private key: {reason}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The key is not the certificate's.
    #[error("[{KEY_SETTING}] file [{}] does not match the certificate in [{CERTIFICATE_SETTING}] file [{}]", key.display(), certificate.display())]
    Mismatch {
        /// The certificate file.
        certificate: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// rustls refused the configuration.
    #[error("building the TLS configuration from [{}] and [{}]: {source}", certificate.display(), key.display())]
    Rustls {
        /// The certificate file.
        certificate: PathBuf,
        /// The key file.
        key: PathBuf,
        /// The rustls error.
        source: RustlsError,
    },
}

impl TlsFiles {
    /// The TLS files from `http.tls.certificate` and `http.tls.key`, relative paths resolved
    /// against the config directory (as Elasticsearch resolves its `ssl` paths). `None` when
    /// neither is set.
    pub fn from_settings(settings: &Settings, config_dir: &Path) -> anyhow::Result<Option<Self>> {
        let certificate = setting_path(settings, CERTIFICATE_SETTING, config_dir)?;
        let key = setting_path(settings, KEY_SETTING, config_dir)?;
        match (certificate, key) {
            (None, None) => Ok(None),
            (Some(certificate), Some(key)) => Ok(Some(Self { certificate, key })),
            (Some(_), None) => Err(TlsError::Incomplete {
                set: CERTIFICATE_SETTING,
                missing: KEY_SETTING,
            }
            .into()),
            (None, Some(_)) => Err(TlsError::Incomplete {
                set: KEY_SETTING,
                missing: CERTIFICATE_SETTING,
            }
            .into()),
        }
    }

    /// Reads both files and builds the server configuration.
    pub fn load(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let certificate = read_pem(CERTIFICATE_SETTING, &self.certificate)?;
        let key = Zeroizing::new(read_pem(KEY_SETTING, &self.key)?);
        server_config(&certificate, &key, self)
    }
}

fn setting_path(
    settings: &Settings,
    setting: &'static str,
    config_dir: &Path,
) -> Result<Option<PathBuf>, ConfigError> {
    let Some(value) = settings.get(setting)? else {
        return Ok(None);
    };
    if value.trim().is_empty() {
        return Err(ConfigError(TlsError::Empty { setting }.to_string()));
    }
    // `join` keeps an absolute path as it is.
    Ok(Some(config_dir.join(value)))
}

fn read_pem(setting: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    let read_error = |source| TlsError::Read {
        setting,
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        // The partial read may hold key material.
        drop(Zeroizing::new(bytes));
        return Err(TlsError::TooLarge {
            setting,
            path: path.to_owned(),
        });
    }
    Ok(bytes)
}

/// The crypto provider of the API's TLS. Named explicitly rather than taken from the process
/// default: with both ring and aws-lc-rs compiled into rustls (reqwest brings the latter)
/// there is no unambiguous default, and the S3 client names ring too.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the server configuration from the PEM text of the chain and the key. `files` only
/// names the files in errors.
pub fn server_config(
    certificate_pem: &[u8],
    key_pem: &[u8],
    files: &TlsFiles,
) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = certificate_chain(certificate_pem, &files.certificate)?;
    let key = private_key(key_pem, &files.key)?;
    let provider = provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::Key {
            path: files.key.clone(),
            reason: e.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        // ring keys always know their public key; `Unknown` cannot happen with them, and
        // rustls itself accepts it.
        Ok(()) | Err(RustlsError::InconsistentKeys(InconsistentKeys::Unknown)) => {}
        Err(RustlsError::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
            return Err(TlsError::Mismatch {
                certificate: files.certificate.clone(),
                key: files.key.clone(),
            });
        }
        // The leaf does not parse as X.509.
        Err(e) => {
            return Err(TlsError::Certificate {
                path: files.certificate.clone(),
                reason: e.to_string(),
            });
        }
    }
    let rustls_error = |source| TlsError::Rustls {
        certificate: files.certificate.clone(),
        key: files.key.clone(),
        source,
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(rustls_error)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Ok(Arc::new(config))
}

fn certificate_chain(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Certificate {
            path: path.to_owned(),
            reason: pem_reason(&e),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Certificate {
            path: path.to_owned(),
            reason: "no '-----BEGIN CERTIFICATE-----' section found".to_owned(),
        });
    }
    Ok(chain)
}

fn private_key(pem: &[u8], path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let key_error = |reason: &str| TlsError::Key {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    match PrivateKeyDer::from_pem_slice(pem) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound)
            if contains(pem, b"-----BEGIN ENCRYPTED PRIVATE KEY-----") =>
        {
            Err(key_error(
                "the key is encrypted; coffer needs it unencrypted (protect the file with its permissions)",
            ))
        }
        Err(pem::Error::NoItemsFound) => Err(key_error(
            "no 'PRIVATE KEY', 'RSA PRIVATE KEY' or 'EC PRIVATE KEY' PEM section found",
        )),
        // The other errors' texts can quote lines of the file: describe them instead.
        Err(e) => Err(key_error(&pem_reason_without_content(&e))),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A PEM error of the certificate file, which is public and may be quoted.
fn pem_reason(e: &pem::Error) -> String {
    e.to_string()
}

/// A PEM error described without any text of the file, for the key file.
fn pem_reason_without_content(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a PEM section has no END line".to_owned(),
        pem::Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed".to_owned(),
        pem::Error::Base64Decode(_) => "a PEM section is not valid base64".to_owned(),
        pem::Error::Io(io) => format!("reading failed: {}", io.kind()),
        pem::Error::NoItemsFound => "no PEM section found".to_owned(),
        pem::Error::SectionTooLarge => "a PEM section is too large".to_owned(),
        _ => "the PEM text is not valid".to_owned(),
    }
}

/// The live TLS configuration and the files it was read from, to reload it.
#[derive(Clone)]
pub struct TlsReloader {
    files: TlsFiles,
    config: RustlsConfig,
}

impl fmt::Debug for TlsReloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The rustls configuration holds the private key: show only where it came from.
        f.debug_struct("TlsReloader")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl TlsReloader {
    /// Wraps a configuration loaded from `files`.
    pub fn new(files: TlsFiles, config: Arc<ServerConfig>) -> Self {
        Self {
            files,
            config: RustlsConfig::from_config(config),
        }
    }

    /// The files being served.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Reads both files again. On success new handshakes use them; on failure nothing
    /// changes and the error says which file and why. Connections already open keep the
    /// certificate they were made with.
    pub fn reload(&self) -> Result<(), TlsError> {
        // Two small local files read once per SIGHUP: blocking a worker that long is cheaper
        // than a round trip through the blocking pool.
        let config = self.files.load()?;
        self.config.reload_from_config(config);
        Ok(())
    }

    /// Serves `app` over TLS on `listener` until `shutdown` completes, then waits for the
    /// open connections to finish, as `axum::serve(..).with_graceful_shutdown(..)` does.
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        app: IntoMakeServiceWithConnectInfo<Router, SocketAddr>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let handle = axum_server::Handle::new();
        let server =
            axum_server::tls_rustls::from_tcp_rustls(listener.into_std()?, self.config.clone())?
                .handle(handle.clone())
                .accept_error_handler(|peer: Option<&SocketAddr>, e: &std::io::Error| {
                    // A failed handshake is the client's problem (plain HTTP on the TLS port, an
                    // untrusted certificate, a scanner): worth a trace, not a warning per attempt.
                    if let Some(peer) = peer {
                        tracing::debug!(%peer, "TLS connection refused: {e}");
                    } else {
                        tracing::warn!("accepting a connection failed: {e}");
                    }
                });
        tokio::spawn(async move {
            shutdown.await;
            handle.graceful_shutdown(None);
        });
        server.serve(app).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};

    fn files() -> TlsFiles {
        TlsFiles {
            certificate: PathBuf::from("/etc/coffer/cert.pem"),
            key: PathBuf::from("/etc/coffer/key.pem"),
        }
    }

    fn self_signed(alg: &'static rcgen::SignatureAlgorithm) -> (String, KeyPair) {
        let key = KeyPair::generate_for(alg).unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key)
    }

    #[test]
    fn builds_a_tls12_and_tls13_http11_config() {
        let (cert, key) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
        let config =
            server_config(cert.as_bytes(), key.serialize_pem().as_bytes(), &files()).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        let versions: Vec<_> = config
            .crypto_provider()
            .cipher_suites
            .iter()
            .map(|s| s.version().version)
            .collect();
        assert!(versions.contains(&rustls::ProtocolVersion::TLSv1_2));
        assert!(versions.contains(&rustls::ProtocolVersion::TLSv1_3));
    }

    #[test]
    fn accepts_pkcs8_rsa_and_sec1_keys() {
        // PKCS#8 (what rcgen writes), for each key type ring signs with.
        for alg in [
            &rcgen::PKCS_ECDSA_P256_SHA256,
            &rcgen::PKCS_ECDSA_P384_SHA384,
            &rcgen::PKCS_ED25519,
        ] {
            let (cert, key) = self_signed(alg);
            server_config(cert.as_bytes(), key.serialize_pem().as_bytes(), &files())
                .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        }
        // SEC1 ("EC PRIVATE KEY") and PKCS#1 ("RSA PRIVATE KEY"), as openssl writes them:
        // fixed test keys, since rcgen writes PKCS#8 only.
        for (cert, key) in [(SEC1_CERT, SEC1_KEY), (RSA_CERT, RSA_KEY)] {
            server_config(cert.as_bytes(), key.as_bytes(), &files()).unwrap();
        }
    }

    #[test]
    fn a_key_of_another_certificate_is_refused_by_name() {
        let (cert, _) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
        let (_, other_key) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
        let e = server_config(
            cert.as_bytes(),
            other_key.serialize_pem().as_bytes(),
            &files(),
        )
        .unwrap_err();
        assert!(matches!(e, TlsError::Mismatch { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "[http.tls.key] file [/etc/coffer/key.pem] does not match the certificate in [http.tls.certificate] file [/etc/coffer/cert.pem]"
        );
    }

    #[test]
    fn broken_files_are_named_and_key_text_is_never_quoted() {
        let (cert, key) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
        let key_pem = key.serialize_pem();

        // The files swapped: the certificate file holds a key, so no certificate.
        let e = server_config(key_pem.as_bytes(), cert.as_bytes(), &files()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("[http.tls.certificate] file [/etc/coffer/cert.pem]"),
            "{e}"
        );

        let e = server_config(cert.as_bytes(), cert.as_bytes(), &files()).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "[http.tls.key] file [/etc/coffer/key.pem] holds no usable private key"
            ),
            "{e}"
        );

        // A damaged key: base64 garbage and a missing END line. The message must not carry
        // any of the key's lines.
        let body_lines: Vec<&str> = key_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let damaged = key_pem.replace(body_lines[0], &format!("{}!!", body_lines[0]));
        let truncated = key_pem[..key_pem.find("-----END").unwrap()].to_owned();
        let bad_start = format!("-----BEGIN PRIVATE KEY {}\n", body_lines[0]);
        for bad in [damaged, truncated, bad_start] {
            let e = server_config(cert.as_bytes(), bad.as_bytes(), &files()).unwrap_err();
            let text = format!("{e} {e:?}");
            assert!(matches!(e, TlsError::Key { .. }), "{text}");
            for line in &body_lines {
                assert!(!text.contains(line), "key text leaked: {text}");
            }
        }

        let e = server_config(
            cert.as_bytes(),
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
            &files(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("encrypted"), "{e}");
    }

    #[test]
    fn settings_resolve_against_the_config_dir_and_need_both() {
        let config_dir = Path::new("/etc/coffer");
        let settings = |pairs: &[&str]| {
            let overrides: Vec<String> = pairs.iter().map(|s| (*s).to_owned()).collect();
            let dir = tempfile::tempdir().unwrap();
            Settings::load(dir.path(), &overrides).unwrap()
        };
        assert_eq!(
            TlsFiles::from_settings(&settings(&[]), config_dir).unwrap(),
            None
        );
        let both = settings(&[
            "http.tls.certificate=tls/cert.pem",
            "http.tls.key=/keys/k.pem",
        ]);
        assert_eq!(
            TlsFiles::from_settings(&both, config_dir).unwrap(),
            Some(TlsFiles {
                certificate: PathBuf::from("/etc/coffer/tls/cert.pem"),
                key: PathBuf::from("/keys/k.pem"),
            })
        );
        let e = TlsFiles::from_settings(&settings(&["http.tls.certificate=c.pem"]), config_dir)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "[http.tls.certificate] is set but [http.tls.key] is not: TLS needs both, or neither for plain HTTP"
        );
        let e =
            TlsFiles::from_settings(&settings(&["http.tls.key=k.pem"]), config_dir).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("[http.tls.key] is set but [http.tls.certificate] is not")
        );
        let e = TlsFiles::from_settings(
            &settings(&["http.tls.key=k.pem", "http.tls.certificate= "]),
            config_dir,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("[http.tls.certificate] is empty"),
            "{e}"
        );
    }

    #[test]
    fn load_reads_the_files_and_names_the_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
        let files = TlsFiles {
            certificate: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
        };
        std::fs::write(&files.certificate, cert).unwrap();
        let e = files.load().unwrap_err();
        assert!(
            matches!(&e, TlsError::Read { setting: KEY_SETTING, path, .. } if *path == files.key),
            "{e:?}"
        );
        assert!(
            e.to_string().starts_with("[http.tls.key] cannot read ["),
            "{e}"
        );
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        files.load().unwrap();

        std::fs::write(&files.key, vec![b'A'; 2 * 1024 * 1024]).unwrap();
        let e = files.load().unwrap_err();
        assert!(
            matches!(
                e,
                TlsError::TooLarge {
                    setting: KEY_SETTING,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn the_reloader_debug_shows_files_only() {
        let (cert, key) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
        let config =
            server_config(cert.as_bytes(), key.serialize_pem().as_bytes(), &files()).unwrap();
        let reloader = TlsReloader::new(files(), config);
        let debug = format!("{reloader:?}");
        assert!(debug.contains("/etc/coffer/key.pem"), "{debug}");
        assert!(!debug.contains("PRIVATE"), "{debug}");
    }

    // Test-only keys made with `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256
    // -nodes -subj /CN=localhost` (then `openssl ec` for SEC1) and `openssl req -x509
    // -newkey rsa:2048 -nodes -subj /CN=localhost` (then `openssl rsa -traditional`).
    const SEC1_CERT: &str = include_str!("../tests/data/tls/sec1-cert.pem");
    const SEC1_KEY: &str = include_str!("../tests/data/tls/sec1-key.pem");
    const RSA_CERT: &str = include_str!("../tests/data/tls/rsa-cert.pem");
    const RSA_KEY: &str = include_str!("../tests/data/tls/rsa-key.pem");
}
