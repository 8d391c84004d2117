//! Row helpers both backends share: the same columns read the same way.

use super::{EventState, StoreError};
use serde_json::value::RawValue;

/// An event's state as the stores' SQL spells it (see each backend's `EVENT_STATE_SQL`).
pub(super) fn event_state(s: &str) -> Option<EventState> {
    match s {
        "pending" => Some(EventState::Pending),
        "delivered" => Some(EventState::Delivered),
        "dead" => Some(EventState::Dead),
        "ignored" => Some(EventState::Ignored),
        _ => None,
    }
}

/// Attempts as stored (an INTEGER) to the `u32` of the API.
pub(super) fn attempts(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// A SQL count as `u64` (counts are never negative).
pub(super) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The stored payload as raw JSON. The handler stores only JSON it parsed, so the
/// fallback (the text as a JSON string) is for a hand-edited database: showing the
/// text beats failing the whole `show`.
pub(super) fn raw_json(payload: String) -> Result<Box<RawValue>, StoreError> {
    if serde_json::from_str::<&RawValue>(&payload).is_ok() {
        RawValue::from_string(payload)
    } else {
        serde_json::value::to_raw_value(&payload)
    }
    .map_err(|e| StoreError::Unavailable(format!("a stored event payload: {e}")))
}
