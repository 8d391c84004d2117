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

use super::shapes::{
    check_segment, nothing_beside_error, op_and_path, patch_ops, tidy_patch_ops, unescape, At,
    CheckError,
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

/// Checks what concerns the whole answer: no command beside an `error` (Okta fails the
/// token request on an error and applies none, so an answer with both says two things).
pub(super) fn check_answer(answer: &InlineResponse) -> Result<(), CheckError> {
    nothing_beside_error(answer, "fails the token request")
}

/// Whether the answer refuses: any `error` fails the whole token request.
pub fn is_refusal(answer: &InlineResponse) -> bool {
    answer.error.is_some()
}

/// The token hook's refusal: the `error` alone. Okta fails the token request with OAuth
/// `server_error` and the summary as `error_description`; the error wins over any
/// command, so none is sent beside it.
pub fn refusal(error: Option<InlineError>, _answer: &InlineResponse) -> InlineResponse {
    InlineResponse::error_alone(error.unwrap_or_default())
}

/// Drops what Okta does not read from each operation (anything but op, path, value).
pub(super) fn tidy(command: &mut Command) -> Vec<String> {
    tidy_patch_ops(command)
}

#[cfg(test)]
mod tests;
