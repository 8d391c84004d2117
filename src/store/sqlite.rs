//! The embedded store: SQLite in WAL mode with one writer thread and group commit.
//! (Being written: see the module docs of `store` for the contract.)

use super::*;
use crate::config::StoreConfig;
use std::path::Path;

/// The embedded SQLite store.
pub struct SqliteStore {}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path, config: &StoreConfig) -> Result<SqliteStore, StoreError> {
        let _ = (path, config);
        todo!()
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ingest(&self, delivery: Delivery) -> Result<IngestOutcome, StoreError> {
        let _ = delivery;
        todo!()
    }
    async fn claim(&self, max: usize, lease: Duration) -> Result<Vec<Job>, StoreError> {
        let _ = (max, lease);
        todo!()
    }
    async fn finish(&self, job: &Job, outcome: JobOutcome) -> Result<(), StoreError> {
        let _ = (job, outcome);
        todo!()
    }
    async fn list(&self, query: &EventQuery) -> Result<Vec<EventSummary>, StoreError> {
        let _ = query;
        todo!()
    }
    async fn get(&self, uuid: &str) -> Result<Vec<EventDetail>, StoreError> {
        let _ = uuid;
        todo!()
    }
    async fn replay(&self, target: &ReplayTarget) -> Result<u64, StoreError> {
        let _ = target;
        todo!()
    }
    async fn stats(&self) -> Result<StoreStats, StoreError> {
        todo!()
    }
    async fn check_writable(&self) -> Result<(), StoreError> {
        todo!()
    }
    async fn prune(&self, before: Millis) -> Result<u64, StoreError> {
        let _ = before;
        todo!()
    }
    async fn close(&self) {
        todo!()
    }
}
