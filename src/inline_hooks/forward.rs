//! Forward (`kind = "forward"`): the request goes to the user's own service, its answer
//! comes back to Okta.
//!
//! hookwarden keeps what it is good at (TLS, Okta's authentication, the budget, the
//! contract check, idempotent answers to Okta's retries) and the service only decides.
//! The contract with the service is Okta's own, so an existing Okta hook service works
//! unchanged: POST of the request JSON, answer `200` with the answer JSON, or `204`/empty
//! for Okta's default action.

use super::handler::{Handler, HandlerError, InlineCall, Reply};
use crate::config::{expose, ForwardConfig};
use crate::okta::inline::{InlineResponse, MAX_RESPONSE_BYTES};
use crate::outbound::{self, shown_url};
use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{StatusCode, Url};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Characters of a body quoted in an error: enough to tell an HTML error page or a proxy
/// message apart, too few to carry much of what the service may have echoed.
const BODY_PREFIX_CHARS: usize = 48;

/// How much longer than the budget the client waits. The runtime's deadline (which drops
/// the call, and with it the request) is what ends a slow service, so that it is counted
/// and logged as a missed budget; with equal timers both fire on the same tick and the
/// call would read as a handler error. The client's own timeout is a backstop for use
/// outside the runtime.
const TIMEOUT_MARGIN: Duration = Duration::from_millis(50);

/// POSTs each call to one URL through one pooled client: every millisecond of a new
/// TLS handshake is a person waiting at a sign-in page.
pub struct ForwardHandler {
    client: reqwest::Client,
    url: Url,
    /// The URL as logs and errors show it: no password, no query (either may hold a token).
    shown_url: String,
    /// Configured headers plus `Content-Type` and `Accept`, values marked sensitive.
    headers: HeaderMap,
    budget: Duration,
}

impl ForwardHandler {
    /// Builds the client. Errors name the header or the URL problem, never a header value.
    pub fn new(config: &ForwardConfig, budget: std::time::Duration) -> Result<Self, String> {
        let url = Url::parse(&config.url).map_err(|e| format!("forward.url: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "forward.url: the scheme must be https (or http), not {}",
                url.scheme()
            ));
        }
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        for (name, secret) in &config.headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("forward.headers.{name}: not a valid header name"))?;
            if matches!(
                header.as_str(),
                "content-type" | "content-length" | "host" | "transfer-encoding" | "connection"
            ) {
                return Err(format!(
                    "forward.headers.{name}: set by hookwarden itself, not configurable"
                ));
            }
            let value = secret.value().ok_or_else(|| {
                format!("forward.headers.{name}: the secret could not be resolved")
            })?;
            let mut value = HeaderValue::from_str(expose(value))
                .map_err(|_| format!("forward.headers.{name}: the value cannot be sent in HTTP"))?;
            value.set_sensitive(true);
            headers.insert(header, value);
        }
        let client = outbound::client(budget + TIMEOUT_MARGIN)
            .connect_timeout(budget)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| format!("forward: cannot build the HTTP client: {e}"))?;
        Ok(ForwardHandler {
            shown_url: shown_url(&url),
            client,
            url,
            headers,
            budget,
        })
    }

    fn error(&self, message: impl std::fmt::Display) -> HandlerError {
        HandlerError(format!("forward to {}: {message}", self.shown_url))
    }
}

#[async_trait]
impl Handler for ForwardHandler {
    async fn handle(&self, call: &InlineCall) -> Result<Reply, HandlerError> {
        let started = Instant::now();
        let body = serde_json::to_vec(&call.body).map_err(|e| self.error(e))?;
        let response = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .body(body)
            .send()
            .await
            .map_err(|e| self.error(describe(e, self.budget)))?;
        let status = response.status();
        tracing::debug!(
            url = %self.shown_url,
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "forward answered"
        );
        if status == StatusCode::NO_CONTENT {
            return Ok(Reply::Typed(InlineResponse::empty()));
        }
        if status.is_redirection() {
            return Err(self.error(format!(
                "HTTP {status}: redirects are not followed (Okta does not follow them either)"
            )));
        }
        if status != StatusCode::OK {
            let prefix = read_prefix(response).await;
            return Err(self.error(format!("HTTP {status}{prefix}")));
        }
        let body = read_limited(response, self.budget)
            .await
            .map_err(|e| self.error(e))?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Reply::Typed(InlineResponse::empty()));
        }
        let value: Value = serde_json::from_slice(&body).map_err(|_| {
            self.error(format!(
                "HTTP 200 with a body that is not JSON{}",
                quoted_prefix(&body)
            ))
        })?;
        // Read by the runtime as Okta reads it: keys Okta ignores are dropped with a
        // warning, never a reason to replace the service's decision with the fallback.
        Ok(Reply::Json(value))
    }
}

