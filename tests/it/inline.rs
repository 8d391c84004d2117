//! Inline hooks through the real server: each type's real request in, a checked answer out,
//! inside the budget, repeated for Okta's retries, with the fallback when the handler fails.

use crate::util::*;
use axum::http::StatusCode;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Each hook type with one of Okta's real requests and a real answer for it.
pub const PAIRS: &[(&str, &str, &str)] = &[
    (
        "token",
        "token-hook-request.json",
        "token-hook-response.json",
    ),
    (
        "registration",
        "registration-hook-request-ssr.json",
        "registration-hook-response-ssr-profile-update.json",
    ),
    (
        "registration",
        "registration-hook-request-progressive-profile.json",
        "registration-hook-response-pp-update.json",
    ),
    (
        "registration",
        "registration-hook-request-classic.json",
        "registration-hook-response-deny-minimal.json",
    ),
    (
        "import",
        "import-hook-request.json",
        "import-hook-response-link-user.json",
    ),
    (
        "import",
        "import-hook-request-spec.json",
        "import-hook-response-create-user.json",
    ),
    (
        "password_import",
        "password-import-request.json",
        "password-import-response-verified.json",
    ),
    (
        "password_import",
        "password-import-request-idx.json",
        "password-import-response-unverified.json",
    ),
    ("saml", "saml-hook-request.json", "saml-hook-response.json"),
    (
        "telephony",
        "telephony-hook-request.json",
        "telephony-hook-response-success.json",
    ),
    (
        "telephony",
        "telephony-hook-request-spec.json",
        "telephony-hook-response-success.json",
    ),
];

/// The user's own service for the forward handler: answers what the test sets, after a delay.
#[derive(Clone)]
pub struct Target {
    pub url: String,
    pub calls: Arc<AtomicUsize>,
    /// Answers given in turn (the last one repeats).
    pub answers: Arc<Mutex<Vec<Value>>>,
    pub delay: Arc<Mutex<Duration>>,
    pub received: Arc<Mutex<Vec<Value>>>,
}

