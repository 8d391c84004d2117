//! `hookwarden simulate`, the real binary: against a real hookwarden (real TLS, rules
//! handlers for the six inline types, a JSON Lines sink), and against small receivers
//! written here that misbehave the ways Okta has rules for (5xx, 4xx, slow, redirect,
//! an answer Okta would reject, plain http).

use crate::util::*;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Runs `hookwarden simulate ARGS` with `env`; returns (exit code, stdout, stderr).
async fn simulate(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookwarden"));
    cmd.arg("simulate").args(args).kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("simulate finishes within 30 s")
        .expect("run hookwarden simulate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs with `--json` and parses the report.
async fn simulate_json(args: &[&str], env: &[(&str, &str)]) -> (i32, Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, stdout, stderr) = simulate(&all, env).await;
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {stderr}"));
    (code, report)
}

fn scenario<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .find(|s| s["scenario"] == name)
        .unwrap_or_else(|| panic!("no scenario {name} in {report}"))
}

fn results(report: &Value) -> &Vec<Value> {
    report["results"].as_array().expect("results")
}

/// One rules hook per inline type, at /hooks/okta/<type>.
fn inline_rules_hooks(password_file: &std::path::Path) -> String {
    let auth = format!(
        r#"auth = {{ type = "basic", users = [{{ username = "{USER}", password = "{PASSWORD}" }}] }}"#
    );
    let rules = [
        (
            "token",
            r#"{ kind = "rules", token = { claims = [{ token = "access", name = "login", from = "/data/context/user/profile/login" }] } }"#.to_owned(),
        ),
        (
            "registration",
            r#"{ kind = "rules", registration = { error_summary = "Only allowed domains.", email = { deny_domains = ["mailinator.com"] } } }"#.to_owned(),
        ),
        (
            "import",
            r#"{ kind = "rules", import = { set = [{ target = "user", attribute = "nickName", from = "/data/appUser/profile/userName" }] } }"#.to_owned(),
        ),
        (
            "password_import",
            format!(
                r#"{{ kind = "rules", password_import = {{ file = "{}" }} }}"#,
                password_file.display()
            ),
        ),
        (
            "saml",
            r#"{ kind = "rules", saml = { attributes = [{ name = "login", from = "/data/context/user/profile/login" }] } }"#.to_owned(),
        ),
        (
            "telephony",
            r#"{ kind = "rules", telephony = { deny_prefixes = ["+882"] } }"#.to_owned(),
        ),
    ];
    rules
        .iter()
        .map(|(t, handler)| {
            format!(
                "\n[[inline_hooks]]\nname = \"{t}\"\npath = \"/hooks/okta/{t}\"\ntype = \"{t}\"\n{auth}\nhandler = {handler}\n"
            )
        })
        .collect()
}

/// A hookwarden with the default event hook (its JSON Lines sink in the returned
/// directory) and the six inline hooks.
async fn full_server() -> (TestServer, tempfile::TempDir) {
    let tmp = tempfile::tempdir().expect("tmp");
    let passwords = tmp.path().join("legacy-passwords");
    let hash = bcrypt::hash("Okta", 4).expect("bcrypt");
    std::fs::write(&passwords, format!("isaac.brock@example.com:{hash}\n")).expect("write");
    let s = start(Options {
        toml: Some(format!(
            "{}{}",
            default_hook(tmp.path()),
            inline_rules_hooks(&passwords)
        )),
        ..Options::default()
    })
    .await;
    (s, tmp)
}

fn inline_args() -> Vec<String> {
    [
        "token",
        "registration",
        "import",
        "password_import",
        "saml",
        "telephony",
    ]
    .iter()
    .flat_map(|t| ["--inline".to_owned(), format!("{t}=/hooks/okta/{t}")])
    .collect()
}

