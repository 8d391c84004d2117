//! Where stored events go: the sink seam and the sinks that ship with hookwarden.
//!
//! Every sink receives the same [`SinkRecord`], serialised as one JSON object:
//!
//! ```json
//! {"hook":"okta","sink":"archive","uuid":"…","eventId":"…","eventType":"user.session.start",
//!  "receivedAt":"2026-11-23T12:00:00.000Z","attempt":1,"event":{ …the System Log event as Okta sent it… }}
//! ```
//!
//! An event found by System Log reconciliation (not delivered by the hook) also carries
//! `"recovered":true`; the key is absent otherwise.
//!
//! Delivery is at least once per sink. After a crash a job may be retried although
//! the sink already got it; [`Sink::contains`] lets a sink that can tell (the JSONL
//! file) skip it, and the HTTP sink sends `Idempotency-Key: <uuid>` so a receiver can.

pub mod command;
pub mod http;
pub mod jsonl;
pub mod nats;
pub mod stdout;

use crate::config::{Config, SinkKind};
use crate::store::Job;
use crate::time::format_millis;
use async_trait::async_trait;
use serde::Serialize;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::Arc;

/// The JSON every sink receives for one event.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SinkRecord<'a> {
    pub hook: &'a str,
    pub sink: &'a str,
    pub uuid: &'a str,
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub received_at: String,
    /// 1 on the first attempt.
    pub attempt: u32,
    /// Present (`true`) only for events found by System Log reconciliation rather than
    /// delivered by Okta's hook, so records of delivered events are unchanged.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub recovered: bool,
    pub event: &'a RawValue,
}

impl<'a> SinkRecord<'a> {
    /// Builds the record of a claimed job. Fails only if the stored payload is not JSON,
    /// which the store never lets in.
    pub fn from_job(job: &'a Job) -> Result<Self, SinkError> {
        let event: &RawValue = serde_json::from_str(&job.payload)
            .map_err(|e| SinkError::permanent(format!("stored event is not JSON: {e}")))?;
        Ok(SinkRecord {
            hook: &job.hook,
            sink: &job.sink,
            uuid: &job.uuid,
            event_id: &job.event_id,
            event_type: &job.event_type,
            received_at: format_millis(job.received_at),
            attempt: job.attempts + 1,
            recovered: job.recovered,
            event,
        })
    }

    /// The record as one line of JSON, without the newline.
    ///
    /// The event inside is Okta's JSON byte for byte, which may be pretty-printed. In
    /// valid JSON (the stored event is checked when the record is built) a raw CR or LF
    /// can only be whitespace between tokens, since inside strings they must be escaped:
    /// turning them into spaces changes no value and makes every sink's record one line.
    pub fn to_json(&self) -> Vec<u8> {
        let mut json = Vec::new();
        self.append_json(&mut json);
        json
    }

    /// [`SinkRecord::to_json`] written at the end of `out`, without a buffer of its own.
    fn append_json(&self, out: &mut Vec<u8>) {
        let start = out.len();
        // Serialising borrowed strings and a RawValue into a Vec cannot fail; should it
        // ever, the partial record is taken back out.
        if serde_json::to_writer(&mut *out, self).is_err() {
            out.truncate(start);
        }
        for b in &mut out[start..] {
            if *b == b'\n' || *b == b'\r' {
                *b = b' ';
            }
        }
    }
}

/// The records as JSON lines (see [`SinkRecord::to_json`]), each ending with `\n`, in
/// one buffer: what the line-oriented sinks write in one call.
pub fn json_lines(records: &[SinkRecord<'_>]) -> Vec<u8> {
    let mut lines = Vec::new();
    for record in records {
        record.append_json(&mut lines);
        lines.push(b'\n');
    }
    lines
}

/// Why a delivery failed. `permanent` failures are dead-lettered at once instead of retried.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    pub message: String,
    pub permanent: bool,
}

impl SinkError {
    pub fn transient(message: impl Into<String>) -> Self {
        SinkError {
            message: message.into(),
            permanent: false,
        }
    }
    pub fn permanent(message: impl Into<String>) -> Self {
        SinkError {
            message: message.into(),
            permanent: true,
        }
    }
}

