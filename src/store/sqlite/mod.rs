//! The embedded store: SQLite in WAL mode, one writer thread with group commit,
//! reads on their own connections.
//!
//! # Why one writer thread
//!
//! SQLite allows one writer at a time. If every request wrote on its own connection,
//! concurrent deliveries would queue on the database lock (`SQLITE_BUSY`, busy-handler
//! sleeps) and each would pay its own fsync. Instead every write (ingest, claim,
//! finish, replay, prune, the readiness probe) is a [`Cmd`] sent to one thread that
//! owns the write connection. That thread blocks for one command, takes whatever
//! else is already queued, runs it in ONE transaction and commits once: under load,
//! an acknowledgement costs a share of one fsync instead of a whole one, and our own
//! writers never contend. The transaction commits when nothing more is queued and the
//! previous commit has been synced (or at `store.group_commit_max` commands): commands
//! that arrive while the disk syncs join the next commit.
//!
//! Each command runs inside its own `SAVEPOINT`, so a command that fails (bad input,
//! capacity, a constraint) rolls back only itself; the others of the batch still
//! commit. If the `COMMIT` itself fails (disk full, IO error), every command of the
//! batch is answered `Unavailable`: nothing is reported stored that is not durable.
//!
//! # Durability
//!
//! `journal_mode=WAL`, and no answer leaves before the WAL holding its commit is synced
//! to disk: a power loss cannot lose what Okta was told is stored. The service commits
//! with `synchronous=NORMAL` (which does not sync) and a thread of its own syncs the WAL
//! and then answers, while the writer runs the next commands; checkpoints run on
//! another thread. Both keep disk waits off the writer, the one serial stage of every
//! acknowledgement: see [`wal`]. The CLI's connection keeps `synchronous=FULL`.
//!
//! # Readers
//!
//! `list`, `get` and `stats` run on a small pool of read-only (`query_only`)
//! connections from `spawn_blocking`. WAL lets them read a consistent snapshot while
//! the writer commits, so inspection never delays an acknowledgement.
//!
//! # Other processes
//!
//! The `hookwarden events` CLI opens the same file while the service runs (see
//! [`OpenMode::Cli`]). Its writes (replay) change the number of pending jobs behind
//! the service's back; the writer notices through `PRAGMA data_version` (which moves
//! only when *another* connection commits) and recounts.

use super::*;
use crate::config::StoreConfig;
use crate::time::{format_millis, now_millis};
use rusqlite::{params, params_from_iter, Connection, OpenFlags, TransactionBehavior};
use serde_json::value::RawValue;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;
use wal::{Checkpointer, DiskSpace, Responder, WalPolicy, WalSync};

mod wal;

/// Version of the schema below, kept in `PRAGMA user_version`. Bump it with a migration
/// step in [`migrate`] whenever the schema changes.
const SCHEMA_VERSION: i64 = 4;

/// How long a connection waits for a lock held by another process (the CLI next to the
/// service, or the service next to the CLI) before giving up with `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Events deleted per transaction by [`Store::prune`]: a large retention sweep must not
/// hold the writer (and so every acknowledgement) for long.
const PRUNE_CHUNK: u64 = 500;

/// `EventQuery::limit` of 0 means this many.
const DEFAULT_LIST_LIMIT: usize = 50;

/// Page cache of each read connection, in KiB (SQLite's `cache_size`, negative for KiB).
/// Readers count rows for the gauges each second and page through listings: scans that
/// a cache of any affordable size would not hold, and that the kernel's page cache serves.
const READER_CACHE_KIB: i64 = -128;

/// Idle read connections kept open; more are opened when needed and closed afterwards.
const IDLE_READERS: usize = 4;

/// After a checkpoint, the WAL file is truncated to at most this size, so one burst
/// does not leave a huge WAL behind forever. Above the size at which the WAL starts
/// over under load ([`WalPolicy::restart_pages`], 256 MB), so that a restart never
/// truncates (and the next commits grow the file again) in the middle of a burst; the
/// service truncates it to nothing at close.
const WAL_SIZE_LIMIT: i64 = 320 * 1024 * 1024;

/// The schema. `(uuid, hook)` rather than `(hook, uuid)` is the key order so that the
/// key's own index also serves lookups by uuid alone (`get`, `replay <uuid>`), which
/// have no hook; the uniqueness it enforces is the same.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS events (
    uuid        TEXT NOT NULL,
    hook        TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    published   TEXT,
    received_at INTEGER NOT NULL,
    payload     TEXT NOT NULL,
    PRIMARY KEY (uuid, hook)
);
-- list (newest first) and prune (oldest) walk this index.
CREATE INDEX IF NOT EXISTS events_received ON events (received_at);

CREATE TABLE IF NOT EXISTS jobs (
    id              INTEGER PRIMARY KEY,
    uuid            TEXT NOT NULL,
    hook            TEXT NOT NULL,
    sink            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    claims          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    lease_token     INTEGER,
    last_error      TEXT,
    updated_at      INTEGER NOT NULL,
    UNIQUE (uuid, hook, sink),
    FOREIGN KEY (uuid, hook) REFERENCES events (uuid, hook) ON DELETE CASCADE
);
-- claim: due pending jobs, oldest due first. Partial, so delivered jobs cost nothing here.
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (next_attempt_at) WHERE state = 'pending';
-- counts by state (stats, backlog), replay of dead letters (optionally per hook).
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, hook);
";

