//! OAuth 2.0 bearer tokens from Okta's inline hook channel (contract §1.3).
//!
//! With `channel.type: "OAUTH"`, Okta gets an access token from the authorization
//! server (client credentials) and sends `Authorization: Bearer <JWT>`. The token is the
//! only thing that proves the caller is Okta, and this endpoint faces the internet, so
//! every check fails closed:
//!
//! * **Algorithms are an allow-list, bound to the key.** RS256 is what Okta signs with;
//!   RS384/RS512 are accepted when the JWK says so, ES256/ES384 when the key is on that
//!   curve. `none`, HS* (a shared secret we do not have, and the classic confusion attack
//!   of an HMAC "signed" with our public key), PS* and EdDSA never are. The token's `alg`
//!   must also be the algorithm of the key it names, so an RSA key never checks an EC
//!   signature or the other way round.
//! * **Keys come only from our configuration** (`jwks_url` or `jwks_file`), never from
//!   the token's `jku`, `x5u` or `jwk` headers, which an attacker writes.
//! * **`exp` is required and enforced** (Okta once sent expired tokens, OKTA-551186), `nbf`
//!   when present, both with the configured leeway; `iss` and `aud` are required.
//! * **The JWKS fetch never sits on the hot path of a known key.** Keys are cached for
//!   `jwks_cache_ttl` and refreshed ahead of expiry, at 80% of it, by a task that lives as
//!   long as the verifier; a cache found expired anyway is refreshed in the background
//!   while the cached keys keep working. Only an unknown `kid` waits for a fetch, and
//!   fetches are single-flight and at most one per `jwks_min_refresh`, so a flood of
//!   random `kid`s costs the issuer one request, not thousands. When the issuer is down
//!   the cached keys stay in use.
//! * **A wait for keys has the caller's deadline, the fetch does not.** A fetch runs in a
//!   task of its own, so a request that stops waiting (an inline hook's budget, see
//!   [`BearerVerifier::verify_by`]) does not cancel it: it completes and fills the cache
//!   for the next request.
//!
//! Refusals are logged with their reason only; the token never reaches a log line.

use crate::config::OAuthConfig;
use axum::http::{header, HeaderMap};
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Longest token accepted. Okta's access tokens are about 1 KB; anything near this is
/// not a token, and the limit bounds the work an anonymous caller can cause.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Time allowed for one JWKS request. Short because an unknown `kid` waits for it and
/// Okta gives up on the whole hook call at 3 s.
pub const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest JWKS body read. Okta's sets are a few KB; the limit stops a misbehaving or
/// hijacked endpoint from filling memory.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// RSA keys shorter than this are ignored: they are breakable, and no issuer we expect
/// publishes them.
const MIN_RSA_MODULUS_BYTES: usize = 2048 / 8;

/// Why a request's bearer token was refused. The messages are safe to log: they never
/// contain the token nor any part of it chosen by the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    #[error("no Authorization header")]
    MissingHeader,
    #[error("more than one Authorization header")]
    MultipleHeaders,
    #[error("not a Bearer credential")]
    NotBearer,
    #[error("token longer than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error("malformed token")]
    Malformed,
    /// The token's `alg` is not on the allow-list (`none`, HS*, PS*, EdDSA, unknown).
    #[error("algorithm {0} not allowed")]
    AlgorithmNotAllowed(&'static str),
    /// A `crit` header asks for extensions we do not implement (RFC 7515 §4.1.11: reject).
    #[error("critical header extensions not supported")]
    CriticalHeader,
    /// No `kid`, and the key set does not have exactly one key to fall back on.
    #[error("token has no kid and the key set has more than one key")]
    MissingKid,
    #[error("unknown kid")]
    UnknownKid,
    /// The `kid` is unknown and the fetch of the issuer's keys was still running at the
    /// caller's deadline. Not a verdict on the token: the fetch goes on and fills the cache.
    #[error("the issuer's keys did not arrive in time")]
    TimedOut,
    /// The issuer's keys have never been fetched successfully.
    #[error("signing keys unavailable")]
    KeysUnavailable,
    /// The token's `alg` is allowed, but not for the key its `kid` names.
    #[error("algorithm does not match the key")]
    AlgorithmMismatch,
    #[error("bad signature")]
    BadSignature,
    #[error("expired")]
    Expired,
    #[error("not yet valid")]
    NotYetValid,
    #[error("missing claim {0}")]
    MissingClaim(&'static str),
    #[error("malformed claim {0}")]
    InvalidClaim(&'static str),
    #[error("wrong issuer")]
    WrongIssuer,
    #[error("wrong audience")]
    WrongAudience,
    /// Names the configured scope that is missing (ours, not the caller's words).
    #[error("missing scope {0}")]
    MissingScope(String),
    #[error("no client id claim (cid, client_id or sub)")]
    MissingClientId,
    #[error("wrong client id")]
    WrongClientId,
}

/// What a valid token says, for handlers and tests.
#[derive(Debug, Clone)]
pub struct Claims {
    /// `kid` of the key that verified the token.
    pub key_id: Option<String>,
    pub algorithm: Algorithm,
    pub issuer: String,
    pub subject: Option<String>,
    /// `cid`, else `client_id`, else `sub`: the OAuth client Okta used.
    pub client_id: Option<String>,
    /// Union of `scp` and `scope`, in either the array or the space-separated form.
    pub scopes: Vec<String>,
    /// `exp`, seconds since the Unix epoch.
    pub expires_at: u64,
    /// Every claim, as signed.
    pub all: Map<String, Value>,
}

/// Counters of the JWKS cache, for tests and operators.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JwksStats {
    /// Fetches started (successful or not).
    pub fetches: u64,
    /// Fetches that did not produce a usable key set.
    pub failures: u64,
    /// Key sets installed so far (a `jwks_file` counts as one).
    pub generation: u64,
}

/// Verifies `Authorization: Bearer <JWT>` against the issuer's keys.
///
/// One pointer wide and cheap to clone: the policy and the key cache live behind an
/// `Arc`, which background refreshes also hold.
#[derive(Clone)]
pub struct BearerVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    audience: String,
    scopes: Vec<String>,
    client_id: Option<String>,
    /// `exp`/`nbf`/`iss`/`aud` rules; only `algorithms` changes per token.
    validation: Validation,
    keys: KeySource,
}

