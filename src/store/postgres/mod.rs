//! The PostgreSQL store: events, jobs and inline answers shared by every replica.
//!
//! # Why PostgreSQL
//!
//! hookwarden runs as several replicas behind a load balancer, and Okta's retry of a
//! delivery may land on another replica than the first attempt. Dedupe (`(hook, uuid)`)
//! and the work queue must therefore live in one place every replica sees; the SQLite
//! store is one file on one node.
//!
//! # Same contract as SQLite
//!
//! The semantics are those of [`super::sqlite`]: an ingest answers only after `COMMIT`;
//! concurrent ingests of this replica are committed together (group commit, a fixed
//! number of statements per batch whatever its size, see [`Writer::batch_in_txn`]); jobs are
//! leased with a token that `finish` must present; a claim whose previous claims
//! outnumber its outcomes is `interrupted`; capacity (`store.max_backlog`) counts pending
//! jobs and is checked after the insert, so a pure duplicate is still acknowledged.
//!
//! Differences, because other replicas share the tables:
//! - Leases are never cleared at start: a lease may belong to a live replica. A crashed
//!   replica's jobs come back when their lease ends (`lease_until < now`).
//! - Claims use `FOR UPDATE SKIP LOCKED`, so replicas claiming at once never wait on, or
//!   take, each other's rows.
//! - The capacity check uses a pending count refreshed at most every
//!   [`PENDING_REFRESH`] and adjusted by this replica's own writes in between. Other
//!   replicas' ingests are only seen at the next refresh, so N replicas can together
//!   overshoot `max_backlog` by up to one refresh interval of their ingests. The limit
//!   protects the database from unbounded growth; it is not an exact quota, and counting
//!   every pending job on every delivery would cost far more than the overshoot.
//!
//! # Errors
//!
//! Every connection, pool or SQL error is [`StoreError::Unavailable`]: deliveries answer
//! 503 and nothing is acknowledged while the database is down. The pool drops closed
//! connections and opens new ones, so the store recovers by itself when the database
//! comes back.
//!
//! # TLS
//!
//! Connections are plain TCP (`NoTls`) for now: run the database on a private network
//! or a local socket. `sslmode=require` with rustls (`tokio-postgres-rustls`) is future
//! work; a URL asking for `sslmode=require` is refused by tokio-postgres at connect.
//!
//! # Secrets
//!
//! The password comes from [`PostgresConfig::password`] and is given to the driver only;
//! logs and errors show the URL, which by validation holds no password.

use super::rows::{self, count, raw_json};
use super::*;
use crate::config::{expose, PostgresConfig, StoreConfig};
use crate::time::{format_millis, now_millis};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::ToSql;
use tokio_postgres::NoTls;

/// How stale the cached pending-jobs count may get before an ingest batch recounts it
/// (see the module docs on capacity across replicas).
const PENDING_REFRESH: Duration = Duration::from_secs(1);

/// Longest a group-commit batch may take before its deliveries are answered
/// `Unavailable` and its connection is thrown away. A batch normally takes milliseconds;
/// without this bound one hung connection would stall every later ingest of the replica.
/// Answering `Unavailable` when the COMMIT did in fact land is safe: Okta retries, and
/// the retry is a duplicate that is acknowledged.
const BATCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Group-commit batches of one replica committing at once, each on its own connection.
/// One batch at a time would leave the database idle while a COMMIT waits for its
/// fsync; a few overlap that wait with the next batch's statements. Batches may run in
/// any order: their inserts are sorted (see [`Writer::batch_in_txn`]), so they never
/// deadlock, and the one that loses a race for a uuid sees a duplicate.
const BATCHES_IN_FLIGHT: usize = 3;

/// TCP keepalive idle time on database connections (see `connect`).
const TCP_KEEPALIVE_IDLE: Duration = Duration::from_secs(15);

/// Events deleted per statement by [`Store::prune`]: a long sweep must not hold row
/// locks (and so other replicas' claims and finishes) for long.
const PRUNE_CHUNK: i64 = 500;

/// `EventQuery::limit` of 0 means this many.
const DEFAULT_LIST_LIMIT: usize = 50;

/// Key of the advisory lock that serializes migrations of replicas starting together.
/// Any constant works; this one spells "hookwrdn" in ASCII so it is recognisable in
/// `pg_locks`.
const MIGRATION_LOCK: i64 = 0x686f_6f6b_7772_646e;

/// The migrations, in order: `(version, SQL)`. Never edit a released step; append one.
/// Every step runs in the migration transaction, under the advisory lock, and records
/// its version in `hookwarden_schema`.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        "
CREATE TABLE events (
    hook        TEXT NOT NULL,
    uuid        TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    published   TEXT,
    received_at BIGINT NOT NULL,
    -- TEXT, not JSONB: the event is kept byte for byte as Okta sent it.
    payload     TEXT NOT NULL,
    -- Arrival order, to break ties between events of one delivery in listings.
    seq         BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (hook, uuid)
);
-- get / replay by uuid alone (no hook given).
CREATE INDEX events_uuid ON events (uuid);
-- list (newest first) and prune (oldest first).
CREATE INDEX events_received ON events (received_at, seq);

CREATE TABLE jobs (
    id              BIGSERIAL PRIMARY KEY,
    hook            TEXT NOT NULL,
    uuid            TEXT NOT NULL,
    sink            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    claims          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    lease_token     BIGINT,
    last_error      TEXT,
    updated_at      BIGINT NOT NULL,
    UNIQUE (hook, uuid, sink),
    FOREIGN KEY (hook, uuid) REFERENCES events (hook, uuid) ON DELETE CASCADE
);
-- claim: due pending jobs, oldest due first; partial so finished jobs cost nothing.
CREATE INDEX jobs_due ON jobs (next_attempt_at, id) WHERE state = 'pending';
-- counts by state (stats, backlog) and replay of dead letters.
CREATE INDEX jobs_state ON jobs (state, hook);
-- replay of one event by uuid without its hook.
CREATE INDEX jobs_uuid ON jobs (uuid);

