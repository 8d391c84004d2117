//! `hookwarden reconcile`: checks the command line's window, then runs one
//! [`Reconciler`] pass per hook over it and prints a summary line per hook. It neither
//! takes the lease nor moves the cursor (that is the background job's, in [`crate::reconcile`]).

use crate::config::Config;
use crate::reconcile::{millis, Reconciler};
use crate::store::Store;
use crate::time::{format_millis, now_millis, parse_time, Millis};
use std::sync::Arc;
use std::time::SystemTime;
use tokio_util::sync::CancellationToken;

/// `hookwarden reconcile` arguments.
#[derive(Debug, clap::Args)]
pub struct ReconcileArgs {
    /// Start of the window: RFC 3339 (2026-11-23T10:00:00Z) or a duration ago (1h, 30m, 2d).
    #[arg(long)]
    pub since: String,
    /// End of the window, same forms. Default: reconcile.delay ago (the settle delay), so
    /// that events Okta is still delivering are left to the hook; `--until 0s` means now.
    #[arg(long)]
    pub until: Option<String>,
    /// Only this event hook (a `hook` of [[reconcile.hooks]]); default: every one.
    #[arg(long)]
    pub hook: Option<String>,
    /// Fetch and compare, store nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Exit code of a command line mistake (like clap's).
const USAGE: i32 = 2;

/// `hookwarden reconcile`: one pass per hook; prints a summary line per hook and
/// returns the exit code (0 when every hook's pass succeeded).
pub fn main(config: &Config, args: ReconcileArgs) -> i32 {
    let Some(rc) = &config.reconcile else {
        eprintln!("error: reconciliation is not configured: add a [reconcile] section (see config/default.toml)");
        return 1;
    };
    let now = SystemTime::now();
    let since = match parse_time(&args.since, now) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: --since: {e}");
            return USAGE;
        }
    };
    let until = match args.until.as_deref() {
        Some(u) => match parse_time(u, now) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: --until: {e}");
                return USAGE;
            }
        },
        None => now_millis() - millis(rc.delay),
    };
    if until <= since {
        eprintln!(
            "error: the window is empty: --since {} is not before --until {} (the default --until is reconcile.delay = {} ago)",
            format_millis(since),
            format_millis(until),
            humantime::format_duration(rc.delay)
        );
        return USAGE;
    }
    if let Some(h) = &args.hook {
        if !rc.hooks.iter().any(|r| &r.hook == h) {
            eprintln!("error: --hook {h}: not in [[reconcile.hooks]]");
            return USAGE;
        }
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return 1;
        }
    };
    rt.block_on(run(config, args, since, until))
}

async fn run(config: &Config, args: ReconcileArgs, since: Millis, until: Millis) -> i32 {
    let store: Arc<dyn Store> = match crate::store::open(config, crate::store::OpenFor::Cli).await {
        Ok(opened) => opened.store,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let reconciler = match Reconciler::new(config, store.clone(), None) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            store.close().await;
            return 1;
        }
    };
    let stop = CancellationToken::new();
    let mut failed = false;
    println!(
        "reconciling {} .. {}{}",
        format_millis(since),
        format_millis(until),
        if args.dry_run {
            " (dry run: nothing is stored)"
        } else {
            ""
        }
    );
    for hook in reconciler.hook_names() {
        if args.hook.as_ref().is_some_and(|h| *h != hook) {
            continue;
        }
        match reconciler
            .pass(&hook, since, until, args.dry_run, None, &stop)
            .await
        {
            Ok(r) => println!(
                "{hook}: {} page{}, {} fetched, {} already stored, {} {}",
                r.pages,
                if r.pages == 1 { "" } else { "s" },
                r.fetched,
                r.already_stored,
                r.recovered,
                if args.dry_run {
                    "to recover"
                } else {
                    "recovered"
                }
            ),
            Err(e) => {
                failed = true;
                eprintln!("{hook}: failed: {e}");
            }
        }
    }
    store.close().await;
    if failed {
        1
    } else {
        0
    }
}
