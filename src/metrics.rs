//! Prometheus metrics, one registry per running service.
//!
//! A registry per [`Metrics`] value (not a global recorder) so that several
//! services in one process, as in the integration tests, count separately.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HookStatus {
    pub hook: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HookLabel {
    pub hook: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabel {
    pub hook: String,
    pub sink: String,
}

/// Why a request was turned away (label `reason` of `hookwarden_rejections_total`).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Reason {
    unauthorized,
    ip_not_allowed,
    unsupported_media_type,
    payload_too_large,
    bad_request,
    store_unavailable,
    store_full,
    store_disk_low,
    /// The store did not commit a delivery in time (503, Okta retries).
    store_slow,
    timeout,
    not_found,
    method_not_allowed,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectionLabel {
    pub hook: String,
    pub reason: Reason,
}

/// How an inline hook call ended (label `outcome` of `hookwarden_inline_calls_total`).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum InlineOutcome {
    /// The handler's answer carried commands.
    commands,
    /// The handler refused, in its type's terms (an `error`; DENY; UNVERIFIED; FAILED),
    /// and its answer went as written.
    refusal,
    /// The handler answered `{}` (Okta's default action).
    empty,
    /// The same answer as before, repeated to Okta's retry of one `eventId`.
    repeated,
    /// The fallback was sent: the handler missed the budget.
    fallback_deadline,
    /// The fallback was sent: the handler failed.
    fallback_handler_error,
    /// The fallback was sent: the handler's answer broke the contract.
    fallback_invalid,
    /// The handler refused, in an answer that broke the contract: its refusal was sent
    /// rebuilt in the type's refusal form (texts cut, what Okta would reject left out).
    refusal_repaired,
    /// The handler refused, in an answer that could not be rebuilt: the closed fallback
    /// was sent, whatever the hook's `fallback` says.
    fallback_refusal,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InlineLabel {
    pub hook: String,
    pub outcome: InlineOutcome,
}

/// Why a reconciliation pass of a hook failed (see `ReconcileError::kind`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileErrorLabel {
    pub hook: String,
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

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
    /// Jobs waiting for a sink, as last read from the store.
    pub backlog: Gauge,
    /// Dead-lettered jobs in the store, as last read.
    pub dead_in_store: Gauge,
    /// Connections closed at accept because `server.max_connections` was reached.
    pub connections_refused: Counter,
    /// Open connections on the public listener.
    pub connections_open: Gauge,
    /// Certificate reloads by result (`ok`, `error`).
    pub tls_reloads: Family<ResultLabel, Counter>,
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
}

fn inline_histogram() -> Histogram {
    // 50 µs to ~3.3 s: rules answer in microseconds, a forward in milliseconds; Okta waits 3 s.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.00005, 2.0, 17,
    ))
}

fn ack_histogram() -> Histogram {
    // 0.5 ms to ~4 s: a durable ack is milliseconds; Okta gives up at 3 s.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0005, 2.0, 14,
    ))
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
        let backlog = Gauge::default();
        let dead_in_store = Gauge::default();
        let connections_refused = Counter::default();
        let connections_open = Gauge::default();
        let tls_reloads = Family::default();
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
        registry.register("backlog", "Deliveries waiting for a sink", backlog.clone());
        registry.register(
            "dead_letters_stored",
            "Dead letters in the store",
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
        Metrics {
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
            backlog,
            dead_in_store,
            connections_refused,
            connections_open,
            tls_reloads,
            config_reloads,
            config_generation,
            inline_calls,
            inline_seconds,
            inline_handler_seconds,
            reconcile_passes,
            reconcile_fetched,
            reconcile_recovered,
            reconcile_errors,
        }
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

    /// The store's gauges (the worker refreshes them each second, `/metrics` before it
    /// renders).
    pub fn set_job_counts(&self, counts: crate::store::JobCounts) {
        self.backlog
            .set(i64::try_from(counts.backlog).unwrap_or(i64::MAX));
        self.dead_in_store
            .set(i64::try_from(counts.dead).unwrap_or(i64::MAX));
    }

    /// The text exposition format (OpenMetrics), for `/metrics`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Every series as a Markdown table (series as `/metrics` names it, type, help), made
    /// from the registry itself: docs/operations.md holds it, and a test keeps the two
    /// equal, so that no series goes undocumented.
    pub fn reference() -> String {
        let text = Metrics::new().render();
        let mut out = String::from("| series | type | what it tells |\n|---|---|---|\n");
        let mut help = "";
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                help = rest.split_once(' ').map_or("", |(_, h)| h);
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
                let series = match kind {
                    "counter" => format!("{name}_total"),
                    "histogram" => format!("{name}_bucket, _sum, _count"),
                    _ => name.to_owned(),
                };
                out.push_str(&format!("| `{series}` | {kind} | {help} |\n"));
            }
        }
        out
    }
}
