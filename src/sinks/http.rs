//! HTTP forward sink (being written).
use super::*;
use crate::config::Secret;
use std::collections::BTreeMap;
use std::time::Duration;
pub struct HttpSink {}
impl HttpSink {
    pub fn new(
        url: &str,
        headers: &BTreeMap<String, Secret>,
        timeout: Duration,
    ) -> Result<Self, String> {
        let _ = (url, headers, timeout);
        todo!()
    }
}
#[async_trait]
impl Sink for HttpSink {
    async fn deliver(&self, record: &SinkRecord<'_>) -> Result<(), SinkError> {
        let _ = record;
        todo!()
    }
}
