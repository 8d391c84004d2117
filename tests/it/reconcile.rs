//! System Log reconciliation against a fake Okta System Log API started here (axum over
//! real TLS on 127.0.0.1, serving Okta's real sample events with fresh uuids): pagination,
//! rate limits, 429 and 5xx on the way, dedupe with events the hook delivered, the
//! background job and its cursor across a restart, the CLI as the real binary, OAuth
//! client credentials with `private_key_jwt`, and the configuration's problems.

use crate::util::*;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hookwarden::config::Config;
use hookwarden::reconcile::Reconciler;
use hookwarden::store::sqlite::SqliteStore;
use hookwarden::store::Store;
use hookwarden::time::now_millis;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const TOKEN: &str = "00test-ssws-token-for-the-fake-okta";
const TYPES: &str = r#"["user.session.start", "user.lifecycle.deactivate"]"#;
const FILTER: &str =
    r#"eventType eq "user.session.start" or eventType eq "user.lifecycle.deactivate""#;

// Test-only RSA key pair of the fake service app (`openssl genrsa 2048`). It protects nothing.
const APP_KEY_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCjJSzSUFlua+4W
mzSlIOXKsfar2yVD0rUJjuh/YOhKfhz8cs6D8NEXK0CnJQ9GpWMwWfMQD0hvHsVz
sCD6LqcMumzdmQ3P7MUsOoxsjo/+rNn0LuX5VXpkl7g0U8/hQ1FBhXf63KuOK0to
qVBboyRYjU5BWYX1f2Co7zZi04pwVExeCsMcyzb8HvdoyLMuzeiB1Kwpkf00HNoY
JKTsxpWxBVOzT3yynuGylIdqi6dmYihvrXw0Yxy4hQvQGnNpKmHGpXuWwwcbvdYg
X+9qleIgaOdP7QAzGjekr2kDSEEQHKn7GSmoNXhyLHLJqXBmf6AnVZPKfuOxmsw4
LEJ9jyFlAgMBAAECggEAHdT1o/R40fHu7JfPUdWY505Q8H5nS0Zbf8avuWEPQNXc
N4ZHwIUXusCYNygV6cFiyIveIATnZhhOmzes5AqFVdS+BOxQhAGD0XFYTZ5o8rUJ
OrcbqtLISV4b2werVsHQOSaueIMC5MGCbb4uGT+U7RNTqKv1zJ0Q3/sz6vDLGvxo
KhrSXFBuF1HwWS3k5DY+tsL9S6Wo3BcEVirWZrC/GnhLzz9hWf+PDdCuTb12Cmuq
OqRe5QZRemHrPO+75DRNzP/mkT9OJatUut16i6up4ZwHGQzInw4Zu/ZY8Vc4XcGf
a3MDI9ODUOlA9XGX1d5g/V2lBV7T+aAlKX1FD62HSQKBgQDdgF0t1CqvgdeADhFW
N6L3DhZDvdpMV8KQQimkCMgX2o/0hm9SQ8/cwLmMPKyUMPpEG1mPS73pfyeYXQGz
//I/u2DTOGmCDpZIiqUYuLBAXpCVoXAodJIWpo0vm3RMjqFoHgq8tFrz9uCJB1IE
HOMoqLOhVJAyZsZKYSCPZv5wyQKBgQC8jgzvMHBTyUwq7EogLqidFOxMU5RC632Q
fjGi0OHlsOqc0gzIuBgEtQV2e91cLIfflJa2uGTjkhLz7kAuRvHXIXmtaYe74M/w
Gnss+VE3aPgg3f6ZS44psk0fJxYNBPzf11qk7NUzWs7yWQ/TplBBLQahPxJt+Fpq
bJKCp9p1vQKBgGYtiM5TST2dD+QqmSTElZCSFwM42TLOaRpS6xKYWnVmhXGvcjro
vUKARRfEBXh2/3vbgfzwW7MSzRkkDl0SfJWZwpitNT6hrAHasz4sNGH9PYVI64w9
+gYo3ohPld6bDSoScbGLIUnZYMrVbagoC0H+UJ7je4FEl8RH+dUtFcLBAoGAJEVz
KYP457U+aLdhnwU6vFTtC9W8HI9ubSBJbheejO/WgepKOUZooGcuMNetAnEyhgjw
YR/hkIFmEfSP9hcBqK+w13IIgVTCy15cuY8QV4diy/fIZTbKlyzMdySusjx2ZJzp
u/YvIRzj2GzXhZBludPuhZA7fFodEoHmQSoG9UUCgYBMlB1XTm22VVOLYOGP8G0x
2mBH/dUBGF8lzZ6+ifKXIBTMnG/z7FyFzvp4mMirZpArG3dVJ/WfECRUZoTBdBoU
u1oZDa1YDQeHYqBS2kPLY05TsHOwThnCHBa1k7Qw9mxfK4x54DzNha4Z78ZyxYkE
ccC1tM+23crLRrGHTfF1LA==
-----END PRIVATE KEY-----
";
const APP_KEY_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAoyUs0lBZbmvuFps0pSDl
yrH2q9slQ9K1CY7of2DoSn4c/HLOg/DRFytApyUPRqVjMFnzEA9Ibx7Fc7Ag+i6n
DLps3ZkNz+zFLDqMbI6P/qzZ9C7l+VV6ZJe4NFPP4UNRQYV3+tyrjitLaKlQW6Mk
WI1OQVmF9X9gqO82YtOKcFRMXgrDHMs2/B73aMizLs3ogdSsKZH9NBzaGCSk7MaV
sQVTs098sp7hspSHaounZmIob618NGMcuIUL0BpzaSphxqV7lsMHG73WIF/vapXi
IGjnT+0AMxo3pK9pA0hBEByp+xkpqDV4cixyyalwZn+gJ1WTyn7jsZrMOCxCfY8h
ZQIDAQAB
-----END PUBLIC KEY-----
";

