//! Declarative rules (`kind = "rules"`): the common inline hook decisions written as TOML.
//!
//! One section per hook type under `[inline_hooks.handler]`. [`RulesHandler::new`] compiles
//! the section of the hook's own type and refuses any other, so that every mistake an admin
//! can make in a rule shows at start (and in `check-config`), named by its index, instead of
//! showing as a person who cannot sign in.
//!
//! Shared building blocks:
//! - a *field* is a place in the request: a JSON Pointer (`/data/context/user/profile/login`)
//!   or the dotted form Okta's docs use (`data.context.matches[0].id`);
//! - a *matcher* tests a value: `exists`, `equals`, `one_of`, `glob`, `regex`, `chars`,
//!   `min_length`, `max_length`, `ignore_case`; an array matches when one of its elements does;
//! - a *condition* is a matcher on a `field`, on a profile `attribute`, or a granted `scope`
//!   (token only); rules take `when` (all must hold) and `unless` (none may hold).
//!
//! The user guide, with a worked example per type, is `docs/inline-handlers.md`.

use super::password_hash::StoredHash;
use super::phone::{country_of, phone_digits, CALLING_CODES, NANP};
use super::{Handler, HandlerError, InlineCall};
use crate::config::expose;
use crate::config::rules::{
    CharClass, ClaimOp, Condition, ConditionSource, ImportRules, Matcher, PasswordImportRules,
    ProfileTarget, RegistrationRules, RulesConfig, SamlOp, SamlRules, SetRule, TelephonyRules,
    TokenChoice, TokenRules,
};
use crate::okta::inline::{pointer_segment, ErrorCause, HookType, InlineResponse};
use crate::store::glob_match;
use async_trait::async_trait;
use secrecy::SecretString;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

// ------------------------------------------------------------------------------------------
// Shared compiled pieces
// ------------------------------------------------------------------------------------------

/// A place in the request, held as a JSON Pointer.
#[derive(Debug, Clone)]
struct Field(String);

impl Field {
    /// Accepts a JSON Pointer (`/data/user/id`) or the dotted form of Okta's docs
    /// (`data.context.matches[0].id`); the dotted form cannot name keys holding `.` or `[`.
    fn parse(text: &str) -> Result<Field, String> {
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
    fn get<'a>(&self, request: &'a Value) -> Option<&'a Value> {
        request.pointer(&self.0).filter(|v| !v.is_null())
    }
}

/// A scalar as text (`"a"`, `12`, `true`); objects, arrays and null have none.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Absent for the purpose of `exists`: null, `""` or `[]`.
fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// A compiled [`Matcher`].
#[derive(Debug, Clone)]
struct Test {
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
    fn compile(m: &Matcher) -> Result<Test, String> {
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

    fn is_empty(&self) -> bool {
        self.exists.is_none() && !self.has_value_tests()
    }

    fn matches(&self, value: Option<&Value>) -> bool {
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

/// The request seen by the rules, with the hook-type-specific lookups.
struct Ctx<'a> {
    req: &'a Value,
    hook_type: HookType,
    /// Registration only: `requestType = progressive.profile` (otherwise SSR, Classic included).
    progressive: bool,
}

impl<'a> Ctx<'a> {
    fn new(hook_type: HookType, req: &'a Value) -> Self {
        let progressive = hook_type == HookType::Registration
            && req.get("requestType").and_then(Value::as_str) == Some("progressive.profile");
        Ctx {
            req,
            hook_type,
            progressive,
        }
    }

    /// A profile attribute: the registration form (SSR) or the update then the current
    /// profile (progressive profile), the user's profile (token, SAML), the app user's
    /// profile (import), the user (telephony).
    fn attribute(&self, name: &str) -> Option<&'a Value> {
        let get = |base: &str| {
            self.req
                .pointer(base)
                .and_then(|p| p.get(name))
                .filter(|v| !v.is_null())
        };
        match self.hook_type {
            HookType::Registration if self.progressive => {
                get("/data/userProfileUpdate").or_else(|| get("/data/context/user/profile"))
            }
            HookType::Registration | HookType::Telephony => get("/data/userProfile"),
            HookType::Token | HookType::Saml => get("/data/context/user/profile"),
            HookType::Import => get("/data/appUser/profile"),
            HookType::PasswordImport => None,
        }
    }

    /// Granted to the access token (`data.access.scopes`); without an access token, requested
    /// in `data.context.protocol.request.scope`.
    fn scope_granted(&self, scope: &str) -> bool {
        match self
            .req
            .pointer("/data/access/scopes")
            .and_then(Value::as_object)
        {
            Some(scopes) => scopes.get(scope).is_some_and(|s| {
                s.get("action")
                    .and_then(Value::as_str)
                    .is_none_or(|a| a.eq_ignore_ascii_case("GRANT"))
            }),
            None => self
                .req
                .pointer("/data/context/protocol/request/scope")
                .and_then(Value::as_str)
                .is_some_and(|s| s.split_whitespace().any(|w| w == scope)),
        }
    }
}

#[derive(Debug, Clone)]
enum Source {
    Field(Field),
    Attribute(String),
    Scope(String),
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
        }
    }
}

/// `when` (all hold) and `unless` (none holds).
#[derive(Debug, Clone, Default)]
struct Guard {
    when: Vec<Cond>,
    unless: Vec<Cond>,
}

impl Guard {
    fn compile(
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
                        ConditionSource::Scope(_) if hook_type != HookType::Token => {
                            return Err(format!(
                                "{at}: `scope` conditions are for token hooks (use `field` here)"
                            ));
                        }
                        ConditionSource::Scope(s) => Source::Scope(s.clone()),
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

    fn allows(&self, ctx: &Ctx<'_>) -> bool {
        self.when.iter().all(|c| c.holds(ctx)) && !self.unless.iter().any(|c| c.holds(ctx))
    }
}

/// Where a value comes from: static, or a request field with an optional static fallback.
#[derive(Debug, Clone)]
enum ValueSource {
    Static(Value),
    Field {
        field: Field,
        fallback: Option<Value>,
    },
}

impl ValueSource {
    fn compile(value: &Option<Value>, from: &Option<String>) -> Result<ValueSource, String> {
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
    fn resolve(&self, ctx: &Ctx<'_>) -> Option<Value> {
        match self {
            ValueSource::Static(v) => Some(v.clone()),
            ValueSource::Field { field, fallback } => {
                field.get(ctx.req).cloned().or_else(|| fallback.clone())
            }
        }
    }
}

fn nonempty(text: &str, what: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        Err(format!("`{what}` is empty"))
    } else {
        Ok(())
    }
}

// ------------------------------------------------------------------------------------------
// The handler
// ------------------------------------------------------------------------------------------

/// Answers from compiled rules. Everything but password import is a few lookups in the
/// request; password import verifies a hash on the blocking pool.
pub struct RulesHandler {
    rules: Compiled,
}

enum Compiled {
    Registration(Box<RegistrationCompiled>),
    Token(Box<TokenCompiled>),
    Saml(Box<SamlCompiled>),
    Import(Box<ImportCompiled>),
    PasswordImport(Arc<PasswordBook>),
    Telephony(Box<TelephonyCompiled>),
}

impl RulesHandler {
    /// Builds the handler for a hook of this type; errors name the offending rule.
    pub fn new(hook_type: HookType, config: &RulesConfig) -> Result<Self, String> {
        let sections = [
            (HookType::Registration, config.registration.is_some()),
            (HookType::Token, config.token.is_some()),
            (HookType::Saml, config.saml.is_some()),
            (HookType::Import, config.import.is_some()),
            (HookType::PasswordImport, config.password_import.is_some()),
            (HookType::Telephony, config.telephony.is_some()),
        ];
        for (t, present) in sections {
            if present && t != hook_type {
                return Err(format!(
                    "rules: the `{}` section does not apply to a {} hook; its rules go in [inline_hooks.handler.{}]",
                    t.name(),
                    hook_type.name(),
                    hook_type.name()
                ));
            }
        }
        let missing = || {
            format!(
                "rules: a {} hook needs its rules in [inline_hooks.handler.{}]",
                hook_type.name(),
                hook_type.name()
            )
        };
        let rules = match hook_type {
            HookType::Registration => Compiled::Registration(Box::new(
                RegistrationCompiled::compile(config.registration.as_ref().ok_or_else(missing)?)?,
            )),
            HookType::Token => Compiled::Token(Box::new(TokenCompiled::compile(
                config.token.as_ref().ok_or_else(missing)?,
            )?)),
            HookType::Saml => Compiled::Saml(Box::new(SamlCompiled::compile(
                config.saml.as_ref().ok_or_else(missing)?,
            )?)),
            HookType::Import => Compiled::Import(Box::new(ImportCompiled::compile(
                config.import.as_ref().ok_or_else(missing)?,
            )?)),
            HookType::PasswordImport => Compiled::PasswordImport(Arc::new(PasswordBook::load(
                config.password_import.as_ref().ok_or_else(missing)?,
            )?)),
            HookType::Telephony => Compiled::Telephony(Box::new(TelephonyCompiled::compile(
                config.telephony.as_ref().ok_or_else(missing)?,
            )?)),
        };
        Ok(RulesHandler { rules })
    }

