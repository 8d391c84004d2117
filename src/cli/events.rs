//! `hookwarden events`: list, show and replay, directly on the store (being written).

use super::EventsCommand;
use crate::config::Config;

/// Runs an `events` subcommand; returns the process exit code.
pub async fn run(config: &Config, command: EventsCommand) -> i32 {
    let _ = (config, command);
    todo!()
}
