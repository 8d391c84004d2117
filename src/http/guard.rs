//! The per-hook door: IP allowlist, then authentication, before any handler runs.
//!
//! It is a middleware on the hook's route, so the body has not been read when it
//! decides: a handler never sees the body of a request that failed here.
//!
//! An inline hook's budget counts from the request's [`Arrival`], the door's time
//! included: a bearer check that waits for the issuer's keys longer than the budget
//! allows ends with the hook's fallback ([`DeadlineAnswer`]), not a late answer.

use super::auth::Authenticator;
use super::error::ApiError;
use super::network::{ClientIpResolver, IpAllowlist};
use super::oauth::{BearerError, BearerVerifier, OAuthSetupError};
use crate::config::AuthConfig;
use crate::metrics::{HookStatus, Metrics};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Taken off an inline hook's budget for the door's wait for keys: when the door gives up,
/// the fallback still has to be built and written back through the layers above. That
/// takes well under a millisecond, and Tokio's timers fire up to a millisecond late; 5 ms
/// covers both with room to spare, and costs a key fetch almost nothing of its time.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(5);

/// How a hook's caller proves it is Okta.
pub enum DoorAuth {
    /// Basic or secret header: constant-time comparison with every configured credential.
    Shared(Authenticator),
    /// OAuth 2.0 bearer JWT (inline hooks).
    Bearer(BearerVerifier),
}

impl DoorAuth {
    pub fn from_config(config: &AuthConfig) -> Result<DoorAuth, OAuthSetupError> {
        Ok(match config {
            AuthConfig::Oauth(o) => DoorAuth::Bearer(BearerVerifier::new(o)?),
            other => DoorAuth::Shared(Authenticator::from_config(other)),
        })
    }

    pub async fn check(&self, headers: &axum::http::HeaderMap) -> bool {
        self.check_by(headers, None).await == DoorCheck::Passed
    }

    /// [`check`](Self::check), where a bearer token's wait for the issuer's keys (an
    /// unknown `kid`) ends at `deadline`. Refusals are logged by the check.
    pub async fn check_by(
        &self,
        headers: &axum::http::HeaderMap,
        deadline: Option<Instant>,
    ) -> DoorCheck {
        match self {
            DoorAuth::Shared(a) if a.check(headers) => DoorCheck::Passed,
            DoorAuth::Shared(_) => DoorCheck::Refused,
            DoorAuth::Bearer(b) => match b.check_by(headers, deadline).await {
                Ok(()) => DoorCheck::Passed,
                Err(BearerError::TimedOut) => DoorCheck::OutOfTime,
                Err(_) => DoorCheck::Refused,
            },
        }
    }
}

/// What the door's authentication decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoorCheck {
    Passed,
    /// Missing or wrong credentials: 401.
    Refused,
    /// No verdict by the deadline: the issuer's keys were still being fetched.
    OutOfTime,
}

/// When the request reached its hook's route; inline budgets count from here.
#[derive(Debug, Clone, Copy)]
pub struct Arrival(pub std::time::Instant);

/// What the door answers for an inline hook whose authentication cannot finish inside the
/// hook's budget (a key fetch for an unknown `kid` that is still running): the hook's own
/// fallback, so that Okta gets an answer before its 3 s timeout.
pub trait DeadlineAnswer: Send + Sync + 'static {
    /// The hook's budget, counted from [`Arrival`].
    fn budget(&self) -> std::time::Duration;
    /// The fallback answer (already logged and counted by the implementation).
    fn answer(&self) -> axum::response::Response;
}

/// What the guard of one hook checks.
pub struct Guard {
    pub hook: String,
    pub auth: DoorAuth,
    pub allow: IpAllowlist,
    /// Shared by every hook: the trusted proxies are a property of the deployment.
    pub resolver: Arc<ClientIpResolver>,
    /// When false, the verification GET is answered without credentials.
    pub verify_requires_auth: bool,
    /// Inline hooks: the budget a bearer check must finish in, counted from [`Arrival`]
    /// (less [`DEADLINE_MARGIN`]), and the answer when it cannot. `None` for event hooks.
    pub deadline: Option<Arc<dyn DeadlineAnswer>>,
}

