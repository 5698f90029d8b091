//! Authentication and roles, as Elasticsearch answers them.
//!
//! - `Authorization: Basic base64(user:password)` for users and
//!   `Authorization: ApiKey base64(id:api_key)` for API keys, both checked against salted
//!   Argon2id hashes kept in the keystore ([`store`]).
//! - Two roles: `monitor` may do every read, `manage` everything ([`action`] maps each route
//!   to its Elasticsearch action name and says whether it reads).
//! - No credentials: 401 `missing authentication credentials for REST request [...]` with
//!   the `WWW-Authenticate` challenges Elasticsearch sends; wrong credentials: 401; the wrong
//!   role: 403 `action [...] is unauthorized for user [...]`.
//! - Failed attempts are limited per client address ([`limiter`]): past the limit the
//!   address gets 429 with `Retry-After`, and its credentials are not even checked.
//! - Verifications run on the blocking pool, at most a few at once (each takes 19 MiB), and
//!   successes are cached for a few minutes under a keyed hash ([`cache`]).
//!
//! The credentials are an immutable snapshot behind an `ArcSwap`: a reload of the keystore
//! (`_nodes/reload_secure_settings`, SIGHUP) swaps in a new snapshot with an empty cache,
//! and requests in flight finish on the old one.

pub mod action;
pub mod cache;
pub mod limiter;
pub mod store;

#[cfg(test)]
mod router_tests;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use arc_swap::ArcSwap;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use coffer_repository::clock::Clock;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::error::{ApiResult, EsError};
use crate::params::Params;
pub use action::{Action, classify};
pub use cache::CacheConfig;
pub use limiter::LimiterConfig;
pub use store::{ApiKeyRecord, CredentialStore, Role, UserRecord};

use cache::{Fingerprint, VerifiedCache, fingerprint};
use limiter::{ClientKey, FailureLimiter};
use store::SecretHash;

/// The challenges Elasticsearch sends with a 401, in its order.
pub const WWW_AUTHENTICATE: [&str; 3] = [
    "Basic realm=\"security\" charset=\"UTF-8\"",
    "Bearer realm=\"security\"",
    "ApiKey",
];

/// Who is making a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user name (for an API key, its name: coffer's keys have no owning user).
    pub username: String,
    /// The role.
    pub role: Role,
    /// How it was authenticated.
    pub kind: PrincipalKind,
}

/// How a [`Principal`] was authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    /// Authentication is off: every request may do everything.
    Anonymous,
    /// A user's password.
    User,
    /// An API key.
    ApiKey {
        /// Its id.
        id: String,
        /// Its expiration, checked again when the verification is cached.
        expiration: Option<DateTime<Utc>>,
    },
}

impl Principal {
    /// A user.
    pub fn user(name: &str, role: Role) -> Self {
        Self {
            username: name.to_owned(),
            role,
            kind: PrincipalKind::User,
        }
    }

    /// The principal of every request while authentication is off.
    pub fn anonymous() -> Self {
        Self {
            username: "_anonymous".to_owned(),
            role: Role::Manage,
            kind: PrincipalKind::Anonymous,
        }
    }

    fn api_key(record: &ApiKeyRecord) -> Self {
        Self {
            username: record.name.clone(),
            role: record.role,
            kind: PrincipalKind::ApiKey {
                id: record.id.clone(),
                expiration: record.expiration,
            },
        }
    }

    fn still_valid(&self, now: DateTime<Utc>) -> bool {
        match &self.kind {
            PrincipalKind::ApiKey {
                expiration: Some(e),
                ..
            } => now < *e,
            _ => true,
        }
    }
}

/// When authentication is on. The rule (see `docs/security.md`): an explicit
/// `http.auth.enabled` wins; otherwise authentication is on when the server listens beyond
/// loopback, or as soon as any user or API key exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthPolicy {
    /// `http.auth.enabled`, when set.
    pub setting: Option<bool>,
    /// Whether every address `http.host` resolves to is a loopback address.
    pub loopback_only: bool,
}

