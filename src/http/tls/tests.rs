//! Unit tests of `http::tls`.

use super::*;
use base64::Engine as _;
use rustls_pki_types::ServerName;
use tokio::io::AsyncReadExt as _;

/// [`super::load`] with metrics nobody reads: these tests look at what is served.
async fn load(config: &ServerConfig) -> Result<RustlsConfig, TlsError> {
    super::load(config, &Metrics::new()).await
}

fn server_config_for(data_dir: &Path, cert: Option<PathBuf>, key: Option<PathBuf>) -> ServerConfig {
    ServerConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: data_dir.to_path_buf(),
        tls: crate::config::TlsConfig {
            enabled: true,
            cert,
            key,
            reload_interval: Duration::from_millis(50),
        },
        max_body_bytes: 1024,
        max_connections: 8,
        header_read_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(1),
        tls_handshake_timeout: Duration::from_secs(1),
        shutdown_grace: Duration::from_secs(1),
    }
}

/// A fresh certificate and PKCS#8 key as PEM.
fn generate(names: &[&str]) -> (String, String) {
    let ck = rcgen::generate_simple_self_signed(
        names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>(),
    )
    .expect("rcgen");
    (ck.cert.pem(), ck.signing_key.serialize_pem())
}

fn write_pair(dir: &Path, stem: &str, cert: &str, key: &str) -> (PathBuf, PathBuf) {
    let c = dir.join(format!("{stem}-cert.pem"));
    let k = dir.join(format!("{stem}-key.pem"));
    std::fs::write(&c, cert).expect("write cert");
    std::fs::write(&k, key).expect("write key");
    (c, k)
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let body: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        body.join("\n")
    )
}

/// One DER TLV at the start of `der`: (tag, content, rest).
fn tlv(der: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = der[0];
    let (len, skip) = match der[1] {
        l if l < 0x80 => (l as usize, 2),
        0x81 => (der[2] as usize, 3),
        0x82 => (((der[2] as usize) << 8) | der[3] as usize, 4),
        other => panic!("unsupported DER length {other:#x}"),
    };
    (tag, &der[skip..skip + len], &der[skip + len..])
}

fn der_wrap(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match content.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n < 0x100 => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(content);
    out
}

/// The result of one handshake: version, ALPN and the certificate the server sent.
struct Handshake {
    version: Option<rustls::ProtocolVersion>,
    alpn: Option<Vec<u8>>,
    cert: Vec<u8>,
}

/// One real TLS handshake over 127.0.0.1 against `tls`, with a client that trusts
/// `trusted_pem`, names `server_name` and allows only `versions`.
async fn handshake(
    tls: &RustlsConfig,
    trusted_pem: &str,
    server_name: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Result<Handshake, std::io::Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.get_inner());
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        if let Ok(mut s) = acceptor.accept(tcp).await {
            let mut buf = [0u8; 4];
            let _ = s.read(&mut buf).await;
        }
    });

    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(trusted_pem.as_bytes()) {
        roots.add(c.expect("cert")).expect("root");
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from(server_name.to_owned()).expect("name");
    let result = connector.connect(name, tcp).await;
    let out = result.map(|s| {
        let (_, conn) = s.get_ref();
        let hs = Handshake {
            version: conn.protocol_version(),
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            cert: conn
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.as_ref().to_vec())
                .expect("server certificate"),
        };
        hs
    });
    server.abort();
    out
}

fn der_of(cert_pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .expect("cert")
        .as_ref()
        .to_vec()
}

const TLS12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
const TLS13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

#[tokio::test]
async fn loads_configured_pem_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = generate(&["localhost"]);
    let (c, k) = write_pair(dir.path(), "server", &cert, &key);
    let tls = load(&server_config_for(dir.path(), Some(c), Some(k)))
        .await
        .expect("load");
    let hs = handshake(&tls, &cert, "localhost", BOTH, &ALPN)
        .await
        .expect("handshake");
    assert_eq!(hs.cert, der_of(&cert));
    assert_eq!(hs.version, Some(rustls::ProtocolVersion::TLSv1_3));
    // No development certificate was written.
    assert!(!dev_cert_paths(dir.path()).0.exists());
}