/// Version 2: System Log reconciliation. Events remember whether reconciliation found
/// them (`recovered`); cursors say where each hook's last pass ended; leases let one
/// process at a time poll (the service next to `hookwarden reconcile` takes none, but
/// the seam is the same as PostgreSQL's, where replicas compete).
const SCHEMA_V2: &str = "
ALTER TABLE events ADD COLUMN recovered INTEGER NOT NULL DEFAULT 0;
CREATE TABLE IF NOT EXISTS cursors (
    key        TEXT PRIMARY KEY,
    at         INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (
    key   TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    until INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Version 3: jobs name their event by its row id instead of by `(uuid, hook)`.
///
/// Why: uuids are random, row ids only grow. Keyed by `(uuid, hook, sink)`, every new
/// job landed at a random place of its key index, so a commit of N events rewrote about
/// N pages of it (and, in a large store, first read them from disk); keyed by
/// `(event, sink)` the new jobs of a commit share the index's last pages. Only the
/// events' own `(uuid, hook)` key, which is what dedupes Okta's retries, stays random.
/// The `(state, hook)` index goes too: pending jobs are counted on `jobs_due`, dead
/// ones on `jobs_dead`, and delivered jobs, nearly all of them, sit in no index but
/// their key. Tables are rebuilt (SQLite cannot change a key in place), keeping every
/// row and row id.
const SCHEMA_V3: &str = "
DROP INDEX IF EXISTS jobs_due;
DROP INDEX IF EXISTS jobs_state;
DROP INDEX IF EXISTS events_received;
ALTER TABLE jobs RENAME TO jobs_v2;
ALTER TABLE events RENAME TO events_v2;
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    uuid        TEXT NOT NULL,
    hook        TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    published   TEXT,
    received_at INTEGER NOT NULL,
    payload     TEXT NOT NULL,
    recovered   INTEGER NOT NULL DEFAULT 0,
    UNIQUE (uuid, hook)
);
CREATE INDEX events_received ON events (received_at);
CREATE TABLE jobs (
    id              INTEGER PRIMARY KEY,
    event           INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    sink            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    claims          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    lease_token     INTEGER,
    last_error      TEXT,
    updated_at      INTEGER NOT NULL,
    UNIQUE (event, sink)
);
-- claim: due pending jobs, oldest due first; also counts the backlog.
CREATE INDEX jobs_due ON jobs (next_attempt_at) WHERE state = 'pending';
-- dead letters: counted (stats) and replayed.
CREATE INDEX jobs_dead ON jobs (event) WHERE state = 'dead';
INSERT INTO events (id, uuid, hook, event_id, event_type, published, received_at, payload, recovered)
    SELECT rowid, uuid, hook, event_id, event_type, published, received_at, payload, recovered
    FROM events_v2 ORDER BY rowid;
INSERT INTO jobs (id, event, sink, state, attempts, claims, next_attempt_at, lease_until,
                  lease_token, last_error, updated_at)
    SELECT j.id, e.rowid, j.sink, j.state, j.attempts, j.claims, j.next_attempt_at,
           j.lease_until, j.lease_token, j.last_error, j.updated_at
    FROM jobs_v2 j JOIN events_v2 e ON e.uuid = j.uuid AND e.hook = j.hook ORDER BY j.id;
DROP TABLE jobs_v2;
DROP TABLE events_v2;
";

/// Version 4: the events' key starts with the hour of the event (`bucket`).
///
/// Why: the `(uuid, hook)` key that dedupes Okta's retries was the last random index.
/// With a million events stored, a commit of N events dirtied N leaves scattered over a
/// file of gigabytes, and the checkpoints that wrote them back stalled the acks (p99
/// 1.6 to 1.7x an empty store's; 0.94x when the load's uuids were sequential, see
/// BENCHMARKS.md). Okta's events arrive minutes after their `published` time, so keyed
/// by `(bucket, uuid, hook)`, with `bucket` the hours since 1970 of `published`, the new
/// events of a commit land among the index's last pages, whatever the store holds.
/// Dedupe is unchanged: Okta's retry of an event carries the same `published`, so the
/// same bucket. The bucket is always `COALESCE(unixepoch(published) / 3600, 0)`,
/// computed by SQLite's own parser of ISO 8601 times (Okta's `2023-03-26T21:05:32.159Z`,
/// with or without fractions or an offset) here, in `ingest` and in `stored_uuids`, so
/// that an event, its retry and the System Log's copy of it always agree; an event
/// without a time SQLite can read goes to bucket 0. A lookup by uuid alone (`get`,
/// `replay <uuid>`) seeks each bucket ([`BUCKETS_CTE`]): one seek per hour held, about
/// 170 with the default retention.
/// Tables are rebuilt as in version 3, keeping every row and row id.
const SCHEMA_V4: &str = "
DROP INDEX IF EXISTS jobs_due;
DROP INDEX IF EXISTS jobs_dead;
DROP INDEX IF EXISTS events_received;
ALTER TABLE jobs RENAME TO jobs_v3;
ALTER TABLE events RENAME TO events_v3;
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    bucket      INTEGER NOT NULL,
    uuid        TEXT NOT NULL,
    hook        TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    published   TEXT,
    received_at INTEGER NOT NULL,
    payload     TEXT NOT NULL,
    recovered   INTEGER NOT NULL DEFAULT 0,
    UNIQUE (bucket, uuid, hook)
);
CREATE INDEX events_received ON events (received_at);
CREATE TABLE jobs (
    id              INTEGER PRIMARY KEY,
    event           INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    sink            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    claims          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    lease_token     INTEGER,
    last_error      TEXT,
    updated_at      INTEGER NOT NULL,
    UNIQUE (event, sink)
);
CREATE INDEX jobs_due ON jobs (next_attempt_at) WHERE state = 'pending';
CREATE INDEX jobs_dead ON jobs (event) WHERE state = 'dead';
INSERT INTO events (id, bucket, uuid, hook, event_id, event_type, published, received_at,
                    payload, recovered)
    SELECT id, COALESCE(unixepoch(published) / 3600, 0), uuid, hook, event_id, event_type,
           published, received_at, payload, recovered
    FROM events_v3 ORDER BY id;
INSERT INTO jobs SELECT * FROM jobs_v3 ORDER BY id;
DROP TABLE jobs_v3;
DROP TABLE events_v3;
";

/// The buckets held, one index seek each: SQLite has no skip scan without statistics,
/// so a lookup by uuid alone walks the distinct buckets itself and seeks the uuid in
/// each (`... FROM buckets CROSS JOIN events e WHERE e.bucket = buckets.b AND e.uuid = ?`).
/// The last row is NULL, which matches nothing.
const BUCKETS_CTE: &str = "WITH RECURSIVE buckets(b) AS (
        SELECT MIN(bucket) FROM events
        UNION ALL
        SELECT (SELECT MIN(bucket) FROM events WHERE bucket > buckets.b)
        FROM buckets WHERE buckets.b IS NOT NULL)";

/// An event's state derived from its jobs, as SQL over the event row `e`
/// (see [`EventState`]: any dead → dead; else any pending → pending; else delivered;
/// no jobs → ignored).
const EVENT_STATE_SQL: &str = "(SELECT CASE
        WHEN COUNT(*) = 0 THEN 'ignored'
        WHEN SUM(j.state = 'dead') > 0 THEN 'dead'
        WHEN SUM(j.state = 'pending') > 0 THEN 'pending'
        ELSE 'delivered' END
    FROM jobs j WHERE j.event = e.id)";

/// Who opens the database; decides what `open` and `close` may do to shared state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// The service: the one process that claims jobs from this file. At open it clears
    /// every lease (a lease still set can only be left over by a crash of the previous
    /// run, and waiting for it to expire would only delay those jobs; their
    /// `claims > attempts` still marks them interrupted). At close it checkpoints and
    /// truncates the WAL.
    Service,
    /// `hookwarden events`, possibly while the service runs on the same file. Leaves
    /// leases alone (they belong to the running service's workers) and does not
    /// truncate the WAL at close (`wal_checkpoint(TRUNCATE)` waits for the service's
    /// writer and readers and would stall its acknowledgements).
    Cli,
}

