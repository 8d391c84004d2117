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

use super::rows::{attempts, count, raw_json, CountRow};
use super::*;
use crate::config::StoreConfig;
use crate::time::{format_millis, now_millis};
use rusqlite::{params, params_from_iter, Connection, OpenFlags, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;
use wal::{Checkpointer, DiskSpace, Responder, WalPolicy, WalSync};

mod reader;
mod schema;
#[cfg(test)]
mod tests;
mod wal;
mod writer;

use reader::*;
use schema::*;
use writer::*;

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Events deleted per transaction by [`Queue::prune`]: a large retention sweep must not
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
            crate::files::create_private_folder(parent).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let at = |e: rusqlite::Error| {
            StoreError::Unavailable(format!("cannot open the store {}: {e}", path.display()))
        };
        // Events hold personal data: a new store is for hookwarden's user alone (SQLite
        // gives its -wal and -shm files the database file's mode). An existing file keeps
        // the mode its owner gave it.
        {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| {
                    StoreError::Unavailable(format!(
                        "cannot open the store {}: {e}",
                        path.display()
                    ))
                })?;
        }
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
impl Queue for SqliteStore {
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
    async fn job_counts(&self) -> Result<JobCounts, StoreError> {
        self.read(|conn| job_counts(conn).db()).await
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
}

#[async_trait]
impl Inspect for SqliteStore {
    async fn list(&self, query: &EventQuery) -> Result<Vec<EventSummary>, StoreError> {
        let query = query.clone();
        self.read(move |conn| list_events(conn, &query)).await
    }
    async fn get(&self, uuid: &str) -> Result<Vec<EventDetail>, StoreError> {
        let uuid = uuid.to_owned();
        self.read(move |conn| get_events(conn, &uuid)).await
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
            backlog: jobs.backlog(),
            dead: jobs.dead(),
            events,
        })
    }
}

#[async_trait]
impl Leases for SqliteStore {
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
}

#[async_trait]
impl Store for SqliteStore {
    async fn check_writable(&self) -> Result<(), StoreError> {
        self.write(Cmd::CheckWritable).await
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
