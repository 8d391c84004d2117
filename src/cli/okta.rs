//! `hookwarden okta status|sync`: prints [`crate::registration`]'s comparison and plan.
//!
//! Exit codes, for scripts and monitoring: `status` 0 when Okta matches the config, 1
//! when something differs; `sync` 0 when every call succeeded (or, in a dry run, when
//! nothing would change), 1 when one failed (or would change something). Both 2 when
//! they cannot start: the config, the credentials, or reading Okta's hooks.

use crate::config::Config;
use crate::registration::{self, Action, Done, HookStatus, Options, Status};
use clap::{Args, Subcommand};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Subcommand)]
pub enum OktaCommand {
    /// Compare each configured hook with what Okta holds: URI, auth header, event types,
    /// filter, status, verification, channel version (Okta never returns a secret: it is
    /// not compared). Exit 1 when anything differs.
    Status,
    /// Create or replace Okta's hooks so that they match the config, then activate and
    /// verify them. Never deletes a hook hookwarden did not create.
    Sync(SyncArgs),
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Print what would be done; change nothing. Exit 1 if anything would change.
    #[arg(long)]
    pub dry_run: bool,
    /// Replace every hook to send Okta the newest secret of each (the last one listed
    /// in its auth), then verify it: the step of a secret rotation.
    #[arg(long)]
    pub send_secrets: bool,
    /// Deactivate and delete hooks that hookwarden created and that are no longer in
    /// the config. Hooks it did not create are never deleted.
    #[arg(long)]
    pub prune: bool,
}

/// Exit code when the command cannot start.
const CANNOT_START: i32 = 2;

pub fn main(config: &Config, command: OktaCommand) -> i32 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return CANNOT_START;
        }
    };
    rt.block_on(run(config, command))
}

async fn run(config: &Config, command: OktaCommand) -> i32 {
    let scopes = match command {
        OktaCommand::Status => registration::SCOPES_READ,
        OktaCommand::Sync(_) => registration::SCOPES_MANAGE,
    };
    let setup = registration::wanted(config).and_then(|w| {
        let okta = config
            .okta
            .as_ref()
            .ok_or(crate::okta_api::SetupError::NotConfigured)?;
        Ok((w, crate::okta_api::Client::new(okta, &scopes)?))
    });
    let (wanted, client) = match setup {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return CANNOT_START;
        }
    };
    let stop = CancellationToken::new();
    let held = match registration::held(&client, &stop).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: reading Okta's hooks: {e}");
            return CANNOT_START;
        }
    };
    let status = registration::status(&wanted, &held);
    match command {
        OktaCommand::Status => {
            print_status(&status);
            i32::from(!status.in_step())
        }
        OktaCommand::Sync(args) => {
            let opts = Options {
                dry_run: args.dry_run,
                send_secrets: args.send_secrets,
                prune: args.prune,
            };
            let done = registration::sync(&client, &status, &opts, &stop).await;
            print_sync(&done, opts.dry_run);
            let failed = done.iter().any(|d| d.error.is_some());
            let would_change = opts.dry_run
                && done.iter().any(|d| {
                    d.actions
                        .iter()
                        .any(|a| !matches!(a, Action::Keep | Action::Skip(_)))
                });
            i32::from(failed || would_change)
        }
    }
}

fn print_status(status: &Status<'_>) {
    for h in &status.hooks {
        print_hook(h);
    }
    if !status.others.is_empty() {
        println!("\nOkta's hooks that no configured hook matches:");
        for o in &status.others {
            let owner = if o.managed() {
                "created by hookwarden, no longer configured (okta sync --prune deletes it)"
            } else {
                "not created by hookwarden (left alone)"
            };
            println!(
                "  {} {} \"{}\" -> {}: {owner}",
                o.kind.noun(),
                o.id,
                o.name,
                o.uri.as_deref().unwrap_or("(no uri)")
            );
        }
    }
    println!();
    if status.in_step() {
        println!("Okta matches the configuration.");
    } else {
        println!("Okta differs from the configuration: `hookwarden okta sync --dry-run` shows what a sync would do.");
    }
}

fn print_hook(h: &HookStatus<'_>) {
    let w = h.wanted;
    println!("{} -> {}", w.label(), w.uri);
    let Some(held) = h.held else {
        println!("  not registered in Okta");
        return;
    };
    let how = if held.name == w.okta_name {
        String::new()
    } else {
        " (registered by hand: matched by its URI)".to_owned()
    };
    println!(
        "  okta: {} \"{}\"{how}, {}{}",
        held.id,
        held.name,
        held.status.as_deref().unwrap_or("(no status)"),
        held.verification
            .as_deref()
            .map(|v| format!(", {v}"))
            .unwrap_or_default()
    );
    if h.differences.is_empty() {
        println!("  in step");
    }
    for d in &h.differences {
        println!(
            "  differs: {}: Okta has {}, the config {}",
            d.field, d.okta, d.config
        );
    }
    match &w.auth {
        registration::WantedAuth::Header { .. } => println!(
            "  secret: not compared (Okta never returns it; okta sync --send-secrets sends the newest)"
        ),
        registration::WantedAuth::OAuth => {
            println!("  auth: Okta's OAuth channel (its client credentials are Okta's; not compared)")
        }
    }
}

fn print_sync(done: &[Done], dry_run: bool) {
    for d in done {
        let id =
            d.id.as_deref()
                .map(|i| format!(" ({i})"))
                .unwrap_or_default();
        let steps: Vec<String> = d
            .actions
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let mark = if dry_run || matches!(a, Action::Keep | Action::Skip(_)) {
                    ""
                } else if i < d.made {
                    " ok"
                } else if i == d.made && d.error.is_some() {
                    " FAILED"
                } else {
                    " not done"
                };
                let would = if dry_run && !matches!(a, Action::Keep | Action::Skip(_)) {
                    "would "
                } else {
                    ""
                };
                format!("{would}{a}{mark}")
            })
            .collect();
        println!("{}{id}: {}", d.label, steps.join(", "));
        if let Some(e) = &d.error {
            println!("  error: {e}");
        }
    }
}
