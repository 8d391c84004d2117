//! The NATS JetStream sink against a real `nats-server -js` started by each test: Okta's
//! samples through the real hookwarden into a stream, dedupe across replicas by
//! `Nats-Msg-Id`, a missing stream and a stopped server as transient failures.
//!
//! `nats-server` must be on PATH (or named by `NATS_SERVER_BIN`): these tests fail when
//! it is missing instead of skipping, so that a CI without it cannot pass silently.

use crate::util::*;
use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream::{self, consumer, stream};
use hookwarden::config::Secret;
use hookwarden::sinks::nats::NatsSink;
use hookwarden::sinks::{Sink, SinkRecord};
use serde_json::Value;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_stream::StreamExt;

/// A nats-server with JetStream on 127.0.0.1, killed when dropped.
struct NatsServer {
    child: Option<Child>,
    port: u16,
    /// JetStream's store: kept across a restart so that the stream survives it.
    dir: tempfile::TempDir,
}

fn nats_server_bin() -> PathBuf {
    std::env::var_os("NATS_SERVER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("nats-server"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl NatsServer {
    async fn start() -> Self {
        let mut server = NatsServer {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().expect("tempdir"),
        };
        server.run().await;
        server
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the process and waits until it accepts clients and answers JetStream.
    async fn run(&mut self) {
        let bin = nats_server_bin();
        let log = std::fs::File::create(self.dir.path().join("nats-server.log")).expect("log");
        let child = Command::new(&bin)
            .args(["-js", "-a", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("-sd")
            .arg(self.dir.path().join("js"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e}. The NATS sink tests need a real nats-server: \
                     install it (apt-get install nats-server) or set NATS_SERVER_BIN",
                    bin.display()
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "nats-server exited during start-up ({status}): {}",
                    self.log()
                );
            }
            // JetStream answers its API once it is up. The answer is not parsed: the
            // account info's shape differs between server versions.
            if let Ok(client) = async_nats::connect(self.url()).await {
                if let Ok(answer) = client.request("$JS.API.INFO", "".into()).await {
                    if answer.status.is_none() {
                        return;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "nats-server not ready within 10s: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nats-server.log")).unwrap_or_default()
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops and starts again on the same port with the same store.
    async fn restart(&mut self) {
        self.stop();
        self.run().await;
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The stream an operator would create: `okta.>`, 2 minute duplicate window.
async fn create_stream(url: &str) -> stream::Stream {
    let client = async_nats::connect(url).await.expect("connect to nats");
    jetstream::new(client)
        .create_stream(stream::Config {
            name: "OKTA".to_owned(),
            subjects: vec!["okta.>".to_owned()],
            duplicate_window: Duration::from_secs(120),
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .expect("create stream")
}

/// The stream created before, through a new connection.
async fn open_stream(url: &str) -> stream::Stream {
    let client = async_nats::connect(url).await.expect("connect to nats");
    jetstream::new(client)
        .get_stream("OKTA")
        .await
        .expect("the stream survived the restart")
}

async fn message_count(stream: &stream::Stream) -> u64 {
    stream.get_info().await.expect("stream info").state.messages
}

/// Waits until the stream holds at least `n` messages (at most `within`).
async fn wait_messages(stream: &stream::Stream, n: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let got = message_count(stream).await;
        if got >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} messages in the stream, found {got} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One message read back through a consumer.
struct Received {
    subject: String,
    msg_id: Option<String>,
    body: Value,
}

/// Reads every message of the stream with an ephemeral pull consumer, from the start.
async fn read_all(stream: &stream::Stream) -> Vec<Received> {
    let expected = message_count(stream).await;
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut messages = consumer
        .fetch()
        .max_messages(expected as usize + 10)
        .expires(Duration::from_millis(500))
        .messages()
        .await
        .expect("fetch");
    let mut out = Vec::new();
    while let Some(m) = messages.next().await {
        let m = m.expect("message");
        out.push(Received {
            subject: m.subject.to_string(),
            msg_id: m
                .headers
                .as_ref()
                .and_then(|h| h.get(NATS_MESSAGE_ID))
                .map(|v| v.as_str().to_owned()),
            body: serde_json::from_slice(&m.payload).expect("payload is JSON"),
        });
    }
    assert_eq!(out.len() as u64, expected, "consumer read every message");
    out
}

/// hookwarden with one hook whose only sink is NATS.
async fn hookwarden(nats_url: &str) -> TestServer {
    start(Options {
        toml: Some(format!(
            r#"
[[event_hooks]]
name = "okta"
path = "/hooks/okta/events"
auth = {{ type = "basic", users = [{{ username = "{USER}", password = "{PASSWORD}" }}] }}
sinks = [{{ name = "bus", type = "nats", url = "{nats_url}", timeout = "1s" }}]
"#
        )),
        ..Default::default()
    })
    .await
}

/// Waits until a metric is at least `min`.
async fn wait_metric_at_least(s: &TestServer, name: &str, labels: &str, min: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = metric(&s.metrics().await, name, labels);
        if got >= min {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}{{{labels}}} is {got}, expected at least {min}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const BUS: &str = "hook=\"okta\",sink=\"bus\"";

/// The events of a delivery body, by uuid.
fn events_of(body: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(body).expect("json");
    v["data"]["events"].as_array().expect("events").clone()
}

#[tokio::test]
async fn okta_samples_reach_the_stream_once_each() {
    let nats = NatsServer::start().await;
    let stream = create_stream(&nats.url()).await;
    let s = hookwarden(&nats.url()).await;

    let sample = fixture("event-hook-delivery.json");
    let mine = envelope(&[
        event("user.session.start"),
        event("group.user_membership.add"),
        event(""),
    ]);
    let mut sent = events_of(&sample);
    sent.extend(events_of(&mine));
    assert_eq!(s.deliver(&sample).await.status(), 200);
    assert_eq!(s.deliver(&mine).await.status(), 200);
    // Okta sends again what it thinks was lost: hookwarden's dedupe drops it before the sink.
    assert_eq!(s.deliver(&sample).await.status(), 200);

    s.wait_metric("hookwarden_sink_deliveries_total", BUS, sent.len() as f64)
        .await;
    let got = read_all(&stream).await;
    assert_eq!(got.len(), sent.len(), "each event exactly once");
    for e in &sent {
        let uuid = e["uuid"].as_str().expect("uuid");
        let m = got
            .iter()
            .find(|m| m.body["uuid"] == uuid)
            .unwrap_or_else(|| panic!("event {uuid} not in the stream"));
        let event_type = e["eventType"].as_str().expect("type");
        let subject_type = if event_type.is_empty() {
            "unknown"
        } else {
            event_type
        };
        assert_eq!(m.subject, format!("okta.okta.{subject_type}"));
        assert_eq!(m.msg_id.as_deref(), Some(uuid));
        assert_eq!(m.body["hook"], "okta");
        assert_eq!(m.body["sink"], "bus");
        assert_eq!(m.body["eventType"], event_type);
        assert_eq!(m.body["attempt"], 1);
        assert_eq!(&m.body["event"], e, "the event inside, as Okta sent it");
    }
    assert!(got
        .iter()
        .any(|m| m.subject == "okta.okta.user.session.start"
            && m.body["uuid"] == "f1d0b993-cc19-11ed-a688-db22c99ef6c4"));
    s.stop().await;
}

/// Two replicas are two `NatsSink`s (each with its own connection) delivering the same
/// record, as two workers would after a lease expired: JetStream keeps one copy.
#[tokio::test]
async fn two_replicas_publishing_the_same_event_store_it_once() {
    let nats = NatsServer::start().await;
    let stream = create_stream(&nats.url()).await;
    let token: Option<&Secret> = None;
    let replica = || {
        NatsSink::new(
            &nats.url(),
            "okta.{hook}.{event_type}",
            token,
            Duration::from_secs(2),
        )
        .expect("sink")
    };
    let (a, b) = (replica(), replica());
    let e = event("user.session.start");
    let raw = serde_json::value::to_raw_value(&e).expect("raw");
    let uuid = e["uuid"].as_str().expect("uuid");
    let record = SinkRecord {
        hook: "okta",
        sink: "bus",
        uuid,
        event_id: "delivery-1",
        event_type: "user.session.start",
        received_at: "2026-11-23T12:00:00.000Z".to_owned(),
        attempt: 1,
        recovered: false,
        event: &raw,
    };
    let (ra, rb) = tokio::join!(a.deliver(&record), b.deliver(&record));
    ra.expect("replica a delivered");
    rb.expect("replica b delivered");
    // A later retry by either one, inside the window, is acknowledged and dropped too.
    a.deliver(&record).await.expect("retry delivered");

    let got = read_all(&stream).await;
    assert_eq!(got.len(), 1, "the stream holds the event once");
    assert_eq!(got[0].msg_id.as_deref(), Some(uuid));
    assert_eq!(got[0].subject, "okta.okta.user.session.start");
}

#[tokio::test]
async fn without_a_stream_delivery_fails_transiently_until_one_is_created() {
    let nats = NatsServer::start().await;

    // The sink's own answer: transient, and it says what to do.
    let sink = NatsSink::new(
        &nats.url(),
        "okta.{hook}.{event_type}",
        None,
        Duration::from_secs(2),
    )
    .expect("sink");
    let e = event("user.session.start");
    let raw = serde_json::value::to_raw_value(&e).expect("raw");
    let record = SinkRecord {
        hook: "okta",
        sink: "bus",
        uuid: e["uuid"].as_str().expect("uuid"),
        event_id: "delivery-1",
        event_type: "user.session.start",
        received_at: "2026-11-23T12:00:00.000Z".to_owned(),
        attempt: 1,
        recovered: false,
        event: &raw,
    };
    let err = sink.deliver(&record).await.expect_err("no stream");
    assert!(!err.permanent, "{err}");
    assert!(
        err.message.contains("stream") && err.message.contains("create"),
        "{err}"
    );

    // Through hookwarden: the worker retries and nothing is dead-lettered.
    let s = hookwarden(&nats.url()).await;
    let body = envelope(&[event("user.account.lock")]);
    let uuid = events_of(&body)[0]["uuid"].clone();
    assert_eq!(s.deliver(&body).await.status(), 200);
    wait_metric_at_least(&s, "hookwarden_sink_failures_total", BUS, 2.0).await;
    let m = s.metrics().await;
    assert_eq!(metric(&m, "hookwarden_dead_letters_total", BUS), 0.0);
    assert_eq!(metric(&m, "hookwarden_sink_deliveries_total", BUS), 0.0);

    let stream = create_stream(&nats.url()).await;
    wait_messages(&stream, 1, Duration::from_secs(5)).await;
    s.wait_metric("hookwarden_sink_deliveries_total", BUS, 1.0)
        .await;
    let got = read_all(&stream).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body["uuid"], uuid);
    assert_eq!(got[0].subject, "okta.okta.user.account.lock");
    s.stop().await;
}

#[tokio::test]
async fn a_stopped_server_fails_transiently_and_a_restarted_one_gets_the_event() {
    let mut nats = NatsServer::start().await;
    let stream = create_stream(&nats.url()).await;
    let s = hookwarden(&nats.url()).await;

    // Connected and delivering first, so that the outage hits an established client.
    let first = envelope(&[event("user.session.start")]);
    assert_eq!(s.deliver(&first).await.status(), 200);
    s.wait_metric("hookwarden_sink_deliveries_total", BUS, 1.0)
        .await;

    nats.stop();
    // A sink that never connected: refused at once, transient.
    let fresh = NatsSink::new(
        &nats.url(),
        "okta.{hook}.{event_type}",
        None,
        Duration::from_secs(1),
    )
    .expect("sink");
    let e = event("user.session.end");
    let raw = serde_json::value::to_raw_value(&e).expect("raw");
    let record = SinkRecord {
        hook: "okta",
        sink: "bus",
        uuid: e["uuid"].as_str().expect("uuid"),
        event_id: "delivery-2",
        event_type: "user.session.end",
        received_at: "2026-11-23T12:00:00.000Z".to_owned(),
        attempt: 1,
        recovered: false,
        event: &raw,
    };
    let err = fresh.deliver(&record).await.expect_err("server down");
    assert!(!err.permanent, "{err}");

    // hookwarden still acknowledges Okta (the event is stored) and retries the sink.
    let second = envelope(&[event("user.session.end")]);
    let uuid = events_of(&second)[0]["uuid"].clone();
    assert_eq!(s.deliver(&second).await.status(), 200);
    wait_metric_at_least(&s, "hookwarden_sink_failures_total", BUS, 1.0).await;

    nats.restart().await;
    // The client reconnects by itself (backoff at most 4s); retries inside the sink's 1s
    // timeout then get their ack. Publishes queued during the outage are duplicates.
    // The stream survived the restart in the server's store; a fresh handle reads it.
    drop(stream);
    let stream = open_stream(&nats.url()).await;
    wait_messages(&stream, 2, Duration::from_secs(15)).await;
    s.wait_metric("hookwarden_sink_deliveries_total", BUS, 2.0)
        .await;
    let got = read_all(&stream).await;
    assert_eq!(got.len(), 2, "each event once, despite the retries");
    assert!(got.iter().any(|m| m.body["uuid"] == uuid));
    let m = s.metrics().await;
    assert_eq!(metric(&m, "hookwarden_dead_letters_total", BUS), 0.0);
    s.stop().await;
}