/// Why a configured sink cannot be set up at start (a failed delivery is a [`SinkError`]).
/// The words are those shown to the user at start; a secret's value is never in them.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A sink's folder is never created (see `JsonlSink::check`).
    #[error("{0} (a sink's folder is not created: create it, or correct the path)")]
    Folder(#[source] crate::files::FolderError),
    #[error("cannot open {}: {source}", path.display())]
    Open {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// Ending a torn last line (left by a crash) with a newline failed.
    #[error("cannot repair {}: {source}", path.display())]
    Repair {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("invalid URL: {0}")]
    Url(#[source] url::ParseError),
    #[error("URL scheme must be {allowed}, not {scheme}")]
    Scheme {
        allowed: &'static str,
        scheme: String,
    },
    #[error(
        "subject template {template:?} does not give a valid subject \
         (tokens separated by dots, no spaces, no * or >): {sample:?}"
    )]
    Subject { template: String, sample: String },
    #[error("the token secret could not be resolved")]
    TokenUnresolved,
    /// The header's name, never its value.
    #[error("header {0}: not a valid header name")]
    HeaderName(String),
    #[error("header {0}: the secret could not be resolved")]
    HeaderUnresolved(String),
    #[error("header {0}: the value cannot be sent in HTTP")]
    HeaderValue(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// A [`SetupError`] with the hook and sink it is about: what [`SinkSet::build`] fails with.
#[derive(Debug, thiserror::Error)]
#[error("event hook '{hook}', sink '{sink}': {source}")]
pub struct SinkSetupError {
    pub hook: String,
    pub sink: String,
    pub source: SetupError,
}

/// A destination for events.
#[async_trait]
pub trait Sink: Send + Sync + 'static {
    /// Delivers one record. Returns only once the sink has it (synced, acknowledged, exited 0).
    async fn deliver(&self, record: &SinkRecord<'_>) -> Result<(), SinkError>;

    /// True for sinks that deliver a group of records faster than one by one (a file:
    /// one write and one sync for the lot). The worker then hands them every claimed
    /// job of theirs at once through [`Sink::deliver_batch`].
    fn batches(&self) -> bool {
        false
    }

    /// Delivers several records, all or none: an error counts for every record of the
    /// batch, which is then retried whole (at least once, as always). The default
    /// delivers them one by one; sinks that answer `true` to [`Sink::batches`] do better.
    async fn deliver_batch(&self, records: &[SinkRecord<'_>]) -> Result<(), SinkError> {
        for record in records {
            self.deliver(record).await?;
        }
        Ok(())
    }

    /// After an interrupted attempt: does the sink already hold this event of this hook?
    /// Sinks that cannot tell answer `false`, and the event is sent again (at least once).
    async fn contains(&self, _hook: &str, _uuid: &str) -> bool {
        false
    }
}

/// All configured sinks, by hook name and sink name.
#[derive(Clone, Default)]
pub struct SinkSet {
    sinks: HashMap<(String, String), Arc<dyn Sink>>,
    /// The JSONL writers by file, which a reload hands on to the next set.
    files: HashMap<std::path::PathBuf, Arc<jsonl::JsonlSink>>,
}

/// The sinks in service, swapped whole by a config reload: the workers load the set for
/// each group of jobs, so a group is delivered by the sinks of one generation.
pub type LiveSinks = Arc<arc_swap::ArcSwap<SinkSet>>;

impl SinkSet {
    /// Builds every sink of every hook. Fails with a message naming the sink.
    pub fn build(config: &Config) -> Result<SinkSet, SinkSetupError> {
        Self::build_after(config, None)
    }

    /// Builds the sinks of a reloaded configuration. A JSONL file that `previous`
    /// already writes keeps its writer: one file must have one writer, whose lock orders
    /// the lines and whose index answers [`Sink::contains`] after an interrupted attempt.
    /// Every other sink is built anew from its (possibly changed) settings; deliveries in
    /// flight finish on the old one.
    pub fn build_after(
        config: &Config,
        previous: Option<&SinkSet>,
    ) -> Result<SinkSet, SinkSetupError> {
        let mut sinks: HashMap<(String, String), Arc<dyn Sink>> = HashMap::new();
        // Two hooks may name the same JSONL file; they must share one writer.
        let mut files: HashMap<std::path::PathBuf, Arc<jsonl::JsonlSink>> = HashMap::new();
        if let Some(previous) = previous {
            files.extend(previous.files.iter().map(|(p, s)| (p.clone(), s.clone())));
        }
        let stdout: Arc<stdout::StdoutSink> = Arc::new(stdout::StdoutSink::new());
        for hook in &config.event_hooks {
            for sink in &hook.sinks {
                let named = |source| SinkSetupError {
                    hook: hook.name.clone(),
                    sink: sink.name.clone(),
                    source,
                };
                let built: Arc<dyn Sink> = match &sink.kind {
                    SinkKind::Stdout => stdout.clone(),
                    SinkKind::Jsonl { path } => {
                        let key = path.clone();
                        if let Some(existing) = files.get(&key) {
                            existing.clone()
                        } else {
                            let s = Arc::new(jsonl::JsonlSink::open(path).map_err(named)?);
                            files.insert(key, s.clone());
                            s
                        }
                    }
                    SinkKind::Http {
                        url,
                        headers,
                        timeout,
                    } => Arc::new(http::HttpSink::new(url, headers, *timeout).map_err(named)?),
                    SinkKind::Nats {
                        url,
                        subject,
                        token,
                        timeout,
                    } => Arc::new(
                        nats::NatsSink::new(url, subject, token.as_ref(), *timeout)
                            .map_err(named)?,
                    ),
                    SinkKind::Command {
                        program,
                        args,
                        timeout,
                    } => Arc::new(command::CommandSink::new(
                        program.clone(),
                        args.clone(),
                        *timeout,
                    )),
                };
                sinks.insert((hook.name.clone(), sink.name.clone()), built);
            }
        }
        // Files no sink names any more are closed once their last delivery ends.
        let named: std::collections::HashSet<&std::path::PathBuf> = config
            .event_hooks
            .iter()
            .flat_map(|h| &h.sinks)
            .filter_map(|s| match &s.kind {
                SinkKind::Jsonl { path } => Some(path),
                _ => None,
            })
            .collect();
        files.retain(|path, _| named.contains(path));
        Ok(SinkSet { sinks, files })
    }

    /// Adds or replaces one sink (tests and embedders).
    pub fn insert(&mut self, hook: &str, sink: &str, s: Arc<dyn Sink>) {
        self.sinks.insert((hook.to_owned(), sink.to_owned()), s);
    }

    pub fn get(&self, hook: &str, sink: &str) -> Option<&Arc<dyn Sink>> {
        self.sinks.get(&(hook.to_owned(), sink.to_owned()))
    }
}

/// A claimed job for sink unit tests: hook `okta`, first attempt, payload `{"uuid": uuid}`.
#[cfg(test)]
pub(crate) fn test_job(sink: &str, uuid: &str, event_type: &str) -> Job {
    Job {
        id: 1,
        lease_token: 1,
        hook: "okta".into(),
        sink: sink.into(),
        uuid: uuid.into(),
        event_id: "e-1".into(),
        event_type: event_type.into(),
        received_at: 0,
        attempts: 0,
        interrupted: false,
        recovered: false,
        payload: format!(r#"{{"uuid":"{uuid}"}}"#),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sink_that_cannot_be_set_up_is_named_with_its_cause_as_source() {
        let config = Config::from_toml_str(
            r#"
            [[event_hooks]]
            name = "okta"
            path = "/hooks/okta"
            auth = { type = "basic", users = [{ username = "okta", password = "correct horse battery" }] }
            sinks = [{ name = "archive", type = "jsonl", path = "/dev/null/not-a-folder/events.jsonl" }]
            "#,
        )
        .expect("valid config");
        let Err(e) = SinkSet::build(&config) else {
            panic!("a JSONL file under /dev/null cannot be opened");
        };
        assert_eq!((e.hook.as_str(), e.sink.as_str()), ("okta", "archive"));
        assert!(
            matches!(&e.source, SetupError::Folder(crate::files::FolderError::Missing(path)) if path.ends_with("not-a-folder")),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(
            text.starts_with(
                "event hook 'okta', sink 'archive': folder /dev/null/not-a-folder does not exist (a sink's folder is not created"
            ),
            "{text}"
        );
        let cause = std::error::Error::source(&e)
            .and_then(std::error::Error::source)
            .expect("the folder error is the source's source");
        assert!(cause.is::<crate::files::FolderError>(), "{cause:?}");
    }
}
