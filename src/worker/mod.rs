//! Deferred processing: takes stored jobs and delivers them to sinks (being written).

use crate::config::WorkerConfig;
use crate::metrics::Metrics;
use crate::sinks::SinkSet;
use crate::store::Store;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Wakes the workers when new work is stored. Never blocks the ack path.
#[derive(Clone, Debug)]
pub struct Waker(mpsc::Sender<()>);

impl Waker {
    /// Signals that jobs are waiting. A full channel already means "wake up", so it is ignored.
    pub fn wake(&self) {
        let _ = self.0.try_send(());
    }
}

/// The wake channel: capacity 1, since one pending signal says all there is to say.
pub fn wake_channel() -> (Waker, mpsc::Receiver<()>) {
    let (tx, rx) = mpsc::channel(1);
    (Waker(tx), rx)
}

/// The running workers.
pub struct WorkerHandle {
    pub task: JoinHandle<()>,
    /// Store time of the workers' last loop turn, for readiness.
    pub heartbeat: Arc<AtomicI64>,
}

impl WorkerHandle {
    /// True when the worker loop turned within `within` and has not stopped.
    pub fn alive(&self, within: Duration) -> bool {
        let last = self.heartbeat.load(Ordering::Relaxed);
        !self.task.is_finished() && crate::store::now_millis() - last <= within.as_millis() as i64
    }
}

/// Starts the workers (and the retention pruner). They stop after their current attempt once `shutdown` fires.
pub fn spawn(
    store: Arc<dyn Store>,
    sinks: SinkSet,
    config: WorkerConfig,
    retention: Duration,
    metrics: Arc<Metrics>,
    wake: mpsc::Receiver<()>,
    shutdown: CancellationToken,
) -> WorkerHandle {
    let _ = (store, sinks, config, retention, metrics, wake, shutdown);
    todo!()
}
