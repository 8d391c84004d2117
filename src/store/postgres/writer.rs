//! The group-commit writer: this replica's concurrent ingests committed together, a
//! fixed number of statements per batch whatever its size.

use super::*;

/// Owns the ingest queue: takes what is queued, commits it in one transaction, answers.
pub(super) struct Writer {
    pub(super) pool: Pool,
    pub(super) max_batch: usize,
    pub(super) max_backlog: i64,
    pub(super) commits: Arc<AtomicU64>,
    pub(super) pending: Arc<Mutex<PendingCount>>,
    pub(super) statements: Statements,
}

impl Writer {
    pub(super) async fn run(self, mut rx: mpsc::UnboundedReceiver<IngestCmd>) {
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
                Some(StoreError::Unavailable(format!(
                    "the batch took longer than {BATCH_TIMEOUT:?}; its connection was dropped"
                )))
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
            Some(lost) => {
                tracing::error!(error = %lost, deliveries = results.len(), "store commit failed; the whole batch is answered as not stored");
                for (reply, result) in results {
                    let out = match result {
                        Ok(_) => Err(lost.clone()),
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
    ) -> Result<(), StoreError> {
        let fail_all = |batch: Vec<IngestCmd>, results: &mut Vec<Answered>, msg: String| {
            let lost = StoreError::Unavailable(msg);
            for cmd in batch {
                results.push((cmd.reply, Err(lost.clone())));
            }
            Err(lost)
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
        let plan =
            match plan_batch(&tx, self.statements, &batch, pending_now, self.max_backlog).await {
                Ok(plan) => plan,
                Err(e) => return fail_all(batch, results, describe(&e)),
            };
        let inserted = match insert_planned(&tx, self.statements, &batch, &plan).await {
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
pub(super) enum Decision {
    /// Store these events (indexes into `delivery.events`): the ones not stored before,
    /// first occurrence only. Empty for a pure retry, which is still acknowledged.
    Accept(Vec<usize>),
    /// Refused: it adds work and the backlog is full (pending jobs counted).
    Full(u64),
}

pub(super) struct Plan {
    /// One per delivery of the batch, in order.
    decisions: Vec<Decision>,
}

/// Distinct jobs an event adds: a sink listed twice gets one job.
pub(super) fn jobs_of(e: &NewEvent) -> i64 {
    let distinct: std::collections::HashSet<&str> = e.sinks.iter().map(String::as_str).collect();
    i64::try_from(distinct.len()).unwrap_or(i64::MAX)
}

/// Decides every delivery of a batch: one query finds the events stored already, then
/// each delivery in arrival order either adds its new events or, when it adds work and
/// the backlog is full, is refused. As in SQLite, a delivery that adds no work (Okta's
/// retry) is acknowledged even when full.
pub(super) async fn plan_batch(
    tx: &deadpool_postgres::Transaction<'_>,
    statements: Statements,
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
    let rows = statements
        .rows(
            tx,
            "SELECT e.hook, e.uuid FROM events e
             JOIN UNNEST($1::text[], $2::text[]) AS x(h, u) ON e.hook = x.h AND e.uuid = x.u",
            &[(&hooks, Type::TEXT_ARRAY), (&uuids, Type::TEXT_ARRAY)],
        )
        .await?;
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
pub(super) async fn insert_planned(
    tx: &deadpool_postgres::Transaction<'_>,
    statements: Statements,
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
    let count = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    let mut seqs: Vec<i64> = Vec::with_capacity(rows.len());
    for r in statements
        .rows(
            tx,
            "SELECT nextval(pg_get_serial_sequence('events', 'seq')) FROM generate_series(1, $1::bigint)",
            &[(&count, Type::INT8)],
        )
        .await?
    {
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
    let returned = statements
        .rows(
            tx,
            "INSERT INTO events (hook, uuid, event_id, event_type, published, received_at, payload, seq, recovered)
             OVERRIDING SYSTEM VALUE
             SELECT h, u, i, t, p, r, b, q, v
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::bigint[], $9::bool[])
                  WITH ORDINALITY AS x(h, u, i, t, p, r, b, q, v, n)
             ORDER BY n
             ON CONFLICT DO NOTHING
             RETURNING hook, uuid",
            &[
                (&hooks, Type::TEXT_ARRAY),
                (&uuids, Type::TEXT_ARRAY),
                (&event_ids, Type::TEXT_ARRAY),
                (&types, Type::TEXT_ARRAY),
                (&published, Type::TEXT_ARRAY),
                (&received, Type::INT8_ARRAY),
                (&payloads, Type::TEXT_ARRAY),
                (&seq, Type::INT8_ARRAY),
                (&recovered, Type::BOOL_ARRAY),
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
        statements
            .exec(
                tx,
                "INSERT INTO jobs (hook, uuid, sink, state, attempts, claims, next_attempt_at, updated_at)
                 SELECT h, u, s, 'pending', 0, 0, $1, $1
                 FROM UNNEST($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS x(h, u, s, n)
                 ORDER BY n
                 ON CONFLICT DO NOTHING",
                &[
                    (&now, Type::INT8),
                    (&job_hooks, Type::TEXT_ARRAY),
                    (&job_uuids, Type::TEXT_ARRAY),
                    (&job_sinks, Type::TEXT_ARRAY),
                ],
            )
            .await?;
    }
    Ok(inserted)
}
