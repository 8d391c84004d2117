//! Reading an answer that a script or a service wrote, as JSON, into an [`InlineResponse`].
//!
//! Two readings, for two uses:
//! - [`read`], for answers hookwarden is about to send: lenient in the way Okta is. Keys
//!   Okta does not read are dropped and named (the caller warns), so an extra key never
//!   turns an ALLOW into a fallback. Parts of the wrong shape are named as broken instead
//!   of failing the whole reading, so that a refusal whose `error` is a string, or that has
//!   a bad command beside it, is still seen as a refusal ([`super::settle`] keeps it one).
//! - [`parse_strict`], for judging another receiver's answer (`hookwarden simulate`): every
//!   unknown key is an error, because a misspelt `command` reads as Okta's default action.
//!
//! Messages never quote values: an answer can echo request data (a password, a profile).

use super::shapes::{kind_of, shown_key};
use super::{Command, ErrorCause, InlineError, InlineResponse};
use serde_json::{Map, Value};

/// An answer as read: what Okta would act on, and what was wrong with the rest.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Read {
    /// The well-formed parts.
    pub answer: InlineResponse,
    /// Keys Okta does not read, dropped (`name` or `path.name`).
    pub dropped: Vec<String>,
    /// Parts of the wrong shape, left out of `answer`: the answer is not valid as written.
    pub broken: Vec<String>,
}

impl From<InlineResponse> for Read {
    fn from(answer: InlineResponse) -> Self {
        Read {
            answer,
            ..Read::default()
        }
    }
}

/// Reads an answer leniently (see the module doc). Only an answer that is not a JSON
/// object cannot be read at all.
pub fn read(value: Value) -> Result<Read, String> {
    let Value::Object(map) = value else {
        return Err(format!(
            "an answer that is {} instead of an object",
            kind_of(&value)
        ));
    };
    let mut read = Read::default();
    for (key, value) in map {
        match key.as_str() {
            "commands" => read.answer.commands = read_commands(value, &mut read),
            "error" => read.answer.error = read_error(value, &mut read),
            "debugContext" => match value {
                Value::Object(context) => read.answer.debug_context = Some(context),
                Value::Null => {}
                other => read
                    .dropped
                    .push(format!("debugContext ({})", kind_of(&other))),
            },
            _ => match near_miss(&key) {
                // A misspelt `commands` or `error` would otherwise read as Okta's default
                // action: the answer is broken, not merely carrying an extra key.
                Some(meant) => read.broken.push(format!(
                    "`{}` is not a key of an answer (did you mean `{meant}`?)",
                    shown_key(&key)
                )),
                None => read.dropped.push(shown_key(&key)),
            },
        }
    }
    Ok(read)
}

/// The key of an answer that `key` is a slip of (a different case, a letter or two off).
fn near_miss(key: &str) -> Option<&'static str> {
    let folded = key.to_ascii_lowercase();
    ["commands", "error", "debugContext"]
        .into_iter()
        .find(|known| edit_distance(&folded, &known.to_ascii_lowercase()) <= 2)
}

/// Levenshtein distance, for short keys only (answers' keys are compared with three words).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

fn read_commands(value: Value, read: &mut Read) -> Option<Vec<Command>> {
    let items = match value {
        Value::Array(items) => items,
        Value::Null => return None,
        other => {
            read.broken
                .push(format!("commands is {}, not an array", kind_of(&other)));
            return None;
        }
    };
    let mut commands = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let Value::Object(mut object) = item else {
            read.broken.push(format!(
                "commands[{i}] is {}, not an object",
                kind_of(&item)
            ));
            continue;
        };
        let kind = match object.remove("type") {
            Some(Value::String(kind)) => kind,
            Some(other) => {
                read.broken.push(format!(
                    "commands[{i}].type is {}, not a string",
                    kind_of(&other)
                ));
                continue;
            }
            None => {
                read.broken.push(format!("commands[{i}] has no type"));
                continue;
            }
        };
        let value = object.remove("value").unwrap_or(Value::Null);
        read.dropped.extend(
            object
                .keys()
                .map(|k| format!("commands[{i}].{}", shown_key(k))),
        );
        commands.push(Command { kind, value });
    }
    Some(commands)
}

