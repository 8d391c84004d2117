//! The store contract: what every backend does, written once and run against the embedded
//! SQLite store and against a real PostgreSQL (see `pgutil`), directly and through a real
//! PgBouncer in transaction pooling mode: `store_contract::sqlite::*`,
//! `store_contract::postgres::*` and `store_contract::pgbouncer::*`. A second handle on the same data stands for another
//! replica (PostgreSQL) or the CLI next to the service (SQLite: the same file).
//!
//! What only one backend has stays with it: group commit, the WAL, migrations and a full
//! disk in `src/store/sqlite/tests.rs`; replicas racing, inline answers and the database going
//! away in `pg.rs`.

use crate::pgutil::{self, shared, store_config};
use hookwarden::config::{StoreBackend, StoreConfig};
use hookwarden::store::postgres::PostgresStore;
use hookwarden::store::sqlite::SqliteStore;
use hookwarden::store::*;
use hookwarden::time::now_millis;
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(60);

/// Where a test's data lives; every `open` is one more handle on it.
pub(crate) enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(String),
    /// Through PgBouncer in transaction pooling mode.
    PgBouncer(String),
}

impl Backend {
    async fn sqlite() -> Backend {
        Backend::Sqlite(tempfile::tempdir().expect("tempdir"))
    }

    async fn postgres() -> Backend {
        Backend::Postgres(shared().fresh_db().await)
    }

    async fn pgbouncer() -> Backend {
        let direct = shared().fresh_db().await;
        Backend::PgBouncer(pgutil::shared_bouncer().url(&direct))
    }

    async fn open(&self, max_backlog: u64) -> Box<dyn Store> {
        match self {
            Backend::Sqlite(dir) => {
                let config = StoreConfig {
                    backend: StoreBackend::Sqlite,
                    path: None,
                    max_backlog,
                    retention: Duration::from_secs(7 * 86_400),
                    group_commit_max: 64,
                    page_cache_kib: 1024,
                    disk_reserve_mib: 0,
                    postgres: None,
                };
                Box::new(
                    SqliteStore::open(&dir.path().join("hookwarden.db"), &config).expect("open"),
                )
            }
            Backend::Postgres(url) => Box::new(
                PostgresStore::connect(&pgutil::pg_config(url), &store_config(url, max_backlog))
                    .await
                    .expect("connect"),
            ),
            Backend::PgBouncer(url) => Box::new(
                PostgresStore::connect(
                    &pgutil::pooled_config(url),
                    &store_config(url, max_backlog),
                )
                .await
                .expect("connect through pgbouncer"),
            ),
        }
    }
}

/// Each contract test as `sqlite::<name>` and `postgres::<name>`.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::sqlite().await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::postgres().await).await
                }
            )*
        }
        mod pgbouncer {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::pgbouncer().await).await
                }
            )*
        }
    };
}

/// The gauges' counts, in a file of their own (this one is long enough).
mod counts;

contract!(
    ingest_counts_stored_and_duplicates,
    same_uuid_in_two_hooks_is_two_events,
    claim_finish_retry_dead_replay_lifecycle,
    a_group_finished_together_records_each_outcome,
    a_stale_lease_token_is_ignored,
    capacity_answers_full_but_acknowledges_duplicates,
    list_filters_and_derived_states,
    prune_deletes_finished_old_events_in_chunks,
    after_close_everything_is_closed,
    recovered_events_are_marked_listed_and_claimed_as_such,
    cursors_are_shared_survive_reopening_and_never_move_back,
    one_handle_at_a_time_holds_a_lease,
);

