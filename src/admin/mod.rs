//! The admin listener: `/healthz`, `/readyz`, `/metrics`, and the admin page ([`page`],
//! `/ui`). Plain HTTP on a private address.
//!
//! What its handlers share is in [`state`], below both this router and the page.

pub mod page;
pub mod state;

pub use state::AdminState;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

pub fn router(state: Arc<AdminState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(page::routes())
        .fallback(|| async { crate::http::error::ApiError::not_found() })
        .with_state(state)
}

/// Ready when a write commits and the workers are turning.
async fn readyz(State(s): State<Arc<AdminState>>) -> Response {
    let store = tokio::time::timeout(Duration::from_secs(2), s.store.check_writable()).await;
    let store_ok = matches!(store, Ok(Ok(())));
    let workers_ok = s.workers.alive(s.worker_liveness);
    let status = if store_ok && workers_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let store_msg = match store {
        Ok(Ok(())) => "writable".to_owned(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no answer within 2s".to_owned(),
    };
    (
        status,
        Json(json!({
            "status": if status == StatusCode::OK { "ready" } else { "not ready" },
            "store": store_msg,
            "workers": if workers_ok { "alive" } else { "stalled or stopped" },
        })),
    )
        .into_response()
}

async fn metrics(State(s): State<Arc<AdminState>>) -> Response {
    if let Ok(counts) = s.store.job_counts().await {
        s.metrics.set_job_counts(counts);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}
