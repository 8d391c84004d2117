//! Typed configuration: embedded defaults < TOML file < `HOOKWARDEN__SECTION__KEY`
//! environment variables, checked as a whole before anything starts.
//!
//! Loading never stops at the first mistake: [`Config::load`] returns every
//! problem it finds, each with the key that holds it, so that `check-config`
//! can print them all at once. Unknown keys are problems too (a typo in a key
//! would otherwise silently fall back to a default).
//!
//! This module holds the types and the loading; the checks that span keys
//! ([`Config::problems`]) and the start-up warnings ([`Config::warnings`]) are in
//! `validate.rs`.

mod handler;
pub mod okta_api;
mod parse;
pub mod postgres;
pub mod reconcile;
mod resolve;
pub mod rules;
mod secret;
mod validate;
mod values;
pub use values::network;

pub use handler::{ForwardConfig, HandlerConfig, ScriptConfig};
pub use okta_api::OktaApiConfig;
pub use postgres::{PostgresConfig, TlsMode};
pub use reconcile::ReconcileConfig;
pub use resolve::{env_var_for, Door, Needs};
pub use rules::RulesConfig;
pub use secret::{expose, Secret, SecretError, SecretSource, MIN_SECRET_CHARS};

use ipnet::IpNet;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Shortest `server.request_timeout` accepted: Okta's own timeout for a hook's answer.
pub const MIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// How long after its arrival (`http::guard::Arrival`) a delivery may wait for its
/// store commit; past it the delivery is answered 503 (`ApiError::store_too_slow`).
///
/// Why a deadline of the handler's own rather than the request timeout: Okta waits 3 s and
/// retries a 5xx or a timeout once, but never a 4xx. The request timeout answers 408, which
/// is right for a client too slow to send its body and wrong for a store too slow to take
/// it: a delivery answered 408 is never sent again. So the wait for the store is bounded
/// here, counted from arrival, with a 503 that ends before Okta's 3 s (the 0.5 s left is for
/// the network, the TLS handshake and the head, which Okta's clock counts too) and always
/// before the request timeout (at least 3 s, checked with the config).
///
/// Nothing acknowledged is lost: the 503 goes only while the commit has not answered, so
/// the events were not acknowledged. The write itself is not cancelled (the store's writer
/// owns it); if it commits after the 503, Okta's retry finds the events by `uuid` and is
/// acknowledged as duplicates, with each event stored and delivered once.
///
/// The PostgreSQL store's own waits (`store.postgres.statement_timeout`, `lock_timeout`,
/// `connect_timeout`) are held to at most this, so that the database gives up no later.
pub const STORE_DEADLINE: Duration = Duration::from_millis(2500);

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

/// What loading found: the configuration (with stand-ins where there were mistakes, see
/// [`Config::load_report`]) and every problem.
pub struct Report {
    pub config: Option<Config>,
    pub problems: Vec<Problem>,
    /// Keys that hold a stand-in for a mistake: later checks of them are not reported.
    stand_ins: Vec<String>,
}

impl Report {
    /// Adds the problems of a later check, leaving out those about a stand-in (they
    /// would report the stand-in, not the file).
    pub fn add(&mut self, problems: impl IntoIterator<Item = Problem>) {
        let stand_ins = &self.stand_ins;
        self.problems.extend(problems.into_iter().filter(|p| {
            !stand_ins.iter().any(|s| {
                p.key.strip_prefix(s.as_str()).is_some_and(|rest| {
                    rest.is_empty() || rest.starts_with('.') || rest.starts_with('[')
                })
            })
        }));
    }

    fn into_result(self) -> Result<Config, ConfigError> {
        match self.config {
            Some(config) if self.problems.is_empty() => Ok(config),
            _ => Err(ConfigError(self.problems)),
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
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
    /// The org's Management API, for reconciliation and `hookwarden okta`.
    #[serde(default)]
    pub okta: Option<OktaApiConfig>,
    /// System Log reconciliation (off when absent).
    #[serde(default)]
    pub reconcile: Option<ReconcileConfig>,
    /// Where this configuration was read from, so that a reload reads the same sources
    /// again. Not a key of the file.
    #[serde(skip)]
    pub source: ConfigSource,
}

/// Where a [`Config`] came from, which decides what a reload reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ConfigSource {
    /// Built in code or from a string (tests, tools): there is nothing to read again,
    /// so a reload is refused.
    #[default]
    InCode,
    /// [`Config::load`] with this argument (`--config`, or `None` for the default path
    /// when it exists): a reload calls it again, environment included.
    Loaded(Option<PathBuf>),
}

/// The public HTTPS listener that Okta calls.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port of the public listener.
    #[serde(deserialize_with = "values::listen_addr")]
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
    /// never for a slow store (503, see [`STORE_DEADLINE`]).
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
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    pub enabled: bool,
    #[serde(deserialize_with = "values::listen_addr")]
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
#[serde(deny_unknown_fields)]
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Peers whose `X-Forwarded-For` / `Forwarded` headers are believed.
    #[serde(default, deserialize_with = "values::networks")]
    pub trusted_proxies: Vec<IpNet>,
    /// Client networks allowed to call the hooks; empty means any.
    #[serde(default, deserialize_with = "values::networks")]
    pub allow_ips: Vec<IpNet>,
}

