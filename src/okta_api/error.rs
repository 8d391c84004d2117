//! What can go wrong calling the Management API. Messages name the URL and the status,
//! never a credential.

/// One call failed (after the retries the policy allows).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Okta answered with a status that retrying does not fix (or retries ran out).
    #[error("{method} {url} answered {status}{summary}")]
    Status {
        method: &'static str,
        url: String,
        status: u16,
        /// `: <errorSummary>` (and its causes) when Okta said why, else empty.
        summary: String,
    },
    /// No answer: connection, TLS or timeout, after the retries.
    #[error("cannot reach {url}: {message}")]
    Network { url: String, message: String },
    /// The answer is not what the API documents.
    #[error("{url}: {message}")]
    BadResponse { url: String, message: String },
    /// The OAuth token request failed.
    #[error("token request to {url} failed: {message}")]
    Token { url: String, message: String },
    #[error("the API token cannot be sent as an HTTP header value")]
    HeaderValue,
    /// The caller is stopping.
    #[error("stopped")]
    Stopped,
}

impl ApiError {
    /// A short label for metrics and logs: `rate_limited`, `auth`, `server`, `status`,
    /// `network`, `bad_response`, `token`, `setup`, `stopped`.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::Status { status: 429, .. } => "rate_limited",
            ApiError::Status {
                status: 401 | 403, ..
            } => "auth",
            ApiError::Status { status, .. } if *status >= 500 => "server",
            ApiError::Status { .. } => "status",
            ApiError::Network { .. } => "network",
            ApiError::BadResponse { .. } => "bad_response",
            ApiError::Token { .. } => "token",
            ApiError::HeaderValue => "setup",
            ApiError::Stopped => "stopped",
        }
    }

    /// The HTTP status Okta answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Why a client could not be built from `[okta]`. `check-config` reports the same
/// problems by key; these words are what the commands print.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("the Okta Management API is not configured: add an [okta] section with org_url and api_token (see config/default.toml)")]
    NotConfigured,
    #[error("okta.org_url: {0}")]
    OrgUrl(#[source] url::ParseError),
    #[error("okta.ca_file {}: {source}", path.display())]
    CaRead {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("okta.ca_file {}: {source}", path.display())]
    CaParse {
        path: std::path::PathBuf,
        source: reqwest::Error,
    },
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// A secret that `check-config` reports with its cause.
    #[error("{0} cannot be read")]
    Unreadable(&'static str),
    #[error("set exactly one of okta.api_token and [okta.oauth]")]
    Credentials,
    #[error("okta.oauth.private_key: {0}")]
    PrivateKey(#[source] jsonwebtoken::errors::Error),
}
