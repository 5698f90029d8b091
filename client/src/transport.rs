//! The HTTP transport: a reqwest client over rustls (ring provider) with the system roots,
//! the per-client CA bundle (file setting or keystore bytes), `AWS_CA_BUNDLE`, an explicit
//! `insecure` switch, an optional proxy, no automatic redirects (region redirects are S3
//! semantics we handle ourselves) and no proxy from the environment.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use secrecy::ExposeSecret as _;

use crate::credentials::Environment;
use crate::error::Error;
use crate::settings::{ClientSettings, SecureClientSettings};

/// Parses a PEM bundle; `source` names where it came from for the error message.
pub(crate) fn parse_pem_bundle(
    pem: &[u8],
    source: &str,
) -> Result<Vec<CertificateDer<'static>>, Error> {
    let mut reader = std::io::BufReader::new(pem);
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut reader)
        .collect::<Result<_, _>>()
        .map_err(|e| Error::config(format!("cannot parse the PEM CA bundle of {source}: {e}")))?;
    if certs.is_empty() {
        return Err(Error::config(format!(
            "the CA bundle of {source} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        )));
    }
    Ok(certs)
}

/// The extra CAs to trust, in addition to the system roots, with where each came from.
pub(crate) fn extra_cas(
    name: &str,
    settings: &ClientSettings,
    secure: &SecureClientSettings,
    env: &Environment,
) -> Result<Vec<CertificateDer<'static>>, Error> {
    let mut out = Vec::new();
    if let Some(path) = &settings.ca_certificate {
        let source = format!(
            "setting [s3.client.{name}.ca_certificate] ({})",
            path.display()
        );
        let pem = std::fs::read(path)
            .map_err(|e| Error::config(format!("cannot read the CA bundle of {source}: {e}")))?;
        out.extend(parse_pem_bundle(&pem, &source)?);
    }
    if let Some(pem) = &secure.ca_certificate {
        let source = format!("secure setting [s3.client.{name}.ca_certificate]");
        out.extend(parse_pem_bundle(pem, &source)?);
    }
    if let Some(path) = env.var("AWS_CA_BUNDLE") {
        let source = format!("AWS_CA_BUNDLE ({path})");
        let pem = std::fs::read(path)
            .map_err(|e| Error::config(format!("cannot read the CA bundle of {source}: {e}")))?;
        out.extend(parse_pem_bundle(&pem, &source)?);
    }
    Ok(out)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls configuration of one client.
pub(crate) fn tls_config(
    name: &str,
    settings: &ClientSettings,
    secure: &SecureClientSettings,
    env: &Environment,
) -> Result<rustls::ClientConfig, Error> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config(format!("cannot configure TLS: {e}")))?;
    let mut config = if settings.insecure {
        tracing::warn!(
            client = name,
            "s3.client.{name}.insecure is true: TLS certificates are NOT verified. Anyone on the \
             network path can read and alter repository data. Use this only in test setups."
        );
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        let (added, _ignored) = roots.add_parsable_certificates(native.certs);
        if added == 0 {
            // No system store (minimal containers): Mozilla's roots, compiled in.
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for cert in extra_cas(name, settings, secure, env)? {
            roots.add(cert).map_err(|e| {
                Error::config(format!(
                    "CA certificate for s3 client [{name}] rejected: {e}"
                ))
            })?;
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    // S3 speaks HTTP/1.1; offering h2 would only invite servers with partial support.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The reqwest client of one named client.
pub(crate) fn http_client(
    name: &str,
    settings: &ClientSettings,
    secure: &SecureClientSettings,
    env: &Environment,
) -> Result<reqwest::Client, Error> {
    let tls = tls_config(name, settings, secure, env)?;
    let mut builder = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .http1_only()
        .tcp_nodelay(true)
        .read_timeout(settings.read_timeout)
        .connect_timeout(settings.read_timeout.min(Duration::from_secs(10)))
        .pool_max_idle_per_host(settings.max_connections)
        .pool_idle_timeout(Duration::from_secs(30))
        .user_agent(concat!("coffer/", env!("CARGO_PKG_VERSION")));
    builder = match &settings.proxy {
        None => builder.no_proxy(),
        Some(p) => {
            let url = format!("{}://{}:{}", p.scheme.as_str(), p.host, p.port);
            let mut proxy = reqwest::Proxy::all(&url).map_err(|e| {
                Error::config(format!("invalid proxy [{url}] for s3 client [{name}]: {e}"))
            })?;
            if let (Some(u), Some(pw)) = (&secure.proxy_username, &secure.proxy_password) {
                proxy = proxy.basic_auth(u.expose_secret(), pw.expose_secret());
            }
            builder.proxy(proxy)
        }
    };
    builder.build().map_err(|e| {
        Error::config(format!(
            "cannot build the HTTP client of s3 client [{name}]: {e}"
        ))
    })
}

/// Accepts any certificate (the `insecure` option), but still checks that the handshake is
/// signed by the presented key, so the connection is at least not trivially broken.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The error chain, descending into `io::Error` payloads too: `io::Error::source()` skips
/// its own payload, and tokio-rustls nests rustls errors inside two `io::Error`s.
fn chain<'a>(
    err: &'a (dyn std::error::Error + 'static),
    out: &mut Vec<&'a (dyn std::error::Error + 'static)>,
) {
    out.push(err);
    if out.len() > 32 {
        return;
    }
    if let Some(inner) = err
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        chain(inner, out);
    } else if let Some(next) = err.source() {
        chain(next, out);
    }
}