/// One Okta event hook endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
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
    #[serde(default, deserialize_with = "values::some_networks")]
    pub allow_ips: Option<Vec<IpNet>>,
    /// Events whose actor `id` or `alternateId` is listed are stored but sent to no sink
    /// (stops feedback loops with our own integration).
    #[serde(default)]
    pub ignore_actors: Vec<String>,
    /// The exact event types this hook subscribes to in Okta: `hookwarden okta sync`
    /// registers them, and reconciliation polls them unless `[[reconcile.hooks]]` says
    /// otherwise. Each must be taken by at least one sink (when the hook has sinks).
    #[serde(default)]
    pub event_types: Vec<String>,
    /// Okta event hook filters (Okta Expression Language), by event type: Okta sends an
    /// event of that type only when the expression holds. Registered by `okta sync`.
    #[serde(default)]
    pub okta_filters: BTreeMap<String, String>,
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
#[serde(remote = "Self", rename_all = "lowercase", deny_unknown_fields)]
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

impl<'de> Deserialize<'de> for AuthConfig {
    /// `type = "basic"`, `"header"` or `"oauth"`, read so that a mistake inside keeps its path.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse::tagged(d, "type", &[], |de| AuthConfig::deserialize(de))
    }
}

impl AuthConfig {
    /// The header Okta sends and every value of it that this config accepts, in the
    /// order written (the last is the newest, which `hookwarden okta sync` gives Okta).
    /// A Basic user's value is `Basic base64(username:password)`, standard alphabet,
    /// padded, as Okta sends it. Secrets that could not be resolved are left out (config
    /// validation reports them). `None` for `oauth`: Okta sends a bearer token it got
    /// from an authorization server, not a value of ours.
    pub fn header_values(&self) -> Option<(&str, Vec<SecretString>)> {
        match self {
            AuthConfig::Basic { header, users } => Some((
                header,
                users
                    .iter()
                    .filter_map(|u| Some(basic_value(&u.username, u.password.value()?)))
                    .collect(),
            )),
            AuthConfig::Header { header, secrets } => Some((
                header,
                secrets.iter().filter_map(|s| s.value().cloned()).collect(),
            )),
            AuthConfig::Oauth(_) => None,
        }
    }
}

/// `Basic base64(username:password)`. Intermediate strings are kept in
/// [`SecretString`]s so that they are wiped on drop.
fn basic_value(username: &str, password: &SecretString) -> SecretString {
    use base64::Engine as _;
    let pair = SecretString::from(format!("{username}:{}", expose(password)));
    let encoded =
        SecretString::from(base64::engine::general_purpose::STANDARD.encode(expose(&pair)));
    SecretString::from(format!("Basic {}", expose(&encoded)))
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
#[serde(deny_unknown_fields)]
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
    #[serde(default, deserialize_with = "values::some_networks")]
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
#[serde(deny_unknown_fields)]
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
}

impl<'de> Deserialize<'de> for SinkConfig {
    // Written out rather than `#[serde(flatten)]`: flatten swallows unknown keys, and a
    // misspelt sink key must be reported (with every other problem), not ignored.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// The keys every sink has, whatever its type.
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Common {
            name: String,
            #[serde(default)]
            event_types: Vec<String>,
        }
        let mut table = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let mut common_keys = serde_json::Map::new();
        for key in ["name", "event_types"] {
            if let Some(v) = table.remove(key) {
                common_keys.insert(key.to_owned(), v);
            }
        }
        let common: Common = parse::read_at(serde_json::Value::Object(common_keys))?;
        let kind = <SinkKind as Deserialize>::deserialize(serde_json::Value::Object(table))
            .map_err(<D::Error as serde::de::Error>::custom)?;
        Ok(SinkConfig {
            name: common.name,
            event_types: common.event_types,
            kind,
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(remote = "Self", rename_all = "lowercase", deny_unknown_fields)]
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

impl<'de> Deserialize<'de> for SinkKind {
    /// `type = "jsonl"` and so on, read so that a mistake inside keeps its path.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse::tagged(d, "type", &["stdout"], |de| SinkKind::deserialize(de))
    }
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
    /// Loads defaults, then `path` (or [`DEFAULT_CONFIG_PATH`] when it exists), then the
    /// environment, and reads every secret.
    ///
    /// An explicit `path` that does not exist is an error; the default path may be absent.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_for(path, Needs::Everything)
    }

