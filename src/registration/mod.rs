//! Okta's hook registrations kept in step with the configuration (`hookwarden okta`).
//!
//! What the config says Okta should hold ([`Wanted`]: the public URL plus the hook's
//! path, the auth header and its newest secret, the event types and filters, the inline
//! hook type) is compared with what Okta holds ([`Held`], read through
//! [`crate::okta_api`]): [`status`] reports each difference, [`sync`] plans and makes the
//! calls that remove them.
//!
//! Ownership. Okta has no labels, so a hook hookwarden creates is named
//! `hookwarden: <hook name>` ([`MANAGED_PREFIX`]). A configured hook matches Okta's hook
//! of that name, else one of the same kind at the same URI (registered by hand, e.g. from
//! the README's curl steps: it is updated in place and keeps its name). A hook that
//! matches nothing is listed; `sync --prune` deletes it only if hookwarden created it.
//!
//! Secrets. Okta never returns a hook's secret, so it cannot be compared: `sync` sends
//! one when it creates or replaces a hook, and `sync --send-secrets` replaces every
//! hook to send the current one (the rotation step).

pub mod sync;

use crate::config::{AuthConfig, Config};
use crate::okta::inline::HookType;
use crate::okta_api::hooks::{Channel, EventHook, InlineHook, Kind, CHANNEL_VERSION};
use crate::okta_api::{ApiError, Client};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

pub use sync::{sync, Action, Done, Options};

/// The name prefix of hooks hookwarden created in Okta.
pub const MANAGED_PREFIX: &str = "hookwarden: ";
/// The description of event hooks hookwarden created.
pub const MANAGED_DESCRIPTION: &str =
    "Managed by hookwarden: `hookwarden okta sync` overwrites changes made here";
/// What an OAuth service app asks for: `status` reads, `sync` manages.
pub const SCOPES_READ: [&str; 2] = ["okta.eventHooks.read", "okta.inlineHooks.read"];
pub const SCOPES_MANAGE: [&str; 2] = ["okta.eventHooks.manage", "okta.inlineHooks.manage"];

