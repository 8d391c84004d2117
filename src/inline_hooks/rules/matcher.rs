//! The compiled pieces that the rules of every hook type share: a *field* (a place in the
//! request), a *test* (a compiled [`Matcher`]), a *guard* (the `when` and `unless`
//! conditions of a rule), where a value comes from (static or a request field), and the
//! `set` rules of registration and import.

use super::Ctx;
use crate::config::rules::{
    CharClass, Condition, ConditionSource, Matcher, ProfileTarget, SetRule,
};
use crate::glob::glob_match;
use crate::http::network::IpAllowlist;
use crate::okta::inline::{pointer_segment, HookType};
use serde_json::Value;

/// A place in the request, held as a JSON Pointer.
#[derive(Debug, Clone)]
pub(super) struct Field(String);

impl Field {
    /// Accepts a JSON Pointer (`/data/user/id`) or the dotted form of Okta's docs
    /// (`data.context.matches[0].id`); the dotted form cannot name keys holding `.` or `[`.
    pub(super) fn parse(text: &str) -> Result<Field, String> {
        if text.starts_with('/') {
            return Ok(Field(text.to_owned()));
        }
        if text.is_empty() {
            return Err(
                "an empty field: write a JSON Pointer such as /data/userProfile/email".into(),
            );
        }
        let mut pointer = String::new();
        for part in text.split('.') {
            let (name, mut rest) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if name.is_empty() || name.contains(']') {
                return Err(format!("'{text}' is not a field: write a JSON Pointer such as /data/context/matches/0/id or a dotted path such as data.context.matches[0].id"));
            }
            pointer.push('/');
            pointer.push_str(&pointer_segment(name));
            while !rest.is_empty() {
                let index = rest
                    .strip_prefix('[')
                    .and_then(|r| r.split_once(']'))
                    .filter(|(i, _)| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()));
                let Some((i, after)) = index else {
                    return Err(format!("'{text}': an index is written [0]"));
                };
                pointer.push('/');
                pointer.push_str(i);
                rest = after;
            }
        }
        Ok(Field(pointer))
    }

    /// The value there; `null` counts as absent (Okta sends `null` for unset attributes).
    pub(super) fn get<'a>(&self, request: &'a Value) -> Option<&'a Value> {
        request.pointer(&self.0).filter(|v| !v.is_null())
    }
}

/// A scalar as text (`"a"`, `12`, `true`); objects, arrays and null have none.
pub(super) fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Absent for the purpose of `exists`: null, `""` or `[]`.
pub(super) fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// A compiled [`Matcher`].
#[derive(Debug, Clone)]
pub(super) struct Test {
    exists: Option<bool>,
    /// `equals` or `one_of`, as text (lower case with `ignore_case`).
    one_of: Option<Vec<String>>,
    globs: Vec<String>,
    regex: Option<regex::Regex>,
    chars: Option<CharClass>,
    min_length: Option<usize>,
    max_length: Option<usize>,
    ignore_case: bool,
}

