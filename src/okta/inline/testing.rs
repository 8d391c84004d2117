//! What the tests of every type's checks share: Okta's sample requests and assertions.

use super::check::check;
use super::{HookType, InlineResponse};
use serde_json::Value;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../../tests/fixtures/okta/", $name))
    };
}
pub(crate) use fixture;

pub fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture is JSON")
}

pub fn token_request() -> Value {
    json(fixture!("token-hook-request.json"))
}
pub fn ssr_request() -> Value {
    json(fixture!("registration-hook-request-ssr.json"))
}
pub fn pp_request() -> Value {
    json(fixture!(
        "registration-hook-request-progressive-profile.json"
    ))
}
pub fn classic_request() -> Value {
    json(fixture!("registration-hook-request-classic.json"))
}
pub fn import_request() -> Value {
    json(fixture!("import-hook-request.json"))
}
pub fn password_request() -> Value {
    json(fixture!("password-import-request.json"))
}
pub fn saml_request() -> Value {
    json(fixture!("saml-hook-request.json"))
}
pub fn telephony_request() -> Value {
    json(fixture!("telephony-hook-request.json"))
}

/// Asserts that `response` fails as a `hook_type` answer with a message holding each part.
pub fn fails(hook_type: HookType, response: &InlineResponse, request: &Value, expected: &[&str]) {
    match check(hook_type, response, request) {
        Ok(()) => panic!("{response:?} should fail as a {hook_type} answer"),
        Err(e) => {
            for part in expected {
                assert!(e.0.contains(part), "message {:?} lacks {part:?}", e.0);
            }
        }
    }
}

/// An answer of one command.
pub fn one(kind: &str, value: Value) -> InlineResponse {
    InlineResponse::empty().command(kind, value)
}
