//! Verification, deliveries of Okta's samples, dedupe, concurrency, sink failures, dead letters.

use crate::util::*;
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;

#[tokio::test]
async fn verification_echoes_the_challenge_and_needs_auth() {
    let s = start(Options::default()).await;
    let r = s
        .client
        .get(s.url("/hooks/okta/events"))
        .header("Authorization", basic())
        .header(
            "X-Okta-Verification-Challenge",
            "2Ry2ZOXIY4NiuFgbJ8XadLOwQ9Ur8iGtpJXkgOlA",
        )
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    // The shape of Okta's own sample answer, with our challenge in it.
    let sample: Value =
        serde_json::from_str(&fixture("event-hook-verification-response.json")).expect("sample");
    assert_eq!(
        body.as_object().map(|o| o.keys().collect::<Vec<_>>()),
        sample.as_object().map(|o| o.keys().collect::<Vec<_>>())
    );
    assert_eq!(
        body["verification"],
        "2Ry2ZOXIY4NiuFgbJ8XadLOwQ9Ur8iGtpJXkgOlA"
    );

    // Okta sends the auth header on the GET too; without it, 401.
    let r = s
        .client
        .get(s.url("/hooks/okta/events"))
        .header("X-Okta-Verification-Challenge", "abc")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 401);

    // No challenge header: 400 that says what is missing.
    let r = s
        .client
        .get(s.url("/hooks/okta/events"))
        .header("Authorization", basic())
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.expect("json");
    assert!(body["errorSummary"]
        .as_str()
        .expect("summary")
        .contains("X-Okta-Verification-Challenge"));
    s.stop().await;
}

#[tokio::test]
async fn verification_without_auth_when_configured() {
    let tmp = tempfile::tempdir().expect("tmp");
    let hook = hook_with(tmp.path(), "verify_requires_auth = false");
    let s = start(Options {
        toml: Some(hook),
        ..Options::default()
    })
    .await;
    let r = s
        .client
        .get(s.url("/hooks/okta/events"))
        .header("X-Okta-Verification-Challenge", "xyz")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.expect("json")["verification"],
        "xyz"
    );
    // Deliveries still need credentials.
    let r = s
        .client
        .post(s.url("/hooks/okta/events"))
        .header("Content-Type", "application/json")
        .body(fixture("event-hook-delivery.json"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 401);
    s.stop().await;
}

#[tokio::test]
async fn every_okta_sample_reaches_the_jsonl_sink() {
    let s = start(Options::default()).await;
    // The two delivery envelopes Okta publishes, sent as they are.
    let mut expected = Vec::new();
    for name in ["event-hook-delivery.json", "event-hook-delivery-2019.json"] {
        let body = fixture(name);
        let v: Value = serde_json::from_str(&body).expect("json");
        for e in v["data"]["events"].as_array().expect("events") {
            expected.push((e["uuid"].as_str().expect("uuid").to_owned(), e.clone()));
        }
        let r = s.deliver(&body).await;
        assert_eq!(r.status(), 200, "{name}");
        assert!(
            r.bytes().await.expect("body").is_empty(),
            "ack body must be empty"
        );
    }
    // Okta's single System Log events (not envelopes), wrapped in an envelope as Okta does.
    for name in [
        "event-hook-event-user-lifecycle-deactivate.json",
        "system-log-event-user-session-start-security-context.json",
    ] {
        let e: Value = serde_json::from_str(&fixture(name)).expect("json");
        expected.push((e["uuid"].as_str().expect("uuid").to_owned(), e.clone()));
        let r = s.deliver(&envelope(&[e])).await;
        assert_eq!(r.status(), 200, "{name}");
    }
    let records = wait_jsonl(&s.jsonl(), expected.len(), Duration::from_secs(10)).await;
    assert_eq!(records.len(), expected.len());
    for (uuid, event) in &expected {
        let rec = records
            .iter()
            .find(|r| r["uuid"] == uuid.as_str())
            .expect("record for uuid");
        // The event arrives exactly as Okta sent it, with our envelope around it.
        assert_eq!(&rec["event"], event);
        assert_eq!(rec["hook"], "okta");
        assert_eq!(rec["sink"], "archive");
        assert_eq!(rec["eventType"], event["eventType"]);
        assert_eq!(rec["attempt"], 1);
    }
    let m = s.metrics().await;
    assert_eq!(
        metric(&m, "hookwarden_events_stored_total", "hook=\"okta\""),
        expected.len() as f64
    );
    // The counter follows the sink's write: wait for it rather than race it.
    s.wait_metric(
        "hookwarden_sink_deliveries_total",
        "sink=\"archive\"",
        expected.len() as f64,
    )
    .await;
    s.stop().await;
}

