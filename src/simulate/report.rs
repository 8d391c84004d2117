//! The run's results: one record per call, a summary per scenario, printed for a person
//! or as one JSON document for CI.

use super::judge::Outcome;
use super::transport::Attempt;
use serde::Serialize;
use std::time::Duration;

/// One call (its attempts, its verdict).
#[derive(Debug, Clone, Serialize)]
pub struct CallRecord {
    pub scenario: String,
    /// Which sample, and for duplicates which send of it.
    pub sample: String,
    pub method: &'static str,
    pub path: String,
    /// The delivery's or inline request's `eventId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The delivered events' uuids (deliveries and duplicates), so CI can look for them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub uuids: Vec<String>,
    pub attempts: Vec<AttemptRecord>,
    pub result: Outcome,
    /// What Okta would do with the answer.
    pub okta: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttemptRecord {
    /// The HTTP status, `timeout` or `no answer`.
    pub answer: String,
    pub latency_ms: f64,
}

impl AttemptRecord {
    pub fn from_attempt(a: &Attempt) -> Self {
        AttemptRecord {
            answer: a.answer.short(),
            latency_ms: millis(a.latency),
        }
    }
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioSummary {
    pub scenario: String,
    pub calls: usize,
    /// Every call Okta would count as a success, including those after a retry.
    pub passed: usize,
    /// Of `passed`, those that needed Okta's retry.
    pub passed_after_retry: usize,
    /// Answered with the receiver's fallback: taken by Okta, but the hook is not working.
    pub warned: usize,
    pub failed: usize,
    /// HTTP attempts made (a retry is a second attempt of the same call).
    pub attempts: usize,
    /// Over every attempt, as Okta times them.
    pub latency_ms: Latency,
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// The whole run, as `--json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub target: String,
    pub insecure: bool,
    /// True when every call passed: none failed, none warned.
    pub passed: bool,
    pub calls: usize,
    /// Calls answered with the receiver's fallback (see [`Outcome::Warned`]).
    pub warned: usize,
    pub failed: usize,
    pub elapsed_ms: f64,
    pub scenarios: Vec<ScenarioSummary>,
    pub results: Vec<CallRecord>,
}

impl RunReport {
    /// `order` is the scenarios' names in the order they were selected.
    pub fn new(
        target: String,
        insecure: bool,
        order: &[String],
        results: Vec<CallRecord>,
        elapsed: Duration,
    ) -> RunReport {
        let scenarios: Vec<ScenarioSummary> =
            order.iter().map(|name| summarise(name, &results)).collect();
        let count = |o: Outcome| results.iter().filter(|r| r.result == o).count();
        let (failed, warned) = (count(Outcome::Failed), count(Outcome::Warned));
        RunReport {
            target,
            insecure,
            passed: failed == 0 && warned == 0 && !results.is_empty(),
            calls: results.len(),
            warned,
            failed,
            elapsed_ms: millis(elapsed),
            scenarios,
            results,
        }
    }

    /// The summary table and the last line, for a person.
    pub fn human_summary(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "\n{:<24} {:>6} {:>7} {:>13} {:>7} {:>7} {:>10} {:>10}\n",
            "scenario", "calls", "passed", "after retry", "warned", "failed", "p50", "p99"
        ));
        for s in &self.scenarios {
            out.push_str(&format!(
                "{:<24} {:>6} {:>7} {:>13} {:>7} {:>7} {:>10} {:>10}\n",
                s.scenario,
                s.calls,
                s.passed,
                s.passed_after_retry,
                s.warned,
                s.failed,
                format!("{:.1} ms", s.latency_ms.p50),
                format!("{:.1} ms", s.latency_ms.p99),
            ));
        }
        let retried: usize = self.scenarios.iter().map(|s| s.passed_after_retry).sum();
        let retried = if retried > 0 {
            format!(" ({retried} only after Okta's retry, marked pass*)")
        } else {
            String::new()
        };
        if self.passed {
            out.push_str(&format!(
                "\nPASSED: all {} calls answered as Okta needs{retried}, in {}\n",
                self.calls,
                elapsed(self.elapsed_ms)
            ));
        } else if self.calls == 0 {
            out.push_str("\nFAILED: no call was made\n");
        } else if self.failed == 0 {
            out.push_str(&format!(
                "\nWARNED: {} of {} calls got only the receiver's fallback (Okta takes it, but those hooks are not working; marked warn){retried}, in {}\n",
                self.warned,
                self.calls,
                elapsed(self.elapsed_ms)
            ));
        } else {
            let warned = if self.warned > 0 {
                format!(
                    ", {} got only the receiver's fallback (marked warn)",
                    self.warned
                )
            } else {
                String::new()
            };
            out.push_str(&format!(
                "\nFAILED: {} of {} calls failed{warned}{retried}, in {}\n",
                self.failed,
                self.calls,
                elapsed(self.elapsed_ms)
            ));
        }
        out
    }
}

/// One call as a report line (and a second line with the problem, if any). The path is
/// in the header of the run ([`human_header`]), one per scenario.
pub fn human_line(r: &CallRecord) -> String {
    let tag = match r.result {
        Outcome::Passed => "pass",
        Outcome::PassedAfterRetry => "pass*",
        Outcome::Warned => "warn",
        Outcome::Failed => "FAIL",
    };
    let answers: Vec<String> = r.attempts.iter().map(|a| a.answer.clone()).collect();
    let latency = r
        .attempts
        .last()
        .map(|a| format!("{:.1} ms", a.latency_ms))
        .unwrap_or_default();
    let mut line = format!(
        "{tag:<5} {:<22} {:<12} {latency:>9}  {}: {}",
        r.scenario,
        answers.join(" then "),
        r.sample,
        r.okta
    );
    if let Some(p) = &r.problem {
        line.push_str(&format!("\n      -> {p}"));
    }
    line
}

/// The run's first lines: the target, and where each scenario calls.
pub fn human_header(target: &str, insecure: bool, routes: &[(String, String)]) -> String {
    let mut out = format!(
        "hookwarden simulate: calling {target} as Okta would{}\n",
        if insecure {
            " (--insecure: any certificate, http:// allowed)"
        } else {
            ""
        }
    );
    for (scenario, route) in routes {
        out.push_str(&format!("  {scenario:<22} {route}\n"));
    }
    out
}

/// `28.4 ms`, `6.1 s`.
fn elapsed(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

fn summarise(name: &str, results: &[CallRecord]) -> ScenarioSummary {
    let mine: Vec<&CallRecord> = results.iter().filter(|r| r.scenario == name).collect();
    let mut latencies: Vec<f64> = mine
        .iter()
        .flat_map(|r| r.attempts.iter().map(|a| a.latency_ms))
        .collect();
    latencies.sort_by(f64::total_cmp);
    let count = |o: Outcome| mine.iter().filter(|r| r.result == o).count();
    ScenarioSummary {
        scenario: name.to_owned(),
        calls: mine.len(),
        passed: count(Outcome::Passed) + count(Outcome::PassedAfterRetry),
        passed_after_retry: count(Outcome::PassedAfterRetry),
        warned: count(Outcome::Warned),
        failed: count(Outcome::Failed),
        attempts: latencies.len(),
        latency_ms: Latency {
            p50: percentile(&latencies, 0.50),
            p99: percentile(&latencies, 0.99),
            max: latencies.last().copied().unwrap_or(0.0),
        },
    }
}

/// Nearest-rank percentile of sorted values (0 for none).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
