//! `hookwarden simulate`: calls a receiver (a hookwarden, or any other) the way Okta
//! does, and checks each answer against Okta's contract, so that an admin can test a
//! deployment before registering it with Okta, and CI can test ours.
//!
//! - what is sent: Okta's own samples, embedded, with fresh ids ([`crate::okta::samples`]).
//! - [`transport`]: how: HTTPS, 3 s per attempt, Okta's one retry, no redirects.
//! - [`judge`](mod@judge): whether Okta would take the answer, and what it would do with it.
//! - [`report`]: per-call lines, per-scenario summary, `--json`.
//!
//! [`prepare`] checks the command line ([`SimulateArgs`]), [`run`] makes the calls; the
//! command's entry point, [`crate::cli::simulate`], prints the report and gives the
//! exit code: 0 when every call passed (a call Okta only got through on its retry
//! passes, and is counted and shown as such), 1 when any failed, 2 when the command
//! line cannot be run (bad URL, `http://` without `--insecure`, missing env var), 3
//! when none failed but some answers were a hookwarden's fallback (warned: Okta takes
//! them, but the hook's handler is not working).

use crate::okta::samples as catalog;
pub mod judge;
pub mod report;
pub mod transport;

use crate::okta::inline::HookType;
use judge::{judge, Kind};
use report::{AttemptRecord, CallRecord, RunReport};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use reqwest::{Method, Url};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use transport::Transport;

/// The header carrying the verification challenge.
const CHALLENGE_HEADER: &str = "x-okta-verification-challenge";

const EXAMPLES: &str = "\
Examples:
  # Everything a hookwarden serves, secret from the environment (not the shell history):
  export HOOK_AUTH='Basic b2t0YTpzM2NyZXQ='
  hookwarden simulate https://hooks.example.com --auth-env HOOK_AUTH \\
      --event-hook /hooks/okta/events \\
      --inline token=/hooks/okta/token --inline registration=/hooks/okta/registration

  # The example configuration (config/hookwarden.toml) served locally, its development
  # certificate trusted:
  hookwarden simulate https://localhost:8443 --cacert data/tls/dev-cert.pem \\
      --basic okta:change-me-before-production --event-hook /hooks/okta/events

  # Load: 2,000 deliveries, 20 in flight, at most 200 calls a second, JSON for CI:
  hookwarden simulate https://hooks.example.com --auth-env HOOK_AUTH --event-hook /hooks/okta/events \\
      --scenario deliveries --count 2000 --concurrency 20 --rate 200/s --json

Okta's rules are applied: HTTPS only, 3 s per attempt, one retry after a timeout or a 5xx
(never for token and telephony hooks), none after a 2xx, 3xx or 4xx, redirects not followed.
An answer marked as a hookwarden's fallback (header X-Hookwarden-Fallback) is taken by Okta
but means the hook's handler is not working: it is reported as warn.
Exit code: 0 all calls passed, 1 some failed, 2 the command line cannot be run,
3 none failed but some got only the receiver's fallback (warn).";

/// `hookwarden simulate` arguments.
#[derive(Debug, clap::Args)]
#[group(skip)]
#[command(after_long_help = EXAMPLES)]
pub struct SimulateArgs {
    /// The receiver's base URL, e.g. https://hooks.example.com. Must be https:// (as Okta
    /// requires) unless --insecure.
    #[arg(value_name = "BASE_URL")]
    pub base_url: String,

    /// The event hook's path (or full URL): receives the verification GET and the deliveries.
    #[arg(long, value_name = "PATH")]
    pub event_hook: Option<String>,

    /// An inline hook, TYPE=PATH (repeatable). TYPE: token, registration, import,
    /// password_import, saml, telephony.
    #[arg(long = "inline", value_name = "TYPE=PATH", value_parser = parse_inline)]
    pub inline: Vec<(HookType, String)>,

