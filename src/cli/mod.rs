//! What the `hookwarden` subcommands do. `main.rs` only parses arguments into these types
//! and calls the subcommand's entry point: `serve` and `check-config` here, the others in
//! their own modules ([`events`], [`reconcile`], [`okta`], [`simulate`]), each calling its feature's
//! library API.

pub mod events;
pub mod okta;
pub mod reconcile;
pub mod simulate;

use crate::config::Config;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// hookwarden: receives Okta's event hooks and inline hooks over HTTPS. Stores each event
/// durably before acknowledging it and delivers it to sinks later (stdout, JSON Lines,
/// HTTP, command, NATS); answers inline hooks within Okta's deadline.
#[derive(Debug, Parser)]
#[command(name = "hookwarden", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (public listener for event and inline hooks, admin listener, workers).
    ///
    /// SIGHUP (or POST /reload on the admin listener) reloads the configuration in place;
    /// SIGTERM or Ctrl-C stops it gracefully.
    Serve(ServeArgs),
    /// Check the configuration as `serve` does before it listens (the file's mistakes, TLS
    /// files, folders, scripts): every problem with its key, exit 1 if there is any.
    CheckConfig(ConfigArg),
    /// Inspect stored events and replay dead letters (works while the service runs; reads
    /// only the store's secrets).
    Events {
        #[command(flatten)]
        config: ConfigArg,
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Call a receiver the way Okta does (verification, event deliveries, inline calls)
    /// and check every answer against Okta's contract.
    Simulate(crate::simulate::SimulateArgs),
    /// Fetch Okta's System Log and store events the event hooks never received.
    Reconcile {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        args: reconcile::ReconcileArgs,
    },
    /// Keep Okta's hook registrations in step with the config (needs [okta] with
    /// public_url): `status` compares, `sync` creates, replaces, activates and verifies.
    Okta {
        #[command(flatten)]
        config: ConfigArg,
        #[command(subcommand)]
        command: okta::OktaCommand,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Reload the configuration in place when its file changes (checked this often, and
    /// applied once the file has stayed the same for one more check). Without a value: 2s.
    #[arg(long, value_name = "EVERY", num_args = 0..=1, default_missing_value = "2s", value_parser = parse_every)]
    pub watch_config: Option<std::time::Duration>,
}

fn parse_every(text: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d >= std::time::Duration::from_millis(10) => Ok(d),
        Ok(_) => Err("at least 10ms".to_owned()),
        Err(e) => Err(format!("a duration such as 2s or 500ms: {e}")),
    }
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// Configuration file. Default: config/hookwarden.toml when it exists, else the embedded defaults.
    /// Environment variables HOOKWARDEN__SECTION__KEY override it.
    #[arg(long, short = 'c', global = true)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// List stored events, newest first.
    List(ListArgs),
    /// Show one event (every hook that received it) with its sinks and its JSON.
    Show {
        /// The System Log event uuid.
        uuid: String,
    },
    /// Send events again: one event by uuid, or every dead letter.
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only events of this hook.
    #[arg(long)]
    pub hook: Option<String>,
    /// Only events in this state.
    #[arg(long, value_enum)]
    pub state: Option<events::StateArg>,
    /// Only this event type; `*` is a wildcard (e.g. 'user.lifecycle.*').
    #[arg(long = "type")]
    pub event_type: Option<String>,
    /// Received at or after: RFC 3339 time (2026-11-23T10:00:00Z) or a duration ago (15m, 2h, 7d).
    #[arg(long)]
    pub since: Option<String>,
    /// Received before: RFC 3339 time or a duration ago.
    #[arg(long)]
    pub until: Option<String>,
    /// At most this many events.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[group(skip)]
#[command(group(clap::ArgGroup::new("target").required(true).multiple(false).args(["uuid", "all_dead"])))]
pub struct ReplayArgs {
    /// The uuid of the event to send again (to all of its sinks).
    pub uuid: Option<String>,
    /// Every dead letter (optionally of --hook only).
    #[arg(long)]
    pub all_dead: bool,
    /// Only this hook's events.
    #[arg(long)]
    pub hook: Option<String>,
}

/// `check-config`: `serve` without listening. Prints every problem (or a summary of a
/// valid config) and returns the exit code.
pub fn check_config(path: Option<&std::path::Path>) -> i32 {
    let mut report = Config::load_report(path);
    // What start-up would refuse (scripts compiled, TLS files matched, folders writable),
    // on what could be read, in the same pass as the file's own mistakes.
    if let Some(config) = &report.config {
        let more = crate::app::preflight::problems(config);
        report.add(more);
    }
    if !report.problems.is_empty() {
        eprintln!("{}", crate::config::ConfigError(report.problems));
        return 1;
    }
    let Some(config) = report.config else {
        return 1;
    };
    println!(
        "configuration is valid: {} event hook(s), {} inline hook(s), public listener {} ({}), admin listener {}",
        config.event_hooks.len(),
        config.inline_hooks.len(),
        config.server.listen,
        match (config.server.tls.enabled, &config.server.tls.cert) {
            (false, _) => "plain http",
            (true, Some(_)) => "https",
            (true, None) => "https with a self-signed development certificate",
        },
        if config.admin.enabled {
            config.admin.listen.to_string()
        } else {
            "off".to_owned()
        }
    );
    for w in config.warnings() {
        println!("warning: {w}");
    }
    0
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// `serve`: runs until SIGTERM or Ctrl-C; returns the exit code.
pub fn serve(path: Option<&std::path::Path>, options: crate::RunOptions) -> i32 {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    crate::telemetry::init(&config.log);
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return 1;
        }
    };
    rt.block_on(async {
        let shutdown = tokio_util::sync::CancellationToken::new();
        tokio::spawn(crate::app::shutdown_on_signal(shutdown.clone()));
        match crate::run_with(config, None, shutdown, options).await {
            Ok(()) => 0,
            Err(e) => {
                // Logs go to standard error: this line is the one the operator reads.
                tracing::error!("hookwarden stopped: {e}");
                1
            }
        }
    })
}

/// `events ...`: loads the configuration and works on its store. Only the store's
/// secrets are read: the hooks' passwords and the admin token may be absent wherever an
/// operator runs it.
pub fn events_main(path: Option<&std::path::Path>, command: EventsCommand) -> i32 {
    let config = match Config::load_for(path, crate::config::Needs::StoreOnly) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    match runtime() {
        Ok(rt) => rt.block_on(events::run(&config, command)),
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            1
        }
    }
}

/// `reconcile`: loads the configuration and runs one reconciliation pass.
pub fn reconcile_main(path: Option<&std::path::Path>, args: reconcile::ReconcileArgs) -> i32 {
    match Config::load(path) {
        Ok(config) => reconcile::main(&config, args),
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

/// `okta`: loads the configuration and compares or syncs Okta's hooks (exit 2 when the
/// configuration does not load, like every reason the command cannot start).
pub fn okta_main(path: Option<&std::path::Path>, command: okta::OktaCommand) -> i32 {
    match Config::load(path) {
        Ok(config) => okta::main(&config, command),
        Err(e) => {
            eprintln!("{e}");
            2
        }
    }
}