#[tokio::test]
async fn duplicates_are_acknowledged_and_processed_once() {
    let s = start(Options::default()).await;
    let a = event("user.session.start");
    let b = event("user.lifecycle.deactivate");
    let c = event("group.user_membership.add");
    let first = envelope(&[a.clone(), b.clone()]);
    assert_eq!(s.deliver(&first).await.status(), 200);
    // Okta's retry of the same POST, twice.
    assert_eq!(s.deliver(&first).await.status(), 200);
    assert_eq!(s.deliver(&first).await.status(), 200);
    // A re-batched retry: one old event, one new.
    assert_eq!(
        s.deliver(&envelope(&[b.clone(), c.clone()])).await.status(),
        200
    );
    // The same event twice inside one delivery.
    assert_eq!(
        s.deliver(&envelope(&[c.clone(), c.clone()])).await.status(),
        200
    );
    let records = wait_jsonl(&s.jsonl(), 3, Duration::from_secs(10)).await;
    // Give the workers time to (wrongly) deliver more.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let records_after = read_jsonl(&s.jsonl());
    assert_eq!(records_after.len(), 3, "each uuid once: {records:?}");
    let got: HashSet<String> = uuids(&records_after).into_iter().collect();
    for e in [&a, &b, &c] {
        assert!(got.contains(e["uuid"].as_str().expect("uuid")));
    }
    let m = s.metrics().await;
    // Duplicates: 2 events x 2 retries, b in the re-batch, c twice in the last delivery.
    assert_eq!(
        metric(&m, "hookwarden_duplicate_events_total", "hook=\"okta\""),
        7.0
    );
    assert_eq!(
        metric(&m, "hookwarden_events_stored_total", "hook=\"okta\""),
        3.0
    );
    s.stop().await;
}

#[tokio::test]
async fn concurrent_deliveries_are_all_stored_and_delivered() {
    let s = start(Options::default()).await;
    let mut tasks = Vec::new();
    let mut all = Vec::new();
    for i in 0..64 {
        let events: Vec<Value> = (0..(1 + i % 3))
            .map(|_| event("user.session.start"))
            .collect();
        all.extend(
            events
                .iter()
                .map(|e| e["uuid"].as_str().expect("uuid").to_owned()),
        );
        let body = envelope(&events);
        let client = s.client.clone();
        let url = s.url("/hooks/okta/events");
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .header("Authorization", basic())
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .expect("request")
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), 200);
    }
    let records = wait_jsonl(&s.jsonl(), all.len(), Duration::from_secs(20)).await;
    let got: HashSet<String> = uuids(&records).into_iter().collect();
    assert_eq!(records.len(), all.len(), "no duplicates");
    assert_eq!(got, all.into_iter().collect::<HashSet<_>>());
    s.stop().await;
}

#[tokio::test]
async fn sinks_filter_by_type_and_actors_are_ignored() {
    let tmp = tempfile::tempdir().expect("tmp");
    let life = tmp.path().join("lifecycle.jsonl");
    let all = tmp.path().join("all.jsonl");
    let hook = format!(
        r#"
[[event_hooks]]
name = "okta"
path = "/hooks/okta/events"
ignore_actors = ["integration@example.com"]
auth = {{ type = "basic", users = [{{ username = "{USER}", password = "{PASSWORD}" }}] }}
sinks = [
  {{ name = "lifecycle", type = "jsonl", path = "{}", event_types = ["user.lifecycle.*"] }},
  {{ name = "all", type = "jsonl", path = "{}" }},
]
"#,
        life.display(),
        all.display()
    );
    let s = start(Options {
        toml: Some(hook),
        ..Options::default()
    })
    .await;
    let deact = event("user.lifecycle.deactivate");
    let login = event("user.session.start");
    let mut ours = event("user.lifecycle.activate");
    ours["actor"]["alternateId"] = Value::String("integration@example.com".into());
    assert_eq!(
        s.deliver(&envelope(&[deact.clone(), login.clone(), ours.clone()]))
            .await
            .status(),
        200
    );
    let all_records = wait_jsonl(&all, 2, Duration::from_secs(10)).await;
    let life_records = wait_jsonl(&life, 1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(read_jsonl(&all).len(), 2, "{all_records:?}");
    assert_eq!(read_jsonl(&life).len(), 1, "{life_records:?}");
    assert_eq!(life_records[0]["uuid"], deact["uuid"]);
    assert!(!uuids(&read_jsonl(&all)).contains(&ours["uuid"].as_str().expect("u").to_owned()));
    s.stop().await;
}

#[tokio::test]
async fn a_full_store_answers_503_and_acknowledges_nothing_more() {
    // A sink that can never succeed (nothing listens on port 1) keeps jobs pending;
    // with room for two, the third event must be refused with 503 so that Okta retries.
    let hook = format!(
        r#"
[[event_hooks]]
name = "okta"
path = "/hooks/okta/events"
auth = {{ type = "basic", users = [{{ username = "{USER}", password = "{PASSWORD}" }}] }}
sinks = [{{ name = "down", type = "http", url = "http://127.0.0.1:1/", timeout = "1s" }}]

[store]
max_backlog = 2
"#
    );
    let s = start(Options {
        toml: Some(hook),
        ..Options::default()
    })
    .await;
    let a = event("user.session.start");
    let b = event("user.session.start");
    assert_eq!(s.deliver(&envelope(&[a.clone(), b])).await.status(), 200);
    let r = s.deliver(&envelope(&[event("user.session.start")])).await;
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.expect("json");
    assert!(body["errorSummary"]
        .as_str()
        .expect("summary")
        .contains("retry"));
    // A duplicate of what is stored is still acknowledged: it adds nothing.
    assert_eq!(s.deliver(&envelope(&[a])).await.status(), 200);
    let m = s.metrics().await;
    assert_eq!(
        metric(&m, "hookwarden_rejections_total", "reason=\"store_full\""),
        1.0
    );
    assert_eq!(
        metric(&m, "hookwarden_events_stored_total", "hook=\"okta\""),
        2.0
    );
    s.stop().await;
}
