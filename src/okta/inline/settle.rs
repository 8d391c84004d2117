//! What leaves: a handler's answer as Okta will act on it, or what goes in its place.
//!
//! The one rule here is that **a refusal stays a refusal**. A handler that says no (in its
//! type's terms: `is_refusal` of each type's module) must never see its answer turned
//! into the open fallback, which for a token hook issues the token and for a SAML hook
//! signs the assertion. So [`settle`] reads an answer in four steps:
//! 1. drop what Okta does not read (unknown keys in a command's value), naming it;
//! 2. check what is left against the type's contract ([`super::check`]);
//! 3. valid: it goes as written ([`Settled::Pass`]);
//! 4. not valid: a refusal is rebuilt in its type's refusal form from the handler's own
//!    words, its texts cut to [`MAX_ERROR_TEXT_BYTES`] ([`Settled::Repaired`]); when even
//!    that cannot be sent, the closed fallback must go, whatever the hook's `fallback`
//!    says ([`Settled::Unsendable`]). An answer that is not a refusal is
//!    [`Settled::Invalid`], and the hook's configured fallback goes.

use super::answer::Read;
use super::check::{check, CheckError, MAX_ERROR_TEXT_BYTES};
use super::{ErrorCause, HookType, InlineError, InlineResponse};
use serde_json::Value;

/// Ends a text that was cut.
const CUT_MARK: &str = "…";

/// What [`settle`] decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Settled {
    /// Valid for Okta: goes as it is.
    Pass(InlineResponse),
    /// A refusal that broke the contract, rebuilt as the type's refusal from the
    /// handler's own words; `why` is what was wrong with it.
    Repaired {
        answer: InlineResponse,
        why: CheckError,
    },
    /// A refusal that could not be rebuilt: the closed fallback must go.
    Unsendable(CheckError),
    /// Not a refusal, and not valid: the hook's fallback goes.
    Invalid(CheckError),
}

/// A decision, and the keys dropped on the way (for a warning).
#[derive(Debug, Clone, PartialEq)]
pub struct Settlement {
    pub settled: Settled,
    pub dropped: Vec<String>,
}

/// Decides what leaves for a hook of `hook_type` answering `request` (see the module doc).
pub fn settle(hook_type: HookType, read: Read, request: &Value) -> Settlement {
    let Read {
        mut answer,
        mut dropped,
        broken,
    } = read;
    for command in answer.commands.iter_mut().flatten() {
        let keys = hook_type.tidy(command);
        dropped.extend(
            keys.iter()
                .map(|key| format!("{} value: {key}", command.kind)),
        );
    }
    let verdict = if broken.is_empty() {
        check(hook_type, &answer, request)
    } else {
        Err(CheckError(broken.join("; ")))
    };
    let settled = match verdict {
        Ok(()) => Settled::Pass(answer),
        Err(why) if hook_type.is_refusal(&answer) => match repair(hook_type, &answer, request) {
            Some(answer) => Settled::Repaired { answer, why },
            None => Settled::Unsendable(why),
        },
        Err(why) => Settled::Invalid(why),
    };
    Settlement { settled, dropped }
}

/// The type's refusal from the handler's words: its `error` cut to size, its
/// `debugContext` while the answer stays under Okta's size limit; `None` when no such
/// answer passes the check.
fn repair(hook_type: HookType, answer: &InlineResponse, request: &Value) -> Option<InlineResponse> {
    let error = answer.error.as_ref().map(cut_error);
    let mut rebuilt = hook_type.refusal(error, answer);
    rebuilt.debug_context = answer.debug_context.clone();
    if check(hook_type, &rebuilt, request).is_err() {
        rebuilt.debug_context = None;
    }
    if check(hook_type, &rebuilt, request).is_err() {
        if let Some(error) = rebuilt.error.as_mut() {
            error.error_causes = None;
        }
    }
    check(hook_type, &rebuilt, request).ok().map(|()| rebuilt)
}

/// The error with every text cut to [`MAX_ERROR_TEXT_BYTES`].
pub fn cut_error(error: &InlineError) -> InlineError {
    let cut_opt = |t: &Option<String>| t.as_deref().map(cut);
    InlineError {
        error_summary: cut_opt(&error.error_summary),
        error_causes: error.error_causes.as_ref().map(|causes| {
            causes
                .iter()
                .map(|c| ErrorCause {
                    error_summary: cut_opt(&c.error_summary),
                    reason: cut_opt(&c.reason),
                    location_type: cut_opt(&c.location_type),
                    location: cut_opt(&c.location),
                    domain: cut_opt(&c.domain),
                })
                .collect()
        }),
    }
}