    /// Scenarios to run (repeatable or comma-separated). Default: all that the given hooks
    /// allow (verify, deliveries and duplicates need --event-hook; inline needs --inline).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub scenario: Vec<ScenarioKind>,

    /// A header sent on every call, 'Name: value' (repeatable): Okta's auth header or
    /// custom headers as configured on the hook.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub headers: Vec<String>,

    /// Send `Authorization: Basic base64(USER:PASSWORD)`.
    #[arg(long, value_name = "USER:PASSWORD", group = "auth")]
    pub basic: Option<String>,

    /// Send `Authorization: Bearer TOKEN`.
    #[arg(long, value_name = "TOKEN", group = "auth")]
    pub bearer: Option<String>,

    /// Send `Authorization: <the value of this environment variable>`, e.g. a VAR holding
    /// 'Basic b2t0YTpzM2NyZXQ='; keeps the secret out of the shell history.
    #[arg(long, value_name = "VAR", group = "auth")]
    pub auth_env: Option<String>,

    /// Allow http:// URLs and accept any certificate (a development or self-signed one).
    /// Okta does neither: a deployment must pass without this.
    #[arg(long)]
    pub insecure: bool,

    /// Trust this certificate (PEM) as well as the system's roots; certificates are still
    /// verified, unlike with --insecure.
    #[arg(long, value_name = "PEM_FILE")]
    pub cacert: Option<PathBuf>,

    /// Calls per scenario (each cycles through its samples). Default: each sample once.
    #[arg(long, value_name = "N", conflicts_with = "duration")]
    pub count: Option<u64>,

    /// Keep calling for this long (e.g. 30s, 5m) instead of a count.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,

    /// Calls in flight at once.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// At most this many calls started per second: 50, 50/s or 600/m (retries not counted).
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub rate: Option<Rate>,

    /// Print one JSON document for the run on stdout (summary per scenario and every call)
    /// instead of the report.
    #[arg(long)]
    pub json: bool,

    /// Print failed calls and the summary only.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScenarioKind {
    /// The one-time verification GET (X-Okta-Verification-Challenge, echoed back).
    Verify,
    /// Event deliveries from Okta's samples, single events and batches, fresh uuids.
    Deliveries,
    /// A delivery sent, sent again as is, then its events under a new eventId.
    Duplicates,
    /// Each --inline hook called with Okta's request samples of its type.
    Inline,
}

/// Calls per second.
#[derive(Debug, Clone, Copy)]
pub struct Rate(pub f64);

fn parse_rate(s: &str) -> Result<Rate, String> {
    let (n, per) = match s.split_once('/') {
        Some((n, "s")) => (n, 1.0),
        Some((n, "m")) => (n, 60.0),
        Some(_) => return Err("write it as N, N/s or N/m".to_owned()),
        None => (s, 1.0),
    };
    match n.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Ok(Rate(n / per)),
        _ => Err(format!("{n:?} is not a positive number of calls")),
    }
}

fn parse_inline(s: &str) -> Result<(HookType, String), String> {
    let (name, path) = s
        .split_once('=')
        .ok_or_else(|| "write it as TYPE=PATH, e.g. token=/hooks/okta/token".to_owned())?;
    let name = name.trim().replace('-', "_");
    let hook_type = HookType::ALL
        .into_iter()
        .find(|t| t.name() == name)
        .ok_or_else(|| {
            let names: Vec<&str> = HookType::ALL.iter().map(|t| t.name()).collect();
            format!(
                "unknown inline hook type {name:?} (one of {})",
                names.join(", ")
            )
        })?;
    if path.trim().is_empty() {
        return Err("the path is empty".to_owned());
    }
    Ok((hook_type, path.trim().to_owned()))
}

/// One scenario of the run, with where it calls.
#[derive(Debug, Clone)]
enum Scenario {
    Verify(Url),
    Deliveries(Url),
    Duplicates(Url),
    Inline(HookType, Url),
}

