//! Typed configuration: embedded defaults < TOML file < `HOOKWARDEN__SECTION__KEY`
//! environment variables, checked as a whole before anything starts.
//!
//! Loading never stops at the first mistake: [`Config::load`] returns every
//! problem it finds, each with the key that holds it, so that `check-config`
//! can print them all at once. Unknown keys are problems too (a typo in a key
//! would otherwise silently fall back to a default).

mod handler;
pub mod reconcile;
pub mod rules;
mod secret;

pub use handler::{ForwardConfig, HandlerConfig, ScriptConfig};
pub use reconcile::ReconcileConfig;
pub use rules::RulesConfig;
pub use secret::{expose, SecretSource};

use ipnet::IpNet;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer};
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Shortest `server.request_timeout` accepted: Okta's own timeout for a hook's answer.
pub const MIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// The defaults every key falls back to, compiled into the binary.
pub const DEFAULTS_TOML: &str = include_str!("../../config/default.toml");
/// Where `serve` looks for a file when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "config/hookwarden.toml";
/// Prefix of environment overrides: `HOOKWARDEN__SERVER__LISTEN=0.0.0.0:8443`.
pub const ENV_PREFIX: &str = "HOOKWARDEN";

/// One thing wrong with the configuration, with the key that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key, e.g. `event_hooks[0].auth.users[1].password`.
    pub key: String,
    /// What is wrong and, where it helps, what to write instead.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Every problem found while loading; never empty.
#[derive(Debug, thiserror::Error)]
#[error("{} configuration problem(s):\n{}", .0.len(), .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError(pub Vec<Problem>);

impl ConfigError {
    fn one(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError(vec![Problem {
            key: key.into(),
            message: message.into(),
        }])
    }
}

/// A secret resolved at load time. `Debug` never shows the value.
#[derive(Clone)]
pub struct Secret {
    value: Result<SecretString, String>,
    literal: bool,
}

impl Secret {
    /// The resolved value. Only valid configs reach the server, so this cannot fail there.
    pub fn value(&self) -> Option<&SecretString> {
        self.value.as_ref().ok()
    }
    /// True when the value is written in the config file itself.
    pub fn is_literal(&self) -> bool {
        self.literal
    }
    /// A secret from a literal, for tests and for code that builds configs.
    pub fn literal(value: impl Into<String>) -> Self {
        SecretSource::Literal(value.into()).into()
    }
}

impl From<SecretSource> for Secret {
    fn from(src: SecretSource) -> Self {
        Secret {
            literal: src.is_literal(),
            value: src.resolve(),
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        SecretSource::deserialize(d).map(Secret::from)
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub server: ServerConfig,
    pub admin: AdminConfig,
    pub log: LogConfig,
    pub store: StoreConfig,
    pub worker: WorkerConfig,
    pub network: NetworkConfig,
    #[serde(default)]
    pub event_hooks: Vec<EventHookConfig>,
    #[serde(default)]
    pub inline_hooks: Vec<InlineHookConfig>,
    /// System Log reconciliation (off when absent).
    #[serde(default)]
    pub reconcile: Option<ReconcileConfig>,
}

/// The public HTTPS listener that Okta calls.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerConfig {
    /// Address and port of the public listener.
    pub listen: SocketAddr,
    /// Folder for the embedded store and the generated development certificate.
    pub data_dir: PathBuf,
    pub tls: TlsConfig,
    /// Largest request body accepted, in bytes (413 above it).
    pub max_body_bytes: usize,
    /// Connections served at once; more are closed at accept.
    pub max_connections: usize,
    /// A client must send all request headers within this time.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Whole request, body included, from the first byte to the answer. At least
    /// [`MIN_REQUEST_TIMEOUT`]: it is for clients too slow to send their request (408),
    /// never for a slow store (503, see `event_hooks::STORE_DEADLINE`).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Time allowed for the TLS handshake.
    #[serde(with = "humantime_serde")]
    pub tls_handshake_timeout: Duration,
    /// How long shutdown waits for in-flight requests before closing them.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

/// TLS for the public listener.
#[derive(Debug, Clone, Deserialize)]
pub struct TlsConfig {
    /// `false` serves plain HTTP: only for TLS that ends at a load balancer.
    pub enabled: bool,
    /// PEM certificate chain. With neither `cert` nor `key`, a self-signed
    /// development certificate is generated into `data_dir/tls/`.
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// How often the files are checked for changes (SIGHUP reloads at once).
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
}

/// The admin listener: health, readiness and metrics. Keep it private.
#[derive(Debug, Clone, Deserialize)]
pub struct AdminConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
    /// Token for the admin page (`/ui`); the page is off without one.
    #[serde(default)]
    pub token: Option<Secret>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Human,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `hookwarden=debug,info`; `RUST_LOG` wins when set.
    pub level: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// The embedded store: one node.
    Sqlite,
    /// PostgreSQL: several replicas share dedupe, the work queue and idempotent answers.
    Postgres,
}

/// `[store.postgres]`: used when `store.backend = "postgres"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// Connection URL without the password, e.g. `postgres://hookwarden@db.internal:5432/hookwarden`.
    pub url: String,
    /// The password, from the environment or a file (never in the URL).
    #[serde(default)]
    pub password: Option<Secret>,
    /// Connections in the pool.
    #[serde(default = "default_pg_pool")]
    pub pool_size: usize,
    /// Time to get a connection (from the pool or a new one) before the request gets 503.
    #[serde(with = "humantime_serde", default = "default_pg_timeout")]
    pub connect_timeout: Duration,
}

