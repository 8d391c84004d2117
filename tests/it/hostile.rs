//! Hostile clients against the real server over real TLS (issue #7 part 4). Where another
//! module already proves a point it is cited rather than repeated:
//! `bad_input::slow_and_stalled_clients_are_cut_off` (one stalled header, one stalled
//! body, an idle connection), `bad_input::connections_over_the_cap_are_closed`,
//! `bad_input::malformed_and_wrong_shaped_bodies_are_400` (100,000 `[` and invalid UTF-8
//! on an event hook), `security::allowlist_without_proxies_uses_the_tcp_peer` (a spoofed
//! `X-Forwarded-For`/`Forwarded` from an untrusted peer is ignored).

use crate::bad_input::tls_connect;
use crate::util::*;
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Reads from a raw connection until the server closes it or `within` passes.
async fn read_all<S: tokio::io::AsyncRead + Unpin>(s: &mut S, within: Duration) -> (String, bool) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&buf).into_owned(), true),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => return (String::from_utf8_lossy(&buf).into_owned(), false),
        }
    }
}

/// Sends raw bytes on a fresh TLS connection; returns everything the server answered
/// before it closed the connection (or 5 s passed) and whether it closed.
async fn raw(s: &TestServer, request: &[u8]) -> (String, bool) {
    let mut c = tls_connect(s).await;
    // The server may close before the whole request is written (it refuses early).
    let _ = c.write_all(request).await;
    let _ = c.flush().await;
    read_all(&mut c, Duration::from_secs(5)).await
}