    fn hook_type(&self) -> HookType {
        match self.rules {
            Compiled::Registration(_) => HookType::Registration,
            Compiled::Token(_) => HookType::Token,
            Compiled::Saml(_) => HookType::Saml,
            Compiled::Import(_) => HookType::Import,
            Compiled::PasswordImport(_) => HookType::PasswordImport,
            Compiled::Telephony(_) => HookType::Telephony,
        }
    }
}

#[async_trait]
impl Handler for RulesHandler {
    async fn handle(&self, call: &InlineCall) -> Result<InlineResponse, HandlerError> {
        let ctx = Ctx::new(self.hook_type(), &call.body);
        Ok(match &self.rules {
            Compiled::Registration(r) => r.answer(&ctx),
            Compiled::Token(r) => r.answer(&ctx),
            Compiled::Saml(r) => r.answer(&ctx),
            Compiled::Import(r) => r.answer(&ctx),
            Compiled::Telephony(r) => r.answer(&ctx, call.event_id.as_deref()),
            Compiled::PasswordImport(book) => return book.clone().answer(&call.body).await,
        })
    }
}

// ------------------------------------------------------------------------------------------
// Registration
// ------------------------------------------------------------------------------------------

const DEFAULT_REGISTRATION_SUMMARY: &str = "Registration cannot be completed.";
const DEFAULT_DOMAIN_MESSAGE: &str = "This email domain cannot be used to register.";
const DEFAULT_CHECK_MESSAGE: &str = "This value is not accepted.";

struct RegistrationCompiled {
    error_summary: String,
    email: Option<EmailCompiled>,
    checks: Vec<CheckCompiled>,
    sets: Vec<SetCompiled>,
}

struct EmailCompiled {
    attribute: String,
    /// Lower-case globs.
    allow: Vec<String>,
    deny: Vec<String>,
    message: String,
    reason: String,
}

enum CheckMode {
    MustMatch(Test),
    MustNotMatch(Test),
    /// Only `required`.
    Presence,
}

struct CheckCompiled {
    index: usize,
    attribute: String,
    mode: CheckMode,
    required: bool,
    message: String,
    reason: String,
    guard: Guard,
}

struct SetCompiled {
    attribute: String,
    value: ValueSource,
    target: Option<ProfileTarget>,
    guard: Guard,
}

/// Lower-cases a domain entry; `@example.com` is accepted for `example.com`.
fn domain_pattern(entry: &str) -> Result<String, String> {
    let d = entry.trim().trim_start_matches('@').to_lowercase();
    if d.is_empty() || d.contains('@') || d.contains(char::is_whitespace) || d.contains('/') {
        return Err(format!(
            "'{entry}' is not a domain (write example.com, or *.example.com for its subdomains)"
        ));
    }
    Ok(d)
}

fn compile_sets(
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

impl RegistrationCompiled {
    fn compile(r: &RegistrationRules) -> Result<Self, String> {
        let email = match &r.email {
            Some(e) => {
                let at = "registration.email";
                nonempty(&e.attribute, "attribute").map_err(|m| format!("{at}: {m}"))?;
                let list = |entries: &[String], key: &str| -> Result<Vec<String>, String> {
                    entries
                        .iter()
                        .enumerate()
                        .map(|(i, d)| {
                            domain_pattern(d).map_err(|m| format!("{at}.{key}[{i}]: {m}"))
                        })
                        .collect()
                };
                let allow = list(&e.allow_domains, "allow_domains")?;
                let deny = list(&e.deny_domains, "deny_domains")?;
                if allow.is_empty() && deny.is_empty() {
                    return Err(format!(
                        "{at}: give `allow_domains`, `deny_domains` or both (as written it checks nothing)"
                    ));
                }
                Some(EmailCompiled {
                    attribute: e.attribute.clone(),
                    allow,
                    deny,
                    message: e
                        .message
                        .clone()
                        .unwrap_or_else(|| DEFAULT_DOMAIN_MESSAGE.into()),
                    reason: e
                        .reason
                        .clone()
                        .unwrap_or_else(|| "INVALID_EMAIL_DOMAIN".into()),
                })
            }
            None => None,
        };
        let checks = r
            .check
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let at = format!("registration.check[{i}]");
                nonempty(&c.attribute, "attribute").map_err(|e| format!("{at}: {e}"))?;
                let compile = |m: &Matcher, key: &str| {
                    let t = Test::compile(m).map_err(|e| format!("{at}.{key}: {e}"))?;
                    if t.is_empty() {
                        return Err(format!(
                            "{at}.{key}: give at least one test (glob, regex, equals, ...)"
                        ));
                    }
                    Ok(t)
                };
                let mode = match (&c.must_match, &c.must_not_match) {
                    (Some(_), Some(_)) => {
                        return Err(format!(
                        "{at}: use `must_match` or `must_not_match`, not both (write two checks)"
                    ))
                    }
                    (Some(m), None) => CheckMode::MustMatch(compile(m, "must_match")?),
                    (None, Some(m)) => CheckMode::MustNotMatch(compile(m, "must_not_match")?),
                    (None, None) if c.required => CheckMode::Presence,
                    (None, None) => {
                        return Err(format!(
                            "{at}: give `must_match`, `must_not_match` or `required = true`"
                        ))
                    }
                };
                Ok(CheckCompiled {
                    index: i,
                    attribute: c.attribute.clone(),
                    mode,
                    required: c.required,
                    message: c
                        .message
                        .clone()
                        .unwrap_or_else(|| DEFAULT_CHECK_MESSAGE.into()),
                    reason: c
                        .reason
                        .clone()
                        .unwrap_or_else(|| "INVALID_ATTRIBUTE".into()),
                    guard: Guard::compile(HookType::Registration, &c.when, &c.unless)
                        .map_err(|e| format!("{at}.{e}"))?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let sets = compile_sets(HookType::Registration, "registration", &r.set)?;
        if email.is_none() && checks.is_empty() && sets.is_empty() {
            return Err("registration: no rule (give `email`, `check` or `set`)".into());
        }
        Ok(RegistrationCompiled {
            error_summary: r
                .error_summary
                .clone()
                .unwrap_or_else(|| DEFAULT_REGISTRATION_SUMMARY.into()),
            email,
            checks,
            sets,
        })
    }

    fn answer(&self, ctx: &Ctx<'_>) -> InlineResponse {
        let mut causes = Vec::new();
        let mut denied_by = Vec::new();
        if let Some(email) = &self.email {
            if email.denies(ctx) {
                causes.push(cause(&email.attribute, &email.message, &email.reason));
                denied_by.push("registration.email".to_owned());
            }
        }
        for check in &self.checks {
            if check.guard.allows(ctx) && check.fails(ctx) {
                causes.push(cause(&check.attribute, &check.message, &check.reason));
                denied_by.push(format!("registration.check[{}]", check.index));
            }
        }
        if !causes.is_empty() {
            tracing::debug!(rules = ?denied_by, "registration denied by rules");
            // With an `error`, Okta runs no command and denies anyway; the DENY is kept so
            // that the answer reads the same as Okta's documented sample.
            let mut answer = InlineResponse::empty()
                .command("com.okta.action.update", json!({"registration": "DENY"}))
                .error(self.error_summary.clone());
            for c in causes {
                answer = answer.error_cause(c);
            }
            return answer.debug("deniedBy", json!(denied_by));
        }
        let mut update = Map::new();
        for set in &self.sets {
            if set.guard.allows(ctx) {
                if let Some(v) = set.value.resolve(ctx) {
                    update.insert(set.attribute.clone(), v);
                }
            }
        }
        if update.is_empty() {
            return InlineResponse::empty();
        }
        let kind = if ctx.progressive {
            "com.okta.user.progressive.profile.update"
        } else {
            "com.okta.user.profile.update"
        };
        InlineResponse::empty().command(kind, Value::Object(update))
    }
}

/// An `errorCauses[]` entry the Sign-In Widget shows under the attribute's field. Okta's
/// own progressive-profile sample also points at `data.userProfile.<attr>`, so both flows do.
fn cause(attribute: &str, message: &str, reason: &str) -> ErrorCause {
    ErrorCause {
        error_summary: Some(message.to_owned()),
        reason: Some(reason.to_owned()),
        location_type: Some("body".into()),
        location: Some(format!("data.userProfile.{attribute}")),
        domain: Some("end-user".into()),
    }
}

impl EmailCompiled {
    /// SSR without an address fails an allow-list (it cannot be shown to be allowed);
    /// progressive profile without one is not judged (the person is already a user).
    fn denies(&self, ctx: &Ctx<'_>) -> bool {
        let address = ctx.attribute(&self.attribute).and_then(scalar_text);
        let domain = address.as_deref().and_then(|a| {
            a.trim()
                .rsplit_once('@')
                .map(|(_, d)| d.trim().trim_end_matches('.').to_lowercase())
                .filter(|d| !d.is_empty())
        });
        match domain {
            Some(d) => {
                self.deny.iter().any(|p| glob_match(p, &d))
                    || (!self.allow.is_empty() && !self.allow.iter().any(|p| glob_match(p, &d)))
            }
            // An address without a domain is no allowed address.
            None if address.is_some() => !self.allow.is_empty(),
            None => !ctx.progressive && !self.allow.is_empty(),
        }
    }
}

impl CheckCompiled {
    fn fails(&self, ctx: &Ctx<'_>) -> bool {
        let value = ctx.attribute(&self.attribute).filter(|v| !is_blank(v));
        if value.is_none() {
            return self.required;
        }
        match &self.mode {
            CheckMode::MustMatch(t) => !t.matches(value),
            CheckMode::MustNotMatch(t) => t.matches(value),
            CheckMode::Presence => false,
        }
    }
}

// ------------------------------------------------------------------------------------------
// Token
// ------------------------------------------------------------------------------------------

/// Claims Okta refuses to patch in both tokens (the whole patch then fails and the hook is
/// skipped), from Okta's token hook reference.
const RESERVED_BOTH: &[&str] = &["iss", "jti", "token_type", "ver", "exp", "iat", "nbf"];
const RESERVED_ACCESS: &[&str] = &[
    "acr", "amr", "as_uri", "cid", "groups", "rpt", "rsi", "uid", "username",
];
/// `sub` and `aud` may be changed in access tokens only.
#[rustfmt::skip]
const RESERVED_ID: &[&str] = &[
    "sub", "aud", "amr", "active", "aid", "app_id", "app_type", "at_hash", "auth_time",
    "client_id", "client_ip", "client_req_id", "client_type", "client_user_agent", "cnf",
    "c_hash", "device_compliance", "device_id", "device_known", "device_managed", "device_name",
    "device_trust", "did", "dst", "group", "groups", "hotk", "idp", "idp_iss", "mac_key",
    "may_act", "nonce", "oid", "okta_emailVerified", "okta_lastUpdated", "orig", "permissions",
    "purpose", "pwd_exp_days", "pwd_exp_time", "rid", "role", "scope", "scopes", "sid", "term",
    "user_ip",
];

struct TokenCompiled {
    claims: Vec<ClaimCompiled>,
    id_lifetime: Option<u64>,
    access_lifetime: Option<u64>,
}

struct ClaimCompiled {
    id: bool,
    access: bool,
    /// `/claims/<escaped name>`: the patch path, and a pointer into the request's token.
    path: String,
    op: ClaimOp,
    value: Option<ValueSource>,
    guard: Guard,
}

fn lifetime_seconds(d: Option<Duration>, key: &str) -> Result<Option<u64>, String> {
    let Some(d) = d else { return Ok(None) };
    if d.subsec_nanos() != 0 || !(300..=86_400).contains(&d.as_secs()) {
        return Err(format!(
            "token.{key}: Okta accepts whole seconds from 5m to 24h, not {}",
            humantime::format_duration(d)
        ));
    }
    Ok(Some(d.as_secs()))
}

impl TokenCompiled {
    fn compile(t: &TokenRules) -> Result<Self, String> {
        let claims = t
            .claims
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let at = format!("token.claims[{i}]");
                nonempty(&c.name, "name").map_err(|e| format!("{at}: {e}"))?;
                let id = matches!(c.token, TokenChoice::Id | TokenChoice::Both);
                let access = matches!(c.token, TokenChoice::Access | TokenChoice::Both);
                let name = c.name.as_str();
                if RESERVED_BOTH.contains(&name)
                    || (access && RESERVED_ACCESS.contains(&name))
                    || (id && RESERVED_ID.contains(&name))
                {
                    return Err(format!(
                        "{at}: Okta reserves the claim '{name}' in this token (a patch of it makes Okta skip the whole hook)"
                    ));
                }
                let value = match c.op {
                    ClaimOp::Remove if c.value.is_some() || c.from.is_some() => {
                        return Err(format!("{at}: `remove` takes no `value` or `from`"))
                    }
                    ClaimOp::Remove => None,
                    _ => Some(
                        ValueSource::compile(&c.value, &c.from).map_err(|e| format!("{at}: {e}"))?,
                    ),
                };
                Ok(ClaimCompiled {
                    id,
                    access,
                    path: format!("/claims/{}", pointer_segment(name)),
                    op: c.op,
                    value,
                    guard: Guard::compile(HookType::Token, &c.when, &c.unless)
                        .map_err(|e| format!("{at}.{e}"))?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let id_lifetime = lifetime_seconds(t.id_token_lifetime, "id_token_lifetime")?;
        let access_lifetime = lifetime_seconds(t.access_token_lifetime, "access_token_lifetime")?;
        if claims.is_empty() && id_lifetime.is_none() && access_lifetime.is_none() {
            return Err("token: no rule (give `claims` or a token lifetime)".into());
        }
        Ok(TokenCompiled {
            claims,
            id_lifetime,
            access_lifetime,
        })
    }

    /// Patches only the tokens the request holds: a command for a token Okta is not
    /// minting is invalid, and any failing op makes Okta skip the whole hook.
    fn answer(&self, ctx: &Ctx<'_>) -> InlineResponse {
        let mut answer = InlineResponse::empty();
        for (is_id, base, command, lifetime) in [
            (
                true,
                "/data/identity",
                "com.okta.identity.patch",
                self.id_lifetime,
            ),
            (
                false,
                "/data/access",
                "com.okta.access.patch",
                self.access_lifetime,
            ),
        ] {
            let Some(token) = ctx.req.pointer(base).filter(|t| t.is_object()) else {
                continue;
            };
            let mut ops = Vec::new();
            for claim in &self.claims {
                if !(if is_id { claim.id } else { claim.access }) || !claim.guard.allows(ctx) {
                    continue;
                }
                let exists = token.pointer(&claim.path).is_some();
                let value = claim.value.as_ref().and_then(|v| v.resolve(ctx));
                match (claim.op, value) {
                    (ClaimOp::Add, Some(v)) => {
                        ops.push(json!({"op": "add", "path": claim.path, "value": v}))
                    }
                    (ClaimOp::Replace, Some(v)) if exists => {
                        ops.push(json!({"op": "replace", "path": claim.path, "value": v}))
                    }
                    (ClaimOp::Remove, _) if exists => {
                        ops.push(json!({"op": "remove", "path": claim.path}))
                    }
                    _ => {}
                }
            }
            if let Some(seconds) = lifetime {
                ops.push(json!({"op": "replace", "path": "/token/lifetime/expiration", "value": seconds}));
            }
            if !ops.is_empty() {
                answer = answer.command(command, Value::Array(ops));
            }
        }
        answer
    }
}

// ------------------------------------------------------------------------------------------
// SAML
// ------------------------------------------------------------------------------------------

struct SamlCompiled {
    attributes: Vec<SamlAttributeCompiled>,
}

struct SamlAttributeCompiled {
    /// `/claims/<escaped name>`.
    path: String,
    op: SamlOp,
    value: ValueSource,
    name_format: String,
    xsi_type: String,
    guard: Guard,
}

fn name_format(short: Option<&str>) -> Result<String, String> {
    Ok(match short.unwrap_or("basic") {
        "basic" => "urn:oasis:names:tc:SAML:2.0:attrname-format:basic".into(),
        "uri" => "urn:oasis:names:tc:SAML:2.0:attrname-format:uri".into(),
        "unspecified" => "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified".into(),
        full if full.starts_with("urn:") => full.into(),
        other => {
            return Err(format!(
                "`name_format` '{other}': write basic, uri, unspecified or a full urn:"
            ))
        }
    })
}

/// A SAML attribute's values as text: one scalar, or an array of scalars (multi-valued).
fn saml_values(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().filter_map(scalar_text).collect(),
        other => scalar_text(other).into_iter().collect(),
    }
}

impl SamlCompiled {
    fn compile(s: &SamlRules) -> Result<Self, String> {
        let attributes = s
            .attributes
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let at = format!("saml.attributes[{i}]");
                nonempty(&a.name, "name").map_err(|e| format!("{at}: {e}"))?;
                if let Some(v) = &a.value {
                    if saml_values(v).is_empty() {
                        return Err(format!(
                            "{at}: `value` must be a string, number, boolean or a list of them"
                        ));
                    }
                }
                Ok(SamlAttributeCompiled {
                    path: format!("/claims/{}", pointer_segment(&a.name)),
                    op: a.op,
                    value: ValueSource::compile(&a.value, &a.from)
                        .map_err(|e| format!("{at}: {e}"))?,
                    name_format: name_format(a.name_format.as_deref())
                        .map_err(|e| format!("{at}: {e}"))?,
                    xsi_type: a.xsi_type.clone().unwrap_or_else(|| "xs:string".into()),
                    guard: Guard::compile(HookType::Saml, &a.when, &a.unless)
                        .map_err(|e| format!("{at}.{e}"))?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        if attributes.is_empty() {
            return Err("saml: no rule (give `attributes`)".into());
        }
        Ok(SamlCompiled { attributes })
    }

    fn answer(&self, ctx: &Ctx<'_>) -> InlineResponse {
        let claims = ctx.req.pointer("/data/assertion");
        let mut ops = Vec::new();
        for a in &self.attributes {
            if !a.guard.allows(ctx) {
                continue;
            }
            let values = a
                .value
                .resolve(ctx)
                .map(|v| saml_values(&v))
                .unwrap_or_default();
            if values.is_empty() {
                continue;
            }
            let typed = |v: &String| json!({"attributes": {"xsi:type": a.xsi_type}, "value": v});
            match a.op {
                SamlOp::Add => ops.push(json!({
                    "op": "add",
                    "path": a.path,
                    "value": {
                        "attributes": {"NameFormat": a.name_format},
                        "attributeValues": values.iter().map(typed).collect::<Vec<_>>(),
                    },
                })),
                SamlOp::Replace => {
                    if claims.and_then(|c| c.pointer(&a.path)).is_none() {
                        continue;
                    }
                    // One value keeps the existing value's xsi:type; several replace the list.
                    if let [single] = values.as_slice() {
                        ops.push(json!({
                            "op": "replace",
                            "path": format!("{}/attributeValues/0/value", a.path),
                            "value": single,
                        }));
                    } else {
                        ops.push(json!({
                            "op": "replace",
                            "path": format!("{}/attributeValues", a.path),
                            "value": values.iter().map(typed).collect::<Vec<_>>(),
                        }));
                    }
                }
            }
        }
        if ops.is_empty() {
            InlineResponse::empty()
        } else {
            InlineResponse::empty().command("com.okta.assertion.patch", Value::Array(ops))
        }
    }
}

// ------------------------------------------------------------------------------------------
// Import
// ------------------------------------------------------------------------------------------

struct ImportCompiled {
    link: Option<(String, Vec<Field>)>,
    sets: Vec<SetCompiled>,
}

impl ImportCompiled {
    fn compile(r: &ImportRules) -> Result<Self, String> {
        let link = match &r.link {
            Some(l) => {
                nonempty(&l.attribute, "attribute").map_err(|e| format!("import.link: {e}"))?;
                if l.user_id_from.is_empty() {
                    return Err("import.link: `user_id_from` is empty".into());
                }
                let fields = l
                    .user_id_from
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        Field::parse(f).map_err(|e| format!("import.link.user_id_from[{i}]: {e}"))
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                Some((l.attribute.clone(), fields))
            }
            None => None,
        };
        let sets = compile_sets(HookType::Import, "import", &r.set)?;
        if link.is_none() && sets.is_empty() {
            return Err("import: no rule (give `link` or `set`)".into());
        }
        Ok(ImportCompiled { link, sets })
    }

    fn answer(&self, ctx: &Ctx<'_>) -> InlineResponse {
        let mut answer = InlineResponse::empty();
        if let Some((attribute, fields)) = &self.link {
            if ctx.attribute(attribute).is_some_and(|v| !is_blank(v)) {
                let id = fields.iter().find_map(|f| {
                    f.get(ctx.req)
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                });
                answer = match id {
                    // LINK_USER requires the user id in the same answer.
                    Some(id) => answer
                        .command("com.okta.action.update", json!({"result": "LINK_USER"}))
                        .command("com.okta.user.update", json!({"id": id})),
                    None => {
                        answer.command("com.okta.action.update", json!({"result": "CREATE_USER"}))
                    }
                };
            }
        }
        let mut app_user = Map::new();
        let mut user = Map::new();
        for set in &self.sets {
            if set.guard.allows(ctx) {
                if let Some(v) = set.value.resolve(ctx) {
                    let target = match set.target {
                        Some(ProfileTarget::User) => &mut user,
                        _ => &mut app_user,
                    };
                    target.insert(set.attribute.clone(), v);
                }
            }
        }
        if !app_user.is_empty() {
            answer = answer.command("com.okta.appUser.profile.update", Value::Object(app_user));
        }
        if !user.is_empty() {
            answer = answer.command("com.okta.user.profile.update", Value::Object(user));
        }
        answer
    }
}

// ------------------------------------------------------------------------------------------
// Password import
// ------------------------------------------------------------------------------------------

/// The users of a password file and the limit on verifications at once.
struct PasswordBook {
    users: HashMap<String, StoredHash>,
    case_sensitive: bool,
    /// Bounds the blocking threads and cores that verifications take: a burst of sign-ins
    /// waits here (and falls back at its deadline) instead of starving the whole process.
    permits: Arc<tokio::sync::Semaphore>,
}

impl PasswordBook {
    fn load(rules: &PasswordImportRules) -> Result<Self, String> {
        let path = &rules.file;
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("password_import.file: cannot read {}: {e}", path.display()))?;
        warn_if_readable_by_others(path);
        let users = parse_password_file(&text, rules.case_sensitive_usernames)
            .map_err(|e| format!("password_import.file {}: {e}", path.display()))?;
        let parallel = match rules.max_parallel {
            Some(0) => return Err("password_import.max_parallel: must be at least 1".into()),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(4, |n| n.get()),
        };
        tracing::info!(file = %path.display(), users = users.len(), "password hashes loaded");
        Ok(PasswordBook {
            users,
            case_sensitive: rules.case_sensitive_usernames,
            permits: Arc::new(tokio::sync::Semaphore::new(parallel)),
        })
    }

    fn key(&self, username: &str) -> String {
        if self.case_sensitive {
            username.to_owned()
        } else {
            username.to_lowercase()
        }
    }

    /// VERIFIED or UNVERIFIED. The password is copied once into a [`SecretString`] (wiped
    /// when dropped, right after the check) and appears in no log and no error.
    async fn answer(self: Arc<Self>, request: &Value) -> Result<InlineResponse, HandlerError> {
        let verdict = |ok: bool| {
            InlineResponse::empty().command(
                "com.okta.action.update",
                json!({"credential": if ok { "VERIFIED" } else { "UNVERIFIED" }}),
            )
        };
        let credential = request.pointer("/data/context/credential");
        let username = credential
            .and_then(|c| c.get("username"))
            .and_then(Value::as_str);
        let password = credential
            .and_then(|c| c.get("password"))
            .and_then(Value::as_str);
        let (Some(username), Some(password)) = (username, password) else {
            tracing::debug!("password import request without username or password: UNVERIFIED");
            return Ok(verdict(false));
        };
        let Some(hash) = self.users.get(&self.key(username)).cloned() else {
            tracing::debug!("password import for a user not in the file: UNVERIFIED");
            return Ok(verdict(false));
        };
        let password = SecretString::from(password.to_owned());
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| HandlerError("password verification is shutting down".into()))?;
        let ok = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            hash.verify(expose(&password).as_bytes())
        })
        .await
        .map_err(|_| HandlerError("the password verification task failed".into()))?;
        tracing::debug!(verified = ok, "password import verified against the file");
        Ok(verdict(ok))
    }
}

/// `username:hash` lines; blank lines and `#` comments are skipped. Errors name the line,
/// never its content.
fn parse_password_file(
    text: &str,
    case_sensitive: bool,
) -> Result<HashMap<String, StoredHash>, String> {
    let mut users = HashMap::new();
    let mut first_line: HashMap<String, usize> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // Hashes never hold ':', usernames might: split at the last one.
        let Some((user, hash)) = line.rsplit_once(':') else {
            return Err(format!("line {n}: expected username:hash"));
        };
        let user = user.trim();
        if user.is_empty() {
            return Err(format!("line {n}: empty username"));
        }
        let hash = StoredHash::parse(hash.trim()).map_err(|e| format!("line {n}: {e}"))?;
        let key = if case_sensitive {
            user.to_owned()
        } else {
            user.to_lowercase()
        };
        if let Some(prev) = first_line.insert(key.clone(), n) {
            return Err(format!("line {n}: the username of line {prev} again"));
        }
        users.insert(key, hash);
    }
    if users.is_empty() {
        return Err("no username:hash line (an empty file would refuse every password)".into());
    }
    Ok(users)
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o004 != 0 {
            tracing::warn!(file = %path.display(), "the password hash file is readable by every user of this machine (chmod o-r)");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

// ------------------------------------------------------------------------------------------
// Telephony
// ------------------------------------------------------------------------------------------

const DEFAULT_TELEPHONY_MESSAGE: &str =
    "Text and voice messages to this phone number are blocked by policy.";

struct TelephonyCompiled {
    deny_prefixes: Vec<String>,
    deny_countries: Vec<&'static str>,
    allow_prefixes: Vec<String>,
    allow_countries: Vec<&'static str>,
    message: String,
    provider: String,
}

fn compile_prefixes(list: &[String], key: &str) -> Result<Vec<String>, String> {
    list.iter()
        .enumerate()
        .map(|(i, p)| {
            let digits = p.trim().trim_start_matches('+').replace([' ', '-'], "");
            if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(format!(
                    "telephony.{key}[{i}]: '{p}' is not a number prefix such as +882"
                ));
            }
            Ok(digits)
        })
        .collect()
}

fn compile_countries(list: &[String], key: &str) -> Result<Vec<&'static str>, String> {
    list.iter()
        .enumerate()
        .map(|(i, c)| {
            let code = c.trim().to_ascii_uppercase();
            if let Some((country, _)) = CALLING_CODES.iter().find(|(country, _)| *country == code) {
                return Ok(*country);
            }
            let hint = if NANP.contains(&code.as_str()) {
                format!("{code} shares +1 with the other North American Numbering Plan countries, which a prefix cannot tell apart: use {}_prefixes with +1 or with area codes (e.g. +1242)", key.split('_').next().unwrap_or("deny"))
            } else {
                format!("{code} is not in hookwarden's table of calling codes: use {}_prefixes with its calling code", key.split('_').next().unwrap_or("deny"))
            };
            Err(format!("telephony.{key}[{i}]: {hint}"))
        })
        .collect()
}

impl TelephonyCompiled {
    fn compile(t: &TelephonyRules) -> Result<Self, String> {
        let compiled = TelephonyCompiled {
            deny_prefixes: compile_prefixes(&t.deny_prefixes, "deny_prefixes")?,
            deny_countries: compile_countries(&t.deny_countries, "deny_countries")?,
            allow_prefixes: compile_prefixes(&t.allow_prefixes, "allow_prefixes")?,
            allow_countries: compile_countries(&t.allow_countries, "allow_countries")?,
            message: t
                .message
                .clone()
                .unwrap_or_else(|| DEFAULT_TELEPHONY_MESSAGE.into()),
            provider: t.provider.clone().unwrap_or_else(|| "hookwarden".into()),
        };
        if compiled.deny_prefixes.is_empty()
            && compiled.deny_countries.is_empty()
            && compiled.allow_prefixes.is_empty()
            && compiled.allow_countries.is_empty()
        {
            return Err("telephony: no rule (give deny_prefixes, deny_countries, allow_prefixes or allow_countries)".into());
        }
        Ok(compiled)
    }

    /// Why a number is blocked (`reason`, the rule, a description without the number).
    fn verdict(&self, digits: Option<&str>) -> Option<(&'static str, &'static str, String)> {
        let allow_list = !self.allow_prefixes.is_empty() || !self.allow_countries.is_empty();
        let Some(digits) = digits else {
            return allow_list.then(|| {
                (
                    "NOT_ALLOWED_DESTINATION",
                    "telephony.allow",
                    "the phone number is not in E.164 form, so it cannot be shown to be allowed"
                        .to_owned(),
                )
            });
        };
        let country = country_of(digits);
        if let Some(p) = self
            .deny_prefixes
            .iter()
            .find(|p| digits.starts_with(p.as_str()))
        {
            return Some((
                "BLOCKED_PREFIX",
                "telephony.deny_prefixes",
                format!("numbers starting with +{p} are blocked"),
            ));
        }
        if let Some(c) = country.filter(|c| self.deny_countries.contains(c)) {
            return Some((
                "BLOCKED_COUNTRY",
                "telephony.deny_countries",
                format!("numbers of country {c} are blocked"),
            ));
        }
        let allowed = self
            .allow_prefixes
            .iter()
            .any(|p| digits.starts_with(p.as_str()))
            || country.is_some_and(|c| self.allow_countries.contains(&c));
        if allow_list && !allowed {
            return Some((
                "NOT_ALLOWED_DESTINATION",
                "telephony.allow",
                "the number's country or prefix is not among the allowed ones".to_owned(),
            ));
        }
        None
    }

    /// `{}` lets Okta send through its own providers; a block answers `FAILED` with an
    /// `error`. Okta documents that it then falls back to its own providers too: this
    /// answer records the decision in the System Log, it cannot stop the message.
    fn answer(&self, ctx: &Ctx<'_>, event_id: Option<&str>) -> InlineResponse {
        let digits = ctx
            .req
            .pointer("/data/messageProfile/phoneNumber")
            .and_then(scalar_text)
            .and_then(|t| phone_digits(&t));
        let Some((reason, rule, detail)) = self.verdict(digits.as_deref()) else {
            return InlineResponse::empty();
        };
        tracing::debug!(rule, "telephony destination blocked by rules");
        let mut action = json!({"status": "FAILED", "provider": self.provider});
        if let Some(id) = event_id {
            action["transactionId"] = json!(id);
        }
        InlineResponse::empty()
            .command("com.okta.telephony.action", json!([action]))
            .error(self.message.clone())
            .error_cause(ErrorCause {
                error_summary: Some(detail),
                reason: Some(reason.into()),
                location_type: Some("body".into()),
                location: Some("data.messageProfile.phoneNumber".into()),
                domain: Some("end-user".into()),
            })
            .debug("deniedBy", json!(rule))
    }
}

// ------------------------------------------------------------------------------------------
// Tests
// ------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/okta")
            .join(name);
        let text = std::fs::read_to_string(&path).expect("fixture readable");
        serde_json::from_str(&text).expect("fixture is JSON")
    }

