//! Inline hooks at run time: one handler per configured hook, answered inside its budget.

pub mod cache;
pub mod check;
pub mod forward;
pub mod rules;
pub mod script;

use crate::okta::inline::{HookType, InlineResponse};
use async_trait::async_trait;
use serde_json::Value;

/// One call from Okta, parsed and checked to be a request of the hook's type.
#[derive(Debug, Clone)]
pub struct InlineCall {
    pub hook_type: HookType,
    /// The request's `eventId`, when present.
    pub event_id: Option<String>,
    /// The whole request as Okta sent it.
    pub body: Value,
}

/// Why a handler gave no answer; the hook's fallback is sent instead.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct HandlerError(pub String);

/// What turns a request into an answer: rules, a script or a forward.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Produces the answer. The caller enforces the budget (it drops this future at the
    /// deadline) and checks the answer before it leaves.
    async fn handle(&self, call: &InlineCall) -> Result<InlineResponse, HandlerError>;
}
