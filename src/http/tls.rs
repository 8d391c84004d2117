//! TLS for the public listener: loading the certificate, a development certificate
//! when none is configured, and reloading without a restart.
//!
//! * **One crypto provider, chosen here.** The `rustls::ServerConfig` is built with
//!   the *ring* provider passed explicitly, so it does not depend on which process-wide
//!   default some other crate (or test) installed first.
//! * **TLS 1.2 and 1.3 only**, with ALPN `http/1.1` only: the server speaks HTTP/1.1 (see
//!   `http::server` for why not HTTP/2).
//! * **Reload by content.** Certificates are rotated by writing files (certbot,
//!   cert-manager, a Kubernetes secret whose `..data` symlink is swapped, tools that
//!   preserve mtimes), so mtimes prove little. The reloader compares a SHA-256 of the
//!   bytes of both files, and builds the new
//!   configuration before swapping it in: new handshakes get the new certificate,
//!   connections already open keep theirs, and a bad file leaves the old certificate
//!   in service.
//! * **The development certificate survives restarts.** It is generated once into
//!   `data_dir/tls/` and reused, so an exception added in a browser or a `--cacert`
//!   given to curl keeps working.
//!
//! Files are read once into memory, hashed, and parsed from those same bytes (with
//! `rustls_pki_types::pem::PemObject`'s slice functions rather than the file ones), so
//! that the fingerprint always describes exactly what is being served, even when the
//! file changes in between.

use crate::config::ServerConfig;
use crate::metrics::{Metrics, ResultLabel};
use axum_server::tls_rustls::RustlsConfig;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Why a certificate could not be loaded, generated or reloaded. Every variant names
/// the file at fault and keeps its cause as the error's source.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The blocking task that reads or generates the files did not finish.
    #[error("{doing}: {source}")]
    Task {
        doing: &'static str,
        source: tokio::task::JoinError,
    },
    #[error("cannot read {what} {}: {source}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a valid PEM {what} file: {source}", path.display())]
    Pem {
        what: &'static str,
        path: PathBuf,
        source: pem::Error,
    },
    #[error("{}: no certificate in file (expected -----BEGIN CERTIFICATE-----)", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{}: no private key in file (expected PKCS#8 \"PRIVATE KEY\", PKCS#1 \"RSA PRIVATE KEY\" or SEC1 \"EC PRIVATE KEY\"; encrypted keys are not supported)", path.display())]
    NoKey { path: PathBuf },
    #[error("TLS protocol versions: {0}")]
    Versions(#[source] rustls::Error),
    #[error("{}: the private key does not match the certificate in {}", key.display(), cert.display())]
    KeyMismatch { key: PathBuf, cert: PathBuf },
    #[error("{}: unusable {what}: {source}", path.display())]
    Unusable {
        what: &'static str,
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("server.tls.cert and server.tls.key must be set together (or neither, for a development certificate)")]
    HalfPair,
    #[error("generating the development certificate: {0}")]
    Generate(#[source] rcgen::Error),
    #[error("cannot {doing} {}: {source}", path.display())]
    Write {
        doing: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A certificate or key file larger than this is refused before it is read whole:
/// a real chain is a few kilobytes, and a path pointing at the wrong thing (a log, a
/// device) should give an error rather than fill the memory.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// ALPN protocols offered, in order of preference.
const ALPN: [&[u8]; 1] = [b"http/1.1"];

/// Where the development certificate and its key live: `data_dir/tls/dev-cert.pem`
/// and `data_dir/tls/dev-key.pem`.
pub fn dev_cert_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("tls");
    (dir.join("dev-cert.pem"), dir.join("dev-key.pem"))
}

/// The bytes of a certificate file and its key file, with their paths for messages.
struct PemFiles<'a> {
    cert_path: &'a Path,
    key_path: &'a Path,
    cert: Vec<u8>,
    key: Vec<u8>,
}

/// SHA-256 over the digests of both files: changes when either file's content does.
type Fingerprint = [u8; 32];

impl PemFiles<'_> {
    fn fingerprint(&self) -> Fingerprint {
        let mut h = Sha256::new();
        h.update(Sha256::digest(&self.cert));
        h.update(Sha256::digest(&self.key));
        h.finalize().into()
    }
}

