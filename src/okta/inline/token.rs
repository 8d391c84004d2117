//! Token inline hook (`com.okta.oauth2.tokens.transform`): a custom authorization server
//! is about to mint tokens and lets us patch their claims and lifetimes.
//!
//! The request carries the tokens as they would be issued (`data.identity` for the ID
//! token, `data.access` for the access token; a token that was not requested is absent)
//! and read-only context. The answer is `com.okta.identity.patch` /
//! `com.okta.access.patch` commands, each a list of [`PatchOp`]s on `/claims/...` or
//! `/token/lifetime/expiration`. Okta skips the whole hook (the token is issued
//! unmodified) when any operation fails, and fails the whole token request when the
//! answer carries an `error`, so `inline_hooks::check` rejects bad patches before they
//! leave.

use super::{
    patch_value, pointer_segment, Command, ContextUser, InlineRequest, InlineResponse, Lifetime,
    PatchOp, RequestInfo, Session,
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

/// Claims Okta reserves in both tokens: patches that touch them fail (and with them the
/// whole hook). From Okta's token hook and OIDC references (ID token base claims, access
/// token reserved claims) plus the OIDC/JWT registered claims Okta mints itself.
pub const RESERVED_CLAIMS: &[&str] = &[
    "iss",
    "ver",
    "exp",
    "iat",
    "jti",
    "cid",
    "uid",
    "auth_time",
    "nbf",
    "amr",
    "idp",
    "nonce",
    "at_hash",
    "c_hash",
    "scp",
];

/// Reserved in ID tokens only: Okta lets an access token hook change `aud` and `sub`.
pub const RESERVED_ID_TOKEN_CLAIMS: &[&str] = &["sub", "aud"];

/// Whether `claim` (unescaped) is reserved in the token that `command` patches.
pub fn is_reserved_claim(command: &str, claim: &str) -> bool {
    RESERVED_CLAIMS.contains(&claim)
        || (command == IDENTITY_PATCH && RESERVED_ID_TOKEN_CLAIMS.contains(&claim))
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

    #[test]
    fn reserved_claims_depend_on_the_token() {
        assert!(is_reserved_claim(IDENTITY_PATCH, "sub"));
        assert!(is_reserved_claim(IDENTITY_PATCH, "aud"));
        assert!(!is_reserved_claim(ACCESS_PATCH, "sub"));
        assert!(!is_reserved_claim(ACCESS_PATCH, "aud"));
        for claim in [
            "iss", "ver", "exp", "iat", "jti", "cid", "uid", "scp", "nonce",
        ] {
            assert!(is_reserved_claim(ACCESS_PATCH, claim), "{claim}");
            assert!(is_reserved_claim(IDENTITY_PATCH, claim), "{claim}");
        }
        assert!(!is_reserved_claim(IDENTITY_PATCH, "preferred_username"));
    }
}