#[tokio::test]
async fn a_chain_and_other_key_formats_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    // SEC1 ("EC PRIVATE KEY"): the ECPrivateKey inside rcgen's PKCS#8.
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("rcgen");
    let pkcs8 = ck.signing_key.serialize_der();
    let (_, seq, _) = tlv(&pkcs8);
    let (_, _version, rest) = tlv(seq);
    let (_, _alg, rest) = tlv(rest);
    let (tag, sec1, _) = tlv(rest);
    assert_eq!(tag, 0x04, "privateKey OCTET STRING");
    // A chain: the leaf followed by an unrelated second certificate; the leaf is served.
    let (extra, _) = generate(&["ca.invalid"]);
    let chain = format!("{}{extra}", ck.cert.pem());
    let (c, k) = write_pair(dir.path(), "sec1", &chain, &pem("EC PRIVATE KEY", sec1));
    let tls = load(&server_config_for(dir.path(), Some(c), Some(k)))
        .await
        .expect("SEC1 key loads");
    let hs = handshake(&tls, &ck.cert.pem(), "localhost", BOTH, &ALPN)
        .await
        .expect("handshake");
    assert_eq!(hs.cert, ck.cert.der().as_ref());

    // PKCS#1 ("RSA PRIVATE KEY"), with a certificate made for that key.
    let rsa1 = rustls_pki_types::PrivatePkcs1KeyDer::from_pem_slice(RSA_PKCS1_PEM.as_bytes())
        .expect("PKCS#1 PEM");
    let rsa1 = rsa1.secret_pkcs1_der();
    let mut pkcs8 = der_wrap(0x02, &[0]);
    pkcs8.extend(der_wrap(
        0x30,
        &[
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
        ],
    ));
    pkcs8.extend(der_wrap(0x04, rsa1));
    let pkcs8 = der_wrap(0x30, &pkcs8);
    let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8),
        &rcgen::PKCS_RSA_SHA256,
    )
    .expect("rsa key pair");
    let rsa_cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .self_signed(&kp)
        .expect("self-signed");
    let (c, k) = write_pair(dir.path(), "rsa", &rsa_cert.pem(), RSA_PKCS1_PEM);
    let tls = load(&server_config_for(dir.path(), Some(c), Some(k)))
        .await
        .expect("PKCS#1 key loads");
    let hs = handshake(&tls, &rsa_cert.pem(), "localhost", TLS12, &ALPN)
        .await
        .expect("handshake");
    assert_eq!(hs.cert, rsa_cert.der().as_ref());
}

#[tokio::test]
async fn mismatched_key_and_certificate_is_an_error_naming_the_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, _) = generate(&["localhost"]);
    let (_, other_key) = generate(&["localhost"]);
    let (c, k) = write_pair(dir.path(), "mismatch", &cert, &other_key);
    let err = load(&server_config_for(
        dir.path(),
        Some(c.clone()),
        Some(k.clone()),
    ))
    .await
    .expect_err("must fail");
    assert!(err.to_string().contains("does not match"), "{err}");
    assert!(err.to_string().contains(&c.display().to_string()), "{err}");
    assert!(err.to_string().contains(&k.display().to_string()), "{err}");
}

#[tokio::test]
async fn bad_files_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = generate(&["localhost"]);
    let cases: [(&str, &str, &str, bool); 5] = [
        ("no-cert", "just text\n", key.as_str(), true),
        ("key-as-cert", key.as_str(), key.as_str(), true),
        ("no-key", cert.as_str(), cert.as_str(), false),
        (
            "broken-cert",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            key.as_str(),
            true,
        ),
        ("truncated", &cert[..cert.len() / 2], key.as_str(), true),
    ];
    for (stem, c_pem, k_pem, cert_at_fault) in cases {
        let (c, k) = write_pair(dir.path(), stem, c_pem, k_pem);
        let err = load(&server_config_for(
            dir.path(),
            Some(c.clone()),
            Some(k.clone()),
        ))
        .await
        .expect_err(stem);
        let at_fault = if cert_at_fault { &c } else { &k };
        assert!(
            err.to_string().contains(&at_fault.display().to_string()),
            "{stem}: {err}"
        );
    }
    let missing = dir.path().join("missing.pem");
    let (_, k) = write_pair(dir.path(), "ok", &cert, &key);
    let err = load(&server_config_for(
        dir.path(),
        Some(missing.clone()),
        Some(k),
    ))
    .await
    .expect_err("missing");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
    let err = load(&server_config_for(dir.path(), Some(missing), None))
        .await
        .expect_err("half configured");
    assert!(err.to_string().contains("together"), "{err}");
}

