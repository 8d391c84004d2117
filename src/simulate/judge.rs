//! Judging an answer the way Okta would take it, and saying in words what Okta would do.
//!
//! The contract check of inline answers is hookwarden's own
//! ([`crate::okta::inline::check::check`], after the strict reading of
//! [`crate::okta::inline::answer::parse_strict`]): the simulator must not grow a second
//! opinion of what Okta accepts. What is added here is the consequence of each answer,
//! from the contract's per-type sections (§2.2, §2.5, §3.1, §4), because "token hook
//! failed" tells an admin less than "token issued unmodified".

use super::transport::{Answer, Attempt, OKTA_TIMEOUT};
use crate::inline_hooks::FALLBACK_HEADER;
use crate::okta::inline::answer::parse_strict;
use crate::okta::inline::check::check;
use crate::okta::inline::{
    import, password, registration, saml, telephony, token, HookType, InlineResponse,
    MAX_RESPONSE_BYTES,
};
use serde::Serialize;
use serde_json::Value;

/// What was sent, with what is needed to judge the answer.
#[derive(Debug, Clone)]
pub enum Kind {
    /// The one-time verification GET with its challenge.
    Verify { challenge: String },
    /// An event delivery of `events` events.
    Delivery { events: usize },
    /// An inline call with the request sent.
    Inline { hook_type: HookType, request: Value },
}

