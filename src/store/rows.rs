//! Row helpers both backends share: the same columns read the same way.

use super::{EventState, JobCounts, Millis, SinkJobs, StoreError};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

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

/// One row of a backend's count query: the jobs of one (hook, sink) in one state.
pub(super) struct CountRow {
    pub hook: String,
    pub sink: String,
    /// Dead letters; else pending jobs.
    pub dead: bool,
    pub jobs: i64,
    /// Pending rows only: see [`SinkJobs::oldest_pending`].
    pub oldest: Option<Millis>,
}

/// The count query's rows gathered into one [`SinkJobs`] per (hook, sink), in name order.
pub(super) fn job_counts(rows: impl IntoIterator<Item = CountRow>) -> JobCounts {
    let mut by_sink: BTreeMap<(String, String), SinkJobs> = BTreeMap::new();
    for r in rows {
        let entry = by_sink
            .entry((r.hook.clone(), r.sink.clone()))
            .or_insert_with(|| SinkJobs {
                hook: r.hook,
                sink: r.sink,
                ..SinkJobs::default()
            });
        if r.dead {
            entry.dead += count(r.jobs);
        } else {
            entry.backlog += count(r.jobs);
            entry.oldest_pending = match (entry.oldest_pending, r.oldest) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
    }
    JobCounts {
        sinks: by_sink.into_values().collect(),
    }
}
