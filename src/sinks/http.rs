//! HTTP forward sink: POSTs each record as JSON to a URL; any 2xx is success.
//!
//! Failures are sorted by whether trying again can help: timeouts, connection
//! errors, 408, 429 and 5xx are transient (retried with backoff); any other status
//! is permanent (dead-lettered at once: the receiver said the request itself is wrong).
//!
//! Each request carries `Idempotency-Key: <event uuid>`, so a receiver can drop the
//! duplicates that at-least-once delivery brings.

use super::*;
use crate::config::{expose, Secret};
use crate::outbound::{self, reqwest_error_text, shown_url};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::{StatusCode, Url};
use std::collections::BTreeMap;
use std::time::Duration;

/// Most bytes of a response body read (and discarded) so that the connection can be reused.
const MAX_DRAIN_BYTES: usize = 64 * 1024;

pub struct HttpSink {
    client: reqwest::Client,
    url: Url,
    /// The URL as errors and logs show it: no password, no query (either may hold a token).
    shown_url: String,
    /// The configured headers, marked sensitive so that reqwest never prints them.
    headers: HeaderMap,
    timeout: Duration,
}

impl HttpSink {
    /// Builds the client. Errors name the header or the URL problem, never a header value.
    pub fn new(
        url: &str,
        headers: &BTreeMap<String, Secret>,
        timeout: Duration,
    ) -> Result<Self, SetupError> {
        let parsed = Url::parse(url).map_err(SetupError::Url)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(SetupError::Scheme {
                allowed: "http or https",
                scheme: parsed.scheme().to_owned(),
            });
        }
        let mut map = HeaderMap::new();
        for (name, secret) in headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| SetupError::HeaderName(name.clone()))?;
            let value = secret
                .value()
                .ok_or_else(|| SetupError::HeaderUnresolved(name.clone()))?;
            let mut value = HeaderValue::from_str(expose(value))
                .map_err(|_| SetupError::HeaderValue(name.clone()))?;
            value.set_sensitive(true);
            map.insert(header, value);
        }
        let client = outbound::client(timeout)
            .build()
            .map_err(SetupError::Client)?;
        Ok(HttpSink {
            shown_url: shown_url(&parsed),
            client,
            url: parsed,
            headers: map,
            timeout,
        })
    }
}

