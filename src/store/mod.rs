//! Durable storage of received events and of their per-sink deliveries.
//!
//! The store is what makes an acknowledgement safe: the delivery handler answers
//! Okta only after [`Queue::ingest`] has returned, and `ingest` returns only after
//! the events are durable. Everything after that (sinks, retries, dead letters)
//! reads its work from the store, so RAM never holds the backlog.
//!
//! Model: an *event* is one System Log event received by one hook, unique by
//! `(hook, uuid)` (two hooks subscribed to the same type both get it; the embedded
//! store puts the hour of the event's `published` time in front of that key, see
//! `sqlite::schema::SCHEMA_V4`, which Okta's retry of an event repeats). Each event
//! fans out at ingest into one *job* per sink whose filters accept it. A job is
//! `pending` until a worker delivers it (`delivered`) or gives up (`dead`);
//! replay turns `dead` back into `pending`.

pub mod postgres;
mod rows;
pub mod sqlite;

use crate::config::{Config, StoreBackend};
use async_trait::async_trait;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

pub use crate::time::Millis;

/// One event of an Okta delivery, ready to store.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The System Log event's `uuid`: the dedupe key within a hook.
    pub uuid: String,
    pub event_type: String,
    /// The event's `published` time as Okta wrote it, when present.
    pub published: Option<String>,
    /// The event's JSON exactly as Okta sent it.
    pub payload: String,
    /// Sinks of the hook that must receive it (filters and actor block-list applied).
    /// Empty: stored for dedupe and inspection only (state `ignored`).
    pub sinks: Vec<String>,
}

/// One POST from Okta.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub hook: String,
    /// The envelope's `eventId` (one per POST, not per event).
    pub event_id: String,
    pub received_at: Millis,
    pub events: Vec<NewEvent>,
    /// Found by System Log reconciliation, not delivered by Okta's event hook: the
    /// events are marked as recovered (see [`crate::reconcile`]).
    pub recovered: bool,
}

/// What [`Queue::ingest`] did with a delivery.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Events stored for the first time.
    pub stored: usize,
    /// Events already stored before (an Okta retry or duplicate).
    pub duplicates: usize,
}

/// A delivery of one event to one sink, claimed by a worker.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    /// Must be given back to [`Queue::finish`]; a stale worker whose lease was taken over cannot finish the job.
    pub lease_token: i64,
    pub hook: String,
    pub sink: String,
    pub uuid: String,
    pub event_id: String,
    pub event_type: String,
    pub received_at: Millis,
    /// Attempts already made (0 on the first claim).
    pub attempts: u32,
    /// A previous claim ended without an outcome (crash, kill): the sink may already have it.
    pub interrupted: bool,
    /// The event was found by System Log reconciliation, not delivered by Okta's hook.
    pub recovered: bool,
    pub payload: String,
}

/// What happened to a job's attempt.
#[derive(Debug, Clone)]
pub enum JobOutcome {
    Delivered,
    /// Failed; try again at the given time.
    Retry {
        at: Millis,
        error: String,
    },
    /// Failed for the last time: dead letter.
    Dead {
        error: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Pending,
    Delivered,
    Dead,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Delivered => "delivered",
            JobState::Dead => "dead",
        }
    }
    pub fn parse(s: &str) -> Option<JobState> {
        match s {
            "pending" => Some(JobState::Pending),
            "delivered" => Some(JobState::Delivered),
            "dead" => Some(JobState::Dead),
            _ => None,
        }
    }
}

/// An event's state, derived from its jobs: any dead → `dead`; else any pending →
/// `pending`; else all delivered → `delivered`; no jobs at all → `ignored`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventState {
    Pending,
    Delivered,
    Dead,
    Ignored,
}

impl EventState {
    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Pending => "pending",
            EventState::Delivered => "delivered",
            EventState::Dead => "dead",
            EventState::Ignored => "ignored",
        }
    }
}

