//! The docs tested like code (README.md and docs/): every link resolves; the copies of
//! generated text (config/default.toml, the metrics reference) equal what they copy; every
//! config block marked ```` ```toml check ```` passes `check-config`; every shell block
//! marked ```` ```sh run ```` runs against a real hookwarden started here, and each output
//! shown under a command as `# => text` is in what the command prints.
//!
//! `HOOKWARDEN_BLESS_DOCS=1 cargo test --test it docs` rewrites the generated copies instead
//! of failing on them.

use crate::util::{free_port, serve_command, wait_ready};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md, SECURITY.md, BENCHMARKS.md and every page in docs/.
fn pages() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = ["README.md", "SECURITY.md", "BENCHMARKS.md"]
        .iter()
        .map(|p| root().join(p))
        .collect();
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    out.extend(docs);
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fenced block: its info string (` ```sh run `: "sh run"), its text, where it starts.
struct Block {
    info: String,
    text: String,
    line: usize,
}

fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (n, line) in text.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => {
                open = Some(Block {
                    info: info.trim().to_owned(),
                    text: String::new(),
                    line: n + 1,
                })
            }
            (Some(_), Some(_)) => out.extend(open.take()),
            (Some(b), None) => {
                b.text.push_str(line);
                b.text.push('\n');
            }
            (None, None) => {}
        }
    }
    out
}

/// GitHub's anchor for a heading.
pub(crate) fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            out.push(slug(line.trim_start_matches('#')));
        }
    }
    out
}

/// The text outside fenced blocks.
fn prose(text: &str) -> String {
    let mut fenced = false;
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn every_link_in_the_docs_resolves() {
    let mut broken = Vec::new();
    for page in pages() {
        let text = prose(&read(&page));
        let mut rest = text.as_str();
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = &rest[..end];
            if target.starts_with("http") || target.starts_with("mailto:") || target.contains(' ') {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
            let file = if path.is_empty() {
                page.clone()
            } else {
                page.parent().expect("folder").join(path)
            };
            if !file.exists() {
                broken.push(format!("{}: {target}: no such file", page.display()));
            } else if !anchor.is_empty()
                && file.extension().is_some_and(|x| x == "md")
                && !anchors(&read(&file)).iter().any(|a| a == anchor)
            {
                broken.push(format!("{}: {target}: no such heading", page.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// The text between `<!-- NAME:begin -->` and `<!-- NAME:end -->` of a page must be
/// `want`; with HOOKWARDEN_BLESS_DOCS it is written instead.
fn generated(page: &str, name: &str, want: &str) {
    let path = root().join(page);
    let text = read(&path);
    let (begin, end) = (
        format!("<!-- {name}:begin -->\n"),
        format!("<!-- {name}:end -->"),
    );
    let a = text
        .find(&begin)
        .unwrap_or_else(|| panic!("{page}: no {begin}"))
        + begin.len();
    let b = text[a..]
        .find(&end)
        .unwrap_or_else(|| panic!("{page}: no {end}"))
        + a;
    if text[a..b] == *want {
        return;
    }
    if std::env::var_os("HOOKWARDEN_BLESS_DOCS").is_some() {
        std::fs::write(&path, format!("{}{want}{}", &text[..a], &text[b..])).expect("write");
        return;
    }
    panic!(
        "{page}: the {name} section differs from what it copies; run `HOOKWARDEN_BLESS_DOCS=1 cargo test --test it docs` to rewrite it.\n--- the page has:\n{}\n--- it should be:\n{want}",
        &text[a..b]
    );
}

#[test]
fn the_configuration_page_holds_default_toml_as_it_is() {
    let toml = read(&root().join("config/default.toml"));
    generated(
        "docs/configuration.md",
        "default.toml",
        &format!("```toml check\n{}\n```\n", toml.trim_end_matches('\n')),
    );
}

/// Every config and shell block of the README and docs/ says whether it runs: `toml check`
/// or `sh run`, else why not (`toml fragment`: a part of a config, shown in its context;
/// `toml not-checked: <why>`, `sh not-run: <why>`: it needs what only a deployment has).
/// The benchmarks log is a record of past runs and is left as written.
#[test]
fn every_config_and_shell_block_says_whether_it_runs() {
    let mut unmarked = Vec::new();
    for page in pages() {
        let relative = page.strip_prefix(root()).unwrap_or(&page).to_path_buf();
        let in_scope = relative == Path::new("README.md")
            || (relative.starts_with("docs") && !relative.ends_with("benchmarks-log.md"));
        if !in_scope {
            continue;
        }
        let name = relative.display().to_string();
        for b in blocks(&read(&page)) {
            let fine = match b.info.split_whitespace().next() {
                Some("toml") => {
                    b.info == "toml check"
                        || b.info == "toml fragment"
                        || b.info.starts_with("toml not-checked: ")
                }
                Some("sh") => b.info == "sh run" || b.info.starts_with("sh not-run: "),
                _ => true,
            };
            if !fine {
                unmarked.push(format!("{name}:{}: ```{}", b.line, b.info));
            }
        }
    }
    assert!(
        unmarked.is_empty(),
        "blocks that do not say whether they run:\n{}",
        unmarked.join("\n")
    );
}

