//! The checker: whether an answer is one Okta accepts from a hook of its type.
//!
//! Okta does not tell the end user, or us, much when an answer is wrong: a bad token
//! patch makes it skip the hook silently, a bad telephony answer sends the OTP through
//! Okta's rate-limited providers, a registration answer it cannot read blocks the
//! sign-up. So every answer a handler produces is checked before it leaves
//! ([`super::settle`] decides what leaves instead).
//!
//! This file holds what every type shares: the `error` object, the size limit, the
//! command list, and the value shapes that recur (an enum object such as
//! `{"registration": "DENY"}`, a profile map, JSON Patch operations). What each type
//! takes is its own module's (`token::check_command`, `registration::check_command`...).
//! The messages name the command index and what is wrong: they end up in an operator's log.

pub use super::settle::MAX_ERROR_TEXT_BYTES;
use super::{
    import, password, registration, saml, telephony, token, Command, HookType, InlineError,
    InlineResponse, MAX_RESPONSE_BYTES,
};
use serde_json::{Map, Value};

/// Why an answer is not acceptable to Okta for this hook type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CheckError(pub String);

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

/// The command being checked, for messages that say where the problem is.
pub(super) struct At<'a> {
    pub(super) index: usize,
    pub(super) command: &'a Command,
}

impl At<'_> {
    pub(super) fn fail(&self, what: impl std::fmt::Display) -> CheckError {
        CheckError(format!(
            "commands[{}] ({}): {what}",
            self.index, self.command.kind
        ))
    }

    pub(super) fn value(&self) -> &Value {
        &self.command.value
    }
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

/// A command value that must be an object holding exactly one key with one of a few
/// string values, such as `{"registration": "DENY"}`.
pub(super) fn check_enum_object(at: &At, key: &str, allowed: &[&str]) -> Result<(), CheckError> {
    let expected = || {
        let choices: Vec<String> = allowed.iter().map(|a| format!("\"{a}\"")).collect();
        format!("{{\"{key}\": {}}}", choices.join(" | "))
    };
    let Some(object) = at.value().as_object() else {
        return Err(at.fail(format!(
            "value must be {}, not {}",
            expected(),
            kind_of(at.value())
        )));
    };
    match object.get(key) {
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => {}
        Some(other) => {
            return Err(at.fail(format!(
                "value.{key} is {other}; it must be one of {}",
                allowed.join(", ")
            )))
        }
        None => return Err(at.fail(format!("value has no \"{key}\"; it must be {}", expected()))),
    }
    if let Some(extra) = object.keys().find(|k| k.as_str() != key) {
        return Err(at.fail(format!(
            "value has an unknown key \"{extra}\"; it must be exactly {}",
            expected()
        )));
    }
    Ok(())
}

pub(super) fn check_profile_object(at: &At) -> Result<(), CheckError> {
    let Some(attributes) = at.value().as_object() else {
        return Err(at.fail(format!(
            "value must be an object of profile attributes, not {}",
            kind_of(at.value())
        )));
    };
    if attributes.contains_key("password") {
        return Err(at.fail("a profile update cannot set the password"));
    }
    Ok(())
}

/// The value of a patch command: an array of operation objects.
pub(super) fn patch_ops<'a>(at: &'a At) -> Result<&'a Vec<Value>, CheckError> {
    at.value().as_array().ok_or_else(|| {
        at.fail(format!(
            "value must be an array of {{op, path, value}} operations, not {}",
            kind_of(at.value())
        ))
    })
}

pub(super) fn op_and_path<'a>(
    at: &At,
    i: usize,
    op: &'a Value,
    allowed: &[&str],
) -> Result<(&'a str, &'a str), CheckError> {
    let Some(object) = op.as_object() else {
        return Err(at.fail(format!(
            "value[{i}] must be an {{op, path, value}} object, not {}",
            kind_of(op)
        )));
    };
    let kind = match object.get("op") {
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => s.as_str(),
        Some(other) => {
            return Err(at.fail(format!(
                "value[{i}].op is {other}; it must be one of {}",
                allowed.join(", ")
            )))
        }
        None => return Err(at.fail(format!("value[{i}] has no op"))),
    };
    let path = match object.get("path") {
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(at.fail(format!(
                "value[{i}].path must be a string, not {}",
                kind_of(other)
            )))
        }
        None => return Err(at.fail(format!("value[{i}] has no path"))),
    };
    Ok((kind, path))
}

/// One JSON Pointer segment: not empty, and `~` only as `~0` or `~1` (RFC 6901).
pub(super) fn check_segment(segment: &str) -> Result<(), String> {
    if segment.is_empty() {
        return Err("the path has an empty segment".to_owned());
    }
    let mut chars = segment.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(format!(
                "\"{segment}\" has a \"~\" that is not \"~0\" or \"~1\" (escape ~ as ~0 and / as ~1)"
            ));
        }
    }
    Ok(())
}

