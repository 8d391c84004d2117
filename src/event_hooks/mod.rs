//! Event hooks: the one-time verification GET and the delivery POSTs.
//!
//! A delivery is acknowledged only after its events are durable in the store
//! (the 200 means "safe on disk", never "received in memory"). Processing is
//! deferred to the workers, woken through a channel; Okta's 3 s budget is spent
//! on parsing and one group-committed write, nothing else.

use crate::activity::{Kind, Note};
use crate::config::{EventHookConfig, SinkConfig};
use crate::glob::glob_match;
use crate::http::body::read_json_body;
use crate::http::error::ApiError;
use crate::http::guard::{Admission, Authenticated};
use crate::metrics::{HookLabel, Metrics};
use crate::okta::event_hook::{
    DeliveryError, EventHead, ParsedDelivery, VerificationResponse, VERIFICATION_HEADER,
};
use crate::store::{Delivery, NewEvent, Store};
use crate::time::now_millis;
use crate::worker::Waker;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

/// How long after its arrival a delivery may wait for its store commit (the rule and
/// why: [`crate::config::STORE_DEADLINE`]).
pub use crate::config::STORE_DEADLINE;

/// Which sinks of a hook want which events.
#[derive(Debug, Clone)]
pub struct Routing {
    sinks: Vec<(String, Vec<String>)>,
    ignore_actors: Vec<String>,
}

impl Routing {
    pub fn new(sinks: &[SinkConfig], ignore_actors: &[String]) -> Self {
        Routing {
            sinks: sinks
                .iter()
                .map(|s| (s.name.clone(), s.event_types.clone()))
                .collect(),
            ignore_actors: ignore_actors.to_vec(),
        }
    }

    /// The sinks that must receive this event: none when its actor is on the block-list,
    /// else every sink with no type filter or a glob that matches the event type.
    pub fn sinks_for(&self, head: &EventHead) -> Vec<String> {
        if let Some(actor) = &head.actor {
            let blocked = |v: &Option<String>| {
                v.as_deref()
                    .is_some_and(|v| self.ignore_actors.iter().any(|a| a == v))
            };
            if blocked(&actor.id) || blocked(&actor.alternate_id) {
                return Vec::new();
            }
        }
        let event_type = head.event_type.as_deref().unwrap_or("");
        self.sinks
            .iter()
            .filter(|(_, globs)| {
                globs.is_empty() || globs.iter().any(|g| glob_match(g, event_type))
            })
            .map(|(name, _)| name.clone())
            .collect()
    }
}

/// Everything a hook's handlers need.
pub struct HookState {
    pub name: String,
    pub routing: Routing,
    pub store: Arc<dyn Store>,
    pub waker: Waker,
    pub metrics: Arc<Metrics>,
    pub max_body_bytes: usize,
}

impl HookState {
    pub fn new(
        config: &EventHookConfig,
        store: Arc<dyn Store>,
        waker: Waker,
        metrics: Arc<Metrics>,
        max_body_bytes: usize,
    ) -> Self {
        HookState {
            name: config.name.clone(),
            routing: Routing::new(&config.sinks, &config.ignore_actors),
            store,
            waker,
            metrics,
            max_body_bytes,
        }
    }

    /// Counts what a commit stored and wakes the workers when there is new work.
    fn count_stored(&self, label: &HookLabel, outcome: &crate::store::IngestOutcome) {
        self.metrics
            .events_stored
            .get_or_create(label)
            .inc_by(outcome.stored as u64);
        self.metrics
            .duplicates
            .get_or_create(label)
            .inc_by(outcome.duplicates as u64);
        if outcome.stored > 0 {
            self.waker.wake();
        }
    }
}

/// The routes of one hook: GET verifies, POST delivers, anything else is 405.
/// The guard (allowlist and auth) is layered on by the caller; both handlers take its
/// [`Authenticated`], so without it they refuse every call (500) before reading anything.
pub fn routes(path: &str, state: Arc<HookState>) -> Router {
    Router::new()
        .route(
            path,
            get(verify)
                .post(deliver)
                .fallback(|| async { ApiError::method_not_allowed() }),
        )
        .with_state(state)
}