#[tokio::test]
async fn dev_certificate_is_generated_once_and_reused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let config = server_config_for(&data, None, None);
    let (cert_path, key_path) = dev_cert_paths(&data);
    assert_eq!(cert_path, data.join("tls").join("dev-cert.pem"));
    assert_eq!(key_path, data.join("tls").join("dev-key.pem"));

    let tls = load(&config).await.expect("first start");
    let cert = std::fs::read(&cert_path).expect("cert written");
    let key = std::fs::read(&key_path).expect("key written");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_path)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "key file mode {mode:o}");
    }

    let again = load(&config).await.expect("second start");
    assert_eq!(
        std::fs::read(&cert_path).expect("cert"),
        cert,
        "certificate reused"
    );
    assert_eq!(std::fs::read(&key_path).expect("key"), key, "key reused");

    // The certificate is valid for every development name, and is what is served.
    let cert_pem = String::from_utf8(cert).expect("utf8");
    for name in ["localhost", "127.0.0.1", "::1"] {
        let hs = handshake(&again, &cert_pem, name, BOTH, &ALPN)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(hs.cert, der_of(&cert_pem));
    }
    assert!(handshake(&tls, &cert_pem, "example.com", BOTH, &ALPN)
        .await
        .is_err());

    // A corrupt development certificate is replaced rather than fatal.
    std::fs::write(&cert_path, "garbage").expect("corrupt");
    load(&config).await.expect("regenerated");
    assert_ne!(
        std::fs::read(&cert_path).expect("cert"),
        cert_pem.as_bytes()
    );

    // For the development certificate the reloader has nothing to do.
    let task = spawn_reloader(
        again,
        &config,
        Arc::new(Metrics::new()),
        CancellationToken::new(),
    );
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("finished at once")
        .expect("no panic");
}

#[tokio::test]
async fn only_tls12_and_tls13_with_alpn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = generate(&["localhost"]);
    let (c, k) = write_pair(dir.path(), "server", &cert, &key);
    let tls = load(&server_config_for(dir.path(), Some(c), Some(k)))
        .await
        .expect("load");
    let v12 = handshake(&tls, &cert, "localhost", TLS12, &ALPN)
        .await
        .expect("tls 1.2");
    assert_eq!(v12.version, Some(rustls::ProtocolVersion::TLSv1_2));
    // A client that offers HTTP/2 first still gets HTTP/1.1.
    let v13 = handshake(&tls, &cert, "localhost", TLS13, &[b"h2", b"http/1.1"])
        .await
        .expect("tls 1.3");
    assert_eq!(v13.version, Some(rustls::ProtocolVersion::TLSv1_3));
    assert_eq!(v13.alpn.as_deref(), Some(&b"http/1.1"[..]));
    let h1 = handshake(&tls, &cert, "localhost", BOTH, &[b"http/1.1"])
        .await
        .expect("h1");
    assert_eq!(h1.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(tls.get_inner().alpn_protocols, vec![b"http/1.1".to_vec()]);

    // rustls cannot act as a TLS 1.0/1.1 client, so send ClientHellos by hand to a
    // server connection in memory. The control: a TLS 1.2 hello is answered with a
    // ServerHello. The same hello saying TLS 1.1 or 1.0 gets a protocol_version alert.
    let answer = |version: [u8; 2]| {
        let mut server = rustls::ServerConnection::new(tls.get_inner()).expect("conn");
        let hello = client_hello(version);
        server.read_tls(&mut &hello[..]).expect("read");
        let result = server.process_new_packets().map(|_| ());
        let mut out = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut out).expect("write");
        }
        (result, out)
    };
    let (result, out) = answer([3, 3]);
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(out.first(), Some(&22), "TLS 1.2: a handshake record");
    for old in [[3, 2], [3, 1]] {
        let (result, out) = answer(old);
        let err = result.expect_err("refused");
        assert!(
            matches!(
                err,
                rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls12NotOffered)
            ),
            "{old:?}: {err:?}"
        );
        // Alert record (21), fatal (2), protocol_version (70).
        assert_eq!(out.first(), Some(&21), "{old:?}: {out:?}");
        assert_eq!(out.get(5..7), Some(&[2u8, 70][..]), "{old:?}: {out:?}");
    }
}