impl AuthPolicy {
    /// What an in-process router gets until the binary configures it: loopback, no setting.
    pub const LOOPBACK_DEFAULT: Self = Self {
        setting: None,
        loopback_only: true,
    };

    /// Whether requests must authenticate, given the credentials that exist.
    pub fn enabled(&self, store: &CredentialStore) -> bool {
        match self.setting {
            Some(explicit) => explicit,
            None => !self.loopback_only || !store.is_empty(),
        }
    }

    /// Why authentication is on or off, for the start-up log.
    pub fn explain(&self, store: &CredentialStore) -> &'static str {
        match (self.setting, self.loopback_only, store.is_empty()) {
            (Some(true), _, _) => "http.auth.enabled is true",
            (Some(false), _, _) => "http.auth.enabled is false",
            (None, false, _) => "http.host is not a loopback address",
            (None, true, false) => "users or API keys exist in the keystore",
            (None, true, true) => {
                "http.host is a loopback address and the keystore holds no user or API key"
            }
        }
    }
}

/// The limits of the authentication machinery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecurityLimits {
    /// Failed attempts per client address.
    pub limiter: LimiterConfig,
    /// Cached successes.
    pub cache: CacheConfig,
    /// Argon2 verifications running at once (each holds 19 MiB for tens of milliseconds).
    pub concurrent_verifications: usize,
}

impl Default for SecurityLimits {
    fn default() -> Self {
        Self {
            limiter: LimiterConfig::default(),
            cache: CacheConfig::default(),
            concurrent_verifications: 4,
        }
    }
}

/// One snapshot of the credentials, with its own cache.
#[derive(Debug)]
struct Authenticator {
    policy: AuthPolicy,
    enabled: bool,
    store: CredentialStore,
    cache: Mutex<VerifiedCache>,
}

impl Authenticator {
    fn new(policy: AuthPolicy, store: CredentialStore, cache: CacheConfig) -> Self {
        Self {
            policy,
            enabled: policy.enabled(&store),
            store,
            cache: Mutex::new(VerifiedCache::new(cache)),
        }
    }

    fn cache(&self) -> MutexGuard<'_, VerifiedCache> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The slow path: Argon2. Runs on a blocking thread.
    fn verify(&self, presented: &Presented, now: DateTime<Utc>) -> Result<Principal, Failure> {
        match presented {
            Presented::Basic { user, password } => match self.store.user(user) {
                Some(record) if record.verify(password) => Ok(Principal::user(user, record.role)),
                Some(_) => Err(Failure::user(user)),
                None => {
                    // Same work as for a known user: the answer's timing must not tell
                    // which user names exist.
                    let _ = dummy_hash().verify(password);
                    Err(Failure::user(user))
                }
            },
            Presented::ApiKey { id, key } => {
                let Some(record) = self.store.api_key(id) else {
                    let _ = dummy_hash().verify(key);
                    return Err(Failure::api_key(
                        &format!("unable to find apikey with id {id}"),
                        true,
                    ));
                };
                // The key is checked before its state is told, so only its holder learns
                // that it expired or was invalidated.
                if !record.verify(key) {
                    return Err(Failure::api_key(
                        &format!("invalid credentials for API key [{id}]"),
                        true,
                    ));
                }
                if record.invalidated {
                    return Err(Failure::api_key("api key has been invalidated", false));
                }
                if record.is_expired(now) {
                    return Err(Failure::api_key("api key is expired", false));
                }
                Ok(Principal::api_key(record))
            }
        }
    }
}

fn dummy_hash() -> &'static SecretHash {
    static DUMMY: OnceLock<SecretHash> = OnceLock::new();
    DUMMY.get_or_init(|| {
        SecretHash::new(b"coffer: no such credential", &[0x5a; store::SALT_LEN])
            .expect("hashing a constant with valid parameters")
    })
}

/// Credentials taken from the `Authorization` header. `Debug` never shows the secret.
enum Presented {
    Basic {
        user: String,
        password: Zeroizing<Vec<u8>>,
    },
    ApiKey {
        id: String,
        key: Zeroizing<Vec<u8>>,
    },
}