impl std::fmt::Debug for BearerVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerVerifier")
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .field("scopes", &self.inner.scopes)
            .field("client_id", &self.inner.client_id)
            .field("jwks", &self.jwks_stats())
            .finish()
    }
}

/// Why a bearer verifier could not be built from `[…auth]` with `type = "oauth"`; the
/// words are `check-config`'s and `serve`'s.
#[derive(Debug, thiserror::Error)]
pub enum OAuthSetupError {
    #[error("oauth: {0} is empty")]
    Empty(&'static str),
    /// Zero would let every unknown kid cause a fetch.
    #[error("oauth: jwks_min_refresh must be longer than zero")]
    NoMinRefresh,
    #[error("oauth: set exactly one of jwks_url and jwks_file")]
    KeySource,
    #[error("oauth: cannot read jwks_file {}: {source}", path.display())]
    ReadFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("oauth: jwks_file {}: {source}", path.display())]
    File {
        path: std::path::PathBuf,
        source: JwksError,
    },
    #[error("oauth: jwks_url is not a URL: {0}")]
    Url(#[source] url::ParseError),
    #[error("oauth: cannot build the JWKS HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

impl BearerVerifier {
    /// Builds the verifier. A `jwks_file` is read and checked now (a bad file is an error);
    /// a `jwks_url` is fetched in the background at once when a Tokio runtime is running,
    /// else on first use.
    pub fn new(config: &OAuthConfig) -> Result<Self, OAuthSetupError> {
        if config.issuer.is_empty() {
            return Err(OAuthSetupError::Empty("issuer"));
        }
        if config.audience.is_empty() {
            return Err(OAuthSetupError::Empty("audience"));
        }
        if config.jwks_min_refresh.is_zero() {
            return Err(OAuthSetupError::NoMinRefresh);
        }
        let keys = match (&config.jwks_url, &config.jwks_file) {
            (Some(_), Some(_)) | (None, None) => return Err(OAuthSetupError::KeySource),
            (None, Some(path)) => {
                let bytes = std::fs::read(path).map_err(|source| OAuthSetupError::ReadFile {
                    path: path.clone(),
                    source,
                })?;
                let set = KeySet::parse(&bytes, 1).map_err(|source| OAuthSetupError::File {
                    path: path.clone(),
                    source,
                })?;
                KeySource::Fixed(Arc::new(set))
            }
            (Some(url), None) => {
                let url = reqwest::Url::parse(url).map_err(OAuthSetupError::Url)?;
                let remote = Arc::new(Remote::new(url, config)?);
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    // Its first round is the eager first fetch: the first call from Okta then
                    // finds the keys ready instead of spending its 3 s budget on our fetch,
                    // and a wrong URL shows in the log at start.
                    rt.spawn(Remote::keep_fresh(
                        Arc::downgrade(&remote),
                        remote.stop.clone(),
                    ));
                }
                KeySource::Remote(remote)
            }
        };
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = config.leeway.as_secs();
        Ok(BearerVerifier {
            inner: Arc::new(Inner {
                issuer: config.issuer.clone(),
                audience: config.audience.clone(),
                scopes: config.scopes.clone(),
                client_id: config.client_id.clone(),
                validation,
                keys,
            }),
        })
    }

    /// True when the request carries a valid token. Logs the reason of a refusal, never
    /// the token.
    pub async fn check(&self, headers: &HeaderMap) -> bool {
        self.check_by(headers, None).await.is_ok()
    }

    /// [`check`](Self::check) with a deadline for the wait for keys (see
    /// [`verify_by`](Self::verify_by)), and the reason of a refusal for the caller.
    /// Refusals are logged here; [`BearerError::TimedOut`] is not a refusal and is left to
    /// the caller, who decides what to answer instead.
    pub async fn check_by(
        &self,
        headers: &HeaderMap,
        deadline: Option<Instant>,
    ) -> Result<(), BearerError> {
        match self.verify_by(headers, deadline).await {
            Ok(_) => Ok(()),
            Err(e @ BearerError::TimedOut) => Err(e),
            Err(e @ BearerError::MissingHeader) => {
                tracing::debug!(reason = %e, "bearer token refused");
                Err(e)
            }
            Err(e) => {
                tracing::info!(reason = %e, issuer = %self.inner.issuer, "bearer token refused");
                Err(e)
            }
        }
    }

    /// Checks the request's bearer token and returns its claims, or why it was refused.
    pub async fn verify(&self, headers: &HeaderMap) -> Result<Claims, BearerError> {
        self.verify_by(headers, None).await
    }

    /// [`verify`](Self::verify), where the one wait there can be, for the issuer's keys
    /// when the token's `kid` is unknown, ends at `deadline` with [`BearerError::TimedOut`].
    /// The fetch is not cancelled with the wait: it completes in its own task and fills the
    /// cache for the next request. Nothing else waits, so a token under a known key gets
    /// its verdict whatever the deadline.
    pub async fn verify_by(
        &self,
        headers: &HeaderMap,
        deadline: Option<Instant>,
    ) -> Result<Claims, BearerError> {
        let token = bearer_token(headers)?;
        let head = peek_header(token)?;
        let alg = allowed_algorithm(&head.alg)?;
        if head.crit.is_some() {
            return Err(BearerError::CriticalHeader);
        }
        let (set, index) = self.find_key(head.kid.as_deref(), alg, deadline).await?;
        let key = &set.keys[index];
        let mut validation = self.inner.validation.clone();
        validation.algorithms = vec![key.alg];
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| map_jwt_error(e.kind()))?;
        self.claims(data.claims, key)
    }

