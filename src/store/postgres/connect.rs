//! How a replica opens a database connection: TLS with rustls, as everywhere else in
//! hookwarden (no OpenSSL), and the password read again for each new connection.
//!
//! TLS modes ([`TlsMode`]):
//! - `disable`: plain TCP.
//! - `require`: TLS is required (a server without it is refused), but the certificate
//!   is not checked, as libpq's `require`. The handshake's signature is still checked
//!   against the certificate's key, so the session is encrypted to whoever holds it.
//! - `verify-full`: the chain is checked against `ca_file` (else the system's roots) and
//!   the URL's host name against the certificate.
//!
//! The password comes from its `{ env }` or `{ file }` source at every connect, so that a
//! secret rotated under a running service is used by the next connection the pool
//! opens; connections already open stay open (PostgreSQL checks a password at login
//! only). If the source cannot be read at that moment, the value read at start is used.

use crate::config::postgres::TlsSettings;
use crate::config::{expose, Secret, TlsMode};
use deadpool_postgres::Connect;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

type Connected = (tokio_postgres::Client, tokio::task::JoinHandle<()>);

/// Opens connections for the pool.
pub struct Connector {
    tls: MakeRustlsConnect,
    password: Option<Secret>,
}

impl Connector {
    /// The TLS client for these settings; also sets the driver's `sslmode` (a server
    /// without TLS is refused unless the mode is `disable`).
    pub fn new(
        settings: &TlsSettings,
        password: Option<Secret>,
        pg_config: &mut tokio_postgres::Config,
    ) -> Result<Connector, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let builder = match settings.mode {
            TlsMode::Require => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Unchecked(provider))),
            // Never used: the driver does not ask for TLS.
            TlsMode::Disable => builder.with_root_certificates(RootCertStore::empty()),
            TlsMode::VerifyFull => builder.with_root_certificates(roots(settings)?),
        };
        let config = match (&settings.client_cert, &settings.client_key) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| format!("store.postgres.client_cert {}: {e}", cert.display()))?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| format!("store.postgres.client_key {}: {e}", key.display()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("store.postgres.client_cert: {e}"))?
            }
            _ => builder.with_no_client_auth(),
        };
        pg_config.ssl_mode(match settings.mode {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Require | TlsMode::VerifyFull => SslMode::Require,
        });
        Ok(Connector {
            tls: MakeRustlsConnect::new(config),
            password,
        })
    }
}

/// `ca_file`'s certificates, else the system's roots.
fn roots(settings: &TlsSettings) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    match &settings.ca_file {
        Some(path) => {
            let shown = |e: &dyn std::fmt::Display| {
                format!("store.postgres.ca_file {}: {e}", path.display())
            };
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| shown(&e))? {
                roots
                    .add(cert.map_err(|e| shown(&e))?)
                    .map_err(|e| shown(&e))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // A system store may hold a certificate rustls cannot use; skip it.
                let _ = roots.add(cert);
            }
        }
    }
    if roots.is_empty() {
        return Err("store.postgres.ca_file: no CA certificate to check the server against (none in the file, and none in the system's store)".into());
    }
    Ok(roots)
}

impl Connect for Connector {
    fn connect(
        &self,
        pg_config: &tokio_postgres::Config,
    ) -> Pin<Box<dyn Future<Output = Result<Connected, tokio_postgres::Error>> + Send + '_>> {
        let mut config = pg_config.clone();
        if let Some(secret) = &self.password {
            match secret.read_again() {
                Ok(now) => {
                    config.password(expose(&now));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "store.postgres.password cannot be read again; using the value read at start");
                    if let Some(v) = secret.value() {
                        config.password(expose(v));
                    }
                }
            }
        }
        let tls = self.tls.clone();
        Box::pin(async move {
            let (client, connection) = config.connect(tls).await?;
            let task = tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "database connection ended");
                }
            });
            Ok((client, task))
        })
    }
}

/// `require`: any certificate, but the handshake signed by its key.
#[derive(Debug)]
struct Unchecked(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
