//! Checks an answer against the contract of its hook type before it leaves.
//!
//! Okta does not tell the end user, or us, much when an answer is wrong: a bad token
//! patch makes it skip the hook silently, a bad telephony answer sends the OTP through
//! Okta's rate-limited providers, a registration answer it cannot read blocks the
//! sign-up. So every answer a handler produces is checked here first; a failure is
//! logged and counted by the caller, and the hook's fallback is sent instead.
//!
//! The rules are the contract's (section 4 of the shared contract notes): which command
//! types each hook type takes, and the shape of each command's value. The messages name
//! the command index and what is wrong, because they end up in an operator's log.

use crate::okta::inline::{
    import, password, registration, saml, telephony, token, Command, HookType, InlineError,
    InlineResponse, MAX_RESPONSE_BYTES,
};
use serde_json::{Map, Value};

/// Why an answer is not acceptable to Okta for this hook type.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct CheckError(pub String);

/// Longest `errorSummary` we let through. Okta documents no limit, but the summary is
/// shown to end users and copied into OAuth errors and the System Log: a kilobyte is
/// more than any message should need, and a longer one is a handler bug (a stack trace,
/// a whole upstream body).
pub const MAX_ERROR_SUMMARY_BYTES: usize = 1024;

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
            HookType::Token => check_token(&at, request)?,
            HookType::Registration => check_registration(&at, request)?,
            HookType::Import => check_import(&at)?,
            HookType::PasswordImport => check_password(&at)?,
            HookType::Saml => check_saml(&at)?,
            HookType::Telephony => check_telephony(&at)?,
        }
    }
    if hook_type == HookType::Import {
        check_link_user(commands)?;
    }
    check_size(response)
}

/// The command being checked, for messages that say where the problem is.
struct At<'a> {
    index: usize,
    command: &'a Command,
}

impl At<'_> {
    fn fail(&self, what: impl std::fmt::Display) -> CheckError {
        CheckError(format!(
            "commands[{}] ({}): {what}",
            self.index, self.command.kind
        ))
    }

    fn value(&self) -> &Value {
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
            "{what} is {} bytes; keep it under {MAX_ERROR_SUMMARY_BYTES} (it is shown to users)",
            text.len()
        ))
    };
    if let Some(summary) = &error.error_summary {
        if summary.len() > MAX_ERROR_SUMMARY_BYTES {
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
                if text.len() > MAX_ERROR_SUMMARY_BYTES {
                    return Err(too_long(format!("error.errorCauses[{i}].{name}"), text));
                }
            }
        }
    }
    Ok(())
}