/// A ClientHello as a TLS 1.2 (or older) client sends it, with `version` as
/// `client_version` and no supported_versions extension (which TLS 1.3 would add).
fn client_hello(version: [u8; 2]) -> Vec<u8> {
    let mut body = version.to_vec();
    body.extend([0x42; 32]); // random
    body.push(0); // no session id
                  // ECDHE_ECDSA_AES128_GCM_SHA256, ECDHE_RSA_AES128_GCM_SHA256,
                  // ECDHE_ECDSA_AES128_CBC_SHA, RSA_AES128_CBC_SHA
    body.extend([0x00, 0x08, 0xc0, 0x2b, 0xc0, 0x2f, 0xc0, 0x09, 0x00, 0x2f]);
    body.extend([0x01, 0x00]); // null compression
    let extensions: &[u8] = &[
        0x00, 0x0d, 0x00, 0x08, 0x00, 0x06, 0x04, 0x03, 0x08, 0x04, 0x04,
        0x01, // signature_algorithms
        0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00,
        0x17, // supported_groups x25519, P-256
        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, // ec_point_formats uncompressed
    ];
    body.extend([0x00, extensions.len() as u8]);
    body.extend(extensions);
    let mut handshake = vec![0x01, 0x00];
    handshake.extend([(body.len() >> 8) as u8, body.len() as u8]);
    handshake.extend(body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend([(handshake.len() >> 8) as u8, handshake.len() as u8]);
    record.extend(handshake);
    record
}

fn reloader_for(
    dir: &Path,
    cert: &str,
    key: &str,
) -> (Reloader, RustlsConfig, Arc<Metrics>, PathBuf, PathBuf) {
    let (c, k) = write_pair(dir, "live", cert, key);
    let files = PemFiles {
        cert_path: &c,
        key_path: &k,
        cert: cert.as_bytes().to_vec(),
        key: key.as_bytes().to_vec(),
    };
    let tls = RustlsConfig::from_config(Arc::new(server_config(&files).expect("config")));
    let metrics = Arc::new(Metrics::new());
    let r = Reloader::new(tls.clone(), c.clone(), k.clone(), metrics.clone());
    (r, tls, metrics, c, k)
}

fn reloads(metrics: &Metrics, result: &'static str) -> u64 {
    metrics
        .tls_reloads
        .get_or_create(&ResultLabel { result })
        .get()
}

#[tokio::test]
async fn reload_picks_up_a_new_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert1, key1) = generate(&["localhost"]);
    let (mut r, tls, metrics, c, k) = reloader_for(dir.path(), &cert1, &key1);
    r.prime().await;
    let primed = tls.get_inner();
    assert_eq!(r.reload_once(false).await, Reload::Unchanged);
    assert!(
        Arc::ptr_eq(&primed, &tls.get_inner()),
        "unchanged files: same configuration"
    );

    let (cert2, key2) = generate(&["localhost"]);
    std::fs::write(&k, &key2).expect("key");
    std::fs::write(&c, &cert2).expect("cert");
    assert_eq!(r.reload_once(false).await, Reload::Reloaded);
    assert!(!Arc::ptr_eq(&primed, &tls.get_inner()));
    assert_eq!(reloads(&metrics, "ok"), 1);
    assert_eq!(reloads(&metrics, "error"), 0);
    let hs = handshake(&tls, &cert2, "localhost", BOTH, &ALPN)
        .await
        .expect("new cert served");
    assert_eq!(hs.cert, der_of(&cert2));
    assert_eq!(r.reload_once(false).await, Reload::Unchanged);
    assert_eq!(reloads(&metrics, "ok"), 1);
}