fn default_pg_pool() -> usize {
    16
}
fn default_pg_timeout() -> Duration {
    Duration::from_secs(2)
}

#[derive(Debug, Clone, Deserialize)]
pub struct StoreConfig {
    pub backend: StoreBackend,
    /// SQLite file; default `data_dir/hookwarden.db`.
    pub path: Option<PathBuf>,
    /// Jobs (one per event and sink) waiting for a sink, above which deliveries answer 503.
    pub max_backlog: u64,
    /// How long finished events are kept; also the dedupe window.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Most writes committed together in one transaction (group commit).
    pub group_commit_max: usize,
    /// Page cache of the embedded store's write connection, in KiB: the largest part of
    /// the service's own heap. Inserts touch the ends of the tables and the inner pages of
    /// the uuid index; the kernel's page cache holds the rest of the file.
    pub page_cache_kib: u32,
    /// Free space, in MiB, that the embedded store keeps on its disk: below it, deliveries
    /// of new events are answered 503 (Okta retries) while stored events are still
    /// delivered, so that a full disk never stops the worker too. 0 turns it off.
    pub disk_reserve_mib: u64,
    /// PostgreSQL settings (backend = "postgres").
    #[serde(default)]
    pub postgres: Option<PostgresConfig>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkerConfig {
    /// Sink deliveries in flight at once, over all hooks.
    pub concurrency: usize,
    /// Attempts per event and sink before it is dead-lettered.
    pub max_attempts: u32,
    #[serde(with = "humantime_serde")]
    pub backoff_initial: Duration,
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// How long a claimed job is reserved for one worker before another may take it.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// How often the store is checked for due retries and replays when nothing wakes the workers.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NetworkConfig {
    /// Peers whose `X-Forwarded-For` / `Forwarded` headers are believed.
    #[serde(default)]
    pub trusted_proxies: Vec<IpNet>,
    /// Client networks allowed to call the hooks; empty means any.
    #[serde(default)]
    pub allow_ips: Vec<IpNet>,
}

/// One Okta event hook endpoint.
#[derive(Debug, Clone, Deserialize)]
pub struct EventHookConfig {
    /// Short name used in logs, metrics and the store.
    pub name: String,
    /// URL path Okta calls, e.g. `/hooks/okta/events`.
    pub path: String,
    pub auth: AuthConfig,
    /// Whether the one-time verification GET must carry the auth header too (Okta sends it).
    #[serde(default = "yes")]
    pub verify_requires_auth: bool,
    /// Overrides `network.allow_ips` for this hook.
    #[serde(default)]
    pub allow_ips: Option<Vec<IpNet>>,
    /// Events whose actor `id` or `alternateId` is listed are stored but sent to no sink
    /// (stops feedback loops with our own integration).
    #[serde(default)]
    pub ignore_actors: Vec<String>,
    #[serde(default)]
    pub sinks: Vec<SinkConfig>,
}

fn yes() -> bool {
    true
}

fn authorization() -> String {
    "Authorization".to_owned()
}

/// How a caller proves it is Okta. Several credentials may be valid at once (rotation).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum AuthConfig {
    /// `Authorization: Basic base64(user:password)`, compared as a whole header value.
    Basic {
        #[serde(default = "authorization")]
        header: String,
        users: Vec<BasicUser>,
    },
    /// A header (named here) whose whole value must equal one of the secrets.
    Header {
        header: String,
        secrets: Vec<Secret>,
    },
    /// `Authorization: Bearer <JWT>` from Okta's OAuth 2.0 channel (inline hooks only).
    Oauth(OAuthConfig),
}

/// Checks of the bearer token Okta gets from `tokenUrl` (client_secret_post or private_key_jwt).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthConfig {
    /// Expected `iss`, e.g. `https://example.okta.com/oauth2/default`.
    pub issuer: String,
    /// Expected `aud`, e.g. `api://default`.
    pub audience: String,
    /// Where the issuer's signing keys are (Okta custom AS: `{issuer}/v1/keys`).
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Or a file holding the JWKS (air-gapped setups, tests).
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// Scopes the token must carry (in `scp` or `scope`).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// When set, `cid` (or `client_id`, or `sub`) must equal it: the OAuth client Okta uses for this hook.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    #[serde(with = "humantime_serde", default = "default_leeway")]
    pub leeway: Duration,
    /// How long fetched keys are trusted before they are fetched again.
    #[serde(with = "humantime_serde", default = "default_jwks_ttl")]
    pub jwks_cache_ttl: Duration,
    /// At most one fetch per this interval, however many unknown `kid`s arrive.
    #[serde(with = "humantime_serde", default = "default_jwks_min_refresh")]
    pub jwks_min_refresh: Duration,
}

fn default_leeway() -> Duration {
    Duration::from_secs(30)
}
fn default_jwks_ttl() -> Duration {
    Duration::from_secs(3600)
}
fn default_jwks_min_refresh() -> Duration {
    Duration::from_secs(30)
}

