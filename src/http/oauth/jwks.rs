//! The keys a bearer token is verified with: one JWKS document's usable keys
//! ([`KeySet`]), read from a file or fetched from the issuer and kept fresh ([`Remote`]).

use super::*;

/// One key we are willing to verify with, and the one algorithm it verifies.
pub(super) struct VerifyKey {
    pub(super) kid: Option<String>,
    pub(super) alg: Algorithm,
    pub(super) key: DecodingKey,
}

/// The usable keys of one JWKS document.
pub(super) struct KeySet {
    pub(super) keys: Vec<VerifyKey>,
    /// Keys in the document, usable or not (a kid-less token needs exactly one).
    pub(super) total: usize,
    /// Increases with every installed set; lets waiters see that someone else fetched.
    pub(super) generation: u64,
    pub(super) fetched_at: Instant,
}

/// Why a key set could not be had: a fetch of the issuer's keys that failed, or a
/// document that cannot be installed. Logged (with the URL) by the caller, which keeps the
/// cached keys; `jwks_file` problems become `check-config`'s words.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// The request failed (connect, TLS, timeout, body); the URL is left out of the words.
    #[error(transparent)]
    Request(reqwest::Error),
    #[error("status {0}")]
    Status(reqwest::StatusCode),
    #[error("larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    #[error("not a JWKS document: {0}")]
    NotJwks(#[source] serde_json::Error),
    /// Installing it would lock Okta out.
    #[error(
        "none of its {total} key(s) is an RSA (RS256/384/512) or EC (P-256/P-384) signing key"
    )]
    NoSigningKey { total: usize },
}

impl JwksError {
    pub(super) fn request(e: reqwest::Error) -> Self {
        JwksError::Request(e.without_url())
    }
}

impl KeySet {
    /// Parses a JWKS document and keeps the keys that fit the allow-list. A document
    /// without one usable signing key is an error: installing it would lock Okta out.
    pub(super) fn parse(bytes: &[u8], generation: u64) -> Result<KeySet, JwksError> {
        let set: JwkSet = serde_json::from_slice(bytes).map_err(JwksError::NotJwks)?;
        let total = set.keys.len();
        let keys: Vec<VerifyKey> = set.keys.iter().filter_map(usable_key).collect();
        if keys.is_empty() {
            return Err(JwksError::NoSigningKey { total });
        }
        if keys.len() < total {
            tracing::debug!(
                usable = keys.len(),
                total,
                "JWKS: keys that are not signing keys of an allowed algorithm are ignored"
            );
        }
        Ok(KeySet {
            keys,
            total,
            generation,
            fetched_at: Instant::now(),
        })
    }

    /// Index of the key for this `kid` and algorithm.
    pub(super) fn select(&self, kid: Option<&str>, alg: Algorithm) -> Result<usize, BearerError> {
        match kid {
            Some(kid) => {
                let mut named = false;
                for (i, k) in self.keys.iter().enumerate() {
                    if k.kid.as_deref() == Some(kid) {
                        if k.alg == alg {
                            return Ok(i);
                        }
                        named = true;
                    }
                }
                Err(if named {
                    BearerError::AlgorithmMismatch
                } else {
                    BearerError::UnknownKid
                })
            }
            // Without a kid there is no way to choose, so only a one-key set will do.
            None if self.total == 1 && self.keys.len() == 1 => {
                if self.keys[0].alg == alg {
                    Ok(0)
                } else {
                    Err(BearerError::AlgorithmMismatch)
                }
            }
            None => Err(BearerError::MissingKid),
        }
    }
}