    /// Reads rules the way hookwarden reads its file: TOML through the `config` crate.
    fn config(toml_text: &str) -> RulesConfig {
        ::config::Config::builder()
            .add_source(::config::File::from_str(
                toml_text,
                ::config::FileFormat::Toml,
            ))
            .build()
            .expect("test TOML parses")
            .try_deserialize()
            .expect("rules config deserialises")
    }

    fn handler(hook_type: HookType, toml_text: &str) -> RulesHandler {
        RulesHandler::new(hook_type, &config(toml_text)).expect("rules compile")
    }

    fn build_error(hook_type: HookType, toml_text: &str) -> String {
        match RulesHandler::new(hook_type, &config(toml_text)) {
            Ok(_) => panic!("rules should be refused"),
            Err(e) => e,
        }
    }

    /// Runs the rules, and checks the answer the way the runtime will before it leaves.
    async fn run(h: &RulesHandler, body: Value) -> Value {
        let hook_type = h.hook_type();
        let call = InlineCall {
            hook_type,
            event_id: body
                .get("eventId")
                .and_then(Value::as_str)
                .map(str::to_owned),
            body,
        };
        let answer = h.handle(&call).await.expect("rules answer");
        if let Err(e) = crate::inline_hooks::check::check(hook_type, &answer, &call.body) {
            panic!("the runtime would refuse this answer: {e}");
        }
        serde_json::to_value(answer).expect("answer serialises")
    }

