//! The inline answer checker on arbitrary answers, against each of Okta's sample
//! requests: every answer a handler (a script, a forward target) produces is read
//! (`answer::read`) and settled (`settle`, which runs `check`) before it leaves, so they
//! see whatever those produce. What settle lets leave passes the checker, and a rebuilt
//! refusal is still a refusal of its type.
//!
//! Input: the first line names one of Okta's sample requests (any unknown name picks
//! one by its length); the rest is the answer's JSON. The answer is checked against
//! the request's own hook type, then against every type (a misrouted request must
//! not make the checker panic either). An accepted answer is below Okta's size limit.

#![no_main]

use hookwarden::okta::inline::answer::read;
use hookwarden::okta::inline::check::check;
use hookwarden::okta::inline::settle::{settle, Settled};
use hookwarden::okta::inline::{HookType, InlineResponse, MAX_RESPONSE_BYTES};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::sync::OnceLock;

macro_rules! samples {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_str!(concat!("../../tests/fixtures/okta/", $name, ".json")))),*]
    };
}

const SAMPLES: [(&str, &str); 11] = samples![
    "token-hook-request",
    "registration-hook-request-classic",
    "registration-hook-request-progressive-profile",
    "registration-hook-request-ssr",
    "import-hook-request",
    "import-hook-request-spec",
    "password-import-request",
    "password-import-request-idx",
    "saml-hook-request",
    "telephony-hook-request",
    "telephony-hook-request-spec",
];

/// The samples parsed once, each with the hook type its `eventType` names.
fn requests() -> &'static Vec<(&'static str, HookType, Value)> {
    static REQUESTS: OnceLock<Vec<(&'static str, HookType, Value)>> = OnceLock::new();
    REQUESTS.get_or_init(|| {
        SAMPLES
            .iter()
            .map(|(name, text)| {
                let value: Value = serde_json::from_str(text).expect("Okta's sample is JSON");
                let hook_type = value
                    .get("eventType")
                    .and_then(Value::as_str)
                    .and_then(HookType::from_event_type)
                    .expect("Okta's sample names its hook type");
                (*name, hook_type, value)
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let (first, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let requests = requests();
    let (_, hook_type, request) = requests
        .iter()
        .find(|(name, _, _)| name.as_bytes() == first)
        .unwrap_or(&requests[first.len() % requests.len()]);
    let Ok(raw) = serde_json::from_slice::<Value>(rest) else {
        return;
    };
    if let Ok(read) = read(raw.clone()) {
        match settle(*hook_type, read, request).settled {
            Settled::Pass(answer) => {
                assert!(
                    check(*hook_type, &answer, request).is_ok(),
                    "passed unchecked"
                );
            }
            Settled::Repaired { answer, .. } => {
                assert!(
                    check(*hook_type, &answer, request).is_ok(),
                    "repaired unchecked"
                );
                assert!(hook_type.is_refusal(&answer), "a repaired refusal says yes");
            }
            Settled::Unsendable(_) | Settled::Invalid(_) => {}
        }
    }
    let Ok(response) = serde_json::from_value::<InlineResponse>(raw) else {
        return;
    };
    if check(*hook_type, &response, request).is_ok() {
        let size = serde_json::to_vec(&response).map_or(usize::MAX, |b| b.len());
        assert!(size < MAX_RESPONSE_BYTES, "accepted a {size}-byte answer");
    }
    for other in HookType::ALL {
        let _ = check(other, &response, request);
    }
});