impl Scenario {
    fn name(&self) -> String {
        match self {
            Scenario::Verify(_) => "verify".to_owned(),
            Scenario::Deliveries(_) => "deliveries".to_owned(),
            Scenario::Duplicates(_) => "duplicates".to_owned(),
            Scenario::Inline(t, _) => format!("inline {t}"),
        }
    }

    fn route(&self) -> (&'static str, &Url) {
        match self {
            Scenario::Verify(u) => ("GET", u),
            Scenario::Deliveries(u) | Scenario::Duplicates(u) | Scenario::Inline(_, u) => {
                ("POST", u)
            }
        }
    }

    /// Calls that use each sample once.
    fn catalog_len(&self) -> u64 {
        match self {
            Scenario::Verify(_) | Scenario::Duplicates(_) => 1,
            Scenario::Deliveries(_) => catalog::DELIVERY_KINDS as u64,
            Scenario::Inline(t, _) => catalog::inline_samples(*t).len() as u64,
        }
    }
}

/// What the command line asks for, checked ([`prepare`]); [`run`] carries it out.
pub struct Plan {
    base: Url,
    scenarios: Vec<Scenario>,
    count: Option<u64>,
    duration: Option<Duration>,
    concurrency: usize,
    rate: Option<Rate>,
    /// The report is wanted as JSON rather than as text.
    pub json: bool,
    quiet: bool,
    insecure: bool,
}

/// Checks the command line and builds what the calls need; an `Err` is a command line
/// that cannot be run (exit code 2).
pub fn prepare(args: SimulateArgs) -> Result<(Plan, Transport), String> {
    let base = Url::parse(&args.base_url)
        .map_err(|e| format!("BASE_URL {:?} is not a URL: {e}", args.base_url))?;
    let resolve = |what: &str, path: &str| -> Result<Url, String> {
        let url = base
            .join(path)
            .map_err(|e| format!("{what} {path:?} is not a path or URL: {e}"))?;
        match url.scheme() {
            "https" => Ok(url),
            "http" if args.insecure => Ok(url),
            "http" => Err(format!(
                "{} is plain http://; Okta only calls https:// URLs. Give an https:// URL, or add \
                 --insecure to test a local plain-HTTP receiver anyway",
                without_credentials(&url)
            )),
            other => Err(format!("{what}: scheme {other}:// is not https://")),
        }
    };
    // The base URL itself is checked too, so that a bare `simulate http://...` is refused
    // with the same message even before any hook is named.
    resolve("BASE_URL", "")?;
    let event_url = args
        .event_hook
        .as_deref()
        .map(|p| resolve("--event-hook", p))
        .transpose()?;
    let inline: Vec<(HookType, Url)> = args
        .inline
        .iter()
        .map(|(t, p)| Ok((*t, resolve("--inline", p)?)))
        .collect::<Result<_, String>>()?;

    let wanted: Vec<ScenarioKind> = if args.scenario.is_empty() {
        let mut all = Vec::new();
        if event_url.is_some() {
            all.extend([
                ScenarioKind::Verify,
                ScenarioKind::Deliveries,
                ScenarioKind::Duplicates,
            ]);
        }
        if !inline.is_empty() {
            all.push(ScenarioKind::Inline);
        }
        all
    } else {
        args.scenario.clone()
    };
    if wanted.is_empty() {
        return Err("nothing to call: give --event-hook PATH and/or --inline TYPE=PATH".to_owned());
    }
    let mut scenarios = Vec::new();
    for kind in [
        ScenarioKind::Verify,
        ScenarioKind::Deliveries,
        ScenarioKind::Duplicates,
        ScenarioKind::Inline,
    ] {
        if !wanted.contains(&kind) {
            continue;
        }
        let need_event = || {
            event_url.clone().ok_or_else(|| {
                format!(
                    "--scenario {} needs --event-hook PATH",
                    format!("{kind:?}").to_lowercase()
                )
            })
        };
        match kind {
            ScenarioKind::Verify => scenarios.push(Scenario::Verify(need_event()?)),
            ScenarioKind::Deliveries => scenarios.push(Scenario::Deliveries(need_event()?)),
            ScenarioKind::Duplicates => scenarios.push(Scenario::Duplicates(need_event()?)),
            ScenarioKind::Inline => {
                if inline.is_empty() {
                    return Err("--scenario inline needs at least one --inline TYPE=PATH".into());
                }
                scenarios.extend(inline.iter().map(|(t, u)| Scenario::Inline(*t, u.clone())));
            }
        }
    }
    if args.count == Some(0) {
        return Err("--count must be at least 1".to_owned());
    }

    let headers = headers(&args)?;
    let ca = args
        .cacert
        .as_deref()
        .map(|p| std::fs::read(p).map_err(|e| format!("--cacert {}: {e}", p.display())))
        .transpose()?;
    let transport =
        Transport::new(headers, args.insecure, ca.as_deref()).map_err(|e| e.to_string())?;
    Ok((
        Plan {
            base,
            scenarios,
            count: args.count,
            duration: args.duration,
            concurrency: usize::from(args.concurrency),
            rate: args.rate,
            json: args.json,
            quiet: args.quiet,
            insecure: args.insecure,
        },
        transport,
    ))
}

