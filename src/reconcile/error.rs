//! What can go wrong in a reconciliation pass. Messages name the URL and the status,
//! never a credential.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Okta answered with a status that retrying does not fix (or retries ran out).
    #[error("{url} answered {status}{summary}")]
    Status {
        url: String,
        status: u16,
        /// `: <errorSummary>` when Okta said why, else empty.
        summary: String,
    },
    /// No answer: connection, TLS or timeout, after the retries.
    #[error("cannot reach {url}: {message}")]
    Network { url: String, message: String },
    /// The answer is not a page of System Log events.
    #[error("{url}: {message}")]
    BadResponse { url: String, message: String },
    /// The OAuth token request failed.
    #[error("token request to {url} failed: {message}")]
    Token { url: String, message: String },
    #[error("the store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Setup(String),
    /// The service is stopping.
    #[error("stopped")]
    Stopped,
}

impl ReconcileError {
    /// The `kind` label of `hookwarden_reconcile_errors_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            ReconcileError::Status { status: 429, .. } => "rate_limited",
            ReconcileError::Status {
                status: 401 | 403, ..
            } => "auth",
            ReconcileError::Status { status, .. } if *status >= 500 => "server",
            ReconcileError::Status { .. } => "status",
            ReconcileError::Network { .. } => "network",
            ReconcileError::BadResponse { .. } => "bad_response",
            ReconcileError::Token { .. } => "token",
            ReconcileError::Store(_) => "store",
            ReconcileError::Setup(_) => "setup",
            ReconcileError::Stopped => "stopped",
        }
    }
}
