//! `[reconcile]`: System Log reconciliation settings (see [`crate::reconcile`]).
//!
//! Every key has a default except the hooks, so that a minimal section is one
//! `[[reconcile.hooks]]` per event hook, next to an `[okta]` section.

use super::{Config, Problem};
use crate::okta::event_hook::is_exact_event_type;
use serde::Deserialize;
use std::time::Duration;

/// Okta's `/api/v1/logs` returns at most this many events per page.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Polls Okta's System Log for events the event hooks never delivered. The org, the
/// credential and the outbound policy are `[okta]`'s ([`super::OktaApiConfig`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileConfig {
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
    /// Which event hooks to reconcile.
    #[serde(default)]
    pub hooks: Vec<ReconcileHook>,
}

/// One event hook to reconcile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileHook {
    /// The `name` of an `[[event_hooks]]` entry: recovered events go through its routing.
    pub hook: String,
    /// The event types to poll for. Default: the hook's own `event_types` (what it
    /// subscribes to in Okta). Exact types: the System Log filter has no globs.
    #[serde(default)]
    pub event_types: Vec<String>,
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

impl ReconcileConfig {
    /// Problems of this section, with their keys (`reconcile.…`).
    pub fn problems(&self, config: &Config) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut p = |key: &str, message: String| {
            out.push(Problem {
                key: key.to_owned(),
                message,
            })
        };
        if config.okta.is_none() {
            p(
                "okta",
                "reconciliation calls the org's System Log API: add an [okta] section with org_url and api_token (or [okta.oauth]); see config/default.toml".into(),
            );
        }
        if self.interval.is_zero() {
            p("reconcile.interval", "must be longer than zero".into());
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
            match config.event_hooks.iter().find(|e| e.name == h.hook) {
                None => p(
                    &format!("{at}.hook"),
                    format!("'{}' is not the name of an [[event_hooks]] entry", h.hook),
                ),
                Some(_) if !seen.insert(h.hook.as_str()) => p(
                    &format!("{at}.hook"),
                    format!("'{}' is listed twice", h.hook),
                ),
                Some(e) if h.event_types.is_empty() && e.event_types.is_empty() => p(
                    &format!("{at}.event_types"),
                    format!("list the event types to poll for, or set event_types on the event hook '{}' (what it subscribes to in Okta)", h.hook),
                ),
                Some(_) => {}
            }
            for (k, t) in h.event_types.iter().enumerate() {
                if !is_exact_event_type(t) {
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
    fn a_minimal_section_loads_with_defaults_and_the_hooks_types() {
        let c = Config::from_toml_str(&format!(
            "{HOOK}\nevent_types = [\"user.session.start\"]\n[okta]\norg_url = \"https://example.okta.com/\"\napi_token = \"00abc\"\n[reconcile]\n[[reconcile.hooks]]\nhook = \"okta\"\n"
        ))
        .expect("valid");
        let r = c.reconcile.expect("section");
        assert_eq!(r.page_size, 1000);
        assert!(r.background);
        assert!(r.hooks[0].event_types.is_empty());
    }

    #[test]
    fn problems_name_their_keys() {
        let k =
            keys("[reconcile]\n[[reconcile.hooks]]\nhook = \"nope\"\nevent_types = [\"user.*\"]\n");
        for want in [
            "okta",
            "reconcile.hooks[0].hook",
            "reconcile.hooks[0].event_types[0]",
        ] {
            assert!(k.iter().any(|x| x == want), "{want} missing in {k:?}");
        }
        let k = keys("[reconcile]\npage_size = 0\n");
        for want in ["reconcile.page_size", "reconcile.hooks"] {
            assert!(k.iter().any(|x| x == want), "{want} missing in {k:?}");
        }
        let k = keys("[okta]\norg_url = \"https://example.okta.com\"\napi_token = \"x\"\n[reconcile]\n[[reconcile.hooks]]\nhook = \"okta\"\n");
        assert_eq!(k, vec!["reconcile.hooks[0].event_types".to_owned()]);
    }

    #[test]
    fn keys_that_moved_to_okta_say_so() {
        let e = Config::from_toml_str(&format!("{HOOK}\n[okta]\norg_url = \"https://example.okta.com\"\napi_token = \"x\"\n[reconcile]\napi_token = \"x\"\n"))
            .expect_err("moved key");
        let p =
            e.0.iter()
                .find(|p| p.key == "reconcile.api_token")
                .expect("named");
        assert!(p.message.contains("[okta]"), "{}", p.message);
    }
}
