//! What a handler is to the runtime: the call it gets, the answer it gives, the seam
//! ([`Handler`]) that rules, scripts and forwards implement. Below them all, so that the
//! handlers import nothing from the runtime that builds and runs them.

use crate::okta::inline::{HookType, InlineResponse};
use async_trait::async_trait;
use serde_json::Value;
use std::time::Instant;

/// One call from Okta, parsed and checked to be a request of the hook's type.
#[derive(Debug, Clone)]
pub struct InlineCall {
    pub hook_type: HookType,
    /// The request's `eventId`, when present.
    pub event_id: Option<String>,
    /// The whole request as Okta sent it.
    pub body: Value,
    /// When the budget runs out (the request's arrival plus the hook's budget). The
    /// caller drops the handler's future then; a handler that holds a thread (a script)
    /// stops itself before it.
    pub deadline: Instant,
}

/// A handler's answer: built by hookwarden (rules), or JSON written by the user's script
/// or service, which is read the way Okta reads it ([`crate::okta::inline::answer::read`]).
#[derive(Debug, Clone)]
pub enum Reply {
    Typed(InlineResponse),
    Json(Value),
}

/// Why a handler gave no answer; the hook's fallback is sent instead.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct HandlerError(pub String);

/// What turns a request into an answer: rules, a script or a forward.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Produces the answer. The caller enforces the deadline (it drops this future then)
    /// and settles the answer before it leaves.
    async fn handle(&self, call: &InlineCall) -> Result<Reply, HandlerError>;
}