/// One Okta inline hook endpoint.
#[derive(Debug, Clone, Deserialize)]
pub struct InlineHookConfig {
    /// Short name used in logs and metrics.
    pub name: String,
    /// URL path Okta calls.
    pub path: String,
    /// token, registration, import, password_import, saml or telephony.
    #[serde(rename = "type")]
    pub hook_type: crate::okta::inline::HookType,
    pub auth: AuthConfig,
    /// Overrides `network.allow_ips` for this hook.
    #[serde(default)]
    pub allow_ips: Option<Vec<IpNet>>,
    /// Time the handler has to answer (Okta gives up at 3 s).
    #[serde(with = "humantime_serde", default = "default_budget")]
    pub budget: Duration,
    /// What to answer when the handler misses the budget, fails or answers something invalid.
    /// Default: what Okta itself does when a hook fails (registration closed, the rest open).
    #[serde(default)]
    pub fallback: Option<Fallback>,
    /// `errorSummary` of a closed fallback.
    #[serde(default)]
    pub fallback_message: Option<String>,
    /// How long an answer is kept to repeat it to Okta's retry of the same `eventId`.
    #[serde(with = "humantime_serde", default = "default_idempotency_ttl")]
    pub idempotency_ttl: Duration,
    pub handler: HandlerConfig,
}

fn default_budget() -> Duration {
    Duration::from_secs(2)
}
fn default_idempotency_ttl() -> Duration {
    Duration::from_secs(600)
}

/// Fail open (Okta's default action: `{}`) or closed (an `error`, or UNVERIFIED for password import).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Fallback {
    Open,
    Closed,
}

