//! The `[inline_hooks.handler]` table of `kind = "rules"`: what the admin writes, one
//! optional section per hook type. Read here with every key checked; compiled and run by
//! `inline_hooks::rules`, which refuses the sections of other hook types.
//!
//! The user guide, with a worked example per type, is `docs/inline-handlers.md`.

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::time::Duration;

/// The `[inline_hooks.handler]` table of `kind = "rules"`: one optional section per hook
/// type, of which exactly the hook's own must be present.
///
/// Unknown keys are refused everywhere in here: a misspelt `deny_domain` must stop the
/// start, not silently let every domain register. Sections are boxed so that the
/// handler config enum stays small whatever the kind.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    #[serde(default)]
    pub registration: Option<Box<RegistrationRules>>,
    #[serde(default)]
    pub token: Option<Box<TokenRules>>,
    #[serde(default)]
    pub saml: Option<Box<SamlRules>>,
    #[serde(default)]
    pub import: Option<Box<ImportRules>>,
    #[serde(default)]
    pub password_import: Option<Box<PasswordImportRules>>,
    #[serde(default)]
    pub telephony: Option<Box<TelephonyRules>>,
}

/// `[inline_hooks.handler.registration]`: self-service registration and progressive profile.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationRules {
    /// `error.errorSummary` of a denial; each failed rule adds its own `errorCauses[]` entry.
    #[serde(default)]
    pub error_summary: Option<String>,
    /// Allow or deny by the domain of the email address.
    #[serde(default)]
    pub email: Option<EmailRule>,
    /// Attribute checks, all evaluated: every failing one adds an `errorCauses[]` entry, so
    /// the Sign-In Widget marks every wrong field at once.
    #[serde(default)]
    pub check: Vec<AttributeCheck>,
    /// Attributes set on an allowed registration (SSR: `com.okta.user.profile.update`,
    /// progressive profile: `com.okta.user.progressive.profile.update`).
    #[serde(default)]
    pub set: Vec<SetRule>,
}

/// `[inline_hooks.handler.registration.email]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailRule {
    /// The profile attribute that holds the address (`email`; Classic orgs may use `login`).
    #[serde(default = "default_email_attribute")]
    pub attribute: String,
    /// When not empty, only these domains may register (`example.com`; `*.example.com` for
    /// its subdomains). Case-insensitive.
    #[serde(default)]
    pub allow_domains: Vec<String>,
    /// Domains that may never register; checked before `allow_domains`.
    #[serde(default)]
    pub deny_domains: Vec<String>,
    /// `errorCauses[].errorSummary`, shown by the Sign-In Widget under the field.
    #[serde(default)]
    pub message: Option<String>,
    /// `errorCauses[].reason`; default `INVALID_EMAIL_DOMAIN`.
    #[serde(default)]
    pub reason: Option<String>,
}

fn default_email_attribute() -> String {
    "email".to_owned()
}

/// `[[inline_hooks.handler.registration.check]]`: one attribute's value is checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeCheck {
    pub attribute: String,
    /// Deny when the value does not match.
    #[serde(default)]
    pub must_match: Option<Matcher>,
    /// Deny when the value matches.
    #[serde(default)]
    pub must_not_match: Option<Matcher>,
    /// Deny when the attribute is absent or empty (otherwise an absent value passes).
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub message: Option<String>,
    /// `errorCauses[].reason`; default `INVALID_ATTRIBUTE`.
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub when: Vec<Condition>,
    #[serde(default)]
    pub unless: Vec<Condition>,
}

/// Sets one profile attribute, from a static `value` or a request field (`from`, with
/// `value` as the fallback when the field is absent).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetRule {
    pub attribute: String,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub from: Option<String>,
    /// Import only: which profile (`app_user` or `user`).
    #[serde(default)]
    pub target: Option<ProfileTarget>,
    #[serde(default)]
    pub when: Vec<Condition>,
    #[serde(default)]
    pub unless: Vec<Condition>,
}

