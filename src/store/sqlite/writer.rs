//! The writer thread: every write is a [`Cmd`] run in one transaction with whatever
//! else is queued, committed once (see the module's doc).

use super::*;

pub(super) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// A write for the writer thread, with where to send its answer.
pub(super) enum Cmd {
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
pub(super) enum Msg {
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

pub(super) fn responder<T: Send + 'static>(
    reply: Reply<T>,
    result: Result<T, StoreError>,
) -> Responder {
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
pub(super) type Applied<T> = Result<(T, i64), StoreError>;

/// Turns a command's result into its responder and, on success, its pending delta.
pub(super) fn split<T: Send + 'static>(
    reply: Reply<T>,
    applied: Applied<T>,
) -> (Responder, Option<i64>) {
    match applied {
        Ok((value, delta)) => (responder(reply, Ok(value)), Some(delta)),
        Err(e) => (responder(reply, Err(e)), None),
    }
}

/// The open transaction's commands, answered at its commit.
#[derive(Default)]
pub(super) struct Open {
    /// Answers of the commands run so far (failed ones included, with their errors).
    pub(super) done: Vec<Responder>,
    /// Change to the number of pending jobs if this transaction commits.
    pub(super) delta: i64,
    /// Whether a transaction is open (`done` may hold only failed commands otherwise).
    pub(super) in_txn: bool,
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
pub(super) struct Writer {
    pub(super) conn: Connection,
    pub(super) mode: OpenMode,
    pub(super) max_batch: usize,
    pub(super) max_backlog: u64,
    /// Pending jobs as of the last commit. Kept here so that the capacity check of each
    /// ingest is free; recounted when another process has written (see `data_version`).
    pub(super) pending: u64,
    /// Last `PRAGMA data_version` seen: it changes only when another connection commits.
    pub(super) data_version: i64,
    pub(super) commits: Arc<AtomicU64>,
    /// The service's WAL syncer: commits are answered from there once durable. `None`
    /// for the CLI, whose connection syncs at each commit (`synchronous = FULL`).
    pub(super) sync: Option<WalSync>,
    /// The service's background checkpoints and the watch on the space the WAL may take
    /// (`None`: SQLite's automatic checkpoints).
    pub(super) checkpointer: Option<(Checkpointer, DiskSpace)>,
    /// WAL pages when a checkpoint was last asked for (see [`Writer::after_commit`]).
    pub(super) nudged_at: i32,
    pub(super) wal_policy: WalPolicy,
}

impl Writer {
    /// The writer's loop. Commands run as they arrive, each in its own savepoint of one
    /// open transaction; the transaction commits when no command is waiting and no
    /// earlier commit is still being synced (or when `max_batch` commands are in it).
    /// While the syncer works, arriving commands thus join the next commit instead of
    /// each making a small one of their own: one commit per sync, and the pages every
    /// commit rewrites (the ends of the indexes) are written once per sync, not once
    /// per command. No command waits longer for it: its answer waits for a sync anyway.
    pub(super) fn run(mut self, rx: mpsc::Receiver<Msg>) {
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
pub(super) struct Capacity {
    /// Jobs waiting, with this batch's earlier commands.
    pub(super) pending_now: u64,
    pub(super) max_backlog: u64,
    /// Free bytes on the store's disk, when under the reserve (see `wal::DiskSpace`).
    pub(super) disk_low: Option<u64>,
}

pub(super) fn ingest(
    conn: &Connection,
    d: &Delivery,
    capacity: Capacity,
) -> Applied<IngestOutcome> {
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
pub(super) const CLAIM_SQL: &str = "
    SELECT j.id, e.hook, j.sink, e.uuid, j.attempts, j.claims,
           e.event_id, e.event_type, e.received_at, e.payload, e.recovered
    FROM jobs j INDEXED BY jobs_due JOIN events e ON e.id = j.event
    WHERE j.state = 'pending' AND j.next_attempt_at <= ?1
      AND (j.lease_until IS NULL OR j.lease_until < ?1)
    ORDER BY j.next_attempt_at, j.id
    LIMIT ?2";

pub(super) fn claim(conn: &Connection, max: usize, lease_ms: i64) -> Applied<Vec<Job>> {
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

pub(super) fn finish(conn: &Connection, id: i64, token: i64, outcome: JobOutcome) -> Applied<()> {
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

pub(super) fn replay(conn: &Connection, target: &ReplayTarget) -> Applied<u64> {
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

pub(super) fn prune_chunk(conn: &Connection, before: Millis, chunk: u64) -> Applied<u64> {
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