pub(super) fn unescape(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

pub(super) fn check_optional_strings(
    at: &At,
    i: usize,
    object: &Map<String, Value>,
    keys: &[&str],
) -> Result<(), CheckError> {
    for key in keys {
        match object.get(*key) {
            None | Some(Value::String(_)) => {}
            Some(other) => {
                return Err(at.fail(format!(
                    "value[{i}].{key} must be a string, not {}",
                    kind_of(other)
                )))
            }
        }
    }
    Ok(())
}

/// At most one command of type `action` (a decision): Okta runs every command in order,
/// so of two decisions the last would win, whatever the first said.
pub(super) fn one_action(answer: &InlineResponse, action: &str) -> Result<(), CheckError> {
    let mut decisions = answer
        .commands
        .iter()
        .flatten()
        .enumerate()
        .filter(|(_, c)| c.kind == action);
    match (decisions.next(), decisions.next()) {
        (Some((first, _)), Some((second, _))) => Err(CheckError(format!(
            "commands[{first}] and commands[{second}] are both {action}: send one decision"
        ))),
        _ => Ok(()),
    }
}

/// No command beside an `error`, for the types whose Okta runs none on an error (`does`:
/// what Okta does instead, for the message).
pub(super) fn nothing_beside_error(answer: &InlineResponse, does: &str) -> Result<(), CheckError> {
    match (&answer.error, answer.commands.as_deref()) {
        (Some(_), Some([_, ..])) => Err(CheckError(format!(
            "commands beside an error: Okta {does} on an error and runs none of them; send the error alone"
        ))),
        _ => Ok(()),
    }
}

/// Keeps only `keys` in an object; returns the names of the keys it dropped. Okta reads
/// the keys it knows, so an extra one changes nothing there; it is dropped here so that
/// the answer that leaves is exactly what Okta acts on.
pub(super) fn retain_keys(value: &mut Value, keys: &[&str]) -> Vec<String> {
    let Some(object) = value.as_object_mut() else {
        return Vec::new();
    };
    let mut dropped = Vec::new();
    object.retain(|k, _| {
        let keep = keys.contains(&k.as_str());
        if !keep {
            dropped.push(shown_key(k));
        }
        keep
    });
    dropped
}

/// Keeps op, path and value in each operation of a patch command.
pub(super) fn tidy_patch_ops(command: &mut Command) -> Vec<String> {
    let mut dropped = Vec::new();
    for op in command.value.as_array_mut().into_iter().flatten() {
        dropped.extend(retain_keys(op, &["op", "path", "value"]));
    }
    dropped
}

/// A key as messages show it: the first 40 characters (a key may be request data).
pub(super) fn shown_key(key: &str) -> String {
    key.chars().take(40).collect()
}

pub(super) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// What the tests of every type's checks share: Okta's sample requests and assertions.
#[cfg(test)]
pub(super) mod testing {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!("../../../tests/fixtures/okta/", $name))
        };
    }
    pub(crate) use fixture;

    pub fn json(text: &str) -> Value {
        serde_json::from_str(text).expect("fixture is JSON")
    }

    pub fn token_request() -> Value {
        json(fixture!("token-hook-request.json"))
    }
    pub fn ssr_request() -> Value {
        json(fixture!("registration-hook-request-ssr.json"))
    }
    pub fn pp_request() -> Value {
        json(fixture!(
            "registration-hook-request-progressive-profile.json"
        ))
    }
    pub fn classic_request() -> Value {
        json(fixture!("registration-hook-request-classic.json"))
    }
    pub fn import_request() -> Value {
        json(fixture!("import-hook-request.json"))
    }
    pub fn password_request() -> Value {
        json(fixture!("password-import-request.json"))
    }
    pub fn saml_request() -> Value {
        json(fixture!("saml-hook-request.json"))
    }
    pub fn telephony_request() -> Value {
        json(fixture!("telephony-hook-request.json"))
    }

    /// Asserts that `response` fails as a `hook_type` answer with a message holding each part.
    pub fn fails(
        hook_type: HookType,
        response: &InlineResponse,
        request: &Value,
        expected: &[&str],
    ) {
        match check(hook_type, response, request) {
            Ok(()) => panic!("{response:?} should fail as a {hook_type} answer"),
            Err(e) => {
                for part in expected {
                    assert!(e.0.contains(part), "message {:?} lacks {part:?}", e.0);
                }
            }
        }
    }

    /// An answer of one command.
    pub fn one(kind: &str, value: Value) -> InlineResponse {
        InlineResponse::empty().command(kind, value)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use crate::okta::inline::{ErrorCause, PatchOp};
    use serde_json::json;

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