CREATE TABLE inline_answers (
    hook       TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    answer     BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (hook, event_id)
);
CREATE INDEX inline_answers_created ON inline_answers (created_at);

CREATE TABLE hookwarden_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
",
    ),
    (
        2,
        "
-- System Log reconciliation: events found in the System Log rather than delivered.
ALTER TABLE events ADD COLUMN recovered BOOLEAN NOT NULL DEFAULT FALSE;
-- Where each hook's last reconciliation pass ended.
CREATE TABLE hookwarden_cursors (
    key        TEXT PRIMARY KEY,
    at         BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- One replica at a time polls Okta: it holds the lease until it expires or is given up.
CREATE TABLE hookwarden_leases (
    key   TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    until BIGINT NOT NULL
);
",
    ),
];

/// An event's state derived from its jobs, as SQL over the event row `e`
/// (see [`EventState`]).
const EVENT_STATE_SQL: &str = "(SELECT CASE
        WHEN COUNT(*) = 0 THEN 'ignored'
        WHEN COUNT(*) FILTER (WHERE j.state = 'dead') > 0 THEN 'dead'
        WHEN COUNT(*) FILTER (WHERE j.state = 'pending') > 0 THEN 'pending'
        ELSE 'delivered' END
    FROM jobs j WHERE j.hook = e.hook AND j.uuid = e.uuid)";

/// Columns 0..=6 of an [`EventSummary`] row; column 7 is the derived state.
const SUMMARY_COLUMNS: &str =
    "e.hook, e.uuid, e.event_id, e.event_type, e.published, e.received_at, e.recovered";

/// Events, jobs and inline answers shared by every replica. See the module docs.
pub struct PostgresStore {
    pool: Pool,
    /// Ingests for the group-commit writer; `None` once [`Store::close`] has begun.
    tx: Mutex<Option<mpsc::UnboundedSender<IngestCmd>>>,
    /// The writer task, awaited by `close` (async mutex: a second `close` waits too).
    writer: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    closed: AtomicBool,
    commits: Arc<AtomicU64>,
    pending: Arc<Mutex<PendingCount>>,
}

/// The cached number of pending jobs behind the capacity check.
struct PendingCount {
    count: i64,
    /// When it was last counted in the database; `None`: never (count at the next batch).
    at: Option<Instant>,
}

impl PendingCount {
    fn adjust(&mut self, delta: i64) {
        self.count = self.count.saturating_add(delta).max(0);
    }
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// A delivery's answer channel and its result (outcome and jobs added), held until the
/// fate of the batch's transaction is known.
type Answered = (
    Reply<IngestOutcome>,
    Result<(IngestOutcome, i64), StoreError>,
);

/// One delivery waiting for the writer, with where to send its answer.
struct IngestCmd {
    delivery: Delivery,
    reply: Reply<IngestOutcome>,
}

impl PostgresStore {
    /// Connects, runs the embedded migrations (safe when replicas start together), and
    /// starts the group-commit writer. Fails when the database cannot be reached: a
    /// replica that starts without its store would accept nothing anyway, and failing
    /// loudly at start is easier to diagnose than 503s.
    pub async fn connect(
        pg: &PostgresConfig,
        config: &StoreConfig,
    ) -> Result<PostgresStore, StoreError> {
        let url = redacted_url(&pg.url);
        let mut pg_config: tokio_postgres::Config = pg.url.parse().map_err(|e| {
            StoreError::Unavailable(format!("store.postgres.url {url} is not valid: {e}"))
        })?;
        if let Some(secret) = pg.password.as_ref().and_then(|s| s.value()) {
            pg_config.password(expose(secret));
        }
        if pg_config.get_application_name().is_none() {
            pg_config.application_name("hookwarden");
        }
        pg_config.connect_timeout(pg.connect_timeout);
        // A database host that vanishes without a reset (network partition, hard power
        // off) must not hang a connection forever: keepalives notice an idle dead peer,
        // and the user timeout fails a write the peer never acknowledges.
        pg_config.keepalives(true);
        pg_config.keepalives_idle(TCP_KEEPALIVE_IDLE);
        pg_config.tcp_user_timeout(BATCH_TIMEOUT);
        let manager = Manager::from_config(
            pg_config,
            NoTls,
            ManagerConfig {
                // Fast: a connection whose socket closed (database restarted) is dropped
                // at checkout; one that fails mid-query answers Unavailable once.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pg.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(pg.connect_timeout))
            .create_timeout(Some(pg.connect_timeout))
            .recycle_timeout(Some(pg.connect_timeout))
            .build()
            .map_err(|e| StoreError::Unavailable(format!("cannot build the pool: {e}")))?;
        migrate(&pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("postgres {url}: {e}")))?;
        tracing::info!(url = %url, pool_size = pg.pool_size, "postgres store ready");

        let commits = Arc::new(AtomicU64::new(0));
        let pending = Arc::new(Mutex::new(PendingCount { count: 0, at: None }));
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = Writer {
            pool: pool.clone(),
            max_batch: config.group_commit_max.max(1),
            max_backlog: i64::try_from(config.max_backlog).unwrap_or(i64::MAX),
            commits: commits.clone(),
            pending: pending.clone(),
        };
        let handle = tokio::spawn(writer.run(rx));
        Ok(PostgresStore {
            pool,
            tx: Mutex::new(Some(tx)),
            writer: tokio::sync::Mutex::new(Some(handle)),
            closed: AtomicBool::new(false),
            commits,
            pending,
        })
    }

    /// Transactions committed by the group-commit writer since connect (each one a group
    /// of ingests).
    pub fn group_commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// A pooled connection, or `Closed` after `close`.
    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        self.pool.get().await.map_err(pool_error)
    }

    fn adjust_pending(&self, delta: i64) {
        if delta != 0 {
            lock(&self.pending).adjust(delta);
        }
    }
}

/// The URL for logs: validation already refuses a password in it, and this removes one
/// anyway should it get there another way.
fn redacted_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("REDACTED"));
            }
            u.to_string()
        }
        Err(_) => "(unparsable url)".to_owned(),
    }
}

