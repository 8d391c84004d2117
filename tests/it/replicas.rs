//! Two real replicas on one PostgreSQL store: a replica killed with SIGKILL while its
//! sink is busy has its claims taken over by the other once their lease ends.
//!
//! The sink is a slow `command` that marks each attempt in files of its replica:
//! `<r>.start` when it has the record, `<r>.done` when the delivery took effect. The
//! `done` write happens only while the replica that started it is alive (`kill -0
//! $PPID`): a sink program orphaned by the kill has its side effect dropped, like a
//! connection cut by a crash. So "started by A, not done by A" is exactly what A held
//! in flight and never delivered.

use crate::pgutil::{shared, store_toml, ROLE_PASSWORD};
use crate::util::*;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CONCURRENCY: usize = 4;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

struct Replica {
    child: Child,
    port: u16,
    start: PathBuf,
    done: PathBuf,
}

/// A failing assertion must not leave a replica running after the test.
impl Drop for Replica {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Lines of a marker file (missing file = none; a last line without newline is ignored).
fn lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |i| &text[..=i]);
    complete
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Writes the config of replica `name` under `root/name` and starts `hookwarden serve`.
fn spawn(root: &Path, name: &str, url: &str, cert: &Path, key: &Path) -> (Replica, u16) {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let start = root.join(format!("{name}.start"));
    let done = root.join(format!("{name}.done"));
    // Record first (so the writer never blocks), mark the start, be slow, then take
    // effect only if the replica is still alive. Short `echo`s with O_APPEND are single
    // writes: concurrent attempts never interleave within a line.
    let script = format!(
        "cat > /dev/null; echo \"$HOOKWARDEN_UUID\" >> {start}; sleep 0.3; \
         if kill -0 $PPID 2>/dev/null; then echo \"$HOOKWARDEN_UUID\" >> {done}; fi",
        start = start.display(),
        done = done.display(),
    );
    let hook = format!(
        r#"
[[event_hooks]]
name = "okta"
path = "/hooks/okta/events"
auth = {{ type = "basic", users = [{{ username = "{USER}", password = "{PASSWORD}" }}] }}
sinks = [{{ name = "slow", type = "command", program = "/bin/sh", args = ['-c', '{script}'], timeout = "5s" }}]
"#
    );
    let opts = Options {
        toml: Some(format!("{hook}{}", store_toml(url))),
        worker: format!(
            "concurrency = {CONCURRENCY}\nlease = \"6s\"\npoll_interval = \"100ms\"\nbackoff_initial = \"50ms\"\nbackoff_max = \"200ms\"\n"
        ),
        ..Options::default()
    };
    let config = dir.join("hookwarden.toml");
    std::fs::write(&config, config_text(&dir, cert, key, &opts)).expect("write config");
    let (port, admin) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_hookwarden"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("HOOKWARDEN__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("HOOKWARDEN__ADMIN__LISTEN", format!("127.0.0.1:{admin}"))
        .env("HOOKWARDEN__LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn hookwarden");
    (
        Replica {
            child,
            port,
            start,
            done,
        },
        admin,
    )
}

