//! Token inline hook (`com.okta.oauth2.tokens.transform`): a custom authorization server
//! is about to mint tokens and lets us patch their claims and lifetimes.
//!
//! The request carries the tokens as they would be issued (`data.identity` for the ID
//! token, `data.access` for the access token; a token that was not requested is absent)
//! and read-only context. The answer is `com.okta.identity.patch` /
//! `com.okta.access.patch` commands, each a list of [`PatchOp`]s on `/claims/...` or
//! `/token/lifetime/expiration`. Okta skips the whole hook (the token is issued
//! unmodified) when any operation fails, and fails the whole token request when the
//! answer carries an `error`, so the checker ([`super::check`]) refuses bad patches before
//! they leave, and a refusal keeps its `error` ([`super::settle`]).

use super::check::{
    check_segment, op_and_path, patch_ops, tidy_patch_ops, unescape, At, CheckError,
};
use super::{
    patch_value, pointer_segment, Command, ContextUser, InlineError, InlineRequest, InlineResponse,
    Lifetime, PatchOp, RequestInfo, Session,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A token hook request.
pub type TokenRequest = InlineRequest<TokenData>;

/// Command type that patches the ID token.
pub const IDENTITY_PATCH: &str = "com.okta.identity.patch";
/// Command type that patches the access token.
pub const ACCESS_PATCH: &str = "com.okta.access.patch";
/// The only non-claim path a patch may touch (with `replace`).
pub const LIFETIME_PATH: &str = "/token/lifetime/expiration";
/// Okta's bounds for a token lifetime set by the hook, in seconds (5 minutes to 24 hours).
pub const LIFETIME_SECONDS: std::ops::RangeInclusive<u32> = 300..=86_400;

/// `data` of a token hook request.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TokenData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<TokenContext>,
    /// The ID token about to be minted; absent when none was requested, and then an
    /// `identity.patch` is invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<MintedToken>,
    /// The access token about to be minted; absent when none was requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<MintedToken>,
    /// Present when a refresh token is issued too; it cannot be patched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<RefreshToken>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `data.context`: who is signing in, to which client, under which policy. Read-only.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TokenContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<OAuthProtocol>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Session>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<ContextUser>,
    /// The access policy and rule that triggered the hook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `context.protocol`: the OAuth 2.0 request being answered.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct OAuthProtocol {
    /// `OAUTH2.0`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<OAuthRequest>,
    /// On refresh grants: the original authorization. The spec spells it with a capital
    /// `O`; that casing is unverified against live traffic (contract §5.5).
    #[serde(
        default,
        rename = "OriginalGrant",
        skip_serializing_if = "Option::is_none"
    )]
    pub original_grant: Option<OriginalGrant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<Issuer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<OAuthClient>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The OAuth parameters as the client sent them (snake_case, as on the wire).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct OAuthRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_mode: Option<String>,
    /// Space-separated, e.g. `token id_token` (the spec's enum allows one value only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_type: Option<String>,
    /// Space-separated scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `protocol.OriginalGrant` on refresh grants.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct OriginalGrant {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<OAuthRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<RefreshToken>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Issuer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct OAuthClient {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `PUBLIC` or `CONFIDENTIAL`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Policy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<PolicyRule>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PolicyRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A token as it would be minted: `data.identity` or `data.access`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MintedToken {
    /// The claims, any JSON; patches address them as `/claims/<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<Map<String, Value>>,
    /// `{"lifetime": {"expiration": seconds}}`; patched at `/token/lifetime/expiration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenMeta>,
    /// Access token only: granted scopes by name, `{"id": "scp…", "action": "GRANT"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Map<String, Value>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TokenMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime: Option<Lifetime>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RefreshToken {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl TokenRequest {
    /// Whether an ID token is being minted (an `identity.patch` is only valid then).
    pub fn has_id_token(&self) -> bool {
        self.data.identity.is_some()
    }

    /// Whether an access token is being minted (an `access.patch` is only valid then).
    pub fn has_access_token(&self) -> bool {
        self.data.access.is_some()
    }
}

mod reserved;
pub use reserved::{reserved_in, ReservedIn, HOOKWARDEN_RESERVED, RESERVED_CLAIMS};

