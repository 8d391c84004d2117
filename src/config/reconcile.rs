//! `[reconcile]`: System Log reconciliation settings (see [`crate::reconcile`]).
//!
//! Every key has a default except the org, the credentials and the hooks, so that a
//! minimal section is three lines plus one `[[reconcile.hooks]]` per event hook.

use super::{Config, Problem, Secret};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Okta's `/api/v1/logs` returns at most this many events per page.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Polls Okta's System Log for events the event hooks never delivered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileConfig {
    /// The Okta org, e.g. `https://example.okta.com` (https only).
    #[serde(default)]
    pub org_url: Option<String>,
    /// An API token, sent as `Authorization: SSWS <token>`. Exactly one of this and `oauth`.
    #[serde(default)]
    pub api_token: Option<Secret>,
    /// OAuth service app (client credentials with `private_key_jwt`).
    #[serde(default)]
    pub oauth: Option<ReconcileOAuth>,
    /// An extra CA certificate (PEM) trusted for the org, next to the public roots
    /// (a TLS-inspecting proxy, a test server).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Whether the service polls on its own (`false`: only `hookwarden reconcile` runs passes).
    #[serde(default = "yes")]
    pub background: bool,
    /// Time between two passes of the background job.
    #[serde(with = "humantime_serde", default = "default_interval")]
    pub interval: Duration,
    /// Settle delay: the window polled ends this long before now, so events Okta's hook is
    /// still delivering (retries included) are not taken for missed ones.
    #[serde(with = "humantime_serde", default = "default_delay")]
    pub delay: Duration,
    /// Each pass starts this long before where the last one ended, for events the System
    /// Log indexes late. Safe: events already stored are not stored again.
    #[serde(with = "humantime_serde", default = "default_overlap")]
    pub overlap: Duration,
    /// Where the very first pass of a hook starts (no cursor yet): this long before now.
    #[serde(with = "humantime_serde", default = "default_lookback")]
    pub initial_lookback: Duration,
    /// `limit` of each request (1 to 1000).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Wait for the rate limit window to reset when `X-Rate-Limit-Remaining` is at or
    /// below this, leaving calls to other tools that share the org's limit.
    #[serde(default = "default_reserve")]
    pub rate_limit_reserve: u32,
    /// Longest single wait for a rate limit reset or a backoff.
    #[serde(with = "humantime_serde", default = "default_max_wait")]
    pub max_wait: Duration,
    /// Tries of one request after a 429, a 5xx or a network error, before the pass fails.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// First backoff after a 5xx or a network error; doubles per try up to `max_wait`.
    #[serde(with = "humantime_serde", default = "default_backoff")]
    pub backoff: Duration,
    /// Time limit of one HTTP request to Okta.
    #[serde(with = "humantime_serde", default = "default_timeout")]
    pub request_timeout: Duration,
    /// Which event types to poll for which event hook.
    #[serde(default)]
    pub hooks: Vec<ReconcileHook>,
}

/// One event hook to reconcile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileHook {
    /// The `name` of an `[[event_hooks]]` entry: recovered events go through its routing.
    pub hook: String,
    /// The exact event types the hook subscribes to in Okta (no globs: the System Log
    /// filter compares types exactly).
    pub event_types: Vec<String>,
}

/// `[reconcile.oauth]`: an Okta API service app with the `okta.logs.read` scope granted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileOAuth {
    pub client_id: String,
    /// The app's private key, PEM (RSA, PKCS#8 or PKCS#1); signs the client assertion (RS256).
    pub private_key: Secret,
    /// `kid` of the key as registered with the app (Okta needs it when the app has several keys).
    #[serde(default)]
    pub key_id: Option<String>,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
}

