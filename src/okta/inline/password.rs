//! Password import inline hook (`com.okta.user.credential.password.import`): a user
//! migrated without a password hash is signing in for the first time, and Okta asks us
//! whether the password they typed is right.
//!
//! The request carries the **plaintext password** (`data.context.credential.password`),
//! held here in a [`Password`] whose `Debug` prints `[REDACTED]` so that it cannot reach
//! a log through `{:?}`. The answer is one command, [`verified`] or [`unverified`];
//! on `VERIFIED` Okta stores the password and stops calling for that user. Okta's
//! password policy is not applied to it.

use super::shapes::{check_enum_object, one_action, retain_keys, At, CheckError};
use super::{Command, InlineError, InlineRequest, InlineResponse, RequestInfo};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// A password import hook request.
pub type PasswordImportRequest = InlineRequest<PasswordImportData>;

/// The only command: value `{"credential": "VERIFIED"|"UNVERIFIED"}`.
pub const ACTION_UPDATE: &str = "com.okta.action.update";
/// The password is right: Okta keeps it.
pub const VERIFIED: &str = "VERIFIED";
/// The password is wrong (also Okta's default, and what a 204 means).
pub const UNVERIFIED: &str = "UNVERIFIED";

/// `data` of a password import request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PasswordImportData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<PasswordContext>,
    /// `{"credential": "UNVERIFIED"}`: the default Okta will apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<CredentialAction>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `data.context`: the sign-in request and the credentials typed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PasswordContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<Credential>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What the user typed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Credential {
    /// The Okta login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Password>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CredentialAction {
    /// `UNVERIFIED` in every request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A plaintext password from Okta: `Debug` prints `[REDACTED]`, the memory is wiped on
/// drop, and reading it takes an explicit [`Password::expose`].
///
/// It does serialise as the plain string: the typed request must serialise back to
/// what Okta sent (a forward handler passes it on to the service that checks the
/// password). Never serialise a request into a log.
#[derive(Clone)]
pub struct Password(SecretString);

impl Password {
    /// The password, for comparing it with the old store's hash.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl From<String> for Password {
    fn from(password: String) -> Self {
        Password(SecretString::from(password))
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        SecretString::deserialize(d).map(Password)
    }
}

impl Serialize for Password {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.expose())
    }
}

impl PasswordImportRequest {
    /// The login and password typed, when both are there.
    pub fn credentials(&self) -> Option<(&str, &Password)> {
        let credential = self.data.context.as_ref()?.credential.as_ref()?;
        Some((
            credential.username.as_deref()?,
            credential.password.as_ref()?,
        ))
    }
}

/// The password is right: Okta stores it and signs the user in.
pub fn verified() -> Command {
    credential(VERIFIED)
}

/// The password is wrong: the sign-in fails and Okta asks again next time.
pub fn unverified() -> Command {
    credential(UNVERIFIED)
}

fn credential(result: &str) -> Command {
    Command::new(
        ACTION_UPDATE,
        Value::Object(Map::from_iter([(
            "credential".to_owned(),
            Value::String(result.to_owned()),
        )])),
    )
}

// ------------------------------------------------------------------------------------------
// The answer's contract: what Okta takes, and what a refusal is
// ------------------------------------------------------------------------------------------

/// The command types a password import hook answer may carry.
pub const COMMANDS: &[&str] = &[ACTION_UPDATE];

/// Checks the one command: `{"credential": "VERIFIED"|"UNVERIFIED"}`.
pub(super) fn check_command(at: &At) -> Result<(), CheckError> {
    check_enum_object(at, "credential", &[VERIFIED, UNVERIFIED])
}

/// Checks what concerns the whole answer: one verdict at most, and no `error` (Okta
/// documents none for this type: UNVERIFIED is how it says no).
pub(super) fn check_answer(answer: &InlineResponse) -> Result<(), CheckError> {
    if answer.error.is_some() {
        return Err(CheckError(
            "error: Okta documents no error object for password import; a refusal is UNVERIFIED"
                .to_owned(),
        ));
    }
    one_action(answer, ACTION_UPDATE)
}

/// Whether the answer refuses: UNVERIFIED, or an `error` (which this type cannot send).
pub fn is_refusal(answer: &InlineResponse) -> bool {
    answer.error.is_some()
        || answer.commands.iter().flatten().any(|c| {
            c.kind == ACTION_UPDATE
                && c.value.get("credential").and_then(Value::as_str) == Some(UNVERIFIED)
        })
}

/// The password import hook's refusal: UNVERIFIED alone. The sign-in fails, the password
/// is not imported and Okta asks again at the next sign-in. A handler's `error` summary
/// is not sent (Okta documents no error object here); the caller logs it.
pub fn refusal(_error: Option<InlineError>, _answer: &InlineResponse) -> InlineResponse {
    InlineResponse::from(unverified())
}

/// Drops what Okta does not read from the verdict (anything beside `credential`).
pub(super) fn tidy(command: &mut Command) -> Vec<String> {
    if command.kind == ACTION_UPDATE && command.value.get("credential").is_some() {
        return retain_keys(&mut command.value, &["credential"]);
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::super::InlineResponse;
    use super::*;
    use serde_json::json;

    fn roundtrip(sample: &str) -> PasswordImportRequest {
        super::super::test_roundtrip(sample)
    }

    fn sample(text: &str) -> Value {
        serde_json::from_str(text).expect("sample is JSON")
    }

    #[test]
    fn docs_request() {
        let r = roundtrip(include_str!(
            "../../../tests/fixtures/okta/password-import-request.json"
        ));
        let (user, password) = r.credentials().expect("credentials");
        assert_eq!(user, "isaac.brock@example.com");
        assert_eq!(password.expose(), "Okta");
        assert_eq!(
            r.data.action.as_ref().and_then(|a| a.credential.as_deref()),
            Some(UNVERIFIED)
        );
        let url = r.data.context.as_ref().and_then(|c| c.request.as_ref());
        let url = url
            .and_then(|r| r.url.as_ref())
            .and_then(|u| u.value.as_deref());
        assert_eq!(url, Some("/api/v1/authn"));
    }

    #[test]
    fn identity_engine_request() {
        let r = roundtrip(include_str!(
            "../../../tests/fixtures/okta/password-import-request-idx.json"
        ));
        let url = r.data.context.as_ref().and_then(|c| c.request.as_ref());
        let url = url
            .and_then(|r| r.url.as_ref())
            .and_then(|u| u.value.as_deref());
        assert_eq!(url, Some("/idp/idx/challenge/answer"));
        assert!(r.credentials().is_some());
    }

    #[test]
    fn debug_never_shows_the_password() {
        let r = roundtrip(include_str!(
            "../../../tests/fixtures/okta/password-import-request.json"
        ));
        let printed = format!("{r:?} {:#?}", r.data);
        assert!(printed.contains("[REDACTED]"), "{printed}");
        assert!(!printed.contains("\"Okta\""), "{printed}");
        let (_, password) = r.credentials().expect("credentials");
        assert_eq!(format!("{password:?}"), "[REDACTED]");
    }

    #[test]
    fn builders_match_the_samples() {
        assert_eq!(
            serde_json::to_value(InlineResponse::from(verified())).expect("json"),
            sample(include_str!(
                "../../../tests/fixtures/okta/password-import-response-verified.json"
            ))
        );
        assert_eq!(
            serde_json::to_value(InlineResponse::from(unverified())).expect("json"),
            sample(include_str!(
                "../../../tests/fixtures/okta/password-import-response-unverified.json"
            ))
        );
    }

    use super::super::testing::{fails, one, password_request};
    use super::super::HookType;

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
}
