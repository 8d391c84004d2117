use super::*;
use crate::config::StoreBackend;

fn config(max_backlog: u64) -> StoreConfig {
    StoreConfig {
        backend: StoreBackend::Sqlite,
        path: None,
        max_backlog,
        retention: Duration::from_secs(7 * 86_400),
        group_commit_max: 64,
        page_cache_kib: 1024,
        disk_reserve_mib: 0,
        postgres: None,
    }
}

fn open_at(dir: &tempfile::TempDir, max_backlog: u64) -> SqliteStore {
    SqliteStore::open(&dir.path().join("sub/hookwarden.db"), &config(max_backlog)).expect("open")
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

fn delivery(hook: &str, events: Vec<NewEvent>) -> Delivery {
    Delivery {
        hook: hook.to_owned(),
        event_id: "evt-1".to_owned(),
        received_at: now_millis(),
        events,
        recovered: false,
    }
}

fn delivery_at(hook: &str, at: Millis, events: Vec<NewEvent>) -> Delivery {
    Delivery {
        received_at: at,
        ..delivery(hook, events)
    }
}

const LEASE: Duration = Duration::from_secs(60);

/// Sends a command straight to the writer, as `write` does, without waiting.
fn send(tx: &mpsc::Sender<Msg>, cmd: Cmd) {
    tx.send(Msg::Cmd(cmd)).expect("send");
}

#[tokio::test]
async fn the_writer_page_cache_is_the_configured_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    for kib in [1024, 256] {
        let store = SqliteStore::open(
            &dir.path().join("hookwarden.db"),
            &StoreConfig {
                page_cache_kib: kib,
                disk_reserve_mib: 0,
                ..config(10)
            },
        )
        .expect("open");
        // Negative: KiB, as set; SQLite's own default would read -2000.
        let size = store
            .query_for_test("SELECT cache_size FROM pragma_cache_size()")
            .await
            .expect("cache_size");
        assert_eq!(size, -i64::from(kib));
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_commit_serves_concurrent_ingests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(open_at(&dir, 100_000));
    // Hold the writer for a moment so that the ingests queue up behind it.
    let hold = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .write(|reply| Cmd::Sleep(Duration::from_millis(300), reply))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let before = store.group_commits();
    let tasks: Vec<_> = (0..200)
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
        assert_eq!(t.await.expect("join").expect("ingest").stored, 1);
    }
    hold.await.expect("join").expect("hold");
    let commits = store.group_commits() - before;
    // 200 commands, at most 64 per transaction: 4 commits when all were queued in time.
    assert!(commits <= 10, "{commits} commits for 200 ingests");
    let stats = store.stats().await.expect("stats");
    assert_eq!((stats.events, stats.backlog), (200, 200));
    store.close().await;
}

/// A batch with a failing command in the middle: the others still commit.
#[tokio::test]
async fn a_failing_command_does_not_fail_its_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_at(&dir, 1000);
    let before = store.group_commits();
    let (r1, a1) = oneshot::channel();
    let (r2, a2) = oneshot::channel();
    let (r3, a3) = oneshot::channel();
    {
        let tx = lock(&store.tx);
        let tx = tx.as_ref().expect("open");
        // The sleep holds the writer so the next three join its transaction.
        let (rs, _as) = oneshot::channel();
        send(tx, Cmd::Sleep(Duration::from_millis(100), rs));
        std::thread::sleep(Duration::from_millis(20));
        send(
            tx,
            Cmd::Ingest(delivery("okta", vec![event("a", "t", &["s"])]), r1),
        );
        send(
            tx,
            Cmd::Exec("INSERT INTO no_such_table VALUES (1)".into(), r2),
        );
        send(
            tx,
            Cmd::Ingest(delivery("okta", vec![event("b", "t", &["s"])]), r3),
        );
    }
    assert_eq!(a1.await.expect("answer").expect("a").stored, 1);
    assert!(matches!(
        a2.await.expect("answer"),
        Err(StoreError::Unavailable(_))
    ));
    assert_eq!(a3.await.expect("answer").expect("b").stored, 1);
    assert_eq!(
        store.group_commits() - before,
        1,
        "the three arrived while the sleep's transaction was open: one commit for all four"
    );
    assert_eq!(store.stats().await.expect("stats").events, 2);
    store.close().await;
}

