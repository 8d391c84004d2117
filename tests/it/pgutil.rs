//! A real PostgreSQL for the tests, started by the tests themselves.
//!
//! One server per test binary ([`shared`]) with a database per test ([`fresh_db`]) keeps
//! the suite fast; a test that stops and restarts the server gets its own
//! ([`PgServer::start`]). The tests run as root and `initdb` refuses root, so the data
//! folder belongs to `postgres` (or `nobody`) and the binaries run through `runuser`.
//! Missing binaries fail the test with a clear message: a skipped test would hide that
//! the PostgreSQL store was never tested.

#![allow(dead_code)]

use hookwarden::config::{PostgresConfig, Secret, StoreBackend, StoreConfig};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// The role hookwarden connects as; it needs its password (scram), unlike the superuser.
pub const ROLE: &str = "hookwarden";
pub const ROLE_PASSWORD: &str = "pg-test-password";
/// The superuser, trusted on loopback: the tests use it to create databases.
const SUPERUSER: &str = "postgres";

pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    user: String,
    pub port: u16,
    /// More `-c name=value` server settings (TLS).
    extra: String,
}

/// Finds `initdb` and `pg_ctl`: the newest `/usr/lib/postgresql/*/bin` that has them.
fn find_bin() -> Result<PathBuf, String> {
    let root = Path::new("/usr/lib/postgresql");
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .map_err(|e| format!("{}: {e}", root.display()))?
        .filter_map(|d| d.ok())
        .filter_map(|d| {
            let version = d.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = d.path().join("bin");
            (bin.join("initdb").exists() && bin.join("pg_ctl").exists()).then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| format!("no initdb/pg_ctl under {}/*/bin", root.display()))
}

/// The user the server runs as: `postgres` when it exists, else `nobody`.
fn server_user() -> Result<(String, u32, u32), String> {
    for user in ["postgres", "nobody"] {
        let id = |flag: &str| -> Option<u32> {
            let out = Command::new("id").args([flag, user]).output().ok()?;
            if !out.status.success() {
                return None;
            }
            String::from_utf8_lossy(&out.stdout).trim().parse().ok()
        };
        if let (Some(uid), Some(gid)) = (id("-u"), id("-g")) {
            return Ok((user.to_owned(), uid, gid));
        }
    }
    Err("neither user postgres nor nobody exists".to_owned())
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

impl PgServer {
    /// initdb, pg_hba (trust for the superuser, a password for [`ROLE`]), start, create the role.
    pub fn start() -> Result<PgServer, String> {
        let bin = find_bin().map_err(|e| {
            format!("PostgreSQL server binaries not found ({e}): install PostgreSQL (e.g. apt-get install postgresql) to run the postgres store tests")
        })?;
        let (user, uid, gid) = server_user()?;
        let dir = tempfile::Builder::new()
            .prefix("hookwarden-pg")
            .tempdir()
            .map_err(|e| e.to_string())?;
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).map_err(|e| e.to_string())?;
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, "").map_err(|e| e.to_string())?;
        let server = PgServer {
            dir,
            bin,
            user,
            port: free_port()?,
            extra: String::new(),
        };
        server.run(
            "initdb",
            &[
                "-D",
                &server.data().display().to_string(),
                "-U",
                SUPERUSER,
                "-E",
                "UTF8",
                "--auth=trust",
                "--no-instructions",
            ],
        )?;
        let hba = format!(
            "local all all trust\nhost all {ROLE} 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 trust\n"
        );
        let hba_path = server.data().join("pg_hba.conf");
        std::fs::write(&hba_path, hba).map_err(|e| e.to_string())?;
        std::os::unix::fs::chown(&hba_path, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
        server.start_again()?;
        server.psql(&format!(
            "CREATE ROLE {ROLE} LOGIN PASSWORD '{ROLE_PASSWORD}' CREATEDB"
        ))?;
        Ok(server)
    }

    /// Turns TLS on with this certificate and key (PEM), restarting the server. The files
    /// are copied into the server's folder, owned by its user, the key readable by it alone.
    pub fn enable_tls(&mut self, cert_pem: &str, key_pem: &str) -> Result<(), String> {
        self.enable_tls_with(cert_pem, key_pem, None)
    }

    /// [`Self::enable_tls`], and with `client_ca` (PEM) [`ROLE`] must log in over TLS with
    /// a client certificate signed by it whose CN is the role (`cert` in pg_hba).
    pub fn enable_tls_with(
        &mut self,
        cert_pem: &str,
        key_pem: &str,
        client_ca: Option<&str>,
    ) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        let (_, uid, gid) = server_user()?;
        let cert = self.dir.path().join("server.crt");
        let key = self.dir.path().join("server.key");
        for (path, text, mode) in [(&cert, cert_pem, 0o644), (&key, key_pem, 0o600)] {
            std::fs::write(path, text).map_err(|e| e.to_string())?;
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(|e| e.to_string())?;
        }
        self.extra = format!(
            "-c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            cert.display(),
            key.display()
        );
        if let Some(ca) = client_ca {
            let ca_path = self.dir.path().join("client-ca.crt");
            std::fs::write(&ca_path, ca).map_err(|e| e.to_string())?;
            std::os::unix::fs::chown(&ca_path, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
            self.extra
                .push_str(&format!(" -c ssl_ca_file={}", ca_path.display()));
            let hba = format!(
                "local all all trust\nhostnossl all {ROLE} 127.0.0.1/32 reject\nhostssl all {ROLE} 127.0.0.1/32 cert\nhost all all 127.0.0.1/32 trust\n"
            );
            let hba_path = self.data().join("pg_hba.conf");
            std::fs::write(&hba_path, hba).map_err(|e| e.to_string())?;
            std::os::unix::fs::chown(&hba_path, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
        }
        self.stop("fast")?;
        self.start_again()
    }

    /// The server's processes (postmaster and its children), for a test that pauses it.
    pub fn pids(&self) -> Vec<u32> {
        let pid_file = self.data().join("postmaster.pid");
        let Some(main) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<u32>().ok()))
        else {
            return Vec::new();
        };
        let children = Command::new("pgrep")
            .args(["-P", &main.to_string()])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        std::iter::once(main)
            .chain(children.lines().filter_map(|l| l.trim().parse().ok()))
            .collect()
    }

    /// Changes [`ROLE`]'s password (as an operator rotating it would).
    pub fn set_role_password(&self, password: &str) -> Result<(), String> {
        self.psql(&format!("ALTER ROLE {ROLE} PASSWORD '{password}'"))
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs one of the server binaries as the server's user.
    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let out = Command::new("runuser")
            .args(["-u", &self.user, "--"])
            .arg(self.bin.join(program))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{program}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{program} {args:?} failed: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn psql(&self, sql: &str) -> Result<(), String> {
        let sock = self.dir.path().display().to_string();
        let port = self.port.to_string();
        self.run(
            "psql",
            &[
                "-h",
                &sock,
                "-p",
                &port,
                "-U",
                SUPERUSER,
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
        )
    }

    /// Starts (or restarts) the server on its port and waits until it accepts connections.
    pub fn start_again(&self) -> Result<(), String> {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200 {}",
            self.port,
            self.dir.path().display(),
            self.extra
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-l",
                &self.dir.path().join("log").display().to_string(),
                "-w",
                "-t",
                "30",
                "-o",
                &opts,
                "start",
            ],
        )
    }

    /// Stops the server (`mode`: `fast` closes every connection; `immediate` is a crash).
    pub fn stop(&self, mode: &str) -> Result<(), String> {
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-w",
                "-m",
                mode,
                "stop",
            ],
        )
    }

    /// Stops the server when this process ends, whatever way it ends: a server in a
    /// `static` is never dropped, and a test killed by a timeout drops nothing.
    fn stop_when_process_exits(&self) {
        let script = format!(
            "runuser -u {user} -- {pg_ctl} -D {data} -m immediate stop; rm -rf {dir}",
            user = self.user,
            pg_ctl = self.bin.join("pg_ctl").display(),
            data = self.data().display(),
            dir = self.dir.path().display(),
        );
        after_this_process(&script);
    }

    /// A new empty database owned by [`ROLE`]; returns its URL (without password).
    pub async fn fresh_db(&self) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!("test_{}", N.fetch_add(1, Ordering::Relaxed));
        let (client, conn) = tokio_postgres::connect(
            &format!(
                "host=127.0.0.1 port={} user={SUPERUSER} dbname=postgres",
                self.port
            ),
            tokio_postgres::NoTls,
        )
        .await
        .expect("connect as superuser");
        let task = tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE {name} OWNER {ROLE}"))
            .await
            .expect("create database");
        drop(client);
        let _ = task.await;
        self.url(&name)
    }

    /// A superuser session on the database of `url` (from [`Self::fresh_db`]), for tests
    /// that hold locks in it.
    pub async fn superuser(&self, url: &str) -> tokio_postgres::Client {
        let db = url.rsplit('/').next().expect("a database in the URL");
        let (client, conn) = tokio_postgres::connect(
            &format!(
                "host=127.0.0.1 port={} user={SUPERUSER} dbname={db}",
                self.port
            ),
            tokio_postgres::NoTls,
        )
        .await
        .expect("connect as superuser");
        tokio::spawn(conn);
        client
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://{ROLE}@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self.stop("immediate");
    }
}