impl InlineHookConfig {
    /// The configured fallback, or the one that matches Okta's own behaviour on failure.
    pub fn fallback(&self) -> Fallback {
        self.fallback.unwrap_or(match self.hook_type {
            crate::okta::inline::HookType::Registration => Fallback::Closed,
            _ => Fallback::Open,
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct BasicUser {
    pub username: String,
    pub password: Secret,
}

/// Where events of a hook go after they are stored.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// Unique within the hook; part of the delivery record in the store.
    pub name: String,
    /// Event type globs (`user.lifecycle.*`); empty means every type.
    pub event_types: Vec<String>,
    pub kind: SinkKind,
    /// Keys that no sink of this type has, reported by [`Config::problems`].
    pub unknown_keys: Vec<String>,
}

impl<'de> Deserialize<'de> for SinkConfig {
    // Written out rather than `#[serde(flatten)]`: flatten swallows unknown keys, and a
    // misspelt sink key must be reported (with every other problem), not ignored.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut map = match serde_json::Value::deserialize(d)? {
            serde_json::Value::Object(m) => m,
            _ => return Err(D::Error::custom("a sink is a table")),
        };
        let name = match map.remove("name") {
            Some(serde_json::Value::String(s)) => s,
            Some(_) => return Err(D::Error::custom("sink `name` must be a string")),
            None => return Err(D::Error::missing_field("name")),
        };
        let event_types = match map.remove("event_types") {
            Some(v) => serde_json::from_value(v)
                .map_err(|e| D::Error::custom(format!("sink `event_types`: {e}")))?,
            None => Vec::new(),
        };
        // deny_unknown_fields names one unknown key per try; set each aside and try again.
        let mut unknown_keys = Vec::new();
        let kind = loop {
            match SinkKind::deserialize(serde_json::Value::Object(map.clone())) {
                Ok(kind) => break kind,
                Err(e) => {
                    let msg = e.to_string();
                    match msg
                        .strip_prefix("unknown field `")
                        .and_then(|rest| rest.split('`').next())
                        .filter(|f| map.contains_key(*f))
                    {
                        Some(field) => {
                            let field = field.to_owned();
                            map.remove(&field);
                            unknown_keys.push(field);
                        }
                        None => return Err(D::Error::custom(format!("sink '{name}': {msg}"))),
                    }
                }
            }
        };
        Ok(SinkConfig {
            name,
            event_types,
            kind,
            unknown_keys,
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum SinkKind {
    /// One JSON line per event on standard output.
    Stdout,
    /// One JSON line per event appended to a file, synced before the event counts as delivered.
    Jsonl { path: PathBuf },
    /// POST of the event record to a URL; 2xx is success.
    Http {
        url: String,
        #[serde(default)]
        headers: BTreeMap<String, Secret>,
        #[serde(with = "humantime_serde", default = "default_sink_timeout")]
        timeout: Duration,
    },
    /// Publishes to NATS JetStream, one message per event, deduplicated by uuid across replicas.
    Nats {
        /// Server URL, e.g. `nats://nats.internal:4222`.
        url: String,
        /// Subject template; `{hook}` and `{event_type}` are replaced.
        #[serde(default = "default_nats_subject")]
        subject: String,
        /// Auth token, when the server wants one.
        #[serde(default)]
        token: Option<Secret>,
        #[serde(with = "humantime_serde", default = "default_sink_timeout")]
        timeout: Duration,
    },
    /// Runs a program with the event record on stdin; exit status 0 is success.
    Command {
        program: PathBuf,
        #[serde(default)]
        args: Vec<String>,
        #[serde(with = "humantime_serde", default = "default_sink_timeout")]
        timeout: Duration,
    },
}

fn default_nats_subject() -> String {
    "okta.{hook}.{event_type}".to_owned()
}

fn default_sink_timeout() -> Duration {
    Duration::from_secs(10)
}

impl SinkKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            SinkKind::Stdout => "stdout",
            SinkKind::Jsonl { .. } => "jsonl",
            SinkKind::Http { .. } => "http",
            SinkKind::Nats { .. } => "nats",
            SinkKind::Command { .. } => "command",
        }
    }
}

impl Config {
    /// Loads defaults, then `path` (or [`DEFAULT_CONFIG_PATH`] when it exists), then the environment.
    ///
    /// An explicit `path` that does not exist is an error; the default path may be absent.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let file = match path {
            Some(p) => {
                if !p.is_file() {
                    return Err(ConfigError::one(
                        "--config",
                        format!("no configuration file at {}", p.display()),
                    ));
                }
                Some(p.to_path_buf())
            }
            None => {
                let p = PathBuf::from(DEFAULT_CONFIG_PATH);
                p.is_file().then_some(p)
            }
        };
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULTS_TOML,
            config::FileFormat::Toml,
        ));
        if let Some(file) = &file {
            builder = builder
                .add_source(config::File::from(file.as_path()).format(config::FileFormat::Toml));
        }
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("network.trusted_proxies")
                .with_list_parse_key("network.allow_ips"),
        );
        Self::from_builder(builder)
    }

    /// Loads defaults and then the given TOML text, ignoring the environment (tests, tools).
    pub fn from_toml_str(toml: &str) -> Result<Config, ConfigError> {
        let builder = config::Config::builder()
            .add_source(config::File::from_str(
                DEFAULTS_TOML,
                config::FileFormat::Toml,
            ))
            .add_source(config::File::from_str(toml, config::FileFormat::Toml));
        Self::from_builder(builder)
    }

    fn from_builder(
        builder: config::ConfigBuilder<config::builder::DefaultState>,
    ) -> Result<Config, ConfigError> {
        let raw = builder
            .build()
            .map_err(|e| ConfigError::one("(file)", e.to_string()))?;
        let mut unknown = Vec::new();
        let parsed: Result<Config, _> = serde_ignored::deserialize(raw, |path| {
            unknown.push(Problem {
                key: render_ignored_path(&path),
                message: "unknown key (misspelt? see config/default.toml for every key)".to_owned(),
            })
        });
        let config = parsed.map_err(|e| {
            let msg = e.to_string();
            // The config crate names the key in its message ("... for key `server.listen`").
            ConfigError::one(
                extract_key(&msg).unwrap_or_else(|| "(config)".to_owned()),
                msg,
            )
        })?;
        let mut problems = unknown;
        problems.extend(config.problems());
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError(problems))
        }
    }

    /// The SQLite file of the embedded store.
    pub fn store_path(&self) -> PathBuf {
        self.store
            .path
            .clone()
            .unwrap_or_else(|| self.server.data_dir.join("hookwarden.db"))
    }

    /// Checks that span keys or need more than a type: every problem, not the first.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if let Some(r) = &self.reconcile {
            for problem in r.problems(self) {
                out.push(problem);
            }
        }
        let mut p = |key: String, message: String| out.push(Problem { key, message });

        let s = &self.server;
        if s.max_body_bytes < 1024 {
            p(
                "server.max_body_bytes".into(),
                "must be at least 1024 bytes".into(),
            );
        }
        if s.max_connections == 0 {
            p("server.max_connections".into(), "must be at least 1".into());
        }
        // Okta waits 3 s for an event hook's answer and never retries a 4xx. A request
        // timeout under that could fire (408) while a delivery waits for its store commit,
        // and the delivery would be lost; at 3 s or more the event-hook handler's own store
        // deadline (`event_hooks::STORE_DEADLINE`, a 503 that Okta retries) always ends first.
        if s.request_timeout < MIN_REQUEST_TIMEOUT {
            p(
                "server.request_timeout".into(),
                format!(
                    "must be at least {} (is {}): Okta waits 3 s for an answer, and a shorter timeout turns a slow store write into a 408, which Okta never retries",
                    humantime::format_duration(MIN_REQUEST_TIMEOUT),
                    humantime::format_duration(s.request_timeout)
                ),
            );
        }
        for (key, d) in [
            ("server.header_read_timeout", s.header_read_timeout),
            ("server.tls_handshake_timeout", s.tls_handshake_timeout),
            ("server.tls.reload_interval", s.tls.reload_interval),
            ("worker.backoff_initial", self.worker.backoff_initial),
            ("worker.lease", self.worker.lease),
            ("worker.poll_interval", self.worker.poll_interval),
            ("store.retention", self.store.retention),
        ] {
            if d.is_zero() {
                p(key.into(), "must be longer than zero".into());
            }
        }
        match (&s.tls.cert, &s.tls.key) {
            (Some(_), None) => p(
                "server.tls.key".into(),
                "a certificate needs its key".into(),
            ),
            (None, Some(_)) => p(
                "server.tls.cert".into(),
                "a key needs its certificate".into(),
            ),
            (Some(c), Some(k)) => {
                for (key, path) in [("server.tls.cert", c), ("server.tls.key", k)] {
                    if !path.is_file() {
                        p(key.into(), format!("no file at {}", path.display()));
                    }
                }
            }
            (None, None) => {}
        }
        if self.admin.enabled && self.admin.listen == s.listen {
            p(
                "admin.listen".into(),
                "must differ from server.listen".into(),
            );
        }
        if let Some(Err(e)) = self.admin.token.as_ref().map(|t| &t.value) {
            p("admin.token".into(), e.clone());
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            p(
                "log.level".into(),
                format!(
                    "'{}' is not a tracing filter (try \"info\")",
                    self.log.level
                ),
            );
        }
        if self.store.max_backlog == 0 {
            p("store.max_backlog".into(), "must be at least 1".into());
        }
        match (self.store.backend, &self.store.postgres) {
            (StoreBackend::Postgres, None) => p(
                "store.postgres".into(),
                "backend = \"postgres\" needs [store.postgres] with url (and password)".into(),
            ),
            (StoreBackend::Postgres, Some(pg)) => {
                match reqwest::Url::parse(&pg.url) {
                    Ok(u) if u.password().is_some() => p(
                        "store.postgres.url".into(),
                        "keep the password out of the URL: use store.postgres.password = { env = \"...\" }".into(),
                    ),
                    Ok(u) if matches!(u.scheme(), "postgres" | "postgresql") => {}
                    _ => p("store.postgres.url".into(), "must be a postgres:// URL".into()),
                }
                if let Some(Err(e)) = pg.password.as_ref().map(|s| &s.value) {
                    p("store.postgres.password".into(), e.clone());
                }
                if pg.pool_size == 0 {
                    p(
                        "store.postgres.pool_size".into(),
                        "must be at least 1".into(),
                    );
                }
            }
            (StoreBackend::Sqlite, _) => {}
        }
        if self.store.group_commit_max == 0 {
            p("store.group_commit_max".into(), "must be at least 1".into());
        }
        if !(64..=1_048_576).contains(&self.store.page_cache_kib) {
            p(
                "store.page_cache_kib".into(),
                format!(
                    "must be between 64 (KiB) and 1048576 (1 GiB), not {}",
                    self.store.page_cache_kib
                ),
            );
        }
        let w = &self.worker;
        if w.concurrency == 0 {
            p("worker.concurrency".into(), "must be at least 1".into());
        }
        if w.max_attempts == 0 {
            p("worker.max_attempts".into(), "must be at least 1".into());
        }
        if w.backoff_max < w.backoff_initial {
            p(
                "worker.backoff_max".into(),
                "must not be shorter than worker.backoff_initial".into(),
            );
        }

        // Names and paths are unique across event and inline hooks: one router mounts them all.
        let mut names = HashSet::new();
        let mut paths = HashSet::new();
        let identities = self
            .event_hooks
            .iter()
            .enumerate()
            .map(|(i, h)| (format!("event_hooks[{i}]"), &h.name, &h.path))
            .chain(
                self.inline_hooks
                    .iter()
                    .enumerate()
                    .map(|(i, h)| (format!("inline_hooks[{i}]"), &h.name, &h.path)),
            );
        for (at, name, path) in identities {
            if !valid_name(name) {
                p(
                    format!("{at}.name"),
                    "use 1-64 letters, digits, '-' or '_'".into(),
                );
            } else if !names.insert(name.as_str()) {
                p(
                    format!("{at}.name"),
                    format!("'{name}' is used by another hook"),
                );
            }
            if !valid_path(path) {
                p(
                    format!("{at}.path"),
                    "must start with '/' and hold only letters, digits and -._~/ (no '..', no '//')".into(),
                );
            } else if !paths.insert(path.as_str()) {
                p(
                    format!("{at}.path"),
                    format!("'{path}' is used by another hook"),
                );
            }
        }
        for (i, h) in self.event_hooks.iter().enumerate() {
            let at = format!("event_hooks[{i}]");
            if matches!(h.auth, AuthConfig::Oauth(_)) {
                p(
                    format!("{at}.auth.type"),
                    "oauth is for inline hooks only: Okta's event hooks send a header secret (use basic or header)".into(),
                );
            }
            auth_problems(&h.auth, &format!("{at}.auth"), &mut p);
            if h.sinks.is_empty() {
                p(
                    format!("{at}.sinks"),
                    "a hook needs at least one sink (events would only be stored)".into(),
                );
            }
            let mut sink_names = HashSet::new();
            for (j, sink) in h.sinks.iter().enumerate() {
                let at = format!("{at}.sinks[{j}]");
                if !valid_name(&sink.name) {
                    p(
                        format!("{at}.name"),
                        "use 1-64 letters, digits, '-' or '_'".into(),
                    );
                } else if !sink_names.insert(sink.name.as_str()) {
                    p(
                        format!("{at}.name"),
                        format!("'{}' is used by another sink of this hook", sink.name),
                    );
                }
                for key in &sink.unknown_keys {
                    p(
                        format!("{at}.{key}"),
                        format!("unknown key for a {} sink", sink.kind.type_name()),
                    );
                }
                for (k, glob) in sink.event_types.iter().enumerate() {
                    if glob.is_empty() || glob.chars().any(char::is_whitespace) {
                        p(
                            format!("{at}.event_types[{k}]"),
                            "an event type glob such as user.lifecycle.*".into(),
                        );
                    }
                }
                match &sink.kind {
                    SinkKind::Stdout => {}
                    SinkKind::Jsonl { path } => {
                        if path.as_os_str().is_empty() {
                            p(format!("{at}.path"), "must name a file".into());
                        }
                    }
                    SinkKind::Http {
                        url,
                        headers,
                        timeout,
                    } => {
                        match reqwest::Url::parse(url) {
                            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                            Ok(_) => p(
                                format!("{at}.url"),
                                "must be an http:// or https:// URL".into(),
                            ),
                            Err(e) => p(format!("{at}.url"), format!("not a URL: {e}")),
                        }
                        for (name, value) in headers {
                            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                                p(
                                    format!("{at}.headers.{name}"),
                                    "not a valid header name".into(),
                                );
                            }
                            if let Err(e) = &value.value {
                                p(format!("{at}.headers.{name}"), e.clone());
                            }
                        }
                        self.sink_timeout_problem(*timeout, &at, &mut p);
                    }
                    SinkKind::Nats {
                        url,
                        subject,
                        token,
                        timeout,
                    } => {
                        match reqwest::Url::parse(url) {
                            Ok(u) if matches!(u.scheme(), "nats" | "tls") => {}
                            _ => p(
                                format!("{at}.url"),
                                "must be a nats:// (or tls://) URL".into(),
                            ),
                        }
                        if subject.is_empty() || subject.chars().any(char::is_whitespace) {
                            p(
                                format!("{at}.subject"),
                                "a subject template such as okta.{hook}.{event_type}".into(),
                            );
                        }
                        if let Some(Err(e)) = token.as_ref().map(|t| &t.value) {
                            p(format!("{at}.token"), e.clone());
                        }
                        self.sink_timeout_problem(*timeout, &at, &mut p);
                    }
                    SinkKind::Command {
                        program, timeout, ..
                    } => {
                        if program.as_os_str().is_empty() {
                            p(format!("{at}.program"), "must name a program".into());
                        } else if program.components().count() > 1 && !program.is_file() {
                            p(
                                format!("{at}.program"),
                                format!("no file at {}", program.display()),
                            );
                        }
                        self.sink_timeout_problem(*timeout, &at, &mut p);
                    }
                }
            }
        }
        for (i, h) in self.inline_hooks.iter().enumerate() {
            let at = format!("inline_hooks[{i}]");
            auth_problems(&h.auth, &format!("{at}.auth"), &mut p);
            if h.budget.is_zero() || h.budget >= Duration::from_millis(2900) {
                p(
                    format!("{at}.budget"),
                    "must be longer than zero and shorter than Okta's 3 s timeout (2.9 s at most; default 2s)".into(),
                );
            }
            if h.idempotency_ttl.is_zero() {
                p(
                    format!("{at}.idempotency_ttl"),
                    "must be longer than zero".into(),
                );
            }
            if h.fallback_message
                .as_ref()
                .is_some_and(|m| m.is_empty() || m.len() > 1000)
            {
                p(
                    format!("{at}.fallback_message"),
                    "1 to 1000 characters".into(),
                );
            }
            if let HandlerConfig::Forward(f) = &h.handler {
                match reqwest::Url::parse(&f.url) {
                    Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                    _ => p(
                        format!("{at}.handler.url"),
                        "must be an http:// or https:// URL".into(),
                    ),
                }
                for (name, value) in &f.headers {
                    if let Err(e) = &value.value {
                        p(format!("{at}.handler.headers.{name}"), e.clone());
                    }
                }
            }
        }
        out
    }

    /// A sink attempt must end well inside the worker's lease: past the lease another
    /// worker may claim the same job and deliver it a second time. The worker abandons
    /// an attempt at 9/10 of the lease, so a timeout above that could never be reached.
    fn sink_timeout_problem(
        &self,
        timeout: Duration,
        at: &str,
        p: &mut impl FnMut(String, String),
    ) {
        if timeout.is_zero() {
            p(format!("{at}.timeout"), "must be longer than zero".into());
        } else if timeout > self.worker.lease.mul_f64(0.9) {
            p(
                format!("{at}.timeout"),
                format!(
                    "must be shorter than 9/10 of worker.lease ({}): raise worker.lease or lower the timeout",
                    humantime::format_duration(self.worker.lease)
                ),
            );
        }
    }

    /// Things that work but that an operator should know at start.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.server.tls.enabled {
            out.push(
                "server.tls.enabled = false: serving plain HTTP; only do this when TLS ends at a load balancer in front of hookwarden"
                    .to_owned(),
            );
        }
        // No certificate configured: the TLS module says so when it generates or loads
        // the development certificate, with its path.
        let hooks = self
            .event_hooks
            .iter()
            .map(|h| ("event", &h.name, &h.auth))
            .chain(
                self.inline_hooks
                    .iter()
                    .map(|h| ("inline", &h.name, &h.auth)),
            );
        for (kind, name, auth) in hooks {
            let literal = match auth {
                AuthConfig::Basic { users, .. } => users.iter().any(|u| u.password.is_literal()),
                AuthConfig::Header { secrets, .. } => secrets.iter().any(Secret::is_literal),
                AuthConfig::Oauth(_) => false,
            };
            if literal {
                out.push(format!(
                    "{kind} hook '{name}' has a secret written in the config file; use {{ env = \"...\" }} or {{ file = \"...\" }} in production"
                ));
            }
        }
        if let Some(r) = &self.reconcile {
            let literal = r.api_token.as_ref().is_some_and(Secret::is_literal)
                || r.oauth.as_ref().is_some_and(|o| o.private_key.is_literal());
            if literal {
                out.push("reconcile has its Okta credential written in the config file; use { env = \"...\" } or { file = \"...\" } in production".to_owned());
            }
        }
        for (i, h) in self.inline_hooks.iter().enumerate() {
            let HandlerConfig::Rules(rules) = &h.handler else {
                continue;
            };
            let limit = crate::okta::inline::check::MAX_ERROR_TEXT_BYTES;
            for (key, text) in rules.user_texts() {
                if text.len() > limit {
                    out.push(format!(
                        "inline_hooks[{i}].handler.{key} is {} bytes: Okta shows it to people, and hookwarden cuts it to {limit} bytes when it is sent",
                        text.len()
                    ));
                }
            }
        }
        if self.admin.token.as_ref().is_some_and(Secret::is_literal) {
            out.push("admin.token is written in the config file; use { env = \"...\" } or { file = \"...\" } in production".to_owned());
        }
        if self.event_hooks.is_empty() && self.inline_hooks.is_empty() {
            out.push("no hooks configured: every request will get 404".to_owned());
        }
        out
    }
}

