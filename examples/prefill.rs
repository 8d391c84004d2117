//! Fills an embedded store with stored, already delivered events, so that the benchmark can
//! measure acknowledgements against a store that holds a million events.
//!
//! `cargo run --release --example prefill -- DATA_DIR [COUNT]` (COUNT: default 1,000,000)
//!
//! The database is `DATA_DIR/hookwarden.db`, where `hookwarden serve` with
//! `server.data_dir = DATA_DIR` finds it. Each event is Okta's real delivery sample's event
//! (`tests/fixtures/okta/event-hook-delivery.json`) under a uuid of its own, for the hook
//! `okta` and the sink `archive` of `config/hookwarden.toml`, written through
//! [`SqliteStore::ingest`] so that rows and indexes are exactly the service's. Their
//! `published` times are spread evenly over the week before now (the default
//! `store.retention`): what a store that has run for a week holds.
//!
//! Why the events end up *delivered*: a store with a million pending jobs would make the
//! service spend the measurement draining them (and hit `store.max_backlog`). Marking the
//! jobs done is one SQL statement on the closed database; it is what the store looks like
//! once the sink has caught up. Idempotent: it only adds what is missing up to COUNT, and
//! also settles jobs left pending by an earlier benchmark run on the same folder.

use hookwarden::config::Config;
use hookwarden::store::sqlite::SqliteStore;
use hookwarden::store::{Delivery, Inspect, NewEvent, Queue, Store};
use hookwarden::time::now_millis;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Events per delivery: Okta batches events that are close in time into one POST.
const EVENTS_PER_DELIVERY: u64 = 100;
/// Deliveries in flight at once, so that the store's group commit batches them.
const TASKS: u64 = 64;
/// The events' `published` times cover this much time before now (the default retention).
const SPAN: Duration = Duration::from_secs(7 * 86_400);

const SAMPLE: &str = include_str!("../tests/fixtures/okta/event-hook-delivery.json");

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .map(std::path::PathBuf::from)
        .ok_or("usage: prefill DATA_DIR [COUNT]")?;
    let count: u64 = match args.next() {
        Some(n) => n.replace(['_', ','], "").parse()?,
        None => 1_000_000,
    };
    let template = event_template()?;
    let path = dir.join("hookwarden.db");

    let mut config = Config::from_toml_str("")?;
    config.store.max_backlog = u64::MAX;
    let store = Arc::new(SqliteStore::open(&path, &config.store)?);
    let existing = store.stats().await?.events;
    let missing = count.saturating_sub(existing);
    let started = Instant::now();
    // Event number n (counting those already stored) was published at start + n * step.
    let start = SystemTime::now() - SPAN;
    let step = SPAN / u32::try_from(count.max(1)).unwrap_or(u32::MAX);
    let next = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (store, next, template) = (store.clone(), next.clone(), template.clone());
            tokio::spawn(async move {
                loop {
                    let first = next.fetch_add(EVENTS_PER_DELIVERY, Ordering::Relaxed);
                    if first >= missing {
                        return Ok::<(), hookwarden::store::StoreError>(());
                    }
                    let last = (first + EVENTS_PER_DELIVERY).min(missing);
                    let events = (first..last)
                        .map(|n| {
                            let at = start + step * u32::try_from(existing + n).unwrap_or(u32::MAX);
                            let published = humantime::format_rfc3339_millis(at).to_string();
                            // Random, like Okta's: each lands at a random place of
                            // its hour in the uuid key, as in production.
                            let uuid = uuid::Uuid::new_v4().to_string();
                            NewEvent {
                                payload: template
                                    .replace("@@UUID@@", &uuid)
                                    .replace("@@PUBLISHED@@", &published),
                                uuid,
                                event_type: "user.session.start".into(),
                                published: Some(published),
                                sinks: vec!["archive".into()],
                            }
                        })
                        .collect();
                    store
                        .ingest(Delivery {
                            hook: "okta".into(),
                            event_id: uuid::Uuid::new_v4().to_string(),
                            received_at: now_millis(),
                            events,
                            recovered: false,
                        })
                        .await?;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let ingest_secs = started.elapsed().as_secs_f64();
    let events = store.stats().await?.events;
    store.close().await;

    let settle_started = Instant::now();
    let conn = rusqlite::Connection::open(&path)?;
    let settled = conn.execute(
        "UPDATE jobs SET state = 'delivered', attempts = attempts + 1, claims = claims + 1,
                lease_until = NULL, lease_token = NULL, updated_at = ?1
         WHERE state = 'pending'",
        [now_millis()],
    )?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    drop(conn);
    let bytes = std::fs::metadata(&path)?.len();
    println!(
        "{} events stored ({missing} added in {ingest_secs:.1} s, {:.0}/s), {settled} pending jobs marked delivered in {:.1} s, database {:.2} GB",
        events,
        missing as f64 / ingest_secs.max(1e-9),
        settle_started.elapsed().as_secs_f64(),
        bytes as f64 / 1e9
    );
    Ok(())
}

/// The sample's one event, compact, with `@@UUID@@` and `@@PUBLISHED@@` where its uuid
/// and its time go.
fn event_template() -> Result<String, Box<dyn std::error::Error>> {
    let sample: serde_json::Value = serde_json::from_str(SAMPLE)?;
    let mut event = sample
        .pointer("/data/events/0")
        .cloned()
        .ok_or("the delivery sample has no data.events[0]")?;
    event["uuid"] = serde_json::Value::String("@@UUID@@".into());
    event["published"] = serde_json::Value::String("@@PUBLISHED@@".into());
    Ok(serde_json::to_string(&event)?)
}