/// Locks a std mutex, ignoring poisoning: a count stays meaningful after a panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError::Unavailable(format!("no database connection: {e}"))
}

/// Every database error is, to callers, the store being unavailable: the delivery must
/// not be acknowledged.
trait Db<T> {
    fn db(self) -> Result<T, StoreError>;
}

impl<T> Db<T> for Result<T, tokio_postgres::Error> {
    fn db(self) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::Unavailable(describe(&e)))
    }
}

/// A driver error with the server's message when there is one (the `Display` of
/// `tokio_postgres::Error` alone is often just "db error").
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{e}: {}", db.message()),
        None => e.to_string(),
    }
}

/// Runs the migrations this database has not seen, under a transaction-scoped advisory
/// lock so that replicas starting at once apply each step exactly once (the second
/// waits for the first's COMMIT, then finds nothing left to do).
async fn migrate(pool: &Pool) -> Result<(), String> {
    let mut client = pool
        .get()
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let tx = client.transaction().await.map_err(|e| describe(&e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| describe(&e))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS hookwarden_schema (
             version    INTEGER PRIMARY KEY,
             applied_at BIGINT NOT NULL
         )",
    )
    .await
    .map_err(|e| describe(&e))?;
    let current: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM hookwarden_schema",
            &[],
        )
        .await
        .and_then(|r| r.try_get(0))
        .map_err(|e| describe(&e))?;
    let known = MIGRATIONS.last().map(|(v, _)| *v).unwrap_or(0);
    if current > known {
        return Err(format!(
            "the database has schema version {current}, written by a newer hookwarden (this one knows up to {known})"
        ));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(sql)
            .await
            .map_err(|e| format!("migration {version}: {}", describe(&e)))?;
        tx.execute(
            "INSERT INTO hookwarden_schema (version, applied_at) VALUES ($1, $2)",
            &[version, &now_millis()],
        )
        .await
        .map_err(|e| describe(&e))?;
        tracing::info!(version, "postgres schema migrated");
    }
    tx.commit().await.map_err(|e| describe(&e))
}

// ---------------------------------------------------------------------------------
// Group-commit writer

/// Owns the ingest queue: takes what is queued, commits it in one transaction, answers.
struct Writer {
    pool: Pool,
    max_batch: usize,
    max_backlog: i64,
    commits: Arc<AtomicU64>,
    pending: Arc<Mutex<PendingCount>>,
}

impl Writer {
    async fn run(self, mut rx: mpsc::UnboundedReceiver<IngestCmd>) {
        let this = Arc::new(self);
        let in_flight = Arc::new(tokio::sync::Semaphore::new(BATCHES_IN_FLIGHT));
        // `recv` ends once every sender is gone (close) and the queue is drained: what was
        // queued before `close` is still committed.
        loop {
            // The permit first: while every batch slot is busy, deliveries queue up and
            // the next batch takes them all.
            let Ok(permit) = in_flight.clone().acquire_owned().await else {
                return;
            };
            let Some(first) = rx.recv().await else {
                break;
            };
            let mut batch = Vec::with_capacity(this.max_batch.min(64));
            batch.push(first);
            while batch.len() < this.max_batch {
                match rx.try_recv() {
                    Ok(cmd) => batch.push(cmd),
                    Err(_) => break,
                }
            }
            let this = this.clone();
            tokio::spawn(async move {
                this.run_batch(batch).await;
                drop(permit);
            });
        }
        // Every batch still running is answered before the writer ends.
        let _ = in_flight.acquire_many(BATCHES_IN_FLIGHT as u32).await;
    }

    async fn run_batch(&self, batch: Vec<IngestCmd>) {
        let mut client = match self.pool.get().await {
            Ok(c) => c,
            Err(e) => {
                let msg = format!("no database connection: {e}");
                for cmd in batch {
                    let _ = cmd.reply.send(Err(StoreError::Unavailable(msg.clone())));
                }
                return;
            }
        };
        let mut results: Vec<Answered> = Vec::with_capacity(batch.len());
        let lost = match tokio::time::timeout(
            BATCH_TIMEOUT,
            self.batch_in_txn(&mut client, batch, &mut results),
        )
        .await
        {
            Ok(outcome) => outcome.err(),
            Err(_) => {
                // Deliveries not reached yet were dropped with the future: their callers
                // get "stopped before answering", also Unavailable. The connection is in
                // an unknown state: detach it from the pool so that it is closed.
                drop(deadpool_postgres::Object::take(client));
                Some(format!(
                    "the batch took longer than {BATCH_TIMEOUT:?}; its connection was dropped"
                ))
            }
        };
        match lost {
            None => {
                self.commits.fetch_add(1, Ordering::Relaxed);
                let delta: i64 = results
                    .iter()
                    .filter_map(|(_, r)| r.as_ref().ok().map(|(_, d)| *d))
                    .sum();
                lock(&self.pending).adjust(delta);
                for (reply, result) in results {
                    let _ = reply.send(result.map(|(o, _)| o));
                }
            }
            Some(msg) => {
                tracing::error!(error = %msg, deliveries = results.len(), "store commit failed; the whole batch is answered as not stored");
                for (reply, result) in results {
                    let out = match result {
                        Ok(_) => Err(StoreError::Unavailable(msg.clone())),
                        Err(e) => Err(e),
                    };
                    let _ = reply.send(out);
                }
            }
        }
    }

