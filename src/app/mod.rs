//! Starting and stopping the whole service.
//!
//! Start: store → sinks → workers → public and admin listeners. Stop (on the
//! shutdown token): the public listener stops accepting and finishes in-flight
//! requests (each of which either stored its events or answered an error), then the
//! workers finish their current attempt, then the store commits and closes. That
//! order is what makes "acknowledged" mean "on disk" across a restart.
//!
//! In between, `reload` puts a new configuration generation in service on SIGHUP or
//! `POST /reload`; `router` builds each generation's public router.

pub mod preflight;
mod reload;
mod router;
mod watch;

pub use reload::Live;
pub use router::{public_router, Shared};

use crate::admin::state::Reload;
use crate::admin::{self, AdminState};
use crate::config::Config;
use crate::http::server;
use crate::http::tls::{self, TlsError};
use crate::metrics::Metrics;
use crate::sinks::{SinkSet, SinkSetupError};
use crate::store::StoreError;
use crate::worker;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Listeners bound by the caller (tests bind port 0); `None` binds the configured addresses.
pub struct Listeners {
    pub public: std::net::TcpListener,
    /// Ignored when the admin listener is disabled.
    pub admin: Option<std::net::TcpListener>,
}

/// Why the service could not start or stopped with an error; its words are what `serve`
/// prints. Each variant keeps its cause as the error's source.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot set up a sink: {0}")]
    Sink(#[from] SinkSetupError),
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("{key}: cannot listen on {addr}: {source}{}", if source.kind() == std::io::ErrorKind::AddrInUse { " (another process, perhaps another hookwarden, holds this port)" } else { "" })]
    Bind {
        /// The key that names the address (`server.listen`, `admin.listen`).
        key: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server.data_dir: cannot create {}: {source}", path.display())]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// What `check-config` reports too ([`preflight`]).
    #[error("{0}")]
    Preflight(crate::config::ConfigError),
    #[error("{0}")]
    Reconcile(#[from] crate::reconcile::SetupError),
    #[error("the public listener failed: {0}")]
    Serve(std::io::Error),
    #[error("cannot set up a hook: hook '{hook}': {source}")]
    Door {
        hook: String,
        source: crate::http::oauth::OAuthSetupError,
    },
    /// The text is `check-config`'s: the inline hooks' handler problems, each built by
    /// code that returns the words shown to the user.
    #[error("cannot set up a hook: {0}")]
    Hook(String),
}

fn bind(key: &'static str, addr: SocketAddr) -> Result<std::net::TcpListener, RunError> {
    std::net::TcpListener::bind(addr).map_err(|source| RunError::Bind { key, addr, source })
}

/// How this run is started, beyond the configuration itself.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `serve --watch-config`: poll the configuration file this often and reload it
    /// in place when it changed ([`watch`]).
    pub watch_config: Option<Duration>,
}

/// Runs the service until `shutdown` is cancelled, then stops it in order.
pub async fn run(
    config: Config,
    listeners: Option<Listeners>,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    run_with(config, listeners, shutdown, RunOptions::default()).await
}

