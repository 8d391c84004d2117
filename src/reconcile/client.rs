//! `GET /api/v1/logs`: one page at a time, with Okta's rate limits honoured and
//! transient failures retried (bounded), following `Link: <…>; rel="next"` as given.

use super::auth::Credentials;
use super::error::{ReconcileError, SetupError};
use crate::config::reconcile::ReconcileConfig;
use crate::outbound::{reqwest_error_text, shown_url};
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, LINK};
use reqwest::Url;
use serde_json::value::RawValue;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

/// One page of System Log events, each kept as the API returned it.
pub struct Page {
    pub events: Vec<Box<RawValue>>,
    /// The `rel="next"` link, resolved against the page's URL.
    pub next: Option<Url>,
}

/// Talks to one org's System Log API.
pub struct LogsClient {
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

impl LogsClient {
    pub fn new(rc: &ReconcileConfig) -> Result<LogsClient, SetupError> {
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
        Ok(LogsClient {
            http,
            org,
            credentials: Credentials::from_config(rc)?,
            reserve: rc.rate_limit_reserve,
            max_wait: rc.max_wait,
            max_retries: rc.max_retries,
            backoff: rc.backoff,
            wait_until: tokio::sync::Mutex::new(None),
        })
    }

    /// The first page's URL: the window, the types, ascending order.
    pub fn first_url(&self, since: &str, until: &str, event_types: &[String], limit: u32) -> Url {
        let filter = event_types
            .iter()
            .map(|t| format!("eventType eq \"{t}\""))
            .collect::<Vec<_>>()
            .join(" or ");
        let mut url = self.org.clone();
        url.set_path("/api/v1/logs");
        url.query_pairs_mut()
            .append_pair("since", since)
            .append_pair("until", until)
            .append_pair("filter", &filter)
            .append_pair("limit", &limit.to_string())
            .append_pair("sortOrder", "ASCENDING");
        url
    }

    /// Fetches one page. Waits out a low rate limit first; retries 429 (until the reset),
    /// 5xx and network errors (with backoff) up to `max_retries` times; renews an OAuth
    /// token once after a 401.
    pub async fn page(&self, url: &Url, stop: &CancellationToken) -> Result<Page, ReconcileError> {
        let shown = shown_url(url);
        let mut tries = 0u32;
        let mut renewed = false;
        loop {
            self.wait_for_rate_limit(stop).await?;
            tries += 1;
            let auth = self.credentials.header(&self.http).await?;
            let sent = self
                .http
                .get(url.clone())
                .header(ACCEPT, "application/json")
                .header(AUTHORIZATION, auth)
                .send()
                .await;
            let response = match sent {
                Ok(r) => r,
                Err(e) => {
                    let message = reqwest_error_text(e);
                    if tries > self.max_retries {
                        return Err(ReconcileError::Network {
                            url: shown,
                            message,
                        });
                    }
                    tracing::warn!(url = %shown, error = %message, try_ = tries, "System Log request failed; retrying");
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
                let body = response
                    .bytes()
                    .await
                    .map_err(|e| ReconcileError::Network {
                        url: shown.clone(),
                        message: format!("reading the page: {}", reqwest_error_text(e)),
                    })?;
                let events: Vec<Box<RawValue>> =
                    serde_json::from_slice(&body).map_err(|e| ReconcileError::BadResponse {
                        url: shown.clone(),
                        message: format!("not a JSON array of System Log events: {e}"),
                    })?;
                return Ok(Page { events, next });
            }
            let summary = error_summary(response).await;
            let retryable = status.as_u16() == 429 || status.is_server_error();
            if status.as_u16() == 401 && !renewed && self.credentials.invalidate().await {
                renewed = true;
                continue;
            }
            if !retryable || tries > self.max_retries {
                return Err(ReconcileError::Status {
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
            tracing::warn!(url = %shown, status = status.as_u16(), wait_ms = wait.as_millis() as u64, try_ = tries, "System Log request refused; retrying");
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

    async fn wait_for_rate_limit(&self, stop: &CancellationToken) -> Result<(), ReconcileError> {
        let until = self.wait_until.lock().await.take();
        if let Some(wait) = until.and_then(|t| t.duration_since(SystemTime::now()).ok()) {
            tracing::info!(
                wait_ms = wait.as_millis() as u64,
                "System Log rate limit nearly used: waiting for its reset"
            );
            self.sleep(wait, stop).await?;
        }
        Ok(())
    }

    /// Sleeps at most `max_wait`, or until `stop`.
    async fn sleep(&self, wait: Duration, stop: &CancellationToken) -> Result<(), ReconcileError> {
        tokio::select! {
            _ = tokio::time::sleep(wait.min(self.max_wait)) => Ok(()),
            _ = stop.cancelled() => Err(ReconcileError::Stopped),
        }
    }

    /// The next link as given, relative links resolved; one to another origin is refused,
    /// since following it would send the credentials there.
    fn resolve_next(&self, current: &Url, link: &str) -> Result<Url, ReconcileError> {
        let next = current
            .join(link)
            .map_err(|e| ReconcileError::BadResponse {
                url: shown_url(current),
                message: format!("the next link is not a URL: {e}"),
            })?;
        if next.origin() != self.org.origin() {
            return Err(ReconcileError::BadResponse {
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

/// `: <errorSummary>` from Okta's error body, when there is one.
async fn error_summary(response: reqwest::Response) -> String {
    let Ok(body) = response.bytes().await else {
        return String::new();
    };
    serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["errorSummary"].as_str().map(|s| format!(": {s}")))
        .unwrap_or_default()
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
