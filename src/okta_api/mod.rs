//! The Okta Management API as hookwarden calls it, for every feature that does
//! (System Log reconciliation, `hookwarden okta`): one credential ([`auth`]), one
//! outbound policy (https only, no redirects, an extra CA), Okta's rate limits honoured
//! (`X-Rate-Limit-Remaining` / `-Reset`, 429 waited out), transient failures retried
//! within bounds, `Link: <…>; rel="next"` pages followed, and Okta's error bodies turned
//! into messages ([`ApiError`]) that name the call and never the credential.

pub mod auth;
pub mod error;
pub mod hooks;

use crate::config::OktaApiConfig;
use crate::outbound::{reqwest_error_text, shown_url};
use auth::Credentials;
pub use error::{ApiError, SetupError};
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, LINK};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

/// A list is followed over at most this many next links: a server that keeps answering
/// with one cannot hold a command forever.
pub const MAX_PAGES: u32 = 10_000;

/// Whether a call may be sent again after a failure that may have reached Okta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Reads, replacements and lifecycle calls: doing them twice is doing them once.
    Safe,
    /// Creations: a 5xx or a lost answer may mean the object exists, and a second
    /// POST would make a second one. Only a 429 (refused before any work) is retried.
    OnlyRateLimited,
}

/// A successful answer.
pub struct Answer {
    pub body: bytes::Bytes,
    /// The `rel="next"` link, resolved against the call's URL (same origin only).
    pub next: Option<Url>,
    /// The URL for messages ([`shown_url`]).
    pub shown: String,
}

/// Talks to one org's Management API.
pub struct Client {
    http: reqwest::Client,
    org: Url,
    credentials: Credentials,
    reserve: u32,
    max_wait: Duration,
    max_retries: u32,
    backoff: Duration,
    /// When the rate limit window resets, if the last answer said the calls left are
    /// at or below the reserve: the next request waits for it.
    wait_until: tokio::sync::Mutex<Option<SystemTime>>,
}

impl Client {
    /// From a valid `[okta]` section; `scopes` are what an OAuth service app asks for
    /// unless `okta.oauth.scopes` names them.
    pub fn new(rc: &OktaApiConfig, scopes: &[&str]) -> Result<Client, SetupError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let org = Url::parse(&rc.org()).map_err(SetupError::OrgUrl)?;
        // No redirects (the shared policy): one would be a misconfigured org URL, and
        // following it could send the token elsewhere. It surfaces as a 3xx error.
        let mut builder = crate::outbound::client(rc.request_timeout)
            .use_rustls_tls()
            .https_only(true);
        if let Some(ca) = &rc.ca_file {
            let pem = std::fs::read(ca).map_err(|source| SetupError::CaRead {
                path: ca.clone(),
                source,
            })?;
            let cert =
                reqwest::Certificate::from_pem(&pem).map_err(|source| SetupError::CaParse {
                    path: ca.clone(),
                    source,
                })?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(SetupError::Client)?;
        Ok(Client {
            http,
            org,
            credentials: Credentials::from_config(rc, scopes)?,
            reserve: rc.rate_limit_reserve,
            max_wait: rc.max_wait,
            max_retries: rc.max_retries,
            backoff: rc.backoff,
            wait_until: tokio::sync::Mutex::new(None),
        })
    }

    /// The org's URL with this path.
    pub fn url(&self, path: &str) -> Url {
        let mut url = self.org.clone();
        url.set_path(path);
        url
    }

