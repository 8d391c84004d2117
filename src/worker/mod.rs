//! Deferred processing: takes stored jobs and delivers them to sinks.
//!
//! One dispatcher claims due jobs from the store, never more than there are free
//! delivery slots (`worker.concurrency`), and runs each in a task of its own. The
//! backlog therefore stays in the store, and RAM holds at most `concurrency` jobs.
//! Sinks that write lines (the JSONL file, standard output) take the jobs of one claim
//! as one batch instead (one task, one write, one sync; one slot per job still), which
//! costs about a sixth less CPU per event and lets the file keep up with the acks.
//!
//! Each attempt ends with an outcome, recorded for the whole group at once
//! ([`Queue::finish_all`](crate::store::Queue::finish_all)): delivered, retry later
//! (exponential backoff with full jitter), or dead (permanent failure or `max_attempts`
//! reached).
//! If the process dies mid-attempt, the lease expires and the job is claimed again
//! with `interrupted` set; a sink that can tell ([`Sink::contains`]) then skips it.
//!
//! Next to the dispatcher run the retention pruner and the store's gauges
//! ([`refresh_gauges`]).

use crate::config::WorkerConfig;
use crate::metrics::{AttemptLabel, AttemptOutcome, Metrics};
use crate::sinks::{LiveSinks, Sink, SinkError, SinkRecord, SinkSet};
use crate::store::{Job, JobOutcome, Millis, Store};
use crate::time::now_millis;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinError, JoinHandle, JoinSet};
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
        !self.task.is_finished() && crate::time::now_millis() - last <= within.as_millis() as i64
    }
}

/// The dead letter's error of a job whose sink is gone from the config (a reload or a
/// restart removed it): the job is kept, never dropped, and a replay delivers it once
/// the sink is back.
pub const SINK_REMOVED: &str = "sink no longer configured (removed from the config): kept as a dead letter; add the sink back and replay to deliver it";

/// How often the retention pruner runs. Pruning is housekeeping: minutes are precise enough.
const PRUNE_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// The store's gauges are read at most this often.
const GAUGE_INTERVAL: Duration = Duration::from_secs(1);
/// ... and after a read that took `t`, not again before `t` times this: the read walks
/// every pending job, so a large backlog makes it long (about 1.3 s for 0.8 million on
/// SQLite), and it then costs at most a twentieth of one connection's time.
const GAUGE_COST_FACTOR: u32 = 20;

/// What every delivery task needs.
struct Ctx {
    store: Arc<dyn Store>,
    /// Swapped by a config reload; loaded once per claim.
    sinks: LiveSinks,
    config: WorkerConfig,
    metrics: Arc<Metrics>,
}

/// Starts the workers (and the retention pruner). They stop after their current attempt once `shutdown` fires.
pub fn spawn(
    store: Arc<dyn Store>,
    sinks: LiveSinks,
    config: WorkerConfig,
    retention: Duration,
    metrics: Arc<Metrics>,
    wake: mpsc::Receiver<()>,
    shutdown: CancellationToken,
) -> WorkerHandle {
    let heartbeat = Arc::new(AtomicI64::new(now_millis()));
    let ctx = Arc::new(Ctx {
        store,
        sinks,
        config,
        metrics,
    });
    let task = tokio::spawn({
        let heartbeat = heartbeat.clone();
        async move {
            tokio::join!(
                dispatch(ctx.clone(), wake, shutdown.clone(), heartbeat),
                prune(ctx.store.clone(), retention, shutdown.clone()),
                refresh_gauges(ctx.store.clone(), ctx.metrics.clone(), shutdown),
            );
        }
    });
    WorkerHandle { task, heartbeat }
}

