//! Registration inline hook (`com.okta.user.pre-registration`): a user is registering
//! (self-service registration, SSR) or completing their profile (progressive profile),
//! and Okta waits for us to allow, deny or change it.
//!
//! One hook type, three shapes of request, told apart by `requestType`:
//! - `self.service.registration`: the form in `data.userProfile`;
//! - `progressive.profile`: only the changed attributes in `data.userProfileUpdate`,
//!   with the current user in `data.context.user`;
//! - no `requestType` (Classic Engine, `data.action` null): treated as SSR, as the
//!   contract says (§5.11).
//!
//! The answer: `com.okta.action.update` `{"registration": "ALLOW"|"DENY"}`, and a profile
//! update whose command type must match the request's shape ([`update_profile_for`]
//! picks it). Any `error` object makes Okta deny and run no commands.

use super::shapes::{
    check_enum_object, check_profile_object, one_action, retain_keys, At, CheckError,
};
use super::{
    Command, ContextUser, ErrorCause, InlineError, InlineRequest, InlineResponse, RequestInfo,
};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// A registration hook request (SSR, progressive profile or Classic).
pub type RegistrationRequest = InlineRequest<RegistrationData>;

/// `requestType` of a self-service registration.
pub const SELF_SERVICE_REGISTRATION: &str = "self.service.registration";
/// `requestType` of a progressive profile update.
pub const PROGRESSIVE_PROFILE: &str = "progressive.profile";
/// Allows or denies: value `{"registration": "ALLOW"|"DENY"}`.
pub const ACTION_UPDATE: &str = "com.okta.action.update";
/// Sets attributes of the new user's profile; SSR only.
pub const PROFILE_UPDATE: &str = "com.okta.user.profile.update";
/// Sets attributes in a progressive profile update; progressive profile only.
pub const PROGRESSIVE_PROFILE_UPDATE: &str = "com.okta.user.progressive.profile.update";

/// `data` of a registration request, all three shapes in one.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<RegistrationContext>,
    /// SSR and Classic: the registration form (firstName, lastName, login, email and
    /// custom attributes). Passwords and sensitive attributes are never sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_profile: Option<Map<String, Value>>,
    /// Progressive profile: only the attributes the user is changing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_profile_update: Option<Map<String, Value>>,
    /// `"ALLOW"` in Identity Engine (never `"DENY"`), `null` in Classic Engine. The outer
    /// `Option` is whether the field was sent, so that a Classic request's `null`
    /// serialises back as `null`; read it with [`RegistrationData::action`].
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub action: Option<Option<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `data.context`: the end user's request and, for progressive profile, the user.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RegistrationContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestInfo>,
    /// Progressive profile: the user as stored now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<ContextUser>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Marks a field that was sent, even as `null` (serde calls this only when it is there).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

impl RegistrationData {
    /// `data.action` as text, whether it was absent or `null`.
    pub fn action(&self) -> Option<&str> {
        self.action.as_ref().and_then(|a| a.as_deref())
    }
}

impl RegistrationRequest {
    /// Whether this is a progressive profile update (`requestType: progressive.profile`).
    /// Anything else, including no `requestType` at all (Classic Engine), is a
    /// registration and takes `com.okta.user.profile.update`.
    pub fn is_progressive_profile(&self) -> bool {
        self.request_type.as_deref() == Some(PROGRESSIVE_PROFILE)
    }

    /// The attributes the user submitted: the form (SSR) or the changes (progressive
    /// profile).
    pub fn submitted(&self) -> Option<&Map<String, Value>> {
        if self.is_progressive_profile() {
            self.data.user_profile_update.as_ref()
        } else {
            self.data.user_profile.as_ref()
        }
    }
}

/// Lets the registration or profile update proceed (also Okta's default).
pub fn allow() -> Command {
    action("ALLOW")
}

/// Refuses the registration or profile update. Without an `error` the user sees
/// "Registration denied." / "Profile update denied."; add one with [`deny_because`].
pub fn deny() -> Command {
    action("DENY")
}

fn action(registration: &str) -> Command {
    Command::new(
        ACTION_UPDATE,
        Value::Object(Map::from_iter([(
            "registration".to_owned(),
            Value::String(registration.to_owned()),
        )])),
    )
}

/// A denial the user can act on: `summary` as the error, and each `(location, message)`
/// shown by the Sign-In Widget next to the field that `location` names
/// (e.g. `data.userProfile.email`).
pub fn deny_because<'a>(
    summary: impl Into<String>,
    causes: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> InlineResponse {
    causes.into_iter().fold(
        InlineResponse::empty().with(deny()).error(summary),
        |answer, (location, message)| answer.error_cause(ErrorCause::at(location, message)),
    )
}