fn auth_problems(auth: &AuthConfig, at: &str, p: &mut impl FnMut(String, String)) {
    match auth {
        AuthConfig::Oauth(o) => {
            match reqwest::Url::parse(&o.issuer) {
                Ok(u) if u.scheme() == "https" || is_loopback_url(&u) => {}
                _ => p(format!("{at}.issuer"), "must be the issuer's https:// URL, e.g. https://example.okta.com/oauth2/default".into()),
            }
            if o.audience.is_empty() {
                p(
                    format!("{at}.audience"),
                    "must name the audience, e.g. api://default".into(),
                );
            }
            match (&o.jwks_url, &o.jwks_file) {
                (Some(_), Some(_)) | (None, None) => p(
                    format!("{at}.jwks_url"),
                    "set exactly one of jwks_url (Okta custom AS: {issuer}/v1/keys) and jwks_file"
                        .into(),
                ),
                (Some(url), None) => match reqwest::Url::parse(url) {
                    Ok(u) if u.scheme() == "https" || is_loopback_url(&u) => {}
                    _ => p(
                        format!("{at}.jwks_url"),
                        "must be an https:// URL (plain http only on a loopback address)".into(),
                    ),
                },
                (None, Some(file)) => {
                    if !file.is_file() {
                        p(
                            format!("{at}.jwks_file"),
                            format!("no file at {}", file.display()),
                        );
                    }
                }
            }
            if o.leeway > Duration::from_secs(300) {
                p(
                    format!("{at}.leeway"),
                    "at most 5m: a larger skew accepts expired tokens".into(),
                );
            }
            if o.jwks_min_refresh.is_zero() || o.jwks_cache_ttl < o.jwks_min_refresh {
                p(
                    format!("{at}.jwks_min_refresh"),
                    "must be longer than zero and not longer than jwks_cache_ttl".into(),
                );
            }
        }
        AuthConfig::Basic { header, users } => {
            check_header_name(header, &format!("{at}.header"), p);
            if users.is_empty() {
                p(format!("{at}.users"), "at least one user is needed".into());
            }
            for (i, u) in users.iter().enumerate() {
                if u.username.is_empty() || u.username.contains(':') {
                    p(
                        format!("{at}.users[{i}].username"),
                        "must be non-empty and have no ':'".into(),
                    );
                }
                if let Err(e) = &u.password.value {
                    p(format!("{at}.users[{i}].password"), e.clone());
                }
            }
        }
        AuthConfig::Header { header, secrets } => {
            check_header_name(header, &format!("{at}.header"), p);
            if secrets.is_empty() {
                p(
                    format!("{at}.secrets"),
                    "at least one secret is needed".into(),
                );
            }
            for (i, s) in secrets.iter().enumerate() {
                match &s.value {
                    Err(e) => p(format!("{at}.secrets[{i}]"), e.clone()),
                    Ok(v) if expose(v).len() < 16 => p(
                        format!("{at}.secrets[{i}]"),
                        "shorter than 16 characters: too easy to guess".into(),
                    ),
                    Ok(v) if axum::http::HeaderValue::from_str(expose(v)).is_err() => p(
                        format!("{at}.secrets[{i}]"),
                        "cannot be sent as an HTTP header value".into(),
                    ),
                    Ok(_) => {}
                }
            }
        }
    }
}

