//! What the rules' tests share: Okta's sample requests, rules read from TOML the way
//! hookwarden reads its file, and a run that checks each answer as the runtime does.

use super::RulesHandler;
use crate::config::rules::RulesConfig;
use crate::inline_hooks::handler::{Handler, InlineCall, Reply};
use crate::okta::inline::HookType;
use serde_json::Value;
use std::path::Path;

pub(super) fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/okta")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("fixture readable");
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// Reads rules the way hookwarden reads its file: TOML through the `config` crate.
fn config(toml_text: &str) -> RulesConfig {
    ::config::Config::builder()
        .add_source(::config::File::from_str(
            toml_text,
            ::config::FileFormat::Toml,
        ))
        .build()
        .expect("test TOML parses")
        .try_deserialize()
        .expect("rules config deserialises")
}

pub(super) fn handler(hook_type: HookType, toml_text: &str) -> RulesHandler {
    RulesHandler::new(hook_type, &config(toml_text)).expect("rules compile")
}

pub(super) fn build_error(hook_type: HookType, toml_text: &str) -> String {
    match RulesHandler::new(hook_type, &config(toml_text)) {
        Ok(_) => panic!("rules should be refused"),
        Err(e) => e,
    }
}

/// Runs the rules, and checks the answer the way the runtime will before it leaves.
pub(super) async fn run(h: &RulesHandler, body: Value) -> Value {
    let hook_type = h.hook_type();
    let call = InlineCall {
        hook_type,
        event_id: body
            .get("eventId")
            .and_then(Value::as_str)
            .map(str::to_owned),
        body,
        deadline: std::time::Instant::now() + std::time::Duration::from_secs(2),
    };
    let Ok(Reply::Typed(answer)) = h.handle(&call).await else {
        panic!("rules answer with a typed answer");
    };
    if let Err(e) = crate::okta::inline::check::check(hook_type, &answer, &call.body) {
        panic!("the runtime would refuse this answer: {e}");
    }
    serde_json::to_value(answer).expect("answer serialises")
}

pub(super) fn set(body: &mut Value, pointer: &str, value: Value) {
    *body
        .pointer_mut(pointer)
        .expect("pointer exists in the sample") = value;
}