/// The profile an import `set` rule writes.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ProfileTarget {
    /// `com.okta.appUser.profile.update` (flows to Okta through the profile mappings).
    AppUser,
    /// `com.okta.user.profile.update`.
    User,
}

/// `[inline_hooks.handler.token]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRules {
    /// Refusals, tried in order before any claim rule: the first whose conditions hold
    /// fails the token request with its `error`, and no claim is patched.
    #[serde(default)]
    pub deny: Vec<TokenDenyRule>,
    #[serde(default)]
    pub claims: Vec<ClaimRule>,
    /// Replaces the ID token's lifetime (Okta accepts 5 minutes to 24 hours).
    #[serde(default, with = "humantime_serde")]
    pub id_token_lifetime: Option<Duration>,
    /// Replaces the access token's lifetime (Okta accepts 5 minutes to 24 hours).
    #[serde(default, with = "humantime_serde")]
    pub access_token_lifetime: Option<Duration>,
}

/// `[[inline_hooks.handler.token.deny]]`: fails the token request when its conditions
/// hold (at least one `when` or `unless`: a rule without any would refuse every token).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenDenyRule {
    /// `error.errorSummary`; Okta answers the app OAuth `server_error` with it as the
    /// `error_description`.
    #[serde(default)]
    pub error_summary: Option<String>,
    #[serde(default)]
    pub when: Vec<Condition>,
    #[serde(default)]
    pub unless: Vec<Condition>,
}

/// `[[inline_hooks.handler.token.claims]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRule {
    pub token: TokenChoice,
    /// The claim's name, escaped for the patch path by hookwarden.
    pub name: String,
    #[serde(default)]
    pub op: ClaimOp,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub when: Vec<Condition>,
    #[serde(default)]
    pub unless: Vec<Condition>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TokenChoice {
    /// The ID token (`com.okta.identity.patch`).
    Id,
    /// The access token (`com.okta.access.patch`).
    Access,
    Both,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClaimOp {
    /// Adds the claim, or replaces it when the token already has it (Okta's `add`).
    #[default]
    Add,
    /// Replaces a claim the token has; skipped when it has not (Okta would skip the hook).
    Replace,
    /// Removes a claim the token has; skipped when it has not.
    Remove,
}

/// `[inline_hooks.handler.saml]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamlRules {
    #[serde(default)]
    pub attributes: Vec<SamlAttributeRule>,
}

/// `[[inline_hooks.handler.saml.attributes]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamlAttributeRule {
    /// The attribute's name (URIs welcome: `/` and `~` are escaped in the patch path).
    pub name: String,
    #[serde(default)]
    pub op: SamlOp,
    /// A string, number or boolean, or an array of them for a multi-valued attribute.
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub from: Option<String>,
    /// `basic` (default), `uri`, `unspecified`, or a full `urn:` name format.
    #[serde(default)]
    pub name_format: Option<String>,
    /// Each value's `xsi:type`; default `xs:string`.
    #[serde(default)]
    pub xsi_type: Option<String>,
    #[serde(default)]
    pub when: Vec<Condition>,
    #[serde(default)]
    pub unless: Vec<Condition>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SamlOp {
    /// Adds the attribute (a new `Attribute` element, or a new value set for an existing one).
    #[default]
    Add,
    /// Replaces the value(s) of an attribute the assertion has; skipped when it has not.
    Replace,
}

/// `[inline_hooks.handler.import]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportRules {
    #[serde(default)]
    pub link: Option<LinkRule>,
    #[serde(default)]
    pub set: Vec<SetRule>,
}

/// `[inline_hooks.handler.import.link]`: link to an existing Okta user when the app user
/// carries a matching attribute.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkRule {
    /// The app user attribute (`data.appUser.profile.<attribute>`) that must have a value.
    pub attribute: String,
    /// Where the Okta user id is read, first present wins.
    #[serde(default = "default_user_id_from")]
    pub user_id_from: Vec<String>,
}