    /// Counters of the key cache.
    pub fn jwks_stats(&self) -> JwksStats {
        match &self.inner.keys {
            KeySource::Fixed(set) => JwksStats {
                generation: set.generation,
                ..JwksStats::default()
            },
            KeySource::Remote(r) => JwksStats {
                fetches: r.fetches.load(Ordering::Relaxed),
                failures: r.failures.load(Ordering::Relaxed),
                generation: r.snapshot().map_or(0, |s| s.generation),
            },
        }
    }

    /// The key the token names, fetching the issuer's keys when the `kid` is unknown.
    async fn find_key(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        deadline: Option<Instant>,
    ) -> Result<(Arc<KeySet>, usize), BearerError> {
        let remote = match &self.inner.keys {
            KeySource::Fixed(set) => return set.select(kid, alg).map(|i| (set.clone(), i)),
            KeySource::Remote(r) => r,
        };
        let snapshot = remote.snapshot();
        if let Some(set) = &snapshot {
            match set.select(kid, alg) {
                Ok(i) => {
                    remote.refresh_in_background_if_stale(set);
                    return Ok((set.clone(), i));
                }
                Err(BearerError::UnknownKid) => {}
                Err(e) => return Err(e),
            }
        }
        // Unknown kid (a rotation at the issuer, or an attacker) or no keys yet: one
        // shared, rate-limited fetch.
        let seen = snapshot.as_ref().map_or(0, |s| s.generation);
        match remote.refresh_waiting_until(seen, deadline).await? {
            Some(set) => set.select(kid, alg).map(|i| (set.clone(), i)),
            None => Err(BearerError::KeysUnavailable),
        }
    }

