//! `[reconcile]`: System Log reconciliation settings (see [`crate::reconcile`]).

use super::{Config, Problem};
use serde::Deserialize;

/// Polls Okta's System Log for events the event hooks never delivered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileConfig {}

impl ReconcileConfig {
    /// Problems of this section, with their keys (`reconcile.…`).
    pub fn problems(&self, _config: &Config) -> Vec<Problem> {
        Vec::new()
    }
}
