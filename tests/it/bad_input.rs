//! Every bad input gets its status and a JSON body with an `errorSummary`.

use crate::util::*;
use rustls_pki_types::pem::PemObject;
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn summary(r: reqwest::Response, status: u16) -> String {
    assert_eq!(r.status(), status);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("application/json"),
        "error bodies are JSON"
    );
    let body: Value = r.json().await.expect("json body");
    body["errorSummary"]
        .as_str()
        .expect("errorSummary")
        .to_owned()
}

#[tokio::test]
async fn malformed_and_wrong_shaped_bodies_are_400() {
    let s = start(Options::default()).await;
    let msg = summary(s.deliver("{\"eventId\": ").await, 400).await;
    assert!(msg.contains("Malformed JSON"), "{msg}");
    let msg = summary(s.deliver("[1,2,3]").await, 400).await;
    assert!(msg.contains("not an Okta event hook delivery"), "{msg}");
    let msg = summary(s.deliver(r#"{"data": {"events": []}}"#).await, 400).await;
    assert!(msg.contains("eventId"), "names the missing field: {msg}");
    let msg = summary(s.deliver(r#"{"eventId": "x", "data": {}}"#).await, 400).await;
    assert!(msg.contains("events"), "names the missing field: {msg}");
    let msg = summary(
        s.deliver(r#"{"eventId": "x", "data": {"events": [{"eventType": "a"}]}}"#)
            .await,
        400,
    )
    .await;
    assert!(
        msg.contains("data.events[0]") && msg.contains("uuid"),
        "{msg}"
    );
    let msg = summary(
        s.deliver("{\"eventId\": \"\u{1F600}\", \"data\": {\"events\": \"no\"}}")
            .await,
        400,
    )
    .await;
    assert!(msg.contains("sequence") || msg.contains("events"), "{msg}");
    // Invalid UTF-8 in a JSON string.
    let r = s
        .client
        .post(s.url("/hooks/okta/events"))
        .header("Authorization", basic())
        .header("Content-Type", "application/json")
        .body(b"{\"eventId\": \"\xff\xfe\", \"data\": {\"events\": []}}".to_vec())
        .send()
        .await
        .expect("request");
    summary(r, 400).await;
    // Deep nesting is refused by the parser's recursion limit, without a stack overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    summary(s.deliver(&deep).await, 400).await;
    // Nothing was stored by any of these.
    assert!(read_jsonl(&s.jsonl()).is_empty());
    s.stop().await;
}

#[tokio::test]
async fn content_type_must_be_json() {
    let s = start(Options::default()).await;
    let body = fixture("event-hook-delivery.json");
    let r = s
        .client
        .post(s.url("/hooks/okta/events"))
        .header("Authorization", basic())
        .body(body.clone())
        .send()
        .await
        .expect("request");
    let msg = summary(r, 415).await;
    assert!(msg.contains("application/json"));
    let r = s
        .client
        .post(s.url("/hooks/okta/events"))
        .header("Authorization", basic())
        .header("Content-Type", "text/plain")
        .body(body.clone())
        .send()
        .await
        .expect("request");
    summary(r, 415).await;
    let r = s
        .client
        .post(s.url("/hooks/okta/events"))
        .header("Authorization", basic())
        .header("Content-Type", "application/json; charset=UTF-8")
        .body(body)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200, "parameters after the media type are fine");
    s.stop().await;
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let s = start(Options {
        server_extra: "max_body_bytes = 8192".into(),
        ..Options::default()
    })
    .await;
    let events: Vec<Value> = (0..10).map(|_| event("user.session.start")).collect();
    let big = envelope(&events);
    assert!(big.len() > 8192);
    let msg = summary(s.deliver(&big).await, 413).await;
    assert!(msg.contains("8192"));
    // Chunked, with no Content-Length: the limit still holds.
    let stream = futures_stream(big.into_bytes());
    let r = s
        .client
        .post(s.url("/hooks/okta/events"))
        .header("Authorization", basic())
        .header("Content-Type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .expect("request");
    summary(r, 413).await;
    // The sample itself fits.
    assert_eq!(
        s.deliver(&fixture("event-hook-delivery.json"))
            .await
            .status(),
        200
    );
    s.stop().await;
}

fn futures_stream(
    bytes: Vec<u8>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(1000).map(|c| Ok(c.to_vec())).collect();
    tokio_stream::iter(chunks)
}

#[tokio::test]
async fn unknown_path_method_and_auth() {
    let s = start(Options::default()).await;
    let r = s.client.get(s.url("/nope")).send().await.expect("request");
    summary(r, 404).await;
    let r = s
        .client
        .put(s.url("/hooks/okta/events"))
        .header("Authorization", basic())
        .send()
        .await
        .expect("request");
    summary(r, 405).await;
    let body = fixture("event-hook-delivery.json");
    let r = s
        .client
        .post(s.url("/hooks/okta/events"))
        .header("Content-Type", "application/json")
        .body(body.clone())
        .send()
        .await
        .expect("request");
    let missing = summary(r, 401).await;
    let r = s
        .client
        .post(s.url("/hooks/okta/events"))
        .header("Authorization", "Basic b2t0YTp3cm9uZw==")
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    let wrong = summary(r, 401).await;
    assert_eq!(missing, wrong, "the answer does not tell which part failed");
    let m = s.metrics().await;
    assert_eq!(
        metric(&m, "hookwarden_rejections_total", "reason=\"unauthorized\""),
        2.0
    );
    assert_eq!(
        metric(&m, "hookwarden_rejections_total", "reason=\"not_found\""),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            "hookwarden_rejections_total",
            "reason=\"method_not_allowed\""
        ),
        1.0
    );
    s.stop().await;
}

/// A TLS connection to the test server, for clients that misbehave on purpose.
pub async fn tls_connect(s: &TestServer) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_slice_iter(&s.cert_pem) {
        roots.add(c.expect("cert")).expect("root");
    }
    let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(s.addr)
        .await
        .expect("connect");
    connector
        .connect(
            rustls_pki_types::ServerName::try_from("localhost").expect("name"),
            tcp,
        )
        .await
        .expect("handshake")
}

/// Reads until EOF or `within`; returns what was read and whether the server closed.
async fn read_until_closed<S: tokio::io::AsyncRead + Unpin>(
    s: &mut S,
    within: Duration,
) -> (String, bool) {
    let mut buf = Vec::new();
    let r = tokio::time::timeout(within, s.read_to_end(&mut buf)).await;
    (String::from_utf8_lossy(&buf).into_owned(), r.is_ok())
}

#[tokio::test]
async fn slow_and_stalled_clients_are_cut_off() {
    let s = start(Options {
        // The shortest request timeout allowed: Okta's own 3 s.
        server_extra: "header_read_timeout = \"500ms\"\nrequest_timeout = \"3s\"".into(),
        ..Options::default()
    })
    .await;
    // Headers that never finish: closed after the header-read timeout.
    let mut c = tls_connect(&s).await;
    c.write_all(b"POST /hooks/okta/events HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .expect("write");
    let (_, closed) = read_until_closed(&mut c, Duration::from_secs(5)).await;
    assert!(closed, "a stalled header is cut off");

    // A body that never finishes: 408 after the request timeout, then closed.
    let mut c = tls_connect(&s).await;
    let head = format!(
        "POST /hooks/okta/events HTTP/1.1\r\nHost: localhost\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{{\"eventId\":",
        basic()
    );
    c.write_all(head.as_bytes()).await.expect("write");
    let started = std::time::Instant::now();
    let (text, closed) = read_until_closed(&mut c, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("errorSummary"));
    assert!(closed);
    // At the request timeout (3 s), with less than a second's slack.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    // A connection that never sends anything at all is closed too.
    let mut c = tls_connect(&s).await;
    let (_, closed) = read_until_closed(&mut c, Duration::from_secs(5)).await;
    assert!(closed, "an idle new connection is cut off");
    // And the service still answers.
    assert_eq!(
        s.deliver(&fixture("event-hook-delivery.json"))
            .await
            .status(),
        200
    );
    s.stop().await;
}

#[tokio::test]
async fn connections_over_the_cap_are_closed() {
    let s = start(Options {
        server_extra: "max_connections = 2\nheader_read_timeout = \"3s\"".into(),
        ..Options::default()
    })
    .await;
    let _a = tls_connect(&s).await;
    let _b = tls_connect(&s).await;
    // The third TCP connection is closed before any TLS handshake.
    let mut tcp = tokio::net::TcpStream::connect(s.addr)
        .await
        .expect("tcp connect");
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(3), tcp.read(&mut buf)).await;
    assert!(matches!(n, Ok(Ok(0)) | Ok(Err(_))), "closed at once: {n:?}");
    let m = s.metrics().await;
    assert!(metric(&m, "hookwarden_connections_refused_total", "") >= 1.0);
    drop(_a);
    drop(_b);
    // Slots come back when connections close.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        s.deliver(&fixture("event-hook-delivery.json"))
            .await
            .status(),
        200
    );
    s.stop().await;
}
