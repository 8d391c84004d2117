//! `[store.postgres]`: the database every replica shares, and how to reach it safely:
//! TLS (`disable`, `require`, `verify-full`), a private CA, a client certificate.
//!
//! TLS may be set by keys here or, as libpq users write it, by `sslmode`, `sslrootcert`,
//! `sslcert` and `sslkey` in the URL. [`PostgresConfig::tls`] merges the two (a key and a
//! URL parameter that disagree is a problem, not a guess) and hands the driver a URL
//! without them, since tokio-postgres knows only `sslmode=disable|prefer|require`.

use super::{Problem, Secret};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

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
    /// Longest a statement may run in the database (`statement_timeout`, set on each
    /// connection): an overloaded database ends it, and the delivery gets 503 (Okta
    /// retries) instead of waiting. Under Okta's 3 s, with room for the answer.
    #[serde(with = "humantime_serde", default = "default_statement_timeout")]
    pub statement_timeout: Duration,
    /// Longest a statement waits for a lock (`lock_timeout`), e.g. behind a migration or
    /// an operator's `LOCK TABLE`.
    #[serde(with = "humantime_serde", default = "default_lock_timeout")]
    pub lock_timeout: Duration,
    /// The URL points at a transaction pooler (PgBouncer with `pool_mode = transaction`):
    /// statements are sent unnamed instead of prepared and cached per connection, and no
    /// `options` startup parameter is sent (PgBouncer refuses it), so `statement_timeout`
    /// and `lock_timeout` are then the role's (`ALTER ROLE … SET`), which the service
    /// checks at start.
    #[serde(default)]
    pub transaction_pooling: bool,
    /// TLS to the database. Default: the URL's `sslmode`, else `disable`.
    #[serde(default)]
    pub tls: Option<TlsMode>,
    /// CA certificates (PEM) that sign the server's certificate (a private CA, a
    /// managed database's bundle). Default: the URL's `sslrootcert`, else the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// A client certificate (PEM), for servers that ask for one (`clientcert` in pg_hba).
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[serde(default)]
    pub client_key: Option<PathBuf>,
}

fn default_pg_pool() -> usize {
    16
}
fn default_pg_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_statement_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_lock_timeout() -> Duration {
    Duration::from_secs(1)
}

/// How the connection to the database is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// Plain TCP: a private network or a local socket only.
    Disable,
    /// Encrypted, but the server's certificate is not checked (libpq's `require`): safe
    /// from eavesdroppers, not from an impostor.
    Require,
    /// Encrypted, the certificate chain checked against the CA, and the host name of the
    /// URL checked against the certificate. Recommended.
    VerifyFull,
}

impl TlsMode {
    fn parse_sslmode(value: &str) -> Result<TlsMode, String> {
        match value {
            "disable" => Ok(TlsMode::Disable),
            "require" => Ok(TlsMode::Require),
            "verify-full" => Ok(TlsMode::VerifyFull),
            other => Err(format!(
                "sslmode={other} is not supported: use disable, require or verify-full (prefer, allow and verify-ca would connect where hookwarden should refuse)"
            )),
        }
    }
}

/// TLS as the URL and the keys say it, merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub mode: TlsMode,
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// The URL for the driver: the libpq TLS parameters taken out.
    pub driver_url: String,
}

impl PostgresConfig {
    /// A section with this URL and every other key at its default (for code that builds
    /// configs; a file gets the same defaults).
    pub fn new(url: impl Into<String>) -> PostgresConfig {
        PostgresConfig {
            url: url.into(),
            password: None,
            pool_size: default_pg_pool(),
            connect_timeout: default_pg_timeout(),
            statement_timeout: default_statement_timeout(),
            lock_timeout: default_lock_timeout(),
            transaction_pooling: false,
            tls: None,
            ca_file: None,
            client_cert: None,
            client_key: None,
        }
    }

    /// The TLS settings and the URL for the driver; an error names the key or the URL
    /// parameter and what is wrong.
    pub fn tls(&self) -> Result<TlsSettings, Problem> {
        let problem = |key: &str, message: String| Problem {
            key: format!("store.postgres.{key}"),
            message,
        };
        let mut url =
            url::Url::parse(&self.url).map_err(|e| problem("url", format!("not a URL: {e}")))?;
        let mut from_url: [Option<String>; 4] = Default::default();
        const NAMES: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter_map(|(k, v)| match NAMES.iter().position(|n| *n == k) {
                Some(i) => {
                    from_url[i] = Some(v.into_owned());
                    None
                }
                None => Some((k.into_owned(), v.into_owned())),
            })
            .collect();
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
        let [sslmode, sslrootcert, sslcert, sslkey] = from_url;
        let url_mode = sslmode
            .as_deref()
            .map(TlsMode::parse_sslmode)
            .transpose()
            .map_err(|m| problem("url", m))?;
        let mode = match (self.tls, url_mode) {
            (Some(k), Some(u)) if k != u => {
                return Err(problem(
                    "tls",
                    format!(
                        "{k:?} here, but the URL says sslmode={}: keep one",
                        sslmode.unwrap_or_default()
                    ),
                ))
            }
            (Some(k), _) => k,
            (None, Some(u)) => u,
            (None, None) => TlsMode::Disable,
        };
        let pick = |key: &str,
                    ours: &Option<PathBuf>,
                    theirs: Option<String>|
         -> Result<Option<PathBuf>, Problem> {
            match (ours, theirs) {
                (Some(a), Some(b)) if a.as_path() != std::path::Path::new(&b) => Err(problem(
                    key,
                    format!("{} here, but the URL names {b}: keep one", a.display()),
                )),
                (Some(a), _) => Ok(Some(a.clone())),
                (None, b) => Ok(b.map(PathBuf::from)),
            }
        };
        let settings = TlsSettings {
            mode,
            ca_file: pick("ca_file", &self.ca_file, sslrootcert)?,
            client_cert: pick("client_cert", &self.client_cert, sslcert)?,
            client_key: pick("client_key", &self.client_key, sslkey)?,
            driver_url: url.to_string(),
        };
        if settings.client_cert.is_some() != settings.client_key.is_some() {
            return Err(problem(
                "client_cert",
                "a client certificate needs its key, and a key its certificate: set both client_cert and client_key".into(),
            ));
        }
        Ok(settings)
    }