fn default_user_id_from() -> Vec<String> {
    vec![
        "/data/context/matches/0/id".to_owned(),
        "/data/user/id".to_owned(),
    ]
}

/// `[inline_hooks.handler.password_import]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordImportRules {
    /// `username:hash` lines (bcrypt `$2a$`/`$2b$`/`$2y$`, or argon2 PHC strings), loaded at start.
    pub file: PathBuf,
    /// Okta logins are case-insensitive, so usernames are compared in lower case unless this is set.
    #[serde(default)]
    pub case_sensitive_usernames: bool,
    /// Verifications run at once (each takes a core for tens to hundreds of milliseconds);
    /// default: the number of CPUs.
    #[serde(default)]
    pub max_parallel: Option<usize>,
}

/// `[inline_hooks.handler.telephony]`: a filter in front of Okta's own SMS/voice delivery.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelephonyRules {
    /// E.164 prefixes (`+882`) never sent to.
    #[serde(default)]
    pub deny_prefixes: Vec<String>,
    /// ISO 3166 alpha-2 codes, derived from the number's calling code (built-in table).
    #[serde(default)]
    pub deny_countries: Vec<String>,
    /// When this or `allow_countries` is set, only matching numbers pass.
    #[serde(default)]
    pub allow_prefixes: Vec<String>,
    #[serde(default)]
    pub allow_countries: Vec<String>,
    /// `error.errorSummary` of a block.
    #[serde(default)]
    pub message: Option<String>,
    /// `provider` of the `FAILED` telephony action; default `hookwarden`.
    #[serde(default)]
    pub provider: Option<String>,
}

/// Tests on one value; every given test must hold. Arrays match when one element does.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matcher {
    /// `true`: present and not empty; `false`: absent, null or empty.
    #[serde(default)]
    pub exists: Option<bool>,
    /// Compared as text, so `"1234"` equals `1234`.
    #[serde(default)]
    pub equals: Option<Value>,
    #[serde(default)]
    pub one_of: Option<Vec<Value>>,
    /// `*` matches any run of characters; a list matches when one glob does.
    #[serde(default)]
    pub glob: Option<OneOrMany>,
    /// A `regex` crate pattern (linear time, so a request cannot make it slow); unanchored
    /// unless written with `^...$`.
    #[serde(default)]
    pub regex: Option<String>,
    /// Every character is of this class.
    #[serde(default)]
    pub chars: Option<CharClass>,
    /// In characters.
    #[serde(default)]
    pub min_length: Option<usize>,
    #[serde(default)]
    pub max_length: Option<usize>,
    /// Applies to `equals`, `one_of`, `glob` and `regex`.
    #[serde(default)]
    pub ignore_case: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CharClass {
    /// ASCII `0-9`.
    Digits,
    /// Letters of any script.
    Letters,
    /// Letters of any script and ASCII digits.
    Alphanumeric,
}

/// One string or a list of strings (`glob = "a*"` or `glob = ["a*", "b*"]`).
#[derive(Debug, Clone, Default)]
pub struct OneOrMany(pub Vec<String>);

