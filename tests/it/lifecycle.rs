//! Certificate reload, graceful shutdown, sink failure and recovery, dead letters and replay,
//! and `check-config`, with the real binary where the CLI is concerned.

use crate::util::*;
use axum::http::StatusCode;
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_hookwarden"))
}

/// A local HTTP receiver that fails its first `fail_first` requests with 500.
async fn flaky_receiver(
    fail_first: usize,
) -> (
    String,
    Arc<AtomicUsize>,
    Arc<std::sync::Mutex<Vec<Value>>>,
    Arc<std::sync::atomic::AtomicBool>,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let broken = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (c, g, b) = (calls.clone(), got.clone(), broken.clone());
    let app = axum::Router::new().route(
        "/sink",
        axum::routing::post(move |body: String| {
            let (c, g, b) = (c.clone(), g.clone(), b.clone());
            async move {
                let n = c.fetch_add(1, Ordering::SeqCst);
                if n < fail_first || b.load(Ordering::SeqCst) {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                if let Ok(v) = serde_json::from_str(&body) {
                    g.lock().expect("lock").push(v);
                }
                StatusCode::OK
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
    (format!("http://{addr}/sink"), calls, got, broken)
}

fn http_sink_hook(url: &str) -> String {
    format!(
        r#"
[[event_hooks]]
name = "okta"
path = "/hooks/okta/events"
auth = {{ type = "basic", users = [{{ username = "{USER}", password = "{PASSWORD}" }}] }}
sinks = [{{ name = "forward", type = "http", url = "{url}", timeout = "2s" }}]
"#
    )
}

#[tokio::test]
async fn a_failing_sink_is_retried_until_it_recovers() {
    let (url, calls, got, _) = flaky_receiver(3).await;
    let s = start(Options {
        toml: Some(http_sink_hook(&url)),
        ..Options::default()
    })
    .await;
    let e = event("user.lifecycle.deactivate");
    assert_eq!(
        s.deliver(&envelope(std::slice::from_ref(&e)))
            .await
            .status(),
        200
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while got.lock().expect("lock").is_empty() {
        assert!(std::time::Instant::now() < deadline, "never delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(calls.load(Ordering::SeqCst), 4, "3 failures then 1 success");
    let rec = got.lock().expect("lock")[0].clone();
    assert_eq!(rec["uuid"], e["uuid"]);
    assert_eq!(rec["attempt"], 4);
    let m = s.metrics().await;
    assert_eq!(
        metric(&m, "hookwarden_sink_failures_total", "sink=\"forward\""),
        3.0
    );
    assert_eq!(
        metric(&m, "hookwarden_sink_retries_total", "sink=\"forward\""),
        3.0
    );
    s.wait_metric("hookwarden_sink_deliveries_total", "sink=\"forward\"", 1.0)
        .await;
    s.stop().await;
}

#[tokio::test]
async fn dead_letters_are_listed_and_replayed_with_the_cli_while_running() {
    let (url, _calls, got, broken) = flaky_receiver(0).await;
    broken.store(true, Ordering::SeqCst);
    let s = start(Options {
        toml: Some(http_sink_hook(&url)),
        worker: "poll_interval = \"100ms\"\nbackoff_initial = \"20ms\"\nbackoff_max = \"50ms\"\nmax_attempts = 3".into(),
        ..Options::default()
    })
    .await;
    let a = event("user.session.start");
    let b = event("user.lifecycle.deactivate");
    assert_eq!(
        s.deliver(&envelope(&[a.clone(), b.clone()])).await.status(),
        200
    );
    // Both die after 3 attempts.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let m = s.metrics().await;
        if metric(&m, "hookwarden_dead_letters_total", "sink=\"forward\"") >= 2.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not dead-lettered: {m}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cfg = s.config_path.clone();
    let out = bin()
        .args(["events", "list", "--state", "dead", "--json", "--config"])
        .arg(&cfg)
        .output()
        .expect("run cli");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|e| e["state"] == "dead"));
    let rfc3339 = |v: &Value| {
        v.as_str()
            .is_some_and(|t| humantime::parse_rfc3339(t).is_ok())
    };
    assert!(
        listed.iter().all(|e| rfc3339(&e["receivedAt"])),
        "{listed:?}"
    );
    let show = bin()
        .args(["events", "show"])
        .arg(a["uuid"].as_str().expect("uuid"))
        .arg("--config")
        .arg(&cfg)
        .output()
        .expect("run cli");
    assert!(show.status.success());
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(
        shown.contains("HTTP 500") || shown.contains("500"),
        "{shown}"
    );
    // Times as `events list` prints them, not milliseconds.
    let detail: Value = serde_json::from_str(&shown).expect("one JSON document");
    assert!(rfc3339(&detail["receivedAt"]), "{shown}");

    // The receiver recovers; replay every dead letter while the service runs.
    broken.store(false, Ordering::SeqCst);
    let out = bin()
        .args(["events", "replay", "--all-dead", "--config"])
        .arg(&cfg)
        .output()
        .expect("run cli");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains('2'));
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while got.lock().expect("lock").len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "replayed events never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = bin()
        .args([
            "events",
            "list",
            "--state",
            "delivered",
            "--json",
            "--config",
        ])
        .arg(&cfg)
        .output()
        .expect("run cli");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
    s.stop().await;
}

#[tokio::test]
async fn certificates_are_reloaded_without_dropping_connections() {
    let s = start(Options::default()).await;
    // A connection opened with the first certificate, kept alive.
    assert_eq!(
        s.deliver(&fixture("event-hook-delivery.json"))
            .await
            .status(),
        200
    );
    // Rotate: write a new certificate over the configured files.
    let (new_cert, new_key, new_pem) = write_cert(s.dir.path(), "rotated");
    std::fs::copy(&new_key, &s.key_path).expect("copy key");
    std::fs::copy(&new_cert, &s.cert_path).expect("copy cert");
    // A client that trusts only the new certificate succeeds once the reload happened.
    let fresh = client_for(s.addr, &new_pem);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = fresh
            .get(s.url("/hooks/okta/events"))
            .header("Authorization", basic())
            .header("X-Okta-Verification-Challenge", "after-reload")
            .send()
            .await;
        if matches!(&r, Ok(r) if r.status() == 200) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "new certificate never served: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The old connection (pooled in s.client, which trusts only the old certificate) still works.
    assert_eq!(
        s.deliver(&envelope(&[event("user.session.start")]))
            .await
            .status(),
        200
    );
    let m = s.metrics().await;
    assert!(metric(&m, "hookwarden_tls_reloads_total", "result=\"ok\"") >= 1.0);
    s.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_requests_in_flight() {
    let s = start(Options::default()).await;
    // A delivery whose body is still arriving when shutdown starts.
    let body = envelope(&[event("user.session.start")]).into_bytes();
    let uuid: Value = serde_json::from_slice(&body).expect("json");
    let uuid = uuid["data"]["events"][0]["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    let (first, rest) = body.split_at(20);
    let (first, rest) = (first.to_vec(), rest.to_vec());
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let stream = async_stream(first, rest, go_rx);
    let client = s.client.clone();
    let url = s.url("/hooks/okta/events");
    let req = tokio::spawn(async move {
        client
            .post(url)
            .header("Authorization", basic())
            .header("Content-Type", "application/json")
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .map(|r| r.status())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // New connections are refused while the request in flight finishes.
    let refused = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client")
        .get(format!(
            "https://127.0.0.1:{}/hooks/okta/events",
            s.addr.port()
        ))
        .send()
        .await;
    assert!(refused.is_err(), "no new connections during shutdown");
    let _ = go_tx.send(());
    let status = req
        .await
        .expect("task")
        .expect("in-flight request answered");
    assert_eq!(status, 200);
    let jsonl = s.jsonl();
    let dir = s.stop().await;
    // It was stored (and, since workers stop after the listener, delivered or pending in the store).
    let config = hookwarden::config::Config::from_toml_str(
        &std::fs::read_to_string(dir.path().join("hookwarden.toml")).expect("cfg"),
    )
    .expect("cfg");
    let store = hookwarden::store::sqlite::SqliteStore::open(&config.store_path(), &config.store)
        .expect("store");
    use hookwarden::store::{Inspect, Store};
    let found = store.get(&uuid).await.expect("get");
    assert_eq!(
        found.len(),
        1,
        "acknowledged event is in the store after shutdown"
    );
    let _ = jsonl;
    store.close().await;
}

fn async_stream(
    first: Vec<u8>,
    rest: Vec<u8>,
    go: tokio::sync::oneshot::Receiver<()>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::spawn(async move {
        let _ = tx.send(Ok(first)).await;
        let _ = go.await;
        let _ = tx.send(Ok(rest)).await;
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

#[test]
fn check_config_reports_every_problem_and_fails() {
    let dir = tempfile::tempdir().expect("tmp");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        r#"
[worker]
concurrency = 0
[[event_hooks]]
name = "okta"
path = "hooks"
auth = { type = "header", header = "X-Secret", secrets = [{ env = "HOOKWARDEN_IT_SURELY_UNSET" }] }
sinks = [{ name = "s", type = "jsonl", path = "/tmp/x.jsonl", pth = "typo" }]
"#,
    )
    .expect("write");
    let out = bin()
        .args(["check-config", "--config"])
        .arg(&bad)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "worker.concurrency",
        "event_hooks[0].path",
        "event_hooks[0].auth.secrets[0]",
        "HOOKWARDEN_IT_SURELY_UNSET",
        "event_hooks[0].sinks[0].pth",
    ] {
        assert!(err.contains(key), "{key} missing from:\n{err}");
    }
    // Not TOML at all.
    std::fs::write(&bad, "this is = = not toml").expect("write");
    let out = bin()
        .args(["check-config", "--config"])
        .arg(&bad)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(!out.stderr.is_empty());
    // A missing file.
    let out = bin()
        .args(["check-config", "--config", "/nonexistent/h.toml"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/h.toml"));
    // The example config in the repository is valid as it is.
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/hookwarden.toml");
    let out = bin()
        .args(["check-config", "--config"])
        .arg(&example)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