/// Filters of `hookwarden events list`; all optional and combined with AND.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub hook: Option<String>,
    pub state: Option<EventState>,
    /// Exact event type, or a glob with `*` (e.g. `user.lifecycle.*`).
    pub event_type: Option<String>,
    /// Received at or after.
    pub since: Option<Millis>,
    /// Received before.
    pub until: Option<Millis>,
    /// Newest first, at most this many.
    pub limit: usize,
}

/// One sink's view of an event.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SinkStatus {
    pub sink: String,
    pub state: JobState,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// When the next attempt is due (pending jobs); shown as RFC 3339.
    #[serde(serialize_with = "crate::time::serialize_rfc3339_opt")]
    pub next_attempt_at: Option<Millis>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSummary {
    pub hook: String,
    pub uuid: String,
    pub event_id: String,
    pub event_type: String,
    pub published: Option<String>,
    /// Shown as RFC 3339, like every time an operator reads.
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    pub received_at: Millis,
    /// Found by System Log reconciliation, not delivered by Okta's hook.
    pub recovered: bool,
    pub state: EventState,
    pub sinks: Vec<SinkStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventDetail {
    #[serde(flatten)]
    pub summary: EventSummary,
    /// The event as Okta sent it.
    pub event: Box<serde_json::value::RawValue>,
}

/// What `replay` puts back to `pending`.
#[derive(Debug, Clone)]
pub enum ReplayTarget {
    /// Every job of the event(s) with this uuid, whatever their state (also re-sends delivered ones).
    Event { uuid: String, hook: Option<String> },
    /// Every dead job, optionally of one hook only.
    AllDead { hook: Option<String> },
}

/// What the store holds for one sink of one hook: what its gauges show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkJobs {
    pub hook: String,
    pub sink: String,
    /// Jobs waiting for the sink (pending).
    pub backlog: u64,
    /// Jobs dead-lettered.
    pub dead: u64,
    /// When the event of the longest-waiting pending job was received (the first
    /// stored, so a replayed dead letter counts from its first arrival); `None` when
    /// nothing is pending.
    pub oldest_pending: Option<Millis>,
}

/// The jobs' counts that the gauges show, per hook and sink: one entry for each pair
/// that holds a pending or dead job (a sink with neither is absent), in name order.
///
/// Both read every pending and dead job (SQLite: with its event, where the hook is), so
/// the cost grows with the backlog: milliseconds for thousands; for 0.8 million pending,
/// about 1.3 s on SQLite and 0.25 s on PostgreSQL (a parallel scan of the jobs), against
/// 0.08 s and 0.1 s for the totals alone (measured with the sqlite3 shell and psql on a
/// million events). The worker reads it off its own loop and less often as it grows
/// (`worker::refresh_gauges`), never per request.
#[derive(Debug, Clone, Default)]
pub struct JobCounts {
    pub sinks: Vec<SinkJobs>,
}

impl JobCounts {
    /// Jobs waiting for a sink, over every hook and sink.
    pub fn backlog(&self) -> u64 {
        self.sinks.iter().map(|s| s.backlog).sum()
    }

    /// Jobs dead-lettered, over every hook and sink.
    pub fn dead(&self) -> u64 {
        self.sinks.iter().map(|s| s.dead).sum()
    }
}

/// Counts for the admin page: [`JobCounts`] and the events held, which is a scan of
/// every event (tens of ms at a million), so only a person's request asks for it.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StoreStats {
    /// Jobs waiting for a sink (pending).
    pub backlog: u64,
    /// Jobs dead-lettered.
    pub dead: u64,
    /// Events held.
    pub events: u64,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The configured capacity (`store.max_backlog`) is reached.
    #[error("the store is full: {0} events wait for a sink (store.max_backlog)")]
    Full(u64),
    /// The store's disk has less free space than `store.disk_reserve_mib`: no new events
    /// are taken, so that what is stored can still be delivered.
    #[error("the store's disk is almost full: {} MiB left (store.disk_reserve_mib)", .0 / (1024 * 1024))]
    DiskLow(u64),
    /// The disk or database refused the write (IO error, disk full, locked...).
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The store is shutting down.
    #[error("the store is closed")]
    Closed,
}

