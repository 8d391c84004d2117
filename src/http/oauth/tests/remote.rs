//! Keys fetched from the issuer: caching, rotation, floods of unknown kids, deadlines,
//! background refresh, and what a keys endpoint may not send.

use super::*;

/// A stand-in for the issuer's keys endpoint: counts requests, can fail, stall,
/// rotate its keys, redirect, or send too much.
struct FakeIssuer {
    base: String,
    state: Arc<FakeState>,
    task: tokio::task::JoinHandle<()>,
}

struct FakeState {
    body: std::sync::Mutex<String>,
    status: std::sync::atomic::AtomicU16,
    delay_ms: AtomicU64,
    hits: AtomicU64,
}

impl Drop for FakeIssuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeIssuer {
    async fn start(set: String) -> FakeIssuer {
        use axum::extract::State;
        use axum::routing::get;
        let state = Arc::new(FakeState {
            body: std::sync::Mutex::new(set),
            status: std::sync::atomic::AtomicU16::new(200),
            delay_ms: AtomicU64::new(0),
            hits: AtomicU64::new(0),
        });
        async fn keys(State(s): State<Arc<FakeState>>) -> axum::response::Response {
            use axum::response::IntoResponse;
            s.hits.fetch_add(1, Ordering::SeqCst);
            let delay = s.delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            let status =
                axum::http::StatusCode::from_u16(s.status.load(Ordering::SeqCst)).expect("status");
            let body = s.body.lock().expect("lock").clone();
            (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        let app = axum::Router::new()
            .route("/keys", get(keys))
            .route(
                "/moved",
                get(|| async { axum::response::Redirect::temporary("/keys") }),
            )
            .route("/huge", get(|| async { " ".repeat(MAX_JWKS_BYTES + 1) }))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeIssuer { base, state, task }
    }

    fn hits(&self) -> u64 {
        self.state.hits.load(Ordering::SeqCst)
    }

    fn serve(&self, set: String) {
        *self.state.body.lock().expect("lock") = set;
    }

    fn fail(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }
}

fn remote_config(url: String, min_refresh_ms: u64, ttl_ms: u64) -> OAuthConfig {
    OAuthConfig {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        jwks_url: Some(url),
        jwks_file: None,
        scopes: vec![SCOPE.into()],
        client_id: Some(CLIENT.into()),
        leeway: Duration::from_secs(30),
        jwks_cache_ttl: Duration::from_millis(ttl_ms),
        jwks_min_refresh: Duration::from_millis(min_refresh_ms),
    }
}

/// Waits for the eager fetch started by `new` (or any fetch) to install a set.
async fn wait_generation(v: &BearerVerifier, generation: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while v.jwks_stats().generation < generation {
        assert!(
            Instant::now() < deadline,
            "no key set {generation}: {:?}",
            v.jwks_stats()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn set_a() -> String {
    jwks(&[jwk(RSA_A_PUBLIC, "a", Algorithm::RS256)])
}

fn set_b() -> String {
    jwks(&[jwk(RSA_B_PUBLIC, "b", Algorithm::RS256)])
}

fn token_b() -> String {
    sign(RSA_B_PRIVATE, Some("b"), Algorithm::RS256, &claims())
}

/// A token naming a kid nobody has. Not signed: the kid lookup fails first, and
/// RSA signing in a debug build is slow enough to spoil the timing of a burst.
fn random_kid_token() -> String {
    let kid = uuid::Uuid::new_v4().to_string();
    format!(
        "{}.{}.c2ln",
        b64(&json!({ "alg": "RS256", "typ": "JWT", "kid": kid })),
        b64(&claims())
    )
}

#[tokio::test]
async fn remote_keys_are_fetched_once_at_start_and_cached() {
    let issuer = FakeIssuer::start(set_a()).await;
    let v = BearerVerifier::new(&remote_config(format!("{}/keys", issuer.base), 100, 60_000))
        .expect("verifier");
    wait_generation(&v, 1).await;
    for _ in 0..20 {
        verify_claims(&v, &claims()).await.expect("valid");
    }
    assert_eq!(issuer.hits(), 1);
    assert_eq!(v.jwks_stats().fetches, 1);
}

#[tokio::test]
async fn without_a_runtime_at_start_the_first_token_fetches() {
    let issuer = FakeIssuer::start(set_a()).await;
    let config = remote_config(format!("{}/keys", issuer.base), 100, 60_000);
    // `new` outside the runtime's context: no eager fetch is possible.
    let v = std::thread::spawn(move || BearerVerifier::new(&config))
        .join()
        .expect("thread")
        .expect("verifier");
    assert_eq!(issuer.hits(), 0);
    verify_claims(&v, &claims()).await.expect("lazy fetch");
    assert_eq!(issuer.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_unknown_kids_costs_at_most_one_fetch_per_interval() {
    let issuer = FakeIssuer::start(set_a()).await;
    let v = Arc::new(
        BearerVerifier::new(&remote_config(
            format!("{}/keys", issuer.base),
            1000,
            60_000,
        ))
        .expect("verifier"),
    );
    wait_generation(&v, 1).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let v = v.clone();
        let t = random_kid_token();
        tasks.spawn(async move { v.verify(&bearer(&t)).await.err() });
    }
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.expect("task"), Some(BearerError::UnknownKid));
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "burst took {:?}",
        started.elapsed()
    );
    assert_eq!(issuer.hits(), 2, "the start and one shared refresh");
    // Known tokens were never affected.
    verify_claims(&v, &claims()).await.expect("valid");
}

#[tokio::test]
async fn a_rotation_at_the_issuer_is_picked_up_on_the_new_kid() {
    let issuer = FakeIssuer::start(set_a()).await;
    let v = BearerVerifier::new(&remote_config(format!("{}/keys", issuer.base), 200, 60_000))
        .expect("verifier");
    wait_generation(&v, 1).await;
    verify_claims(&v, &claims()).await.expect("old key");
    issuer.serve(set_b());
    tokio::time::sleep(Duration::from_millis(250)).await;
    v.verify(&bearer(&token_b()))
        .await
        .expect("new key after one refresh");
    assert_eq!(issuer.hits(), 2);
    // The issuer retired key a: after the refresh it is no longer trusted.
    assert_eq!(
        verify_claims(&v, &claims()).await.err(),
        Some(BearerError::UnknownKid)
    );
}

#[tokio::test]
async fn when_the_issuer_is_down_the_cached_keys_stay_in_use() {
    let issuer = FakeIssuer::start(set_a()).await;
    let v = BearerVerifier::new(&remote_config(format!("{}/keys", issuer.base), 200, 60_000))
        .expect("verifier");
    wait_generation(&v, 1).await;
    issuer.fail(500);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        v.verify(&bearer(&token_b())).await.err(),
        Some(BearerError::UnknownKid)
    );
    assert_eq!(issuer.hits(), 2, "the unknown kid did try");
    assert_eq!(v.jwks_stats().failures, 1);
    verify_claims(&v, &claims())
        .await
        .expect("cached key still works");
    // A JWKS without a usable key is a failure too, not an empty cache.
    issuer.fail(200);
    issuer.serve(r#"{"keys": []}"#.into());
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(v.verify(&bearer(&token_b())).await.is_err());
    assert_eq!(v.jwks_stats().failures, 2);
    verify_claims(&v, &claims())
        .await
        .expect("cached key still works");
}

#[tokio::test]
async fn with_no_keys_ever_fetched_every_token_is_refused() {
    let issuer = FakeIssuer::start(set_a()).await;
    issuer.fail(503);
    let v = BearerVerifier::new(&remote_config(format!("{}/keys", issuer.base), 200, 60_000))
        .expect("verifier");
    assert_eq!(
        verify_claims(&v, &claims()).await.err(),
        Some(BearerError::KeysUnavailable)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_known_kid_never_waits_for_a_fetch_in_flight() {
    let issuer = FakeIssuer::start(set_a()).await;
    let v = Arc::new(
        BearerVerifier::new(&remote_config(format!("{}/keys", issuer.base), 100, 60_000))
            .expect("verifier"),
    );
    wait_generation(&v, 1).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    issuer.state.delay_ms.store(1500, Ordering::SeqCst);
    let slow = {
        let v = v.clone();
        tokio::spawn(async move { v.verify(&bearer(&random_kid_token())).await })
    };
    // Let the unknown kid take the fetch lock and stall on the issuer.
    while issuer.hits() < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    verify_claims(&v, &claims()).await.expect("valid");
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "known kid waited {:?}",
        started.elapsed()
    );
    assert!(!slow.is_finished(), "the fetch was still in flight");
    assert_eq!(
        slow.await.expect("task").err(),
        Some(BearerError::UnknownKid)
    );
}

#[tokio::test]
async fn a_stale_cache_is_refreshed_in_the_background() {
    let issuer = FakeIssuer::start(set_a()).await;
    let v = BearerVerifier::new(&remote_config(format!("{}/keys", issuer.base), 100, 300))
        .expect("verifier");
    wait_generation(&v, 1).await;
    issuer.serve(jwks(&[
        jwk(RSA_A_PUBLIC, "a", Algorithm::RS256),
        jwk(RSA_B_PUBLIC, "b", Algorithm::RS256),
    ]));
    issuer.state.delay_ms.store(500, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let started = Instant::now();
    verify_claims(&v, &claims())
        .await
        .expect("stale but usable");
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    wait_generation(&v, 2).await;
    issuer.state.delay_ms.store(0, Ordering::SeqCst);
    v.verify(&bearer(&token_b()))
        .await
        .expect("key from the background refresh");
    assert_eq!(issuer.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_for_keys_ends_at_its_deadline_and_the_fetch_still_fills_the_cache() {
    let issuer = FakeIssuer::start(set_a()).await;
    let v = BearerVerifier::new(&remote_config(format!("{}/keys", issuer.base), 100, 60_000))
        .expect("verifier");
    wait_generation(&v, 1).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    // The issuer publishes key b (signing with it next) and answers slowly.
    issuer.serve(jwks(&[
        jwk(RSA_A_PUBLIC, "a", Algorithm::RS256),
        jwk(RSA_B_PUBLIC, "b", Algorithm::RS256),
    ]));
    issuer.state.delay_ms.store(1000, Ordering::SeqCst);
    let token = token_b();
    let started = Instant::now();
    let outcome = v
        .verify_by(&bearer(&token), Some(started + Duration::from_millis(300)))
        .await;
    let waited = started.elapsed();
    assert_eq!(outcome.err(), Some(BearerError::TimedOut));
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_millis(500),
        "waited {waited:?}"
    );
    assert_eq!(issuer.hits(), 2, "the fetch started");
    // Nobody waits for it any more, yet it completes and installs key b.
    wait_generation(&v, 2).await;
    issuer.state.delay_ms.store(0, Ordering::SeqCst);
    let started = Instant::now();
    v.verify_by(&bearer(&token), Some(started + Duration::from_millis(300)))
        .await
        .expect("key b from the fetch the first call started");
    assert_eq!(issuer.hits(), 2, "no second fetch");
    // A known kid ignores a deadline that has passed: nothing to wait for.
    verify_claims(&v, &claims()).await.expect("valid");
    v.verify_by(&bearer(&token_a(&claims())), Some(Instant::now()))
        .await
        .expect("known kid, deadline gone");
    // A refusal is still a refusal, not a time-out.
    assert_eq!(
        v.verify_by(
            &bearer(&sign(RSA_A_PRIVATE, Some("b"), Algorithm::RS256, &claims())),
            Some(Instant::now() + Duration::from_millis(300))
        )
        .await
        .err(),
        Some(BearerError::BadSignature)
    );
}

#[tokio::test]
async fn keys_are_refreshed_ahead_of_expiry_until_the_verifier_is_dropped() {
    const TTL: Duration = Duration::from_millis(1500);
    let issuer = FakeIssuer::start(set_a()).await;
    let v = BearerVerifier::new(&remote_config(
        format!("{}/keys", issuer.base),
        100,
        TTL.as_millis() as u64,
    ))
    .expect("verifier");
    wait_generation(&v, 1).await;
    let first = Instant::now();
    // A rotation at the issuer, and no request at all: the refresher picks it up before
    // the cache expires (at 80% of the TTL, 1.2 s).
    issuer.serve(set_b());
    wait_generation(&v, 2).await;
    let refreshed = first.elapsed();
    assert!(
        refreshed >= Duration::from_millis(1000) && refreshed < TTL,
        "refreshed after {refreshed:?}"
    );
    assert_eq!(issuer.hits(), 2);
    let started = Instant::now();
    v.verify(&bearer(&token_b()))
        .await
        .expect("key b, already cached");
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(issuer.hits(), 2, "the request did not fetch");
    // Dropped: no more rounds (the next was due 1.2 s after the last).
    drop(v);
    tokio::time::sleep(TTL + Duration::from_millis(300)).await;
    assert_eq!(issuer.hits(), 2, "the refresher stopped with the verifier");
}

#[tokio::test]
async fn the_refresher_retries_a_failing_issuer_at_the_min_refresh_pace() {
    let issuer = FakeIssuer::start(set_a()).await;
    issuer.fail(503);
    let v = BearerVerifier::new(&remote_config(format!("{}/keys", issuer.base), 200, 60_000))
        .expect("verifier");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The start and one attempt per 200 ms after it: 5 or 6, not a busy loop.
    let hits = issuer.hits();
    assert!((4..=7).contains(&hits), "{hits} fetches in 1.1 s");
    // The issuer comes back: the keys are there before anyone asks.
    issuer.fail(200);
    wait_generation(&v, 1).await;
    let fetches = issuer.hits();
    verify_claims(&v, &claims()).await.expect("valid");
    assert_eq!(issuer.hits(), fetches);
}

#[tokio::test]
async fn redirects_and_oversized_bodies_are_not_accepted() {
    let issuer = FakeIssuer::start(set_a()).await;
    for path in ["/moved", "/huge"] {
        let v = BearerVerifier::new(&remote_config(
            format!("{}{path}", issuer.base),
            200,
            60_000,
        ))
        .expect("verifier");
        assert_eq!(
            verify_claims(&v, &claims()).await.err(),
            Some(BearerError::KeysUnavailable),
            "{path}"
        );
        assert!(v.jwks_stats().failures >= 1, "{path}");
    }
    assert_eq!(issuer.hits(), 0, "the redirect was not followed");
}