impl Test {
    pub(super) fn compile(m: &Matcher) -> Result<Test, String> {
        let fold = |s: String| if m.ignore_case { s.to_lowercase() } else { s };
        let texts = |values: &[Value]| -> Result<Vec<String>, String> {
            values
                .iter()
                .map(|v| {
                    scalar_text(v).map(fold).ok_or_else(|| {
                        "`equals` and `one_of` take strings, numbers or booleans".to_owned()
                    })
                })
                .collect()
        };
        let one_of = match (&m.equals, &m.one_of) {
            (Some(_), Some(_)) => return Err("use either `equals` or `one_of`, not both".into()),
            (Some(v), None) => Some(texts(std::slice::from_ref(v))?),
            (None, Some(list)) if list.is_empty() => {
                return Err("`one_of` is empty: nothing could match".into())
            }
            (None, Some(list)) => Some(texts(list)?),
            (None, None) => None,
        };
        let globs: Vec<String> = m.glob.as_ref().map(|g| g.0.clone()).unwrap_or_default();
        if globs.iter().any(String::is_empty) {
            return Err("an empty glob matches only empty values: remove it or write `*`".into());
        }
        let regex = match &m.regex {
            Some(pattern) => Some(
                regex::RegexBuilder::new(pattern)
                    .case_insensitive(m.ignore_case)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| format!("`regex`: {e}"))?,
            ),
            None => None,
        };
        if let (Some(min), Some(max)) = (m.min_length, m.max_length) {
            if min > max {
                return Err(format!("min_length {min} is over max_length {max}"));
            }
        }
        let test = Test {
            exists: m.exists,
            one_of,
            globs: globs.into_iter().map(fold).collect(),
            regex,
            chars: m.chars,
            min_length: m.min_length,
            max_length: m.max_length,
            ignore_case: m.ignore_case,
        };
        if test.exists == Some(false) && test.has_value_tests() {
            return Err("`exists = false` cannot be combined with tests on the value".into());
        }
        Ok(test)
    }

    fn has_value_tests(&self) -> bool {
        self.one_of.is_some()
            || !self.globs.is_empty()
            || self.regex.is_some()
            || self.chars.is_some()
            || self.min_length.is_some()
            || self.max_length.is_some()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.exists.is_none() && !self.has_value_tests()
    }

    pub(super) fn matches(&self, value: Option<&Value>) -> bool {
        let value = value.filter(|v| !is_blank(v));
        if let Some(want) = self.exists {
            if value.is_some() != want {
                return false;
            }
        }
        if !self.has_value_tests() {
            return true;
        }
        match value {
            None => false,
            Some(Value::Array(items)) => items.iter().any(|v| self.matches_scalar(v)),
            Some(v) => self.matches_scalar(v),
        }
    }

    fn matches_scalar(&self, value: &Value) -> bool {
        let Some(text) = scalar_text(value) else {
            return false;
        };
        if let Some(min) = self.min_length {
            if text.chars().count() < min {
                return false;
            }
        }
        if let Some(max) = self.max_length {
            if text.chars().count() > max {
                return false;
            }
        }
        let class_ok = match self.chars {
            None => true,
            Some(CharClass::Digits) => text.chars().all(|c| c.is_ascii_digit()),
            Some(CharClass::Letters) => text.chars().all(char::is_alphabetic),
            Some(CharClass::Alphanumeric) => text
                .chars()
                .all(|c| c.is_alphabetic() || c.is_ascii_digit()),
        };
        if !class_ok {
            return false;
        }
        // The regex folds case itself (its own Unicode rules).
        if let Some(re) = &self.regex {
            if !re.is_match(&text) {
                return false;
            }
        }
        let text = if self.ignore_case {
            text.to_lowercase()
        } else {
            text
        };
        if let Some(list) = &self.one_of {
            if !list.contains(&text) {
                return false;
            }
        }
        self.globs.is_empty() || self.globs.iter().any(|g| glob_match(g, &text))
    }
}

#[derive(Debug, Clone)]
enum Source {
    Field(Field),
    Attribute(String),
    Scope(String),
    ClientId(Vec<String>),
    Ip(IpAllowlist),
}

#[derive(Debug, Clone)]
struct Cond {
    source: Source,
    test: Test,
}

impl Cond {
    fn holds(&self, ctx: &Ctx<'_>) -> bool {
        match &self.source {
            Source::Field(f) => self.test.matches(f.get(ctx.req)),
            Source::Attribute(a) => self.test.matches(ctx.attribute(a)),
            Source::Scope(s) => ctx.scope_granted(s),
            Source::ClientId(ids) => ctx.client_id().is_some_and(|c| ids.iter().any(|i| i == c)),
            Source::Ip(nets) => ctx.ip_address().is_some_and(|ip| nets.allows(ip)),
        }
    }
}

/// The networks of an `ip` condition: `203.0.113.0/24`, or an address alone.
fn networks(list: &[String]) -> Result<IpAllowlist, String> {
    if list.is_empty() {
        return Err("`ip` needs one or more networks or addresses".into());
    }
    let nets = list
        .iter()
        .map(|text| crate::config::network(text.trim()).map_err(|e| format!("`ip`: {e}")))
        .collect::<Result<Vec<_>, String>>()?;
    // Not empty, so it allows only what its networks hold.
    Ok(IpAllowlist::new(nets))
}

/// `when` (all hold) and `unless` (none holds).
#[derive(Debug, Clone, Default)]
pub(super) struct Guard {
    when: Vec<Cond>,
    unless: Vec<Cond>,
}

