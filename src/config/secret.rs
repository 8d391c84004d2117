//! Secrets in configuration: a literal, an environment variable or a file, and the
//! [`Secret`] each is read into.
//!
//! One syntax, chosen because TOML can say it without escaping rules:
//!
//! ```toml
//! password = "literal value"               # fine for development only
//! password = { env = "OKTA_HOOK_PASSWORD" }
//! password = { file = "/run/secrets/okta-hook-password" }
//! ```
//!
//! A reference is resolved once, when the configuration is loaded, into a
//! [`SecretString`] whose `Debug` prints `[REDACTED]`, so a secret cannot reach
//! a log through a derived `Debug` of the config.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};
use std::path::PathBuf;

/// A secret as written in the configuration file, before it is resolved.
#[derive(Clone)]
pub enum SecretSource {
    /// The value itself, written in the file (development only: a warning says so at start).
    Literal(String),
    /// The name of an environment variable that holds the value.
    Env { env: String },
    /// A file whose contents (trailing newline removed) are the value.
    File { file: PathBuf },
}

impl<'de> Deserialize<'de> for SecretSource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde_json::Value;
        let wrong = || {
            <D::Error as serde::de::Error>::custom(
                "a secret is a string, { env = \"VARIABLE\" } or { file = \"/path/to/file\" }",
            )
        };
        match Value::deserialize(d)? {
            Value::String(s) => Ok(SecretSource::Literal(s)),
            Value::Object(mut t) if t.len() == 1 => match (t.remove("env"), t.remove("file")) {
                (Some(Value::String(env)), None) => Ok(SecretSource::Env { env }),
                (None, Some(Value::String(file))) => Ok(SecretSource::File { file: file.into() }),
                _ => Err(wrong()),
            },
            _ => Err(wrong()),
        }
    }
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Literal(_) => f.write_str("SecretSource::Literal([REDACTED])"),
            SecretSource::Env { env } => write!(f, "SecretSource::Env({env})"),
            SecretSource::File { file } => write!(f, "SecretSource::File({})", file.display()),
        }
    }
}

impl SecretSource {
    /// Reads the secret. The error says where it was looked for, never what it holds.
    pub fn resolve(&self) -> Result<SecretString, SecretError> {
        let value = match self {
            SecretSource::Literal(v) => v.clone(),
            SecretSource::Env { env } => std::env::var(env).map_err(|source| SecretError::Env {
                name: env.clone(),
                source,
            })?,
            SecretSource::File { file } => read_secret_file(file)?
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
        };
        if value.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(SecretString::from(value))
    }

    /// True when the secret is written into the configuration file itself.
    pub fn is_literal(&self) -> bool {
        matches!(self, SecretSource::Literal(_))
    }
}

/// A secret resolved at load time. `Debug` never shows the value.
#[derive(Clone)]
pub struct Secret {
    /// The error is shared, not copied, when a config is cloned.
    pub(super) value: Result<SecretString, std::sync::Arc<SecretError>>,
    /// Where it was read, to read it again ([`Secret::read_again`]).
    pub(super) source: SecretSource,
}

impl Secret {
    /// The resolved value. Only valid configs reach the server, so this cannot fail there.
    pub fn value(&self) -> Option<&SecretString> {
        self.value.as_ref().ok()
    }
    /// True when the value is written in the config file itself.
    pub fn is_literal(&self) -> bool {
        self.source.is_literal()
    }
    /// The value as its variable or file holds it now, for a secret that is rotated
    /// under a running service (a database password: each new connection reads it).
    pub fn read_again(&self) -> Result<SecretString, SecretError> {
        self.source.resolve()
    }
    /// A secret from a literal, for tests and for code that builds configs.
    pub fn literal(value: impl Into<String>) -> Self {
        SecretSource::Literal(value.into()).into()
    }
}

