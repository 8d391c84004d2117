//! Okta's own samples (tests/fixtures/okta, embedded in the binary so that `simulate`
//! and `okta sync`'s inline hook check work from an installed copy), each with fresh ids.
//!
//! Fresh ids matter: a receiver deduplicates on the event `uuid` and answers inline
//! retries by `eventId`, so replaying the samples' fixed ids would test its dedupe
//! instead of its handling. Only the duplicates scenario reuses ids, on purpose.

use crate::okta::inline::HookType;
use serde_json::{json, Value};

/// A sample: its file name (shown in reports) and its text.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub name: &'static str,
    pub text: &'static str,
}

macro_rules! sample {
    ($name:literal) => {
        Sample {
            name: $name,
            text: include_str!(concat!("../../tests/fixtures/okta/", $name)),
        }
    };
}

/// Whole event hook deliveries as Okta sent them (envelope and events).
const DELIVERIES: [Sample; 2] = [
    sample!("event-hook-delivery.json"),
    sample!("event-hook-delivery-2019.json"),
];

/// Single System Log events, put into envelopes here.
const EVENTS: [Sample; 2] = [
    sample!("event-hook-event-user-lifecycle-deactivate.json"),
    sample!("system-log-event-user-session-start-security-context.json"),
];

/// Okta's inline hook request samples of a type.
pub fn inline_samples(hook_type: HookType) -> &'static [Sample] {
    const TOKEN: [Sample; 1] = [sample!("token-hook-request.json")];
    const REGISTRATION: [Sample; 3] = [
        sample!("registration-hook-request-ssr.json"),
        sample!("registration-hook-request-progressive-profile.json"),
        sample!("registration-hook-request-classic.json"),
    ];
    const IMPORT: [Sample; 2] = [
        sample!("import-hook-request.json"),
        sample!("import-hook-request-spec.json"),
    ];
    const PASSWORD: [Sample; 2] = [
        sample!("password-import-request.json"),
        sample!("password-import-request-idx.json"),
    ];
    const SAML: [Sample; 1] = [sample!("saml-hook-request.json")];
    const TELEPHONY: [Sample; 2] = [
        sample!("telephony-hook-request.json"),
        sample!("telephony-hook-request-spec.json"),
    ];
    match hook_type {
        HookType::Token => &TOKEN,
        HookType::Registration => &REGISTRATION,
        HookType::Import => &IMPORT,
        HookType::PasswordImport => &PASSWORD,
        HookType::Saml => &SAML,
        HookType::Telephony => &TELEPHONY,
    }
}

/// One event hook delivery, ready to send.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// What it is made of, for reports (`event-hook-delivery.json`, `batch of 4 events`).
    pub label: String,
    pub body: Value,
}