/// A batch whose COMMIT fails: every command is answered Unavailable, nothing stays.
#[tokio::test]
async fn a_failed_commit_fails_the_whole_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_at(&dir, 1000);
    let (r1, a1) = oneshot::channel();
    let (r2, a2) = oneshot::channel();
    {
        let tx = lock(&store.tx);
        let tx = tx.as_ref().expect("open");
        let (rs, _as) = oneshot::channel();
        send(tx, Cmd::Sleep(Duration::from_millis(100), rs));
        std::thread::sleep(Duration::from_millis(20));
        send(
            tx,
            Cmd::Ingest(delivery("okta", vec![event("a", "t", &["s"])]), r1),
        );
        // A deferred foreign key violation passes the statement and fails the COMMIT.
        send(
            tx,
            Cmd::Exec(
                "PRAGMA defer_foreign_keys = ON;
             INSERT INTO jobs (event, sink, state, next_attempt_at, updated_at)
             VALUES (999999, 's', 'pending', 0, 0);"
                    .into(),
                r2,
            ),
        );
    }
    assert!(matches!(
        a1.await.expect("answer"),
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        a2.await.expect("answer"),
        Err(StoreError::Unavailable(_))
    ));
    let stats = store.stats().await.expect("stats");
    assert_eq!((stats.events, stats.backlog), (0, 0));
    // The counter did not take the lost batch: capacity is still right, and it works again.
    let out = store
        .ingest(delivery("okta", vec![event("a", "t", &["s"])]))
        .await
        .expect("ingest after the failed commit");
    assert_eq!(out.stored, 1);
    store.close().await;
}

#[tokio::test]
async fn an_unfinished_claim_is_interrupted_after_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_at(&dir, 1000);
    store
        .ingest(delivery("okta", vec![event("a", "t", &["s"])]))
        .await
        .expect("ingest");
    let jobs = store.claim(1, LEASE).await.expect("claim");
    assert!(!jobs[0].interrupted);
    // A crash: no finish. (Dropping without close: the writer still exits on its own.)
    drop(store);
    std::thread::sleep(Duration::from_millis(100));

    // The CLI opening the file does not clear the lease of a (possibly running) service.
    let path = dir.path().join("sub/hookwarden.db");
    let cli = SqliteStore::open_for_cli(&path, &config(1000)).expect("open cli");
    assert!(
        cli.claim(1, LEASE).await.expect("claim").is_empty(),
        "lease kept"
    );
    cli.close().await;

    // The service opening it does: the job is claimable at once, and marked interrupted.
    let store = open_at(&dir, 1000);
    let jobs = store.claim(1, LEASE).await.expect("claim");
    assert_eq!(jobs.len(), 1);
    assert!(jobs[0].interrupted);
    assert_eq!(jobs[0].attempts, 0);
    store
        .finish(&jobs[0], JobOutcome::Delivered)
        .await
        .expect("finish");
    store
        .replay(&ReplayTarget::Event {
            uuid: "a".into(),
            hook: None,
        })
        .await
        .expect("replay");
    let jobs = store.claim(1, LEASE).await.expect("claim");
    // Two claims before this one, one outcome: the crashed claim still counts, since
    // the sink may have received the event then (the Job docs' meaning of interrupted).
    assert!(
        jobs[0].interrupted,
        "the crashed claim still shows: claims 2 > attempts 1"
    );
    store.close().await;
}

#[tokio::test]
async fn writes_of_another_process_are_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_at(&dir, 1);
    store
        .ingest(delivery("okta", vec![event("a", "t", &["s"])]))
        .await
        .expect("ingest");
    let jobs = store.claim(1, LEASE).await.expect("claim");
    store
        .finish(&jobs[0], JobOutcome::Dead { error: "x".into() })
        .await
        .expect("finish");
    // The CLI replays the dead letter while the service runs.
    let cli = SqliteStore::open_for_cli(&dir.path().join("sub/hookwarden.db"), &config(1))
        .expect("open cli");
    assert_eq!(
        cli.replay(&ReplayTarget::AllDead { hook: None })
            .await
            .expect("replay"),
        1
    );
    cli.close().await;
    // The service's backlog counter saw it.
    let err = store
        .ingest(delivery("okta", vec![event("b", "t", &["s"])]))
        .await
        .expect_err("full");
    assert!(matches!(err, StoreError::Full(1)), "{err:?}");
    store.close().await;
}

