//! The event hook delivery parser on arbitrary bytes: the body of every POST Okta (or
//! anyone who gets past auth) sends to an event hook.
//!
//! Besides "never panics", checks what the receiver relies on: an accepted delivery
//! names a usable uuid for every event, each event's raw JSON is valid JSON on its own
//! (it is stored byte for byte), and the typed System Log event reads back the same
//! after a write (it is what sinks and tools re-read).

#![no_main]

use hookwarden::okta::event_hook::{LogEvent, ParsedDelivery};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = ParsedDelivery::parse(data) else {
        return;
    };
    assert_eq!(parsed.events.len(), parsed.envelope.data.events.len());
    for (head, raw) in &parsed.events {
        assert!(
            !head.uuid.is_empty() && head.uuid.len() <= 128,
            "accepted an event whose uuid is {} bytes",
            head.uuid.len()
        );
        let value: serde_json::Value =
            serde_json::from_str(raw.get()).expect("a stored event is JSON on its own");
        assert!(value.is_object(), "an event with a uuid is an object");
        if let Ok(event) = serde_json::from_str::<LogEvent>(raw.get()) {
            assert_eq!(
                event.uuid, head.uuid,
                "head and typed event agree on the uuid"
            );
            let written = serde_json::to_string(&event).expect("a typed event serialises");
            let reread: LogEvent =
                serde_json::from_str(&written).expect("a written event parses again");
            assert_eq!(reread, event, "a typed event reads back the same");
        }
    }
});