impl Guard {
    pub(super) fn compile(
        hook_type: HookType,
        when: &[Condition],
        unless: &[Condition],
    ) -> Result<Guard, String> {
        let compile_list = |list: &[Condition], key: &str| -> Result<Vec<Cond>, String> {
            list.iter()
                .enumerate()
                .map(|(i, c)| {
                    let at = format!("{key}[{i}]");
                    let source = match &c.on {
                        ConditionSource::Field(f) => {
                            Source::Field(Field::parse(f).map_err(|e| format!("{at}: {e}"))?)
                        }
                        ConditionSource::Attribute(a) if a.is_empty() => {
                            return Err(format!("{at}: `attribute` is empty"))
                        }
                        ConditionSource::Attribute(a) => Source::Attribute(a.clone()),
                        ConditionSource::Scope(_)
                        | ConditionSource::ClientId(_)
                        | ConditionSource::Ip(_)
                            if hook_type != HookType::Token =>
                        {
                            let key = match &c.on {
                                ConditionSource::Scope(_) => "scope",
                                ConditionSource::ClientId(_) => "client_id",
                                _ => "ip",
                            };
                            return Err(format!(
                                "{at}: `{key}` conditions are for token hooks (use `field` here)"
                            ));
                        }
                        ConditionSource::Scope(s) => Source::Scope(s.clone()),
                        ConditionSource::ClientId(ids) => {
                            if ids.is_empty() || ids.iter().any(|i| i.trim().is_empty()) {
                                return Err(format!(
                                    "{at}: `client_id` needs one or more client ids, none empty"
                                ));
                            }
                            Source::ClientId(ids.clone())
                        }
                        ConditionSource::Ip(list) => {
                            Source::Ip(networks(list).map_err(|e| format!("{at}: {e}"))?)
                        }
                    };
                    let mut test = Test::compile(&c.matcher).map_err(|e| format!("{at}: {e}"))?;
                    if test.is_empty() {
                        test.exists = Some(true);
                    }
                    Ok(Cond { source, test })
                })
                .collect()
        };
        Ok(Guard {
            when: compile_list(when, "when")?,
            unless: compile_list(unless, "unless")?,
        })
    }

    pub(super) fn allows(&self, ctx: &Ctx<'_>) -> bool {
        self.when.iter().all(|c| c.holds(ctx)) && !self.unless.iter().any(|c| c.holds(ctx))
    }
}

/// Where a value comes from: static, or a request field with an optional static fallback.
#[derive(Debug, Clone)]
pub(super) enum ValueSource {
    Static(Value),
    Field {
        field: Field,
        fallback: Option<Value>,
    },
}

impl ValueSource {
    pub(super) fn compile(
        value: &Option<Value>,
        from: &Option<String>,
    ) -> Result<ValueSource, String> {
        match (value, from) {
            (_, Some(f)) => Ok(ValueSource::Field {
                field: Field::parse(f).map_err(|e| format!("`from`: {e}"))?,
                fallback: value.clone(),
            }),
            (Some(v), None) => Ok(ValueSource::Static(v.clone())),
            (None, None) => Err("needs `value` or `from`".into()),
        }
    }

    /// `None` when the field is absent and there is no fallback: the rule then does nothing.
    pub(super) fn resolve(&self, ctx: &Ctx<'_>) -> Option<Value> {
        match self {
            ValueSource::Static(v) => Some(v.clone()),
            ValueSource::Field { field, fallback } => {
                field.get(ctx.req).cloned().or_else(|| fallback.clone())
            }
        }
    }
}

pub(super) fn nonempty(text: &str, what: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        Err(format!("`{what}` is empty"))
    } else {
        Ok(())
    }
}

pub(super) struct SetCompiled {
    pub(super) attribute: String,
    pub(super) value: ValueSource,
    pub(super) target: Option<ProfileTarget>,
    pub(super) guard: Guard,
}

pub(super) fn compile_sets(
    hook_type: HookType,
    section: &str,
    sets: &[SetRule],
) -> Result<Vec<SetCompiled>, String> {
    sets.iter()
        .enumerate()
        .map(|(i, s)| {
            let at = format!("{section}.set[{i}]");
            nonempty(&s.attribute, "attribute").map_err(|e| format!("{at}: {e}"))?;
            match (hook_type, s.target) {
                (HookType::Import, None) => {
                    return Err(format!(
                        "{at}: needs `target = \"app_user\"` or `target = \"user\"` (which profile to update)"
                    ))
                }
                (HookType::Import, Some(_)) | (_, None) => {}
                (_, Some(_)) => {
                    return Err(format!(
                        "{at}: `target` is for import hooks (registration picks the command from the flow)"
                    ))
                }
            }
            Ok(SetCompiled {
                attribute: s.attribute.clone(),
                value: ValueSource::compile(&s.value, &s.from).map_err(|e| format!("{at}: {e}"))?,
                target: s.target,
                guard: Guard::compile(hook_type, &s.when, &s.unless)
                    .map_err(|e| format!("{at}.{e}"))?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_accept_pointers_and_dotted_paths() {
        assert_eq!(
            Field::parse("/data/user/id").expect("pointer").0,
            "/data/user/id"
        );
        assert_eq!(
            Field::parse("data.context.matches[0].id")
                .expect("dotted")
                .0,
            "/data/context/matches/0/id"
        );
        assert_eq!(
            Field::parse("data.a/b[1][2]").expect("dotted").0,
            "/data/a~1b/1/2"
        );
        for bad in ["", "data..x", "data.x[", "data.x[a]", "data.[0]"] {
            assert!(Field::parse(bad).is_err(), "{bad}");
        }
    }
}