impl std::fmt::Debug for Presented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Basic { user, .. } => f
                .debug_struct("Basic")
                .field("user", user)
                .field("password", &"<redacted>")
                .finish(),
            Self::ApiKey { id, .. } => f
                .debug_struct("ApiKey")
                .field("id", id)
                .field("key", &"<redacted>")
                .finish(),
        }
    }
}

impl Presented {
    fn fingerprint(&self, key: &Zeroizing<[u8; 32]>) -> Fingerprint {
        match self {
            Self::Basic { user, password } => {
                fingerprint(key, "basic", &[user.as_bytes(), password.as_slice()])
            }
            Self::ApiKey { id, key: secret } => {
                fingerprint(key, "apikey", &[id.as_bytes(), secret.as_slice()])
            }
        }
    }
}

/// What the `Authorization` header holds.
enum Header {
    Missing,
    Presented(Presented),
    /// A scheme coffer knows with a value it cannot decode.
    Malformed(&'static str),
    /// `Bearer`: Elasticsearch's token service, which coffer does not have.
    Bearer,
}

fn decode_pair(b64: &str) -> Option<(String, Zeroizing<Vec<u8>>)> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    let b64 = b64.trim();
    let raw = Zeroizing::new(
        STANDARD
            .decode(b64)
            .or_else(|_| STANDARD_NO_PAD.decode(b64))
            .ok()?,
    );
    let colon = raw.iter().position(|b| *b == b':')?;
    let name = String::from_utf8(raw[..colon].to_vec()).ok()?;
    Some((name, Zeroizing::new(raw[colon + 1..].to_vec())))
}

fn parse_authorization(headers: &HeaderMap) -> Header {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Header::Missing;
    };
    let Ok(value) = value.to_str() else {
        return Header::Malformed("the Authorization header is not ASCII");
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        match decode_pair(rest) {
            Some((user, password)) => Header::Presented(Presented::Basic { user, password }),
            None => Header::Malformed("Basic credentials are not base64 of user:password"),
        }
    } else if scheme.eq_ignore_ascii_case("apikey") {
        match decode_pair(rest) {
            Some((id, key)) if !id.is_empty() => Header::Presented(Presented::ApiKey { id, key }),
            _ => Header::Malformed("API key: the credentials are not base64 of id:api_key"),
        }
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Header::Bearer
    } else {
        // As Elasticsearch: a scheme no realm understands is no credential at all.
        Header::Missing
    }
}

/// Why presented credentials were refused.
#[derive(Debug)]
enum Failure {
    User { name: String },
    Other { detail: String, guess: bool },
}

impl Failure {
    fn user(name: &str) -> Self {
        Self::User {
            name: name.to_owned(),
        }
    }

    fn api_key(detail: &str, guess: bool) -> Self {
        Self::Other {
            detail: format!("API key: {detail}"),
            guess,
        }
    }

    /// Whether this failure could be a guess (and so counts against the address): a
    /// valid key that has expired or was invalidated is not one.
    fn is_guess(&self) -> bool {
        match self {
            Self::User { .. } => true,
            Self::Other { guess, .. } => *guess,
        }
    }

    fn into_error(self, uri: &str) -> EsError {
        match self {
            Self::User { name } => unauthenticated(format!(
                "unable to authenticate user [{}] for REST request [{uri}]",
                printable(&name)
            )),
            Self::Other { detail, .. } => unauthenticated(
                "unable to authenticate with provided credentials and anonymous access is not allowed for this request",
            )
            .with("additional_unsuccessful_credentials", detail),
        }
    }
}

