//! Forward to the user's own service (being written).

use super::{Handler, HandlerError, InlineCall};
use crate::config::Secret;
use crate::okta::inline::InlineResponse;
use async_trait::async_trait;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The `[inline_hooks.handler]` table of `kind = "forward"`.
#[derive(Debug, Clone, Deserialize)]
pub struct ForwardConfig {
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
}

pub struct ForwardHandler {}

impl ForwardHandler {
    pub fn new(config: &ForwardConfig, budget: std::time::Duration) -> Result<Self, String> {
        let _ = (config, budget);
        Ok(ForwardHandler {})
    }
}

#[async_trait]
impl Handler for ForwardHandler {
    async fn handle(&self, call: &InlineCall) -> Result<InlineResponse, HandlerError> {
        let _ = call;
        Err(HandlerError("forward is not written yet".into()))
    }
}