/// The algorithm a JWK verifies, if it is a signing key we accept; `None` skips it.
pub(super) fn usable_key(jwk: &Jwk) -> Option<VerifyKey> {
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    if matches!(&jwk.common.key_operations, Some(ops) if !ops.contains(&KeyOperations::Verify)) {
        return None;
    }
    let declared = jwk.common.key_algorithm;
    let alg = match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => {
            let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p.n.trim_end_matches('='))
                .ok()?;
            let significant = n.iter().skip_while(|b| **b == 0).count();
            if significant < MIN_RSA_MODULUS_BYTES {
                return None;
            }
            match declared {
                // Okta's keys say RS256; a key that says nothing is taken as RS256 only.
                None | Some(KeyAlgorithm::RS256) => Algorithm::RS256,
                Some(KeyAlgorithm::RS384) => Algorithm::RS384,
                Some(KeyAlgorithm::RS512) => Algorithm::RS512,
                Some(_) => return None,
            }
        }
        AlgorithmParameters::EllipticCurve(p) => {
            // The curve fixes the algorithm, so a missing `alg` is not ambiguous; a
            // contradicting one is a broken key.
            let (alg, expected) = match p.curve {
                EllipticCurve::P256 => (Algorithm::ES256, KeyAlgorithm::ES256),
                EllipticCurve::P384 => (Algorithm::ES384, KeyAlgorithm::ES384),
                _ => return None,
            };
            match declared {
                None => alg,
                Some(d) if d == expected => alg,
                Some(_) => return None,
            }
        }
        // Symmetric (`oct`) keys would mean HMAC: never. EdDSA is not on the list.
        _ => return None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(VerifyKey {
        kid: jwk.common.key_id.clone(),
        alg,
        key,
    })
}

/// Where the keys come from.
pub(super) enum KeySource {
    /// `jwks_file`: read once at start.
    Fixed(Arc<KeySet>),
    /// `jwks_url`: fetched, cached and refreshed.
    Remote(Arc<Remote>),
}

