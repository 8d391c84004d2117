//! What `serve` would refuse before it binds, found without binding: `check-config` runs
//! it, `serve` runs it first (so that both refuse the same configurations, each problem
//! with its key), and a failed reload runs it to list every problem, not the first.
//!
//! Beyond the configuration's own checks ([`Config::load`]): inline handlers built
//! (scripts compiled, rule and password files read), door auth built (JWKS files read),
//! the TLS certificate and key read, parsed and matched, the data folder and the store's
//! folder writable (or creatable), and every JSON Lines sink's folder present and writable.

use crate::config::{Config, Problem, SinkKind, StoreBackend};
use crate::http::guard::DoorAuth;

/// Every problem `serve` would meet before it binds.
pub fn problems(config: &Config) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut p = |key: String, message: String| out.push(Problem { key, message });
    for (i, h) in config.inline_hooks.iter().enumerate() {
        if let Err(e) = crate::inline_hooks::build_handler(h) {
            p(format!("inline_hooks[{i}].handler"), e.to_string());
        }
        if let Err(e) = DoorAuth::from_config(&h.auth) {
            p(format!("inline_hooks[{i}].auth"), e.to_string());
        }
    }
    for (i, h) in config.event_hooks.iter().enumerate() {
        if let Err(e) = DoorAuth::from_config(&h.auth) {
            p(format!("event_hooks[{i}].auth"), e.to_string());
        }
        for (j, sink) in h.sinks.iter().enumerate() {
            if let SinkKind::Jsonl { path } = &sink.kind {
                // A file in the data folder: start-up creates that folder (checked below).
                if path.parent() == Some(config.server.data_dir.as_path()) && !path.exists() {
                    continue;
                }
                if let Err(e) = crate::sinks::jsonl::JsonlSink::check(path) {
                    p(format!("event_hooks[{i}].sinks[{j}].path"), e.to_string());
                }
            }
        }
    }
    let server = &config.server;
    if server.tls.enabled {
        if let (Some(cert), Some(key)) = (&server.tls.cert, &server.tls.key) {
            if let Err(e) = crate::http::tls::check_pair(cert, key) {
                p("server.tls".to_owned(), e.to_string());
            }
        }
    }
    // The data folder holds the development certificate and, by default, the store: it
    // is created at start when missing.
    if let Err(e) = crate::files::writable_folder(&server.data_dir, true) {
        p("server.data_dir".to_owned(), e.to_string());
    }
    if config.store.backend == StoreBackend::Sqlite {
        if let Some(folder) = config
            .store
            .path
            .as_deref()
            .and_then(std::path::Path::parent)
        {
            if let Err(e) = crate::files::writable_folder(folder, true) {
                p("store.path".to_owned(), e.to_string());
            }
        }
    }
    out
}
