//! Reading the merged configuration tree into a [`Config`] without stopping at the first
//! mistake.
//!
//! serde stops at the first error. To report every mistake of a file in one run (a
//! misspelt key, a word where a number goes, a missing field, all at once), the tree is
//! read again after each error with that error's place mended: a misspelt key renamed to
//! the key it was meant to be, an unknown key removed, a wrong value replaced by its
//! default, a missing field given a stand-in. The problem is recorded with its full key
//! path; errors that a stand-in itself causes are not recorded. Every struct of the
//! configuration refuses unknown fields, so unknown keys are errors like the others and
//! their message lists the keys that exist, which is where "did you mean" comes from.
//!
//! Internally tagged tables (`auth`, `handler`, a sink: `type = "basic"`) are read through
//! [`tagged`], which keeps the path inside them: serde's own internal tagging buffers the
//! table and loses it (`event_hooks[0].auth` instead of `event_hooks[0].auth.users[0].password`).

use super::{Config, Problem};
use serde::de::Error as _;
use serde::Deserializer;
use serde_json::{Map, Value};

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    Key(String),
    Index(usize),
}

/// A key path as the problems print it: `event_hooks[0].auth.users[1].password`.
pub(super) fn render(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The outcome of [`parse`]: the configuration when the tree could be read (with stand-ins
/// where there were mistakes), every mistake, and the places that hold stand-ins (checks of
/// the config at or under them would only report the stand-in).
pub(super) struct Parsed {
    pub config: Option<Config>,
    pub problems: Vec<Problem>,
    pub stand_ins: Vec<String>,
}

/// Rounds of mend-and-read-again before giving up on a tree (a file with this many
/// mistakes has its first ones reported, which is enough to start).
const MAX_ROUNDS: usize = 200;

/// Reads `tree` (defaults, file and environment merged) into a [`Config`], gathering every
/// mistake; `defaults` (the embedded defaults alone) gives a wrong value's replacement.
pub(super) fn parse(mut tree: Value, defaults: &Value) -> Parsed {
    let mut problems: Vec<Problem> = Vec::new();
    // Places holding a stand-in, with how many stand-ins were tried there.
    let mut patched: Vec<(Vec<Step>, usize)> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let error = match serde_path_to_error::deserialize::<_, Config>(&tree) {
            Ok(config) => {
                return Parsed {
                    config: Some(config),
                    problems,
                    stand_ins: patched.iter().map(|(p, _)| render(p)).collect(),
                }
            }
            Err(e) => e,
        };
        let (path, message) = full_path(&error);
        let quiet = patched.iter().any(|(p, _)| path.starts_with(p));
        let mut record = |path: &[Step], message: String| {
            if !quiet {
                problems.push(Problem {
                    key: render(path),
                    message,
                });
            }
        };
        let mended = match Mistake::of(&message) {
            Mistake::UnknownField { field, expected } => {
                // The path names the unknown key itself when the reader got that far.
                let mut path = path.clone();
                if path.last() == Some(&Step::Key(field.clone())) {
                    path.pop();
                }
                let mut at = path.clone();
                at.push(Step::Key(field.clone()));
                let suggestion = closest(&field, &expected);
                record(&at, unknown_key_message(&path, &field, suggestion));
                // Renamed when the key it was meant to be is free, so that its value is
                // checked too (and its absence is not a second problem); else removed.
                match suggestion.filter(|s| get(&tree, &path).and_then(|t| t.get(*s)).is_none()) {
                    Some(s) => rename(&mut tree, &path, &field, s),
                    None => remove(&mut tree, &at),
                }
            }
            Mistake::MissingField { field } => {
                let mut at = path.clone();
                at.push(Step::Key(field));
                record(&at, "missing (this key is required here)".to_owned());
                stand_in(&mut tree, &at, defaults, &mut patched, None)
            }
            Mistake::Other { variants } => {
                let hint = message
                    .strip_prefix("unknown variant `")
                    .and_then(|rest| rest.split_once('`'))
                    .and_then(|(v, _)| closest(v, variants.as_deref().unwrap_or_default()));
                record(
                    &path,
                    match hint {
                        Some(h) => format!("{message}; did you mean `{h}`?"),
                        None => message.clone(),
                    },
                );
                !path.is_empty() && stand_in(&mut tree, &path, defaults, &mut patched, variants)
            }
        };
        if !mended {
            break;
        }
    }
    if problems.is_empty() {
        // Not one mistake could be placed: say so rather than claim a valid file.
        problems.push(Problem {
            key: "(config)".to_owned(),
            message: "cannot be read (too many mistakes, or one that hides the others)".to_owned(),
        });
    }
    Parsed {
        config: None,
        problems,
        stand_ins: patched.iter().map(|(p, _)| render(p)).collect(),
    }
}

/// The message for an unknown key, with the keys of the old `[reconcile]` section sent
/// where they went.
fn unknown_key_message(table: &[Step], field: &str, suggestion: Option<&str>) -> String {
    if matches!(table, [Step::Key(k)] if k == "reconcile")
        && super::okta_api::MOVED_FROM_RECONCILE.contains(&field)
    {
        return format!("moved to the [okta] section (okta.{field}), which reconciliation and `hookwarden okta` share");
    }
    match suggestion {
        Some(s) => format!("unknown key; did you mean `{s}`?"),
        None => "unknown key (misspelt? docs/configuration.md lists every key)".to_owned(),
    }
}

/// What kind of mistake a serde message describes.
enum Mistake {
    UnknownField {
        field: String,
        expected: Vec<String>,
    },
    MissingField {
        field: String,
    },
    /// A wrong type or value; for an unknown variant, the variants that exist.
    Other {
        variants: Option<Vec<String>>,
    },
}

impl Mistake {
    fn of(message: &str) -> Mistake {
        if let Some(rest) = message.strip_prefix("unknown field `") {
            if let Some((field, tail)) = rest.split_once('`') {
                return Mistake::UnknownField {
                    field: field.to_owned(),
                    expected: backticked(tail),
                };
            }
        }
        if let Some(rest) = message.strip_prefix("missing field `") {
            if let Some((field, _)) = rest.split_once('`') {
                return Mistake::MissingField {
                    field: field.to_owned(),
                };
            }
        }
        let variants = message
            .strip_prefix("unknown variant `")
            .and_then(|rest| rest.split_once('`'))
            .map(|(_, tail)| backticked(tail));
        Mistake::Other { variants }
    }
}

/// The names between backticks in serde's "expected one of `a`, `b`" tail.
fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The key meant by a misspelt one, when one is close enough to be a likely typo.
fn closest<'a>(field: &str, expected: &'a [String]) -> Option<&'a str> {
    expected
        .iter()
        .map(|e| (strsim::damerau_levenshtein(field, e), e))
        .filter(|(d, e)| *d <= (e.len().max(field.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, e)| e.as_str())
}

