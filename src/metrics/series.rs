//! Which labelled series exist: those of the configuration in service, at zero from the
//! start, and those of the store's gauges, as the store holds them.
//!
//! Why at zero: an alert rule or a dashboard that compares a rate, a ratio or a gauge
//! sees a hook or sink that has had no traffic yet as 0, not as no data, so no rule
//! needs `absent()` and no panel is empty on a fresh start.
//!
//! When a reload removes a hook or a sink, its series go with it (counters,
//! histograms, `hookwarden_requests_total` of every status), so that nothing stale
//! stays on `/metrics` for the hook. Two kinds stay:
//! - the store's gauges (`hookwarden_backlog`, `hookwarden_dead_letters_stored`,
//!   `hookwarden_oldest_pending_age_seconds`) follow the store, not the configuration:
//!   a removed sink's jobs stay stored and become dead letters, and its series stay
//!   while the store holds any (an operator must see them), then go;
//! - reconciliation's series, since the reconciler keeps its hooks until a restart.
//!
//! A request already in flight under the old generation when it is replaced may still
//! count once for a removed hook, bringing one series back until the next restart.

use super::labels::*;
use super::Metrics;
use crate::config::Config;
use crate::store::{JobCounts, Millis, SinkJobs};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::Hash;

/// The hooks and sinks of one configuration generation, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Hooks {
    /// Event hooks and the names of their sinks.
    event: BTreeMap<String, BTreeSet<String>>,
    inline: BTreeSet<String>,
}

impl Hooks {
    fn of(config: &Config) -> Hooks {
        Hooks {
            event: config
                .event_hooks
                .iter()
                .map(|h| {
                    (
                        h.name.clone(),
                        h.sinks.iter().map(|s| s.name.clone()).collect(),
                    )
                })
                .collect(),
            inline: config.inline_hooks.iter().map(|h| h.name.clone()).collect(),
        }
    }

    /// One hook of each kind, with a sink: what the docs' table of series reads the
    /// labels from ([`Metrics::catalogue`]).
    pub(super) fn specimen() -> Hooks {
        Hooks {
            event: BTreeMap::from([("okta".to_owned(), BTreeSet::from(["archive".to_owned()]))]),
            inline: BTreeSet::from(["tokens".to_owned()]),
        }
    }

    pub(super) fn event_hooks(&self) -> impl Iterator<Item = &str> {
        self.event.keys().map(String::as_str)
    }

    fn names(&self) -> BTreeSet<&String> {
        self.event.keys().chain(&self.inline).collect()
    }

    fn sinks(&self) -> BTreeSet<SinkLabel> {
        self.event
            .iter()
            .flat_map(|(hook, sinks)| sinks.iter().map(|s| Metrics::sink(hook, s)))
            .collect()
    }
}

/// What [`Metrics`] remembers about its labelled series, behind one lock.
#[derive(Debug, Default)]
pub(super) struct Series {
    /// The generation in service.
    hooks: Hooks,
    /// The sinks the store's gauges show, with the time their oldest pending job's
    /// event was received (the age is computed from it at each render).
    shown: BTreeMap<SinkLabel, Option<Millis>>,
}

/// Any HTTP status a hook may have answered: the statuses of a removed hook's
/// `hookwarden_requests_total` are not listed anywhere, so every one is removed.
const STATUSES: std::ops::RangeInclusive<u16> = 100..=599;

/// The status every hook answers when it works: its request counter starts at zero.
const OK: u16 = 200;

impl Metrics {
    /// Puts a configuration generation in service, as far as metrics go: its hooks' and
    /// sinks' series at zero, those of hooks and sinks it no longer has removed (see the
    /// module docs), and `hookwarden_config_generation`. At start (generation 1) and
    /// after every reload that took effect.
    pub fn in_service(&self, config: &Config, generation: u64) {
        self.put_in_service(&Hooks::of(config), generation);
    }

    pub(super) fn put_in_service(&self, next: &Hooks, generation: u64) {
        let mut series = super::lock(&self.series);
        let before = std::mem::replace(&mut series.hooks, next.clone());
        self.remove_gone(&before, next, &mut series);
        self.create_at_zero(next, &mut series);
        self.config_generation
            .set(i64::try_from(generation).unwrap_or(i64::MAX));
    }

