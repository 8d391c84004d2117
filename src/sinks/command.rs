//! Command sink (being written).
use super::*;
use std::path::PathBuf;
use std::time::Duration;
pub struct CommandSink {}
impl CommandSink {
    pub fn new(program: PathBuf, args: Vec<String>, timeout: Duration) -> Self {
        let _ = (program, args, timeout);
        CommandSink {}
    }
}
#[async_trait]
impl Sink for CommandSink {
    async fn deliver(&self, record: &SinkRecord<'_>) -> Result<(), SinkError> {
        let _ = record;
        todo!()
    }
}
