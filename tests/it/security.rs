//! Secrets in rotation, secret headers, the IP allowlist and trusted proxies.

use crate::util::*;
use std::time::Duration;

fn two_user_hook(dir: &std::path::Path) -> String {
    format!(
        r#"
[[event_hooks]]
name = "okta"
path = "/hooks/okta/events"
auth = {{ type = "basic", users = [
  {{ username = "{USER}", password = "{PASSWORD}" }},
  {{ username = "okta-next", password = {{ env = "HOOKWARDEN_IT_NEXT_PASSWORD" }} }},
] }}
sinks = [{{ name = "archive", type = "jsonl", path = "{}" }}]

[[event_hooks]]
name = "secret-header"
path = "/hooks/okta/header"
auth = {{ type = "header", header = "X-Okta-Secret", secrets = ["old-secret-0123456789", "new-secret-9876543210"] }}
sinks = [{{ name = "archive", type = "jsonl", path = "{}" }}]
"#,
        dir.join("events.jsonl").display(),
        dir.join("header.jsonl").display()
    )
}

#[tokio::test]
async fn rotated_secrets_are_all_accepted() {
    std::env::set_var("HOOKWARDEN_IT_NEXT_PASSWORD", "the-next-password-1234");
    let tmp = tempfile::tempdir().expect("tmp");
    let s = start(Options {
        toml: Some(two_user_hook(tmp.path())),
        ..Options::default()
    })
    .await;
    use base64::Engine;
    let next = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("okta-next:the-next-password-1234")
    );
    let body = fixture("event-hook-delivery.json");
    for (auth, want) in [
        (basic(), 200),
        (next.clone(), 200),
        ("Basic b2t0YTpub3BlMTIzNDU2Nzg5MA==".to_owned(), 401),
    ] {
        let r = s
            .client
            .post(s.url("/hooks/okta/events"))
            .header("Authorization", auth)
            .header("Content-Type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), want);
    }
    // The secret header: both secrets in rotation work, the header name is case-insensitive,
    // and the Authorization header is not a substitute.
    for (name, value, want) in [
        ("X-Okta-Secret", "old-secret-0123456789", 200),
        ("x-okta-secret", "new-secret-9876543210", 200),
        ("X-Okta-Secret", "new-secret-987654321", 401),
        ("X-Okta-Secret", "new-secret-98765432100", 401),
        ("Authorization", "new-secret-9876543210", 401),
    ] {
        let r = s
            .client
            .post(s.url("/hooks/okta/header"))
            .header(name, value)
            .header("Content-Type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), want, "{name}: {value}");
    }
    s.stop().await;
}

#[tokio::test]
async fn allowlist_without_proxies_uses_the_tcp_peer() {
    // Only 10.0.0.0/8 may call; the test client is 127.0.0.1.
    let s = start(Options {
        network: "allow_ips = [\"10.0.0.0/8\"]".into(),
        ..Options::default()
    })
    .await;
    let body = fixture("event-hook-delivery.json");
    let r = s.deliver(&body).await;
    assert_eq!(r.status(), 403);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["errorSummary"], "Access denied");
    // A spoofed X-Forwarded-For from an untrusted peer changes nothing.
    for (h, v) in [
        ("X-Forwarded-For", "10.1.2.3"),
        ("Forwarded", "for=10.1.2.3"),
    ] {
        let r = s
            .client
            .post(s.url("/hooks/okta/events"))
            .header("Authorization", basic())
            .header("Content-Type", "application/json")
            .header(h, v)
            .body(body.clone())
            .send()
            .await
            .expect("request");
        assert_eq!(
            r.status(),
            403,
            "{h} from an untrusted peer must be ignored"
        );
    }
    let m = s.metrics().await;
    assert_eq!(
        metric(
            &m,
            "hookwarden_rejections_total",
            "reason=\"ip_not_allowed\""
        ),
        3.0
    );
    s.stop().await;
}

