//! `hookwarden simulate`: runs [`crate::simulate`] for the command line, prints the report
//! (text or `--json`) and turns it into the exit code: 0 when every call passed, 1 when
//! any failed, 2 when the command line cannot be run, 3 when none failed but some got
//! only the receiver's fallback (warned).

use crate::simulate::report::RunReport;
use crate::simulate::{self, SimulateArgs};

/// Every call passed.
const PASSED: i32 = 0;
/// At least one call failed (whatever else happened).
const FAILED: i32 = 1;
/// The command line cannot be run.
const USAGE: i32 = 2;
/// No call failed, but at least one got only the receiver's fallback: Okta would take
/// the answers, yet a hook is not working.
const WARNED: i32 = 3;

/// The exit code of a run.
fn exit_code(report: &RunReport) -> i32 {
    if report.passed {
        PASSED
    } else if report.failed > 0 || report.warned == 0 {
        FAILED
    } else {
        WARNED
    }
}

/// Runs the simulation; returns the exit code.
pub fn main(args: SimulateArgs) -> i32 {
    let (plan, transport) = match simulate::prepare(args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("simulate: {e}");
            return USAGE;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("simulate: cannot start the async runtime: {e}");
            return USAGE;
        }
    };
    let report = rt.block_on(simulate::run(&plan, transport));
    if plan.json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("simulate: cannot write the JSON report: {e}");
                return USAGE;
            }
        }
    } else {
        print!("{}", report.human_summary());
    }
    exit_code(&report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::judge::Outcome;
    use crate::simulate::report::CallRecord;
    use std::time::Duration;

    fn run_of(outcomes: &[Outcome]) -> RunReport {
        let records = outcomes
            .iter()
            .map(|&result| CallRecord {
                scenario: "inline token".to_owned(),
                sample: "token-hook-request.json".to_owned(),
                method: "POST",
                path: "/hooks/okta/token".to_owned(),
                event_id: None,
                uuids: Vec::new(),
                attempts: Vec::new(),
                result,
                okta: String::new(),
                problem: None,
            })
            .collect();
        RunReport::new(
            "https://localhost/".to_owned(),
            false,
            &["inline token".to_owned()],
            records,
            Duration::from_millis(5),
        )
    }

    #[test]
    fn warnings_have_their_own_exit_code_and_failures_win_over_them() {
        use Outcome::*;
        assert_eq!(exit_code(&run_of(&[Passed, PassedAfterRetry])), PASSED);
        assert_eq!(exit_code(&run_of(&[Passed, Warned])), WARNED);
        assert_eq!(exit_code(&run_of(&[Warned, Failed])), FAILED);
        assert_eq!(exit_code(&run_of(&[Failed])), FAILED);
        assert_eq!(exit_code(&run_of(&[])), FAILED);
        assert_eq!(
            [PASSED, FAILED, USAGE, WARNED],
            [0, 1, 2, 3],
            "documented in simulate --help and docs/simulate.md"
        );
        let summary = run_of(&[Passed, Warned]).human_summary();
        assert!(
            summary.contains("WARNED: 1 of 2 calls got only the receiver's fallback"),
            "{summary}"
        );
        let summary = run_of(&[Warned, Failed]).human_summary();
        assert!(
            summary.contains("FAILED: 1 of 2 calls failed, 1 got only the receiver's fallback"),
            "{summary}"
        );
    }
}