/// The cache of a JWKS URL.
pub(super) struct Remote {
    pub(super) url: reqwest::Url,
    pub(super) client: reqwest::Client,
    pub(super) ttl: Duration,
    pub(super) min_refresh: Duration,
    /// The installed key set. A std lock held only to clone the `Arc`, never across an
    /// await, so readers never wait for a fetch.
    pub(super) current: RwLock<Option<Arc<KeySet>>>,
    /// Single flight: whoever holds it fetches; the others wait and take the result.
    /// Holds the generation of the installed set, changed only under this lock.
    pub(super) fetch: tokio::sync::Mutex<u64>,
    /// When the last fetch ended, in ms since `epoch` plus one (0: never). An atomic so
    /// the hot path can decide lock-free whether a background refresh is due.
    pub(super) last_attempt_ms: AtomicU64,
    pub(super) epoch: Instant,
    /// A background refresh is running; stops a stale cache from spawning one per request.
    pub(super) background: AtomicBool,
    pub(super) fetches: AtomicU64,
    pub(super) failures: AtomicU64,
    /// Stops the refresher ([`Remote::keep_fresh`]); cancelled when this is dropped.
    pub(super) stop: CancellationToken,
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Remote {
    pub(super) fn new(
        url: reqwest::Url,
        config: &OAuthConfig,
    ) -> Result<Remote, super::OAuthSetupError> {
        // No redirects (the shared policy): the configured URL is the one we trust, and
        // Okta does not redirect its keys endpoint.
        let client = crate::outbound::client(JWKS_FETCH_TIMEOUT)
            .build()
            .map_err(super::OAuthSetupError::Client)?;
        Ok(Remote {
            url,
            client,
            ttl: config.jwks_cache_ttl,
            min_refresh: config.jwks_min_refresh,
            current: RwLock::new(None),
            fetch: tokio::sync::Mutex::new(0),
            last_attempt_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            background: AtomicBool::new(false),
            fetches: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            stop: CancellationToken::new(),
        })
    }

    pub(super) fn snapshot(&self) -> Option<Arc<KeySet>> {
        // A panic while holding this lock cannot leave the Option half-written.
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// True when the last fetch ended less than `min_refresh` ago.
    pub(super) fn fetched_recently(&self) -> bool {
        match self.last_attempt_ms.load(Ordering::Acquire) {
            0 => false,
            at => {
                let since_epoch = self.epoch.elapsed().as_millis() as u64;
                since_epoch.saturating_sub(at - 1) < self.min_refresh.as_millis() as u64
            }
        }
    }

    /// The cache is past its TTL: refresh it without making this request wait.
    pub(super) fn refresh_in_background_if_stale(self: &Arc<Self>, set: &KeySet) {
        if set.fetched_at.elapsed() < self.ttl || self.fetched_recently() {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self
            .background
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        let this = self.clone();
        let seen = set.generation;
        rt.spawn(async move {
            this.refresh(seen).await;
            this.background.store(false, Ordering::Release);
        });
    }

    /// Refreshes the keys ahead of their expiry for as long as the verifier lives (see
    /// [`Remote::next_refresh_in`]), so that Okta's calls find a fresh cache, and a key the
    /// issuer publishes before it signs with it is known before its first token. The first
    /// round is the eager fetch at start. It holds the cache only while it fetches, and
    /// ends once the [`Remote`] is dropped.
    pub(super) async fn keep_fresh(this: Weak<Remote>, stop: CancellationToken) {
        loop {
            let wait = match this.upgrade() {
                Some(remote) => remote.next_refresh_in(),
                None => return,
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            let Some(remote) = this.upgrade() else {
                return;
            };
            let seen = remote.snapshot().map_or(0, |s| s.generation);
            remote.refresh(seen).await;
        }
    }

    /// Time until the refresher's next round: at once when nothing was fetched yet; else
    /// when the installed set reaches 80% of `jwks_cache_ttl`, but never sooner than
    /// `min_refresh` after the last attempt, so that an issuer that fails is tried again
    /// at that pace rather than in a loop.
    pub(super) fn next_refresh_in(&self) -> Duration {
        let since_attempt = match self.last_attempt_ms.load(Ordering::Acquire) {
            0 => return Duration::ZERO,
            at => {
                let since_epoch = self.epoch.elapsed().as_millis() as u64;
                Duration::from_millis(since_epoch.saturating_sub(at - 1))
            }
        };
        let floor = self.min_refresh.saturating_sub(since_attempt);
        let ahead = match self.snapshot() {
            Some(set) => (self.ttl - self.ttl / 5).saturating_sub(set.fetched_at.elapsed()),
            None => Duration::ZERO,
        };
        ahead.max(floor)
    }

    /// [`Remote::refresh`] for a request that needs its result. The refresh runs in a task
    /// of its own: a request that stops waiting at `deadline` ([`BearerError::TimedOut`])
    /// does not cancel the fetch, which completes and fills the cache for the next request.
    pub(super) async fn refresh_waiting_until(
        self: &Arc<Self>,
        seen: u64,
        deadline: Option<Instant>,
    ) -> Result<Option<Arc<KeySet>>, BearerError> {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            // Not on a Tokio runtime: no task to run it in, nor a timer; wait for it here.
            return Ok(self.refresh(seen).await);
        };
        let this = self.clone();
        let task = rt.spawn(async move { this.refresh(seen).await });
        let joined = match deadline {
            None => task.await,
            Some(d) => tokio::time::timeout_at(d.into(), task)
                .await
                .map_err(|_| BearerError::TimedOut)?,
        };
        // A refresh that panicked installed nothing: the cached keys are what there is.
        Ok(joined.unwrap_or_else(|_| self.snapshot()))
    }

    /// Fetches the key set unless someone else installed a newer one than `seen` while we
    /// waited, or the last fetch was less than `min_refresh` ago. Returns what is
    /// installed afterwards. A failed fetch leaves the cached keys in place.
    pub(super) async fn refresh(&self, seen: u64) -> Option<Arc<KeySet>> {
        let mut generation = self.fetch.lock().await;
        if *generation != seen || self.fetched_recently() {
            return self.snapshot();
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let result = self.fetch_once(*generation + 1).await;
        let ended = self.epoch.elapsed().as_millis() as u64 + 1;
        self.last_attempt_ms.store(ended, Ordering::Release);
        match result {
            Ok(set) => {
                *generation = set.generation;
                tracing::debug!(url = %self.url, keys = set.keys.len(), "JWKS fetched");
                let set = Arc::new(set);
                *self
                    .current
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(set.clone());
                Some(set)
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                let cached = self.snapshot();
                tracing::warn!(
                    url = %self.url,
                    error = %e,
                    cached_keys = cached.as_ref().map_or(0, |s| s.keys.len()),
                    "JWKS fetch failed; keeping the cached keys"
                );
                cached
            }
        }
    }

    /// One GET of the JWKS, bounded in time and size.
    pub(super) async fn fetch_once(&self, generation: u64) -> Result<KeySet, JwksError> {
        let mut res = self
            .client
            .get(self.url.clone())
            .header(header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(JwksError::request)?;
        if !res.status().is_success() {
            return Err(JwksError::Status(res.status()));
        }
        if res
            .content_length()
            .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
        {
            return Err(JwksError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(JwksError::request)? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(JwksError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        KeySet::parse(&body, generation)
    }
}