    /// Runs the batch as one transaction of a fixed number of statements, whatever its
    /// size, and commits. Each delivery's own result goes to `results`; an `Err` means
    /// the transaction was lost and no success in `results` may be reported.
    ///
    /// The steps: find which of the batch's events are stored already; decide each
    /// delivery in arrival order (new events, jobs added, capacity); insert every
    /// accepted event in one statement **sorted by `(hook, uuid)`**, then their jobs
    /// sorted the same way. Sorting matters with replicas: two replicas inserting the
    /// same uuids in different orders would each wait on the other's unique-index entry
    /// (a deadlock PostgreSQL breaks after a second by failing one batch). In one global
    /// order, the second simply waits for the first to commit and sees a conflict.
    async fn batch_in_txn(
        &self,
        client: &mut deadpool_postgres::Object,
        batch: Vec<IngestCmd>,
        results: &mut Vec<Answered>,
    ) -> Result<(), String> {
        let fail_all = |batch: Vec<IngestCmd>, results: &mut Vec<Answered>, msg: String| {
            for cmd in batch {
                results.push((cmd.reply, Err(StoreError::Unavailable(msg.clone()))));
            }
            Err(msg)
        };
        let tx = match client.transaction().await {
            Ok(tx) => tx,
            Err(e) => {
                let msg = format!("cannot start a transaction: {}", describe(&e));
                return fail_all(batch, results, msg);
            }
        };
        let pending_now = match self.pending_now(&tx).await {
            Ok(n) => n,
            Err(e) => return fail_all(batch, results, describe(&e)),
        };
        let plan = match plan_batch(&tx, &batch, pending_now, self.max_backlog).await {
            Ok(plan) => plan,
            Err(e) => return fail_all(batch, results, describe(&e)),
        };
        let inserted = match insert_planned(&tx, &batch, &plan).await {
            Ok(inserted) => inserted,
            Err(e) => return fail_all(batch, results, describe(&e)),
        };
        if let Err(e) = tx.commit().await {
            return fail_all(batch, results, format!("commit failed: {}", describe(&e)));
        }
        for (i, cmd) in batch.into_iter().enumerate() {
            let result = match &plan.decisions[i] {
                Decision::Full(pending) => Err(StoreError::Full(*pending)),
                Decision::Accept(picked) => {
                    let mut stored = 0usize;
                    let mut added = 0i64;
                    for &k in picked {
                        if inserted.contains(&(i, k)) {
                            stored += 1;
                            added += jobs_of(&cmd.delivery.events[k]);
                        }
                    }
                    Ok((
                        IngestOutcome {
                            stored,
                            duplicates: cmd.delivery.events.len() - stored,
                        },
                        added,
                    ))
                }
            };
            results.push((cmd.reply, result));
        }
        Ok(())
    }

    /// Pending jobs for this batch's capacity checks: the cache, recounted inside the
    /// transaction when older than [`PENDING_REFRESH`].
    async fn pending_now(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
    ) -> Result<i64, tokio_postgres::Error> {
        {
            let cache = lock(&self.pending);
            if cache.at.is_some_and(|at| at.elapsed() < PENDING_REFRESH) {
                return Ok(cache.count);
            }
        }
        let n: i64 = tx
            .query_one("SELECT COUNT(*) FROM jobs WHERE state = 'pending'", &[])
            .await?
            .try_get(0)?;
        let mut cache = lock(&self.pending);
        cache.count = n;
        cache.at = Some(Instant::now());
        Ok(n)
    }
}

/// What a batch will do with one delivery.
enum Decision {
    /// Store these events (indexes into `delivery.events`): the ones not stored before,
    /// first occurrence only. Empty for a pure retry, which is still acknowledged.
    Accept(Vec<usize>),
    /// Refused: it adds work and the backlog is full (pending jobs counted).
    Full(u64),
}

struct Plan {
    /// One per delivery of the batch, in order.
    decisions: Vec<Decision>,
}

/// Distinct jobs an event adds: a sink listed twice gets one job.
fn jobs_of(e: &NewEvent) -> i64 {
    let distinct: std::collections::HashSet<&str> = e.sinks.iter().map(String::as_str).collect();
    i64::try_from(distinct.len()).unwrap_or(i64::MAX)
}

/// Decides every delivery of a batch: one query finds the events stored already, then
/// each delivery in arrival order either adds its new events or, when it adds work and
/// the backlog is full, is refused. As in SQLite, a delivery that adds no work (Okta's
/// retry) is acknowledged even when full.
async fn plan_batch(
    tx: &deadpool_postgres::Transaction<'_>,
    batch: &[IngestCmd],
    mut pending_now: i64,
    max_backlog: i64,
) -> Result<Plan, tokio_postgres::Error> {
    let mut hooks: Vec<&str> = Vec::new();
    let mut uuids: Vec<&str> = Vec::new();
    for cmd in batch {
        for e in &cmd.delivery.events {
            hooks.push(&cmd.delivery.hook);
            uuids.push(&e.uuid);
        }
    }
    let stmt = tx
        .prepare_cached(
            "SELECT e.hook, e.uuid FROM events e
             JOIN UNNEST($1::text[], $2::text[]) AS x(h, u) ON e.hook = x.h AND e.uuid = x.u",
        )
        .await?;
    let rows = tx.query(&stmt, &[&hooks, &uuids]).await?;
    let mut seen: std::collections::HashSet<(String, String)> = std::collections::HashSet::new();
    for r in &rows {
        seen.insert((r.try_get(0)?, r.try_get(1)?));
    }
    let mut decisions = Vec::with_capacity(batch.len());
    for cmd in batch {
        let d = &cmd.delivery;
        let mut picked = Vec::new();
        let mut added = 0i64;
        let mut taken: Vec<(String, String)> = Vec::new();
        for (k, e) in d.events.iter().enumerate() {
            let key = (d.hook.clone(), e.uuid.clone());
            if seen.contains(&key) || taken.contains(&key) {
                continue;
            }
            taken.push(key);
            picked.push(k);
            added = added.saturating_add(jobs_of(e));
        }
        if added > 0 && pending_now >= max_backlog {
            decisions.push(Decision::Full(u64::try_from(pending_now).unwrap_or(0)));
            continue;
        }
        pending_now = pending_now.saturating_add(added);
        seen.extend(taken);
        decisions.push(Decision::Accept(picked));
    }
    Ok(Plan { decisions })
}

