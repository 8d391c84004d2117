//! The deployment examples in `deploy/` stay true to the code: the Kubernetes manifests
//! pass a strict schema check, the hookwarden config inside them passes `check-config`
//! with the example Secret's values, and the systemd unit verifies and is hardened.
//! The validators (`kubernetes-validate` from PyPI, `systemd-analyze` from Debian's
//! systemd) are installed by `scripts/test.sh`; a missing one fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn run(cmd: &mut Command) -> std::process::Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} ({e}); scripts/test.sh installs it"))
}

#[test]
fn kubernetes_manifests_pass_a_strict_schema_check() {
    let files = ["hookwarden.yaml", "postgres.yaml", "nats.yaml"];
    let out = run(Command::new("kubernetes-validate")
        .args(["--strict", "--kubernetes-version", "1.30.0"])
        .args(files.iter().map(|f| repo("deploy/kubernetes").join(f))));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &*String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kubernetes-validate failed:\n{text}");
    // Every resource was checked: the ones the issue asks for among them.
    for kind in [
        "configmap/hookwarden-config",
        "secret/hookwarden-secrets",
        "deployment/hookwarden",
        "service/hookwarden",
        "poddisruptionbudget/hookwarden",
        "statefulset/postgres",
        "statefulset/nats",
    ] {
        assert!(
            text.contains(&format!("passed for resource {kind}")),
            "{kind} not validated:\n{text}"
        );
    }
    let manifest =
        std::fs::read_to_string(repo("deploy/kubernetes/hookwarden.yaml")).expect("read");
    for needle in [
        "replicas: 2",
        "path: /readyz",
        "path: /healthz",
        "runAsNonRoot: true",
    ] {
        assert!(manifest.contains(needle), "hookwarden.yaml lacks {needle}");
    }
}

/// The lines of a `key: |` block scalar at `indent` spaces.
fn block(yaml: &str, key_line: &str, indent: usize) -> String {
    let mut lines = yaml
        .lines()
        .skip_while(|l| l.trim_end() != key_line)
        .skip(1);
    let pad = " ".repeat(indent);
    let mut out = String::new();
    for l in lines.by_ref() {
        if l.trim().is_empty() {
            out.push('\n');
        } else if let Some(rest) = l.strip_prefix(&pad) {
            out.push_str(rest);
            out.push('\n');
        } else {
            break;
        }
    }
    assert!(!out.trim().is_empty(), "no block under {key_line:?}");
    out
}

#[test]
fn the_kubernetes_config_passes_check_config_with_the_example_secrets() {
    let yaml = std::fs::read_to_string(repo("deploy/kubernetes/hookwarden.yaml")).expect("read");
    let toml = block(&yaml, "  hookwarden.toml: |", 4);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("hookwarden.toml");
    std::fs::write(&config, toml).expect("write");
    // The certificate comes from the hookwarden-tls Secret in the cluster: a test one here.
    let (cert, key, _) = crate::util::write_cert(dir.path(), "tls");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookwarden"));
    cmd.arg("check-config")
        .arg("--config")
        .arg(&config)
        .env("HOOKWARDEN__SERVER__TLS__CERT", &cert)
        .env("HOOKWARDEN__SERVER__TLS__KEY", &key);
    let secrets = block(&yaml, "stringData:", 2);
    let mut count = 0;
    for line in secrets
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains(':'))
    {
        let (k, v) = line.split_once(':').expect("key: value");
        cmd.env(k.trim(), v.trim().trim_matches('"'));
        count += 1;
    }
    assert_eq!(count, 3, "the example Secret's three values");
    let out = run(&mut cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("configuration is valid: 1 event hook(s)"),
        "check-config refused the Kubernetes example:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_systemd_unit_verifies_and_is_hardened() {
    let unit = std::fs::read_to_string(repo("deploy/systemd/hookwarden.service")).expect("read");
    assert!(unit.contains("ExecStart=/usr/local/bin/hookwarden serve"));
    // systemd-analyze checks that ExecStart exists: point it at the binary under test.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("hookwarden.service");
    std::fs::write(
        &path,
        unit.replace(
            "/usr/local/bin/hookwarden",
            env!("CARGO_BIN_EXE_hookwarden"),
        ),
    )
    .expect("write");
    let out = run(Command::new("systemd-analyze").arg("verify").arg(&path));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {stderr}"
    );
    // Exposure 2.0 or less ("OK"); systemd-analyze exits non-zero above the threshold.
    let out = run(Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=20", "--no-pager"])
        .arg(&path));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "exposure above 2.0:\n{stdout}");
    assert!(stdout.contains("Overall exposure level"), "{stdout}");
}