/// The one-time verification: echo `X-Okta-Verification-Challenge` as `{"verification": ...}`.
///
/// `auth` is the guard's pass ([`Authenticated`]): without the guard there is no verification.
async fn verify(
    State(s): State<Arc<HookState>>,
    auth: Authenticated,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let challenge = headers
        .get(VERIFICATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 1024)
        .ok_or_else(|| {
            ApiError::bad_request(
                "Verification needs an X-Okta-Verification-Challenge header (1 to 1024 visible ASCII characters)",
            )
        })?;
    tracing::info!(
        hook = %s.name,
        client = %auth.client(),
        credentials = auth.admission() == Admission::Credentials,
        "event hook verification answered"
    );
    let note = Note {
        kind: Kind::Verification,
        outcome: "verification answered".to_owned(),
        event_types: Vec::new(),
    };
    Ok(note.attach(
        Json(VerificationResponse {
            verification: challenge.to_owned(),
        })
        .into_response(),
    ))
}

/// Every number of a stored event must fit an `f64`. Events are kept as sent (raw JSON),
/// and skipping over a raw value checks only the syntax, so without this `1e400` or a
/// 10,000-digit integer would be stored, acknowledged and handed to sinks whose own
/// parsers refuse it, to be dead-lettered there. Each event is walked once more by
/// serde_json's own number parser, which refuses what does not fit, but nothing is built:
/// building a `Value` (a map per object, a `String` per key) was a tenth of the ack
/// path's CPU. The recursion limit holds as in the first parse.
fn numbers_in_range(event: &str) -> Result<(), serde_json::Error> {
    serde_json::from_str::<Checked>(event).map(drop)
}

/// Any JSON value, read and dropped; numbers go through `f64`/`i64`/`u64` on the way.
struct Checked;

impl<'de> serde::Deserialize<'de> for Checked {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> serde::de::Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, Checked>()?
            .is_some()
        {}
        Ok(Checked)
    }
}

/// A delivery, with a note for the admin page of what became of it.
///
/// `auth` is the guard's pass ([`Authenticated`]): without the guard the body is never read.
async fn deliver(State(s): State<Arc<HookState>>, auth: Authenticated, req: Request) -> Response {
    let arrival = req
        .extensions()
        .get::<crate::http::guard::Arrival>()
        .map_or_else(Instant::now, |a| a.0);
    let mut event_types = Vec::new();
    let stored = store_delivery(
        &s,
        auth.client(),
        req,
        arrival + STORE_DEADLINE,
        &mut event_types,
    )
    .await;
    let (res, outcome) = match stored {
        Ok(o) => (
            StatusCode::OK.into_response(),
            format!("{} stored, {} duplicates", o.stored, o.duplicates),
        ),
        Err(e) => (e.clone().into_response(), e.summary.into_owned()),
    };
    let note = Note {
        kind: Kind::Delivery,
        outcome,
        event_types,
    };
    note.attach(res)
}