    /// A JSON answer, parsed; `what` names the shape in the error when it does not parse.
    pub async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        url: &Url,
        body: Option<&serde_json::Value>,
        retry: Retry,
        what: &str,
        stop: &CancellationToken,
    ) -> Result<T, ApiError> {
        let answer = self.call(method, url, body, retry, stop).await?;
        parse(&answer, what)
    }

    /// Every item of a list, following next links.
    pub async fn list<T: DeserializeOwned>(
        &self,
        first: Url,
        what: &str,
        stop: &CancellationToken,
    ) -> Result<Vec<T>, ApiError> {
        let mut items = Vec::new();
        let mut url = Some(first);
        let mut pages = 0u32;
        while let Some(current) = url.take() {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(ApiError::BadResponse {
                    url: shown_url(&current),
                    message: format!("more than {MAX_PAGES} pages; stopped"),
                });
            }
            let answer = self
                .call(Method::GET, &current, None, Retry::Safe, stop)
                .await?;
            let page: Vec<T> = parse(&answer, what)?;
            let empty = page.is_empty();
            items.extend(page);
            url = answer.next.filter(|n| *n != current && !empty);
        }
        Ok(items)
    }

    /// One call. Waits out a low rate limit first; retries 429 (until the reset) and,
    /// for [`Retry::Safe`] calls, 5xx and network errors (with backoff), up to
    /// `max_retries` times; renews an OAuth token once after a 401.
    pub async fn call(
        &self,
        method: Method,
        url: &Url,
        body: Option<&serde_json::Value>,
        retry: Retry,
        stop: &CancellationToken,
    ) -> Result<Answer, ApiError> {
        let shown = shown_url(url);
        let mut tries = 0u32;
        let mut renewed = false;
        loop {
            self.wait_for_rate_limit(stop).await?;
            tries += 1;
            let auth = self.credentials.header(&self.http).await?;
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .header(ACCEPT, "application/json")
                .header(AUTHORIZATION, auth);
            if let Some(b) = body {
                request = request.json(b);
            }
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => {
                    let message = reqwest_error_text(e);
                    if retry != Retry::Safe || tries > self.max_retries {
                        return Err(ApiError::Network {
                            url: shown,
                            message,
                        });
                    }
                    tracing::warn!(url = %shown, error = %message, try_ = tries, "Okta API request failed; retrying");
                    self.sleep(self.backoff_for(tries), stop).await?;
                    continue;
                }
            };
            let status = response.status();
            let reset = self.note_rate_limit(response.headers()).await;
            if status.is_success() {
                let next = next_link(response.headers())
                    .map(|l| self.resolve_next(url, &l))
                    .transpose()?;
                let body = response.bytes().await.map_err(|e| ApiError::Network {
                    url: shown.clone(),
                    message: format!("reading the answer: {}", reqwest_error_text(e)),
                })?;
                return Ok(Answer { body, next, shown });
            }
            let summary = error_summary(response).await;
            if status.as_u16() == 401 && !renewed && self.credentials.invalidate().await {
                renewed = true;
                continue;
            }
            let retryable =
                status.as_u16() == 429 || (retry == Retry::Safe && status.is_server_error());
            if !retryable || tries > self.max_retries {
                return Err(ApiError::Status {
                    method: method_name(&method),
                    url: shown,
                    status: status.as_u16(),
                    summary,
                });
            }
            let wait = if status.as_u16() == 429 {
                reset
                    .and_then(|r| r.duration_since(SystemTime::now()).ok())
                    .unwrap_or_else(|| self.backoff_for(tries))
            } else {
                self.backoff_for(tries)
            };
            tracing::warn!(url = %shown, status = status.as_u16(), wait_ms = wait.as_millis() as u64, try_ = tries, "Okta API request refused; retrying");
            self.sleep(wait, stop).await?;
        }
    }

    fn backoff_for(&self, tries: u32) -> Duration {
        self.backoff
            .saturating_mul(1u32 << tries.saturating_sub(1).min(16))
            .min(self.max_wait)
    }

    /// Reads `X-Rate-Limit-Remaining` / `X-Rate-Limit-Reset`; when few calls are left,
    /// the next request waits until the reset. Returns the reset time when given.
    async fn note_rate_limit(&self, headers: &HeaderMap) -> Option<SystemTime> {
        let number = |name: &str| -> Option<u64> {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok())
        };
        let reset = number("x-rate-limit-reset").map(|s| UNIX_EPOCH + Duration::from_secs(s));
        let remaining = number("x-rate-limit-remaining");
        if let (Some(remaining), Some(reset)) = (remaining, reset) {
            if remaining <= u64::from(self.reserve) {
                *self.wait_until.lock().await = Some(reset);
            }
        }
        reset
    }

    async fn wait_for_rate_limit(&self, stop: &CancellationToken) -> Result<(), ApiError> {
        let until = self.wait_until.lock().await.take();
        if let Some(wait) = until.and_then(|t| t.duration_since(SystemTime::now()).ok()) {
            tracing::info!(
                wait_ms = wait.as_millis() as u64,
                "Okta API rate limit nearly used: waiting for its reset"
            );
            self.sleep(wait, stop).await?;
        }
        Ok(())
    }

    /// Sleeps at most `max_wait`, or until `stop`.
    async fn sleep(&self, wait: Duration, stop: &CancellationToken) -> Result<(), ApiError> {
        tokio::select! {
            _ = tokio::time::sleep(wait.min(self.max_wait)) => Ok(()),
            _ = stop.cancelled() => Err(ApiError::Stopped),
        }
    }

    /// The next link as given, relative links resolved; one to another origin is refused,
    /// since following it would send the credentials there.
    fn resolve_next(&self, current: &Url, link: &str) -> Result<Url, ApiError> {
        let next = current.join(link).map_err(|e| ApiError::BadResponse {
            url: shown_url(current),
            message: format!("the next link is not a URL: {e}"),
        })?;
        if next.origin() != self.org.origin() {
            return Err(ApiError::BadResponse {
                url: shown_url(current),
                message: format!(
                    "the next link points to another origin ({}); not followed",
                    next.origin().ascii_serialization()
                ),
            });
        }
        Ok(next)
    }
}

