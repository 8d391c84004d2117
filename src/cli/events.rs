//! `hookwarden events`: list, show and replay, directly on the store.
//!
//! Works while the service runs: the SQLite store is opened with
//! [`SqliteStore::open_for_cli`](crate::store::sqlite::SqliteStore::open_for_cli), which leaves the service's leases alone and does not
//! truncate its WAL; PostgreSQL is shared by design (connecting clears no lease). A replay only marks jobs pending; the running service's workers
//! find them at their next poll (`worker.poll_interval`).

use super::{EventsCommand, ListArgs, ReplayArgs};
use crate::config::Config;
use crate::store::{
    EventDetail, EventQuery, EventState, EventSummary, OpenFor, ReplayTarget, Store,
};
use crate::time::{format_millis, parse_time};
use std::io::Write;
use std::time::{Duration, SystemTime};

/// `events list --state`: the command line's spelling of [`EventState`] (the store
/// does not know clap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StateArg {
    Pending,
    Delivered,
    Dead,
    Ignored,
}

impl From<StateArg> for EventState {
    fn from(s: StateArg) -> EventState {
        match s {
            StateArg::Pending => EventState::Pending,
            StateArg::Delivered => EventState::Delivered,
            StateArg::Dead => EventState::Dead,
            StateArg::Ignored => EventState::Ignored,
        }
    }
}

/// Exit code of a command line mistake (like clap's).
const USAGE: i32 = 2;

/// Runs an `events` subcommand; returns the process exit code.
pub async fn run(config: &Config, command: EventsCommand) -> i32 {
    // Arguments first: a typo must not wait for (or depend on) the database.
    let query = match &command {
        EventsCommand::List(args) => match query_of(args, SystemTime::now()) {
            Ok(q) => Some(q),
            Err(msg) => {
                eprintln!("error: {msg}");
                return USAGE;
            }
        },
        _ => None,
    };
    let store = match crate::store::open(config, OpenFor::Cli).await {
        Ok(opened) => opened.store,
        Err(msg) => {
            eprintln!("error: {msg}");
            return 1;
        }
    };
    let store = store.as_ref();
    let code = match (command, query) {
        (EventsCommand::List(args), Some(query)) => list(store, &query, args.json).await,
        (EventsCommand::List(_), None) => USAGE, // not reached: the query is built above
        (EventsCommand::Show { uuid }, _) => show(store, &uuid).await,
        (EventsCommand::Replay(args), _) => replay(store, args, config.worker.poll_interval).await,
    };
    store.close().await;
    code
}

/// A `list` argument that cannot be read, with the argument's name.
#[derive(Debug, thiserror::Error)]
#[error("{arg}: {source}")]
struct ArgError {
    arg: &'static str,
    source: crate::time::TimeError,
}

/// Builds the store query from `list`'s arguments; the error names the argument.
fn query_of(args: &ListArgs, now: SystemTime) -> Result<EventQuery, ArgError> {
    let time = |arg: &'static str, value: &Option<String>| {
        value
            .as_deref()
            .map(|s| parse_time(s, now).map_err(|source| ArgError { arg, source }))
            .transpose()
    };
    let since = time("--since", &args.since)?;
    let until = time("--until", &args.until)?;
    Ok(EventQuery {
        hook: args.hook.clone(),
        state: args.state.map(EventState::from),
        event_type: args.event_type.clone(),
        since,
        until,
        limit: args.limit,
    })
}

/// Writes to stdout, stopping quietly when the reader went away (`| head`).
fn out(write: impl FnOnce(&mut std::io::StdoutLock<'_>) -> std::io::Result<()>) -> i32 {
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    match write(&mut lock).and_then(|()| lock.flush()) {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("error: cannot write the output: {e}");
            1
        }
    }
}

