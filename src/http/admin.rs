//! The admin listener: `/healthz`, `/readyz`, `/metrics`. Plain HTTP on a private address.

use crate::metrics::Metrics;
use crate::store::Store;
use crate::worker::WorkerHandle;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

pub struct AdminState {
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub workers: Arc<WorkerHandle>,
    /// The workers count as alive when their loop turned within this time.
    pub worker_liveness: Duration,
    /// Recent requests per hook, for the admin page.
    pub activity: Arc<crate::activity::Activity>,
    /// The running configuration (hooks, sinks, the admin token) for the admin page.
    pub config: Arc<crate::config::Config>,
}

pub fn router(state: Arc<AdminState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(super::admin_page::routes())
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