/// [`run`], with options of the command line.
pub async fn run_with(
    config: Config,
    listeners: Option<Listeners>,
    shutdown: CancellationToken,
    options: RunOptions,
) -> Result<(), RunError> {
    let started = Instant::now();
    // One crypto provider for the process; a second install (tests) is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    for w in config.warnings() {
        tracing::warn!("{w}");
    }
    // Refused before anything is opened, with the words and keys of `check-config`.
    let problems = preflight::problems(&config);
    if !problems.is_empty() {
        return Err(RunError::Preflight(crate::config::ConfigError(problems)));
    }

    // The data folder holds the store, the development certificate and often the sinks'
    // files: created first (private), so that every later step finds it.
    crate::files::create_private_folder(&config.server.data_dir).map_err(|source| {
        RunError::DataDir {
            path: config.server.data_dir.clone(),
            source,
        }
    })?;

    let crate::store::OpenedStore { store, shared } =
        crate::store::open(&config, crate::store::OpenFor::Service).await?;
    let sinks = SinkSet::build(&config)?;
    let metrics = Arc::new(Metrics::new());
    let activity = Arc::new(crate::activity::Activity::new());

    let (public_listener, admin_listener) = match listeners {
        Some(l) => (l.public, l.admin),
        None => (bind("server.listen", config.server.listen)?, None),
    };
    let admin_listener = match (config.admin.enabled, admin_listener) {
        (false, _) => None,
        (true, Some(l)) => Some(l),
        (true, None) => Some(bind("admin.listen", config.admin.listen)?),
    };

    let tls_config = if config.server.tls.enabled {
        Some(tls::load(&config.server, &metrics).await?)
    } else {
        None
    };
    let reloader = match (&tls_config, &config.server.tls.cert) {
        (Some(t), Some(_)) => Some(tls::spawn_reloader(
            t.clone(),
            &config.server,
            metrics.clone(),
            shutdown.clone(),
        )),
        _ => None,
    };

    // Workers stop only after the public listener has drained: a request in flight
    // may still store events that the workers must not miss at the next start.
    let worker_stop = CancellationToken::new();
    let (waker, wake_rx) = worker::wake_channel();
    let live = Live::start(
        config.clone(),
        Shared {
            store: store.clone(),
            answers: shared,
            waker: waker.clone(),
            metrics: metrics.clone(),
            activity: activity.clone(),
        },
        sinks,
    )?;
    let workers = Arc::new(worker::spawn(
        store.clone(),
        live.sinks(),
        config.worker.clone(),
        config.store.retention,
        metrics.clone(),
        wake_rx,
        worker_stop.clone(),
    ));
    // SIGHUP reloads the configuration (and, in `tls`, the certificate files); its
    // default action, ending the process, never applies.
    let sighup = tokio::spawn(reload_on_sighup(live.clone(), shutdown.clone()));
    let watcher = match (&config.source, options.watch_config) {
        (crate::config::ConfigSource::Loaded(path), Some(every)) => {
            match crate::config::file_read_by(path.as_deref()) {
                Some(file) => Some(tokio::spawn(watch::reload_on_change(
                    live.clone(),
                    file,
                    every,
                    shutdown.clone(),
                ))),
                None => {
                    tracing::warn!("--watch-config: no configuration file is read (embedded defaults and environment only): nothing to watch");
                    None
                }
            }
        }
        (_, Some(_)) => {
            tracing::warn!(
                "--watch-config: this configuration was not read from a file: nothing to watch"
            );
            None
        }
        (_, None) => None,
    };
    let reconciler = crate::reconcile::spawn(
        &config,
        store.clone(),
        waker,
        metrics.clone(),
        shutdown.clone(),
    )?;
    let public_addr = public_listener
        .local_addr()
        .map_err(|source| RunError::Bind {
            key: "server.listen",
            addr: config.server.listen,
            source,
        })?;

    let admin_task = match admin_listener {
        Some(l) => {
            let key = "admin.listen";
            let addr = l.local_addr().map_err(|source| RunError::Bind {
                key,
                addr: config.admin.listen,
                source,
            })?;
            l.set_nonblocking(true)
                .map_err(|source| RunError::Bind { key, addr, source })?;
            let l = tokio::net::TcpListener::from_std(l).map_err(|source| RunError::Bind {
                key,
                addr,
                source,
            })?;
            let app = admin::router(Arc::new(AdminState {
                store: store.clone(),
                metrics: metrics.clone(),
                workers: workers.clone(),
                worker_liveness: config.worker.poll_interval * 5 + Duration::from_secs(5),
                activity: activity.clone(),
                config: live.config(),
                reload: Some(live.clone() as Arc<dyn Reload>),
            }));
            let stop = shutdown.clone();
            tracing::info!(addr = %addr, "admin listener (healthz, readyz, metrics, POST /reload)");
            Some(tokio::spawn(async move {
                let _ = axum::serve(l, app)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await;
            }))
        }
        None => None,
    };

    let handle = axum_server::Handle::new();
    let grace = config.server.shutdown_grace;
    {
        let handle = handle.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            tracing::info!("stopping: no new connections, finishing requests in flight");
            handle.graceful_shutdown(Some(grace));
        });
    }
    tracing::info!(
        addr = %public_addr,
        scheme = if tls_config.is_some() { "https" } else { "http" },
        event_hooks = ?config.event_hooks.iter().map(|h| format!("{} {}", h.name, h.path)).collect::<Vec<_>>(),
        inline_hooks = ?config.inline_hooks.iter().map(|h| format!("{} {} ({})", h.name, h.path, h.hook_type)).collect::<Vec<_>>(),
        ready_ms = started.elapsed().as_millis() as u64,
        "hookwarden is ready"
    );
    let served = server::serve(
        public_listener,
        live.service(),
        tls_config,
        &config.server,
        metrics.clone(),
        handle,
    )
    .await;
    // Whatever ended the listener, stop the rest in order: admin, then workers
    // (after their current attempt), then the store.
    shutdown.cancel();
    worker_stop.cancel();
    if let Some(t) = admin_task {
        let _ = t.await;
    }
    match Arc::try_unwrap(workers) {
        Ok(w) => {
            let _ = w.task.await;
        }
        Err(_) => tracing::warn!("workers still referenced at shutdown; not waiting for them"),
    }
    if let Some(t) = reloader {
        let _ = t.await;
    }
    let _ = sighup.await;
    if let Some(w) = watcher {
        let _ = w.await;
    }
    if let Some(t) = reconciler {
        let _ = t.await;
    }
    store.close().await;
    tracing::info!("hookwarden stopped");
    served.map_err(RunError::Serve)
}

/// Reloads the configuration on each SIGHUP until `shutdown`.
async fn reload_on_sighup(live: Arc<Live>, shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(hup) => hup,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; reload with POST /reload on the admin listener");
                return;
            }
        };
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = hup.recv() => {
                    live.reload("SIGHUP").await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = live;
        shutdown.cancelled().await;
    }
}

/// Cancels `token` on SIGTERM or Ctrl-C.
pub async fn shutdown_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    token.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested");
    token.cancel();
}