/// Inserts the plan's events and their jobs, each in one statement sorted by
/// `(hook, uuid)` (see [`Writer::batch_in_txn`] on deadlocks). Returns the events this
/// transaction inserted, as (delivery, event) indexes into the batch: one missing from it was inserted meanwhile by another replica,
/// and counts as a duplicate.
async fn insert_planned(
    tx: &deadpool_postgres::Transaction<'_>,
    batch: &[IngestCmd],
    plan: &Plan,
) -> Result<std::collections::HashSet<(usize, usize)>, tokio_postgres::Error> {
    // (delivery, event) with their indexes in the batch.
    let mut rows: Vec<(&Delivery, &NewEvent, (usize, usize))> = Vec::new();
    for (i, (cmd, decision)) in batch.iter().zip(&plan.decisions).enumerate() {
        if let Decision::Accept(picked) = decision {
            rows.extend(
                picked
                    .iter()
                    .map(|&k| (&cmd.delivery, &cmd.delivery.events[k], (i, k))),
            );
        }
    }
    let mut inserted = std::collections::HashSet::new();
    if rows.is_empty() {
        return Ok(inserted);
    }
    // `seq` breaks ties between events of one delivery in listings, so it must follow
    // arrival order while the insert follows `(hook, uuid)`: reserve one value per row
    // (ascending, unique across replicas) and hand them out in arrival order.
    let stmt = tx
        .prepare_cached(
            "SELECT nextval(pg_get_serial_sequence('events', 'seq')) FROM generate_series(1, $1::bigint)",
        )
        .await?;
    let count = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    let mut seqs: Vec<i64> = Vec::with_capacity(rows.len());
    for r in tx.query(&stmt, &[&count]).await? {
        seqs.push(r.try_get(0)?);
    }
    seqs.sort_unstable();
    let mut rows: Vec<_> = rows.into_iter().zip(seqs).collect();
    rows.sort_by(|(a, _), (b, _)| {
        (a.0.hook.as_str(), a.1.uuid.as_str()).cmp(&(b.0.hook.as_str(), b.1.uuid.as_str()))
    });
    let hooks: Vec<&str> = rows.iter().map(|((d, _, _), _)| d.hook.as_str()).collect();
    let event_ids: Vec<&str> = rows
        .iter()
        .map(|((d, _, _), _)| d.event_id.as_str())
        .collect();
    let received: Vec<i64> = rows.iter().map(|((d, _, _), _)| d.received_at).collect();
    let uuids: Vec<&str> = rows.iter().map(|((_, e, _), _)| e.uuid.as_str()).collect();
    let types: Vec<&str> = rows
        .iter()
        .map(|((_, e, _), _)| e.event_type.as_str())
        .collect();
    let published: Vec<Option<&str>> = rows
        .iter()
        .map(|((_, e, _), _)| e.published.as_deref())
        .collect();
    let payloads: Vec<&str> = rows
        .iter()
        .map(|((_, e, _), _)| e.payload.as_str())
        .collect();
    let seq: Vec<i64> = rows.iter().map(|(_, s)| *s).collect();
    let recovered: Vec<bool> = rows.iter().map(|((d, _, _), _)| d.recovered).collect();
    // ORDER BY n keeps the sorted order: the unique-index entries are taken in it.
    let stmt = tx
        .prepare_cached(
            "INSERT INTO events (hook, uuid, event_id, event_type, published, received_at, payload, seq, recovered)
             OVERRIDING SYSTEM VALUE
             SELECT h, u, i, t, p, r, b, q, v
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::bigint[], $9::bool[])
                  WITH ORDINALITY AS x(h, u, i, t, p, r, b, q, v, n)
             ORDER BY n
             ON CONFLICT DO NOTHING
             RETURNING hook, uuid",
        )
        .await?;
    let returned = tx
        .query(
            &stmt,
            &[
                &hooks, &uuids, &event_ids, &types, &published, &received, &payloads, &seq,
                &recovered,
            ],
        )
        .await?;
    let mut new: std::collections::HashSet<(String, String)> = std::collections::HashSet::new();
    for r in &returned {
        new.insert((r.try_get(0)?, r.try_get(1)?));
    }
    let now = now_millis();
    let mut job_hooks: Vec<&str> = Vec::new();
    let mut job_uuids: Vec<&str> = Vec::new();
    let mut job_sinks: Vec<&str> = Vec::new();
    for ((d, e, at), _) in &rows {
        if !new.contains(&(d.hook.clone(), e.uuid.clone())) {
            continue;
        }
        inserted.insert(*at);
        let mut sinks: Vec<&str> = e.sinks.iter().map(String::as_str).collect();
        sinks.sort_unstable();
        sinks.dedup();
        for sink in sinks {
            job_hooks.push(&d.hook);
            job_uuids.push(&e.uuid);
            job_sinks.push(sink);
        }
    }
    if !job_uuids.is_empty() {
        let stmt = tx
            .prepare_cached(
                "INSERT INTO jobs (hook, uuid, sink, state, attempts, claims, next_attempt_at, updated_at)
                 SELECT h, u, s, 'pending', 0, 0, $1, $1
                 FROM UNNEST($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS x(h, u, s, n)
                 ORDER BY n
                 ON CONFLICT DO NOTHING",
            )
            .await?;
        tx.execute(&stmt, &[&now, &job_hooks, &job_uuids, &job_sinks])
            .await?;
    }
    Ok(inserted)
}

fn parse_event_state(s: &str) -> Result<EventState, StoreError> {
    rows::event_state(s)
        .ok_or_else(|| StoreError::Unavailable(format!("unknown event state '{s}'")))
}

/// Attempts as PostgreSQL stores them (an `integer`, read as `i32`).
fn attempts(n: i32) -> u32 {
    rows::attempts(i64::from(n))
}

