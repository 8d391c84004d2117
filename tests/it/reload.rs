//! Configuration reload in place (`POST /reload`; SIGHUP runs the same reload), under a
//! continuous load of deliveries and inline calls.

use crate::util::*;
use hookwarden::config::{Config, ConfigSource};
use hookwarden::store::{EventQuery, JobState, OpenFor, ReplayTarget};
use serde_json::Value;
use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "reload-admin-token-0123";
const OLD: &str = "old-secret-0123456789";
const NEW: &str = "new-secret-9876543210";
const CLAIM_A: &str = "generation-a";
const CLAIM_B: &str = "generation-b";

fn basic_for(password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"))
    )
}

/// The hooks of one generation: the event hook's accepted passwords, the token hook's
/// claim value, and whether the `extra` sink exists.
fn hooks(dir: &Path, passwords: &[&str], claim: &str, extra: bool) -> String {
    let users = passwords
        .iter()
        .map(|p| format!("{{ username = \"{USER}\", password = \"{p}\" }}"))
        .collect::<Vec<_>>()
        .join(", ");
    let extra_sink = if extra {
        format!(
            ", {{ name = \"extra\", type = \"jsonl\", path = \"{}\" }}",
            dir.join("extra.jsonl").display()
        )
    } else {
        String::new()
    };
    format!(
        r#"
[[event_hooks]]
name = "okta"
path = "/hooks/okta/events"
auth = {{ type = "basic", users = [{users}] }}
sinks = [{{ name = "archive", type = "jsonl", path = "{archive}" }}{extra_sink}]

[[inline_hooks]]
name = "tokens"
path = "/hooks/okta/token"
type = "token"
auth = {{ type = "basic", users = [{users}] }}
handler = {{ kind = "rules", token = {{ claims = [{{ token = "id", name = "generation", value = "{claim}" }}] }} }}
"#,
        archive = dir.join("archive.jsonl").display()
    )
}

fn text(dir: &Path, cert: &Path, key: &Path, hooks: String) -> String {
    let opts = Options {
        toml: Some(hooks),
        ..Options::default()
    };
    with_admin_token(&config_text(dir, cert, key, &opts), TOKEN)
}

async fn reload(s: &TestServer) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/reload", s.admin_base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("reload");
    let status = r.status().as_u16();
    (status, r.json().await.expect("reload answers JSON"))
}

/// The claim value of a token hook's answer; panics unless it holds exactly one of the
/// two generations' values (a mixed answer would hold both or neither).
fn claim_of(body: &str) -> &'static str {
    match (body.contains(CLAIM_A), body.contains(CLAIM_B)) {
        (true, false) => CLAIM_A,
        (false, true) => CLAIM_B,
        _ => panic!("a token hook answer from one generation was expected: {body}"),
    }
}

/// A token hook call at `base` (the server's `https://localhost:<port>`).
async fn token_call(client: &reqwest::Client, base: &str, password: &str) -> (u16, String) {
    let r = client
        .post(format!("{base}/hooks/okta/token"))
        .header("Authorization", basic_for(password))
        .header("Content-Type", "application/json")
        .body(fixture("token-hook-request.json"))
        .send()
        .await
        .expect("inline call");
    (r.status().as_u16(), r.text().await.expect("body"))
}