    fn set(body: &mut Value, pointer: &str, value: Value) {
        *body
            .pointer_mut(pointer)
            .expect("pointer exists in the sample") = value;
    }

    // ---------------------------------------------------------------- registration

    const REGISTRATION: &str = r#"
        [registration]
        error_summary = "Incorrect email address. Please contact your admin."

        [registration.email]
        allow_domains = ["example.com", "*.example.com"]
        deny_domains = ["mailinator.com"]
        message = "Only example.com emails can register."

        [[registration.check]]
        attribute = "employeeNumber"
        must_match = { chars = "digits", min_length = 4, max_length = 4 }
        reason = "INVALID_EMPLOYEE_NUMBER"
        message = "Only employee numbers with 4 digits can register."

        [[registration.set]]
        attribute = "customerType"
        value = "self-registered"
        when = [{ field = "/requestType", equals = "self.service.registration" }]

        [[registration.set]]
        attribute = "employeeNumber"
        from = "/data/userProfileUpdate/employeeNumber"
    "#;

    #[tokio::test]
    async fn registration_ssr_sample_is_allowed_and_profiled() {
        let h = handler(HookType::Registration, REGISTRATION);
        let answer = run(&h, fixture("registration-hook-request-ssr.json")).await;
        assert_eq!(
            answer,
            json!({"commands": [{"type": "com.okta.user.profile.update", "value": {"customerType": "self-registered"}}]})
        );
    }

