//! The PostgreSQL schema: its migrations, applied once by whichever replica starts first.

use super::*;

/// Key of the advisory lock that serializes migrations of replicas starting together.
/// Any constant works; this one spells "hookwrdn" in ASCII so it is recognisable in
/// `pg_locks`.
pub(super) const MIGRATION_LOCK: i64 = 0x686f_6f6b_7772_646e;

/// The migrations, in order: `(version, SQL)`. Never edit a released step; append one.
/// Every step runs in the migration transaction, under the advisory lock, and records
/// its version in `hookwarden_schema`.
pub(super) const MIGRATIONS: &[(i32, &str)] = &[
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
    (
        3,
        // Measured with pg_stat_statements under load (docs/benchmarks-log.md, "PostgreSQL
        // queue"): inserting the jobs cost nearly as much as inserting the events, and a
        // claim took 0.15 ms per job.
        // - The foreign key checked every new job against its event, one lookup and one row
        //   lock each, for jobs inserted in the same statement batch as their events (so
        //   they cannot dangle); `prune` now deletes an event's jobs with it.
        // - Two indexes every job insert and finish paid for, used only by rare readers:
        //   `jobs_state`, replaced by a partial index of the dead letters alone (pending jobs
        //   are counted on `jobs_due`), and `jobs_uuid` (a replay by uuid finds the events
        //   by `events_uuid`, then their jobs by the `(hook, uuid, sink)` key).
        // - Room on each page of `jobs` for its claim to be a HOT update (no new entry in
        //   any index, nothing for the next claim to step over) instead of a new version
        //   in every index.
        // - lz4 rather than pglz for the events' payloads (most are over the 2 kB at which
        //   PostgreSQL compresses): pglz was the single largest function of the insert.
        //   A server built without lz4 keeps pglz.
        "
ALTER TABLE jobs DROP CONSTRAINT IF EXISTS jobs_hook_uuid_fkey;
DROP INDEX IF EXISTS jobs_state;
DROP INDEX IF EXISTS jobs_uuid;
CREATE INDEX IF NOT EXISTS jobs_dead ON jobs (hook) WHERE state = 'dead';
ALTER TABLE jobs SET (fillfactor = 70);
DO $$ BEGIN
    EXECUTE 'ALTER TABLE events ALTER COLUMN payload SET COMPRESSION lz4';
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'events.payload keeps the default compression: %', SQLERRM;
END $$;
",
    ),
];

/// Why the schema could not be brought up to date; each variant keeps its cause.
#[derive(Debug, thiserror::Error)]
pub(super) enum MigrateError {
    /// With its causes in the text: the cause is where "certificate not valid for name"
    /// or "password authentication failed" is said.
    #[error("cannot connect: {}", crate::outbound::error_text(.0))]
    Connect(deadpool_postgres::PoolError),
    #[error("{}", describe(.0))]
    Sql(#[from] tokio_postgres::Error),
    #[error("the database has schema version {current}, written by a newer hookwarden (this one knows up to {known})")]
    Newer { current: i32, known: i32 },
    #[error("migration {version}: {}", describe(.source))]
    Step {
        version: i32,
        source: tokio_postgres::Error,
    },
}

/// Runs the migrations this database has not seen, under a transaction-scoped advisory
/// lock so that replicas starting at once apply each step exactly once (the second
/// waits for the first's COMMIT, then finds nothing left to do).
pub(super) async fn migrate(pool: &Pool) -> Result<(), MigrateError> {
    let mut client = pool.get().await.map_err(MigrateError::Connect)?;
    let tx = client.transaction().await?;
    // A migration may rewrite a large table, and a replica starting beside another
    // waits for its migration: neither is a delivery's wait, so neither is bounded.
    tx.batch_execute("SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0")
        .await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS hookwarden_schema (
             version    INTEGER PRIMARY KEY,
             applied_at BIGINT NOT NULL
         )",
    )
    .await?;
    let current: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM hookwarden_schema",
            &[],
        )
        .await
        .and_then(|r| r.try_get(0))?;
    let known = MIGRATIONS.last().map(|(v, _)| *v).unwrap_or(0);
    if current > known {
        return Err(MigrateError::Newer { current, known });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(sql)
            .await
            .map_err(|source| MigrateError::Step {
                version: *version,
                source,
            })?;
        tx.execute(
            "INSERT INTO hookwarden_schema (version, applied_at) VALUES ($1, $2)",
            &[version, &now_millis()],
        )
        .await?;
        tracing::info!(version, "postgres schema migrated");
    }
    Ok(tx.commit().await?)
}