/// The headers of every call. Values are marked sensitive and never printed: messages
/// name the header, not its value.
fn headers(args: &SimulateArgs) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for h in &args.headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| "--header: write it as 'Name: value'".to_owned())?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| format!("--header: {:?} is not a header name", name.trim()))?;
        let mut value = HeaderValue::from_str(value.trim())
            .map_err(|_| format!("--header {name}: the value cannot be sent in HTTP"))?;
        value.set_sensitive(true);
        map.append(name, value);
    }
    let authorization = if let Some(userpass) = &args.basic {
        if !userpass.contains(':') {
            return Err("--basic: write it as USER:PASSWORD".to_owned());
        }
        use base64::Engine;
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(userpass)
        ))
    } else if let Some(token) = &args.bearer {
        Some(format!("Bearer {token}"))
    } else if let Some(var) = &args.auth_env {
        let value = std::env::var(var).map_err(|_| {
            format!("--auth-env {var}: the environment variable is not set (or not UTF-8)")
        })?;
        if value.trim().is_empty() {
            return Err(format!(
                "--auth-env {var}: the environment variable is empty"
            ));
        }
        Some(value.trim().to_owned())
    } else {
        None
    };
    if let Some(value) = authorization {
        if map.contains_key(AUTHORIZATION) {
            return Err(
                "an Authorization --header and --basic/--bearer/--auth-env: give one".to_owned(),
            );
        }
        let mut value = HeaderValue::from_str(&value)
            .map_err(|_| "the Authorization value cannot be sent in HTTP".to_owned())?;
        value.set_sensitive(true);
        map.insert(AUTHORIZATION, value);
    }
    Ok(map)
}

