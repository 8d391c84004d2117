//! Inline hooks: Okta pauses a sign-in, registration, import or SMS and waits for our answer.
//!
//! This module is the contract as types, usable on its own:
//! - [`HookType`]: the six kinds, with what each allows (commands, 204, retries).
//! - [`InlineRequest`]: the common envelope, generic over each type's `data`
//!   (see the submodules: [`token`], [`registration`], [`import`], [`password`], [`saml`],
//!   [`telephony`]). Lenient: optional fields, numbers as strings, unknown fields kept.
//! - [`InlineResponse`]: `commands`, `error`, `debugContext`, with builders in the style of
//!   Okta's Java hooks SDK. Serialises back to exactly what was parsed (samples round-trip).
//! - [`PatchOp`]: the JSON Patch operations of token and SAML answers; [`RequestInfo`],
//!   [`Session`], [`ContextUser`]: the parts of `data.context` several types share.

pub mod answer;
pub mod check;
pub mod import;
pub mod password;
pub mod registration;
pub mod saml;
pub mod settle;
mod shapes;
pub mod telephony;
pub mod token;

#[cfg(test)]
mod testing;

use super::lenient::StringOrNumber;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Okta's limit on an inline hook answer.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// The six inline hook types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookType {
    /// `com.okta.oauth2.tokens.transform`
    Token,
    /// `com.okta.user.pre-registration` (self-service registration and progressive profile)
    Registration,
    /// `com.okta.import.transform`
    Import,
    /// `com.okta.user.credential.password.import`
    PasswordImport,
    /// `com.okta.saml.tokens.transform`
    Saml,
    /// `com.okta.telephony.provider`
    Telephony,
}

impl HookType {
    pub const ALL: [HookType; 6] = [
        HookType::Token,
        HookType::Registration,
        HookType::Import,
        HookType::PasswordImport,
        HookType::Saml,
        HookType::Telephony,
    ];

    /// The request's `eventType`.
    pub fn event_type(self) -> &'static str {
        match self {
            HookType::Token => "com.okta.oauth2.tokens.transform",
            HookType::Registration => "com.okta.user.pre-registration",
            HookType::Import => "com.okta.import.transform",
            HookType::PasswordImport => "com.okta.user.credential.password.import",
            HookType::Saml => "com.okta.saml.tokens.transform",
            HookType::Telephony => "com.okta.telephony.provider",
        }
    }

    /// The name used in configuration (`type = "password_import"`).
    pub fn name(self) -> &'static str {
        match self {
            HookType::Token => "token",
            HookType::Registration => "registration",
            HookType::Import => "import",
            HookType::PasswordImport => "password_import",
            HookType::Saml => "saml",
            HookType::Telephony => "telephony",
        }
    }

    pub fn from_event_type(event_type: &str) -> Option<HookType> {
        HookType::ALL
            .into_iter()
            .find(|t| t.event_type() == event_type)
    }

    /// Command types Okta accepts from this hook type.
    pub fn allowed_commands(self) -> &'static [&'static str] {
        match self {
            HookType::Token => token::COMMANDS,
            HookType::Registration => registration::COMMANDS,
            HookType::Import => import::COMMANDS,
            HookType::PasswordImport => password::COMMANDS,
            HookType::Saml => saml::COMMANDS,
            HookType::Telephony => telephony::COMMANDS,
        }
    }

    /// Whether `answer` says no, in this type's terms (see each type's `is_refusal`).
    pub fn is_refusal(self, answer: &InlineResponse) -> bool {
        match self {
            HookType::Token => token::is_refusal(answer),
            HookType::Registration => registration::is_refusal(answer),
            HookType::Import => import::is_refusal(answer),
            HookType::PasswordImport => password::is_refusal(answer),
            HookType::Saml => saml::is_refusal(answer),
            HookType::Telephony => telephony::is_refusal(answer),
        }
    }

    /// This type's refusal carrying `error`, built from what of `answer` the type keeps
    /// (see each type's `refusal`).
    pub fn refusal(self, error: Option<InlineError>, answer: &InlineResponse) -> InlineResponse {
        match self {
            HookType::Token => token::refusal(error, answer),
            HookType::Registration => registration::refusal(error, answer),
            HookType::Import => import::refusal(error, answer),
            HookType::PasswordImport => password::refusal(error, answer),
            HookType::Saml => saml::refusal(error, answer),
            HookType::Telephony => telephony::refusal(error, answer),
        }
    }

    /// The closed fallback: this type's refusal with `message` as its summary.
    pub fn closed_fallback(self, message: &str) -> InlineResponse {
        self.refusal(
            Some(InlineError::with_summary(message)),
            &InlineResponse::empty(),
        )
    }

    /// The open fallback: `{}`, Okta's default action for every type (the token or
    /// assertion unchanged, the registration allowed, the import going on, the password
    /// UNVERIFIED, the OTP sent through Okta's own providers).
    pub fn open_fallback(self) -> InlineResponse {
        InlineResponse::empty()
    }

    /// Drops from a command's value the keys Okta does not read; returns their names.
    pub(crate) fn tidy(self, command: &mut Command) -> Vec<String> {
        match self {
            HookType::Token => token::tidy(command),
            HookType::Registration => registration::tidy(command),
            HookType::Import => import::tidy(command),
            HookType::PasswordImport => password::tidy(command),
            HookType::Saml => saml::tidy(command),
            HookType::Telephony => telephony::tidy(command),
        }
    }

    /// Whether Okta may retry this type once after a timeout or 5xx (so answers must be
    /// idempotent on `eventId`). Token and telephony are never retried.
    pub fn retried_by_okta(self) -> bool {
        !matches!(self, HookType::Token | HookType::Telephony)
    }

    /// Whether an empty answer may be sent as 204. The contract prefers 200 `{}` for token
    /// (its 204 is declared by copy-paste in the spec) and telephony does not declare it.
    pub fn allows_204(self) -> bool {
        !matches!(self, HookType::Token | HookType::Telephony)
    }
}

