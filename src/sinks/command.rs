//! Command sink: runs a program once per record, with the record JSON on its stdin.
//!
//! Exit status 0 is success. The program also gets `HOOKWARDEN_HOOK`,
//! `HOOKWARDEN_EVENT_TYPE` and `HOOKWARDEN_UUID` in its environment (on top of
//! hookwarden's own), so a script can route without parsing JSON.
//!
//! Its standard output is discarded: hookwarden's own stdout belongs to the stdout
//! sink, and an unread pipe would block a chatty program. The start of its standard
//! error goes into the failure message when it fails.

use super::*;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// Bytes of the program's stderr kept for the failure message.
const STDERR_PREFIX_BYTES: usize = 200;
/// After the program exited, how long its stderr may stay open (a background
/// child holding it) before the message is built from what arrived.
const STDERR_GRACE: Duration = Duration::from_millis(200);

pub struct CommandSink {
    program: PathBuf,
    args: Vec<String>,
    timeout: Duration,
}

impl CommandSink {
    pub fn new(program: PathBuf, args: Vec<String>, timeout: Duration) -> Self {
        CommandSink {
            program,
            args,
            timeout,
        }
    }
}

/// Reads `reader` to its end, keeping only the first `keep` bytes. Draining it all
/// matters: a program blocked on a full stderr pipe would never exit.
async fn read_prefix(mut reader: impl AsyncRead + Unpin, keep: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = keep.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

/// Stderr bytes as one short printable line.
fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

#[async_trait]
impl Sink for CommandSink {
    async fn deliver(&self, record: &SinkRecord<'_>) -> Result<(), SinkError> {
        let program = self.program.display();
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .env("HOOKWARDEN_HOOK", record.hook)
            .env("HOOKWARDEN_EVENT_TYPE", record.event_type)
            .env("HOOKWARDEN_UUID", record.uuid)
            // Never our stdin: the record is the program's only input.
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // If this attempt is abandoned (timeout, shutdown), the program goes with it.
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                let message = format!("cannot start {program}: {e}");
                match e.kind() {
                    // Retrying will not make the file appear or become executable:
                    // the configuration must change.
                    std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::PermissionDenied
                    | std::io::ErrorKind::InvalidInput => SinkError::permanent(message),
                    // Out of processes, memory or file descriptors: may pass.
                    _ => SinkError::transient(message),
                }
            })?;

        let stdin = child.stdin.take();
        let stderr = child
            .stderr
            .take()
            .map(|s| tokio::spawn(read_prefix(s, STDERR_PREFIX_BYTES)));
        let input = record.to_json();
        let run = async {
            let write = async {
                if let Some(mut stdin) = stdin {
                    // A program that exits without reading all its input breaks the
                    // pipe; its exit status, not the write, tells how it went.
                    let _ = stdin.write_all(&input).await;
                    let _ = stdin.shutdown().await;
                    // Dropping closes the pipe: the program sees end of input.
                }
            };
            let ((), status) = tokio::join!(write, child.wait());
            status
        };
        let status = match tokio::time::timeout(self.timeout, run).await {
            Ok(status) => status,
            Err(_) => {
                let _ = child.kill().await;
                if let Some(t) = stderr {
                    t.abort();
                }
                return Err(SinkError::transient(format!(
                    "{program} timed out after {} and was killed",
                    humantime::format_duration(self.timeout)
                )));
            }
        };
        let status =
            status.map_err(|e| SinkError::transient(format!("waiting for {program}: {e}")))?;
        if status.success() {
            if let Some(t) = stderr {
                t.abort();
            }
            return Ok(());
        }
        let stderr = match stderr {
            Some(mut t) => match tokio::time::timeout(STDERR_GRACE, &mut t).await {
                Ok(Ok(bytes)) => printable(&bytes),
                _ => {
                    t.abort();
                    String::new()
                }
            },
            None => String::new(),
        };
        let what = match status.code() {
            Some(code) => format!("{program} exited with code {code}"),
            None => format!("{program} ended abnormally ({status})"),
        };
        Err(SinkError::transient(if stderr.is_empty() {
            what
        } else {
            format!("{what}: {stderr}")
        }))
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::store::Job;

    fn job() -> Job {
        crate::sinks::test_job("script", "u-7", "user.lifecycle.deactivate")
    }

    fn sh(script: &str, timeout: Duration) -> CommandSink {
        CommandSink::new(
            PathBuf::from("/bin/sh"),
            vec!["-c".into(), script.into()],
            timeout,
        )
    }

    async fn send(sink: &CommandSink) -> Result<(), SinkError> {
        let job = job();
        let record = SinkRecord::from_job(&job).expect("record");
        sink.deliver(&record).await
    }

    #[tokio::test]
    async fn success_gets_the_record_and_the_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        let script = format!(
            "cat > '{0}' && printf '%s|%s|%s' \"$HOOKWARDEN_HOOK\" \"$HOOKWARDEN_EVENT_TYPE\" \"$HOOKWARDEN_UUID\" > '{0}.env'",
            out.display()
        );
        send(&sh(&script, Duration::from_secs(5)))
            .await
            .expect("delivered");
        let body = std::fs::read_to_string(&out).expect("stdin copy");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json on stdin");
        assert_eq!(v["uuid"], "u-7");
        assert_eq!(v["event"]["uuid"], "u-7");
        let env = std::fs::read_to_string(dir.path().join("out.env")).expect("env copy");
        assert_eq!(env, "okta|user.lifecycle.deactivate|u-7");
    }

    #[tokio::test]
    async fn a_program_that_ignores_its_input_succeeds() {
        send(&sh("exit 0", Duration::from_secs(5)))
            .await
            .expect("delivered");
    }

    #[tokio::test]
    async fn non_zero_exit_is_transient_with_code_and_stderr() {
        let err = send(&sh(
            "cat > /dev/null; echo 'boom: disk full' >&2; exit 3",
            Duration::from_secs(5),
        ))
        .await
        .expect_err("must fail");
        assert!(!err.permanent, "{err}");
        assert!(err.message.contains("code 3"), "{err}");
        assert!(err.message.contains("boom: disk full"), "{err}");
    }

    #[tokio::test]
    async fn stderr_is_cut_short() {
        let err = send(&sh(
            "i=0; while [ $i -lt 500 ]; do printf 'xxxxxxxxxx' >&2; i=$((i+1)); done; exit 1",
            Duration::from_secs(5),
        ))
        .await
        .expect_err("must fail");
        assert!(err.message.len() < STDERR_PREFIX_BYTES + 100, "{err}");
    }

    #[tokio::test]
    async fn a_slow_program_is_killed_at_the_timeout() {
        let started = std::time::Instant::now();
        let err = send(&sh("exec sleep 10", Duration::from_millis(200)))
            .await
            .expect_err("must time out");
        assert!(!err.permanent, "{err}");
        assert!(err.message.contains("timed out after 200ms"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_missing_program_is_permanent() {
        let sink = CommandSink::new(
            PathBuf::from("/nonexistent/hookwarden-sink"),
            Vec::new(),
            Duration::from_secs(1),
        );
        let err = send(&sink).await.expect_err("must fail");
        assert!(err.permanent, "{err}");
        assert!(
            err.message.contains("/nonexistent/hookwarden-sink"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_file_that_is_not_executable_is_permanent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("script.sh");
        std::fs::write(&path, "#!/bin/sh\nexit 0\n").expect("write");
        let sink = CommandSink::new(path, Vec::new(), Duration::from_secs(1));
        let err = send(&sink).await.expect_err("must fail");
        assert!(err.permanent, "{err}");
    }
}
