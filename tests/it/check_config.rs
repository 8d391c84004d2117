//! The first hour with hookwarden (issue #26): `check-config` is `serve` without listening.
//! One run reports every mistake of a file with its full key and a "did you mean";
//! what `serve` refuses before binding, `check-config` refuses too, with the same key;
//! relative paths are the config file's; secrets follow one rule; `events` reads the store
//! without the hooks' secrets. Each case runs the real binary.

use crate::util::{self, PASSWORD, USER};
use std::path::Path;
use std::process::{Command, Output};

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookwarden"));
    // The variables a developer's shell may hold must not change what is checked.
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("HOOKWARDEN__")) {
        cmd.env_remove(k);
    }
    cmd
}

fn check(config: &Path) -> Output {
    bin()
        .args(["check-config", "--config"])
        .arg(config)
        .output()
        .expect("run check-config")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The file of the issue: eight mistakes of four kinds. Each is reported in one run.
#[test]
fn every_mistake_of_a_file_is_reported_in_one_run_with_its_full_key() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::create_dir(dir.path().join("out")).expect("mkdir");
    let file = dir.path().join("h.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[server]
listen = "localhost:8443"
[server.tls]
enable = true

[worker]
max_attempts = "eight"

[netwrok]
allow_ips = ["10.0.0.0/8"]

[network]
trusted_proxies = ["10.0.0.1/8"]

[[event_hooks]]
name = "okta"
paht = "/hooks/okta/events"
auth = {{ type = "basic", users = [{{ username = "{USER}", pasword = "{PASSWORD}" }}] }}
[[event_hooks.sinks]]
name = "file"
type = "jsonl"
path = "out/events.jsonl"

[[inline_hooks]]
name = "reg"
path = "/hooks/reg"
type = "registration"
budget = "2x"
auth = {{ type = "basic", users = [{{ username = "{USER}", password = "{PASSWORD}" }}] }}
handler = {{ kind = "forwrd", url = "https://reg.example.com" }}
"#
        ),
    )
    .expect("write");
    let out = check(&file);
    let err = text(&out.stderr);
    println!("{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    let expected = [
        "event_hooks[0].auth.users[0].pasword: unknown key; did you mean `password`?",
        "event_hooks[0].paht: unknown key; did you mean `path`?",
        "inline_hooks[0].budget: invalid value: string \"2x\", expected a duration",
        "inline_hooks[0].handler.kind: unknown variant `forwrd`, expected one of `rules`, `script`, `forward`; did you mean `forward`?",
        "network.trusted_proxies[0]: '10.0.0.1/8' has host bits set: write 10.0.0.0/8 for the network, or 10.0.0.1/32 for the one address",
        "netwrok: unknown key; did you mean `network`?",
        "server.listen: 'localhost:8443' is not an address and port (a host name is not accepted: write its address, e.g. 127.0.0.1:8443",
        "server.tls.enable: unknown key; did you mean `enabled`?",
        "worker.max_attempts: invalid type: string \"eight\", expected u32",
    ];
    for line in expected {
        assert!(err.contains(line), "missing {line:?} in:\n{err}");
    }
    assert!(
        err.starts_with(&format!("{} configuration problem(s):", expected.len())),
        "nothing more than the mistakes (no echo of a stand-in):\n{err}"
    );
    assert!(!err.contains(PASSWORD), "no secret in the output:\n{err}");
}