/// A command value that must be an object holding exactly one key with one of a few
/// string values, such as `{"registration": "DENY"}`.
fn check_enum_object(at: &At, key: &str, allowed: &[&str]) -> Result<(), CheckError> {
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

fn check_profile_object(at: &At) -> Result<(), CheckError> {
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

// Token.

fn check_token(at: &At, request: &Value) -> Result<(), CheckError> {
    let (token, field) = if at.command.kind == token::IDENTITY_PATCH {
        ("an ID token", "identity")
    } else {
        ("an access token", "access")
    };
    if request
        .get("data")
        .and_then(|d| d.get(field))
        .is_none_or(Value::is_null)
    {
        return Err(at.fail(format!(
            "the request has no data.{field}: {token} was not requested, so Okta rejects a patch of it"
        )));
    }
    let ops = patch_ops(at)?;
    for (i, op) in ops.iter().enumerate() {
        let (kind, path) = op_and_path(at, i, op, &["add", "replace", "remove"])?;
        let fail = |what: String| at.fail(format!("value[{i}] ({kind} {path}): {what}"));
        let value = op.get("value");
        if path == token::LIFETIME_PATH {
            if kind != "replace" {
                return Err(fail(
                    "the lifetime can only be replaced (op \"replace\")".to_owned(),
                ));
            }
            let range = token::LIFETIME_SECONDS;
            match value.and_then(Value::as_u64) {
                Some(s) if s >= u64::from(*range.start()) && s <= u64::from(*range.end()) => {}
                _ => {
                    return Err(fail(format!(
                        "the lifetime must be an integer from {} to {} seconds, not {}",
                        range.start(),
                        range.end(),
                        value.map_or_else(|| "absent".to_owned(), Value::to_string)
                    )))
                }
            }
            continue;
        }
        let Some(rest) = path.strip_prefix("/claims/") else {
            return Err(fail(format!(
                "token patches change /claims/<name>[/<member>] or {}",
                token::LIFETIME_PATH
            )));
        };
        let segments: Vec<&str> = rest.split('/').collect();
        if segments.len() > 2 {
            return Err(fail(
                "a path goes at most one level into a claim (/claims/<name>/<member, index or ->)"
                    .to_owned(),
            ));
        }
        for segment in &segments {
            check_segment(segment).map_err(fail)?;
        }
        if segments.get(1) == Some(&"-") && kind != "add" {
            return Err(fail(
                "\"-\" (after the last element) can only be used to add".to_owned(),
            ));
        }
        let claim = unescape(segments[0]);
        if token::is_reserved_claim(&at.command.kind, &claim) {
            return Err(fail(format!(
                "\"{claim}\" is a reserved claim of {token} and cannot be changed"
            )));
        }
        match kind {
            "remove" => {
                if value.is_some_and(|v| !v.is_null()) {
                    return Err(fail(
                        "a remove takes no value (or null); Okta fails the whole patch otherwise"
                            .to_owned(),
                    ));
                }
            }
            _ => {
                if value.is_none() {
                    return Err(fail(format!("an {kind} needs a value")));
                }
            }
        }
    }
    Ok(())
}

/// The value of a patch command: an array of operation objects.
fn patch_ops<'a>(at: &'a At) -> Result<&'a Vec<Value>, CheckError> {
    at.value().as_array().ok_or_else(|| {
        at.fail(format!(
            "value must be an array of {{op, path, value}} operations, not {}",
            kind_of(at.value())
        ))
    })
}