/// `text` if it fits in [`MAX_ERROR_TEXT_BYTES`], else its longest prefix that fits with
/// "…" after it, cut between characters.
pub fn cut(text: &str) -> String {
    if text.len() <= MAX_ERROR_TEXT_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_ERROR_TEXT_BYTES - CUT_MARK.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{CUT_MARK}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::super::answer::read;
    use super::super::testing::{password_request, ssr_request, token_request};
    use super::*;
    use serde_json::json;

    fn settled(hook_type: HookType, answer: Value, request: &Value) -> Settled {
        settle(hook_type, read(answer).expect("object"), request).settled
    }

    #[test]
    fn cut_keeps_short_texts_and_cuts_between_characters() {
        assert_eq!(cut("no"), "no");
        let long = "é".repeat(MAX_ERROR_TEXT_BYTES);
        let c = cut(&long);
        assert!(
            c.len() <= MAX_ERROR_TEXT_BYTES && c.ends_with(CUT_MARK),
            "{}",
            c.len()
        );
        assert!(c.len() > MAX_ERROR_TEXT_BYTES - 4);
    }

    #[test]
    fn the_reported_token_refusal_stays_a_refusal() {
        // A script's refusal with a 1,115-byte summary left as `{}`.
        let summary = format!("Access denied: {}", "x".repeat(1100));
        let s = settled(
            HookType::Token,
            json!({"error": {"errorSummary": summary}}),
            &token_request(),
        );
        let Settled::Repaired { answer, why } = s else {
            panic!("{s:?}")
        };
        assert!(why.0.contains("error.errorSummary is 1115 bytes"), "{why}");
        let sent = answer.error.and_then(|e| e.error_summary).expect("summary");
        assert!(sent.starts_with("Access denied: xxx") && sent.len() <= MAX_ERROR_TEXT_BYTES);
        assert!(answer.commands.is_none());
    }

    #[test]
    fn a_token_error_wins_over_a_reserved_claim_patch() {
        let s = settled(
            HookType::Token,
            json!({
                "error": {"errorSummary": "No."},
                "commands": [{"type": "com.okta.access.patch",
                              "value": [{"op": "add", "path": "/claims/groups", "value": []}]}],
            }),
            &token_request(),
        );
        let expected = json!({"error": {"errorSummary": "No."}});
        match s {
            Settled::Repaired { answer, .. } => {
                assert_eq!(serde_json::to_value(answer).expect("json"), expected)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn extra_keys_are_dropped_not_failed() {
        let s = settle(
            HookType::Registration,
            read(json!({
                "commands": [{"type": "com.okta.action.update",
                              "value": {"registration": "ALLOW", "reason": "ok"}}],
                "traceId": "t-1",
            }))
            .expect("object"),
            &ssr_request(),
        );
        assert_eq!(
            s.settled,
            Settled::Pass(InlineResponse::from(super::super::registration::allow()))
        );
        assert_eq!(
            s.dropped,
            vec!["traceId", "com.okta.action.update value: reason"]
        );
    }

    #[test]
    fn an_invalid_answer_that_is_no_refusal_is_invalid() {
        let s = settled(
            HookType::Registration,
            json!({"commands": [{"type": "com.okta.user.profile.update", "value": {"password": "x"}}]}),
            &ssr_request(),
        );
        assert!(matches!(s, Settled::Invalid(_)), "{s:?}");
    }

    #[test]
    fn a_password_error_becomes_unverified() {
        let s = settled(
            HookType::PasswordImport,
            json!({"error": {"errorSummary": "locked"}, "commands": [
                {"type": "com.okta.action.update", "value": {"credential": "VERIFIED"}}]}),
            &password_request(),
        );
        match s {
            Settled::Repaired { answer, .. } => assert_eq!(
                answer,
                InlineResponse::from(super::super::password::unverified())
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn two_decisions_are_one_refusal() {
        let s = settled(
            HookType::Registration,
            json!({"commands": [
                {"type": "com.okta.action.update", "value": {"registration": "DENY"}},
                {"type": "com.okta.action.update", "value": {"registration": "ALLOW"}}]}),
            &ssr_request(),
        );
        match s {
            Settled::Repaired { answer, why } => {
                assert!(why.0.contains("both com.okta.action.update"), "{why}");
                assert_eq!(
                    answer,
                    InlineResponse::from(super::super::registration::deny())
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