pub async fn target() -> Target {
    let t = Target {
        url: String::new(),
        calls: Arc::new(AtomicUsize::new(0)),
        answers: Arc::new(Mutex::new(vec![json!({})])),
        delay: Arc::new(Mutex::new(Duration::ZERO)),
        received: Arc::new(Mutex::new(Vec::new())),
    };
    let t2 = t.clone();
    let app = axum::Router::new().route(
        "/answer",
        axum::routing::post(move |body: String| {
            let t = t2.clone();
            async move {
                let n = t.calls.fetch_add(1, Ordering::SeqCst);
                if let Ok(v) = serde_json::from_str(&body) {
                    t.received.lock().expect("lock").push(v);
                }
                let delay = *t.delay.lock().expect("lock");
                tokio::time::sleep(delay).await;
                let answers = t.answers.lock().expect("lock").clone();
                let answer = answers
                    .get(n)
                    .or(answers.last())
                    .cloned()
                    .unwrap_or(json!({}));
                (
                    StatusCode::OK,
                    [("content-type", "application/json")],
                    answer.to_string(),
                )
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    Target {
        url: format!("http://{addr}/answer"),
        ..t
    }
}

/// An inline hook of `hook_type` at `/hooks/okta/<name>` with Basic auth, plus `extra` TOML keys.
pub fn inline_hook(name: &str, hook_type: &str, handler: &str, extra: &str) -> String {
    format!(
        r#"
[[inline_hooks]]
name = "{name}"
path = "/hooks/okta/{name}"
type = "{hook_type}"
auth = {{ type = "basic", users = [{{ username = "{USER}", password = "{PASSWORD}" }}] }}
handler = {handler}
{extra}
"#
    )
}

pub async fn call(s: &TestServer, name: &str, body: &str) -> reqwest::Response {
    s.client
        .post(s.url(&format!("/hooks/okta/{name}")))
        .header("Authorization", basic())
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("request")
}

fn forward(url: &str) -> String {
    format!(r#"{{ kind = "forward", url = "{url}" }}"#)
}

#[tokio::test]
async fn forward_passes_every_real_answer_through_checked() {
    let t = target().await;
    let mut toml = String::new();
    for ty in [
        "token",
        "registration",
        "import",
        "password_import",
        "saml",
        "telephony",
    ] {
        toml.push_str(&inline_hook(ty, ty, &forward(&t.url), ""));
    }
    let s = start(Options {
        toml: Some(toml),
        ..Options::default()
    })
    .await;
    for (ty, req, resp) in PAIRS {
        let answer: Value = serde_json::from_str(&fixture(resp)).expect("json");
        *t.answers.lock().expect("lock") = vec![answer.clone()];
        t.calls.store(0, Ordering::SeqCst);
        // Okta's docs and spec samples share eventIds: give each call its own, or the
        // second would (rightly) get the answer given to the first.
        let mut request: Value = serde_json::from_str(&fixture(req)).expect("json");
        request["eventId"] = json!(uuid::Uuid::new_v4().to_string());
        let r = call(&s, ty, &request.to_string()).await;
        assert_eq!(r.status(), 200, "{req}");
        assert_eq!(r.headers()["content-type"], "application/json");
        assert!(r.headers().get("x-hookwarden-fallback").is_none(), "{req}");
        let got: Value = r.json().await.expect("json");
        assert_eq!(got, answer, "{req}: Okta's answer passes through unchanged");
        crate::contract::validate_response(ty, &got).unwrap_or_else(|e| panic!("{req}: {e}"));
        // The user's service got Okta's request as it was sent.
        assert_eq!(t.received.lock().expect("lock").last(), Some(&request));
    }
    let m = s.metrics().await;
    assert_eq!(
        metric(&m, "hookwarden_inline_calls_total", ""),
        PAIRS.len() as f64
    );
    assert!(
        metric(
            &m,
            "hookwarden_inline_handler_seconds_count",
            "hook=\"token\""
        ) >= 1.0
    );
    s.stop().await;
}

#[tokio::test]
async fn a_slow_handler_gets_the_fallback_inside_the_budget() {
    let t = target().await;
    *t.delay.lock().expect("lock") = Duration::from_secs(5);
    let toml = format!(
        "{}{}{}",
        inline_hook("token", "token", &forward(&t.url), "budget = \"300ms\""),
        inline_hook("registration", "registration", &forward(&t.url), "budget = \"300ms\"\nfallback_message = \"Registration is paused, try again in a minute\""),
        inline_hook("import", "import", &forward(&t.url), "budget = \"300ms\"\nfallback = \"closed\""),
    );
    let s = start(Options {
        toml: Some(toml),
        ..Options::default()
    })
    .await;
    // Token: fails open (the token is issued unchanged).
    let started = Instant::now();
    let r = call(&s, "token", &fixture("token-hook-request.json")).await;
    let took = started.elapsed();
    assert_eq!(r.status(), 200);
    // Marked as the fallback, with why (`hookwarden simulate` warns on it).
    assert_eq!(r.headers()["x-hookwarden-fallback"], "deadline");
    assert_eq!(r.json::<Value>().await.expect("json"), json!({}));
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    // Registration: fails closed by default (Okta's own behaviour), with the configured message.
    let r = call(
        &s,
        "registration",
        &fixture("registration-hook-request-ssr.json"),
    )
    .await;
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["commands"][0]["value"]["registration"], "DENY");
    assert_eq!(
        v["error"]["errorSummary"],
        "Registration is paused, try again in a minute"
    );
    crate::contract::validate_response("registration", &v).expect("valid registration answer");
    // Import configured closed: an error object.
    let r = call(&s, "import", &fixture("import-hook-request.json")).await;
    let v: Value = r.json().await.expect("json");
    assert!(v["error"]["errorSummary"].is_string());
    let m = s.metrics().await;
    assert_eq!(
        metric(
            &m,
            "hookwarden_inline_calls_total",
            "outcome=\"fallback_deadline\""
        ),
        3.0
    );
    s.stop().await;
}

#[tokio::test]
async fn an_invalid_answer_is_replaced_by_the_fallback() {
    let t = target().await;
    let toml = format!(
        "{}{}",
        inline_hook("token", "token", &forward(&t.url), ""),
        inline_hook("telephony", "telephony", &forward(&t.url), "")
    );
    let s = start(Options {
        toml: Some(toml),
        ..Options::default()
    })
    .await;
    let bad = [
        // A command type the token hook does not have.
        json!({"commands": [{"type": "com.okta.user.profile.update", "value": {"a": 1}}]}),
        // A reserved claim.
        json!({"commands": [{"type": "com.okta.identity.patch", "value": [{"op": "replace", "path": "/claims/iss", "value": "x"}]}]}),
        // A lifetime out of Okta's range.
        json!({"commands": [{"type": "com.okta.access.patch", "value": [{"op": "replace", "path": "/token/lifetime/expiration", "value": 10}]}]}),
        // Not an answer at all.
        json!(["nope"]),
    ];
    for b in &bad {
        *t.answers.lock().expect("lock") = vec![b.clone()];
        let r = call(&s, "token", &fixture("token-hook-request.json")).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-hookwarden-fallback"], "invalid", "{b}");
        assert_eq!(r.json::<Value>().await.expect("json"), json!({}), "{b}");
    }
    *t.answers.lock().expect("lock") = vec![
        json!({"commands": [{"type": "com.okta.telephony.action", "value": {"status": "SUCCESSFUL"}}]}),
    ];
    let r = call(&s, "telephony", &fixture("telephony-hook-request.json")).await;
    assert_eq!(
        r.json::<Value>().await.expect("json"),
        json!({}),
        "telephony value must be an array"
    );
    let m = s.metrics().await;
    assert_eq!(
        metric(
            &m,
            "hookwarden_inline_calls_total",
            "outcome=\"fallback_invalid\""
        ) + metric(
            &m,
            "hookwarden_inline_calls_total",
            "outcome=\"fallback_handler_error\""
        ),
        5.0
    );
    s.stop().await;
}

#[tokio::test]
async fn okta_retries_get_the_same_answer() {
    let t = target().await;
    *t.answers.lock().expect("lock") = vec![
        json!({"commands": [{"type": "com.okta.action.update", "value": {"registration": "ALLOW"}}]}),
        json!({"commands": [{"type": "com.okta.action.update", "value": {"registration": "DENY"}}]}),
    ];
    let toml = format!(
        "{}{}",
        inline_hook("registration", "registration", &forward(&t.url), ""),
        inline_hook("token", "token", &forward(&t.url), "")
    );
    let s = start(Options {
        toml: Some(toml),
        ..Options::default()
    })
    .await;
    let req = fixture("registration-hook-request-ssr.json");
    let first: Value = call(&s, "registration", &req)
        .await
        .json()
        .await
        .expect("json");
    let again: Value = call(&s, "registration", &req)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        first, again,
        "the retry of one eventId gets the first answer"
    );
    assert_eq!(first["commands"][0]["value"]["registration"], "ALLOW");
    assert_eq!(t.calls.load(Ordering::SeqCst), 1, "the handler ran once");
    // Another eventId is a new question.
    let mut other: Value = serde_json::from_str(&req).expect("json");
    other["eventId"] = json!("another-event-id");
    let third: Value = call(&s, "registration", &other.to_string())
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(third["commands"][0]["value"]["registration"], "DENY");
    // Token hooks are never retried by Okta: no cache, each call runs.
    t.calls.store(0, Ordering::SeqCst);
    *t.answers.lock().expect("lock") = vec![json!({})];
    call(&s, "token", &fixture("token-hook-request.json")).await;
    call(&s, "token", &fixture("token-hook-request.json")).await;
    assert_eq!(t.calls.load(Ordering::SeqCst), 2);
    let m = s.metrics().await;
    assert_eq!(
        metric(&m, "hookwarden_inline_calls_total", "outcome=\"repeated\""),
        1.0
    );
    s.stop().await;
}

#[tokio::test]
async fn inline_bad_input() {
    let t = target().await;
    let s = start(Options {
        toml: Some(inline_hook("token", "token", &forward(&t.url), "")),
        ..Options::default()
    })
    .await;
    let r = s
        .client
        .get(s.url("/hooks/okta/token"))
        .header("Authorization", basic())
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 405);
    let r = s
        .client
        .post(s.url("/hooks/okta/token"))
        .header("Content-Type", "application/json")
        .body(fixture("token-hook-request.json"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 401);
    let r = s
        .client
        .post(s.url("/hooks/okta/token"))
        .header("Authorization", basic())
        .body(fixture("token-hook-request.json"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 415);
    let r = call(&s, "token", "{not json").await;
    assert_eq!(r.status(), 400);
    let r = call(&s, "token", &fixture("registration-hook-request-ssr.json")).await;
    assert_eq!(r.status(), 400);
    let msg: Value = r.json().await.expect("json");
    assert!(
        msg["errorSummary"]
            .as_str()
            .expect("s")
            .contains("com.okta.user.pre-registration"),
        "{msg}"
    );
    let r = call(
        &s,
        "token",
        r#"{"eventType":"com.okta.oauth2.tokens.transform"}"#,
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        t.calls.load(Ordering::SeqCst),
        0,
        "nothing reached the handler"
    );
    s.stop().await;
}
