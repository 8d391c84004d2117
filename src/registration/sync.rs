//! `hookwarden okta sync`: the calls that make Okta hold what the config says, planned
//! from [`super::status`] first (so that `--dry-run` prints exactly what a run does),
//! then made in order, hook by hook. A hook whose call fails keeps its remaining steps
//! undone and the next hook goes on.

use super::{Held, HookStatus, Status, Wanted, WantedAuth, MANAGED_DESCRIPTION};
use crate::config::expose;
use crate::okta::inline::HookType;
use crate::okta_api::hooks::{event_hook_body, inline_hook_body, EventHookSpec, Kind};
use crate::okta_api::{ApiError, Client};
use tokio_util::sync::CancellationToken;

/// `okta sync`'s flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Plan and print, change nothing.
    pub dry_run: bool,
    /// Replace every hook whose secret is ours, to give Okta the current one.
    pub send_secrets: bool,
    /// Delete hooks hookwarden created that are no longer configured.
    pub prune: bool,
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create,
    /// Why: the fields that differ, and `secret` when one is sent on purpose.
    Replace(Vec<&'static str>),
    Activate,
    /// Event hooks: Okta calls the hook's verification GET.
    Verify,
    /// Inline hooks: Okta calls the hook with one of its own sample requests (`execute`).
    Check,
    Deactivate,
    Delete,
    /// Nothing to do.
    Keep,
    /// Not done by `sync`, and why.
    Skip(String),
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Create => f.write_str("create"),
            Action::Replace(why) => write!(f, "replace ({})", why.join(", ")),
            Action::Activate => f.write_str("activate"),
            Action::Verify => f.write_str("verify"),
            Action::Check => f.write_str("check with a sample call (execute)"),
            Action::Deactivate => f.write_str("deactivate"),
            Action::Delete => f.write_str("delete"),
            Action::Keep => f.write_str("in step"),
            Action::Skip(why) => write!(f, "left as is: {why}"),
        }
    }
}

/// What happened to one hook (or, in a dry run, what would).
#[derive(Debug)]
pub struct Done {
    /// `event hook 'okta'`, or Okta's name for a hook not in the config.
    pub label: String,
    pub id: Option<String>,
    pub actions: Vec<Action>,
    /// How many of `actions` were made (all of them, unless `error`).
    pub made: usize,
    pub error: Option<ApiError>,
}

/// The plan of a configured hook.
pub fn plan_hook(h: &HookStatus<'_>, opts: &Options) -> Vec<Action> {
    let w = h.wanted;
    let Some(held) = h.held else {
        return match w.auth {
            WantedAuth::OAuth => vec![Action::Skip(
                "it uses Okta's OAuth channel, whose client credentials Okta holds: create it in the Admin Console".into(),
            )],
            WantedAuth::Header { .. } => vec![Action::Create, after_change(w)],
        };
    };
    if let Some(d) = h.differences.iter().find(|d| !d.replaceable) {
        return vec![Action::Skip(format!(
            "its {} is {} and Okta does not change it: delete the hook in Okta, or change the config",
            d.field, d.okta
        ))];
    }
    let mut why: Vec<&'static str> = h
        .differences
        .iter()
        .map(|d| d.field)
        .filter(|f| !matches!(*f, "status" | "verification"))
        .collect();
    if matches!(w.auth, WantedAuth::OAuth) {
        return if why.is_empty() && h.differences.is_empty() {
            vec![Action::Keep]
        } else {
            vec![Action::Skip(
                "it uses Okta's OAuth channel: change it in the Admin Console".into(),
            )]
        };
    }
    if opts.send_secrets {
        why.push("secret");
    }
    let mut actions = Vec::new();
    let replace = !why.is_empty();
    if replace {
        actions.push(Action::Replace(why));
    }
    if !held.active() {
        actions.push(Action::Activate);
    }
    if replace || !held.active() || (w.kind == Kind::Event && !held.verified()) {
        actions.push(after_change(w));
    }
    if actions.is_empty() {
        actions.push(Action::Keep);
    }
    actions
}

/// How a hook is proven to work after it changed.
fn after_change(w: &Wanted) -> Action {
    match w.inline_type {
        None => Action::Verify,
        // A sample call would reach the user's SMS or voice provider through the handler.
        Some(HookType::Telephony) => Action::Skip(
            "not checked: a sample telephony call could send a real message (use hookwarden simulate)".into(),
        ),
        Some(_) => Action::Check,
    }
}

/// The plan for one of Okta's hooks that no configured hook matches.
pub fn plan_other(held: &Held, opts: &Options) -> Vec<Action> {
    if !held.managed() {
        return vec![Action::Skip(
            "not created by hookwarden (hookwarden never deletes those)".into(),
        )];
    }
    if !opts.prune {
        return vec![Action::Skip(
            "created by hookwarden, no longer configured: okta sync --prune deletes it".into(),
        )];
    }
    let mut actions = Vec::new();
    if held.active() {
        actions.push(Action::Deactivate);
    }
    actions.push(Action::Delete);
    actions
}

