//! Configuration reload in place: SIGHUP and `POST /reload` on the admin listener.
//!
//! A reload reads the configuration's sources again (the file and the environment,
//! secrets from their env vars and files), runs every check `check-config` runs, and only
//! then builds the new generation: its sinks (a JSONL file keeps its writer), then its
//! router. Each is put in service with one atomic store. A request holds the router it
//! started with until it ends, so it finishes under its own generation, and the next
//! request gets the new one whole, never a mix. Sinks go in before the router, so an
//! event that the new router sends to a new sink finds it there.
//!
//! What a reload does not change keeps its running value and is named in the report:
//! the listeners and their TLS files, the store, the workers, the logs and System Log
//! reconciliation, which are built once at start. (A change to a secret in those
//! sections is not seen, since secrets are never printed or compared; it also waits for
//! a restart.)
//!
//! A sink removed by a reload keeps its jobs in the store: a job claimed for it becomes
//! a dead letter with [`crate::worker::SINK_REMOVED`], counted and listed with the
//! others, and a replay delivers it once the sink is back.

use super::router::{public_router, Shared};
use crate::admin::state::{Reload, ReloadReport, ReloadResult};
use crate::config::{Config, ConfigSource};
use crate::metrics::ResultLabel;
use crate::sinks::{LiveSinks, SinkSet};
use arc_swap::ArcSwap;
use async_trait::async_trait;
use axum::extract::Request;
use axum::Router;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tower::ServiceExt;

