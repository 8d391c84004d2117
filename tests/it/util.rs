//! Starting a real hookwarden for a test, and reading what comes out of it.

#![allow(dead_code)]

use hookwarden::config::Config;
use hookwarden::{run, Listeners};
use serde_json::Value;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub const USER: &str = "okta";
pub const PASSWORD: &str = "correct-horse-battery-staple";

/// `Authorization` value for the default test hook.
pub fn basic() -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    )
}

pub fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/okta")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// A self-signed certificate for localhost and 127.0.0.1, written as PEM files.
pub fn write_cert(dir: &Path, stem: &str) -> (PathBuf, PathBuf, Vec<u8>) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("rcgen");
    let cert_pem = ck.cert.pem();
    let cert = dir.join(format!("{stem}-cert.pem"));
    let key = dir.join(format!("{stem}-key.pem"));
    std::fs::write(&cert, &cert_pem).expect("write cert");
    std::fs::write(&key, ck.signing_key.serialize_pem()).expect("write key");
    (cert, key, cert_pem.into_bytes())
}

/// The default test hook: Basic auth and a JSONL sink.
pub fn default_hook(dir: &Path) -> String {
    hook_with(dir, "")
}

/// The default test hook with extra keys (`extra` is TOML lines for the hook table).
pub fn hook_with(dir: &Path, extra: &str) -> String {
    format!(
        r#"
[[event_hooks]]
name = "okta"
path = "/hooks/okta/events"
{extra}
auth = {{ type = "basic", users = [{{ username = "{USER}", password = "{PASSWORD}" }}] }}
sinks = [{{ name = "archive", type = "jsonl", path = "{}" }}]
"#,
        dir.join("events.jsonl").display()
    )
}

pub struct Options {
    /// TOML appended after the base config (hooks, overrides of other sections).
    pub toml: Option<String>,
    /// Replaces the [server] extras (timeouts, limits).
    pub server_extra: String,
    pub network: String,
    pub worker: String,
    pub tls: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            toml: None,
            server_extra: String::new(),
            network: String::new(),
            worker:
                "poll_interval = \"100ms\"\nbackoff_initial = \"50ms\"\nbackoff_max = \"200ms\"\n"
                    .to_owned(),
            tls: true,
        }
    }
}

pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub base: String,
    pub admin_base: String,
    pub client: reqwest::Client,
    pub cert_pem: Vec<u8>,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub config_path: PathBuf,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<Result<(), hookwarden::RunError>>,
}

/// The whole config text of a test server.
pub fn config_text(dir: &Path, cert: &Path, key: &Path, opts: &Options) -> String {
    let hooks = opts.toml.clone().unwrap_or_else(|| default_hook(dir));
    format!(
        r#"
[server]
listen = "127.0.0.1:1"
data_dir = "{data}"
{server_extra}
[server.tls]
enabled = {tls}
cert = "{cert}"
key = "{key}"
reload_interval = "200ms"

[admin]
listen = "127.0.0.1:2"

[log]
level = "hookwarden=debug,warn"

[worker]
{worker}
[network]
{network}
{hooks}
"#,
        data = dir.join("data").display(),
        server_extra = opts.server_extra,
        tls = opts.tls,
        cert = cert.display(),
        key = key.display(),
        worker = opts.worker,
        network = opts.network,
    )
}

/// A config text of [`config_text`] with `admin.token` set (`POST /reload`, the admin page).
pub fn with_admin_token(text: &str, token: &str) -> String {
    let admin = "[admin]\nlisten = \"127.0.0.1:2\"\n";
    assert!(text.contains(admin), "the base config changed: {text}");
    text.replace(admin, &format!("{admin}token = \"{token}\"\n"))
}

pub fn client_for(addr: SocketAddr, cert_pem: &[u8]) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem).expect("pem"))
        .resolve("localhost", addr)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

pub async fn start(opts: Options) -> TestServer {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert_path, key_path, cert_pem) = write_cert(dir.path(), "server");
    let text = config_text(dir.path(), &cert_path, &key_path, &opts);
    let config_path = dir.path().join("hookwarden.toml");
    std::fs::write(&config_path, &text).expect("write config");
    let config =
        Config::from_toml_str(&text).unwrap_or_else(|e| panic!("test config invalid: {e}\n{text}"));
    start_with(
        dir,
        config,
        cert_pem,
        cert_path,
        key_path,
        config_path,
        opts.tls,
    )
    .await
}