/// The embedded SQLite store. See the module docs for the design.
pub struct SqliteStore {
    /// Commands to the writer thread; `None` once [`Store::close`] has begun.
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    /// The writer thread, joined by `close`. An async mutex so that a second `close`
    /// waits for the first one to finish instead of returning early.
    writer: tokio::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Arc<Readers>,
    commits: Arc<AtomicU64>,
    /// Makes the WAL syncer's next sync fail (the service only).
    #[cfg(test)]
    fail_sync: Option<Arc<AtomicBool>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` for the service; see [`OpenMode::Service`].
    pub fn open(path: &Path, config: &StoreConfig) -> Result<SqliteStore, StoreError> {
        Self::open_with(path, config, OpenMode::Service)
    }

    /// Opens the database for the `events` CLI, safe next to a running service; see [`OpenMode::Cli`].
    pub fn open_for_cli(path: &Path, config: &StoreConfig) -> Result<SqliteStore, StoreError> {
        Self::open_with(path, config, OpenMode::Cli)
    }

    /// Opens (creating the file, its folder and the schema if needed) the database at `path`.
    pub fn open_with(
        path: &Path,
        config: &StoreConfig,
        mode: OpenMode,
    ) -> Result<SqliteStore, StoreError> {
        Self::open_with_policy(path, config, mode, WalPolicy::DEFAULT)
    }

    fn open_with_policy(
        path: &Path,
        config: &StoreConfig,
        mode: OpenMode,
        wal_policy: WalPolicy,
    ) -> Result<SqliteStore, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let at = |e: rusqlite::Error| {
            StoreError::Unavailable(format!("cannot open the store {}: {e}", path.display()))
        };
        let mut conn = Connection::open(path).map_err(at)?;
        configure_writer(&conn, path, config.page_cache_kib)?;
        migrate(&mut conn, path)?;
        if mode == OpenMode::Service {
            conn.execute(
                "UPDATE jobs SET lease_until = NULL, lease_token = NULL
                 WHERE state = 'pending' AND lease_until IS NOT NULL",
                [],
            )
            .map_err(at)?;
        }
        let pending = count_pending(&conn).map_err(at)?;
        let data_version = data_version(&conn).map_err(at)?;
        // The service keeps its disk waits off the writer thread (see `wal`); the CLI
        // writes a few rows and keeps SQLite's own syncs and checkpoints.
        let (tx, rx) = mpsc::channel();
        let (sync, checkpointer) = match mode {
            OpenMode::Service => {
                let synced = tx.clone();
                let helpers = || {
                    let sync = WalSync::start(path, move |n| {
                        // Fails only once the writer has stopped, when nobody waits.
                        let _ = synced.send(Msg::Synced(n));
                    })?;
                    let checkpointer = Checkpointer::start(path, BUSY_TIMEOUT)?;
                    Ok::<_, std::io::Error>((sync, checkpointer))
                };
                let (sync, checkpointer) = helpers().map_err(|e| {
                    StoreError::Unavailable(format!(
                        "cannot start the store's sync threads for {}: {e}",
                        path.display()
                    ))
                })?;
                conn.pragma_update(None, "synchronous", "NORMAL")
                    .map_err(at)?;
                conn.wal_hook(Some(wal::on_commit));
                let reserve = config.disk_reserve_mib.saturating_mul(1024 * 1024);
                let page_size: u64 = conn
                    .pragma_query_value(None, "page_size", |r| r.get(0))
                    .map_err(at)?;
                (
                    Some(sync),
                    Some((checkpointer, DiskSpace::new(path, page_size, reserve))),
                )
            }
            OpenMode::Cli => (None, None),
        };

        let readers = Arc::new(Readers {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        });
        // Open one reader now: a file we can write but not read should fail here, not later.
        readers.run(|_| Ok(()))?;

        let commits = Arc::new(AtomicU64::new(0));
        #[cfg(test)]
        let fail_sync = sync.as_ref().map(WalSync::fail_switch);
        let writer = Writer {
            conn,
            mode,
            max_batch: config.group_commit_max.max(1),
            max_backlog: config.max_backlog,
            pending,
            data_version,
            commits: commits.clone(),
            sync,
            checkpointer,
            nudged_at: 0,
            wal_policy,
        };
        let handle = std::thread::Builder::new()
            .name("hookwarden-store".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the store writer: {e}")))?;
        Ok(SqliteStore {
            tx: Mutex::new(Some(tx)),
            writer: tokio::sync::Mutex::new(Some(handle)),
            readers,
            commits,
            #[cfg(test)]
            fail_sync,
        })
    }

    /// Transactions committed by the writer since open (each one a group of commands).
    pub fn group_commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Sends a command to the writer thread and waits for its answer (after the commit).
    async fn write<T>(&self, make: impl FnOnce(Reply<T>) -> Cmd) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        {
            let tx = lock(&self.tx);
            let Some(tx) = tx.as_ref() else {
                return Err(StoreError::Closed);
            };
            tx.send(Msg::Cmd(make(reply))).map_err(|_| {
                StoreError::Unavailable("the store writer thread has stopped".into())
            })?;
        }
        answer.await.map_err(|_| {
            StoreError::Unavailable("the store writer thread stopped before answering".into())
        })?
    }

    /// Tells the writer to stop once it has committed what was sent before, and refuses
    /// further writes. A message rather than dropping the sender: the syncer holds a
    /// sender too, so the channel would not close by itself.
    fn stop_writer(&self) {
        if let Some(tx) = lock(&self.tx).take() {
            let _ = tx.send(Msg::Shutdown);
        }
    }

    /// Runs a read on a pooled read connection, off the async threads.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || readers.run(f))
            .await
            .map_err(|e| StoreError::Unavailable(format!("store read task failed: {e}")))?
    }

    /// Runs SQL on the writer connection inside a batch (tests: e.g. `PRAGMA max_page_count`).
    #[cfg(test)]
    async fn exec_for_test(&self, sql: &str) -> Result<(), StoreError> {
        let sql = sql.to_owned();
        self.write(|reply| Cmd::Exec(sql, reply)).await
    }

    /// The first column of the first row of `sql`, on the writer connection (tests).
    #[cfg(test)]
    async fn query_for_test(&self, sql: &str) -> Result<i64, StoreError> {
        let sql = sql.to_owned();
        self.write(|reply| Cmd::QueryI64(sql, reply)).await
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ingest(&self, delivery: Delivery) -> Result<IngestOutcome, StoreError> {
        self.write(|reply| Cmd::Ingest(delivery, reply)).await
    }

    async fn claim(&self, max: usize, lease: Duration) -> Result<Vec<Job>, StoreError> {
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        self.write(|reply| Cmd::Claim {
            max,
            lease_ms,
            reply,
        })
        .await
    }

    async fn finish(&self, job: &Job, outcome: JobOutcome) -> Result<(), StoreError> {
        let (id, token) = (job.id, job.lease_token);
        self.write(|reply| Cmd::Finish {
            id,
            token,
            outcome,
            reply,
        })
        .await
    }

    async fn list(&self, query: &EventQuery) -> Result<Vec<EventSummary>, StoreError> {
        let query = query.clone();
        self.read(move |conn| list_events(conn, &query)).await
    }

    async fn get(&self, uuid: &str) -> Result<Vec<EventDetail>, StoreError> {
        let uuid = uuid.to_owned();
        self.read(move |conn| get_events(conn, &uuid)).await
    }

    async fn stored_uuids(
        &self,
        hook: &str,
        events: &[NewEvent],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let hook = hook.to_owned();
        let keys: Vec<(String, Option<String>)> = events
            .iter()
            .map(|e| (e.uuid.clone(), e.published.clone()))
            .collect();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    // The bucket: see SCHEMA_V4.
                    "SELECT 1 FROM events
                     WHERE bucket = COALESCE(unixepoch(?3) / 3600, 0) AND uuid = ?1 AND hook = ?2",
                )
                .db()?;
            let mut out = std::collections::HashSet::new();
            for (uuid, published) in keys {
                if stmt.exists(params![uuid, hook, published]).db()? {
                    out.insert(uuid);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn cursor(&self, key: &str) -> Result<Option<Millis>, StoreError> {
        let key = key.to_owned();
        self.read(move |conn| {
            use rusqlite::OptionalExtension;
            conn.query_row("SELECT at FROM cursors WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()
            .db()
        })
        .await
    }

    async fn set_cursor(&self, key: &str, at: Millis) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.write(|reply| Cmd::SetCursor { key, at, reply }).await
    }

    async fn try_lease(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, StoreError> {
        let (key, owner) = (key.to_owned(), owner.to_owned());
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        self.write(|reply| Cmd::TryLease {
            key,
            owner,
            ttl_ms,
            reply,
        })
        .await
    }

    async fn release_lease(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        let (key, owner) = (key.to_owned(), owner.to_owned());
        self.write(|reply| Cmd::ReleaseLease { key, owner, reply })
            .await
    }

    async fn replay(&self, target: &ReplayTarget) -> Result<u64, StoreError> {
        let target = target.clone();
        self.write(|reply| Cmd::Replay(target, reply)).await
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        let jobs = self.job_counts().await?;
        let events = self
            .read(|conn| {
                conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
                    .map(count)
                    .db()
            })
            .await?;
        Ok(StoreStats {
            backlog: jobs.backlog,
            dead: jobs.dead,
            events,
        })
    }

    async fn job_counts(&self) -> Result<JobCounts, StoreError> {
        self.read(|conn| {
            conn.query_row(
                "SELECT (SELECT COUNT(*) FROM jobs WHERE state = 'pending'),
                        (SELECT COUNT(*) FROM jobs WHERE state = 'dead')",
                [],
                |r| {
                    Ok(JobCounts {
                        backlog: count(r.get(0)?),
                        dead: count(r.get(1)?),
                    })
                },
            )
            .db()
        })
        .await
    }

    async fn check_writable(&self) -> Result<(), StoreError> {
        self.write(Cmd::CheckWritable).await
    }

    async fn prune(&self, before: Millis) -> Result<u64, StoreError> {
        // One chunk per command: between chunks the writer serves the queued ingests.
        let mut total = 0;
        loop {
            let n = self
                .write(|reply| Cmd::Prune {
                    before,
                    chunk: PRUNE_CHUNK,
                    reply,
                })
                .await?;
            total += n;
            if n < PRUNE_CHUNK {
                return Ok(total);
            }
        }
    }

    async fn close(&self) {
        self.readers.close();
        // The writer commits what is queued, waits for its sync, checkpoints and returns.
        self.stop_writer();
        let mut writer = self.writer.lock().await;
        if let Some(handle) = writer.take() {
            match tokio::task::spawn_blocking(move || handle.join()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => tracing::error!("the store writer thread panicked"),
                Err(e) => tracing::error!(error = %e, "could not wait for the store writer thread"),
            }
        }
    }
}

impl Drop for SqliteStore {
    /// A store dropped without `close` still commits what it was sent and stops its
    /// threads (detached: nobody waits for them here).
    fn drop(&mut self) {
        self.stop_writer();
    }
}

/// Locks a std mutex, ignoring poisoning: the data behind our mutexes (a sender, idle
/// connections) stays valid even if a thread panicked while holding it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every SQLite error is, to callers, the store being unavailable (full disk, IO error,
/// read-only file, lock timeout...): the delivery must not be acknowledged.
trait Db<T> {
    fn db(self) -> Result<T, StoreError>;
}

impl<T> Db<T> for rusqlite::Result<T> {
    fn db(self) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::Unavailable(e.to_string()))
    }
}

/// A SQL count as `u64` (counts are never negative).
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Settings of the write connection; see the module docs for why.
fn configure_writer(conn: &Connection, path: &Path, page_cache_kib: u32) -> Result<(), StoreError> {
    let at = |e: rusqlite::Error| {
        StoreError::Unavailable(format!(
            "cannot configure the store {}: {e}",
            path.display()
        ))
    };
    conn.busy_timeout(BUSY_TIMEOUT).map_err(at)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(at)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(format!(
            "cannot use WAL mode on {} (journal mode stays '{mode}'): the store must be on a local disk",
            path.display()
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(at)?;
    conn.pragma_update(None, "foreign_keys", true).map_err(at)?;
    // Every statement the writer runs stays prepared (the default keeps 16).
    conn.set_prepared_statement_cache_capacity(64);
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
        .map_err(at)?;
    // Negative: a size in KiB rather than in pages.
    conn.pragma_update(None, "cache_size", -i64::from(page_cache_kib))
        .map_err(at)?;
    Ok(())
}

/// Creates the schema, or refuses a file written by a newer version.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let at = |e: rusqlite::Error| {
        StoreError::Unavailable(format!(
            "cannot create the schema in {}: {e}",
            path.display()
        ))
    };
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(at)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Unavailable(format!(
            "{} has schema version {version}, written by a newer hookwarden (this one knows up to {SCHEMA_VERSION})",
            path.display()
        )));
    }
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    if version >= 1 {
        // Versions 3 and 4 rebuild the events and jobs tables: minutes for millions of events,
        // and the WAL holds a copy of them until the next checkpoint.
        tracing::info!(
            store = %path.display(),
            from = version,
            to = SCHEMA_VERSION,
            "migrating the store's schema; a large store takes a while and needs free disk space about its own size"
        );
    }
    // Each step brings the file from the version before it; all in one transaction.
    let create = |conn: &mut Connection| -> rusqlite::Result<()> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Read again under the write lock: another process may have migrated meanwhile.
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version < 1 {
            tx.execute_batch(SCHEMA)?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('created_at', ?1) ON CONFLICT (key) DO NOTHING",
                params![format_millis(now_millis())],
            )?;
        }
        if version < 2 {
            tx.execute_batch(SCHEMA_V2)?;
        }
        if version < 3 {
            tx.execute_batch(SCHEMA_V3)?;
        }
        if version < 4 {
            tx.execute_batch(SCHEMA_V4)?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()
    };
    create(conn).map_err(at)
}

fn count_pending(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT COUNT(*) FROM jobs WHERE state = 'pending'",
        [],
        |r| r.get(0),
    )
    .map(count)
}

fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA data_version", [], |r| r.get(0))
}

// ---------------------------------------------------------------------------------
// Readers

/// A small pool of read connections.
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    closed: AtomicBool,
}

impl Readers {
    fn open_conn(&self) -> rusqlite::Result<Connection> {
        // Read-write flags (no CREATE) plus `query_only`: a WAL reader may need to write
        // the `-shm` index, which a read-only open can refuse; `query_only` keeps it a reader.
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "query_only", true)?;
        // Readers list and count; the kernel's page cache serves their pages as well,
        // and each connection's own cache would otherwise grow to 2 MB of heap.
        conn.pragma_update(None, "cache_size", READER_CACHE_KIB)?;
        Ok(conn)
    }

    /// Runs `f` on an idle connection (or a new one) and puts the connection back.
    fn run<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let conn = match lock(&self.idle).pop() {
            Some(conn) => conn,
            None => self.open_conn().db()?,
        };
        let out = f(&conn);
        let mut idle = lock(&self.idle);
        // Checked under the lock that `close` takes, so no connection outlives `close` in the pool.
        if !self.closed.load(Ordering::Acquire) && idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        out
    }

    fn close(&self) {
        let mut idle = lock(&self.idle);
        self.closed.store(true, Ordering::Release);
        idle.clear();
    }
}

fn parse_job_state(s: &str) -> rusqlite::Result<JobState> {
    JobState::parse(s).ok_or_else(|| bad_value(format!("unknown job state '{s}'")))
}

fn parse_event_state(s: &str) -> rusqlite::Result<EventState> {
    match s {
        "pending" => Ok(EventState::Pending),
        "delivered" => Ok(EventState::Delivered),
        "dead" => Ok(EventState::Dead),
        "ignored" => Ok(EventState::Ignored),
        _ => Err(bad_value(format!("unknown event state '{s}'"))),
    }
}

fn bad_value(msg: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        Box::<dyn std::error::Error + Send + Sync>::from(msg),
    )
}

/// Attempts as stored (an INTEGER) to the `u32` of the API.
fn attempts(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// Translates an event type glob (only `*` is a wildcard) to SQLite `GLOB`, whose other
/// special characters (`?`, `[`) are made literal. `GLOB` rather than `LIKE`: it is
/// case-sensitive, like [`glob_match`](crate::glob::glob_match) and like Okta's event types.
fn sqlite_glob(glob: &str) -> String {
    let mut out = String::with_capacity(glob.len() + 8);
    for c in glob.chars() {
        match c {
            '?' => out.push_str("[?]"),
            '[' => out.push_str("[[]"),
            c => out.push(c),
        }
    }
    out
}

/// Columns 0..=6 of an [`EventSummary`] row; column 7 is the derived state, and the
/// sinks are read separately.
const SUMMARY_COLUMNS: &str =
    "e.hook, e.uuid, e.event_id, e.event_type, e.published, e.received_at, e.recovered";

fn summary_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EventSummary> {
    let state: String = r.get(7)?;
    Ok(EventSummary {
        hook: r.get(0)?,
        uuid: r.get(1)?,
        event_id: r.get(2)?,
        event_type: r.get(3)?,
        published: r.get(4)?,
        received_at: r.get(5)?,
        recovered: r.get(6)?,
        state: parse_event_state(&state)?,
        sinks: Vec::new(),
    })
}

/// The jobs of the event with row id `event`.
fn sinks_of(conn: &Connection, event: i64) -> rusqlite::Result<Vec<SinkStatus>> {
    let mut stmt = conn.prepare_cached(
        "SELECT sink, state, attempts, last_error, next_attempt_at
         FROM jobs WHERE event = ?1 ORDER BY sink",
    )?;
    let rows = stmt.query_map(params![event], |r| {
        let state = parse_job_state(&r.get::<_, String>(1)?)?;
        Ok(SinkStatus {
            sink: r.get(0)?,
            state,
            attempts: attempts(r.get(2)?),
            last_error: r.get(3)?,
            next_attempt_at: if state == JobState::Pending {
                Some(r.get(4)?)
            } else {
                None
            },
        })
    })?;
    rows.collect()
}

fn list_events(conn: &Connection, q: &EventQuery) -> Result<Vec<EventSummary>, StoreError> {
    use rusqlite::types::Value;
    let mut sql =
        format!("SELECT {SUMMARY_COLUMNS}, {EVENT_STATE_SQL}, e.id FROM events e WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    if let Some(hook) = &q.hook {
        sql.push_str(" AND e.hook = ?");
        args.push(Value::Text(hook.clone()));
    }
    if let Some(t) = &q.event_type {
        if t.contains('*') {
            sql.push_str(" AND e.event_type GLOB ?");
            args.push(Value::Text(sqlite_glob(t)));
        } else {
            sql.push_str(" AND e.event_type = ?");
            args.push(Value::Text(t.clone()));
        }
    }
    if let Some(since) = q.since {
        sql.push_str(" AND e.received_at >= ?");
        args.push(Value::Integer(since));
    }
    if let Some(until) = q.until {
        sql.push_str(" AND e.received_at < ?");
        args.push(Value::Integer(until));
    }
    if let Some(state) = q.state {
        sql.push_str(&format!(" AND {EVENT_STATE_SQL} = ?"));
        args.push(Value::Text(state.as_str().to_owned()));
    }
    // The id breaks ties between events of one delivery (same received_at) in arrival order.
    sql.push_str(" ORDER BY e.received_at DESC, e.id DESC LIMIT ?");
    let limit = if q.limit == 0 {
        DEFAULT_LIST_LIMIT
    } else {
        q.limit
    };
    args.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));

    // One snapshot for the events and their sinks.
    let tx = conn.unchecked_transaction().db()?;
    let rows = {
        let mut stmt = tx.prepare(&sql).db()?;
        let rows = stmt
            .query_map(params_from_iter(args.iter()), |r| {
                Ok((summary_from_row(r)?, r.get::<_, i64>(8)?))
            })
            .db()?;
        rows.collect::<rusqlite::Result<Vec<_>>>().db()?
    };
    let mut out = Vec::with_capacity(rows.len());
    for (mut summary, id) in rows {
        summary.sinks = sinks_of(&tx, id).db()?;
        out.push(summary);
    }
    tx.finish().db()?;
    Ok(out)
}

fn get_events(conn: &Connection, uuid: &str) -> Result<Vec<EventDetail>, StoreError> {
    let tx = conn.unchecked_transaction().db()?;
    let rows = {
        let mut stmt = tx
            .prepare(&format!(
                "{BUCKETS_CTE}
                 SELECT {SUMMARY_COLUMNS}, {EVENT_STATE_SQL}, e.payload, e.id
                 FROM buckets CROSS JOIN events e
                 WHERE e.bucket = buckets.b AND e.uuid = ?1 ORDER BY e.hook"
            ))
            .db()?;
        let rows = stmt
            .query_map(params![uuid], |r| {
                Ok((
                    summary_from_row(r)?,
                    r.get::<_, String>(8)?,
                    r.get::<_, i64>(9)?,
                ))
            })
            .db()?;
        rows.collect::<rusqlite::Result<Vec<_>>>().db()?
    };
    let mut out = Vec::with_capacity(rows.len());
    for (mut summary, payload, id) in rows {
        summary.sinks = sinks_of(&tx, id).db()?;
        out.push(EventDetail {
            summary,
            event: raw_json(payload)?,
        });
    }
    tx.finish().db()?;
    Ok(out)
}

/// The stored payload as raw JSON. The handler stores only JSON it parsed, so the
/// fallback (the text as a JSON string) is for a hand-edited database: showing the
/// text beats failing the whole `show`.
fn raw_json(payload: String) -> Result<Box<RawValue>, StoreError> {
    if serde_json::from_str::<&RawValue>(&payload).is_ok() {
        RawValue::from_string(payload)
    } else {
        serde_json::value::to_raw_value(&payload)
    }
    .map_err(|e| StoreError::Unavailable(format!("a stored event payload: {e}")))
}

// ---------------------------------------------------------------------------------
// Writer

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// A write for the writer thread, with where to send its answer.
enum Cmd {
    Ingest(Delivery, Reply<IngestOutcome>),
    Claim {
        max: usize,
        lease_ms: i64,
        reply: Reply<Vec<Job>>,
    },
    Finish {
        id: i64,
        token: i64,
        outcome: JobOutcome,
        reply: Reply<()>,
    },
    Replay(ReplayTarget, Reply<u64>),
    Prune {
        before: Millis,
        chunk: u64,
        reply: Reply<u64>,
    },
    CheckWritable(Reply<()>),
    SetCursor {
        key: String,
        at: Millis,
        reply: Reply<()>,
    },
    TryLease {
        key: String,
        owner: String,
        ttl_ms: i64,
        reply: Reply<bool>,
    },
    ReleaseLease {
        key: String,
        owner: String,
        reply: Reply<()>,
    },
    #[cfg(test)]
    Exec(String, Reply<()>),
    #[cfg(test)]
    QueryI64(String, Reply<i64>),
    #[cfg(test)]
    Sleep(Duration, Reply<()>),
}

/// What the writer thread receives.
enum Msg {
    Cmd(Cmd),
    /// From the syncer: this many commits handed to it are durable now.
    Synced(usize),
    /// From [`Store::close`] (or a drop): commit what came before, then stop.
    Shutdown,
}

impl Cmd {
    /// Answers without running: the transaction could not even start.
    fn reject(self, msg: &str) {
        let e = || StoreError::Unavailable(msg.to_owned());
        match self {
            Cmd::Ingest(_, r) => drop(r.send(Err(e()))),
            Cmd::Claim { reply, .. } => drop(reply.send(Err(e()))),
            Cmd::Finish { reply, .. } => drop(reply.send(Err(e()))),
            Cmd::Replay(_, r) => drop(r.send(Err(e()))),
            Cmd::Prune { reply, .. } => drop(reply.send(Err(e()))),
            Cmd::CheckWritable(r) => drop(r.send(Err(e()))),
            Cmd::SetCursor { reply, .. } | Cmd::ReleaseLease { reply, .. } => {
                drop(reply.send(Err(e())))
            }
            Cmd::TryLease { reply, .. } => drop(reply.send(Err(e()))),
            #[cfg(test)]
            Cmd::Exec(_, r) | Cmd::Sleep(_, r) => drop(r.send(Err(e()))),
            #[cfg(test)]
            Cmd::QueryI64(_, r) => drop(r.send(Err(e()))),
        }
    }
}

fn responder<T: Send + 'static>(reply: Reply<T>, result: Result<T, StoreError>) -> Responder {
    Box::new(move |lost: Option<&str>| {
        let out = match (result, lost) {
            (Ok(_), Some(reason)) => Err(StoreError::Unavailable(reason.to_owned())),
            (result, _) => result,
        };
        // The caller may have given up (timeout); nothing to do then.
        let _ = reply.send(out);
    })
}

/// A command's result and its change to the number of pending jobs.
type Applied<T> = Result<(T, i64), StoreError>;

/// Turns a command's result into its responder and, on success, its pending delta.
fn split<T: Send + 'static>(reply: Reply<T>, applied: Applied<T>) -> (Responder, Option<i64>) {
    match applied {
        Ok((value, delta)) => (responder(reply, Ok(value)), Some(delta)),
        Err(e) => (responder(reply, Err(e)), None),
    }
}

/// The open transaction's commands, answered at its commit.
#[derive(Default)]
struct Open {
    /// Answers of the commands run so far (failed ones included, with their errors).
    done: Vec<Responder>,
    /// Change to the number of pending jobs if this transaction commits.
    delta: i64,
    /// Whether a transaction is open (`done` may hold only failed commands otherwise).
    in_txn: bool,
}

impl Open {
    /// The transaction is gone (rolled back): every answer so far says so with `msg`.
    fn lose(&mut self, msg: &str) {
        self.done.drain(..).for_each(|r| r(Some(msg)));
        self.delta = 0;
        self.in_txn = false;
    }
}

/// The writer thread's state: it alone owns the write connection.
struct Writer {
    conn: Connection,
    mode: OpenMode,
    max_batch: usize,
    max_backlog: u64,
    /// Pending jobs as of the last commit. Kept here so that the capacity check of each
    /// ingest is free; recounted when another process has written (see `data_version`).
    pending: u64,
    /// Last `PRAGMA data_version` seen: it changes only when another connection commits.
    data_version: i64,
    commits: Arc<AtomicU64>,
    /// The service's WAL syncer: commits are answered from there once durable. `None`
    /// for the CLI, whose connection syncs at each commit (`synchronous = FULL`).
    sync: Option<WalSync>,
    /// The service's background checkpoints and the watch on the space the WAL may take
    /// (`None`: SQLite's automatic checkpoints).
    checkpointer: Option<(Checkpointer, DiskSpace)>,
    /// WAL pages when a checkpoint was last asked for (see [`Writer::after_commit`]).
    nudged_at: i32,
    wal_policy: WalPolicy,
}

impl Writer {
    /// The writer's loop. Commands run as they arrive, each in its own savepoint of one
    /// open transaction; the transaction commits when no command is waiting and no
    /// earlier commit is still being synced (or when `max_batch` commands are in it).
    /// While the syncer works, arriving commands thus join the next commit instead of
    /// each making a small one of their own: one commit per sync, and the pages every
    /// commit rewrites (the ends of the indexes) are written once per sync, not once
    /// per command. No command waits longer for it: its answer waits for a sync anyway.
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        let mut open = Open::default();
        // Commits handed to the syncer and not yet reported synced.
        let mut syncing = 0usize;
        loop {
            let msg = if open.done.is_empty() || syncing > 0 {
                match rx.recv() {
                    Ok(msg) => msg,
                    Err(_) => break,
                }
            } else {
                match rx.try_recv() {
                    Ok(msg) => msg,
                    Err(mpsc::TryRecvError::Empty) => {
                        syncing += self.commit(&mut open);
                        continue;
                    }
                    Err(mpsc::TryRecvError::Disconnected) => break,
                }
            };
            match msg {
                Msg::Synced(n) => syncing = syncing.saturating_sub(n),
                Msg::Shutdown => break,
                Msg::Cmd(cmd) => {
                    self.execute(cmd, &mut open);
                    if open.done.len() >= self.max_batch {
                        syncing += self.commit(&mut open);
                    }
                }
            }
        }
        // What was sent before the shutdown is in: commit it; `shutdown` waits for the sync.
        self.commit(&mut open);
        self.shutdown();
    }

    /// Transaction control runs for every command of every batch: from the statement
    /// cache, it is not parsed again each time (`execute_batch` would).
    fn exec_cached(&self, sql: &str) -> rusqlite::Result<()> {
        self.conn.prepare_cached(sql)?.execute([]).map(drop)
    }

    fn begin(&mut self) -> rusqlite::Result<()> {
        self.exec_cached("BEGIN IMMEDIATE")?;
        // Under the write lock now: nobody can change the count while we look at it.
        let version = data_version(&self.conn)?;
        if version != self.data_version {
            self.pending = count_pending(&self.conn)?;
            self.data_version = version;
        }
        Ok(())
    }

    /// Runs one command in its own savepoint of the open transaction (opening it if
    /// needed). Its answer waits in `open` for the commit (and the sync).
    fn execute(&mut self, cmd: Cmd, open: &mut Open) {
        if self.sync.as_ref().is_some_and(WalSync::failed) {
            cmd.reject("the store could not sync its WAL to disk and takes no more writes: restart the service once the disk is fixed");
            return;
        }
        if !open.in_txn {
            if let Err(e) = self.begin() {
                self.rollback();
                cmd.reject(&format!("cannot start a transaction: {e}"));
                return;
            }
            open.in_txn = true;
        }
        if let Err(e) = self.exec_cached("SAVEPOINT cmd") {
            cmd.reject(&e.to_string());
            self.after_failure(open);
            return;
        }
        let pending_now =
            u64::try_from(i64::try_from(self.pending).unwrap_or(i64::MAX) + open.delta)
                .unwrap_or(0);
        let (respond, ok) = self.apply(cmd, pending_now);
        match ok.map(|d| (d, self.exec_cached("RELEASE cmd"))) {
            Some((d, Ok(()))) => {
                open.delta += d;
                open.done.push(respond);
            }
            Some((_, Err(e))) => {
                respond(Some(&e.to_string()));
                self.after_failure(open);
            }
            None => {
                open.done.push(respond);
                self.after_failure(open);
            }
        }
    }

    /// Commits the open transaction and hands its answers to the syncer (the service)
    /// or sends them (the CLI). Returns the number of commits handed to the syncer (0 or 1).
    fn commit(&mut self, open: &mut Open) -> usize {
        let Open {
            done,
            delta,
            in_txn,
        } = std::mem::take(open);
        if !in_txn {
            // Only failed commands can be left: they answer with their own errors.
            done.into_iter().for_each(|r| r(None));
            return 0;
        }
        match self.exec_cached("COMMIT") {
            Ok(()) => {
                self.commits.fetch_add(1, Ordering::Relaxed);
                self.pending = u64::try_from(
                    i64::try_from(self.pending)
                        .unwrap_or(i64::MAX)
                        .saturating_add(delta),
                )
                .unwrap_or(0);
                let handed = match &self.sync {
                    Some(sync) => usize::from(sync.submit(done)),
                    None => {
                        done.into_iter().for_each(|r| r(None));
                        0
                    }
                };
                self.after_commit();
                handed
            }
            Err(e) => {
                tracing::error!(error = %e, commands = done.len(), "store commit failed; the whole batch is answered as not stored");
                self.rollback();
                let msg = format!("commit failed: {e}");
                done.into_iter().for_each(|r| r(Some(&msg)));
                0
            }
        }
    }

    /// Keeps the WAL from growing without end (service only; see `wal`): each time it
    /// has grown by `checkpoint_pages` the checkpointer is asked to copy it back. Past
    /// `restart_pages`, which only a load that never pauses reaches, the checkpointer is
    /// kept busy until it is `restart_slack` pages behind; then the writer copies that
    /// little rest itself, and the next commit starts the WAL over.
    fn after_commit(&mut self) {
        let Some((checkpointer, space)) = &mut self.checkpointer else {
            return;
        };
        let policy = self.wal_policy;
        let pages = wal::pages_after_commit();
        if pages < self.nudged_at {
            self.nudged_at = 0; // the WAL started over
            checkpointer.restarted();
        }
        // Sooner when the disk is short of room (see `DiskSpace`).
        let conn = &self.conn;
        space.refresh(pages, || {
            conn.pragma_query_value(None, "page_count", |r| r.get::<_, u64>(0))
                .ok()
        });
        let restart_at = policy.restart_pages.min(space.wal_limit());
        if pages < restart_at {
            if pages - self.nudged_at >= policy.checkpoint_pages {
                self.nudged_at = pages;
                checkpointer.nudge();
            }
        } else if pages - checkpointer.backfilled() > policy.restart_slack {
            self.nudged_at = pages;
            checkpointer.nudge();
        } else {
            match wal::checkpoint(&self.conn, "PASSIVE") {
                // Done: the next transaction starts the WAL over (unless a reader still
                // holds an old snapshot; then this is tried again after the next commit).
                Ok(Some(_)) => checkpointer.restarted(),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "store checkpoint failed; the WAL keeps the data and it is tried again after the next commit")
                }
            }
        }
    }

    /// After a command failed: undoes its savepoint; `open.in_txn` says whether the
    /// transaction is still open. SQLite may roll back the whole transaction by itself on
    /// some errors (IO error, disk full); then every earlier command of the batch is lost
    /// too and is answered so, and the next command starts a new transaction.
    fn after_failure(&mut self, open: &mut Open) {
        if self.conn.is_autocommit() {
            let msg = "the transaction was rolled back by SQLite after an error in the same batch";
            tracing::error!("{msg}");
            open.lose(msg);
            return;
        }
        if let Err(e) = self.conn.execute_batch("ROLLBACK TO cmd; RELEASE cmd") {
            // Cannot isolate the failure: give the whole transaction up.
            let msg = format!("cannot roll back a failed command: {e}");
            tracing::error!("{msg}");
            self.rollback();
            open.lose(&msg);
        }
    }

    /// Gives the open transaction up after a failure, and asks for a checkpoint: the
    /// usual failure is a full disk, from which only a completed checkpoint recovers
    /// (see [`Checkpointer::nudge`]). Every retried write asks again, so recovery
    /// follows the space coming back, not the next 1,000 pages of a WAL that cannot grow.
    fn rollback(&mut self) {
        if !self.conn.is_autocommit() {
            if let Err(e) = self.conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %e, "store rollback failed");
            }
        }
        if let Some((checkpointer, _)) = &self.checkpointer {
            checkpointer.nudge();
        }
    }

    fn apply(&mut self, cmd: Cmd, pending_now: u64) -> (Responder, Option<i64>) {
        let conn = &self.conn;
        match cmd {
            Cmd::Ingest(delivery, reply) => {
                let capacity = Capacity {
                    pending_now,
                    max_backlog: self.max_backlog,
                    disk_low: self.checkpointer.as_ref().and_then(|(_, space)| space.low()),
                };
                split(reply, ingest(conn, &delivery, capacity))
            }
            Cmd::Claim {
                max,
                lease_ms,
                reply,
            } => split(reply, claim(conn, max, lease_ms)),
            Cmd::Finish {
                id,
                token,
                outcome,
                reply,
            } => split(reply, finish(conn, id, token, outcome)),
            Cmd::Replay(target, reply) => split(reply, replay(conn, &target)),
            Cmd::Prune {
                before,
                chunk,
                reply,
            } => split(reply, prune_chunk(conn, before, chunk)),
            Cmd::CheckWritable(reply) => split(
                reply,
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('writable_at', ?1)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    params![format_millis(now_millis())],
                )
                .map(|_| ((), 0))
                .db(),
            ),
            Cmd::SetCursor { key, at, reply } => split(
                reply,
                conn.execute(
                    "INSERT INTO cursors (key, at, updated_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (key) DO UPDATE SET at = MAX(at, excluded.at), updated_at = excluded.updated_at",
                    params![key, at, now_millis()],
                )
                .map(|_| ((), 0))
                .db(),
            ),
            Cmd::TryLease {
                key,
                owner,
                ttl_ms,
                reply,
            } => {
                let now = now_millis();
                split(
                    reply,
                    conn.execute(
                        "INSERT INTO leases (key, owner, until) VALUES (?1, ?2, ?3)
                         ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, until = excluded.until
                         WHERE leases.owner = excluded.owner OR leases.until < ?4",
                        params![key, owner, now.saturating_add(ttl_ms), now],
                    )
                    .map(|n| (n == 1, 0))
                    .db(),
                )
            }
            Cmd::ReleaseLease { key, owner, reply } => split(
                reply,
                conn.execute(
                    "DELETE FROM leases WHERE key = ?1 AND owner = ?2",
                    params![key, owner],
                )
                .map(|_| ((), 0))
                .db(),
            ),
            #[cfg(test)]
            Cmd::Exec(sql, reply) => split(reply, conn.execute_batch(&sql).map(|_| ((), 0)).db()),
            #[cfg(test)]
            Cmd::QueryI64(sql, reply) => split(
                reply,
                conn.query_row(&sql, [], |r| r.get(0)).map(|v| (v, 0)).db(),
            ),
            #[cfg(test)]
            Cmd::Sleep(d, reply) => {
                std::thread::sleep(d);
                split(reply, Ok(((), 0)))
            }
        }
    }

    fn shutdown(mut self) {
        self.rollback();
        // Answer what is still waiting for its sync, and close the checkpoint
        // connection so that the writer's is the last one (it may then delete the WAL).
        if let Some(mut sync) = self.sync.take() {
            sync.stop();
        }
        if let Some((mut checkpointer, _)) = self.checkpointer.take() {
            checkpointer.stop();
        }
        if self.mode == OpenMode::Service {
            match self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    r.get::<_, i64>(0)
                }) {
                Ok(0) => {}
                Ok(_) => {
                    tracing::info!("store checkpoint at close was incomplete: a reader was busy")
                }
                Err(e) => tracing::warn!(error = %e, "store checkpoint at close failed"),
            }
        }
        if let Err((_, e)) = self.conn.close() {
            tracing::warn!(error = %e, "closing the store failed");
        }
    }
}

/// What an ingest that adds work must fit in.
struct Capacity {
    /// Jobs waiting, with this batch's earlier commands.
    pending_now: u64,
    max_backlog: u64,
    /// Free bytes on the store's disk, when under the reserve (see `wal::DiskSpace`).
    disk_low: Option<u64>,
}

fn ingest(conn: &Connection, d: &Delivery, capacity: Capacity) -> Applied<IngestOutcome> {
    let now = now_millis();
    let mut event = conn
        .prepare_cached(
            // The bucket: see SCHEMA_V4.
            "INSERT INTO events (bucket, uuid, hook, event_id, event_type, published, received_at, payload, recovered)
             VALUES (COALESCE(unixepoch(?5) / 3600, 0), ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT DO NOTHING",
        )
        .db()?;
    let mut job = conn
        .prepare_cached(
            "INSERT INTO jobs (event, sink, state, attempts, claims, next_attempt_at, updated_at)
             VALUES (?1, ?2, 'pending', 0, 0, ?3, ?3) ON CONFLICT DO NOTHING",
        )
        .db()?;
    let mut outcome = IngestOutcome::default();
    let mut added = 0i64;
    for e in &d.events {
        let inserted = event
            .execute(params![
                e.uuid,
                d.hook,
                d.event_id,
                e.event_type,
                e.published,
                d.received_at,
                e.payload,
                d.recovered
            ])
            .db()?;
        if inserted == 0 {
            outcome.duplicates += 1;
            continue;
        }
        outcome.stored += 1;
        let id = conn.last_insert_rowid();
        for sink in &e.sinks {
            // DO NOTHING: a sink listed twice gets one job.
            added += job.execute(params![id, sink, now]).db()? as i64;
        }
    }
    // Checked after the inserts, so that a delivery of events already stored (Okta's
    // retry) is still acknowledged when the backlog is full: it adds no work. When it does
    // add work, the error rolls this command's savepoint back and nothing of it stays.
    // One delivery may take the backlog somewhat past the limit, which is fine: the limit
    // protects the disk, it is not an exact quota.
    if added > 0 {
        if let Some(free) = capacity.disk_low {
            return Err(StoreError::DiskLow(free));
        }
        if capacity.pending_now >= capacity.max_backlog {
            return Err(StoreError::Full(capacity.pending_now));
        }
    }
    Ok((outcome, added))
}

/// `INDEXED BY jobs_due`: it gives the due jobs in order, so a claim reads only the jobs
/// it takes. Schema version 2 had an index on `(state, hook)` that the planner, without
/// statistics, preferred (then sorted every pending job); pinning the index keeps a
/// future index from doing the same, and fails loudly if `jobs_due` were ever lost.
const CLAIM_SQL: &str = "
    SELECT j.id, e.hook, j.sink, e.uuid, j.attempts, j.claims,
           e.event_id, e.event_type, e.received_at, e.payload, e.recovered
    FROM jobs j INDEXED BY jobs_due JOIN events e ON e.id = j.event
    WHERE j.state = 'pending' AND j.next_attempt_at <= ?1
      AND (j.lease_until IS NULL OR j.lease_until < ?1)
    ORDER BY j.next_attempt_at, j.id
    LIMIT ?2";

fn claim(conn: &Connection, max: usize, lease_ms: i64) -> Applied<Vec<Job>> {
    if max == 0 {
        return Ok((Vec::new(), 0));
    }
    let now = now_millis();
    let until = now.saturating_add(lease_ms);
    let mut jobs = {
        let mut stmt = conn.prepare_cached(CLAIM_SQL).db()?;
        let rows = stmt
            .query_map(params![now, i64::try_from(max).unwrap_or(i64::MAX)], |r| {
                let attempts_made: i64 = r.get(4)?;
                let claims: i64 = r.get(5)?;
                Ok(Job {
                    id: r.get(0)?,
                    lease_token: 0,
                    hook: r.get(1)?,
                    sink: r.get(2)?,
                    uuid: r.get(3)?,
                    event_id: r.get(6)?,
                    event_type: r.get(7)?,
                    received_at: r.get(8)?,
                    attempts: attempts(attempts_made),
                    // Every finished claim adds one attempt, so more claims than
                    // attempts means a claim ended without an outcome.
                    interrupted: claims > attempts_made,
                    recovered: r.get(10)?,
                    payload: r.get(9)?,
                })
            })
            .db()?;
        rows.collect::<rusqlite::Result<Vec<_>>>().db()?
    };
    let mut lease = conn
        .prepare_cached(
            "UPDATE jobs SET lease_until = ?2, lease_token = ?3, claims = claims + 1, updated_at = ?4
             WHERE id = ?1",
        )
        .db()?;
    for job in &mut jobs {
        job.lease_token = fastrand::i64(..);
        lease
            .execute(params![job.id, until, job.lease_token, now])
            .db()?;
    }
    Ok((jobs, 0))
}

fn finish(conn: &Connection, id: i64, token: i64, outcome: JobOutcome) -> Applied<()> {
    let now = now_millis();
    // `lease_token = ?2`: a worker whose lease expired and was taken over (or whose job
    // was replayed) changes nothing. Every outcome adds one attempt (see `claim`).
    // Cached: a finish comes with every delivered event, so preparing it each time was
    // a visible share of the writer's CPU (SQLite's parser) under load.
    let changed = match &outcome {
        JobOutcome::Delivered => conn
            .prepare_cached(
                "UPDATE jobs SET state = 'delivered', attempts = attempts + 1,
                     lease_until = NULL, lease_token = NULL, updated_at = ?3
                 WHERE id = ?1 AND lease_token = ?2 AND state = 'pending'",
            )
            .and_then(|mut s| s.execute(params![id, token, now])),
        JobOutcome::Retry { at, error } => conn
            .prepare_cached(
                "UPDATE jobs SET attempts = attempts + 1, next_attempt_at = ?3, last_error = ?4,
                     lease_until = NULL, lease_token = NULL, updated_at = ?5
                 WHERE id = ?1 AND lease_token = ?2 AND state = 'pending'",
            )
            .and_then(|mut s| s.execute(params![id, token, at, error, now])),
        JobOutcome::Dead { error } => conn
            .prepare_cached(
                "UPDATE jobs SET state = 'dead', attempts = attempts + 1, last_error = ?3,
                     lease_until = NULL, lease_token = NULL, updated_at = ?4
                 WHERE id = ?1 AND lease_token = ?2 AND state = 'pending'",
            )
            .and_then(|mut s| s.execute(params![id, token, error, now])),
    }
    .db()?;
    let delta = match outcome {
        JobOutcome::Retry { .. } => 0,
        JobOutcome::Delivered | JobOutcome::Dead { .. } => -(changed as i64),
    };
    Ok(((), delta))
}

fn replay(conn: &Connection, target: &ReplayTarget) -> Applied<u64> {
    let now = now_millis();
    const SET: &str = "UPDATE jobs SET state = 'pending', next_attempt_at = ?1,
        lease_until = NULL, lease_token = NULL, updated_at = ?1";
    match target {
        ReplayTarget::Event { uuid, hook } => {
            // Jobs not pending yet become pending: that is the change to the backlog.
            // The events' ids first (one seek per bucket, see BUCKETS_CTE), then their jobs.
            let ids: Vec<i64> = {
                let mut stmt = conn
                    .prepare_cached(&format!(
                        "{BUCKETS_CTE}
                         SELECT e.id FROM buckets CROSS JOIN events e
                         WHERE e.bucket = buckets.b AND e.uuid = ?1 AND (?2 IS NULL OR e.hook = ?2)"
                    ))
                    .db()?;
                let rows = stmt.query_map(params![uuid, hook], |r| r.get(0)).db()?;
                rows.collect::<rusqlite::Result<_>>().db()?
            };
            let mut count = conn
                .prepare_cached("SELECT COUNT(*) FROM jobs WHERE event = ?1 AND state <> 'pending'")
                .db()?;
            let mut update = conn
                .prepare_cached(&format!("{SET} WHERE event = ?2"))
                .db()?;
            let (mut revived, mut n) = (0i64, 0usize);
            for id in ids {
                revived += count.query_row(params![id], |r| r.get::<_, i64>(0)).db()?;
                n += update.execute(params![now, id]).db()?;
            }
            Ok((n as u64, revived))
        }
        ReplayTarget::AllDead { hook } => {
            let n = match hook {
                Some(hook) => conn.execute(
                    &format!(
                        "{SET} WHERE state = 'dead'
                           AND (SELECT hook FROM events WHERE id = jobs.event) = ?2"
                    ),
                    params![now, hook],
                ),
                None => conn.execute(&format!("{SET} WHERE state = 'dead'"), params![now]),
            }
            .db()?;
            Ok((n as u64, n as i64))
        }
    }
}

fn prune_chunk(conn: &Connection, before: Millis, chunk: u64) -> Applied<u64> {
    // Jobs go with their event (ON DELETE CASCADE). Only events with nothing left to do:
    // every job delivered, or no job at all.
    let n = conn
        .execute(
            "DELETE FROM events WHERE id IN (
                 SELECT e.id FROM events e
                 WHERE e.received_at < ?1
                   AND NOT EXISTS (SELECT 1 FROM jobs j
                                   WHERE j.event = e.id AND j.state <> 'delivered')
                 ORDER BY e.received_at
                 LIMIT ?2)",
            params![before, i64::try_from(chunk).unwrap_or(i64::MAX)],
        )
        .db()?;
    Ok((n as u64, 0))
}

#[cfg(test)]
mod tests {
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
        SqliteStore::open(&dir.path().join("sub/hookwarden.db"), &config(max_backlog))
            .expect("open")
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
        assert_eq!(store.job_counts().await.expect("counts").backlog, 3);
        let one = ReplayTarget::Event {
            uuid: "d".into(),
            hook: Some("okta".into()),
        };
        assert_eq!(store.replay(&one).await.expect("replay"), 1);
        assert_eq!(store.job_counts().await.expect("counts").backlog, 4);
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
}
