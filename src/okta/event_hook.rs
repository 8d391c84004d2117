//! Event hook deliveries: the envelope Okta POSTs and the System Log events inside it.
//!
//! Two levels of parsing, for two uses:
//! - [`Delivery`] borrows each event as raw JSON ([`RawValue`]) and reads only what
//!   the receiver needs ([`EventHead`]: uuid, type, published, actor). This is the
//!   hot path: the event is stored byte for byte as Okta sent it.
//! - [`LogEvent`] is the whole System Log event, typed and lenient, for code that
//!   processes events (unknown fields are kept in `extra`).

use super::lenient::StringOrNumber;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The verification GET carries this header; we echo its value.
pub const VERIFICATION_HEADER: &str = "x-okta-verification-challenge";

/// Whether `t` is an exact System Log event type (`user.session.start`): dotted
/// lower-case names with digits, `_` and `-`. What Okta's subscriptions and the System
/// Log filter take: anything else (a glob, a quote that would break a filter
/// expression) is refused before it reaches Okta.
pub fn is_exact_event_type(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 200
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
}

/// The body of our answer to the one-time verification GET.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct VerificationResponse {
    pub verification: String,
}

/// An event hook delivery (`eventType: com.okta.event_hook`), events kept raw.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery<'a> {
    /// One id per POST (not per event).
    pub event_id: String,
    #[serde(default)]
    pub event_type: Option<String>,
    #[serde(default)]
    pub event_type_version: Option<StringOrNumber>,
    /// Event hooks spell it with an `s`; inline hooks without.
    #[serde(default)]
    pub cloud_events_version: Option<StringOrNumber>,
    #[serde(default)]
    pub event_time: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(borrow)]
    pub data: DeliveryData<'a>,
}

#[derive(Debug, Deserialize)]
pub struct DeliveryData<'a> {
    #[serde(borrow)]
    pub events: Vec<&'a RawValue>,
}

/// What the receiver reads of each event before storing it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventHead {
    pub uuid: String,
    #[serde(default)]
    pub event_type: Option<String>,
    #[serde(default)]
    pub published: Option<String>,
    #[serde(default)]
    pub actor: Option<ActorHead>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActorHead {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub alternate_id: Option<String>,
}

/// Why a body is not an event hook delivery; the message names what is missing or wrong.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("the body is not valid JSON: {0}")]
    Syntax(String),
    #[error("the body is not an Okta event hook delivery: {0}")]
    Shape(String),
    #[error("data.events[{index}] is not a System Log event: {message}")]
    Event { index: usize, message: String },
}

/// A parsed delivery: the envelope plus each event's head next to its raw JSON.
#[derive(Debug)]
pub struct ParsedDelivery<'a> {
    pub envelope: Delivery<'a>,
    pub events: Vec<(EventHead, &'a RawValue)>,
}

impl<'a> ParsedDelivery<'a> {
    /// Parses a delivery body. Leniency: unknown fields are ignored, optional fields
    /// may be absent or null; required are `eventId`, `data.events[]` and each event's `uuid`.
    pub fn parse(body: &'a [u8]) -> Result<Self, DeliveryError> {
        let envelope: Delivery<'a> = serde_json::from_slice(body).map_err(|e| {
            if e.is_syntax() || e.is_eof() {
                DeliveryError::Syntax(e.to_string())
            } else {
                DeliveryError::Shape(e.to_string())
            }
        })?;
        let mut events = Vec::with_capacity(envelope.data.events.len());
        for (index, raw) in envelope.data.events.iter().enumerate() {
            let head: EventHead =
                serde_json::from_str(raw.get()).map_err(|e| DeliveryError::Event {
                    index,
                    message: e.to_string(),
                })?;
            if head.uuid.is_empty() || head.uuid.len() > 128 {
                return Err(DeliveryError::Event {
                    index,
                    message: "uuid must be 1 to 128 characters".to_owned(),
                });
            }
            events.push((head, *raw));
        }
        Ok(ParsedDelivery { envelope, events })
    }
}

/// A whole System Log event, typed and lenient.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LogEvent {
    pub uuid: String,
    #[serde(default)]
    pub published: Option<String>,
    #[serde(default)]
    pub event_type: Option<String>,
    /// `"0"` in hook samples, `0` in the spec.
    #[serde(default)]
    pub version: Option<StringOrNumber>,
    #[serde(default)]
    pub display_message: Option<String>,
    #[serde(default)]
    pub severity: Option<String>,
    #[serde(default)]
    pub legacy_event_type: Option<String>,
    #[serde(default)]
    pub actor: Option<Actor>,
    #[serde(default)]
    pub client: Option<Client>,
    #[serde(default)]
    pub outcome: Option<Outcome>,
    #[serde(default)]
    pub target: Option<Vec<Actor>>,
    #[serde(default)]
    pub transaction: Option<Transaction>,
    #[serde(default)]
    pub debug_context: Option<DebugContext>,
    #[serde(default)]
    pub authentication_context: Option<Map<String, Value>>,
    #[serde(default)]
    pub security_context: Option<Map<String, Value>>,
    #[serde(default)]
    pub request: Option<Request>,
    /// Fields this version does not know, kept as they came.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An actor or a target (`target[]` adds `changeDetails`, kept in `extra`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub alternate_id: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub detail_entry: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Client {
    #[serde(default)]
    pub user_agent: Option<Map<String, Value>>,
    /// Sometimes the string `"null"`.
    #[serde(default)]
    pub zone: Option<String>,
    #[serde(default)]
    pub device: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub ip_address: Option<String>,
    #[serde(default)]
    pub geographical_context: Option<GeographicalContext>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GeographicalContext {
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub country: Option<String>,
    /// A string or a number depending on the sample.
    #[serde(default)]
    pub postal_code: Option<StringOrNumber>,
    #[serde(default)]
    pub geolocation: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    #[serde(default)]
    pub result: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub detail: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DebugContext {
    /// Free-form: Okta says this is not a data contract.
    #[serde(default)]
    pub debug_data: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    #[serde(default)]
    pub ip_chain: Option<Vec<Map<String, Value>>>,
}