/// Something the fake answers instead of a page, on one numbered request to the logs API.
#[derive(Clone, Debug)]
enum Fault {
    /// The page, with `X-Rate-Limit-Remaining: 0` and the reset this many seconds ahead.
    LowRemaining(u64),
    /// 429 with the reset this many seconds ahead.
    TooMany(u64),
    /// 500.
    ServerError,
}

/// A request the fake logs API received.
#[derive(Clone, Debug)]
struct Seen {
    query: HashMap<String, String>,
    auth: String,
    at: Instant,
}

#[derive(Default)]
struct Fake {
    base: String,
    /// Page `n` is served for `after=n` (no `after`: page 0); each but the last links the next.
    pages: Vec<Vec<Value>>,
    faults: HashMap<usize, Fault>,
    /// The `Authorization` value the logs API requires.
    auth: String,
    seen: Vec<Seen>,
    /// OAuth: (client id, access token handed out); the assertions' claims seen.
    oauth: Option<(String, String)>,
    assertions: Vec<(Value, Option<String>)>,
}

struct FakeOkta {
    base: String,
    state: Arc<Mutex<Fake>>,
    ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl FakeOkta {
    async fn start(fake: Fake) -> FakeOkta {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tmp");
        let (cert, key, _) = write_cert(dir.path(), "okta");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let base = format!(
            "https://127.0.0.1:{}",
            listener.local_addr().expect("addr").port()
        );
        let state = Arc::new(Mutex::new(Fake {
            base: base.clone(),
            ..fake
        }));
        let app = axum::Router::new()
            .route("/api/v1/logs", axum::routing::get(logs))
            .route("/oauth2/v1/token", axum::routing::post(token))
            .with_state(state.clone());
        let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&cert, &key)
            .await
            .expect("tls");
        let server = axum_server::from_tcp_rustls(listener, tls).expect("server");
        tokio::spawn(server.serve(app.into_make_service()));
        FakeOkta {
            base,
            state,
            ca: cert,
            _dir: dir,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.lock().expect("lock").seen.clone()
    }

    fn set_faults(&self, faults: &[(usize, Fault)]) {
        let mut f = self.state.lock().expect("lock");
        let base = f.seen.len();
        f.faults = faults.iter().map(|(n, x)| (base + n, x.clone())).collect();
    }

    /// The `[okta]` section for this fake (`okta` adds keys, e.g. the SSWS token) and
    /// the `[reconcile]` section (`reconcile` adds keys).
    fn toml(&self, okta: &str, reconcile: &str) -> String {
        format!(
            r#"
[okta]
org_url = "{base}"
ca_file = "{ca}"
{okta}
max_wait = "5s"
backoff = "100ms"
rate_limit_reserve = 0
[reconcile]
{reconcile}
[[reconcile.hooks]]
hook = "okta"
event_types = {TYPES}
"#,
            base = self.base,
            ca = self.ca.display(),
        )
    }
}

fn epoch_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn logs(
    State(state): State<Arc<Mutex<Fake>>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut f = state.lock().expect("lock");
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let n = f.seen.len();
    f.seen.push(Seen {
        query: query.clone(),
        auth: auth.clone(),
        at: Instant::now(),
    });
    if auth != f.auth {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"errorCode": "E0000011", "errorSummary": "Invalid token provided"})),
        )
            .into_response();
    }
    let now = epoch_secs();
    let (remaining, reset) = match f.faults.get(&n) {
        Some(Fault::TooMany(ahead)) => {
            let mut r = (
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({"errorCode": "E0000047", "errorSummary": "API call exceeded rate limit due to too many requests."})),
            )
                .into_response();
            let h = r.headers_mut();
            h.insert("x-rate-limit-remaining", HeaderValue::from_static("0"));
            h.insert("x-rate-limit-reset", HeaderValue::from(now + ahead));
            return r;
        }
        Some(Fault::ServerError) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"errorSummary": "Internal Server Error"})),
            )
                .into_response()
        }
        Some(Fault::LowRemaining(ahead)) => (0u64, now + ahead),
        None => (100, now + 60),
    };
    let page: usize = query.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
    let events = f.pages.get(page).cloned().unwrap_or_default();
    let mut r = Json(Value::Array(events)).into_response();
    let h = r.headers_mut();
    h.insert("x-rate-limit-limit", HeaderValue::from(120u64));
    h.insert("x-rate-limit-remaining", HeaderValue::from(remaining));
    h.insert("x-rate-limit-reset", HeaderValue::from(reset));
    let link = |after: Option<usize>, rel: &str| {
        let mut u = url::Url::parse(&format!("{}/api/v1/logs", f.base)).expect("url");
        for (k, v) in query.iter().filter(|(k, _)| *k != "after") {
            u.query_pairs_mut().append_pair(k, v);
        }
        if let Some(a) = after {
            u.query_pairs_mut().append_pair("after", &a.to_string());
        }
        HeaderValue::from_str(&format!("<{u}>; rel=\"{rel}\"")).expect("link")
    };
    h.append("link", link((page > 0).then_some(page), "self"));
    if page + 1 < f.pages.len() {
        h.append("link", link(Some(page + 1), "next"));
    }
    r
}