/// A file of serve's start-up refusals: each one is refused by `check-config` with its key,
/// and `serve` refuses the same file with the same words, before it binds.
#[test]
fn check_config_refuses_what_serve_refuses() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let (cert, _, _) = util::write_cert(d, "a");
    let (_, other_key, _) = util::write_cert(d, "b");
    std::fs::write(d.join("garbage.pem"), "not a key").expect("write");
    std::fs::write(d.join("afile"), "x").expect("write");
    let hook = |sink_path: &str| {
        format!(
            r#"
[[event_hooks]]
name = "okta"
path = "/hooks/okta/events"
auth = {{ type = "basic", users = [{{ username = "{USER}", password = "{PASSWORD}" }}] }}
sinks = [{{ name = "archive", type = "jsonl", path = "{sink_path}" }}]
"#
        )
    };
    let fine_sink = d.join("events.jsonl").display().to_string();
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "a key file that cannot be read",
            format!(
                "[server.tls]\ncert = \"{}\"\nkey = \"{}\"\n",
                cert.display(),
                d.join("missing.pem").display()
            ),
            "server.tls:",
            "cannot read private key",
        ),
        (
            "a key file that is not PEM",
            format!(
                "[server.tls]\ncert = \"{}\"\nkey = \"{}\"\n",
                cert.display(),
                d.join("garbage.pem").display()
            ),
            "server.tls:",
            "no private key in file",
        ),
        (
            "a key of another certificate",
            format!(
                "[server.tls]\ncert = \"{}\"\nkey = \"{}\"\n",
                cert.display(),
                other_key.display()
            ),
            "server.tls:",
            "the private key does not match the certificate",
        ),
        (
            "a data folder under a file",
            format!(
                "[server]\ndata_dir = \"{}\"\n",
                d.join("afile/data").display()
            ),
            "server.data_dir:",
            "is not a folder",
        ),
        (
            "a data folder that cannot be written",
            "[server]\ndata_dir = \"/proc/hookwarden-data\"\n".to_owned(),
            "server.data_dir:",
            "cannot write in /proc",
        ),
    ];
    for (what, server, key_name, words) in cases {
        let file = d.join("case.toml");
        std::fs::write(&file, format!("{server}{}", hook(&fine_sink))).expect("write");
        let out = check(&file);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        let line = err
            .lines()
            .find(|l| l.contains(key_name))
            .unwrap_or_else(|| panic!("{what}: no {key_name} in:\n{err}"));
        assert!(line.contains(words), "{what}: {line}");
        let served = util::serve_command(&file, util::free_port(), util::free_port())
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("serve");
        let served_err = text(&served.stderr);
        assert_eq!(served.status.code(), Some(1), "{what}: {served_err}");
        assert!(
            served_err.contains(line.trim_start_matches([' ', '-'])),
            "{what}: serve says otherwise:\n{served_err}"
        );
    }
    // The sink's folder: missing (never created), or not writable.
    for (sink, words) in [
        (
            d.join("nowhere/events.jsonl"),
            "does not exist (a sink's folder is not created",
        ),
        (
            Path::new("/proc/hookwarden/events.jsonl").to_path_buf(),
            "does not exist",
        ),
        (
            Path::new("/proc/events.jsonl").to_path_buf(),
            "cannot write in /proc",
        ),
    ] {
        let file = d.join("sink.toml");
        std::fs::write(&file, hook(&sink.display().to_string())).expect("write");
        let err = text(&check(&file).stderr);
        let line = err
            .lines()
            .find(|l| l.contains("event_hooks[0].sinks[0].path:"))
            .unwrap_or_else(|| panic!("{}: {err}", sink.display()));
        assert!(line.contains(words), "{line}");
        assert!(!d.join("nowhere").exists(), "check-config creates nothing");
    }
}

/// Relative paths written in the file are the file's: the same config works from any
/// working directory; the defaults and the environment stay relative to it.
#[test]
fn relative_paths_are_relative_to_the_config_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let conf = dir.path().join("conf");
    std::fs::create_dir_all(conf.join("out")).expect("mkdir");
    let file = conf.join("h.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[server]
data_dir = "../data"
[[event_hooks]]
name = "okta"
path = "/hooks/okta/events"
auth = {{ type = "basic", users = [{{ username = "{USER}", password = {{ file = "secret" }} }}] }}
sinks = [{{ name = "archive", type = "jsonl", path = "out/events.jsonl" }}]
"#
        ),
    )
    .expect("write");
    std::fs::write(conf.join("secret"), format!("{PASSWORD}\n")).expect("write");
    let from_elsewhere = bin()
        .current_dir("/")
        .args(["check-config", "--config"])
        .arg(&file)
        .output()
        .expect("run");
    assert!(
        from_elsewhere.status.success(),
        "{}",
        text(&from_elsewhere.stderr)
    );
    let config = hookwarden::config::Config::load(Some(&file)).expect("load");
    assert_eq!(config.server.data_dir, conf.join("../data"));
    let hookwarden::config::SinkKind::Jsonl { path } = &config.event_hooks[0].sinks[0].kind else {
        panic!("a jsonl sink");
    };
    assert_eq!(path, &conf.join("out/events.jsonl"));
    // Without the folder, the message names the path the file meant.
    std::fs::remove_dir(conf.join("out")).expect("rmdir");
    let err = text(&check(&file).stderr);
    assert!(
        err.contains(&format!(
            "folder {} does not exist",
            conf.join("out").display()
        )),
        "{err}"
    );
}

