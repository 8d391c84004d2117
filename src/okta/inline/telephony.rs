//! Telephony inline hook (`com.okta.telephony.provider`): Okta hands us a one-time
//! passcode to deliver by SMS or voice call through our own provider.
//!
//! The request carries the user and the message (`data.messageProfile`: phone number,
//! OTP, template, channel). The answer is one `com.okta.telephony.action` command whose
//! value is an **array** of `{status, provider, transactionId, transactionMetadata}`.
//! Anything else (an `error`, a malformed answer, a timeout) makes Okta send the OTP
//! through its own, heavily rate-limited providers, and the hook is never retried.

use super::shapes::{check_optional_strings, kind_of, retain_keys, At, CheckError};
use super::{Command, InlineError, InlineRequest, InlineResponse, RequestContext};
use crate::okta::lenient::StringOrNumber;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A telephony hook request.
pub type TelephonyRequest = InlineRequest<TelephonyData>;

/// The only command type.
pub const TELEPHONY_ACTION: &str = "com.okta.telephony.action";
/// `requestType` values: why Okta is sending an OTP.
pub const PRE_ENROLLMENT: &str = "com.okta.user.telephony.pre-enrollment";
pub const MFA_VERIFICATION: &str = "com.okta.user.telephony.mfa-verification";
pub const ACCOUNT_UNLOCK: &str = "com.okta.user.telephony.account-unlock";
pub const PASSWORD_RESET: &str = "com.okta.user.telephony.password-reset";

/// `data` of a telephony request.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TelephonyData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<RequestContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_profile: Option<TelephonyUser>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_profile: Option<MessageProfile>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `data.userProfile`: who receives the code.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TelephonyUser {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `data.messageProfile`: what to send, where, how.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MessageProfile {
    /// The SMS text with the code in it (not used for voice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_template: Option<String>,
    /// A string in the docs, a JSON number in the spec's example.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<StringOrNumber>,
    /// When the code expires (ISO 8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otp_expires: Option<String>,
    /// `SMS` or `voice call`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_channel: Option<String>,
    /// A string in the docs, a JSON number in the spec's example (which would drop
    /// leading zeros: read it with [`StringOrNumber::as_string`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otp_code: Option<StringOrNumber>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl TelephonyRequest {
    /// Whether Okta asks for a voice call rather than an SMS.
    pub fn is_voice(&self) -> bool {
        self.data
            .message_profile
            .as_ref()
            .and_then(|m| m.delivery_channel.as_deref())
            .is_some_and(|c| c.eq_ignore_ascii_case("voice call"))
    }
}

/// What became of the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DeliveryStatus {
    /// The provider delivered the OTP.
    Successful,
    /// The provider accepted it but cannot confirm delivery.
    Pending,
    /// The provider could not deliver it.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Successful => "SUCCESSFUL",
            DeliveryStatus::Pending => "PENDING",
            DeliveryStatus::Failed => "FAILED",
        }
    }
}

/// One element of the action's value array. Only `status` is required by Okta.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TelephonyAction {
    pub status: DeliveryStatus,
    /// The provider's name, e.g. `VONAGE`; shown in the System Log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The provider's message id, for tracing one SMS across both systems.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// Free text, e.g. `Duration=300ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_metadata: Option<String>,
}

impl TelephonyAction {
    pub fn new(status: DeliveryStatus) -> Self {
        TelephonyAction {
            status,
            provider: None,
            transaction_id: None,
            transaction_metadata: None,
        }
    }

    pub fn provider(mut self, provider: impl Into<String>) -> Self {
        self.provider = Some(provider.into());
        self
    }

    pub fn transaction_id(mut self, id: impl Into<String>) -> Self {
        self.transaction_id = Some(id.into());
        self
    }

    pub fn transaction_metadata(mut self, metadata: impl Into<String>) -> Self {
        self.transaction_metadata = Some(metadata.into());
        self
    }

    /// The command carrying this result, its value wrapped in the array Okta expects.
    pub fn into_command(self) -> Command {
        // Cannot fail: plain data with string keys.
        let item = serde_json::to_value(self).unwrap_or_default();
        Command::new(TELEPHONY_ACTION, Value::Array(vec![item]))
    }
}

