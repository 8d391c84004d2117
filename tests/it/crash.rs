//! Crash safety with the real binary: concurrent deliveries, SIGKILL mid-load, restart.
//! Every event that got a 2xx must reach the sink, and none twice. Ten kills in a row,
//! each at a random moment of a short burst of load, so that some land mid-commit, some
//! mid-delivery to the sink and some while the previous crash's leases are being taken over.

use crate::util::*;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The sink's records after SIGKILLs. A kill in the middle of an append can tear the
/// line being written, and the sink ends such a line with a newline when it opens the
/// file again, so that it stays alone (src/sinks/jsonl.rs; readers skip it). The line
/// was never synced, so its job was never finished and is delivered again. Such a line
/// is the start of a record, cut (serde_json reads to its end and wants more), and
/// there is at most one per kill; every other line must be a whole record.
fn read_after_kills(path: &Path, kills: usize) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // A last line without its newline is an append under way: left for the next read.
    let complete = text.rfind('\n').map_or("", |i| &text[..=i]);
    let mut records = Vec::new();
    let mut torn = 0;
    for line in complete.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str(line) {
            Ok(record) => records.push(record),
            Err(e) => {
                assert!(
                    e.is_eof() && line.starts_with("{\"hook\":\"okta\""),
                    "bad JSONL line, not a torn record {line}: {e}"
                );
                torn += 1;
            }
        }
    }
    assert!(torn <= kills, "{torn} torn lines after {kills} kills");
    if torn > 0 {
        eprintln!("crash test: {torn} torn line(s) after {kills} kills, each alone on its line");
    }
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_event_and_duplicates_none() {
    let dir = tempfile::tempdir().expect("tmp");
    let (cert, key, pem) = write_cert(dir.path(), "server");
    let opts = Options::default();
    let text = config_text(dir.path(), &cert, &key, &opts);
    let config = dir.path().join("hookwarden.toml");
    std::fs::write(&config, text).expect("write config");
    let jsonl = dir.path().join("events.jsonl");

    let acked: Arc<Mutex<HashSet<String>>> = Arc::new(Mutex::new(HashSet::new()));
    const ROUNDS: usize = 10;
    for round in 0..ROUNDS {
        let (port, admin) = (free_port(), free_port());
        let mut child = spawn(&config, port, admin);
        wait_ready(admin).await;
        let addr = format!("127.0.0.1:{port}").parse().expect("addr");
        let client = client_for(addr, &pem);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (client, acked, stop) = (client.clone(), acked.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let mut n = 0usize;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 2000 {
                    n += 1;
                    let events: Vec<_> = (0..1 + n % 3)
                        .map(|_| event("user.session.start"))
                        .collect();
                    let ids: Vec<String> = events
                        .iter()
                        .map(|e| e["uuid"].as_str().expect("u").to_owned())
                        .collect();
                    let r = client
                        .post(format!("https://localhost:{port}/hooks/okta/events"))
                        .header("Authorization", basic())
                        .header("Content-Type", "application/json")
                        .body(envelope(&events))
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().is_success() => acked.lock().expect("lock").extend(ids),
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            }));
        }
        // Let load build up, then kill without warning at a moment that differs per round.
        let before = acked.lock().expect("lock").len();
        tokio::time::sleep(Duration::from_millis(600 + fastrand::u64(0..600))).await;
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in tasks {
            let _ = t.await;
        }
        let n = acked.lock().expect("lock").len() - before;
        assert!(n > 0, "round {round}: killed before any load ({n} acked)");
    }

    let total = acked.lock().expect("lock").len();
    assert!(
        total > 200,
        "too little load to prove anything ({total} acked)"
    );
    // Restart and let it drain.
    let (port, admin) = (free_port(), free_port());
    let mut child = spawn(&config, port, admin);
    wait_ready(admin).await;
    let acked = acked.lock().expect("lock").clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    let counts = loop {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for u in uuids(&read_after_kills(&jsonl, ROUNDS)) {
            *counts.entry(u).or_default() += 1;
        }
        if acked.iter().all(|u| counts.contains_key(u)) {
            break counts;
        }
        let missing = acked.iter().filter(|u| !counts.contains_key(*u)).count();
        assert!(
            Instant::now() < deadline,
            "{missing} acknowledged events never reached the sink"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Give the workers a moment to (wrongly) deliver anything twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    let final_counts = uuids(&read_after_kills(&jsonl, ROUNDS));
    let distinct: HashSet<_> = final_counts.iter().collect();
    assert_eq!(
        final_counts.len(),
        distinct.len(),
        "no duplicate lines after draining"
    );
    eprintln!(
        "crash test: {} acknowledged events over {ROUNDS} SIGKILLs, {} lines in the sink, none lost, none twice",
        acked.len(),
        final_counts.len()
    );
    // SIGTERM: a clean stop.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let status = child.wait().expect("wait");
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
}