/// Translates an event type glob (only `*` is a wildcard) to `LIKE ... ESCAPE '\'`,
/// whose other special characters (`%`, `_`, `\`) are made literal. `LIKE` is
/// case-sensitive in PostgreSQL, like [`glob_match`](crate::glob::glob_match) and Okta's event types.
fn like_pattern(glob: &str) -> String {
    let mut out = String::with_capacity(glob.len() + 8);
    for c in glob.chars() {
        match c {
            '*' => out.push('%'),
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

fn summary_from_row(r: &tokio_postgres::Row) -> Result<EventSummary, StoreError> {
    let state: String = r.try_get(7).db()?;
    Ok(EventSummary {
        hook: r.try_get(0).db()?,
        uuid: r.try_get(1).db()?,
        event_id: r.try_get(2).db()?,
        event_type: r.try_get(3).db()?,
        published: r.try_get(4).db()?,
        received_at: r.try_get(5).db()?,
        recovered: r.try_get(6).db()?,
        state: parse_event_state(&state)?,
        sinks: Vec::new(),
    })
}

/// Fills in the sinks of each summary with one query (in the same snapshot).
async fn fill_sinks(
    tx: &deadpool_postgres::Transaction<'_>,
    summaries: &mut [EventSummary],
) -> Result<(), StoreError> {
    if summaries.is_empty() {
        return Ok(());
    }
    let hooks: Vec<&str> = summaries.iter().map(|s| s.hook.as_str()).collect();
    let uuids: Vec<&str> = summaries.iter().map(|s| s.uuid.as_str()).collect();
    let rows = tx
        .query(
            "SELECT j.hook, j.uuid, j.sink, j.state, j.attempts, j.last_error, j.next_attempt_at
             FROM jobs j JOIN UNNEST($1::text[], $2::text[]) AS k(h, u) ON j.hook = k.h AND j.uuid = k.u
             ORDER BY j.sink",
            &[&hooks, &uuids],
        )
        .await
        .db()?;
    let mut by_key: std::collections::HashMap<(String, String), Vec<SinkStatus>> =
        std::collections::HashMap::new();
    for r in rows {
        let state_text: String = r.try_get(3).db()?;
        let state = JobState::parse(&state_text)
            .ok_or_else(|| StoreError::Unavailable(format!("unknown job state '{state_text}'")))?;
        let next: i64 = r.try_get(6).db()?;
        by_key
            .entry((r.try_get(0).db()?, r.try_get(1).db()?))
            .or_default()
            .push(SinkStatus {
                sink: r.try_get(2).db()?,
                state,
                attempts: attempts(r.try_get(4).db()?),
                last_error: r.try_get(5).db()?,
                next_attempt_at: (state == JobState::Pending).then_some(next),
            });
    }
    for s in summaries {
        if let Some(sinks) = by_key.remove(&(s.hook.clone(), s.uuid.clone())) {
            s.sinks = sinks;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// The trait

/// Claims due, unleased pending jobs. `SKIP LOCKED`: rows another replica is claiming
/// right now are skipped, not waited for. `claims` in `RETURNING` is the new value, so
/// the claims before this one are `claims - 1`.
const CLAIM_SQL: &str = "
    WITH picked AS (
        SELECT id FROM jobs
        WHERE state = 'pending' AND next_attempt_at <= $1
          AND (lease_until IS NULL OR lease_until < $1)
        ORDER BY next_attempt_at, id
        LIMIT $2
        FOR UPDATE SKIP LOCKED
    ), claimed AS (
        UPDATE jobs j SET lease_until = $3, lease_token = $4, claims = j.claims + 1, updated_at = $1
        FROM picked WHERE j.id = picked.id
        RETURNING j.id, j.hook, j.sink, j.uuid, j.attempts, j.claims, j.next_attempt_at
    )
    SELECT c.id, c.hook, c.sink, c.uuid, c.attempts, c.claims,
           e.event_id, e.event_type, e.received_at, e.payload, e.recovered
    FROM claimed c JOIN events e ON e.hook = c.hook AND e.uuid = c.uuid
    ORDER BY c.next_attempt_at, c.id";

#[async_trait]
impl Queue for PostgresStore {
    async fn ingest(&self, delivery: Delivery) -> Result<IngestOutcome, StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let (reply, answer) = oneshot::channel();
        {
            let tx = lock(&self.tx);
            let Some(tx) = tx.as_ref() else {
                return Err(StoreError::Closed);
            };
            tx.send(IngestCmd { delivery, reply })
                .map_err(|_| StoreError::Unavailable("the store writer has stopped".into()))?;
        }
        answer.await.map_err(|_| {
            StoreError::Unavailable("the store writer stopped before answering".into())
        })?
    }
    async fn claim(&self, max: usize, lease: Duration) -> Result<Vec<Job>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let now = now_millis();
        let until = now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        // One token per claim: it differs from any earlier claim's, which is all `finish` needs.
        let token = fastrand::i64(..);
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let stmt = client.prepare_cached(CLAIM_SQL).await.db()?;
        let rows = client
            .query(&stmt, &[&now, &limit, &until, &token])
            .await
            .db()?;
        let mut jobs = Vec::with_capacity(rows.len());
        for r in rows {
            let attempts_made: i32 = r.try_get(4).db()?;
            let claims: i32 = r.try_get(5).db()?;
            jobs.push(Job {
                id: r.try_get(0).db()?,
                lease_token: token,
                hook: r.try_get(1).db()?,
                sink: r.try_get(2).db()?,
                uuid: r.try_get(3).db()?,
                event_id: r.try_get(6).db()?,
                event_type: r.try_get(7).db()?,
                received_at: r.try_get(8).db()?,
                attempts: attempts(attempts_made),
                // Every finished claim adds one attempt: more earlier claims than attempts
                // means a claim ended without an outcome (a crash, or a lease that ran out).
                interrupted: claims - 1 > attempts_made,
                recovered: r.try_get(10).db()?,
                payload: r.try_get(9).db()?,
            });
        }
        Ok(jobs)
    }
    async fn finish(&self, job: &Job, outcome: JobOutcome) -> Result<(), StoreError> {
        let client = self.client().await?;
        let now = now_millis();
        // `lease_token = $2`: a worker whose lease was taken over (or whose job was
        // replayed) changes nothing. Every outcome adds one attempt (see `claim`).
        let changed = match &outcome {
            JobOutcome::Delivered => {
                client
                    .execute(
                        "UPDATE jobs SET state = 'delivered', attempts = attempts + 1,
                             lease_until = NULL, lease_token = NULL, updated_at = $3
                         WHERE id = $1 AND lease_token = $2 AND state = 'pending'",
                        &[&job.id, &job.lease_token, &now],
                    )
                    .await
            }
            JobOutcome::Retry { at, error } => {
                client
                    .execute(
                        "UPDATE jobs SET attempts = attempts + 1, next_attempt_at = $3, last_error = $4,
                             lease_until = NULL, lease_token = NULL, updated_at = $5
                         WHERE id = $1 AND lease_token = $2 AND state = 'pending'",
                        &[&job.id, &job.lease_token, at, error, &now],
                    )
                    .await
            }
            JobOutcome::Dead { error } => {
                client
                    .execute(
                        "UPDATE jobs SET state = 'dead', attempts = attempts + 1, last_error = $3,
                             lease_until = NULL, lease_token = NULL, updated_at = $4
                         WHERE id = $1 AND lease_token = $2 AND state = 'pending'",
                        &[&job.id, &job.lease_token, error, &now],
                    )
                    .await
            }
        }
        .db()?;
        if !matches!(outcome, JobOutcome::Retry { .. }) {
            self.adjust_pending(-i64::try_from(changed).unwrap_or(0));
        }
        Ok(())
    }
    async fn job_counts(&self) -> Result<JobCounts, StoreError> {
        let client = self.client().await?;
        let r = client
            .query_one(
                "SELECT (SELECT COUNT(*) FROM jobs WHERE state = 'pending'),
                        (SELECT COUNT(*) FROM jobs WHERE state = 'dead')",
                &[],
            )
            .await
            .db()?;
        Ok(JobCounts {
            backlog: count(r.try_get(0).db()?),
            dead: count(r.try_get(1).db()?),
        })
    }
    async fn prune(&self, before: Millis) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let chunk = client
            .prepare_cached(
                "DELETE FROM events WHERE (hook, uuid) IN (
                     SELECT e.hook, e.uuid FROM events e
                     WHERE e.received_at < $1
                       AND NOT EXISTS (SELECT 1 FROM jobs j
                                       WHERE j.hook = e.hook AND j.uuid = e.uuid AND j.state <> 'delivered')
                     ORDER BY e.received_at
                     LIMIT $2
                     FOR UPDATE SKIP LOCKED)",
            )
            .await
            .db()?;
        let mut total = 0u64;
        loop {
            // Jobs go with their event (ON DELETE CASCADE). Each chunk commits on its own.
            let n = client
                .execute(&chunk, &[&before, &PRUNE_CHUNK])
                .await
                .db()?;
            total += n;
            if n < u64::try_from(PRUNE_CHUNK).unwrap_or(u64::MAX) {
                break;
            }
        }
        // Inline answers past the retention are no use either (their TTL is far shorter).
        client
            .execute(
                "DELETE FROM inline_answers WHERE created_at < $1",
                &[&before],
            )
            .await
            .db()?;
        Ok(total)
    }
}

#[async_trait]
impl Inspect for PostgresStore {
    async fn list(&self, q: &EventQuery) -> Result<Vec<EventSummary>, StoreError> {
        let mut client = self.client().await?;
        let mut sql =
            format!("SELECT {SUMMARY_COLUMNS}, {EVENT_STATE_SQL} FROM events e WHERE TRUE");
        let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        let mut arg = |sql: &mut String, clause: &str, v: Box<dyn ToSql + Sync + Send>| {
            args.push(v);
            sql.push_str(&clause.replace('?', &format!("${}", args.len())));
        };
        if let Some(hook) = &q.hook {
            arg(&mut sql, " AND e.hook = ?", Box::new(hook.clone()));
        }
        if let Some(t) = &q.event_type {
            if t.contains('*') {
                arg(
                    &mut sql,
                    " AND e.event_type LIKE ? ESCAPE '\\'",
                    Box::new(like_pattern(t)),
                );
            } else {
                arg(&mut sql, " AND e.event_type = ?", Box::new(t.clone()));
            }
        }
        if let Some(since) = q.since {
            arg(&mut sql, " AND e.received_at >= ?", Box::new(since));
        }
        if let Some(until) = q.until {
            arg(&mut sql, " AND e.received_at < ?", Box::new(until));
        }
        if let Some(state) = q.state {
            arg(
                &mut sql,
                &format!(" AND {EVENT_STATE_SQL} = ?"),
                Box::new(state.as_str().to_owned()),
            );
        }
        let limit = if q.limit == 0 {
            DEFAULT_LIST_LIMIT
        } else {
            q.limit
        };
        arg(
            &mut sql,
            " ORDER BY e.received_at DESC, e.seq DESC LIMIT ?",
            Box::new(i64::try_from(limit).unwrap_or(i64::MAX)),
        );
        let params: Vec<&(dyn ToSql + Sync)> = args
            .iter()
            .map(|a| a.as_ref() as &(dyn ToSql + Sync))
            .collect();
        // One snapshot for the events and their sinks.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .db()?;
        let rows = tx.query(&sql, &params).await.db()?;
        let mut out = rows
            .iter()
            .map(summary_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        fill_sinks(&tx, &mut out).await?;
        tx.commit().await.db()?;
        Ok(out)
    }
    async fn get(&self, uuid: &str) -> Result<Vec<EventDetail>, StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .db()?;
        let rows = tx
            .query(
                &format!(
                    "SELECT {SUMMARY_COLUMNS}, {EVENT_STATE_SQL}, e.payload
                     FROM events e WHERE e.uuid = $1 ORDER BY e.hook"
                ),
                &[&uuid],
            )
            .await
            .db()?;
        let mut summaries = Vec::with_capacity(rows.len());
        let mut payloads = Vec::with_capacity(rows.len());
        for r in &rows {
            summaries.push(summary_from_row(r)?);
            payloads.push(r.try_get::<_, String>(8).db()?);
        }
        fill_sinks(&tx, &mut summaries).await?;
        tx.commit().await.db()?;
        summaries
            .into_iter()
            .zip(payloads)
            .map(|(summary, payload)| {
                Ok(EventDetail {
                    summary,
                    event: raw_json(payload)?,
                })
            })
            .collect()
    }
    async fn replay(&self, target: &ReplayTarget) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let now = now_millis();
        const SET: &str = "UPDATE jobs SET state = 'pending', next_attempt_at = $1,
            lease_until = NULL, lease_token = NULL, updated_at = $1";
        let tx = client.transaction().await.db()?;
        let (n, revived) = match target {
            ReplayTarget::Event { uuid, hook } => {
                // Jobs not pending yet become pending: that is the change to the backlog.
                let revived: i64 = tx
                    .query_one(
                        "SELECT COUNT(*) FROM jobs
                         WHERE uuid = $1 AND ($2::text IS NULL OR hook = $2) AND state <> 'pending'",
                        &[uuid, hook],
                    )
                    .await
                    .and_then(|r| r.try_get(0))
                    .db()?;
                let n = tx
                    .execute(
                        &format!("{SET} WHERE uuid = $2 AND ($3::text IS NULL OR hook = $3)"),
                        &[&now, uuid, hook],
                    )
                    .await
                    .db()?;
                (n, revived)
            }
            ReplayTarget::AllDead { hook } => {
                let n = tx
                    .execute(
                        &format!("{SET} WHERE state = 'dead' AND ($2::text IS NULL OR hook = $2)"),
                        &[&now, hook],
                    )
                    .await
                    .db()?;
                (n, i64::try_from(n).unwrap_or(i64::MAX))
            }
        };
        tx.commit().await.db()?;
        self.adjust_pending(revived);
        Ok(n)
    }
    async fn stats(&self) -> Result<StoreStats, StoreError> {
        let jobs = self.job_counts().await?;
        let client = self.client().await?;
        let r = client
            .query_one("SELECT COUNT(*) FROM events", &[])
            .await
            .db()?;
        Ok(StoreStats {
            backlog: jobs.backlog,
            dead: jobs.dead,
            events: count(r.try_get(0).db()?),
        })
    }
}

#[async_trait]
impl Leases for PostgresStore {
    async fn stored_uuids(
        &self,
        hook: &str,
        events: &[NewEvent],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let uuids: Vec<&str> = events.iter().map(|e| e.uuid.as_str()).collect();
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT uuid FROM events WHERE hook = $1 AND uuid = ANY($2::text[])",
                &[&hook, &uuids],
            )
            .await
            .db()?;
        rows.iter().map(|r| r.try_get(0).db()).collect()
    }
    async fn cursor(&self, key: &str) -> Result<Option<Millis>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT at FROM hookwarden_cursors WHERE key = $1", &[&key])
            .await
            .db()?;
        row.map(|r| r.try_get(0).db()).transpose()
    }
    async fn set_cursor(&self, key: &str, at: Millis) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO hookwarden_cursors (key, at, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (key) DO UPDATE
                 SET at = GREATEST(hookwarden_cursors.at, excluded.at), updated_at = excluded.updated_at",
                &[&key, &at, &now_millis()],
            )
            .await
            .db()?;
        Ok(())
    }
    async fn try_lease(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let now = now_millis();
        let until = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        // The conflict branch updates only a lease that is ours or expired; the row is
        // locked while it is decided, so two replicas cannot both win it.
        let n = client
            .execute(
                "INSERT INTO hookwarden_leases (key, owner, until) VALUES ($1, $2, $3)
                 ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, until = excluded.until
                 WHERE hookwarden_leases.owner = excluded.owner OR hookwarden_leases.until < $4",
                &[&key, &owner, &until, &now],
            )
            .await
            .db()?;
        Ok(n == 1)
    }
    async fn release_lease(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM hookwarden_leases WHERE key = $1 AND owner = $2",
                &[&key, &owner],
            )
            .await
            .db()?;
        Ok(())
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn check_writable(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        // A write that is rolled back still proves the connection, the permissions and
        // that the server is not a read-only standby, without every replica's probe
        // contending for one row.
        let tx = client.transaction().await.db()?;
        tx.execute(
            "INSERT INTO hookwarden_meta (key, value) VALUES ('writable_probe', $1)
             ON CONFLICT (key) DO NOTHING",
            &[&format_millis(now_millis())],
        )
        .await
        .db()?;
        tx.rollback().await.db()
    }
    async fn close(&self) {
        // Dropping the only sender lets the writer commit what is queued, then stop.
        drop(lock(&self.tx).take());
        let mut writer = self.writer.lock().await;
        if let Some(handle) = writer.take() {
            if let Err(e) = handle.await {
                tracing::error!(error = %e, "the postgres store writer failed");
            }
        }
        self.closed.store(true, Ordering::Release);
        self.pool.close();
    }
}