/// The token a patch command changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// The ID token (`com.okta.identity.patch`, `data.identity`).
    Id,
    /// The access token (`com.okta.access.patch`, `data.access`).
    Access,
}

impl TokenKind {
    /// The command type that patches this token.
    pub fn command(self) -> &'static str {
        match self {
            TokenKind::Id => IDENTITY_PATCH,
            TokenKind::Access => ACCESS_PATCH,
        }
    }

    /// The token a command type patches, if it is a token patch.
    pub fn of_command(command: &str) -> Option<TokenKind> {
        match command {
            IDENTITY_PATCH => Some(TokenKind::Id),
            ACCESS_PATCH => Some(TokenKind::Access),
            _ => None,
        }
    }

    /// Where the request carries this token (`identity` or `access` under `data`).
    pub fn request_field(self) -> &'static str {
        match self {
            TokenKind::Id => "identity",
            TokenKind::Access => "access",
        }
    }

    /// "an ID token" / "an access token", for messages.
    pub fn described(self) -> &'static str {
        match self {
            TokenKind::Id => "an ID token",
            TokenKind::Access => "an access token",
        }
    }
}

/// Whether `claim` (unescaped) is reserved in `token`: Okta's table, plus `nbf`.
pub fn is_reserved(token: TokenKind, claim: &str) -> bool {
    match reserved_in(claim) {
        None => false,
        Some(ReservedIn::Both) => true,
        Some(ReservedIn::AccessToken) => token == TokenKind::Access,
        Some(ReservedIn::IdToken) => token == TokenKind::Id,
    }
}

/// `/claims/<name>`, with the name escaped as a JSON Pointer segment.
pub fn claim_path(name: &str) -> String {
    format!("/claims/{}", pointer_segment(name))
}

/// Patches the ID token (`com.okta.identity.patch`).
pub fn identity_patch(ops: Vec<PatchOp>) -> Command {
    Command::new(IDENTITY_PATCH, patch_value(ops))
}

/// Patches the access token (`com.okta.access.patch`).
pub fn access_patch(ops: Vec<PatchOp>) -> Command {
    Command::new(ACCESS_PATCH, patch_value(ops))
}

/// Adds (or overwrites) claims in the ID token, like the Java SDK's `addIdTokenClaims`.
pub fn add_id_token_claims<'a>(claims: impl IntoIterator<Item = (&'a str, Value)>) -> Command {
    identity_patch(add_ops(claims))
}

/// Adds (or overwrites) claims in the access token, like the Java SDK's
/// `addAccessTokenClaims`.
pub fn add_access_token_claims<'a>(claims: impl IntoIterator<Item = (&'a str, Value)>) -> Command {
    access_patch(add_ops(claims))
}

fn add_ops<'a>(claims: impl IntoIterator<Item = (&'a str, Value)>) -> Vec<PatchOp> {
    claims
        .into_iter()
        .map(|(name, value)| PatchOp::add(claim_path(name), value))
        .collect()
}

/// The operation that sets a token's lifetime; Okta accepts 300 to 86,400 seconds.
pub fn lifetime_op(seconds: u32) -> PatchOp {
    PatchOp::replace(LIFETIME_PATH, Value::from(seconds))
}

/// The error answer: Okta fails the token request with OAuth `server_error` and this
/// summary as `error_description`, so the client sees it.
pub fn error(summary: impl Into<String>) -> InlineResponse {
    InlineResponse::empty().error(summary)
}

// ------------------------------------------------------------------------------------------
// The answer's contract: what Okta takes, and what a refusal is
// ------------------------------------------------------------------------------------------

/// The command types a token hook answer may carry.
pub const COMMANDS: &[&str] = &[IDENTITY_PATCH, ACCESS_PATCH];

