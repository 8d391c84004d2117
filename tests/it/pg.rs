//! The PostgreSQL store against a real PostgreSQL (see `pgutil`): the store contract,
//! concurrent migrations, two replicas on one database, and the database going away.

use crate::pgutil::{self, shared, store_config, store_toml};
use crate::util::{self, start, Options};
use hookwarden::store::postgres::PostgresStore;
use hookwarden::store::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LEASE: Duration = Duration::from_secs(60);

async fn open(url: &str, max_backlog: u64) -> PostgresStore {
    PostgresStore::connect(&pgutil::pg_config(url), &store_config(url, max_backlog))
        .await
        .expect("connect")
}

async fn fresh(max_backlog: u64) -> (String, PostgresStore) {
    let url = shared().fresh_db().await;
    let store = open(&url, max_backlog).await;
    (url, store)
}

fn event(uuid: &str, event_type: &str, sinks: &[&str]) -> NewEvent {
    NewEvent {
        uuid: uuid.to_owned(),
        event_type: event_type.to_owned(),
        published: Some("2026-11-23T10:00:00.000Z".to_owned()),
        payload: format!(r#"{{"uuid":"{uuid}","eventType":"{event_type}"}}"#),
        sinks: sinks.iter().map(|s| s.to_string()).collect(),
    }
}

fn delivery_at(hook: &str, at: Millis, events: Vec<NewEvent>) -> Delivery {
    Delivery {
        hook: hook.to_owned(),
        event_id: "evt-1".to_owned(),
        received_at: at,
        events,
        recovered: false,
    }
}

fn delivery(hook: &str, events: Vec<NewEvent>) -> Delivery {
    delivery_at(hook, now_millis(), events)
}

#[tokio::test]
async fn ingest_dedupes_per_hook_and_keeps_the_payload() {
    let (_, store) = fresh(1000).await;
    let out = store
        .ingest(delivery(
            "okta",
            vec![event("a", "t", &["s1", "s2"]), event("b", "t", &[])],
        ))
        .await
        .expect("ingest");
    assert_eq!(
        out,
        IngestOutcome {
            stored: 2,
            duplicates: 0
        }
    );
    // Okta's retry: nothing new.
    let again = store
        .ingest(delivery("okta", vec![event("a", "t", &["s1", "s2"])]))
        .await
        .expect("ingest");
    assert_eq!(
        again,
        IngestOutcome {
            stored: 0,
            duplicates: 1
        }
    );
    // The same uuid for another hook is another event.
    let other = store
        .ingest(delivery("other", vec![event("a", "t", &["s1"])]))
        .await
        .expect("ingest");
    assert_eq!(other.stored, 1);
    let got = store.get("a").await.expect("get");
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].summary.hook, "okta");
    assert_eq!(got[0].summary.sinks.len(), 2);
    assert_eq!(got[0].event.get(), r#"{"uuid":"a","eventType":"t"}"#);
    assert_eq!(got[1].summary.hook, "other");
    let b = store.get("b").await.expect("get");
    assert_eq!(b[0].summary.state, EventState::Ignored);
    let stats = store.stats().await.expect("stats");
    assert_eq!((stats.backlog, stats.dead, stats.events), (3, 0, 3));
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_ingests_share_commits() {
    let (_, store) = fresh(100_000).await;
    let store = Arc::new(store);
    let before = store.group_commits();
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .ingest(delivery("okta", vec![event(&format!("e{i}"), "t", &["s"])]))
                    .await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.expect("task").expect("ingest").stored, 1);
    }
    let commits = store.group_commits() - before;
    assert!(commits < 60, "{commits} commits for 60 ingests");
    assert_eq!(store.stats().await.expect("stats").backlog, 60);
    store.close().await;
}