/// Why the configuration cannot be compared with Okta.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error(transparent)]
    Setup(#[from] crate::okta_api::SetupError),
    #[error("okta.public_url is not set: it is where Okta reaches this service (e.g. https://hooks.example.com), and each hook is registered at it plus the hook's path")]
    NoPublicUrl,
    #[error("{key}: {message}")]
    Hook { key: String, message: String },
    #[error("reading Okta's hooks: {0}")]
    Api(#[from] ApiError),
}

/// How Okta proves itself to the hook.
pub enum WantedAuth {
    /// A header and the value Okta sends (the newest configured).
    Header { key: String, value: SecretString },
    /// Okta's OAuth channel: Okta holds client credentials that hookwarden does not, so
    /// the channel is set up in Okta and only compared here.
    OAuth,
}

/// A configured hook, as Okta should hold it.
pub struct Wanted {
    pub kind: Kind,
    /// The name in the config.
    pub name: String,
    /// [`MANAGED_PREFIX`] + name: what `sync` names a hook it creates.
    pub okta_name: String,
    pub uri: String,
    pub auth: WantedAuth,
    /// Inline hooks: the type.
    pub inline_type: Option<HookType>,
    /// Event hooks: the types subscribed and the filters, by type.
    pub event_types: Vec<String>,
    pub filters: Vec<(String, String)>,
}

impl Wanted {
    /// `event hook 'okta'`.
    pub fn label(&self) -> String {
        format!("{} '{}'", self.kind.noun(), self.name)
    }
}

/// Every configured hook as Okta should hold it.
pub fn wanted(config: &Config) -> Result<Vec<Wanted>, RegistrationError> {
    let okta = config
        .okta
        .as_ref()
        .ok_or(crate::okta_api::SetupError::NotConfigured)?;
    let base = okta.public_base().ok_or(RegistrationError::NoPublicUrl)?;
    let auth = |key: String, a: &AuthConfig| -> Result<WantedAuth, RegistrationError> {
        match a.header_values() {
            None => Ok(WantedAuth::OAuth),
            Some((header, mut values)) => match values.pop() {
                Some(value) => Ok(WantedAuth::Header {
                    key: header.to_owned(),
                    value,
                }),
                None => Err(RegistrationError::Hook {
                    key,
                    message: "no usable secret to give Okta".into(),
                }),
            },
        }
    };
    let mut out = Vec::new();
    for (i, h) in config.event_hooks.iter().enumerate() {
        if h.event_types.is_empty() {
            return Err(RegistrationError::Hook {
                key: format!("event_hooks[{i}].event_types"),
                message: format!("list the exact event types '{}' subscribes to in Okta (e.g. [\"user.lifecycle.deactivate\"]): okta sync registers them", h.name),
            });
        }
        out.push(Wanted {
            kind: Kind::Event,
            name: h.name.clone(),
            okta_name: format!("{MANAGED_PREFIX}{}", h.name),
            uri: format!("{base}{}", h.path),
            auth: auth(format!("event_hooks[{i}].auth"), &h.auth)?,
            inline_type: None,
            event_types: h.event_types.clone(),
            filters: h
                .okta_filters
                .iter()
                .map(|(t, e)| (t.clone(), e.clone()))
                .collect(),
        });
    }
    for (i, h) in config.inline_hooks.iter().enumerate() {
        out.push(Wanted {
            kind: Kind::Inline,
            name: h.name.clone(),
            okta_name: format!("{MANAGED_PREFIX}{}", h.name),
            uri: format!("{base}{}", h.path),
            auth: auth(format!("inline_hooks[{i}].auth"), &h.auth)?,
            inline_type: Some(h.hook_type),
            event_types: Vec::new(),
            filters: Vec::new(),
        });
    }
    Ok(out)
}

/// A hook as Okta holds it, either kind.
#[derive(Debug, Clone)]
pub struct Held {
    pub kind: Kind,
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub status: Option<String>,
    /// Event hooks only.
    pub verification: Option<String>,
    pub uri: Option<String>,
    pub auth_key: Option<String>,
    pub channel_type: Option<String>,
    pub channel_version: Option<String>,
    pub event_types: Vec<String>,
    pub filters: Vec<(String, String)>,
    pub inline_type: Option<String>,
}

impl Held {
    pub fn managed(&self) -> bool {
        self.name.starts_with(MANAGED_PREFIX)
    }

    pub fn active(&self) -> bool {
        self.status.as_deref() == Some("ACTIVE")
    }

    pub fn verified(&self) -> bool {
        self.verification.as_deref() == Some("VERIFIED")
    }
}

impl Held {
    /// What both kinds share, the rest empty.
    fn new(
        kind: Kind,
        id: String,
        name: String,
        status: Option<String>,
        channel: Option<&Channel>,
    ) -> Held {
        Held {
            kind,
            id,
            name,
            description: None,
            status,
            verification: None,
            uri: channel.and_then(Channel::uri).map(str::to_owned),
            auth_key: channel.and_then(Channel::auth_key).map(str::to_owned),
            channel_type: channel.and_then(|c| c.channel_type.clone()),
            channel_version: channel.and_then(|c| c.version.clone()),
            event_types: Vec::new(),
            filters: Vec::new(),
            inline_type: None,
        }
    }
}

impl From<EventHook> for Held {
    fn from(h: EventHook) -> Held {
        let mut held = Held::new(Kind::Event, h.id, h.name, h.status, h.channel.as_ref());
        held.description = h.description;
        held.verification = h.verification_status;
        if let Some(e) = h.events {
            held.event_types = e.items;
            held.filters = e
                .filter
                .map(|f| {
                    f.event_filter_map
                        .into_iter()
                        .map(|m| {
                            (
                                m.event,
                                m.condition.map(|c| c.expression).unwrap_or_default(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
        }
        held
    }
}

impl From<InlineHook> for Held {
    fn from(h: InlineHook) -> Held {
        let mut held = Held::new(Kind::Inline, h.id, h.name, h.status, h.channel.as_ref());
        held.inline_type = h.hook_type;
        held
    }
}

/// Every hook the org holds, event hooks first.
pub async fn held(client: &Client, stop: &CancellationToken) -> Result<Vec<Held>, ApiError> {
    let mut out: Vec<Held> = client
        .event_hooks(stop)
        .await?
        .into_iter()
        .map(Held::from)
        .collect();
    out.extend(client.inline_hooks(stop).await?.into_iter().map(Held::from));
    Ok(out)
}

/// One field where Okta and the config differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub field: &'static str,
    pub okta: String,
    pub config: String,
    /// Whether `sync` can change it with a replace (the type of an inline hook it cannot).
    pub replaceable: bool,
}

/// A configured hook next to what Okta holds for it.
pub struct HookStatus<'a> {
    pub wanted: &'a Wanted,
    pub held: Option<&'a Held>,
    pub differences: Vec<Difference>,
}

/// The whole comparison.
pub struct Status<'a> {
    pub hooks: Vec<HookStatus<'a>>,
    /// Okta's hooks that no configured hook matches.
    pub others: Vec<&'a Held>,
}

impl Status<'_> {
    /// Whether every configured hook is registered with no difference, and no hook
    /// hookwarden created is left over.
    pub fn in_step(&self) -> bool {
        self.hooks
            .iter()
            .all(|h| h.held.is_some() && h.differences.is_empty())
            && !self.others.iter().any(|o| o.managed())
    }
}

/// Matches each configured hook with Okta's (its managed name first, then its URI) and
/// lists every difference.
pub fn status<'a>(wanted: &'a [Wanted], held: &'a [Held]) -> Status<'a> {
    let mut taken = vec![false; held.len()];
    let mut find = |w: &Wanted, by: &dyn Fn(&Held) -> bool| -> Option<usize> {
        let i = held
            .iter()
            .enumerate()
            .position(|(i, h)| !taken[i] && h.kind == w.kind && by(h))?;
        taken[i] = true;
        Some(i)
    };
    let mut found: Vec<Option<usize>> = wanted
        .iter()
        .map(|w| find(w, &|h| h.name == w.okta_name))
        .collect();
    for (w, f) in wanted.iter().zip(found.iter_mut()) {
        if f.is_none() {
            *f = find(w, &|h| h.uri.as_deref() == Some(w.uri.as_str()));
        }
    }
    let hooks = wanted
        .iter()
        .zip(found)
        .map(|(w, f)| {
            let held = f.map(|i| &held[i]);
            HookStatus {
                wanted: w,
                held,
                differences: held.map(|h| differences(w, h)).unwrap_or_default(),
            }
        })
        .collect();
    let others = held
        .iter()
        .zip(&taken)
        .filter(|(_, t)| !**t)
        .map(|(h, _)| h)
        .collect();
    Status { hooks, others }
}

fn shown(v: Option<&str>) -> String {
    v.map(str::to_owned).unwrap_or_else(|| "(none)".into())
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v.dedup();
    v
}

/// Every field where `held` differs from `w`. The secret is not among them: Okta never
/// returns it.
pub fn differences(w: &Wanted, held: &Held) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut differ = |field: &'static str, okta: String, config: String, replaceable: bool| {
        out.push(Difference {
            field,
            okta,
            config,
            replaceable,
        })
    };
    if held.uri.as_deref() != Some(w.uri.as_str()) {
        differ("uri", shown(held.uri.as_deref()), w.uri.clone(), true);
    }
    let channel = match w.auth {
        WantedAuth::Header { .. } => "HTTP",
        WantedAuth::OAuth => "OAUTH",
    };
    if held.channel_type.as_deref() != Some(channel) {
        differ(
            "channel type",
            shown(held.channel_type.as_deref()),
            channel.into(),
            true,
        );
    }
    if let WantedAuth::Header { key, .. } = &w.auth {
        // Header names are case-insensitive; Okta returns them lower-case.
        if !held
            .auth_key
            .as_deref()
            .is_some_and(|k| k.eq_ignore_ascii_case(key))
        {
            differ(
                "auth header",
                shown(held.auth_key.as_deref()),
                key.clone(),
                true,
            );
        }
    }
    if held.channel_version.as_deref() != Some(CHANNEL_VERSION) {
        differ(
            "channel version",
            shown(held.channel_version.as_deref()),
            CHANNEL_VERSION.into(),
            true,
        );
    }
    if w.kind == Kind::Event {
        if sorted(&held.event_types) != sorted(&w.event_types) {
            differ(
                "event types",
                sorted(&held.event_types).join(", "),
                sorted(&w.event_types).join(", "),
                true,
            );
        }
        let mut okta_filters = held.filters.clone();
        okta_filters.sort();
        let mut config_filters = w.filters.clone();
        config_filters.sort();
        if okta_filters != config_filters {
            let text = |f: &[(String, String)]| {
                if f.is_empty() {
                    "(none)".to_owned()
                } else {
                    f.iter()
                        .map(|(t, e)| format!("{t}: {e}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                }
            };
            differ("filter", text(&okta_filters), text(&config_filters), true);
        }
    }
    if let Some(t) = w.inline_type {
        if held.inline_type.as_deref() != Some(t.event_type()) {
            differ(
                "type",
                shown(held.inline_type.as_deref()),
                t.event_type().into(),
                false,
            );
        }
    }
    if !held.active() {
        differ(
            "status",
            shown(held.status.as_deref()),
            "ACTIVE".into(),
            true,
        );
    }
    if w.kind == Kind::Event && !held.verified() {
        differ(
            "verification",
            shown(held.verification.as_deref()),
            "VERIFIED".into(),
            true,
        );
    }
    out
}

#[cfg(test)]
mod tests;