impl Kind {
    /// Whether Okta retries this call once after a timeout, an error or a 5xx.
    pub fn retried_by_okta(&self) -> bool {
        match self {
            Kind::Verify { .. } | Kind::Delivery { .. } => true,
            Kind::Inline { hook_type, .. } => hook_type.retried_by_okta(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The first answer was what Okta needs.
    Passed,
    /// The first attempt failed (timeout, 5xx) and Okta's one retry got a good answer:
    /// Okta's outcome is the good one, but the receiver made Okta wait and call twice.
    PassedAfterRetry,
    /// Okta would take the answer, but it is the receiver's fallback (a hookwarden marks
    /// it): the hook's handler gave no answer of its own, so the hook is not working.
    Warned,
    Failed,
}

impl Outcome {
    /// Passed, on the first attempt or after Okta's retry (neither warned nor failed).
    pub fn passed(self) -> bool {
        matches!(self, Outcome::Passed | Outcome::PassedAfterRetry)
    }
}

#[derive(Debug, Clone)]
pub struct Verdict {
    pub outcome: Outcome,
    /// What Okta would do with the answer, in words.
    pub okta: String,
    /// What is wrong with the answer, when something is.
    pub problem: Option<String>,
}

/// Judges a call from its attempts (one, or two when Okta would have retried).
pub fn judge(kind: &Kind, attempts: &[Attempt]) -> Verdict {
    let Some(last) = attempts.last() else {
        return Verdict {
            outcome: Outcome::Failed,
            okta: "nothing was sent".to_owned(),
            problem: Some("no attempt was made".to_owned()),
        };
    };
    let retried = attempts.len() > 1;
    let judged = judge_answer(kind, &last.answer);
    if let (Ok(okta), Some(reason)) = (&judged, last.answer.fallback()) {
        let retry = if retried { " (on Okta's retry)" } else { "" };
        return Verdict {
            outcome: Outcome::Warned,
            okta: format!("{okta}{retry}"),
            problem: Some(format!(
                "the receiver answered with its fallback ({FALLBACK_HEADER}: {}): the hook's handler gave no answer of its own (the receiver's log says why); Okta takes this answer, but the hook is not working",
                shorten(reason, 40)
            )),
        };
    }
    match judged {
        Ok(okta) if retried => Verdict {
            outcome: Outcome::PassedAfterRetry,
            okta: format!("{okta} (on Okta's retry)"),
            problem: Some(format!(
                "first attempt: {}; Okta retried once",
                describe(&attempts[0].answer)
            )),
        },
        Ok(okta) => Verdict {
            outcome: Outcome::Passed,
            okta,
            problem: None,
        },
        Err(problem) => {
            let first = describe(&attempts[0].answer);
            let retry_note = match (retried, kind.retried_by_okta(), &last.answer) {
                (true, _, _) if first == describe(&last.answer) => {
                    " (both attempts: Okta retried once)".to_owned()
                }
                (true, _, _) => format!(" (on Okta's retry; the first attempt: {first})"),
                (false, false, a) if a.retryable() => {
                    "; Okta never retries this hook type".to_owned()
                }
                (false, _, Answer::Http { status, .. })
                    if status.is_client_error() || status.is_redirection() =>
                {
                    "; Okta does not retry a 3xx or 4xx".to_owned()
                }
                _ => String::new(),
            };
            let hint = hint(&last.answer);
            Verdict {
                outcome: Outcome::Failed,
                okta: consequence_of_failure(kind),
                problem: Some(format!("{problem}{retry_note}{hint}")),
            }
        }
    }
}

/// What to look at for the failures with a usual cause.
fn hint(answer: &Answer) -> &'static str {
    match answer {
        Answer::Http { status, .. } if matches!(status.as_u16(), 401 | 403) => {
            "; the receiver refused the credentials: check --basic, --bearer, --auth-env or --header"
        }
        Answer::Failed(e) if e.contains("certificate") => {
            "; Okta needs a publicly trusted certificate (to test with a development one: --cacert PEM_FILE or --insecure)"
        }
        _ => "",
    }
}

/// The answer in a few words: `HTTP 503`, `no answer within 3 s`.
pub fn describe(answer: &Answer) -> String {
    match answer {
        Answer::Http {
            status, location, ..
        } if status.is_redirection() => format!(
            "HTTP {} redirect{} (Okta does not follow redirects)",
            status.as_u16(),
            location
                .as_deref()
                .map(|l| format!(" to {}", shorten(l, 80)))
                .unwrap_or_default()
        ),
        Answer::Http { status, .. } => format!("HTTP {}", status.as_u16()),
        Answer::Timeout => format!("no answer within {} s", OKTA_TIMEOUT.as_secs()),
        Answer::Failed(e) => format!("no HTTP answer: {e}"),
    }
}

/// What Okta does when this call fails (no usable answer after its retries).
fn consequence_of_failure(kind: &Kind) -> String {
    match kind {
        Kind::Verify { .. } => {
            "verification fails: the admin's Verify gets HTTP 400 and Okta sends this hook no events"
                .to_owned()
        }
        Kind::Delivery { events } => format!(
            "delivery failed: Okta logs event_hook.delivery and does not send {} again",
            if *events == 1 { "this event".to_owned() } else { format!("these {events} events") }
        ),
        Kind::Inline { hook_type, request } => match hook_type {
            HookType::Token => "token issued unmodified (Okta skips the hook)".to_owned(),
            HookType::Registration if is_progressive_profile(request) => {
                "profile update denied (the flow stops)".to_owned()
            }
            HookType::Registration => "registration denied (the flow stops)".to_owned(),
            HookType::Import => format!(
                "import continues with Okta's own decision: {}",
                import_default(request)
            ),
            HookType::PasswordImport => {
                "sign-in fails, password not imported (the hook is called again at the next sign-in)"
                    .to_owned()
            }
            HookType::Saml => "original assertion used (Okta skips the hook)".to_owned(),
            HookType::Telephony => {
                "OTP sent through Okta's own providers (rate-limited; the user may get two messages)"
                    .to_owned()
            }
        },
    }
}

/// Ok(what Okta does) when the answer is one Okta takes, Err(what is wrong) otherwise.
fn judge_answer(kind: &Kind, answer: &Answer) -> Result<String, String> {
    let Answer::Http {
        status,
        body,
        truncated,
        ..
    } = answer
    else {
        return Err(describe(answer));
    };
    let code = status.as_u16();
    match kind {
        Kind::Verify { challenge } => {
            if code != 200 {
                return Err(format!("{}; verification needs 200", describe(answer)));
            }
            let echoed = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
                v.get("verification")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
            match echoed {
                Some(v) if v == *challenge => Ok("event hook verified".to_owned()),
                Some(_) => {
                    Err("HTTP 200 but \"verification\" is not the challenge sent".to_owned())
                }
                None => Err(format!(
                    "HTTP 200 but the body is not {{\"verification\": \"<challenge>\"}}{}",
                    body_prefix(body)
                )),
            }
        }
        Kind::Delivery { events } => match code {
            200 | 204 => Ok(format!(
                "event delivery accepted ({})",
                events_word(*events)
            )),
            _ if status.is_success() => {
                Err(format!("{}; Okta expects 200 or 204", describe(answer)))
            }
            _ => Err(describe(answer)),
        },
        Kind::Inline { hook_type, request } => {
            let response = match code {
                204 if hook_type.allows_204() => InlineResponse::empty(),
                204 => {
                    return Err(format!(
                        "HTTP 204; {hook_type} hooks must answer 200 (send {{}} for no change)"
                    ))
                }
                200 => {
                    if *truncated || body.len() >= MAX_RESPONSE_BYTES {
                        return Err(format!(
                            "the answer is over Okta's limit of {} KB",
                            MAX_RESPONSE_BYTES / 1024
                        ));
                    }
                    if body.iter().all(u8::is_ascii_whitespace) {
                        return Err(
                            "HTTP 200 with an empty body (send {} for no change)".to_owned()
                        );
                    }
                    let value: Value = serde_json::from_slice(body).map_err(|_| {
                        format!("HTTP 200 with a body that is not JSON{}", body_prefix(body))
                    })?;
                    parse_strict(value).map_err(|e| format!("HTTP 200 with {e}"))?
                }
                _ if status.is_success() => {
                    return Err(format!("{}; inline hooks answer 200", describe(answer)))
                }
                _ => return Err(describe(answer)),
            };
            check(*hook_type, &response, request).map_err(|e| e.to_string())?;
            Ok(consequence_of_answer(*hook_type, &response, request))
        }
    }
}

/// What Okta does with a valid answer (§4 of the contract).
fn consequence_of_answer(
    hook_type: HookType,
    response: &InlineResponse,
    request: &Value,
) -> String {
    let summary = response.error.as_ref().map(|e| {
        e.error_summary
            .clone()
            .or_else(|| {
                e.error_causes
                    .iter()
                    .flatten()
                    .find_map(|c| c.error_summary.clone())
            })
            .unwrap_or_else(|| {
                "(no errorSummary: \"The callback service returned an error\")".to_owned()
            })
    });
    let commands = response.commands.as_deref().unwrap_or_default();
    let find = |kind: &'static str| commands.iter().filter(move |c| c.kind == kind);
    match hook_type {
        HookType::Token => {
            if let Some(s) = summary {
                return format!(
                    "token request fails: server_error, \"{}\"",
                    shorten(&s, 120)
                );
            }
            let mut changes = Vec::new();
            for (kind, token) in [
                (token::ACCESS_PATCH, "access"),
                (token::IDENTITY_PATCH, "id"),
            ] {
                for c in find(kind) {
                    changes.extend(
                        patch_ops(&c.value)
                            .into_iter()
                            .map(|op| format!("{token} {op}")),
                    );
                }
            }
            if changes.is_empty() {
                "token issued unmodified (no commands)".to_owned()
            } else {
                format!("token issued with changes: {}", list(&changes))
            }
        }
        HookType::Registration => {
            let pp = is_progressive_profile(request);
            let (what, denied_text) = if pp {
                ("profile update", "Profile update denied.")
            } else {
                ("registration", "Registration denied.")
            };
            if let Some(s) = summary {
                return format!("{what} denied: \"{}\"", shorten(&s, 120));
            }
            let denied = registration::is_refusal(response);
            if denied {
                return format!("{what} denied (the user sees \"{denied_text}\")");
            }
            let attrs: Vec<String> = find(registration::PROFILE_UPDATE)
                .chain(find(registration::PROGRESSIVE_PROFILE_UPDATE))
                .flat_map(|c| keys(&c.value))
                .collect();
            if attrs.is_empty() {
                format!("{what} allowed unchanged")
            } else {
                format!("{what} allowed, profile set: {}", list(&attrs))
            }
        }
        HookType::Import => {
            if let Some(s) = summary {
                return format!(
                    "import: failure logged in the System Log: \"{}\"",
                    shorten(&s, 120)
                );
            }
            let result = find(import::ACTION_UPDATE)
                .filter_map(|c| c.value.get("result").and_then(Value::as_str))
                .next_back()
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    request["data"]["action"]["result"]
                        .as_str()
                        .unwrap_or(import::CREATE_USER)
                        .to_owned()
                });
            let mut words = if result == import::LINK_USER {
                let id = find(import::USER_UPDATE)
                    .filter_map(|c| c.value.get("id").and_then(Value::as_str))
                    .next_back()
                    .or(request["data"]["user"]["id"].as_str())
                    .unwrap_or("the matched user");
                format!("import: user linked to {id}")
            } else {
                "import: user created".to_owned()
            };
            let attrs: Vec<String> = find(import::USER_PROFILE_UPDATE)
                .chain(find(import::APP_USER_PROFILE_UPDATE))
                .flat_map(|c| keys(&c.value))
                .collect();
            if !attrs.is_empty() {
                words.push_str(&format!(", profile set: {}", list(&attrs)));
            }
            words
        }
        HookType::PasswordImport => {
            let verified = find(password::ACTION_UPDATE)
                .filter_map(|c| c.value.get("credential").and_then(Value::as_str))
                .next_back()
                == Some(password::VERIFIED);
            if verified {
                "password import: VERIFIED, Okta stores the password and signs the user in"
                    .to_owned()
            } else {
                "password import: UNVERIFIED, the sign-in fails".to_owned()
            }
        }
        HookType::Saml => {
            if let Some(s) = summary {
                return format!("SAML request denied: \"{}\"", shorten(&s, 120));
            }
            let changes: Vec<String> = find(saml::ASSERTION_PATCH)
                .flat_map(|c| patch_ops(&c.value))
                .collect();
            if changes.is_empty() {
                "original assertion used (no commands)".to_owned()
            } else {
                format!("assertion modified: {}", list(&changes))
            }
        }
        HookType::Telephony => {
            if let Some(s) = summary {
                return format!(
                    "OTP sent through Okta's own providers (the hook answered an error: \"{}\")",
                    shorten(&s, 120)
                );
            }
            let action = find(telephony::TELEPHONY_ACTION)
                .filter_map(|c| c.value.as_array().and_then(|a| a.first()).cloned())
                .next();
            match action {
                Some(a) => {
                    let status = a["status"].as_str().unwrap_or("?");
                    let provider = a["provider"].as_str().unwrap_or("the hook's provider");
                    format!("OTP sent by {provider}: {status}")
                }
                None => "OTP sent through Okta's own providers (no telephony action in the answer)"
                    .to_owned(),
            }
        }
    }
}

