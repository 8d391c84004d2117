//! The configuration loader on arbitrary TOML text (embedded defaults, then the text),
//! and what `check-config` builds from a loaded configuration that has no side effect
//! outside the process: the rules handlers and each inline hook's shared-secret auth.
//!
//! A configuration is written by an operator, not an attacker, but a typo must give
//! a message naming the key, never a panic. (Secrets given as `{ file = ... }` are
//! read: the fuzzer could name any file; it cannot write one.)

#![no_main]

use hookwarden::config::{AuthConfig, Config, HandlerConfig};
use hookwarden::http::auth::Authenticator;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = match Config::from_toml_str(text) {
        Ok(config) => config,
        Err(e) => {
            assert!(
                !e.0.is_empty(),
                "a refused configuration names at least one problem"
            );
            return;
        }
    };
    for hook in &config.inline_hooks {
        if matches!(hook.handler, HandlerConfig::Rules(_)) {
            let _ = hookwarden::inline_hooks::build_handler(hook);
        }
        // OAuth is left out: its verifier builds an HTTPS client (slow, and not a parser).
        if !matches!(hook.auth, AuthConfig::Oauth(_)) {
            let _ = Authenticator::from_config(&hook.auth);
        }
    }
});