/// A successful answer's JSON, or an error that names the shape expected.
fn parse<T: DeserializeOwned>(answer: &Answer, what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(&answer.body).map_err(|e| ApiError::BadResponse {
        url: answer.shown.clone(),
        message: format!("not {what}: {e}"),
    })
}

fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        _ => "request to",
    }
}

/// `: <errorSummary> (<cause>; <cause>)` from Okta's error body, when there is one.
async fn error_summary(response: reqwest::Response) -> String {
    let Ok(body) = response.bytes().await else {
        return String::new();
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return String::new();
    };
    let Some(summary) = v["errorSummary"].as_str() else {
        return String::new();
    };
    let causes: Vec<&str> = v["errorCauses"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|c| c["errorSummary"].as_str())
                .collect()
        })
        .unwrap_or_default();
    if causes.is_empty() {
        format!(": {summary}")
    } else {
        format!(": {summary} ({})", causes.join("; "))
    }
}

/// The target of the `rel="next"` link among the `Link` headers (Okta sends `self` and
/// `next` as separate headers; one header with several links works too).
pub fn next_link(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all(LINK) {
        let Ok(mut rest) = value.to_str() else {
            continue;
        };
        while let Some(start) = rest.find('<') {
            let after = &rest[start + 1..];
            let end = after.find('>')?;
            let target = &after[..end];
            let tail = &after[end + 1..];
            let params_end = tail.find('<').unwrap_or(tail.len());
            let is_next = tail[..params_end].split([';', ',']).any(|p| {
                let p = p.trim().replace(' ', "");
                p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
            });
            if is_next {
                return Some(target.to_owned());
            }
            rest = &tail[params_end..];
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn next_links_are_found_in_separate_or_joined_headers() {
        let mut h = HeaderMap::new();
        h.append(
            LINK,
            HeaderValue::from_static("<https://x.okta.com/api/v1/logs?limit=2>; rel=\"self\""),
        );
        assert_eq!(next_link(&h), None);
        h.append(
            LINK,
            HeaderValue::from_static(
                "<https://x.okta.com/api/v1/logs?limit=2&after=abc>; rel=\"next\"",
            ),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://x.okta.com/api/v1/logs?limit=2&after=abc")
        );
        let mut h = HeaderMap::new();
        h.insert(
            LINK,
            HeaderValue::from_static("</a?x=1>; rel=\"self\", </a?x=2>; rel=next"),
        );
        assert_eq!(next_link(&h).as_deref(), Some("/a?x=2"));
    }
}