/// Reads a PEM file, at most [`MAX_PEM_BYTES`] (the caller names the file in errors).
fn read_pem(path: &Path) -> Result<Vec<u8>, std::io::Error> {
    let file = std::fs::File::open(path)?;
    let mut buf = Vec::new();
    file.take(MAX_PEM_BYTES + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_PEM_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {MAX_PEM_BYTES} bytes: not a PEM certificate or key"
        )));
    }
    Ok(buf)
}

async fn read_pair<'a>(cert_path: &'a Path, key_path: &'a Path) -> Result<PemFiles<'a>, TlsError> {
    let (c, k) = (cert_path.to_path_buf(), key_path.to_path_buf());
    let (cert, key) = tokio::task::spawn_blocking(move || read_pair_now(&c, &k))
        .await
        .map_err(|source| TlsError::Task {
            doing: "reading the certificate files",
            source,
        })??;
    Ok(PemFiles {
        cert_path,
        key_path,
        cert,
        key,
    })
}

/// The bytes of both files, each error naming its file.
fn read_pair_now(cert_path: &Path, key_path: &Path) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let cert = read_pem(cert_path).map_err(|source| TlsError::Read {
        what: "certificate",
        path: cert_path.to_path_buf(),
        source,
    })?;
    let key = read_pem(key_path).map_err(|source| TlsError::Read {
        what: "private key",
        path: key_path.to_path_buf(),
        source,
    })?;
    Ok((cert, key))
}

/// What [`load`] would refuse of a configured pair, without serving it: both files read,
/// parsed, the key usable and matching the certificate (`check-config`).
pub fn check_pair(cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
    let (cert, key) = read_pair_now(cert_path, key_path)?;
    server_config(&PemFiles {
        cert_path,
        key_path,
        cert,
        key,
    })
    .map(drop)
}

/// Builds the server configuration from PEM bytes. Every error names the file at fault.
fn server_config(files: &PemFiles<'_>) -> Result<rustls::ServerConfig, TlsError> {
    let cert_path = || files.cert_path.to_path_buf();
    let key_path = || files.key_path.to_path_buf();
    let chain = CertificateDer::pem_slice_iter(&files.cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            what: "certificate",
            path: cert_path(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: cert_path() });
    }
    let key = PrivateKeyDer::from_pem_slice(&files.key).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoKey { path: key_path() },
        source => TlsError::Pem {
            what: "private key",
            path: key_path(),
            source,
        },
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Versions)?
        .with_no_client_auth()
        // Checks that the key is usable and that it matches the end-entity certificate.
        .with_single_cert(chain, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                TlsError::KeyMismatch {
                    key: key_path(),
                    cert: cert_path(),
                }
            }
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
                TlsError::Unusable {
                    what: "certificate",
                    path: cert_path(),
                    source: e,
                }
            }
            source => TlsError::Unusable {
                what: "private key",
                path: key_path(),
                source,
            },
        })?;
    cfg.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(cfg)
}

/// Sets `hookwarden_tls_cert_not_after_timestamp_seconds` from the first (the leaf)
/// certificate of the PEM bytes being put in service (0 if it cannot be read).
fn set_not_after(metrics: &Metrics, cert_pem: &[u8]) {
    let at = CertificateDer::pem_slice_iter(cert_pem)
        .next()
        .and_then(Result::ok)
        .and_then(|der| not_after::not_after(&der));
    metrics.tls_not_after.set(at.unwrap_or(0));
}

/// Loads the configured certificate, or generates a development one into `data_dir/tls/`.
pub async fn load(config: &ServerConfig, metrics: &Metrics) -> Result<RustlsConfig, TlsError> {
    match (&config.tls.cert, &config.tls.key) {
        (Some(cert), Some(key)) => {
            let files = read_pair(cert, key).await?;
            let cfg = server_config(&files)?;
            set_not_after(metrics, &files.cert);
            tracing::info!(cert = %cert.display(), key = %key.display(), "TLS certificate loaded");
            Ok(RustlsConfig::from_config(Arc::new(cfg)))
        }
        (None, None) => load_dev_cert(&config.data_dir, metrics).await,
        _ => Err(TlsError::HalfPair),
    }
}

