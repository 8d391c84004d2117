//! Checks an answer against the contract of its hook type before it leaves (being written).

use crate::okta::inline::{HookType, InlineResponse};
use serde_json::Value;

/// Why an answer is not acceptable to Okta for this hook type.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct CheckError(pub String);

/// Checks `response` for a hook of type `hook_type` answering `request` (the whole request JSON).
pub fn check(hook_type: HookType, response: &InlineResponse, request: &Value) -> Result<(), CheckError> {
    let _ = (hook_type, response, request);
    Ok(())
}