impl std::fmt::Display for HookType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The envelope common to every inline hook request; `D` is the type's `data`.
///
/// Absent fields stay absent when the request is serialised again, so that a parsed
/// request (for example one handed on to a forward target) is the JSON Okta sent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InlineRequest<D> {
    /// Unique per request; the key of idempotent answers to Okta's retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// `"1.0"`, or the number `1` in some spec examples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type_version: Option<StringOrNumber>,
    /// No `s` here (event hooks say `cloudEventsVersion`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_event_version: Option<StringOrNumber>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Its format depends on the type: do not parse it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Registration and telephony only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_type: Option<String>,
    pub data: D,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The answer Okta accepts from every inline hook.
///
/// `Option`s keep absent and empty apart, so that a parsed answer serialises back to
/// the same JSON (Okta's samples round-trip).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InlineResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands: Option<Vec<Command>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<InlineError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug_context: Option<Map<String, Value>>,
}

/// One command: `{"type": "...", "value": ...}`; the value's shape depends on the type.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Command {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub value: Value,
}

/// `error`: what Okta shows or logs, per hook type.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InlineError {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_causes: Option<Vec<ErrorCause>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ErrorCause {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_summary: Option<String>,
    /// Enum-like, e.g. `INVALID_EMAIL_DOMAIN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `body`, `header`, `url` or `query`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_type: Option<String>,
    /// A JSON path such as `data.userProfile.email`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// e.g. `end-user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

impl InlineError {
    /// An error with this summary and no causes.
    pub fn with_summary(summary: impl Into<String>) -> Self {
        InlineError {
            error_summary: Some(summary.into()),
            error_causes: None,
        }
    }
}

impl InlineResponse {
    /// The empty success answer, `{}`: Okta's default action.
    pub fn empty() -> Self {
        InlineResponse::default()
    }

    /// Appends a command.
    pub fn command(mut self, kind: impl Into<String>, value: Value) -> Self {
        self.commands.get_or_insert_with(Vec::new).push(Command {
            kind: kind.into(),
            value,
        });
        self
    }

    /// Sets `error.errorSummary`.
    pub fn error(mut self, summary: impl Into<String>) -> Self {
        self.error
            .get_or_insert_with(InlineError::default)
            .error_summary = Some(summary.into());
        self
    }

    /// Appends an `errorCauses[]` entry.
    pub fn error_cause(mut self, cause: ErrorCause) -> Self {
        self.error
            .get_or_insert_with(InlineError::default)
            .error_causes
            .get_or_insert_with(Vec::new)
            .push(cause);
        self
    }

    /// Sets one `debugContext` entry (copied by Okta into the System Log).
    pub fn debug(mut self, key: impl Into<String>, value: Value) -> Self {
        self.debug_context
            .get_or_insert_with(Map::new)
            .insert(key.into(), value);
        self
    }

    /// An answer of this `error` and nothing else: the refusal of the types that say no
    /// with an error alone (token, import, SAML).
    pub fn error_alone(error: InlineError) -> Self {
        InlineResponse {
            error: Some(error),
            ..InlineResponse::default()
        }
    }

    /// True when the answer carries no commands and no error (Okta's default action).
    pub fn is_empty(&self) -> bool {
        self.commands.as_ref().is_none_or(Vec::is_empty) && self.error.is_none()
    }
}

impl Command {
    /// A command of any type; the per-type modules have builders that get the value right.
    pub fn new(kind: impl Into<String>, value: Value) -> Self {
        Command {
            kind: kind.into(),
            value,
        }
    }
}

impl InlineResponse {
    /// Appends a command made by one of the per-type builders
    /// (`token::identity_patch`, `registration::deny`, ...).
    pub fn with(mut self, command: Command) -> Self {
        self.commands.get_or_insert_with(Vec::new).push(command);
        self
    }