    /// Removes the series of the hooks and sinks of `before` that `next` lacks.
    fn remove_gone(&self, before: &Hooks, next: &Hooks, series: &mut Series) {
        let names = next.names();
        for gone in before.names().into_iter().filter(|h| !names.contains(h)) {
            for status in STATUSES {
                self.requests.remove(&HookStatus {
                    hook: gone.clone(),
                    status,
                });
            }
            for reason in Reason::ALL {
                self.rejections.remove(&rejection(gone, reason));
            }
        }
        for gone in before.event.keys().filter(|h| !next.event.contains_key(*h)) {
            let label = hook(gone);
            self.ack_seconds.remove(&label);
            self.events_stored.remove(&label);
            self.duplicates.remove(&label);
        }
        for gone in before.inline.difference(&next.inline) {
            let label = hook(gone);
            self.inline_seconds.remove(&label);
            self.inline_handler_seconds.remove(&label);
            for outcome in InlineOutcome::ALL {
                self.inline_calls.remove(&inline(gone, outcome));
            }
        }
        for gone in before.sinks().difference(&next.sinks()) {
            for family in self.sink_counters() {
                family.remove(gone);
            }
            for outcome in AttemptOutcome::ALL {
                self.sink_attempt_seconds.remove(&attempt(gone, outcome));
            }
            // The store's gauges go now if the last read found nothing stored for it;
            // otherwise the next read that finds nothing removes them.
            let held = |g: &Family<SinkLabel, Gauge>| g.get(gone).is_some_and(|g| g.get() != 0);
            if !held(&self.backlog) && !held(&self.dead_in_store) {
                self.remove_store_gauges(gone);
                series.shown.remove(gone);
            }
        }
    }

    /// Creates the series of every hook and sink of `next` that does not exist yet, at 0.
    fn create_at_zero(&self, next: &Hooks, series: &mut Series) {
        for name in &next.names() {
            at_zero(
                &self.requests,
                &HookStatus {
                    hook: (*name).clone(),
                    status: OK,
                },
            );
            for reason in Reason::ALL {
                at_zero(&self.rejections, &rejection(name, reason));
            }
        }
        for name in next.event.keys() {
            let label = hook(name);
            at_zero(&self.ack_seconds, &label);
            at_zero(&self.events_stored, &label);
            at_zero(&self.duplicates, &label);
        }
        for name in &next.inline {
            let label = hook(name);
            at_zero(&self.inline_seconds, &label);
            at_zero(&self.inline_handler_seconds, &label);
            for outcome in InlineOutcome::ALL {
                at_zero(&self.inline_calls, &inline(name, outcome));
            }
        }
        for sink in &next.sinks() {
            for family in self.sink_counters() {
                at_zero(family, sink);
            }
            for outcome in AttemptOutcome::ALL {
                at_zero(&self.sink_attempt_seconds, &attempt(sink, outcome));
            }
            // The store's gauges of a new sink show 0 now, not at the next read.
            if !series.shown.contains_key(sink) {
                self.show_sink(sink, 0, 0);
                series.shown.insert(sink.clone(), None);
            }
        }
    }

    /// Reconciliation's series of each hook it polls, at zero (its errors by kind appear
    /// with the first error of that kind: the kinds are the API client's).
    pub fn reconciling<'a>(&self, hooks: impl IntoIterator<Item = &'a str>) {
        for name in hooks {
            let label = hook(name);
            at_zero(&self.reconcile_passes, &label);
            at_zero(&self.reconcile_fetched, &label);
            at_zero(&self.reconcile_recovered, &label);
        }
    }

    /// The store's gauges, from a read of the store (the worker's, each second or less
    /// often, see `worker::refresh_gauges`): every sink of the configuration in service,
    /// and every other one the store holds jobs for; a sink in neither is removed.
    pub fn set_job_counts(&self, counts: &JobCounts) {
        let held: BTreeMap<SinkLabel, &SinkJobs> = counts
            .sinks
            .iter()
            .map(|s| (Metrics::sink(&s.hook, &s.sink), s))
            .collect();
        let mut series = super::lock(&self.series);
        let shown: BTreeMap<SinkLabel, Option<Millis>> = series
            .hooks
            .sinks()
            .into_iter()
            .chain(held.keys().cloned())
            .map(|label| {
                let oldest = held.get(&label).and_then(|s| s.oldest_pending);
                (label, oldest)
            })
            .collect();
        for label in shown.keys() {
            let s = held.get(label);
            self.show_sink(label, s.map_or(0, |s| s.backlog), s.map_or(0, |s| s.dead));
        }
        for gone in series.shown.keys().filter(|l| !shown.contains_key(*l)) {
            self.remove_store_gauges(gone);
        }
        series.shown = shown;
        self.set_ages(&series, crate::time::now_millis());
    }

    /// Sets the oldest pending job's age of every sink shown, as of `now`: at each store
    /// read and at each render, so the age keeps growing between two reads of the store.
    pub(super) fn set_ages(&self, series: &Series, now: Millis) {
        for (label, oldest) in &series.shown {
            let age = oldest.map_or(0.0, |at| now.saturating_sub(at).max(0) as f64 / 1000.0);
            self.oldest_pending_age.get_or_create(label).set(age);
        }
    }

    fn remove_store_gauges(&self, label: &SinkLabel) {
        self.backlog.remove(label);
        self.dead_in_store.remove(label);
        self.oldest_pending_age.remove(label);
    }

    fn show_sink(&self, label: &SinkLabel, backlog: u64, dead: u64) {
        self.backlog
            .get_or_create(label)
            .set(i64::try_from(backlog).unwrap_or(i64::MAX));
        self.dead_in_store
            .get_or_create(label)
            .set(i64::try_from(dead).unwrap_or(i64::MAX));
    }

    /// The counters kept per hook and sink.
    fn sink_counters(&self) -> [&Family<SinkLabel, Counter>; 5] {
        [
            &self.sink_deliveries,
            &self.sink_failures,
            &self.retries,
            &self.dead_letters,
            &self.recovered_skips,
        ]
    }
}

