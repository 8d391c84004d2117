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
    #[error("the API token cannot be sent as an HTTP header value")]
    HeaderValue,
    #[error("'{0}' is not in [[reconcile.hooks]]")]
    UnknownHook(String),
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
            ReconcileError::HeaderValue | ReconcileError::UnknownHook(_) => "setup",
            ReconcileError::Stopped => "stopped",
        }
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
    #[error("reconcile.org_url: {0}")]
    OrgUrl(#[source] url::ParseError),
    #[error("reconcile.ca_file {}: {source}", path.display())]
    CaRead {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("reconcile.ca_file {}: {source}", path.display())]
    CaParse {
        path: std::path::PathBuf,
        source: reqwest::Error,
    },
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// A secret that `check-config` reports with its cause.
    #[error("{0} cannot be read")]
    Unreadable(&'static str),
    #[error("set exactly one of reconcile.api_token and [reconcile.oauth]")]
    Credentials,
    #[error("reconcile.oauth.private_key: {0}")]
    PrivateKey(#[source] jsonwebtoken::errors::Error),
}
