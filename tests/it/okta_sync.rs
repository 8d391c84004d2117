//! `hookwarden okta status|sync`, the real binary, against the fake Management API
//! ([`crate::okta_api_fake`], over TLS, paginated) with a real hookwarden in the middle:
//! Okta's verify and execute calls reach the real service, and so do the deliveries
//! the fake makes as Okta would. Covers creation, activation and verification, in-step
//! runs that change nothing, hooks registered by hand, pruning only what hookwarden
//! created, 429 with rate-limit headers, Okta's error bodies, a verify that fails, and
//! the secret rotation sequence under continuous traffic.

use crate::okta_api_fake::{FakeSettings, Fault, OktaApiFake};
use crate::util::*;
use hookwarden::config::Config;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const API_TOKEN: &str = "00fake-okta-api-token-for-sync";
const ADMIN_TOKEN: &str = "okta-sync-admin-token-0123";
const OLD: &str = "old-password-0123456789";
const NEW: &str = "new-password-9876543210";
const OLD_KEY: &str = "old-inline-key-0123456789";
const NEW_KEY: &str = "new-inline-key-9876543210";
const TYPES: [&str; 2] = ["user.lifecycle.deactivate", "user.session.start"];
const FILTER: &str = "event.outcome.result eq 'FAILURE'";

fn basic_for(password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"))
    )
}

/// `[okta]` for the fake and the two hooks, accepting these passwords and inline keys
/// (the last of each is what `okta sync` gives Okta).
fn hooks_toml(dir: &Path, fake: &OktaApiFake, passwords: &[&str], keys: &[&str]) -> String {
    let users = passwords
        .iter()
        .map(|p| format!("{{ username = \"{USER}\", password = \"{p}\" }}"))
        .collect::<Vec<_>>()
        .join(", ");
    let keys = keys
        .iter()
        .map(|k| format!("\"{k}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"
[okta]
org_url = "{base}"
ca_file = "{ca}"
api_token = "{API_TOKEN}"
max_wait = "5s"
backoff = "100ms"
rate_limit_reserve = 0

[[event_hooks]]
name = "okta"
path = "/hooks/okta/events"
event_types = ["{t0}", "{t1}"]
okta_filters = {{ "{t1}" = "{FILTER}" }}
auth = {{ type = "basic", users = [{users}] }}
sinks = [{{ name = "archive", type = "jsonl", path = "{archive}" }}]

[[inline_hooks]]
name = "tokens"
path = "/hooks/okta/token"
type = "token"
auth = {{ type = "header", header = "X-Hook-Key", secrets = [{keys}] }}
handler = {{ kind = "rules", token = {{ claims = [{{ token = "id", name = "synced", value = "yes" }}] }} }}
"#,
        base = fake.base,
        ca = fake.ca.display(),
        t0 = TYPES[0],
        t1 = TYPES[1],
        archive = dir.join("archive.jsonl").display(),
    )
}

/// The whole config file: the test server's base, an admin token, and the hooks.
fn config_file(dir: &Path, cert: &Path, key: &Path, hooks: String) -> String {
    let opts = Options {
        toml: Some(hooks),
        ..Options::default()
    };
    with_admin_token(&config_text(dir, cert, key, &opts), ADMIN_TOKEN)
}

/// A real hookwarden loaded from its file (so that `POST /reload` reads it again), the
/// fake API trusting its certificate, and the file's path.
async fn setup(passwords: &[&str], keys: &[&str]) -> (TestServer, OktaApiFake, PathBuf) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_path_buf();
    let (cert, key, pem) = write_cert(&d, "server");
    let fake = OktaApiFake::start(FakeSettings {
        token: API_TOKEN.to_owned(),
        page_size: Some(1),
        hook_ca: Some(pem.clone()),
    })
    .await;
    let path = d.join("hookwarden.toml");
    let text = config_file(&d, &cert, &key, hooks_toml(&d, &fake, passwords, keys));
    std::fs::write(&path, text).expect("write config");
    let config = Config::load(Some(&path)).unwrap_or_else(|e| panic!("{e}"));
    let s = start_with(dir, config, pem, cert, key, path.clone(), true).await;
    (s, fake, path)
}

/// Rewrites the config file with other passwords and keys.
fn rewrite(s: &TestServer, fake: &OktaApiFake, passwords: &[&str], keys: &[&str]) {
    let d = s.dir.path();
    let text = config_file(
        d,
        &s.cert_path,
        &s.key_path,
        hooks_toml(d, fake, passwords, keys),
    );
    std::fs::write(&s.config_path, text).expect("write config");
}

async fn reload(s: &TestServer) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/reload", s.admin_base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("reload")
        .status()
        .as_u16()
}