/// Any `error` that is there and not null is a refusal, whatever its shape: a string is
/// read as its summary, an array (as in one of the spec's examples) as its first object.
fn read_error(value: Value, read: &mut Read) -> Option<InlineError> {
    match value {
        Value::Null => None,
        Value::Object(object) => Some(read_error_object(object, read)),
        Value::String(summary) => {
            read.broken
                .push("error is a string, not an object: read as its errorSummary".to_owned());
            Some(InlineError::with_summary(summary))
        }
        Value::Array(items) => {
            read.broken
                .push("error is an array, not an object: read as its first element".to_owned());
            let first = items.into_iter().find_map(|i| match i {
                Value::Object(object) => Some(object),
                _ => None,
            });
            Some(first.map_or_else(InlineError::default, |o| read_error_object(o, read)))
        }
        other => {
            read.broken
                .push(format!("error is {}, not an object", kind_of(&other)));
            Some(InlineError::default())
        }
    }
}

fn read_error_object(object: Map<String, Value>, read: &mut Read) -> InlineError {
    let mut error = InlineError::default();
    for (key, value) in object {
        match key.as_str() {
            "errorSummary" => error.error_summary = text(value, "error.errorSummary", read),
            "errorCauses" => match value {
                Value::Array(items) => {
                    let causes = items
                        .into_iter()
                        .enumerate()
                        .filter_map(|(i, c)| read_cause(c, i, read))
                        .collect();
                    error.error_causes = Some(causes);
                }
                Value::Null => {}
                other => read.broken.push(format!(
                    "error.errorCauses is {}, not an array",
                    kind_of(&other)
                )),
            },
            _ => read.dropped.push(format!("error.{}", shown_key(&key))),
        }
    }
    error
}

fn read_cause(value: Value, i: usize, read: &mut Read) -> Option<ErrorCause> {
    let Value::Object(object) = value else {
        read.broken.push(format!(
            "error.errorCauses[{i}] is {}, not an object",
            kind_of(&value)
        ));
        return None;
    };
    let mut cause = ErrorCause::default();
    for (key, value) in object {
        let at = format!("error.errorCauses[{i}].{}", shown_key(&key));
        let field = match key.as_str() {
            "errorSummary" => &mut cause.error_summary,
            "reason" => &mut cause.reason,
            "locationType" => &mut cause.location_type,
            "location" => &mut cause.location,
            "domain" => &mut cause.domain,
            _ => {
                read.dropped.push(at);
                continue;
            }
        };
        *field = text(value, &at, read);
    }
    Some(cause)
}

fn text(value: Value, at: &str, read: &mut Read) -> Option<String> {
    match value {
        Value::String(s) => Some(s),
        Value::Null => None,
        other => {
            read.broken
                .push(format!("{at} is {}, not a string", kind_of(&other)));
            None
        }
    }
}

/// Reads an answer strictly: an object whose keys are only `commands`, `error` and
/// `debugContext`, each of its documented shape.
pub fn parse_strict(value: Value) -> Result<InlineResponse, String> {
    let map = match value {
        Value::Object(map) => map,
        other => {
            return Err(format!(
                "an answer that is {} instead of an object",
                kind_of(&other)
            ))
        }
    };
    if let Some(key) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "commands" | "error" | "debugContext"))
    {
        return Err(format!(
            "an unknown key `{}` in the answer (an answer has commands, error and debugContext)",
            shown_key(key)
        ));
    }
    serde_json::from_value(Value::Object(map)).map_err(|e| {
        format!(
            "an answer of the wrong shape: {}",
            redact_quoted(&e.to_string())
        )
    })
}

