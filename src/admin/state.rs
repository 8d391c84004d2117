//! What the admin listener's handlers share: the router's ([`super::router`]) and the
//! admin page's ([`super::page`]).

use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::worker::WorkerHandle;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

pub struct AdminState {
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub workers: Arc<WorkerHandle>,
    /// The workers count as alive when their loop turned within this time.
    pub worker_liveness: Duration,
    /// Recent requests per hook, for the admin page.
    pub activity: Arc<crate::activity::Activity>,
    /// The configuration in service (hooks, sinks, the admin token), swapped by a reload.
    pub config: Arc<ArcSwap<Config>>,
    /// What `POST /reload` runs (`None`: the route answers 404).
    pub reload: Option<Arc<dyn Reload>>,
}

/// A configuration reload, as the service runs it (see `crate::app::reload`).
#[async_trait]
pub trait Reload: Send + Sync + 'static {
    /// Reads the configuration's sources again and puts it in service if it is valid.
    /// `trigger` names the cause in the log (`SIGHUP`, `POST /reload`).
    async fn reload(&self, trigger: &'static str) -> ReloadReport;
}

/// What a reload did: the answer of `POST /reload`, and its log lines.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReloadReport {
    pub result: ReloadResult,
    /// The generation in service after the reload (unchanged when refused).
    pub generation: u64,
    /// Why the new configuration was refused (empty otherwise), each naming its key.
    pub problems: Vec<String>,
    /// What changed, in words: hooks and sinks added, removed, changed.
    pub changes: Vec<String>,
    /// Keys whose new values need a restart; the running values stay until then.
    pub restart_needed: Vec<String>,
    /// From the trigger to the new configuration in service (or to the refusal).
    pub took_ms: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReloadResult {
    /// The new configuration is in service.
    Reloaded,
    /// The running configuration stays: see `problems`.
    Refused,
}
