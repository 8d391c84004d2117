//! Token rules (`[inline_hooks.handler.token]`): claims added to, replaced in or removed
//! from the ID and access tokens, and the tokens' lifetimes. Only the tokens the request
//! holds are patched.

use super::matcher::{nonempty, Guard, ValueSource};
use super::Ctx;
use crate::config::rules::{ClaimOp, TokenChoice, TokenRules};
use crate::okta::inline::token::{self, claim_path, lifetime_op, TokenKind};
use crate::okta::inline::{HookType, InlineResponse, PatchOp};
use std::time::Duration;

pub(super) struct TokenCompiled {
    claims: Vec<ClaimCompiled>,
    id_lifetime: Option<u32>,
    access_lifetime: Option<u32>,
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

fn lifetime_seconds(d: Option<Duration>, key: &str) -> Result<Option<u32>, String> {
    let Some(d) = d else { return Ok(None) };
    let range = token::LIFETIME_SECONDS;
    let seconds = u32::try_from(d.as_secs())
        .ok()
        .filter(|s| range.contains(s));
    let Some(seconds) = seconds.filter(|_| d.subsec_nanos() == 0) else {
        return Err(format!(
            "token.{key}: Okta accepts whole seconds from 5m to 24h, not {}",
            humantime::format_duration(d)
        ));
    };
    Ok(Some(seconds))
}

impl TokenCompiled {
    pub(super) fn compile(t: &TokenRules) -> Result<Self, String> {
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
                let reserved = |kind: TokenKind, wanted: bool| wanted && token::is_reserved(kind, name);
                if reserved(TokenKind::Id, id) || reserved(TokenKind::Access, access) {
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
                    path: claim_path(name),
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
    pub(super) fn answer(&self, ctx: &Ctx<'_>) -> InlineResponse {
        let mut answer = InlineResponse::empty();
        for (kind, lifetime) in [
            (TokenKind::Id, self.id_lifetime),
            (TokenKind::Access, self.access_lifetime),
        ] {
            let Some(minted) = ctx
                .req
                .get("data")
                .and_then(|d| d.get(kind.request_field()))
                .filter(|t| t.is_object())
            else {
                continue;
            };
            let mut ops = Vec::new();
            for claim in &self.claims {
                let wanted = match kind {
                    TokenKind::Id => claim.id,
                    TokenKind::Access => claim.access,
                };
                if !wanted || !claim.guard.allows(ctx) {
                    continue;
                }
                let exists = minted.pointer(&claim.path).is_some();
                let value = claim.value.as_ref().and_then(|v| v.resolve(ctx));
                match (claim.op, value) {
                    (ClaimOp::Add, Some(v)) => ops.push(PatchOp::add(&claim.path, v)),
                    (ClaimOp::Replace, Some(v)) if exists => {
                        ops.push(PatchOp::replace(&claim.path, v))
                    }
                    (ClaimOp::Remove, _) if exists => ops.push(PatchOp::remove(&claim.path)),
                    _ => {}
                }
            }
            if let Some(seconds) = lifetime {
                ops.push(lifetime_op(seconds));
            }
            if !ops.is_empty() {
                answer = answer.with(match kind {
                    TokenKind::Id => token::identity_patch(ops),
                    TokenKind::Access => token::access_patch(ops),
                });
            }
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{build_error, fixture, handler, run, set};
    use super::*;
    use serde_json::json;

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
}
