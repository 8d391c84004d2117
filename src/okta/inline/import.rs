//! User import inline hook (`com.okta.import.transform`): an app import is about to
//! create or link one Okta user, and Okta lets us change the profiles and the decision.
//!
//! Called once per imported user, after mapping and matching. The request carries the
//! app user's profile, the Okta profile it maps to, and Okta's decision in
//! `data.action.result` (`CREATE_USER` or `LINK_USER`). The answer may change either
//! profile, or the decision; linking needs the Okta user's id as a second command, so
//! [`link_user`] always builds the pair.

use super::shapes::{
    check_enum_object, check_profile_object, kind_of, one_action, retain_keys, At, CheckError,
};
use super::{Command, InlineError, InlineRequest, InlineResponse};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A user import hook request.
pub type ImportRequest = InlineRequest<ImportData>;

/// Sets the decision: value `{"result": "CREATE_USER"|"LINK_USER"}`.
pub const ACTION_UPDATE: &str = "com.okta.action.update";
/// Names the Okta user to link to: value `{"id": "00u..."}`; required with `LINK_USER`.
pub const USER_UPDATE: &str = "com.okta.user.update";
/// Changes the app user's profile (flows into Okta through the mappings).
pub const APP_USER_PROFILE_UPDATE: &str = "com.okta.appUser.profile.update";
/// Changes the Okta user's profile.
pub const USER_PROFILE_UPDATE: &str = "com.okta.user.profile.update";
/// `result`: make a new Okta user.
pub const CREATE_USER: &str = "CREATE_USER";
/// `result`: treat the imported user as an existing Okta user.
pub const LINK_USER: &str = "LINK_USER";

/// `data` of a user import request.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ImportData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<ImportContext>,
    /// Okta's decision so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<ImportAction>,
    /// The user as the app sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_user: Option<ImportUser>,
    /// The Okta user the app user maps to; `id` is set when Okta matched one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<ImportUser>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `data.context`: the import job and how matching went. Read-only.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ImportContext {
    /// Attributes that clash with existing users, e.g. `["login"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflicts: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<Application>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<Job>,
    /// Okta users that matched. Every published sample has it empty, so its element
    /// shape is unknown and kept as raw JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<Vec<Value>>,
    /// The matching rules in force, e.g. `["EMAIL", "FIRST_AND_LAST_NAME"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Application {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `ACTIVE` or `INACTIVE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Job {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// e.g. `import:users`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ImportAction {
    /// `CREATE_USER` or `LINK_USER`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An app user or an Okta user: a profile, and for a matched Okta user its id.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ImportUser {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Any JSON per attribute: the samples hold nulls and arrays (the spec says
    /// strings only; see tests/fixtures/okta/schemas/README.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Map<String, Value>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Makes a new Okta user for this app user.
pub fn create_user() -> Command {
    action(CREATE_USER)
}

/// Links this app user to the existing Okta user `okta_user_id`: the decision and the
/// id, in the order Okta's samples use (Okta requires both).
pub fn link_user(okta_user_id: impl Into<String>) -> [Command; 2] {
    [action(LINK_USER), user_update(okta_user_id)]
}

/// Names the Okta user to link to (`com.okta.user.update`); goes with `LINK_USER`.
pub fn user_update(okta_user_id: impl Into<String>) -> Command {
    Command::new(
        USER_UPDATE,
        Value::Object(Map::from_iter([(
            "id".to_owned(),
            Value::String(okta_user_id.into()),
        )])),
    )
}

/// Sets the decision to `result` as given (`CREATE_USER` or `LINK_USER`; the checker
/// refuses anything else).
pub fn result(result: impl Into<String>) -> Command {
    action(&result.into())
}

fn action(result: &str) -> Command {
    Command::new(
        ACTION_UPDATE,
        Value::Object(Map::from_iter([(
            "result".to_owned(),
            Value::String(result.to_owned()),
        )])),
    )
}

/// Changes attributes of the app user's profile.
pub fn update_app_user_profile(attributes: Map<String, Value>) -> Command {
    Command::new(APP_USER_PROFILE_UPDATE, Value::Object(attributes))
}

/// Changes attributes of the Okta user's profile.
pub fn update_user_profile(attributes: Map<String, Value>) -> Command {
    Command::new(USER_PROFILE_UPDATE, Value::Object(attributes))
}

/// The error answer: Okta records a failure event with this summary in the System Log.
pub fn error(summary: impl Into<String>) -> InlineResponse {
    InlineResponse::empty().error(summary)
}

// ------------------------------------------------------------------------------------------
// The answer's contract: what Okta takes, and what a refusal is
// ------------------------------------------------------------------------------------------

/// The command types a user import hook answer may carry.
pub const COMMANDS: &[&str] = &[
    APP_USER_PROFILE_UPDATE,
    USER_PROFILE_UPDATE,
    ACTION_UPDATE,
    USER_UPDATE,
];