pub async fn start_with(
    dir: tempfile::TempDir,
    config: Config,
    cert_pem: Vec<u8>,
    cert_path: PathBuf,
    key_path: PathBuf,
    config_path: PathBuf,
    tls: bool,
) -> TestServer {
    let public = TcpListener::bind("127.0.0.1:0").expect("bind");
    let admin_l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = public.local_addr().expect("addr");
    let admin = admin_l.local_addr().expect("addr");
    // Server logs in test output only on request: HOOKWARDEN_TEST_LOG=1 cargo test
    if std::env::var_os("HOOKWARDEN_TEST_LOG").is_some() {
        hookwarden::telemetry::init(&config.log);
    }
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run(
        config,
        Some(Listeners {
            public,
            admin: Some(admin_l),
        }),
        shutdown.clone(),
    ));
    let scheme = if tls { "https" } else { "http" };
    let server = TestServer {
        base: format!("{scheme}://localhost:{}", addr.port()),
        admin_base: format!("http://{admin}"),
        client: client_for(addr, &cert_pem),
        dir,
        addr,
        admin,
        cert_pem,
        cert_path,
        key_path,
        config_path,
        shutdown,
        task,
    };
    let mut server = server;
    server.wait_ready().await;
    server
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn jsonl(&self) -> PathBuf {
        self.dir.path().join("events.jsonl")
    }

    /// Waits until `/readyz` answers 200; if the server stops meanwhile, fails with its error.
    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let plain = reqwest::Client::new();
        loop {
            if self.task.is_finished() {
                let result = (&mut self.task).await;
                panic!("the server stopped before it was ready: {result:?}");
            }
            if let Ok(r) = plain
                .get(format!("{}/readyz", self.admin_base))
                .send()
                .await
            {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "server not ready within 15s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// POSTs a delivery with the default credentials.
    pub async fn deliver(&self, body: &str) -> reqwest::Response {
        self.client
            .post(self.url("/hooks/okta/events"))
            .header("Authorization", basic())
            .header("Content-Type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("request")
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.admin_base))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    /// Waits until a metric reaches `want` (counters are bumped after the work they count,
    /// so a test that has seen the work may still be a moment ahead of the counter).
    pub async fn wait_metric(&self, name: &str, labels: &str, want: f64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = metric(&self.metrics().await, name, labels);
            if got == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name}{{{labels}}} is {got}, expected {want}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(self) -> tempfile::TempDir {
        self.shutdown.cancel();
        let r = tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("server stops within 30s")
            .expect("task");
        r.expect("server ran without error");
        self.dir
    }
}

/// Reads a JSONL sink file (missing file = no lines). A last line without its newline is
/// an append caught half way and is left for the next read.
pub fn read_jsonl(path: &Path) -> Vec<Value> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    complete
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSONL line {l}: {e}")))
        .collect()
}

/// Waits until the file holds at least `n` records, then returns them.
pub async fn wait_jsonl(path: &Path, n: usize, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let lines = read_jsonl(path);
        if lines.len() >= n {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} records in {}, found {} after {within:?}",
            path.display(),
            lines.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn uuids(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| r["uuid"].as_str().expect("uuid").to_owned())
        .collect()
}

/// A delivery envelope carrying the given events.
pub fn envelope(events: &[Value]) -> String {
    serde_json::json!({
        "eventType": "com.okta.event_hook",
        "eventTypeVersion": "1.0",
        "cloudEventsVersion": "0.1",
        "source": "https://example.okta.com/api/v1/eventHooks/whotest",
        "eventId": uuid::Uuid::new_v4().to_string(),
        "eventTime": "2026-11-23T12:00:00.000Z",
        "contentType": "application/json",
        "data": { "events": events }
    })
    .to_string()
}

/// The current Okta sample event with a fresh uuid and the given type.
pub fn event(event_type: &str) -> Value {
    let sample: Value = serde_json::from_str(&fixture("event-hook-delivery.json")).expect("json");
    let mut e = sample["data"]["events"][0].clone();
    e["uuid"] = Value::String(uuid::Uuid::new_v4().to_string());
    e["eventType"] = Value::String(event_type.to_owned());
    e
}

/// Scrapes one sample value from Prometheus text (sum over matching lines).
pub fn metric(text: &str, name: &str, label_fragment: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#') && l.contains(label_fragment))
        .filter(|l| l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

// --- the real binary, for the crash, fault and reload tests ------------------------------

/// A free loopback port (for the real binary, which binds its own listeners).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A free loopback port below the kernel's ephemeral range (32768 and up on Linux), for a
/// server a test takes down and brings back on the same port. A port from [`free_port`]
/// can be handed to another test's `bind(0)` while it is down, and deliveries would then
/// reach that server instead (its 200s counted as delivered).
pub fn port_outside_ephemeral_range() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let start = (nanos ^ std::process::id()) % 12_000;
    (0..12_000)
        .map(|i| 20_000 + ((start + i) % 12_000) as u16)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port between 20000 and 32000")
}

/// Starts `hookwarden serve --config <config>` on these ports, logs off.
pub fn spawn(config: &Path, port: u16, admin: u16) -> std::process::Child {
    spawn_with(config, port, admin, &[])
}

/// [`spawn`] with more arguments to `serve`.
pub fn spawn_with(config: &Path, port: u16, admin: u16, args: &[&str]) -> std::process::Child {
    serve_command(config, port, admin)
        .args(args)
        .spawn()
        .expect("spawn hookwarden")
}

/// `hookwarden serve --config <config>` on these ports, logs off, not started yet.
pub fn serve_command(config: &Path, port: u16, admin: u16) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hookwarden"));
    cmd.args(["serve", "--config"])
        .arg(config)
        .env("HOOKWARDEN__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("HOOKWARDEN__ADMIN__LISTEN", format!("127.0.0.1:{admin}"))
        .env("HOOKWARDEN__LOG__LEVEL", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd
}

/// Waits until the binary's `/readyz` answers 200.
pub async fn wait_ready(admin: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{admin}/readyz")).await {
            if r.status() == 200 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "hookwarden not ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
