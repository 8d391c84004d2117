//! Unit tests of `worker`.

use super::*;
use crate::store::{
    Delivery, EventDetail, EventQuery, EventSummary, IngestOutcome, Inspect, JobCounts, JobState,
    Leases, Queue, ReplayTarget, SinkJobs, StoreError, StoreStats,
};
use async_trait::async_trait;
use std::sync::atomic::AtomicUsize;
use std::sync::Mutex;

/// One job in the test store.
struct Row {
    job: Job,
    state: JobState,
    due: Millis,
    leased_until: Millis,
    last_error: Option<String>,
}

/// A store in memory with the lease semantics of the contract: claim takes due,
/// unleased, pending jobs; finish is ignored unless the lease token matches.
#[derive(Default)]
struct MemStore {
    rows: Mutex<Vec<Row>>,
    next_token: AtomicI64,
    prunes: AtomicUsize,
    /// Reads of the gauges' counts, and how long each takes.
    count_reads: AtomicUsize,
    count_delay: Mutex<Duration>,
}

impl MemStore {
    /// A store holding `n` pending jobs `u-0` .. `u-{n-1}` for the sink "out".
    fn with_jobs(n: usize) -> Arc<Self> {
        let store = Arc::new(Self::default());
        for i in 0..n {
            store.add("okta", "out", &format!("u-{i}"), false);
        }
        store
    }

