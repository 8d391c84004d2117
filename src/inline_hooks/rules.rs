//! Declarative rules (being written).

use super::{Handler, HandlerError, InlineCall};
use crate::okta::inline::{HookType, InlineResponse};
use async_trait::async_trait;
use serde::Deserialize;

/// The `[inline_hooks.handler]` table of `kind = "rules"`.
#[derive(Debug, Clone, Deserialize)]
pub struct RulesConfig {}

pub struct RulesHandler {}

impl RulesHandler {
    /// Builds the handler for a hook of this type; errors name the offending rule.
    pub fn new(hook_type: HookType, config: &RulesConfig) -> Result<Self, String> {
        let _ = (hook_type, config);
        Ok(RulesHandler {})
    }
}

#[async_trait]
impl Handler for RulesHandler {
    async fn handle(&self, call: &InlineCall) -> Result<InlineResponse, HandlerError> {
        let _ = call;
        Err(HandlerError("rules are not written yet".into()))
    }
}
