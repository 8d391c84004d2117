//! The comparison and the plan, on configs and on hooks as Okta's API returns them.

use super::sync::{plan_hook, plan_other};
use super::*;
use crate::config::expose;
use serde_json::json;

const CONFIG: &str = r#"
[okta]
org_url = "https://example.okta.com"
api_token = "00token"
public_url = "https://hooks.example.com/"

[[event_hooks]]
name = "okta"
path = "/hooks/okta/events"
event_types = ["user.lifecycle.deactivate", "group.user_membership.add"]
okta_filters = { "group.user_membership.add" = "event.target.?[type eq 'UserGroup'].size()>0" }
auth = { type = "basic", users = [{ username = "okta", password = "old-password" }, { username = "okta", password = "new-password" }] }
sinks = [{ name = "out", type = "stdout" }]

[[inline_hooks]]
name = "tokens"
path = "/hooks/okta/token"
type = "token"
auth = { type = "header", header = "X-Hook-Key", secrets = ["first-secret-of-tokens", "second-secret-of-tokens"] }
handler = { kind = "rules" }

[[inline_hooks]]
name = "sms"
path = "/hooks/okta/sms"
type = "telephony"
auth = { type = "header", header = "X-Hook-Key", secrets = ["sms-secret-of-the-hook"] }
handler = { kind = "forward", url = "https://sms.example.com/send" }
"#;

fn config() -> Config {
    Config::from_toml_str(CONFIG).unwrap_or_else(|e| panic!("{e}"))
}

/// The event hook as Okta would hold it after a sync, in Okta's own JSON shape.
fn held_event(name: &str) -> Held {
    serde_json::from_value::<EventHook>(json!({
        "id": "who1", "name": name, "status": "ACTIVE", "verificationStatus": "VERIFIED",
        "events": {"type": "EVENT_TYPE",
            "items": ["group.user_membership.add", "user.lifecycle.deactivate"],
            "filter": {"type": "EXPRESSION_LANGUAGE", "eventFilterMap": [
                {"event": "group.user_membership.add",
                 "condition": {"version": null, "expression": "event.target.?[type eq 'UserGroup'].size()>0"}}]}},
        "channel": {"type": "HTTP", "version": "1.0.0", "config": {
            "uri": "https://hooks.example.com/hooks/okta/events", "method": "POST",
            "authScheme": {"type": "HEADER", "key": "authorization"}}}
    }))
    .expect("event hook")
    .into()
}

fn held_inline(name: &str, uri: &str, status: &str) -> Held {
    serde_json::from_value::<InlineHook>(json!({
        "id": "cal1", "name": name, "status": status, "type": "com.okta.oauth2.tokens.transform",
        "version": "1.0.0",
        "channel": {"type": "HTTP", "version": "1.0.0", "config": {
            "uri": uri, "method": "POST", "authScheme": {"type": "HEADER", "key": "x-hook-key"}}}
    }))
    .expect("inline hook")
    .into()
}

#[test]
fn the_config_says_what_okta_should_hold_with_the_newest_secret() {
    let w = wanted(&config()).expect("wanted");
    assert_eq!(w.len(), 3);
    assert_eq!(w[0].okta_name, "hookwarden: okta");
    assert_eq!(w[0].uri, "https://hooks.example.com/hooks/okta/events");
    let WantedAuth::Header { key, value } = &w[0].auth else {
        panic!("header auth");
    };
    assert_eq!(key, "Authorization");
    // The last user listed is the one Okta gets.
    assert_eq!(expose(value), "Basic b2t0YTpuZXctcGFzc3dvcmQ=");
    let WantedAuth::Header { value, .. } = &w[1].auth else {
        panic!("header auth");
    };
    assert_eq!(expose(value), "second-secret-of-tokens");
    assert_eq!(w[1].inline_type, Some(HookType::Token));
}

#[test]
fn wanted_needs_a_public_url_and_event_types() {
    let no_url = CONFIG.replace("public_url = \"https://hooks.example.com/\"", "");
    let c = Config::from_toml_str(&no_url).expect("valid");
    assert!(matches!(wanted(&c), Err(RegistrationError::NoPublicUrl)));
    let no_types = CONFIG
        .replace("event_types = [\"user.lifecycle.deactivate\", \"group.user_membership.add\"]", "")
        .replace("okta_filters = { \"group.user_membership.add\" = \"event.target.?[type eq 'UserGroup'].size()>0\" }", "");
    let c = Config::from_toml_str(&no_types).expect("valid");
    let e = wanted(&c).err().expect("refused").to_string();
    assert!(e.starts_with("event_hooks[0].event_types:"), "{e}");
}

