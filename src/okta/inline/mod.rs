//! Inline hooks: Okta pauses a sign-in, registration, import or SMS and waits for our answer.
//!
//! This module is the contract as types, usable on its own:
//! - [`HookType`]: the six kinds, with what each allows (commands, 204, retries).
//! - [`InlineRequest`]: the common envelope, generic over each type's `data`
//!   (see the submodules: [`token`], [`registration`], [`import`], [`password`], [`saml`],
//!   [`telephony`]). Lenient: optional fields, numbers as strings, unknown fields kept.
//! - [`InlineResponse`]: `commands`, `error`, `debugContext`, with builders in the style of
//!   Okta's Java hooks SDK. Serialises back to exactly what was parsed (samples round-trip).

pub mod import;
pub mod password;
pub mod registration;
pub mod saml;
pub mod telephony;
pub mod token;

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
        HookType::ALL.into_iter().find(|t| t.event_type() == event_type)
    }

    /// Command types Okta accepts from this hook type.
    pub fn allowed_commands(self) -> &'static [&'static str] {
        match self {
            HookType::Token => &["com.okta.identity.patch", "com.okta.access.patch"],
            HookType::Registration => &[
                "com.okta.action.update",
                "com.okta.user.profile.update",
                "com.okta.user.progressive.profile.update",
            ],
            HookType::Import => &[
                "com.okta.appUser.profile.update",
                "com.okta.user.profile.update",
                "com.okta.action.update",
                "com.okta.user.update",
            ],
            HookType::PasswordImport => &["com.okta.action.update"],
            HookType::Saml => &["com.okta.assertion.patch"],
            HookType::Telephony => &["com.okta.telephony.action"],
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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InlineRequest<D> {
    /// Unique per request; the key of idempotent answers to Okta's retries.
    #[serde(default)]
    pub event_id: Option<String>,
    #[serde(default)]
    pub event_time: Option<String>,
    #[serde(default)]
    pub event_type: Option<String>,
    /// `"1.0"`, or the number `1` in some spec examples.
    #[serde(default)]
    pub event_type_version: Option<StringOrNumber>,
    /// No `s` here (event hooks say `cloudEventsVersion`).
    #[serde(default)]
    pub cloud_event_version: Option<StringOrNumber>,
    #[serde(default)]
    pub content_type: Option<String>,
    /// Its format depends on the type: do not parse it.
    #[serde(default)]
    pub source: Option<String>,
    /// Registration and telephony only.
    #[serde(default)]
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
        self.error.get_or_insert_with(InlineError::default).error_summary = Some(summary.into());
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
        self.debug_context.get_or_insert_with(Map::new).insert(key.into(), value);
        self
    }

    /// True when the answer carries no commands and no error (Okta's default action).
    pub fn is_empty(&self) -> bool {
        self.commands.as_ref().is_none_or(Vec::is_empty) && self.error.is_none()
    }
}
