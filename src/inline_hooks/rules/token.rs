//! Token rules (`[inline_hooks.handler.token]`): refusals that fail the token request,
//! claims added to, replaced in or removed from the ID and access tokens, and the
//! tokens' lifetimes. A refusal that applies wins over every claim rule; otherwise only
//! the tokens the request holds are patched.

use super::matcher::{nonempty, Guard, ValueSource};
use super::Ctx;
use crate::config::rules::{ClaimOp, TokenChoice, TokenRules};
use crate::okta::inline::token::{self, claim_path, lifetime_op, TokenKind};
use crate::okta::inline::{HookType, InlineResponse, PatchOp};
use serde_json::json;
use std::time::Duration;

/// `error.errorSummary` of a deny rule without its own.
const DEFAULT_DENY_SUMMARY: &str = "This token request is not allowed.";

pub(super) struct TokenCompiled {
    deny: Vec<DenyCompiled>,
    claims: Vec<ClaimCompiled>,
    id_lifetime: Option<u32>,
    access_lifetime: Option<u32>,
}

struct DenyCompiled {
    index: usize,
    error_summary: String,
    guard: Guard,
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
        let deny = t
            .deny
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let at = format!("token.deny[{i}]");
                if d.when.is_empty() && d.unless.is_empty() {
                    return Err(format!(
                        "{at}: give `when` or `unless` (as written it fails every token request)"
                    ));
                }
                if let Some(summary) = &d.error_summary {
                    nonempty(summary, "error_summary").map_err(|e| format!("{at}: {e}"))?;
                }
                Ok(DenyCompiled {
                    index: i,
                    error_summary: d
                        .error_summary
                        .clone()
                        .unwrap_or_else(|| DEFAULT_DENY_SUMMARY.to_owned()),
                    guard: Guard::compile(HookType::Token, &d.when, &d.unless)
                        .map_err(|e| format!("{at}.{e}"))?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
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
        if deny.is_empty()
            && claims.is_empty()
            && id_lifetime.is_none()
            && access_lifetime.is_none()
        {
            return Err("token: no rule (give `deny`, `claims` or a token lifetime)".into());
        }
        Ok(TokenCompiled {
            deny,
            claims,
            id_lifetime,
            access_lifetime,
        })
    }

    /// The first deny rule that applies fails the token request (its `error` alone: Okta
    /// runs no command beside one). Otherwise patches only the tokens the request holds:
    /// a command for a token Okta is not minting is invalid, and any failing op makes Okta
    /// skip the whole hook.
    pub(super) fn answer(&self, ctx: &Ctx<'_>) -> InlineResponse {
        if let Some(d) = self.deny.iter().find(|d| d.guard.allows(ctx)) {
            let rule = format!("token.deny[{}]", d.index);
            tracing::debug!(rule = %rule, "token request denied by rules");
            return token::error(d.error_summary.clone()).debug("deniedBy", json!(rule));
        }
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

    /// The guide's token example (docs/inline-handlers.md), and two rules more.
    const TOKEN: &str = r#"
        [token]
        access_token_lifetime = "10m"

        [[token.deny]]
        error_summary = "This application may not get tokens."
        when = [{ client_id = ["legacy-app", "blocked-client"] }]

        [[token.deny]]
        error_summary = "Contractors sign in from the office network only."
        when = [{ field = "/data/access/claims/groups", equals = "Contractors" }]
        unless = [{ ip = ["203.0.113.0/24", "2001:db8:1::/48"] }]

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
    async fn token_sample_from_a_refused_client_gets_the_guides_refusal() {
        let h = handler(HookType::Token, TOKEN);
        let mut body = fixture("token-hook-request.json");
        set(
            &mut body,
            "/data/context/protocol/client/id",
            json!("legacy-app"),
        );
        assert_eq!(
            run(&h, body).await,
            json!({
                "error": {"errorSummary": "This application may not get tokens."},
                "debugContext": {"deniedBy": "token.deny[0]"}
            })
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

    /// Refuses one client and the contractors, from outside the office network, unless
    /// the break-glass scope is granted; patches a claim for everyone else.
    const DENY: &str = r#"
        [[token.deny]]
        error_summary = "This application may not get tokens."
        when = [{ client_id = ["blocked-app", "legacy-app"] }]

        [[token.deny]]
        when = [
            { field = "/data/access/claims/groups", equals = "Contractors" },
            { ip = "10.0.0.0/8" },
        ]
        unless = [{ scope = "breakglass" }]

        [[token.deny]]
        error_summary = "Finish your profile first."
        when = [{ attribute = "department", exists = false }]
        unless = [{ attribute = "locale", equals = "en" }]

        [[token.claims]]
        token = "access"
        name = "login"
        from = "/data/context/user/profile/login"
    "#;

    fn denied_by(summary: &str, rule: &str) -> serde_json::Value {
        json!({"error": {"errorSummary": summary}, "debugContext": {"deniedBy": rule}})
    }

    #[tokio::test]
    async fn token_deny_by_client_id_wins_over_the_claims() {
        let h = handler(HookType::Token, DENY);
        // Okta's sample: client customClientIdNative, from 127.0.0.1: allowed, patched.
        let sample = fixture("token-hook-request.json");
        let answer = run(&h, sample.clone()).await;
        assert_eq!(
            answer,
            json!({"commands": [{"type": "com.okta.access.patch", "value": [
                {"op": "add", "path": "/claims/login", "value": "administrator1@clouditude.net"}
            ]}]})
        );
        // The same request from a blocked client: the error alone, no command beside it.
        let mut blocked = sample.clone();
        set(
            &mut blocked,
            "/data/context/protocol/client/id",
            json!("legacy-app"),
        );
        let answer = run(&h, blocked.clone()).await;
        assert_eq!(
            answer,
            denied_by("This application may not get tokens.", "token.deny[0]")
        );
        // Okta's token contract reads it as a refusal, and the runtime sends it as it is.
        let typed: InlineResponse = serde_json::from_value(answer.clone()).expect("answer");
        assert!(HookType::Token.is_refusal(&typed));
        let sent = crate::inline_hooks::settled_for_tests(
            HookType::Token,
            crate::inline_hooks::Reply::Typed(typed),
            &blocked,
        );
        assert_eq!(sent, Ok(answer));
        // Without `protocol.client`, the client_id the app sent decides.
        let mut sent_id = sample;
        sent_id["data"]["context"]["protocol"]
            .as_object_mut()
            .expect("protocol")
            .remove("client");
        set(
            &mut sent_id,
            "/data/context/protocol/request/client_id",
            json!("blocked-app"),
        );
        assert_eq!(
            run(&h, sent_id).await["error"]["errorSummary"],
            json!("This application may not get tokens.")
        );
    }

    #[tokio::test]
    async fn token_deny_by_group_claim_source_ip_scope_and_attribute() {
        let h = handler(HookType::Token, DENY);
        let mut body = fixture("token-hook-request.json");
        body["data"]["access"]["claims"]["groups"] = json!(["Everyone", "Contractors"]);
        // A contractor, but from 127.0.0.1: not in 10.0.0.0/8.
        assert!(run(&h, body.clone()).await.get("error").is_none());
        // From the office network: denied with the default summary.
        set(
            &mut body,
            "/data/context/request/ipAddress",
            json!("10.1.2.3"),
        );
        assert_eq!(
            run(&h, body.clone()).await,
            denied_by("This token request is not allowed.", "token.deny[1]")
        );
        // An IPv4-mapped IPv6 address is the same address.
        set(
            &mut body,
            "/data/context/request/ipAddress",
            json!("::ffff:10.1.2.3"),
        );
        assert!(run(&h, body.clone()).await.get("error").is_some());
        // The break-glass scope granted: `unless` holds, the rule does not apply.
        body["data"]["access"]["scopes"]["breakglass"] = json!({"id": "scp9", "action": "GRANT"});
        assert!(run(&h, body.clone()).await.get("error").is_none());
        // An address Okta did not send, or cannot be read, matches no network.
        set(
            &mut body,
            "/data/context/request/ipAddress",
            json!("unknown"),
        );
        assert!(run(&h, body).await.get("error").is_none());

        // No department and a French locale: the third rule.
        let mut body = fixture("token-hook-request.json");
        set(
            &mut body,
            "/data/context/user/profile/locale",
            json!("fr_FR"),
        );
        assert_eq!(
            run(&h, body.clone()).await,
            denied_by("Finish your profile first.", "token.deny[2]")
        );
        body["data"]["context"]["user"]["profile"]["department"] = json!("R&D");
        assert!(run(&h, body).await.get("error").is_none());
    }

    #[tokio::test]
    async fn token_deny_alone_is_a_handler() {
        // Only refusals: everyone else gets `{}` (the token unchanged).
        let h = handler(
            HookType::Token,
            "[[token.deny]]\nunless = [{ client_id = \"customClientIdNative\" }]",
        );
        assert_eq!(run(&h, fixture("token-hook-request.json")).await, json!({}));
        let mut other = fixture("token-hook-request.json");
        set(
            &mut other,
            "/data/context/protocol/client/id",
            json!("another-app"),
        );
        assert_eq!(
            run(&h, other).await,
            denied_by("This token request is not allowed.", "token.deny[0]")
        );
    }

    #[test]
    fn token_deny_rules_that_cannot_work_are_refused() {
        let e = build_error(HookType::Token, "[[token.deny]]\nerror_summary = \"No.\"");
        assert!(
            e.starts_with("token.deny[0]: give `when` or `unless`"),
            "{e}"
        );
        let e = build_error(
            HookType::Token,
            "[[token.deny]]\nerror_summary = \" \"\nwhen = [{ scope = \"a\" }]",
        );
        assert!(e.contains("token.deny[0]: `error_summary` is empty"), "{e}");
        let e = build_error(
            HookType::Token,
            "[[token.deny]]\nwhen = [{ ip = [\"10.0.0.0/8\", \"10.0.0.0/33\"] }]",
        );
        assert!(
            e.starts_with("token.deny[0].when[0]: `ip`: '10.0.0.0/33' is not a network"),
            "{e}"
        );
        // Read by the same rule as `allow_ips`: host bits set are a mistake, not a network.
        let e = build_error(
            HookType::Token,
            "[[token.deny]]\nwhen = [{ ip = \"10.0.0.1/8\" }]",
        );
        assert!(e.contains("'10.0.0.1/8' has host bits set"), "{e}");
        let e = build_error(HookType::Token, "[[token.deny]]\nwhen = [{ ip = [] }]");
        assert!(e.contains("token.deny[0].when[0]: `ip` needs"), "{e}");
        let e = build_error(
            HookType::Token,
            "[[token.deny]]\nwhen = [{ client_id = [\"a\", \"\"] }]",
        );
        assert!(
            e.contains("token.deny[0].when[0]: `client_id` needs"),
            "{e}"
        );
        let e = build_error(
            HookType::Registration,
            "[[registration.set]]\nattribute = \"a\"\nvalue = 1\nwhen = [{ client_id = \"x\" }]",
        );
        assert!(
            e.contains("registration.set[0].when[0]: `client_id` conditions are for token hooks"),
            "{e}"
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
