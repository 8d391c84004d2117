//! Measures the embedded store alone: durable one-event ingests from 64 concurrent tasks.
//!
//! `cargo run --release --example store_throughput [DIR]`
//!
//! The database goes to DIR (default: a temporary folder under `TMPDIR`). Point it at a
//! real disk: on a tmpfs, fsync costs nothing and the figure means little.

use hookwarden::config::Config;
use hookwarden::store::sqlite::SqliteStore;
use hookwarden::store::{Delivery, NewEvent, Queue, Store};
use hookwarden::time::now_millis;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let dir = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let mut config = Config::from_toml_str("")?;
    config.store.max_backlog = u64::MAX;
    let path = dir.join(format!("throughput-{}.db", uuid::Uuid::new_v4()));
    let store = Arc::new(SqliteStore::open(&path, &config.store)?);
    let payload = format!(r#"{{"uuid":"x","pad":"{}"}}"#, "p".repeat(1500));
    let (tasks, per_task) = (64, 500);
    let started = std::time::Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let (store, payload) = (store.clone(), payload.clone());
            tokio::spawn(async move {
                for i in 0..per_task {
                    let event = NewEvent {
                        uuid: format!("{t}-{i}"),
                        event_type: "user.session.start".into(),
                        published: None,
                        payload: payload.clone(),
                        sinks: vec!["s".into()],
                    };
                    let delivery = Delivery {
                        hook: "okta".into(),
                        event_id: format!("e-{t}-{i}"),
                        received_at: now_millis(),
                        events: vec![event],
                        recovered: false,
                    };
                    store.ingest(delivery).await.map(|_| ())?;
                }
                Ok::<(), hookwarden::store::StoreError>(())
            })
        })
        .collect();
    for h in handles {
        h.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    let n = (tasks * per_task) as f64;
    println!(
        "{n} one-event ingests from {tasks} tasks in {secs:.2}s: {:.0}/s, {} commits ({:.1} ingests per commit)",
        n / secs,
        store.group_commits(),
        n / store.group_commits() as f64
    );
    store.close().await;
    let _ = std::fs::remove_file(&path);
    Ok(())
}
