//! Inspection: listing, showing, replaying and counting events.

use super::*;

pub(super) fn parse_event_state(s: &str) -> Result<EventState, StoreError> {
    rows::event_state(s)
        .ok_or_else(|| StoreError::Unavailable(format!("unknown event state '{s}'")))
}

/// Attempts as PostgreSQL stores them (an `integer`, read as `i32`).
pub(super) fn attempts(n: i32) -> u32 {
    rows::attempts(i64::from(n))
}

/// Translates an event type glob (only `*` is a wildcard) to `LIKE ... ESCAPE '\'`,
/// whose other special characters (`%`, `_`, `\`) are made literal. `LIKE` is
/// case-sensitive in PostgreSQL, like [`glob_match`](crate::glob::glob_match) and Okta's event types.
pub(super) fn like_pattern(glob: &str) -> String {
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

pub(super) fn summary_from_row(r: &tokio_postgres::Row) -> Result<EventSummary, StoreError> {
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
pub(super) async fn fill_sinks(
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
        // An event's jobs by its uuid and maybe its hook (the parameters' numbers):
        // through the events' uuid index, then the jobs' (hook, uuid, sink) key (jobs
        // have no uuid index).
        let of_event = |uuid: &str, hook: &str| {
            format!(
                "(hook, uuid) IN (SELECT e.hook, e.uuid FROM events e
                 WHERE e.uuid = {uuid} AND ({hook}::text IS NULL OR e.hook = {hook}))"
            )
        };
        const SET: &str = "UPDATE jobs SET state = 'pending', next_attempt_at = $1,
            lease_until = NULL, lease_token = NULL, updated_at = $1";
        let tx = client.transaction().await.db()?;
        let (n, revived) = match target {
            ReplayTarget::Event { uuid, hook } => {
                // Jobs not pending yet become pending: that is the change to the backlog.
                let revived: i64 = tx
                    .query_one(
                        &format!(
                            "SELECT COUNT(*) FROM jobs WHERE {} AND state <> 'pending'",
                            of_event("$1", "$2")
                        ),
                        &[uuid, hook],
                    )
                    .await
                    .and_then(|r| r.try_get(0))
                    .db()?;
                let n = tx
                    .execute(
                        &format!("{SET} WHERE {}", of_event("$2", "$3")),
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
        let r = a_row(
            self.statements
                .opt(&client, "SELECT COUNT(*) FROM events", &[])
                .await,
        )?;
        Ok(StoreStats {
            backlog: jobs.backlog(),
            dead: jobs.dead(),
            events: count(r.try_get(0).db()?),
        })
    }
}