fn events_word(n: usize) -> String {
    if n == 1 {
        "1 event".to_owned()
    } else {
        format!("{n} events")
    }
}

fn is_progressive_profile(request: &Value) -> bool {
    request["requestType"] == "progressive.profile"
}

fn import_default(request: &Value) -> &'static str {
    match request["data"]["action"]["result"].as_str() {
        Some("LINK_USER") => "user linked",
        _ => "user created",
    }
}

/// `add /claims/login` for each operation of a patch value.
fn patch_ops(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|ops| {
            ops.iter()
                .map(|op| {
                    format!(
                        "{} {}",
                        op["op"].as_str().unwrap_or("?"),
                        op["path"].as_str().unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn keys(value: &Value) -> Vec<String> {
    value
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// At most four items, then how many more.
fn list(items: &[String]) -> String {
    const SHOWN: usize = 4;
    let mut out = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        out.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    out
}

fn shorten(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

fn body_prefix(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!(" (body starts: {:?})", shorten(text, 60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;
    use serde_json::json;
    use std::time::Duration;

    fn http(code: u16, body: &str) -> Attempt {
        Attempt {
            answer: Answer::Http {
                status: StatusCode::from_u16(code).expect("status"),
                location: None,
                body: body.as_bytes().to_vec(),
                truncated: false,
                fallback: None,
            },
            latency: Duration::from_millis(5),
        }
    }

    fn inline(t: HookType, request: &str) -> Kind {
        Kind::Inline {
            hook_type: t,
            request: serde_json::from_str(request).expect("json"),
        }
    }

    const TOKEN_REQUEST: &str = include_str!("../../tests/fixtures/okta/token-hook-request.json");
    const REG_SSR: &str =
        include_str!("../../tests/fixtures/okta/registration-hook-request-ssr.json");

    #[test]
    fn a_token_answer_with_a_registration_command_is_skipped_by_okta() {
        let answer =
            json!({"commands": [{"type": "com.okta.user.profile.update", "value": {"a": 1}}]});
        let v = judge(
            &inline(HookType::Token, TOKEN_REQUEST),
            &[http(200, &answer.to_string())],
        );
        assert_eq!(v.outcome, Outcome::Failed);
        assert!(v.okta.starts_with("token issued unmodified"), "{}", v.okta);
        assert!(
            v.problem
                .as_deref()
                .unwrap_or("")
                .contains("do not take this command type"),
            "{:?}",
            v.problem
        );
    }

    fn marked_fallback(code: u16, body: &str, reason: &str) -> Attempt {
        let mut a = http(code, body);
        if let Answer::Http { fallback, .. } = &mut a.answer {
            *fallback = Some(reason.to_owned());
        }
        a
    }

    #[test]
    fn a_fallback_okta_would_take_is_a_warning_and_a_broken_one_a_failure() {
        let kind = inline(HookType::Token, TOKEN_REQUEST);
        let v = judge(&kind, &[marked_fallback(200, "{}", "deadline")]);
        assert_eq!(v.outcome, Outcome::Warned);
        assert!(!v.outcome.passed());
        assert_eq!(v.okta, "token issued unmodified (no commands)");
        let problem = v.problem.unwrap_or_default();
        assert!(
            problem.contains("its fallback (x-hookwarden-fallback: deadline)"),
            "{problem}"
        );
        // After Okta's retry, still a warning, and the retry is said.
        let kind = inline(HookType::Registration, REG_SSR);
        let deny = json!({"error": {"errorSummary": "Try later."}}).to_string();
        let v = judge(
            &kind,
            &[http(503, ""), marked_fallback(200, &deny, "handler_error")],
        );
        assert_eq!(v.outcome, Outcome::Warned);
        assert_eq!(
            v.okta,
            "registration denied: \"Try later.\" (on Okta's retry)"
        );
        // A marked answer Okta would reject is a failure like any other.
        let v = judge(&kind, &[marked_fallback(200, "[]", "invalid")]);
        assert_eq!(v.outcome, Outcome::Failed);
        // The same answer unmarked passes.
        let v = judge(&kind, &[http(200, &deny)]);
        assert_eq!(v.outcome, Outcome::Passed);
    }

    #[test]
    fn a_registration_error_is_a_valid_denial() {
        let answer = json!({"error": {"errorSummary": "Only example.com"}});
        let v = judge(
            &inline(HookType::Registration, REG_SSR),
            &[http(200, &answer.to_string())],
        );
        assert_eq!(v.outcome, Outcome::Passed);
        assert_eq!(v.okta, "registration denied: \"Only example.com\"");
    }

    #[test]
    fn retries_and_their_absence_are_reported() {
        let kind = Kind::Delivery { events: 2 };
        let v = judge(&kind, &[http(503, ""), http(200, "")]);
        assert_eq!(v.outcome, Outcome::PassedAfterRetry);
        assert!(v.problem.as_deref().unwrap_or("").contains("HTTP 503"));
        let v = judge(&kind, &[http(400, "")]);
        assert_eq!(v.outcome, Outcome::Failed);
        assert!(v
            .problem
            .as_deref()
            .unwrap_or("")
            .contains("does not retry"));
        let v = judge(&inline(HookType::Token, TOKEN_REQUEST), &[http(500, "")]);
        assert!(v.problem.as_deref().unwrap_or("").contains("never retries"));
        assert_eq!(v.okta, "token issued unmodified (Okta skips the hook)");
    }

    #[test]
    fn a_verification_must_echo_the_challenge() {
        let kind = Kind::Verify {
            challenge: "abc".to_owned(),
        };
        assert!(judge(&kind, &[http(200, r#"{"verification":"abc"}"#)])
            .outcome
            .passed());
        assert!(!judge(&kind, &[http(200, r#"{"verification":"x"}"#)])
            .outcome
            .passed());
        assert!(!judge(&kind, &[http(204, "")]).outcome.passed());
    }

    #[test]
    fn empty_answers_follow_each_types_204_rule() {
        let v = judge(&inline(HookType::Registration, REG_SSR), &[http(204, "")]);
        assert_eq!(v.okta, "registration allowed unchanged");
        let v = judge(&inline(HookType::Token, TOKEN_REQUEST), &[http(204, "")]);
        assert!(!v.outcome.passed());
        let v = judge(&inline(HookType::Token, TOKEN_REQUEST), &[http(200, "{}")]);
        assert_eq!(v.okta, "token issued unmodified (no commands)");
    }
}
