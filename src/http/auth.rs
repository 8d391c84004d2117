//! Shared-secret authentication of Okta's calls.
//!
//! Okta authenticates itself with a static header (contract §1.2): a header name it
//! was given and a value sent verbatim, usually `Authorization: Basic base64(user:pw)`.
//! There is no signature to verify, so the whole security of a hook rests on this
//! comparison. Three properties matter:
//!
//! * **The whole value is compared.** The `Basic ` prefix is part of the secret, a
//!   prefix or an extension of a valid value is not valid.
//! * **Constant time, lengths included.** Only SHA-256 digests of the expected values
//!   are kept; the presented value is hashed and its digest compared with every
//!   credential using [`subtle`], without stopping at the first match. Hashing first
//!   means the comparison always works on 32 bytes, so neither the content nor the
//!   length of a secret shows in the timing. (The time to hash the presented value
//!   depends only on what the caller sent, which the caller knows already.)
//! * **Several credentials at once**, so that a secret can be rotated in Okta and
//!   here without a window in which deliveries fail.
//!
//! Keeping digests rather than the secrets also means the plaintext does not stay in
//! this struct's memory for the life of the process.

use crate::config::{expose, AuthConfig};
use axum::http::{HeaderMap, HeaderName};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

/// SHA-256 digest of one accepted header value.
type Credential = [u8; 32];

/// Checks the auth header of a request against every configured credential.
///
/// `Debug` shows the header name and how many credentials there are, never a secret
/// nor a digest of one.
pub struct Authenticator {
    /// `None` only if the configured name is not a valid header name, which config
    /// validation refuses before the server starts; kept as a fail-closed fallback
    /// because this constructor cannot return an error.
    header: Option<HeaderName>,
    credentials: Vec<Credential>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("header", &self.header.as_ref().map(HeaderName::as_str))
            .field("credentials", &self.credentials.len())
            .finish()
    }
}

fn digest(value: &[u8]) -> Credential {
    Sha256::digest(value).into()
}

impl Authenticator {
    /// Builds the digests of every accepted header value.
    ///
    /// Credentials whose secret could not be resolved are left out (config validation
    /// reports them before the server starts); an authenticator with no credentials
    /// refuses everything.
    pub fn from_config(config: &AuthConfig) -> Authenticator {
        // Bearer tokens are checked by `http::oauth`; as a shared secret, nothing matches.
        let (name, values) = config
            .header_values()
            .unwrap_or(("authorization", Vec::new()));
        let credentials: Vec<Credential> = values
            .iter()
            .map(|v| digest(expose(v).as_bytes()))
            .collect();
        // `HeaderName` lowercases, and `HeaderMap` lookups are by lowercase name: this
        // is what makes the match case-insensitive.
        let header = HeaderName::from_bytes(name.as_bytes()).ok();
        if header.is_none() {
            tracing::error!(
                header = name,
                "invalid auth header name: every request to this hook will be refused"
            );
        }
        if credentials.is_empty() {
            tracing::error!("no usable credential: every request to this hook will be refused");
        }
        Authenticator {
            header,
            credentials,
        }
    }

    /// True when the header holds one of the credentials. Constant time in the secrets' contents and lengths.
    ///
    /// Refused: no such header, the header sent more than once (which value would a
    /// proxy in front of us have used?), an empty value, a value that is not UTF-8.
    /// The digest comparison runs in every case, so a refusal for one of these reasons
    /// costs about as much as a wrong secret.
    pub fn check(&self, headers: &HeaderMap) -> bool {
        let (first, single) = match &self.header {
            Some(name) => {
                let mut values = headers.get_all(name).iter();
                let first = values.next();
                (first, first.is_some() && values.next().is_none())
            }
            None => (None, false),
        };
        let presented: &[u8] = first.map(|v| v.as_bytes()).unwrap_or_default();
        let well_formed = single && !presented.is_empty() && std::str::from_utf8(presented).is_ok();

        let presented = digest(presented);
        let mut matched = Choice::from(0);
        for credential in &self.credentials {
            matched |= credential.ct_eq(&presented);
        }
        (matched & Choice::from(u8::from(well_formed))).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BasicUser, Secret};
    use axum::http::HeaderValue;

