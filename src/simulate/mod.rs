//! `hookwarden simulate`: calls a receiver the way Okta does and checks its answers.
//! (Being built.)

/// `hookwarden simulate` arguments.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {}

/// Runs the simulation; returns the exit code.
pub fn main(_args: SimulateArgs) -> i32 {
    eprintln!("simulate: not built yet");
    2
}
