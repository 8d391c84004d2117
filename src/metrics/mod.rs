//! Prometheus metrics, one registry per running service.
//!
//! A registry per [`Metrics`] value (not a global recorder) so that several
//! services in one process, as in the integration tests, count separately.

mod labels;
mod series;

pub use labels::*;
use series::at_zero;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard};

/// Every metric hookwarden exports.
pub struct Metrics {
    registry: Registry,
    /// Requests to hook endpoints by hook and HTTP status.
    pub requests: Family<HookStatus, Counter>,
    /// Requests refused before or instead of being processed, by reason.
    pub rejections: Family<RejectionLabel, Counter>,
    /// Time from request start to the acknowledgement of a delivery (store commit included).
    pub ack_seconds: Family<HookLabel, Histogram>,
    /// Events stored for the first time.
    pub events_stored: Family<HookLabel, Counter>,
    /// Events received again (Okta retries and duplicates), not processed again.
    pub duplicates: Family<HookLabel, Counter>,
    /// Sink deliveries that succeeded.
    pub sink_deliveries: Family<SinkLabel, Counter>,
    /// Sink attempts that failed.
    pub sink_failures: Family<SinkLabel, Counter>,
    /// Failed attempts scheduled for another try.
    pub retries: Family<SinkLabel, Counter>,
    /// Jobs given up on (dead letters).
    pub dead_letters: Family<SinkLabel, Counter>,
    /// Jobs skipped after a crash because the sink already held the event.
    pub recovered_skips: Family<SinkLabel, Counter>,
    /// Time of each delivery attempt to a sink (a batch's time for each of its jobs),
    /// by outcome.
    pub sink_attempt_seconds: Family<AttemptLabel, Histogram>,
    /// Jobs waiting for a sink, per hook and sink, as last read from the store.
    pub backlog: Family<SinkLabel, Gauge>,
    /// Dead-lettered jobs in the store, per hook and sink, as last read.
    pub dead_in_store: Family<SinkLabel, Gauge>,
    /// Age of the oldest pending job per hook and sink (0: none pending): its event's
    /// arrival as last read from the store, against the clock at each render.
    pub oldest_pending_age: Family<SinkLabel, Gauge<f64, AtomicU64>>,
    /// Connections closed at accept because `server.max_connections` was reached.
    pub connections_refused: Counter,
    /// Open connections on the public listener.
    pub connections_open: Gauge,
    /// Certificate reloads by result (`ok`, `error`).
    pub tls_reloads: Family<ResultLabel, Counter>,
    /// The `notAfter` of the certificate the public listener serves, in seconds since
    /// the epoch (0: plain HTTP), set when it is loaded and at every reload.
    pub tls_not_after: Gauge,
    /// 1 when `/readyz` answers 200 (a store write commits, the workers turn), else 0;
    /// set by each `/readyz` and each `/metrics`.
    pub ready: Gauge,
    /// Configuration reloads by result (`ok`, `refused`).
    pub config_reloads: Family<ResultLabel, Counter>,
    /// The generation of the configuration in service: 1 at start, one more per reload
    /// that took effect.
    pub config_generation: Gauge,
    /// Inline hook calls by outcome.
    pub inline_calls: Family<InlineLabel, Counter>,
    /// Inline hook time from request start to the answer.
    pub inline_seconds: Family<HookLabel, Histogram>,
    /// Inline hook time spent in the handler alone (rules, script or forward).
    pub inline_handler_seconds: Family<HookLabel, Histogram>,
    /// System Log reconciliation passes completed, per hook.
    pub reconcile_passes: Family<HookLabel, Counter>,
    /// System Log events fetched by reconciliation, per hook.
    pub reconcile_fetched: Family<HookLabel, Counter>,
    /// Events reconciliation stored as recovered (Okta's hook never delivered them).
    pub reconcile_recovered: Family<HookLabel, Counter>,
    /// Reconciliation passes that failed, by hook and kind.
    pub reconcile_errors: Family<ReconcileErrorLabel, Counter>,
    /// The configured hooks and the store's sinks the series above were set for.
    series: Mutex<series::Series>,
}