/// Checks one command: the decision, the user id, a profile map.
pub(super) fn check_command(at: &At) -> Result<(), CheckError> {
    match at.command.kind.as_str() {
        ACTION_UPDATE => check_enum_object(at, "result", &[CREATE_USER, LINK_USER]),
        USER_UPDATE => {
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

/// Checks what concerns the whole answer: one decision at most, and `LINK_USER` with the
/// user to link to (Okta rejects it without).
pub(super) fn check_answer(answer: &InlineResponse) -> Result<(), CheckError> {
    one_action(answer, ACTION_UPDATE)?;
    let commands = answer.commands.as_deref().unwrap_or_default();
    let link = commands.iter().position(|c| {
        c.kind == ACTION_UPDATE && c.value.get("result").and_then(Value::as_str) == Some(LINK_USER)
    });
    let has_user = commands.iter().any(|c| c.kind == USER_UPDATE);
    match link {
        Some(index) if !has_user => Err(CheckError(format!(
            "commands[{index}] ({}): LINK_USER needs a {} command with the Okta user's id",
            ACTION_UPDATE, USER_UPDATE
        ))),
        _ => Ok(()),
    }
}

/// Whether the answer refuses: an `error` (Okta records a failure event for this user
/// with the summary; whether it then skips the user is not documented).
pub fn is_refusal(answer: &InlineResponse) -> bool {
    answer.error.is_some()
}

/// The user import hook's refusal: the `error` alone, with no half-made change beside it.
pub fn refusal(error: Option<InlineError>, _answer: &InlineResponse) -> InlineResponse {
    InlineResponse::error_alone(error.unwrap_or_default())
}

/// Drops what Okta does not read from the decision (beside `result`) and the user
/// (beside `id`).
pub(super) fn tidy(command: &mut Command) -> Vec<String> {
    match command.kind.as_str() {
        ACTION_UPDATE if command.value.get("result").is_some() => {
            retain_keys(&mut command.value, &["result"])
        }
        USER_UPDATE if command.value.get("id").is_some() => {
            retain_keys(&mut command.value, &["id"])
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn roundtrip(sample: &str) -> ImportRequest {
        super::super::test_roundtrip(sample)
    }

    fn sample(text: &str) -> Value {
        serde_json::from_str(text).expect("sample is JSON")
    }

    #[test]
    fn docs_request() {
        let r = roundtrip(include_str!(
            "../../../tests/fixtures/okta/import-hook-request.json"
        ));
        assert_eq!(r.event_type.as_deref(), Some("com.okta.import.transform"));
        assert_eq!(
            r.data.action.as_ref().and_then(|a| a.result.as_deref()),
            Some(CREATE_USER)
        );
        let ctx = r.data.context.as_ref().expect("context");
        assert_eq!(ctx.conflicts.as_deref(), Some(&["login".to_owned()][..]));
        assert_eq!(ctx.matches.as_ref().map(Vec::len), Some(0));
        assert_eq!(
            ctx.job.as_ref().and_then(|j| j.kind.as_deref()),
            Some("import:users")
        );
        let app = r
            .data
            .app_user
            .as_ref()
            .and_then(|u| u.profile.as_ref())
            .expect("profile");
        assert_eq!(app.get("mobilePhone"), Some(&Value::Null));
        assert!(app.get("groups").is_some_and(Value::is_array));
    }

    #[test]
    fn spec_request() {
        let r = roundtrip(include_str!(
            "../../../tests/fixtures/okta/import-hook-request-spec.json"
        ));
        let app = r.data.context.as_ref().and_then(|c| c.application.as_ref());
        assert_eq!(app.and_then(|a| a.label.as_deref()), Some("Test App"));
        let user = r
            .data
            .user
            .as_ref()
            .and_then(|u| u.profile.as_ref())
            .expect("user");
        assert_eq!(user.get("login"), Some(&json!("sally.admin@example.net")));
        assert!(r.data.user.as_ref().is_some_and(|u| u.id.is_none()));
    }

    #[test]
    fn builders_match_the_samples() {
        assert_eq!(
            serde_json::to_value(
                InlineResponse::empty().with_all(link_user("00garwpuyxHaWOkdV0g4"))
            )
            .expect("json"),
            sample(include_str!(
                "../../../tests/fixtures/okta/import-hook-response-link-user.json"
            ))
        );
        assert_eq!(
            serde_json::to_value(InlineResponse::from(create_user())).expect("json"),
            sample(include_str!(
                "../../../tests/fixtures/okta/import-hook-response-create-user.json"
            ))
        );
        let names = Map::from_iter([
            ("firstName".to_owned(), json!("Stan")),
            ("lastName".to_owned(), json!("Lee")),
        ]);
        assert_eq!(
            serde_json::to_value(InlineResponse::from(update_app_user_profile(names)))
                .expect("json"),
            sample(include_str!(
                "../../../tests/fixtures/okta/import-hook-response-appuser-profile-update.json"
            ))
        );
        let first = Map::from_iter([("firstName".to_owned(), json!("Stan"))]);
        assert_eq!(
            serde_json::to_value(InlineResponse::from(update_user_profile(first))).expect("json"),
            sample(include_str!(
                "../../../tests/fixtures/okta/import-hook-response-user-profile-update.json"
            ))
        );
        assert_eq!(
            serde_json::to_value(error(
                "Error at third-party service. Please contact your admin."
            ))
            .expect("json"),
            sample(include_str!(
                "../../../tests/fixtures/okta/import-hook-response-error.json"
            ))
        );
    }

    use super::super::check::check;
    use super::super::testing::{fails, import_request, one};
    use super::super::HookType;

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
            &InlineResponse::from(create_user()).command("com.okta.user.update", json!({"id": ""})),
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
        let reversed: InlineResponse = link_user("00u1").into_iter().rev().collect();
        check(HookType::Import, &reversed, &r).expect("order does not matter");
    }
}
