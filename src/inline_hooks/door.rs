//! An inline hook at the door: its budget and its fallback, for a bearer token whose key
//! fetch cannot finish inside the budget (see [`crate::http::guard::DeadlineAnswer`]).

use super::InlineHook;
use crate::activity::{Kind, Note};
use crate::http::guard::DeadlineAnswer;
use crate::metrics::{InlineLabel, InlineOutcome};
use axum::response::Response;
use std::time::Duration;

impl DeadlineAnswer for InlineHook {
    fn budget(&self) -> Duration {
        self.budget
    }

    /// The hook's fallback, as `answer_call` sends it when the handler misses the
    /// budget. The body was never read, so there is no `eventId` to remember it under.
    fn answer(&self) -> Response {
        let outcome = InlineOutcome::fallback_deadline;
        let answer = self.fallback_answer();
        let bytes = serde_json::to_vec(&answer).unwrap_or_else(|_| b"{}".to_vec());
        self.metrics
            .inline_calls
            .get_or_create(&InlineLabel {
                hook: self.name.clone(),
                outcome,
            })
            .inc();
        tracing::info!(hook = %self.name, outcome = ?outcome, "inline hook answered at the door");
        let note = Note {
            kind: Kind::Inline,
            outcome: super::describe(self, &answer, outcome),
            event_types: vec![self.hook_type.event_type().to_owned()],
        };
        note.attach(super::answer_response(bytes::Bytes::from(bytes), outcome))
    }
}
