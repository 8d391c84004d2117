//! The monitoring examples stay true to the code: the alert rules in
//! `deploy/prometheus/alerts.yaml` pass `promtool check rules` and their unit tests
//! (`promtool test rules`), and every expression of the rules and of the Grafana
//! dashboard `deploy/grafana/hookwarden.json` names only series hookwarden exposes, with
//! labels they have ([`Metrics::catalogue`], the registry the docs' table and a running
//! service's `/metrics` are checked against in `docs.rs`). `promtool` comes with Debian's
//! `prometheus` package, which `scripts/test.sh` installs; a missing one fails the test.

use hookwarden::metrics::Metrics;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Runs promtool; its output when it succeeds.
fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool").args(args).output().unwrap_or_else(|e| {
        panic!("cannot run promtool ({e}): it comes with Debian's prometheus package, which scripts/test.sh installs")
    });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

/// The alert rules' names and expressions, in order. The file is ours: each rule has an
/// `alert:` line and an `expr:` that is either on its line or a `|` block under it.
fn alert_rules() -> Vec<(String, String)> {
    let text = read("deploy/prometheus/alerts.yaml");
    let lines: Vec<&str> = text.lines().collect();
    let mut rules = Vec::new();
    let mut name = None;
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        if let Some(n) = trimmed.strip_prefix("- alert: ") {
            name = Some(n.trim().to_owned());
        } else if let Some(value) = trimmed.strip_prefix("expr: ") {
            let expr = if value.trim() == "|" {
                let indent = line.len() - trimmed.len();
                lines[i + 1..]
                    .iter()
                    .take_while(|l| l.len() - l.trim_start().len() > indent)
                    .map(|l| l.trim())
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                value.trim().to_owned()
            };
            let name = name.take().expect("an expr belongs to an alert");
            rules.push((name, expr));
        }
    }
    rules
}

/// Every `expr` of the dashboard's panels, and the series of its variables' queries.
fn dashboard_exprs() -> (Vec<String>, Vec<String>) {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("expr", Value::String(e)) => out.push(e.clone()),
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let dashboard: Value = serde_json::from_str(&read("deploy/grafana/hookwarden.json"))
        .expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    walk(&dashboard["panels"], &mut exprs);
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .filter(|v| v["type"] == "query")
        .map(|v| v["definition"].as_str().expect("definition").to_owned())
        .collect();
    (exprs, variables)
}

/// What an expression uses: each series it selects with the labels of its matchers, and
/// the labels of its `by`, `without`, `on`, `ignoring` and `group_*` clauses.
#[derive(Debug, Default)]
struct Uses {
    series: Vec<(String, Vec<String>)>,
    grouping: Vec<String>,
}

const GROUPING: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
const KEYWORDS: [&str; 18] = [
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "group",
    "inf",
];