/// `hookwarden okta ARGS --config <file>`, with `okta.public_url` pointing at the test
/// server. Returns (exit code, stdout, stderr).
async fn okta(s: &TestServer, config: &Path, args: &[&str]) -> (i32, String, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookwarden"));
    cmd.arg("okta")
        .args(args)
        .arg("--config")
        .arg(config)
        .env("HOOKWARDEN__OKTA__PUBLIC_URL", &s.base)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("hookwarden okta finishes within 60 s")
        .expect("run hookwarden okta");
    let (code, stdout, stderr) = (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    println!(
        "$ hookwarden okta {}   # exit {code}\n{stdout}{stderr}",
        args.join(" ")
    );
    (code, stdout, stderr)
}

fn named<'a>(hooks: &'a [Value], name: &str) -> &'a Value {
    hooks
        .iter()
        .find(|h| h["name"] == name)
        .unwrap_or_else(|| panic!("no hook named {name} in {hooks:?}"))
}

fn count(fake: &OktaApiFake, method: &str, fragment: &str) -> usize {
    fake.seen()
        .iter()
        .filter(|(m, p, _)| m == method && p.contains(fragment))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_sync_create_verify_and_keep_okta_in_step() {
    let (s, fake, config) = setup(&[OLD], &[OLD_KEY]).await;
    let elsewhere = fake.insert_inline_hook(
        json!({"name": "Someone else's token hook", "type": "com.okta.oauth2.tokens.transform",
               "version": "1.0.0", "channel": {"type": "HTTP", "version": "1.0.0", "config": {
               "uri": "https://elsewhere.example.com/token", "method": "POST",
               "authScheme": {"type": "HEADER", "key": "Authorization", "value": "theirs"}}}}),
        None,
    );
    // The token hook, registered by hand from the README's steps, then deactivated.
    let by_hand = fake.insert_inline_hook(
        json!({"name": "Token hook (by hand)", "type": "com.okta.oauth2.tokens.transform",
               "status": "INACTIVE", "version": "1.0.0",
               "channel": {"type": "HTTP", "version": "1.0.0", "config": {
               "uri": s.url("/hooks/okta/token"), "method": "POST",
               "authScheme": {"type": "HEADER", "key": "X-Hook-Key", "value": OLD_KEY}}}}),
        None,
    );
    let retired = fake.insert_event_hook(
        json!({"name": "hookwarden: retired", "description": "old",
               "events": {"type": "EVENT_TYPE", "items": ["user.session.start"]},
               "channel": {"type": "HTTP", "version": "1.0.0", "config": {
               "uri": "https://localhost:1/hooks/retired", "method": "POST",
               "authScheme": {"type": "HEADER", "key": "Authorization", "value": "x"}}}}),
        None,
    );

    // Nothing registered yet: every difference, and the org's other hooks, listed.
    let (code, out, _) = okta(&s, &config, &["status"]).await;
    assert_eq!(code, 1);
    let uri = s.url("/hooks/okta/events");
    assert!(
        out.contains(&format!(
            "event hook 'okta' -> {uri}\n  not registered in Okta"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("inline hook 'tokens' -> {}\n  okta: {by_hand} \"Token hook (by hand)\" (registered by hand: matched by its URI), INACTIVE\n  differs: status: Okta has INACTIVE, the config ACTIVE", s.url("/hooks/okta/token"))),
        "{out}"
    );
    assert!(
        out.contains("\"hookwarden: retired\" -> https://localhost:1/hooks/retired: created by hookwarden, no longer configured"),
        "{out}"
    );
    assert!(
        out.contains(&format!("{elsewhere} \"Someone else's token hook\" -> https://elsewhere.example.com/token: not created by hookwarden (left alone)")),
        "{out}"
    );

    // A dry run, after a 429 on its first call: the wait, then the plan; nothing changes.
    fake.fail_next(0, Fault::TooMany { reset_in_secs: 1 });
    let before = fake.seen().len();
    let (code, out, _) = okta(&s, &config, &["sync", "--dry-run"]).await;
    assert_eq!(code, 1, "a dry run that would change something exits 1");
    assert!(
        out.contains("event hook 'okta': would create, would verify"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "inline hook 'tokens' ({by_hand}): would activate, would check with a sample call (execute)"
        )),
        "{out}"
    );
    let calls = &fake.seen()[before..];
    assert!(calls.iter().all(|(m, _, _)| m == "GET"), "{calls:?}");
    assert_eq!(
        calls[0].1, calls[1].1,
        "the call refused with 429 is made again"
    );
    assert_eq!(fake.event_hooks().len(), 1);
    assert_eq!(fake.inline_hooks().len(), 2);

    // The sync: created, verified by a real GET to hookwarden; the hand-made inline hook
    // activated in place (its name kept, no second hook) and checked by a real execute.
    let (code, out, _) = okta(&s, &config, &["sync"]).await;
    assert_eq!(code, 0, "{out}");
    let events = fake.event_hooks();
    let ours = named(&events, "hookwarden: okta");
    assert_eq!(ours["status"], "ACTIVE");
    assert_eq!(ours["verificationStatus"], "VERIFIED");
    assert_eq!(ours["channel"]["config"]["uri"], uri);
    assert_eq!(ours["events"]["items"], json!(TYPES));
    assert_eq!(
        ours["events"]["filter"]["eventFilterMap"][0],
        json!({"event": TYPES[1], "condition": {"expression": FILTER, "version": null}})
    );
    let event_id = ours["id"].as_str().expect("id").to_owned();
    assert_eq!(fake.secret_of(&event_id), Some(basic_for(OLD)));
    let inlines = fake.inline_hooks();
    assert_eq!(inlines.len(), 2, "no second token hook");
    let tokens = named(&inlines, "Token hook (by hand)");
    assert_eq!(tokens["type"], "com.okta.oauth2.tokens.transform");
    assert_eq!(tokens["status"], "ACTIVE");
    let inline_id = tokens["id"].as_str().expect("id").to_owned();
    assert_eq!(fake.secret_of(&inline_id), Some(OLD_KEY.to_owned()));
    assert_eq!(
        count(&fake, "POST", &format!("{event_id}/lifecycle/verify")),
        1
    );
    assert_eq!(count(&fake, "POST", &format!("{inline_id}/execute")), 1);
    // The retired hook is only listed without --prune; the secret is never printed.
    assert!(
        out.contains("created by hookwarden, no longer configured: okta sync --prune deletes it"),
        "{out}"
    );
    assert!(!out.contains(OLD) && !out.contains(OLD_KEY));

    // Okta now delivers to the real service, and calls the inline hook.
    let delivered = fake
        .call_event_hook(&event_id, envelope(&[event(TYPES[0])]))
        .await;
    assert_eq!(delivered, Ok(200));
    let (status, answer) = fake
        .call_inline_hook(&inline_id, fixture("token-hook-request.json"))
        .await
        .expect("inline call");
    assert_eq!(status, 200);
    assert!(answer.to_string().contains("synced"), "{answer}");
    wait_jsonl(
        &s.dir.path().join("archive.jsonl"),
        1,
        Duration::from_secs(10),
    )
    .await;

    // The configured hooks are in step; the hook hookwarden created and no longer
    // configures still counts as a difference.
    let (code, out, _) = okta(&s, &config, &["status"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("event hook 'okta' -> {uri}\n  okta: {event_id} \"hookwarden: okta\", ACTIVE, VERIFIED\n  in step")), "{out}");
    let puts = count(&fake, "PUT", "");
    let (code, out, _) = okta(&s, &config, &["sync"]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!("event hook 'okta' ({event_id}): in step")),
        "{out}"
    );
    assert_eq!(count(&fake, "PUT", ""), puts);

    // --prune deletes the retired hook (deactivated first), never the others.
    let (code, out, _) = okta(&s, &config, &["sync", "--prune"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("event hook 'hookwarden: retired' ("), "{out}");
    assert!(out.contains("deactivate ok, delete ok"), "{out}");
    let ids: Vec<Value> = fake.event_hooks().iter().map(|h| h["id"].clone()).collect();
    assert!(!ids.contains(&json!(retired)));
    assert!(fake
        .inline_hooks()
        .iter()
        .any(|h| h["id"] == elsewhere.as_str()));
    assert_eq!(fake.event_hooks().len(), 1, "ours stays");
    let (code, out, _) = okta(&s, &config, &["status"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Okta matches the configuration."), "{out}");

    // Okta's error body reaches the operator: a 403 on the first call.
    fake.fail_next(0, Fault::Status(403));
    let (code, _, err) = okta(&s, &config, &["status"]).await;
    assert_eq!(code, 2);
    assert!(
        err.contains("answered 403: You do not have permission to perform the requested action"),
        "{err}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verify_that_fails_is_reported_with_okta_s_reason_and_mended_by_the_next_sync() {
    let (s, fake, config) = setup(&[OLD], &[OLD_KEY]).await;
    let (code, _, _) = okta(&s, &config, &["sync"]).await;
    assert_eq!(code, 0);
    // A config the running service does not have: Okta is given a password hookwarden
    // refuses, so Okta's verification GET gets 401 and Okta answers 400.
    let other = s.dir.path().join("not-loaded.toml");
    let d = s.dir.path();
    std::fs::write(
        &other,
        config_file(
            d,
            &s.cert_path,
            &s.key_path,
            hooks_toml(d, &fake, &[OLD, NEW], &[OLD_KEY]),
        ),
    )
    .expect("write");
    let (code, out, _) = okta(&s, &other, &["sync", "--send-secrets"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("replace (secret) ok, verify FAILED"), "{out}");
    assert!(out.contains("answered 400: Api validation failed"), "{out}");
    assert!(
        out.contains("401"),
        "Okta's cause names the hook's answer: {out}"
    );
    let (code, out, _) = okta(&s, &config, &["status"]).await;
    assert_eq!(code, 1);
    assert!(
        out.contains("differs: verification: Okta has UNVERIFIED, the config VERIFIED"),
        "{out}"
    );
    // The running config's secret, sent again: verified.
    let (code, out, _) = okta(&s, &config, &["sync", "--send-secrets"]).await;
    assert_eq!(code, 0, "{out}");
    let (code, _, _) = okta(&s, &config, &["status"]).await;
    assert_eq!(code, 0);
    s.stop().await;
}

/// The documented rotation: add the new secret and reload; `okta sync --send-secrets`
/// gives it to Okta and verifies; remove the old one and reload. Okta's traffic runs
/// all along (deliveries and inline calls with whatever secret Okta holds at that
/// moment); not one call may fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_rotation_end_to_end_fails_no_call() {
    let (s, fake, config) = setup(&[OLD], &[OLD_KEY]).await;
    let (code, _, _) = okta(&s, &config, &["sync"]).await;
    assert_eq!(code, 0);
    let event_id = named(&fake.event_hooks(), "hookwarden: okta")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let inline_id = named(&fake.inline_hooks(), "hookwarden: tokens")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let fake = Arc::new(fake);
    let stop = Arc::new(AtomicBool::new(false));
    let (acked, inline_ok, unverified) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let traffic = {
        let (event_id, inline_id) = (event_id.clone(), inline_id.clone());
        let (fake, stop, acked, inline_ok, unverified, failures) = (
            fake.clone(),
            stop.clone(),
            acked.clone(),
            inline_ok.clone(),
            unverified.clone(),
            failures.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match fake
                    .call_event_hook(&event_id, envelope(&[event(TYPES[0])]))
                    .await
                {
                    Ok(200) => {
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    // Okta holds deliveries to a hook between a replace and its verify.
                    Err(e) if e == "not verified" => {
                        unverified.fetch_add(1, Ordering::Relaxed);
                    }
                    other => failures
                        .lock()
                        .expect("lock")
                        .push(format!("delivery: {other:?}")),
                }
                match fake
                    .call_inline_hook(&inline_id, fixture("token-hook-request.json"))
                    .await
                {
                    Ok((200, answer)) if answer.to_string().contains("synced") => {
                        inline_ok.fetch_add(1, Ordering::Relaxed);
                    }
                    other => failures
                        .lock()
                        .expect("lock")
                        .push(format!("inline: {other:?}")),
                }
            }
        })
    };
    let settle = || tokio::time::sleep(Duration::from_millis(300));
    settle().await;
    // 1. The new secret next to the old one.
    rewrite(&s, &fake, &[OLD, NEW], &[OLD_KEY, NEW_KEY]);
    assert_eq!(reload(&s).await, 200);
    settle().await;
    // 2. Okta gets the new one, and verifies it.
    let (code, out, _) = okta(&s, &config, &["sync", "--send-secrets"]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(fake.secret_of(&event_id), Some(basic_for(NEW)));
    assert_eq!(fake.secret_of(&inline_id), Some(NEW_KEY.to_owned()));
    settle().await;
    // 3. The old one goes.
    rewrite(&s, &fake, &[NEW], &[NEW_KEY]);
    assert_eq!(reload(&s).await, 200);
    settle().await;
    stop.store(true, Ordering::Relaxed);
    traffic.await.expect("traffic");

    let failures = failures.lock().expect("lock").clone();
    let (acked, inline_ok, unverified) = (
        acked.load(Ordering::Relaxed),
        inline_ok.load(Ordering::Relaxed),
        unverified.load(Ordering::Relaxed),
    );
    println!("rotation: {acked} deliveries acknowledged, {inline_ok} inline calls answered, {unverified} deliveries held by Okta between replace and verify, {} failed", failures.len());
    assert!(failures.is_empty(), "{failures:?}");
    assert!(
        acked >= 10 && inline_ok >= 10,
        "traffic ran: {acked} {inline_ok}"
    );
    // Every acknowledged event reached the sink.
    let records = wait_jsonl(
        &s.dir.path().join("archive.jsonl"),
        acked,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(records.len(), acked);
    // The old secret is refused now.
    let r = s
        .client
        .post(s.url("/hooks/okta/events"))
        .header("Authorization", basic_for(OLD))
        .header("Content-Type", "application/json")
        .body(envelope(&[event(TYPES[0])]))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 401);
    let (code, _, _) = okta(&s, &config, &["status"]).await;
    assert_eq!(code, 0);
    match Arc::try_unwrap(fake) {
        Ok(f) => drop(f),
        Err(_) => panic!("the traffic task still holds the fake"),
    }
    s.stop().await;
}
