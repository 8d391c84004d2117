//! User import inline hook (`com.okta.import.transform`): an app import is about to
//! create or link one Okta user, and Okta lets us change the profiles and the decision.
//!
//! Called once per imported user, after mapping and matching. The request carries the
//! app user's profile, the Okta profile it maps to, and Okta's decision in
//! `data.action.result` (`CREATE_USER` or `LINK_USER`). The answer may change either
//! profile, or the decision; linking needs the Okta user's id as a second command, so
//! [`link_user`] always builds the pair.

use super::{Command, InlineRequest, InlineResponse};
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
    [
        action(LINK_USER),
        Command::new(
            USER_UPDATE,
            Value::Object(Map::from_iter([(
                "id".to_owned(),
                Value::String(okta_user_id.into()),
            )])),
        ),
    ]
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
}
