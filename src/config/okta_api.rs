//! `[okta]`: the org's Management API, as System Log reconciliation ([`crate::reconcile`])
//! and `hookwarden okta` ([`crate::registration`]) both call it: the org, one credential,
//! and the outbound policy (extra CA, rate limit reserve, retries, timeouts).
//!
//! One section for both, so that the credential and the policy have one home: an operator
//! rotating the API token changes one key, and both features honour the same reserve of
//! the org's rate limit.

use super::{Problem, Secret};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Keys that lived in `[reconcile]` before `[okta]` existed; a file that still sets them
/// gets a problem that says where they went, not "unknown key".
pub const MOVED_FROM_RECONCILE: [&str; 9] = [
    "org_url",
    "api_token",
    "oauth",
    "ca_file",
    "rate_limit_reserve",
    "max_wait",
    "max_retries",
    "backoff",
    "request_timeout",
];

/// How hookwarden calls the org's Management API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OktaApiConfig {
    /// The Okta org, e.g. `https://example.okta.com` (https only, no path).
    #[serde(default)]
    pub org_url: Option<String>,
    /// An API token, sent as `Authorization: SSWS <token>`. Exactly one of this and `oauth`.
    #[serde(default)]
    pub api_token: Option<Secret>,
    /// OAuth service app (client credentials with `private_key_jwt`).
    #[serde(default)]
    pub oauth: Option<OktaOAuth>,
    /// An extra CA certificate (PEM) trusted for the org, next to the public roots
    /// (a TLS-inspecting proxy, a test server).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Where Okta reaches this service, e.g. `https://hooks.example.com` (the load
    /// balancer's address, not `server.listen`; a path prefix is allowed):
    /// `hookwarden okta` registers each hook at this URL plus the hook's `path`. Needed by
    /// `hookwarden okta` only.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Wait for the rate limit window to reset when `X-Rate-Limit-Remaining` is at or
    /// below this, leaving calls to other tools that share the org's limit.
    #[serde(default = "default_reserve")]
    pub rate_limit_reserve: u32,
    /// Longest single wait for a rate limit reset or a backoff.
    #[serde(with = "humantime_serde", default = "default_max_wait")]
    pub max_wait: Duration,
    /// Tries of one request after a 429, a 5xx or a network error, before giving up.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// First backoff after a 5xx or a network error; doubles per try up to `max_wait`.
    #[serde(with = "humantime_serde", default = "default_backoff")]
    pub backoff: Duration,
    /// Time limit of one HTTP request to Okta.
    #[serde(with = "humantime_serde", default = "default_timeout")]
    pub request_timeout: Duration,
}

/// `[okta.oauth]`: an Okta API service app, granted the scopes the features in use need.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OktaOAuth {
    pub client_id: String,
    /// The app's private key, PEM (RSA, PKCS#8 or PKCS#1); signs the client assertion (RS256).
    pub private_key: Secret,
    /// `kid` of the key as registered with the app (Okta needs it when the app has several keys).
    #[serde(default)]
    pub key_id: Option<String>,
    /// Scopes asked for. Empty (the default): each feature asks for what it needs
    /// (`okta.logs.read` for reconciliation; `okta.eventHooks.*` and `okta.inlineHooks.*`
    /// for `hookwarden okta`).
    #[serde(default)]
    pub scopes: Vec<String>,
}

fn default_reserve() -> u32 {
    5
}
fn default_max_wait() -> Duration {
    Duration::from_secs(60)
}
fn default_max_retries() -> u32 {
    5
}
fn default_backoff() -> Duration {
    Duration::from_secs(1)
}
fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

/// Whether `text` is an `https://` URL with a host and nothing after it but `/`.
fn is_origin_url(text: &str) -> bool {
    matches!(url::Url::parse(text), Ok(u) if u.scheme() == "https"
        && u.host().is_some()
        && u.query().is_none()
        && u.fragment().is_none()
        && matches!(u.path(), "" | "/"))
}

impl OktaApiConfig {
    /// The org URL without a trailing slash (only valid configs reach a client).
    pub fn org(&self) -> String {
        self.org_url
            .as_deref()
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_owned()
    }

    /// `public_url` without a trailing slash, when set.
    pub fn public_base(&self) -> Option<&str> {
        self.public_url.as_deref().map(|u| u.trim_end_matches('/'))
    }

