//! TLS for the public listener (being written).

use crate::config::ServerConfig;
use crate::metrics::Metrics;
use axum_server::tls_rustls::RustlsConfig;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(pub String);

/// Loads the configured certificate, or generates a development one into `data_dir/tls/`.
pub async fn load(config: &ServerConfig) -> Result<RustlsConfig, TlsError> {
    let _ = config;
    todo!()
}

/// Reloads the certificate when its files change or on SIGHUP, until `shutdown`.
pub fn spawn_reloader(
    tls: RustlsConfig,
    config: &ServerConfig,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let _ = (tls, config, metrics, shutdown);
    todo!()
}