fn printable(s: &str) -> String {
    s.chars()
        .take(512)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// A 401 `security_exception`, with the challenges in the body as Elasticsearch puts them.
fn unauthenticated(reason: impl Into<String>) -> EsError {
    EsError::new(StatusCode::UNAUTHORIZED, "security_exception", reason)
        .with("header", json!({"WWW-Authenticate": WWW_AUTHENTICATE}))
}

/// Adds the `WWW-Authenticate` headers of a 401.
fn challenge(mut resp: Response) -> Response {
    for v in WWW_AUTHENTICATE {
        resp.headers_mut()
            .append(header::WWW_AUTHENTICATE, HeaderValue::from_static(v));
    }
    resp
}

/// The 403 for `principal` attempting `action`.
pub fn forbidden(principal: &Principal, action: &Action) -> EsError {
    let who = match &principal.kind {
        PrincipalKind::ApiKey { id, .. } => {
            format!("API key id [{id}] of user [{}]", principal.username)
        }
        _ => format!(
            "user [{}] with effective roles [{}]",
            principal.username, principal.role
        ),
    };
    let (on, kind) = match &action.index {
        Some(idx) if action.is_index_action() => (format!(" on indices [{idx}]"), "index"),
        _ => (String::new(), "cluster"),
    };
    EsError::new(
        StatusCode::FORBIDDEN,
        "security_exception",
        format!(
            "action [{}] is unauthorized for {who}{on}, this action is granted by the {kind} privileges [manage]",
            action.name
        ),
    )
}

/// The authentication machinery of one server: the current credential snapshot, the
/// failure limiter, the injected clock.
pub struct Security {
    current: ArcSwap<Authenticator>,
    limiter: Mutex<FailureLimiter>,
    clock: Arc<dyn Clock>,
    cache_key: Zeroizing<[u8; 32]>,
    limits: SecurityLimits,
    verifications: tokio::sync::Semaphore,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let current = self.current.load();
        f.debug_struct("Security")
            .field("policy", &current.policy)
            .field("enabled", &current.enabled)
            .field("users", &current.store.users().len())
            .field("api_keys", &current.store.api_keys().len())
            .finish_non_exhaustive()
    }
}

impl Security {
    /// Authentication off (loopback, no credentials) until [`install`](Self::install).
    /// `cache_key` keys the fingerprints of cached verifications: fresh random bytes.
    pub fn new(clock: Arc<dyn Clock>, limits: SecurityLimits, cache_key: [u8; 32]) -> Self {
        Self {
            current: ArcSwap::from_pointee(Authenticator::new(
                AuthPolicy::LOOPBACK_DEFAULT,
                CredentialStore::empty(),
                limits.cache,
            )),
            limiter: Mutex::new(FailureLimiter::new(limits.limiter)),
            clock,
            cache_key: Zeroizing::new(cache_key),
            limits,
            verifications: tokio::sync::Semaphore::new(limits.concurrent_verifications.max(1)),
        }
    }

    /// Sets the policy and the credentials (at start).
    pub fn install(&self, policy: AuthPolicy, store: CredentialStore) {
        self.current.store(Arc::new(Authenticator::new(
            policy,
            store,
            self.limits.cache,
        )));
    }

    /// Swaps in reloaded credentials under the same policy; cached verifications are
    /// dropped with the old snapshot.
    pub fn replace_store(&self, store: CredentialStore) {
        let policy = self.current.load().policy;
        self.install(policy, store);
    }

    /// The policy in force.
    pub fn policy(&self) -> AuthPolicy {
        self.current.load().policy
    }

    /// Whether requests must authenticate now.
    pub fn enabled(&self) -> bool {
        self.current.load().enabled
    }

    /// Users and API keys known now.
    pub fn counts(&self) -> (usize, usize) {
        let c = self.current.load();
        (c.store.users().len(), c.store.api_keys().len())
    }