#[tokio::test]
async fn a_symlink_swap_is_seen_even_with_old_mtimes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert1, key1) = generate(&["localhost"]);
    let (cert2, key2) = generate(&["localhost"]);
    let v1 = dir.path().join("v1");
    let v2 = dir.path().join("v2");
    std::fs::create_dir(&v1).expect("v1");
    std::fs::create_dir(&v2).expect("v2");
    write_pair(&v1, "tls", &cert1, &key1);
    write_pair(&v2, "tls", &cert2, &key2);
    // Kubernetes layout: tls.crt -> ..data/tls.crt, ..data -> v1.
    #[cfg(unix)]
    {
        let data = dir.path().join("..data");
        std::os::unix::fs::symlink(&v1, &data).expect("link");
        let c = dir.path().join("tls.crt");
        let k = dir.path().join("tls.key");
        std::os::unix::fs::symlink(data.join("tls-cert.pem"), &c).expect("link");
        std::os::unix::fs::symlink(data.join("tls-key.pem"), &k).expect("link");
        let tls = load(&server_config_for(
            dir.path(),
            Some(c.clone()),
            Some(k.clone()),
        ))
        .await
        .expect("load");
        let metrics = Arc::new(Metrics::new());
        let mut r = Reloader::new(tls.clone(), c, k, metrics.clone());
        r.prime().await;
        // Swap atomically, as the kubelet does.
        let tmp = dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(&v2, &tmp).expect("link");
        std::fs::rename(&tmp, &data).expect("swap");
        assert_eq!(r.reload_once(false).await, Reload::Reloaded);
        let hs = handshake(&tls, &cert2, "localhost", BOTH, &ALPN)
            .await
            .expect("handshake");
        assert_eq!(hs.cert, der_of(&cert2));
    }
}

#[tokio::test]
async fn a_bad_new_file_keeps_the_old_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert1, key1) = generate(&["localhost"]);
    let (mut r, tls, metrics, c, k) = reloader_for(dir.path(), &cert1, &key1);
    r.prime().await;
    let before = tls.get_inner();

    std::fs::write(
        &c,
        "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n",
    )
    .expect("corrupt");
    assert_eq!(r.reload_once(false).await, Reload::Failed);
    assert!(
        Arc::ptr_eq(&before, &tls.get_inner()),
        "old configuration kept"
    );
    assert_eq!(reloads(&metrics, "error"), 1);
    // Reported once per bad content, not at every tick...
    assert_eq!(r.reload_once(false).await, Reload::StillFailing);
    assert_eq!(reloads(&metrics, "error"), 1);
    // ... unless asked again (SIGHUP).
    assert_eq!(r.reload_once(true).await, Reload::Failed);
    assert_eq!(reloads(&metrics, "error"), 2);
    let hs = handshake(&tls, &cert1, "localhost", BOTH, &ALPN)
        .await
        .expect("old cert still served");
    assert_eq!(hs.cert, der_of(&cert1));

    // Half-way through a rotation: a new key with the old certificate.
    let (cert2, key2) = generate(&["localhost"]);
    std::fs::write(&c, &cert1).expect("restore");
    std::fs::write(&k, &key2).expect("new key");
    assert_eq!(r.reload_once(false).await, Reload::Failed);
    assert!(Arc::ptr_eq(&before, &tls.get_inner()));
    // The certificate arrives: the pair is complete and loads.
    std::fs::write(&c, &cert2).expect("new cert");
    assert_eq!(r.reload_once(false).await, Reload::Reloaded);
    assert_eq!(reloads(&metrics, "ok"), 1);

    // A file that disappears is an error too, and the served certificate stays.
    let serving = tls.get_inner();
    std::fs::remove_file(&k).expect("rm");
    assert_eq!(r.reload_once(false).await, Reload::Failed);
    assert_eq!(r.reload_once(false).await, Reload::StillFailing);
    assert!(Arc::ptr_eq(&serving, &tls.get_inner()));
    std::fs::write(&k, &key2).expect("back");
    assert_eq!(r.reload_once(false).await, Reload::Unchanged);
}