/// Checks one patch command: the token was requested, every operation is one Okta
/// applies (a failing one makes Okta skip the whole hook), no reserved claim is touched.
pub(super) fn check_command(at: &At, request: &Value) -> Result<(), CheckError> {
    let Some(kind) = TokenKind::of_command(&at.command.kind) else {
        return Err(at.fail("not a token patch"));
    };
    let (token, field) = (kind.described(), kind.request_field());
    if request
        .get("data")
        .and_then(|d| d.get(field))
        .is_none_or(Value::is_null)
    {
        return Err(at.fail(format!(
            "the request has no data.{field}: {token} was not requested, so Okta rejects a patch of it"
        )));
    }
    let ops = patch_ops(at)?;
    for (i, op) in ops.iter().enumerate() {
        let (op_kind, path) = op_and_path(at, i, op, &["add", "replace", "remove"])?;
        let fail = |what: String| at.fail(format!("value[{i}] ({op_kind} {path}): {what}"));
        let value = op.get("value");
        if path == LIFETIME_PATH {
            if op_kind != "replace" {
                return Err(fail(
                    "the lifetime can only be replaced (op \"replace\")".to_owned(),
                ));
            }
            let range = LIFETIME_SECONDS;
            match value.and_then(Value::as_u64) {
                Some(s) if s >= u64::from(*range.start()) && s <= u64::from(*range.end()) => {}
                _ => {
                    return Err(fail(format!(
                        "the lifetime must be an integer from {} to {} seconds, not {}",
                        range.start(),
                        range.end(),
                        value.map_or_else(|| "absent".to_owned(), Value::to_string)
                    )))
                }
            }
            continue;
        }
        let Some(rest) = path.strip_prefix("/claims/") else {
            return Err(fail(format!(
                "token patches change /claims/<name>[/<member>] or {}",
                LIFETIME_PATH
            )));
        };
        let segments: Vec<&str> = rest.split('/').collect();
        if segments.len() > 2 {
            return Err(fail(
                "a path goes at most one level into a claim (/claims/<name>/<member, index or ->)"
                    .to_owned(),
            ));
        }
        for segment in &segments {
            check_segment(segment).map_err(fail)?;
        }
        if segments.get(1) == Some(&"-") && op_kind != "add" {
            return Err(fail(
                "\"-\" (after the last element) can only be used to add".to_owned(),
            ));
        }
        let claim = unescape(segments[0]);
        if is_reserved(kind, &claim) {
            return Err(fail(format!(
                "\"{claim}\" is a reserved claim of {token} and cannot be changed"
            )));
        }
        match op_kind {
            "remove" => {
                if value.is_some_and(|v| !v.is_null()) {
                    return Err(fail(
                        "a remove takes no value (or null); Okta fails the whole patch otherwise"
                            .to_owned(),
                    ));
                }
            }
            _ => {
                if value.is_none() {
                    return Err(fail(format!("an {op_kind} needs a value")));
                }
            }
        }
    }
    Ok(())
}

/// Checks what concerns the whole answer: no command beside an `error`. Okta fails the token request
/// on an error and applies none of them, so an answer with both says two things.
pub(super) fn check_answer(answer: &InlineResponse) -> Result<(), CheckError> {
    match (&answer.error, answer.commands.as_deref()) {
        (Some(_), Some([_, ..])) => Err(CheckError(
            "commands beside an error: Okta fails the token request and runs none of them; send the error alone"
                .to_owned(),
        )),
        _ => Ok(()),
    }
}

/// Whether the answer refuses: any `error` fails the whole token request.
pub fn is_refusal(answer: &InlineResponse) -> bool {
    answer.error.is_some()
}

/// The token hook's refusal: the `error` alone. Okta fails the token request with OAuth
/// `server_error` and the summary as `error_description`; the error wins over any
/// command, so none is sent beside it.
pub fn refusal(error: Option<InlineError>, _answer: &InlineResponse) -> InlineResponse {
    InlineResponse {
        error: Some(error.unwrap_or_default()),
        ..InlineResponse::default()
    }
}

