//! System Log reconciliation: finds events Okta never delivered to an event hook and
//! stores them, marked as recovered. (Being built.)

use crate::config::Config;
use crate::store::Store;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// `hookwarden reconcile` arguments.
#[derive(Debug, clap::Args)]
pub struct ReconcileArgs {}

/// Starts the background reconciler when `[reconcile]` is configured.
pub fn spawn(
    _config: &Config,
    _store: Arc<dyn Store>,
    _waker: crate::worker::Waker,
    _shutdown: CancellationToken,
) -> Result<Option<tokio::task::JoinHandle<()>>, String> {
    Ok(None)
}

/// `hookwarden reconcile`: one pass; returns the exit code.
pub fn main(_config: &Config, _args: ReconcileArgs) -> i32 {
    eprintln!("reconcile: not built yet");
    2
}