/// Creates a series at zero, unless it exists.
pub(super) fn at_zero<S: Clone + Hash + Eq, M, C: MetricConstructor<M>>(
    family: &Family<S, M, C>,
    labels: &S,
) {
    drop(family.get_or_create(labels));
}

fn hook(name: &str) -> HookLabel {
    HookLabel {
        hook: name.to_owned(),
    }
}

fn rejection(hook: &str, reason: Reason) -> RejectionLabel {
    RejectionLabel {
        hook: hook.to_owned(),
        reason,
    }
}

fn inline(hook: &str, outcome: InlineOutcome) -> InlineLabel {
    InlineLabel {
        hook: hook.to_owned(),
        outcome,
    }
}

fn attempt(sink: &SinkLabel, outcome: AttemptOutcome) -> AttemptLabel {
    AttemptLabel {
        hook: sink.hook.clone(),
        sink: sink.sink.clone(),
        outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SinkJobs;

    fn held(hook: &str, sink: &str, backlog: u64, dead: u64) -> SinkJobs {
        SinkJobs {
            hook: hook.into(),
            sink: sink.into(),
            backlog,
            dead,
            oldest_pending: (backlog > 0).then_some(0),
        }
    }

    /// The backlog's series, sorted (a family renders in no particular order).
    fn shown(m: &Metrics) -> Vec<String> {
        let mut lines: Vec<String> = m
            .render()
            .lines()
            .filter(|l| l.starts_with("hookwarden_backlog{"))
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    }

    #[test]
    fn the_store_gauges_show_the_configured_sinks_and_whatever_the_store_holds() {
        let m = Metrics::new();
        m.put_in_service(&Hooks::specimen(), 1);
        assert_eq!(
            shown(&m),
            ["hookwarden_backlog{hook=\"okta\",sink=\"archive\"} 0"],
            "a configured sink at zero before any read"
        );
        // A sink no longer configured, whose jobs the store still holds.
        m.set_job_counts(&JobCounts {
            sinks: vec![held("okta", "archive", 2, 0), held("okta", "gone", 0, 3)],
        });
        assert_eq!(
            shown(&m),
            [
                "hookwarden_backlog{hook=\"okta\",sink=\"archive\"} 2",
                "hookwarden_backlog{hook=\"okta\",sink=\"gone\"} 0"
            ]
        );
        let age = m
            .oldest_pending_age
            .get_or_create(&Metrics::sink("okta", "archive"))
            .get();
        assert!(age > 1e9, "waiting since the epoch: {age}");
        // The store no longer holds anything for it: its series go; the configured stay.
        m.set_job_counts(&JobCounts::default());
        assert_eq!(
            shown(&m),
            ["hookwarden_backlog{hook=\"okta\",sink=\"archive\"} 0"]
        );
        assert!(!m.render().contains("sink=\"gone\""));
    }

    #[test]
    fn a_generation_without_a_hook_removes_its_series_and_keeps_the_others() {
        let m = Metrics::new();
        m.put_in_service(&Hooks::specimen(), 1);
        m.requests
            .get_or_create(&HookStatus {
                hook: "tokens".into(),
                status: 504,
            })
            .inc();
        let mut next = Hooks::specimen();
        next.inline.clear();
        m.put_in_service(&next, 2);
        let text = m.render();
        assert!(!text.contains("hook=\"tokens\""), "{text}");
        assert!(text.contains("hookwarden_requests_total{hook=\"okta\",status=\"200\"} 0"));
        assert_eq!(m.config_generation.get(), 2);
    }
}