/// The usual answer: the delivery's status, the provider and its transaction id.
pub fn action(
    status: DeliveryStatus,
    provider: impl Into<String>,
    transaction_id: impl Into<String>,
) -> Command {
    TelephonyAction::new(status)
        .provider(provider)
        .transaction_id(transaction_id)
        .into_command()
}

// ------------------------------------------------------------------------------------------
// The answer's contract: what Okta takes, and what a refusal is
// ------------------------------------------------------------------------------------------

/// The command types a telephony hook answer may carry.
pub const COMMANDS: &[&str] = &[TELEPHONY_ACTION];

/// The keys of one action object.
const ACTION_KEYS: [&str; 4] = ["status", "provider", "transactionId", "transactionMetadata"];

/// The provider named by a refusal that did not name its own.
pub const REFUSAL_PROVIDER: &str = "hookwarden";

/// Checks the one command: an array of `{status, provider, transactionId,
/// transactionMetadata}` with a status Okta knows.
pub(super) fn check_command(at: &At) -> Result<(), CheckError> {
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
        DeliveryStatus::Successful.as_str(),
        DeliveryStatus::Pending.as_str(),
        DeliveryStatus::Failed.as_str(),
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

/// Checks what concerns the whole answer: one delivery result. Okta reads one; a
/// SUCCESSFUL beside a FAILED would leave to chance whether the code counts as sent, and
/// beside an `error` (on which Okta sends the code itself) would say it was sent twice.
pub(super) fn check_answer(answer: &InlineResponse) -> Result<(), CheckError> {
    let statuses: Vec<&str> = action_items(answer)
        .filter_map(|i| i.get("status").and_then(Value::as_str))
        .collect();
    match statuses.split_first() {
        Some((first, rest)) if rest.iter().any(|s| s != first) => Err(CheckError(format!(
            "the delivery results disagree ({}): send one status",
            statuses.join(", ")
        ))),
        Some((first, _)) if answer.error.is_some() && *first != DeliveryStatus::Failed.as_str() => {
            Err(CheckError(format!(
                "a {first} delivery beside an error: on an error Okta sends the code itself"
            )))
        }
        _ => Ok(()),
    }
}

/// Whether the answer refuses: a FAILED delivery, or an `error`.
pub fn is_refusal(answer: &InlineResponse) -> bool {
    answer.error.is_some()
        || action_items(answer).any(|i| {
            i.get("status").and_then(Value::as_str) == Some(DeliveryStatus::Failed.as_str())
        })
}

/// The objects of every telephony action of an answer, however well-formed.
fn action_items(answer: &InlineResponse) -> impl Iterator<Item = &Value> {
    answer
        .commands
        .iter()
        .flatten()
        .filter(|c| c.kind == TELEPHONY_ACTION)
        .filter_map(|c| c.value.as_array())
        .flatten()
}

/// The telephony hook's refusal: a FAILED action (the handler's own first FAILED item
/// when it is well-formed, else one naming [`REFUSAL_PROVIDER`]) and the handler's
/// `error`. Okta then sends the one-time passcode through its own providers: the refusal
/// records the decision in the System Log, it cannot stop the message.
pub fn refusal(error: Option<InlineError>, answer: &InlineResponse) -> InlineResponse {
    let own = action_items(answer)
        .filter_map(|i| serde_json::from_value::<TelephonyAction>(i.clone()).ok())
        .find(|a| a.status == DeliveryStatus::Failed);
    let action = own
        .unwrap_or_else(|| TelephonyAction::new(DeliveryStatus::Failed).provider(REFUSAL_PROVIDER));
    InlineResponse {
        commands: Some(vec![action.into_command()]),
        error,
        debug_context: None,
    }
}

/// Drops what Okta does not read from each action object.
pub(super) fn tidy(command: &mut Command) -> Vec<String> {
    let mut dropped = Vec::new();
    if command.kind == TELEPHONY_ACTION {
        for item in command.value.as_array_mut().into_iter().flatten() {
            dropped.extend(retain_keys(item, &ACTION_KEYS));
        }
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::super::InlineResponse;
    use super::*;
    use serde_json::json;

    fn roundtrip(sample: &str) -> TelephonyRequest {
        super::super::test_roundtrip(sample)
    }

    #[test]
    fn docs_request_has_strings() {
        let r = roundtrip(include_str!(
            "../../../tests/fixtures/okta/telephony-hook-request.json"
        ));
        assert_eq!(r.request_type.as_deref(), Some(PRE_ENROLLMENT));
        assert!(!r.is_voice());
        let m = r.data.message_profile.as_ref().expect("messageProfile");
        assert_eq!(
            m.phone_number,
            Some(StringOrNumber::String("9876543210".to_owned()))
        );
        assert_eq!(
            m.otp_code
                .as_ref()
                .map(StringOrNumber::as_string)
                .as_deref(),
            Some("11111")
        );
        let user = r.data.user_profile.as_ref().expect("userProfile");
        assert_eq!(user.user_id.as_deref(), Some("00uyxxSknGtK8022w0g3"));
    }

    #[test]
    fn spec_request_has_numbers() {
        let r = roundtrip(include_str!(
            "../../../tests/fixtures/okta/telephony-hook-request-spec.json"
        ));
        assert!(r.request_type.is_none());
        let m = r.data.message_profile.as_ref().expect("messageProfile");
        assert!(matches!(m.phone_number, Some(StringOrNumber::Number(_))));
        assert_eq!(
            m.phone_number
                .as_ref()
                .map(StringOrNumber::as_string)
                .as_deref(),
            Some("9876543210")
        );
        assert_eq!(
            m.otp_code
                .as_ref()
                .map(StringOrNumber::as_string)
                .as_deref(),
            Some("11111")
        );
        assert_eq!(m.delivery_channel.as_deref(), Some("SMS"));
    }

    #[test]
    fn builder_matches_the_sample() {
        let cmd = TelephonyAction::new(DeliveryStatus::Successful)
            .provider("VONAGE")
            .transaction_id("SM49a8ece2822d44e4adaccd7ed268f954")
            .transaction_metadata("Duration=300ms")
            .into_command();
        let expected: Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/okta/telephony-hook-response-success.json"
        ))
        .expect("sample");
        assert_eq!(
            serde_json::to_value(InlineResponse::from(cmd)).expect("json"),
            expected
        );
        let short = action(DeliveryStatus::Pending, "ACME", "tx-1");
        assert_eq!(
            short.value,
            json!([{"status": "PENDING", "provider": "ACME", "transactionId": "tx-1"}])
        );
        assert_eq!(DeliveryStatus::Failed.as_str(), "FAILED");
    }

    use super::super::check::check;
    use super::super::testing::{fails, one, telephony_request};
    use super::super::HookType;

    #[test]
    fn telephony_rules() {
        let r = telephony_request();
        let act = |value: Value| one(TELEPHONY_ACTION, value);
        fails(
            HookType::Telephony,
            &act(json!({"status": "SUCCESSFUL"})),
            &r,
            &["must be an array", "not an object"],
        );
        fails(
            HookType::Telephony,
            &act(json!([])),
            &r,
            &["value is empty"],
        );
        fails(
            HookType::Telephony,
            &act(json!(["SUCCESSFUL"])),
            &r,
            &["value[0] must be an object"],
        );
        fails(
            HookType::Telephony,
            &act(json!([{"provider": "X"}])),
            &r,
            &["value[0] has no status"],
        );
        fails(
            HookType::Telephony,
            &act(json!([{"status": "DELIVERED"}])),
            &r,
            &["SUCCESSFUL, PENDING, FAILED"],
        );
        fails(
            HookType::Telephony,
            &act(json!([{"status": "FAILED", "transactionId": 7}])),
            &r,
            &["value[0].transactionId must be a string, not a number"],
        );
        check(
            HookType::Telephony,
            &act(json!([{"status": "PENDING"}])),
            &r,
        )
        .expect("status alone");
        let built = InlineResponse::from(action(DeliveryStatus::Failed, "ACME", "t-1"));
        check(HookType::Telephony, &built, &r).expect("builder");
    }
}
