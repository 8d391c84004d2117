//! NATS JetStream sink: publishes each record to a subject built from a template and
//! counts the event as delivered only once JetStream has acknowledged it (stored it).
//!
//! # Why JetStream, and why `Nats-Msg-Id`
//!
//! A core NATS publish is fire-and-forget: nothing tells us the message was kept, so
//! it cannot honour "delivered only once the sink has it". A JetStream publish is a
//! request whose answer (the publish ack) comes after the stream stored the message.
//!
//! Each message carries `Nats-Msg-Id: <event uuid>`. Delivery is at least once, and
//! several replicas share the store, so the same event may be published twice (a
//! retry after a lost ack, a job retried after a crash). JetStream drops a message
//! whose id it has already seen within the stream's **duplicate window**, answering
//! the second publish with an ack marked `duplicate`: the stream holds the event once.
//! The window is JetStream's, not ours: a retry later than the window is stored again.
//! hookwarden's own dedupe (by event uuid, before anything reaches a sink) already
//! removes the duplicates Okta sends; the window only has to cover our own retries.
//!
//! # Creating the stream (an operator's step)
//!
//! hookwarden never creates streams: retention, storage, replicas and limits are the
//! operator's decisions, and an implicit stream would hide a wrong subject. Until a
//! stream covers the subject, JetStream answers "no responders" and every delivery
//! fails transiently (the events wait in hookwarden's store and are retried). With the
//! default subject template `okta.{hook}.{event_type}`:
//!
//! ```text
//! nats stream add OKTA_EVENTS --subjects 'okta.>' --storage file --retention limits \
//!     --dupe-window 10m --replicas 3 --discard old --max-age 30d --defaults
//! ```
//!
//! (`--replicas 3` in a three-node cluster; 1 on a single server), or the JetStream API
//! equivalent, a request to `$JS.API.STREAM.CREATE.OKTA_EVENTS`
//! with `{"name":"OKTA_EVENTS","subjects":["okta.>"],"storage":"file",
//! "duplicate_window":600000000000, …}` (the window in nanoseconds).
//!
//! JetStream's default duplicate window is 2 minutes. Choose it at least as long as
//! the longest gap between two attempts of one event: a publish whose ack was lost is
//! retried after the worker's backoff, which doubles from `worker.backoff_initial` up
//! to `worker.backoff_max` (5 minutes by default), so with the defaults use
//! `worker.backoff_max` plus the sink's `timeout`, rounded up: 10 minutes above. A job
//! retried after a longer outage (a crashed replica's lease, a replayed dead letter)
//! may be stored twice; consumers that must not see duplicates dedupe by `uuid`. The
//! cost of a longer window is JetStream keeping one message id per message for that long.
//!
//! # Failures
//!
//! Only a record that can never be published is permanent (larger than the server or
//! the stream accepts, a uuid that cannot be a header). Everything else is transient: no stream
//! (with a message saying to create one), no ack within `timeout`, connection refused
//! or lost, even a refused token (fixing the secret must not cost the queued events).
//! The client reconnects by itself after the first successful connection; before that,
//! each delivery tries to connect. A publish that times out while the client is
//! reconnecting may still reach the stream later: the retry is then a duplicate that
//! the window drops.

use super::*;
use crate::config::{expose, Secret};
use crate::outbound::{error_text, shown_url};
use async_nats::header::{HeaderMap, HeaderValue, NATS_MESSAGE_ID};
use async_nats::jetstream::context::{Context, PublishErrorKind};
use async_nats::jetstream::ErrorCode;
use secrecy::SecretString;
use std::str::FromStr;
use std::time::Duration;
use tokio::sync::OnceCell;

/// Replaces an empty event type, which would leave an empty subject token.
const UNKNOWN: &str = "unknown";

pub struct NatsSink {
    url: String,
    /// The URL as errors and logs show it: no user or password.
    shown_url: String,
    template: String,
    /// Kept as a secret so that it never reaches a log line or a `Debug` output.
    token: Option<SecretString>,
    timeout: Duration,
    /// Made on the first delivery: building the sink (at start-up, on every replica)
    /// must not depend on NATS being up, and events are stored durably before any sink.
    jetstream: OnceCell<Context>,
}

