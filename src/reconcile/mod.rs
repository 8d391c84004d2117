//! System Log reconciliation: finds events Okta never delivered to an event hook and
//! stores them, marked as recovered.
//!
//! Okta's event hooks are best effort: a delivery that fails twice is dropped, an org
//! has a daily cap, and nothing is sent before the hook is verified. The same events
//! are in the System Log, so a pass asks `GET /api/v1/logs` for a window of time and the
//! event types each hook subscribes to, and stores every event whose uuid the hook
//! does not hold yet. The store's dedupe by `(hook, uuid)` is what makes this safe: an
//! event the hook delivered is counted as "already stored", never stored twice, and a
//! window may overlap the previous one freely.
//!
//! Two ways to run a pass:
//! - the background job ([`spawn`]) every `reconcile.interval`, over the window from the
//!   hook's persisted cursor (minus `overlap`) to `delay` before now, so that events
//!   Okta is still delivering are left to the hook. One replica at a time polls (a
//!   lease in the store); a restart continues from the cursor.
//! - `hookwarden reconcile --since …` ([`crate::cli::reconcile`]) over a window the operator chooses; it
//!   neither takes the lease nor moves the cursor.
//!
//! Recovered events take the hook's own routing ([`Routing::sinks_for`]), so they reach
//! the same sinks as delivered ones, with `"recovered": true` in the sink record.

pub mod error;
pub mod logs;

use crate::config::reconcile::ReconcileHook;
use crate::config::Config;
use crate::event_hooks::Routing;
use crate::metrics::{HookLabel, Metrics, ReconcileErrorLabel};
use crate::okta::event_hook::EventHead;
use crate::store::{Delivery, Millis, NewEvent, Store};
use crate::time::{format_millis, now_millis};
pub use error::{ReconcileError, SetupError};
use logs::LogsClient;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Name of the store lease that one replica holds while it polls.
const LEASE_KEY: &str = "reconcile";

use crate::okta_api::MAX_PAGES;

/// What a pass over one hook did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    pub pages: u32,
    /// Events the System Log returned.
    pub fetched: u64,
    /// Of those, events the hook already held (delivered by Okta, or recovered before).
    pub already_stored: u64,
    /// Events stored as recovered (in a dry run: that would be).
    pub recovered: u64,
}

/// Everything a pass needs: the org's client, the hooks and their routing, the store.
pub struct Reconciler {
    client: LogsClient,
    hooks: Vec<(ReconcileHook, Routing)>,
    store: Arc<dyn Store>,
    page_size: u32,
    metrics: Option<Arc<Metrics>>,
}