async fn inline_call(s: &TestServer, password: &str) -> (u16, String) {
    token_call(&s.client, &s.base, password).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_reloads_under_load_rotate_a_secret_switch_rules_and_sinks_and_lose_nothing() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_path_buf();
    let (cert, key, pem) = write_cert(&d, "server");
    let config_path = d.join("hookwarden.toml");
    let write = |hooks: String| {
        std::fs::write(&config_path, text(&d, &cert, &key, hooks)).expect("write config")
    };
    write(hooks(&d, &[OLD], CLAIM_A, false));
    let config = Config::load(Some(&config_path)).expect("valid config");
    assert_eq!(
        config.source,
        ConfigSource::Loaded(Some(config_path.clone()))
    );
    let store_config = config.clone();
    let s = Arc::new(
        start_with(
            dir,
            config,
            pem,
            cert.clone(),
            key.clone(),
            config_path.clone(),
            true,
        )
        .await,
    );

    // The load: three delivery loops and one inline loop, each with the password that
    // every generation in service while it runs accepts.
    let stop = Arc::new(AtomicBool::new(false));
    let use_new = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut load = Vec::new();
    for _ in 0..3 {
        let (s, stop, use_new, acked, failures) = (
            s.clone(),
            stop.clone(),
            use_new.clone(),
            acked.clone(),
            failures.clone(),
        );
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let e = event("user.session.start");
                let uuid = e["uuid"].as_str().expect("uuid").to_owned();
                let password = if use_new.load(Ordering::SeqCst) {
                    NEW
                } else {
                    OLD
                };
                let r = s
                    .client
                    .post(s.url("/hooks/okta/events"))
                    .header("Authorization", basic_for(password))
                    .header("Content-Type", "application/json")
                    .body(envelope(&[e]))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => acked.lock().expect("lock").push(uuid),
                    Ok(r) => failures
                        .lock()
                        .expect("lock")
                        .push(format!("delivery: {}", r.status())),
                    Err(e) => failures
                        .lock()
                        .expect("lock")
                        .push(format!("delivery: {e}")),
                }
            }
        }));
    }
    let inline_calls = Arc::new(std::sync::atomic::AtomicU64::new(0));
    {
        let (s, stop, use_new, failures, calls) = (
            s.clone(),
            stop.clone(),
            use_new.clone(),
            failures.clone(),
            inline_calls.clone(),
        );
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let password = if use_new.load(Ordering::SeqCst) {
                    NEW
                } else {
                    OLD
                };
                let (status, body) = inline_call(&s, password).await;
                if status != 200 {
                    failures
                        .lock()
                        .expect("lock")
                        .push(format!("inline: {status} {body}"));
                    continue;
                }
                claim_of(&body);
                calls.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // 1: the new secret added next to the old one; the clients move to it.
    write(hooks(&d, &[OLD, NEW], CLAIM_A, false));
    let (status, report) = reload(&s).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["generation"], 2, "{report}");
    use_new.store(true, Ordering::SeqCst);
    let mut took = vec![report["tookMs"].as_f64().expect("tookMs")];

    // 2-19: rule and sink changes, and every third one an invalid config.
    let mut generation = 2;
    for i in 0..18 {
        tokio::time::sleep(Duration::from_millis(60)).await;
        let (claim, extra) = if i % 2 == 0 {
            (CLAIM_B, true)
        } else {
            (CLAIM_A, false)
        };
        if i % 3 == 2 {
            std::fs::write(&config_path, "[[event_hooks]]\nname = 3\n").expect("write");
            let (status, report) = reload(&s).await;
            assert_eq!(status, 422, "{report}");
            assert_eq!(report["result"], "refused", "{report}");
            assert_eq!(report["generation"], generation, "{report}");
            assert!(!report["problems"].as_array().expect("problems").is_empty());
            continue;
        }
        write(hooks(&d, &[OLD, NEW], claim, extra));
        let (status, report) = reload(&s).await;
        assert_eq!(status, 200, "{report}");
        generation += 1;
        assert_eq!(report["generation"], generation, "{report}");
        took.push(report["tookMs"].as_f64().expect("tookMs"));
        // The switch happens at one point: the first call after the answer sees the new rule.
        let (status, body) = inline_call(&s, NEW).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            claim_of(&body),
            claim,
            "the first answer after reload {generation}"
        );
    }

    // 20: the old secret removed (and the extra sink back, so that its dead letters can
    // be replayed below).
    write(hooks(&d, &[NEW], CLAIM_A, true));
    let (status, report) = reload(&s).await;
    assert_eq!(status, 200, "{report}");
    generation += 1;
    took.push(report["tookMs"].as_f64().expect("tookMs"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    for t in load {
        t.await.expect("load task");
    }
    let refused = s
        .client
        .post(s.url("/hooks/okta/events"))
        .header("Authorization", basic_for(OLD))
        .header("Content-Type", "application/json")
        .body(envelope(&[event("user.session.start")]))
        .send()
        .await
        .expect("old secret");
    assert_eq!(
        refused.status(),
        401,
        "the old secret is refused after the rotation"
    );

    let failures = failures.lock().expect("lock").clone();
    assert!(
        failures.is_empty(),
        "requests failed during the reloads: {failures:?}"
    );
    let acked = acked.lock().expect("lock").clone();
    let calls = inline_calls.load(Ordering::SeqCst);
    assert!(
        acked.len() > 100 && calls > 20,
        "too little load: {} deliveries, {calls} inline calls",
        acked.len()
    );
    let m = s.metrics().await;
    assert_eq!(
        metric(&m, "hookwarden_config_reloads_total", "result=\"ok\""),
        14.0
    );
    assert_eq!(
        metric(&m, "hookwarden_config_reloads_total", "result=\"refused\""),
        6.0
    );
    assert_eq!(
        metric(&m, "hookwarden_config_generation", ""),
        generation as f64
    );
    assert_eq!(generation, 15);

    // Every acknowledged event reaches every sink it was routed to when it was stored:
    // `extra`'s jobs that were still pending when it was removed are dead letters, kept,
    // and delivered by a replay now that it is back.
    let archived = wait_jsonl(
        &d.join("archive.jsonl"),
        acked.len(),
        Duration::from_secs(30),
    )
    .await;
    let archived: HashSet<String> = uuids(&archived).into_iter().collect();
    assert!(
        acked.iter().all(|u| archived.contains(u)),
        "an acknowledged event is missing from archive"
    );
    let opened = hookwarden::store::open(&store_config, OpenFor::Cli)
        .await
        .expect("open the store");
    let store = opened.store;
    store
        .replay(&ReplayTarget::AllDead { hook: None })
        .await
        .expect("replay");
    let deadline = Instant::now() + Duration::from_secs(30);
    let routed_to_extra = loop {
        let events = store
            .list(&EventQuery {
                limit: 1_000_000,
                ..EventQuery::default()
            })
            .await
            .expect("list");
        assert_eq!(events.len(), acked.len(), "stored events");
        let extra: Vec<_> = events
            .iter()
            .filter_map(|e| {
                e.sinks
                    .iter()
                    .find(|k| k.sink == "extra")
                    .map(|k| (e.uuid.clone(), k.state))
            })
            .collect();
        if extra.iter().all(|(_, state)| *state == JobState::Delivered) {
            break extra;
        }
        assert!(
            Instant::now() < deadline,
            "extra's jobs not delivered: {extra:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        !routed_to_extra.is_empty(),
        "some events were routed to the extra sink"
    );
    let in_extra: HashSet<String> = uuids(&read_jsonl(&d.join("extra.jsonl")))
        .into_iter()
        .collect();
    for (uuid, _) in &routed_to_extra {
        assert!(
            in_extra.contains(uuid),
            "{uuid} was routed to extra but is not in its file"
        );
    }
    store.close().await;
    took.sort_by(f64::total_cmp);
    eprintln!(
        "reload: {} deliveries and {calls} inline calls, none failed; {} of them routed to extra; reload took median {:.1} ms, max {:.1} ms",
        acked.len(),
        routed_to_extra.len(),
        took[took.len() / 2],
        took[took.len() - 1]
    );
    let s = Arc::try_unwrap(s).unwrap_or_else(|_| panic!("the load tasks are done"));
    s.stop().await;
}

#[tokio::test]
async fn reload_needs_the_admin_token_and_names_what_takes_a_restart() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_path_buf();
    let (cert, key, pem) = write_cert(&d, "server");
    let config_path = d.join("hookwarden.toml");
    std::fs::write(
        &config_path,
        text(&d, &cert, &key, hooks(&d, &[OLD], CLAIM_A, false)),
    )
    .expect("write");
    let config = Config::load(Some(&config_path)).expect("valid config");
    let s = start_with(
        dir,
        config,
        pem,
        cert.clone(),
        key.clone(),
        config_path.clone(),
        true,
    )
    .await;

    let plain = reqwest::Client::new();
    let none = plain
        .post(format!("{}/reload", s.admin_base))
        .send()
        .await
        .expect("post");
    assert_eq!(none.status(), 401);
    assert_eq!(
        none.headers().get("www-authenticate").map(|v| v.as_bytes()),
        Some(&b"Bearer"[..])
    );
    let wrong = plain
        .post(format!("{}/reload", s.admin_base))
        .bearer_auth("not-the-token")
        .send()
        .await
        .expect("post");
    assert_eq!(wrong.status(), 401);

    // A new listen address and worker setting take a restart: named, and the running
    // values stay; the hook change in the same file goes into service.
    let changed = text(&d, &cert, &key, hooks(&d, &[OLD, NEW], CLAIM_B, false))
        .replace("listen = \"127.0.0.1:1\"", "listen = \"127.0.0.1:3\"")
        .replace("poll_interval = \"100ms\"", "poll_interval = \"150ms\"");
    std::fs::write(&config_path, changed).expect("write");
    let (status, report) = reload(&s).await;
    assert_eq!(status, 200, "{report}");
    let needed: Vec<&str> = report["restartNeeded"]
        .as_array()
        .expect("restartNeeded")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(needed, ["server.listen", "worker"], "{report}");
    let changes = report["changes"].to_string();
    assert!(changes.contains("event hook 'okta' changed"), "{report}");
    assert!(changes.contains("inline hook 'tokens' changed"), "{report}");
    let (status, body) = inline_call(&s, NEW).await;
    assert_eq!((status, claim_of(&body)), (200, CLAIM_B));
    s.stop().await;
}

/// The real binary on free ports with this config file and more `serve` arguments,
/// ready: the child, its admin port, and a client for its public base URL.
async fn start_binary(
    config: &Path,
    pem: &[u8],
    args: &[&str],
) -> (std::process::Child, u16, reqwest::Client, String) {
    let (port, admin) = (free_port(), free_port());
    let child = spawn_with(config, port, admin, args);
    wait_ready(admin).await;
    let client = client_for(format!("127.0.0.1:{port}").parse().expect("addr"), pem);
    (child, admin, client, format!("https://localhost:{port}"))
}

/// The binary's `/metrics` text.
async fn binary_metrics(admin: u16) -> String {
    reqwest::get(format!("http://127.0.0.1:{admin}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

/// Calls with the new secret until the new generation answers (10 s at most); every
/// answer it gives carries the new rule's claim.
async fn until_new_generation<F, Fut>(call: F, what: &str)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (u16, String)>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = call().await;
        if status == 200 {
            assert_eq!(claim_of(&body), CLAIM_B);
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {status} {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// SIGTERM, and a clean exit.
fn stop_binary(mut child: std::process::Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    assert!(child.wait().expect("wait").success());
}

/// SIGHUP runs the same reload in the real binary: the new secret is accepted afterwards
/// and the new rule answers, without a restart (the process and its connections stay).
#[tokio::test]
async fn sighup_reloads_the_binary_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (cert, key, pem) = write_cert(d, "server");
    let config_path = d.join("hookwarden.toml");
    std::fs::write(
        &config_path,
        text(d, &cert, &key, hooks(d, &[OLD], CLAIM_A, false)),
    )
    .expect("write");
    let (mut child, admin, client, base) = start_binary(&config_path, &pem, &[]).await;
    let call = |password: &'static str| token_call(&client, &base, password);
    let (status, body) = call(OLD).await;
    assert_eq!((status, claim_of(&body)), (200, CLAIM_A));
    assert_eq!(call(NEW).await.0, 401);

    std::fs::write(
        &config_path,
        text(d, &cert, &key, hooks(d, &[OLD, NEW], CLAIM_B, false)),
    )
    .expect("write");
    let hup = Command::new("kill")
        .arg("-HUP")
        .arg(child.id().to_string())
        .status()
        .expect("kill -HUP");
    assert!(hup.success());
    until_new_generation(|| call(NEW), "SIGHUP did not reload").await;
    assert_eq!(call(OLD).await.0, 200, "both secrets during the overlap");
    let m = binary_metrics(admin).await;
    assert_eq!(metric(&m, "hookwarden_config_generation", ""), 2.0);
    assert_eq!(
        metric(&m, "hookwarden_config_reloads_total", "result=\"ok\""),
        1.0
    );
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "still the same process"
    );
    stop_binary(child);
}

/// `serve --watch-config`: an edit of the file is reloaded by itself; a broken file is
/// refused once (not again and again) and the running configuration stays.
#[tokio::test]
async fn watch_config_reloads_an_edited_file_and_refuses_a_broken_one_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (cert, key, pem) = write_cert(d, "server");
    let config_path = d.join("hookwarden.toml");
    std::fs::write(
        &config_path,
        text(d, &cert, &key, hooks(d, &[OLD], CLAIM_A, false)),
    )
    .expect("write");
    let (child, admin, client, base) =
        start_binary(&config_path, &pem, &["--watch-config", "100ms"]).await;
    let call = |password: &'static str| token_call(&client, &base, password);
    let metrics = || binary_metrics(admin);
    assert_eq!(call(OLD).await.0, 200);

    // A broken file: refused once, and the service keeps answering as before.
    std::fs::write(&config_path, "[[event_hooks]]\nname = 3\n").expect("write");
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(
        &metrics().await,
        "hookwarden_config_reloads_total",
        "result=\"refused\"",
    ) < 1.0
    {
        assert!(Instant::now() < deadline, "the broken file was not seen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let m = metrics().await;
    assert_eq!(
        metric(&m, "hookwarden_config_reloads_total", "result=\"refused\""),
        1.0
    );
    assert_eq!(metric(&m, "hookwarden_config_generation", ""), 1.0);
    assert_eq!(call(OLD).await.0, 200);

    // The edit: the new secret and rule are in service without a signal.
    std::fs::write(
        &config_path,
        text(d, &cert, &key, hooks(d, &[NEW], CLAIM_B, false)),
    )
    .expect("write");
    until_new_generation(|| call(NEW), "the edit was not reloaded").await;
    assert_eq!(call(OLD).await.0, 401);
    let m = metrics().await;
    assert_eq!(metric(&m, "hookwarden_config_generation", ""), 2.0);
    assert_eq!(
        metric(&m, "hookwarden_config_reloads_total", "result=\"ok\""),
        1.0
    );
    stop_binary(child);
}

/// Without `admin.token`, `POST /reload` is off and says how to turn it on; SIGHUP still
/// reloads (the README's first command runs without a token).
#[tokio::test]
async fn reload_without_an_admin_token_is_off_and_says_how_to_turn_it_on() {
    let s = start(Options::default()).await;
    let r = reqwest::Client::new()
        .post(format!("{}/reload", s.admin_base))
        .bearer_auth("anything")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        body["errorSummary"],
        "POST /reload is off: set admin.token (the bearer token it takes) and reload with SIGHUP, or restart"
    );
    s.stop().await;
}
