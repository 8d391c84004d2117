//! The checks that span keys or need more than a type ([`Config::problems`], which
//! loading runs: every problem, not the first), and the warnings about settings that work
//! but that an operator should know at start ([`Config::warnings`]).

use super::{
    expose, AuthConfig, Config, Door, HandlerConfig, Problem, Secret, SinkKind, StoreBackend,
    MIN_REQUEST_TIMEOUT, MIN_SECRET_CHARS,
};
use std::collections::HashSet;
use std::time::Duration;

impl Config {
    /// Checks that span keys or need more than a type: every problem, not the first.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if let Some(o) = &self.okta {
            out.extend(o.problems());
        }
        if let Some(r) = &self.reconcile {
            out.extend(r.problems(self));
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
        // deadline (`STORE_DEADLINE`, a 503 that Okta retries) always ends first.
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
            // Read, parsed and matched before start (`app::preflight`).
            (Some(_), Some(_)) | (None, None) => {}
        }
        if self.admin.enabled && self.admin.listen == s.listen {
            p(
                "admin.listen".into(),
                "must differ from server.listen".into(),
            );
        }
        for (key, secret, door) in self.secrets() {
            if let Some(message) = too_short(&secret).filter(|_| door == Door::Yes) {
                p(key, message);
            }
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
                for problem in pg.problems() {
                    p(problem.key, problem.message);
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
            event_type_problems(h, &at, &mut p);
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
                        for name in headers.keys() {
                            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                                p(
                                    format!("{at}.headers.{name}"),
                                    "not a valid header name".into(),
                                );
                            }
                        }
                        self.sink_timeout_problem(*timeout, &at, &mut p);
                    }
                    SinkKind::Nats {
                        url,
                        subject,
                        timeout,
                        ..
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
        let written_in = match &self.source {
            super::ConfigSource::Loaded(path) => super::file_read_by(path.as_deref())
                .map_or("the configuration".to_owned(), |f| f.display().to_string()),
            super::ConfigSource::InCode => "the configuration".to_owned(),
        };
        for (key, secret, door) in self.secrets() {
            if !secret.is_literal() {
                continue;
            }
            let short = secret
                .value()
                .map(|v| expose(v).chars().count())
                .filter(|n| door == Door::Yes && *n < MIN_SECRET_CHARS);
            let var = super::env_var_for(&key)
                .map(|v| format!(", or set {v}"))
                .unwrap_or_default();
            out.push(match short {
                Some(n) => format!("{key} is written in {written_in} and has {n} characters: fine for trying things out; in production use at least {MIN_SECRET_CHARS}, from {{ env = \"...\" }} or {{ file = \"...\" }}{var}"),
                None => format!("{key} is written in {written_in}: use {{ env = \"...\" }} or {{ file = \"...\" }} in production{var}"),
            });
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
                if s.value()
                    .is_some_and(|v| axum::http::HeaderValue::from_str(expose(v)).is_err())
                {
                    p(
                        format!("{at}.secrets[{i}]"),
                        "cannot be sent as an HTTP header value".into(),
                    );
                }
            }
        }
    }
}

/// A secret that lets a caller in and is shorter than [`MIN_SECRET_CHARS`], from the
/// environment or a file (a literal in the file is a warning instead: [`Config::warnings`]).
fn too_short(secret: &Secret) -> Option<String> {
    let chars = expose(secret.value()?).chars().count();
    (chars < MIN_SECRET_CHARS && !secret.is_literal()).then(|| {
        format!("{chars} characters: a secret that lets a caller in needs at least {MIN_SECRET_CHARS}, or it can be guessed")
    })
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

/// An event hook's Okta subscription: exact types, each taken by a sink (else Okta would
/// send events that go nowhere), and filters only for subscribed types.
fn event_type_problems(h: &super::EventHookConfig, at: &str, p: &mut impl FnMut(String, String)) {
    use crate::glob::glob_match;
    use crate::okta::event_hook::is_exact_event_type;
    let mut seen = HashSet::new();
    for (k, t) in h.event_types.iter().enumerate() {
        if !is_exact_event_type(t) {
            p(
                format!("{at}.event_types[{k}]"),
                format!("'{t}' is not an exact event type such as user.session.start (Okta subscribes to exact types: list each one)"),
            );
        } else if !seen.insert(t.as_str()) {
            p(
                format!("{at}.event_types[{k}]"),
                format!("'{t}' is listed twice"),
            );
        } else if !h.sinks.is_empty()
            && !h
                .sinks
                .iter()
                .any(|s| s.event_types.is_empty() || s.event_types.iter().any(|g| glob_match(g, t)))
        {
            p(
                format!("{at}.event_types[{k}]"),
                format!("no sink of this hook takes '{t}': Okta would send events that reach no sink (add a sink for it, or drop the type)"),
            );
        }
    }
    for (t, expression) in &h.okta_filters {
        if !h.event_types.contains(t) {
            p(
                format!("{at}.okta_filters.{t}"),
                "a filter for a type the hook does not subscribe to: add it to event_types, or drop the filter".into(),
            );
        }
        if expression.trim().is_empty() {
            p(
                format!("{at}.okta_filters.{t}"),
                "an Okta Expression Language condition, e.g. event.target.?[type eq 'UserGroup'].size()>0".into(),
            );
        }
    }
}