fn yes() -> bool {
    true
}
fn default_interval() -> Duration {
    Duration::from_secs(300)
}
fn default_delay() -> Duration {
    Duration::from_secs(600)
}
fn default_overlap() -> Duration {
    Duration::from_secs(300)
}
fn default_lookback() -> Duration {
    Duration::from_secs(3600)
}
fn default_page_size() -> u32 {
    MAX_PAGE_SIZE
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
fn default_scopes() -> Vec<String> {
    vec!["okta.logs.read".to_owned()]
}

impl ReconcileConfig {
    /// The org URL without a trailing slash (only valid configs reach the reconciler).
    pub fn org(&self) -> String {
        self.org_url
            .as_deref()
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_owned()
    }

    /// Problems of this section, with their keys (`reconcile.…`).
    pub fn problems(&self, config: &Config) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut p = |key: &str, message: String| {
            out.push(Problem {
                key: key.to_owned(),
                message,
            })
        };
        match self.org_url.as_deref().map(url::Url::parse) {
            None => p(
                "reconcile.org_url",
                "the Okta org is needed, e.g. org_url = \"https://example.okta.com\"".into(),
            ),
            Some(Ok(u))
                if u.scheme() == "https"
                    && u.host().is_some()
                    && u.query().is_none()
                    && matches!(u.path(), "" | "/") => {}
            Some(_) => p(
                "reconcile.org_url",
                "must be the org's https:// URL with no path, e.g. https://example.okta.com (for a test server with its own CA, set reconcile.ca_file)".into(),
            ),
        }
        match (&self.api_token, &self.oauth) {
            (Some(_), Some(_)) | (None, None) => p(
                "reconcile.api_token",
                "set exactly one of reconcile.api_token (an SSWS API token) and [reconcile.oauth] (a service app)".into(),
            ),
            (Some(t), None) => {
                if let Err(e) = &t.value {
                    p("reconcile.api_token", e.to_string());
                }
            }
            (None, Some(o)) => {
                if o.client_id.is_empty() {
                    p(
                        "reconcile.oauth.client_id",
                        "the service app's client id".into(),
                    );
                }
                match &o.private_key.value {
                    Err(e) => p("reconcile.oauth.private_key", e.to_string()),
                    Ok(pem) => {
                        if jsonwebtoken::EncodingKey::from_rsa_pem(super::expose(pem).as_bytes())
                            .is_err()
                        {
                            p(
                                "reconcile.oauth.private_key",
                                "not an RSA private key in PEM (PKCS#8 or PKCS#1)".into(),
                            );
                        }
                    }
                }
                if o.scopes.is_empty() {
                    p(
                        "reconcile.oauth.scopes",
                        "at least okta.logs.read".into(),
                    );
                }
            }
        }
        if let Some(ca) = &self.ca_file {
            match std::fs::read(ca) {
                Err(e) => p(
                    "reconcile.ca_file",
                    format!("cannot read {}: {e}", ca.display()),
                ),
                Ok(pem) => {
                    if reqwest::Certificate::from_pem(&pem).is_err()
                        || !String::from_utf8_lossy(&pem).contains("BEGIN CERTIFICATE")
                    {
                        p(
                            "reconcile.ca_file",
                            format!("{} holds no PEM certificate", ca.display()),
                        );
                    }
                }
            }
        }
        if self.interval.is_zero() {
            p("reconcile.interval", "must be longer than zero".into());
        }
        if self.request_timeout.is_zero() {
            p(
                "reconcile.request_timeout",
                "must be longer than zero".into(),
            );
        }
        if self.max_wait.is_zero() {
            p("reconcile.max_wait", "must be longer than zero".into());
        }
        if !(1..=MAX_PAGE_SIZE).contains(&self.page_size) {
            p(
                "reconcile.page_size",
                format!("1 to {MAX_PAGE_SIZE} (Okta's largest page)"),
            );
        }
        if self.hooks.is_empty() {
            p(
                "reconcile.hooks",
                "name at least one event hook: [[reconcile.hooks]] hook = \"...\" event_types = [\"...\"]".into(),
            );
        }
        let mut seen = std::collections::HashSet::new();
        for (i, h) in self.hooks.iter().enumerate() {
            let at = format!("reconcile.hooks[{i}]");
            if !config.event_hooks.iter().any(|e| e.name == h.hook) {
                p(
                    &format!("{at}.hook"),
                    format!("'{}' is not the name of an [[event_hooks]] entry", h.hook),
                );
            } else if !seen.insert(h.hook.as_str()) {
                p(
                    &format!("{at}.hook"),
                    format!("'{}' is listed twice", h.hook),
                );
            }
            if h.event_types.is_empty() {
                p(
                    &format!("{at}.event_types"),
                    "list the event types the hook subscribes to in Okta".into(),
                );
            }
            for (k, t) in h.event_types.iter().enumerate() {
                if !valid_event_type(t) {
                    p(
                        &format!("{at}.event_types[{k}]"),
                        format!("'{t}' is not an exact event type such as user.session.start (the System Log filter has no globs: list each type)"),
                    );
                }
            }
        }
        out
    }
}

/// Okta event types are dotted lower-case names with digits and `_`; anything else
/// (a glob, a quote that would break the filter expression) is refused.
fn valid_event_type(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 200
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOOK: &str = r#"
        [[event_hooks]]
        name = "okta"
        path = "/hooks/okta"
        auth = { type = "basic", users = [{ username = "okta", password = "correct horse battery" }] }
        sinks = [{ name = "out", type = "stdout" }]
    "#;

    fn keys(toml: &str) -> Vec<String> {
        match Config::from_toml_str(&format!("{HOOK}\n{toml}")) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.into_iter().map(|p| p.key).collect(),
        }
    }

    #[test]
    fn a_minimal_section_loads_with_defaults() {
        let c = Config::from_toml_str(&format!(
            "{HOOK}\n[reconcile]\norg_url = \"https://example.okta.com/\"\napi_token = \"00abc\"\n[[reconcile.hooks]]\nhook = \"okta\"\nevent_types = [\"user.session.start\"]\n"
        ))
        .expect("valid");
        let r = c.reconcile.expect("section");
        assert_eq!(r.org(), "https://example.okta.com");
        assert_eq!(r.page_size, 1000);
        assert!(r.background);
        assert!(!format!("{r:?}").contains("00abc"));
    }

    #[test]
    fn problems_name_their_keys() {
        let k =
            keys("[reconcile]\n[[reconcile.hooks]]\nhook = \"nope\"\nevent_types = [\"user.*\"]\n");
        for want in [
            "reconcile.org_url",
            "reconcile.api_token",
            "reconcile.hooks[0].hook",
            "reconcile.hooks[0].event_types[0]",
        ] {
            assert!(k.iter().any(|x| x == want), "{want} missing in {k:?}");
        }
        let k = keys("[reconcile]\norg_url = \"http://example.okta.com\"\napi_token = \"x\"\npage_size = 0\n[reconcile.oauth]\nclient_id = \"c\"\nprivate_key = \"not a key\"\n");
        for want in [
            "reconcile.org_url",
            "reconcile.api_token",
            "reconcile.page_size",
            "reconcile.hooks",
        ] {
            assert!(k.iter().any(|x| x == want), "{want} missing in {k:?}");
        }
    }
}