impl RulesConfig {
    /// The texts these rules send to Okta for people to read (summaries and messages of
    /// refusals), each with its key under `handler`.
    pub fn user_texts(&self) -> Vec<(String, &str)> {
        let mut texts = Vec::new();
        if let Some(r) = &self.registration {
            texts.extend(
                r.error_summary
                    .as_deref()
                    .map(|t| ("registration.error_summary".to_owned(), t)),
            );
            if let Some(e) = &r.email {
                texts.extend(
                    e.message
                        .as_deref()
                        .map(|t| ("registration.email.message".to_owned(), t)),
                );
            }
            for (i, c) in r.check.iter().enumerate() {
                texts.extend(
                    c.message
                        .as_deref()
                        .map(|t| (format!("registration.check[{i}].message"), t)),
                );
            }
        }
        if let Some(t) = &self.token {
            for (i, d) in t.deny.iter().enumerate() {
                texts.extend(
                    d.error_summary
                        .as_deref()
                        .map(|m| (format!("token.deny[{i}].error_summary"), m)),
                );
            }
        }
        if let Some(t) = &self.telephony {
            texts.extend(
                t.message
                    .as_deref()
                    .map(|m| ("telephony.message".to_owned(), m)),
            );
        }
        texts
    }
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Value::deserialize(d)? {
            Value::String(s) => Ok(OneOrMany(vec![s])),
            Value::Array(items) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(D::Error::custom("expected a string or a list of strings")),
                })
                .collect::<Result<_, _>>()
                .map(OneOrMany),
            _ => Err(D::Error::custom("expected a string or a list of strings")),
        }
    }
}

/// A matcher on one place of the request: exactly one of `field`, `attribute`, `scope`,
/// `client_id` or `ip`; `field` and `attribute` take the [`Matcher`] keys too
/// (`{ attribute = "department", glob = "Eng*" }`; with no test, the condition holds when
/// the value is present), the others none (`{ client_id = ["a", "b"] }`).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "Map<String, Value>")]
pub struct Condition {
    pub on: ConditionSource,
    pub matcher: Matcher,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionSource {
    /// A field of the request (JSON Pointer or dotted path).
    Field(String),
    /// A profile attribute; where it is read depends on the hook type (see the guide).
    Attribute(String),
    /// Token only: the scope is granted to the access token (or requested, without one).
    Scope(String),
    /// Token only: the OAuth client asking for the tokens is one of these (exact ids).
    ClientId(Vec<String>),
    /// Token only: the address the token request came from is in one of these networks
    /// (`203.0.113.0/24`) or is one of these addresses.
    Ip(Vec<String>),
}

impl TryFrom<Map<String, Value>> for Condition {
    type Error = String;