    #[tokio::test]
    async fn registration_ssr_denied_domain_reads_like_okta_sample() {
        let h = handler(HookType::Registration, REGISTRATION);
        let mut body = fixture("registration-hook-request-ssr.json");
        set(
            &mut body,
            "/data/userProfile/email",
            json!("Rosario@Mailinator.COM"),
        );
        let mut answer = run(&h, body).await;
        assert_eq!(
            answer["debugContext"],
            json!({"deniedBy": ["registration.email"]})
        );
        answer
            .as_object_mut()
            .expect("object")
            .remove("debugContext");
        assert_eq!(answer, fixture("registration-hook-response-deny.json"));
    }

    #[tokio::test]
    async fn registration_allow_list_refuses_other_domains_and_accepts_subdomains() {
        let h = handler(HookType::Registration, REGISTRATION);
        for (email, denied) in [
            ("a@example.com", false),
            ("a@EXAMPLE.com", false),
            ("a@eu.example.com", false),
            ("a@evil-example.com", true),
            ("a@example.com.evil.net", true),
            ("no-at-sign", true),
        ] {
            let mut body = fixture("registration-hook-request-ssr.json");
            set(&mut body, "/data/userProfile/email", json!(email));
            let answer = run(&h, body).await;
            assert_eq!(answer.get("error").is_some(), denied, "{email}: {answer}");
        }
        // SSR without an address cannot be shown to be allowed.
        let mut body = fixture("registration-hook-request-ssr.json");
        body["data"]["userProfile"]
            .as_object_mut()
            .expect("profile")
            .remove("email");
        assert!(run(&h, body).await.get("error").is_some());
    }

    #[tokio::test]
    async fn registration_deny_list_alone_lets_other_domains_in() {
        let h = handler(
            HookType::Registration,
            r#"[registration.email]
               deny_domains = ["@mailinator.com"]"#,
        );
        let mut body = fixture("registration-hook-request-ssr.json");
        assert_eq!(run(&h, body.clone()).await, json!({}));
        set(
            &mut body,
            "/data/userProfile/email",
            json!("x@mailinator.com"),
        );
        let answer = run(&h, body).await;
        assert_eq!(
            answer["commands"][0]["value"],
            json!({"registration": "DENY"})
        );
        assert_eq!(
            answer["error"]["errorSummary"],
            json!(DEFAULT_REGISTRATION_SUMMARY)
        );
        assert_eq!(
            answer["error"]["errorCauses"][0]["reason"],
            json!("INVALID_EMAIL_DOMAIN")
        );
    }

    #[tokio::test]
    async fn registration_progressive_profile_sample_passes_the_check() {
        let h = handler(HookType::Registration, REGISTRATION);
        // No email in the update or the profile: a person already registered is not judged.
        let answer = run(
            &h,
            fixture("registration-hook-request-progressive-profile.json"),
        )
        .await;
        assert_eq!(answer, fixture("registration-hook-response-pp-update.json"));
    }

    #[tokio::test]
    async fn registration_progressive_profile_bad_value_reads_like_okta_sample() {
        let h = handler(
            HookType::Registration,
            &REGISTRATION.replace(
                "Incorrect email address. Please contact your admin.",
                "Incorrect employee number. Enter an employee number with 4 digits.",
            ),
        );
        let mut body = fixture("registration-hook-request-progressive-profile.json");
        set(
            &mut body,
            "/data/userProfileUpdate/employeeNumber",
            json!("12a4"),
        );
        let mut answer = run(&h, body).await;
        assert_eq!(
            answer["debugContext"],
            json!({"deniedBy": ["registration.check[0]"]})
        );
        answer
            .as_object_mut()
            .expect("object")
            .remove("debugContext");
        assert_eq!(answer, fixture("registration-hook-response-pp-deny.json"));
    }

