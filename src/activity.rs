//! Recent requests per hook, for the admin page: time, status, latency, outcome and
//! event types of the last [`PER_HOOK`] requests each hook answered.
//!
//! Kept in memory on each replica, bounded, and lost at restart: it answers "what did
//! Okta just send *this* replica and what did we answer", which is what an admin looks
//! at while testing a hook. What is durable (events, dead letters) lives in the store.
//!
//! One place records: the outermost layer of every hook route ([`crate::http::guard::track`])
//! knows the status and the latency of every answer, including those refused by the
//! guard before any handler ran. A handler that knows more (the event types it stored,
//! "registration denied") attaches a [`Note`] to its response as an extension.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Requests kept per hook.
pub const PER_HOOK: usize = 100;

/// What kind of call a request was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Okta's one-time verification GET of an event hook.
    Verification,
    /// An event hook POST carrying System Log events.
    Delivery,
    /// An inline hook call.
    Inline,
    /// Refused before a handler ran (auth, allowlist, timeout, bad route method).
    Refused,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Verification => "verification",
            Kind::Delivery => "delivery",
            Kind::Inline => "inline",
            Kind::Refused => "refused",
        }
    }
}

/// What a handler tells the recorder about its answer (a response extension).
#[derive(Debug, Clone)]
pub struct Note {
    pub kind: Kind,
    /// One short human line: "2 stored, 1 duplicate", "registration denied", "fallback (open): budget exceeded".
    pub outcome: String,
    /// Event types carried (event hooks) or the inline hook's type.
    pub event_types: Vec<String>,
}

impl Note {
    /// Attaches this note to a response, for [`crate::http::guard::track`] to record.
    pub fn attach(self, mut res: axum::response::Response) -> axum::response::Response {
        res.extensions_mut().insert(self);
        res
    }

    /// The distinct event types among `types`, in order of first appearance, at most
    /// [`TYPES_PER_ENTRY`] (a delivery may carry many events of few types).
    pub fn distinct_types<'a>(types: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for t in types {
            if out.len() == TYPES_PER_ENTRY {
                break;
            }
            if !out.iter().any(|o| o == t) {
                out.push(t.to_owned());
            }
        }
        out
    }
}

/// Event types kept per entry.
pub const TYPES_PER_ENTRY: usize = 20;

/// One answered request.
#[derive(Debug, Clone)]
pub struct Entry {
    pub at: SystemTime,
    /// The route's own name, shared: recording a request copies no string.
    pub hook: Arc<str>,
    pub kind: Kind,
    pub status: u16,
    pub latency: Duration,
    pub outcome: String,
    pub event_types: Vec<String>,
}

/// The last [`PER_HOOK`] requests of every hook, newest last.
#[derive(Debug, Default)]
pub struct Activity {
    hooks: Mutex<HashMap<Arc<str>, VecDeque<Entry>>>,
}

impl Activity {
    pub fn new() -> Activity {
        Activity::default()
    }

    pub fn record(&self, entry: Entry) {
        let mut hooks = self.hooks.lock().unwrap_or_else(|p| p.into_inner());
        let ring = hooks
            .entry(Arc::clone(&entry.hook))
            .or_insert_with(|| VecDeque::with_capacity(PER_HOOK));
        if ring.len() == PER_HOOK {
            ring.pop_front();
        }
        ring.push_back(entry);
    }

    /// A hook's recent requests, newest first, at most `limit`.
    pub fn recent(&self, hook: &str, limit: usize) -> Vec<Entry> {
        let hooks = self.hooks.lock().unwrap_or_else(|p| p.into_inner());
        hooks
            .get(hook)
            .map(|ring| ring.iter().rev().take(limit).cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(hook: &str, status: u16) -> Entry {
        Entry {
            at: SystemTime::now(),
            hook: hook.into(),
            kind: Kind::Delivery,
            status,
            latency: Duration::from_millis(1),
            outcome: String::new(),
            event_types: vec![],
        }
    }

    #[test]
    fn keeps_the_newest_per_hook_newest_first() {
        let a = Activity::new();
        for i in 0..(PER_HOOK as u16 + 5) {
            a.record(entry("okta", 200 + i));
        }
        a.record(entry("other", 401));
        let recent = a.recent("okta", 1000);
        assert_eq!(recent.len(), PER_HOOK);
        assert_eq!(recent[0].status, 200 + PER_HOOK as u16 + 4);
        assert_eq!(recent[PER_HOOK - 1].status, 205);
        assert_eq!(a.recent("other", 10)[0].status, 401);
        assert!(a.recent("none", 10).is_empty());
    }

    #[test]
    fn distinct_types_keep_the_first_order() {
        let types = ["b", "a", "b", "c", "a"];
        assert_eq!(Note::distinct_types(types), vec!["b", "a", "c"]);
        let many: Vec<String> = (0..50).map(|i| format!("t{i}")).collect();
        assert_eq!(
            Note::distinct_types(many.iter().map(String::as_str)).len(),
            TYPES_PER_ENTRY
        );
    }
}
