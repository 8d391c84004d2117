//! What loading does once the tree is read: relative paths written in the file resolved
//! against the file's folder, secrets given as environment overrides noted as such, and
//! the secrets the command uses read.
//!
//! Every key that holds a file path and every key that holds a secret is listed once here
//! ([`Config::paths_mut`], [`Config::secrets_mut`]): resolving, reading and the checks
//! that walk them ([`Config::file_checks`] in `check-config`) all use these lists.

use super::{
    AuthConfig, Config, HandlerConfig, Problem, Secret, SecretSource, SinkKind, ENV_PREFIX,
};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Which secrets a command reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// All of them (`serve`, `check-config`, `okta`, `reconcile`).
    Everything,
    /// The store's only (`hookwarden events` reads the store; the hooks' passwords and the
    /// admin token may be absent where an operator runs it).
    StoreOnly,
}

/// Where the merged tree came from, to tell what the file wrote.
pub(super) struct Origin {
    /// The configuration file read, if any.
    pub file: Option<PathBuf>,
    /// The file's own tree (without defaults and environment).
    pub file_tree: Option<Value>,
    /// Whether `HOOKWARDEN__*` variables were merged.
    pub env: bool,
}

impl Origin {
    /// Every string the file wrote, by key (`event_hooks[0].sinks[1].path`).
    fn file_strings(&self) -> HashMap<String, String> {
        let mut out = HashMap::new();
        if let Some(tree) = &self.file_tree {
            flatten(tree, &mut Vec::new(), &mut out);
        }
        out
    }
}

