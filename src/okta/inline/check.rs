//! The checker: whether an answer is one Okta accepts from a hook of its type.
//!
//! Okta does not tell the end user, or us, much when an answer is wrong: a bad token
//! patch makes it skip the hook silently, a bad telephony answer sends the OTP through
//! Okta's rate-limited providers, a registration answer it cannot read blocks the
//! sign-up. So every answer a handler produces is checked before it leaves
//! ([`super::settle`] decides what leaves instead).
//!
//! Here: the `error` object and its limits, the size limit, the command list; what each
//! type takes is its own module's (`token::check_command`, `registration::check_command`,
//! ... built from the shapes in `shapes`). The messages name the command index
//! and what is wrong: they end up in an operator's log.

use super::shapes::At;
pub use super::shapes::CheckError;
use super::{
    import, password, registration, saml, telephony, token, HookType, InlineError, InlineResponse,
    MAX_RESPONSE_BYTES,
};
use serde_json::Value;

/// The longest text of an `error` that leaves (its summary, each field of each cause).
///
/// Okta documents no limit. The summary is shown to the person signing in, copied into
/// the System Log, and for a token hook becomes the OAuth `error_description`, which
/// travels back to the client in a redirect URL for the browser flows: percent-encoded,
/// a kilobyte of text is up to 3 KB of URL, well inside what browsers and proxies carry
/// (8 KB is the common floor) beside the rest of the redirect. Anything longer is a
/// handler bug (a stack trace, an upstream body): [`super::settle`] cuts it in a refusal,
/// never sending `{}` instead.
pub const MAX_ERROR_TEXT_BYTES: usize = 1024;

/// Checks `response` for a hook of type `hook_type` answering `request` (the whole request JSON).
pub fn check(
    hook_type: HookType,
    response: &InlineResponse,
    request: &Value,
) -> Result<(), CheckError> {
    if let Some(error) = &response.error {
        check_error(error)?;
    }
    let commands = response.commands.as_deref().unwrap_or_default();
    for (index, command) in commands.iter().enumerate() {
        let at = At { index, command };
        if !hook_type
            .allowed_commands()
            .contains(&command.kind.as_str())
        {
            return Err(at.fail(format!(
                "{hook_type} hooks do not take this command type (they take {})",
                hook_type.allowed_commands().join(", ")
            )));
        }
        match hook_type {
            HookType::Token => token::check_command(&at, request)?,
            HookType::Registration => registration::check_command(&at, request)?,
            HookType::Import => import::check_command(&at)?,
            HookType::PasswordImport => password::check_command(&at)?,
            HookType::Saml => saml::check_command(&at)?,
            HookType::Telephony => telephony::check_command(&at)?,
        }
    }
    match hook_type {
        HookType::Registration => registration::check_answer(response)?,
        HookType::Import => import::check_answer(response)?,
        HookType::PasswordImport => password::check_answer(response)?,
        HookType::Telephony => telephony::check_answer(response)?,
        HookType::Token => token::check_answer(response)?,
        HookType::Saml => saml::check_answer(response)?,
    }
    check_size(response)
}

fn check_size(response: &InlineResponse) -> Result<(), CheckError> {
    let bytes = serde_json::to_vec(response)
        .map_err(|e| CheckError(format!("the answer cannot be serialised: {e}")))?;
    if bytes.len() >= MAX_RESPONSE_BYTES {
        return Err(CheckError(format!(
            "the answer is {} bytes; Okta takes less than {MAX_RESPONSE_BYTES}",
            bytes.len()
        )));
    }
    Ok(())
}

