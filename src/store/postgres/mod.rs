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
//! `disable`, `require` or `verify-full`, with rustls ([`connect`]); set by
//! `store.postgres.tls` and its files, or by libpq's `sslmode`/`sslrootcert`/`sslcert`/
//! `sslkey` in the URL.
//!
//! # Secrets
//!
//! The password comes from [`PostgresConfig::password`], read again for each new
//! connection, and is given to the driver only; logs and errors show the URL, which by
//! validation holds no password.

use super::rows::{self, count, raw_json};
use super::*;
use crate::config::{PostgresConfig, StoreConfig};
use crate::time::{format_millis, now_millis};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::ToSql;

mod connect;
mod counts;
mod reader;
mod schema;
mod sql;
#[cfg(test)]
mod tests;
mod writer;

use reader::attempts;
use schema::*;
use sql::{Run, Statements};
use tokio_postgres::types::Type;
use writer::*;

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

/// Events deleted per statement by [`Queue::prune`]: a long sweep must not hold row
/// locks (and so other replicas' claims and finishes) for long.
const PRUNE_CHUNK: i64 = 500;

/// `EventQuery::limit` of 0 means this many.
const DEFAULT_LIST_LIMIT: usize = 50;

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
    /// Prepared and cached, or unnamed behind a transaction pooler ([`sql`]).
    statements: Statements,
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
        let tls = pg
            .tls()
            .map_err(|p| StoreError::Unavailable(p.to_string()))?;
        let mut pg_config: tokio_postgres::Config = tls.driver_url.parse().map_err(|e| {
            StoreError::Unavailable(format!("store.postgres.url {url} is not valid: {e}"))
        })?;
        if pg_config.get_application_name().is_none() {
            pg_config.application_name("hookwarden");
        }
        // Every statement planned for its own parameters, never a cached generic plan:
        // PostgreSQL keeps a prepared statement's generic plan once it looks no worse than
        // the first five custom ones, and on a young store (tables nearly empty, never
        // analysed) that plan scanned the whole events table for each batch's dedupe
        // lookup, and kept doing so as the table grew (1.3 ms per batch instead of 0.1;
        // docs/benchmarks-log.md, "PostgreSQL queue"). Planning each time costs less.
        // Every wait in the database bounded, so that a stuck or overloaded database
        // answers an error (and the delivery a 503) inside Okta's deadline: see
        // `statement_timeout` and `lock_timeout` in [`PostgresConfig`].
        let ours = format!(
            "-c plan_cache_mode=force_custom_plan -c statement_timeout={} -c lock_timeout={}",
            pg.statement_timeout.as_millis(),
            pg.lock_timeout.as_millis()
        );
        let options = match pg_config.get_options() {
            Some(own) if !own.trim().is_empty() => format!("{own} {ours}"),
            _ => ours,
        };
        let statements = if pg.transaction_pooling {
            Statements::Unnamed
        } else {
            // A transaction pooler refuses the `options` startup parameter.
            pg_config.options(&options);
            Statements::Cached
        };
        pg_config.connect_timeout(pg.connect_timeout);
        // A database host that vanishes without a reset (network partition, hard power
        // off) must not hang a connection forever: keepalives notice an idle dead peer,
        // and the user timeout fails a write the peer never acknowledges.
        pg_config.keepalives(true);
        pg_config.keepalives_idle(TCP_KEEPALIVE_IDLE);
        pg_config.tcp_user_timeout(BATCH_TIMEOUT);
        let connector = connect::Connector::new(&tls, pg.password.clone(), &mut pg_config)
            .map_err(StoreError::Unavailable)?;
        let manager = Manager::from_connect(
            pg_config,
            connector,
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
            .map_err(|e| {
                let text = e.to_string();
                let hint = if text.contains("unsupported startup parameter") {
                    " (a transaction pooler such as PgBouncer: set store.postgres.transaction_pooling = true)"
                } else {
                    ""
                };
                StoreError::Unavailable(format!("postgres {url}: {text}{hint}"))
            })?;
        if pg.transaction_pooling {
            warn_unbounded_waits(&pool, pg).await;
        }
        tracing::info!(url = %url, pool_size = pg.pool_size, tls = ?tls.mode, transaction_pooling = pg.transaction_pooling, "postgres store ready");

        let commits = Arc::new(AtomicU64::new(0));
        let pending = Arc::new(Mutex::new(PendingCount { count: 0, at: None }));
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = Writer {
            pool: pool.clone(),
            max_batch: config.group_commit_max.max(1),
            max_backlog: i64::try_from(config.max_backlog).unwrap_or(i64::MAX),
            commits: commits.clone(),
            pending: pending.clone(),
            statements,
        };
        let handle = tokio::spawn(writer.run(rx));
        Ok(PostgresStore {
            pool,
            tx: Mutex::new(Some(tx)),
            writer: tokio::sync::Mutex::new(Some(handle)),
            closed: AtomicBool::new(false),
            commits,
            pending,
            statements,
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

/// Behind a transaction pooler no startup `options` reach the server, so the waits are
/// bounded only if the role says so: says how when it does not.
async fn warn_unbounded_waits(pool: &Pool, pg: &PostgresConfig) {
    let Ok(client) = pool.get().await else {
        return;
    };
    for (setting, wanted) in [
        ("statement_timeout", pg.statement_timeout),
        ("lock_timeout", pg.lock_timeout),
    ] {
        let value = match client.simple_query(&format!("SHOW {setting}")).await {
            Ok(messages) => messages.into_iter().find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                _ => None,
            }),
            Err(_) => None,
        };
        if value.as_deref() == Some("0") {
            tracing::warn!(
                setting,
                "behind a transaction pooler, {setting} is the role's and it is 0 (no bound): run ALTER ROLE <role> SET {setting} = '{}ms' so that a stuck database answers before Okta's deadline",
                wanted.as_millis()
            );
        }
    }
}

/// The row of a statement that always returns one (a count).
fn a_row(
    row: Result<Option<tokio_postgres::Row>, tokio_postgres::Error>,
) -> Result<tokio_postgres::Row, StoreError> {
    row.db()?.ok_or_else(|| {
        StoreError::Unavailable("the database answered no row where one was due".into())
    })
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

// ---------------------------------------------------------------------------------
// The trait

/// Records one job's outcome; returns the rows changed (0 when its lease was lost).
/// `lease_token = $2`: a worker whose lease was taken over (or whose job was replayed)
/// changes nothing. Every outcome adds one attempt (see `claim`).
async fn record_outcome(
    client: &impl Run,
    statements: Statements,
    job: &Job,
    outcome: &JobOutcome,
    now: Millis,
) -> Result<u64, tokio_postgres::Error> {
    let id: sql::Param<'_> = (&job.id, Type::INT8);
    let token: sql::Param<'_> = (&job.lease_token, Type::INT8);
    match outcome {
        JobOutcome::Delivered => {
            statements
                .exec(
                    client,
                    "UPDATE jobs SET state = 'delivered', attempts = attempts + 1,
                         lease_until = NULL, lease_token = NULL, updated_at = $3
                     WHERE id = $1 AND lease_token = $2 AND state = 'pending' RETURNING 1",
                    &[id, token, (&now, Type::INT8)],
                )
                .await
        }
        JobOutcome::Retry { at, error } => statements
            .exec(
                client,
                "UPDATE jobs SET attempts = attempts + 1, next_attempt_at = $3, last_error = $4,
                         lease_until = NULL, lease_token = NULL, updated_at = $5
                     WHERE id = $1 AND lease_token = $2 AND state = 'pending' RETURNING 1",
                &[
                    id,
                    token,
                    (at, Type::INT8),
                    (error, Type::TEXT),
                    (&now, Type::INT8),
                ],
            )
            .await,
        JobOutcome::Dead { error } => {
            statements
                .exec(
                    client,
                    "UPDATE jobs SET state = 'dead', attempts = attempts + 1, last_error = $3,
                         lease_until = NULL, lease_token = NULL, updated_at = $4
                     WHERE id = $1 AND lease_token = $2 AND state = 'pending' RETURNING 1",
                    &[id, token, (error, Type::TEXT), (&now, Type::INT8)],
                )
                .await
        }
    }
}

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
        let rows = self
            .statements
            .rows(
                &client,
                CLAIM_SQL,
                &[
                    (&now, Type::INT8),
                    (&limit, Type::INT8),
                    (&until, Type::INT8),
                    (&token, Type::INT8),
                ],
            )
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
        let changed = record_outcome(&client, self.statements, job, &outcome, now_millis())
            .await
            .db()?;
        if !matches!(outcome, JobOutcome::Retry { .. }) {
            self.adjust_pending(-i64::try_from(changed).unwrap_or(0));
        }
        Ok(())
    }
    /// One transaction for the group: one commit for a whole batch of a line sink,
    /// instead of one per job (the worker's finishes were most of this store's commits
    /// under load). Its statements are pipelined on one connection.
    ///
    /// The commit does not wait for its WAL flush (`synchronous_commit = off`, for this
    /// transaction only): the next acknowledged ingest, or PostgreSQL's WAL writer within
    /// a fraction of a second, flushes it. A finish lost to a crash of the database is
    /// safe, because the claim before it was durable: the job comes back with more claims
    /// than attempts, that is as interrupted, and a sink that can tell (the JSONL file)
    /// skips what it already holds, as after a crash of hookwarden itself.
    async fn finish_all(&self, done: Vec<(&Job, JobOutcome)>) -> Vec<Result<(), StoreError>> {
        let count = done.len();
        let result = async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.db()?;
            tx.batch_execute("SET LOCAL synchronous_commit = off")
                .await
                .db()?;
            let now = now_millis();
            // In id order: two transactions that touch the same jobs (a lease that ran out
            // and was claimed again) then lock them in the same order and cannot deadlock.
            let mut ordered: Vec<&(&Job, JobOutcome)> = done.iter().collect();
            ordered.sort_by_key(|(job, _)| job.id);
            let changed = futures_util::future::try_join_all(
                ordered
                    .iter()
                    .map(|(job, outcome)| record_outcome(&tx, self.statements, job, outcome, now)),
            )
            .await
            .db()?;
            tx.commit().await.db()?;
            let finished: u64 = ordered
                .iter()
                .zip(changed)
                .filter(|((_, outcome), _)| !matches!(outcome, JobOutcome::Retry { .. }))
                .map(|(_, n)| n)
                .sum();
            self.adjust_pending(-i64::try_from(finished).unwrap_or(0));
            Ok(())
        }
        .await;
        vec![result; count]
    }
    async fn job_counts(&self) -> Result<JobCounts, StoreError> {
        self.count_jobs().await
    }
    async fn prune(&self, before: Millis) -> Result<u64, StoreError> {
        let client = self.client().await?;
        // The events and, in the same statement, their jobs (schema version 3 dropped the
        // foreign key that cascaded). Counts the events.
        let chunk =
                "WITH gone AS (
                     DELETE FROM events WHERE (hook, uuid) IN (
                         SELECT e.hook, e.uuid FROM events e
                         WHERE e.received_at < $1
                           AND NOT EXISTS (SELECT 1 FROM jobs j
                                           WHERE j.hook = e.hook AND j.uuid = e.uuid AND j.state <> 'delivered')
                         ORDER BY e.received_at
                         LIMIT $2
                         FOR UPDATE SKIP LOCKED)
                     RETURNING hook, uuid
                 ), jobs_gone AS (
                     DELETE FROM jobs j USING gone WHERE j.hook = gone.hook AND j.uuid = gone.uuid
                 )
                 SELECT COUNT(*) FROM gone";
        let mut total = 0u64;
        loop {
            // Each chunk commits on its own.
            let n: i64 = a_row(
                self.statements
                    .opt(
                        &client,
                        chunk,
                        &[(&before, Type::INT8), (&PRUNE_CHUNK, Type::INT8)],
                    )
                    .await,
            )?
            .try_get(0)
            .db()?;
            let n = u64::try_from(n).unwrap_or(0);
            total += n;
            if n < u64::try_from(PRUNE_CHUNK).unwrap_or(u64::MAX) {
                break;
            }
        }
        // Inline answers past the retention are no use either (their TTL is far shorter).
        self.statements
            .exec(
                &client,
                "DELETE FROM inline_answers WHERE created_at < $1",
                &[(&before, Type::INT8)],
            )
            .await
            .db()?;
        Ok(total)
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
        let rows = self
            .statements
            .rows(
                &client,
                "SELECT uuid FROM events WHERE hook = $1 AND uuid = ANY($2::text[])",
                &[(&hook, Type::TEXT), (&uuids, Type::TEXT_ARRAY)],
            )
            .await
            .db()?;
        rows.iter().map(|r| r.try_get(0).db()).collect()
    }
    async fn cursor(&self, key: &str) -> Result<Option<Millis>, StoreError> {
        let client = self.client().await?;
        let row = self
            .statements
            .opt(
                &client,
                "SELECT at FROM hookwarden_cursors WHERE key = $1",
                &[(&key, Type::TEXT)],
            )
            .await
            .db()?;
        row.map(|r| r.try_get(0).db()).transpose()
    }
    async fn set_cursor(&self, key: &str, at: Millis) -> Result<(), StoreError> {
        let client = self.client().await?;
        self.statements
            .exec(
                &client,
                "INSERT INTO hookwarden_cursors (key, at, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (key) DO UPDATE
                 SET at = GREATEST(hookwarden_cursors.at, excluded.at), updated_at = excluded.updated_at",
                &[(&key, Type::TEXT), (&at, Type::INT8), (&now_millis(), Type::INT8)],
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
        let n = self
            .statements
            .exec(
                &client,
                "INSERT INTO hookwarden_leases (key, owner, until) VALUES ($1, $2, $3)
                 ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, until = excluded.until
                 WHERE hookwarden_leases.owner = excluded.owner OR hookwarden_leases.until < $4
                 RETURNING 1",
                &[
                    (&key, Type::TEXT),
                    (&owner, Type::TEXT),
                    (&until, Type::INT8),
                    (&now, Type::INT8),
                ],
            )
            .await
            .db()?;
        Ok(n == 1)
    }
    async fn release_lease(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        self.statements
            .exec(
                &client,
                "DELETE FROM hookwarden_leases WHERE key = $1 AND owner = $2",
                &[(&key, Type::TEXT), (&owner, Type::TEXT)],
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
        let row = self
            .statements
            .opt(
                &client,
                "SELECT answer FROM inline_answers
                 WHERE hook = $1 AND event_id = $2 AND created_at >= $3",
                &[
                    (&hook, Type::TEXT),
                    (&event_id, Type::TEXT),
                    (&since, Type::INT8),
                ],
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
        self.statements
            .exec(
                &client,
                "INSERT INTO inline_answers (hook, event_id, answer, created_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[
                    (&hook, Type::TEXT),
                    (&event_id, Type::TEXT),
                    (&answer, Type::BYTEA),
                    (&now_millis(), Type::INT8),
                ],
            )
            .await
            .db()?;
        Ok(())
    }
}