/// The dispatcher loop: claim as many due jobs as there are free slots, start them,
/// wait for work (wake, poll interval) or a free slot; on shutdown, let the
/// deliveries in flight finish their attempt and record it.
async fn dispatch(
    ctx: Arc<Ctx>,
    mut wake: mpsc::Receiver<()>,
    shutdown: CancellationToken,
    heartbeat: Arc<AtomicI64>,
) {
    let concurrency = ctx.config.concurrency.max(1);
    let poll = ctx.config.poll_interval.max(Duration::from_millis(10));
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut in_flight: JoinSet<()> = JoinSet::new();
    let mut wake_open = true;
    // Log a failing store once when it starts failing and once when it recovers,
    // not every poll interval in between.
    let mut store_failing = false;

    loop {
        heartbeat.store(now_millis(), Ordering::Relaxed);
        while let Some(done) = in_flight.try_join_next() {
            report_panic(done);
        }
        if shutdown.is_cancelled() {
            break;
        }

        let free = slots.available_permits();
        if free == 0 {
            // Every slot is busy: wait for one to free up (bounded, to keep the heartbeat).
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(done) = in_flight.join_next() => report_panic(done),
                _ = tokio::time::sleep(poll) => {}
            }
            continue;
        }

        // Not raced with shutdown: dropping a claim halfway would strand leased jobs
        // until their lease expires. Claimed jobs are started even if shutdown fires
        // meanwhile; they are in flight from the store's point of view.
        let drained = match ctx.store.claim(free, ctx.config.lease).await {
            Ok(jobs) => {
                if store_failing {
                    store_failing = false;
                    tracing::info!("the store answers again; deliveries resume");
                }
                let drained = jobs.len() < free;
                // One look at the sinks per claim: a group is delivered by the sink that
                // grouped it, even if a reload swaps the set meanwhile.
                for (sink, group) in by_sink(&ctx.sinks.load_full(), jobs) {
                    // Always immediate: only this loop takes slots, and it claimed no
                    // more jobs than there were free slots. A group holds one per job.
                    let Ok(n) = u32::try_from(group.len()) else {
                        break;
                    };
                    let Ok(slots) = slots.clone().acquire_many_owned(n).await else {
                        break;
                    };
                    in_flight.spawn(run_group(ctx.clone(), sink, group, slots));
                }
                drained
            }
            Err(e) => {
                if !store_failing {
                    store_failing = true;
                    tracing::warn!(error = %e, "cannot claim jobs from the store; retrying every poll interval");
                } else {
                    tracing::debug!(error = %e, "cannot claim jobs from the store");
                }
                true
            }
        };
        if drained {
            // Nothing more is due now: sleep until new work is stored, a retry may be
            // due (poll interval), or shutdown.
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                signal = wake.recv(), if wake_open => {
                    if signal.is_none() {
                        // Every Waker is gone: only polling finds work from now on.
                        wake_open = false;
                    }
                }
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }

    // Reap deliveries that already ended, so the count below is of those still running.
    while in_flight.try_join_next().is_some() {}
    let waiting = in_flight.len();
    if waiting > 0 {
        tracing::info!(
            deliveries = waiting,
            "stopping: waiting for deliveries in flight to finish their attempt"
        );
    }
    while let Some(done) = in_flight.join_next().await {
        report_panic(done);
    }
    tracing::debug!("workers stopped");
}

/// A delivery task panicking outside the sink call (which is guarded) is a bug; the
/// job's lease expires and it is claimed again.
fn report_panic(done: Result<(), JoinError>) {
    if let Err(e) = done {
        if e.is_panic() {
            tracing::error!(error = %e, "a delivery task panicked; its job will be retried when its lease expires");
        }
    }
}

/// Reads the store's gauges (backlog, oldest pending job, dead letters, per hook and
/// sink) every [`GAUGE_INTERVAL`], or less often when a read takes long (see
/// [`GAUGE_COST_FACTOR`]), until shutdown. A task of its own, so that a long read
/// never holds up a claim; `/metrics` renders what it last read and never reads the
/// store itself, so scrapes cost the store nothing.
async fn refresh_gauges(store: Arc<dyn Store>, metrics: Arc<Metrics>, shutdown: CancellationToken) {
    loop {
        let started = Instant::now();
        let read = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            read = store.job_counts() => read,
        };
        match read {
            Ok(counts) => metrics.set_job_counts(&counts),
            Err(e) => tracing::debug!(error = %e, "cannot read the store's counts for the gauges"),
        }
        let wait = GAUGE_INTERVAL.max(started.elapsed() * GAUGE_COST_FACTOR);
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// What one attempt came to, before it is turned into a [`JobOutcome`].
enum Attempt {
    Delivered,
    /// Interrupted job that the sink already holds.
    AlreadyThere,
    Failed(SinkError),
}

/// Splits claimed jobs into the groups delivered together: the jobs of one sink that
/// batches ([`Sink::batches`]) form one group, every other job a group of its own.
/// Jobs delivered together, with their sink (`None`: gone from the config).
type Group = (Option<Arc<dyn Sink>>, Vec<Job>);

fn by_sink(sinks: &SinkSet, jobs: Vec<Job>) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for job in jobs {
        let sink = sinks.get(&job.hook, &job.sink).cloned();
        if sink.as_ref().is_some_and(|s| s.batches()) {
            let same_sink = groups.iter_mut().find(|(_, g)| {
                g.first()
                    .is_some_and(|f| f.hook == job.hook && f.sink == job.sink)
            });
            if let Some((_, group)) = same_sink {
                group.push(job);
                continue;
            }
        }
        groups.push((sink, vec![job]));
    }
    groups
}

