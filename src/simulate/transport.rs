//! Calling the receiver with Okta's transport rules: 3 s per attempt, one retry after a
//! timeout, a connection error or a 5xx (none after a 2xx, 3xx or 4xx, and none at all
//! where Okta never retries), redirects not followed, the configured headers on every
//! call.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use std::time::{Duration, Instant};

/// Okta's timeout for every hook call.
pub const OKTA_TIMEOUT: Duration = Duration::from_secs(3);

/// More than Okta accepts (256 KB for inline answers); a body past this is not read on.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What one attempt got back.
#[derive(Debug, Clone)]
pub enum Answer {
    Http {
        status: StatusCode,
        /// `Location` of a redirect, shown (never followed).
        location: Option<String>,
        body: Vec<u8>,
        /// The body was longer than we read.
        truncated: bool,
        /// A hookwarden's mark that this answer is the hook's fallback, with the reason
        /// ([`crate::inline_hooks::FALLBACK_HEADER`]); other receivers send none.
        fallback: Option<String>,
    },
    /// No answer within [`OKTA_TIMEOUT`].
    Timeout,
    /// No HTTP answer at all: connection refused, TLS failure, reset.
    Failed(String),
}

impl Answer {
    /// Whether Okta retries after this answer (when it retries the hook type at all).
    pub fn retryable(&self) -> bool {
        match self {
            Answer::Http { status, .. } => status.is_server_error(),
            Answer::Timeout | Answer::Failed(_) => true,
        }
    }

    /// The reason of a hookwarden's fallback answer, when this is one.
    pub fn fallback(&self) -> Option<&str> {
        match self {
            Answer::Http { fallback, .. } => fallback.as_deref(),
            Answer::Timeout | Answer::Failed(_) => None,
        }
    }

    /// `200`, `timeout`, `connection failed`: for reports.
    pub fn short(&self) -> String {
        match self {
            Answer::Http { status, .. } => status.as_u16().to_string(),
            Answer::Timeout => "timeout".to_owned(),
            Answer::Failed(_) => "no answer".to_owned(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Attempt {
    pub answer: Answer,
    pub latency: Duration,
}

/// The HTTP side of a simulation: one client, the headers Okta would be configured with.
#[derive(Clone)]
pub struct Transport {
    client: reqwest::Client,
    headers: HeaderMap,
}

/// Why the simulator's HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("--cacert: not a PEM certificate: {0}")]
    CaCert(#[source] reqwest::Error),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

impl Transport {
    /// `insecure` accepts any certificate (a development or self-signed one); `ca_pem`
    /// adds a trusted root instead, which keeps verification on.
    pub fn new(
        headers: HeaderMap,
        insecure: bool,
        ca_pem: Option<&[u8]>,
    ) -> Result<Transport, TransportError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        // No redirects (the shared policy): Okta follows none, a 3xx is the answer.
        let mut builder = crate::outbound::client(OKTA_TIMEOUT)
            .use_rustls_tls()
            .tcp_nodelay(true)
            .user_agent(concat!("hookwarden-simulate/", env!("CARGO_PKG_VERSION")));
        if insecure {
            builder = builder.danger_accept_invalid_certs(true);
        }
        if let Some(pem) = ca_pem {
            let cert = reqwest::Certificate::from_pem(pem).map_err(TransportError::CaCert)?;
            builder = builder.add_root_certificate(cert);
        }
        let client = builder.build().map_err(TransportError::Client)?;
        Ok(Transport { client, headers })
    }

    /// One call as Okta makes it: an attempt, and one retry if `retries` and the first
    /// attempt timed out, failed or got a 5xx.
    pub async fn call(
        &self,
        method: Method,
        url: &Url,
        extra: &[(HeaderName, HeaderValue)],
        body: Option<Vec<u8>>,
        retries: bool,
    ) -> Vec<Attempt> {
        let mut attempts = Vec::with_capacity(2);
        let first = self.attempt(&method, url, extra, body.clone()).await;
        let again = retries && first.answer.retryable();
        attempts.push(first);
        if again {
            attempts.push(self.attempt(&method, url, extra, body).await);
        }
        attempts
    }

    async fn attempt(
        &self,
        method: &Method,
        url: &Url,
        extra: &[(HeaderName, HeaderValue)],
        body: Option<Vec<u8>>,
    ) -> Attempt {
        let started = Instant::now();
        let mut request = self
            .client
            .request(method.clone(), url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .headers(self.headers.clone());
        for (name, value) in extra {
            request = request.header(name, value);
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let answer = match request.send().await {
            Ok(response) => read(response).await,
            Err(e) => failure(e),
        };
        Attempt {
            answer,
            latency: started.elapsed(),
        }
    }
}

/// Reads the status and body; the client's timeout covers the body too, as Okta's does.
async fn read(mut response: reqwest::Response) -> Answer {
    let status = response.status();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let location = header(reqwest::header::LOCATION.as_str());
    let fallback = header(crate::inline_hooks::FALLBACK_HEADER);
    let mut body = Vec::new();
    let mut truncated = false;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_BODY_BYTES {
                    truncated = true;
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => return failure(e),
        }
    }
    Answer::Http {
        status,
        location,
        body,
        truncated,
        fallback,
    }
}

fn failure(e: reqwest::Error) -> Answer {
    if e.is_timeout() {
        return Answer::Timeout;
    }
    Answer::Failed(crate::outbound::reqwest_error_text(e))
}
