//! The admin listener: `/healthz`, `/readyz`, `/metrics`, `POST /reload` (behind the
//! admin token) and the admin page ([`page`], `/ui`). Plain HTTP on a private address.
//!
//! What its handlers share is in [`state`], below both this router and the page.

pub mod page;
pub mod state;

pub use state::AdminState;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

pub fn router(state: Arc<AdminState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/reload", post(reload))
        .merge(page::routes())
        .fallback(|| async { crate::http::error::ApiError::not_found() })
        .with_state(state)
}

/// What `/readyz` says, and `hookwarden_ready`.
struct Readiness {
    store: Result<(), String>,
    workers_alive: bool,
}

impl Readiness {
    fn ready(&self) -> bool {
        self.store.is_ok() && self.workers_alive
    }
}

/// Ready when a write commits and the workers are turning. Sets `hookwarden_ready`, so
/// that the gauge and `/readyz` never disagree.
async fn readiness(s: &AdminState) -> Readiness {
    let store = match tokio::time::timeout(Duration::from_secs(2), s.store.check_writable()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 2s".to_owned()),
    };
    let r = Readiness {
        store,
        workers_alive: s.workers.alive(s.worker_liveness),
    };
    s.metrics.ready.set(i64::from(r.ready()));
    r
}

async fn readyz(State(s): State<Arc<AdminState>>) -> Response {
    let r = readiness(&s).await;
    let status = if r.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if r.ready() { "ready" } else { "not ready" },
            "store": match &r.store {
                Ok(()) => "writable",
                Err(e) => e.as_str(),
            },
            "workers": if r.workers_alive { "alive" } else { "stalled or stopped" },
        })),
    )
        .into_response()
}

/// Reloads the configuration in place and answers with what the reload did: 200 when
/// the new configuration is in service, 422 when it was refused (the running one stays).
/// Takes `Authorization: Bearer <admin.token>`; 404 saying so when no token is set, like `/ui`.
async fn reload(State(s): State<Arc<AdminState>>, headers: axum::http::HeaderMap) -> Response {
    let token = s.config.load_full().admin.token.clone();
    match page::session::check_bearer(token.as_ref(), &headers) {
        Ok(()) => {}
        Err(page::session::Denied::Off) => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({"errorSummary": "POST /reload is off: set admin.token (the bearer token it takes) and reload with SIGHUP, or restart"})),
            )
                .into_response()
        }
        Err(page::session::Denied::Unauthorized) => {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(json!({"errorSummary": "Authentication required: Authorization: Bearer <admin.token>"})),
            )
                .into_response()
        }
    }
    let Some(reloader) = &s.reload else {
        return crate::http::error::ApiError::not_found().into_response();
    };
    let report = reloader.reload("POST /reload").await;
    let status = match report.result {
        state::ReloadResult::Reloaded => StatusCode::OK,
        state::ReloadResult::Refused => StatusCode::UNPROCESSABLE_ENTITY,
    };
    (status, Json(report)).into_response()
}

/// The metrics as last set: the store's gauges are the workers' last read of the store
/// (at most a second old, longer with a large backlog: see `worker::refresh_gauges`);
/// readiness is checked now, as `/readyz` would.
async fn metrics(State(s): State<Arc<AdminState>>) -> Response {
    readiness(&s).await;
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}