    fn add(&self, hook: &str, sink: &str, uuid: &str, interrupted: bool) {
        let mut rows = self.rows.lock().expect("lock");
        let id = rows.len() as i64 + 1;
        rows.push(Row {
            job: Job {
                id,
                lease_token: 0,
                hook: hook.into(),
                sink: sink.into(),
                uuid: uuid.into(),
                event_id: format!("e-{id}"),
                event_type: "user.session.start".into(),
                received_at: now_millis(),
                attempts: 0,
                interrupted,
                recovered: false,
                payload: format!(r#"{{"uuid":"{uuid}"}}"#),
            },
            state: JobState::Pending,
            due: 0,
            leased_until: 0,
            last_error: None,
        });
    }

    fn state(&self, uuid: &str) -> (JobState, u32, Option<String>) {
        let rows = self.rows.lock().expect("lock");
        let row = rows.iter().find(|r| r.job.uuid == uuid).expect("row");
        (row.state, row.job.attempts, row.last_error.clone())
    }

    fn count(&self, state: JobState) -> usize {
        let rows = self.rows.lock().expect("lock");
        rows.iter().filter(|r| r.state == state).count()
    }
}

#[async_trait]
impl Queue for MemStore {
    async fn ingest(&self, _delivery: Delivery) -> Result<IngestOutcome, StoreError> {
        Ok(IngestOutcome::default())
    }
    async fn claim(&self, max: usize, lease: Duration) -> Result<Vec<Job>, StoreError> {
        let now = now_millis();
        let mut rows = self.rows.lock().expect("lock");
        let mut out = Vec::new();
        for row in rows.iter_mut() {
            if out.len() >= max {
                break;
            }
            if row.state == JobState::Pending && row.due <= now && row.leased_until <= now {
                row.leased_until = now + lease.as_millis() as i64;
                row.job.lease_token = self.next_token.fetch_add(1, Ordering::Relaxed) + 1;
                out.push(row.job.clone());
            }
        }
        Ok(out)
    }
    async fn finish(&self, job: &Job, outcome: JobOutcome) -> Result<(), StoreError> {
        let mut rows = self.rows.lock().expect("lock");
        let Some(row) = rows
            .iter_mut()
            .find(|r| r.job.id == job.id && r.job.lease_token == job.lease_token)
        else {
            return Ok(());
        };
        row.job.attempts += 1;
        row.job.interrupted = false;
        row.leased_until = 0;
        match outcome {
            JobOutcome::Delivered => row.state = JobState::Delivered,
            JobOutcome::Retry { at, error } => {
                row.due = at;
                row.last_error = Some(error);
            }
            JobOutcome::Dead { error } => {
                row.state = JobState::Dead;
                row.last_error = Some(error);
            }
        }
        Ok(())
    }
    async fn job_counts(&self) -> Result<JobCounts, StoreError> {
        self.count_reads.fetch_add(1, Ordering::Relaxed);
        let delay = *self.count_delay.lock().expect("lock");
        tokio::time::sleep(delay).await;
        let rows = self.rows.lock().expect("lock");
        let mut sinks: Vec<SinkJobs> = Vec::new();
        for row in rows.iter().filter(|r| r.state != JobState::Delivered) {
            let at = match sinks
                .iter()
                .position(|s| s.hook == row.job.hook && s.sink == row.job.sink)
            {
                Some(at) => at,
                None => {
                    sinks.push(SinkJobs {
                        hook: row.job.hook.clone(),
                        sink: row.job.sink.clone(),
                        ..SinkJobs::default()
                    });
                    sinks.len() - 1
                }
            };
            let s = &mut sinks[at];
            if row.state == JobState::Dead {
                s.dead += 1;
            } else {
                s.backlog += 1;
                let at = row.job.received_at;
                s.oldest_pending = Some(s.oldest_pending.map_or(at, |o| o.min(at)));
            }
        }
        Ok(JobCounts { sinks })
    }
    async fn prune(&self, _before: Millis) -> Result<u64, StoreError> {
        self.prunes.fetch_add(1, Ordering::Relaxed);
        Ok(0)
    }
}

#[async_trait]
impl Inspect for MemStore {
    async fn list(&self, _query: &EventQuery) -> Result<Vec<EventSummary>, StoreError> {
        Ok(Vec::new())
    }
    async fn get(&self, _uuid: &str) -> Result<Vec<EventDetail>, StoreError> {
        Ok(Vec::new())
    }
    async fn replay(&self, _target: &ReplayTarget) -> Result<u64, StoreError> {
        Ok(0)
    }
    async fn stats(&self) -> Result<StoreStats, StoreError> {
        Ok(StoreStats {
            backlog: self.count(JobState::Pending) as u64,
            dead: self.count(JobState::Dead) as u64,
            events: self.rows.lock().expect("lock").len() as u64,
        })
    }
}

#[async_trait]
impl Leases for MemStore {}

#[async_trait]
impl Store for MemStore {
    async fn check_writable(&self) -> Result<(), StoreError> {
        Ok(())
    }
    async fn close(&self) {}
}

/// A scripted sink: fails the first `fail_first` calls (permanently or not),
/// sleeps `delay` per call, and records what it saw.
#[derive(Default)]
struct TestSink {
    fail_first: usize,
    fail_always: bool,
    permanent: bool,
    delay: Duration,
    holds: bool,
    /// Answers `true` to `batches`: the worker hands it groups.
    batching: bool,
    calls: AtomicUsize,
    finished: AtomicUsize,
    /// Jobs in the sink's hands now, and at most.
    current: AtomicUsize,
    max_seen: AtomicUsize,
    attempts_seen: Mutex<Vec<u32>>,
    /// The size of each `deliver_batch` call.
    batches_seen: Mutex<Vec<usize>>,
}

impl TestSink {
    /// One call of the sink, for one record or a batch: fails as configured.
    async fn call(&self, records: &[SinkRecord<'_>]) -> Result<(), SinkError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        self.attempts_seen
            .lock()
            .expect("lock")
            .extend(records.iter().map(|r| r.attempt));
        let now = self.current.fetch_add(records.len(), Ordering::SeqCst) + records.len();
        self.max_seen.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.current.fetch_sub(records.len(), Ordering::SeqCst);
        self.finished.fetch_add(records.len(), Ordering::SeqCst);
        if self.fail_always || n < self.fail_first {
            Err(if self.permanent {
                SinkError::permanent("rejected")
            } else {
                SinkError::transient("unavailable")
            })
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Sink for TestSink {
    async fn deliver(&self, record: &SinkRecord<'_>) -> Result<(), SinkError> {
        self.call(std::slice::from_ref(record)).await
    }
    fn batches(&self) -> bool {
        self.batching
    }
    async fn deliver_batch(&self, records: &[SinkRecord<'_>]) -> Result<(), SinkError> {
        self.batches_seen.lock().expect("lock").push(records.len());
        self.call(records).await
    }
    async fn contains(&self, _hook: &str, _uuid: &str) -> bool {
        self.holds
    }
}

fn config(concurrency: usize, max_attempts: u32, poll: Duration) -> WorkerConfig {
    WorkerConfig {
        concurrency,
        max_attempts,
        backoff_initial: Duration::from_millis(5),
        backoff_max: Duration::from_millis(20),
        lease: Duration::from_secs(60),
        poll_interval: poll,
    }
}

struct Running {
    store: Arc<MemStore>,
    metrics: Arc<Metrics>,
    waker: Waker,
    handle: WorkerHandle,
    stop: CancellationToken,
}

fn start(store: Arc<MemStore>, sink: Arc<TestSink>, config: WorkerConfig) -> Running {
    let mut sinks = SinkSet::default();
    sinks.insert("okta", "out", sink);
    let metrics = Arc::new(Metrics::new());
    let (waker, rx) = wake_channel();
    let stop = CancellationToken::new();
    let handle = spawn(
        store.clone(),
        Arc::new(arc_swap::ArcSwap::from_pointee(sinks)),
        config,
        Duration::from_secs(3600),
        metrics.clone(),
        rx,
        stop.clone(),
    );
    Running {
        store,
        metrics,
        waker,
        handle,
        stop,
    }
}

impl Running {
    async fn stop(self) -> (Arc<MemStore>, Arc<Metrics>) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.handle.task)
            .await
            .expect("workers stop")
            .expect("no panic");
        (self.store, self.metrics)
    }
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn counter(
    family: &prometheus_client::metrics::family::Family<
        crate::metrics::SinkLabel,
        prometheus_client::metrics::counter::Counter,
    >,
) -> u64 {
    family.get_or_create(&Metrics::sink("okta", "out")).get()
}

const FAST: Duration = Duration::from_millis(10);

#[tokio::test]
async fn transient_failures_are_retried_until_delivered() {
    let store = Arc::new(MemStore::default());
    store.add("okta", "out", "u-1", false);
    let sink = Arc::new(TestSink {
        fail_first: 2,
        ..Default::default()
    });
    let w = start(store.clone(), sink.clone(), config(4, 5, FAST));
    wait_for("delivery", || store.state("u-1").0 == JobState::Delivered).await;
    let (store, metrics) = w.stop().await;
    assert_eq!(store.state("u-1").1, 3);
    assert_eq!(*sink.attempts_seen.lock().expect("lock"), vec![1, 2, 3]);
    assert_eq!(counter(&metrics.sink_failures), 2);
    assert_eq!(counter(&metrics.retries), 2);
    assert_eq!(counter(&metrics.sink_deliveries), 1);
    assert_eq!(counter(&metrics.dead_letters), 0);
}

#[tokio::test]
async fn permanent_failures_are_dead_at_once() {
    let store = Arc::new(MemStore::default());
    store.add("okta", "out", "u-1", false);
    let sink = Arc::new(TestSink {
        fail_always: true,
        permanent: true,
        ..Default::default()
    });
    let w = start(store.clone(), sink.clone(), config(4, 5, FAST));
    wait_for("dead letter", || store.state("u-1").0 == JobState::Dead).await;
    let (store, metrics) = w.stop().await;
    let (_, attempts, error) = store.state("u-1");
    assert_eq!(attempts, 1);
    assert_eq!(error.as_deref(), Some("rejected"));
    assert_eq!(sink.calls.load(Ordering::SeqCst), 1);
    assert_eq!(counter(&metrics.dead_letters), 1);
    assert_eq!(counter(&metrics.retries), 0);
}

#[tokio::test]
async fn max_attempts_ends_in_a_dead_letter() {
    let store = Arc::new(MemStore::default());
    store.add("okta", "out", "u-1", false);
    let sink = Arc::new(TestSink {
        fail_always: true,
        ..Default::default()
    });
    let w = start(store.clone(), sink.clone(), config(4, 3, FAST));
    wait_for("dead letter", || store.state("u-1").0 == JobState::Dead).await;
    let (store, metrics) = w.stop().await;
    assert_eq!(store.state("u-1").1, 3);
    assert_eq!(sink.calls.load(Ordering::SeqCst), 3);
    assert_eq!(counter(&metrics.retries), 2);
    assert_eq!(counter(&metrics.dead_letters), 1);
    assert_eq!(counter(&metrics.sink_failures), 3);
}

#[tokio::test]
async fn a_missing_sink_is_dead() {
    let store = Arc::new(MemStore::default());
    store.add("okta", "removed", "u-1", false);
    let w = start(
        store.clone(),
        Arc::new(TestSink::default()),
        config(4, 5, FAST),
    );
    wait_for("dead letter", || store.state("u-1").0 == JobState::Dead).await;
    let (store, _) = w.stop().await;
    assert_eq!(store.state("u-1").2.as_deref(), Some(super::SINK_REMOVED));
}

#[tokio::test]
async fn deliveries_in_flight_never_exceed_concurrency() {
    let store = MemStore::with_jobs(24);
    let sink = Arc::new(TestSink {
        delay: Duration::from_millis(30),
        ..Default::default()
    });
    let w = start(store.clone(), sink.clone(), config(4, 5, FAST));
    wait_for("all delivered", || store.count(JobState::Delivered) == 24).await;
    let (_, metrics) = w.stop().await;
    assert_eq!(sink.max_seen.load(Ordering::SeqCst), 4);
    assert_eq!(counter(&metrics.sink_deliveries), 24);
}

#[tokio::test]
async fn a_wake_sends_a_new_job_promptly() {
    let store = Arc::new(MemStore::default());
    let sink = Arc::new(TestSink::default());
    // Polling alone would take a minute.
    let w = start(
        store.clone(),
        sink.clone(),
        config(4, 5, Duration::from_secs(60)),
    );
    // Let the dispatcher find the store empty and go to sleep.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stored = Instant::now();
    store.add("okta", "out", "u-1", false);
    w.waker.wake();
    wait_for("delivery", || store.state("u-1").0 == JobState::Delivered).await;
    assert!(stored.elapsed() < Duration::from_secs(2));
    w.stop().await;
}

#[tokio::test]
async fn shutdown_waits_for_the_delivery_in_flight() {
    let store = Arc::new(MemStore::default());
    store.add("okta", "out", "u-1", false);
    let sink = Arc::new(TestSink {
        delay: Duration::from_millis(300),
        ..Default::default()
    });
    let w = start(store.clone(), sink.clone(), config(4, 5, FAST));
    wait_for("the sink call", || sink.calls.load(Ordering::SeqCst) == 1).await;
    let (store, _) = w.stop().await;
    assert_eq!(sink.finished.load(Ordering::SeqCst), 1);
    assert_eq!(store.state("u-1").0, JobState::Delivered);
}

#[tokio::test]
async fn an_interrupted_job_the_sink_holds_is_not_sent_again() {
    let store = Arc::new(MemStore::default());
    store.add("okta", "out", "u-1", true);
    let sink = Arc::new(TestSink {
        holds: true,
        ..Default::default()
    });
    let w = start(store.clone(), sink.clone(), config(4, 5, FAST));
    wait_for("recorded", || store.state("u-1").0 == JobState::Delivered).await;
    let (_, metrics) = w.stop().await;
    assert_eq!(sink.calls.load(Ordering::SeqCst), 0);
    assert_eq!(counter(&metrics.recovered_skips), 1);
    assert_eq!(counter(&metrics.sink_deliveries), 0);
}

#[tokio::test]
async fn only_interrupted_jobs_ask_the_sink() {
    let store = Arc::new(MemStore::default());
    store.add("okta", "out", "u-1", false);
    let sink = Arc::new(TestSink {
        holds: true,
        ..Default::default()
    });
    let w = start(store.clone(), sink.clone(), config(4, 5, FAST));
    wait_for("delivery", || store.state("u-1").0 == JobState::Delivered).await;
    w.stop().await;
    assert_eq!(sink.calls.load(Ordering::SeqCst), 1);
}

fn batching() -> TestSink {
    TestSink {
        batching: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_batching_sink_gets_a_claim_in_one_call() {
    let store = MemStore::with_jobs(10);
    let sink = Arc::new(batching());
    let w = start(store.clone(), sink.clone(), config(16, 5, FAST));
    wait_for("delivery", || store.count(JobState::Delivered) == 10).await;
    let (_, metrics) = w.stop().await;
    assert_eq!(*sink.batches_seen.lock().expect("lock"), [10]);
    assert_eq!(sink.calls.load(Ordering::SeqCst), 1);
    assert_eq!(counter(&metrics.sink_deliveries), 10);
}

#[tokio::test]
async fn batches_hold_one_slot_per_job() {
    let store = MemStore::with_jobs(10);
    let sink = Arc::new(TestSink {
        delay: Duration::from_millis(20),
        ..batching()
    });
    let w = start(store.clone(), sink.clone(), config(4, 5, FAST));
    wait_for("delivery", || store.count(JobState::Delivered) == 10).await;
    w.stop().await;
    let batches = sink.batches_seen.lock().expect("lock").clone();
    assert!(batches.iter().all(|&n| n <= 4), "{batches:?}");
    assert_eq!(sink.finished.load(Ordering::SeqCst), 10);
    assert!(sink.max_seen.load(Ordering::SeqCst) <= 4);
}

#[tokio::test]
async fn a_failed_batch_retries_every_job_of_it() {
    let store = MemStore::with_jobs(5);
    let sink = Arc::new(TestSink {
        fail_first: 1,
        ..batching()
    });
    let w = start(store.clone(), sink.clone(), config(16, 5, FAST));
    wait_for("delivery", || store.count(JobState::Delivered) == 5).await;
    let (store, metrics) = w.stop().await;
    assert_eq!(counter(&metrics.retries), 5);
    assert_eq!(counter(&metrics.sink_deliveries), 5);
    for i in 0..5 {
        let (state, attempts, _) = store.state(&format!("u-{i}"));
        assert_eq!((state, attempts), (JobState::Delivered, 2));
    }
    let mut seen = sink.attempts_seen.lock().expect("lock").clone();
    seen.sort_unstable();
    assert_eq!(seen, [1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
}

#[tokio::test]
async fn an_interrupted_job_the_sink_holds_is_left_out_of_its_batch() {
    let store = Arc::new(MemStore::default());
    store.add("okta", "out", "u-0", true);
    for i in 1..4 {
        store.add("okta", "out", &format!("u-{i}"), false);
    }
    let sink = Arc::new(TestSink {
        holds: true,
        ..batching()
    });
    let w = start(store.clone(), sink.clone(), config(16, 5, FAST));
    wait_for("delivery", || store.count(JobState::Delivered) == 4).await;
    let (_, metrics) = w.stop().await;
    assert_eq!(*sink.batches_seen.lock().expect("lock"), [3]);
    assert_eq!(counter(&metrics.recovered_skips), 1);
    assert_eq!(counter(&metrics.sink_deliveries), 3);
}

/// Panics on every call.
struct PanickingSink;

#[async_trait]
impl Sink for PanickingSink {
    async fn deliver(&self, _record: &SinkRecord<'_>) -> Result<(), SinkError> {
        panic!("sink bug")
    }
}

#[tokio::test]
async fn a_panicking_sink_counts_as_a_failed_attempt() {
    let store = Arc::new(MemStore::default());
    store.add("okta", "out", "u-1", false);
    let mut sinks = SinkSet::default();
    sinks.insert("okta", "out", Arc::new(PanickingSink));
    let (_waker, rx) = wake_channel();
    let stop = CancellationToken::new();
    let handle = spawn(
        store.clone(),
        Arc::new(arc_swap::ArcSwap::from_pointee(sinks)),
        config(2, 2, FAST),
        Duration::from_secs(3600),
        Arc::new(Metrics::new()),
        rx,
        stop.clone(),
    );
    wait_for("dead letter", || store.state("u-1").0 == JobState::Dead).await;
    stop.cancel();
    handle.task.await.expect("no panic escapes");
    assert_eq!(store.state("u-1").1, 2);
}

#[tokio::test]
async fn heartbeat_gauges_and_pruner_run() {
    let store = Arc::new(MemStore::default());
    store.add("okta", "gone", "u-1", false);
    let w = start(
        store.clone(),
        Arc::new(TestSink::default()),
        config(4, 5, FAST),
    );
    wait_for("dead letter", || store.state("u-1").0 == JobState::Dead).await;
    wait_for("pruner", || store.prunes.load(Ordering::Relaxed) >= 1).await;
    assert!(w.handle.alive(Duration::from_secs(5)));
    // Gauges are refreshed at most once a second.
    let metrics = w.metrics.clone();
    let gone = Metrics::sink("okta", "gone");
    wait_for("gauges", || {
        metrics
            .dead_in_store
            .get(&gone)
            .is_some_and(|g| g.get() == 1)
    })
    .await;
    assert_eq!(metrics.backlog.get_or_create(&gone).get(), 0);
    let stop = w.stop.clone();
    let handle = w.handle;
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), async {
        while !handle.task.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("stopped");
    assert!(!handle.alive(Duration::from_secs(5)));
}

#[tokio::test]
async fn an_attempt_is_abandoned_before_its_lease_ends() {
    let store = Arc::new(MemStore::default());
    store.add("okta", "out", "u-1", false);
    let sink = Arc::new(TestSink {
        delay: Duration::from_secs(30),
        ..Default::default()
    });
    let mut cfg = config(4, 1, FAST);
    cfg.lease = Duration::from_millis(200);
    let w = start(store.clone(), sink.clone(), cfg);
    wait_for("dead letter", || store.state("u-1").0 == JobState::Dead).await;
    let (store, _) = w.stop().await;
    let (_, attempts, error) = store.state("u-1");
    assert_eq!(attempts, 1);
    assert!(error.expect("error").contains("abandoned"));
    assert_eq!(sink.finished.load(Ordering::SeqCst), 0);
}

#[test]
fn backoff_grows_exponentially_under_the_cap() {
    let initial = Duration::from_secs(1);
    let max = Duration::from_secs(300);
    for attempts in 0..64 {
        let ceiling = initial
            .saturating_mul(1u32.checked_shl(attempts.min(31)).unwrap_or(u32::MAX))
            .min(max);
        for _ in 0..50 {
            assert!(backoff(attempts, initial, max) <= ceiling);
        }
    }
    // Full jitter still reaches past the previous ceiling now and then.
    let spread = (0..200)
        .map(|_| backoff(4, initial, max))
        .max()
        .expect("some");
    assert!(spread > Duration::from_secs(8), "{spread:?}");
    assert_eq!(backoff(100, Duration::ZERO, max), Duration::ZERO);
}

#[tokio::test]
async fn a_slow_count_is_read_less_often() {
    // A read of 100 ms waits 20 times that (2 s), not the usual second, before the next.
    let store = Arc::new(MemStore::default());
    *store.count_delay.lock().expect("lock") = Duration::from_millis(100);
    let stop = CancellationToken::new();
    let task = tokio::spawn(refresh_gauges(
        store.clone(),
        Arc::new(Metrics::new()),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(store.count_reads.load(Ordering::Relaxed), 1);
    stop.cancel();
    task.await.expect("stops at shutdown");

    // A quick read comes back every second.
    *store.count_delay.lock().expect("lock") = Duration::ZERO;
    store.count_reads.store(0, Ordering::Relaxed);
    let stop = CancellationToken::new();
    let task = tokio::spawn(refresh_gauges(
        store.clone(),
        Arc::new(Metrics::new()),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(store.count_reads.load(Ordering::Relaxed), 2);
    stop.cancel();
    task.await.expect("stops at shutdown");
}