/// One minimum for every secret that lets a caller in; a literal is a warning that says
/// where it was written; a value from `HOOKWARDEN__ADMIN__TOKEN` is not "written in the file".
#[test]
fn secrets_follow_one_rule_and_warnings_say_where_the_value_came_from() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("h.toml");
    let write = |admin: &str, auth: &str| {
        std::fs::write(
            &file,
            format!(
                "{admin}\n[[event_hooks]]\nname = \"okta\"\npath = \"/hooks/okta/events\"\nauth = {auth}\nsinks = [{{ name = \"out\", type = \"stdout\" }}]\n"
            ),
        )
        .expect("write");
    };
    // Short literals (trying things out): valid, with a warning for each naming the file.
    write(
        "[admin]\ntoken = \"abc\"",
        "{ type = \"basic\", users = [{ username = \"okta\", password = \"s3cret\" }] }",
    );
    let out = check(&file);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    for key in ["admin.token", "event_hooks[0].auth.users[0].password"] {
        let line = said
            .lines()
            .find(|l| l.contains(key))
            .unwrap_or_else(|| panic!("no warning for {key}:\n{said}"));
        assert!(
            line.contains(&format!("is written in {}", file.display()))
                && line.contains("characters")
                && line.contains("at least 16"),
            "{line}"
        );
    }
    assert!(
        !said.contains("s3cret") && !said.contains("abc\""),
        "{said}"
    );
    // The same short values from the environment or a file: refused, each with its key.
    std::fs::write(dir.path().join("pw"), "s3cret").expect("write");
    write(
        "[admin]\ntoken = { env = \"HOOKWARDEN_IT_SHORT_TOKEN\" }",
        &format!(
            "{{ type = \"header\", header = \"X-Secret\", secrets = [{{ file = \"{}\" }}] }}",
            dir.path().join("pw").display()
        ),
    );
    let out = bin()
        .env("HOOKWARDEN_IT_SHORT_TOKEN", "abc")
        .args(["check-config", "--config"])
        .arg(&file)
        .output()
        .expect("run");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("admin.token: 3 characters: a secret that lets a caller in needs at least 16"),
        "{err}"
    );
    assert!(
        err.contains("event_hooks[0].auth.secrets[0]: 6 characters"),
        "{err}"
    );
    // A long admin token from HOOKWARDEN__ADMIN__TOKEN: no "written in" warning.
    write(
        "",
        "{ type = \"basic\", users = [{ username = \"okta\", password = { env = \"HOOKWARDEN_IT_PW\" } }] }",
    );
    let out = bin()
        .env(
            "HOOKWARDEN__ADMIN__TOKEN",
            "a-long-enough-admin-token-from-env",
        )
        .env("HOOKWARDEN_IT_PW", PASSWORD)
        .args(["check-config", "--config"])
        .arg(&file)
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(!said.contains("written in"), "{said}");
}

/// `hookwarden events` reads the store with the hooks' secrets and the admin token absent,
/// where `check-config` (and `serve`) need them.
#[test]
fn events_reads_the_store_without_unrelated_secrets() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("h.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[server]
data_dir = "{}"
[admin]
token = {{ file = "/run/secrets/hookwarden-it-absent" }}
[[event_hooks]]
name = "okta"
path = "/hooks/okta/events"
auth = {{ type = "basic", users = [{{ username = "okta", password = {{ env = "HOOKWARDEN_IT_SURELY_UNSET" }} }}] }}
sinks = [{{ name = "out", type = "stdout" }}]
"#,
            dir.path().join("data").display()
        ),
    )
    .expect("write");
    let refused = text(&check(&file).stderr);
    for key in ["admin.token:", "event_hooks[0].auth.users[0].password:"] {
        assert!(refused.contains(key), "{key} in:\n{refused}");
    }
    // The store a service made with this configuration.
    let config =
        hookwarden::config::Config::load_for(Some(&file), hookwarden::config::Needs::StoreOnly)
            .expect("loads for the store");
    hookwarden::store::sqlite::SqliteStore::open(&config.store_path(), &config.store)
        .expect("store");
    let out = bin()
        .args(["events", "--config"])
        .arg(&file)
        .args(["list", "--json"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// A port in use: the key that names it, said once.
#[test]
fn a_port_in_use_names_its_key_once() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = held.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("h.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\ndata_dir = \"{}\"\n{}",
            dir.path().display(),
            util::default_hook(dir.path())
        ),
    )
    .expect("write");
    let out = util::serve_command(&file, port, util::free_port())
        .env("HOOKWARDEN__LOG__LEVEL", "info")
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("serve");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let wanted = format!("server.listen: cannot listen on 127.0.0.1:{port}");
    assert_eq!(err.matches(&wanted).count(), 1, "{err}");
    assert!(err.contains("another process"), "{err}");
}
