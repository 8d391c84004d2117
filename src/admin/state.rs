//! What the admin listener's handlers share: the router's ([`super::router`]) and the
//! admin page's ([`super::page`]).

use crate::metrics::Metrics;
use crate::store::Store;
use crate::worker::WorkerHandle;
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
    /// The running configuration (hooks, sinks, the admin token) for the admin page.
    pub config: Arc<crate::config::Config>,
}