/// Runs the sink part of one attempt of every job of a group (see [`by_sink`]) in a
/// task of its own, so that a panicking sink counts as a failed attempt (and is
/// eventually dead-lettered) instead of leaving the jobs to be claimed again and again
/// after each lease expiry. Returns one [`Attempt`] per job, in order.
///
/// The attempt is abandoned (and counted as a transient failure) once `limit`
/// passes: past its lease the store may hand the job to another claim, and two
/// attempts of one job at once would deliver it twice.
async fn attempt(sink: Arc<dyn Sink>, jobs: Arc<Vec<Job>>, limit: Duration) -> Vec<Attempt> {
    let count = jobs.len();
    let all_failed = |message: String| {
        (0..count)
            .map(|_| Attempt::Failed(SinkError::transient(message.clone())))
            .collect()
    };
    let mut call = tokio::spawn(async move {
        // Decided before delivery (`Some`), or left to the delivery of `records` (`None`).
        let mut decided = Vec::with_capacity(jobs.len());
        let mut records = Vec::with_capacity(jobs.len());
        for job in jobs.iter() {
            match SinkRecord::from_job(job) {
                Err(e) => decided.push(Some(Attempt::Failed(e))),
                Ok(_) if job.interrupted && sink.contains(&job.hook, &job.uuid).await => {
                    decided.push(Some(Attempt::AlreadyThere))
                }
                Ok(record) => {
                    records.push(record);
                    decided.push(None);
                }
            }
        }
        let delivered = match records.as_slice() {
            [] => Ok(()),
            [one] => sink.deliver(one).await,
            many => sink.deliver_batch(many).await,
        };
        decided
            .into_iter()
            .map(|d| {
                d.unwrap_or_else(|| match &delivered {
                    Ok(()) => Attempt::Delivered,
                    Err(e) => Attempt::Failed(e.clone()),
                })
            })
            .collect::<Vec<_>>()
    });
    let Ok(joined) = tokio::time::timeout(limit, &mut call).await else {
        // Dropping the sink's future ends its work: a command is killed, an HTTP
        // request closed; a file write already under way finishes under its lock.
        call.abort();
        return all_failed(format!(
            "no outcome within {}; abandoned before the job's lease ends",
            humantime::format_duration(limit)
        ));
    };
    match joined {
        Ok(attempts) => attempts,
        Err(e) if e.is_panic() => all_failed("the sink panicked".into()),
        Err(e) => all_failed(format!("the delivery was cancelled: {e}")),
    }
}

/// One group of jobs: deliver, then decide and record each job's outcome (the
/// finishes go to the store together and share its commit). Holds the group's slots
/// until every outcome is recorded, so in-flight work never exceeds `concurrency`.
/// `sink` is `None` when the jobs' sink is gone from the config.
async fn run_group(
    ctx: Arc<Ctx>,
    sink: Option<Arc<dyn Sink>>,
    jobs: Vec<Job>,
    _slots: OwnedSemaphorePermit,
) {
    let jobs = Arc::new(jobs);
    // The sink's time, for each job of the group; none when there is no sink to call.
    let (attempts, took) = match sink {
        Some(sink) => {
            let started = Instant::now();
            let attempts = attempt(sink, jobs.clone(), attempt_limit(ctx.config.lease)).await;
            (attempts, Some(started.elapsed()))
        }
        None => (
            jobs.iter()
                .map(|_| Attempt::Failed(SinkError::permanent(SINK_REMOVED)))
                .collect(),
            None,
        ),
    };
    let done: Vec<(&Job, JobOutcome)> = jobs
        .iter()
        .zip(attempts)
        .map(|(job, result)| (job, outcome(&ctx, job, result, took)))
        .collect();
    let recorded = ctx.store.finish_all(done).await;
    for (job, result) in jobs.iter().zip(recorded) {
        if let Err(e) = result {
            // Nothing else to do: the lease expires and the job is claimed again (at least once).
            tracing::error!(hook = %job.hook, sink = %job.sink, uuid = %job.uuid,
                attempt = job.attempts + 1, error = %e,
                "cannot record the outcome of a delivery; it will be attempted again");
        }
    }
}