    /// Appends several commands in order (Okta runs them in array order), for builders
    /// that must send two together such as `import::link_user`.
    pub fn with_all(mut self, commands: impl IntoIterator<Item = Command>) -> Self {
        self.commands.get_or_insert_with(Vec::new).extend(commands);
        self
    }
}

impl From<Command> for InlineResponse {
    fn from(command: Command) -> Self {
        InlineResponse::empty().with(command)
    }
}

impl FromIterator<Command> for InlineResponse {
    fn from_iter<I: IntoIterator<Item = Command>>(commands: I) -> Self {
        InlineResponse::empty().with_all(commands)
    }
}

impl ErrorCause {
    /// A cause that points at one field of the request, e.g.
    /// `ErrorCause::at("data.userProfile.email", "Only example.com emails can register.")`:
    /// the Sign-In Widget shows such a summary next to that field (registration).
    pub fn at(location: impl Into<String>, summary: impl Into<String>) -> Self {
        ErrorCause {
            error_summary: Some(summary.into()),
            location_type: Some("body".to_owned()),
            location: Some(location.into()),
            domain: Some("end-user".to_owned()),
            reason: None,
        }
    }

    /// Sets `reason`, an enum-like string such as `INVALID_EMAIL_DOMAIN`.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

/// One JSON Patch operation, as the token and SAML hooks take them in a command's
/// `value` array (Okta's Java SDK calls it `PatchOperation`).
///
/// The path is a JSON Pointer into the token (`/claims/...`, `/token/lifetime/expiration`)
/// or the assertion (`/subject/...`, `/claims/...`); build claim paths with
/// [`pointer_segment`] so that names holding `/` or `~` (URI claims) are escaped.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PatchOp {
    pub op: PatchOpKind,
    pub path: String,
    /// Absent for `remove`: Okta fails the whole patch on a remove with a non-null value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// The operations Okta implements; SAML takes only `add` and `replace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PatchOpKind {
    /// Adds a claim, an object member or an array element (`-` appends); adding an
    /// existing claim replaces it.
    Add,
    /// Changes something that already exists.
    Replace,
    /// Token hook only.
    Remove,
}

impl PatchOp {
    pub fn add(path: impl Into<String>, value: Value) -> Self {
        PatchOp {
            op: PatchOpKind::Add,
            path: path.into(),
            value: Some(value),
        }
    }

    pub fn replace(path: impl Into<String>, value: Value) -> Self {
        PatchOp {
            op: PatchOpKind::Replace,
            path: path.into(),
            value: Some(value),
        }
    }

    pub fn remove(path: impl Into<String>) -> Self {
        PatchOp {
            op: PatchOpKind::Remove,
            path: path.into(),
            value: None,
        }
    }
}

/// Escapes one JSON Pointer segment (RFC 6901: `~` as `~0`, `/` as `~1`), as Okta
/// requires for URI claim names such as `http://schemas.xmlsoap.org/.../claims/foo`.
pub fn pointer_segment(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// A patch command's `value`: the operations as a JSON array.
fn patch_value(ops: Vec<PatchOp>) -> Value {
    // Cannot fail: plain data with string keys.
    serde_json::to_value(ops).unwrap_or_default()
}

// Pieces of `data.context` shared by several hook types. Every field is optional and
// every object keeps unknown fields in `extra`, so that a request serialises back to
// what Okta sent and nothing a newer Okta adds is lost.

/// `data.context.request`: the end user's HTTP request that made Okta call us.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RequestInfo {
    /// Okta's request id (as in the System Log), for correlating with Okta's logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// A path (`/idp/idx/enroll/new`) or a full URL depending on the type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<UrlValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Okta wraps the URL in an object: `{"value": "..."}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct UrlValue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `data.context.session` (token and SAML hooks): the Okta session behind the sign-in.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_password_verification: Option<String>,
    /// Authentication methods, e.g. `["PASSWORD"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp: Option<SessionIdp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_active: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The identity provider of a session: `OKTA`, `FEDERATION`, `SOCIAL`, ...
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SessionIdp {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `data.context.user` (token, SAML, progressive profile): the Okta user as it is now.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContextUser {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_changed: Option<String>,
    /// The Okta profile: any attributes the org's schema has, of any JSON type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Map<String, Value>>,
    #[serde(default, rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Map<String, Value>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `{"expiration": seconds}`: how long a token or assertion is valid.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Lifetime {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<i64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A `data.context` that carries only the end user's request (registration SSR,
/// telephony).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RequestContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestInfo>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Parses a sample request into its type and checks that it serialises back to the same
/// JSON (unknown fields kept, absent fields left absent). Shared by each type's tests.
#[cfg(test)]
pub(crate) fn test_roundtrip<T: serde::de::DeserializeOwned + Serialize>(sample: &str) -> T {
    let raw: Value = serde_json::from_str(sample).expect("sample is JSON");
    let typed: T = serde_json::from_value(raw.clone()).expect("typed request");
    assert_eq!(
        serde_json::to_value(&typed).expect("serialise"),
        raw,
        "the typed request serialises back to the sample"
    );
    typed
}