/// Sets attributes of the registering user's profile (SSR only; they must exist in the
/// profile schema, and the password cannot be set).
pub fn update_profile(attributes: Map<String, Value>) -> Command {
    Command::new(PROFILE_UPDATE, Value::Object(attributes))
}

/// Sets attributes in a progressive profile update (progressive profile only).
pub fn update_progressive_profile(attributes: Map<String, Value>) -> Command {
    Command::new(PROGRESSIVE_PROFILE_UPDATE, Value::Object(attributes))
}

/// The profile update that `request` accepts: Okta rejects the other one.
pub fn update_profile_for(
    request: &RegistrationRequest,
    attributes: Map<String, Value>,
) -> Command {
    if request.is_progressive_profile() {
        update_progressive_profile(attributes)
    } else {
        update_profile(attributes)
    }
}

// ------------------------------------------------------------------------------------------
// The answer's contract: what Okta takes, and what a refusal is
// ------------------------------------------------------------------------------------------

/// The command types a registration hook answer may carry.
pub const COMMANDS: &[&str] = &[ACTION_UPDATE, PROFILE_UPDATE, PROGRESSIVE_PROFILE_UPDATE];

/// Checks one command: the action's one key, and the profile update that matches the
/// request's shape (SSR or progressive profile).
pub(super) fn check_command(at: &At, request: &Value) -> Result<(), CheckError> {
    let progressive =
        request.get("requestType").and_then(Value::as_str) == Some(PROGRESSIVE_PROFILE);
    match at.command.kind.as_str() {
        ACTION_UPDATE => {
            if at.value().get("action").is_some() && at.value().get("registration").is_none() {
                return Err(at.fail(
                    "the key is \"registration\", not \"action\" (the spec's prose is wrong; Okta's samples and SDK use \"registration\")",
                ));
            }
            check_enum_object(at, "registration", &["ALLOW", "DENY"])
        }
        PROFILE_UPDATE if progressive => Err(at.fail(format!(
            "this is a progressive profile request: use {}",
            PROGRESSIVE_PROFILE_UPDATE
        ))),
        PROGRESSIVE_PROFILE_UPDATE if !progressive => Err(at.fail(format!(
            "this is a registration request, not a progressive profile one: use {}",
            PROFILE_UPDATE
        ))),
        _ => check_profile_object(at),
    }
}

/// Checks what concerns the whole answer: one decision at most (Okta runs both of two,
/// and the last would decide), and no ALLOW beside an `error` (Okta denies on any error,
/// so the answer says yes and no at once).
pub(super) fn check_answer(answer: &InlineResponse) -> Result<(), CheckError> {
    one_action(answer, ACTION_UPDATE)?;
    let allows = answer.commands.iter().flatten().any(|c| {
        c.kind == ACTION_UPDATE
            && c.value.get("registration").and_then(Value::as_str) == Some("ALLOW")
    });
    if answer.error.is_some() && allows {
        return Err(CheckError(
            "an ALLOW beside an error: Okta denies on any error, so send DENY".to_owned(),
        ));
    }
    Ok(())
}

/// Whether the answer refuses: any `error` (Okta then runs no command and denies), or a
/// DENY, also under the `action` key of the spec's prose.
pub fn is_refusal(answer: &InlineResponse) -> bool {
    answer.error.is_some()
        || answer.commands.iter().flatten().any(|c| {
            c.kind == ACTION_UPDATE
                && ["registration", "action"]
                    .iter()
                    .any(|k| c.value.get(k).and_then(Value::as_str) == Some("DENY"))
        })
}

/// The registration hook's refusal: DENY, with the handler's `error` when it gave one
/// (the Sign-In Widget shows its summary, and each cause under the field it names;
/// without one the user reads "Registration denied." / "Profile update denied.").
pub fn refusal(error: Option<InlineError>, _answer: &InlineResponse) -> InlineResponse {
    InlineResponse {
        commands: Some(vec![deny()]),
        error,
        debug_context: None,
    }
}

