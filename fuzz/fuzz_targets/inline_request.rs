//! Every inline hook request parser on arbitrary bytes: the check each inline endpoint
//! runs before a handler sees the body (`validate_request`, which includes the typed,
//! lenient parse of the hook's type) and the typed requests themselves.
//!
//! Besides "never panics": a request accepted by `validate_request` is one that the
//! typed parse accepts too (handlers and scripts rely on it), and a typed request
//! written back and parsed again is the same JSON (a forward handler passes the parsed
//! request on).

#![no_main]

use hookwarden::inline_hooks::validate_request;
use hookwarden::okta::inline::{
    import::ImportRequest, password::PasswordImportRequest, registration::RegistrationRequest,
    saml::SamlRequest, telephony::TelephonyRequest, token::TokenRequest, HookType,
};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// Parses `value` as `T`; when it is one, checks that writing and re-reading is stable.
fn typed<T: DeserializeOwned + Serialize>(value: &Value) -> bool {
    let Ok(request) = serde_json::from_value::<T>(value.clone()) else {
        return false;
    };
    let once = serde_json::to_value(&request).expect("a typed request serialises");
    let again: T = serde_json::from_value(once.clone()).expect("a written request parses");
    let twice = serde_json::to_value(&again).expect("a typed request serialises");
    assert_eq!(once, twice, "a typed request reads back the same");
    true
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    for hook_type in HookType::ALL {
        let valid = validate_request(hook_type, &value).is_ok();
        let parses = match hook_type {
            HookType::Token => typed::<TokenRequest>(&value),
            HookType::Registration => typed::<RegistrationRequest>(&value),
            HookType::Import => typed::<ImportRequest>(&value),
            HookType::PasswordImport => typed::<PasswordImportRequest>(&value),
            HookType::Saml => typed::<SamlRequest>(&value),
            HookType::Telephony => typed::<TelephonyRequest>(&value),
        };
        if valid {
            assert!(
                parses,
                "validate_request accepted a request that is not a {hook_type} request"
            );
        }
    }
});