/// How much of a service's answer is read: four times Okta's 256 KB limit. An answer
/// over Okta's limit is still read whole up to here and judged, so that a refusal in it
/// (with a huge `debugContext`, say) is sent as a refusal, and anything else as the
/// fallback; past this, it is not read at all (the memory a caller can make us hold).
const READ_LIMIT: usize = 4 * MAX_RESPONSE_BYTES;

/// The body, refused past [`READ_LIMIT`] (checked as it streams in, so a huge body is not
/// read to the end first).
async fn read_limited(
    mut response: reqwest::Response,
    budget: Duration,
) -> Result<Vec<u8>, String> {
    let too_big = || {
        format!(
            "HTTP 200 with a body over {} KB (Okta takes less than {} KB)",
            READ_LIMIT / 1024,
            MAX_RESPONSE_BYTES / 1024
        )
    };
    if response
        .content_length()
        .is_some_and(|n| n > READ_LIMIT as u64)
    {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the answer: {}", describe(e, budget)))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > READ_LIMIT {
            return Err(too_big());
        }
    }
    Ok(body)
}

/// `: <first characters>` of an error body, read from its first chunk only.
async fn read_prefix(mut response: reqwest::Response) -> String {
    match response.chunk().await {
        Ok(Some(chunk)) => quoted_prefix(&chunk),
        _ => String::new(),
    }
}

