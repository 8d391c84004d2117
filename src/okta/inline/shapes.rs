//! What the checks of several hook types share: the error type, the command being
//! checked, and the value shapes that recur (an enum object such as
//! `{"registration": "DENY"}`, a profile map, JSON Patch operations, one decision per
//! answer), with the tidying of keys Okta does not read. Each type's module uses these
//! for its own rules; [`super::check`] puts them together.

use super::{Command, InlineResponse};
use serde_json::{Map, Value};

/// Why an answer is not acceptable to Okta for this hook type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CheckError(pub String);

/// The command being checked, for messages that say where the problem is.
pub(super) struct At<'a> {
    pub(super) index: usize,
    pub(super) command: &'a Command,
}

impl At<'_> {
    pub(super) fn fail(&self, what: impl std::fmt::Display) -> CheckError {
        CheckError(format!(
            "commands[{}] ({}): {what}",
            self.index, self.command.kind
        ))
    }

    pub(super) fn value(&self) -> &Value {
        &self.command.value
    }
}

/// A command value that must be an object holding exactly one key with one of a few
/// string values, such as `{"registration": "DENY"}`.
pub(super) fn check_enum_object(at: &At, key: &str, allowed: &[&str]) -> Result<(), CheckError> {
    let expected = || {
        let choices: Vec<String> = allowed.iter().map(|a| format!("\"{a}\"")).collect();
        format!("{{\"{key}\": {}}}", choices.join(" | "))
    };
    let Some(object) = at.value().as_object() else {
        return Err(at.fail(format!(
            "value must be {}, not {}",
            expected(),
            kind_of(at.value())
        )));
    };
    match object.get(key) {
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => {}
        Some(other) => {
            return Err(at.fail(format!(
                "value.{key} is {other}; it must be one of {}",
                allowed.join(", ")
            )))
        }
        None => return Err(at.fail(format!("value has no \"{key}\"; it must be {}", expected()))),
    }
    if let Some(extra) = object.keys().find(|k| k.as_str() != key) {
        return Err(at.fail(format!(
            "value has an unknown key \"{extra}\"; it must be exactly {}",
            expected()
        )));
    }
    Ok(())
}

pub(super) fn check_profile_object(at: &At) -> Result<(), CheckError> {
    let Some(attributes) = at.value().as_object() else {
        return Err(at.fail(format!(
            "value must be an object of profile attributes, not {}",
            kind_of(at.value())
        )));
    };
    if attributes.contains_key("password") {
        return Err(at.fail("a profile update cannot set the password"));
    }
    Ok(())
}

/// The value of a patch command: an array of operation objects.
pub(super) fn patch_ops<'a>(at: &'a At) -> Result<&'a Vec<Value>, CheckError> {
    at.value().as_array().ok_or_else(|| {
        at.fail(format!(
            "value must be an array of {{op, path, value}} operations, not {}",
            kind_of(at.value())
        ))
    })
}

pub(super) fn op_and_path<'a>(
    at: &At,
    i: usize,
    op: &'a Value,
    allowed: &[&str],
) -> Result<(&'a str, &'a str), CheckError> {
    let Some(object) = op.as_object() else {
        return Err(at.fail(format!(
            "value[{i}] must be an {{op, path, value}} object, not {}",
            kind_of(op)
        )));
    };
    let kind = match object.get("op") {
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => s.as_str(),
        Some(other) => {
            return Err(at.fail(format!(
                "value[{i}].op is {other}; it must be one of {}",
                allowed.join(", ")
            )))
        }
        None => return Err(at.fail(format!("value[{i}] has no op"))),
    };
    let path = match object.get("path") {
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(at.fail(format!(
                "value[{i}].path must be a string, not {}",
                kind_of(other)
            )))
        }
        None => return Err(at.fail(format!("value[{i}] has no path"))),
    };
    Ok((kind, path))
}

/// One JSON Pointer segment: not empty, and `~` only as `~0` or `~1` (RFC 6901).
pub(super) fn check_segment(segment: &str) -> Result<(), String> {
    if segment.is_empty() {
        return Err("the path has an empty segment".to_owned());
    }
    let mut chars = segment.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(format!(
                "\"{segment}\" has a \"~\" that is not \"~0\" or \"~1\" (escape ~ as ~0 and / as ~1)"
            ));
        }
    }
    Ok(())
}

pub(super) fn unescape(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

pub(super) fn check_optional_strings(
    at: &At,
    i: usize,
    object: &Map<String, Value>,
    keys: &[&str],
) -> Result<(), CheckError> {
    for key in keys {
        match object.get(*key) {
            None | Some(Value::String(_)) => {}
            Some(other) => {
                return Err(at.fail(format!(
                    "value[{i}].{key} must be a string, not {}",
                    kind_of(other)
                )))
            }
        }
    }
    Ok(())
}

/// At most one command of type `action` (a decision): Okta runs every command in order,
/// so of two decisions the last would win, whatever the first said.
pub(super) fn one_action(answer: &InlineResponse, action: &str) -> Result<(), CheckError> {
    let mut decisions = answer
        .commands
        .iter()
        .flatten()
        .enumerate()
        .filter(|(_, c)| c.kind == action);
    match (decisions.next(), decisions.next()) {
        (Some((first, _)), Some((second, _))) => Err(CheckError(format!(
            "commands[{first}] and commands[{second}] are both {action}: send one decision"
        ))),
        _ => Ok(()),
    }
}

/// No command beside an `error`, for the types whose Okta runs none on an error (`does`:
/// what Okta does instead, for the message).
pub(super) fn nothing_beside_error(answer: &InlineResponse, does: &str) -> Result<(), CheckError> {
    match (&answer.error, answer.commands.as_deref()) {
        (Some(_), Some([_, ..])) => Err(CheckError(format!(
            "commands beside an error: Okta {does} on an error and runs none of them; send the error alone"
        ))),
        _ => Ok(()),
    }
}

/// Keeps only `keys` in an object; returns the names of the keys it dropped. Okta reads
/// the keys it knows, so an extra one changes nothing there; it is dropped here so that
/// the answer that leaves is exactly what Okta acts on.
pub(super) fn retain_keys(value: &mut Value, keys: &[&str]) -> Vec<String> {
    let Some(object) = value.as_object_mut() else {
        return Vec::new();
    };
    let mut dropped = Vec::new();
    object.retain(|k, _| {
        let keep = keys.contains(&k.as_str());
        if !keep {
            dropped.push(shown_key(k));
        }
        keep
    });
    dropped
}

/// Keeps op, path and value in each operation of a patch command.
pub(super) fn tidy_patch_ops(command: &mut Command) -> Vec<String> {
    let mut dropped = Vec::new();
    for op in command.value.as_array_mut().into_iter().flatten() {
        dropped.extend(retain_keys(op, &["op", "path", "value"]));
    }
    dropped
}

/// A key as messages show it: the first 40 characters (a key may be request data).
pub(super) fn shown_key(key: &str) -> String {
    key.chars().take(40).collect()
}

pub(super) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