/// The status line's code of a raw HTTP/1.1 answer, 0 when there is none.
fn status_of(answer: &str) -> u16 {
    answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// How many HTTP responses a raw answer holds.
fn responses_in(answer: &str) -> usize {
    answer.matches("HTTP/1.1 ").count()
}

/// The body of a raw answer, parsed as JSON when it is.
fn json_body(answer: &str) -> Option<Value> {
    let (_, body) = answer.split_once("\r\n\r\n")?;
    serde_json::from_str(body.trim()).ok()
}

fn sample() -> String {
    fixture("event-hook-delivery.json")
}

/// Delivers the sample and returns (status, how long it took).
async fn timed_delivery(s: &TestServer) -> (u16, Duration) {
    let started = Instant::now();
    let status = s
        .deliver(&envelope(&[event("user.session.start")]))
        .await
        .status();
    (status.as_u16(), started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_do_not_stop_valid_deliveries() {
    const SLOW: usize = 200;
    let s = start(Options {
        server_extra: "max_connections = 400\nheader_read_timeout = \"8s\"".into(),
        ..Options::default()
    })
    .await;
    // 200 connections that send a request head one byte every 100 ms, forever.
    let mut slow = tokio::task::JoinSet::new();
    let opened = Instant::now();
    for i in 0..SLOW {
        let c = tls_connect(&s).await;
        slow.spawn(async move {
            let (mut rd, mut wr) = tokio::io::split(c);
            let head =
                format!("POST /hooks/okta/events HTTP/1.1\r\nHost: localhost\r\nX-Slow-{i}: ");
            let writer = async {
                for b in head.bytes().chain(std::iter::repeat(b'a')) {
                    if wr.write_all(&[b]).await.is_err() || wr.flush().await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                // Written as far as the server let us: wait for the close.
                std::future::pending::<()>().await;
            };
            let mut sink = Vec::new();
            tokio::select! {
                _ = writer => {}
                _ = rd.read_to_end(&mut sink) => {}
            }
            Instant::now()
        });
    }
    let open_after = opened.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let open = metric(&s.metrics().await, "hookwarden_connections_open", "");
    assert!(
        open >= SLOW as f64,
        "the slow connections are open at once ({open})"
    );
    // Valid deliveries keep getting 200, quickly, while they are all held open.
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let (status, took) = timed_delivery(&s).await;
        assert_eq!(status, 200);
        slowest = slowest.max(took);
    }
    assert!(
        slowest < Duration::from_secs(1),
        "a delivery took {slowest:?} beside {SLOW} slowloris connections"
    );
    assert!(
        slow.len() == SLOW && opened.elapsed() < Duration::from_secs(8),
        "the deliveries ran while every slow connection was still open"
    );
    // And every slow connection is cut off by the header-read timeout (8 s), not kept.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut cut = 0;
    while let Ok(Some(done)) = tokio::time::timeout_at(deadline, slow.join_next()).await {
        let at = done.expect("task");
        assert!(
            at.duration_since(opened) < open_after + Duration::from_secs(11),
            "a slow connection was held past the header timeout"
        );
        cut += 1;
    }
    assert_eq!(cut, SLOW, "every slowloris connection was closed");
    eprintln!(
        "slowloris: {SLOW} connections opened in {open_after:?}, slowest of 20 deliveries beside them {slowest:?}, all cut off"
    );
    s.stop().await;
}

#[tokio::test]
async fn header_floods_and_huge_headers_are_refused() {
    let s = start(Options::default()).await;
    let auth = basic();
    let body = sample();
    let head = |extra: &str| {
        format!(
            "POST /hooks/okta/events HTTP/1.1\r\nHost: localhost\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}\r\n{body}",
            body.len()
        )
    };
    // Many headers: more than hyper's limit of 100.
    let many: String = (0..500).map(|i| format!("X-Flood-{i}: {i}\r\n")).collect();
    // One huge header, and fewer than 100 headers that add up to 240 kB. The head buffer
    // is 64 KiB (`max_buf_size`); hyper reads up to one more buffer-full before it checks,
    // so a head is refused somewhere between 64 and 128 KiB (a 100 kB head still passes).
    let huge = format!("X-Huge: {}\r\n", "a".repeat(200_000));
    let wide: String = (0..60)
        .map(|i| format!("X-Wide-{i}: {}\r\n", "b".repeat(4000)))
        .collect();
    for (what, extra) in [
        ("500 headers", many),
        ("a 200 kB header", huge),
        ("60 headers of 4 kB", wide),
    ] {
        let (answer, closed) = raw(&s, head(&extra).as_bytes()).await;
        let status = status_of(&answer);
        assert!(
            status == 431 || (status == 0 && closed),
            "{what}: 431 or a closed connection, got {answer:?}"
        );
        assert!(closed, "{what}: the connection is closed after the refusal");
        // hyper writes this refusal itself, before any of our code runs: no JSON body.
        eprintln!(
            "{what}: {}, JSON body: {}",
            answer.lines().next().unwrap_or("(closed, no answer)"),
            json_body(&answer).is_some()
        );
    }
    // Nothing was stored, and a normal delivery still works.
    assert!(read_jsonl(&s.jsonl()).is_empty());
    assert_eq!(s.deliver(&body).await.status(), 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_hits_the_cap_and_the_service_recovers() {
    const CAP: usize = 50;
    let s = start(Options {
        server_extra: format!("max_connections = {CAP}\nheader_read_timeout = \"3s\""),
        ..Options::default()
    })
    .await;
    // 500 TCP connections at once, held open.
    let mut flood = Vec::new();
    for _ in 0..500 {
        flood.push(
            tokio::net::TcpStream::connect(s.addr)
                .await
                .expect("connect"),
        );
    }
    // Those over the cap are closed at once; at most CAP are held.
    let mut held = 0;
    for c in flood.iter_mut() {
        let mut b = [0u8; 1];
        match tokio::time::timeout(Duration::from_millis(20), c.read(&mut b)).await {
            Err(_) => held += 1,         // still open, waiting for a TLS hello
            Ok(Ok(0)) | Ok(Err(_)) => {} // closed by the server
            Ok(Ok(_)) => panic!("the server sent bytes before any hello"),
        }
    }
    assert!(held <= CAP, "{held} connections held past a cap of {CAP}");
    let m = s.metrics().await;
    let refused = metric(&m, "hookwarden_connections_refused_total", "");
    assert!(refused >= (500 - CAP) as f64, "refusals counted: {refused}");
    // The admin listener is separate and answers during the flood.
    let ready = reqwest::get(format!("{}/readyz", s.admin_base))
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200);
    // Flood over: the service answers again at once.
    drop(flood);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = s
            .client
            .post(s.url("/hooks/okta/events"))
            .header("Authorization", basic())
            .header("Content-Type", "application/json")
            .body(sample())
            .send()
            .await;
        if matches!(&r, Ok(r) if r.status() == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not served after the flood: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A flood held past the header timeout is cut off and frees the slots by itself.
    let mut flood = Vec::new();
    for _ in 0..CAP {
        flood.push(
            tokio::net::TcpStream::connect(s.addr)
                .await
                .expect("connect"),
        );
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (status, _) = timed_delivery(&s).await;
    assert_eq!(
        status, 200,
        "idle flood connections were cut off by the timeouts"
    );
    drop(flood);
    s.stop().await;
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Mean of the middle 80 %.
fn trimmed_mean(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let cut = v.len() / 10;
    let mid = &v[cut..v.len() - cut];
    mid.iter().sum::<f64>() / mid.len() as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_rejection_time_does_not_depend_on_how_much_of_the_secret_matched() {
    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const SAMPLES: usize = 2000;
    let dir = tempfile::tempdir().expect("tmp");
    let s = start(Options {
        toml: Some(format!(
            r#"
[[event_hooks]]
name = "okta"
path = "/hooks/okta/events"
auth = {{ type = "header", header = "X-Okta-Secret", secrets = ["{SECRET}"] }}
sinks = [{{ name = "archive", type = "jsonl", path = "{}" }}]
"#,
            dir.path().join("events.jsonl").display()
        )),
        ..Options::default()
    })
    .await;
    let wrong_first = format!("X{}", &SECRET[1..]);
    let wrong_last = format!("{}X", &SECRET[..SECRET.len() - 1]);
    let body = sample();
    // One kept-alive connection (reqwest reuses it for sequential requests).
    let client = s.client.clone();
    let time = |value: String| {
        let (client, url, body) = (client.clone(), s.url("/hooks/okta/events"), body.clone());
        async move {
            let started = Instant::now();
            let r = client
                .post(url)
                .header("X-Okta-Secret", value)
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .expect("request");
            assert_eq!(r.status(), 401);
            r.bytes().await.expect("body");
            started.elapsed().as_secs_f64() * 1e6
        }
    };
    for _ in 0..200 {
        time(wrong_first.clone()).await; // warm up
    }
    // Interleaved, so that drift (other tests, CPU frequency) hits both classes alike.
    let (mut first, mut last) = (Vec::new(), Vec::new());
    for i in 0..2 * SAMPLES {
        if i % 2 == 0 {
            first.push(time(wrong_first.clone()).await);
        } else {
            last.push(time(wrong_last.clone()).await);
        }
    }
    let (m_first, m_last) = (median(&mut first), median(&mut last));
    let (t_first, t_last) = (trimmed_mean(&mut first), trimmed_mean(&mut last));
    eprintln!(
        "auth timing over {SAMPLES} requests each: wrong first byte median {m_first:.1} µs, trimmed mean {t_first:.1} µs; all but the last byte right median {m_last:.1} µs, trimmed mean {t_last:.1} µs"
    );
    // The noise bound: 5 % of a request's time (at least 20 µs). A byte-by-byte early-exit
    // compare of 32 bytes differs by nanoseconds, far below any bound that loopback TLS
    // allows; what this catches is a comparison whose work depends on the match (an early
    // return before hashing, a lookup keyed by the value), which moves the time by more.
    let bound = (0.05 * m_first.min(m_last)).max(20.0);
    assert!(
        (m_first - m_last).abs() < bound,
        "medians differ by {:.1} µs (bound {bound:.1})",
        (m_first - m_last).abs()
    );
    assert!(
        (t_first - t_last).abs() < bound,
        "trimmed means differ by {:.1} µs (bound {bound:.1})",
        (t_first - t_last).abs()
    );
    s.stop().await;
}

/// `openssl s_client` against the server with one protocol version. Async: the server
/// runs on this test's runtime, which a blocking wait would starve.
async fn s_client(s: &TestServer, version: &str) -> (bool, String) {
    let child = tokio::process::Command::new("openssl")
        .args(["s_client", "-connect"])
        .arg(s.addr.to_string())
        .args(["-servername", "localhost", version])
        // Let the client offer the old versions at all: Debian's default security level
        // refuses them on the client side, which would prove nothing about the server.
        .args(["-cipher", "DEFAULT:@SECLEVEL=0"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("openssl s_client (Debian's openssl package)");
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("s_client finishes")
        .expect("s_client output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn tls_1_0_and_1_1_are_refused_1_2_and_1_3_accepted() {
    let s = start(Options::default()).await;
    for old in ["-tls1", "-tls1_1"] {
        let (ok, text) = s_client(&s, old).await;
        assert!(!ok, "{old} handshake must fail:\n{text}");
        // The server refused it (rustls answers with a fatal alert), not the client.
        assert!(
            text.contains("SSL alert number") && !text.contains("no protocols available"),
            "{old}: refused by the server:\n{text}"
        );
    }
    for (new, name) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        let (ok, text) = s_client(&s, new).await;
        assert!(ok, "{new} handshake must work:\n{text}");
        assert!(text.contains(&format!("New, {name}")), "{new}:\n{text}");
    }
    s.stop().await;
}

#[tokio::test]
async fn request_smuggling_attempts_are_refused_and_never_two_requests() {
    let s = start(Options::default()).await;
    let auth = basic();
    // A valid delivery, to be smuggled behind a first request.
    let smuggled_event = event("user.session.start");
    let smuggled_uuid = smuggled_event["uuid"].as_str().expect("uuid").to_owned();
    let inner_body = envelope(&[smuggled_event]);
    let inner = format!(
        "POST /hooks/okta/events HTTP/1.1\r\nHost: localhost\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{inner_body}",
        inner_body.len()
    );
    let start_line = format!(
        "POST /hooks/okta/events HTTP/1.1\r\nHost: localhost\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\n"
    );
    let empty_chunked = "0\r\n\r\n";
    // Refused by hyper's parser with 400 before any handler runs.
    let refused: Vec<(&str, String)> = vec![
        (
            "two Content-Lengths that differ",
            format!(
                "{start_line}Content-Length: 2\r\nContent-Length: {}\r\n\r\n{{}}{inner}",
                2 + inner.len()
            ),
        ),
        (
            "Content-Length: 2, 40",
            format!("{start_line}Content-Length: 2, 40\r\n\r\n{{}}{inner}"),
        ),
        (
            "an obs-fold header",
            format!("{start_line}X-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\n{{}}{inner}"),
        ),
        (
            "Transfer-Encoding: chunked, identity",
            format!(
                "{start_line}Transfer-Encoding: chunked, identity\r\n\r\n{empty_chunked}{inner}"
            ),
        ),
        (
            "Transfer-Encoding: identity",
            format!("{start_line}Transfer-Encoding: identity\r\n\r\n{inner}"),
        ),
        (
            "Transfer-Encoding with a space before the colon",
            format!("{start_line}Transfer-Encoding : chunked\r\n\r\n{empty_chunked}{inner}"),
        ),
        (
            "a negative Content-Length",
            format!("{start_line}Content-Length: -1\r\n\r\n{inner}"),
        ),
    ];
    let mut outcomes = Vec::new();
    for (what, request) in &refused {
        let (answer, closed) = raw(&s, request.as_bytes()).await;
        let status = status_of(&answer);
        outcomes.push(format!("{what}: {status}"));
        assert_eq!(status, 400, "{what}: refused with 400:\n{answer}");
        assert_eq!(
            responses_in(&answer),
            1,
            "{what}: one answer, never two:\n{answer}"
        );
        assert!(closed, "{what}: the connection is closed after the refusal");
    }
    // Content-Length beside Transfer-Encoding: chunked. hyper follows RFC 9112 section 6.3:
    // the chunked framing wins, Content-Length is dropped before the request reaches us
    // (so we cannot tell it was there), and the connection is closed after the answer, so
    // whatever follows the chunked body is never read as a request. The chunked body here
    // is empty: 400 from the JSON parser.
    let conflicting: Vec<(&str, String)> = vec![
        (
            "Content-Length then Transfer-Encoding: chunked",
            format!("{start_line}Content-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n{empty_chunked}{inner}", empty_chunked.len() + inner.len()),
        ),
        (
            "Transfer-Encoding: chunked then Content-Length",
            format!("{start_line}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n{empty_chunked}{inner}"),
        ),
        (
            "a bare LF hiding Transfer-Encoding after Content-Length",
            format!("{start_line}Content-Length: 2\nTransfer-Encoding: chunked\r\n\r\n{empty_chunked}{inner}"),
        ),
    ];
    for (what, request) in &conflicting {
        let (answer, closed) = raw(&s, request.as_bytes()).await;
        let status = status_of(&answer);
        outcomes.push(format!("{what}: {status}"));
        assert_eq!(
            status, 400,
            "{what}: the empty chunked body is refused:\n{answer}"
        );
        assert_eq!(
            responses_in(&answer),
            1,
            "{what}: one answer, never two:\n{answer}"
        );
        assert!(closed, "{what}: the connection is closed after the answer");
    }
    // The same with a valid chunked delivery: that one delivery is taken (it is what the
    // chunked framing says), the smuggled request behind it is not.
    let first_event = event("user.session.start");
    let first_uuid = first_event["uuid"].as_str().expect("uuid").to_owned();
    let first_body = envelope(&[first_event]);
    let chunked = format!("{:x}\r\n{first_body}\r\n0\r\n\r\n", first_body.len());
    let request = format!(
        "{start_line}Content-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n{chunked}{inner}",
        chunked.len() + inner.len()
    );
    let (answer, closed) = raw(&s, request.as_bytes()).await;
    outcomes.push(format!(
        "valid chunked body with a conflicting Content-Length: {}",
        status_of(&answer)
    ));
    assert_eq!(status_of(&answer), 200, "{answer}");
    assert_eq!(responses_in(&answer), 1, "one answer, never two:\n{answer}");
    assert!(closed, "the connection is closed after the answer");
    eprintln!("smuggling: {outcomes:#?}");
    // The smuggled request never reached a handler.
    let records = wait_jsonl(&s.jsonl(), 1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stored = uuids(&read_jsonl(&s.jsonl()));
    assert_eq!(
        stored,
        vec![first_uuid],
        "only the framed delivery: {records:?}"
    );
    assert!(
        !stored.contains(&smuggled_uuid),
        "a smuggled request was stored"
    );
    let m = s.metrics().await;
    assert_eq!(metric(&m, "hookwarden_events_stored_total", ""), 1.0);
    s.stop().await;
}

/// The token inline hook with Basic auth and a rules handler, beside the default event hook.
fn with_inline_hook(dir: &std::path::Path) -> String {
    format!(
        r#"{}
[[inline_hooks]]
name = "token"
path = "/hooks/okta/token"
type = "token"
auth = {{ type = "basic", users = [{{ username = "{USER}", password = "{PASSWORD}" }}] }}
handler = {{ kind = "rules", token = {{ claims = [{{ token = "access", name = "checked", value = "yes" }}] }} }}
"#,
        default_hook(dir)
    )
}

async fn post(
    s: &TestServer,
    path: &str,
    body: Vec<u8>,
    extra: &[(&str, &str)],
) -> (u16, Option<Value>) {
    let mut req = s
        .client
        .post(s.url(path))
        .header("Authorization", basic())
        .header("Content-Type", "application/json")
        .body(body);
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_nesting_huge_numbers_and_bad_utf8_are_400_on_every_hook() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = start(Options {
        toml: Some(with_inline_hook(dir.path())),
        ..Options::default()
    })
    .await;
    let token_req: Value = serde_json::from_str(&fixture("token-hook-request.json")).expect("json");
    let digits = "9".repeat(10_000);
    // (what, event hook body, inline hook body)
    let mut cases: Vec<(&str, Vec<u8>, Vec<u8>)> = Vec::new();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes();
    cases.push(("100,000 [", deep.clone(), deep));
    let deep_obj = format!("{}1{}", "{\"a\":".repeat(50_000), "}".repeat(50_000)).into_bytes();
    cases.push(("50,000 nested objects", deep_obj.clone(), deep_obj));
    for (what, number) in [
        ("1e400", "1e400"),
        ("-1e400", "-1e400"),
        ("a 10,000-digit integer", digits.as_str()),
    ] {
        let mut e = event("user.session.start");
        e["hostile"] = Value::Null;
        let delivery = envelope(&[e]).replace("\"hostile\":null", &format!("\"hostile\":{number}"));
        let mut t = token_req.clone();
        t["hostile"] = Value::Null;
        let inline = t
            .to_string()
            .replace("\"hostile\":null", &format!("\"hostile\":{number}"));
        cases.push((what, delivery.into_bytes(), inline.into_bytes()));
    }
    let mut bad = envelope(&[event("user.session.start")]).into_bytes();
    let at = bad
        .iter()
        .position(|b| *b == b'O')
        .expect("an O in the envelope");
    bad[at] = 0xff;
    let mut bad_inline = token_req.to_string().into_bytes();
    let at = bad_inline.iter().position(|b| *b == b'O').expect("an O");
    bad_inline[at] = 0xc3; // a lone lead byte
    cases.push(("invalid UTF-8", bad, bad_inline));
    for (what, delivery, inline) in cases {
        for (path, body) in [
            ("/hooks/okta/events", delivery),
            ("/hooks/okta/token", inline),
        ] {
            let (status, json) = post(&s, path, body, &[]).await;
            assert_eq!(status, 400, "{what} on {path}");
            let summary = json
                .as_ref()
                .and_then(|j| j["errorSummary"].as_str())
                .map(str::to_owned);
            assert!(
                summary.is_some(),
                "{what} on {path}: a JSON errorSummary, got {json:?}"
            );
            eprintln!("{what} on {path}: 400 {}", summary.unwrap_or_default());
        }
    }
    // Still up, and nothing hostile was stored.
    assert_eq!(s.deliver(&sample()).await.status(), 200);
    let records = wait_jsonl(&dir.path().join("events.jsonl"), 1, Duration::from_secs(5)).await;
    assert_eq!(records.len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn compressed_bodies_are_refused_not_inflated() {
    let s = start(Options::default()).await;
    // A gzip bomb: 50 MB of zeros, about 50 kB compressed.
    let out = std::process::Command::new("sh")
        .args(["-c", "head -c 50000000 /dev/zero | gzip -9"])
        .output()
        .expect("gzip");
    assert!(out.status.success());
    let bomb = out.stdout;
    assert!(bomb.len() < 100_000);
    let (status, json) = post(
        &s,
        "/hooks/okta/events",
        bomb,
        &[("Content-Encoding", "gzip")],
    )
    .await;
    assert!(status == 415 || status == 400, "a gzip body: {status}");
    assert!(json.is_some_and(|j| j["errorSummary"].is_string()));
    // A valid JSON body merely labelled as gzip is not taken either: the label is a lie or
    // an encoding we do not decode.
    let (status, _) = post(
        &s,
        "/hooks/okta/events",
        sample().into_bytes(),
        &[("Content-Encoding", "gzip")],
    )
    .await;
    assert_eq!(status, 415, "Content-Encoding: gzip is not accepted");
    let (status, _) = post(
        &s,
        "/hooks/okta/events",
        sample().into_bytes(),
        &[("Content-Encoding", "identity")],
    )
    .await;
    assert_eq!(status, 200, "identity is no encoding");
    s.stop().await;
}