/// Whether a transport error is a TLS failure.
pub(crate) fn is_tls_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut all = Vec::new();
    chain(err, &mut all);
    all.iter().any(|e| e.is::<rustls::Error>())
}

/// The whole error chain as one line, for operators.
pub(crate) fn chain_message(err: &(dyn std::error::Error + 'static)) -> String {
    let mut all = Vec::new();
    chain(err, &mut all);
    let mut parts: Vec<String> = Vec::new();
    for e in all {
        let s = e.to_string();
        if parts.last().is_none_or(|last| !last.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOT_PEM: &[u8] = b"hello";

    #[test]
    fn ca_bundles_are_checked_and_named() {
        let err = parse_pem_bundle(NOT_PEM, "setting [s3.client.x.ca_certificate]").unwrap_err();
        assert!(
            err.to_string().contains("s3.client.x.ca_certificate"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let settings = ClientSettings {
            ca_certificate: Some(missing),
            ..ClientSettings::default()
        };
        let err = extra_cas(
            "x",
            &settings,
            &SecureClientSettings::default(),
            &Environment::empty(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("[s3.client.x.ca_certificate]"),
            "{err}"
        );
        let env = Environment::empty().with_var("AWS_CA_BUNDLE", "/nonexistent/ca.pem");
        let err = extra_cas(
            "x",
            &ClientSettings::default(),
            &SecureClientSettings::default(),
            &env,
        )
        .unwrap_err();
        assert!(err.to_string().contains("AWS_CA_BUNDLE"), "{err}");
    }

    #[test]
    fn system_bundle_loads_and_clients_build() {
        // The distribution bundle is a valid PEM bundle: AWS_CA_BUNDLE pointing at it works.
        let system = std::path::Path::new("/etc/ssl/certs/ca-certificates.crt");
        let env = if system.exists() {
            Environment::empty().with_var("AWS_CA_BUNDLE", system.to_str().unwrap())
        } else {
            Environment::empty()
        };
        let cfg = tls_config(
            "default",
            &ClientSettings::default(),
            &SecureClientSettings::default(),
            &env,
        )
        .unwrap();
        assert_eq!(cfg.alpn_protocols, vec![b"http/1.1".to_vec()]);
        let insecure = ClientSettings {
            insecure: true,
            ..ClientSettings::default()
        };
        assert!(
            http_client(
                "t",
                &insecure,
                &SecureClientSettings::default(),
                &Environment::empty()
            )
            .is_ok()
        );
    }
}