#[async_trait]
impl AnswerStore for PostgresStore {
    /// A stored inline-hook answer for `(hook, event_id)` no older than `ttl`: Okta's
    /// retry of an inline request gets the same answer, whichever replica it lands on.
    async fn get_answer(
        &self,
        hook: &str,
        event_id: &str,
        ttl: Duration,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        let since = now_millis().saturating_sub(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        let row = client
            .query_opt(
                "SELECT answer FROM inline_answers
                 WHERE hook = $1 AND event_id = $2 AND created_at >= $3",
                &[&hook, &event_id, &since],
            )
            .await
            .db()?;
        row.map(|r| r.try_get::<_, Vec<u8>>(0)).transpose().db()
    }

    /// Stores an inline-hook answer. The first answer wins (`ON CONFLICT DO NOTHING`):
    /// two replicas answering the same request concurrently keep one answer.
    async fn put_answer(
        &self,
        hook: &str,
        event_id: &str,
        answer: &[u8],
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO inline_answers (hook, event_id, answer, created_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&hook, &event_id, &answer, &now_millis()],
            )
            .await
            .db()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_translate_to_like() {
        assert_eq!(like_pattern("user.*"), "user.%");
        assert_eq!(like_pattern("a_b%c\\*"), "a\\_b\\%c\\\\%");
    }

    #[test]
    fn urls_are_logged_without_password() {
        assert_eq!(
            redacted_url("postgres://u:secret@db:5432/x"),
            "postgres://u:REDACTED@db:5432/x"
        );
        assert_eq!(redacted_url("postgres://u@db/x"), "postgres://u@db/x");
    }

    #[test]
    fn migrations_are_ordered() {
        assert!(MIGRATIONS.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