/// serde quotes the offending value (`invalid type: string "…"`); the type is the useful
/// part, the value may be request data echoed back.
fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut inside = false;
    for c in message.chars() {
        if c == '"' {
            if inside {
                out.push('…');
            }
            inside = !inside;
            out.push(c);
        } else if !inside {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_well_formed_answer_reads_as_serde_reads_it() {
        for sample in [
            include_str!("../../../tests/fixtures/okta/saml-hook-response.json"),
            include_str!("../../../tests/fixtures/okta/registration-hook-response-deny.json"),
            include_str!("../../../tests/fixtures/okta/telephony-hook-response-success.json"),
        ] {
            let value: Value = serde_json::from_str(sample).expect("sample");
            let read = read(value.clone()).expect("object");
            assert_eq!(read.dropped, Vec::<String>::new());
            assert_eq!(read.broken, Vec::<String>::new());
            assert_eq!(Some(read.answer), parse_strict(value).ok());
        }
    }

    #[test]
    fn unknown_keys_are_dropped_and_named() {
        let r = read(json!({
            "commands": [{"type": "com.okta.action.update", "value": {"registration": "ALLOW"}, "note": 1}],
            "extra": true,
            "error": null,
            "debugContext": "text",
        }))
        .expect("object");
        let mut dropped = r.dropped.clone();
        dropped.sort();
        assert_eq!(
            dropped,
            vec!["commands[0].note", "debugContext (a string)", "extra"]
        );
        assert!(r.broken.is_empty());
        assert_eq!(r.answer.commands.as_ref().map(Vec::len), Some(1));
        assert!(r.answer.error.is_none() && r.answer.debug_context.is_none());
    }

    #[test]
    fn a_slip_of_a_known_key_is_broken_not_dropped() {
        for key in [
            "command",
            "Commands",
            "errors",
            "eror",
            "Error",
            "debugcontext",
        ] {
            let r = read(json!({key: []})).expect("object");
            assert_eq!(r.broken.len(), 1, "{key}: {r:?}");
            assert!(r.dropped.is_empty(), "{key}");
        }
        for key in ["traceId", "result", "status", "x"] {
            let r = read(json!({key: 1})).expect("object");
            assert_eq!(r.dropped, vec![key.to_owned()], "{key}");
        }
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn a_malformed_error_is_still_an_error() {
        for (error, summary) in [
            (json!("Access denied"), Some("Access denied")),
            (json!([{"errorSummary": "No"}]), Some("No")),
            (json!(true), None),
            (json!({"errorSummary": 5}), None),
            (json!({}), None),
        ] {
            let r = read(json!({"error": error})).expect("object");
            let e = r.answer.error.expect("an error");
            assert_eq!(e.error_summary.as_deref(), summary);
        }
    }

    #[test]
    fn broken_parts_are_named_without_values() {
        let r = read(json!({
            "commands": [7, {"value": 1}, {"type": 3}],
            "error": {"errorCauses": [{"reason": ["hunter2"]}, "x"], "errorSummary": "s"},
        }))
        .expect("object");
        assert_eq!(
            r.broken,
            vec![
                "commands[0] is a number, not an object",
                "commands[1] has no type",
                "commands[2].type is a number, not a string",
                "error.errorCauses[0].reason is an array, not a string",
                "error.errorCauses[1] is a string, not an object",
            ]
        );
        assert!(!format!("{r:?}").contains("hunter2"));
        assert!(read(json!([1])).is_err());
    }

    #[test]
    fn parse_strict_is_strict_about_keys_and_quiet_about_values() {
        assert!(parse_strict(json!([]))
            .expect_err("array")
            .contains("an array"));
        assert!(parse_strict(json!({"command": []}))
            .expect_err("misspelt")
            .contains("unknown key `command`"));
        let e = parse_strict(json!({"commands": "hunter2"})).expect_err("string");
        assert!(!e.contains("hunter2"), "{e}");
        assert_eq!(
            redact_quoted(r#"invalid type: string "abc", expected x"#),
            r#"invalid type: string "…", expected x"#
        );
    }
}
