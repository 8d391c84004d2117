//! Starting and stopping the whole service.

use crate::config::Config;
use tokio_util::sync::CancellationToken;

/// Listeners bound by the caller (tests bind port 0); `None` binds the configured addresses.
pub struct Listeners {
    pub public: std::net::TcpListener,
    pub admin: Option<std::net::TcpListener>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Start(String),
}

/// Runs the service until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    listeners: Option<Listeners>,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let _ = (config, listeners, shutdown);
    Err(RunError::Start("not yet".into()))
}

/// Cancels `token` on SIGTERM or Ctrl-C.
pub async fn shutdown_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    token.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested");
    token.cancel();
}
