//! `hookwarden simulate`: runs [`crate::simulate`] for the command line, prints the report
//! (text or `--json`) and turns it into the exit code: 0 when every call passed, 1 when
//! any failed, 2 when the command line cannot be run.

use crate::simulate::{self, SimulateArgs};

/// Runs the simulation; returns the exit code.
pub fn main(args: SimulateArgs) -> i32 {
    let (plan, transport) = match simulate::prepare(args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("simulate: {e}");
            return 2;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("simulate: cannot start the async runtime: {e}");
            return 2;
        }
    };
    let report = rt.block_on(simulate::run(&plan, transport));
    if plan.json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("simulate: cannot write the JSON report: {e}");
                return 2;
            }
        }
    } else {
        print!("{}", report.human_summary());
    }
    if report.passed {
        0
    } else {
        1
    }
}