/// Plans every hook and, unless `dry_run`, makes the calls.
pub async fn sync(
    client: &Client,
    status: &Status<'_>,
    opts: &Options,
    stop: &CancellationToken,
) -> Vec<Done> {
    let mut out = Vec::new();
    for h in &status.hooks {
        let actions = plan_hook(h, opts);
        let mut done = Done {
            label: h.wanted.label(),
            id: h.held.map(|x| x.id.clone()),
            actions,
            made: 0,
            error: None,
        };
        if !opts.dry_run {
            apply_hook(client, h, &mut done, stop).await;
        }
        out.push(done);
    }
    for held in &status.others {
        let mut done = Done {
            label: format!("{} '{}'", held.kind.noun(), held.name),
            id: Some(held.id.clone()),
            actions: plan_other(held, opts),
            made: 0,
            error: None,
        };
        if !opts.dry_run {
            for a in done.actions.clone() {
                let result = match a {
                    Action::Deactivate => {
                        client
                            .lifecycle(held.kind, &held.id, "deactivate", stop)
                            .await
                    }
                    Action::Delete => client.delete_hook(held.kind, &held.id, stop).await,
                    _ => Ok(()),
                };
                if let Err(e) = result {
                    done.error = Some(e);
                    break;
                }
                done.made += 1;
            }
        }
        out.push(done);
    }
    out
}

async fn apply_hook(
    client: &Client,
    h: &HookStatus<'_>,
    done: &mut Done,
    stop: &CancellationToken,
) {
    let w = h.wanted;
    for a in done.actions.clone() {
        let result = match &a {
            Action::Create => create(client, w, stop).await.map(|id| done.id = Some(id)),
            Action::Replace(_) => replace(client, w, h.held, stop).await,
            Action::Activate => lifecycle(client, w.kind, done, "activate", stop).await,
            Action::Verify => lifecycle(client, w.kind, done, "verify", stop).await,
            Action::Check => check(client, w, done, stop).await,
            _ => Ok(()),
        };
        if let Err(e) = result {
            done.error = Some(e);
            return;
        }
        done.made += 1;
    }
}

async fn lifecycle(
    client: &Client,
    kind: Kind,
    done: &Done,
    action: &str,
    stop: &CancellationToken,
) -> Result<(), ApiError> {
    let id = done.id.as_deref().unwrap_or_default();
    client.lifecycle(kind, id, action, stop).await
}

/// The body of a create or replace: our name and description unless the hook was
/// registered by hand (then its own are kept).
fn body(w: &Wanted, held: Option<&Held>, create: bool) -> Option<serde_json::Value> {
    let WantedAuth::Header { key, value } = &w.auth else {
        return None;
    };
    let name = held.map_or(w.okta_name.as_str(), |h| h.name.as_str());
    Some(match w.kind {
        Kind::Event => event_hook_body(&EventHookSpec {
            name,
            description: held
                .and_then(|h| h.description.as_deref())
                .unwrap_or(MANAGED_DESCRIPTION),
            uri: &w.uri,
            auth_key: key,
            secret: expose(value),
            event_types: &w.event_types,
            filters: &w.filters,
        }),
        Kind::Inline => inline_hook_body(
            name,
            create
                .then(|| w.inline_type.map(HookType::event_type))
                .flatten(),
            &w.uri,
            key,
            expose(value),
        ),
    })
}

async fn create(client: &Client, w: &Wanted, stop: &CancellationToken) -> Result<String, ApiError> {
    let Some(body) = body(w, None, true) else {
        return Ok(String::new());
    };
    #[derive(serde::Deserialize)]
    struct Created {
        id: String,
    }
    let created: Created = client.create_hook(w.kind, &body, stop).await?;
    Ok(created.id)
}

async fn replace(
    client: &Client,
    w: &Wanted,
    held: Option<&Held>,
    stop: &CancellationToken,
) -> Result<(), ApiError> {
    let (Some(held), Some(body)) = (held, body(w, held, false)) else {
        return Ok(());
    };
    client.replace_hook(w.kind, &held.id, &body, stop).await
}

/// `execute` with one of Okta's own samples of the hook's type, fresh ids.
async fn check(
    client: &Client,
    w: &Wanted,
    done: &Done,
    stop: &CancellationToken,
) -> Result<(), ApiError> {
    let (Some(t), Some(id)) = (w.inline_type, done.id.as_deref()) else {
        return Ok(());
    };
    let (_, payload) = crate::okta::samples::inline_request(t, 0);
    client
        .execute_inline_hook(id, &payload, stop)
        .await
        .map(drop)
}