impl Delivery {
    /// The events' uuids, in order.
    pub fn uuids(&self) -> Vec<String> {
        self.body["data"]["events"]
            .as_array()
            .map(|events| {
                events
                    .iter()
                    .filter_map(|e| e["uuid"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn event_count(&self) -> usize {
        self.body["data"]["events"].as_array().map_or(0, Vec::len)
    }
}

fn parse(sample: &Sample) -> Value {
    // The samples are compiled in and checked by this module's tests; a sample that did
    // not parse would be a build defect, shown as null rather than a panic.
    serde_json::from_str(sample.text).unwrap_or(Value::Null)
}

fn fresh_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// Every event the samples hold, each with a fresh uuid.
fn all_events() -> Vec<Value> {
    let mut events: Vec<Value> = DELIVERIES
        .iter()
        .flat_map(|s| {
            parse(s)["data"]["events"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    events.extend(EVENTS.iter().map(parse));
    for e in &mut events {
        e["uuid"] = json!(fresh_id());
    }
    events
}

/// An envelope as Okta builds one (§2.3 of the contract), holding `events`.
pub fn envelope(events: Vec<Value>) -> Value {
    json!({
        "eventType": "com.okta.event_hook",
        "eventTypeVersion": "1.0",
        "cloudEventsVersion": "0.1",
        "source": "https://hookwarden-simulate.okta.example/api/v1/eventHooks/whosimulate",
        "eventId": fresh_id(),
        "eventTime": now(),
        "contentType": "application/json",
        "data": { "events": events }
    })
}

/// How many different deliveries [`delivery`] makes before it repeats.
pub const DELIVERY_KINDS: usize = DELIVERIES.len() + 2;

/// The `n`th delivery of the catalog (cycling): Okta's two whole deliveries, one single
/// event in an envelope, then a batch of every sample event (Okta combines events that
/// are close in time into one POST).
pub fn delivery(n: usize) -> Delivery {
    let i = n % DELIVERY_KINDS;
    if let Some(sample) = DELIVERIES.get(i) {
        let mut body = parse(sample);
        body["eventId"] = json!(fresh_id());
        body["eventTime"] = json!(now());
        if let Some(events) = body["data"]["events"].as_array_mut() {
            for e in events {
                e["uuid"] = json!(fresh_id());
            }
        }
        return Delivery {
            label: sample.name.to_owned(),
            body,
        };
    }
    if i == DELIVERIES.len() {
        let mut event = parse(&EVENTS[0]);
        event["uuid"] = json!(fresh_id());
        return Delivery {
            label: format!("{} in an envelope", EVENTS[0].name),
            body: envelope(vec![event]),
        };
    }
    let events = all_events();
    Delivery {
        label: format!("batch of {} events", events.len()),
        body: envelope(events),
    }
}

/// A batch for the duplicates scenario: two fresh events.
pub fn duplicate_batch() -> Delivery {
    let events: Vec<Value> = all_events().into_iter().take(2).collect();
    Delivery {
        label: format!("batch of {} events", events.len()),
        body: envelope(events),
    }
}

/// The same events under a new `eventId`: a re-delivery Okta made as a new POST.
pub fn rebatched(original: &Delivery) -> Delivery {
    let events = original.body["data"]["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Delivery {
        label: format!("the same {} events under a new eventId", events.len()),
        body: envelope(events),
    }
}

/// The `n`th inline request of a type (cycling over its samples), with a fresh `eventId`
/// and `eventTime`. Returns the sample's name and the request.
pub fn inline_request(hook_type: HookType, n: usize) -> (&'static str, Value) {
    let samples = inline_samples(hook_type);
    let sample = &samples[n % samples.len()];
    let mut body = parse(sample);
    body["eventId"] = json!(fresh_id());
    body["eventTime"] = json!(now());
    (sample.name, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_parses_and_has_what_is_sent() {
        for s in DELIVERIES.iter().chain(EVENTS.iter()) {
            assert!(parse(s).is_object(), "{}", s.name);
        }
        for t in HookType::ALL {
            for s in inline_samples(t) {
                let v = parse(s);
                assert_eq!(v["eventType"], t.event_type(), "{}", s.name);
                assert!(v["data"].is_object(), "{}", s.name);
            }
        }
    }

    #[test]
    fn deliveries_have_fresh_ids_and_a_batch() {
        let a = delivery(0);
        let b = delivery(DELIVERY_KINDS);
        assert_ne!(a.body["eventId"], b.body["eventId"]);
        assert_ne!(a.uuids(), b.uuids());
        assert_eq!(a.uuids().len(), a.event_count());
        let batch = delivery(DELIVERY_KINDS - 1);
        assert!(batch.event_count() >= 4, "{}", batch.label);
        let mut uuids = batch.uuids();
        uuids.sort();
        uuids.dedup();
        assert_eq!(
            uuids.len(),
            batch.event_count(),
            "uuids distinct in a batch"
        );
        for i in 0..DELIVERY_KINDS {
            let d = delivery(i);
            assert_eq!(d.body["eventType"], "com.okta.event_hook");
            assert!(d.event_count() >= 1);
        }
    }

    #[test]
    fn a_rebatch_keeps_the_uuids_and_changes_the_event_id() {
        let d = duplicate_batch();
        let r = rebatched(&d);
        assert_eq!(d.uuids(), r.uuids());
        assert_ne!(d.body["eventId"], r.body["eventId"]);
    }

    #[test]
    fn inline_requests_get_fresh_event_ids() {
        let (_, a) = inline_request(HookType::Token, 0);
        let (_, b) = inline_request(HookType::Token, 0);
        assert_ne!(a["eventId"], b["eventId"]);
        let (name, _) = inline_request(HookType::Registration, 4);
        assert_eq!(name, "registration-hook-request-progressive-profile.json");
    }
}