/// A delivery: check, parse, store durably, then answer 200 with an empty body; 503 when
/// the store has not committed by `deadline` (see [`STORE_DEADLINE`]).
/// Fills `event_types` once the body is parsed.
async fn store_delivery(
    s: &Arc<HookState>,
    client: IpAddr,
    req: Request,
    deadline: Instant,
    event_types: &mut Vec<String>,
) -> Result<crate::store::IngestOutcome, ApiError> {
    let started = Instant::now();
    let body = read_json_body(req, s.max_body_bytes).await?;
    let parsed = ParsedDelivery::parse(&body).map_err(|e| {
        let msg = match &e {
            DeliveryError::Syntax(_) => format!("Malformed JSON: {e}"),
            _ => e.to_string(),
        };
        ApiError::bad_request(msg)
    })?;
    for (i, (_, raw)) in parsed.events.iter().enumerate() {
        numbers_in_range(raw.get()).map_err(|e| {
            ApiError::bad_request(format!("Malformed JSON in data.events[{i}]: {e}"))
        })?;
    }
    *event_types = Note::distinct_types(
        parsed
            .events
            .iter()
            .map(|(h, _)| h.event_type.as_deref().unwrap_or("")),
    );
    let received_at = now_millis();
    let event_id = parsed.envelope.event_id.clone();
    let events: Vec<NewEvent> = parsed
        .events
        .iter()
        .map(|(head, raw)| NewEvent {
            uuid: head.uuid.clone(),
            event_type: head.event_type.clone().unwrap_or_default(),
            published: head.published.clone(),
            payload: raw.get().to_owned(),
            sinks: s.routing.sinks_for(head),
        })
        .collect();
    let count = events.len();
    let store = s.store.clone();
    let delivery = Delivery {
        hook: s.name.clone(),
        event_id: event_id.clone(),
        received_at,
        events,
        recovered: false,
    };
    // Owned, so that a commit still running at the deadline can be left to finish.
    let mut commit = Box::pin(async move { store.ingest(delivery).await });
    let committed = match tokio::time::timeout_at(deadline.into(), &mut commit).await {
        Ok(committed) => committed,
        Err(_) => {
            tracing::error!(
                hook = %s.name,
                client = %client,
                event_id = %event_id,
                waited_ms = started.elapsed().as_millis() as u64,
                "delivery not stored in time: answering 503 so that Okta retries (the write goes on)"
            );
            let (s, event_id) = (s.clone(), event_id.clone());
            tokio::spawn(async move {
                match commit.await {
                    Ok(outcome) => {
                        let label = HookLabel {
                            hook: s.name.clone(),
                        };
                        s.count_stored(&label, &outcome);
                        tracing::warn!(hook = %s.name, event_id = %event_id, stored = outcome.stored, "delivery stored after its 503: Okta's retry will be acknowledged as duplicates");
                    }
                    Err(e) => {
                        tracing::info!(hook = %s.name, event_id = %event_id, error = %e, "delivery answered 503 was not stored either")
                    }
                }
            });
            return Err(ApiError::store_too_slow());
        }
    };
    let outcome = committed.map_err(|e| {
        tracing::error!(hook = %s.name, client = %client, event_id = %event_id, error = %e, "delivery not stored: answering 503 so that Okta retries");
        ApiError::from(e)
    })?;
    let label = HookLabel {
        hook: s.name.clone(),
    };
    s.count_stored(&label, &outcome);
    let elapsed = started.elapsed();
    s.metrics
        .ack_seconds
        .get_or_create(&label)
        .observe(elapsed.as_secs_f64());
    let uuids: Vec<&str> = parsed.events.iter().map(|(h, _)| h.uuid.as_str()).collect();
    tracing::info!(
        hook = %s.name,
        client = %client,
        event_id = %event_id,
        events = count,
        stored = outcome.stored,
        duplicates = outcome.duplicates,
        uuids = ?uuids,
        ack_us = elapsed.as_micros() as u64,
        "delivery stored"
    );
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::okta::event_hook::ActorHead;

    fn head(event_type: &str, actor: Option<&str>) -> EventHead {
        EventHead {
            uuid: "u".into(),
            event_type: Some(event_type.into()),
            published: None,
            actor: actor.map(|a| ActorHead {
                id: Some(a.into()),
                alternate_id: Some(format!("{a}@example.com")),
            }),
        }
    }

    #[test]
    fn routing_filters_by_glob_and_actor() {
        let r = Routing {
            sinks: vec![
                ("all".into(), vec![]),
                ("lifecycle".into(), vec!["user.lifecycle.*".into()]),
            ],
            ignore_actors: vec!["svc@example.com".into()],
        };
        assert_eq!(r.sinks_for(&head("user.session.start", None)), vec!["all"]);
        assert_eq!(
            r.sinks_for(&head("user.lifecycle.deactivate", Some("x"))),
            vec!["all", "lifecycle"]
        );
        assert!(r
            .sinks_for(&head("user.lifecycle.deactivate", Some("svc")))
            .is_empty());
    }

    #[test]
    fn numbers_beyond_an_f64_are_refused() {
        assert!(numbers_in_range(r#"{"n": 1.5e300, "i": 18446744073709551615}"#).is_ok());
        assert!(numbers_in_range(r#"{"n": 123456789012345678901234567890}"#).is_ok());
        assert!(numbers_in_range(
            r#"{"a": [1, -2, 0.5, "s\\u00e9", null, true, {"b": {}}], "c": []}"#
        )
        .is_ok());
        assert!(numbers_in_range(r#"{"a": [1, }"#).is_err());
        for bad in ["1e400", "-1e400", &"9".repeat(10_000), "[[1e999]]"] {
            let e = numbers_in_range(&format!(r#"{{"n": {bad}}}"#)).expect_err(bad);
            assert!(e.to_string().contains("out of range"), "{e}");
        }
    }
}