/// The configuration in service and what was built from it, swapped whole by a reload.
pub struct Live {
    shared: Shared,
    router: ArcSwap<Router>,
    sinks: LiveSinks,
    config: Arc<ArcSwap<Config>>,
    generation: AtomicU64,
    /// Reloads run one at a time: two at once would both build from the same running
    /// generation, and the second would undo the first.
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl Live {
    /// Generation 1: the configuration the service starts with.
    pub fn start(
        config: Config,
        shared: Shared,
        sinks: SinkSet,
    ) -> Result<Arc<Live>, super::RunError> {
        let router = public_router(&config, &shared, 1)?;
        shared.metrics.in_service(&config, 1);
        Ok(Arc::new(Live {
            shared,
            router: ArcSwap::from_pointee(router),
            sinks: Arc::new(ArcSwap::from_pointee(sinks)),
            config: Arc::new(ArcSwap::from_pointee(config)),
            generation: AtomicU64::new(1),
            one_at_a_time: tokio::sync::Mutex::new(()),
        }))
    }

    /// The sinks in service, for the workers.
    pub fn sinks(&self) -> LiveSinks {
        self.sinks.clone()
    }

    /// The configuration in service, for the admin listener.
    pub fn config(&self) -> Arc<ArcSwap<Config>> {
        self.config.clone()
    }

    /// The public service: each request runs on the router in service when it arrives.
    pub fn service(self: &Arc<Self>) -> Router {
        let live = Arc::clone(self);
        Router::new().fallback_service(tower::service_fn(move |req: Request| {
            let router = Router::clone(&live.router.load());
            router.oneshot(req)
        }))
    }

    async fn try_reload(&self) -> Result<Built, Vec<String>> {
        let running = self.config.load_full();
        let ConfigSource::Loaded(path) = running.source.clone() else {
            return Err(vec![
                "this service was started with a configuration built in code, not read from a file: there is nothing to read again".to_owned(),
            ]);
        };
        let previous = self.sinks.load_full();
        let shared = self.shared.clone();
        let generation = self.generation.load(Ordering::SeqCst) + 1;
        // Reading the file and the secrets, compiling scripts, reading rule and JWKS files
        // and opening sink files all block: not on the runtime's threads, which answer
        // inline hooks meanwhile.
        tokio::task::spawn_blocking(move || {
            let loaded = Config::load(path.as_deref())
                .map_err(|e| e.0.iter().map(ToString::to_string).collect::<Vec<_>>())?;
            let (new, restart_needed) = keep_running_values(&running, loaded);
            // Building the router is the check. Only when it fails are the hooks built
            // once more, to list every problem `check-config` would, not just the first.
            let router = public_router(&new, &shared, generation).map_err(|e| {
                let all: Vec<String> = super::preflight::problems(&new)
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                if all.is_empty() {
                    vec![e.to_string()]
                } else {
                    all
                }
            })?;
            let sinks =
                SinkSet::build_after(&new, Some(&previous)).map_err(|e| vec![e.to_string()])?;
            Ok(Built {
                changes: changes(&running, &new),
                config: new,
                sinks,
                router,
                generation,
                restart_needed,
            })
        })
        .await
        .map_err(|e| vec![format!("the reload's check stopped: {e}")])?
    }
}

/// A generation built and checked, not yet in service.
struct Built {
    config: Config,
    sinks: SinkSet,
    router: Router,
    generation: u64,
    changes: Vec<String>,
    restart_needed: Vec<String>,
}

#[async_trait]
impl Reload for Live {
    async fn reload(&self, trigger: &'static str) -> ReloadReport {
        let _one = self.one_at_a_time.lock().await;
        let started = Instant::now();
        let metrics = &self.shared.metrics;
        match self.try_reload().await {
            Ok(built) => {
                self.sinks.store(Arc::new(built.sinks));
                self.router.store(Arc::new(built.router));
                metrics.in_service(&built.config, built.generation);
                self.config.store(Arc::new(built.config));
                self.generation.store(built.generation, Ordering::SeqCst);
                metrics
                    .config_reloads
                    .get_or_create(&ResultLabel { result: "ok" })
                    .inc();
                let took_ms = started.elapsed().as_secs_f64() * 1000.0;
                tracing::info!(
                    trigger,
                    generation = built.generation,
                    changes = ?built.changes,
                    restart_needed = ?built.restart_needed,
                    took_ms,
                    "configuration reloaded: new requests are served by this generation"
                );
                for key in &built.restart_needed {
                    tracing::warn!(trigger, key = %key, "changed in the configuration, but takes a restart: the running value stays");
                }
                ReloadReport {
                    result: ReloadResult::Reloaded,
                    generation: built.generation,
                    problems: Vec::new(),
                    changes: built.changes,
                    restart_needed: built.restart_needed,
                    took_ms,
                }
            }
            Err(problems) => {
                metrics
                    .config_reloads
                    .get_or_create(&ResultLabel { result: "refused" })
                    .inc();
                let generation = self.generation.load(Ordering::SeqCst);
                tracing::error!(
                    trigger,
                    generation,
                    problems = ?problems,
                    "configuration reload refused: the running configuration stays"
                );
                ReloadReport {
                    result: ReloadResult::Refused,
                    generation,
                    problems,
                    changes: Vec::new(),
                    restart_needed: Vec::new(),
                    took_ms: started.elapsed().as_secs_f64() * 1000.0,
                }
            }
        }
    }
}

/// `new` with the running values of what only a restart changes, and the keys among
/// them whose values differ.
fn keep_running_values(running: &Config, mut new: Config) -> (Config, Vec<String>) {
    let mut needed = Vec::new();
    let (r, n) = (&running.server, &mut new.server);
    keep("server.listen", &r.listen, &mut n.listen, &mut needed);
    keep("server.data_dir", &r.data_dir, &mut n.data_dir, &mut needed);
    keep("server.tls", &r.tls, &mut n.tls, &mut needed);
    keep(
        "server.max_connections",
        &r.max_connections,
        &mut n.max_connections,
        &mut needed,
    );
    keep(
        "server.header_read_timeout",
        &r.header_read_timeout,
        &mut n.header_read_timeout,
        &mut needed,
    );
    keep(
        "server.tls_handshake_timeout",
        &r.tls_handshake_timeout,
        &mut n.tls_handshake_timeout,
        &mut needed,
    );
    keep(
        "server.shutdown_grace",
        &r.shutdown_grace,
        &mut n.shutdown_grace,
        &mut needed,
    );
    keep(
        "admin.enabled",
        &running.admin.enabled,
        &mut new.admin.enabled,
        &mut needed,
    );
    keep(
        "admin.listen",
        &running.admin.listen,
        &mut new.admin.listen,
        &mut needed,
    );
    keep("log", &running.log, &mut new.log, &mut needed);
    keep("store", &running.store, &mut new.store, &mut needed);
    keep("worker", &running.worker, &mut new.worker, &mut needed);
    keep("okta", &running.okta, &mut new.okta, &mut needed);
    keep(
        "reconcile",
        &running.reconcile,
        &mut new.reconcile,
        &mut needed,
    );
    (new, needed)
}

fn keep<T: Debug + Clone>(key: &str, running: &T, new: &mut T, needed: &mut Vec<String>) {
    if format!("{running:?}") != format!("{new:?}") {
        needed.push(key.to_owned());
        *new = running.clone();
    }
}

/// What a reload changes, in words, by hook and sink name. Settings are compared as
/// they print, so a secret's new value is not named (it is in service all the same).
fn changes(running: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let by_name = |c: &Config| -> BTreeMap<String, String> {
        c.event_hooks
            .iter()
            .map(|h| (format!("event hook '{}'", h.name), format!("{h:?}")))
            .chain(
                c.inline_hooks
                    .iter()
                    .map(|h| (format!("inline hook '{}'", h.name), format!("{h:?}"))),
            )
            .chain(c.event_hooks.iter().flat_map(|h| {
                h.sinks.iter().map(move |s| {
                    (
                        format!("sink '{}' of event hook '{}'", s.name, h.name),
                        format!("{s:?}"),
                    )
                })
            }))
            .collect()
    };
    let (old, now) = (by_name(running), by_name(new));
    for (name, spec) in &now {
        match old.get(name) {
            None => out.push(format!("{name} added")),
            Some(was) if was != spec => out.push(format!("{name} changed")),
            Some(_) => {}
        }
    }
    for name in old.keys().filter(|n| !now.contains_key(*n)) {
        if name.starts_with("sink ") {
            out.push(format!("{name} removed: its jobs stay in the store and become dead letters (replay them once the sink is back)"));
        } else {
            out.push(format!("{name} removed"));
        }
    }
    if format!("{:?}", running.network) != format!("{:?}", new.network) {
        out.push("network (allowlist, trusted proxies) changed".to_owned());
    }
    out
}