/// Drops what Okta does not read from each operation (anything but op, path, value).
pub(super) fn tidy(command: &mut Command) -> Vec<String> {
    tidy_patch_ops(command)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn roundtrip(sample: &str) -> TokenRequest {
        super::super::test_roundtrip(sample)
    }

    #[test]
    fn request_sample_parses_and_roundtrips() {
        let r = roundtrip(include_str!(
            "../../../tests/fixtures/okta/token-hook-request.json"
        ));
        assert_eq!(
            r.event_type.as_deref(),
            Some("com.okta.oauth2.tokens.transform")
        );
        assert!(r.has_id_token() && r.has_access_token());
        let ctx = r.data.context.as_ref().expect("context");
        let protocol = ctx.protocol.as_ref().expect("protocol");
        let oauth = protocol.request.as_ref().expect("protocol.request");
        assert_eq!(oauth.response_type.as_deref(), Some("token id_token"));
        assert_eq!(oauth.client_id.as_deref(), Some("customClientIdNative"));
        assert_eq!(
            ctx.session.as_ref().and_then(|s| s.amr.clone()),
            Some(vec!["PASSWORD".to_owned()])
        );
        let rule = ctx.policy.as_ref().and_then(|p| p.rule.as_ref());
        assert_eq!(
            rule.and_then(|r| r.id.as_deref()),
            Some("0prq8mLKuKAmavOvq0g3")
        );
        let id = r.data.identity.as_ref().expect("identity");
        assert_eq!(
            id.claims.as_ref().and_then(|c| c.get("nonce")),
            Some(&json!("asf"))
        );
        let lifetime = id.token.as_ref().and_then(|t| t.lifetime.as_ref());
        assert_eq!(lifetime.and_then(|l| l.expiration), Some(3600));
        let access = r.data.access.as_ref().expect("access");
        assert!(access
            .scopes
            .as_ref()
            .is_some_and(|s| s.contains_key("openid")));
        assert_eq!(
            r.data.refresh_token.as_ref().and_then(|t| t.jti.as_deref()),
            Some("oarob4a0tckCkGcyo1d6")
        );
    }

    #[test]
    fn unknown_fields_are_kept() {
        let mut raw: Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/okta/token-hook-request.json"
        ))
        .expect("sample");
        raw["data"]["identity"]["newThing"] = json!({"a": 1});
        raw["data"]["context"]["protocol"]["client"]["newField"] = json!(true);
        raw["brandNew"] = json!([1, 2]);
        let typed: TokenRequest = serde_json::from_value(raw.clone()).expect("typed");
        assert_eq!(serde_json::to_value(&typed).expect("serialise"), raw);
    }

    #[test]
    fn missing_tokens_and_context_are_fine() {
        let typed: TokenRequest = serde_json::from_value(
            json!({"eventType": "com.okta.oauth2.tokens.transform", "data": {}}),
        )
        .expect("minimal request");
        assert!(!typed.has_id_token() && !typed.has_access_token());
    }

    #[test]
    fn builders_produce_okta_shapes() {
        let answer = InlineResponse::empty()
            .with(identity_patch(vec![PatchOp::add(
                "/claims/extPatientId",
                json!("1234"),
            )]))
            .with(access_patch(vec![PatchOp::add(
                "/claims/external_guid",
                json!("F0384685-F87D-474B-848D-2058AC5655A7"),
            )]));
        let expected: Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/okta/token-hook-response.json"
        ))
        .expect("sample");
        assert_eq!(serde_json::to_value(&answer).expect("serialise"), expected);

        let lifetimes: InlineResponse = [
            identity_patch(vec![lifetime_op(36000)]),
            access_patch(vec![lifetime_op(36000)]),
        ]
        .into_iter()
        .collect();
        let expected: Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/okta/token-hook-response-lifetime.json"
        ))
        .expect("sample");
        assert_eq!(
            serde_json::to_value(&lifetimes).expect("serialise"),
            expected
        );

        let removal = InlineResponse::from(identity_patch(vec![PatchOp::remove(
            "/claims/preferred_airports/1",
        )]));
        let expected: Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/okta/token-hook-response-remove-array-element.json"
        ))
        .expect("sample");
        assert_eq!(serde_json::to_value(&removal).expect("serialise"), expected);
    }

    #[test]
    fn claim_builders_escape_uri_names() {
        let cmd = add_id_token_claims([("http://example.com/claims/role", json!("admin"))]);
        assert_eq!(
            cmd.value[0]["path"],
            json!("/claims/http:~1~1example.com~1claims~1role")
        );
        assert_eq!(claim_path("a~b"), "/claims/a~0b");
        let cmd = add_access_token_claims([("tier", json!(3)), ("groups", json!(["a"]))]);
        assert_eq!(cmd.kind, ACCESS_PATCH);
        assert_eq!(cmd.value.as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn error_builder() {
        assert_eq!(
            serde_json::to_value(error("Human-readable summary of the error")).expect("json"),
            serde_json::from_str::<Value>(include_str!(
                "../../../tests/fixtures/okta/token-hook-response-error.json"
            ))
            .expect("sample")
        );
    }

    use super::super::check::check;
    use super::super::check::testing::{fails, one, token_request};
    use super::super::HookType;

    fn id_op(op: Value) -> InlineResponse {
        one(IDENTITY_PATCH, json!([op]))
    }

    fn access_op(op: Value) -> InlineResponse {
        one(ACCESS_PATCH, json!([op]))
    }

    #[test]
    fn token_value_must_be_an_array_of_ops() {
        let r = token_request();
        fails(
            HookType::Token,
            &one(IDENTITY_PATCH, json!({"op": "add"})),
            &r,
            &["commands[0]", "must be an array", "an object"],
        );
        fails(
            HookType::Token,
            &one(IDENTITY_PATCH, json!(["add"])),
            &r,
            &["value[0] must be an {op, path, value} object"],
        );
        fails(
            HookType::Token,
            &id_op(json!({"op": "move", "path": "/claims/a", "from": "/claims/b"})),
            &r,
            &["value[0].op is \"move\"", "add, replace, remove"],
        );
        fails(
            HookType::Token,
            &id_op(json!({"path": "/claims/a", "value": 1})),
            &r,
            &["value[0] has no op"],
        );
        fails(
            HookType::Token,
            &id_op(json!({"op": "add", "value": 1})),
            &r,
            &["value[0] has no path"],
        );
        fails(
            HookType::Token,
            &id_op(json!({"op": "add", "path": "/claims/a"})),
            &r,
            &["needs a value"],
        );
    }

    #[test]
    fn token_paths() {
        let r = token_request();
        fails(
            HookType::Token,
            &id_op(json!({"op": "add", "path": "/profile/a", "value": 1})),
            &r,
            &["/profile/a", "/claims/<name>"],
        );
        fails(
            HookType::Token,
            &id_op(json!({"op": "add", "path": "/claims/", "value": 1})),
            &r,
            &["empty segment"],
        );
        fails(
            HookType::Token,
            &id_op(json!({"op": "add", "path": "/claims/a/b/c", "value": 1})),
            &r,
            &["at most one level"],
        );
        fails(
            HookType::Token,
            &id_op(json!({"op": "replace", "path": "/claims/a/-", "value": 1})),
            &r,
            &["\"-\"", "only be used to add"],
        );
        fails(
            HookType::Token,
            &id_op(json!({"op": "add", "path": "/claims/http:~2x", "value": 1})),
            &r,
            &["~0", "~1"],
        );
        fails(
            HookType::Token,
            &id_op(json!({"op": "add", "path": "/token/lifetime", "value": 1})),
            &r,
            &["/token/lifetime"],
        );
        // Escaped URI claims and array appends are fine.
        let ok =
            id_op(json!({"op": "add", "path": "/claims/http:~1~1example.com~1role", "value": "x"}));
        check(HookType::Token, &ok, &r).expect("escaped claim name");
        let ok = id_op(json!({"op": "add", "path": "/claims/airports/-", "value": "lax"}));
        check(HookType::Token, &ok, &r).expect("append");
    }

    #[test]
    fn token_lifetime() {
        let r = token_request();
        let lifetime = |op: &str, value: Value| {
            id_op(json!({"op": op, "path": "/token/lifetime/expiration", "value": value}))
        };
        for ok in [300, 3600, 86_400] {
            check(HookType::Token, &lifetime("replace", json!(ok)), &r).expect("in range");
        }
        fails(
            HookType::Token,
            &lifetime("replace", json!(299)),
            &r,
            &["300 to 86400", "not 299"],
        );
        fails(
            HookType::Token,
            &lifetime("replace", json!(86_401)),
            &r,
            &["not 86401"],
        );
        fails(
            HookType::Token,
            &lifetime("replace", json!("3600")),
            &r,
            &["an integer"],
        );
        fails(
            HookType::Token,
            &lifetime("replace", json!(3600.5)),
            &r,
            &["an integer"],
        );
        fails(
            HookType::Token,
            &lifetime("add", json!(3600)),
            &r,
            &["only be replaced"],
        );
        fails(
            HookType::Token,
            &id_op(json!({"op": "remove", "path": "/token/lifetime/expiration"})),
            &r,
            &["only be replaced"],
        );
    }

    #[test]
    fn token_remove_takes_no_value() {
        let r = token_request();
        check(
            HookType::Token,
            &id_op(json!({"op": "remove", "path": "/claims/a"})),
            &r,
        )
        .expect("absent");
        check(
            HookType::Token,
            &id_op(json!({"op": "remove", "path": "/claims/a", "value": null})),
            &r,
        )
        .expect("null");
        fails(
            HookType::Token,
            &id_op(json!({"op": "remove", "path": "/claims/a", "value": "x"})),
            &r,
            &["remove takes no value"],
        );
    }

    /// Every row of Okta's table, in both tokens, with every op: refused exactly where
    /// the table reserves it, accepted where it does not.
    #[test]
    fn token_reserved_claims_follow_okta_s_table() {
        let r = token_request();
        let mut names: Vec<&str> = RESERVED_CLAIMS.iter().map(|(n, _)| *n).collect();
        names.extend(HOOKWARDEN_RESERVED);
        for claim in names {
            for (kind, patch) in [
                (TokenKind::Id, id_op as fn(Value) -> InlineResponse),
                (TokenKind::Access, access_op),
            ] {
                for op in [
                    json!({"op": "add", "path": claim_path(claim), "value": "x"}),
                    json!({"op": "replace", "path": claim_path(claim), "value": "x"}),
                    json!({"op": "remove", "path": claim_path(claim)}),
                ] {
                    let answer = patch(op);
                    if is_reserved(kind, claim) {
                        fails(
                            HookType::Token,
                            &answer,
                            &r,
                            &[&format!(
                                "\"{claim}\" is a reserved claim of {}",
                                kind.described()
                            )],
                        );
                    } else if let Err(e) = check(HookType::Token, &answer, &r) {
                        panic!("{claim} in {}: {e}", kind.described());
                    }
                }
            }
        }
        // Inside a reserved claim is still the reserved claim.
        fails(
            HookType::Token,
            &id_op(json!({"op": "remove", "path": "/claims/amr/0"})),
            &r,
            &["\"amr\" is a reserved claim"],
        );
        // Okta allows these where the old table refused them.
        for (patch, claim) in [
            (access_op as fn(Value) -> InlineResponse, "idp"),
            (access_op, "nonce"),
            (access_op, "at_hash"),
            (access_op, "c_hash"),
            (access_op, "aud"),
            (access_op, "sub"),
            (id_op, "uid"),
            (id_op, "scp"),
        ] {
            let op = json!({"op": "add", "path": claim_path(claim), "value": "x"});
            check(HookType::Token, &patch(op), &r).expect(claim);
        }
        // And refuses these, which the old table let through.
        fails(
            HookType::Token,
            &access_op(json!({"op": "add", "path": "/claims/groups", "value": ["a"]})),
            &r,
            &["\"groups\" is a reserved claim of an access token"],
        );
    }

    #[test]
    fn token_patch_needs_the_token_requested() {
        let mut only_access = token_request();
        only_access["data"]
            .as_object_mut()
            .expect("data")
            .remove("identity");
        let add = json!({"op": "add", "path": "/claims/a", "value": 1});
        fails(
            HookType::Token,
            &id_op(add.clone()),
            &only_access,
            &[
                "commands[0] (com.okta.identity.patch)",
                "no data.identity",
                "ID token was not requested",
            ],
        );
        check(HookType::Token, &access_op(add.clone()), &only_access)
            .expect("access token was requested");
        let mut only_id = token_request();
        only_id["data"]["access"] = Value::Null;
        fails(
            HookType::Token,
            &access_op(add),
            &only_id,
            &["no data.access"],
        );
    }
}