/// Marks a message that carries the path inside an internally tagged table (see [`tagged`]).
const NESTED: char = '\u{1}';

/// The full path of an error and its message, with the steps that [`tagged`] carried in
/// the message added to serde_path_to_error's.
fn full_path(error: &serde_path_to_error::Error<serde_json::Error>) -> (Vec<Step>, String) {
    let mut path = steps(error.path());
    let mut message = error.inner().to_string();
    while let Some(rest) = message.strip_prefix(NESTED) {
        let Some((inner, tail)) = rest.split_once(NESTED) else {
            break;
        };
        if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(inner) {
            path.extend(items.into_iter().filter_map(|v| match v {
                Value::String(s) => Some(Step::Key(s)),
                Value::Number(n) => n.as_u64().map(|i| Step::Index(i as usize)),
                _ => None,
            }));
        }
        message = tail.to_owned();
    }
    (path, message)
}

fn steps(path: &serde_path_to_error::Path) -> Vec<Step> {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|s| match s {
            Segment::Seq { index } => Some(Step::Index(*index)),
            Segment::Map { key } => Some(Step::Key(key.clone())),
            // An externally tagged variant's name is not a key of the file ([`tagged`]).
            Segment::Enum { .. } | Segment::Unknown => None,
        })
        .collect()
}

/// Reads an internally tagged table (`{ type = "basic", users = [...] }`) as its
/// externally tagged form (`{ basic = { users = [...] } }`), so that errors inside keep
/// their path. The type derives `Deserialize` with `#[serde(remote = "Self")]` (and
/// `deny_unknown_fields`), and its own `Deserialize` impl calls this with its tag key and
/// the derived reader: `tagged(d, "type", &[], |de| Self::deserialize(de))`, naming its
/// unit variants (which have no table of their own).
pub(crate) fn tagged<'de, D, T>(
    d: D,
    tag: &'static str,
    unit_variants: &[&str],
    read: impl for<'a, 'b> FnOnce(
        serde_path_to_error::Deserializer<'a, 'b, Value>,
    ) -> Result<T, serde_json::Error>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    let mut table: Map<String, Value> = serde::Deserialize::deserialize(d)?;
    let variant = match table.remove(tag) {
        Some(Value::String(s)) => s,
        Some(_) => return Err(nested(&[Step::Key(tag.to_owned())], "must be a string")),
        None => return Err(D::Error::missing_field(tag)),
    };
    // A variant with no keys of its own (`type = "stdout"`) is written as its name alone.
    let external = if table.is_empty() && unit_variants.contains(&variant.as_str()) {
        Value::String(variant)
    } else {
        Value::Object(Map::from_iter([(variant, Value::Object(table))]))
    };
    let mut track = serde_path_to_error::Track::new();
    let result = read(serde_path_to_error::Deserializer::new(external, &mut track));
    result.map_err(|e| {
        let (mut path, message) = full_path(&serde_path_to_error::Error::new(track.path(), e));
        // An unknown variant is reported at the table itself: it is the tag's value.
        if path.is_empty() && message.starts_with("unknown variant") {
            path.push(Step::Key(tag.to_owned()));
        }
        nested(&path, &message)
    })
}