/// Below the reserve, new events are refused; duplicates are still acknowledged and
/// what is stored is still claimed and finished. (The disk really filling up is
/// `tests/it/faults.rs`, on a tmpfs.)
#[tokio::test]
async fn below_the_disk_reserve_only_new_events_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sub/hookwarden.db");
    let store = open_at(&dir, 1000);
    store
        .ingest(delivery("okta", vec![event("a", "t", &["s"])]))
        .await
        .expect("ingest");
    store.close().await;
    // More than any disk has free.
    let store = SqliteStore::open(
        &path,
        &StoreConfig {
            disk_reserve_mib: u64::MAX,
            ..config(1000)
        },
    )
    .expect("reopen");
    let err = store
        .ingest(delivery("okta", vec![event("b", "t", &["s"])]))
        .await
        .expect_err("refused");
    assert!(matches!(err, StoreError::DiskLow(_)), "{err:?}");
    assert!(err.to_string().contains("store.disk_reserve_mib"), "{err}");
    let again = store
        .ingest(delivery("okta", vec![event("a", "t", &["s"])]))
        .await
        .expect("a duplicate adds nothing: acknowledged");
    assert_eq!((again.stored, again.duplicates), (0, 1));
    let jobs = store.claim(10, LEASE).await.expect("claim");
    assert_eq!(jobs.len(), 1);
    store
        .finish(&jobs[0], JobOutcome::Delivered)
        .await
        .expect("finish");
    store.close().await;
}

#[tokio::test]
async fn a_new_store_is_for_its_owner_alone_wal_included() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_at(&dir, 1000);
    store
        .ingest(delivery(
            "okta",
            vec![event("u-1", "user.session.start", &["s"])],
        ))
        .await
        .expect("ingest");
    for name in ["hookwarden.db", "hookwarden.db-wal"] {
        let path = dir.path().join("sub").join(name);
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}");
    }
    store.close().await;
}

#[test]
fn globs_translate_to_sqlite() {
    assert_eq!(sqlite_glob("user.*"), "user.*");
    assert_eq!(sqlite_glob("a?b[c]*"), "a[?]b[[]c]*");
}

#[tokio::test]
async fn claims_and_lists_use_indexes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_at(&dir, 1000);
    let plan = |sql: String| {
        let store = &store;
        async move {
            store
                .read(move |c| {
                    let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).db()?;
                    let rows = stmt.query_map([], |r| r.get::<_, String>(3)).db()?;
                    Ok(rows.collect::<rusqlite::Result<Vec<_>>>().db()?.join(" | "))
                })
                .await
                .expect("plan")
        }
    };
    let claim = plan(CLAIM_SQL.replace("?1", "0").replace("?2", "10")).await;
    assert!(claim.contains("jobs_due"), "{claim}");
    assert!(!claim.contains("TEMP B-TREE"), "{claim}");
    let list = plan(format!(
        "SELECT {SUMMARY_COLUMNS}, {EVENT_STATE_SQL} FROM events e WHERE 1 = 1 ORDER BY e.received_at DESC, e.id DESC LIMIT 50"
    ))
    .await;
    assert!(list.contains("events_received"), "{list}");
    assert!(!list.contains("TEMP B-TREE"), "{list}");
    // The counts of `stats` and of the backlog read the partial indexes, not the table.
    let pending = plan("SELECT COUNT(*) FROM jobs WHERE state = 'pending'".into()).await;
    assert!(pending.contains("jobs_due"), "{pending}");
    let dead = plan("SELECT COUNT(*) FROM jobs WHERE state = 'dead'".into()).await;
    assert!(dead.contains("jobs_dead"), "{dead}");
    store.close().await;
}

// Pruning and closing as every store does them: tests/it/store_contract.rs. Here what
// only SQLite shows: the jobs go with their event (ON DELETE CASCADE), and the WAL is
// checkpointed and truncated at close.
#[tokio::test]
async fn pruned_events_take_their_jobs_and_close_truncates_the_wal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_at(&dir, 1000);
    let old = now_millis() - 86_400_000;
    store
        .ingest(delivery_at(
            "okta",
            old,
            vec![event("old-del", "t", &["s1", "s2"])],
        ))
        .await
        .expect("ingest");
    store
        .ingest(delivery("okta", vec![event("new", "t", &["s1"])]))
        .await
        .expect("ingest");
    for j in store.claim(10, LEASE).await.expect("claim") {
        store
            .finish(&j, JobOutcome::Delivered)
            .await
            .expect("finish");
    }
    assert_eq!(
        store.prune(now_millis() - 3_600_000).await.expect("prune"),
        1
    );
    let jobs: i64 = store
        .read(|c| {
            c.query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get(0))
                .db()
        })
        .await
        .expect("count");
    assert_eq!(jobs, 1, "only the new event's job is left");
    store.close().await;
    let wal = dir.path().join("sub/hookwarden.db-wal");
    assert!(std::fs::metadata(&wal)
        .map(|m| m.len() == 0)
        .unwrap_or(true));
}