pub(crate) fn event(uuid: &str, event_type: &str, sinks: &[&str]) -> NewEvent {
    NewEvent {
        uuid: uuid.to_owned(),
        event_type: event_type.to_owned(),
        published: Some("2026-11-23T10:00:00.000Z".to_owned()),
        payload: format!(r#"{{"uuid":"{uuid}","eventType":"{event_type}"}}"#),
        sinks: sinks.iter().map(|s| s.to_string()).collect(),
    }
}

pub(crate) fn delivery_at(hook: &str, at: Millis, events: Vec<NewEvent>) -> Delivery {
    Delivery {
        hook: hook.to_owned(),
        event_id: "evt-1".to_owned(),
        received_at: at,
        events,
        recovered: false,
    }
}

pub(crate) fn delivery(hook: &str, events: Vec<NewEvent>) -> Delivery {
    delivery_at(hook, now_millis(), events)
}

async fn ingest_counts_stored_and_duplicates(backend: Backend) {
    let store = backend.open(1000).await;
    // A uuid twice in one delivery is one event.
    let out = store
        .ingest(delivery(
            "okta",
            vec![
                event("a", "t", &["s"]),
                event("b", "t", &["s"]),
                event("a", "t", &["s"]),
            ],
        ))
        .await
        .expect("ingest");
    assert_eq!(
        out,
        IngestOutcome {
            stored: 2,
            duplicates: 1
        }
    );
    // Okta's retry: nothing new, and an event for no sink is stored as ignored.
    let out = store
        .ingest(delivery(
            "okta",
            vec![event("b", "t", &["s"]), event("c", "t", &[])],
        ))
        .await
        .expect("ingest");
    assert_eq!(
        out,
        IngestOutcome {
            stored: 1,
            duplicates: 1
        }
    );
    let stats = store.stats().await.expect("stats");
    assert_eq!((stats.events, stats.backlog, stats.dead), (3, 2, 0));
    let detail = store.get("a").await.expect("get");
    assert_eq!(detail.len(), 1);
    assert_eq!(detail[0].event.get(), r#"{"uuid":"a","eventType":"t"}"#);
    assert_eq!(
        detail[0].summary.published.as_deref(),
        Some("2026-11-23T10:00:00.000Z")
    );
    assert_eq!(detail[0].summary.sinks.len(), 1);
    assert_eq!(
        store.get("c").await.expect("get")[0].summary.state,
        EventState::Ignored
    );
    assert!(store.get("nope").await.expect("get").is_empty());
    store.close().await;
}

async fn same_uuid_in_two_hooks_is_two_events(backend: Backend) {
    let store = backend.open(1000).await;
    store
        .ingest(delivery("one", vec![event("u", "t", &["s1", "s2"])]))
        .await
        .expect("ingest");
    let out = store
        .ingest(delivery("two", vec![event("u", "t", &["s1"])]))
        .await
        .expect("ingest");
    assert_eq!(out.stored, 1);
    let found = store.get("u").await.expect("get");
    let hooks: Vec<&str> = found.iter().map(|d| d.summary.hook.as_str()).collect();
    assert_eq!(hooks, ["one", "two"]);
    assert_eq!(found[0].summary.sinks.len(), 2);
    assert_eq!(found[1].event.get(), r#"{"uuid":"u","eventType":"t"}"#);
    assert_eq!(store.stats().await.expect("stats").backlog, 3);
    // Replay of one hook only touches that hook's jobs.
    for j in store.claim(10, LEASE).await.expect("claim") {
        store
            .finish(&j, JobOutcome::Delivered)
            .await
            .expect("finish");
    }
    let n = store
        .replay(&ReplayTarget::Event {
            uuid: "u".into(),
            hook: Some("two".into()),
        })
        .await
        .expect("replay");
    assert_eq!(n, 1);
    let jobs = store.claim(10, LEASE).await.expect("claim");
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].hook, "two");
    let n = store
        .replay(&ReplayTarget::Event {
            uuid: "u".into(),
            hook: Some("nope".into()),
        })
        .await
        .expect("replay");
    assert_eq!(n, 0);
    store.close().await;
}

/// The worker records a batch's outcomes together ([`Queue::finish_all`]): each job gets
/// its own outcome, and a job whose lease was lost meanwhile is left alone.
async fn a_group_finished_together_records_each_outcome(backend: Backend) {
    let store = backend.open(1000).await;
    for uuid in ["a", "b", "c"] {
        store
            .ingest(delivery("okta", vec![event(uuid, "t", &["s1"])]))
            .await
            .expect("ingest");
    }
    let mut jobs = store.claim(10, LEASE).await.expect("claim");
    jobs.sort_by(|x, y| x.uuid.cmp(&y.uuid));
    assert_eq!(jobs.len(), 3);
    // "d" is claimed with a lease that runs out, then claimed again: the first claim is stale.
    store
        .ingest(delivery("okta", vec![event("d", "t", &["s1"])]))
        .await
        .expect("ingest");
    let stale = store
        .claim(1, Duration::from_millis(1))
        .await
        .expect("claim")
        .pop()
        .expect("d");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let current = store.claim(1, LEASE).await.expect("claim");
    assert_eq!(current.len(), 1, "the lease ran out: d is claimed again");

    let results = store
        .finish_all(vec![
            (&jobs[0], JobOutcome::Delivered),
            (
                &jobs[1],
                JobOutcome::Retry {
                    at: now_millis() + 60_000,
                    error: "HTTP 502".into(),
                },
            ),
            (
                &jobs[2],
                JobOutcome::Dead {
                    error: "HTTP 400".into(),
                },
            ),
            (&stale, JobOutcome::Delivered),
        ])
        .await;
    assert_eq!(results.len(), 4);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let state = |uuid: &'static str| {
        let store = &store;
        async move {
            let d = &store.get(uuid).await.expect("get")[0];
            (d.summary.state, d.summary.sinks[0].attempts)
        }
    };
    assert_eq!(state("a").await, (EventState::Delivered, 1));
    assert_eq!(state("b").await, (EventState::Pending, 1));
    assert_eq!(state("c").await, (EventState::Dead, 1));
    // The stale claim changed nothing: d is pending, leased by the current claim.
    assert_eq!(state("d").await, (EventState::Pending, 0));
    let stats = store.stats().await.expect("stats");
    assert_eq!((stats.backlog, stats.dead), (2, 1));
    store.close().await;
}