/// Plain http is accepted for a key server on this machine only (tests, sidecars).
fn is_loopback_url(u: &reqwest::Url) -> bool {
    u.scheme() == "http"
        && match u.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        }
}

fn check_header_name(name: &str, key: &str, p: &mut impl FnMut(String, String)) {
    if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        p(
            key.to_owned(),
            format!("'{name}' is not a valid header name"),
        );
    }
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn valid_path(path: &str) -> bool {
    path.starts_with('/')
        && path.len() > 1
        && !path.contains("//")
        && !path.split('/').any(|seg| seg == ".." || seg == ".")
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~/".contains(c))
}

fn render_ignored_path(path: &serde_ignored::Path<'_>) -> String {
    // serde_ignored renders `event_hooks.0.sinks.1.pth`; make sequence indexes look like TOML arrays.
    let raw = path.to_string();
    let mut out = String::new();
    for part in raw.split('.') {
        if !out.is_empty() && part.parse::<usize>().is_ok() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

fn extract_key(msg: &str) -> Option<String> {
    let start = msg.find("key `")? + 5;
    let end = msg[start..].find('`')? + start;
    // The config crate writes `event_hooks[0]sinks[2]`; we write `event_hooks[0].sinks[2]`.
    let raw = &msg[start..end];
    let mut key = String::with_capacity(raw.len() + 4);
    let mut after_bracket = false;
    for c in raw.chars() {
        if after_bracket && c != '[' && c != '.' {
            key.push('.');
        }
        after_bracket = c == ']';
        key.push(c);
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOOK: &str = r#"
        [[event_hooks]]
        name = "okta"
        path = "/hooks/okta"
        auth = { type = "basic", users = [{ username = "okta", password = "correct horse battery" }] }
        sinks = [{ name = "out", type = "stdout" }]
    "#;

    #[test]
    fn defaults_and_a_hook_load() {
        let c = Config::from_toml_str(HOOK).expect("valid");
        assert_eq!(c.event_hooks.len(), 1);
        assert!(c.server.tls.enabled);
        assert!(!format!("{c:?}").contains("correct horse"));
    }

    #[test]
    fn literal_credentials_outside_hooks_warn_too() {
        let c = Config::from_toml_str(&format!(
            "{HOOK}\n[admin]\ntoken = \"an-admin-token-of-some-length\"\n[reconcile]\norg_url = \"https://example.okta.com\"\napi_token = \"00abc\"\n[[reconcile.hooks]]\nhook = \"okta\"\nevent_types = [\"user.session.start\"]\n"
        ))
        .expect("valid");
        let w = c.warnings().join("\n");
        assert!(
            w.contains("reconcile has its Okta credential written in the config file"),
            "{w}"
        );
        assert!(
            w.contains("admin.token is written in the config file"),
            "{w}"
        );
        assert!(!w.contains("00abc") && !w.contains("an-admin-token"), "{w}");
    }

    #[test]
    fn an_endless_secret_file_is_a_problem_with_its_key() {
        let err = Config::from_toml_str(&HOOK.replace(
            "password = \"correct horse battery\"",
            "password = { file = \"/dev/zero\" }",
        ))
        .expect_err("/dev/zero is no secret");
        let problem = err
            .0
            .iter()
            .find(|p| p.key == "event_hooks[0].auth.users[0].password")
            .unwrap_or_else(|| panic!("{err:?}"));
        assert!(
            problem.message.contains("larger than 64 KiB"),
            "{problem:?}"
        );
    }

    #[test]
    fn refusal_texts_over_the_cut_warn_with_their_key() {
        let long = "m".repeat(1_500);
        let c = Config::from_toml_str(&format!(
            "[[inline_hooks]]\nname = \"r\"\npath = \"/r\"\ntype = \"registration\"\nauth = {{ type = \"basic\", users = [{{ username = \"u\", password = {{ env = \"HOME\" }} }}] }}\n[inline_hooks.handler]\nkind = \"rules\"\n[inline_hooks.handler.registration]\nerror_summary = \"{long}\"\n[[inline_hooks.handler.registration.check]]\nattribute = \"a\"\nrequired = true\nmessage = \"short\"\n"
        ))
        .expect("valid");
        let w = c.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("inline_hooks[0].handler.registration.error_summary is 1500 bytes"),
            "{w:?}"
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let bad = r#"
            [store]
            page_cache_kib = 16
            [worker]
            concurrency = 0
            [[event_hooks]]
            name = "bad name!"
            path = "no-slash"
            auth = { type = "header", header = "X-Secret", secrets = ["short", { env = "HOOKWARDEN_TEST_UNSET_VAR" }] }
            sinks = [{ name = "a", type = "http", url = "ftp://x", pth = 1 }]
        "#;
        let err = Config::from_toml_str(bad).expect_err("invalid");
        let keys: Vec<&str> = err.0.iter().map(|p| p.key.as_str()).collect();
        for k in [
            "store.page_cache_kib",
            "worker.concurrency",
            "event_hooks[0].name",
            "event_hooks[0].path",
            "event_hooks[0].auth.secrets[0]",
            "event_hooks[0].auth.secrets[1]",
            "event_hooks[0].sinks[0].url",
            "event_hooks[0].sinks[0].pth",
        ] {
            assert!(keys.contains(&k), "missing {k} in {keys:?}");
        }
    }

    #[test]
    fn a_request_timeout_under_okta_s_3_s_is_refused_with_the_reason() {
        for short in ["0s", "1s", "2999ms"] {
            let err = Config::from_toml_str(&format!(
                "{HOOK}\n[server]\nrequest_timeout = \"{short}\"\n"
            ))
            .expect_err(short);
            let problems: Vec<_> = err
                .0
                .iter()
                .filter(|p| p.key == "server.request_timeout")
                .collect();
            assert_eq!(problems.len(), 1, "{short}: {:?}", err.0);
            let m = &problems[0].message;
            assert!(
                m.contains("at least 3s") && m.contains("Okta waits 3 s") && m.contains("408"),
                "{short}: {m}"
            );
        }
        for ok in ["3s", "10s"] {
            let c =
                Config::from_toml_str(&format!("{HOOK}\n[server]\nrequest_timeout = \"{ok}\"\n"))
                    .unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert!(c.server.request_timeout >= MIN_REQUEST_TIMEOUT);
        }
        // The default is valid.
        let c = Config::from_toml_str(HOOK).expect("defaults");
        assert!(c.server.request_timeout >= MIN_REQUEST_TIMEOUT);
    }

    #[test]
    fn keys_from_the_config_crate_read_like_ours() {
        assert_eq!(
            extract_key("bad for key `event_hooks[0]sinks[2]` in x").as_deref(),
            Some("event_hooks[0].sinks[2]")
        );
        assert_eq!(
            extract_key("for key `server.listen`").as_deref(),
            Some("server.listen")
        );
        assert_eq!(
            extract_key("for key `a[0][1]b`").as_deref(),
            Some("a[0][1].b")
        );
    }

    #[test]
    fn type_errors_name_the_key() {
        let err =
            Config::from_toml_str("[server]\nlisten = \"not an address\"").expect_err("invalid");
        assert_eq!(err.0.len(), 1);
        assert!(err.0[0].key.contains("server.listen"), "{:?}", err.0);
    }
}