#[tokio::test]
async fn the_reloader_task_reloads_on_its_interval_and_stops_on_shutdown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert1, key1) = generate(&["localhost"]);
    let (c, k) = write_pair(dir.path(), "live", &cert1, &key1);
    let config = server_config_for(dir.path(), Some(c.clone()), Some(k.clone()));
    let tls = load(&config).await.expect("load");
    let metrics = Arc::new(Metrics::new());
    let shutdown = CancellationToken::new();
    let task = spawn_reloader(tls.clone(), &config, metrics.clone(), shutdown.clone());

    let (cert2, key2) = generate(&["localhost"]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    std::fs::write(&k, &key2).expect("key");
    std::fs::write(&c, &cert2).expect("cert");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while reloads(&metrics, "ok") == 0 {
        assert!(tokio::time::Instant::now() < deadline, "never reloaded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let hs = handshake(&tls, &cert2, "localhost", BOTH, &ALPN)
        .await
        .expect("handshake");
    assert_eq!(hs.cert, der_of(&cert2));

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stopped")
        .expect("no panic");
}

/// A 2048-bit RSA key in PKCS#1 form (`openssl genrsa -traditional 2048`), for the
/// PKCS#1 test only: ring cannot generate RSA keys. Not used anywhere else.
const RSA_PKCS1_PEM: &str = r"-----BEGIN RSA PRIVATE KEY-----
MIIEpAIBAAKCAQEA3W3TPmcqtzHiWCZb5E/ekuCMvdV85JzKytkMx47wzfI1fXyQ
vd4o15UfkW6r4LunOtPgW8VLA7MP2tq2YdanbjqSbit1FcvffDt5hIRASGd/zhEV
6fY3jKUPIZkAGcwAb0h9QVTFiGJGthzfoahmeObtHEkiOcg3/8IrB4gRnD+Ka92t
fgKCrgJG0KcBWLaC0V2BIUUdjWTB3aoQ8cPpMD8AwHVPWv+YmyAPtiXpecUvRa3o
0Dt2ENynR2b393roEBPm4B40k7F9AgaMbAShlvM+SnJCiN2pRcDUQQ4DcNZ02hA4
fKeMpG92CARpF+iCkzc2aubrYP+ltk8qlf67YQIDAQABAoIBAAKGRnW4PQS/jClF
fy/VQAgwSJR/vQu5dKevRbG3Acx0S+szRs5uXGx4TBbHMm0WkJ2XZbAAKea39Xjh
HFoVVZ14bBvW0Z/67gBraGtUC2xT50FvAQ8kvi2Don53YUiaAoGCS+DJPdMMLUqV
XdCY1BnB5r9HP21VmLtZEC7m3I4Jpz02Aw0OQSCM6ylbwVh+af4+RxFQgF0y4h77
wWehazsXiYxS+MylOX7K2zuQHG0IufhwLju0WzN4y2cYipmlkPSEFBKT72EJFMin
26Q20WYtPwIc0k6xZrlJJbyaqf/9rqeCrlPcBSV+hzsrcmCBlG9G8ZKF/71U06Oj
bQE0koECgYEA8YrigS9Vxr7sYrITxmMWnqXWr4+VLaiKDIlRshB4lOCyuVRda/Sx
Ai4aKC3QcJ+5ElSgbQbmB4zPuuGUVtE766b6AD6Dx39wT3nFtiuLPB7ZQ62eClNF
vql1Z3ZjkslVS6hCV3juMdbDiYYu2Q9149haCBTpOGDEHkABYkYWHsECgYEA6q6+
kYGkQYPJm3miCvjKW+dslmShduyK8KXowhtoMxgwAKIn5/wbygFn+GQtTc2uqZKh
ivyWth4fgrdXmvBw2EdtbTSKfNmCW8/E4O8YSiAxCtQMgCd5fqohD6ROHJL4ff2h
/mFVGBLXjUbzNFsegZIc2jwDZArwJE67B1SSZKECgYEAgyMROGv3mPC9LBRckh/n
/vgwp54/sstHL+k51oAEx2d7AQ2hruPpWjKndtrwyMSe2Sni826EYuL7QQ4J2Fy+
uIEuSAWozB4PXsbRJcdcT6a79HeFTzvIqOwd1q86/k2apnnSkuUQBTUBcl/MfYJc
Ufh7YNnhiP9YWsgLOEyu48ECgYEAmvfBBzxgRpLLskrjYfNfTMjIv5a7uFgCd15X
ELYgXH0AVaq+R0YG46GCEle0QsgrKfaVjb21l5TUofCHfNyA55BjBdXIDSFkH1RX
YWEA3RHc0JWtm4J1i9qz8ixBGEVEqY2uRtfm5PqsM7JCLrRstIrTWph+dLV0VcVX
Y0PJV4ECgYA/BaRmFdHCbLaWHJGXD0lbmreNmaPaAP/SaqXwo9b3qat1ZXvfMI8X
xr86Dsk+uJPTFOv64s0f2isc8CcvsZff5y8/6knyUfUJMhju4ozLY8Y0y1Pm3v+H
dVHJ4IPb9USdLElWJeE4kU7rnNcGytN8ZCD+V7nEDJFQz1TcB6jwzg==
-----END RSA PRIVATE KEY-----
";