#[tokio::test]
async fn claim_finish_retry_dead_and_replay() {
    let (_, store) = fresh(1000).await;
    store
        .ingest(delivery("okta", vec![event("a", "t", &["s"])]))
        .await
        .expect("ingest");
    let jobs = store.claim(10, LEASE).await.expect("claim");
    assert_eq!(jobs.len(), 1);
    let job = jobs[0].clone();
    assert_eq!((job.attempts, job.interrupted), (0, false));
    assert_eq!(job.payload, r#"{"uuid":"a","eventType":"t"}"#);
    // Leased: nobody else gets it.
    assert!(store.claim(10, LEASE).await.expect("claim").is_empty());
    // Retry due now.
    store
        .finish(
            &job,
            JobOutcome::Retry {
                at: now_millis(),
                error: "boom".into(),
            },
        )
        .await
        .expect("finish");
    let jobs = store.claim(10, LEASE).await.expect("claim");
    assert_eq!(jobs.len(), 1);
    assert_eq!((jobs[0].attempts, jobs[0].interrupted), (1, false));
    // A stale token changes nothing.
    let mut stale = jobs[0].clone();
    stale.lease_token = job.lease_token.wrapping_add(1);
    if stale.lease_token == jobs[0].lease_token {
        stale.lease_token = stale.lease_token.wrapping_add(1);
    }
    store
        .finish(&stale, JobOutcome::Delivered)
        .await
        .expect("finish");
    assert_eq!(store.stats().await.expect("stats").backlog, 1);
    store
        .finish(
            &jobs[0],
            JobOutcome::Dead {
                error: "gone".into(),
            },
        )
        .await
        .expect("finish");
    let stats = store.stats().await.expect("stats");
    assert_eq!((stats.backlog, stats.dead), (0, 1));
    let got = store.get("a").await.expect("get");
    assert_eq!(got[0].summary.state, EventState::Dead);
    assert_eq!(got[0].summary.sinks[0].last_error.as_deref(), Some("gone"));
    assert_eq!(got[0].summary.sinks[0].attempts, 2);
    // Replay of every dead letter, then of one event (delivered ones too).
    assert_eq!(
        store
            .replay(&ReplayTarget::AllDead { hook: None })
            .await
            .expect("replay"),
        1
    );
    let jobs = store.claim(10, LEASE).await.expect("claim");
    assert_eq!(jobs.len(), 1);
    store
        .finish(&jobs[0], JobOutcome::Delivered)
        .await
        .expect("finish");
    assert_eq!(
        store.get("a").await.expect("get")[0].summary.state,
        EventState::Delivered
    );
    assert_eq!(
        store
            .replay(&ReplayTarget::Event {
                uuid: "a".into(),
                hook: Some("okta".into())
            })
            .await
            .expect("replay"),
        1
    );
    assert_eq!(
        store
            .replay(&ReplayTarget::Event {
                uuid: "a".into(),
                hook: Some("nope".into())
            })
            .await
            .expect("replay"),
        0
    );
    assert_eq!(store.claim(10, LEASE).await.expect("claim").len(), 1);
    store.close().await;
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_by_another_replica_as_interrupted() {
    let (url, a) = fresh(1000).await;
    let b = open(&url, 1000).await;
    a.ingest(delivery("okta", vec![event("a", "t", &["s"])]))
        .await
        .expect("ingest");
    let first = a.claim(1, Duration::from_millis(300)).await.expect("claim");
    assert_eq!(first.len(), 1);
    assert!(!first[0].interrupted);
    // Replica B cannot take it while the lease runs...
    assert!(b.claim(1, LEASE).await.expect("claim").is_empty());
    tokio::time::sleep(Duration::from_millis(400)).await;
    // ...and takes it over once it ran out, marked interrupted (A may have delivered it).
    let second = b.claim(1, LEASE).await.expect("claim");
    assert_eq!(second.len(), 1);
    assert!(second[0].interrupted);
    assert_eq!(second[0].attempts, 0);
    // A, late, cannot finish it any more.
    a.finish(
        &first[0],
        JobOutcome::Dead {
            error: "late".into(),
        },
    )
    .await
    .expect("finish");
    assert_eq!(
        b.get("a").await.expect("get")[0].summary.state,
        EventState::Pending
    );
    b.finish(&second[0], JobOutcome::Delivered)
        .await
        .expect("finish");
    assert_eq!(
        a.get("a").await.expect("get")[0].summary.state,
        EventState::Delivered
    );
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn capacity_answers_full_but_acknowledges_duplicates() {
    let (_, store) = fresh(2).await;
    store
        .ingest(delivery("okta", vec![event("a", "t", &["s1", "s2"])]))
        .await
        .expect("ingest");
    let err = store
        .ingest(delivery("okta", vec![event("b", "t", &["s1"])]))
        .await
        .expect_err("full");
    assert!(matches!(err, StoreError::Full(2)), "{err:?}");
    assert!(store.get("b").await.expect("get").is_empty());
    let again = store
        .ingest(delivery("okta", vec![event("a", "t", &["s1", "s2"])]))
        .await
        .expect("a duplicate is not refused");
    assert_eq!(again.duplicates, 1);
    // An event for no sink adds no work either.
    store
        .ingest(delivery("okta", vec![event("c", "t", &[])]))
        .await
        .expect("no work, no refusal");
    let jobs = store.claim(1, LEASE).await.expect("claim");
    store
        .finish(&jobs[0], JobOutcome::Delivered)
        .await
        .expect("finish");
    store
        .ingest(delivery("okta", vec![event("b", "t", &["s1"])]))
        .await
        .expect("room again");
    store.close().await;
}

#[tokio::test]
async fn list_filters_and_derived_states() {
    let (_, store) = fresh(1000).await;
    let t0 = now_millis() - 10_000;
    for (hook, at, e) in [
        ("okta", t0, event("ign", "user.session.start", &[])),
        (
            "okta",
            t0 + 1000,
            event("del", "user.lifecycle.create", &["s"]),
        ),
        (
            "other",
            t0 + 2000,
            event("dead", "user.lifecycle.deactivate", &["s", "t"]),
        ),
        (
            "okta",
            t0 + 3000,
            event("pen", "group.user_membership.add", &["s"]),
        ),
    ] {
        store
            .ingest(delivery_at(hook, at, vec![e]))
            .await
            .expect("ingest");
    }
    for j in store.claim(10, LEASE).await.expect("claim") {
        let outcome = match (j.uuid.as_str(), j.sink.as_str()) {
            ("del", _) | ("dead", "s") => JobOutcome::Delivered,
            ("dead", "t") => JobOutcome::Dead { error: "x".into() },
            _ => JobOutcome::Retry {
                at: now_millis() + 60_000,
                error: "later".into(),
            },
        };
        store.finish(&j, outcome).await.expect("finish");
    }
    let list = |f: &dyn Fn(&mut EventQuery)| {
        let mut q = EventQuery::default();
        f(&mut q);
        let store = &store;
        async move {
            store
                .list(&q)
                .await
                .expect("list")
                .into_iter()
                .map(|s| (s.uuid, s.state))
                .collect::<Vec<_>>()
        }
    };
    let uuids = |v: Vec<(String, EventState)>| v.into_iter().map(|(u, _)| u).collect::<Vec<_>>();
    assert_eq!(
        list(&|_| {}).await,
        [
            ("pen".to_owned(), EventState::Pending),
            ("dead".to_owned(), EventState::Dead),
            ("del".to_owned(), EventState::Delivered),
            ("ign".to_owned(), EventState::Ignored),
        ]
    );
    assert_eq!(
        uuids(list(&|q| q.hook = Some("other".into())).await),
        ["dead"]
    );
    for (state, want) in [
        (EventState::Pending, "pen"),
        (EventState::Dead, "dead"),
        (EventState::Delivered, "del"),
        (EventState::Ignored, "ign"),
    ] {
        assert_eq!(uuids(list(&|q| q.state = Some(state)).await), [want]);
    }
    assert_eq!(
        uuids(list(&|q| q.event_type = Some("user.lifecycle.*".into())).await),
        ["dead", "del"]
    );
    assert_eq!(
        uuids(list(&|q| q.event_type = Some("*.add".into())).await),
        ["pen"]
    );
    assert!(list(&|q| q.event_type = Some("USER.*".into()))
        .await
        .is_empty());
    assert!(list(&|q| q.event_type = Some("user_lifecycle.*".into()))
        .await
        .is_empty());
    assert!(list(&|q| q.event_type = Some("user.lifecycle".into()))
        .await
        .is_empty());
    assert_eq!(
        uuids(list(&|q| q.since = Some(t0 + 1000)).await),
        ["pen", "dead", "del"]
    );
    assert_eq!(uuids(list(&|q| q.until = Some(t0 + 1000)).await), ["ign"]);
    assert_eq!(
        uuids(
            list(&|q| {
                q.since = Some(t0 + 1000);
                q.until = Some(t0 + 3000);
                q.hook = Some("okta".into());
            })
            .await
        ),
        ["del"]
    );
    assert_eq!(uuids(list(&|q| q.limit = 2).await), ["pen", "dead"]);
    store.close().await;
}

#[tokio::test]
async fn prune_deletes_finished_old_events_in_chunks() {
    let (_, store) = fresh(100_000).await;
    let old = now_millis() - 86_400_000;
    let many: Vec<NewEvent> = (0..1200)
        .map(|i| event(&format!("i{i}"), "t", &[]))
        .collect();
    store
        .ingest(delivery_at("okta", old, many))
        .await
        .expect("ingest");
    store
        .ingest(delivery_at(
            "okta",
            old,
            vec![
                event("old-del", "t", &["s"]),
                event("old-pen", "t", &["s"]),
                event("old-dead", "t", &["s"]),
            ],
        ))
        .await
        .expect("ingest");
    store
        .ingest(delivery("okta", vec![event("new-del", "t", &["s"])]))
        .await
        .expect("ingest");
    for j in store.claim(10, LEASE).await.expect("claim") {
        let outcome = match j.uuid.as_str() {
            "old-pen" => JobOutcome::Retry {
                at: now_millis() + 60_000,
                error: "x".into(),
            },
            "old-dead" => JobOutcome::Dead { error: "x".into() },
            _ => JobOutcome::Delivered,
        };
        store.finish(&j, outcome).await.expect("finish");
    }
    let n = store.prune(now_millis() - 3_600_000).await.expect("prune");
    assert_eq!(n, 1201, "1200 ignored + old-del");
    let left: Vec<String> = store
        .list(&EventQuery {
            limit: 100,
            ..EventQuery::default()
        })
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.uuid)
        .collect();
    assert_eq!(left, ["new-del", "old-dead", "old-pen"]);
    let stats = store.stats().await.expect("stats");
    assert_eq!((stats.events, stats.backlog, stats.dead), (3, 1, 1));
    store.close().await;
}

#[tokio::test]
async fn inline_answers_are_shared_and_first_wins() {
    let (url, a) = fresh(1000).await;
    let b = open(&url, 1000).await;
    let ttl = Duration::from_secs(60);
    assert_eq!(a.get_answer("inl", "e1", ttl).await.expect("get"), None);
    a.put_answer("inl", "e1", b"first").await.expect("put");
    b.put_answer("inl", "e1", b"second").await.expect("put");
    assert_eq!(
        b.get_answer("inl", "e1", ttl)
            .await
            .expect("get")
            .as_deref(),
        Some(&b"first"[..])
    );
    assert_eq!(a.get_answer("other", "e1", ttl).await.expect("get"), None);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        a.get_answer("inl", "e1", Duration::from_millis(1))
            .await
            .expect("get"),
        None,
        "older than the ttl"
    );
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn after_close_everything_is_closed() {
    let (_, store) = fresh(1000).await;
    store.check_writable().await.expect("writable");
    store.close().await;
    store.close().await; // idempotent
    assert!(matches!(
        store
            .ingest(delivery("okta", vec![event("a", "t", &["s"])]))
            .await,
        Err(StoreError::Closed)
    ));
    assert!(matches!(
        store.claim(1, LEASE).await,
        Err(StoreError::Closed)
    ));
    assert!(matches!(
        store.list(&EventQuery::default()).await,
        Err(StoreError::Closed)
    ));
    assert!(matches!(
        store.check_writable().await,
        Err(StoreError::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_starting_together_migrate_once() {
    let url = shared().fresh_db().await;
    let (a, b, c) = tokio::join!(open(&url, 10), open(&url, 10), open(&url, 10));
    // All three work on the one schema.
    a.ingest(delivery("okta", vec![event("x", "t", &["s"])]))
        .await
        .expect("ingest");
    assert_eq!(
        b.ingest(delivery("okta", vec![event("x", "t", &["s"])]))
            .await
            .expect("ingest")
            .duplicates,
        1
    );
    assert_eq!(c.stats().await.expect("stats").events, 1);
    for s in [a, b, c] {
        s.close().await;
    }
}

/// Okta's retries of several deliveries landing on two replicas at once, in opposite
/// orders: both replicas' group commits insert the same uuids. Inserted in arrival
/// order, the two transactions would wait on each other's unique-index entries and
/// PostgreSQL would fail one of them (a deadlock, a 503 for every delivery of its
/// batch). Every ingest must succeed, and each event be stored, and get its job, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_ingesting_the_same_events_in_opposite_orders_never_deadlock() {
    let url = shared().fresh_db().await;
    let (a, b) = tokio::join!(open(&url, 1_000_000), open(&url, 1_000_000));
    let (a, b) = (Arc::new(a), Arc::new(b));
    const N: usize = 48;
    let mut total_stored = 0usize;
    for round in 0..5 {
        // Delivery i carries events i and i+1, so deliveries overlap pairwise.
        let make = |i: usize| {
            delivery(
                "okta",
                vec![
                    event(&format!("r{round}-e{i}"), "t", &["s1", "s2"]),
                    event(&format!("r{round}-e{}", (i + 1) % N), "t", &["s1", "s2"]),
                ],
            )
        };
        let mut tasks = Vec::new();
        for i in 0..N {
            let (a, b) = (a.clone(), b.clone());
            let (da, mut db) = (make(i), make(N - 1 - i));
            db.events.reverse();
            tasks.push(tokio::spawn(async move { a.ingest(da).await }));
            tasks.push(tokio::spawn(async move { b.ingest(db).await }));
        }
        for t in tasks {
            let out = t.await.expect("task").expect("no ingest may fail");
            assert_eq!(out.stored + out.duplicates, 2);
            total_stored += out.stored;
        }
    }
    assert_eq!(
        total_stored,
        5 * N,
        "each event stored once across the replicas"
    );
    let stats = a.stats().await.expect("stats");
    assert_eq!(
        (stats.events, stats.backlog),
        (5 * N as u64, 2 * 5 * N as u64)
    );
    for s in [a, b] {
        s.close().await;
    }
}

#[tokio::test]
async fn a_wrong_password_fails_at_connect_without_showing_it() {
    let url = shared().fresh_db().await;
    let mut pg = pgutil::pg_config(&url);
    pg.password = Some(hookwarden::config::Secret::literal("not-the-password"));
    let err = PostgresStore::connect(&pg, &store_config(&url, 10))
        .await
        .err()
        .expect("refused");
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Unavailable(_)), "{msg}");
    assert!(!msg.contains("not-the-password"), "{msg}");
    assert!(msg.contains(&url), "the URL helps: {msg}");
}

/// Hook TOML whose JSONL sink writes to `path`.
fn hook_toml(path: &std::path::Path) -> String {
    format!(
        r#"
[[event_hooks]]
name = "okta"
path = "/hooks/okta/events"
auth = {{ type = "basic", users = [{{ username = "{}", password = "{}" }}] }}
sinks = [{{ name = "archive", type = "jsonl", path = "{}" }}]
"#,
        util::USER,
        util::PASSWORD,
        path.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_store_and_process_a_retried_delivery_once() {
    let url = shared().fresh_db().await;
    let sinks = tempfile::tempdir().expect("tempdir");
    let (path_a, path_b) = (sinks.path().join("a.jsonl"), sinks.path().join("b.jsonl"));
    let opts = |path: &std::path::Path| Options {
        toml: Some(format!("{}{}", hook_toml(path), store_toml(&url))),
        ..Options::default()
    };
    let a = start(opts(&path_a)).await;
    let b = start(opts(&path_b)).await;
    let e = util::event("user.lifecycle.create");
    let uuid = e["uuid"].as_str().expect("uuid").to_owned();
    let body = util::envelope(&[e]);
    assert_eq!(a.deliver(&body).await.status(), 200);
    // Okta's retry lands on the other replica.
    assert_eq!(b.deliver(&body).await.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let lines: Vec<_> = util::read_jsonl(&path_a)
            .into_iter()
            .chain(util::read_jsonl(&path_b))
            .collect();
        if !lines.is_empty() || Instant::now() > deadline {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(util::uuids(&lines), std::slice::from_ref(&uuid));
    // Both workers keep polling: still one line a moment later.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let total = util::read_jsonl(&path_a).len() + util::read_jsonl(&path_b).len();
    assert_eq!(total, 1, "processed once across both replicas");
    let store = open(&url, 10).await;
    let got = store.get(&uuid).await.expect("get");
    assert_eq!(got.len(), 1, "stored once");
    assert_eq!(got[0].summary.state, EventState::Delivered);
    store.close().await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn while_postgres_is_down_deliveries_get_503_and_recover() {
    let pg = pgutil::dedicated();
    let url = pg.fresh_db().await;
    let sinks = tempfile::tempdir().expect("tempdir");
    let path = sinks.path().join("events.jsonl");
    let mut server = start(Options {
        toml: Some(format!("{}{}", hook_toml(&path), store_toml(&url))),
        ..Options::default()
    })
    .await;
    let first = util::event("user.lifecycle.create");
    let mut acked = vec![first["uuid"].as_str().expect("uuid").to_owned()];
    assert_eq!(
        server.deliver(&util::envelope(&[first])).await.status(),
        200
    );
    util::wait_jsonl(&path, 1, Duration::from_secs(10)).await;

    pg.stop("fast").expect("stop postgres");
    let down = util::event("user.lifecycle.create");
    let down_body = util::envelope(std::slice::from_ref(&down));
    assert_eq!(server.deliver(&down_body).await.status(), 503);
    let ready = reqwest::get(format!("{}/readyz", server.admin_base))
        .await
        .expect("readyz");
    assert_ne!(ready.status(), 200, "not ready while the database is down");

    pg.start_again().expect("start postgres");
    // Okta retries the refused delivery: accepted once the pool reconnects.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = server.deliver(&down_body).await.status();
        if status == 200 {
            break;
        }
        assert_eq!(status, 503);
        assert!(Instant::now() < deadline, "still refused after the restart");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    acked.push(down["uuid"].as_str().expect("uuid").to_owned());
    server.wait_ready().await;
    let last = util::event("user.lifecycle.create");
    acked.push(last["uuid"].as_str().expect("uuid").to_owned());
    assert_eq!(server.deliver(&util::envelope(&[last])).await.status(), 200);
    let mut got = util::uuids(&util::wait_jsonl(&path, 3, Duration::from_secs(10)).await);
    got.sort();
    acked.sort();
    assert_eq!(got, acked, "everything acknowledged is delivered, once");
    server.stop().await;
    drop(pg);
}

#[tokio::test]
async fn okta_retries_on_another_replica_get_the_same_inline_answer() {
    use crate::inline::{call, inline_hook, target};
    let url = shared().fresh_db().await;
    let t = target().await;
    *t.answers.lock().expect("lock") = vec![
        serde_json::json!({"commands": [{"type": "com.okta.action.update", "value": {"registration": "ALLOW"}}]}),
        serde_json::json!({"commands": [{"type": "com.okta.action.update", "value": {"registration": "DENY"}}]}),
    ];
    let hook = inline_hook(
        "registration",
        "registration",
        &format!(r#"{{ kind = "forward", url = "{}" }}"#, t.url),
        "",
    );
    let opts = || Options {
        toml: Some(format!("{hook}{}", store_toml(&url))),
        ..Options::default()
    };
    let a = start(opts()).await;
    let b = start(opts()).await;
    let req = util::fixture("registration-hook-request-ssr.json");
    let first: serde_json::Value = call(&a, "registration", &req)
        .await
        .json()
        .await
        .expect("json");
    // The shared answer is written in the background; Okta retries only after its 3 s
    // timeout, so wait (up to that long) until the answer is in the database.
    let store = open(&url, 10).await;
    let event_id = serde_json::from_str::<serde_json::Value>(&req).expect("json")["eventId"]
        .as_str()
        .expect("eventId")
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(3);
    while store
        .get_answer("registration", &event_id, Duration::from_secs(600))
        .await
        .expect("lookup")
        .is_none()
    {
        assert!(
            Instant::now() < deadline,
            "the answer never reached the database"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    store.close().await;
    let retry: serde_json::Value = call(&b, "registration", &req)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        first, retry,
        "the retry on replica B gets replica A's answer"
    );
    assert_eq!(first["commands"][0]["value"]["registration"], "ALLOW");
    assert_eq!(
        t.calls.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the handler ran once"
    );
    a.stop().await;
    b.stop().await;
}

// --- System Log reconciliation: recovered flag, cursors, leases ------------------------

#[tokio::test]
async fn recovered_events_are_marked_listed_and_claimed_as_such() {
    let (_, store) = fresh(1000).await;
    store
        .ingest(delivery("okta", vec![event("hooked", "t", &["s"])]))
        .await
        .expect("ingest");
    let out = store
        .ingest(Delivery {
            recovered: true,
            ..delivery(
                "okta",
                vec![event("found", "t", &["s"]), event("hooked", "t", &["s"])],
            )
        })
        .await
        .expect("ingest");
    // What the hook delivered is neither stored twice nor marked.
    assert_eq!((out.stored, out.duplicates), (1, 1));
    let listed = store.list(&EventQuery::default()).await.expect("list");
    let flag = |uuid: &str| listed.iter().find(|e| e.uuid == uuid).map(|e| e.recovered);
    assert_eq!(flag("found"), Some(true));
    assert_eq!(flag("hooked"), Some(false));
    let shown = store.get("found").await.expect("get");
    assert_eq!(
        serde_json::to_value(&shown[0]).expect("json")["recovered"],
        true
    );
    let jobs = store.claim(10, LEASE).await.expect("claim");
    let flags: Vec<(&str, bool)> = jobs
        .iter()
        .map(|j| (j.uuid.as_str(), j.recovered))
        .collect();
    assert!(flags.contains(&("found", true)), "{flags:?}");
    assert!(flags.contains(&("hooked", false)), "{flags:?}");
    let known = store
        .stored_uuids("okta", &["found".into(), "nope".into(), "hooked".into()])
        .await
        .expect("stored_uuids");
    assert_eq!(known.len(), 2);
    assert!(!known.contains("nope"));
    store.close().await;
}

#[tokio::test]
async fn cursors_are_shared_by_replicas_and_never_move_back() {
    let (url, a) = fresh(1000).await;
    let b = open(&url, 1000).await;
    assert_eq!(a.cursor("reconcile:okta").await.expect("cursor"), None);
    a.set_cursor("reconcile:okta", 2_000).await.expect("set");
    b.set_cursor("reconcile:okta", 1_000).await.expect("set");
    assert_eq!(
        b.cursor("reconcile:okta").await.expect("cursor"),
        Some(2_000)
    );
    b.set_cursor("reconcile:okta", 3_000).await.expect("set");
    assert_eq!(
        a.cursor("reconcile:okta").await.expect("cursor"),
        Some(3_000)
    );
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_replica_at_a_time_holds_the_reconcile_lease() {
    let (url, a) = fresh(1000).await;
    let b = open(&url, 1000).await;
    let long = Duration::from_secs(60);
    // Both try at once: exactly one wins.
    let (ra, rb) = tokio::join!(
        a.try_lease("reconcile", "replica-a", long),
        b.try_lease("reconcile", "replica-b", long)
    );
    let (ra, rb) = (ra.expect("lease"), rb.expect("lease"));
    assert!(ra ^ rb, "a: {ra}, b: {rb}");
    let (winner, w, loser, l) = if ra {
        (&a, "replica-a", &b, "replica-b")
    } else {
        (&b, "replica-b", &a, "replica-a")
    };
    // The holder renews; the other still cannot take it, nor release it.
    assert!(winner.try_lease("reconcile", w, long).await.expect("renew"));
    loser.release_lease("reconcile", l).await.expect("release");
    assert!(!loser.try_lease("reconcile", l, long).await.expect("lease"));
    // Released by its holder (shutdown): taken at once.
    winner.release_lease("reconcile", w).await.expect("release");
    assert!(loser
        .try_lease("reconcile", l, Duration::from_millis(100))
        .await
        .expect("lease"));
    // Expired (a replica that died): taken over.
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(winner.try_lease("reconcile", w, long).await.expect("lease"));
    assert!(!loser.try_lease("reconcile", l, long).await.expect("lease"));
    a.close().await;
    b.close().await;
}