fn op_and_path<'a>(
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
fn check_segment(segment: &str) -> Result<(), String> {
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

fn unescape(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

// Registration.

fn check_registration(at: &At, request: &Value) -> Result<(), CheckError> {
    let progressive = request.get("requestType").and_then(Value::as_str)
        == Some(registration::PROGRESSIVE_PROFILE);
    match at.command.kind.as_str() {
        registration::ACTION_UPDATE => {
            if at.value().get("action").is_some() && at.value().get("registration").is_none() {
                return Err(at.fail(
                    "the key is \"registration\", not \"action\" (the spec's prose is wrong; Okta's samples and SDK use \"registration\")",
                ));
            }
            check_enum_object(at, "registration", &["ALLOW", "DENY"])
        }
        registration::PROFILE_UPDATE if progressive => Err(at.fail(format!(
            "this is a progressive profile request: use {}",
            registration::PROGRESSIVE_PROFILE_UPDATE
        ))),
        registration::PROGRESSIVE_PROFILE_UPDATE if !progressive => Err(at.fail(format!(
            "this is a registration request, not a progressive profile one: use {}",
            registration::PROFILE_UPDATE
        ))),
        _ => check_profile_object(at),
    }
}

// User import.

fn check_import(at: &At) -> Result<(), CheckError> {
    match at.command.kind.as_str() {
        import::ACTION_UPDATE => {
            check_enum_object(at, "result", &[import::CREATE_USER, import::LINK_USER])
        }
        import::USER_UPDATE => {
            let Some(object) = at.value().as_object() else {
                return Err(at.fail(format!(
                    "value must be {{\"id\": \"<Okta user id>\"}}, not {}",
                    kind_of(at.value())
                )));
            };
            match object.get("id") {
                Some(Value::String(id)) if !id.trim().is_empty() => {}
                _ => {
                    return Err(
                        at.fail("value.id must be the non-empty id of the Okta user to link to")
                    )
                }
            }
            if let Some(extra) = object.keys().find(|k| k.as_str() != "id") {
                return Err(at.fail(format!(
                    "value has an unknown key \"{extra}\"; it must be exactly {{\"id\": \"...\"}}"
                )));
            }
            Ok(())
        }
        _ => check_profile_object(at),
    }
}

/// `LINK_USER` without the user to link to is rejected by Okta.
fn check_link_user(commands: &[Command]) -> Result<(), CheckError> {
    let link = commands.iter().position(|c| {
        c.kind == import::ACTION_UPDATE
            && c.value.get("result").and_then(Value::as_str) == Some(import::LINK_USER)
    });
    let has_user = commands.iter().any(|c| c.kind == import::USER_UPDATE);
    match link {
        Some(index) if !has_user => Err(CheckError(format!(
            "commands[{index}] ({}): LINK_USER needs a {} command with the Okta user's id",
            import::ACTION_UPDATE,
            import::USER_UPDATE
        ))),
        _ => Ok(()),
    }
}

// Password import.

fn check_password(at: &At) -> Result<(), CheckError> {
    check_enum_object(
        at,
        "credential",
        &[password::VERIFIED, password::UNVERIFIED],
    )
}

// SAML.

fn check_saml(at: &At) -> Result<(), CheckError> {
    let ops = patch_ops(at)?;
    for (i, op) in ops.iter().enumerate() {
        if op.get("op").and_then(Value::as_str) == Some("remove") {
            return Err(at.fail(format!(
                "value[{i}].op is \"remove\"; SAML assertion patches take only add and replace"
            )));
        }
        let (kind, path) = op_and_path(at, i, op, &["add", "replace"])?;
        let fail = |what: String| at.fail(format!("value[{i}] ({kind} {path}): {what}"));
        let Some(rest) = saml::PATH_ROOTS
            .iter()
            .find_map(|root| path.strip_prefix(root))
        else {
            return Err(fail(format!(
                "the path must start with {}",
                saml::PATH_ROOTS.join(", ")
            )));
        };
        for segment in rest.split('/') {
            check_segment(segment).map_err(fail)?;
        }
        match op.get("value") {
            None | Some(Value::Null) => {
                return Err(fail(format!("an {kind} needs a non-null value")))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

// Telephony.

fn check_telephony(at: &At) -> Result<(), CheckError> {
    let Some(items) = at.value().as_array() else {
        return Err(at.fail(format!(
            "value must be an array of {{status, provider, transactionId, transactionMetadata}}, not {}",
            kind_of(at.value())
        )));
    };
    if items.is_empty() {
        return Err(at.fail("value is empty; it needs one {\"status\": ...} object"));
    }
    let statuses = [
        telephony::DeliveryStatus::Successful.as_str(),
        telephony::DeliveryStatus::Pending.as_str(),
        telephony::DeliveryStatus::Failed.as_str(),
    ];
    for (i, item) in items.iter().enumerate() {
        let Some(object) = item.as_object() else {
            return Err(at.fail(format!(
                "value[{i}] must be an object, not {}",
                kind_of(item)
            )));
        };
        match object.get("status") {
            Some(Value::String(s)) if statuses.contains(&s.as_str()) => {}
            Some(other) => {
                return Err(at.fail(format!(
                    "value[{i}].status is {other}; it must be one of {}",
                    statuses.join(", ")
                )))
            }
            None => {
                return Err(at.fail(format!(
                    "value[{i}] has no status (one of {})",
                    statuses.join(", ")
                )))
            }
        }
        check_optional_strings(
            at,
            i,
            object,
            &["provider", "transactionId", "transactionMetadata"],
        )?;
    }
    Ok(())
}

fn check_optional_strings(
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

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::okta::inline::{ErrorCause, PatchOp};
    use serde_json::json;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!("../../tests/fixtures/okta/", $name))
        };
    }

    fn json(text: &str) -> Value {
        serde_json::from_str(text).expect("fixture is JSON")
    }

    fn answer(text: &str) -> InlineResponse {
        serde_json::from_str(text).expect("fixture is an inline answer")
    }

    fn token_request() -> Value {
        json(fixture!("token-hook-request.json"))
    }
    fn ssr_request() -> Value {
        json(fixture!("registration-hook-request-ssr.json"))
    }
    fn pp_request() -> Value {
        json(fixture!(
            "registration-hook-request-progressive-profile.json"
        ))
    }
    fn classic_request() -> Value {
        json(fixture!("registration-hook-request-classic.json"))
    }
    fn import_request() -> Value {
        json(fixture!("import-hook-request.json"))
    }
    fn password_request() -> Value {
        json(fixture!("password-import-request.json"))
    }
    fn saml_request() -> Value {
        json(fixture!("saml-hook-request.json"))
    }
    fn telephony_request() -> Value {
        json(fixture!("telephony-hook-request.json"))
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

    fn fails(hook_type: HookType, response: &InlineResponse, request: &Value, expected: &[&str]) {
        match check(hook_type, response, request) {
            Ok(()) => panic!("{response:?} should fail as a {hook_type} answer"),
            Err(e) => {
                for part in expected {
                    assert!(e.0.contains(part), "message {:?} lacks {part:?}", e.0);
                }
            }
        }
    }

    fn one(kind: &str, value: Value) -> InlineResponse {
        InlineResponse::empty().command(kind, value)
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

    fn id_patch(op: Value) -> InlineResponse {
        one(token::IDENTITY_PATCH, json!([op]))
    }

    fn access_patch(op: Value) -> InlineResponse {
        one(token::ACCESS_PATCH, json!([op]))
    }

    #[test]
    fn token_value_must_be_an_array_of_ops() {
        let r = token_request();
        fails(
            HookType::Token,
            &one(token::IDENTITY_PATCH, json!({"op": "add"})),
            &r,
            &["commands[0]", "must be an array", "an object"],
        );
        fails(
            HookType::Token,
            &one(token::IDENTITY_PATCH, json!(["add"])),
            &r,
            &["value[0] must be an {op, path, value} object"],
        );
        fails(
            HookType::Token,
            &id_patch(json!({"op": "move", "path": "/claims/a", "from": "/claims/b"})),
            &r,
            &["value[0].op is \"move\"", "add, replace, remove"],
        );
        fails(
            HookType::Token,
            &id_patch(json!({"path": "/claims/a", "value": 1})),
            &r,
            &["value[0] has no op"],
        );
        fails(
            HookType::Token,
            &id_patch(json!({"op": "add", "value": 1})),
            &r,
            &["value[0] has no path"],
        );
        fails(
            HookType::Token,
            &id_patch(json!({"op": "add", "path": "/claims/a"})),
            &r,
            &["needs a value"],
        );
    }

    #[test]
    fn token_paths() {
        let r = token_request();
        fails(
            HookType::Token,
            &id_patch(json!({"op": "add", "path": "/profile/a", "value": 1})),
            &r,
            &["/profile/a", "/claims/<name>"],
        );
        fails(
            HookType::Token,
            &id_patch(json!({"op": "add", "path": "/claims/", "value": 1})),
            &r,
            &["empty segment"],
        );
        fails(
            HookType::Token,
            &id_patch(json!({"op": "add", "path": "/claims/a/b/c", "value": 1})),
            &r,
            &["at most one level"],
        );
        fails(
            HookType::Token,
            &id_patch(json!({"op": "replace", "path": "/claims/a/-", "value": 1})),
            &r,
            &["\"-\"", "only be used to add"],
        );
        fails(
            HookType::Token,
            &id_patch(json!({"op": "add", "path": "/claims/http:~2x", "value": 1})),
            &r,
            &["~0", "~1"],
        );
        fails(
            HookType::Token,
            &id_patch(json!({"op": "add", "path": "/token/lifetime", "value": 1})),
            &r,
            &["/token/lifetime"],
        );
        // Escaped URI claims and array appends are fine.
        let ok = id_patch(
            json!({"op": "add", "path": "/claims/http:~1~1example.com~1role", "value": "x"}),
        );
        check(HookType::Token, &ok, &r).expect("escaped claim name");
        let ok = id_patch(json!({"op": "add", "path": "/claims/airports/-", "value": "lax"}));
        check(HookType::Token, &ok, &r).expect("append");
    }

    #[test]
    fn token_lifetime() {
        let r = token_request();
        let lifetime = |op: &str, value: Value| {
            id_patch(json!({"op": op, "path": "/token/lifetime/expiration", "value": value}))
        };
        for ok in [300, 3600, 86_400] {
            check(HookType::Token, &lifetime("replace", json!(ok)), &r).expect("in range");
        }
        fails(
            HookType::Token,
            &lifetime("replace", json!(299)),
            &r,
            &["300 to 86400", "not 299"],
        );
        fails(
            HookType::Token,
            &lifetime("replace", json!(86_401)),
            &r,
            &["not 86401"],
        );
        fails(
            HookType::Token,
            &lifetime("replace", json!("3600")),
            &r,
            &["an integer"],
        );
        fails(
            HookType::Token,
            &lifetime("replace", json!(3600.5)),
            &r,
            &["an integer"],
        );
        fails(
            HookType::Token,
            &lifetime("add", json!(3600)),
            &r,
            &["only be replaced"],
        );
        fails(
            HookType::Token,
            &id_patch(json!({"op": "remove", "path": "/token/lifetime/expiration"})),
            &r,
            &["only be replaced"],
        );
    }

    #[test]
    fn token_remove_takes_no_value() {
        let r = token_request();
        check(
            HookType::Token,
            &id_patch(json!({"op": "remove", "path": "/claims/a"})),
            &r,
        )
        .expect("absent");
        check(
            HookType::Token,
            &id_patch(json!({"op": "remove", "path": "/claims/a", "value": null})),
            &r,
        )
        .expect("null");
        fails(
            HookType::Token,
            &id_patch(json!({"op": "remove", "path": "/claims/a", "value": "x"})),
            &r,
            &["remove takes no value"],
        );
    }

    #[test]
    fn token_reserved_claims() {
        let r = token_request();
        for claim in [
            "iss",
            "ver",
            "exp",
            "iat",
            "jti",
            "cid",
            "uid",
            "auth_time",
            "nbf",
            "amr",
            "idp",
            "nonce",
            "at_hash",
            "c_hash",
            "scp",
            "sub",
            "aud",
        ] {
            fails(
                HookType::Token,
                &id_patch(
                    json!({"op": "replace", "path": format!("/claims/{claim}"), "value": "x"}),
                ),
                &r,
                &[
                    "value[0]",
                    &format!("\"{claim}\" is a reserved claim of an ID token"),
                ],
            );
        }
        for claim in ["iss", "exp", "cid", "uid", "scp"] {
            fails(
                HookType::Token,
                &access_patch(json!({"op": "remove", "path": format!("/claims/{claim}")})),
                &r,
                &["reserved claim of an access token"],
            );
        }
        // Inside a reserved claim is still the reserved claim.
        fails(
            HookType::Token,
            &id_patch(json!({"op": "remove", "path": "/claims/amr/0"})),
            &r,
            &["\"amr\" is a reserved claim"],
        );
        // aud and sub may change in access tokens.
        check(
            HookType::Token,
            &access_patch(json!({"op": "replace", "path": "/claims/aud", "value": "api://other"})),
            &r,
        )
        .expect("aud in access token");
        check(
            HookType::Token,
            &access_patch(json!({"op": "replace", "path": "/claims/sub", "value": "x"})),
            &r,
        )
        .expect("sub in access token");
    }

    #[test]
    fn token_patch_needs_the_token_requested() {
        let mut only_access = token_request();
        only_access["data"]
            .as_object_mut()
            .expect("data")
            .remove("identity");
        let add = json!({"op": "add", "path": "/claims/a", "value": 1});
        fails(
            HookType::Token,
            &id_patch(add.clone()),
            &only_access,
            &[
                "commands[0] (com.okta.identity.patch)",
                "no data.identity",
                "ID token was not requested",
            ],
        );
        check(HookType::Token, &access_patch(add.clone()), &only_access)
            .expect("access token was requested");
        let mut only_id = token_request();
        only_id["data"]["access"] = Value::Null;
        fails(
            HookType::Token,
            &access_patch(add),
            &only_id,
            &["no data.access"],
        );
    }

    #[test]
    fn registration_rules() {
        let ssr = ssr_request();
        let pp = pp_request();
        fails(
            HookType::Registration,
            &one("com.okta.action.update", json!({"registration": "MAYBE"})),
            &ssr,
            &["value.registration is \"MAYBE\"", "ALLOW, DENY"],
        );
        fails(
            HookType::Registration,
            &one("com.okta.action.update", json!({"action": "DENY"})),
            &ssr,
            &["the key is \"registration\""],
        );
        fails(
            HookType::Registration,
            &one("com.okta.action.update", json!("DENY")),
            &ssr,
            &["value must be {\"registration\""],
        );
        fails(
            HookType::Registration,
            &one(
                "com.okta.action.update",
                json!({"registration": "DENY", "why": 1}),
            ),
            &ssr,
            &["unknown key \"why\""],
        );
        fails(
            HookType::Registration,
            &one("com.okta.user.profile.update", json!({"a": 1})),
            &pp,
            &[
                "progressive profile request",
                "com.okta.user.progressive.profile.update",
            ],
        );
        fails(
            HookType::Registration,
            &one("com.okta.user.progressive.profile.update", json!({"a": 1})),
            &ssr,
            &["not a progressive profile", "com.okta.user.profile.update"],
        );
        // Classic requests (no requestType) are registrations.
        fails(
            HookType::Registration,
            &one("com.okta.user.progressive.profile.update", json!({"a": 1})),
            &classic_request(),
            &["use com.okta.user.profile.update"],
        );
        // The spec's ProgressiveProfileResponse has a string for a value.
        fails(
            HookType::Registration,
            &one(
                "com.okta.user.progressive.profile.update",
                json!("request.body.data.userProfileUpdate['employeeNumber']"),
            ),
            &pp,
            &["must be an object of profile attributes, not a string"],
        );
        fails(
            HookType::Registration,
            &one("com.okta.user.profile.update", json!({"password": "x"})),
            &ssr,
            &["cannot set the password"],
        );
        check(
            HookType::Registration,
            &InlineResponse::from(registration::allow()),
            &pp,
        )
        .expect("allow");
    }

    #[test]
    fn import_rules() {
        let r = import_request();
        fails(
            HookType::Import,
            &one("com.okta.action.update", json!({"result": "UPDATE_USER"})),
            &r,
            &["CREATE_USER, LINK_USER"],
        );
        fails(
            HookType::Import,
            &one("com.okta.action.update", json!({"registration": "ALLOW"})),
            &r,
            &["no \"result\""],
        );
        fails(
            HookType::Import,
            &InlineResponse::from(import::create_user())
                .command("com.okta.user.update", json!({"id": ""})),
            &r,
            &["commands[1] (com.okta.user.update)", "non-empty id"],
        );
        fails(
            HookType::Import,
            &one("com.okta.user.update", json!({"id": 42})),
            &r,
            &["non-empty id"],
        );
        fails(
            HookType::Import,
            &one("com.okta.user.update", json!("00u1")),
            &r,
            &["{\"id\": \"<Okta user id>\"}", "a string"],
        );
        fails(
            HookType::Import,
            &one("com.okta.user.update", json!({"id": "00u1", "login": "x"})),
            &r,
            &["unknown key \"login\""],
        );
        fails(
            HookType::Import,
            &one("com.okta.action.update", json!({"result": "LINK_USER"})),
            &r,
            &[
                "commands[0] (com.okta.action.update)",
                "LINK_USER needs a com.okta.user.update",
            ],
        );
        fails(
            HookType::Import,
            &one("com.okta.appUser.profile.update", json!(["a"])),
            &r,
            &["object of profile attributes, not an array"],
        );
        fails(
            HookType::Import,
            &one("com.okta.user.profile.update", json!(null)),
            &r,
            &["not null"],
        );
        // The pair in either order.
        let reversed: InlineResponse = import::link_user("00u1").into_iter().rev().collect();
        check(HookType::Import, &reversed, &r).expect("order does not matter");
    }

    #[test]
    fn password_rules() {
        let r = password_request();
        fails(
            HookType::PasswordImport,
            &one("com.okta.action.update", json!({"credential": "OK"})),
            &r,
            &["VERIFIED, UNVERIFIED"],
        );
        fails(
            HookType::PasswordImport,
            &one("com.okta.action.update", json!({"result": "VERIFIED"})),
            &r,
            &["no \"credential\""],
        );
        fails(
            HookType::PasswordImport,
            &one("com.okta.user.update", json!({"id": "x"})),
            &r,
            &["password_import hooks do not take"],
        );
    }

    #[test]
    fn saml_rules() {
        let r = saml_request();
        let patch = |op: Value| one(saml::ASSERTION_PATCH, json!([op]));
        fails(
            HookType::Saml,
            &one(saml::ASSERTION_PATCH, json!({"op": "add"})),
            &r,
            &["must be an array"],
        );
        fails(
            HookType::Saml,
            &patch(json!({"op": "remove", "path": "/claims/a"})),
            &r,
            &["\"remove\"", "only add and replace"],
        );
        fails(
            HookType::Saml,
            &patch(json!({"op": "copy", "path": "/claims/a", "value": 1})),
            &r,
            &["add, replace"],
        );
        fails(
            HookType::Saml,
            &patch(json!({"op": "add", "path": "/lifetime/expiration", "value": 1})),
            &r,
            &["must start with /subject/, /authentication/, /conditions/, /claims/"],
        );
        fails(
            HookType::Saml,
            &patch(json!({"op": "add", "path": "/claims", "value": 1})),
            &r,
            &["must start with"],
        );
        fails(
            HookType::Saml,
            &patch(json!({"op": "add", "path": "/claims/", "value": 1})),
            &r,
            &["empty segment"],
        );
        fails(
            HookType::Saml,
            &patch(json!({"op": "add", "path": "/claims/http://x/y", "value": 1})),
            &r,
            &["empty segment"],
        );
        fails(
            HookType::Saml,
            &patch(json!({"op": "add", "path": "/claims/a~b", "value": 1})),
            &r,
            &["~0"],
        );
        fails(
            HookType::Saml,
            &patch(json!({"op": "replace", "path": "/subject/nameId"})),
            &r,
            &["needs a non-null value"],
        );
        check(
            HookType::Saml,
            &patch(
                json!({"op": "add", "path": "/claims/a~0b~1c", "value": {"attributeValues": []}}),
            ),
            &r,
        )
        .expect("escapes");
    }

    #[test]
    fn telephony_rules() {
        let r = telephony_request();
        let action = |value: Value| one(telephony::TELEPHONY_ACTION, value);
        fails(
            HookType::Telephony,
            &action(json!({"status": "SUCCESSFUL"})),
            &r,
            &["must be an array", "not an object"],
        );
        fails(
            HookType::Telephony,
            &action(json!([])),
            &r,
            &["value is empty"],
        );
        fails(
            HookType::Telephony,
            &action(json!(["SUCCESSFUL"])),
            &r,
            &["value[0] must be an object"],
        );
        fails(
            HookType::Telephony,
            &action(json!([{"provider": "X"}])),
            &r,
            &["value[0] has no status"],
        );
        fails(
            HookType::Telephony,
            &action(json!([{"status": "DELIVERED"}])),
            &r,
            &["SUCCESSFUL, PENDING, FAILED"],
        );
        fails(
            HookType::Telephony,
            &action(json!([{"status": "FAILED", "transactionId": 7}])),
            &r,
            &["value[0].transactionId must be a string, not a number"],
        );
        check(
            HookType::Telephony,
            &action(json!([{"status": "PENDING"}])),
            &r,
        )
        .expect("status alone");
        let built = InlineResponse::from(telephony::action(
            telephony::DeliveryStatus::Failed,
            "ACME",
            "t-1",
        ));
        check(HookType::Telephony, &built, &r).expect("builder");
    }

    #[test]
    fn error_rules() {
        let r = import_request();
        let long = "x".repeat(MAX_ERROR_SUMMARY_BYTES + 1);
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
            .error("x".repeat(MAX_ERROR_SUMMARY_BYTES))
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
                    token::add_id_token_claims([("groups", json!(["a", "b"]))]),
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
