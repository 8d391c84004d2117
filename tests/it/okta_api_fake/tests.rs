//! The fake's own tests: it behaves as the API does, and never returns a secret.

use super::*;

const TOKEN: &str = "00okta-api-fake-test-token";
const HOOKS: &str = "/api/v1/eventHooks";
const INLINE_HOOKS: &str = "/api/v1/inlineHooks";
/// A receiver's expected `authorization` value, and the (method, auth) of each call.
type Rx = (Arc<Mutex<String>>, Arc<Mutex<Vec<(String, String)>>>);
/// Status, headers and JSON body of an API response.
type Answered = (u16, HeaderMap, Value);

/// A hook over TLS: given the expected `authorization`, it answers Okta's challenge and
/// echoes POSTs as `{"echo": ...}`, else 401. Its uri, CA, state.
async fn receiver(expect: &str) -> (String, Vec<u8>, Rx, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key, ca) = write_cert(dir.path(), "hook");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let uri = format!("https://{}/hook", listener.local_addr().expect("addr"));
    let rx: Rx = (Arc::new(Mutex::new(expect.to_owned())), Arc::default());
    let app = axum::Router::new().route("/hook", axum::routing::any(answer));
    let app = app.with_state(rx.clone()).into_make_service();
    let tls = RustlsConfig::from_pem_file(&cert, &key).await.expect("tls");
    let server = axum_server::from_tcp_rustls(listener, tls).expect("server");
    tokio::spawn(server.serve(app));
    (uri, ca, rx, dir)
}

async fn answer(State((expect, calls)): State<Rx>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let auth = header("authorization").unwrap_or_default().to_owned();
    let call = (parts.method.to_string(), auth.clone());
    calls.lock().expect("lock").push(call);
    if auth != *expect.lock().expect("lock") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if let Some(challenge) = header("x-okta-verification-challenge") {
        return Json(json!({ "verification": challenge })).into_response();
    }
    let body = axum::body::to_bytes(body, 1 << 20).await;
    let echo: Value = serde_json::from_slice(&body.unwrap_or_default()).unwrap_or_default();
    Json(json!({ "commands": [], "echo": echo })).into_response()
}

/// The fake, a client of its API, and every response body that client read.
struct Api(OktaApiFake, Client, Mutex<Vec<String>>);

impl Api {
    async fn start(page_size: Option<usize>, hook_ca: Option<Vec<u8>>) -> Api {
        let token = TOKEN.to_owned();
        let settings = FakeSettings {
            token,
            page_size,
            hook_ca,
        };
        let fake = OktaApiFake::start(settings).await;
        let pem = std::fs::read(&fake.ca).expect("ca");
        let ca = reqwest::Certificate::from_pem(&pem).expect("pem");
        let client = Client::builder().use_rustls_tls().add_root_certificate(ca);
        Api(fake, client.build().expect("client"), Mutex::default())
    }

    /// A call on the fake (`path`, or a whole URL) with this token.
    async fn call(&self, token: &str, method: &str, path: &str, body: Value) -> Answered {
        let base = if path.starts_with('/') {
            &*self.0.base
        } else {
            ""
        };
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let auth = format!("SSWS {token}");
        let r = self.1.request(method, format!("{base}{path}"));
        let r = r.header("Authorization", auth);
        let r = if body.is_null() { r } else { r.json(&body) };
        let r = r.send().await.expect("request");
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        let text = r.text().await.expect("body");
        self.2.lock().expect("lock").push(text.clone());
        let body = serde_json::from_str(&text).unwrap_or_default();
        (status, headers, body)
    }

    async fn get(&self, path: &str) -> Answered {
        self.call(TOKEN, "GET", path, Value::Null).await
    }

    async fn post(&self, path: &str, body: Value) -> Answered {
        self.call(TOKEN, "POST", path, body).await
    }

    async fn put(&self, path: &str, body: Value) -> Answered {
        self.call(TOKEN, "PUT", path, body).await
    }

    /// Neither a response nor a stored hook shows the secret.
    fn never_shows(&self, secret: &str) {
        let bodies = self.2.lock().expect("lock").join("\n");
        let hooks = json!([self.0.event_hooks(), self.0.inline_hooks()]).to_string();
        assert!(!bodies.contains(secret), "{secret} in a response");
        assert!(!hooks.contains(secret), "{secret} in a stored hook");
    }
}

fn event_hook(name: &str, uri: &str, secret: &str) -> Value {
    json!({"name": name, "events": {"type": "EVENT_TYPE", "items": ["user.session.start"]},
        "channel": {"type": "HTTP", "version": "1.0.0", "config": {"uri": uri,
            "headers": [{"key": "X-Other-Header", "value": "my-header-value"}],
            "authScheme": {"type": "HEADER", "key": "Authorization", "value": secret}}}})
}

fn ids(page: &Value) -> Vec<&str> {
    let hooks = page.as_array().into_iter().flatten();
    hooks.filter_map(|h| h["id"].as_str()).collect()
}