/// Reuses the development certificate in `data_dir/tls/`, or generates it.
async fn load_dev_cert(data_dir: &Path, metrics: &Metrics) -> Result<RustlsConfig, TlsError> {
    let (cert_path, key_path) = dev_cert_paths(data_dir);
    let existing = match read_pair(&cert_path, &key_path).await {
        Ok(files) => match server_config(&files) {
            Ok(cfg) => Some((cfg, files.cert)),
            Err(e) => {
                tracing::warn!(error = %e, "development certificate unusable; generating a new one");
                None
            }
        },
        // First start (or a half-finished earlier generation): generate.
        Err(_) if !cert_path.exists() || !key_path.exists() => None,
        // Present but unreadable (permissions...): overwriting it would hide the problem.
        Err(e) => return Err(e),
    };
    let (cfg, cert) = match existing {
        Some(found) => found,
        None => {
            let dir = data_dir.to_path_buf();
            let (cert, key) = tokio::task::spawn_blocking(move || generate_dev_cert(&dir))
                .await
                .map_err(|source| TlsError::Task {
                    doing: "generating the development certificate",
                    source,
                })??;
            let files = PemFiles {
                cert_path: &cert_path,
                key_path: &key_path,
                cert,
                key,
            };
            (server_config(&files)?, files.cert)
        }
    };
    set_not_after(metrics, &cert);
    tracing::warn!(
        cert = %cert_path.display(),
        "serving a self-signed DEVELOPMENT certificate (localhost, 127.0.0.1, ::1); Okta only calls endpoints with a publicly trusted certificate: set server.tls.cert and server.tls.key"
    );
    Ok(RustlsConfig::from_config(Arc::new(cfg)))
}

/// Generates a self-signed certificate for `localhost`, `127.0.0.1` and `::1` and
/// writes it to [`dev_cert_paths`]; returns the PEM bytes of certificate and key.
///
/// Each file is written to a temporary name and renamed into place, key first, so
/// that an interrupted start leaves no half-written file that a later start would
/// take for a valid certificate. The key file is created with mode 0600.
fn generate_dev_cert(data_dir: &Path) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let (cert_path, key_path) = dev_cert_paths(data_dir);
    let generated = rcgen::generate_simple_self_signed(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])
    .map_err(TlsError::Generate)?;
    let cert = generated.cert.pem().into_bytes();
    let key = generated.signing_key.serialize_pem().into_bytes();

    if let Some(dir) = cert_path.parent() {
        crate::files::create_private_folder(dir).map_err(|source| TlsError::Write {
            doing: "create",
            path: dir.to_path_buf(),
            source,
        })?;
    }
    write_atomically(&key_path, &key, 0o600).map_err(|source| TlsError::Write {
        doing: "write",
        path: key_path.clone(),
        source,
    })?;
    write_atomically(&cert_path, &cert, 0o644).map_err(|source| TlsError::Write {
        doing: "write",
        path: cert_path.clone(),
        source,
    })?;
    tracing::info!(cert = %cert_path.display(), key = %key_path.display(), "development certificate generated");
    Ok((cert, key))
}

/// Writes `bytes` to `path` through a temporary file created with `mode`, synced, then renamed.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    // A leftover from an interrupted run may have other permissions: start afresh,
    // because the mode below only applies to a file being created.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// Reloads the certificate when its files change or on SIGHUP, until `shutdown`.
///
/// Nothing to watch for the development certificate (no files configured): the task
/// returned has already finished.
pub fn spawn_reloader(
    tls: RustlsConfig,
    config: &ServerConfig,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let (Some(cert), Some(key)) = (config.tls.cert.clone(), config.tls.key.clone()) else {
        return tokio::spawn(async {});
    };
    // Config validation refuses zero; a floor keeps `interval` from panicking anyway.
    let every = config.tls.reload_interval.max(Duration::from_millis(10));
    let reloader = Reloader::new(tls, cert, key, metrics);
    tokio::spawn(reloader.run(every, shutdown))
}

/// What one look at the files did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reload {
    /// The files hold what is being served.
    Unchanged,
    /// A new certificate is served from now on.
    Reloaded,
    /// The files changed but could not be used; the previous certificate stays.
    Failed,
    /// Same unusable content (or same read error) as last time: already reported.
    StillFailing,
}

/// Why the last attempt failed, so that the same failure is reported once rather
/// than at every tick.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    Read(String),
    Content(Fingerprint),
}

/// Watches one certificate/key pair and swaps it into `tls` when it changes.
pub(crate) struct Reloader {
    tls: RustlsConfig,
    cert_path: PathBuf,
    key_path: PathBuf,
    metrics: Arc<Metrics>,
    /// Fingerprint of the files behind the configuration in service, once known.
    serving: Option<Fingerprint>,
    failed: Option<Failure>,
}