    // Written out rather than `#[serde(flatten)]`: flatten cannot refuse unknown keys.
    fn try_from(mut map: Map<String, Value>) -> Result<Self, String> {
        let mut sources = Vec::new();
        for key in ["field", "attribute", "scope"] {
            if let Some(v) = map.remove(key) {
                let Value::String(s) = v else {
                    return Err(format!("`{key}` must be a string"));
                };
                sources.push(match key {
                    "field" => ConditionSource::Field(s),
                    "attribute" => ConditionSource::Attribute(s),
                    _ => ConditionSource::Scope(s),
                });
            }
        }
        for key in ["client_id", "ip"] {
            if let Some(v) = map.remove(key) {
                let OneOrMany(list) = OneOrMany::deserialize(v)
                    .map_err(|_| format!("`{key}` must be a string or a list of strings"))?;
                sources.push(match key {
                    "client_id" => ConditionSource::ClientId(list),
                    _ => ConditionSource::Ip(list),
                });
            }
        }
        if sources.len() != 1 {
            return Err(
                "a condition names exactly one of `field`, `attribute`, `scope`, `client_id` or `ip`"
                    .into(),
            );
        }
        let on = sources.remove(0);
        let bare = match on {
            ConditionSource::Scope(_) => Some("scope"),
            ConditionSource::ClientId(_) => Some("client_id"),
            ConditionSource::Ip(_) => Some("ip"),
            ConditionSource::Field(_) | ConditionSource::Attribute(_) => None,
        };
        if let Some(key) = bare.filter(|_| !map.is_empty()) {
            return Err(format!("a `{key}` condition takes no other key"));
        }
        let matcher = Matcher::deserialize(Value::Object(map)).map_err(|e| e.to_string())?;
        Ok(Condition { on, matcher })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_keys_and_ambiguous_conditions_are_refused() {
        let parse = |text: &str| -> String {
            match ::config::Config::builder()
                .add_source(::config::File::from_str(text, ::config::FileFormat::Toml))
                .build()
                .expect("TOML")
                .try_deserialize::<RulesConfig>()
            {
                Ok(_) => panic!("{text}: should be refused"),
                Err(e) => e.to_string(),
            }
        };
        assert!(parse("[registration.email]\ndeny_domain = [\"x.com\"]").contains("deny_domain"));
        assert!(
            parse("[[registration.check]]\nattribute = \"a\"\nmust_match = { globs = \"a\" }")
                .contains("globs")
        );
        assert!(parse("[[token.claims]]\ntoken = \"id\"\nname = \"a\"\nvalue = 1\nwhen = [{ field = \"/a\", attribute = \"b\" }]")
            .contains("exactly one of"));
    }

    #[test]
    fn client_id_and_ip_conditions_take_a_string_or_a_list_and_nothing_else() {
        let rules = |text: &str| {
            ::config::Config::builder()
                .add_source(::config::File::from_str(text, ::config::FileFormat::Toml))
                .build()
                .expect("TOML")
                .try_deserialize::<RulesConfig>()
                .map_err(|e| e.to_string())
        };
        let ok = rules(
            "[[token.deny]]\nerror_summary = \"No.\"\nwhen = [{ client_id = \"a\" }, { ip = [\"10.0.0.0/8\", \"::1\"] }]",
        )
        .expect("loads");
        let deny = &ok.token.as_ref().expect("token").deny[0];
        assert!(matches!(&deny.when[0].on, ConditionSource::ClientId(ids) if ids == &["a"]));
        assert!(
            matches!(&deny.when[1].on, ConditionSource::Ip(nets) if nets == &["10.0.0.0/8", "::1"])
        );
        assert_eq!(
            ok.user_texts(),
            vec![("token.deny[0].error_summary".to_owned(), "No.")]
        );
        let e = rules("[[token.deny]]\nwhen = [{ client_id = \"a\", equals = \"b\" }]")
            .expect_err("extra key");
        assert!(
            e.contains("a `client_id` condition takes no other key"),
            "{e}"
        );
        let e = rules("[[token.deny]]\nwhen = [{ ip = 10 }]").expect_err("number");
        assert!(
            e.contains("`ip` must be a string or a list of strings"),
            "{e}"
        );
        let e = rules("[[token.deny]]\nwhen = [{ client_id = \"a\", ip = \"::1\" }]")
            .expect_err("two sources");
        assert!(e.contains("exactly one of"), "{e}");
        let e = rules("[[token.deny]]\nmessage = \"No.\"\nwhen = [{ ip = \"::1\" }]")
            .expect_err("unknown key");
        assert!(e.contains("message"), "{e}");
    }

    #[test]
    fn rules_load_through_the_real_config_file() {
        let text = r#"
            [[inline_hooks]]
            name = "registration"
            path = "/hooks/okta/registration"
            type = "registration"
            auth = { type = "header", header = "Authorization", secrets = ["a-long-enough-shared-secret-value"] }
            [inline_hooks.handler]
            kind = "rules"
            [inline_hooks.handler.registration.email]
            allow_domains = ["example.com"]
            [[inline_hooks.handler.registration.set]]
            attribute = "customerId"
            value = 12345
        "#;
        let config = crate::config::Config::from_toml_str(text).expect("config loads");
        let crate::config::HandlerConfig::Rules(rules) = &config.inline_hooks[0].handler else {
            panic!("rules handler expected");
        };
        let set = &rules.registration.as_ref().expect("registration").set[0];
        assert_eq!(
            set.attribute, "customerId",
            "attribute names keep their case"
        );
        assert_eq!(set.value, Some(json!(12345)));
        let typo = text.replace("allow_domains", "allow_domain");
        assert!(crate::config::Config::from_toml_str(&typo).is_err());
    }
}