/// An error's code and its causes' summaries.
fn causes(error: &Value) -> (&str, Vec<&str>) {
    let causes = error["errorCauses"].as_array().into_iter().flatten();
    let causes = causes.filter_map(|c| c["errorSummary"].as_str()).collect();
    (error["errorCode"].as_str().unwrap_or_default(), causes)
}

#[tokio::test]
async fn event_hooks_page_and_are_verified_again_after_a_new_secret() {
    let (uri, ca, (expect, calls), _dir) = receiver("secret-1").await;
    let api = Api::start(Some(2), Some(ca)).await;
    let mut made = Vec::new();
    for n in 0..3 {
        let body = event_hook(&n.to_string(), &uri, "secret-1");
        let (_, _, hook) = api.post(HOOKS, body).await;
        assert_eq!(hook["verificationStatus"], "UNVERIFIED", "{hook}");
        let auth = &hook["channel"]["config"]["authScheme"];
        assert_eq!(*auth, json!({"type": "HEADER", "key": "authorization"}));
        made.push(hook["id"].as_str().expect("id").to_owned());
    }
    let (_, headers, page) = api.get(HOOKS).await;
    assert_eq!(ids(&page), [&made[0], &made[1]]);
    let links: Vec<_> = headers.get_all("link").iter().collect();
    let next = format!("{}{HOOKS}?after={}&limit=2", api.0.base, made[1]);
    assert_eq!(links[0], &format!("<{}{HOOKS}>; rel=\"self\"", api.0.base));
    assert_eq!(links[1], &format!("<{next}>; rel=\"next\""));
    let (_, headers, page) = api.get(&next).await;
    assert_eq!(ids(&page), [&made[2]]);
    assert_eq!(headers.get_all("link").iter().count(), 1, "no next page");

    let (id, hook) = (&made[0], format!("{HOOKS}/{}", made[0]));
    let verify = format!("{hook}/lifecycle/verify");
    let (_, _, v) = api.post(&verify, Value::Null).await;
    assert_eq!(v["verificationStatus"], "VERIFIED");
    let (renamed, rotated) = (
        event_hook("b", &uri, "secret-1"),
        event_hook("b", &uri, "secret-2"),
    );
    let (_, _, v) = api.put(&hook, renamed).await;
    assert_eq!(v["verificationStatus"], "VERIFIED", "the same channel");
    let (_, _, v) = api.put(&hook, rotated).await;
    assert_eq!(v["verificationStatus"], "UNVERIFIED", "a new secret");
    assert_eq!(api.0.secret_of(id).as_deref(), Some("secret-2"));
    let delivered = api.0.call_event_hook(id, "{}".into()).await;
    assert_eq!(delivered, Err("not verified".into()));
    *expect.lock().expect("lock") = "secret-2".into();
    let (_, _, v) = api.post(&verify, Value::Null).await;
    assert_eq!(v["verificationStatus"], "VERIFIED");
    assert_eq!(api.0.call_event_hook(id, "{}".into()).await, Ok(200));
    let last = calls.lock().expect("lock").last().cloned();
    assert_eq!(last, Some(("POST".into(), "secret-2".into())));
    api.never_shows("secret-1");
    api.never_shows("secret-2");
}

#[tokio::test]
async fn a_failed_verification_and_a_bad_hook_are_400_with_their_causes() {
    let (uri, ca, (_, calls), _dir) = receiver("right").await;
    let api = Api::start(None, Some(ca)).await;
    let (_, _, hook) = api.post(HOOKS, event_hook("h", &uri, "wrong")).await;
    let verify = format!(
        "{HOOKS}/{}/lifecycle/verify",
        hook["id"].as_str().expect("id")
    );
    let (status, _, e) = api.post(&verify, Value::Null).await;
    let why = "Failed to verify event hook: the endpoint answered 401";
    assert_eq!((status, causes(&e)), (400, ("E0000001", vec![why])));
    assert_eq!(
        e["errorSummary"],
        "Api validation failed: Verification failed"
    );
    assert_eq!(calls.lock().expect("lock").len(), 2, "one retry");
    assert_eq!(api.0.event_hooks()[0]["verificationStatus"], "UNVERIFIED");
    let mut bad = event_hook(" ", "http://hooks.example/okta", "wrong");
    bad["events"]["items"] = json!([]);
    let (status, _, e) = api.post(HOOKS, bad).await;
    let (code, causes) = causes(&e);
    let fields: Vec<_> = causes.iter().filter_map(|c| c.split(':').next()).collect();
    assert_eq!((status, code), (400, "E0000001"));
    assert_eq!(fields, ["name", "channel.config.uri", "events.items"]);
    api.never_shows("wrong");
}