#[tokio::test]
async fn a_full_disk_answers_unavailable_and_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_at(&dir, 1000);
    store
        .ingest(delivery("okta", vec![event("a", "t", &["s"])]))
        .await
        .expect("ingest");
    // Cap the database at its current size: the next page it needs is "disk full".
    let pages: i64 = store
        .read(|c| c.query_row("PRAGMA page_count", [], |r| r.get(0)).db())
        .await
        .expect("page_count");
    store
        .exec_for_test(&format!("PRAGMA max_page_count = {pages}"))
        .await
        .expect("cap");
    let mut big = event("big", "t", &["s"]);
    big.payload = format!(r#"{{"blob":"{}"}}"#, "x".repeat(200_000));
    let err = store
        .ingest(delivery("okta", vec![big.clone()]))
        .await
        .expect_err("disk full");
    match &err {
        StoreError::Unavailable(msg) => assert!(msg.contains("full"), "{msg}"),
        other => panic!("{other:?}"),
    }
    assert!(store.get("big").await.expect("get").is_empty());
    assert_eq!(store.stats().await.expect("stats").backlog, 1);
    // Room again: the same delivery is stored.
    store
        .exec_for_test("PRAGMA max_page_count = 1073741823")
        .await
        .expect("uncap");
    let out = store
        .ingest(delivery("okta", vec![big]))
        .await
        .expect("ingest");
    assert_eq!(out.stored, 1);
    store.check_writable().await.expect("writable");
    assert_eq!(store.stats().await.expect("stats").backlog, 2);
    store.close().await;
}

/// A failed fsync may have dropped what was written: the batch it covered is not
/// acknowledged, and the store takes no more writes (readiness fails) until reopened.
#[tokio::test]
async fn a_failed_wal_sync_answers_unavailable_and_stops_writes_until_reopened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_at(&dir, 1000);
    store
        .ingest(delivery("okta", vec![event("a", "t", &["s"])]))
        .await
        .expect("ingest");
    let switch = store.fail_sync.clone().expect("the service syncs the WAL");
    switch.store(true, Ordering::Release);
    let err = store
        .ingest(delivery("okta", vec![event("b", "t", &["s"])]))
        .await
        .expect_err("the sync failed");
    assert!(err.to_string().contains("could not sync"), "{err}");
    for _ in 0..2 {
        let err = store
            .ingest(delivery("okta", vec![event("c", "t", &["s"])]))
            .await
            .expect_err("no more writes");
        assert!(err.to_string().contains("restart the service"), "{err}");
        store.check_writable().await.expect_err("not writable");
    }
    store.close().await;
    // Reopened, it works again; the failed delivery may or may not be there (the
    // kernel may or may not have written it), which is why it was not acknowledged.
    let store = open_at(&dir, 1000);
    assert_eq!(store.get("a").await.expect("get").len(), 1);
    assert!(store.get("c").await.expect("get").is_empty());
    store
        .ingest(delivery("okta", vec![event("d", "t", &["s"])]))
        .await
        .expect("writes again");
    store.close().await;
}

