//! The per-hook door: IP allowlist, then authentication, before any handler runs.
//!
//! It is a middleware on the hook's route, so the body has not been read when it
//! decides: a handler never sees the body of a request that failed here.

use super::auth::Authenticator;
use super::error::ApiError;
use super::network::{ClientIpResolver, IpAllowlist};
use super::oauth::BearerVerifier;
use crate::config::AuthConfig;
use crate::metrics::{HookStatus, Metrics};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How a hook's caller proves it is Okta.
pub enum DoorAuth {
    /// Basic or secret header: constant-time comparison with every configured credential.
    Shared(Authenticator),
    /// OAuth 2.0 bearer JWT (inline hooks).
    Bearer(BearerVerifier),
}

impl DoorAuth {
    pub fn from_config(config: &AuthConfig) -> Result<DoorAuth, String> {
        Ok(match config {
            AuthConfig::Oauth(o) => DoorAuth::Bearer(BearerVerifier::new(o)?),
            other => DoorAuth::Shared(Authenticator::from_config(other)),
        })
    }

    pub async fn check(&self, headers: &axum::http::HeaderMap) -> bool {
        match self {
            DoorAuth::Shared(a) => a.check(headers),
            DoorAuth::Bearer(b) => b.check(headers).await,
        }
    }
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
}

/// When the request reached its hook's route; inline budgets count from here.
#[derive(Debug, Clone, Copy)]
pub struct Arrival(pub std::time::Instant);

/// The client address as the guard resolved it, for handlers that log it.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub std::net::IpAddr);

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
    if (g.verify_requires_auth || !is_verification) && !g.auth.check(req.headers()).await {
        tracing::info!(hook = %g.hook, client = %client, "refused: missing or wrong credentials");
        return ApiError::unauthorized().into_response();
    }
    req.extensions_mut().insert(ClientIp(client));
    next.run(req).await
}

/// Labels for the request metrics of one route.
#[derive(Clone)]
pub struct Tracked {
    pub hook: Arc<str>,
    pub metrics: Arc<Metrics>,
    pub activity: Arc<crate::activity::Activity>,
    pub request_timeout: Duration,
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
    let mut res = match tokio::time::timeout(t.request_timeout, next.run(req)).await {
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