async fn claim_finish_retry_dead_replay_lifecycle(backend: Backend) {
    let store = backend.open(1000).await;
    store
        .ingest(delivery("okta", vec![event("a", "t", &["s1", "s2"])]))
        .await
        .expect("ingest");
    let mut jobs = store.claim(10, LEASE).await.expect("claim");
    jobs.sort_by(|x, y| x.sink.cmp(&y.sink));
    assert_eq!(jobs.len(), 2);
    assert!(jobs.iter().all(|j| j.attempts == 0 && !j.interrupted));
    assert_eq!(jobs[0].payload, r#"{"uuid":"a","eventType":"t"}"#);
    assert_eq!(jobs[0].event_id, "evt-1");
    // Leased: nothing more to claim.
    assert!(store.claim(10, LEASE).await.expect("claim").is_empty());

    let (s1, s2) = (&jobs[0], &jobs[1]);
    store
        .finish(s1, JobOutcome::Delivered)
        .await
        .expect("finish");
    // Retry in the past: due again at once.
    store
        .finish(
            s2,
            JobOutcome::Retry {
                at: now_millis() - 1,
                error: "HTTP 500".into(),
            },
        )
        .await
        .expect("finish");
    assert_eq!(store.stats().await.expect("stats").backlog, 1);
    let again = store.claim(10, LEASE).await.expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!(
        (
            again[0].sink.as_str(),
            again[0].attempts,
            again[0].interrupted
        ),
        ("s2", 1, false)
    );
    // Retry in the future: not claimable.
    store
        .finish(
            &again[0],
            JobOutcome::Retry {
                at: now_millis() + 60_000,
                error: "HTTP 502".into(),
            },
        )
        .await
        .expect("finish");
    assert!(store.claim(10, LEASE).await.expect("claim").is_empty());
    let d = &store.get("a").await.expect("get")[0];
    assert_eq!(d.summary.state, EventState::Pending);
    let s2_status = d.summary.sinks.iter().find(|s| s.sink == "s2").expect("s2");
    assert_eq!(s2_status.attempts, 2);
    assert_eq!(s2_status.last_error.as_deref(), Some("HTTP 502"));
    assert!(s2_status.next_attempt_at.is_some());
    let s1_status = d.summary.sinks.iter().find(|s| s.sink == "s1").expect("s1");
    assert_eq!(
        (s1_status.state, s1_status.next_attempt_at),
        (JobState::Delivered, None)
    );

    // Replay the event: both jobs due now (the delivered one too), attempts kept.
    let n = store
        .replay(&ReplayTarget::Event {
            uuid: "a".into(),
            hook: None,
        })
        .await
        .expect("replay");
    assert_eq!(n, 2);
    assert_eq!(store.stats().await.expect("stats").backlog, 2);
    let jobs = store.claim(10, LEASE).await.expect("claim");
    assert_eq!(jobs.len(), 2);
    for j in &jobs {
        store
            .finish(
                j,
                JobOutcome::Dead {
                    error: "gone".into(),
                },
            )
            .await
            .expect("finish");
    }
    let stats = store.stats().await.expect("stats");
    assert_eq!((stats.backlog, stats.dead), (0, 2));
    let counts = store.job_counts().await.expect("job counts");
    assert_eq!(
        (counts.backlog(), counts.dead()),
        (0, 2),
        "the gauges' counts agree"
    );
    let d = &store.get("a").await.expect("get")[0];
    assert_eq!(d.summary.state, EventState::Dead);
    assert!(d
        .summary
        .sinks
        .iter()
        .all(|s| s.last_error.as_deref() == Some("gone")));

    // Replay every dead letter (of another hook: none; then all).
    let n = store
        .replay(&ReplayTarget::AllDead {
            hook: Some("other".into()),
        })
        .await
        .expect("replay");
    assert_eq!(n, 0);
    let n = store
        .replay(&ReplayTarget::AllDead {
            hook: Some("okta".into()),
        })
        .await
        .expect("replay");
    assert_eq!(n, 2);
    let stats = store.stats().await.expect("stats");
    assert_eq!((stats.backlog, stats.dead), (2, 0));
    let counts = store.job_counts().await.expect("job counts");
    assert_eq!(
        (counts.backlog(), counts.dead()),
        (2, 0),
        "the gauges' counts agree"
    );
    let jobs = store.claim(1, LEASE).await.expect("claim");
    assert_eq!(jobs.len(), 1, "max is respected");
    assert!(!jobs[0].interrupted);
    store
        .finish(
            &jobs[0],
            JobOutcome::Dead {
                error: "again".into(),
            },
        )
        .await
        .expect("finish");
    let n = store
        .replay(&ReplayTarget::AllDead { hook: None })
        .await
        .expect("replay");
    assert_eq!(n, 1);
    assert_eq!(store.stats().await.expect("stats").dead, 0);
    store.close().await;
}

async fn a_stale_lease_token_is_ignored(backend: Backend) {
    let store = backend.open(1000).await;
    store
        .ingest(delivery("okta", vec![event("a", "t", &["s"])]))
        .await
        .expect("ingest");
    // A lease that expires at once, taken over by a second claim.
    let first = store.claim(1, Duration::ZERO).await.expect("claim");
    assert_eq!(first.len(), 1);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = store.claim(1, LEASE).await.expect("claim");
    assert_eq!(second.len(), 1);
    assert!(
        second[0].interrupted,
        "the first claim ended without an outcome"
    );
    assert_ne!(first[0].lease_token, second[0].lease_token);
    // The stale worker's outcome changes nothing.
    store
        .finish(
            &first[0],
            JobOutcome::Dead {
                error: "stale".into(),
            },
        )
        .await
        .expect("finish");
    let d = &store.get("a").await.expect("get")[0];
    assert_eq!(d.summary.sinks[0].state, JobState::Pending);
    assert_eq!(d.summary.sinks[0].attempts, 0);
    assert_eq!(store.stats().await.expect("stats").backlog, 1);
    // The current one does; finishing twice is ignored too.
    store
        .finish(&second[0], JobOutcome::Delivered)
        .await
        .expect("finish");
    store
        .finish(
            &second[0],
            JobOutcome::Dead {
                error: "twice".into(),
            },
        )
        .await
        .expect("finish");
    let d = &store.get("a").await.expect("get")[0];
    assert_eq!(
        (d.summary.sinks[0].state, d.summary.sinks[0].attempts),
        (JobState::Delivered, 1)
    );
    assert_eq!(d.summary.state, EventState::Delivered);
    assert_eq!(store.stats().await.expect("stats").backlog, 0);
    store.close().await;
}

async fn capacity_answers_full_but_acknowledges_duplicates(backend: Backend) {
    let store = backend.open(2).await;
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
    // A retry of what is stored adds no work: still acknowledged while full.
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
    // One job done: room again.
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

async fn list_filters_and_derived_states(backend: Backend) {
    let store = backend.open(1000).await;
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
    // del: delivered. dead: s delivered, t dead → dead. pen: pending.
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
    let all = store.list(&EventQuery::default()).await.expect("list");
    let states: Vec<(String, EventState)> = all.iter().map(|s| (s.uuid.clone(), s.state)).collect();
    assert_eq!(
        states,
        [
            ("pen".to_owned(), EventState::Pending),
            ("dead".to_owned(), EventState::Dead),
            ("del".to_owned(), EventState::Delivered),
            ("ign".to_owned(), EventState::Ignored),
        ]
    );
    assert_eq!(all[1].sinks.len(), 2);
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
                .map(|s| s.uuid)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list(&|q| q.hook = Some("other".into())).await, ["dead"]);
    for (state, want) in [
        (EventState::Pending, "pen"),
        (EventState::Dead, "dead"),
        (EventState::Delivered, "del"),
        (EventState::Ignored, "ign"),
    ] {
        assert_eq!(list(&|q| q.state = Some(state)).await, [want]);
    }
    // Event type globs: `*` only, case-sensitive, the whole type; `?` and `_` (SQL's
    // wildcards) are plain characters.
    assert_eq!(
        list(&|q| q.event_type = Some("user.lifecycle.*".into())).await,
        ["dead", "del"]
    );
    assert_eq!(
        list(&|q| q.event_type = Some("user.session.start".into())).await,
        ["ign"]
    );
    assert_eq!(
        list(&|q| q.event_type = Some("*.add".into())).await,
        ["pen"]
    );
    for nothing in [
        "USER.*",
        "user.?ifecycle.*",
        "user_lifecycle.*",
        "user.lifecycle",
    ] {
        assert!(
            list(&|q| q.event_type = Some(nothing.into()))
                .await
                .is_empty(),
            "{nothing}"
        );
    }
    assert_eq!(
        list(&|q| q.since = Some(t0 + 1000)).await,
        ["pen", "dead", "del"]
    );
    assert_eq!(list(&|q| q.until = Some(t0 + 1000)).await, ["ign"]);
    assert_eq!(
        list(&|q| {
            q.since = Some(t0 + 1000);
            q.until = Some(t0 + 3000);
            q.hook = Some("okta".into());
        })
        .await,
        ["del"]
    );
    assert_eq!(list(&|q| q.limit = 2).await, ["pen", "dead"]);
    store.close().await;
}

async fn prune_deletes_finished_old_events_in_chunks(backend: Backend) {
    let store = backend.open(100_000).await;
    let old = now_millis() - 86_400_000;
    // Enough ignored old events for several chunks.
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

async fn after_close_everything_is_closed(backend: Backend) {
    let store = backend.open(1000).await;
    store.check_writable().await.expect("writable");
    store.close().await;
    store.close().await; // idempotent
    let err = store
        .ingest(delivery("okta", vec![event("a", "t", &["s"])]))
        .await
        .expect_err("closed");
    assert!(matches!(err, StoreError::Closed), "{err:?}");
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

async fn recovered_events_are_marked_listed_and_claimed_as_such(backend: Backend) {
    let store = backend.open(100).await;
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
    // The event the hook delivered stays as it was: not stored twice, not marked.
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
        .stored_uuids(
            "okta",
            &[
                event("found", "t", &[]),
                event("missing", "t", &[]),
                event("hooked", "t", &[]),
            ],
        )
        .await
        .expect("stored_uuids");
    assert_eq!(known.len(), 2);
    assert!(!known.contains("missing"));
    assert!(store
        .stored_uuids("other", &[event("found", "t", &[])])
        .await
        .expect("stored_uuids")
        .is_empty());
    store.close().await;
}

async fn cursors_are_shared_survive_reopening_and_never_move_back(backend: Backend) {
    let (a, b) = (backend.open(100).await, backend.open(100).await);
    assert_eq!(a.cursor("reconcile:okta").await.expect("cursor"), None);
    a.set_cursor("reconcile:okta", 2_000).await.expect("set");
    b.set_cursor("reconcile:okta", 1_000).await.expect("set");
    assert_eq!(
        b.cursor("reconcile:okta").await.expect("cursor"),
        Some(2_000)
    );
    b.set_cursor("reconcile:okta", 3_000).await.expect("set");
    b.set_cursor("reconcile:other", 5).await.expect("set");
    assert_eq!(
        a.cursor("reconcile:okta").await.expect("cursor"),
        Some(3_000)
    );
    a.close().await;
    b.close().await;
    let c = backend.open(100).await;
    assert_eq!(
        c.cursor("reconcile:okta").await.expect("cursor"),
        Some(3_000)
    );
    assert_eq!(c.cursor("reconcile:other").await.expect("cursor"), Some(5));
    c.close().await;
}

/// The reconcile lease: two replicas (or the CLI next to the service) ask at once.
async fn one_handle_at_a_time_holds_a_lease(backend: Backend) {
    let (a, b) = (backend.open(100).await, backend.open(100).await);
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
    // Another key is another lease.
    assert!(loser
        .try_lease("reconcile:other", l, long)
        .await
        .expect("lease"));
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