    /// Scope and client checks on signed, time-valid claims; builds the [`Claims`].
    fn claims(&self, all: Map<String, Value>, key: &VerifyKey) -> Result<Claims, BearerError> {
        let scopes = scopes_of(&all);
        if let Some(missing) = self.inner.scopes.iter().find(|s| !scopes.contains(s)) {
            return Err(BearerError::MissingScope(missing.clone()));
        }
        let string = |name: &str| all.get(name).and_then(Value::as_str).map(str::to_owned);
        let client_id = string("cid")
            .or_else(|| string("client_id"))
            .or_else(|| string("sub"));
        if let Some(expected) = &self.inner.client_id {
            match &client_id {
                None => return Err(BearerError::MissingClientId),
                Some(c) if c != expected => return Err(BearerError::WrongClientId),
                Some(_) => {}
            }
        }
        // `decode` has required and checked these; reading them cannot fail for a valid token.
        let issuer = string("iss").ok_or(BearerError::MissingClaim("iss"))?;
        let expires_at = all
            .get("exp")
            .and_then(|v| v.as_u64().or_else(|| v.as_f64().map(|f| f as u64)))
            .ok_or(BearerError::MissingClaim("exp"))?;
        Ok(Claims {
            key_id: key.kid.clone(),
            algorithm: key.alg,
            issuer,
            subject: string("sub"),
            client_id,
            scopes,
            expires_at,
            all,
        })
    }
}

/// The token of the request's only `Authorization` header.
fn bearer_token(headers: &HeaderMap) -> Result<&str, BearerError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or(BearerError::MissingHeader)?;
    if values.next().is_some() {
        // Two credentials: which one a proxy or framework would pick is ambiguous.
        return Err(BearerError::MultipleHeaders);
    }
    let value = value.to_str().map_err(|_| BearerError::Malformed)?;
    let (scheme, rest) = value.split_once(' ').ok_or(BearerError::NotBearer)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::NotBearer);
    }
    let token = rest.trim_matches(' ');
    if token.len() > MAX_TOKEN_BYTES {
        return Err(BearerError::TooLarge);
    }
    if token.is_empty() || token.contains(' ') {
        return Err(BearerError::Malformed);
    }
    Ok(token)
}

/// The parts of the JOSE header needed before a key is chosen. Read by hand rather than
/// with `jsonwebtoken::decode_header` so that an `alg` the crate does not know (`none`)
/// is reported as "not allowed" instead of "malformed".
#[derive(Deserialize)]
struct PeekedHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

fn peek_header(token: &str) -> Result<PeekedHeader, BearerError> {
    let mut parts = token.split('.');
    let (Some(head), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BearerError::Malformed);
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head)
        .map_err(|_| BearerError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| BearerError::Malformed)
}

/// The allow-list. The name returned for a refusal is ours (a fixed string), so that a
/// caller cannot write into our logs through the `alg` header.
fn allowed_algorithm(alg: &str) -> Result<Algorithm, BearerError> {
    match alg {
        "RS256" => Ok(Algorithm::RS256),
        "RS384" => Ok(Algorithm::RS384),
        "RS512" => Ok(Algorithm::RS512),
        "ES256" => Ok(Algorithm::ES256),
        "ES384" => Ok(Algorithm::ES384),
        other => Err(BearerError::AlgorithmNotAllowed(
            match other.to_ascii_lowercase().as_str() {
                "none" => "none",
                "hs256" | "hs384" | "hs512" => "HS*",
                "ps256" | "ps384" | "ps512" => "PS*",
                "eddsa" => "EdDSA",
                _ => "(unrecognised)",
            },
        )),
    }
}

fn map_jwt_error(kind: &ErrorKind) -> BearerError {
    match kind {
        ErrorKind::InvalidSignature => BearerError::BadSignature,
        ErrorKind::ExpiredSignature => BearerError::Expired,
        ErrorKind::ImmatureSignature => BearerError::NotYetValid,
        ErrorKind::InvalidIssuer => BearerError::WrongIssuer,
        ErrorKind::InvalidAudience => BearerError::WrongAudience,
        ErrorKind::MissingRequiredClaim(c) => BearerError::MissingClaim(claim_name(c)),
        ErrorKind::InvalidClaimFormat(c) => BearerError::InvalidClaim(claim_name(c)),
        ErrorKind::InvalidAlgorithm => BearerError::AlgorithmMismatch,
        _ => BearerError::Malformed,
    }
}

fn claim_name(name: &str) -> &'static str {
    match name {
        "exp" => "exp",
        "nbf" => "nbf",
        "iss" => "iss",
        "aud" => "aud",
        "sub" => "sub",
        _ => "(other)",
    }
}

/// `scp` (Okta: an array) and `scope` (RFC 8693/9068: a space-separated string), each in
/// either form, since issuers differ.
fn scopes_of(claims: &Map<String, Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in ["scp", "scope"] {
        match claims.get(name) {
            Some(Value::String(s)) => out.extend(s.split_whitespace().map(str::to_owned)),
            Some(Value::Array(items)) => {
                out.extend(items.iter().filter_map(Value::as_str).map(str::to_owned))
            }
            _ => {}
        }
    }
    out
}

mod jwks;
pub use jwks::JwksError;
use jwks::{KeySet, KeySource, Remote, VerifyKey};

#[cfg(test)]
mod tests;