/// Turns one job's attempt, which took the sink `took`, into its outcome (metrics,
/// log, backoff).
fn outcome(ctx: &Ctx, job: &Job, result: Attempt, took: Option<Duration>) -> JobOutcome {
    let label = Metrics::sink(&job.hook, &job.sink);
    let attempt_no = job.attempts + 1;
    if let Some(took) = took {
        let outcome = match result {
            Attempt::Delivered | Attempt::AlreadyThere => AttemptOutcome::delivered,
            Attempt::Failed(_) => AttemptOutcome::failed,
        };
        ctx.metrics
            .sink_attempt_seconds
            .get_or_create(&AttemptLabel {
                hook: job.hook.clone(),
                sink: job.sink.clone(),
                outcome,
            })
            .observe(took.as_secs_f64());
    }
    match result {
        Attempt::Delivered => {
            ctx.metrics.sink_deliveries.get_or_create(&label).inc();
            tracing::debug!(hook = %job.hook, sink = %job.sink, uuid = %job.uuid, attempt = attempt_no, "delivered");
            JobOutcome::Delivered
        }
        Attempt::AlreadyThere => {
            ctx.metrics.recovered_skips.get_or_create(&label).inc();
            tracing::info!(hook = %job.hook, sink = %job.sink, uuid = %job.uuid, attempt = attempt_no,
                "interrupted delivery found in the sink; not sent again");
            JobOutcome::Delivered
        }
        Attempt::Failed(e) => {
            ctx.metrics.sink_failures.get_or_create(&label).inc();
            let max_attempts = ctx.config.max_attempts.max(1);
            if e.permanent || attempt_no >= max_attempts {
                ctx.metrics.dead_letters.get_or_create(&label).inc();
                tracing::warn!(hook = %job.hook, sink = %job.sink, uuid = %job.uuid, attempt = attempt_no,
                    permanent = e.permanent, error = %e.message, "delivery failed; dead-lettered");
                JobOutcome::Dead { error: e.message }
            } else {
                ctx.metrics.retries.get_or_create(&label).inc();
                let delay = backoff(
                    job.attempts,
                    ctx.config.backoff_initial,
                    ctx.config.backoff_max,
                );
                tracing::info!(hook = %job.hook, sink = %job.sink, uuid = %job.uuid, attempt = attempt_no,
                    retry_in_ms = delay.as_millis() as u64, error = %e.message, "delivery failed; will retry");
                JobOutcome::Retry {
                    at: now_millis().saturating_add(millis(delay)),
                    error: e.message,
                }
            }
        }
    }
}

/// How long one attempt may run: nine tenths of the lease, leaving the rest to
/// record the outcome before the lease ends.
fn attempt_limit(lease: Duration) -> Duration {
    (lease / 10 * 9).max(Duration::from_millis(1))
}

fn millis(d: Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
}

/// Delay before the next attempt after `attempts` earlier failed ones plus this one:
/// a random duration between zero and `initial * 2^attempts`, capped at `max`.
///
/// Full jitter spreads the retries of a burst that failed together (a sink outage),
/// so they do not all come back at the same instant.
fn backoff(attempts: u32, initial: Duration, max: Duration) -> Duration {
    let factor = 1u32.checked_shl(attempts.min(31)).unwrap_or(u32::MAX);
    let ceiling = initial.saturating_mul(factor).min(max);
    let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(fastrand::u64(0..=ceiling_ms))
}

/// Deletes finished events older than `retention`, once at start and then every
/// [`PRUNE_INTERVAL`], until shutdown.
async fn prune(store: Arc<dyn Store>, retention: Duration, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(PRUNE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let before = now_millis().saturating_sub(millis(retention));
        tokio::select! {
            biased;
            // The store finishes a started prune on its own; nothing is lost by not waiting.
            _ = shutdown.cancelled() => return,
            pruned = store.prune(before) => match pruned {
                Ok(0) => {}
                Ok(n) => tracing::info!(events = n, retention = %humantime::format_duration(retention), "pruned events past retention"),
                Err(e) => tracing::warn!(error = %e, "cannot prune old events; will try again"),
            },
        }
    }
}

#[cfg(test)]
mod tests;
