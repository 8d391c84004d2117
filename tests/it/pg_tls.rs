//! The PostgreSQL store over TLS, against a real PostgreSQL with `ssl = on` and a CA made
//! here: `verify-full` passes (keys, or libpq's URL parameters), a wrong host name and an
//! untrusted CA are refused, `require` against a server without TLS is refused; and a
//! password rotated under a running store is used by the next connection.

use crate::pgutil::{self, PgServer, ROLE_PASSWORD};
use hookwarden::config::{Secret, TlsMode};
use hookwarden::store::postgres::PostgresStore;
use hookwarden::store::{Delivery, Leases, NewEvent, Queue, Store};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use std::path::{Path, PathBuf};

/// A CA: its certificate (PEM) and what signs with it.
fn ca() -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("self-signed");
    (cert.pem(), Issuer::new(params, key))
}

/// A server certificate for `localhost` only (not 127.0.0.1), signed by `issuer`.
fn server_cert(issuer: &Issuer<'static, KeyPair>) -> (String, String) {
    let params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, issuer).expect("signed");
    (cert.pem(), key.serialize_pem())
}

/// A client certificate whose CN is the database role, signed by `issuer`.
fn client_cert(issuer: &Issuer<'static, KeyPair>) -> (String, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, pgutil::ROLE);
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, issuer).expect("signed");
    (cert.pem(), key.serialize_pem())
}

/// A PostgreSQL of its own with TLS on, and the CA file that signs its certificate.
fn tls_server(dir: &Path) -> (PgServer, PathBuf) {
    let (ca_pem, issuer) = ca();
    let (cert, key) = server_cert(&issuer);
    let mut server = pgutil::dedicated();
    server
        .enable_tls(&cert, &key)
        .unwrap_or_else(|e| panic!("cannot turn TLS on: {e}"));
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca_pem).expect("write ca");
    (server, ca_file)
}

fn localhost(url: &str) -> String {
    url.replace("@127.0.0.1:", "@localhost:")
}

async fn open(
    url: &str,
    tls: Option<TlsMode>,
    ca_file: Option<&Path>,
) -> Result<PostgresStore, String> {
    let mut config = pgutil::store_config(url, 1000);
    if let Some(pg) = config.postgres.as_mut() {
        pg.tls = tls;
        pg.ca_file = ca_file.map(Path::to_path_buf);
        pg.connect_timeout = std::time::Duration::from_secs(3);
    }
    let pg = config.postgres.clone().expect("postgres");
    PostgresStore::connect(&pg, &config)
        .await
        .map_err(|e| e.to_string())
}