impl Reconciler {
    /// From a valid configuration that has a `[reconcile]` section.
    pub fn new(
        config: &Config,
        store: Arc<dyn Store>,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Reconciler, SetupError> {
        let rc = config.reconcile.as_ref().ok_or(SetupError::NotConfigured)?;
        let mut hooks = Vec::with_capacity(rc.hooks.len());
        for h in &rc.hooks {
            let event_hook = config
                .event_hooks
                .iter()
                .find(|e| e.name == h.hook)
                .ok_or_else(|| SetupError::NoHook(h.hook.clone()))?;
            // The types to poll: this section's, else what the hook subscribes to in Okta.
            let mut h = h.clone();
            if h.event_types.is_empty() {
                h.event_types = event_hook.event_types.clone();
            }
            hooks.push((
                h,
                Routing::new(&event_hook.sinks, &event_hook.ignore_actors),
            ));
        }
        if let Some(m) = &metrics {
            m.reconciling(hooks.iter().map(|(h, _)| h.hook.as_str()));
        }
        Ok(Reconciler {
            client: LogsClient::new(config)?,
            hooks,
            store,
            page_size: rc.page_size,
            metrics,
        })
    }

    /// The configured hook names, in order.
    pub fn hook_names(&self) -> Vec<String> {
        self.hooks.iter().map(|(h, _)| h.hook.clone()).collect()
    }

    /// Fetches `[since, until)` of one hook's event types and stores what the hook lacks.
    /// Workers are woken after each page that stored something.
    pub async fn pass(
        &self,
        hook: &str,
        since: Millis,
        until: Millis,
        dry_run: bool,
        waker: Option<&crate::worker::Waker>,
        stop: &CancellationToken,
    ) -> Result<PassReport, ReconcileError> {
        let result = self
            .pass_inner(hook, since, until, dry_run, waker, stop)
            .await;
        if let Some(m) = &self.metrics {
            let label = HookLabel {
                hook: hook.to_owned(),
            };
            match &result {
                Ok(r) => {
                    m.reconcile_passes.get_or_create(&label).inc();
                    m.reconcile_fetched.get_or_create(&label).inc_by(r.fetched);
                    m.reconcile_recovered
                        .get_or_create(&label)
                        .inc_by(r.recovered);
                }
                Err(e) if e.is_stopped() => {}
                Err(e) => {
                    m.reconcile_errors
                        .get_or_create(&ReconcileErrorLabel {
                            hook: hook.to_owned(),
                            kind: e.kind(),
                        })
                        .inc();
                }
            }
        }
        result
    }

    async fn pass_inner(
        &self,
        hook: &str,
        since: Millis,
        until: Millis,
        dry_run: bool,
        waker: Option<&crate::worker::Waker>,
        stop: &CancellationToken,
    ) -> Result<PassReport, ReconcileError> {
        let (config, routing) = self
            .hooks
            .iter()
            .find(|(h, _)| h.hook == hook)
            .ok_or_else(|| ReconcileError::UnknownHook(hook.to_owned()))?;
        let mut report = PassReport::default();
        if until <= since {
            return Ok(report);
        }
        // One id for the events a pass stores: recovered events have no delivery of their own.
        let event_id = format!("reconcile-{}", uuid::Uuid::new_v4());
        let mut url = Some(self.client.first_url(
            &format_millis(since),
            &format_millis(until),
            &config.event_types,
            self.page_size,
        ));
        while let Some(current) = url.take() {
            if report.pages >= MAX_PAGES {
                return Err(ReconcileError::BadPage {
                    url: crate::outbound::shown_url(&current),
                    message: format!("more than {MAX_PAGES} pages in one window; stopped"),
                });
            }
            let page = self.client.page(&current, stop).await?;
            report.pages += 1;
            if page.events.is_empty() {
                break;
            }
            report.fetched += page.events.len() as u64;
            let mut events = Vec::with_capacity(page.events.len());
            for raw in &page.events {
                let head: EventHead = match serde_json::from_str(raw.get()) {
                    Ok(h) => h,
                    Err(e) => {
                        return Err(ReconcileError::BadPage {
                            url: crate::outbound::shown_url(&current),
                            message: format!("an item is not a System Log event: {e}"),
                        })
                    }
                };
                if head.uuid.is_empty() || head.uuid.len() > 128 {
                    return Err(ReconcileError::BadPage {
                        url: crate::outbound::shown_url(&current),
                        message: "an event's uuid is not 1 to 128 characters".into(),
                    });
                }
                events.push(NewEvent {
                    sinks: routing.sinks_for(&head),
                    uuid: head.uuid,
                    event_type: head.event_type.unwrap_or_default(),
                    published: head.published,
                    payload: raw.get().to_owned(),
                });
            }
            if dry_run {
                let known = self.store.stored_uuids(hook, &events).await?;
                let mut seen = std::collections::HashSet::new();
                for e in &events {
                    if known.contains(&e.uuid) || !seen.insert(&e.uuid) {
                        report.already_stored += 1;
                    } else {
                        report.recovered += 1;
                    }
                }
            } else {
                let outcome = self
                    .store
                    .ingest(Delivery {
                        hook: hook.to_owned(),
                        event_id: event_id.clone(),
                        received_at: now_millis(),
                        events,
                        recovered: true,
                    })
                    .await?;
                report.already_stored += outcome.duplicates as u64;
                report.recovered += outcome.stored as u64;
                if outcome.stored > 0 {
                    if let Some(w) = waker {
                        w.wake();
                    }
                }
            }
            url = page.next.filter(|n| *n != current);
        }
        Ok(report)
    }
}

/// Starts the background reconciler when `[reconcile]` is configured with `background`.
pub fn spawn(
    config: &Config,
    store: Arc<dyn Store>,
    waker: crate::worker::Waker,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<Option<tokio::task::JoinHandle<()>>, SetupError> {
    let Some(rc) = config.reconcile.as_ref().filter(|r| r.background) else {
        return Ok(None);
    };
    let reconciler = Reconciler::new(config, store.clone(), Some(metrics))?;
    let schedule = Schedule {
        interval: rc.interval,
        delay: rc.delay,
        overlap: rc.overlap,
        initial_lookback: rc.initial_lookback,
        // Renewed before every hook's pass; a replica that died is replaced after this.
        lease: (rc.interval * 3).max(Duration::from_secs(60)),
    };
    tracing::info!(
        hooks = ?reconciler.hook_names(),
        interval = %humantime::format_duration(rc.interval),
        delay = %humantime::format_duration(rc.delay),
        "System Log reconciliation on"
    );
    Ok(Some(tokio::spawn(background(
        reconciler, store, waker, schedule, shutdown,
    ))))
}

struct Schedule {
    interval: Duration,
    delay: Duration,
    overlap: Duration,
    initial_lookback: Duration,
    lease: Duration,
}

pub(crate) fn millis(d: Duration) -> Millis {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The cursor key of a hook.
pub fn cursor_key(hook: &str) -> String {
    format!("reconcile:{hook}")
}

async fn background(
    reconciler: Reconciler,
    store: Arc<dyn Store>,
    waker: crate::worker::Waker,
    s: Schedule,
    shutdown: CancellationToken,
) {
    let owner = uuid::Uuid::new_v4().to_string();
    while !shutdown.is_cancelled() {
        for hook in reconciler.hook_names() {
            match store.try_lease(LEASE_KEY, &owner, s.lease).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::debug!("another replica holds the reconciliation lease");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot take the reconciliation lease; next try in one interval");
                    break;
                }
            }
            let until = now_millis() - millis(s.delay);
            let since = match store.cursor(&cursor_key(&hook)).await {
                Ok(Some(at)) => at - millis(s.overlap),
                Ok(None) => now_millis() - millis(s.initial_lookback),
                Err(e) => {
                    tracing::warn!(hook = %hook, error = %e, "cannot read the reconciliation cursor");
                    continue;
                }
            };
            match reconciler
                .pass(&hook, since, until, false, Some(&waker), &shutdown)
                .await
            {
                Ok(r) => {
                    if let Err(e) = store.set_cursor(&cursor_key(&hook), until).await {
                        tracing::warn!(hook = %hook, error = %e, "cannot save the reconciliation cursor; the window is fetched again next time");
                    }
                    let level_info = r.recovered > 0;
                    if level_info {
                        tracing::info!(hook = %hook, since = %format_millis(since), until = %format_millis(until), pages = r.pages, fetched = r.fetched, already_stored = r.already_stored, recovered = r.recovered, "reconciliation pass recovered events Okta never delivered");
                    } else {
                        tracing::debug!(hook = %hook, since = %format_millis(since), until = %format_millis(until), pages = r.pages, fetched = r.fetched, already_stored = r.already_stored, "reconciliation pass: nothing missing");
                    }
                }
                Err(e) if e.is_stopped() => break,
                Err(e) => {
                    tracing::warn!(hook = %hook, error = %e, kind = e.kind(), "reconciliation pass failed; the cursor stays, the window is fetched again next time");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(s.interval) => {}
            _ = shutdown.cancelled() => {}
        }
    }
    if let Err(e) = store.release_lease(LEASE_KEY, &owner).await {
        tracing::debug!(error = %e, "reconciliation lease not released; it expires by itself");
    }
}
