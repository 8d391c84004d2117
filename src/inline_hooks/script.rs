//! Rhai scripts (being written).

use super::{Handler, HandlerError, InlineCall};
use crate::okta::inline::InlineResponse;
use async_trait::async_trait;
use serde::Deserialize;
use std::path::PathBuf;

/// The `[inline_hooks.handler]` table of `kind = "script"`.
#[derive(Debug, Clone, Deserialize)]
pub struct ScriptConfig {
    /// The script file (compiled once at start).
    pub file: PathBuf,
}

pub struct ScriptHandler {}

impl ScriptHandler {
    pub fn new(config: &ScriptConfig, budget: std::time::Duration) -> Result<Self, String> {
        let _ = (config, budget);
        Ok(ScriptHandler {})
    }
}

#[async_trait]
impl Handler for ScriptHandler {
    async fn handle(&self, call: &InlineCall) -> Result<InlineResponse, HandlerError> {
        let _ = call;
        Err(HandlerError("scripts are not written yet".into()))
    }
}
