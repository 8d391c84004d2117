//! `[inline_hooks.handler]`: how an inline hook's answer is made (`kind = "rules"`,
//! `"script"` or `"forward"`) and the settings of each kind. The handlers themselves are
//! built from these by `inline_hooks::build_handler`.

use super::rules::RulesConfig;
use super::Secret;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// How an inline hook's answer is made.
#[derive(Debug, Clone, Deserialize)]
#[serde(remote = "Self", rename_all = "lowercase")]
pub enum HandlerConfig {
    /// Declarative rules in this file.
    Rules(RulesConfig),
    /// A sandboxed Rhai script.
    Script(ScriptConfig),
    /// POST to your own service, answer checked and passed on.
    Forward(ForwardConfig),
}

impl<'de> Deserialize<'de> for HandlerConfig {
    /// `kind = "rules"`, `"script"` or `"forward"`, read so that a mistake inside keeps its path.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::parse::tagged(d, "kind", &[], |de| HandlerConfig::deserialize(de))
    }
}

/// The `[inline_hooks.handler]` table of `kind = "script"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptConfig {
    /// The script file (compiled once at start).
    pub file: PathBuf,
    /// Rhai operations per call (a loop turn is a few).
    #[serde(default = "default_max_operations")]
    pub max_operations: u64,
    /// Nested function calls.
    #[serde(default = "default_max_call_depth")]
    pub max_call_depth: usize,
    /// Nesting of expressions (and of expressions inside functions).
    #[serde(default = "default_max_expr_depth")]
    pub max_expr_depth: usize,
    /// Characters in one string.
    #[serde(default = "default_max_string_size")]
    pub max_string_size: usize,
    /// Elements in one array.
    #[serde(default = "default_max_array_size")]
    pub max_array_size: usize,
    /// Entries in one object map.
    #[serde(default = "default_max_map_size")]
    pub max_map_size: usize,
}

fn default_max_operations() -> u64 {
    100_000
}
fn default_max_call_depth() -> usize {
    32
}
fn default_max_expr_depth() -> usize {
    64
}
fn default_max_string_size() -> usize {
    64 * 1024
}
fn default_max_array_size() -> usize {
    10_000
}
fn default_max_map_size() -> usize {
    10_000
}

impl ScriptConfig {
    /// A script with the default limits (for code that builds configs, and tests).
    pub fn new(file: impl Into<PathBuf>) -> Self {
        ScriptConfig {
            file: file.into(),
            max_operations: default_max_operations(),
            max_call_depth: default_max_call_depth(),
            max_expr_depth: default_max_expr_depth(),
            max_string_size: default_max_string_size(),
            max_array_size: default_max_array_size(),
            max_map_size: default_max_map_size(),
        }
    }
}

/// The `[inline_hooks.handler]` table of `kind = "forward"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardConfig {
    /// `https://` (or `http://` to a service on the same host or private network).
    pub url: String,
    /// Sent with every request: secrets (`{ env = "..." }`), never logged.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
}