    /// Problems of this section, with their keys (`okta.…`).
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut p = |key: &str, message: String| {
            out.push(Problem {
                key: key.to_owned(),
                message,
            })
        };
        match self.org_url.as_deref() {
            None => p(
                "okta.org_url",
                "the Okta org is needed, e.g. org_url = \"https://example.okta.com\"".into(),
            ),
            Some(u) if is_origin_url(u) => {}
            Some(_) => p(
                "okta.org_url",
                "must be the org's https:// URL with no path, e.g. https://example.okta.com (for a test server with its own CA, set okta.ca_file)".into(),
            ),
        }
        if let Some(u) = self.public_url.as_deref() {
            // A path is allowed: a load balancer may route a prefix to hookwarden.
            let fine = matches!(url::Url::parse(u), Ok(u) if u.scheme() == "https"
                && u.host().is_some()
                && u.query().is_none()
                && u.fragment().is_none());
            if !fine {
                p(
                    "okta.public_url",
                    "must be the https:// URL where Okta reaches this service, e.g. https://hooks.example.com (Okta calls https only; no query)".into(),
                );
            }
        }
        match (&self.api_token, &self.oauth) {
            (Some(_), Some(_)) | (None, None) => p(
                "okta.api_token",
                "set exactly one of okta.api_token (an SSWS API token) and [okta.oauth] (a service app)".into(),
            ),
            // A credential that cannot be read is reported where secrets are read.
            (Some(_), None) => {}
            (None, Some(o)) => {
                if o.client_id.is_empty() {
                    p("okta.oauth.client_id", "the service app's client id".into());
                }
                if let Some(pem) = o.private_key.value() {
                    if jsonwebtoken::EncodingKey::from_rsa_pem(super::expose(pem).as_bytes())
                        .is_err()
                    {
                        p(
                            "okta.oauth.private_key",
                            "not an RSA private key in PEM (PKCS#8 or PKCS#1)".into(),
                        );
                    }
                }
            }
        }
        if let Some(ca) = &self.ca_file {
            match std::fs::read(ca) {
                Err(e) => p("okta.ca_file", format!("cannot read {}: {e}", ca.display())),
                Ok(pem) => {
                    if reqwest::Certificate::from_pem(&pem).is_err()
                        || !String::from_utf8_lossy(&pem).contains("BEGIN CERTIFICATE")
                    {
                        p(
                            "okta.ca_file",
                            format!("{} holds no PEM certificate", ca.display()),
                        );
                    }
                }
            }
        }
        if self.request_timeout.is_zero() {
            p("okta.request_timeout", "must be longer than zero".into());
        }
        if self.max_wait.is_zero() {
            p("okta.max_wait", "must be longer than zero".into());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn keys(toml: &str) -> Vec<String> {
        match Config::from_toml_str(toml) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.into_iter().map(|p| p.key).collect(),
        }
    }

    #[test]
    fn a_minimal_section_loads_with_defaults_and_hides_the_token() {
        let c = Config::from_toml_str(
            "[okta]\norg_url = \"https://example.okta.com/\"\napi_token = \"00abc\"\npublic_url = \"https://hooks.example.com/\"\n",
        )
        .expect("valid");
        let o = c.okta.expect("section");
        assert_eq!(o.org(), "https://example.okta.com");
        assert_eq!(o.public_base(), Some("https://hooks.example.com"));
        assert_eq!(o.max_retries, 5);
        assert!(!format!("{o:?}").contains("00abc"));
    }

    #[test]
    fn problems_name_their_keys() {
        let k = keys("[okta]\norg_url = \"http://example.okta.com/x\"\npublic_url = \"http://hooks.example.com\"\nmax_wait = \"0s\"\n");
        let prefix = keys("[okta]\norg_url = \"https://example.okta.com\"\napi_token = \"x\"\npublic_url = \"https://gw.example.com/hookwarden/\"\n");
        assert!(prefix.is_empty(), "a path prefix is fine: {prefix:?}");
        for want in [
            "okta.org_url",
            "okta.public_url",
            "okta.api_token",
            "okta.max_wait",
        ] {
            assert!(k.iter().any(|x| x == want), "{want} missing in {k:?}");
        }
        let k = keys("[okta]\norg_url = \"https://example.okta.com\"\n[okta.oauth]\nclient_id = \"\"\nprivate_key = \"not a key\"\n");
        for want in ["okta.oauth.client_id", "okta.oauth.private_key"] {
            assert!(k.iter().any(|x| x == want), "{want} missing in {k:?}");
        }
    }
}