/// The server shared by every test of this binary (started on first use).
pub fn shared() -> &'static PgServer {
    static SERVER: OnceLock<Result<PgServer, String>> = OnceLock::new();
    let server = SERVER.get_or_init(|| {
        let s = PgServer::start()?;
        s.stop_when_process_exits();
        Ok(s)
    });
    match server {
        Ok(s) => s,
        Err(e) => panic!("cannot start PostgreSQL for the tests: {e}"),
    }
}

/// A server of its own, for a test that stops it; stopped on drop and at process exit.
pub fn dedicated() -> PgServer {
    let s =
        PgServer::start().unwrap_or_else(|e| panic!("cannot start PostgreSQL for the tests: {e}"));
    s.stop_when_process_exits();
    s
}

/// `[store.postgres]` for a URL from [`PgServer::fresh_db`].
pub fn pg_config(url: &str) -> PostgresConfig {
    PostgresConfig {
        password: Some(Secret::literal(ROLE_PASSWORD)),
        pool_size: 8,
        ..PostgresConfig::new(url)
    }
}

pub fn store_config(url: &str, max_backlog: u64) -> StoreConfig {
    StoreConfig {
        backend: StoreBackend::Postgres,
        path: None,
        max_backlog,
        retention: Duration::from_secs(7 * 86_400),
        group_commit_max: 64,
        page_cache_kib: 1024,
        disk_reserve_mib: 0,
        postgres: Some(pg_config(url)),
    }
}