fn uses(expr: &str) -> Uses {
    let c: Vec<char> = expr.chars().collect();
    let ident = |i: &mut usize| {
        let start = *i;
        while *i < c.len() && (c[*i].is_ascii_alphanumeric() || c[*i] == '_' || c[*i] == ':') {
            *i += 1;
        }
        c[start..*i].iter().collect::<String>()
    };
    let skip_space = |i: &mut usize| {
        while *i < c.len() && c[*i].is_whitespace() {
            *i += 1;
        }
    };
    let is_quote = |ch: char| ch == '"' || ch == '\'' || ch == '`';
    // A string literal, from its opening quote to after its closing one.
    let skip_string = |i: &mut usize| {
        let quote = c[*i];
        *i += 1;
        while *i < c.len() && c[*i] != quote {
            *i += if c[*i] == '\\' { 2 } else { 1 };
        }
        *i += 1;
    };
    // The names in a `(a, b)` list or a `{a="x", b=~"y"}` matcher, ending after `close`.
    let names = |i: &mut usize, close: char| {
        let mut out = Vec::new();
        *i += 1;
        while *i < c.len() && c[*i] != close {
            if is_quote(c[*i]) {
                skip_string(i);
            } else if c[*i].is_ascii_alphabetic() || c[*i] == '_' {
                out.push(ident(i));
            } else {
                *i += 1;
            }
        }
        *i += 1;
        out
    };
    let mut out = Uses::default();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if is_quote(ch) {
            skip_string(&mut i);
        } else if ch == '[' {
            while i < c.len() && c[i] != ']' {
                i += 1;
            }
            i += 1;
        } else if ch.is_ascii_digit() || ch == '.' {
            // Numbers and durations (1e3, 0.99, 5m).
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '.') {
                i += 1;
            }
        } else if ch.is_ascii_alphabetic() || ch == '_' || ch == ':' {
            let word = ident(&mut i);
            skip_space(&mut i);
            let next = c.get(i).copied();
            if GROUPING.contains(&word.as_str()) {
                if next == Some('(') {
                    out.grouping.extend(names(&mut i, ')'));
                }
            } else if KEYWORDS.contains(&word.as_str()) || next == Some('(') {
                // An operator, an aggregation or a function.
            } else {
                let labels = if next == Some('{') {
                    names(&mut i, '}')
                } else {
                    Vec::new()
                };
                out.series.push((word, labels));
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Every sample name `/metrics` shows, with its labels; and the labels Prometheus adds to
/// every scraped series.
fn exposed() -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for family in Metrics::catalogue() {
        for sample in &family.samples {
            let mut labels: BTreeSet<String> = family.labels.iter().cloned().collect();
            labels.extend(["instance".to_owned(), "job".to_owned()]);
            if sample.ends_with("_bucket") {
                labels.insert("le".to_owned());
            }
            out.insert(sample.clone(), labels);
        }
    }
    out
}

/// What `expr` uses that hookwarden does not expose; `extra` are series of Prometheus
/// itself that the expression may use (`up`).
fn unknown(expr: &str, extra: &[&str]) -> Vec<String> {
    let exposed = exposed();
    let used = uses(expr);
    let mut problems = Vec::new();
    let mut labels: BTreeSet<String> = ["instance", "job", "le"].map(String::from).into();
    for (series, matchers) in &used.series {
        if extra.contains(&series.as_str()) {
            labels.extend(matchers.iter().cloned());
            continue;
        }
        let Some(has) = exposed.get(series) else {
            problems.push(format!("no series {series}"));
            continue;
        };
        labels.extend(has.iter().cloned());
        for m in matchers.iter().filter(|m| !has.contains(*m)) {
            problems.push(format!("{series} has no label {m}"));
        }
    }
    for g in used.grouping.iter().filter(|g| !labels.contains(*g)) {
        problems.push(format!("no series of the expression has the label {g}"));
    }
    if used.series.is_empty() {
        problems.push("names no series".to_owned());
    }
    problems
}

#[test]
fn the_expression_reader_finds_series_and_labels() {
    let u = uses(
        r#"histogram_quantile(0.99, sum by (hook, le) (rate(hookwarden_ack_seconds_bucket{instance=~"$instance", hook=~"a,b}"}[$__rate_interval]))) / on(hook) group_left max(up) > 1e3 and time() - x offset 5m"#,
    );
    assert_eq!(
        u.series,
        vec![
            (
                "hookwarden_ack_seconds_bucket".to_owned(),
                vec!["instance".to_owned(), "hook".to_owned()]
            ),
            ("up".to_owned(), vec![]),
            ("x".to_owned(), vec![]),
        ]
    );
    assert_eq!(u.grouping, ["hook", "le", "hook"]);
    assert_eq!(
        unknown(
            "sum by (sink) (hookwarden_requests_total{reason=\"x\"}) + nope",
            &[]
        ),
        [
            "hookwarden_requests_total has no label reason",
            "no series nope",
            "no series of the expression has the label sink"
        ]
    );
}

#[test]
fn the_alert_rules_pass_promtool_and_their_unit_tests() {
    let rules = alert_rules();
    let checked = promtool(&[
        "check",
        "rules",
        &repo("deploy/prometheus/alerts.yaml").display().to_string(),
    ]);
    assert!(
        checked.contains(&format!("SUCCESS: {} rules found", rules.len())),
        "every rule was read, and only those:\n{checked}"
    );
    let tested = promtool(&[
        "test",
        "rules",
        &repo("deploy/prometheus/alerts.test.yaml")
            .display()
            .to_string(),
    ]);
    assert!(tested.contains("SUCCESS"), "{tested}");
    // Each alert is tested firing, and its runbook is a heading of docs/operations.md.
    let tests = read("deploy/prometheus/alerts.test.yaml");
    let alerts = read("deploy/prometheus/alerts.yaml");
    let operations = read("docs/operations.md");
    for (name, _) in &rules {
        assert!(
            tests.contains(&format!(
                "alertname: {name}\n        exp_alerts:\n          - exp_labels"
            )),
            "alerts.test.yaml has no case where {name} fires"
        );
    }
    let mut runbooks = 0;
    for anchor in alerts
        .lines()
        .filter_map(|l| l.trim().strip_prefix("runbook: \"docs/operations.md#"))
    {
        let anchor = anchor.trim_end_matches('"');
        let heading = operations
            .lines()
            .any(|l| l.starts_with('#') && crate::docs::slug(l.trim_start_matches('#')) == anchor);
        assert!(
            heading,
            "docs/operations.md has no heading for the runbook #{anchor}"
        );
        runbooks += 1;
    }
    assert_eq!(runbooks, rules.len(), "every rule names its runbook");
}

#[test]
fn the_dashboard_and_the_alerts_name_only_series_hookwarden_exposes() {
    let mut problems = Vec::new();
    let rules = alert_rules();
    assert!(rules.len() >= 8, "{rules:?}");
    for (name, expr) in &rules {
        for p in unknown(expr, &["up"]) {
            problems.push(format!("alert {name}: {p}: {expr}"));
        }
    }
    let (exprs, variables) = dashboard_exprs();
    assert!(exprs.len() >= 20, "the dashboard's panels: {exprs:?}");
    for expr in &exprs {
        for p in unknown(expr, &[]) {
            problems.push(format!("dashboard: {p}: {expr}"));
        }
    }
    // A variable's query is `label_values(<selector>, <label>)`.
    for v in &variables {
        let inner = v
            .strip_prefix("label_values(")
            .and_then(|v| v.strip_suffix(')'))
            .unwrap_or_else(|| panic!("a variable that is not label_values: {v}"));
        let (selector, label) = inner
            .rsplit_once(',')
            .expect("label_values(selector, label)");
        let check = format!("sum by ({}) ({selector})", label.trim());
        for p in unknown(&check, &[]) {
            problems.push(format!("dashboard variable: {p}: {v}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // The series an operator needs most are on the dashboard.
    let shown: BTreeSet<String> = exprs
        .iter()
        .flat_map(|e| uses(e).series)
        .map(|(s, _)| s)
        .collect();
    for needed in [
        "hookwarden_backlog",
        "hookwarden_oldest_pending_age_seconds",
        "hookwarden_dead_letters_stored",
        "hookwarden_sink_attempt_seconds_bucket",
        "hookwarden_requests_total",
        "hookwarden_inline_calls_total",
        "hookwarden_ready",
        "hookwarden_tls_cert_not_after_timestamp_seconds",
        "hookwarden_build_info",
    ] {
        assert!(
            shown.contains(needed),
            "the dashboard does not show {needed}"
        );
    }
}

/// The dashboard's expressions are PromQL that Prometheus parses: promtool checks them as
/// recording rules, with Grafana's `$__rate_interval` set to a duration.
#[test]
fn the_dashboard_s_expressions_parse() {
    let (exprs, _) = dashboard_exprs();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, e) in exprs.iter().enumerate() {
        let e = e.replace("$__rate_interval", "5m");
        rules.push_str(&format!(
            "      - record: dashboard:expr_{i}\n        expr: {}\n",
            serde_json::to_string(&e).expect("a JSON string is a YAML string")
        ));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dashboard-rules.yaml");
    std::fs::write(&path, rules).expect("write");
    let checked = promtool(&["check", "rules", &path.display().to_string()]);
    assert!(
        checked.contains(&format!("SUCCESS: {} rules found", exprs.len())),
        "{checked}"
    );
}
