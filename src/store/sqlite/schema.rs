//! The embedded store's schema, its migrations and the write connection's settings.

use super::*;

/// Version of the schema below, kept in `PRAGMA user_version`. Bump it with a migration
/// step in [`migrate`] whenever the schema changes.
pub(super) const SCHEMA_VERSION: i64 = 4;

/// How long a connection waits for a lock held by another process (the CLI next to the
/// service, or the service next to the CLI) before giving up with `SQLITE_BUSY`.
/// The schema. `(uuid, hook)` rather than `(hook, uuid)` is the key order so that the
/// key's own index also serves lookups by uuid alone (`get`, `replay <uuid>`), which
/// have no hook; the uniqueness it enforces is the same.
pub(super) const SCHEMA: &str = "
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
pub(super) const SCHEMA_V2: &str = "
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
pub(super) const SCHEMA_V3: &str = "
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
/// docs/benchmarks-log.md). Okta's events arrive minutes after their `published` time, so keyed
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
pub(super) const SCHEMA_V4: &str = "
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

/// Settings of the write connection; see the module docs for why.
pub(super) fn configure_writer(
    conn: &Connection,
    path: &Path,
    page_cache_kib: u32,
) -> Result<(), StoreError> {
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
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
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
