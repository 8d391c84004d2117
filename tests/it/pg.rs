//! The PostgreSQL store against a real PostgreSQL (see `pgutil`): what only it has
//! (the store contract both stores share is in `store_contract.rs`): commits shared by
//! concurrent ingests, leases taken over by another replica, inline answers shared by
//! replicas, concurrent migrations, two replicas on one database, the database going away.

use crate::pgutil::{self, shared, store_config, store_toml};
use crate::store_contract::{delivery, delivery_at, event};
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
    two_replicas_once(&store_toml(&url), &url).await;
}

/// The same through a real PgBouncer in transaction pooling mode: each replica's
/// transactions land on whichever server connection is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_behind_pgbouncer_store_and_process_a_retried_delivery_once() {
    let direct = shared().fresh_db().await;
    let url = pgutil::shared_bouncer().url(&direct);
    let toml = format!("{}transaction_pooling = true\n", store_toml(&url));
    two_replicas_once(&toml, &direct).await;
}

/// Without `transaction_pooling`, PgBouncer refuses the connection, and the error says
/// what it refused.
#[tokio::test]
async fn pgbouncer_without_transaction_pooling_is_refused_at_start_with_the_reason() {
    let direct = shared().fresh_db().await;
    let url = pgutil::shared_bouncer().url(&direct);
    let e = PostgresStore::connect(&pgutil::pg_config(&url), &store_config(&url, 10))
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("options"), "{e}");
    assert!(
        e.contains("set store.postgres.transaction_pooling = true"),
        "{e}"
    );
}

