//! Okta's hook registrations, `/api/v1/eventHooks` and `/api/v1/inlineHooks`, as the
//! Management API returns them (Okta's OpenAPI spec, `EventHook` and `InlineHook`), and
//! the calls that change them.
//!
//! Read leniently: every field the comparison does not need is optional, and unknown
//! fields are ignored, so that a newer Okta does not break `okta status`. The secret
//! (`authScheme.value`) is write-only in Okta's API: it is never in an answer, so these
//! types have no field for it; bodies that carry one are built by [`event_hook_body`]
//! and [`inline_hook_body`] and go nowhere but the request.

use super::{ApiError, Client, Retry};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// The only channel version Okta supports, for both kinds of hook.
pub const CHANNEL_VERSION: &str = "1.0.0";
/// The only auth scheme type of an HTTP channel.
pub const AUTH_SCHEME_HEADER: &str = "HEADER";
/// Event hook filters are written in Okta Expression Language.
pub const FILTER_TYPE: &str = "EXPRESSION_LANGUAGE";

/// Which of Okta's two hook APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Event,
    Inline,
}

impl Kind {
    fn collection(self) -> &'static str {
        match self {
            Kind::Event => "/api/v1/eventHooks",
            Kind::Inline => "/api/v1/inlineHooks",
        }
    }

    /// `event hook` / `inline hook`, for messages.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Event => "event hook",
            Kind::Inline => "inline hook",
        }
    }
}

/// `EventHook`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventHook {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// `ACTIVE` or `INACTIVE`.
    #[serde(default)]
    pub status: Option<String>,
    /// `VERIFIED` or `UNVERIFIED`.
    #[serde(default)]
    pub verification_status: Option<String>,
    #[serde(default)]
    pub events: Option<Subscriptions>,
    #[serde(default)]
    pub channel: Option<Channel>,
}

/// `EventSubscriptions`: the types, and the optional filter.
#[derive(Debug, Clone, Deserialize)]
pub struct Subscriptions {
    #[serde(default)]
    pub items: Vec<String>,
    #[serde(default)]
    pub filter: Option<Filters>,
}

/// `EventHookFilters`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filters {
    #[serde(default)]
    pub event_filter_map: Vec<FilterEntry>,
}

/// `EventHookFilterMapObject`: one type's condition.
#[derive(Debug, Clone, Deserialize)]
pub struct FilterEntry {
    #[serde(default)]
    pub event: String,
    #[serde(default)]
    pub condition: Option<Condition>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Condition {
    #[serde(default)]
    pub expression: String,
}

/// `InlineHook`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InlineHook {
    pub id: String,
    pub name: String,
    /// `ACTIVE` or `INACTIVE`.
    #[serde(default)]
    pub status: Option<String>,
    /// `com.okta.oauth2.tokens.transform`, …
    #[serde(default, rename = "type")]
    pub hook_type: Option<String>,
    #[serde(default)]
    pub channel: Option<Channel>,
}

/// `EventHookChannel` / `InlineHookChannel` (HTTP or, for inline hooks, OAUTH).
#[derive(Debug, Clone, Deserialize)]
pub struct Channel {
    #[serde(default, rename = "type")]
    pub channel_type: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub config: Option<ChannelConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelConfig {
    #[serde(default)]
    pub uri: Option<String>,
    /// Nullable in Okta's answers.
    #[serde(default)]
    pub auth_scheme: Option<AuthScheme>,
}

/// The auth header Okta sends: its name only (the value is write-only).
#[derive(Debug, Clone, Deserialize)]
pub struct AuthScheme {
    #[serde(default, rename = "type")]
    pub scheme_type: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
}

impl Channel {
    pub fn uri(&self) -> Option<&str> {
        self.config.as_ref()?.uri.as_deref()
    }

    pub fn auth_key(&self) -> Option<&str> {
        self.config.as_ref()?.auth_scheme.as_ref()?.key.as_deref()
    }
}

/// A channel config with its header secret. The value is sent, never read back.
fn http_channel(uri: &str, auth_key: &str, secret: &str) -> Value {
    json!({
        "type": "HTTP",
        "version": CHANNEL_VERSION,
        "config": {
            "uri": uri,
            "method": "POST",
            "headers": [],
            "authScheme": {"type": AUTH_SCHEME_HEADER, "key": auth_key, "value": secret},
        },
    })
}

/// What an event hook should be: the body of a create or a replace.
pub struct EventHookSpec<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub uri: &'a str,
    pub auth_key: &'a str,
    pub secret: &'a str,
    pub event_types: &'a [String],
    /// `(event type, expression)`.
    pub filters: &'a [(String, String)],
}

/// The JSON body of an event hook create or replace. It holds the secret: send it, do
/// not log it.
pub fn event_hook_body(spec: &EventHookSpec<'_>) -> Value {
    let filter = if spec.filters.is_empty() {
        Value::Null
    } else {
        json!({
            "type": FILTER_TYPE,
            "eventFilterMap": spec.filters.iter().map(|(event, expression)| json!({
                "event": event,
                "condition": {"expression": expression},
            })).collect::<Vec<_>>(),
        })
    };
    json!({
        "name": spec.name,
        "description": spec.description,
        "events": {"type": "EVENT_TYPE", "items": spec.event_types, "filter": filter},
        "channel": http_channel(spec.uri, spec.auth_key, spec.secret),
    })
}