async fn token(
    State(state): State<Arc<Mutex<Fake>>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut f = state.lock().expect("lock");
    let refuse = |why: String| {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client", "error_description": why})),
        )
            .into_response()
    };
    let Some((client_id, access_token)) = f.oauth.clone() else {
        return refuse("no OAuth in this test".into());
    };
    if form.get("grant_type").map(String::as_str) != Some("client_credentials")
        || form.get("scope").map(String::as_str) != Some("okta.logs.read")
        || form.get("client_assertion_type").map(String::as_str)
            != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        return refuse(format!("bad form: {form:?}"));
    }
    let assertion = form.get("client_assertion").cloned().unwrap_or_default();
    let token_url = format!("{}/oauth2/v1/token", f.base);
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&[&token_url]);
    v.set_issuer(&[&client_id]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v.leeway = 0;
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(APP_KEY_PUBLIC.as_bytes()).expect("pub");
    let data = match jsonwebtoken::decode::<Value>(&assertion, &key, &v) {
        Ok(d) => d,
        Err(e) => return refuse(format!("client assertion: {e}")),
    };
    let c = &data.claims;
    let lifetime = c["exp"]
        .as_u64()
        .unwrap_or(0)
        .saturating_sub(c["iat"].as_u64().unwrap_or(0));
    if c["sub"] != client_id.as_str()
        || c["jti"].as_str().is_none_or(str::is_empty)
        || lifetime > 3600
    {
        return refuse(format!("claims: {c}"));
    }
    let jti = c["jti"].clone();
    if f.assertions.iter().any(|(seen, _)| seen["jti"] == jti) {
        return refuse("jti replayed".into());
    }
    f.assertions.push((c.clone(), data.header.kid.clone()));
    Json(json!({
        "token_type": "Bearer",
        "expires_in": 3600,
        "access_token": access_token,
        "scope": "okta.logs.read"
    }))
    .into_response()
}

