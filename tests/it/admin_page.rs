//! The admin page (`/ui`): off without a token; bearer and login-form access; the rows it
//! shows after Okta's real samples (a delivery, an inline call, a wrong password, a dead
//! letter); replay with and without the CSRF token; escaping; and the page as headless
//! Chromium renders it, driven through chromedriver (login form, replay button, screenshot).

use crate::util::*;
use axum::http::StatusCode;
use hookwarden::config::Config;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "admin-token-for-the-tests-0123456789";
const SAMPLE_UUID: &str = "f1d0b993-cc19-11ed-a688-db22c99ef6c4";
/// An event type and a uuid as hostile as a delivery can carry.
const EVIL_TYPE: &str = "<script>alert('type')</script>";
const EVIL_UUID: &str = "x\"><script>alert('uuid')</script>";

/// A sink receiver that fails while `broken` is set.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>, Arc<AtomicBool>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let broken = Arc::new(AtomicBool::new(true));
    let (g, b) = (got.clone(), broken.clone());
    let app = axum::Router::new().route(
        "/sink",
        axum::routing::post(move |body: String| {
            let (g, b) = (g.clone(), b.clone());
            async move {
                if b.load(Ordering::SeqCst) {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                if let Ok(v) = serde_json::from_str(&body) {
                    g.lock().expect("lock").push(v);
                }
                StatusCode::OK
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (format!("http://{addr}/sink"), got, broken)
}

struct Setup {
    s: TestServer,
    got: Arc<Mutex<Vec<Value>>>,
    broken: Arc<AtomicBool>,
}

/// hookwarden with an event hook (HTTP sink, one attempt), a token inline hook (rules) and
/// `admin.token` when given; then Okta's samples: a verification, a delivery, an inline
/// call, a wrong password, and (with `evil`) a delivery of a hostile event. Returns once
/// every stored event is a dead letter.
async fn setup(token: Option<&str>, evil: bool) -> Setup {
    let (url, got, broken) = receiver().await;
    let hooks = format!(
        r#"
[[event_hooks]]
name = "okta"
path = "/hooks/okta/events"
auth = {{ type = "basic", users = [{{ username = "{USER}", password = "{PASSWORD}" }}] }}
sinks = [{{ name = "forward", type = "http", url = "{url}", timeout = "2s" }}]

[[inline_hooks]]
name = "tokens"
path = "/hooks/okta/token"
type = "token"
auth = {{ type = "basic", users = [{{ username = "{USER}", password = "{PASSWORD}" }}] }}

[inline_hooks.handler]
kind = "rules"

[inline_hooks.handler.token]
[[inline_hooks.handler.token.claims]]
token = "id"
name = "extPatientId"
value = "1234"
"#
    );
    let opts = Options {
        toml: Some(hooks),
        worker: "poll_interval = \"100ms\"\nbackoff_initial = \"20ms\"\nbackoff_max = \"50ms\"\nmax_attempts = 1\n".into(),
        ..Options::default()
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert_path, key_path, cert_pem) = write_cert(dir.path(), "server");
    let mut text = config_text(dir.path(), &cert_path, &key_path, &opts);
    if let Some(t) = token {
        text = with_admin_token(&text, t);
    }
    let config_path = dir.path().join("hookwarden.toml");
    std::fs::write(&config_path, &text).expect("write config");
    let config = Config::from_toml_str(&text).unwrap_or_else(|e| panic!("config: {e}\n{text}"));
    let s = start_with(
        dir,
        config,
        cert_pem,
        cert_path,
        key_path,
        config_path,
        true,
    )
    .await;

    let verify = s
        .client
        .get(s.url("/hooks/okta/events"))
        .header("Authorization", basic())
        .header("X-Okta-Verification-Challenge", "challenge-from-okta")
        .send()
        .await
        .expect("verify");
    assert_eq!(verify.status(), 200);
    assert_eq!(
        s.deliver(&fixture("event-hook-delivery.json"))
            .await
            .status(),
        200
    );
    let inline = s
        .client
        .post(s.url("/hooks/okta/token"))
        .header("Authorization", basic())
        .header("Content-Type", "application/json")
        .body(fixture("token-hook-request.json"))
        .send()
        .await
        .expect("inline");
    assert_eq!(inline.status(), 200);
    let wrong = s
        .client
        .post(s.url("/hooks/okta/events"))
        .header("Authorization", "Basic b2t0YTp3cm9uZw==")
        .header("Content-Type", "application/json")
        .body(fixture("event-hook-delivery.json"))
        .send()
        .await
        .expect("wrong password");
    assert_eq!(wrong.status(), 401);
    let mut dead = 1.0;
    if evil {
        let mut e = event(EVIL_TYPE);
        e["uuid"] = Value::String(EVIL_UUID.to_owned());
        assert_eq!(s.deliver(&envelope(&[e])).await.status(), 200);
        dead += 1.0;
    }
    s.wait_metric("hookwarden_dead_letters_total", "sink=\"forward\"", dead)
        .await;
    // The counter is bumped as the job dies; the store says so a moment later.
    s.wait_metric("hookwarden_dead_letters_stored", "", dead)
        .await;
    Setup { s, got, broken }
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// The value of the first `<input name="csrf" value="...">` of a page.
fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..].split('"').next().expect("value").to_owned()
}

#[tokio::test]
async fn ui_is_off_without_a_token_and_says_how_to_turn_it_on() {
    let Setup { s, .. } = setup(None, false).await;
    let res = reqwest::get(format!("{}/ui", s.admin_base))
        .await
        .expect("ui");
    assert_eq!(res.status(), 404);
    let body = res.text().await.expect("body");
    assert!(body.contains("[admin]") && body.contains("token"), "{body}");
    // Its forms are off too, whatever they carry.
    for path in ["/ui/login", "/ui/replay"] {
        let res = no_redirects()
            .post(format!("{}{path}", s.admin_base))
            .bearer_auth("anything")
            .form(&[("token", "anything"), ("hook", "okta")])
            .send()
            .await
            .expect("post");
        assert_eq!(res.status(), 404, "{path}");
        assert!(res.headers().get("set-cookie").is_none());
    }
    // The rest of the admin listener is unchanged.
    assert_eq!(
        reqwest::get(format!("{}/healthz", s.admin_base))
            .await
            .expect("healthz")
            .status(),
        200
    );
    s.stop().await;
}

#[tokio::test]
async fn ui_shows_requests_and_dead_letters_to_the_token_only_and_replays_with_csrf() {
    let Setup { s, got, broken } = setup(Some(TOKEN), false).await;
    let ui = format!("{}/ui", s.admin_base);
    let c = no_redirects();

    // No credentials, a wrong bearer token: 401 with the login form, and not a row.
    for auth in [
        None,
        Some("Bearer wrong"),
        Some(&*format!("Bearer {TOKEN}x")),
    ] {
        let mut req = c.get(&ui);
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let res = req.send().await.expect("ui");
        assert_eq!(res.status(), 401, "{auth:?}");
        let body = res.text().await.expect("body");
        assert!(body.contains("action=\"/ui/login\""), "{body}");
        assert!(!body.contains(SAMPLE_UUID));
    }

    // The bearer token: the rows.
    let res = c.get(&ui).bearer_auth(TOKEN).send().await.expect("ui");
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["cache-control"],
        "no-store",
        "an admin page must not be cached"
    );
    assert!(res.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .contains("default-src 'none'"));
    let page = res.text().await.expect("page");
    for want in [
        "okta",
        "tokens",
        "/hooks/okta/events",
        "forward</code> (http)",
        "user.session.start",
        "com.okta.oauth2.tokens.transform",
        "commands: com.okta.identity.patch (1)",
        "1 stored, 0 duplicates",
        "verification answered",
        "Authentication required",
        SAMPLE_UUID,
        "hookwarden_requests_total",
        "hookwarden_dead_letters_total",
    ] {
        assert!(page.contains(want), "page lacks {want:?}:\n{page}");
    }
    for status in [200, 401] {
        assert!(
            page.contains(&format!("data-status=\"{status}\"")),
            "no {status} row:\n{page}"
        );
    }
    // No secret: not the hook password, not the sink URL, not the token.
    for secret in [PASSWORD, "/sink", TOKEN] {
        assert!(!page.contains(secret), "page shows {secret}");
    }
    // Bearer access needs no CSRF field, so the page carries none.
    assert!(!page.contains("name=\"csrf\""));

    // The login form: a wrong token is 401 without a cookie; the right one sets one.
    let res = c
        .post(format!("{ui}/login"))
        .form(&[("token", "wrong")])
        .send()
        .await
        .expect("login");
    assert_eq!(res.status(), 401);
    assert!(res.headers().get("set-cookie").is_none());
    let res = c
        .post(format!("{ui}/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .expect("login");
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/ui");
    let set = res.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains(TOKEN), "the cookie holds the token: {set}");
    let cookie = set.split(';').next().expect("pair").to_owned();

    let res = c
        .get(&ui)
        .header("Cookie", &cookie)
        .send()
        .await
        .expect("ui");
    assert_eq!(res.status(), 200);
    let page = res.text().await.expect("page");
    assert!(page.contains(SAMPLE_UUID) && page.contains("Sign out"));
    let csrf = csrf_of(&page);

    // Replay from a session without the CSRF token, or with another: refused.
    for form in [
        vec![("hook", "okta"), ("uuid", SAMPLE_UUID)],
        vec![("hook", "okta"), ("uuid", SAMPLE_UUID), ("csrf", "forged")],
    ] {
        let res = c
            .post(format!("{ui}/replay"))
            .header("Cookie", &cookie)
            .form(&form)
            .send()
            .await
            .expect("replay");
        assert_eq!(res.status(), 403, "{form:?}");
    }
    // Without any credentials: 401. An unknown hook: 400.
    let res = c
        .post(format!("{ui}/replay"))
        .form(&[("hook", "okta"), ("csrf", csrf.as_str())])
        .send()
        .await
        .expect("replay");
    assert_eq!(res.status(), 401);
    let res = c
        .post(format!("{ui}/replay"))
        .header("Cookie", &cookie)
        .form(&[("hook", "nope"), ("csrf", csrf.as_str())])
        .send()
        .await
        .expect("replay");
    assert_eq!(res.status(), 400);
    assert!(got.lock().expect("lock").is_empty(), "nothing replayed yet");

    // The sink recovers; the replay with the CSRF token puts the event back to pending
    // and the workers deliver it.
    broken.store(false, Ordering::SeqCst);
    let res = c
        .post(format!("{ui}/replay"))
        .header("Cookie", &cookie)
        .form(&[
            ("hook", "okta"),
            ("uuid", SAMPLE_UUID),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .expect("replay");
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/ui?replayed=1");
    let records = wait_jsonl_like(&got, 1).await;
    assert_eq!(records[0]["uuid"], SAMPLE_UUID);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = c
            .get(&ui)
            .header("Cookie", &cookie)
            .send()
            .await
            .expect("ui")
            .text()
            .await
            .expect("page");
        if page.contains("id=\"dead\">0<") && !page.contains("class=\"dead-letter\"") {
            break;
        }
        assert!(Instant::now() < deadline, "still dead:\n{page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Sign out clears the cookie.
    let res = c
        .post(format!("{ui}/logout"))
        .header("Cookie", &cookie)
        .send()
        .await
        .expect("logout");
    assert_eq!(res.status(), 303);
    assert!(res.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .contains("Max-Age=0"));
    s.stop().await;
}

/// Waits until the receiver holds `n` records.
async fn wait_jsonl_like(got: &Mutex<Vec<Value>>, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let records = got.lock().expect("lock").clone();
        if records.len() >= n {
            return records;
        }
        assert!(
            Instant::now() < deadline,
            "the replayed event never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn ui_escapes_what_okta_sent() {
    let Setup { s, .. } = setup(Some(TOKEN), true).await;
    let page = no_redirects()
        .get(format!("{}/ui", s.admin_base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("ui")
        .text()
        .await
        .expect("page");
    assert!(
        !page.contains("<script"),
        "unescaped markup from a delivery:\n{page}"
    );
    // Shown, escaped: in the activity row, in the dead letter row and in the replay form.
    assert!(
        page.contains("&lt;script&gt;alert('type')&lt;/script&gt;"),
        "{page}"
    );
    assert!(
        page.contains("x&quot;&gt;&lt;script&gt;alert('uuid')&lt;/script&gt;"),
        "{page}"
    );
    s.stop().await;
}

/// chromedriver (and the Chromium it starts) in a process group of its own, killed with
/// the group when the test ends, whether it passed or failed.
struct Browser {
    child: std::process::Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver; fails the test (never skips) when Chromium is not installed.
    async fn start() -> Browser {
        use std::os::unix::process::CommandExt;
        for bin in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
            assert!(
                std::path::Path::new(bin).exists(),
                "{bin} is missing: the admin page test needs Debian's chromium and chromium-driver \
                 (scripts/test.sh installs them; or: apt-get install chromium chromium-driver)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = std::process::Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let browser = Browser {
            child,
            port,
            _profile: tempfile::tempdir().expect("profile dir"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let plain = reqwest::Client::new();
        loop {
            if let Ok(r) = plain
                .get(format!("http://127.0.0.1:{port}/status"))
                .send()
                .await
            {
                if r.status() == 200 {
                    return browser;
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not start within 10s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn session(&self) -> fantoccini::Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                    "--force-color-profile=srgb", "--disable-crash-reporter", "--disable-breakpad", "--force-device-scale-factor=1",
                    "--window-size=1280,1600",
                    format!("--user-data-dir={}", self._profile.path().display()),
                ]
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        tokio::time::timeout(
            Duration::from_secs(20),
            fantoccini::ClientBuilder::new(connector)
                .capabilities(caps)
                .connect(&format!("http://127.0.0.1:{}", self.port)),
        )
        .await
        .expect("a Chromium session within 20s")
        .expect("a Chromium session")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole group: chromedriver and every Chromium process it started.
        let _ = std::process::Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pixels of one exact colour.
fn count_colour(rgba: &[u8], channels: usize, rgb: [u8; 3]) -> usize {
    rgba.chunks_exact(channels)
        .filter(|p| p[..3] == rgb)
        .count()
}

#[tokio::test]
async fn ui_in_headless_chromium_signs_in_shows_the_rows_and_replays_by_button() {
    use fantoccini::Locator;
    let Setup { s, got, broken } = setup(Some(TOKEN), false).await;
    let browser = Browser::start().await;
    let b = browser.session().await;
    let ui = format!("{}/ui", s.admin_base);

    // Not signed in: the login form. Sign in through it, as a person would.
    b.goto(&ui).await.expect("goto");
    b.find(Locator::Css("input[name=token]"))
        .await
        .expect("token field")
        .send_keys(TOKEN)
        .await
        .expect("type");
    b.find(Locator::Css("form[action='/ui/login'] button"))
        .await
        .expect("sign-in button")
        .click()
        .await
        .expect("click");
    let deadline = Instant::now() + Duration::from_secs(10);
    let dom = loop {
        let dom = b.source().await.expect("dom");
        if dom.contains("dead-letter") {
            break dom;
        }
        assert!(Instant::now() < deadline, "never signed in:\n{dom}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for want in [
        "okta",
        "tokens",
        "user.session.start",
        SAMPLE_UUID,
        "data-status=\"200\"",
        "data-status=\"401\"",
        "commands: com.okta.identity.patch (1)",
    ] {
        assert!(
            dom.contains(want),
            "the browser's DOM lacks {want:?}:\n{dom}"
        );
    }

    // The screenshot is a real render: the window's size, not blank, and the badge
    // colours of the 200 (green) and 401 (amber) rows are on it.
    let png_bytes = b.screenshot().await.expect("screenshot");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/admin-page");
    std::fs::create_dir_all(&out).expect("mkdir");
    std::fs::write(out.join("admin-page.png"), &png_bytes).expect("save screenshot");
    let decoder = png::Decoder::new(std::io::Cursor::new(&png_bytes));
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("buffer size")];
    let info = reader.next_frame(&mut buf).expect("png frame");
    // The viewport: the window's width, its height less what the browser keeps for itself.
    assert!(
        info.width == 1280 && (1200..=1600).contains(&info.height),
        "screenshot size {}x{}",
        info.width,
        info.height
    );
    let channels = match info.color_type {
        png::ColorType::Rgba => 4,
        png::ColorType::Rgb => 3,
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    let pixels = &buf[..info.buffer_size()];
    let background = count_colour(pixels, channels, [0xf8, 0xfa, 0xfc]);
    let total = pixels.len() / channels;
    assert!(
        background > total / 10 && background < total * 95 / 100,
        "blank or unstyled render: {background} of {total} background pixels"
    );
    let green = count_colour(pixels, channels, [0x16, 0xa3, 0x4a]);
    let amber = count_colour(pixels, channels, [0xd9, 0x77, 0x06]);
    assert!(
        green > 200,
        "no 200 badge in the screenshot ({green} green pixels)"
    );
    assert!(
        amber > 200,
        "no 401 badge in the screenshot ({amber} amber pixels)"
    );

    // Replay by clicking the dead letter's button (a plain form: no script involved).
    broken.store(false, Ordering::SeqCst);
    b.find(Locator::Css("tr.dead-letter form button"))
        .await
        .expect("replay button")
        .click()
        .await
        .expect("click");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let url = b.current_url().await.expect("url");
        if url.query() == Some("replayed=1") {
            break;
        }
        assert!(Instant::now() < deadline, "replay did not come back: {url}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(b
        .source()
        .await
        .expect("dom")
        .contains("1 deliveries put back to pending"));
    let records = wait_jsonl_like(&got, 1).await;
    assert_eq!(records[0]["uuid"], SAMPLE_UUID);
    let _ = tokio::time::timeout(Duration::from_secs(5), b.close()).await;
    drop(browser);
    s.stop().await;
}