    fn limiter(&self) -> MutexGuard<'_, FailureLimiter> {
        self.limiter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Authenticates and authorizes one request; `Ok` carries who it is.
    async fn check(
        &self,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
        method: &axum::http::Method,
        uri: &axum::http::Uri,
    ) -> Result<Principal, Response> {
        let auth = self.current.load_full();
        if !auth.enabled {
            return Ok(Principal::anonymous());
        }
        let uri_text = uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), ToString::to_string);
        let presented = match parse_authorization(headers) {
            Header::Missing => {
                return Err(challenge(
                    unauthenticated(format!(
                        "missing authentication credentials for REST request [{uri_text}]"
                    ))
                    .into_response(),
                ));
            }
            Header::Malformed(why) => Err(Failure::Other {
                detail: why.to_owned(),
                guess: true,
            }),
            Header::Bearer => Err(Failure::Other {
                detail: "Bearer: coffer has no token service; use Basic or ApiKey".to_owned(),
                guess: false,
            }),
            Header::Presented(p) => Ok(p),
        };
        let client = ClientKey::of(peer);
        let now = self.clock.now();
        if let Some(wait) = self.limiter().retry_after(client, now) {
            tracing::warn!(client = %peer_text(peer), "authentication refused: too many failed attempts from this address");
            return Err(rate_limited(wait));
        }
        let principal = match presented {
            Err(f) => Err(f),
            Ok(presented) => self.verify(&auth, presented, now).await,
        };
        let principal = match principal {
            Ok(p) => p,
            Err(failure) => {
                if failure.is_guess() {
                    self.limiter().record_failure(client, now);
                }
                let who = match &failure {
                    Failure::User { name } => printable(name),
                    Failure::Other { detail, .. } => detail.clone(),
                };
                tracing::info!(client = %peer_text(peer), credentials = %who, "authentication failed");
                return Err(challenge(failure.into_error(&uri_text).into_response()));
            }
        };
        let action = classify(method, uri.path());
        if principal.role != Role::Manage && !action.read_only {
            tracing::info!(user = %principal.username, action = action.name, "request refused: role lacks the privilege");
            return Err(forbidden(&principal, &action).into_response());
        }
        Ok(principal)
    }

    async fn verify(
        &self,
        auth: &Arc<Authenticator>,
        presented: Presented,
        now: DateTime<Utc>,
    ) -> Result<Principal, Failure> {
        let fp = presented.fingerprint(&self.cache_key);
        if let Some(p) = auth.cache().get(&fp, now)
            && p.still_valid(now)
        {
            return Ok(p);
        }
        let Ok(_permit) = self.verifications.acquire().await else {
            return Err(Failure::Other {
                detail: "the server is shutting down".to_owned(),
                guess: false,
            });
        };
        let snapshot = Arc::clone(auth);
        let result = tokio::task::spawn_blocking(move || snapshot.verify(&presented, now))
            .await
            .unwrap_or_else(|_| {
                Err(Failure::Other {
                    detail: "verification failed unexpectedly".to_owned(),
                    guess: false,
                })
            });
        if let Ok(p) = &result {
            auth.cache().insert(fp, p.clone(), now);
        }
        result
    }
}

fn peer_text(peer: Option<IpAddr>) -> String {
    peer.map_or_else(|| "unknown".to_owned(), |p| p.to_string())
}

/// 429 for an address over the failure limit. Elasticsearch has no such limit; 429 with
/// `Retry-After` is the standard answer, and clients back off on it.
fn rate_limited(wait: TimeDelta) -> Response {
    let secs = u64::try_from(wait.num_seconds().max(1)).unwrap_or(1);
    let mut resp = EsError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "security_exception",
        format!(
            "too many failed authentication attempts from this address; credentials are not checked for the next [{secs}s]"
        ),
    )
    .into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}

/// The middleware: authenticates, authorizes, and hands the [`Principal`] to the handler
/// as a request extension.
pub async fn layer(
    State(security): State<Arc<Security>>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    match security
        .check(req.headers(), peer, req.method(), req.uri())
        .await
    {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Err(resp) => resp,
    }
}