/// The metrics reference is the registry's, and a running service shows those series.
#[tokio::test]
async fn the_metrics_reference_is_the_registry_and_what_a_service_shows() {
    let reference = hookwarden::metrics::Metrics::reference();
    generated("docs/operations.md", "metrics", &reference);
    let s = crate::util::start(crate::util::Options::default()).await;
    let shown = s.metrics().await;
    let documented: Vec<&str> = reference
        .lines()
        .skip(2)
        .filter_map(|l| l.split('`').nth(1))
        .map(|series| series.split([',', ' ']).next().unwrap_or(series))
        .collect();
    let mut exposed: Vec<String> = shown
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let (name, kind) = l.split_once(' ')?;
            Some(match kind {
                "counter" => format!("{name}_total"),
                "histogram" => format!("{name}_bucket"),
                "info" => format!("{name}_info"),
                _ => name.to_owned(),
            })
        })
        .collect();
    exposed.sort();
    let mut documented: Vec<String> = documented.iter().map(|s| s.to_string()).collect();
    documented.sort();
    assert_eq!(documented, exposed, "docs/operations.md against /metrics");
    s.stop().await;
}

/// Every ```toml check``` block passes `check-config`. Secrets from `{ env = "NAME" }` are
/// set to a stand-in for the run (a block that needs files it names cannot be marked).
#[test]
fn config_blocks_marked_check_pass_check_config() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut checked = 0;
    let mut failed = Vec::new();
    for page in pages() {
        for (k, b) in blocks(&read(&page)).into_iter().enumerate() {
            if b.info != "toml check" {
                continue;
            }
            let path = dir.path().join(format!("block-{k}.toml"));
            std::fs::write(&path, &b.text).expect("write");
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hookwarden"));
            cmd.args(["check-config", "--config"]).arg(&path);
            let mut rest = b.text.as_str();
            while let Some(at) = rest.find("{ env = \"") {
                rest = &rest[at + 9..];
                let name = rest.split('"').next().unwrap_or_default();
                cmd.env(name, "a-stand-in-secret-for-the-docs-test");
            }
            let out = cmd.output().expect("check-config");
            checked += 1;
            if !out.status.success() {
                failed.push(format!(
                    "{}:{}: {}",
                    page.display(),
                    b.line,
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "config blocks that fail check-config:\n{}",
        failed.join("\n")
    );
    assert!(
        checked >= 5,
        "only {checked} blocks are marked `toml check`"
    );
}

/// One command of a ```sh run``` block and the outputs shown under it.
struct Step {
    command: String,
    expect: Vec<String>,
}

fn steps(block: &str) -> Vec<Step> {
    let mut out: Vec<Step> = Vec::new();
    let mut pending = String::new();
    for line in block.lines() {
        let trimmed = line.trim();
        if let Some(shown) = trimmed.strip_prefix("# => ") {
            if let Some(step) = out.last_mut() {
                step.expect.push(shown.to_owned());
            }
            continue;
        }
        if trimmed.is_empty() || (trimmed.starts_with('#') && pending.is_empty()) {
            continue;
        }
        let (code, continued) = match line.trim_end().strip_suffix('\\') {
            Some(c) => (c, true),
            None => (line, false),
        };
        pending.push_str(code);
        pending.push(' ');
        if !continued {
            out.push(Step {
                command: std::mem::take(&mut pending),
                expect: Vec::new(),
            });
        }
    }
    out
}

/// Every ```sh run``` block, against a real hookwarden on the README's configuration
/// (`config/hookwarden.toml`, in a folder of its own): `localhost:8443` becomes the
/// service's port and `cargo run --release --` this build's binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_marked_run_answer_as_the_docs_show() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    std::fs::create_dir_all(d.join("config")).expect("mkdir");
    std::fs::copy(
        root().join("config/hookwarden.toml"),
        d.join("config/hookwarden.toml"),
    )
    .expect("copy config");
    std::os::unix::fs::symlink(root().join("tests"), d.join("tests")).expect("link tests");
    let (port, admin) = (free_port(), free_port());
    // In its own folder, as a newcomer runs it: `data/` lands there.
    let mut child = serve_command(Path::new("config/hookwarden.toml"), port, admin)
        .current_dir(d)
        .spawn()
        .expect("serve");
    wait_ready(admin).await;
    let bin = env!("CARGO_BIN_EXE_hookwarden");
    let mut ran = 0;
    let mut failed = Vec::new();
    for page in pages() {
        for b in blocks(&read(&page)) {
            if b.info != "sh run" {
                continue;
            }
            for step in steps(&b.text) {
                let mut command = step
                    .command
                    .replace("localhost:8443", &format!("localhost:{port}"))
                    .replace("cargo run --release --", bin);
                if let Some(rest) = command.strip_prefix("hookwarden ") {
                    command = format!("{bin} {rest}");
                }
                // What a command shows may take a moment (a sink writes after the ack).
                let deadline = Instant::now() + Duration::from_secs(5);
                let missing = loop {
                    let out = tokio::process::Command::new("sh")
                        .args(["-c", &command])
                        .current_dir(d)
                        .output()
                        .await
                        .expect("sh");
                    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
                    let missing: Vec<&String> = step
                        .expect
                        .iter()
                        .filter(|e| !shown.contains(e.as_str()))
                        .collect();
                    if out.status.success() && missing.is_empty() {
                        break None;
                    }
                    if Instant::now() > deadline {
                        break Some(format!(
                            "exit {:?}, missing {missing:?} in:\n{shown}{}",
                            out.status.code(),
                            String::from_utf8_lossy(&out.stderr)
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                };
                ran += 1;
                if let Some(why) = missing {
                    failed.push(format!(
                        "{}:{}: `{}`: {why}",
                        page.display(),
                        b.line,
                        step.command.trim()
                    ));
                }
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        failed.is_empty(),
        "doc commands that fail:\n{}",
        failed.join("\n\n")
    );
    assert!(ran >= 4, "only {ran} commands are marked `sh run`");
}
