//! Standard output sink (being written).
use super::*;
pub struct StdoutSink {}
impl StdoutSink {
    pub fn new() -> Self {
        StdoutSink {}
    }
}
impl Default for StdoutSink {
    fn default() -> Self {
        Self::new()
    }
}
#[async_trait]
impl Sink for StdoutSink {
    async fn deliver(&self, record: &SinkRecord<'_>) -> Result<(), SinkError> {
        let _ = record;
        todo!()
    }
}