/// Drops what Okta does not read from the decision (anything beside `registration`).
pub(super) fn tidy(command: &mut Command) -> Vec<String> {
    match command.kind.as_str() {
        ACTION_UPDATE if command.value.get("registration").is_some() => {
            retain_keys(&mut command.value, &["registration"])
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn roundtrip(sample: &str) -> RegistrationRequest {
        super::super::test_roundtrip(sample)
    }

    fn sample(text: &str) -> Value {
        serde_json::from_str(text).expect("sample is JSON")
    }

    #[test]
    fn ssr_request_sample() {
        let r = roundtrip(include_str!(
            "../../../tests/fixtures/okta/registration-hook-request-ssr.json"
        ));
        assert!(!r.is_progressive_profile());
        assert_eq!(r.request_type.as_deref(), Some(SELF_SERVICE_REGISTRATION));
        assert_eq!(r.data.action(), Some("ALLOW"));
        assert_eq!(
            r.submitted().and_then(|p| p.get("email")),
            Some(&json!("rosario.jones@example.com"))
        );
        let url = r.data.context.as_ref().and_then(|c| c.request.as_ref());
        let url = url
            .and_then(|r| r.url.as_ref())
            .and_then(|u| u.value.as_deref());
        assert_eq!(url, Some("/idp/idx/enroll/new"));
    }

    #[test]
    fn progressive_profile_request() {
        let r = roundtrip(include_str!(
            "../../../tests/fixtures/okta/registration-hook-request-progressive-profile.json"
        ));
        assert!(r.is_progressive_profile());
        assert_eq!(
            r.submitted().and_then(|p| p.get("employeeNumber")),
            Some(&json!("1234"))
        );
        assert!(r.data.user_profile.is_none());
        let user = r
            .data
            .context
            .as_ref()
            .and_then(|c| c.user.as_ref())
            .expect("user");
        assert_eq!(user.id.as_deref(), Some("00u48gwcu01WxvNo"));
        assert!(user
            .links
            .as_ref()
            .is_some_and(|l| l.contains_key("groups")));
    }

    #[test]
    fn classic_request_is_ssr_with_null_action() {
        let r = roundtrip(include_str!(
            "../../../tests/fixtures/okta/registration-hook-request-classic.json"
        ));
        assert!(r.request_type.is_none());
        assert!(!r.is_progressive_profile());
        assert_eq!(r.data.action, Some(None), "null kept apart from absent");
        assert_eq!(r.data.action(), None);
        assert_eq!(
            r.submitted().and_then(|p| p.get("login")),
            Some(&json!("john.doe@example.com"))
        );
    }

    #[test]
    fn absent_action_stays_absent() {
        let raw = json!({"requestType": "self.service.registration", "data": {"userProfile": {}}});
        let typed: RegistrationRequest = serde_json::from_value(raw.clone()).expect("typed");
        assert_eq!(typed.data.action, None);
        assert_eq!(serde_json::to_value(&typed).expect("serialise"), raw);
    }

    #[test]
    fn builders_match_the_samples() {
        let deny_minimal = InlineResponse::from(deny());
        assert_eq!(
            serde_json::to_value(&deny_minimal).expect("json"),
            sample(include_str!(
                "../../../tests/fixtures/okta/registration-hook-response-deny-minimal.json"
            ))
        );
        // The docs' denial, cause and reason included.
        let expected = sample(include_str!(
            "../../../tests/fixtures/okta/registration-hook-response-deny.json"
        ));
        let full = InlineResponse::from(deny())
            .error("Incorrect email address. Please contact your admin.")
            .error_cause(
                ErrorCause::at(
                    "data.userProfile.email",
                    "Only example.com emails can register.",
                )
                .reason("INVALID_EMAIL_DOMAIN"),
            );
        assert_eq!(serde_json::to_value(&full).expect("json"), expected);
        // The short form builds the same answer without a reason.
        let short = deny_because(
            "Incorrect email address. Please contact your admin.",
            [(
                "data.userProfile.email",
                "Only example.com emails can register.",
            )],
        );
        let mut without_reason = full;
        if let Some(cause) = without_reason
            .error
            .as_mut()
            .and_then(|e| e.error_causes.as_mut())
            .and_then(|c| c.first_mut())
        {
            cause.reason = None;
        }
        assert_eq!(short, without_reason);

        let ssr = roundtrip(include_str!(
            "../../../tests/fixtures/okta/registration-hook-request-ssr.json"
        ));
        let pp = roundtrip(include_str!(
            "../../../tests/fixtures/okta/registration-hook-request-progressive-profile.json"
        ));
        let attrs = Map::from_iter([("employeeNumber".to_owned(), json!("1234"))]);
        assert_eq!(
            update_profile_for(&pp, attrs.clone()).kind,
            PROGRESSIVE_PROFILE_UPDATE
        );
        assert_eq!(update_profile_for(&ssr, attrs.clone()).kind, PROFILE_UPDATE);
        assert_eq!(
            serde_json::to_value(InlineResponse::from(update_progressive_profile(attrs)))
                .expect("json"),
            sample(include_str!(
                "../../../tests/fixtures/okta/registration-hook-response-pp-update.json"
            ))
        );
        assert_eq!(allow().value, json!({"registration": "ALLOW"}));
    }

    use super::super::check::check;
    use super::super::testing::{classic_request, fails, one, pp_request, ssr_request};
    use super::super::HookType;

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
        check(HookType::Registration, &InlineResponse::from(allow()), &pp).expect("allow");
    }
}