/// Proof that a request went through its hook's [`guard`]: the client address passed the
/// allowlist and, unless [`Admission::VerificationWithoutCredentials`], the credentials
/// passed the check.
///
/// The fields are private, so only this module makes one: the guard inserts it into the
/// request's extensions, and every hook handler takes it as an argument (an extractor).
/// A hook route mounted without its guard therefore refuses every call with a 500 (a
/// wiring bug, logged as one) before its handler runs: "a handler never reads an
/// unauthenticated body" holds by the types, not by the care of whoever builds the router.
#[derive(Debug, Clone, Copy)]
pub struct Authenticated {
    client: IpAddr,
    admission: Admission,
}

/// How the guard let a request in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The credentials passed the hook's check.
    Credentials,
    /// The event hook's verification GET, let in without credentials because the hook's
    /// `verify_requires_auth` is false. It has no body; only a GET carries it.
    VerificationWithoutCredentials,
}

impl Authenticated {
    /// The client address as the guard resolved it (through trusted proxies).
    pub fn client(&self) -> IpAddr {
        self.client
    }

    pub fn admission(&self) -> Admission {
        self.admission
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let found = parts.extensions.get::<Authenticated>().copied();
        match found {
            Some(a) if a.admission == Admission::Credentials || parts.method == Method::GET => {
                Ok(a)
            }
            Some(_) => {
                tracing::error!(
                    method = %parts.method,
                    path = %parts.uri.path(),
                    "wiring bug: a request let in without credentials (the verification GET's admission) reached a handler for another method; refused"
                );
                Err(ApiError::not_guarded())
            }
            None => {
                tracing::error!(
                    method = %parts.method,
                    path = %parts.uri.path(),
                    "wiring bug: a hook route is mounted without its guard; every call to it is refused"
                );
                Err(ApiError::not_guarded())
            }
        }
    }
}

pub async fn guard(
    State(g): State<Arc<Guard>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(client) = g.resolver.client_ip(peer.ip(), req.headers()) else {
        tracing::info!(hook = %g.hook, peer = %peer, "refused: a trusted proxy sent an unusable forwarded header");
        return ApiError::forbidden().into_response();
    };
    if !g.allow.allows(client) {
        tracing::info!(hook = %g.hook, client = %client, peer = %peer, "refused: address not allowed");
        return ApiError::forbidden().into_response();
    }
    let is_verification = req.method() == Method::GET;
    let admission = if g.verify_requires_auth || !is_verification {
        Admission::Credentials
    } else {
        Admission::VerificationWithoutCredentials
    };
    if admission == Admission::Credentials {
        let deadline = g.deadline.as_ref().map(|d| {
            // Without an Arrival (a guard outside `track`), the budget counts from here.
            let arrival = req
                .extensions()
                .get::<Arrival>()
                .map_or_else(Instant::now, |a| a.0);
            arrival + d.budget().saturating_sub(DEADLINE_MARGIN)
        });
        match g.auth.check_by(req.headers(), deadline).await {
            DoorCheck::Passed => {}
            DoorCheck::Refused => {
                tracing::info!(hook = %g.hook, client = %client, "refused: missing or wrong credentials");
                return ApiError::unauthorized().into_response();
            }
            DoorCheck::OutOfTime => {
                if let Some(d) = &g.deadline {
                    tracing::warn!(
                        hook = %g.hook,
                        client = %client,
                        budget_ms = d.budget().as_millis() as u64,
                        "the key fetch for the token's unknown kid did not finish inside the hook's budget: sending the hook's fallback (the fetch goes on for the next call)"
                    );
                    return d.answer();
                }
                // Only a deadline runs out; without one this is not reached.
                tracing::info!(hook = %g.hook, client = %client, "refused: signing keys not available in time");
                return ApiError::unauthorized().into_response();
            }
        }
    }
    req.extensions_mut()
        .insert(Authenticated { client, admission });
    next.run(req).await
}