/// Two replicas whose `[store]` is `store_toml`: a delivery and Okta's retry of it on the
/// other replica are stored and processed once (checked on the database at `direct`).
async fn two_replicas_once(store_toml: &str, direct: &str) {
    let sinks = tempfile::tempdir().expect("tempdir");
    let (path_a, path_b) = (sinks.path().join("a.jsonl"), sinks.path().join("b.jsonl"));
    let opts = |path: &std::path::Path| Options {
        toml: Some(format!("{}{}", hook_toml(path), store_toml)),
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
    let store = open(direct, 10).await;
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
    let ready = util::metric(&server.metrics().await, "hookwarden_ready", "");
    assert_eq!(ready, 0.0, "hookwarden_ready says what /readyz says");

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
    let ready = util::metric(&server.metrics().await, "hookwarden_ready", "");
    assert_eq!(ready, 1.0, "ready again");
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

/// Every database wait ends inside Okta's deadline: behind a table lock, the
/// `lock_timeout` ends the wait; with the database paused (SIGSTOP, it answers nothing),
/// the delivery's own deadline does. Each answer is a 503 before Okta's 3 s, nothing is
/// acknowledged, and the same delivery is stored once the database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_locked_or_paused_database_gets_503_inside_okta_s_deadline_and_recovers() {
    let pg = pgutil::dedicated();
    let url = pg.fresh_db().await;
    let sinks = tempfile::tempdir().expect("tempdir");
    let path = sinks.path().join("events.jsonl");
    let mut server = start(Options {
        toml: Some(format!(
            "{}{}lock_timeout = \"500ms\"\n",
            hook_toml(&path),
            store_toml(&url)
        )),
        ..Options::default()
    })
    .await;
    let timed = |body: String| {
        let server = &server;
        async move {
            let started = Instant::now();
            let status = server.deliver(&body).await.status().as_u16();
            (status, started.elapsed())
        }
    };
    let warm = util::envelope(&[util::event("user.lifecycle.create")]);
    assert_eq!(timed(warm).await.0, 200);

    // An operator's lock on the events table, held in an open transaction.
    let admin = pg.superuser(&url).await;
    admin
        .batch_execute("BEGIN; LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    let locked = util::event("user.lifecycle.create");
    let locked_body = util::envelope(std::slice::from_ref(&locked));
    let (status, took) = timed(locked_body.clone()).await;
    assert_eq!(status, 503, "behind the lock");
    assert!(took < Duration::from_millis(2900), "answered in {took:?}");
    println!("behind a table lock (lock_timeout 500ms): 503 in {took:?}");
    admin.batch_execute("ROLLBACK").await.expect("unlock");
    assert_eq!(
        timed(locked_body).await.0,
        200,
        "Okta's retry, once unlocked"
    );

    // The whole database paused: it accepts connections' bytes and answers nothing.
    let paused = util::event("user.lifecycle.create");
    let paused_body = util::envelope(std::slice::from_ref(&paused));
    let pids = pg.pids();
    let signal = |sig: &str| {
        for pid in &pids {
            let _ = std::process::Command::new("kill")
                .args([sig, &pid.to_string()])
                .status();
        }
    };
    signal("-STOP");
    let (status, took) = timed(paused_body.clone()).await;
    signal("-CONT");
    assert_eq!(status, 503, "while paused");
    assert!(took < Duration::from_millis(2900), "answered in {took:?}");
    println!("database paused (SIGSTOP): 503 in {took:?}");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _) = timed(paused_body.clone()).await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503);
        assert!(Instant::now() < deadline, "not back after SIGCONT");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let records = util::wait_jsonl(&path, 3, Duration::from_secs(15)).await;
    let mut got = util::uuids(&records);
    got.sort();
    let mut want: Vec<String> = [&locked, &paused]
        .iter()
        .map(|e| e["uuid"].as_str().expect("uuid").to_owned())
        .collect();
    want.push(records[0]["uuid"].as_str().expect("uuid").to_owned());
    want.sort();
    want.dedup();
    assert_eq!(got.len(), 3, "each event once: {got:?}");
    assert_eq!(got, want);
    server.wait_ready().await;
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

/// The shared answer lookup is paid from the budget, counted from arrival: with the
/// database holding the lookup and the handler too slow, the fallback leaves inside the
/// budget, before Okta's 3 s (it used to wait 0.5 s for the lookup, then the whole budget).
#[tokio::test]
async fn a_held_shared_answer_lookup_is_paid_from_the_budget() {
    use crate::inline::{call, inline_hook, target};
    let url = shared().fresh_db().await;
    let t = target().await;
    *t.delay.lock().expect("lock") = Duration::from_secs(5);
    let hook = inline_hook(
        "registration",
        "registration",
        &format!(r#"{{ kind = "forward", url = "{}" }}"#, t.url),
        "budget = \"2500ms\"",
    );
    let s = start(Options {
        toml: Some(format!("{hook}{}", store_toml(&url))),
        ..Options::default()
    })
    .await;
    let holder = shared().superuser(&url).await;
    holder
        .batch_execute("BEGIN; LOCK TABLE inline_answers IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    let req = util::fixture("registration-hook-request-ssr.json");
    let started = Instant::now();
    let answer: serde_json::Value = call(&s, "registration", &req)
        .await
        .json()
        .await
        .expect("json");
    let took = started.elapsed();
    // Registration's fallback is closed: DENY with the fallback message.
    assert_eq!(answer["commands"][0]["value"]["registration"], "DENY");
    assert!(
        took >= Duration::from_millis(2_400) && took < Duration::from_millis(2_900),
        "the fallback left {took:?} after the request, not at the 2.5 s budget"
    );
    holder.batch_execute("ROLLBACK").await.expect("unlock");
    s.stop().await;
}

// --- System Log reconciliation: recovered flag, cursors, leases ------------------------

/// Jobs have no foreign key to their event since schema version 3 (it cost a lookup and
/// a row lock per job): pruning must delete an event's jobs itself, and a replay by uuid
/// alone (jobs have no uuid index any more) must still find them.
#[tokio::test]
async fn pruning_deletes_the_jobs_of_the_events_it_deletes_and_replay_finds_jobs_by_uuid() {
    let (url, store) = fresh(1000).await;
    let old = hookwarden::time::now_millis() - 86_400_000;
    store
        .ingest(delivery_at(
            "okta",
            old,
            vec![event("gone", "t", &["a", "b"]), event("kept", "t", &["a"])],
        ))
        .await
        .expect("ingest");
    for job in store.claim(10, LEASE).await.expect("claim") {
        let outcome = if job.uuid == "gone" {
            JobOutcome::Delivered
        } else {
            JobOutcome::Dead { error: "x".into() }
        };
        store.finish(&job, outcome).await.expect("finish");
    }
    assert_eq!(
        store
            .prune(hookwarden::time::now_millis())
            .await
            .expect("prune"),
        1
    );
    let db = shared().superuser(&url).await;
    let jobs: Vec<(String, String)> = db
        .query("SELECT uuid, sink FROM jobs ORDER BY uuid, sink", &[])
        .await
        .expect("jobs")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(jobs, [("kept".to_owned(), "a".to_owned())]);
    let replayed = store
        .replay(&ReplayTarget::Event {
            uuid: "kept".into(),
            hook: None,
        })
        .await
        .expect("replay");
    assert_eq!(replayed, 1);
    let stats = store.stats().await.expect("stats");
    assert_eq!((stats.events, stats.backlog, stats.dead), (1, 1, 0));
    store.close().await;
}

/// A store written by schema version 2, with rows in it, upgrades to version 3 in place:
/// the foreign key and the two indexes go, the rows stay, and the store works on them.
/// Version 2 is rebuilt by hand from a fresh database (its definitions, as version 2 had
/// them), since the migrations' SQL is private to the store.
#[tokio::test]
async fn a_version_2_store_with_rows_migrates_to_version_3() {
    let (url, store) = fresh(1000).await;
    store
        .ingest(delivery(
            "okta",
            vec![event("a", "t", &["s"]), event("b", "t", &["s", "u"])],
        ))
        .await
        .expect("ingest");
    store.close().await;
    let db = shared().superuser(&url).await;
    db.batch_execute(
        "DROP INDEX jobs_dead;
         CREATE INDEX jobs_state ON jobs (state, hook);
         CREATE INDEX jobs_uuid ON jobs (uuid);
         ALTER TABLE jobs ADD CONSTRAINT jobs_hook_uuid_fkey FOREIGN KEY (hook, uuid)
             REFERENCES events (hook, uuid) ON DELETE CASCADE;
         ALTER TABLE jobs RESET (fillfactor);
         DELETE FROM hookwarden_schema WHERE version = 3;",
    )
    .await
    .expect("back to version 2");

    let store = open(&url, 1000).await;
    let left: Vec<String> = db
        .query(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'jobs'::regclass AND contype = 'f'
             UNION ALL
             SELECT indexname FROM pg_indexes WHERE tablename = 'jobs'
                 AND indexname IN ('jobs_state', 'jobs_uuid')",
            &[],
        )
        .await
        .expect("catalog")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(left.is_empty(), "left from version 2: {left:?}");
    let version: i32 = db
        .query_one("SELECT MAX(version) FROM hookwarden_schema", &[])
        .await
        .expect("version")
        .get(0);
    assert_eq!(version, 3);
    let stats = store.stats().await.expect("stats");
    assert_eq!((stats.events, stats.backlog), (2, 3));
    let jobs = store.claim(10, LEASE).await.expect("claim");
    assert_eq!(jobs.len(), 3);
    for job in &jobs {
        store
            .finish(job, JobOutcome::Dead { error: "x".into() })
            .await
            .expect("finish");
    }
    assert_eq!(
        store
            .replay(&ReplayTarget::AllDead { hook: None })
            .await
            .expect("replay"),
        3
    );
    store.close().await;
}