async fn wait_ready(replica: &mut Replica, admin: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{admin}/readyz")).await {
            if r.status() == 200 {
                return;
            }
        }
        if let Ok(Some(status)) = replica.child.try_wait() {
            panic!("hookwarden exited during start-up: {status}");
        }
        assert!(Instant::now() < deadline, "hookwarden not ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `claims` per uuid in the jobs table: more than one means a claim ended without an
/// outcome and another claim took the job over.
async fn claims(url: &str) -> HashMap<String, i32> {
    let mut cfg: tokio_postgres::Config = url.parse().expect("url");
    cfg.password(ROLE_PASSWORD);
    let (client, conn) = cfg.connect(tokio_postgres::NoTls).await.expect("connect");
    let task = tokio::spawn(conn);
    let rows = client
        .query("SELECT uuid, claims FROM jobs", &[])
        .await
        .expect("query jobs");
    drop(client);
    let _ = task.await;
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_mid_delivery_has_its_claims_taken_over_by_the_other() {
    let begun = Instant::now();
    let url = shared().fresh_db().await;
    let root = tempfile::tempdir().expect("tmp");
    let (cert, key, pem) = write_cert(root.path(), "server");
    let (mut a, admin_a) = spawn(root.path(), "a", &url, &cert, &key);
    wait_ready(&mut a, admin_a).await;
    let (mut b, admin_b) = spawn(root.path(), "b", &url, &cert, &key);
    wait_ready(&mut b, admin_b).await;

    // ~40 events, all to A.
    let port = a.port;
    let client = client_for(format!("127.0.0.1:{port}").parse().expect("addr"), &pem);
    let mut acked: HashSet<String> = HashSet::new();
    for _ in 0..10 {
        let events: Vec<_> = (0..4).map(|_| event("user.session.start")).collect();
        let r = client
            .post(format!("https://localhost:{port}/hooks/okta/events"))
            .header("Authorization", basic())
            .header("Content-Type", "application/json")
            .body(envelope(&events))
            .send()
            .await
            .expect("deliver to A");
        assert_eq!(r.status(), 200, "A accepts the delivery");
        acked.extend(
            events
                .iter()
                .map(|e| e["uuid"].as_str().expect("u").to_owned()),
        );
    }
    assert_eq!(acked.len(), 40);

    // A is mid-processing: a few done, and one started so recently (seen within 120 ms,
    // polled every 10 ms) that its 300 ms sink is surely still running at the kill.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut first_seen: HashMap<String, Instant> = HashMap::new();
    loop {
        let done: HashSet<_> = lines(&a.done).into_iter().collect();
        let now = Instant::now();
        for u in lines(&a.start) {
            first_seen.entry(u).or_insert(now);
        }
        let fresh = first_seen.iter().any(|(u, seen)| {
            !done.contains(u) && now.duration_since(*seen) < Duration::from_millis(120)
        });
        if done.len() >= 2 && fresh {
            break;
        }
        assert!(
            now < deadline,
            "A never got mid-processing ({} done)",
            done.len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    a.child.kill().expect("SIGKILL A");
    let _ = a.child.wait();
    let killed_at = Instant::now();
    // A's orphaned sink programs finish (without effect) after their 0.3 s sleep; on a
    // loaded 2-core machine that takes longer, so leave them ample time.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let a_start: HashSet<String> = lines(&a.start).into_iter().collect();
    let a_done_at_kill: HashSet<String> = lines(&a.done).into_iter().collect();
    let in_flight: HashSet<String> = a_start.difference(&a_done_at_kill).cloned().collect();
    assert!(
        !in_flight.is_empty(),
        "A had deliveries in flight at the kill"
    );
    assert!(
        in_flight.len() <= CONCURRENCY,
        "A never runs more than {CONCURRENCY} deliveries at once: {in_flight:?}"
    );

    // Every acknowledged event reaches a sink: B takes A's claims over when the lease ends.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (a_done, b_done) = loop {
        let a_done = lines(&a.done);
        let b_done = lines(&b.done);
        let seen: HashSet<&String> = a_done.iter().chain(&b_done).collect();
        let missing: Vec<_> = acked.iter().filter(|u| !seen.contains(u)).collect();
        if missing.is_empty() {
            break (a_done, b_done);
        }
        assert!(
            Instant::now() < deadline,
            "{} acknowledged events never delivered (A held {in_flight:?} at the kill): {missing:?}",
            missing.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let drained_after = killed_at.elapsed();
    // Both replicas keep polling: give B a moment to (wrongly) deliver anything again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let b_done_final = lines(&b.done);
    assert_eq!(b_done, b_done_final, "nothing delivered after the drain");
    assert_eq!(
        a_done.len(),
        a_done_at_kill.len(),
        "nothing done by A after the kill"
    );

    assert!(!b_done.is_empty(), "B delivered something");
    let b_set: HashSet<&String> = b_done.iter().collect();
    let not_taken: Vec<_> = in_flight.iter().filter(|u| !b_set.contains(u)).collect();
    assert!(
        not_taken.is_empty(),
        "B delivered every delivery A had in flight at the kill; missing {not_taken:?}"
    );
    let claims = claims(&url).await;
    for u in &in_flight {
        let n = claims.get(u).copied().unwrap_or(0);
        assert!(
            n >= 2,
            "{u}: claimed by A, then taken over by B ({n} claims)"
        );
    }
    let taken_over = claims.values().filter(|n| **n >= 2).count();

    let mut counts: HashMap<&String, usize> = HashMap::new();
    for u in a_done.iter().chain(&b_done) {
        *counts.entry(u).or_default() += 1;
    }
    let unacked: Vec<_> = counts.keys().filter(|u| !acked.contains(**u)).collect();
    assert!(unacked.is_empty(), "delivered but never sent: {unacked:?}");
    let duplicates: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicates.iter().all(|(_, n)| **n == 2),
        "at most twice: {duplicates:?}"
    );
    assert!(
        duplicates.iter().all(|(u, _)| a_done.contains(*u)),
        "a duplicate is a delivery A finished: {duplicates:?}"
    );
    // A duplicate is a job A held at the kill whose sink had just taken effect: B took
    // it over too. With the jobs still running at the kill, they are A's claims at the
    // kill, at most `concurrency`; so are the jobs claimed more than once.
    for (u, _) in &duplicates {
        let n = claims.get(u.as_str()).copied().unwrap_or(0);
        assert!(n >= 2, "{u}: a duplicate was taken over ({n} claims)");
    }
    assert!(
        duplicates.len() + in_flight.len() <= CONCURRENCY,
        "duplicates ({}) and deliveries in flight ({}) at the kill are A's claims, at most {CONCURRENCY}",
        duplicates.len(),
        in_flight.len()
    );
    assert!(
        taken_over <= CONCURRENCY,
        "only A's claims at the kill are taken over: {taken_over} > {CONCURRENCY}"
    );
    eprintln!(
        "replicas: {} acked; A delivered {}, B delivered {}; A had {} in flight at the kill, \
         all delivered by B; {taken_over} jobs taken over after a claim; {} duplicates; \
         drained {:.1?} after the kill",
        acked.len(),
        a_done.len(),
        b_done.len(),
        in_flight.len(),
        duplicates.len(),
        drained_after,
    );

    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(b.child.id().to_string())
        .status();
    let status = b.child.wait().expect("wait B");
    assert!(status.success(), "B exits cleanly on SIGTERM: {status:?}");
    eprintln!("replicas: the test took {:.1?}", begun.elapsed());
}