/// The JSON body of an inline hook create (`hook_type` set) or replace (`None`: Okta
/// does not let a replace change the type). It holds the secret.
pub fn inline_hook_body(
    name: &str,
    hook_type: Option<&str>,
    uri: &str,
    auth_key: &str,
    secret: &str,
) -> Value {
    let mut body = json!({
        "name": name,
        "version": CHANNEL_VERSION,
        "channel": http_channel(uri, auth_key, secret),
    });
    if let Some(t) = hook_type {
        body["type"] = json!(t);
    }
    body
}

/// The hook calls of the Management API.
impl Client {
    pub async fn event_hooks(&self, stop: &CancellationToken) -> Result<Vec<EventHook>, ApiError> {
        let url = self.url(Kind::Event.collection());
        self.list(url, "a list of event hooks", stop).await
    }

    pub async fn inline_hooks(
        &self,
        stop: &CancellationToken,
    ) -> Result<Vec<InlineHook>, ApiError> {
        let url = self.url(Kind::Inline.collection());
        self.list(url, "a list of inline hooks", stop).await
    }

    /// Creates a hook; the answer is the hook as Okta holds it.
    pub async fn create_hook<T: serde::de::DeserializeOwned>(
        &self,
        kind: Kind,
        body: &Value,
        stop: &CancellationToken,
    ) -> Result<T, ApiError> {
        let url = self.url(kind.collection());
        let what = format!("an {}", kind.noun());
        self.json(
            Method::POST,
            &url,
            Some(body),
            Retry::OnlyRateLimited,
            &what,
            stop,
        )
        .await
    }

    /// Replaces a hook's definition (Okta re-verifies an event hook whose channel changed).
    pub async fn replace_hook(
        &self,
        kind: Kind,
        id: &str,
        body: &Value,
        stop: &CancellationToken,
    ) -> Result<(), ApiError> {
        let url = self.item_url(kind, id, "");
        self.call(Method::PUT, &url, Some(body), Retry::Safe, stop)
            .await
            .map(drop)
    }

    /// `lifecycle/activate`, `lifecycle/deactivate` or (event hooks) `lifecycle/verify`.
    pub async fn lifecycle(
        &self,
        kind: Kind,
        id: &str,
        action: &str,
        stop: &CancellationToken,
    ) -> Result<(), ApiError> {
        let url = self.item_url(kind, id, &format!("/lifecycle/{action}"));
        self.call(Method::POST, &url, None, Retry::Safe, stop)
            .await
            .map(drop)
    }

    /// Deletes a hook (Okta deletes inactive hooks only).
    pub async fn delete_hook(
        &self,
        kind: Kind,
        id: &str,
        stop: &CancellationToken,
    ) -> Result<(), ApiError> {
        let url = self.item_url(kind, id, "");
        self.call(Method::DELETE, &url, None, Retry::Safe, stop)
            .await
            .map(drop)
    }

    /// `POST /api/v1/inlineHooks/{id}/execute`: Okta calls the hook with `payload` and
    /// returns its answer (a 400 names what failed).
    pub async fn execute_inline_hook(
        &self,
        id: &str,
        payload: &Value,
        stop: &CancellationToken,
    ) -> Result<Value, ApiError> {
        let url = self.item_url(Kind::Inline, id, "/execute");
        self.json(
            Method::POST,
            &url,
            Some(payload),
            Retry::Safe,
            "the hook's answer",
            stop,
        )
        .await
    }

    fn item_url(&self, kind: Kind, id: &str, tail: &str) -> reqwest::Url {
        let mut url = self.url(kind.collection());
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push(id);
        }
        if !tail.is_empty() {
            let path = format!("{}{tail}", url.path());
            url.set_path(&path);
        }
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Okta's own example (`RetrieveAllEventHooks` in the OpenAPI spec), read leniently.
    #[test]
    fn okta_example_hooks_parse() {
        let text = include_str!("../../tests/fixtures/okta/management/event-hooks-list.json");
        let hooks: Vec<EventHook> = serde_json::from_str(text).expect("parses");
        assert_eq!(hooks.len(), 2);
        let h = &hooks[1];
        assert_eq!(h.verification_status.as_deref(), Some("VERIFIED"));
        let f = h
            .events
            .as_ref()
            .and_then(|e| e.filter.as_ref())
            .expect("filter");
        assert_eq!(f.event_filter_map[0].event, "group.user_membership.add");
        let text = include_str!("../../tests/fixtures/okta/management/inline-hooks-list.json");
        let hooks: Vec<InlineHook> = serde_json::from_str(text).expect("parses");
        let keys: Vec<Option<&str>> = hooks
            .iter()
            .map(|h| h.channel.as_ref().and_then(Channel::auth_key))
            .collect();
        // Header names come back lower-case; an OAUTH channel has a null authScheme.
        assert_eq!(keys, vec![Some("authorization"), None, None]);
    }

    #[test]
    fn bodies_carry_the_secret_and_okta_shapes() {
        let filters = vec![("user.session.start".to_owned(), "event.x eq 1".to_owned())];
        let types = vec!["user.session.start".to_owned()];
        let b = event_hook_body(&EventHookSpec {
            name: "n",
            description: "d",
            uri: "https://h.example.com/p",
            auth_key: "Authorization",
            secret: "s3cret",
            event_types: &types,
            filters: &filters,
        });
        assert_eq!(b["channel"]["config"]["authScheme"]["value"], "s3cret");
        assert_eq!(
            b["events"]["filter"]["eventFilterMap"][0]["condition"]["expression"],
            "event.x eq 1"
        );
        let b = inline_hook_body("n", None, "https://h/p", "x-key", "v");
        assert!(b.get("type").is_none());
        assert_eq!(b["channel"]["version"], CHANNEL_VERSION);
    }
}