#[tokio::test]
async fn every_scenario_passes_against_a_real_hookwarden_and_events_land_once() {
    let (s, tmp) = full_server().await;
    let sink = tmp.path().join("events.jsonl");
    let base = format!("https://127.0.0.1:{}", s.addr.port());
    let cacert = s.cert_path.display().to_string();
    let mut args: Vec<String> = vec![
        base.clone(),
        "--cacert".into(),
        cacert.clone(),
        "--auth-env".into(),
        "HOOK_AUTH".into(),
        "--event-hook".into(),
        "/hooks/okta/events".into(),
        "--concurrency".into(),
        "3".into(),
    ];
    args.extend(inline_args());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let auth = basic();
    let (code, report) = simulate_json(&argv, &[("HOOK_AUTH", &auth)]).await;
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["passed"], true);
    assert_eq!(report["failed"], 0);

    // Each sample once: 1 verification, 4 deliveries, 3 duplicate sends, 11 inline calls.
    let expect = [
        ("verify", 1),
        ("deliveries", 4),
        ("duplicates", 3),
        ("inline token", 1),
        ("inline registration", 3),
        ("inline import", 2),
        ("inline password_import", 2),
        ("inline saml", 1),
        ("inline telephony", 2),
    ];
    for (name, calls) in expect {
        let sc = scenario(&report, name);
        assert_eq!(sc["calls"], calls, "{name}: {sc}");
        assert_eq!(sc["passed"], calls, "{name}: {sc}");
        assert_eq!(sc["failed"], 0, "{name}: {sc}");
        assert_eq!(sc["passed_after_retry"], 0, "{name}: {sc}");
        let p50 = sc["latency_ms"]["p50"].as_f64().expect("p50");
        let p99 = sc["latency_ms"]["p99"].as_f64().expect("p99");
        assert!(p50 > 0.0 && p99 >= p50 && p99 < 3000.0, "{name}: {sc}");
    }
    assert_eq!(report["calls"], 19);
    let rs = results(&report);
    assert!(rs
        .iter()
        .all(|r| r["attempts"].as_array().map(Vec::len) == Some(1)));
    // What Okta would do, in words, from the rules' answers.
    let okta = |scenario: &str, sample: &str| -> String {
        rs.iter()
            .find(|r| r["scenario"] == scenario && r["sample"] == sample)
            .and_then(|r| r["okta"].as_str())
            .unwrap_or_else(|| panic!("no {scenario} {sample}"))
            .to_owned()
    };
    assert_eq!(okta("verify", "challenge"), "event hook verified");
    assert_eq!(
        okta("inline token", "token-hook-request.json"),
        "token issued with changes: access add /claims/login"
    );
    assert_eq!(
        okta("inline password_import", "password-import-request.json"),
        "password import: VERIFIED, Okta stores the password and signs the user in"
    );
    assert!(okta("inline import", "import-hook-request.json").starts_with("import: user"));

    // Every delivered uuid reached the sink exactly once, the duplicates included.
    let mut sent: Vec<String> = rs
        .iter()
        .flat_map(|r| r["uuids"].as_array().cloned().unwrap_or_default())
        .filter_map(|u| u.as_str().map(str::to_owned))
        .collect();
    let sends = sent.len();
    sent.sort();
    sent.dedup();
    assert!(sends > sent.len(), "the duplicates scenario re-sent uuids");
    wait_jsonl(&sink, sent.len(), Duration::from_secs(10)).await;
    // Give a wrongly duplicated event time to show up before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut landed = uuids(&read_jsonl(&sink));
    landed.sort();
    assert_eq!(landed, sent, "each uuid once in the sink");
    s.stop().await;
}

#[tokio::test]
async fn certificates_are_verified_unless_insecure_and_the_human_report_says_so() {
    let s = start(Options::default()).await;
    let base = format!("https://127.0.0.1:{}", s.addr.port());
    let common = ["--basic", "okta:correct-horse-battery-staple"];
    // A self-signed certificate, not trusted: Okta could not call this either.
    let (code, stdout, _) = simulate(
        &[
            &base,
            common[0],
            common[1],
            "--event-hook",
            "/hooks/okta/events",
            "--scenario",
            "verify",
        ],
        &[],
    )
    .await;
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("FAIL"), "{stdout}");
    assert!(stdout.to_lowercase().contains("certificate"), "{stdout}");
    assert!(stdout.contains("verification fails"), "{stdout}");
    // --insecure accepts the development certificate; the auth header given as a header.
    let (code, stdout, _) = simulate(
        &[
            &base,
            "--header",
            &format!("Authorization: {}", basic()),
            "-H",
            "X-Custom-Header: any value",
            "--event-hook",
            "/hooks/okta/events",
            "--scenario",
            "verify,deliveries",
            "--insecure",
        ],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("event hook verified"), "{stdout}");
    assert!(stdout.contains("PASSED: all 5 calls"), "{stdout}");
    // A wrong password: a 4xx, not retried, a failure.
    let (code, report) = simulate_json(
        &[
            &base,
            "--insecure",
            "--basic",
            "okta:wrong",
            "--event-hook",
            "/hooks/okta/events",
            "--scenario",
            "deliveries",
            "--count",
            "1",
        ],
        &[],
    )
    .await;
    assert_eq!(code, 1);
    let r = &results(&report)[0];
    assert_eq!(r["attempts"][0]["answer"], "401", "{r}");
    assert_eq!(r["attempts"].as_array().map(Vec::len), Some(1), "{r}");
    s.stop().await;
}