/// Under a load that never lets the writer pause, passive checkpoints never catch up
/// with the WAL's end; the writer still makes it start over, so it stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_stays_bounded_under_a_load_that_never_pauses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("hookwarden.db");
    let policy = WalPolicy {
        checkpoint_pages: 50,
        restart_pages: 400,
        restart_slack: 32,
    };
    let store = Arc::new(
        SqliteStore::open_with_policy(&path, &config(1_000_000), OpenMode::Service, policy)
            .expect("open"),
    );
    let wal_file = wal::wal_path(&path);
    let max_wal = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..8 {
        let (store, wal_file, max_wal) = (store.clone(), wal_file.clone(), max_wal.clone());
        tasks.spawn(async move {
            for i in 0..250 {
                let mut e = event(&format!("{t}-{i}"), "t", &["s"]);
                e.payload = format!(r#"{{"pad":"{}"}}"#, "x".repeat(3000));
                store
                    .ingest(delivery("okta", vec![e]))
                    .await
                    .expect("ingest");
                let len = std::fs::metadata(&wal_file).map_or(0, |m| m.len());
                max_wal.fetch_max(len, Ordering::Relaxed);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task");
    }
    let stats = store.stats().await.expect("stats");
    assert_eq!(stats.backlog, 2000);
    // 2,000 events of 3 kB wrote several thousand pages; without restarts the WAL
    // would hold them all. Allow the restart threshold plus what one round of
    // catching up adds, at 4 kB pages, twice over.
    let bound = 2 * (400 + 400) * 4096;
    let max = max_wal.load(Ordering::Relaxed);
    assert!(
        max > 0 && max <= bound,
        "WAL grew to {max} bytes (bound {bound})"
    );
    store.close().await;
}

fn published(uuid: &str, at: Option<&str>) -> NewEvent {
    NewEvent {
        published: at.map(str::to_owned),
        ..event(uuid, "t", &["s"])
    }
}

#[tokio::test]
async fn retries_are_duplicates_in_every_bucket_and_uuid_lookups_see_them_all() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = SqliteStore::open(&dir.path().join("h.db"), &config(100)).expect("open");
    let first = vec![
        published("a", Some("2026-11-23T10:00:00.000Z")),
        published("b", None),
        published("c", Some("not a time")),
        published("d", Some("2026-11-23T12:30:00+02:00")),
    ];
    let out = store.ingest(delivery("okta", first)).await.expect("ingest");
    assert_eq!((out.stored, out.duplicates), (4, 0));
    // Okta's retry carries the same events; the same time written otherwise (no
    // fraction, an offset) is still the same hour.
    let retry = vec![
        published("a", Some("2026-11-23T10:00:00Z")),
        published("b", None),
        published("c", Some("not a time")),
        published("d", Some("2026-11-23T10:30:00.000Z")),
    ];
    let out = store.ingest(delivery("okta", retry)).await.expect("ingest");
    assert_eq!((out.stored, out.duplicates), (0, 4));
    // One uuid in three buckets and two hooks: found by uuid alone in all of them.
    for (hook, at) in [
        ("okta", Some("2026-01-01T00:00:00Z")),
        ("second", Some("2026-11-23T10:00:00.000Z")),
    ] {
        store
            .ingest(delivery(hook, vec![published("a", at)]))
            .await
            .expect("ingest");
    }
    let shown = store.get("a").await.expect("get");
    let found: Vec<_> = shown
        .iter()
        .map(|d| (d.summary.hook.as_str(), d.summary.published.as_deref()))
        .collect();
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(found.contains(&("second", Some("2026-11-23T10:00:00.000Z"))));
    assert!(store.get("b").await.expect("get").len() == 1);
    assert!(store.get("nowhere").await.expect("get").is_empty());
    let known = store
        .stored_uuids(
            "okta",
            &[
                published("a", Some("2026-11-23T10:59:59Z")),
                published("b", None),
                published("d", Some("2026-11-23T12:00:00+02:00")),
                published("a", Some("2026-11-23T11:00:00Z")),
            ],
        )
        .await
        .expect("stored");
    assert_eq!(known.len(), 3, "{known:?}");
    // Every job of the uuid is delivered, then replayed by uuid: all four come back.
    let jobs = store
        .claim(10, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(jobs.len(), 6);
    for j in &jobs {
        store
            .finish(j, JobOutcome::Delivered)
            .await
            .expect("finish");
    }
    let all = ReplayTarget::Event {
        uuid: "a".into(),
        hook: None,
    };
    assert_eq!(store.replay(&all).await.expect("replay"), 3);
    assert_eq!(store.job_counts().await.expect("counts").backlog(), 3);
    let one = ReplayTarget::Event {
        uuid: "d".into(),
        hook: Some("okta".into()),
    };
    assert_eq!(store.replay(&one).await.expect("replay"), 1);
    assert_eq!(store.job_counts().await.expect("counts").backlog(), 4);
    store.close().await;
}

/// The new events of a commit share the key index's last pages (see SCHEMA_V4):
/// the plan proves it uses the bucketed key, never a scan.
#[test]
fn lookups_by_uuid_seek_each_bucket_instead_of_scanning() {
    let conn = Connection::open_in_memory().expect("open");
    conn.execute_batch(SCHEMA).expect("v1");
    conn.execute_batch(SCHEMA_V2).expect("v2");
    conn.execute_batch(SCHEMA_V3).expect("v3");
    conn.execute_batch(SCHEMA_V4).expect("v4");
    let plan = |sql: &str| -> String {
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("plan");
        let rows = stmt.query_map([], |r| r.get::<_, String>(3)).expect("rows");
        rows.map(|r| r.expect("row")).collect::<Vec<_>>().join("; ")
    };
    let by_uuid = plan(&format!(
        "{BUCKETS_CTE} SELECT e.id FROM buckets CROSS JOIN events e
         WHERE e.bucket = buckets.b AND e.uuid = 'x'"
    ));
    assert!(!by_uuid.contains("SCAN e"), "{by_uuid}");
    assert!(
        by_uuid.contains("SEARCH e USING COVERING INDEX"),
        "{by_uuid}"
    );
    assert!(!by_uuid.contains("SCAN events"), "{by_uuid}");
}

#[tokio::test]
async fn a_version_1_file_is_migrated_and_keeps_its_events_and_jobs() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("sub/hookwarden.db");
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    {
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch(SCHEMA).expect("v1 schema");
        conn.execute_batch(
            "INSERT INTO events (uuid, hook, event_id, event_type, published, received_at, payload)
             VALUES ('other', 'okta', 'e0', 't', '2026-11-23T10:00:00.000Z', 1, '{}'),
                    ('old', 'okta', 'e', 't', NULL, 2, '{\"a\":1}'),
                    ('old', 'second', 'e', 't', NULL, 2, '{}');
             INSERT INTO jobs (uuid, hook, sink, state, attempts, next_attempt_at, last_error, updated_at)
             VALUES ('old', 'okta', 'archive', 'pending', 1, 0, 'was down', 0),
                    ('old', 'okta', 'siem', 'dead', 5, 0, 'refused', 0),
                    ('old', 'second', 'archive', 'delivered', 1, 0, NULL, 0),
                    ('other', 'okta', 'archive', 'delivered', 1, 0, NULL, 0);",
        )
        .expect("insert");
        conn.pragma_update(None, "user_version", 1)
            .expect("version");
    }
    let store = SqliteStore::open(&path, &config(100)).expect("open v1 file");
    let listed = store.list(&EventQuery::default()).await.expect("list");
    assert_eq!(listed.len(), 3);
    assert!(!listed[0].recovered);
    store.set_cursor("k", 1).await.expect("cursor table exists");
    // Every job still belongs to its event (v3 keys jobs by the event's row id).
    let shown = store.get("old").await.expect("get");
    let sinks: Vec<_> = shown
        .iter()
        .map(|d| {
            let s: Vec<_> = d
                .summary
                .sinks
                .iter()
                .map(|s| (s.sink.as_str(), s.state))
                .collect();
            (d.summary.hook.as_str(), d.summary.state, s)
        })
        .collect();
    assert_eq!(
        sinks,
        vec![
            (
                "okta",
                EventState::Dead,
                vec![("archive", JobState::Pending), ("siem", JobState::Dead)]
            ),
            (
                "second",
                EventState::Delivered,
                vec![("archive", JobState::Delivered)]
            ),
        ]
    );
    assert_eq!(shown[0].event.get(), r#"{"a":1}"#);
    let stats = store.stats().await.expect("stats");
    assert_eq!((stats.events, stats.backlog, stats.dead), (3, 1, 1));
    let jobs = store
        .claim(10, Duration::from_secs(60))
        .await
        .expect("claim");
    let claimed: Vec<_> = jobs
        .iter()
        .map(|j| {
            (
                j.uuid.as_str(),
                j.hook.as_str(),
                j.sink.as_str(),
                j.attempts,
            )
        })
        .collect();
    assert_eq!(claimed, vec![("old", "okta", "archive", 1)]);
    assert_eq!(
        store
            .replay(&ReplayTarget::AllDead {
                hook: Some("okta".into())
            })
            .await
            .expect("replay"),
        1
    );
    store.close().await;
    let conn = Connection::open(&path).expect("open");
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(v, SCHEMA_VERSION);
    // The migrated events keep their key: Okta's retry of either is a duplicate.
    let store = SqliteStore::open(&path, &config(100)).expect("reopen");
    let retry = vec![
        published("other", Some("2026-11-23T10:00:00.000Z")),
        published("old", None),
    ];
    let out = store.ingest(delivery("okta", retry)).await.expect("ingest");
    assert_eq!((out.stored, out.duplicates), (0, 2));
    store.close().await;
}