fn quoted_prefix(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let mut prefix: String = text
        .chars()
        .take(BODY_PREFIX_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > BODY_PREFIX_CHARS {
        prefix.push('…');
    }
    format!(" (body starts: {prefix:?})")
}

/// A reqwest error with its causes, without the URL reqwest would add (it may hold a token).
fn describe(e: reqwest::Error, budget: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within the budget of {} ms", budget.as_millis());
    }
    outbound::reqwest_error_text(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::okta::inline::HookType;
    use axum::http::HeaderMap as AxumHeaders;
    use axum::response::IntoResponse;
    use axum::routing::post;
    use axum::Router;
    use serde_json::json;
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::sync::{Arc, Mutex};

    fn fixture(name: &str) -> Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/okta")
            .join(name);
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON")
    }

    /// What the test service saw.
    #[derive(Default)]
    struct Seen {
        bodies: Vec<Value>,
        headers: Vec<AxumHeaders>,
    }

    /// Starts a service on 127.0.0.1:0 whose answer is `reply`; returns its URL.
    async fn service<F, R>(reply: F) -> (String, Arc<Mutex<Seen>>)
    where
        F: Fn(Value) -> R + Clone + Send + Sync + 'static,
        R: std::future::Future<Output = axum::response::Response> + Send,
    {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let record = seen.clone();
        let app = Router::new().route(
            "/hook",
            post(move |headers: AxumHeaders, body: axum::body::Bytes| {
                let reply = reply.clone();
                let record = record.clone();
                async move {
                    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    {
                        let mut seen = record.lock().expect("lock");
                        seen.bodies.push(value.clone());
                        seen.headers.push(headers);
                    }
                    reply(value).await
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}/hook"), seen)
    }

    fn forward(url: &str, budget_ms: u64) -> ForwardHandler {
        let mut headers = BTreeMap::new();
        headers.insert(
            "X-Service-Key".to_owned(),
            Secret::literal("service-key-value"),
        );
        ForwardHandler::new(
            &ForwardConfig {
                url: url.to_owned(),
                headers,
            },
            Duration::from_millis(budget_ms),
        )
        .expect("forward handler builds")
    }

    fn call(name: &str, hook_type: HookType) -> InlineCall {
        let body = fixture(name);
        InlineCall {
            hook_type,
            event_id: body["eventId"].as_str().map(str::to_owned),
            body,
            deadline: std::time::Instant::now() + Duration::from_secs(2),
        }
    }

    /// What the runtime would send for this reply (an error for any other outcome).
    fn settled(reply: Result<Reply, HandlerError>, c: &InlineCall) -> Result<Value, String> {
        crate::inline_hooks::settled_for_tests(c.hook_type, reply.map_err(|e| e.0)?, &c.body)
    }

    #[tokio::test]
    async fn passes_the_request_through_and_the_answer_back() {
        let (url, seen) = service(|_req| async {
            axum::Json(fixture("token-hook-response.json")).into_response()
        })
        .await;
        let h = forward(&url, 2000);
        let c = call("token-hook-request.json", HookType::Token);
        let answer = settled(h.handle(&c).await, &c).expect("answer");
        assert_eq!(answer, fixture("token-hook-response.json"));
        // One client, reused: a second call works on the pooled connection.
        h.handle(&c).await.expect("second answer");
        let seen = seen.lock().expect("lock");
        assert_eq!(seen.bodies[0], c.body);
        assert_eq!(seen.bodies.len(), 2);
    }

    #[tokio::test]
    async fn sends_the_configured_headers() {
        let (url, seen) = service(|_req| async { StatusCode::NO_CONTENT.into_response() }).await;
        forward(&url, 2000)
            .handle(&call(
                "registration-hook-request-ssr.json",
                HookType::Registration,
            ))
            .await
            .expect("answer");
        let seen = seen.lock().expect("lock");
        let headers = &seen.headers[0];
        assert_eq!(headers["x-service-key"], "service-key-value");
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["accept"], "application/json");
    }

    #[tokio::test]
    async fn no_content_and_empty_bodies_are_the_default_action() {
        let (url, _) = service(|_req| async { StatusCode::NO_CONTENT.into_response() }).await;
        let c = call("import-hook-request.json", HookType::Import);
        assert_eq!(
            settled(forward(&url, 2000).handle(&c).await, &c),
            Ok(json!({}))
        );
        let (url, _) = service(|_req| async { (StatusCode::OK, "  \n").into_response() }).await;
        assert_eq!(
            settled(forward(&url, 2000).handle(&c).await, &c),
            Ok(json!({}))
        );
        let (url, _) = service(|_req| async { axum::Json(json!({})).into_response() }).await;
        assert_eq!(
            settled(forward(&url, 2000).handle(&c).await, &c),
            Ok(json!({}))
        );
    }

    #[tokio::test]
    async fn server_errors_name_the_status() {
        let (url, _) = service(|_req| async {
            (StatusCode::INTERNAL_SERVER_ERROR, "database is down").into_response()
        })
        .await;
        let e = forward(&url, 2000)
            .handle(&call("saml-hook-request.json", HookType::Saml))
            .await
            .expect_err("500 is an error");
        assert!(e.0.contains("HTTP 500 Internal Server Error"), "{e}");
        assert!(e.0.contains("database is down"), "{e}");
    }

    #[tokio::test]
    async fn non_json_and_wrong_shapes_are_errors_that_quote_little() {
        let long = format!("<html>{}</html>", "x".repeat(500));
        let (url, _) = service(move |_req| {
            let long = long.clone();
            async move { (StatusCode::OK, long).into_response() }
        })
        .await;
        let c = call("password-import-request.json", HookType::PasswordImport);
        let e = forward(&url, 2000)
            .handle(&c)
            .await
            .expect_err("HTML is no answer");
        assert!(e.0.contains("not JSON") && e.0.contains("<html>"), "{e}");
        assert!(e.0.len() < 200, "only a prefix is quoted: {e}");

        // A service echoing the password in a wrong-typed field: the value is not repeated.
        let (url, _) = service(|req| async move {
            let password = req["data"]["context"]["credential"]["password"].clone();
            axum::Json(json!({"commands": password})).into_response()
        })
        .await;
        let e = settled(forward(&url, 2000).handle(&c).await, &c).expect_err("wrong shape");
        assert!(
            e.contains("commands is a string") && !e.contains("Okta"),
            "{e}"
        );

        let (url, _) = service(|_req| async {
            axum::Json(json!({"command": [{"type": "com.okta.action.update"}]})).into_response()
        })
        .await;
        let e = settled(forward(&url, 2000).handle(&c).await, &c).expect_err("misspelt key");
        assert!(e.contains("`command` is not a key of an answer"), "{e}");

        // An extra key beside a decision is dropped, and the decision goes (a registration
        // ALLOW with one extra key must not become the fallback's DENY).
        let (url, _) = service(|_req| async {
            axum::Json(json!({
                "commands": [{"type": "com.okta.action.update",
                              "value": {"registration": "ALLOW", "why": "known"}}],
                "traceId": "t-1",
            }))
            .into_response()
        })
        .await;
        let c = call("registration-hook-request-ssr.json", HookType::Registration);
        assert_eq!(
            settled(forward(&url, 2000).handle(&c).await, &c),
            Ok(json!({"commands": [{"type": "com.okta.action.update",
                                    "value": {"registration": "ALLOW"}}]}))
        );
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let (url, _) = service(|_req| async {
            (
                StatusCode::TEMPORARY_REDIRECT,
                [("location", "https://example.com/elsewhere")],
            )
                .into_response()
        })
        .await;
        let e = forward(&url, 2000)
            .handle(&call("token-hook-request.json", HookType::Token))
            .await
            .expect_err("3xx is an error");
        assert!(
            e.0.contains("HTTP 307") && e.0.contains("redirects are not followed"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn answers_over_256_kb_are_refused() {
        // Over Okta's limit: read, and refused by the checker.
        let (url, _) = service(|_req| async {
            let big = "x".repeat(MAX_RESPONSE_BYTES);
            axum::Json(json!({"debugContext": {"big": big}})).into_response()
        })
        .await;
        let c = call("token-hook-request.json", HookType::Token);
        let e = settled(forward(&url, 2000).handle(&c).await, &c).expect_err("too big");
        assert!(e.contains("Okta takes less than 262144"), "{e}");
        // Over what hookwarden reads: not read to the end.
        let (url, _) = service(|_req| async {
            let big = "x".repeat(READ_LIMIT);
            axum::Json(json!({"debugContext": {"big": big}})).into_response()
        })
        .await;
        let e = forward(&url, 2000)
            .handle(&c)
            .await
            .expect_err("far too big");
        assert!(e.0.contains("over 1024 KB"), "{e}");
    }

    /// Alone (without the runtime's deadline), the client stops just after the budget.
    #[tokio::test]
    async fn a_slow_service_is_cut_at_the_budget() {
        let (url, _) = service(|_req| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            StatusCode::NO_CONTENT.into_response()
        })
        .await;
        let h = forward(&url, 300);
        let started = Instant::now();
        let e = h
            .handle(&call("telephony-hook-request.json", HookType::Telephony))
            .await
            .expect_err("too slow");
        let elapsed = started.elapsed();
        assert!(e.0.contains("within the budget of 300 ms"), "{e}");
        assert!(
            elapsed >= Duration::from_millis(280) && elapsed < Duration::from_millis(800),
            "{elapsed:?}"
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_an_error_without_the_query() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let e = forward(&format!("http://{addr}/hook?token=s3cret"), 1000)
            .handle(&call("token-hook-request.json", HookType::Token))
            .await
            .expect_err("nothing listens");
        assert!(!e.0.contains("s3cret"), "{e}");
    }

    #[test]
    fn bad_configuration_is_refused_without_secret_values() {
        let build = |url: &str, name: &str, value: &str| {
            let mut headers = BTreeMap::new();
            headers.insert(name.to_owned(), Secret::literal(value));
            ForwardHandler::new(
                &ForwardConfig {
                    url: url.to_owned(),
                    headers,
                },
                Duration::from_secs(2),
            )
        };
        assert!(build("ftp://example.com/", "X-A", "v").is_err());
        assert!(build("not a url", "X-A", "v").is_err());
        let e = build("https://example.com/", "Content-Type", "text/plain").err();
        assert!(e.is_some_and(|e| e.contains("forward.headers.Content-Type")));
        let e = build("https://example.com/", "X-A", "bad\nvalue-secret").err();
        assert!(e.is_some_and(|e| e.contains("forward.headers.X-A") && !e.contains("secret")));
    }
}