/// `GET /_security/_authenticate`: who the credentials belong to.
pub async fn authenticate(
    principal: Option<axum::Extension<Principal>>,
    params: Params,
) -> ApiResult<Response> {
    params.check(&[])?;
    let p = principal.map_or_else(Principal::anonymous, |axum::Extension(p)| p);
    let (realm, kind) = match &p.kind {
        PrincipalKind::Anonymous => (
            json!({"name": "__anonymous", "type": "__anonymous"}),
            "anonymous",
        ),
        PrincipalKind::User => (json!({"name": "keystore", "type": "keystore"}), "realm"),
        PrincipalKind::ApiKey { .. } => (
            json!({"name": "_es_api_key", "type": "_es_api_key"}),
            "api_key",
        ),
    };
    let mut body = json!({
        "username": p.username,
        "roles": [p.role.as_str()],
        "full_name": Value::Null,
        "email": Value::Null,
        "metadata": {},
        "enabled": true,
        "authentication_realm": realm,
        "lookup_realm": realm,
        "authentication_type": kind,
    });
    if let PrincipalKind::ApiKey { id, .. } = &p.kind {
        body["api_key"] = json!({"id": id, "name": p.username});
    }
    Ok(axum::Json(body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn authorization_header_parsing() {
        use base64::engine::general_purpose::STANDARD;
        let basic = format!("Basic {}", STANDARD.encode("alice:pa:ss"));
        match parse_authorization(&headers(&basic)) {
            Header::Presented(Presented::Basic { user, password }) => {
                assert_eq!(user, "alice");
                assert_eq!(password.as_slice(), b"pa:ss");
            }
            _ => panic!("not basic"),
        }
        let key = format!("ApiKey {}", STANDARD.encode("id1:k"));
        assert!(matches!(
            parse_authorization(&headers(&key)),
            Header::Presented(Presented::ApiKey { .. })
        ));
        assert!(matches!(
            parse_authorization(&HeaderMap::new()),
            Header::Missing
        ));
        assert!(matches!(
            parse_authorization(&headers("Negotiate x")),
            Header::Missing
        ));
        assert!(matches!(
            parse_authorization(&headers("Bearer x")),
            Header::Bearer
        ));
        assert!(matches!(
            parse_authorization(&headers("Basic !!!")),
            Header::Malformed(_)
        ));
        assert!(matches!(
            parse_authorization(&headers(&format!("Basic {}", STANDARD.encode("nocolon")))),
            Header::Malformed(_)
        ));
    }

    #[test]
    fn presented_credentials_debug_is_redacted() {
        let p = Presented::Basic {
            user: "alice".into(),
            password: Zeroizing::new(b"s3cret-pw".to_vec()),
        };
        let k = Presented::ApiKey {
            id: "id".into(),
            key: Zeroizing::new(b"s3cret-key".to_vec()),
        };
        for shown in [format!("{p:?}"), format!("{k:?}")] {
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("redacted"), "{shown}");
        }
    }

    #[test]
    fn policy_rule() {
        let empty = CredentialStore::empty();
        let some = {
            let u = UserRecord::new(
                "u",
                Role::Monitor,
                &secrecy::SecretString::from("password".to_owned()),
                &[1; store::SALT_LEN],
            )
            .unwrap();
            CredentialStore::from_entries([(
                u.entry_name().as_str(),
                Some(u.entry_value().as_str()),
            )])
            .unwrap()
        };
        let p = |setting, loopback_only| AuthPolicy {
            setting,
            loopback_only,
        };
        assert!(!p(None, true).enabled(&empty));
        assert!(p(None, true).enabled(&some));
        assert!(p(None, false).enabled(&empty));
        assert!(!p(Some(false), false).enabled(&some));
        assert!(p(Some(true), true).enabled(&empty));
    }

    #[test]
    fn forbidden_messages_follow_elasticsearch() {
        let bob = Principal::user("bob", Role::Monitor);
        let e = forbidden(&bob, &classify(&axum::http::Method::PUT, "/_snapshot/r/s"));
        assert_eq!(
            e.reason,
            "action [cluster:admin/snapshot/create] is unauthorized for user [bob] with effective roles [monitor], this action is granted by the cluster privileges [manage]"
        );
        let e = forbidden(&bob, &classify(&axum::http::Method::PUT, "/logs"));
        assert!(
            e.reason
                .contains("on indices [logs], this action is granted by the index privileges"),
            "{}",
            e.reason
        );
    }
}