impl NatsSink {
    /// Checks the URL and the subject template; connects later, on the first delivery.
    pub fn new(
        url: &str,
        subject: &str,
        token: Option<&Secret>,
        timeout: Duration,
    ) -> Result<Self, SetupError> {
        let parsed = url::Url::parse(url).map_err(SetupError::Url)?;
        if !matches!(parsed.scheme(), "nats" | "tls") {
            return Err(SetupError::Scheme {
                allowed: "nats or tls",
                scheme: parsed.scheme().to_owned(),
            });
        }
        // A template that gives an invalid subject for ordinary values (a wildcard, an
        // empty token) would fail every delivery: refuse it at start-up instead.
        let sample = render_subject(subject, "okta", "user.session.start");
        if !is_publish_subject(&sample) {
            return Err(SetupError::Subject {
                template: subject.to_owned(),
                sample,
            });
        }
        let token = match token {
            Some(secret) => Some(secret.value().ok_or(SetupError::TokenUnresolved)?.clone()),
            None => None,
        };
        Ok(NatsSink {
            url: url.to_owned(),
            shown_url: shown_url(&parsed),
            template: subject.to_owned(),
            token,
            timeout,
            jetstream: OnceCell::new(),
        })
    }

    /// The JetStream context, connecting on first use. A failed connect leaves the cell
    /// empty, so that the next delivery tries again.
    async fn context(&self) -> Result<&Context, SinkError> {
        self.jetstream
            .get_or_try_init(|| async {
                let mut options = async_nats::ConnectOptions::new()
                    .name(concat!("hookwarden/", env!("CARGO_PKG_VERSION")))
                    .connection_timeout(self.timeout);
                if let Some(token) = &self.token {
                    options = options.token(expose(token).to_owned());
                }
                let client = tokio::time::timeout(self.timeout, options.connect(&self.url))
                    .await
                    .map_err(|_| {
                        SinkError::transient(format!(
                            "connect to {}: no answer within {}",
                            self.shown_url,
                            humantime::format_duration(self.timeout)
                        ))
                    })?
                    .map_err(|e| {
                        SinkError::transient(format!(
                            "connect to {}: {}",
                            self.shown_url,
                            error_text(&e)
                        ))
                    })?;
                tracing::info!(url = %self.shown_url, "connected to NATS");
                Ok(async_nats::jetstream::ContextBuilder::new()
                    .timeout(self.timeout)
                    .build(client))
            })
            .await
    }

    /// Publishes and waits for the ack, classifying failures.
    async fn publish(
        &self,
        jetstream: &Context,
        subject: &str,
        headers: HeaderMap,
        payload: Vec<u8>,
    ) -> Result<(), SinkError> {
        let ack = jetstream
            .publish_with_headers(subject.to_owned(), headers, payload.into())
            .await
            .map_err(|e| self.publish_error(subject, e))?
            .await
            .map_err(|e| self.publish_error(subject, e))?;
        if ack.duplicate {
            // Another replica, or an earlier attempt whose ack was lost, stored it.
            tracing::debug!(subject, stream = %ack.stream, "JetStream already held this event");
        }
        Ok(())
    }

    fn publish_error(
        &self,
        subject: &str,
        e: async_nats::jetstream::context::PublishError,
    ) -> SinkError {
        let at = format!("publish to {subject} on {}", self.shown_url);
        match e.kind() {
            PublishErrorKind::StreamNotFound => SinkError::transient(format!(
                "{at}: no JetStream stream covers this subject; create one \
                 (e.g. nats stream add OKTA_EVENTS --subjects 'okta.>' --dupe-window 10m)"
            )),
            PublishErrorKind::TimedOut => SinkError::transient(format!(
                "{at}: no ack within {}",
                humantime::format_duration(self.timeout)
            )),
            _ => {
                let too_big = std::error::Error::source(&e)
                    .and_then(|s| s.downcast_ref::<async_nats::jetstream::Error>())
                    .is_some_and(|j| j.error_code() == ErrorCode::STREAM_MESSAGE_EXCEEDS_MAXIMUM);
                if too_big {
                    SinkError::permanent(format!("{at}: {}", error_text(&e)))
                } else {
                    SinkError::transient(format!("{at}: {}", error_text(&e)))
                }
            }
        }
    }
}

/// One value for the template, made safe as subject tokens: characters NATS does not
/// allow in a token (whitespace, controls, the wildcards `*` and `>`) become `_`; dots
/// stay, so that `user.session.start` gives three tokens a consumer can filter on;
/// empty tokens (`a..b`, a leading or trailing dot) become `_`; an empty value
/// becomes `unknown`.
fn subject_value(value: &str) -> String {
    if value.is_empty() {
        return UNKNOWN.to_owned();
    }
    let cleaned: String = value
        .chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() || c == '*' || c == '>' {
                '_'
            } else {
                c
            }
        })
        .collect();
    cleaned
        .split('.')
        .map(|token| if token.is_empty() { "_" } else { token })
        .collect::<Vec<_>>()
        .join(".")
}

/// The subject of one event: the template with `{hook}` and `{event_type}` replaced.
fn render_subject(template: &str, hook: &str, event_type: &str) -> String {
    template
        .replace("{hook}", &subject_value(hook))
        .replace("{event_type}", &subject_value(event_type))
}