#[test]
fn matching_by_name_then_by_uri_and_the_rest_listed() {
    let w = wanted(&config()).expect("wanted");
    let held = vec![
        held_inline(
            "someone else's",
            "https://elsewhere.example.com/x",
            "ACTIVE",
        ),
        held_event("hookwarden: okta"),
        held_inline(
            "Token hook set up by hand",
            "https://hooks.example.com/hooks/okta/token",
            "ACTIVE",
        ),
        held_inline(
            "hookwarden: removed",
            "https://hooks.example.com/old",
            "ACTIVE",
        ),
    ];
    let s = status(&w, &held);
    assert_eq!(
        s.hooks[0].held.map(|h| h.name.as_str()),
        Some("hookwarden: okta")
    );
    // Header names compare case-insensitively, types and filters in any order.
    assert_eq!(s.hooks[0].differences, vec![]);
    assert_eq!(
        s.hooks[1].held.map(|h| h.name.as_str()),
        Some("Token hook set up by hand")
    );
    assert!(s.hooks[2].held.is_none());
    assert!(!s.in_step());
    let others: Vec<&str> = s.others.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(others, vec!["someone else's", "hookwarden: removed"]);
    let prune = Options {
        prune: true,
        ..Options::default()
    };
    // Never deleted if hookwarden did not create it, even with --prune.
    assert!(matches!(
        plan_other(s.others[0], &prune)[..],
        [Action::Skip(_)]
    ));
    assert_eq!(
        plan_other(s.others[1], &prune),
        vec![Action::Deactivate, Action::Delete]
    );
    assert!(matches!(
        plan_other(s.others[1], &Options::default())[..],
        [Action::Skip(_)]
    ));
}

#[test]
fn every_difference_is_named_and_planned() {
    let w = wanted(&config()).expect("wanted");
    let mut h = held_event("hookwarden: okta");
    h.uri = Some("https://old.example.com/hooks/okta/events".into());
    h.event_types.pop();
    h.filters.clear();
    h.status = Some("INACTIVE".into());
    h.verification = Some("UNVERIFIED".into());
    h.channel_version = Some("0.9".into());
    let fields: Vec<&str> = differences(&w[0], &h).iter().map(|d| d.field).collect();
    assert_eq!(
        fields,
        vec![
            "uri",
            "channel version",
            "event types",
            "filter",
            "status",
            "verification"
        ]
    );
    let held = vec![h];
    let s = status(&w, &held);
    assert_eq!(
        plan_hook(&s.hooks[0], &Options::default()),
        vec![
            Action::Replace(vec!["uri", "channel version", "event types", "filter"]),
            Action::Activate,
            Action::Verify
        ]
    );
}

#[test]
fn plans_for_each_case() {
    let w = wanted(&config()).expect("wanted");
    let none: Vec<Held> = Vec::new();
    let s = status(&w, &none);
    let opts = Options::default();
    assert_eq!(
        plan_hook(&s.hooks[0], &opts),
        vec![Action::Create, Action::Verify]
    );
    assert_eq!(
        plan_hook(&s.hooks[1], &opts),
        vec![Action::Create, Action::Check]
    );
    // A telephony hook is created but not called with a sample: it could send an SMS.
    assert!(matches!(
        plan_hook(&s.hooks[2], &opts)[..],
        [Action::Create, Action::Skip(_)]
    ));

    let held = vec![held_event("hookwarden: okta")];
    let s = status(&w, &held);
    assert_eq!(plan_hook(&s.hooks[0], &opts), vec![Action::Keep]);
    let rotate = Options {
        send_secrets: true,
        ..Options::default()
    };
    assert_eq!(
        plan_hook(&s.hooks[0], &rotate),
        vec![Action::Replace(vec!["secret"]), Action::Verify]
    );
    let mut unverified = held_event("hookwarden: okta");
    unverified.verification = Some("UNVERIFIED".into());
    let held = vec![unverified];
    let s = status(&w, &held);
    assert_eq!(plan_hook(&s.hooks[0], &opts), vec![Action::Verify]);

    // An inline hook of another type at the URI: Okta cannot change a type.
    let mut other_type = held_inline(
        "hookwarden: tokens",
        "https://hooks.example.com/hooks/okta/token",
        "ACTIVE",
    );
    other_type.inline_type = Some("com.okta.saml.tokens.transform".into());
    let held = vec![other_type];
    let s = status(&w, &held);
    assert!(matches!(
        plan_hook(&s.hooks[1], &opts)[..],
        [Action::Skip(_)]
    ));
}

#[test]
fn oauth_inline_hooks_are_compared_never_created() {
    let text = CONFIG.replace(
        "auth = { type = \"header\", header = \"X-Hook-Key\", secrets = [\"first-secret-of-tokens\", \"second-secret-of-tokens\"] }",
        "auth = { type = \"oauth\", issuer = \"https://example.okta.com/oauth2/default\", audience = \"api://hooks\", jwks_url = \"https://example.okta.com/oauth2/default/v1/keys\" }",
    );
    let c = Config::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let w = wanted(&c).expect("wanted");
    assert!(matches!(w[1].auth, WantedAuth::OAuth));
    let none: Vec<Held> = Vec::new();
    let s = status(&w, &none);
    assert!(matches!(
        plan_hook(&s.hooks[1], &Options::default())[..],
        [Action::Skip(_)]
    ));
}