    /// Every problem of this section, by key.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut p = |key: &str, message: String| {
            out.push(Problem {
                key: format!("store.postgres.{key}"),
                message,
            })
        };
        match url::Url::parse(&self.url) {
            Ok(u) if u.password().is_some() => p(
                "url",
                "keep the password out of the URL: use store.postgres.password = { env = \"...\" }"
                    .into(),
            ),
            Ok(u) if matches!(u.scheme(), "postgres" | "postgresql") => {}
            _ => p("url", "must be a postgres:// URL".into()),
        }
        if self.pool_size == 0 {
            p("pool_size", "must be at least 1".into());
        }
        for (key, value) in [
            ("statement_timeout", self.statement_timeout),
            ("lock_timeout", self.lock_timeout),
            ("connect_timeout", self.connect_timeout),
        ] {
            // A wait in the database must end before the delivery's own deadline.
            if value.is_zero() || value > super::STORE_DEADLINE {
                p(
                    key,
                    format!("between 1ms and {}ms: a database wait must end before a delivery's deadline, inside Okta's 3 s", super::STORE_DEADLINE.as_millis()),
                );
            }
        }
        match self.tls() {
            Err(problem) => out.push(problem),
            Ok(tls) => {
                let files = [
                    ("ca_file", &tls.ca_file, "CERTIFICATE"),
                    ("client_cert", &tls.client_cert, "CERTIFICATE"),
                    ("client_key", &tls.client_key, "PRIVATE KEY"),
                ];
                for (key, path, label) in files {
                    let Some(path) = path else { continue };
                    let key = format!("store.postgres.{key}");
                    match std::fs::read_to_string(path) {
                        Err(e) => out.push(Problem {
                            key,
                            message: format!("cannot read {}: {e}", path.display()),
                        }),
                        Ok(text) if !text.contains("-----BEGIN") || !text.contains(label) => out
                            .push(Problem {
                                key,
                                message: format!("{} holds no PEM {label}", path.display()),
                            }),
                        Ok(_) => {}
                    }
                }
                if tls.mode == TlsMode::Disable
                    && (tls.ca_file.is_some() || tls.client_cert.is_some())
                {
                    out.push(Problem {
                        key: "store.postgres.tls".into(),
                        message: "TLS files are set but tls is disable: set tls = \"verify-full\" (recommended) or \"require\"".into(),
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(url: &str) -> PostgresConfig {
        PostgresConfig::new(url)
    }

    #[test]
    fn libpq_parameters_are_read_and_taken_out_of_the_driver_url() {
        let t = pg("postgres://h@db.example.com:5432/hw?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=x")
            .tls()
            .expect("valid");
        assert_eq!(t.mode, TlsMode::VerifyFull);
        assert_eq!(t.ca_file, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(
            t.driver_url,
            "postgres://h@db.example.com:5432/hw?application_name=x"
        );
        let t = pg("postgres://h@db/hw").tls().expect("valid");
        assert_eq!(
            (t.mode, t.driver_url.as_str()),
            (TlsMode::Disable, "postgres://h@db/hw")
        );
    }

    #[test]
    fn disagreements_and_weak_modes_are_problems() {
        let mut c = pg("postgres://h@db/hw?sslmode=require");
        c.tls = Some(TlsMode::VerifyFull);
        assert_eq!(c.tls().expect_err("conflict").key, "store.postgres.tls");
        let e = pg("postgres://h@db/hw?sslmode=prefer")
            .tls()
            .expect_err("prefer");
        assert!(
            e.message.contains("sslmode=prefer is not supported"),
            "{}",
            e.message
        );
        let mut c = pg("postgres://h@db/hw");
        c.tls = Some(TlsMode::VerifyFull);
        c.client_cert = Some("/c.pem".into());
        assert_eq!(
            c.tls().expect_err("half a pair").key,
            "store.postgres.client_cert"
        );
        let mut c = pg("postgres://h@db/hw");
        c.tls = Some(TlsMode::VerifyFull);
        c.ca_file = Some("/nonexistent/ca.pem".into());
        let keys: Vec<String> = c.problems().into_iter().map(|p| p.key).collect();
        assert_eq!(keys, vec!["store.postgres.ca_file"]);
    }
}
