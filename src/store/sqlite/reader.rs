//! Reads: a small pool of read-only connections, and the listing and detail queries
//! that run on them.

use super::*;

/// A small pool of read connections.
pub(super) struct Readers {
    pub(super) path: PathBuf,
    pub(super) idle: Mutex<Vec<Connection>>,
    pub(super) closed: AtomicBool,
}

impl Readers {
    pub(super) fn open_conn(&self) -> rusqlite::Result<Connection> {
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
    pub(super) fn run<T>(
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

    pub(super) fn close(&self) {
        let mut idle = lock(&self.idle);
        self.closed.store(true, Ordering::Release);
        idle.clear();
    }
}

pub(super) fn parse_job_state(s: &str) -> rusqlite::Result<JobState> {
    JobState::parse(s).ok_or_else(|| bad_value(format!("unknown job state '{s}'")))
}

pub(super) fn parse_event_state(s: &str) -> rusqlite::Result<EventState> {
    super::super::rows::event_state(s)
        .ok_or_else(|| bad_value(format!("unknown event state '{s}'")))
}

pub(super) fn bad_value(msg: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        Box::<dyn std::error::Error + Send + Sync>::from(msg),
    )
}

/// Translates an event type glob (only `*` is a wildcard) to SQLite `GLOB`, whose other
/// special characters (`?`, `[`) are made literal. `GLOB` rather than `LIKE`: it is
/// case-sensitive, like [`glob_match`](crate::glob::glob_match) and like Okta's event types.
pub(super) fn sqlite_glob(glob: &str) -> String {
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
pub(super) const SUMMARY_COLUMNS: &str =
    "e.hook, e.uuid, e.event_id, e.event_type, e.published, e.received_at, e.recovered";

pub(super) fn summary_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EventSummary> {
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
pub(super) fn sinks_of(conn: &Connection, event: i64) -> rusqlite::Result<Vec<SinkStatus>> {
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

pub(super) fn list_events(
    conn: &Connection,
    q: &EventQuery,
) -> Result<Vec<EventSummary>, StoreError> {
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

pub(super) fn get_events(conn: &Connection, uuid: &str) -> Result<Vec<EventDetail>, StoreError> {
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

/// [`Queue::job_counts`]: the pending jobs on `jobs_due` and the dead ones on
/// `jobs_dead`, each with its event for the hook, in one statement (one snapshot).
pub(super) fn job_counts(conn: &Connection) -> rusqlite::Result<JobCounts> {
    let mut stmt = conn.prepare_cached(
        "SELECT e.hook, j.sink, 0, COUNT(*), MIN(e.received_at)
           FROM jobs j JOIN events e ON e.id = j.event
          WHERE j.state = 'pending' GROUP BY e.hook, j.sink
         UNION ALL
         SELECT e.hook, j.sink, 1, COUNT(*), NULL
           FROM jobs j JOIN events e ON e.id = j.event
          WHERE j.state = 'dead' GROUP BY e.hook, j.sink",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok(CountRow {
                hook: r.get(0)?,
                sink: r.get(1)?,
                dead: r.get(2)?,
                jobs: r.get(3)?,
                oldest: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(super::super::rows::job_counts(rows))
}