#[tokio::test]
async fn faults_rate_limits_a_wrong_token_and_deletes() {
    let api = Api::start(None, None).await;
    api.0.fail_next(0, Fault::TooMany { reset_in_secs: 30 });
    api.0.fail_next(2, Fault::Status(500));
    let (status, h, e) = api.get(HOOKS).await;
    assert_eq!((status, causes(&e)), (429, ("E0000047", vec![])));
    assert_eq!(e["errorSummary"], TOO_MANY);
    assert_eq!(h["x-rate-limit-limit"], "100");
    assert_eq!(h["x-rate-limit-remaining"], "0");
    let reset = h["x-rate-limit-reset"].to_str().map(str::parse::<u64>);
    let reset = reset.expect("ascii").expect("u64");
    assert!((now() + 28..=now() + 30).contains(&reset), "{reset}");
    let (status, h, page) = api.get(HOOKS).await;
    assert_eq!((status, page), (200, json!([])));
    assert_eq!(h["x-rate-limit-remaining"], "99");
    let (status, _, e) = api.get(HOOKS).await;
    assert_eq!((status, causes(&e)), (500, ("E0000009", vec![])));
    let (status, _, e) = api.call("wrong", "GET", HOOKS, Value::Null).await;
    assert_eq!((status, causes(&e)), (401, ("E0000011", vec![])));
    assert_eq!(e["errorSummary"], "Invalid token provided");
    let seen = api.0.seen();
    assert!(seen.iter().all(|(m, p, _)| m == "GET" && p == HOOKS));

    let theirs = event_hook("theirs", "https://hooks.example/okta", "their-secret");
    let id = api.0.insert_event_hook(theirs, None);
    assert_eq!(api.0.secret_of(&id).as_deref(), Some("their-secret"));
    let hook = format!("{HOOKS}/{id}");
    let (status, _, e) = api.call(TOKEN, "DELETE", &hook, Value::Null).await;
    let why = "Only an INACTIVE EventHook can be deleted: deactivate it first";
    assert_eq!((status, causes(&e)), (403, ("E0000006", vec![why])));
    let deactivate = format!("{hook}/lifecycle/deactivate");
    let (_, _, v) = api.post(&deactivate, Value::Null).await;
    assert_eq!(v["status"], "INACTIVE");
    assert_eq!(v["verificationStatus"], "VERIFIED");
    let (status, _, _) = api.call(TOKEN, "DELETE", &hook, Value::Null).await;
    assert_eq!(status, 204);
    let (status, _, e) = api.get(&hook).await;
    let summary = format!("Not found: Resource not found: {id} (EventHook)");
    assert_eq!((status, e["errorSummary"].as_str()), (404, Some(&*summary)));
    api.never_shows("their-secret");
}

#[tokio::test]
async fn inline_hooks_are_made_filtered_executed_and_called() {
    let (uri, ca, (expect, _), _dir) = receiver("inline-1").await;
    let api = Api::start(None, Some(ca)).await;
    let hook = |kind: &str, secret: &str| {
        let auth = json!({"type": "HEADER", "key": "Authorization", "value": secret});
        let config = json!({"uri": uri, "method": "POST", "authScheme": auth});
        let channel = json!({"type": "HTTP", "version": "1.0.0", "config": config});
        json!({"name": "a hook", "type": kind, "channel": channel})
    };
    let token = "com.okta.oauth2.tokens.transform";
    let other = "com.okta.user.pre-registration";
    let (_, _, made) = api.post(INLINE_HOOKS, hook(token, "inline-1")).await;
    let auth = &made["channel"]["config"]["authScheme"];
    assert_eq!(*auth, json!({"type": "header", "key": "authorization"}));
    api.post(INLINE_HOOKS, hook(other, "inline-2")).await;
    let id = made["id"].as_str().expect("id");
    let (_, _, tokens) = api.get(&format!("{INLINE_HOOKS}?type={token}")).await;
    assert_eq!(ids(&tokens), [id]);
    let path = format!("{INLINE_HOOKS}/{id}");
    let (_, _, e) = api.put(&path, hook(other, "inline-1")).await;
    let why = "type: The type of an inline hook cannot be changed";
    assert_eq!(causes(&e), ("E0000001", vec![why]));
    let request = json!({"eventType": token, "data": {"context": {}}});
    let execute = format!("{path}/execute");
    let (status, _, answer) = api.post(&execute, request.clone()).await;
    assert_eq!((status, &answer["echo"]), (200, &request));
    api.put(&path, hook(token, "inline-3")).await;
    let (status, _, e) = api.post(&execute, request.clone()).await;
    let why = "Failed to execute inline hook: the endpoint answered 401";
    assert_eq!((status, causes(&e)), (400, ("E0000001", vec![why])));
    let called = api.0.call_inline_hook(id, "{}".into()).await;
    assert_eq!(called, Ok((401, Value::Null)));
    *expect.lock().expect("lock") = "inline-3".into();
    let called = api.0.call_inline_hook(id, request.to_string()).await;
    let echoed = called.map(|(status, answer)| (status, answer["echo"].clone()));
    assert_eq!(echoed, Ok((200, request)));
    api.post(&format!("{path}/lifecycle/deactivate"), Value::Null)
        .await;
    let called = api.0.call_inline_hook(id, "{}".into()).await;
    assert_eq!(called, Err("not active".into()));
    for secret in ["inline-1", "inline-2", "inline-3"] {
        api.never_shows(secret);
    }
}