impl Reloader {
    pub(crate) fn new(
        tls: RustlsConfig,
        cert_path: PathBuf,
        key_path: PathBuf,
        metrics: Arc<Metrics>,
    ) -> Self {
        Reloader {
            tls,
            cert_path,
            key_path,
            metrics,
            serving: None,
            failed: None,
        }
    }

    async fn run(mut self, every: Duration, shutdown: CancellationToken) {
        // `load` read the files a moment ago, but they may have changed since and its
        // fingerprint is not at hand: take what is on disk now as the baseline and
        // install it, without counting it as a reload.
        self.prime().await;
        let mut hangup = hangup_signal();
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let forced = tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => false,
                _ = next_hangup(&mut hangup) => true,
            };
            let outcome = self.reload_once(forced).await;
            if forced && outcome == Reload::Unchanged {
                tracing::info!(cert = %self.cert_path.display(), "SIGHUP: certificate files unchanged");
            }
        }
        tracing::debug!("certificate reloader stopped");
    }

    /// Installs the files' current content as the baseline; failures are reported as
    /// a failed reload, success is not counted.
    async fn prime(&mut self) {
        let files = match read_pair(&self.cert_path, &self.key_path).await {
            Ok(files) => files,
            Err(e) => {
                self.report_failure(&e);
                self.failed = Some(Failure::Read(e.to_string()));
                return;
            }
        };
        let fingerprint = files.fingerprint();
        match server_config(&files) {
            Ok(cfg) => {
                self.tls.reload_from_config(Arc::new(cfg));
                set_not_after(&self.metrics, &files.cert);
                self.serving = Some(fingerprint);
            }
            Err(e) => {
                self.report_failure(&e);
                self.failed = Some(Failure::Content(fingerprint));
            }
        }
    }

    /// Reads both files and, when their content differs from what is served, builds
    /// and installs a new configuration. `force` (SIGHUP) retries content that failed
    /// before; without it, a failure is reported once per distinct content.
    pub(crate) async fn reload_once(&mut self, force: bool) -> Reload {
        let files = match read_pair(&self.cert_path, &self.key_path).await {
            Ok(files) => files,
            Err(e) => {
                if !force && matches!(&self.failed, Some(Failure::Read(m)) if *m == e.to_string()) {
                    return Reload::StillFailing;
                }
                self.report_failure(&e);
                self.failed = Some(Failure::Read(e.to_string()));
                return Reload::Failed;
            }
        };
        let fingerprint = files.fingerprint();
        if self.serving == Some(fingerprint) {
            self.failed = None;
            return Reload::Unchanged;
        }
        if !force && self.failed == Some(Failure::Content(fingerprint)) {
            return Reload::StillFailing;
        }
        match server_config(&files) {
            Ok(cfg) => {
                self.tls.reload_from_config(Arc::new(cfg));
                set_not_after(&self.metrics, &files.cert);
                self.serving = Some(fingerprint);
                self.failed = None;
                self.count("ok");
                tracing::info!(
                    cert = %self.cert_path.display(),
                    key = %self.key_path.display(),
                    "TLS certificate reloaded; new connections use it"
                );
                Reload::Reloaded
            }
            Err(e) => {
                self.report_failure(&e);
                self.failed = Some(Failure::Content(fingerprint));
                Reload::Failed
            }
        }
    }

    fn report_failure(&self, e: &TlsError) {
        self.count("error");
        tracing::error!(error = %e, "TLS certificate reload failed; still serving the previous certificate");
    }

    fn count(&self, result: &'static str) {
        self.metrics
            .tls_reloads
            .get_or_create(&ResultLabel { result })
            .inc();
    }
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = Option<std::convert::Infallible>;

/// The SIGHUP stream, or `None` (interval only) when it cannot be installed.
#[cfg(unix)]
fn hangup_signal() -> Hangup {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; certificates reload on the interval only");
            None
        }
    }
}

#[cfg(not(unix))]
fn hangup_signal() -> Hangup {
    None
}

/// Resolves at the next SIGHUP; never, when there is no signal stream.
async fn next_hangup(signal: &mut Hangup) {
    #[cfg(unix)]
    if let Some(s) = signal {
        if s.recv().await.is_some() {
            return;
        }
        *signal = None;
    }
    #[cfg(not(unix))]
    let _ = signal;
    std::future::pending::<()>().await
}

mod not_after;
#[cfg(test)]
mod tests;