fn without_credentials(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

/// Spaces call starts `1/rate` apart, across every task.
struct Pacer {
    period: Option<Duration>,
    next: tokio::sync::Mutex<tokio::time::Instant>,
}

impl Pacer {
    fn new(rate: Option<Rate>) -> Pacer {
        Pacer {
            period: rate.map(|r| Duration::from_secs_f64(1.0 / r.0)),
            next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    async fn wait(&self) {
        let Some(period) = self.period else { return };
        let slot = {
            let mut next = self.next.lock().await;
            let slot = (*next).max(tokio::time::Instant::now());
            *next = slot + period;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

struct Ctx {
    transport: Transport,
    pacer: Pacer,
    base: Url,
}

/// One unit of work: the `n`th call of a scenario (duplicates: three calls).
#[derive(Debug, Clone)]
struct Job {
    seq: usize,
    scenario: Scenario,
    n: usize,
}

/// Makes every call of the plan; the report says what Okta would have made of each answer.
pub async fn run(plan: &Plan, transport: Transport) -> RunReport {
    let started = Instant::now();
    let ctx = Arc::new(Ctx {
        transport,
        pacer: Pacer::new(plan.rate),
        base: plan.base.clone(),
    });
    let deadline = plan.duration.map(|d| Instant::now() + d);
    // With a count, scenario after scenario (the verification first, as Okta verifies
    // before it delivers); for a duration, round robin so every scenario gets its share.
    let jobs: Box<dyn Iterator<Item = (Scenario, u64)> + '_> = if deadline.is_some() {
        Box::new(
            (0..u64::MAX)
                .flat_map(move |round| plan.scenarios.iter().map(move |s| (s.clone(), round))),
        )
    } else {
        Box::new(plan.scenarios.iter().flat_map(move |s| {
            let n = plan.count.unwrap_or_else(|| s.catalog_len());
            (0..n).map(move |i| (s.clone(), i))
        }))
    };
    let jobs = jobs.enumerate().map(|(seq, (scenario, n))| Job {
        seq,
        scenario,
        n: usize::try_from(n).unwrap_or(usize::MAX),
    });

    let limit = Arc::new(tokio::sync::Semaphore::new(plan.concurrency));
    let mut tasks: tokio::task::JoinSet<(usize, Vec<CallRecord>)> = tokio::task::JoinSet::new();
    let mut results: Vec<(usize, Vec<CallRecord>)> = Vec::new();
    let show = |records: &[CallRecord]| {
        if plan.json {
            return;
        }
        for r in records {
            if !plan.quiet || !r.result.passed() {
                println!("{}", report::human_line(r));
            }
        }
    };
    if !plan.json {
        let routes: Vec<(String, String)> = plan
            .scenarios
            .iter()
            .map(|s| {
                let (method, url) = s.route();
                (
                    s.name(),
                    format!("{method} {}", shown_path(&plan.base, url)),
                )
            })
            .collect();
        print!(
            "{}",
            report::human_header(&without_credentials(&plan.base), plan.insecure, &routes)
        );
    }
    // Ctrl-C stops starting calls; those in flight finish and the summary is printed,
    // so that an interrupted load run still reports what it measured.
    let interrupted = tokio_util::sync::CancellationToken::new();
    let on_signal = interrupted.clone();
    let signal_task = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });
    for job in jobs {
        if deadline.is_some_and(|d| Instant::now() >= d) || interrupted.is_cancelled() {
            break;
        }
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => permit,
            () = interrupted.cancelled() => break,
        };
        let Ok(permit) = permit else {
            break;
        };
        while let Some(done) = tasks.try_join_next() {
            if let Ok(done) = done {
                show(&done.1);
                results.push(done);
            }
        }
        let ctx = ctx.clone();
        tasks.spawn(async move {
            let _permit = permit;
            (job.seq, run_job(&ctx, &job).await)
        });
    }
    while let Some(done) = tasks.join_next().await {
        if let Ok(done) = done {
            show(&done.1);
            results.push(done);
        }
    }
    signal_task.abort();
    if interrupted.is_cancelled() && !plan.json {
        println!("interrupted: no new calls started after Ctrl-C");
    }
    results.sort_by_key(|(seq, _)| *seq);
    let order: Vec<String> = plan.scenarios.iter().map(Scenario::name).collect();
    RunReport::new(
        without_credentials(&plan.base),
        plan.insecure,
        &order,
        results.into_iter().flat_map(|(_, r)| r).collect(),
        started.elapsed(),
    )
}

async fn run_job(ctx: &Ctx, job: &Job) -> Vec<CallRecord> {
    let name = job.scenario.name();
    match &job.scenario {
        Scenario::Verify(url) => {
            let challenge = format!("hookwarden-simulate-{}", uuid::Uuid::new_v4().simple());
            let header = (
                HeaderName::from_static(CHALLENGE_HEADER),
                HeaderValue::from_str(&challenge)
                    .unwrap_or_else(|_| HeaderValue::from_static("hookwarden-simulate")),
            );
            let kind = Kind::Verify {
                challenge: header.1.to_str().unwrap_or_default().to_owned(),
            };
            vec![
                call(
                    ctx,
                    name,
                    "challenge",
                    Method::GET,
                    url,
                    &[header],
                    None,
                    kind,
                    None,
                    Vec::new(),
                )
                .await,
            ]
        }
        Scenario::Deliveries(url) => {
            let d = catalog::delivery(job.n);
            vec![delivery_call(ctx, name, d.label.clone(), url, &d).await]
        }
        Scenario::Duplicates(url) => {
            let d = catalog::duplicate_batch();
            let again = catalog::rebatched(&d);
            vec![
                delivery_call(
                    ctx,
                    name.clone(),
                    format!("{} (first send)", d.label),
                    url,
                    &d,
                )
                .await,
                delivery_call(
                    ctx,
                    name.clone(),
                    "the same delivery again (same eventId and uuids)".to_owned(),
                    url,
                    &d,
                )
                .await,
                delivery_call(ctx, name, again.label.clone(), url, &again).await,
            ]
        }
        Scenario::Inline(hook_type, url) => {
            let (sample, request) = catalog::inline_request(*hook_type, job.n);
            let body = serde_json::to_vec(&request).unwrap_or_default();
            let event_id = request["eventId"].as_str().map(str::to_owned);
            let kind = Kind::Inline {
                hook_type: *hook_type,
                request,
            };
            vec![
                call(
                    ctx,
                    name,
                    sample,
                    Method::POST,
                    url,
                    &[],
                    Some(body),
                    kind,
                    event_id,
                    Vec::new(),
                )
                .await,
            ]
        }
    }
}

async fn delivery_call(
    ctx: &Ctx,
    scenario: String,
    label: String,
    url: &Url,
    d: &catalog::Delivery,
) -> CallRecord {
    let body = serde_json::to_vec(&d.body).unwrap_or_default();
    let kind = Kind::Delivery {
        events: d.event_count(),
    };
    let event_id = d.body["eventId"].as_str().map(str::to_owned);
    call(
        ctx,
        scenario,
        label,
        Method::POST,
        url,
        &[],
        Some(body),
        kind,
        event_id,
        d.uuids(),
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn call(
    ctx: &Ctx,
    scenario: String,
    sample: impl Into<String>,
    method: Method,
    url: &Url,
    extra: &[(HeaderName, HeaderValue)],
    body: Option<Vec<u8>>,
    kind: Kind,
    event_id: Option<String>,
    uuids: Vec<String>,
) -> CallRecord {
    ctx.pacer.wait().await;
    let attempts = ctx
        .transport
        .call(method.clone(), url, extra, body, kind.retried_by_okta())
        .await;
    let verdict = judge(&kind, &attempts);
    CallRecord {
        scenario,
        sample: sample.into(),
        method: if method == Method::GET { "GET" } else { "POST" },
        path: shown_path(&ctx.base, url),
        event_id,
        uuids,
        attempts: attempts.iter().map(AttemptRecord::from_attempt).collect(),
        result: verdict.outcome,
        okta: verdict.okta,
        problem: verdict.problem,
    }
}

/// The path when the URL is on the base URL's host, else the whole URL (no credentials).
fn shown_path(base: &Url, url: &Url) -> String {
    if base.origin() == url.origin() {
        url.path().to_owned()
    } else {
        without_credentials(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_inline_hooks_parse() {
        assert_eq!(parse_rate("50").map(|r| r.0).ok(), Some(50.0));
        assert_eq!(parse_rate("600/m").map(|r| r.0).ok(), Some(10.0));
        assert!(parse_rate("0/s").is_err());
        assert!(parse_rate("5/h").is_err());
        assert_eq!(
            parse_inline("password-import=/p").ok(),
            Some((HookType::PasswordImport, "/p".to_owned()))
        );
        assert!(parse_inline("tokens=/t").is_err());
        assert!(parse_inline("token").is_err());
    }
}