/// Whether a non-2xx status is worth another try.
fn status_is_transient(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

#[async_trait]
impl Sink for HttpSink {
    async fn deliver(&self, record: &SinkRecord<'_>) -> Result<(), SinkError> {
        let key = HeaderValue::from_str(record.uuid).map_err(|_| {
            SinkError::permanent("the event uuid cannot be sent as an Idempotency-Key header")
        })?;
        // Ours replace configured headers of the same name: the body is JSON, and the
        // key must be the event's for receivers to deduplicate.
        let mut headers = self.headers.clone();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(HeaderName::from_static("idempotency-key"), key);
        let response = self
            .client
            .post(self.url.clone())
            .headers(headers)
            .body(record.to_json())
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    SinkError::transient(format!(
                        "POST {}: no answer within {}",
                        self.shown_url,
                        humantime::format_duration(self.timeout)
                    ))
                } else if e.is_builder() {
                    SinkError::permanent(format!(
                        "POST {}: {}",
                        self.shown_url,
                        reqwest_error_text(e)
                    ))
                } else {
                    // Connection refused, DNS, TLS, reset: the network, not the request.
                    SinkError::transient(format!(
                        "POST {}: {}",
                        self.shown_url,
                        reqwest_error_text(e)
                    ))
                }
            })?;
        let status = response.status();
        // Read a bounded part of the body so that the connection goes back to the
        // pool; what it says is not logged (it may echo the event).
        let mut response = response;
        let mut drained = 0usize;
        while drained < MAX_DRAIN_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => drained += chunk.len(),
                Ok(None) | Err(_) => break,
            }
        }
        if status.is_success() {
            return Ok(());
        }
        let message = format!("POST {} answered {status}", self.shown_url);
        if status_is_transient(status) {
            Err(SinkError::transient(message))
        } else if status.is_redirection() {
            Err(SinkError::permanent(format!(
                "{message} (redirects are not followed: configure the final URL)"
            )))
        } else {
            Err(SinkError::permanent(message))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Job;
    use axum::extract::State;
    use axum::http::HeaderMap as AxumHeaders;
    use axum::routing::post;
    use axum::Router;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Seen {
        requests: Mutex<Vec<(AxumHeaders, String)>>,
    }

    async fn record(State(seen): State<Arc<Seen>>, headers: AxumHeaders, body: String) {
        seen.requests.lock().expect("lock").push((headers, body));
    }

    /// A receiver on 127.0.0.1:0 that answers by path and remembers what it got.
    async fn server() -> (String, Arc<Seen>) {
        let seen = Arc::new(Seen::default());
        let app = Router::new()
            .route("/ok", post(record))
            .route(
                "/fail",
                post(|| async { axum::http::StatusCode::INTERNAL_SERVER_ERROR }),
            )
            .route(
                "/busy",
                post(|| async { axum::http::StatusCode::TOO_MANY_REQUESTS }),
            )
            .route(
                "/bad",
                post(|| async { axum::http::StatusCode::BAD_REQUEST }),
            )
            .route(
                "/moved",
                post(|| async {
                    (
                        axum::http::StatusCode::FOUND,
                        [("location", "http://example.invalid/")],
                    )
                }),
            )
            .route(
                "/slow",
                post(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            )
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}"), seen)
    }

    fn job() -> Job {
        crate::sinks::test_job("siem", "u-42", "user.session.start")
    }

    const TOKEN: &str = "Bearer very-secret-token";

    fn sink(base: &str, path: &str, timeout: Duration) -> HttpSink {
        let mut headers = BTreeMap::new();
        headers.insert("Authorization".to_owned(), Secret::literal(TOKEN));
        headers.insert("X-Team".to_owned(), Secret::literal("identity"));
        headers.insert("Content-Type".to_owned(), Secret::literal("text/plain"));
        HttpSink::new(&format!("{base}{path}"), &headers, timeout).expect("sink")
    }

    async fn send(sink: &HttpSink) -> Result<(), SinkError> {
        let job = job();
        let record = SinkRecord::from_job(&job).expect("record");
        sink.deliver(&record).await
    }

    #[tokio::test]
    async fn two_hundred_is_delivered_with_headers_and_key() {
        let (base, seen) = server().await;
        send(&sink(&base, "/ok", Duration::from_secs(5)))
            .await
            .expect("delivered");
        let requests = seen.requests.lock().expect("lock");
        assert_eq!(requests.len(), 1);
        let (headers, body) = &requests[0];
        assert_eq!(headers["authorization"], TOKEN);
        assert_eq!(headers["x-team"], "identity");
        assert_eq!(headers["idempotency-key"], "u-42");
        let types: Vec<_> = headers.get_all("content-type").iter().collect();
        assert_eq!(types, ["application/json"]);
        assert_eq!(headers.get_all("idempotency-key").iter().count(), 1);
        let v: serde_json::Value = serde_json::from_str(body).expect("json body");
        assert_eq!(v["uuid"], "u-42");
        assert_eq!(v["event"]["uuid"], "u-42");
    }

    #[tokio::test]
    async fn server_errors_and_throttling_are_transient() {
        let (base, _) = server().await;
        for path in ["/fail", "/busy"] {
            let err = send(&sink(&base, path, Duration::from_secs(5)))
                .await
                .expect_err("must fail");
            assert!(!err.permanent, "{path}: {err}");
            assert!(err.message.contains(path), "{err}");
            assert!(!err.message.contains("very-secret"), "{err}");
        }
        let err = send(&sink(&base, "/fail", Duration::from_secs(5)))
            .await
            .expect_err("must fail");
        assert!(err.message.contains("500"), "{err}");
    }

    #[tokio::test]
    async fn client_errors_and_redirects_are_permanent() {
        let (base, _) = server().await;
        for path in ["/bad", "/moved", "/missing"] {
            let err = send(&sink(&base, path, Duration::from_secs(5)))
                .await
                .expect_err("must fail");
            assert!(err.permanent, "{path}: {err}");
            assert!(!err.message.contains("very-secret"), "{err}");
        }
        let err = send(&sink(&base, "/bad", Duration::from_secs(5)))
            .await
            .expect_err("must fail");
        assert!(err.message.contains("400"), "{err}");
    }

    #[tokio::test]
    async fn timeouts_and_refused_connections_are_transient() {
        let (base, _) = server().await;
        let err = send(&sink(&base, "/slow", Duration::from_millis(200)))
            .await
            .expect_err("must time out");
        assert!(!err.permanent, "{err}");
        assert!(err.message.contains("200ms"), "{err}");

        // A port that was just free: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let err = send(&sink(
            &format!("http://127.0.0.1:{port}"),
            "/ok",
            Duration::from_secs(2),
        ))
        .await
        .expect_err("must be refused");
        assert!(!err.permanent, "{err}");
    }

    #[test]
    fn bad_configuration_is_refused_without_values() {
        let mut headers = BTreeMap::new();
        headers.insert("X-Bad".to_owned(), Secret::literal("line\nbreak-secret"));
        let err = HttpSink::new("http://127.0.0.1/", &headers, Duration::from_secs(1))
            .err()
            .expect("must fail");
        let err = err.to_string();
        assert!(
            err.contains("X-Bad") && !err.contains("break-secret"),
            "{err}"
        );
        assert!(HttpSink::new("ftp://x/", &BTreeMap::new(), Duration::from_secs(1)).is_err());
    }
}