    #[tokio::test]
    async fn registration_progressive_profile_reads_the_current_profile_too() {
        let h = handler(
            HookType::Registration,
            r#"[registration.email]
               attribute = "login"
               allow_domains = ["example.org"]"#,
        );
        // The update has no login: the current profile's (example.com) is judged.
        let answer = run(
            &h,
            fixture("registration-hook-request-progressive-profile.json"),
        )
        .await;
        assert_eq!(
            answer["error"]["errorCauses"][0]["location"],
            json!("data.userProfile.login")
        );
    }

    #[tokio::test]
    async fn registration_classic_sample_is_treated_as_ssr() {
        let h = handler(HookType::Registration, REGISTRATION);
        let answer = run(&h, fixture("registration-hook-request-classic.json")).await;
        // No requestType, so the SSR-only `set` (when requestType = SSR) does not apply.
        assert_eq!(answer, json!({}));
        let h = handler(
            HookType::Registration,
            r#"[registration.email]
               attribute = "login"
               allow_domains = ["example.org"]
               message = "You specified an invalid email domain"
               [registration]
               error_summary = "Errors were found in the user profile""#,
        );
        let answer = run(&h, fixture("registration-hook-request-classic.json")).await;
        let expected = fixture("registration-hook-response-error-classic.json");
        assert_eq!(answer["error"], expected["error"]);
    }

    #[tokio::test]
    async fn registration_checks_report_every_failing_field() {
        let h = handler(
            HookType::Registration,
            r#"
            [[registration.check]]
            attribute = "lastName"
            must_not_match = { glob = ["*test*", "*fake*"], ignore_case = true }
            message = "No test accounts."
            [[registration.check]]
            attribute = "department"
            required = true
            message = "Department is required."
            reason = "REQUIRED"
            [[registration.check]]
            attribute = "firstName"
            must_match = { regex = "^[A-Z]" }
            unless = [{ attribute = "lastName", equals = "Jones" }]
            "#,
        );
        let mut body = fixture("registration-hook-request-ssr.json");
        set(&mut body, "/data/userProfile/lastName", json!("TestUser"));
        set(&mut body, "/data/userProfile/firstName", json!("rosario"));
        let answer = run(&h, body).await;
        let causes = &answer["error"]["errorCauses"];
        assert_eq!(causes.as_array().map(Vec::len), Some(3), "{answer}");
        assert_eq!(causes[0]["location"], json!("data.userProfile.lastName"));
        assert_eq!(causes[0]["reason"], json!("INVALID_ATTRIBUTE"));
        assert_eq!(causes[1]["location"], json!("data.userProfile.department"));
        assert_eq!(causes[1]["reason"], json!("REQUIRED"));
        assert_eq!(causes[2]["location"], json!("data.userProfile.firstName"));
        // The sample itself (Rosario Jones, no department) fails only the required check;
        // the regex check is skipped by its `unless`.
        let answer = run(&h, fixture("registration-hook-request-ssr.json")).await;
        assert_eq!(
            answer["debugContext"],
            json!({"deniedBy": ["registration.check[1]"]})
        );
    }

    #[tokio::test]
    async fn registration_set_copies_request_fields_with_a_fallback() {
        let h = handler(
            HookType::Registration,
            r#"
            [[registration.set]]
            attribute = "nickName"
            from = "data.userProfile.firstName"
            [[registration.set]]
            attribute = "costCenter"
            from = "/data/userProfile/costCenter"
            value = "unassigned"
            [[registration.set]]
            attribute = "never"
            from = "/data/absent"
            "#,
        );
        let answer = run(&h, fixture("registration-hook-request-ssr.json")).await;
        assert_eq!(
            answer,
            json!({"commands": [{"type": "com.okta.user.profile.update",
                                 "value": {"nickName": "Rosario", "costCenter": "unassigned"}}]})
        );
    }

    // ---------------------------------------------------------------- token

    const TOKEN: &str = r#"
        [token]
        access_token_lifetime = "10m"

        [[token.claims]]
        token = "id"
        name = "extPatientId"
        value = "1234"

        [[token.claims]]
        token = "access"
        name = "login"
        from = "/data/context/user/profile/login"

        [[token.claims]]
        token = "both"
        name = "email_scope_granted"
        value = true
        when = [{ scope = "email" }]

        [[token.claims]]
        token = "access"
        name = "admin"
        value = true
        when = [{ scope = "admin" }]

        [[token.claims]]
        token = "id"
        name = "preferred_username"
        op = "replace"
        from = "data.context.user.profile.firstName"

        [[token.claims]]
        token = "access"
        name = "firstName"
        op = "remove"

        [[token.claims]]
        token = "access"
        name = "department"
        op = "replace"
        value = "never sent: the access token has no such claim"

        [[token.claims]]
        token = "id"
        name = "tz"
        from = "/data/context/user/profile/timeZone"
        unless = [{ attribute = "locale", glob = "fr*" }]
    "#;

    #[tokio::test]
    async fn token_sample_patches_both_tokens() {
        let h = handler(HookType::Token, TOKEN);
        let answer = run(&h, fixture("token-hook-request.json")).await;
        assert_eq!(
            answer,
            json!({"commands": [
                {"type": "com.okta.identity.patch", "value": [
                    {"op": "add", "path": "/claims/extPatientId", "value": "1234"},
                    {"op": "add", "path": "/claims/email_scope_granted", "value": true},
                    {"op": "replace", "path": "/claims/preferred_username", "value": "Add-Min"},
                    {"op": "add", "path": "/claims/tz", "value": "America/Los_Angeles"}
                ]},
                {"type": "com.okta.access.patch", "value": [
                    {"op": "add", "path": "/claims/login", "value": "administrator1@clouditude.net"},
                    {"op": "add", "path": "/claims/email_scope_granted", "value": true},
                    {"op": "remove", "path": "/claims/firstName"},
                    {"op": "replace", "path": "/token/lifetime/expiration", "value": 600}
                ]}
            ]})
        );
    }

    #[tokio::test]
    async fn token_only_patches_tokens_in_the_request() {
        let h = handler(HookType::Token, TOKEN);
        let mut body = fixture("token-hook-request.json");
        body["data"]
            .as_object_mut()
            .expect("data")
            .remove("identity");
        let answer = run(&h, body).await;
        let commands = answer["commands"].as_array().expect("commands");
        assert_eq!(commands.len(), 1);
        assert_eq!(commands[0]["type"], json!("com.okta.access.patch"));
    }