impl From<SecretSource> for Secret {
    fn from(src: SecretSource) -> Self {
        Secret {
            value: src.resolve().map_err(std::sync::Arc::new),
            source: src,
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl<'de> Deserialize<'de> for Secret {
    /// Not read yet: loading reads it after relative file paths are resolved, and only
    /// when the command uses it ([`super::Config::load_for`]).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        SecretSource::deserialize(d).map(|source| Secret {
            value: Err(std::sync::Arc::new(SecretError::Unread)),
            source,
        })
    }
}

/// Fewest characters of a secret that lets a caller in (a hook's Basic password or header
/// secret, the admin token): shorter ones are guessed. A shorter one written in the file
/// itself is a warning (trying things out), from anywhere else a problem.
pub const MIN_SECRET_CHARS: usize = 16;

/// Largest secret file read. A secret is one value; a path that names a log, a device or
/// `/dev/zero` by mistake must fail at start with a clear error, not read without end.
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// Why a secret could not be resolved: it says where the secret was looked for, never
/// what it holds.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {name} is not set (or is not UTF-8)")]
    Env {
        name: String,
        source: std::env::VarError,
    },
    #[error("cannot read secret file {}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("secret file {} is larger than {} KiB: it should hold the secret alone", path.display(), MAX_SECRET_FILE / 1024)]
    TooLarge { path: std::path::PathBuf },
    #[error("the secret is empty")]
    Empty,
    /// Not read, because the command that loaded the configuration does not use it.
    #[error("not read (this command does not use it)")]
    Unread,
}

fn read_secret_file(file: &std::path::Path) -> Result<String, SecretError> {
    use std::io::Read;
    let cannot = |source: std::io::Error| SecretError::Read {
        path: file.to_path_buf(),
        source,
    };
    let mut value = String::new();
    std::fs::File::open(file)
        .map_err(cannot)?
        .take(MAX_SECRET_FILE + 1)
        .read_to_string(&mut value)
        .map_err(cannot)?;
    if value.len() as u64 > MAX_SECRET_FILE {
        return Err(SecretError::TooLarge {
            path: file.to_path_buf(),
        });
    }
    Ok(value)
}

/// Exposes a secret's bytes; kept in one place so that a grep finds every use.
pub fn expose(secret: &SecretString) -> &str {
    secret.expose_secret()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_a_literal() {
        let s = SecretSource::Literal("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
        let resolved = s.resolve().expect("literal resolves");
        assert!(!format!("{resolved:?}").contains("hunter2"));
        assert_eq!(expose(&resolved), "hunter2");
    }

    #[test]
    fn file_secret_drops_trailing_newline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s");
        std::fs::write(&path, "abc\n").expect("write");
        let s = SecretSource::File { file: path };
        assert_eq!(expose(&s.resolve().expect("resolves")), "abc");
    }

    #[test]
    fn a_file_too_large_to_be_a_secret_is_refused_without_reading_it_all() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big");
        std::fs::write(&path, "x".repeat(64 * 1024 + 1)).expect("write");
        let err = SecretSource::File { file: path.clone() }
            .resolve()
            .expect_err("too large")
            .to_string();
        assert!(err.contains("larger than 64 KiB"), "{err}");
        assert!(!err.contains("xxx"), "{err}");
        std::fs::write(&path, "x".repeat(64 * 1024)).expect("write");
        let ok = SecretSource::File { file: path }
            .resolve()
            .expect("64 KiB is accepted");
        assert_eq!(expose(&ok).len(), 64 * 1024);
        // A device that never ends: the read stops at the limit.
        let err = SecretSource::File {
            file: "/dev/zero".into(),
        }
        .resolve()
        .expect_err("/dev/zero")
        .to_string();
        assert!(err.contains("/dev/zero"), "{err}");
    }

    #[test]
    fn missing_env_names_the_variable() {
        let s = SecretSource::Env {
            env: "HOOKWARDEN_TEST_DOES_NOT_EXIST_42".into(),
        };
        let err = s.resolve().expect_err("must fail").to_string();
        assert!(err.contains("HOOKWARDEN_TEST_DOES_NOT_EXIST_42"));
    }
}