/// Who opens the store, which decides how the embedded store is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenFor {
    /// The service: takes the store over (clears the leases a previous run left, runs
    /// the WAL's checkpoints).
    Service,
    /// A command next to a running service (`hookwarden events`, `hookwarden reconcile`):
    /// the SQLite store must exist already and is opened with
    /// [`SqliteStore::open_for_cli`](sqlite::SqliteStore::open_for_cli), which leaves
    /// the service's leases and WAL alone. PostgreSQL is shared by design either way.
    Cli,
}

/// The configured store. `shared` is set for PostgreSQL, which replicas also use to share
/// the inline hooks' idempotent answers.
pub struct OpenedStore {
    pub store: Arc<dyn Store>,
    pub shared: Option<Arc<dyn AnswerStore>>,
}

/// Opens the configured store: SQLite on this node, or PostgreSQL shared by replicas.
pub async fn open(config: &Config, by: OpenFor) -> Result<OpenedStore, StoreError> {
    match (config.store.backend, &config.store.postgres) {
        (StoreBackend::Postgres, Some(pg)) => {
            let pg = Arc::new(postgres::PostgresStore::connect(pg, &config.store).await?);
            Ok(OpenedStore {
                store: pg.clone(),
                shared: Some(pg),
            })
        }
        (StoreBackend::Postgres, None) => Err(StoreError::Unavailable(
            "store.postgres is missing".to_owned(),
        )),
        (StoreBackend::Sqlite, _) => {
            let path = config.store_path();
            let store = match by {
                OpenFor::Service => sqlite::SqliteStore::open(&path, &config.store)?,
                OpenFor::Cli => {
                    if !path.exists() {
                        return Err(StoreError::Unavailable(format!(
                            "no store at {}: has the service run with this configuration (server.data_dir, store.path)?",
                            path.display()
                        )));
                    }
                    sqlite::SqliteStore::open_for_cli(&path, &config.store)?
                }
            };
            Ok(OpenedStore {
                store: Arc::new(store),
                shared: None,
            })
        }
    }
}

/// The storage seam, split by role. Both backends implement every role but
/// [`AnswerStore`], which only PostgreSQL has; [`Store`] gathers the roles the service
/// hands around as one `Arc<dyn Store>`.
///
/// Ingest and the work queue: what the delivery handler ([`crate::event_hooks`]) and the
/// workers ([`crate::worker`]) use.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Stores a delivery's events and their jobs. Returns only when durable (or with an error,
    /// in which case nothing of the delivery may be acknowledged).
    async fn ingest(&self, delivery: Delivery) -> Result<IngestOutcome, StoreError>;

    /// Claims up to `max` pending jobs that are due and not leased, leasing them for `lease`.
    async fn claim(&self, max: usize, lease: Duration) -> Result<Vec<Job>, StoreError>;

    /// Records the outcome of a claimed job. Ignored when the lease was lost to another worker.
    async fn finish(&self, job: &Job, outcome: JobOutcome) -> Result<(), StoreError>;

    /// Records the outcomes of a group of jobs delivered together, one result per job in
    /// order. By default each is a [`finish`](Queue::finish) of its own, all at once (the
    /// embedded store's writer gives them one commit anyway); a store whose every commit
    /// is a round trip and a disk sync records them in one transaction.
    async fn finish_all(&self, done: Vec<(&Job, JobOutcome)>) -> Vec<Result<(), StoreError>> {
        futures_util::future::join_all(
            done.into_iter()
                .map(|(job, outcome)| self.finish(job, outcome)),
        )
        .await
    }

    /// The backlog, the oldest pending job and the dead letters of each hook's sinks
    /// (the metrics' gauges): see [`JobCounts`], and its cost.
    async fn job_counts(&self) -> Result<JobCounts, StoreError>;

    /// Deletes events received before `before` whose jobs are all finished (delivered or ignored).
    async fn prune(&self, before: Millis) -> Result<u64, StoreError>;
}