/// `n` System Log events built from Okta's samples (the System Log sample, the events of
/// both hook delivery samples, the deactivate sample), each with a fresh uuid.
fn okta_events(n: usize) -> Vec<Value> {
    let parse = |name: &str| -> Value { serde_json::from_str(&fixture(name)).expect("json") };
    let templates = [
        parse("system-log-event-user-session-start-security-context.json"),
        parse("event-hook-delivery.json")["data"]["events"][0].clone(),
        parse("event-hook-delivery-2019.json")["data"]["events"][0].clone(),
        parse("event-hook-event-user-lifecycle-deactivate.json"),
    ];
    (0..n)
        .map(|i| {
            let mut e = templates[i % templates.len()].clone();
            e["uuid"] = Value::String(uuid::Uuid::new_v4().to_string());
            e
        })
        .collect()
}

fn bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_hookwarden"))
}

fn parse_rfc3339_ms(s: &str) -> i64 {
    humantime::parse_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .expect("after epoch")
}

/// Runs `hookwarden reconcile` with the given arguments; returns (exit code, stdout, stderr).
fn reconcile_cli(config: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = bin();
    cmd.arg("reconcile").args(args).arg("--config").arg(config);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run hookwarden reconcile");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_recovers_what_the_hook_missed_across_pages_rate_limits_and_errors() {
    let events = okta_events(7);
    let fake = FakeOkta::start(Fake {
        pages: vec![
            events[..3].to_vec(),
            events[3..5].to_vec(),
            events[5..].to_vec(),
        ],
        auth: format!("SSWS {TOKEN}"),
        ..Fake::default()
    })
    .await;
    let tmp = tempfile::tempdir().expect("tmp");
    let toml = format!(
        "{}{}",
        default_hook(tmp.path()),
        fake.toml(
            &format!("api_token = \"{TOKEN}\""),
            "background = false\npage_size = 3"
        )
    );
    let s = start(Options {
        toml: Some(toml),
        ..Options::default()
    })
    .await;
    let jsonl = tmp.path().join("events.jsonl");

    // Okta did deliver two of the seven through the hook.
    let delivered = [events[0].clone(), events[4].clone()];
    assert_eq!(s.deliver(&envelope(&delivered)).await.status(), 200);
    wait_jsonl(&jsonl, 2, Duration::from_secs(10)).await;

    // A dry run compares and stores nothing.
    let (code, out, err) = reconcile_cli(
        &s.config_path,
        &["--since", "1h", "--until", "0s", "--dry-run"],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("okta: 3 pages, 7 fetched, 2 already stored, 5 to recover"),
        "{out}"
    );
    assert!(out.contains("(dry run: nothing is stored)"), "{out}");
    println!("$ hookwarden reconcile --since 1h --until 0s --dry-run\n{out}");

    // The real run meets, in order: a page that leaves no calls until the reset 2 s
    // ahead, a 429, a 500; and recovers from all three.
    fake.set_faults(&[
        (0, Fault::LowRemaining(2)),
        (1, Fault::TooMany(1)),
        (2, Fault::ServerError),
    ]);
    let first = fake.seen().len();
    let started = now_millis();
    let (code, out, err) = reconcile_cli(&s.config_path, &["--since", "1h", "--until", "0s"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("okta: 3 pages, 7 fetched, 2 already stored, 5 recovered"),
        "{out}"
    );
    println!("$ hookwarden reconcile --since 1h --until 0s\n{out}");
    let seen = fake.seen()[first..].to_vec();
    assert_eq!(
        seen.len(),
        5,
        "page 0, 429, 500, page 1 again, page 2: {seen:?}"
    );
    // The call after "remaining 0" waited for the reset (1 to 2 s ahead, in whole seconds).
    let waited = seen[1].at - seen[0].at;
    assert!(
        waited >= Duration::from_millis(900),
        "waited only {waited:?}"
    );
    for r in &seen {
        assert_eq!(r.auth, format!("SSWS {TOKEN}"));
        assert_eq!(r.query["filter"], FILTER);
        assert_eq!(r.query["limit"], "3");
        assert_eq!(r.query["sortOrder"], "ASCENDING");
    }
    let since = parse_rfc3339_ms(&seen[0].query["since"]);
    let until = parse_rfc3339_ms(&seen[0].query["until"]);
    assert!(
        (started - 3_600_000 - since).abs() < 60_000,
        "since {since}"
    );
    assert!((started - until).abs() < 60_000, "until {until}");
    assert!(!seen[0].query.contains_key("after"));
    assert_eq!(seen[4].query["after"], "2", "the next links were followed");

    // Every event reached the sink once; the missing ones marked recovered, byte for byte.
    let records = wait_jsonl(&jsonl, 7, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let records = {
        let again = read_jsonl(&jsonl);
        assert_eq!(again.len(), records.len(), "no more records after the 7th");
        again
    };
    let got: HashSet<String> = uuids(&records).into_iter().collect();
    let want: HashSet<String> = events
        .iter()
        .map(|e| e["uuid"].as_str().expect("uuid").to_owned())
        .collect();
    assert_eq!(got, want);
    assert_eq!(records.len(), 7, "nothing twice");
    let delivered_uuids: HashSet<&str> = delivered
        .iter()
        .map(|e| e["uuid"].as_str().expect("uuid"))
        .collect();
    for r in &records {
        let uuid = r["uuid"].as_str().expect("uuid");
        if delivered_uuids.contains(uuid) {
            assert!(
                r.get("recovered").is_none(),
                "delivered, not recovered: {r}"
            );
        } else {
            assert_eq!(r["recovered"], true, "{r}");
            let original = events.iter().find(|e| e["uuid"] == uuid).expect("served");
            assert_eq!(&r["event"], original);
        }
    }

    // `events list` says which came from where.
    let out = bin()
        .args(["events", "list", "--config"])
        .arg(&s.config_path)
        .output()
        .expect("events list");
    let table = String::from_utf8_lossy(&out.stdout);
    println!("$ hookwarden events list\n{table}");
    assert!(
        table.lines().next().unwrap_or("").contains("SOURCE"),
        "{table}"
    );
    assert_eq!(table.matches(" recovered ").count(), 5, "{table}");
    assert_eq!(table.matches(" hook ").count(), 2, "{table}");

    // Again: nothing is missing any more.
    let (code, out, _) = reconcile_cli(&s.config_path, &["--since", "1h", "--until", "0s"], &[]);
    assert_eq!(code, 0);
    assert!(
        out.contains("7 fetched, 7 already stored, 0 recovered"),
        "{out}"
    );

    // A refused token: non-zero, the URL and the status, never the token.
    let (code, out, err) = reconcile_cli(
        &s.config_path,
        &["--since", "1h"],
        &[("HOOKWARDEN__OKTA__API_TOKEN", "wrong-token-value-42")],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains(&format!(
            "okta: failed: GET {}/api/v1/logs?… answered 401",
            fake.base
        )),
        "{err}"
    );
    assert!(err.contains("Invalid token provided"), "{err}");
    assert!(!err.contains("wrong-token-value-42") && !out.contains("wrong-token-value-42"));
    println!("$ hookwarden reconcile --since 1h   # a refused token; exit {code}\n{out}{err}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_job_recovers_and_continues_from_its_cursor_after_a_restart() {
    let events = okta_events(2);
    let fake = FakeOkta::start(Fake {
        pages: vec![events.clone()],
        auth: format!("SSWS {TOKEN}"),
        ..Fake::default()
    })
    .await;
    let tmp = tempfile::tempdir().expect("tmp");
    let toml = format!(
        "{}{}",
        default_hook(tmp.path()),
        fake.toml(
            &format!("api_token = \"{TOKEN}\""),
            "interval = \"300ms\"\ndelay = \"2s\"\noverlap = \"1s\"\ninitial_lookback = \"1h\""
        )
    );
    let started = now_millis();
    let s = start(Options {
        toml: Some(toml),
        ..Options::default()
    })
    .await;
    let jsonl = tmp.path().join("events.jsonl");
    let records = wait_jsonl(&jsonl, 2, Duration::from_secs(10)).await;
    assert!(
        records.iter().all(|r| r["recovered"] == true),
        "{records:?}"
    );
    s.wait_metric("hookwarden_reconcile_recovered_total", "hook=\"okta\"", 2.0)
        .await;
    // The first pass of a hook with no cursor starts initial_lookback ago and ends delay ago.
    let first = fake.seen()[0].clone();
    let since = parse_rfc3339_ms(&first.query["since"]);
    let until = parse_rfc3339_ms(&first.query["until"]);
    assert!(
        (started - 3_600_000 - since).abs() < 30_000,
        "since {since}"
    );
    assert!(
        until <= now_millis() - 2_000 && until > started - 30_000,
        "until {until}"
    );

    // Let a later pass run, then restart hookwarden on the same store.
    let deadline = Instant::now() + Duration::from_secs(10);
    while fake.seen().len() < 3 {
        assert!(Instant::now() < deadline, "no later passes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let later = parse_rfc3339_ms(&fake.seen()[2].query["since"]);
    assert!(
        later > since + 3_000_000,
        "a later pass starts at the cursor: {later}"
    );
    let (cert_pem, cert_path, key_path, config_path) = (
        s.cert_pem.clone(),
        s.cert_path.clone(),
        s.key_path.clone(),
        s.config_path.clone(),
    );
    let stopped_at = now_millis();
    let dir = s.stop().await;
    let before = fake.seen().len();
    let text = std::fs::read_to_string(&config_path).expect("config");
    let config = Config::from_toml_str(&text).expect("config");
    let s = start_with(
        dir,
        config,
        cert_pem,
        cert_path,
        key_path,
        config_path,
        true,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while fake.seen().len() <= before {
        assert!(Instant::now() < deadline, "no pass after the restart");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The restarted service continues from the persisted cursor (minus the overlap), not
    // from initial_lookback ago.
    let resumed = parse_rfc3339_ms(&fake.seen()[before].query["since"]);
    assert!(
        resumed > stopped_at - 10_000 && resumed < stopped_at,
        "resumed at {resumed}, stopped at {stopped_at}"
    );
    // Fetched again, stored once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(read_jsonl(&jsonl).len(), 2);
    assert!(
        metric(
            &s.metrics().await,
            "hookwarden_reconcile_passes_total",
            "hook=\"okta\""
        ) >= 1.0
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_private_key_jwt_gets_one_token_and_the_logs_api_accepts_it() {
    let events = okta_events(2);
    let fake = FakeOkta::start(Fake {
        pages: vec![vec![events[0].clone()], vec![events[1].clone()]],
        auth: "Bearer at-fake-access-token".into(),
        oauth: Some(("0oa-test-service-app".into(), "at-fake-access-token".into())),
        ..Fake::default()
    })
    .await;
    let tmp = tempfile::tempdir().expect("tmp");
    let key_file = tmp.path().join("app-key.pem");
    std::fs::write(&key_file, APP_KEY_PRIVATE).expect("key");
    let toml = format!(
        "{}{}\n[okta.oauth]\nclient_id = \"0oa-test-service-app\"\nprivate_key = {{ file = \"{}\" }}\nkey_id = \"test-kid\"\n",
        default_hook(tmp.path()),
        fake.toml("", ""),
        key_file.display()
    );
    let config = Config::from_toml_str(&toml).unwrap_or_else(|e| panic!("{e}"));
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&tmp.path().join("h.db"), &config.store).expect("store"));
    let metrics = Arc::new(hookwarden::metrics::Metrics::new());
    let reconciler =
        Reconciler::new(&config, store.clone(), Some(metrics.clone())).expect("reconciler");
    // Its hooks' series exist at zero before the first pass.
    let shown = metrics.render();
    for name in ["passes", "fetched", "recovered"] {
        let series = format!("hookwarden_reconcile_{name}_total{{hook=\"okta\"}} 0\n");
        assert!(shown.contains(&series), "{series} in:\n{shown}");
    }
    let stop = tokio_util::sync::CancellationToken::new();
    let now = now_millis();
    let report = reconciler
        .pass("okta", now - 3_600_000, now, false, None, &stop)
        .await
        .expect("pass");
    assert_eq!((report.pages, report.fetched, report.recovered), (2, 2, 2));
    // A second pass uses the cached access token.
    let report = reconciler
        .pass("okta", now - 3_600_000, now, false, None, &stop)
        .await
        .expect("pass");
    assert_eq!(
        (report.fetched, report.already_stored, report.recovered),
        (2, 2, 0)
    );
    let (assertions, seen) = {
        let f = fake.state.lock().expect("lock");
        (f.assertions.clone(), f.seen.clone())
    };
    assert_eq!(assertions.len(), 1, "one token for both passes");
    let (claims, kid) = &assertions[0];
    assert_eq!(claims["iss"], "0oa-test-service-app");
    assert_eq!(claims["sub"], "0oa-test-service-app");
    assert_eq!(claims["aud"], format!("{}/oauth2/v1/token", fake.base));
    assert_eq!(kid.as_deref(), Some("test-kid"));
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|r| r.auth == "Bearer at-fake-access-token"));
    let listed = store
        .list(&hookwarden::store::EventQuery::default())
        .await
        .expect("list");
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|e| e.recovered));
    store.close().await;
}

#[test]
fn check_config_names_the_reconcile_problems() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("bad.toml");
    let run = |reconcile: &str| -> String {
        std::fs::write(&path, format!("{}{reconcile}", default_hook(dir.path()))).expect("write");
        let out = bin()
            .args(["check-config", "--config"])
            .arg(&path)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // No [okta] section, a glob, an unknown hook.
    let err = run(
        "[reconcile]\n[[reconcile.hooks]]\nhook = \"okta\"\nevent_types = [\"user.lifecycle.*\"]\n[[reconcile.hooks]]\nhook = \"nope\"\nevent_types = [\"user.session.start\"]\n",
    );
    for want in [
        "okta: reconciliation calls the org's System Log API: add an [okta] section",
        "reconcile.hooks[0].event_types[0]: 'user.lifecycle.*' is not an exact event type",
        "reconcile.hooks[1].hook: 'nope' is not the name of an [[event_hooks]] entry",
    ] {
        assert!(err.contains(want), "{want} missing from:\n{err}");
    }
    // No org, no credential.
    let err = run(&format!(
        "[okta]\n[reconcile]\n[[reconcile.hooks]]\nhook = \"okta\"\nevent_types = {TYPES}\n"
    ));
    for want in [
        "okta.org_url: the Okta org is needed",
        "okta.api_token: set exactly one of",
    ] {
        assert!(err.contains(want), "{want} missing from:\n{err}");
    }
    // Plain http, and both credentials at once.
    let err = run(&format!(
        "[okta]\norg_url = \"http://example.okta.com\"\napi_token = \"x\"\n[okta.oauth]\nclient_id = \"c\"\nprivate_key = \"k\"\n[reconcile]\n[[reconcile.hooks]]\nhook = \"okta\"\nevent_types = {TYPES}\n"
    ));
    for want in [
        "okta.org_url: must be the org's https:// URL",
        "okta.api_token: set exactly one of",
    ] {
        assert!(err.contains(want), "{want} missing from:\n{err}");
    }
    // A secret from an unset variable, and a key that is not a key.
    let err = run(&format!(
        "[okta]\norg_url = \"https://example.okta.com\"\n[okta.oauth]\nclient_id = \"c\"\nprivate_key = {{ env = \"HOOKWARDEN_IT_RECONCILE_UNSET\" }}\n[reconcile]\n[[reconcile.hooks]]\nhook = \"okta\"\nevent_types = {TYPES}\n"
    ));
    assert!(
        err.contains(
            "okta.oauth.private_key: environment variable HOOKWARDEN_IT_RECONCILE_UNSET is not set"
        ),
        "{err}"
    );
    // A key of the old layout says where it went.
    let err = run(&format!(
        "[reconcile]\norg_url = \"https://example.okta.com\"\n[[reconcile.hooks]]\nhook = \"okta\"\nevent_types = {TYPES}\n"
    ));
    assert!(
        err.contains("reconcile.org_url: moved to the [okta] section (okta.org_url)"),
        "{err}"
    );
}