/// Labels for the request metrics of one route.
#[derive(Clone)]
pub struct Tracked {
    pub hook: Arc<str>,
    pub metrics: Arc<Metrics>,
    pub activity: Arc<crate::activity::Activity>,
    pub request_timeout: Duration,
    /// The configuration generation whose router serves the request: every log line of
    /// the request carries it (the `request` span), so an answer is traced to its config.
    pub generation: u64,
}

/// Outermost layer of a hook route: the whole-request timeout, and the one place where
/// every answer is counted (`requests` by status, `rejections` by reason).
/// Also records the request for the admin page ([`crate::activity`]).
///
/// Its first step stamps the request with its [`Arrival`], from which every deadline
/// inside is counted. The timeout's 408 is for a client too slow to send its request:
/// work on our side (a store commit, a key fetch, a handler) has deadlines of its own
/// that end before it (`server.request_timeout` is at least 3 s, checked at start).
pub async fn track(State(t): State<Tracked>, mut req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    req.extensions_mut().insert(Arrival(started));
    let at = std::time::SystemTime::now();
    let span = tracing::info_span!("request", generation = t.generation);
    let run = tracing::Instrument::instrument(next.run(req), span);
    let mut res = match tokio::time::timeout(t.request_timeout, run).await {
        Ok(res) => res,
        Err(_) => {
            tracing::info!(hook = %t.hook, "request timed out");
            ApiError::timeout().into_response()
        }
    };
    count(&t.metrics, &t.hook, &res);
    // The note is for the recorder only: taken out, not copied.
    let (kind, outcome, event_types) = match res.extensions_mut().remove::<crate::activity::Note>()
    {
        Some(n) => (n.kind, n.outcome, n.event_types),
        None => (
            crate::activity::Kind::Refused,
            res.extensions()
                .get::<ApiError>()
                .map(|e| e.summary.to_string())
                .unwrap_or_else(|| res.status().to_string()),
            Vec::new(),
        ),
    };
    t.activity.record(crate::activity::Entry {
        at,
        hook: Arc::clone(&t.hook),
        kind,
        status: res.status().as_u16(),
        latency: started.elapsed(),
        outcome,
        event_types,
    });
    res
}

/// Counts one answer; also used by the fallback routes (hook label `-`).
pub fn count(metrics: &Metrics, hook: &str, res: &Response) {
    metrics
        .requests
        .get_or_create(&HookStatus {
            hook: hook.to_owned(),
            status: res.status().as_u16(),
        })
        .inc();
    if let Some(reason) = res.extensions().get::<ApiError>().and_then(|e| e.reason) {
        metrics.reject(hook, reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    async fn extract(
        method: Method,
        pass: Option<Authenticated>,
    ) -> Result<Authenticated, ApiError> {
        let (mut parts, ()) = axum::http::Request::builder()
            .method(method)
            .uri("/hooks/okta")
            .body(())
            .expect("request")
            .into_parts();
        if let Some(pass) = pass {
            parts.extensions.insert(pass);
        }
        Authenticated::from_request_parts(&mut parts, &()).await
    }

    #[tokio::test]
    async fn only_the_guards_pass_is_extracted_and_a_credential_free_one_only_for_get() {
        let client = IpAddr::from([192, 0, 2, 7]);
        let with = |admission| Authenticated { client, admission };
        for method in [Method::GET, Method::POST] {
            let e = extract(method.clone(), None).await.expect_err("no pass");
            assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR, "{method}");
            assert_eq!(e.reason, None, "{method}: not the caller's error");
            let a = extract(method.clone(), Some(with(Admission::Credentials)))
                .await
                .expect("the guard's pass");
            assert_eq!(
                (a.client(), a.admission()),
                (client, Admission::Credentials)
            );
        }
        let open = Some(with(Admission::VerificationWithoutCredentials));
        let a = extract(Method::GET, open)
            .await
            .expect("the verification GET");
        assert_eq!(a.admission(), Admission::VerificationWithoutCredentials);
        let e = extract(Method::POST, open)
            .await
            .expect_err("a POST without credentials");
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
