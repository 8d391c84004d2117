//! The PostgreSQL store (being written).

use super::*;
use crate::config::{PostgresConfig, StoreConfig};

/// Events, jobs and inline answers shared by every replica.
pub struct PostgresStore {}

impl PostgresStore {
    /// Connects, runs the embedded migrations (safe when replicas start together), and starts the group-commit writer.
    pub async fn connect(
        pg: &PostgresConfig,
        config: &StoreConfig,
    ) -> Result<PostgresStore, StoreError> {
        let _ = (pg, config);
        Err(StoreError::Unavailable(
            "the postgres store is not available yet".to_owned(),
        ))
    }
}

fn not_yet() -> StoreError {
    StoreError::Unavailable("the postgres store is not available yet".to_owned())
}

#[async_trait]
impl Store for PostgresStore {
    async fn ingest(&self, _: Delivery) -> Result<IngestOutcome, StoreError> {
        Err(not_yet())
    }
    async fn claim(&self, _: usize, _: Duration) -> Result<Vec<Job>, StoreError> {
        Err(not_yet())
    }
    async fn finish(&self, _: &Job, _: JobOutcome) -> Result<(), StoreError> {
        Err(not_yet())
    }
    async fn list(&self, _: &EventQuery) -> Result<Vec<EventSummary>, StoreError> {
        Err(not_yet())
    }
    async fn get(&self, _: &str) -> Result<Vec<EventDetail>, StoreError> {
        Err(not_yet())
    }
    async fn replay(&self, _: &ReplayTarget) -> Result<u64, StoreError> {
        Err(not_yet())
    }
    async fn stats(&self) -> Result<StoreStats, StoreError> {
        Err(not_yet())
    }
    async fn check_writable(&self) -> Result<(), StoreError> {
        Err(not_yet())
    }
    async fn prune(&self, _: Millis) -> Result<u64, StoreError> {
        Err(not_yet())
    }
    async fn close(&self) {}
}
