//! Idempotent answers to Okta's retries.
//!
//! Import, password import, registration and SAML hooks may be called twice for one
//! `eventId` (a retry after a timeout or a 5xx). The second call must get the same answer,
//! or a user could be created twice or a registration allowed once and denied once. The
//! answer bytes are kept per `eventId` for a while, in a map bounded in entries and time.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A bounded map from `eventId` to the answer bytes sent for it.
pub struct AnswerCache {
    ttl: Duration,
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    answers: HashMap<String, (Instant, bytes::Bytes)>,
    /// Insertion order, for expiry and for eviction when full (oldest first).
    order: VecDeque<(Instant, String)>,
}

impl AnswerCache {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        AnswerCache {
            ttl,
            capacity: capacity.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The answer sent for `event_id`, if it is still fresh.
    pub fn get(&self, event_id: &str) -> Option<bytes::Bytes> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .answers
            .get(event_id)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, b)| b.clone())
    }

    /// Remembers the answer sent for `event_id` (the first one wins).
    pub fn insert(&self, event_id: &str, answer: bytes::Bytes) {
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        // Expire from the front, then make room.
        while let Some((at, _)) = inner.order.front() {
            if now.duration_since(*at) < self.ttl && inner.order.len() < self.capacity {
                break;
            }
            if let Some((at, key)) = inner.order.pop_front() {
                // Only remove the entry this queue item stands for (not a newer one).
                if inner.answers.get(&key).is_some_and(|(t, _)| *t == at) {
                    inner.answers.remove(&key);
                }
            }
        }
        if inner.answers.contains_key(event_id) {
            return;
        }
        inner.answers.insert(event_id.to_owned(), (now, answer));
        inner.order.push_back((now, event_id.to_owned()));
    }

    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .answers
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_the_first_answer_within_the_ttl() {
        let c = AnswerCache::new(Duration::from_secs(60), 10);
        c.insert("e1", bytes::Bytes::from_static(b"{\"a\":1}"));
        c.insert("e1", bytes::Bytes::from_static(b"{\"a\":2}"));
        assert_eq!(c.get("e1").as_deref(), Some(&b"{\"a\":1}"[..]));
        assert!(c.get("e2").is_none());
    }

    #[test]
    fn bounded_in_entries() {
        let c = AnswerCache::new(Duration::from_secs(60), 3);
        for i in 0..10 {
            c.insert(&format!("e{i}"), bytes::Bytes::from_static(b"{}"));
        }
        assert_eq!(c.len(), 3);
        assert!(c.get("e9").is_some());
        assert!(c.get("e0").is_none());
    }

    #[test]
    fn bounded_in_time() {
        let c = AnswerCache::new(Duration::from_millis(20), 100);
        c.insert("old", bytes::Bytes::from_static(b"{}"));
        std::thread::sleep(Duration::from_millis(30));
        assert!(c.get("old").is_none(), "expired answers are not repeated");
        c.insert("new", bytes::Bytes::from_static(b"{}"));
        assert_eq!(c.len(), 1, "expired entries are dropped on insert");
    }
}