/// One delivery in, acknowledged, and read back.
async fn round_trip(store: &PostgresStore) {
    let uuid = uuid::Uuid::new_v4().to_string();
    let outcome = store
        .ingest(Delivery {
            hook: "okta".into(),
            event_id: "e1".into(),
            received_at: hookwarden::time::now_millis(),
            events: vec![NewEvent {
                uuid: uuid.clone(),
                event_type: "user.session.start".into(),
                published: None,
                payload: "{}".into(),
                sinks: vec!["archive".into()],
            }],
            recovered: false,
        })
        .await
        .expect("ingest over TLS");
    assert_eq!(outcome.stored, 1);
    let known = store
        .stored_uuids(
            "okta",
            &[NewEvent {
                uuid: uuid.clone(),
                event_type: String::new(),
                published: None,
                payload: String::new(),
                sinks: Vec::new(),
            }],
        )
        .await
        .expect("read back");
    assert!(known.contains(&uuid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_passes_and_every_weaker_check_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let (server, ca_file) = tls_server(dir.path());
    let url = server.fresh_db().await;

    // verify-full: the CA checks the chain, and "localhost" is the certificate's name.
    let store = open(&localhost(&url), Some(TlsMode::VerifyFull), Some(&ca_file))
        .await
        .expect("verify-full with the right CA and host name");
    round_trip(&store).await;
    store.close().await;

    // The same, written as libpq users write it.
    let libpq = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        localhost(&url),
        ca_file.display()
    );
    let store = open(&libpq, None, None)
        .await
        .expect("sslmode=verify-full in the URL");
    round_trip(&store).await;
    store.close().await;

    // A host name the certificate does not name.
    let e = open(&url, Some(TlsMode::VerifyFull), Some(&ca_file))
        .await
        .err()
        .expect("127.0.0.1 is not in the certificate");
    assert!(e.to_lowercase().contains("certificate"), "{e}");

    // A CA that did not sign the server's certificate.
    let (other_ca, _) = ca();
    let other = dir.path().join("other-ca.pem");
    std::fs::write(&other, other_ca).expect("write");
    let e = open(&localhost(&url), Some(TlsMode::VerifyFull), Some(&other))
        .await
        .err()
        .expect("an untrusted CA");
    assert!(e.to_lowercase().contains("certificate"), "{e}");

    // require: encrypted without checking the certificate (libpq's meaning).
    let store = open(&url, Some(TlsMode::Require), None)
        .await
        .expect("require needs no CA");
    round_trip(&store).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_against_a_server_without_tls_is_refused() {
    let url = pgutil::shared().fresh_db().await;
    let e = open(&url, Some(TlsMode::Require), None)
        .await
        .err()
        .expect("the shared server has no TLS");
    assert!(
        e.to_lowercase().contains("tls") || e.to_lowercase().contains("ssl"),
        "{e}"
    );
    // disable still works there, as before.
    let store = open(&url, Some(TlsMode::Disable), None)
        .await
        .expect("disable");
    store.close().await;
}

/// A server that logs the role in by its client certificate (`cert` in pg_hba): with
/// `client_cert` and `client_key` the store connects, without them it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_logs_in_where_the_server_asks_for_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let (ca_pem, issuer) = ca();
    let (cert, key) = server_cert(&issuer);
    let mut server = pgutil::dedicated();
    server
        .enable_tls_with(&cert, &key, Some(&ca_pem))
        .unwrap_or_else(|e| panic!("cannot turn TLS on: {e}"));
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca_pem).expect("write");
    let (client, client_key) = client_cert(&issuer);
    let (cert_file, key_file) = (dir.path().join("client.crt"), dir.path().join("client.key"));
    std::fs::write(&cert_file, client).expect("write");
    std::fs::write(&key_file, client_key).expect("write");
    let url = localhost(&server.fresh_db().await);

    let e = open(&url, Some(TlsMode::VerifyFull), Some(&ca_file))
        .await
        .err()
        .expect("no client certificate");
    assert!(e.contains("certificate"), "{e}");

    let mut config = pgutil::store_config(&url, 1000);
    let pg = config.postgres.as_mut().expect("postgres");
    pg.tls = Some(TlsMode::VerifyFull);
    pg.ca_file = Some(ca_file.clone());
    pg.client_cert = Some(cert_file);
    pg.client_key = Some(key_file);
    pg.password = None;
    let pg = pg.clone();
    let store = PostgresStore::connect(&pg, &config)
        .await
        .unwrap_or_else(|e| panic!("with the client certificate: {e}"));
    round_trip(&store).await;
    store.close().await;
}

/// The password is read from its file at every new connection: rotated in the database
/// and in the file, the store's next connection logs in with the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_password_file_is_used_by_the_next_connection() {
    let dir = tempfile::tempdir().expect("tmp");
    let server = pgutil::dedicated();
    let url = server.fresh_db().await;
    let secret_file = dir.path().join("pg-password");
    std::fs::write(&secret_file, format!("{ROLE_PASSWORD}\n")).expect("write");
    let mut config = pgutil::store_config(&url, 1000);
    let pg = config.postgres.as_mut().expect("postgres");
    pg.password = Some(Secret::from(hookwarden::config::SecretSource::File {
        file: secret_file.clone(),
    }));
    pg.pool_size = 1;
    let pg = pg.clone();
    let store = PostgresStore::connect(&pg, &config).await.expect("connect");
    round_trip(&store).await;

    // The operator rotates: the database first, then the file the service reads.
    let rotated = "rotated-pg-password-42";
    server.set_role_password(rotated).expect("alter role");
    std::fs::write(&secret_file, format!("{rotated}\n")).expect("write");
    // The open connection stays logged in; end it, as a restart of the database or a
    // network cut would, so that the pool must open a new one.
    let admin = server.superuser(&url).await;
    admin
        .batch_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'hookwarden'",
        )
        .await
        .expect("terminate");
    // The first use after the cut may fail (the pool finds out); within a few tries the
    // new connection, with the new password, serves.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let uuid = uuid::Uuid::new_v4().to_string();
        let r = store
            .stored_uuids(
                "okta",
                &[NewEvent {
                    uuid,
                    event_type: String::new(),
                    published: None,
                    payload: String::new(),
                    sinks: Vec::new(),
                }],
            )
            .await;
        if r.is_ok() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no new connection: {r:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    round_trip(&store).await;
    store.close().await;
}