    /// [`Config::load`], reading only the secrets `needs` names.
    ///
    /// Relative paths written in the file are resolved against the file's folder (the
    /// embedded defaults and the environment against the working directory).
    pub fn load_for(path: Option<&Path>, needs: Needs) -> Result<Config, ConfigError> {
        Self::read(path, needs)?.into_result()
    }

    /// Reads every source into a [`Report`]; an error only when nothing could be read.
    fn read(path: Option<&Path>, needs: Needs) -> Result<Report, ConfigError> {
        if let Some(p) = path.filter(|p| !p.is_file()) {
            return Err(ConfigError::one(
                "--config",
                format!("no configuration file at {}", p.display()),
            ));
        }
        let file = file_read_by(path);
        let toml_file = |f: &Path| config::File::from(f).format(config::FileFormat::Toml);
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULTS_TOML,
            config::FileFormat::Toml,
        ));
        let mut file_tree = None;
        if let Some(f) = &file {
            builder = builder.add_source(toml_file(f));
            file_tree = Some(tree_of(config::Config::builder().add_source(toml_file(f)))?);
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
        let origin = resolve::Origin {
            file,
            file_tree,
            env: true,
        };
        let mut report = Self::assemble(builder, &origin, needs)?;
        if let Some(config) = &mut report.config {
            config.source = ConfigSource::Loaded(path.map(Path::to_path_buf));
        }
        Ok(report)
    }

    /// Loads defaults and then the given TOML text, ignoring the environment (tests, tools).
    pub fn from_toml_str(toml: &str) -> Result<Config, ConfigError> {
        let text = || config::File::from_str(toml, config::FileFormat::Toml);
        let builder = config::Config::builder()
            .add_source(config::File::from_str(
                DEFAULTS_TOML,
                config::FileFormat::Toml,
            ))
            .add_source(text());
        let origin = resolve::Origin {
            file: None,
            file_tree: Some(tree_of(config::Config::builder().add_source(text()))?),
            env: false,
        };
        Self::assemble(builder, &origin, Needs::Everything)?.into_result()
    }

    /// [`Config::load`] for `check-config`: every problem, and the configuration even when
    /// there are some (with stand-ins at the mistakes), so that the checks of start-up can
    /// run on the rest in the same pass.
    pub fn load_report(path: Option<&Path>) -> Report {
        Self::read(path, Needs::Everything).unwrap_or_else(|ConfigError(problems)| Report {
            config: None,
            problems,
            stand_ins: Vec::new(),
        })
    }

    fn assemble(
        builder: config::ConfigBuilder<config::builder::DefaultState>,
        origin: &resolve::Origin,
        needs: Needs,
    ) -> Result<Report, ConfigError> {
        let tree = tree_of(builder)?;
        let defaults = tree_of(config::Config::builder().add_source(config::File::from_str(
            DEFAULTS_TOML,
            config::FileFormat::Toml,
        )))?;
        let parse::Parsed {
            config,
            problems,
            stand_ins,
        } = parse::parse(tree, &defaults);
        let mut report = Report {
            config: None,
            problems,
            stand_ins,
        };
        if let Some(mut config) = config {
            let resolved = config.resolve(origin, needs);
            report.add(resolved);
            report.add(config.problems());
            report.config = Some(config);
        }
        Ok(report)
    }

    /// The SQLite file of the embedded store.
    pub fn store_path(&self) -> PathBuf {
        self.store
            .path
            .clone()
            .unwrap_or_else(|| self.server.data_dir.join("hookwarden.db"))
    }
}

/// The file [`Config::load`] reads for this argument: the one given, else the default
/// path when it exists (else none: the embedded defaults and the environment only).
pub fn file_read_by(path: Option<&Path>) -> Option<PathBuf> {
    match path {
        Some(p) => Some(p.to_path_buf()),
        None => {
            let p = PathBuf::from(DEFAULT_CONFIG_PATH);
            p.is_file().then_some(p)
        }
    }
}

/// The sources merged into one tree, as JSON (every key, before any type is applied).
fn tree_of(
    builder: config::ConfigBuilder<config::builder::DefaultState>,
) -> Result<serde_json::Value, ConfigError> {
    builder
        .build()
        .and_then(|c| c.try_deserialize::<serde_json::Value>())
        .map_err(|e| ConfigError::one("(file)", without_quoted_lines(&e.to_string())))
}

#[cfg(test)]
mod tests;

/// A TOML parse error without the line of the file it quotes (`17 | password = "...`):
/// that line may hold a secret, and config problems reach logs (`serve` at start, a
/// reload's log line and answer). The line and column stay, which is enough to find it.
fn without_quoted_lines(problem: &str) -> String {
    problem
        .lines()
        .filter(|line| {
            let quoted = line
                .trim_start()
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .trim_start();
            !(quoted.starts_with('|') || quoted.starts_with('^'))
        })
        .collect::<Vec<_>>()
        .join(" ")
}