/// The TOML of a `[store]` using this database, for a real server's config.
pub fn store_toml(url: &str) -> String {
    format!(
        "\n[store]\nbackend = \"postgres\"\n[store.postgres]\nurl = \"{url}\"\npassword = \"{ROLE_PASSWORD}\"\npool_size = 4\nconnect_timeout = \"1s\"\n"
    )
}

/// A real PgBouncer in transaction pooling mode in front of a [`PgServer`], started by the
/// tests from Debian's `pgbouncer` (as the server's user: it refuses root). Server
/// connections are handed out round robin, so that consecutive transactions of one
/// client land on different server connections, as under load: a statement left
/// prepared on one is then missing on the next (checked: the store contract fails
/// through it with statements cached per connection).
pub struct Bouncer {
    _dir: tempfile::TempDir,
    pub port: u16,
    child: std::process::Child,
}

impl Bouncer {
    pub fn start(server: &PgServer) -> Result<Bouncer, String> {
        let bin = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .ok_or("pgbouncer not found: install it (apt-get install pgbouncer) to run the PgBouncer tests")?;
        let (user, uid, gid) = server_user()?;
        let dir = tempfile::Builder::new()
            .prefix("hookwarden-pgbouncer")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let port = free_port()?;
        let d = dir.path().display();
        let ini = format!(
            "[databases]\n* = host=127.0.0.1 port={pg}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\nauth_type = scram-sha-256\nauth_file = {d}/userlist.txt\npool_mode = transaction\nmax_client_conn = 400\ndefault_pool_size = 10\nlogfile = {d}/pgbouncer.log\npidfile = {d}/pgbouncer.pid\nignore_startup_parameters = extra_float_digits\nserver_round_robin = 1\n",
            pg = server.port
        );
        let users = format!("\"{ROLE}\" \"{ROLE_PASSWORD}\"\n");
        for (name, text) in [("pgbouncer.ini", ini), ("userlist.txt", users)] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).map_err(|e| e.to_string())?;
            std::os::unix::fs::chown(&path, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
        }
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).map_err(|e| e.to_string())?;
        let child = Command::new("runuser")
            .args(["-u", &user, "--", bin])
            .arg(dir.path().join("pgbouncer.ini"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("pgbouncer: {e}"))?;
        let bouncer = Bouncer {
            _dir: dir,
            port,
            child,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if std::time::Instant::now() > deadline {
                return Err("pgbouncer did not listen within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(bouncer)
    }

    /// The URL of a database of the server behind it, reached through the bouncer.
    pub fn url(&self, direct: &str) -> String {
        let db = direct.rsplit('/').next().unwrap_or_default();
        format!("postgres://{ROLE}@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        // runuser forwards the signal to pgbouncer.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// The bouncer in front of [`shared`], for every test of this binary (stopped at exit).
pub fn shared_bouncer() -> &'static Bouncer {
    static BOUNCER: OnceLock<Result<Bouncer, String>> = OnceLock::new();
    let b = BOUNCER.get_or_init(|| {
        let b = Bouncer::start(shared())?;
        after_this_process(&format!("kill {} 2>/dev/null", b.child.id()));
        Ok(b)
    });
    match b {
        Ok(b) => b,
        Err(e) => panic!("cannot start PgBouncer for the tests: {e}"),
    }
}

/// `[store.postgres]` through a transaction pooler.
pub fn pooled_config(url: &str) -> PostgresConfig {
    PostgresConfig {
        transaction_pooling: true,
        ..pg_config(url)
    }
}

/// Runs `command` (sh) once this test process has ended, whatever way it ends: a server in
/// a `static` is never dropped, and a test killed by a timeout drops nothing.
fn after_this_process(command: &str) {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {command}",
        pid = std::process::id()
    );
    let _ = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}