async fn list(store: &dyn Store, query: &EventQuery, json: bool) -> i32 {
    let events = match store.list(query).await {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    if json {
        return out(|w| {
            for e in &events {
                let line = serde_json::to_string(e).map_err(std::io::Error::other)?;
                writeln!(w, "{line}")?;
            }
            Ok(())
        });
    }
    if events.is_empty() {
        eprintln!("no events match");
        return 0;
    }
    out(|w| write_table(w, &events))
}

/// `sink:state(attempts)` for each sink, `-` for an event no sink wanted.
fn sinks_cell(e: &EventSummary) -> String {
    if e.sinks.is_empty() {
        return "-".to_owned();
    }
    e.sinks
        .iter()
        .map(|s| format!("{}:{}({})", s.sink, s.state.as_str(), s.attempts))
        .collect::<Vec<_>>()
        .join(" ")
}

/// How the event arrived: delivered by Okta's hook, or recovered from the System Log.
fn source_cell(e: &EventSummary) -> &'static str {
    if e.recovered {
        "recovered"
    } else {
        "hook"
    }
}

fn write_table(w: &mut impl Write, events: &[EventSummary]) -> std::io::Result<()> {
    let header = [
        "RECEIVED", "HOOK", "UUID", "TYPE", "STATE", "SOURCE", "SINKS",
    ];
    let rows: Vec<[String; 7]> = events
        .iter()
        .map(|e| {
            [
                format_millis(e.received_at),
                e.hook.clone(),
                e.uuid.clone(),
                e.event_type.clone(),
                e.state.as_str().to_owned(),
                source_cell(e).to_owned(),
                sinks_cell(e),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |w: &mut dyn Write, cells: [&str; 7]| -> std::io::Result<()> {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell); // no padding after the last column
            } else {
                text.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        writeln!(w, "{text}")
    };
    line(w, header)?;
    for row in &rows {
        line(w, row.each_ref().map(String::as_str))?;
    }
    Ok(())
}

async fn show(store: &dyn Store, uuid: &str) -> i32 {
    let found = match store.get(uuid).await {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    if found.is_empty() {
        eprintln!("no event with uuid {uuid}");
        return 1;
    }
    out(|w| write_details(w, &found))
}

/// Each copy of the event (one per hook that received it) as pretty JSON, its times in
/// RFC 3339 as `events list` shows them.
fn write_details(w: &mut impl Write, found: &[EventDetail]) -> std::io::Result<()> {
    for detail in found {
        let text = serde_json::to_string_pretty(detail).map_err(std::io::Error::other)?;
        writeln!(w, "{text}")?;
    }
    Ok(())
}

async fn replay(store: &dyn Store, args: ReplayArgs, poll_interval: Duration) -> i32 {
    let target = match (args.uuid, args.all_dead) {
        (Some(uuid), false) => ReplayTarget::Event {
            uuid,
            hook: args.hook,
        },
        (None, true) => ReplayTarget::AllDead { hook: args.hook },
        // clap's argument group makes these unreachable from the command line.
        _ => {
            eprintln!("error: give either an event uuid or --all-dead");
            return USAGE;
        }
    };
    let n = match store.replay(&target).await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    if n == 0 {
        return match &target {
            ReplayTarget::AllDead { .. } => {
                println!("no dead letters: nothing to replay");
                0
            }
            ReplayTarget::Event { uuid, hook } => match store.get(uuid).await {
                Ok(found)
                    if found
                        .iter()
                        .any(|d| hook.as_ref().is_none_or(|h| *h == d.summary.hook)) =>
                {
                    println!("event {uuid} has no sink (ignored at receipt): nothing to send");
                    0
                }
                Ok(_) => {
                    match hook {
                        Some(h) => eprintln!("no event with uuid {uuid} in hook {h}"),
                        None => eprintln!("no event with uuid {uuid}"),
                    }
                    1
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    1
                }
            },
        };
    }
    println!(
        "{n} deliver{} queued again; a running service picks {} up within its poll interval ({})",
        if n == 1 { "y" } else { "ies" },
        if n == 1 { "it" } else { "them" },
        humantime::format_duration(poll_interval)
    );
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_time_arguments_are_reported_with_their_argument() {
        let now = humantime::parse_rfc3339("2026-11-23T12:00:00Z").expect("time");
        let args = ListArgs {
            hook: None,
            state: None,
            event_type: None,
            since: Some("1h".into()),
            until: Some("soon".into()),
            limit: 50,
            json: false,
        };
        let err = query_of(&args, now).expect_err("bad --until").to_string();
        assert!(err.starts_with("--until: 'soon'"), "{err}");
    }

    #[test]
    fn show_prints_times_as_rfc3339_like_list() {
        use crate::store::{JobState, SinkStatus};
        let summary = EventSummary {
            hook: "okta".into(),
            uuid: "f1d0b993-cc19-11ed-a688-db22c99ef6c4".into(),
            event_id: "e".into(),
            event_type: "user.session.start".into(),
            published: Some("2023-11-14T22:13:19.000Z".into()),
            received_at: 1_700_000_000_123,
            recovered: false,
            state: EventState::Pending,
            sinks: vec![
                SinkStatus {
                    sink: "siem".into(),
                    state: JobState::Pending,
                    attempts: 2,
                    last_error: Some("HTTP 500".into()),
                    next_attempt_at: Some(1_700_000_060_000),
                },
                SinkStatus {
                    sink: "archive".into(),
                    state: JobState::Delivered,
                    attempts: 1,
                    last_error: None,
                    next_attempt_at: None,
                },
            ],
        };
        let detail = EventDetail {
            summary: summary.clone(),
            event: serde_json::value::RawValue::from_string("{\"uuid\":\"u\"}".into())
                .expect("raw"),
        };
        let mut buf = Vec::new();
        write_details(&mut buf, &[detail]).expect("write");
        let shown: serde_json::Value = serde_json::from_slice(&buf).expect("JSON");
        assert_eq!(shown["receivedAt"], "2023-11-14T22:13:20.123Z");
        assert_eq!(
            shown["sinks"][0]["nextAttemptAt"],
            "2023-11-14T22:14:20.000Z"
        );
        assert_eq!(shown["sinks"][1]["nextAttemptAt"], serde_json::Value::Null);
        assert_eq!(shown["event"]["uuid"], "u");
        // The table of `events list` shows the same text for the same time.
        let mut table = Vec::new();
        write_table(&mut table, std::slice::from_ref(&summary)).expect("write");
        assert!(String::from_utf8_lossy(&table).contains("2023-11-14T22:13:20.123Z"));
        // And `events list --json` too.
        let line = serde_json::to_value(&summary).expect("JSON");
        assert_eq!(line["receivedAt"], "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn sinks_render_as_name_state_attempts() {
        use crate::store::{EventState, JobState, SinkStatus};
        let mut e = EventSummary {
            hook: "okta".into(),
            uuid: "u".into(),
            event_id: "e".into(),
            event_type: "t".into(),
            published: None,
            received_at: 0,
            recovered: false,
            state: EventState::Ignored,
            sinks: Vec::new(),
        };
        assert_eq!(sinks_cell(&e), "-");
        e.sinks = vec![
            SinkStatus {
                sink: "siem".into(),
                state: JobState::Delivered,
                attempts: 1,
                last_error: None,
                next_attempt_at: None,
            },
            SinkStatus {
                sink: "hr".into(),
                state: JobState::Dead,
                attempts: 5,
                last_error: Some("HTTP 500".into()),
                next_attempt_at: None,
            },
        ];
        assert_eq!(sinks_cell(&e), "siem:delivered(1) hr:dead(5)");
        let e_clone = e.clone();
        let mut buf = Vec::new();
        write_table(&mut buf, &[e]).expect("write");
        let text = String::from_utf8(buf).expect("utf8");
        assert!(text.starts_with("RECEIVED"), "{text}");
        assert!(text.contains("1970-01-01T00:00:00.000Z  okta"), "{text}");
        assert!(text.contains("ignored  hook    siem"), "{text}");
        let mut recovered = e_clone;
        recovered.recovered = true;
        assert_eq!(source_cell(&recovered), "recovered");
    }
}