    #[tokio::test]
    async fn token_conditions_deny_and_allow() {
        let h = handler(HookType::Token, TOKEN);
        let mut body = fixture("token-hook-request.json");
        body["data"]["access"]["scopes"]
            .as_object_mut()
            .expect("scopes")
            .remove("email");
        body["data"]["access"]["scopes"]["admin"] = json!({"id": "scp1", "action": "GRANT"});
        set(
            &mut body,
            "/data/context/user/profile/locale",
            json!("fr_FR"),
        );
        let answer = run(&h, body).await;
        let text = answer.to_string();
        assert!(!text.contains("email_scope_granted"), "{text}");
        assert!(!text.contains("/claims/tz"), "{text}");
        assert!(
            text.contains(r#"{"op":"add","path":"/claims/admin","value":true}"#),
            "{text}"
        );
    }

    #[tokio::test]
    async fn token_claim_names_are_escaped_and_array_claims_matched() {
        let h = handler(
            HookType::Token,
            r#"
            [[token.claims]]
            token = "access"
            name = "https://example.com/claims/tier"
            value = "gold"
            when = [{ field = "/data/identity/claims/amr", equals = "pwd" }]
            "#,
        );
        let answer = run(&h, fixture("token-hook-request.json")).await;
        assert_eq!(
            answer["commands"][0]["value"][0]["path"],
            json!("/claims/https:~1~1example.com~1claims~1tier")
        );
    }

    #[test]
    fn token_reserved_claims_and_bad_lifetimes_are_refused() {
        let e = build_error(
            HookType::Token,
            "[[token.claims]]\ntoken = \"id\"\nname = \"sub\"\nvalue = \"x\"",
        );
        assert!(e.contains("token.claims[0]") && e.contains("'sub'"), "{e}");
        // `sub` may change in access tokens.
        handler(
            HookType::Token,
            "[[token.claims]]\ntoken = \"access\"\nname = \"sub\"\nvalue = \"x\"",
        );
        let e = build_error(HookType::Token, "[token]\nid_token_lifetime = \"1m\"");
        assert!(e.contains("token.id_token_lifetime"), "{e}");
        let e = build_error(
            HookType::Token,
            "[[token.claims]]\ntoken = \"id\"\nname = \"a\"\nop = \"remove\"\nvalue = 1",
        );
        assert!(e.contains("token.claims[0]: `remove` takes no"), "{e}");
    }

    // ---------------------------------------------------------------- saml

    const SAML: &str = r#"
        [[saml.attributes]]
        name = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/bar"
        value = "bearer"

        [[saml.attributes]]
        name = "login"
        from = "/data/context/user/profile/login"
        name_format = "unspecified"

        [[saml.attributes]]
        name = "middle"
        op = "replace"
        value = "replacementValue"

        [[saml.attributes]]
        name = "array"
        op = "replace"
        value = ["a", "b"]

        [[saml.attributes]]
        name = "absent"
        op = "replace"
        value = "never sent"

        [[saml.attributes]]
        name = "roles"
        value = ["reader", 7]
        when = [{ attribute = "locale", equals = "en" }]
    "#;

    #[tokio::test]
    async fn saml_sample_gets_added_and_replaced_attributes() {
        let h = handler(HookType::Saml, SAML);
        let answer = run(&h, fixture("saml-hook-request.json")).await;
        let ops = &answer["commands"][0]["value"];
        assert_eq!(
            answer["commands"][0]["type"],
            json!("com.okta.assertion.patch")
        );
        // The same op as Okta's URI-claims sample.
        let sample = fixture("saml-hook-response-uri-claims.json");
        assert_eq!(ops[0], sample["commands"][0]["value"][2]);
        assert_eq!(
            ops[1],
            json!({"op": "add", "path": "/claims/login", "value": {
                "attributes": {"NameFormat": "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified"},
                "attributeValues": [{"attributes": {"xsi:type": "xs:string"}, "value": "administrator1@example.com"}]}})
        );
        assert_eq!(
            ops[2],
            json!({"op": "replace", "path": "/claims/middle/attributeValues/0/value", "value": "replacementValue"})
        );
        assert_eq!(
            ops[3],
            json!({"op": "replace", "path": "/claims/array/attributeValues", "value": [
                {"attributes": {"xsi:type": "xs:string"}, "value": "a"},
                {"attributes": {"xsi:type": "xs:string"}, "value": "b"}]})
        );
        assert_eq!(ops[4]["path"], json!("/claims/roles"));
        assert_eq!(ops[4]["value"]["attributeValues"][1]["value"], json!("7"));
        assert_eq!(
            ops.as_array().map(Vec::len),
            Some(5),
            "replace of an absent attribute is skipped"
        );
    }

    #[tokio::test]
    async fn saml_condition_false_leaves_the_assertion_alone() {
        let h = handler(
            HookType::Saml,
            r#"[[saml.attributes]]
               name = "x"
               value = "y"
               when = [{ field = "/data/context/protocol/issuer/name", glob = "Other*" }]"#,
        );
        assert_eq!(run(&h, fixture("saml-hook-request.json")).await, json!({}));
    }

    // ---------------------------------------------------------------- import

    const IMPORT: &str = r#"
        [import.link]
        attribute = "externalId"
        user_id_from = ["data.context.matches[0].id", "/data/user/id"]

        [[import.set]]
        target = "app_user"
        attribute = "accountType"
        value = "STANDARD"
        when = [{ attribute = "accountType", exists = false }]

        [[import.set]]
        target = "user"
        attribute = "nickName"
        from = "/data/appUser/profile/userName"
    "#;

    #[tokio::test]
    async fn import_samples_create_when_no_user_matches() {
        let h = handler(HookType::Import, IMPORT);
        for name in ["import-hook-request.json", "import-hook-request-spec.json"] {
            let answer = run(&h, fixture(name)).await;
            assert_eq!(
                answer,
                json!({"commands": [
                    {"type": "com.okta.action.update", "value": {"result": "CREATE_USER"}},
                    {"type": "com.okta.user.profile.update", "value": {"nickName": "administrator2"}}
                ]}),
                "{name}"
            );
        }
    }

    #[tokio::test]
    async fn import_links_a_matched_user_like_okta_sample() {
        let h = handler(
            HookType::Import,
            "[import.link]\nattribute = \"externalId\"",
        );
        let mut body = fixture("import-hook-request.json");
        set(
            &mut body,
            "/data/context/matches",
            json!([{"id": "00garwpuyxHaWOkdV0g4"}]),
        );
        assert_eq!(
            run(&h, body).await,
            fixture("import-hook-response-link-user.json")
        );
        // With the guide's whole rule set, the profile update follows the link.
        let h = handler(HookType::Import, IMPORT);
        let mut body = fixture("import-hook-request.json");
        set(
            &mut body,
            "/data/context/matches",
            json!([{"id": "00garwpuyxHaWOkdV0g4"}]),
        );
        assert_eq!(
            run(&h, body).await,
            json!({"commands": [
                {"type": "com.okta.action.update", "value": {"result": "LINK_USER"}},
                {"type": "com.okta.user.update", "value": {"id": "00garwpuyxHaWOkdV0g4"}},
                {"type": "com.okta.user.profile.update", "value": {"nickName": "administrator2"}}
            ]})
        );
    }

    #[tokio::test]
    async fn import_without_the_attribute_keeps_okta_default() {
        let h = handler(HookType::Import, IMPORT);
        let mut body = fixture("import-hook-request.json");
        set(&mut body, "/data/appUser/profile/externalId", Value::Null);
        set(&mut body, "/data/appUser/profile/accountType", Value::Null);
        let answer = run(&h, body).await;
        assert_eq!(
            answer,
            json!({"commands": [
                {"type": "com.okta.appUser.profile.update", "value": {"accountType": "STANDARD"}},
                {"type": "com.okta.user.profile.update", "value": {"nickName": "administrator2"}}
            ]})
        );
    }

    #[test]
    fn import_set_needs_a_target() {
        let e = build_error(
            HookType::Import,
            "[[import.set]]\nattribute = \"a\"\nvalue = 1",
        );
        assert!(e.contains("import.set[0]") && e.contains("target"), "{e}");
        let e = build_error(
            HookType::Registration,
            "[[registration.set]]\nattribute = \"a\"\nvalue = 1\ntarget = \"user\"",
        );
        assert!(
            e.contains("registration.set[0]") && e.contains("import"),
            "{e}"
        );
    }

    // ---------------------------------------------------------------- password import

    fn argon2_hash(password: &str) -> String {
        use argon2::PasswordHasher;
        // Small parameters keep the test fast; verification uses the hash's own.
        let params = argon2::Params::new(64, 1, 1, None).expect("params");
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password_with_salt(password.as_bytes(), b"hookwarden-salt!")
            .expect("argon2 hash")
            .to_string()
    }

    fn password_handler(lines: &str) -> (tempfile::TempDir, RulesHandler) {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("passwords");
        std::fs::write(&file, lines).expect("write password file");
        let toml_text = format!("[password_import]\nfile = {:?}", file.display().to_string());
        let h = handler(HookType::PasswordImport, &toml_text);
        (dir, h)
    }

    #[tokio::test]
    async fn password_samples_verify_against_bcrypt_and_argon2() {
        let bcrypt_line = format!(
            "# migrated from the old forum\n\nIsaac.Brock@example.com:{}\n",
            bcrypt::hash("Okta", 4).expect("bcrypt")
        );
        let argon_line = format!("isaac.brock@example.com:{}\n", argon2_hash("Okta"));
        for lines in [bcrypt_line, argon_line] {
            let (_dir, h) = password_handler(&lines);
            for sample in [
                "password-import-request.json",
                "password-import-request-idx.json",
            ] {
                let body = fixture(sample);
                assert_eq!(
                    run(&h, body.clone()).await,
                    fixture("password-import-response-verified.json"),
                    "{sample}"
                );
                let mut wrong = body;
                set(
                    &mut wrong,
                    "/data/context/credential/password",
                    json!("okta"),
                );
                assert_eq!(
                    run(&h, wrong).await,
                    fixture("password-import-response-unverified.json")
                );
            }
        }
    }

    #[tokio::test]
    async fn password_unknown_user_and_missing_password_are_unverified() {
        let (_dir, h) = password_handler(&format!(
            "someone@example.com:{}",
            bcrypt::hash("Okta", 4).expect("bcrypt")
        ));
        let unverified = fixture("password-import-response-unverified.json");
        assert_eq!(
            run(&h, fixture("password-import-request.json")).await,
            unverified
        );
        let mut body = fixture("password-import-request.json");
        set(
            &mut body,
            "/data/context/credential/username",
            json!("someone@example.com"),
        );
        body["data"]["context"]["credential"]
            .as_object_mut()
            .expect("credential")
            .remove("password");
        assert_eq!(run(&h, body).await, unverified);
    }

    #[test]
    fn password_file_errors_name_the_line_never_the_hash() {
        let hash = bcrypt::hash("Okta", 4).expect("bcrypt");
        let cases = [
            (
                format!("a@example.com:{hash}\nno separator here\n"),
                "line 2: expected username:hash",
            ),
            (
                format!("a@example.com:{hash}\nb@example.com:$1$md5$nope\n"),
                "line 2: unknown hash format",
            ),
            (
                format!("a@example.com:{hash}\nA@example.com:{hash}\n"),
                "line 2: the username of line 1 again",
            ),
            (
                format!("a@example.com:{}\n", &hash[..50]),
                "line 1: not a valid bcrypt hash",
            ),
            (
                "c@example.com:$argon2id$v=19$m=64$broken\n".to_owned(),
                "line 1: not a valid argon2",
            ),
            ("# nothing\n".to_owned(), "no username:hash line"),
        ];
        for (text, expected) in cases {
            let e = match parse_password_file(&text, false) {
                Ok(_) => panic!("{expected}: should be refused"),
                Err(e) => e,
            };
            assert!(e.contains(expected), "{e}");
            assert!(!e.contains(&hash[7..]), "the hash must not be echoed: {e}");
        }
        let e = build_error(
            HookType::PasswordImport,
            "[password_import]\nfile = \"/nonexistent/hookwarden/passwords\"",
        );
        assert!(
            e.contains("password_import.file") && e.contains("/nonexistent"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn password_usernames_can_be_case_sensitive() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("passwords");
        std::fs::write(
            &file,
            format!(
                "Isaac.Brock@example.com:{}",
                bcrypt::hash("Okta", 4).expect("bcrypt")
            ),
        )
        .expect("write");
        let h = handler(
            HookType::PasswordImport,
            &format!(
                "[password_import]\nfile = {:?}\ncase_sensitive_usernames = true\nmax_parallel = 1",
                file.display().to_string()
            ),
        );
        assert_eq!(
            run(&h, fixture("password-import-request.json")).await,
            fixture("password-import-response-unverified.json")
        );
    }

    // ---------------------------------------------------------------- telephony

    const TELEPHONY: &str = r#"
        [telephony]
        deny_prefixes = ["+882", "+979"]
        deny_countries = ["NG"]
        message = "SMS to this destination is blocked."
    "#;

    async fn telephony(h: &RulesHandler, number: Value) -> Value {
        let mut body = fixture("telephony-hook-request.json");
        set(&mut body, "/data/messageProfile/phoneNumber", number);
        run(h, body).await
    }

    #[tokio::test]
    async fn telephony_samples_pass_a_deny_list() {
        let h = handler(HookType::Telephony, TELEPHONY);
        for sample in [
            "telephony-hook-request.json",
            "telephony-hook-request-spec.json",
        ] {
            assert_eq!(run(&h, fixture(sample)).await, json!({}), "{sample}");
        }
    }

    #[tokio::test]
    async fn telephony_denied_prefix_and_country_answer_failed() {
        let h = handler(HookType::Telephony, TELEPHONY);
        let answer = telephony(&h, json!("+882 1234 5678")).await;
        assert_eq!(
            answer,
            json!({
                "commands": [{"type": "com.okta.telephony.action", "value": [
                    {"status": "FAILED", "provider": "hookwarden", "transactionId": "uS5871kJThSsU8qlA1LTcg"}]}],
                "error": {"errorSummary": "SMS to this destination is blocked.", "errorCauses": [{
                    "errorSummary": "numbers starting with +882 are blocked",
                    "reason": "BLOCKED_PREFIX", "locationType": "body",
                    "location": "data.messageProfile.phoneNumber", "domain": "end-user"}]},
                "debugContext": {"deniedBy": "telephony.deny_prefixes"}
            })
        );
        let answer = telephony(&h, json!("+2348012345678")).await;
        assert_eq!(
            answer["error"]["errorCauses"][0]["reason"],
            json!("BLOCKED_COUNTRY")
        );
        assert!(
            !answer.to_string().contains("8012345678"),
            "the number is not repeated"
        );
        assert_eq!(
            telephony(&h, json!("0097912345678")).await["debugContext"]["deniedBy"],
            json!("telephony.deny_prefixes")
        );
        assert_eq!(telephony(&h, json!("+44 7700 900123")).await, json!({}));
    }

    #[tokio::test]
    async fn telephony_allow_list_blocks_everything_else() {
        let h = handler(
            HookType::Telephony,
            "[telephony]\nallow_countries = [\"gb\", \"KZ\"]\nallow_prefixes = [\"+1\"]",
        );
        assert_eq!(telephony(&h, json!("+447700900123")).await, json!({}));
        assert_eq!(telephony(&h, json!("+1 (415) 555-0100")).await, json!({}));
        assert_eq!(
            telephony(&h, json!("+77011234567")).await,
            json!({}),
            "KZ inside +7"
        );
        let ru = telephony(&h, json!("+79161234567")).await;
        assert_eq!(
            ru["error"]["errorCauses"][0]["reason"],
            json!("NOT_ALLOWED_DESTINATION")
        );
        let garbage = telephony(&h, json!("call me")).await;
        assert_eq!(
            garbage["commands"][0]["value"][0]["status"],
            json!("FAILED")
        );
        // The spec sample's number is a JSON number; without '+' it is read as E.164 (+98: IR).
        let answer = run(&h, fixture("telephony-hook-request-spec.json")).await;
        assert_eq!(
            answer["error"]["errorCauses"][0]["reason"],
            json!("NOT_ALLOWED_DESTINATION")
        );
    }

    #[test]
    fn telephony_countries_outside_the_table_are_refused() {
        let e = build_error(
            HookType::Telephony,
            "[telephony]\ndeny_countries = [\"NG\", \"US\"]",
        );
        assert!(
            e.contains("telephony.deny_countries[1]") && e.contains("+1"),
            "{e}"
        );
        let e = build_error(
            HookType::Telephony,
            "[telephony]\nallow_countries = [\"XX\"]",
        );
        assert!(e.contains("allow_prefixes"), "{e}");
        let e = build_error(
            HookType::Telephony,
            "[telephony]\ndeny_prefixes = [\"+88a\"]",
        );
        assert!(e.contains("telephony.deny_prefixes[0]"), "{e}");
        assert_eq!(country_of("79161234567"), Some("RU"));
        assert_eq!(country_of("77011234567"), Some("KZ"));
        assert_eq!(country_of("14155550100"), None);
    }

    // ---------------------------------------------------------------- building

    #[test]
    fn sections_for_another_type_are_refused() {
        let e = build_error(
            HookType::Registration,
            "[[token.claims]]\ntoken = \"id\"\nname = \"a\"\nvalue = 1",
        );
        assert_eq!(
            e,
            "rules: the `token` section does not apply to a registration hook; its rules go in [inline_hooks.handler.registration]"
        );
        let e = build_error(HookType::Saml, "[telephony]\ndeny_prefixes = [\"+882\"]");
        assert!(
            e.contains("`telephony` section does not apply to a saml hook"),
            "{e}"
        );
        let e = build_error(HookType::Token, "");
        assert!(
            e.contains("needs its rules in [inline_hooks.handler.token]"),
            "{e}"
        );
    }

    #[test]
    fn rule_errors_name_the_rule() {
        let e = build_error(
            HookType::Registration,
            r#"[[registration.check]]
               attribute = "a"
               required = true
               [[registration.check]]
               attribute = "b"
               must_match = { regex = "([0-9]" }"#,
        );
        assert!(
            e.starts_with("registration.check[1].must_match: `regex`"),
            "{e}"
        );
        let e = build_error(
            HookType::Token,
            r#"[[token.claims]]
               token = "id"
               name = "a"
               value = 1
               when = [{ scope = "email" }, { field = "data..x" }]"#,
        );
        assert!(e.starts_with("token.claims[0].when[1]:"), "{e}");
        let e = build_error(
            HookType::Registration,
            r#"[[registration.set]]
               attribute = "a"
               value = 1
               when = [{ scope = "email" }]"#,
        );
        assert!(
            e.contains("registration.set[0].when[0]: `scope` conditions are for token hooks"),
            "{e}"
        );
        let e = build_error(
            HookType::Registration,
            "[registration.email]\nallow_domains = [\"a@b\"]",
        );
        assert!(e.contains("registration.email.allow_domains[0]"), "{e}");
    }

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

    /// Every TOML block of the guide loads through the real configuration loader and its
    /// handler builds, so the guide cannot drift from what hookwarden accepts.
    #[test]
    fn the_guide_examples_load_and_build() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let guide = std::fs::read_to_string(root.join("docs/inline-handlers.md")).expect("guide");
        let dir = tempfile::tempdir().expect("tempdir");
        let passwords = dir.path().join("legacy-passwords");
        let hash = bcrypt::hash("Okta", 4).expect("bcrypt");
        std::fs::write(&passwords, format!("isaac.brock@example.com:{hash}\n")).expect("write");
        let script = root.join("examples/scripts/token.rhai");
        let blocks: Vec<&str> = guide
            .split("```toml\n")
            .skip(1)
            .filter_map(|rest| rest.split("```").next())
            .collect();
        let mut built = 0;
        for block in blocks {
            // The skeleton and the condition snippets are fragments, not whole handlers.
            if block.contains("# ...") || !block.contains("[inline_hooks.handler]") {
                continue;
            }
            let mut text = block
                .replace(
                    "/etc/hookwarden/legacy-passwords",
                    &passwords.display().to_string(),
                )
                .replace("examples/scripts/token.rhai", &script.display().to_string());
            // Secrets from the environment become literals: tests do not set variables.
            while let Some(start) = text.find("{ env = \"") {
                let end = start + text[start..].find('}').expect("closing brace") + 1;
                text.replace_range(start..end, "\"a-long-enough-test-secret-value\"");
            }
            if !text.contains("[[inline_hooks]]") {
                // The script and forward fragments: give them a hook.
                text = format!(
                    "[[inline_hooks]]\nname = \"h\"\npath = \"/h\"\ntype = \"token\"\nauth = {{ type = \"header\", header = \"Authorization\", secrets = [\"a-long-enough-test-secret-value\"] }}\n{text}"
                );
            }
            let config = crate::config::Config::from_toml_str(&text)
                .unwrap_or_else(|e| panic!("guide block does not load: {e}\n{text}"));
            for hook in &config.inline_hooks {
                if let Err(e) = crate::inline_hooks::build_handler(hook) {
                    panic!("guide block does not build: {e}\n{text}");
                }
                built += 1;
            }
        }
        assert_eq!(built, 8, "6 rules examples, the script and the forward");
    }
}
