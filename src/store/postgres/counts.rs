//! [`Queue::job_counts`] on PostgreSQL: the gauges' counts per hook and sink.

use super::rows::CountRow;
use super::*;

/// Pending jobs on `jobs_due` and dead ones on `jobs_dead`, grouped by the hook and sink
/// that every job row carries; one snapshot. The oldest pending job is the first stored
/// (`MIN(id)`), so only its event is looked up, not every pending job's.
const COUNTS_SQL: &str = "
    WITH p AS (
        SELECT hook, sink, COUNT(*) AS n, MIN(id) AS first
          FROM jobs WHERE state = 'pending' GROUP BY hook, sink
    )
    SELECT p.hook, p.sink, FALSE, p.n, e.received_at
      FROM p JOIN jobs f ON f.id = p.first
      LEFT JOIN events e ON e.hook = f.hook AND e.uuid = f.uuid
    UNION ALL
    SELECT hook, sink, TRUE, COUNT(*), NULL::BIGINT
      FROM jobs WHERE state = 'dead' GROUP BY hook, sink";

impl PostgresStore {
    pub(super) async fn count_jobs(&self) -> Result<JobCounts, StoreError> {
        let client = self.client().await?;
        let rows = self.statements.rows(&client, COUNTS_SQL, &[]).await.db()?;
        let rows = rows
            .iter()
            .map(|r| {
                Ok(CountRow {
                    hook: r.try_get(0)?,
                    sink: r.try_get(1)?,
                    dead: r.try_get(2)?,
                    jobs: r.try_get(3)?,
                    oldest: r.try_get(4)?,
                })
            })
            .collect::<Result<Vec<_>, tokio_postgres::Error>>()
            .db()?;
        Ok(rows::job_counts(rows))
    }
}
