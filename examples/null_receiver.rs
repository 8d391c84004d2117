//! The benchmark's *null receiver*: hookwarden's own public listener with a store that
//! keeps nothing. It is the limit of the stack hookwarden is built on, measured with the
//! same settings: the same config loader, listener, connection cap, TLS (rustls),
//! timeouts, guard (allowlist, Basic or header auth in constant time), envelope parse,
//! routing and metrics as `hookwarden serve`, and a 200 with the same body. What it
//! leaves out is exactly the durable part: the store's commit and sync, and the workers.
//!
//! **It loses every event.** It exists for `bench/run.sh` only, which compares
//! hookwarden's durable acks with it (see BENCHMARKS.md).
//!
//! ```sh
//! cargo run --profile dist --example null_receiver -- config/hookwarden.toml
//! ```

use async_trait::async_trait;
use hookwarden::config::Config;
use hookwarden::http::{server, tls};
use hookwarden::metrics::Metrics;
use hookwarden::store::{
    Delivery, EventDetail, EventQuery, EventSummary, IngestOutcome, Inspect, Job, JobCounts,
    JobOutcome, Leases, Millis, Queue, ReplayTarget, Store, StoreError, StoreStats,
};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Answers every delivery as stored, and holds nothing.
struct NullStore;

#[async_trait]
impl Queue for NullStore {
    async fn ingest(&self, delivery: Delivery) -> Result<IngestOutcome, StoreError> {
        Ok(IngestOutcome {
            stored: delivery.events.len(),
            duplicates: 0,
        })
    }
    async fn claim(&self, _max: usize, _lease: Duration) -> Result<Vec<Job>, StoreError> {
        Ok(Vec::new())
    }
    async fn finish(&self, _job: &Job, _outcome: JobOutcome) -> Result<(), StoreError> {
        Ok(())
    }
    async fn job_counts(&self) -> Result<JobCounts, StoreError> {
        Ok(JobCounts::default())
    }
    async fn prune(&self, _before: Millis) -> Result<u64, StoreError> {
        Ok(0)
    }
}

#[async_trait]
impl Inspect for NullStore {
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
        Ok(StoreStats::default())
    }
}

impl Leases for NullStore {}

#[async_trait]
impl Store for NullStore {
    async fn check_writable(&self) -> Result<(), StoreError> {
        Ok(())
    }
    async fn close(&self) {}
}

/// The same allocator as `hookwarden` when built with the same features.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    let path = std::env::args_os().nth(1).map(std::path::PathBuf::from);
    let config = match Config::load(path.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    hookwarden::telemetry::init(&config.log);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(serve(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let metrics = Arc::new(Metrics::new());
    // The workers' wake channel, with nobody listening: nothing is stored to deliver.
    let (waker, _wake_rx) = hookwarden::worker::wake_channel();
    let router = hookwarden::app::public_router(
        &config,
        &hookwarden::app::Shared {
            store: Arc::new(NullStore),
            answers: None,
            waker,
            metrics: metrics.clone(),
            activity: Arc::new(hookwarden::activity::Activity::new()),
        },
        1,
    )?;
    let tls_config = if config.server.tls.enabled {
        Some(tls::load(&config.server, &metrics).await?)
    } else {
        None
    };
    let listener = std::net::TcpListener::bind(config.server.listen)?;
    let handle = axum_server::Handle::new();
    let shutdown = CancellationToken::new();
    tokio::spawn(hookwarden::app::shutdown_on_signal(shutdown.clone()));
    {
        let handle = handle.clone();
        let grace = config.server.shutdown_grace;
        tokio::spawn(async move {
            shutdown.cancelled().await;
            handle.graceful_shutdown(Some(grace));
        });
    }
    eprintln!(
        "null receiver on {} (stores nothing: for benchmarks only)",
        config.server.listen
    );
    server::serve(
        listener,
        router,
        tls_config,
        &config.server,
        metrics,
        handle,
    )
    .await?;
    Ok(())
}