/// Reads `value` as `T`, an error keeping its path inside `value` (for a hand-written
/// `Deserialize` that reads part of its table itself, like a sink's common keys).
pub(crate) fn read_at<T: serde::de::DeserializeOwned, E: serde::de::Error>(
    value: Value,
) -> Result<T, E> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let (path, message) = full_path(&e);
        nested(&path, &message)
    })
}

pub(super) fn nested<E: serde::de::Error>(path: &[Step], message: &str) -> E {
    let steps: Vec<Value> = path
        .iter()
        .map(|s| match s {
            Step::Key(k) => Value::String(k.clone()),
            Step::Index(i) => Value::from(*i),
        })
        .collect();
    E::custom(format!("{NESTED}{}{NESTED}{message}", Value::Array(steps)))
}

fn get<'a>(tree: &'a Value, path: &[Step]) -> Option<&'a Value> {
    path.iter().try_fold(tree, |v, step| match step {
        Step::Key(k) => v.get(k),
        Step::Index(i) => v.get(i),
    })
}

fn get_mut<'a>(tree: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(tree, |v, step| match step {
        Step::Key(k) => v.get_mut(k),
        Step::Index(i) => v.get_mut(i),
    })
}

fn rename(tree: &mut Value, table: &[Step], from: &str, to: &str) -> bool {
    match get_mut(tree, table).and_then(Value::as_object_mut) {
        Some(t) => match t.remove(from) {
            Some(v) => {
                t.insert(to.to_owned(), v);
                true
            }
            None => false,
        },
        None => false,
    }
}

fn remove(tree: &mut Value, at: &[Step]) -> bool {
    let Some((Step::Key(last), table)) = at.split_last() else {
        return false;
    };
    get_mut(tree, table)
        .and_then(Value::as_object_mut)
        .and_then(|t| t.remove(last))
        .is_some()
}

/// Puts the next stand-in at `at`: the first variant that exists (for an unknown
/// variant), else its default, then a value of each type in turn. False when every
/// stand-in was tried (what is left cannot be read).
fn stand_in(
    tree: &mut Value,
    at: &[Step],
    defaults: &Value,
    patched: &mut Vec<(Vec<Step>, usize)>,
    variants: Option<Vec<String>>,
) -> bool {
    let slot = match patched.iter().position(|(p, _)| p == at) {
        Some(i) => i,
        None => {
            patched.push((at.to_vec(), 0));
            patched.len() - 1
        }
    };
    let tries = &mut patched[slot].1;
    let variant = variants
        .and_then(|v| v.into_iter().next())
        .map(Value::String)
        .filter(|v| get(tree, at) != Some(v));
    let value = match variant {
        Some(v) => {
            // The rest of a table whose type was a stand-in belongs to another type:
            // whatever it says is not reported.
            if let Some((_, table)) = at.split_last().filter(|(_, t)| !t.is_empty()) {
                if !patched.iter().any(|(p, _)| p == table) {
                    patched.push((table.to_vec(), 0));
                }
            }
            v
        }
        None => {
            // `None` removes the key: a field with a default of its own takes it.
            let mut candidates: Vec<Option<Value>> = vec![get(defaults, at).cloned(), None];
            candidates.extend(
                [
                    Value::String(String::new()),
                    Value::from(0),
                    Value::Bool(false),
                    Value::Array(Vec::new()),
                    Value::Object(Map::new()),
                ]
                .map(Some),
            );
            if candidates[0].is_none() {
                candidates.remove(0);
            }
            let Some(v) = candidates.into_iter().nth(*tries) else {
                // Nothing fits here: stand in for the table or list that holds it.
                return match at.split_last() {
                    Some((_, parent)) if !parent.is_empty() => {
                        stand_in(tree, parent, defaults, patched, None)
                    }
                    _ => false,
                };
            };
            *tries += 1;
            match v {
                Some(v) => v,
                None => return remove(tree, at) || stand_in(tree, at, defaults, patched, None),
            }
        }
    };
    let Some((last, parent)) = at.split_last() else {
        return false;
    };
    match (get_mut(tree, parent), last) {
        (Some(Value::Object(t)), Step::Key(k)) => {
            t.insert(k.clone(), value);
            true
        }
        (Some(Value::Array(items)), Step::Index(i)) if *i < items.len() => {
            items[*i] = value;
            true
        }
        _ => false,
    }
}