fn flatten(v: &Value, at: &mut Vec<super::parse::Step>, out: &mut HashMap<String, String>) {
    use super::parse::{render, Step};
    match v {
        Value::String(s) => {
            out.insert(render(at), s.clone());
        }
        Value::Object(t) => {
            for (k, v) in t {
                at.push(Step::Key(k.clone()));
                flatten(v, at, out);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                at.push(Step::Index(i));
                flatten(v, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

/// The environment variable that sets `key` (`admin.token` → `HOOKWARDEN__ADMIN__TOKEN`);
/// none for a key inside an array, which variables cannot set.
pub fn env_var_for(key: &str) -> Option<String> {
    (!key.contains('[')).then(|| {
        format!(
            "{ENV_PREFIX}__{}",
            key.replace('.', "__").to_ascii_uppercase()
        )
    })
}

impl Config {
    /// Every key that holds a file or folder path, with its key. A command sink's
    /// `program` counts only when it names a path (with a `/`): a bare name is looked up in
    /// `PATH`.
    pub fn paths_mut(&mut self) -> Vec<(String, &mut PathBuf)> {
        let mut out: Vec<(String, &mut PathBuf)> = Vec::new();
        let s = &mut self.server;
        out.push(("server.data_dir".into(), &mut s.data_dir));
        out.extend(s.tls.cert.as_mut().map(|p| ("server.tls.cert".into(), p)));
        out.extend(s.tls.key.as_mut().map(|p| ("server.tls.key".into(), p)));
        out.extend(self.store.path.as_mut().map(|p| ("store.path".into(), p)));
        if let Some(pg) = &mut self.store.postgres {
            for (key, p) in [
                ("ca_file", &mut pg.ca_file),
                ("client_cert", &mut pg.client_cert),
                ("client_key", &mut pg.client_key),
            ] {
                out.extend(p.as_mut().map(|p| (format!("store.postgres.{key}"), p)));
            }
        }
        if let Some(o) = &mut self.okta {
            out.extend(o.ca_file.as_mut().map(|p| ("okta.ca_file".into(), p)));
        }
        for (i, h) in self.event_hooks.iter_mut().enumerate() {
            for (j, sink) in h.sinks.iter_mut().enumerate() {
                let at = format!("event_hooks[{i}].sinks[{j}]");
                match &mut sink.kind {
                    SinkKind::Jsonl { path } => out.push((format!("{at}.path"), path)),
                    SinkKind::Command { program, .. } if program.components().count() > 1 => {
                        out.push((format!("{at}.program"), program))
                    }
                    _ => {}
                }
            }
        }
        for (i, h) in self.inline_hooks.iter_mut().enumerate() {
            let at = format!("inline_hooks[{i}]");
            if let AuthConfig::Oauth(o) = &mut h.auth {
                out.extend(
                    o.jwks_file
                        .as_mut()
                        .map(|p| (format!("{at}.auth.jwks_file"), p)),
                );
            }
            match &mut h.handler {
                HandlerConfig::Script(s) => out.push((format!("{at}.handler.file"), &mut s.file)),
                HandlerConfig::Rules(r) => out.extend(
                    r.password_import
                        .as_mut()
                        .map(|p| (format!("{at}.handler.password_import.file"), &mut p.file)),
                ),
                HandlerConfig::Forward(_) => {}
            }
        }
        out
    }

    /// Every secret, with its key, and whether it lets a caller in (a hook's password or
    /// header secret, the admin token: these have a minimum length).
    pub fn secrets_mut(&mut self) -> Vec<(String, &mut Secret, Door)> {
        let mut out: Vec<(String, &mut Secret, Door)> = Vec::new();
        out.extend(
            self.admin
                .token
                .as_mut()
                .map(|s| ("admin.token".into(), s, Door::Yes)),
        );
        if let Some(pg) = &mut self.store.postgres {
            out.extend(
                pg.password
                    .as_mut()
                    .map(|s| ("store.postgres.password".into(), s, Door::No)),
            );
        }
        if let Some(o) = &mut self.okta {
            out.extend(
                o.api_token
                    .as_mut()
                    .map(|s| ("okta.api_token".into(), s, Door::No)),
            );
            out.extend(o.oauth.as_mut().map(|a| {
                (
                    "okta.oauth.private_key".into(),
                    &mut a.private_key,
                    Door::No,
                )
            }));
        }
        for (i, h) in self.event_hooks.iter_mut().enumerate() {
            let at = format!("event_hooks[{i}]");
            auth_secrets(&at, &mut h.auth, &mut out);
            for (j, sink) in h.sinks.iter_mut().enumerate() {
                let at = format!("{at}.sinks[{j}]");
                match &mut sink.kind {
                    SinkKind::Http { headers, .. } => {
                        for (name, s) in headers {
                            out.push((format!("{at}.headers.{name}"), s, Door::No));
                        }
                    }
                    SinkKind::Nats { token: Some(t), .. } => {
                        out.push((format!("{at}.token"), t, Door::No))
                    }
                    _ => {}
                }
            }
        }
        for (i, h) in self.inline_hooks.iter_mut().enumerate() {
            let at = format!("inline_hooks[{i}]");
            auth_secrets(&at, &mut h.auth, &mut out);
            if let HandlerConfig::Forward(f) = &mut h.handler {
                for (name, s) in &mut f.headers {
                    out.push((format!("{at}.handler.headers.{name}"), s, Door::No));
                }
            }
        }
        out
    }

    /// [`Config::secrets_mut`] for reading (the checks and warnings of secrets): one
    /// list of secrets, copied rather than written twice.
    pub fn secrets(&self) -> Vec<(String, Secret, Door)> {
        self.clone()
            .secrets_mut()
            .into_iter()
            .map(|(key, secret, door)| (key, secret.clone(), door))
            .collect()
    }

    /// Resolves relative paths the file wrote against its folder, notes the secrets that
    /// came from `HOOKWARDEN__*` variables, and reads the secrets `needs` names. Returns the
    /// secrets that could not be read.
    pub(super) fn resolve(&mut self, origin: &Origin, needs: Needs) -> Vec<Problem> {
        let written = origin.file_strings();
        let base = origin
            .file
            .as_deref()
            .and_then(Path::parent)
            .filter(|p| !p.as_os_str().is_empty());
        let from_file = |key: &str, path: &Path| {
            path.is_relative() && written.get(key).is_some_and(|w| Path::new(w) == path)
        };
        if let Some(base) = base {
            for (key, path) in self.paths_mut() {
                if from_file(&key, path) {
                    *path = base.join(&*path);
                }
            }
        }
        let mut problems = Vec::new();
        for (key, secret, _) in self.secrets_mut() {
            match &mut secret.source {
                SecretSource::File { file } => {
                    if let Some(base) = base.filter(|_| from_file(&format!("{key}.file"), file)) {
                        *file = base.join(&*file);
                    }
                }
                // A value set by `HOOKWARDEN__ADMIN__TOKEN` is an environment secret, not one
                // written in the file (no warning, and read again from there).
                SecretSource::Literal(value) if origin.env => {
                    if let Some(var) = env_var_for(&key)
                        .filter(|v| std::env::var(v).is_ok_and(|set| set == *value))
                    {
                        secret.source = SecretSource::Env { env: var };
                    }
                }
                _ => {}
            }
            if needs == Needs::Everything || key.starts_with("store.") {
                secret.value = secret.source.resolve().map_err(std::sync::Arc::new);
                if let Err(e) = &secret.value {
                    problems.push(Problem {
                        key,
                        message: e.to_string(),
                    });
                }
            }
        }
        problems
    }
}

fn auth_secrets<'a>(
    at: &str,
    auth: &'a mut AuthConfig,
    out: &mut Vec<(String, &'a mut Secret, Door)>,
) {
    match auth {
        AuthConfig::Basic { users, .. } => {
            for (j, u) in users.iter_mut().enumerate() {
                out.push((
                    format!("{at}.auth.users[{j}].password"),
                    &mut u.password,
                    Door::Yes,
                ));
            }
        }
        AuthConfig::Header { secrets, .. } => {
            for (j, s) in secrets.iter_mut().enumerate() {
                out.push((format!("{at}.auth.secrets[{j}]"), s, Door::Yes));
            }
        }
        AuthConfig::Oauth(_) => {}
    }
}

/// Whether a secret lets a caller in (and so has [`super::MIN_SECRET_CHARS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    Yes,
    No,
}