/// Inspection: what the admin endpoints and page and `hookwarden events` use.
#[async_trait]
pub trait Inspect: Send + Sync + 'static {
    async fn list(&self, query: &EventQuery) -> Result<Vec<EventSummary>, StoreError>;

    /// Every hook's event with this uuid (usually one).
    async fn get(&self, uuid: &str) -> Result<Vec<EventDetail>, StoreError>;

    /// Puts jobs back to pending, due now; returns how many.
    async fn replay(&self, target: &ReplayTarget) -> Result<u64, StoreError>;

    async fn stats(&self) -> Result<StoreStats, StoreError>;
}

/// System Log reconciliation's cursors and leases (see [`crate::reconcile`]).
///
/// Default bodies refuse, so that a store written for tests needs none of these; both
/// real stores implement them all.
#[async_trait]
pub trait Leases: Send + Sync + 'static {
    /// The uuids of those of `events` that `hook` already holds (a dry run's "already
    /// stored"). Events, not uuids: the embedded store finds an event by its uuid and
    /// its `published` time together.
    async fn stored_uuids(
        &self,
        _hook: &str,
        _events: &[NewEvent],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        Err(unsupported("stored_uuids"))
    }

    /// The persisted cursor `key` (reconciliation: where the last pass of a hook ended).
    async fn cursor(&self, _key: &str) -> Result<Option<Millis>, StoreError> {
        Err(unsupported("cursor"))
    }

    /// Sets the cursor `key` (never moves it backwards).
    async fn set_cursor(&self, _key: &str, _at: Millis) -> Result<(), StoreError> {
        Err(unsupported("set_cursor"))
    }

    /// Takes or renews the lease `key` for `owner` until `ttl` from now. True when `owner`
    /// holds it now: it was free, expired, or already `owner`'s. Replicas sharing a store
    /// use it so that only one of them polls Okta at a time.
    async fn try_lease(
        &self,
        _key: &str,
        _owner: &str,
        _ttl: Duration,
    ) -> Result<bool, StoreError> {
        Err(unsupported("try_lease"))
    }

    /// Gives the lease `key` up if `owner` holds it (at shutdown: another replica takes
    /// over at once instead of after the lease expires).
    async fn release_lease(&self, _key: &str, _owner: &str) -> Result<(), StoreError> {
        Err(unsupported("release_lease"))
    }
}

/// Every role of a store the service runs on, and its life: readiness and shutdown.
#[async_trait]
pub trait Store: Queue + Inspect + Leases {
    /// Proves that a write can be committed now (readiness).
    async fn check_writable(&self) -> Result<(), StoreError>;

    /// Commits what is queued and stops accepting writes.
    async fn close(&self);
}

/// The inline hooks' idempotent answers shared by replicas (PostgreSQL only): Okta's
/// retry of an inline request gets the same answer, whichever replica it lands on.
#[async_trait]
pub trait AnswerStore: Send + Sync + 'static {
    /// A stored inline-hook answer for `(hook, event_id)` no older than `ttl`.
    async fn get_answer(
        &self,
        hook: &str,
        event_id: &str,
        ttl: Duration,
    ) -> Result<Option<Vec<u8>>, StoreError>;

    /// Stores an inline-hook answer. The first answer wins: two replicas answering the
    /// same request concurrently keep one answer.
    async fn put_answer(&self, hook: &str, event_id: &str, answer: &[u8])
        -> Result<(), StoreError>;
}

fn unsupported(what: &str) -> StoreError {
    StoreError::Unavailable(format!("this store does not support {what}"))
}