fn check_error(error: &InlineError) -> Result<(), CheckError> {
    let too_long = |what: String, text: &str| {
        CheckError(format!(
            "{what} is {} bytes; keep it under {MAX_ERROR_TEXT_BYTES} (it is shown to users)",
            text.len()
        ))
    };
    if let Some(summary) = &error.error_summary {
        if summary.len() > MAX_ERROR_TEXT_BYTES {
            return Err(too_long("error.errorSummary".to_owned(), summary));
        }
    }
    for (i, cause) in error.error_causes.iter().flatten().enumerate() {
        let fields = [
            ("errorSummary", &cause.error_summary),
            ("reason", &cause.reason),
            ("locationType", &cause.location_type),
            ("location", &cause.location),
            ("domain", &cause.domain),
        ];
        for (name, text) in fields {
            if let Some(text) = text {
                if text.len() > MAX_ERROR_TEXT_BYTES {
                    return Err(too_long(format!("error.errorCauses[{i}].{name}"), text));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::okta::inline::{ErrorCause, PatchOp};
    use serde_json::{json, Map};

    fn answer(text: &str) -> InlineResponse {
        serde_json::from_str(text).expect("fixture is an inline answer")
    }

    /// Every response sample, with its type and a request it answers.
    fn samples() -> Vec<(&'static str, HookType, &'static str, Value)> {
        macro_rules! sample {
            ($name:literal, $type:ident, $request:ident) => {
                ($name, HookType::$type, fixture!($name), $request())
            };
        }
        vec![
            sample!("token-hook-response.json", Token, token_request),
            sample!(
                "token-hook-response-add-array-index.json",
                Token,
                token_request
            ),
            sample!(
                "token-hook-response-add-object-member.json",
                Token,
                token_request
            ),
            sample!(
                "token-hook-response-append-array-dash.json",
                Token,
                token_request
            ),
            sample!("token-hook-response-error.json", Token, token_request),
            sample!("token-hook-response-lifetime.json", Token, token_request),
            sample!(
                "token-hook-response-remove-array-element.json",
                Token,
                token_request
            ),
            sample!(
                "token-hook-response-remove-claims.json",
                Token,
                token_request
            ),
            sample!(
                "token-hook-response-remove-object-member.json",
                Token,
                token_request
            ),
            sample!(
                "token-hook-response-replace-claims.json",
                Token,
                token_request
            ),
            sample!(
                "token-hook-response-replace-object-member.json",
                Token,
                token_request
            ),
            sample!(
                "registration-hook-response-deny-minimal.json",
                Registration,
                ssr_request
            ),
            sample!(
                "registration-hook-response-deny.json",
                Registration,
                ssr_request
            ),
            sample!(
                "registration-hook-response-error-classic.json",
                Registration,
                classic_request
            ),
            sample!(
                "registration-hook-response-pp-deny.json",
                Registration,
                pp_request
            ),
            sample!(
                "registration-hook-response-pp-update.json",
                Registration,
                pp_request
            ),
            sample!(
                "registration-hook-response-profile-update-two-attrs.json",
                Registration,
                classic_request
            ),
            sample!(
                "registration-hook-response-profile-update-two-commands.json",
                Registration,
                classic_request
            ),
            sample!(
                "registration-hook-response-ssr-profile-update.json",
                Registration,
                ssr_request
            ),
            sample!(
                "import-hook-response-appuser-profile-update.json",
                Import,
                import_request
            ),
            sample!(
                "import-hook-response-create-user.json",
                Import,
                import_request
            ),
            sample!("import-hook-response-empty.json", Import, import_request),
            sample!("import-hook-response-error.json", Import, import_request),
            sample!(
                "import-hook-response-link-user.json",
                Import,
                import_request
            ),
            sample!(
                "import-hook-response-user-profile-update.json",
                Import,
                import_request
            ),
            sample!(
                "password-import-response-verified.json",
                PasswordImport,
                password_request
            ),
            sample!(
                "password-import-response-unverified.json",
                PasswordImport,
                password_request
            ),
            sample!("saml-hook-response.json", Saml, saml_request),
            sample!("saml-hook-response-uri-claims.json", Saml, saml_request),
            sample!(
                "telephony-hook-response-success.json",
                Telephony,
                telephony_request
            ),
            sample!(
                "telephony-hook-response-error.json",
                Telephony,
                telephony_request
            ),
        ]
    }

    #[test]
    fn every_response_sample_passes_its_type() {
        for (name, hook_type, text, request) in samples() {
            let parsed = answer(text);
            assert_eq!(
                serde_json::to_value(&parsed).expect("serialise"),
                json(text),
                "{name} round-trips through InlineResponse"
            );
            if let Err(e) = check(hook_type, &parsed, &request) {
                panic!("{name} should pass as a {hook_type} answer: {e}");
            }
        }
    }

    #[test]
    fn samples_fail_as_other_types() {
        // A command sample is only right for its own type (error-only and empty
        // answers are right for every type, so they are left out).
        for (name, hook_type, text, request) in samples() {
            let parsed = answer(text);
            if parsed.commands.is_none() {
                continue;
            }
            for other in HookType::ALL {
                // Registration, import and password import share command type names;
                // only a type that takes none of the sample's commands must refuse it.
                let shared = parsed
                    .commands
                    .iter()
                    .flatten()
                    .all(|c| other.allowed_commands().contains(&c.kind.as_str()));
                if other == hook_type || shared {
                    continue;
                }
                assert!(
                    check(other, &parsed, &request).is_err(),
                    "{name} should fail as a {other} answer"
                );
            }
        }
    }

    #[test]
    fn command_types_are_per_hook_type() {
        fails(
            HookType::Telephony,
            &one("com.okta.action.update", json!({"credential": "VERIFIED"})),
            &telephony_request(),
            &[
                "commands[0] (com.okta.action.update)",
                "telephony hooks do not take",
            ],
        );
        // The spec's registration example uses this misspelt type.
        fails(
            HookType::Registration,
            &one("com.action.update", json!({"registration": "ALLOW"})),
            &ssr_request(),
            &["commands[0] (com.action.update)", "com.okta.action.update"],
        );
        fails(
            HookType::Saml,
            &saml_ok().with(token::identity_patch(vec![])),
            &saml_request(),
            &["commands[1] (com.okta.identity.patch)"],
        );
    }

    fn saml_ok() -> InlineResponse {
        InlineResponse::from(saml::assertion_patch(vec![PatchOp::replace(
            "/authentication/sessionIndex",
            json!("x"),
        )]))
    }

    #[test]
    fn error_rules() {
        let r = import_request();
        let long = "x".repeat(MAX_ERROR_TEXT_BYTES + 1);
        fails(
            HookType::Import,
            &InlineResponse::empty().error(long.clone()),
            &r,
            &["error.errorSummary is 1025 bytes"],
        );
        let cause = ErrorCause {
            location: Some(long),
            ..ErrorCause::default()
        };
        fails(
            HookType::Registration,
            &InlineResponse::empty().error_cause(cause),
            &ssr_request(),
            &["error.errorCauses[0].location"],
        );
        let fine = InlineResponse::empty()
            .error("x".repeat(MAX_ERROR_TEXT_BYTES))
            .debug("trace", json!({"a": [1]}));
        check(HookType::Import, &fine, &r).expect("1 KB summary and a debugContext");
        // Error fields that are not strings never become an InlineResponse.
        assert!(
            serde_json::from_value::<InlineResponse>(json!({"error": {"errorSummary": 5}}))
                .is_err()
        );
        assert!(serde_json::from_value::<InlineResponse>(
            json!({"error": {"errorCauses": [{"reason": []}]}})
        )
        .is_err());
        assert!(serde_json::from_value::<InlineResponse>(json!({"debugContext": "text"})).is_err());
        // The spec's TelephonyFailureResponse makes `error` an array.
        assert!(serde_json::from_value::<InlineResponse>(
            json!({"error": [{"errorSummary": "x"}]})
        )
        .is_err());
    }

    #[test]
    fn size_limit() {
        let r = import_request();
        let big = |n: usize| {
            InlineResponse::from(import::update_user_profile(Map::from_iter([(
                "blob".to_owned(),
                Value::String("x".repeat(n)),
            )])))
        };
        let overhead = serde_json::to_vec(&big(0)).expect("json").len();
        check(
            HookType::Import,
            &big(MAX_RESPONSE_BYTES - overhead - 1),
            &r,
        )
        .expect("just under");
        fails(
            HookType::Import,
            &big(MAX_RESPONSE_BYTES - overhead),
            &r,
            &["262144 bytes", "less than 262144"],
        );
    }

    #[test]
    fn builders_pass() {
        let cases: Vec<(HookType, InlineResponse, Value)> = vec![
            (
                HookType::Token,
                [
                    token::add_id_token_claims([("tier", json!(["a", "b"]))]),
                    token::access_patch(vec![
                        token::lifetime_op(600),
                        PatchOp::remove("/claims/legacy"),
                    ]),
                ]
                .into_iter()
                .collect(),
                token_request(),
            ),
            (
                HookType::Registration,
                registration::deny_because(
                    "No.",
                    [("data.userProfile.email", "Use your work address.")],
                ),
                ssr_request(),
            ),
            (
                HookType::Registration,
                InlineResponse::from(registration::update_progressive_profile(Map::from_iter([
                    ("a".to_owned(), json!(1)),
                ]))),
                pp_request(),
            ),
            (
                HookType::Import,
                InlineResponse::empty()
                    .with_all(import::link_user("00u1"))
                    .with(import::update_user_profile(Map::new())),
                import_request(),
            ),
            (
                HookType::PasswordImport,
                InlineResponse::from(password::verified()),
                password_request(),
            ),
            (
                HookType::Saml,
                InlineResponse::from(saml::assertion_patch(vec![
                    saml::session_lifetime(300),
                    saml::add_attribute(
                        "http://x/y",
                        &saml::SamlAttribute::strings(saml::NAME_FORMAT_BASIC, ["v"]),
                    ),
                ])),
                saml_request(),
            ),
            (
                HookType::Telephony,
                InlineResponse::from(telephony::action(
                    telephony::DeliveryStatus::Successful,
                    "VONAGE",
                    "SM1",
                )),
                telephony_request(),
            ),
        ];
        for (hook_type, answer, request) in cases {
            if let Err(e) = check(hook_type, &answer, &request) {
                panic!("{hook_type}: {e}");
            }
        }
    }
}
