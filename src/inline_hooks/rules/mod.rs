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
//! - a *condition* is a matcher on a `field` or on a profile `attribute`, or (token only) a
//!   granted `scope`, the OAuth `client_id` or the request's source `ip`; rules take `when`
//!   (all must hold) and `unless` (none may hold).
//!
//! The user guide, with a worked example per type, is `docs/inline-handlers.md`.
//!
//! One file per hook type (`registration`, `token`, `saml`, `import`, `password`,
//! `telephony`), each compiling its section and answering from it; `matcher` holds the
//! pieces they share (fields, matchers, conditions, value sources, `set` rules). The
//! admin's side, the TOML types, is [`crate::config::rules`].

mod import;
mod matcher;
mod password;
mod registration;
mod saml;
mod telephony;
#[cfg(test)]
mod testutil;
mod token;

use super::handler::{Handler, HandlerError, InlineCall, Reply};
use crate::config::rules::RulesConfig;
use crate::okta::inline::HookType;
use async_trait::async_trait;
use import::ImportCompiled;
use password::PasswordBook;
use registration::RegistrationCompiled;
use saml::SamlCompiled;
use serde_json::Value;
use std::sync::Arc;
use telephony::TelephonyCompiled;
use token::TokenCompiled;

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
    async fn handle(&self, call: &InlineCall) -> Result<Reply, HandlerError> {
        let ctx = Ctx::new(self.hook_type(), &call.body);
        Ok(Reply::Typed(match &self.rules {
            Compiled::Registration(r) => r.answer(&ctx),
            Compiled::Token(r) => r.answer(&ctx),
            Compiled::Saml(r) => r.answer(&ctx),
            Compiled::Import(r) => r.answer(&ctx),
            Compiled::Telephony(r) => r.answer(&ctx, call.event_id.as_deref()),
            Compiled::PasswordImport(book) => book.clone().answer(&call.body).await?,
        }))
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
            && req.get("requestType").and_then(Value::as_str)
                == Some(crate::okta::inline::registration::PROGRESSIVE_PROFILE);
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

    /// The OAuth client asking for the tokens: `data.context.protocol.client.id`, else the
    /// `client_id` the client sent (`data.context.protocol.request.client_id`).
    fn client_id(&self) -> Option<&'a str> {
        [
            "/data/context/protocol/client/id",
            "/data/context/protocol/request/client_id",
        ]
        .into_iter()
        .find_map(|p| self.req.pointer(p).and_then(Value::as_str))
        .filter(|id| !id.is_empty())
    }

    /// The address the request came from (`data.context.request.ipAddress`), when it is one.
    fn ip_address(&self) -> Option<std::net::IpAddr> {
        self.req
            .pointer("/data/context/request/ipAddress")
            .and_then(Value::as_str)
            .and_then(|ip| ip.trim().parse().ok())
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

#[cfg(test)]
mod tests {
    use super::testutil::build_error;
    use super::*;
    use std::path::Path;

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
        // Every ```toml block, whatever its marks (`check`, `fragment`, `not-checked: …`).
        let blocks: Vec<&str> = guide
            .split("```toml")
            .skip(1)
            .filter_map(|rest| rest.split_once('\n').map(|(_, body)| body))
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
