//! A refusal stays a refusal (issue 19), through the real server over real TLS.
//!
//! - A property over all six types and the script and forward handlers: for any refusal a
//!   handler writes, with any additions (invalid commands beside it, contradicting
//!   decisions, long texts, an `error` of the wrong shape, unknown keys, an answer over
//!   Okta's size limit, a service slow to answer but inside the budget), the answer that
//!   leaves is a refusal of that type, valid for hookwarden's checker and for Okta's schema.
//!   The refusal predicate is written here from the contract (§4), not borrowed from the
//!   code under test.
//! - The rules handler, where rules can refuse (registration, password import, telephony),
//!   with over-long messages.
//! - Okta's table of reserved token claims, every row in both tokens, through rules,
//!   script, forward and the checker, which must all agree.

use crate::inline::{call, inline_hook};
use crate::util::*;
use hookwarden::config::Config;
use hookwarden::okta::inline::check::check;
use hookwarden::okta::inline::token::{self, TokenKind};
use hookwarden::okta::inline::{HookType, InlineResponse};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use serde_json::{json, Value};
use std::time::Duration;

const TYPES: [(&str, &str); 6] = [
    ("token", "token-hook-request.json"),
    ("registration", "registration-hook-request-ssr.json"),
    ("import", "import-hook-request.json"),
    ("password_import", "password-import-request.json"),
    ("saml", "saml-hook-request.json"),
    ("telephony", "telephony-hook-request.json"),
];

/// The longest error text that may leave (hookwarden's documented cut).
const MAX_TEXT: usize = 1024;

/// The budget of the hooks under test; a slow service answers inside it.
const BUDGET_MS: u64 = 1_000;