fn inline_histogram() -> Histogram {
    // 50 µs to ~3.3 s: rules answer in microseconds, a forward in milliseconds; Okta waits 3 s.
    Histogram::new(exponential_buckets(0.00005, 2.0, 17))
}

fn ack_histogram() -> Histogram {
    // 0.5 ms to ~4 s: a durable ack is milliseconds; Okta gives up at 3 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}

fn attempt_histogram() -> Histogram {
    // 0.5 ms to ~65 s: a line written to a file takes well under a millisecond, an HTTP
    // sink or a command milliseconds to seconds, and an attempt ends at nine tenths of
    // the lease (worker.lease, 60 s by default).
    Histogram::new(exponential_buckets(0.0005, 2.0, 18))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("hookwarden");
        let requests = Family::default();
        let rejections = Family::default();
        let ack_seconds = Family::<HookLabel, Histogram>::new_with_constructor(
            ack_histogram as fn() -> Histogram,
        );
        let events_stored = Family::default();
        let duplicates = Family::default();
        let sink_deliveries = Family::default();
        let sink_failures = Family::default();
        let retries = Family::default();
        let dead_letters = Family::default();
        let recovered_skips = Family::default();
        let sink_attempt_seconds = Family::<AttemptLabel, Histogram>::new_with_constructor(
            attempt_histogram as fn() -> Histogram,
        );
        let backlog = Family::default();
        let dead_in_store = Family::default();
        let oldest_pending_age = Family::default();
        let connections_refused = Counter::default();
        let connections_open = Gauge::default();
        let tls_reloads = Family::default();
        let tls_not_after = Gauge::default();
        let ready = Gauge::default();
        let config_reloads = Family::default();
        let config_generation = Gauge::default();
        let inline_calls = Family::default();
        let inline_seconds = Family::<HookLabel, Histogram>::new_with_constructor(
            inline_histogram as fn() -> Histogram,
        );
        let inline_handler_seconds = Family::<HookLabel, Histogram>::new_with_constructor(
            inline_histogram as fn() -> Histogram,
        );
        let reconcile_passes = Family::default();
        let reconcile_fetched = Family::default();
        let reconcile_recovered = Family::default();
        let reconcile_errors = Family::default();
        registry.register(
            "reconcile_passes",
            "System Log reconciliation passes completed",
            reconcile_passes.clone(),
        );
        registry.register(
            "reconcile_fetched",
            "System Log events fetched by reconciliation",
            reconcile_fetched.clone(),
        );
        registry.register(
            "reconcile_recovered",
            "Events stored as recovered: found in the System Log, never delivered by the hook",
            reconcile_recovered.clone(),
        );
        registry.register(
            "reconcile_errors",
            "System Log reconciliation passes that failed, by kind",
            reconcile_errors.clone(),
        );
        registry.register(
            "requests",
            "Requests to hook endpoints by hook and status",
            requests.clone(),
        );
        registry.register(
            "rejections",
            "Requests refused, by reason",
            rejections.clone(),
        );
        registry.register(
            "ack_seconds",
            "Time to acknowledge an event hook delivery",
            ack_seconds.clone(),
        );
        registry.register(
            "events_stored",
            "Events stored for the first time",
            events_stored.clone(),
        );
        registry.register(
            "duplicate_events",
            "Events received again and not processed again",
            duplicates.clone(),
        );
        registry.register(
            "sink_deliveries",
            "Events delivered to a sink",
            sink_deliveries.clone(),
        );
        registry.register(
            "sink_failures",
            "Failed sink attempts",
            sink_failures.clone(),
        );
        registry.register(
            "sink_retries",
            "Failed attempts scheduled again",
            retries.clone(),
        );
        registry.register(
            "dead_letters",
            "Deliveries given up on",
            dead_letters.clone(),
        );
        registry.register(
            "recovered_skips",
            "Interrupted deliveries skipped because the sink already had the event",
            recovered_skips.clone(),
        );
        registry.register(
            "sink_attempt_seconds",
            "Time of each delivery attempt to a sink, by outcome (a batch's time for each of its jobs)",
            sink_attempt_seconds.clone(),
        );
        registry.register(
            "backlog",
            "Deliveries waiting for a sink, per hook and sink",
            backlog.clone(),
        );
        registry.register(
            "oldest_pending_age_seconds",
            "Age of the oldest delivery waiting for a sink, since its event arrived (0: none waits)",
            oldest_pending_age.clone(),
        );
        registry.register(
            "dead_letters_stored",
            "Dead letters in the store, per hook and sink",
            dead_in_store.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections closed at accept because the limit was reached",
            connections_refused.clone(),
        );
        registry.register(
            "connections_open",
            "Open connections on the public listener",
            connections_open.clone(),
        );
        registry.register(
            "tls_reloads",
            "Certificate reloads by result",
            tls_reloads.clone(),
        );
        registry.register(
            "tls_cert_not_after_timestamp_seconds",
            "Expiry (notAfter) of the public listener's certificate, in seconds since the epoch (0: plain HTTP)",
            tls_not_after.clone(),
        );
        registry.register(
            "ready",
            "1 when /readyz answers 200 (a store write commits and the workers turn), else 0",
            ready.clone(),
        );
        registry.register(
            "build",
            "The running version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register(
            "config_reloads",
            "Configuration reloads by result (ok: in service; refused: the running configuration stays)",
            config_reloads.clone(),
        );
        registry.register(
            "config_generation",
            "Generation of the configuration in service (1 at start, +1 per reload in service)",
            config_generation.clone(),
        );
        registry.register(
            "inline_calls",
            "Inline hook calls by outcome",
            inline_calls.clone(),
        );
        registry.register(
            "inline_seconds",
            "Inline hook answer time",
            inline_seconds.clone(),
        );
        registry.register(
            "inline_handler_seconds",
            "Inline hook time spent in the handler",
            inline_handler_seconds.clone(),
        );
        let m = Metrics {
            registry,
            requests,
            rejections,
            ack_seconds,
            events_stored,
            duplicates,
            sink_deliveries,
            sink_failures,
            retries,
            dead_letters,
            recovered_skips,
            sink_attempt_seconds,
            backlog,
            dead_in_store,
            oldest_pending_age,
            connections_refused,
            connections_open,
            tls_reloads,
            tls_not_after,
            ready,
            config_reloads,
            config_generation,
            inline_calls,
            inline_seconds,
            inline_handler_seconds,
            reconcile_passes,
            reconcile_fetched,
            reconcile_recovered,
            reconcile_errors,
            series: Mutex::default(),
        };
        for result in ["ok", "error"] {
            at_zero(&m.tls_reloads, &ResultLabel { result });
        }
        for result in ["ok", "refused"] {
            at_zero(&m.config_reloads, &ResultLabel { result });
        }
        m
    }

    /// Counts a refused request.
    pub fn reject(&self, hook: &str, reason: Reason) {
        self.rejections
            .get_or_create(&RejectionLabel {
                hook: hook.to_owned(),
                reason,
            })
            .inc();
    }

    /// Sink label helper.
    pub fn sink(hook: &str, sink: &str) -> SinkLabel {
        SinkLabel {
            hook: hook.to_owned(),
            sink: sink.to_owned(),
        }
    }

    /// The text exposition format (OpenMetrics), for `/metrics`.
    pub fn render(&self) -> String {
        self.set_ages(&lock(&self.series), crate::time::now_millis());
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Every family as `/metrics` shows it, with its labels: read from the text of a
    /// registry holding one hook of each kind ([`series::Hooks::specimen`]), so that
    /// every labelled family has a series to read its labels from. The one home of the
    /// list that the docs' table, the dashboard's and the alert rules' checks use.
    pub fn catalogue() -> Vec<FamilyInfo> {
        let m = Metrics::new();
        let specimen = series::Hooks::specimen();
        m.put_in_service(&specimen, 1);
        m.reconciling(specimen.event_hooks());
        // Reconciliation's error kinds are the API client's: one stands for them all.
        for hook in specimen.event_hooks() {
            at_zero(
                &m.reconcile_errors,
                &ReconcileErrorLabel {
                    hook: hook.to_owned(),
                    kind: "network",
                },
            );
        }
        let text = m.render();
        let mut out: Vec<FamilyInfo> = Vec::new();
        let mut help = "";
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                help = rest.split_once(' ').map_or("", |(_, h)| h);
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
                let samples = match kind {
                    "counter" => vec![format!("{name}_total")],
                    "histogram" => ["_bucket", "_sum", "_count"]
                        .map(|s| format!("{name}{s}"))
                        .to_vec(),
                    "info" => vec![format!("{name}_info")],
                    _ => vec![name.to_owned()],
                };
                out.push(FamilyInfo {
                    name: name.to_owned(),
                    kind: kind.to_owned(),
                    help: help.to_owned(),
                    samples,
                    labels: Vec::new(),
                    values: BTreeMap::new(),
                });
            } else if let (Some(family), Some((series, _))) =
                (out.last_mut(), line.rsplit_once(' '))
            {
                let labels = series
                    .split_once('{')
                    .map_or("", |(_, l)| l.trim_end_matches('}'));
                for pair in labels.split(',').filter(|p| !p.is_empty()) {
                    let (label, value) = pair.split_once('=').unwrap_or((pair, ""));
                    if label == "le" {
                        continue;
                    }
                    if !family.labels.iter().any(|l| l == label) {
                        family.labels.push(label.to_owned());
                    }
                    if CLOSED_LABELS.contains(&label) {
                        family
                            .values
                            .entry(label.to_owned())
                            .or_default()
                            .insert(value.trim_matches('"').to_owned());
                    }
                }
            }
        }
        out
    }

    /// Every family as a Markdown table (series as `/metrics` names them, type, labels,
    /// help), from [`Metrics::catalogue`]: docs/operations.md holds it, and a test keeps
    /// the two equal, so that no series goes undocumented.
    pub fn reference() -> String {
        let mut out =
            String::from("| series | type | labels | what it tells |\n|---|---|---|---|\n");
        for f in Metrics::catalogue() {
            let series = match f.samples.as_slice() {
                [one] => one.clone(),
                [first, rest @ ..] => {
                    let suffixes: Vec<&str> = rest
                        .iter()
                        .map(|s| s.strip_prefix(&f.name).unwrap_or(s))
                        .collect();
                    format!("{first}, {}", suffixes.join(", "))
                }
                [] => f.name.clone(),
            };
            let labels = f
                .labels
                .iter()
                .map(|l| match f.values.get(l) {
                    Some(values) => format!(
                        "`{l}` ({})",
                        values.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                    None => format!("`{l}`"),
                })
                .collect::<Vec<_>>()
                .join(", ");
            out.push_str(&format!(
                "| `{series}` | {} | {labels} | {} |\n",
                f.kind, f.help
            ));
        }
        out
    }
}

/// The labels whose every value has a series from the start (the `ALL` lists of
/// [`labels`], the reload results), so the docs' table can list their values.
const CLOSED_LABELS: [&str; 3] = ["reason", "outcome", "result"];

/// One family of [`Metrics::catalogue`].
#[derive(Debug, Clone)]
pub struct FamilyInfo {
    /// As in `# TYPE` (`hookwarden_backlog`).
    pub name: String,
    /// `counter`, `gauge`, `histogram` or `info`.
    pub kind: String,
    pub help: String,
    /// The names its samples carry (`_total`, `_bucket`, `_sum`, `_count`, `_info`).
    pub samples: Vec<String>,
    /// Its labels, `le` aside, in the order `/metrics` shows them.
    pub labels: Vec<String>,
    /// Every value of its labels of [`CLOSED_LABELS`], in name order.
    pub values: BTreeMap<String, BTreeSet<String>>,
}

/// Locks a std mutex, ignoring poisoning: the series' bookkeeping stays usable after a
/// panic elsewhere.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