/// What a test receiver answers to call number `n` (from 0) on `path`.
type Behaviour = fn(n: usize, path: &str) -> (u16, Vec<(&'static str, String)>, String, Duration);

/// A plain-HTTP receiver on port 0 (simulate needs --insecure for it); records the
/// paths it was called on.
async fn receiver(behaviour: Behaviour) -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen2 = seen.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, _h: HeaderMap| {
        let seen = seen2.clone();
        async move {
            let path = uri.path().to_owned();
            let n = {
                let mut seen = seen.lock().expect("lock");
                let n = seen.iter().filter(|p| **p == path).count();
                seen.push(path.clone());
                n
            };
            let (status, headers, body, delay) = behaviour(n, &path);
            tokio::time::sleep(delay).await;
            let mut r: Response = (
                StatusCode::from_u16(status).expect("status"),
                [("content-type", "application/json")],
                body,
            )
                .into_response();
            for (k, v) in headers {
                r.headers_mut().insert(k, v.parse().expect("header value"));
            }
            r
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (format!("http://{addr}"), seen)
}

fn calls(seen: &Arc<Mutex<Vec<String>>>) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for p in seen.lock().expect("lock").iter() {
        *m.entry(p.clone()).or_insert(0) += 1;
    }
    m
}

#[tokio::test]
async fn a_5xx_is_retried_once_and_passes_after_retry_a_4xx_is_not_retried() {
    let (base, seen) = receiver(|n, path| match path {
        "/flaky" if n == 0 => (500, vec![], String::new(), Duration::ZERO),
        "/flaky" => (200, vec![], String::new(), Duration::ZERO),
        _ => (400, vec![], r#"{"error":"bad"}"#.to_owned(), Duration::ZERO),
    })
    .await;
    let one = ["--insecure", "--scenario", "deliveries", "--count", "1"];
    let (code, flaky) = simulate_json(
        &[&[base.as_str(), "--event-hook", "/flaky"][..], &one].concat(),
        &[],
    )
    .await;
    let (code400, bad) = simulate_json(
        &[&[base.as_str(), "--event-hook", "/bad"][..], &one].concat(),
        &[],
    )
    .await;

    // Okta gets the delivery on its retry: passed, counted as passed after retry.
    assert_eq!(code, 0, "{flaky:#}");
    let r = &results(&flaky)[0];
    assert_eq!(r["result"], "passed_after_retry", "{r}");
    assert_eq!(r["attempts"][0]["answer"], "500");
    assert_eq!(r["attempts"][1]["answer"], "200");
    assert!(
        r["okta"].as_str().unwrap_or("").contains("on Okta's retry"),
        "{r}"
    );
    assert_eq!(scenario(&flaky, "deliveries")["passed_after_retry"], 1);
    assert_eq!(scenario(&flaky, "deliveries")["attempts"], 2);

    // A 4xx: one attempt, failed, what Okta does said.
    assert_eq!(code400, 1, "{bad:#}");
    assert_eq!(bad["passed"], false);
    let r = &results(&bad)[0];
    assert_eq!(r["result"], "failed");
    assert_eq!(r["attempts"].as_array().map(Vec::len), Some(1), "{r}");
    assert!(
        r["okta"]
            .as_str()
            .unwrap_or("")
            .starts_with("delivery failed"),
        "{r}"
    );
    assert!(
        r["problem"]
            .as_str()
            .unwrap_or("")
            .contains("does not retry"),
        "{r}"
    );

    let c = calls(&seen);
    assert_eq!(c.get("/flaky"), Some(&2));
    assert_eq!(c.get("/bad"), Some(&1));
}

#[tokio::test]
async fn a_slow_receiver_times_out_after_3_s_and_is_retried_once() {
    let (base, seen) = receiver(|_, _| (200, vec![], String::new(), Duration::from_secs(4))).await;
    let started = Instant::now();
    let (code, report) = simulate_json(
        &[
            &base,
            "--insecure",
            "--event-hook",
            "/slow",
            "--scenario",
            "deliveries",
            "--count",
            "1",
        ],
        &[],
    )
    .await;
    let took = started.elapsed();
    assert_eq!(code, 1, "{report:#}");
    let r = &results(&report)[0];
    assert_eq!(r["attempts"][0]["answer"], "timeout", "{r}");
    assert_eq!(r["attempts"][1]["answer"], "timeout", "{r}");
    for a in r["attempts"].as_array().expect("attempts") {
        let ms = a["latency_ms"].as_f64().expect("ms");
        assert!((2900.0..3900.0).contains(&ms), "cut at 3 s: {a}");
    }
    assert!(
        r["problem"]
            .as_str()
            .unwrap_or("")
            .contains("no answer within 3 s"),
        "{r}"
    );
    assert!(
        took >= Duration::from_secs(6) && took < Duration::from_secs(15),
        "{took:?}"
    );
    assert_eq!(calls(&seen).get("/slow"), Some(&2));
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_fails() {
    let (base, seen) = receiver(|_, path| match path {
        "/moved" => (
            302,
            vec![("location", "/elsewhere".to_owned())],
            String::new(),
            Duration::ZERO,
        ),
        _ => (200, vec![], String::new(), Duration::ZERO),
    })
    .await;
    let (code, report) = simulate_json(
        &[
            &base,
            "--insecure",
            "--event-hook",
            "/moved",
            "--scenario",
            "verify,deliveries",
            "--count",
            "1",
        ],
        &[],
    )
    .await;
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["failed"], 2);
    for r in results(&report) {
        assert_eq!(r["attempts"].as_array().map(Vec::len), Some(1), "{r}");
        assert_eq!(r["attempts"][0]["answer"], "302");
        assert!(
            r["problem"]
                .as_str()
                .unwrap_or("")
                .contains("does not follow redirects"),
            "{r}"
        );
    }
    assert_eq!(
        calls(&seen).get("/elsewhere"),
        None,
        "redirect not followed"
    );
}

#[tokio::test]
async fn inline_answers_okta_would_reject_fail_with_okta_consequence() {
    let (base, seen) = receiver(|_, path| {
        let body = match path {
            // A registration command in a token hook's answer.
            "/token-wrong-command" => {
                r#"{"commands":[{"type":"com.okta.user.profile.update","value":{"a":"b"}}]}"#
            }
            // A patch outside /claims and /token/lifetime.
            "/token-bad-path" => {
                r#"{"commands":[{"type":"com.okta.access.patch","value":[{"op":"add","path":"/iss/x","value":"y"}]}]}"#
            }
            "/registration" => r#"{"error":{"errorSummary":"Only example.com may register."}}"#,
            _ => return (500, vec![], String::new(), Duration::ZERO),
        };
        (200, vec![], body.to_owned(), Duration::ZERO)
    })
    .await;
    let run = |args: Vec<String>| async move {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        simulate_json(&argv, &[]).await
    };
    let args = |extra: &[&str]| -> Vec<String> {
        [&[base.as_str(), "--insecure"][..], extra]
            .concat()
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let ((c1, wrong), (c2, path), (c3, mixed)) = tokio::join!(
        run(args(&["--inline", "token=/token-wrong-command"])),
        run(args(&["--inline", "token=/token-bad-path"])),
        run(args(&[
            "--inline",
            "registration=/registration",
            "--inline",
            "telephony=/telephony-500",
            "--count",
            "1"
        ])),
    );
    assert_eq!(c1, 1, "{wrong:#}");
    let r = &results(&wrong)[0];
    assert_eq!(
        r["okta"], "token issued unmodified (Okta skips the hook)",
        "{r}"
    );
    assert!(
        r["problem"]
            .as_str()
            .unwrap_or("")
            .contains("token hooks do not take this command type"),
        "{r}"
    );

    assert_eq!(c2, 1, "{path:#}");
    let r = &results(&path)[0];
    assert_eq!(
        r["okta"], "token issued unmodified (Okta skips the hook)",
        "{r}"
    );
    assert!(
        r["problem"].as_str().unwrap_or("").contains("/iss/x"),
        "{r}"
    );

    // A registration error is a valid answer (the user is told why); a telephony 500 is
    // a failure Okta never retries.
    assert_eq!(c3, 1, "{mixed:#}");
    let reg = &results(&mixed)[0];
    assert_eq!(reg["result"], "passed", "{reg}");
    assert_eq!(
        reg["okta"],
        "registration denied: \"Only example.com may register.\""
    );
    let tel = &results(&mixed)[1];
    assert_eq!(tel["result"], "failed", "{tel}");
    assert_eq!(tel["attempts"].as_array().map(Vec::len), Some(1), "{tel}");
    assert!(
        tel["okta"]
            .as_str()
            .unwrap_or("")
            .starts_with("OTP sent through Okta's own providers"),
        "{tel}"
    );
    assert!(
        tel["problem"]
            .as_str()
            .unwrap_or("")
            .contains("never retries"),
        "{tel}"
    );
    assert_eq!(calls(&seen).get("/telephony-500"), Some(&1));
}

#[tokio::test]
async fn plain_http_is_refused_without_insecure() {
    let (base, seen) = receiver(|_, _| (200, vec![], String::new(), Duration::ZERO)).await;
    let (code, stdout, stderr) = simulate(&[&base, "--event-hook", "/events"], &[]).await;
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("Okta only calls https:// URLs"), "{stderr}");
    assert!(stderr.contains("--insecure"), "{stderr}");
    assert!(seen.lock().expect("lock").is_empty(), "nothing was sent");
}

#[tokio::test]
async fn count_concurrency_rate_and_duration_shape_the_load() {
    let (base, seen) = receiver(|_, path| match path {
        "/slowish" => (204, vec![], String::new(), Duration::from_millis(300)),
        _ => (200, vec![], String::new(), Duration::ZERO),
    })
    .await;
    let deliveries = ["--insecure", "--scenario", "deliveries"];
    // 8 calls of 300 ms, 4 at a time: two waves, not eight.
    let started = Instant::now();
    let (code, report) = simulate_json(
        &[
            &[base.as_str(), "--event-hook", "/slowish"][..],
            &deliveries,
            &["--count", "8", "--concurrency", "4"],
        ]
        .concat(),
        &[],
    )
    .await;
    let took = started.elapsed();
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(scenario(&report, "deliveries")["calls"], 8);
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_millis(2000),
        "{took:?}"
    );
    // 20 calls at 40/s: the starts are spread over at least 19/40 s.
    let started = Instant::now();
    let (code, report) = simulate_json(
        &[
            &[base.as_str(), "--event-hook", "/events"][..],
            &deliveries,
            &["--count", "20", "--concurrency", "4", "--rate", "40/s"],
        ]
        .concat(),
        &[],
    )
    .await;
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(scenario(&report, "deliveries")["calls"], 20);
    assert!(
        started.elapsed() >= Duration::from_millis(475),
        "{:?}",
        started.elapsed()
    );
    // For a duration at a rate: about rate x duration calls, every scenario served.
    let (code, report) = simulate_json(
        &[
            base.as_str(),
            "--insecure",
            "--event-hook",
            "/timed",
            "--scenario",
            "verify,deliveries",
            "--duration",
            "1s",
            "--rate",
            "20/s",
            "--concurrency",
            "2",
        ],
        &[],
    )
    .await;
    assert_eq!(code, 1, "the receiver does not echo challenges: {report:#}");
    let verify = scenario(&report, "verify")["calls"]
        .as_u64()
        .expect("calls");
    let deliveries = scenario(&report, "deliveries")["calls"]
        .as_u64()
        .expect("calls");
    assert!(
        (15..=25).contains(&(verify + deliveries)),
        "{verify} + {deliveries}"
    );
    assert!(
        verify.abs_diff(deliveries) <= 1,
        "round robin: {verify} vs {deliveries}"
    );
    assert_eq!(scenario(&report, "deliveries")["failed"], 0);
    let c = calls(&seen);
    assert_eq!(c.get("/slowish"), Some(&8));
    assert_eq!(c.get("/events"), Some(&20));
    assert_eq!(
        c.get("/timed").copied(),
        Some((verify + deliveries) as usize),
        "a 200, even a wrong one, is not retried"
    );
}

/// A hookwarden whose forwards cannot answer: the registration service is not there (the
/// closed fallback, a DENY, goes), the token service is slower than the budget (the open
/// fallback, `{}`, goes). Okta would take both answers, yet neither hook works: simulate
/// warns, with an exit code of its own, and says why; a working hook beside them passes.
#[tokio::test]
async fn an_answer_that_is_only_the_fallback_is_a_warning_with_its_own_exit_code() {
    let slow = crate::inline::target().await;
    *slow.delay.lock().expect("lock") = Duration::from_secs(2);
    let gone = format!("http://127.0.0.1:{}/answer", free_port());
    let forward = |url: &str| format!(r#"{{ kind = "forward", url = "{url}" }}"#);
    let toml = [
        crate::inline::inline_hook("registration", "registration", &forward(&gone), ""),
        crate::inline::inline_hook("token", "token", &forward(&slow.url), "budget = \"300ms\""),
        crate::inline::inline_hook(
            "saml",
            "saml",
            r#"{ kind = "rules", saml = { attributes = [{ name = "login", from = "/data/context/user/profile/login" }] } }"#,
            "",
        ),
    ]
    .concat();
    let s = start(Options {
        toml: Some(toml),
        ..Options::default()
    })
    .await;
    let base = format!("https://127.0.0.1:{}", s.addr.port());
    let cacert = s.cert_path.display().to_string();
    let auth = basic();
    let args = [
        base.as_str(),
        "--cacert",
        &cacert,
        "--auth-env",
        "HOOK_AUTH",
        "--inline",
        "registration=/hooks/okta/registration",
        "--inline",
        "token=/hooks/okta/token",
        "--inline",
        "saml=/hooks/okta/saml",
        "--count",
        "1",
    ];
    let (code, report) = simulate_json(&args, &[("HOOK_AUTH", &auth)]).await;
    assert_eq!(code, 3, "{report:#}");
    assert_eq!(report["passed"], false);
    assert_eq!(report["failed"], 0);
    assert_eq!(report["warned"], 2);
    let rs = results(&report);
    let registration = &rs[0];
    assert_eq!(registration["result"], "warned", "{registration}");
    assert!(
        registration["okta"]
            .as_str()
            .unwrap_or("")
            .starts_with("registration denied"),
        "{registration}"
    );
    assert!(
        registration["problem"]
            .as_str()
            .unwrap_or("")
            .contains("x-hookwarden-fallback: handler_error"),
        "{registration}"
    );
    let token = &rs[1];
    assert_eq!(token["result"], "warned", "{token}");
    assert_eq!(token["okta"], "token issued unmodified (no commands)");
    assert!(
        token["problem"]
            .as_str()
            .unwrap_or("")
            .contains("x-hookwarden-fallback: deadline"),
        "{token}"
    );
    assert_eq!(rs[2]["result"], "passed", "{}", rs[2]);
    assert_eq!(scenario(&report, "inline token")["warned"], 1);
    assert_eq!(scenario(&report, "inline token")["passed"], 0);
    assert_eq!(scenario(&report, "inline saml")["passed"], 1);
    // The report for a person: warnings shown even with -q, and the last line says so.
    let mut quiet = args.to_vec();
    quiet.push("-q");
    let (code, stdout, _) = simulate(&quiet, &[("HOOK_AUTH", &auth)]).await;
    assert_eq!(code, 3, "{stdout}");
    assert!(stdout.contains("\nwarn  inline token "), "{stdout}");
    assert!(stdout.contains("\nwarn  inline registration "), "{stdout}");
    assert!(!stdout.contains("pass  inline saml"), "{stdout}");
    assert!(
        stdout.contains("WARNED: 2 of 3 calls got only the receiver's fallback"),
        "{stdout}"
    );
    s.stop().await;
}
