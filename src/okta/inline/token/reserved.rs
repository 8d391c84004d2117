//! The claims a token hook may not touch: Okta's table, once, for every checker and handler.
//!
//! Source: Okta's token inline hook reference, section "Reserved claims for Token Hooks"
//! (developer.okta.com/docs/reference/token-hook/, as published in okta-developer-docs
//! in 2026). Okta fails the whole patch when one operation touches a reserved claim, and
//! issues the token unchanged; so a patch of one never leaves hookwarden (the checker
//! refuses it) and a rule naming one never starts (the rules handler refuses it).
//!
//! Two decisions of ours, beside Okta's table:
//! - `cnf` is reserved in both tokens "when DPoP is enabled". A hook cannot see whether it
//!   is, so it is reserved in both tokens always.
//! - `nbf` is not in Okta's table. hookwarden reserves it in both tokens
//!   ([`HOOKWARDEN_RESERVED`]): it is the JWT validity claim (RFC 7519 §4.1.5) that the
//!   issuer sets with `iat` and `exp`, Okta documents no behaviour for a patched one, and a
//!   wrong value makes every token it touches unusable. A token's validity is changed
//!   through [`super::LIFETIME_PATH`].

/// The tokens a claim is reserved in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservedIn {
    /// Both the ID token and the access token.
    Both,
    /// The access token only (the ID token may carry it).
    AccessToken,
    /// The ID token only (the access token may carry it; Okta notes this for `aud` and
    /// `sub` in particular).
    IdToken,
}

use ReservedIn::{AccessToken, Both, IdToken};

/// Okta's table "Reserved claims for Token Hooks", row for row.
#[rustfmt::skip]
pub const RESERVED_CLAIMS: &[(&str, ReservedIn)] = &[
    ("acr", Both), ("active", IdToken), ("aid", IdToken), ("amr", IdToken),
    ("app_id", IdToken), ("app_type", IdToken), ("as_uri", AccessToken),
    ("at_hash", IdToken), ("aud", IdToken), ("auth_time", Both),
    ("authorization_details", AccessToken), ("c_hash", IdToken), ("cid", Both),
    ("client_id", IdToken), ("client_ip", IdToken), ("client_req_id", IdToken),
    ("client_type", IdToken), ("client_user_agent", IdToken), ("cnf", Both),
    ("device_compliance", IdToken), ("device_id", IdToken), ("device_known", IdToken),
    ("device_managed", IdToken), ("device_name", IdToken), ("device_trust", IdToken),
    ("did", IdToken), ("dst", IdToken), ("exp", Both), ("group", IdToken),
    ("groups", Both), ("hotk", IdToken), ("iat", Both), ("idp", IdToken),
    ("idp_iss", IdToken), ("iss", Both), ("jti", Both), ("mac_key", IdToken),
    ("may_act", IdToken), ("nonce", IdToken), ("oid", IdToken),
    ("okta_emailVerified", IdToken), ("okta_lastUpdated", IdToken), ("orig", IdToken),
    ("permissions", IdToken), ("purpose", IdToken), ("pwd_exp_days", IdToken),
    ("pwd_exp_time", IdToken), ("rid", IdToken), ("role", IdToken), ("rpt", AccessToken),
    ("rsi", AccessToken), ("scope", IdToken), ("scopes", IdToken), ("scp", AccessToken),
    ("sid", Both), ("sub", IdToken), ("term", IdToken), ("token_type", Both),
    ("uid", AccessToken), ("user_ip", IdToken), ("username", AccessToken),
    ("ver", Both),
];

/// Reserved in both tokens by hookwarden, though not in Okta's table (see the module doc).
pub const HOOKWARDEN_RESERVED: &[&str] = &["nbf"];

/// Which tokens `claim` (unescaped) is reserved in, if any.
pub fn reserved_in(claim: &str) -> Option<ReservedIn> {
    if HOOKWARDEN_RESERVED.contains(&claim) {
        return Some(Both);
    }
    RESERVED_CLAIMS
        .iter()
        .find(|(name, _)| *name == claim)
        .map(|(_, tokens)| *tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_okta_s_rows_once_each() {
        let mut names: Vec<&str> = RESERVED_CLAIMS.iter().map(|(n, _)| *n).collect();
        let rows = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), rows, "a claim is listed twice");
        // 12 in both tokens, 7 in access tokens only, 43 in ID tokens only.
        let count = |t: ReservedIn| RESERVED_CLAIMS.iter().filter(|(_, x)| *x == t).count();
        assert_eq!(
            (count(Both), count(AccessToken), count(IdToken)),
            (12, 7, 43)
        );
    }

    #[test]
    fn aud_and_sub_are_free_in_access_tokens_only() {
        assert_eq!(reserved_in("aud"), Some(IdToken));
        assert_eq!(reserved_in("sub"), Some(IdToken));
        assert_eq!(reserved_in("nbf"), Some(Both));
        assert_eq!(reserved_in("preferred_username"), None);
    }
}
