//! What `/metrics` shows an operator, scraped from a real service: every configured
//! hook's and sink's series at zero from the start; the store's gauges per hook and sink
//! as a delivery waits, ages, dies and is delivered; the sink attempt times; readiness,
//! the version and the certificate's expiry; and what a reload that removes a hook and
//! a sink does to their series.

use crate::util::*;
use axum::http::StatusCode;
use hookwarden::config::Config;
use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

const TOKEN: &str = "metrics-admin-token-0123";

/// rcgen's default `notAfter` (4096-01-01), which the test certificates have.
const TEST_CERT_NOT_AFTER: f64 = 67_090_118_400.0;

/// The value of the sample `name{labels}` (labels exactly as `/metrics` writes them),
/// if the series exists.
fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let series = if labels.is_empty() {
        format!("{name} ")
    } else {
        format!("{name}{{{labels}}} ")
    };
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.trim().parse().ok())
}

fn sink(hook: &str, sink: &str) -> String {
    format!("hook=\"{hook}\",sink=\"{sink}\"")
}

/// An HTTP sink's receiver that answers every request with the status it is set to.
async fn receiver(status: u16) -> (String, Arc<AtomicU16>) {
    let answer = Arc::new(AtomicU16::new(status));
    let app = axum::Router::new().route(
        "/sink",
        axum::routing::post({
            let answer = answer.clone();
            move || async move {
                StatusCode::from_u16(answer.load(Ordering::SeqCst))
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (format!("http://{addr}/sink"), answer)
}

/// Event hook `okta` (sinks `archive`, a file, and `forward`, HTTP to `url`), event hook
/// `audit` (sink `copy`) when `audit`, and inline hook `tokens`; fast retries, many
/// attempts, so that a refused delivery stays pending.
fn config_file(dir: &Path, url: &str, forward: bool, audit: bool) -> String {
    let forward = if forward {
        format!(r#", {{ name = "forward", type = "http", url = "{url}", timeout = "2s" }}"#)
    } else {
        String::new()
    };
    let auth = format!(
        r#"auth = {{ type = "basic", users = [{{ username = "{USER}", password = "{PASSWORD}" }}] }}"#
    );
    let mut hooks = format!(
        r#"
[[event_hooks]]
name = "okta"
path = "/hooks/okta/events"
{auth}
sinks = [{{ name = "archive", type = "jsonl", path = "{archive}" }}{forward}]

[[inline_hooks]]
name = "tokens"
path = "/hooks/okta/token"
type = "token"
{auth}
handler = {{ kind = "rules", token = {{ claims = [{{ token = "id", name = "n", value = "v" }}] }} }}
"#,
        archive = dir.join("archive.jsonl").display()
    );
    if audit {
        hooks.push_str(&format!(
            r#"
[[event_hooks]]
name = "audit"
path = "/hooks/okta/audit"
{auth}
sinks = [{{ name = "copy", type = "jsonl", path = "{copy}" }}]
"#,
            copy = dir.join("copy.jsonl").display()
        ));
    }
    let opts = Options {
        toml: Some(hooks),
        worker: "poll_interval = \"50ms\"\nbackoff_initial = \"50ms\"\nbackoff_max = \"100ms\"\nmax_attempts = 1000\n".into(),
        ..Options::default()
    };
    with_admin_token(
        &config_text(
            dir,
            &dir.join("server-cert.pem"),
            &dir.join("server-key.pem"),
            &opts,
        ),
        TOKEN,
    )
}

/// A service loaded from its file (so that `POST /reload` reads it again).
async fn serve(url: &str) -> TestServer {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert_path, key_path, cert_pem) = write_cert(dir.path(), "server");
    let config_path = dir.path().join("hookwarden.toml");
    std::fs::write(&config_path, config_file(dir.path(), url, true, true)).expect("write");
    let config = Config::load(Some(&config_path)).expect("valid config");
    start_with(
        dir,
        config,
        cert_pem,
        cert_path,
        key_path,
        config_path,
        true,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_series_starts_at_zero_and_the_store_gauges_follow_a_delivery() {
    let (url, answer) = receiver(503).await;
    let s = serve(&url).await;

    let m = s.metrics().await;
    let mut missing = Vec::new();
    let mut expect = |name: &str, labels: &str, want: f64| {
        if sample(&m, name, labels) != Some(want) {
            missing.push(format!(
                "{name}{{{labels}}} = {:?}, expected {want}",
                sample(&m, name, labels)
            ));
        }
    };
    for (hook, s) in [("okta", "archive"), ("okta", "forward"), ("audit", "copy")] {
        let l = sink(hook, s);
        for name in [
            "hookwarden_backlog",
            "hookwarden_dead_letters_stored",
            "hookwarden_oldest_pending_age_seconds",
            "hookwarden_sink_deliveries_total",
            "hookwarden_sink_failures_total",
            "hookwarden_sink_retries_total",
            "hookwarden_dead_letters_total",
            "hookwarden_recovered_skips_total",
        ] {
            expect(name, &l, 0.0);
        }
        for outcome in ["delivered", "failed"] {
            let labels = format!("{l},outcome=\"{outcome}\"");
            expect("hookwarden_sink_attempt_seconds_count", &labels, 0.0);
        }
    }
    for hook in ["okta", "audit", "tokens"] {
        expect(
            "hookwarden_requests_total",
            &format!("hook=\"{hook}\",status=\"200\""),
            0.0,
        );
        for reason in ["unauthorized", "store_full", "timeout"] {
            let labels = format!("hook=\"{hook}\",reason=\"{reason}\"");
            expect("hookwarden_rejections_total", &labels, 0.0);
        }
    }
    for name in [
        "hookwarden_events_stored_total",
        "hookwarden_duplicate_events_total",
        "hookwarden_ack_seconds_count",
    ] {
        expect(name, "hook=\"okta\"", 0.0);
    }
    for outcome in ["commands", "fallback_deadline", "fallback_refusal"] {
        let labels = format!("hook=\"tokens\",outcome=\"{outcome}\"");
        expect("hookwarden_inline_calls_total", &labels, 0.0);
    }
    expect("hookwarden_inline_seconds_count", "hook=\"tokens\"", 0.0);
    for result in ["ok", "error"] {
        let labels = format!("result=\"{result}\"");
        expect("hookwarden_tls_reloads_total", &labels, 0.0);
    }
    for result in ["ok", "refused"] {
        let labels = format!("result=\"{result}\"");
        expect("hookwarden_config_reloads_total", &labels, 0.0);
    }
    let version = format!("version=\"{}\"", env!("CARGO_PKG_VERSION"));
    expect("hookwarden_build_info", &version, 1.0);
    expect("hookwarden_ready", "", 1.0);
    expect(
        "hookwarden_tls_cert_not_after_timestamp_seconds",
        "",
        TEST_CERT_NOT_AFTER,
    );
    assert!(missing.is_empty(), "{}\n{m}", missing.join("\n"));

    // The forward sink answers 503: the delivery waits, is retried, and ages; the file
    // sink has it at once.
    assert_eq!(
        s.deliver(&envelope(&[event("user.session.start")]))
            .await
            .status(),
        200
    );
    let forward = sink("okta", "forward");
    s.wait_metric("hookwarden_backlog", &forward, 1.0).await;
    s.wait_metric(
        "hookwarden_sink_deliveries_total",
        &sink("okta", "archive"),
        1.0,
    )
    .await;
    let m = s.metrics().await;
    assert_eq!(
        sample(&m, "hookwarden_backlog", &sink("okta", "archive")),
        Some(0.0)
    );
    let archive_attempts = format!("{},outcome=\"delivered\"", sink("okta", "archive"));
    assert_eq!(
        sample(
            &m,
            "hookwarden_sink_attempt_seconds_count",
            &archive_attempts
        ),
        Some(1.0)
    );
    let failed = format!("{forward},outcome=\"failed\"");
    assert!(
        sample(&m, "hookwarden_sink_attempt_seconds_count", &failed) >= Some(1.0),
        "{m}"
    );
    assert!(sample(&m, "hookwarden_sink_failures_total", &forward) >= Some(1.0));
    let age = |m: &str| sample(m, "hookwarden_oldest_pending_age_seconds", &forward).unwrap_or(0.0);
    let first = age(&m);
    assert!(first > 0.0, "the waiting delivery has an age: {m}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = age(&s.metrics().await);
    assert!(
        later >= first + 0.25,
        "the age grows as it waits: {first} then {later}"
    );

    // A 400 is permanent: the next attempt dead-letters it.
    answer.store(400, Ordering::SeqCst);
    s.wait_metric("hookwarden_dead_letters_stored", &forward, 1.0)
        .await;
    s.wait_metric("hookwarden_backlog", &forward, 0.0).await;
    let m = s.metrics().await;
    assert_eq!(
        sample(&m, "hookwarden_oldest_pending_age_seconds", &forward),
        Some(0.0)
    );
    assert_eq!(
        sample(&m, "hookwarden_dead_letters_total", &forward),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            "hookwarden_dead_letters_stored",
            &sink("okta", "archive")
        ),
        Some(0.0)
    );

    // The sink works again: the next delivery's attempt counts as delivered.
    answer.store(200, Ordering::SeqCst);
    assert_eq!(
        s.deliver(&envelope(&[event("user.session.start")]))
            .await
            .status(),
        200
    );
    let delivered = format!("{forward},outcome=\"delivered\"");
    s.wait_metric("hookwarden_sink_attempt_seconds_count", &delivered, 1.0)
        .await;
    s.wait_metric(
        "hookwarden_requests_total",
        "hook=\"okta\",status=\"200\"",
        2.0,
    )
    .await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_removes_a_removed_hook_s_and_sink_s_series_but_shows_its_dead_letters() {
    let (url, _answer) = receiver(400).await;
    let s = serve(&url).await;
    // One dead letter for `forward` (a 400 is permanent), one request for `audit`.
    assert_eq!(
        s.deliver(&envelope(&[event("user.session.start")]))
            .await
            .status(),
        200
    );
    let forward = sink("okta", "forward");
    s.wait_metric("hookwarden_dead_letters_stored", &forward, 1.0)
        .await;
    let audit = s
        .client
        .post(s.url("/hooks/okta/audit"))
        .header("Authorization", basic())
        .header("Content-Type", "application/json")
        .body(envelope(&[event("user.session.start")]))
        .send()
        .await
        .expect("audit delivery");
    assert_eq!(audit.status(), 200);
    s.wait_metric(
        "hookwarden_sink_deliveries_total",
        &sink("audit", "copy"),
        1.0,
    )
    .await;

    std::fs::write(
        &s.config_path,
        config_file(s.dir.path(), &url, false, false),
    )
    .expect("rewrite config");
    let reloaded = reqwest::Client::new()
        .post(format!("{}/reload", s.admin_base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("reload");
    assert_eq!(reloaded.status(), 200, "{:?}", reloaded.text().await);

    let m = s.metrics().await;
    // The store's gauges follow the store, which still holds the sink's dead letter.
    let store_gauges = [
        "hookwarden_backlog{",
        "hookwarden_dead_letters_stored{",
        "hookwarden_oldest_pending_age_seconds{",
    ];
    let stale: Vec<&str> = m
        .lines()
        .filter(|l| {
            l.contains("hook=\"audit\"")
                || (l.contains("sink=\"forward\"")
                    && !store_gauges.iter().any(|g| l.starts_with(g)))
        })
        .collect();
    assert!(
        stale.is_empty(),
        "series of a removed hook or sink: {stale:#?}"
    );
    assert_eq!(
        sample(&m, "hookwarden_dead_letters_stored", &forward),
        Some(1.0),
        "the removed sink's dead letter is still in the store, and shown"
    );
    assert_eq!(sample(&m, "hookwarden_backlog", &forward), Some(0.0));
    assert_eq!(
        sample(
            &m,
            "hookwarden_sink_deliveries_total",
            &sink("okta", "archive")
        ),
        Some(1.0)
    );
    assert_eq!(sample(&m, "hookwarden_config_generation", ""), Some(2.0));
    assert_eq!(
        sample(&m, "hookwarden_config_reloads_total", "result=\"ok\""),
        Some(1.0)
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_s_expiry_follows_a_reload_and_is_zero_without_tls() {
    let s = start(Options::default()).await;
    let m = s.metrics().await;
    let not_after = "hookwarden_tls_cert_not_after_timestamp_seconds";
    assert_eq!(sample(&m, not_after, ""), Some(TEST_CERT_NOT_AFTER));

    // A renewed certificate, valid until 2031-05-17T00:00:00Z (1936742400).
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    params.not_after = rcgen::date_time_ymd(2031, 5, 17);
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("cert");
    std::fs::write(&s.key_path, key.serialize_pem()).expect("write key");
    std::fs::write(&s.cert_path, cert.pem()).expect("write cert");
    s.wait_metric("hookwarden_tls_reloads_total", "result=\"ok\"", 1.0)
        .await;
    s.wait_metric(not_after, "", 1_936_742_400.0).await;
    s.stop().await;

    let plain = start(Options {
        tls: false,
        ..Options::default()
    })
    .await;
    assert_eq!(sample(&plain.metrics().await, not_after, ""), Some(0.0));
    plain.stop().await;
}