/// Whether a subject can be published to: non-empty tokens, no whitespace, no wildcard.
fn is_publish_subject(subject: &str) -> bool {
    !subject.is_empty()
        && subject.split('.').all(|token| {
            !token.is_empty()
                && token != "*"
                && token != ">"
                && !token.chars().any(|c| c.is_whitespace() || c.is_control())
        })
}

#[async_trait]
impl Sink for NatsSink {
    async fn deliver(&self, record: &SinkRecord<'_>) -> Result<(), SinkError> {
        let id = HeaderValue::from_str(record.uuid).map_err(|_| {
            SinkError::permanent("the event uuid cannot be sent as a Nats-Msg-Id header")
        })?;
        let subject = render_subject(&self.template, record.hook, record.event_type);
        if !is_publish_subject(&subject) {
            // Only a template with unusual literal text can get here; new() checked a sample.
            return Err(SinkError::permanent(format!(
                "{subject:?} is not a valid NATS subject"
            )));
        }
        let payload = record.to_json();
        let started = tokio::time::Instant::now();
        let jetstream = self.context().await?;
        // The server closes the connection of a client that sends more than its
        // max_payload: refuse here rather than cut the connection on every retry.
        let max = jetstream.client().server_info().max_payload;
        if max > 0 && payload.len() > max {
            return Err(SinkError::permanent(format!(
                "the record is {} bytes; {} accepts at most {max}",
                payload.len(),
                self.shown_url
            )));
        }
        let mut headers = HeaderMap::new();
        headers.insert(NATS_MESSAGE_ID, id);
        // One deadline for the whole attempt: connecting above may have used part of it.
        let left = self.timeout.saturating_sub(started.elapsed());
        tokio::time::timeout(left, self.publish(jetstream, &subject, headers, payload))
            .await
            .map_err(|_| {
                SinkError::transient(format!(
                    "publish to {subject} on {}: no ack within {}",
                    self.shown_url,
                    humantime::format_duration(self.timeout)
                ))
            })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_template_gives_dotted_subjects() {
        assert_eq!(
            render_subject("okta.{hook}.{event_type}", "okta", "user.session.start"),
            "okta.okta.user.session.start"
        );
        assert_eq!(
            render_subject("events.{event_type}", "okta", "group.user_membership.add"),
            "events.group.user_membership.add"
        );
    }

    #[test]
    fn invalid_characters_become_underscores() {
        assert_eq!(
            render_subject("okta.{hook}.{event_type}", "my hook", "user.*.start >x"),
            "okta.my_hook.user._.start__x"
        );
        assert_eq!(subject_value("a\tb\nc"), "a_b_c");
        assert!(is_publish_subject(&render_subject(
            "okta.{hook}.{event_type}",
            ">",
            "*"
        )));
    }

    #[test]
    fn empty_values_and_tokens_are_filled() {
        assert_eq!(
            render_subject("okta.{hook}.{event_type}", "okta", ""),
            "okta.okta.unknown"
        );
        assert_eq!(subject_value(".user..start."), "_.user._.start._");
        assert!(is_publish_subject(&render_subject(
            "okta.{hook}.{event_type}",
            "okta",
            ".."
        )));
    }

    #[test]
    fn subjects_are_checked() {
        assert!(is_publish_subject("okta.okta.user.session.start"));
        for bad in ["", "okta..x", ".okta", "okta.", "okta.*", "okta.>", "a b"] {
            assert!(!is_publish_subject(bad), "{bad:?}");
        }
    }

    #[test]
    fn bad_templates_and_urls_are_refused() {
        let t = Duration::from_secs(1);
        assert!(NatsSink::new("nats://127.0.0.1:4222", "okta.>", None, t).is_err());
        assert!(NatsSink::new("nats://127.0.0.1:4222", "okta.*.{event_type}", None, t).is_err());
        assert!(NatsSink::new("nats://127.0.0.1:4222", "okta..{hook}", None, t).is_err());
        assert!(NatsSink::new("http://127.0.0.1:4222", "okta.{hook}", None, t).is_err());
        assert!(
            NatsSink::new("nats://127.0.0.1:4222", "okta.{hook}.{event_type}", None, t).is_ok()
        );
    }

    #[tokio::test]
    async fn unreachable_server_is_transient_and_hides_the_token() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let token = Secret::literal("very-secret-token");
        let sink = NatsSink::new(
            &format!("nats://127.0.0.1:{port}"),
            "okta.{hook}.{event_type}",
            Some(&token),
            Duration::from_secs(2),
        )
        .expect("sink");
        let job = crate::sinks::test_job("bus", "u-1", "user.session.start");
        let record = SinkRecord::from_job(&job).expect("record");
        let err = sink.deliver(&record).await.expect_err("nothing listens");
        assert!(!err.permanent, "{err}");
        assert!(!err.message.contains("very-secret"), "{err}");
        assert!(err.message.contains(&port.to_string()), "{err}");
    }
}