#[tokio::test]
async fn allowlist_behind_a_trusted_proxy_reads_the_forwarded_chain() {
    // 127.0.0.1 is our load balancer; clients in 10.0.0.0/8 are allowed.
    let s = start(Options {
        network:
            "allow_ips = [\"10.0.0.0/8\"]\ntrusted_proxies = [\"127.0.0.1/32\", \"192.168.0.0/16\"]"
                .into(),
        ..Options::default()
    })
    .await;
    let body = fixture("event-hook-delivery.json");
    let cases = [
        // (header, value, expected)
        (Some(("X-Forwarded-For", "10.1.2.3")), 200),
        // The client prepended a fake address; the right-most untrusted one is the client.
        (Some(("X-Forwarded-For", "10.9.9.9, 203.0.113.7")), 403),
        (
            Some(("X-Forwarded-For", "203.0.113.7, 10.1.2.3, 192.168.1.1")),
            200,
        ),
        (Some(("Forwarded", "for=10.1.2.3;proto=https")), 200),
        (Some(("Forwarded", "for=203.0.113.7")), 403),
        (Some(("X-Forwarded-For", "garbage")), 403),
        // No header: the proxy itself is the client, and it is not in the allowlist.
        (None, 403),
    ];
    for (header, want) in cases {
        let mut req = s
            .client
            .post(s.url("/hooks/okta/events"))
            .header("Authorization", basic())
            .header("Content-Type", "application/json")
            .body(body.clone());
        if let Some((h, v)) = header {
            req = req.header(h, v);
        }
        let r = req.send().await.expect("request");
        assert_eq!(r.status(), want, "{header:?}");
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    s.stop().await;
}

/// "A handler never reads an unauthenticated body" holds by the types: the hook handlers
/// take the guard's `Authenticated`, which only the guard makes. Mounted without the
/// guard, an event hook's and an inline hook's routes refuse every call (500, a wiring
/// bug) with credentials or without, and the handlers never run: nothing is stored,
/// the forward handler's service is never called, no handler note is attached.
#[tokio::test]
async fn hook_routes_mounted_without_their_guard_refuse_every_call() {
    use axum::body::Body;
    use axum::http::{header, Method, Request, StatusCode};
    use hookwarden::activity::Note;
    use hookwarden::config::Config;
    use hookwarden::event_hooks::{self, HookState};
    use hookwarden::metrics::Metrics;
    use hookwarden::store::sqlite::SqliteStore;
    use hookwarden::store::Store;
    use serde_json::Value;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use tower::ServiceExt;

    let dir = tempfile::tempdir().expect("tempdir");
    let target = crate::inline::target().await;
    let toml = format!(
        "[server]\ndata_dir = \"{}\"\n{}{}",
        dir.path().join("data").display(),
        default_hook(dir.path()),
        crate::inline::inline_hook(
            "token",
            "token",
            &format!(r#"{{ kind = "forward", url = "{}" }}"#, target.url),
            ""
        )
    );
    let config = Config::from_toml_str(&toml).expect("valid config");
    std::fs::create_dir_all(dir.path().join("data")).expect("data dir");
    let store = Arc::new(SqliteStore::open(&config.store_path(), &config.store).expect("store"));
    let metrics = Arc::new(Metrics::new());
    let (waker, _wake_rx) = hookwarden::worker::wake_channel();
    let event_hook = &config.event_hooks[0];
    let state = Arc::new(HookState::new(
        event_hook,
        store.clone(),
        waker,
        metrics.clone(),
        config.server.max_body_bytes,
    ));
    let (inline_path, inline_hook) = hookwarden::inline_hooks::build(&config, &metrics, None)
        .expect("inline hook builds")
        .into_iter()
        .next()
        .expect("one inline hook");
    // The routes as `public_router` gets them, merged without `guard::guard`.
    let router = event_hooks::routes(&event_hook.path, state)
        .merge(hookwarden::inline_hooks::routes(&inline_path, inline_hook));

    let delivery = envelope(&[event("user.session.start"), event("user.lifecycle.create")]);
    let token_call = fixture("token-hook-request.json");
    for (method, path, body) in [
        (Method::POST, event_hook.path.as_str(), delivery.as_str()),
        (Method::GET, event_hook.path.as_str(), ""),
        (Method::POST, inline_path.as_str(), token_call.as_str()),
    ] {
        for credentials in [true, false] {
            let mut req = Request::builder()
                .method(method.clone())
                .uri(path)
                .header(header::CONTENT_TYPE, "application/json")
                .header("X-Okta-Verification-Challenge", "challenge");
            if credentials {
                req = req.header(header::AUTHORIZATION, basic());
            }
            let res = router
                .clone()
                .oneshot(req.body(Body::from(body.to_owned())).expect("request"))
                .await
                .expect("infallible");
            let what = format!("{method} {path} (credentials: {credentials})");
            assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR, "{what}");
            assert!(
                res.extensions().get::<Note>().is_none(),
                "{what}: a handler ran"
            );
            let bytes = axum::body::to_bytes(res.into_body(), 64 * 1024)
                .await
                .expect("body");
            let json: Value = serde_json::from_slice(&bytes).expect("a JSON error");
            assert_eq!(
                json["errorSummary"], "Internal error: this hook is not behind its guard",
                "{what}"
            );
        }
    }
    let stats = hookwarden::store::Inspect::stats(&*store)
        .await
        .expect("stats");
    assert_eq!(stats.events, 0, "an unguarded delivery was stored");
    assert_eq!(stats.backlog, 0);
    assert_eq!(
        target.calls.load(Ordering::SeqCst),
        0,
        "an unguarded inline call reached its handler"
    );
    store.close().await;
}
