//! Standard output sink: one JSON line per record.
//!
//! Logs go to standard error (see [`crate::telemetry`]), so standard output carries
//! nothing but records and can be piped straight into a log shipper.

use super::*;
use std::io::Write;

/// Writes each record as one line of JSON on standard output.
///
/// Holds no state: the process-wide lock of [`std::io::Stdout`] is what keeps lines
/// whole, since every writer to standard output in this process goes through it.
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

/// Writes `line` (which ends with its newline; or several whole lines) in one call
/// and flushes.
///
/// One `write_all` of one buffer under one lock: another thread cannot slip
/// bytes between the record and its newline, so lines never interleave.
fn write_line(out: &mut impl Write, line: &[u8]) -> std::io::Result<()> {
    out.write_all(line)?;
    out.flush()
}

/// Writes `lines` (whole lines) to standard output off the async threads: a slow
/// reader on the other end of a pipe blocks the write.
async fn write_stdout(lines: Vec<u8>) -> Result<(), SinkError> {
    tokio::task::spawn_blocking(move || {
        let stdout = std::io::stdout();
        let mut lock = stdout.lock();
        write_line(&mut lock, &lines)
    })
    .await
    .map_err(|e| SinkError::transient(format!("stdout writer task failed: {e}")))?
    .map_err(|e| SinkError::transient(format!("cannot write to standard output: {e}")))
}

#[async_trait]
impl Sink for StdoutSink {
    async fn deliver(&self, record: &SinkRecord<'_>) -> Result<(), SinkError> {
        write_stdout(json_lines(std::slice::from_ref(record))).await
    }

    fn batches(&self) -> bool {
        true
    }

    /// Every line of the batch in one buffer: one write, one flush.
    async fn deliver_batch(&self, records: &[SinkRecord<'_>]) -> Result<(), SinkError> {
        write_stdout(json_lines(records)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Job;

    fn job() -> Job {
        crate::sinks::test_job("out", "u-1", "user.session.start")
    }

    #[test]
    fn one_line_per_record() {
        let job = job();
        let record = SinkRecord::from_job(&job).expect("record");
        let mut line = record.to_json();
        line.push(b'\n');
        let mut out = Vec::new();
        write_line(&mut out, &line).expect("write");
        write_line(&mut out, &line).expect("write");
        let text = String::from_utf8(out).expect("utf8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(lines[0]).expect("json");
        assert_eq!(v["uuid"], "u-1");
        assert_eq!(v["event"]["uuid"], "u-1");
    }

    #[test]
    fn pretty_printed_events_are_flattened_without_changing_them() {
        let mut job = job();
        job.payload = "{\n  \"uuid\": \"u-1\",\r\n  \"s\": \"x\\ny\"\n}".into();
        let record = SinkRecord::from_job(&job).expect("record");
        let line = record.to_json();
        assert!(!line.contains(&b'\n') && !line.contains(&b'\r'));
        let v: serde_json::Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(v["event"]["s"], "x\ny");
    }

    #[tokio::test]
    async fn deliver_succeeds() {
        let job = job();
        let record = SinkRecord::from_job(&job).expect("record");
        StdoutSink::new().deliver(&record).await.expect("delivered");
    }
}
