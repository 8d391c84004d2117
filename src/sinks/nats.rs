//! NATS JetStream sink (being written).

use super::*;
use crate::config::Secret;
use std::time::Duration;

/// Publishes each event to JetStream with `Nats-Msg-Id: <uuid>`.
pub struct NatsSink {}

impl NatsSink {
    /// Builds the sink; the connection is made on first use.
    pub fn new(
        url: &str,
        subject: &str,
        token: Option<&Secret>,
        timeout: Duration,
    ) -> Result<Self, String> {
        let _ = (url, subject, token, timeout);
        Err("the nats sink is not available yet".to_owned())
    }
}

#[async_trait]
impl Sink for NatsSink {
    async fn deliver(&self, record: &SinkRecord<'_>) -> Result<(), SinkError> {
        let _ = record;
        Err(SinkError::permanent("the nats sink is not available yet"))
    }
}