    fn basic(users: &[(&str, &str)]) -> Authenticator {
        Authenticator::from_config(&AuthConfig::Basic {
            header: "Authorization".into(),
            users: users
                .iter()
                .map(|(u, p)| BasicUser {
                    username: (*u).to_owned(),
                    password: Secret::literal(*p),
                })
                .collect(),
        })
    }

    fn header_auth(name: &str, secrets: &[&str]) -> Authenticator {
        Authenticator::from_config(&AuthConfig::Header {
            header: name.into(),
            secrets: secrets.iter().map(|s| Secret::literal(*s)).collect(),
        })
    }

    fn with(name: &str, values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        let name = HeaderName::from_bytes(name.as_bytes()).expect("name");
        for v in values {
            h.append(name.clone(), HeaderValue::from_bytes(v).expect("value"));
        }
        h
    }

    fn basic_header(user: &str, pw: &str) -> String {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
        )
    }

    #[test]
    fn basic_ok_matches_the_contract_example() {
        let a = basic(&[("admin", "supersecret")]);
        // The exact value from Okta's documentation (contract §1.2).
        assert!(a.check(&with("Authorization", &[b"Basic YWRtaW46c3VwZXJzZWNyZXQ="])));
    }

    #[test]
    fn wrong_password_is_refused() {
        let a = basic(&[("okta", "correct horse battery")]);
        assert!(!a.check(&with(
            "Authorization",
            &[basic_header("okta", "correct horse batterz").as_bytes()]
        )));
    }

    #[test]
    fn other_user_is_refused() {
        let a = basic(&[("okta", "correct horse battery")]);
        assert!(!a.check(&with(
            "Authorization",
            &[basic_header("admin", "correct horse battery").as_bytes()]
        )));
    }

    #[test]
    fn rotation_accepts_every_configured_credential() {
        let old = "old-secret-0123456789";
        let new = "new-secret-0123456789";
        let removed = "gone-secret-0123456789";
        let a = header_auth("X-Okta-Secret", &[old, new]);
        assert!(a.check(&with("X-Okta-Secret", &[old.as_bytes()])));
        assert!(a.check(&with("X-Okta-Secret", &[new.as_bytes()])));
        assert!(!a.check(&with("X-Okta-Secret", &[removed.as_bytes()])));

        let b = basic(&[("okta", "first password"), ("okta", "second password")]);
        assert!(b.check(&with(
            "Authorization",
            &[basic_header("okta", "first password").as_bytes()]
        )));
        assert!(b.check(&with(
            "Authorization",
            &[basic_header("okta", "second password").as_bytes()]
        )));
        // After rotation the old one is removed from the config and refused.
        let c = basic(&[("okta", "second password")]);
        assert!(!c.check(&with(
            "Authorization",
            &[basic_header("okta", "first password").as_bytes()]
        )));
    }

    #[test]
    fn header_name_is_case_insensitive() {
        let secret = "0123456789abcdef-secret";
        let a = header_auth("X-Okta-Secret", &[secret]);
        for name in ["x-okta-secret", "X-OKTA-SECRET", "X-Okta-Secret"] {
            assert!(a.check(&with(name, &[secret.as_bytes()])), "{name}");
        }
        let b = header_auth("x-okta-secret", &[secret]);
        assert!(b.check(&with("X-OKTA-SECRET", &[secret.as_bytes()])));
        // Another header with the right value does not count.
        assert!(!b.check(&with("X-Other", &[secret.as_bytes()])));
    }

    #[test]
    fn the_basic_prefix_is_part_of_the_value() {
        let a = basic(&[("admin", "supersecret")]);
        assert!(!a.check(&with("Authorization", &[b"YWRtaW46c3VwZXJzZWNyZXQ="])));
        assert!(!a.check(&with("Authorization", &[b"basic YWRtaW46c3VwZXJzZWNyZXQ="])));
        assert!(!a.check(&with(
            "Authorization",
            &[b"Bearer YWRtaW46c3VwZXJzZWNyZXQ="]
        )));
        // Unpadded base64 is another value, not the one Okta sends.
        assert!(!a.check(&with("Authorization", &[b"Basic YWRtaW46c3VwZXJzZWNyZXQ"])));
    }

    #[test]
    fn a_prefix_of_a_secret_is_refused() {
        let secret = "0123456789abcdef-secret";
        let a = header_auth("X-Okta-Secret", &[secret]);
        for n in [1, 8, secret.len() - 1] {
            assert!(
                !a.check(&with("X-Okta-Secret", &[&secret.as_bytes()[..n]])),
                "{n}"
            );
        }
        let b = basic(&[("admin", "supersecret")]);
        assert!(!b.check(&with("Authorization", &[b"Basic "])));
        assert!(!b.check(&with("Authorization", &[b"Basic YWRtaW46"])));
    }

    #[test]
    fn a_longer_value_is_refused() {
        let secret = "0123456789abcdef-secret";
        let a = header_auth("X-Okta-Secret", &[secret]);
        assert!(!a.check(&with("X-Okta-Secret", &[format!("{secret}x").as_bytes()])));
        assert!(!a.check(&with(
            "X-Okta-Secret",
            &[format!("{secret} {secret}").as_bytes()]
        )));
        let b = basic(&[("admin", "supersecret")]);
        assert!(!b.check(&with(
            "Authorization",
            &[b"Basic YWRtaW46c3VwZXJzZWNyZXQ=="]
        )));
    }

    #[test]
    fn missing_and_empty_values_are_refused() {
        let a = basic(&[("admin", "supersecret")]);
        assert!(!a.check(&HeaderMap::new()));
        assert!(!a.check(&with("Authorization", &[b""])));
    }

    #[test]
    fn duplicate_header_lines_are_refused() {
        let good = b"Basic YWRtaW46c3VwZXJzZWNyZXQ=";
        let a = basic(&[("admin", "supersecret")]);
        assert!(!a.check(&with("Authorization", &[good, good])));
        assert!(!a.check(&with("Authorization", &[good, b"Basic x"])));
        assert!(!a.check(&with("Authorization", &[b"Basic x", good])));
    }

    #[test]
    fn non_utf8_values_are_refused() {
        let a = header_auth("X-Okta-Secret", &["0123456789abcdef-secret"]);
        assert!(!a.check(&with("X-Okta-Secret", &[b"0123456789abcdef-secre\xff"])));
    }

    #[test]
    fn without_usable_credentials_everything_is_refused() {
        let a = header_auth("X-Okta-Secret", &[]);
        assert!(!a.check(&with("X-Okta-Secret", &[b"anything"])));
        assert!(!a.check(&with("X-Okta-Secret", &[b""])));
        // An invalid header name (refused by config validation) fails closed.
        let b = header_auth("bad header", &["0123456789abcdef-secret"]);
        assert!(!b.check(&with("X-Okta-Secret", &[b"0123456789abcdef-secret"])));
    }

    #[test]
    fn debug_shows_no_secret_material() {
        let secret = "0123456789abcdef-secret";
        let a = header_auth("X-Okta-Secret", &[secret]);
        let shown = format!("{a:?}");
        assert!(!shown.contains(secret), "{shown}");
        assert!(
            shown.contains("x-okta-secret") && shown.contains("credentials: 1"),
            "{shown}"
        );
        let hex: String = digest(secret.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(!shown.contains(&hex[..8]), "{shown}");
        let b = basic(&[("admin", "supersecret")]);
        let shown = format!("{b:?}");
        assert!(
            !shown.contains("supersecret") && !shown.contains("YWRtaW46"),
            "{shown}"
        );
    }
}
