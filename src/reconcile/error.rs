//! What can go wrong in a reconciliation pass. Messages name the URL and the status,
//! never a credential.

use crate::okta_api::ApiError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The System Log API call failed (after its retries).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The answer is not a page of System Log events.
    #[error("{url}: {message}")]
    BadPage { url: String, message: String },
    #[error("the store: {0}")]
    Store(#[from] StoreError),
    #[error("'{0}' is not in [[reconcile.hooks]]")]
    UnknownHook(String),
}

impl ReconcileError {
    /// The `kind` label of `hookwarden_reconcile_errors_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            ReconcileError::Api(e) => e.kind(),
            ReconcileError::BadPage { .. } => "bad_response",
            ReconcileError::Store(_) => "store",
            ReconcileError::UnknownHook(_) => "setup",
        }
    }

    /// Whether the pass ended because the service is stopping (not a failure).
    pub fn is_stopped(&self) -> bool {
        matches!(self, ReconcileError::Api(ApiError::Stopped))
    }
}

/// Why a reconciler could not be built from the configuration. `check-config` reports
/// the same problems by key; these words are what `serve` and `reconcile` print.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "reconciliation is not configured: add a [reconcile] section (see config/default.toml)"
    )]
    NotConfigured,
    #[error("reconcile: no event hook named '{0}'")]
    NoHook(String),
    #[error(transparent)]
    Api(#[from] crate::okta_api::SetupError),
}