/// The user's own service for forward hooks: answers `data.testAnswer` of the request it
/// receives, after `data.testDelayMs`.
async fn echo_target() -> String {
    let app = axum::Router::new().route(
        "/echo",
        axum::routing::post(|body: String| async move {
            let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let delay = request["data"]["testDelayMs"].as_u64().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(delay)).await;
            (
                [("content-type", "application/json")],
                request["data"]["testAnswer"].to_string(),
            )
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    format!("http://{addr}/echo")
}

/// A script that answers whatever the request carries in `data.testAnswer`.
fn echo_script(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("echo.rhai");
    std::fs::write(&path, "fn handle(request) { request.data.testAnswer }\n").expect("script");
    path
}

/// `<type>-script` and `<type>-forward` hooks of every type, budget 1 s, fallback open
/// (so that a refusal lost to the fallback would show as `{}`).
fn hooks(script: &std::path::Path, echo: &str) -> String {
    let mut toml = String::new();
    for (ty, _) in TYPES {
        let extra = format!("budget = \"{BUDGET_MS}ms\"\nfallback = \"open\"");
        toml.push_str(&inline_hook(
            &format!("{ty}-script"),
            ty,
            &format!(r#"{{ kind = "script", file = "{}" }}"#, script.display()),
            &extra,
        ));
        toml.push_str(&inline_hook(
            &format!("{ty}-forward"),
            ty,
            &format!(r#"{{ kind = "forward", url = "{echo}" }}"#),
            &extra,
        ));
    }
    toml
}

/// Okta's real request of `ty`, with a fresh eventId and what the echo handlers answer.
fn request(ty: &str, answer: &Value, delay_ms: u64) -> Value {
    let sample = TYPES.iter().find(|(t, _)| *t == ty).expect("type").1;
    let mut r: Value = serde_json::from_str(&fixture(sample)).expect("json");
    r["eventId"] = json!(uuid::Uuid::new_v4().to_string());
    r["data"]["testAnswer"] = answer.clone();
    r["data"]["testDelayMs"] = json!(delay_ms);
    r
}

fn hook_type(ty: &str) -> HookType {
    HookType::ALL
        .into_iter()
        .find(|t| t.name() == ty)
        .expect("type")
}

fn commands_of<'a>(answer: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    answer["commands"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(move |c| c["type"] == kind)
        .map(|c| &c["value"])
}

/// The contract's refusal of each type (§4), judged on the answer that left.
fn assert_refusal(ty: &str, answer: &Value) -> Result<(), String> {
    let error = answer.get("error").filter(|e| !e.is_null());
    if let Some(e) = error {
        if !e.is_object() {
            return Err("error is not an object".into());
        }
        let mut texts = vec![&e["errorSummary"]];
        for cause in e["errorCauses"].as_array().into_iter().flatten() {
            texts.extend(cause.as_object().into_iter().flat_map(|c| c.values()));
        }
        if let Some(t) = texts
            .iter()
            .filter_map(|t| t.as_str())
            .find(|t| t.len() > MAX_TEXT)
        {
            return Err(format!("an error text of {} bytes left", t.len()));
        }
    }
    let decisions = |key: &str| -> Vec<String> {
        commands_of(answer, "com.okta.action.update")
            .filter_map(|v| v[key].as_str().map(str::to_owned))
            .collect()
    };
    let refused = match ty {
        "token" | "import" | "saml" => error.is_some(),
        "registration" => {
            let d = decisions("registration");
            (error.is_some() || d.iter().any(|d| d == "DENY")) && !d.iter().any(|d| d == "ALLOW")
        }
        "password_import" => decisions("credential") == ["UNVERIFIED"] && error.is_none(),
        "telephony" => {
            let statuses: Vec<&str> = commands_of(answer, "com.okta.telephony.action")
                .flat_map(|v| v.as_array().into_iter().flatten())
                .filter_map(|i| i["status"].as_str())
                .collect();
            (error.is_some() || statuses.contains(&"FAILED"))
                && statuses.iter().all(|s| *s == "FAILED")
        }
        other => return Err(format!("unknown type {other}")),
    };
    if refused {
        Ok(())
    } else {
        Err("not a refusal of its type".into())
    }
}

/// One generated handler answer: a refusal of the type and what is added to it.
#[derive(Debug, Clone)]
struct Case {
    ty: usize,
    forward: bool,
    /// Which of the type's refusal signals the handler uses (see `answer`).
    signal: usize,
    summary_len: Option<usize>,
    /// 0: an object; 1: a string; 2: an array of one object.
    error_shape: usize,
    causes: usize,
    cause_len: usize,
    /// A command of a type this hook does not take.
    bogus_command: bool,
    /// A command of an allowed type with a value Okta rejects.
    bad_command: bool,
    /// A second decision that says yes (ALLOW, VERIFIED, SUCCESSFUL), or for the other
    /// types a patch of a reserved claim or a bad path.
    contradiction: bool,
    unknown_top_key: bool,
    unknown_value_key: bool,
    huge_debug: bool,
    slow: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (
        (0usize..6, any::<bool>(), 0usize..4),
        (
            prop_oneof![
                Just(None),
                (1usize..60).prop_map(Some),
                (1_000usize..1_200).prop_map(Some),
                (2_000usize..5_000).prop_map(Some),
            ],
            prop_oneof![6 => Just(0usize), 1 => Just(1usize), 1 => Just(2usize)],
            0usize..4,
            prop_oneof![Just(10usize), Just(2_000usize)],
        ),
        prop::collection::vec(any::<bool>(), 6),
        prop_oneof![9 => Just(false), 1 => Just(true)],
        prop_oneof![19 => Just(false), 1 => Just(true)],
    )
        .prop_map(
            |(
                (ty, forward, signal),
                (summary_len, error_shape, causes, cause_len),
                f,
                huge,
                slow,
            )| {
                Case {
                    ty,
                    forward,
                    signal,
                    summary_len,
                    error_shape,
                    causes,
                    cause_len,
                    bogus_command: f[0],
                    bad_command: f[1],
                    contradiction: f[2],
                    unknown_top_key: f[3],
                    unknown_value_key: f[4],
                    huge_debug: huge && forward,
                    slow: slow && forward,
                }
            },
        )
}

impl Case {
    fn ty(&self) -> &'static str {
        TYPES[self.ty].0
    }

    fn error(&self) -> Value {
        let mut e = serde_json::Map::new();
        if let Some(n) = self.summary_len {
            e.insert(
                "errorSummary".into(),
                json!(format!("No: {}", "é".repeat(n / 2))),
            );
        }
        if self.causes > 0 {
            let cause = json!({
                "errorSummary": "x".repeat(self.cause_len),
                "reason": "POLICY",
                "locationType": "body",
                "location": "data.userProfile.email",
                "domain": "end-user",
            });
            e.insert("errorCauses".into(), json!(vec![cause; self.causes]));
        }
        match self.error_shape {
            1 => json!(format!(
                "Denied {}",
                "z".repeat(self.summary_len.unwrap_or(3))
            )),
            2 => json!([Value::Object(e)]),
            _ => Value::Object(e),
        }
    }

    /// The handler's answer.
    fn answer(&self) -> Value {
        let extra = |mut v: Value| {
            if self.unknown_value_key {
                v["note"] = json!("extra");
            }
            v
        };
        let action = |key: &str, decision: &str| json!({"type": "com.okta.action.update", "value": extra(json!({key: decision}))});
        let telephony = |status: &str| {
            json!({"type": "com.okta.telephony.action",
                   "value": [extra(json!({"status": status, "provider": "ACME"}))]})
        };
        let mut commands = Vec::new();
        let mut with_error = true;
        match (self.ty(), self.signal % 3) {
            ("registration", 0) => {}
            ("registration", 1) => {
                commands.push(action("registration", "DENY"));
                with_error = false;
            }
            ("registration", _) if self.signal == 3 => commands.push(action("action", "DENY")),
            ("registration", _) => commands.push(action("registration", "DENY")),
            ("password_import", 0) => {
                commands.push(action("credential", "UNVERIFIED"));
                with_error = false;
            }
            ("password_import", 1) => {}
            ("password_import", _) => commands.push(action("credential", "UNVERIFIED")),
            ("telephony", 0) => {
                commands.push(telephony("FAILED"));
                with_error = false;
            }
            ("telephony", 1) => {}
            ("telephony", _) => commands.push(telephony("FAILED")),
            _ => {}
        }
        if self.contradiction {
            match self.ty() {
                "registration" => commands.push(action("registration", "ALLOW")),
                "password_import" => commands.push(action("credential", "VERIFIED")),
                "telephony" => commands.push(telephony("SUCCESSFUL")),
                "token" => commands.push(json!({"type": "com.okta.access.patch", "value": [
                    {"op": "add", "path": "/claims/groups", "value": ["admins"]}]})),
                "saml" => commands.push(json!({"type": "com.okta.assertion.patch", "value": [
                    {"op": "remove", "path": "/claims/role"}]})),
                _ => commands.push(json!({"type": "com.okta.action.update",
                                          "value": {"result": "LINK_USER"}})),
            }
        }
        if self.bogus_command {
            commands.push(json!({"type": "com.okta.bogus", "value": {}}));
        }
        if self.bad_command {
            let allowed = hook_type(self.ty()).allowed_commands()[0];
            commands.push(json!({"type": allowed, "value": "not what Okta takes"}));
        }
        let mut answer = json!({});
        if !commands.is_empty() {
            answer["commands"] = json!(commands);
        }
        if with_error {
            answer["error"] = self.error();
        }
        if self.unknown_top_key {
            answer["traceId"] = json!("t-1");
        }
        if self.huge_debug {
            answer["debugContext"] = json!({"dump": "d".repeat(300 * 1024)});
        }
        answer
    }
}

#[tokio::test]
async fn a_refusal_leaves_as_a_refusal_whatever_is_added_to_it() {
    let echo = echo_target().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let script = echo_script(dir.path());
    let s = start(Options {
        toml: Some(hooks(&script, &echo)),
        ..Options::default()
    })
    .await;
    let mut runner = TestRunner::new(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let strategy = case();
    let mut kinds = std::collections::BTreeSet::new();
    for _ in 0..240 {
        let case = strategy.new_tree(&mut runner).expect("case").current();
        let ty = case.ty();
        let answer = case.answer();
        let delay = if case.slow { BUDGET_MS * 7 / 10 } else { 0 };
        let name = format!("{ty}-{}", if case.forward { "forward" } else { "script" });
        let body = request(ty, &answer, delay);
        let started = std::time::Instant::now();
        let r = call(&s, &name, &body.to_string()).await;
        assert_eq!(r.status(), 200, "{case:?}");
        assert!(started.elapsed() < Duration::from_millis(BUDGET_MS + 500));
        let got: Value = r.json().await.expect("json");
        assert_refusal(ty, &got).unwrap_or_else(|e| panic!("{e}\ncase: {case:?}\nleft: {got}"));
        let parsed: InlineResponse = serde_json::from_value(got.clone()).expect("an answer");
        check(hook_type(ty), &parsed, &body)
            .unwrap_or_else(|e| panic!("{e}\ncase: {case:?}\nleft: {got}"));
        crate::contract::validate_response(ty, &got)
            .unwrap_or_else(|e| panic!("{e}\ncase: {case:?}\nleft: {got}"));
        kinds.insert(name);
    }
    assert_eq!(kinds.len(), 12, "every type through both handlers");
    let m = s.metrics().await;
    assert!(
        metric(
            &m,
            "hookwarden_inline_calls_total",
            "outcome=\"refusal_repaired\""
        ) > 0.0
    );
    for lost in ["empty", "commands", "fallback_invalid"] {
        assert_eq!(
            metric(
                &m,
                "hookwarden_inline_calls_total",
                &format!("outcome=\"{lost}\"")
            ),
            0.0,
            "no refusal may leave as {lost}"
        );
    }
}

#[tokio::test]
async fn the_report_s_token_refusal_is_sent_cut_not_as_an_empty_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("deny.rhai");
    let summary = format!("Access denied: {}", "x".repeat(1_100));
    std::fs::write(
        &script,
        format!("fn handle(request) {{ #{{ error: #{{ errorSummary: \"{summary}\" }} }} }}\n"),
    )
    .expect("script");
    let handler = format!(r#"{{ kind = "script", file = "{}" }}"#, script.display());
    let s = start(Options {
        toml: Some(inline_hook("token", "token", &handler, "")),
        ..Options::default()
    })
    .await;
    let r = call(&s, "token", &fixture("token-hook-request.json")).await;
    let got: Value = r.json().await.expect("json");
    let sent = got["error"]["errorSummary"].as_str().expect("summary");
    assert!(
        sent.starts_with("Access denied: xxx") && sent.ends_with('…'),
        "{sent}"
    );
    assert!(sent.len() <= MAX_TEXT, "{}", sent.len());
    assert_eq!(got.as_object().map(|o| o.len()), Some(1), "{got}");
    let m = s.metrics().await;
    assert_eq!(
        metric(
            &m,
            "hookwarden_inline_calls_total",
            "outcome=\"refusal_repaired\""
        ),
        1.0
    );
}

#[tokio::test]
async fn rules_refusals_with_long_messages_stay_refusals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let passwords = dir.path().join("passwords.txt");
    // Another user than the sample's (bcrypt of "Okta", cost 4): the sample is UNVERIFIED.
    std::fs::write(
        &passwords,
        "someone@example.com:$2b$04$3HxM9EQ6jsLPiDZEGFw0DuIvZ14Hqn8ozE4s1L/8JRm3eGnpjIqei\n",
    )
    .expect("file");
    let long = "m".repeat(3_000);
    let toml = [
        inline_hook(
            "registration",
            "registration",
            &format!(
                r#"{{ kind = "rules", registration = {{ error_summary = "{long}", email = {{ allow_domains = ["example.org"], message = "{long}" }} }} }}"#
            ),
            "fallback = \"open\"",
        ),
        inline_hook(
            "telephony",
            "telephony",
            &format!(
                r#"{{ kind = "rules", telephony = {{ allow_prefixes = ["+44"], message = "{long}" }} }}"#
            ),
            "",
        ),
        inline_hook(
            "password_import",
            "password_import",
            &format!(
                r#"{{ kind = "rules", password_import = {{ file = "{}" }} }}"#,
                passwords.display()
            ),
            "",
        ),
    ]
    .concat();
    let s = start(Options {
        toml: Some(toml),
        ..Options::default()
    })
    .await;
    for (ty, sample) in [
        ("registration", "registration-hook-request-ssr.json"),
        ("telephony", "telephony-hook-request.json"),
        ("password_import", "password-import-request.json"),
    ] {
        let r = call(&s, ty, &fixture(sample)).await;
        let got: Value = r.json().await.expect("json");
        assert_refusal(ty, &got).unwrap_or_else(|e| panic!("{ty}: {e}: {got}"));
        crate::contract::validate_response(ty, &got).unwrap_or_else(|e| panic!("{ty}: {e}"));
    }
}

/// Every claim of Okta's table (and `nbf`), in both tokens: the rules handler refuses
/// the rule at start exactly when the checker refuses the patch, and a script's or a
/// service's patch of it leaves exactly when the checker lets it.
#[tokio::test]
async fn reserved_claims_are_the_same_for_every_handler_and_the_checker() {
    let mut claims: Vec<&str> = token::RESERVED_CLAIMS.iter().map(|(n, _)| *n).collect();
    claims.extend(token::HOOKWARDEN_RESERVED);
    claims.extend([
        "preferred_username",
        "tier",
        "http://example.com/claims/role",
    ]);
    let request: Value = serde_json::from_str(&fixture("token-hook-request.json")).expect("json");

    // Rules: compiled at start.
    for claim in &claims {
        for (kind, word) in [(TokenKind::Id, "id"), (TokenKind::Access, "access")] {
            let config = format!(
                "[[inline_hooks]]\nname = \"t\"\npath = \"/t\"\ntype = \"token\"\nauth = {{ type = \"basic\", users = [{{ username = \"u\", password = \"p\" }}] }}\n[inline_hooks.handler]\nkind = \"rules\"\n[[inline_hooks.handler.token.claims]]\ntoken = \"{word}\"\nname = \"{claim}\"\nvalue = \"x\"\n"
            );
            let config = Config::from_toml_str(&config).expect("config");
            let rules = hookwarden::inline_hooks::build_handler(&config.inline_hooks[0]);
            let patch = InlineResponse::from(match kind {
                TokenKind::Id => token::add_id_token_claims([(*claim, json!("x"))]),
                TokenKind::Access => token::add_access_token_claims([(*claim, json!("x"))]),
            });
            let checker = check(HookType::Token, &patch, &request);
            assert_eq!(
                rules.is_err(),
                checker.is_err(),
                "{claim} in {}: rules {:?}, checker {:?}",
                kind.described(),
                rules.err(),
                checker.err()
            );
            assert_eq!(checker.is_err(), token::is_reserved(kind, claim), "{claim}");
        }
    }

    // Script and forward: the patch leaves, or the fallback ({}) does.
    let echo = echo_target().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let script = echo_script(dir.path());
    let toml = [
        inline_hook(
            "token-script",
            "token",
            &format!(r#"{{ kind = "script", file = "{}" }}"#, script.display()),
            "",
        ),
        inline_hook(
            "token-forward",
            "token",
            &format!(r#"{{ kind = "forward", url = "{echo}" }}"#),
            "",
        ),
    ]
    .concat();
    let s = start(Options {
        toml: Some(toml),
        ..Options::default()
    })
    .await;
    for claim in &claims {
        for kind in [TokenKind::Id, TokenKind::Access] {
            let command = match kind {
                TokenKind::Id => token::add_id_token_claims([(*claim, json!("x"))]),
                TokenKind::Access => token::add_access_token_claims([(*claim, json!("x"))]),
            };
            let answer = serde_json::to_value(InlineResponse::from(command)).expect("json");
            for hook in ["token-script", "token-forward"] {
                let body = request_for_token(&answer);
                let got: Value = call(&s, hook, &body.to_string())
                    .await
                    .json()
                    .await
                    .expect("json");
                let expected = if token::is_reserved(kind, claim) {
                    json!({})
                } else {
                    answer.clone()
                };
                assert_eq!(got, expected, "{hook}: {claim} in {}", kind.described());
            }
        }
    }
}

fn request_for_token(answer: &Value) -> Value {
    request("token", answer, 0)
}
