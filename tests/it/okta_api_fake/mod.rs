//! A fake of Okta's Management API for event hooks and inline hooks over real TLS, for the
//! tests of `hookwarden okta status|sync`: it keeps the hooks as state and behaves as Okta
//! does. Shapes, statuses and errors follow Okta's OpenAPI spec `management-minimal.yaml`,
//! version 2026.06.3 (`EventHook`, `InlineHook`, `RetrieveAllEventHooks`,
//! `InlineHooktMgmtListAllexample`, `Error*`): `authScheme.value` is write-only; responses
//! carry the auth key lower-cased (and inline hooks' `authScheme.type` as `header`); a new
//! `channel` makes an event hook `UNVERIFIED`; only `INACTIVE` hooks can be deleted (else
//! 403, the refusal the spec lists); `verify` and `execute` really call the hook (3 s
//! timeout, one retry). Where the spec is silent: an `authScheme` without its `value` is
//! refused; lists are paginated (`after`, `limit`, `Link` headers) when `page_size` is set.

#![allow(dead_code)]

use crate::util::write_cert;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{request::Parts, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use axum_server::tls_rustls::RustlsConfig;
use reqwest::{Client, RequestBuilder};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `createdBy` of the hooks made through the API: the admin who owns the token.
const CREATED_BY: &str = "00u7xut94qEWYx5ss1e5";
/// `InlineHookType`.
const INLINE_TYPES: &str = "com.okta.import.transform com.okta.oauth2.tokens.transform \
    com.okta.saml.tokens.transform com.okta.telephony.provider \
    com.okta.user.credential.password.import com.okta.user.pre-registration";
/// Names by `usize::from(event)`: inline hooks, event hooks.
const OBJECT: [&str; 2] = ["InlineHook", "EventHook"];
const PATH: [&str; 2] = ["inlineHooks", "eventHooks"];
const DENIED: &str = "You do not have permission to perform the requested action";
const TOO_MANY: &str = "API call exceeded rate limit due to too many requests.";
const MALFORMED: &str = "The request body was not well-formed.";

#[derive(Clone, Debug, Default)]
pub struct FakeSettings {
    /// Requests must carry `Authorization: SSWS <token>`.
    pub token: String,
    /// Lists serve this many hooks a page, with a `rel="next"` link; `None`: all at once.
    pub page_size: Option<usize>,
    /// An extra CA (PEM) trusted for the calls to hooks (verify, execute, deliveries).
    pub hook_ca: Option<Vec<u8>>,
}

/// What a request gets instead of its answer (see [`OktaApiFake::fail_next`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 `E0000047`, `X-Rate-Limit-Remaining: 0`, the reset this many seconds ahead.
    TooMany { reset_in_secs: u64 },
    /// This status with Okta's error body for it (500 `E0000009`, 403 `E0000006`, ...).
    Status(u16),
}

/// Okta's error: a status and its body.
type Error = (StatusCode, Json<Value>);
/// An answer, or Okta's error instead.
type Answer = Result<Response, Error>;
type App = Arc<Mutex<Org>>;
type Sent = Result<reqwest::Response, String>;

/// A hook as Okta returns it (`event`: an event hook, else an inline hook), and its
/// write-only `authScheme.value`, kept apart.
#[derive(Clone)]
struct Stored {
    event: bool,
    json: Value,
    secret: Option<String>,
}

impl Stored {
    /// A call to the hook as Okta makes it: its headers, its auth header, and a JSON body
    /// (POST) or none (GET).
    fn call(&self, client: &Client, body: Option<Bytes>) -> RequestBuilder {
        let config = &self.json["channel"]["config"];
        let uri = config["uri"].as_str().unwrap_or_default();
        let json = ("Content-Type", "application/json");
        let mut r = match body {
            Some(body) => client.post(uri).header(json.0, json.1).body(body),
            None => client.get(uri),
        };
        for h in config["headers"].as_array().into_iter().flatten() {
            if let (Some(k), Some(v)) = (h["key"].as_str(), h["value"].as_str()) {
                r = r.header(k, v);
            }
        }
        match (config["authScheme"]["key"].as_str(), &self.secret) {
            (Some(key), Some(secret)) => r.header(key, secret),
            _ => r,
        }
    }
}

struct Org {
    base: String,
    token: String,
    page_size: Option<usize>,
    /// Okta's outbound client, for the calls to hooks: 3 s timeout.
    client: Client,
    /// In order of creation.
    hooks: Vec<Stored>,
    /// Request number (from the first) -> the fault it gets.
    faults: HashMap<usize, Fault>,
    seen: Vec<(String, String, Instant)>,
    /// The fake's certificate and key.
    _dir: tempfile::TempDir,
}

impl Org {
    fn get(&mut self, event: bool, id: &str) -> Result<&mut Stored, Error> {
        let mut all = self.hooks.iter_mut();
        let hook = all.find(|h| h.event == event && h.json["id"] == id);
        hook.ok_or_else(|| not_found(&format!("{id} ({})", OBJECT[usize::from(event)])))
    }

    fn list(&self, event: bool) -> Vec<Value> {
        let all = self.hooks.iter().filter(|h| h.event == event);
        all.map(|h| h.json.clone()).collect()
    }

    /// Adds a hook made from a create body; a seed keeps the given id, status, timestamps,
    /// and its `secret` if given.
    fn add(&mut self, event: bool, body: &Value, seed: Option<Option<&str>>) -> Value {
        let (channel, from_body) = channel_of(event, &body["channel"]);
        let secret = seed.flatten().map(str::to_owned).or(from_body);
        let seed = seed.is_some();
        // Okta's 20-character ids: `who...` for event hooks, `cal...` for inline hooks.
        let id = format!("{}{}", if event { "who" } else { "cal" }, random(17));
        let now = now_rfc3339();
        let mut hook = if event {
            json!({"id": id, "status": "ACTIVE", "verificationStatus": "UNVERIFIED",
                "name": body["name"], "description": body.get("description").unwrap_or(&Value::Null),
                "created": now, "createdBy": CREATED_BY, "lastUpdated": now,
                "events": events_of(&body["events"]), "channel": channel})
        } else {
            json!({"id": id, "status": "ACTIVE", "name": body["name"], "type": body["type"],
                "version": "1.0.0", "channel": channel, "created": now, "lastUpdated": now})
        };
        if seed && event {
            hook["verificationStatus"] = "VERIFIED".into();
        }
        let kept = "id status verificationStatus created createdBy lastUpdated".split(' ');
        for key in kept.filter(|_| seed) {
            if let Some(v) = body
                .get(key)
                .filter(|v| !v.is_null() && hook.get(key).is_some())
            {
                hook[key] = v.clone();
            }
        }
        set_links(&self.base, event, &mut hook);
        let json = hook.clone();
        self.hooks.push(Stored {
            event,
            json,
            secret,
        });
        hook
    }
}

fn lock(app: &App) -> MutexGuard<'_, Org> {
    app.lock().expect("lock")
}

/// A copy of a hook as it is now, and the client, to call it without holding the lock.
fn hook(app: &App, event: bool, id: &str) -> Result<(Stored, Client), Error> {
    let mut org = lock(app);
    let client = org.client.clone();
    Ok((org.get(event, id)?.clone(), client))
}

/// The fake, serving on 127.0.0.1 until its test's runtime ends.
pub struct OktaApiFake {
    /// `https://127.0.0.1:PORT`
    pub base: String,
    /// The fake's own certificate (PEM), for hookwarden's `[okta] ca_file`.
    pub ca: PathBuf,
    app: App,
}

impl OktaApiFake {
    pub async fn start(settings: FakeSettings) -> OktaApiFake {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tempdir");
        let (ca, key, _) = write_cert(dir.path(), "okta-api");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let timeout = Duration::from_secs(3);
        let mut client = Client::builder().use_rustls_tls().timeout(timeout);
        if let Some(pem) = &settings.hook_ca {
            let hook_ca = reqwest::Certificate::from_pem(pem).expect("hook_ca: PEM");
            client = client.add_root_certificate(hook_ca);
        }
        let base = format!("https://127.0.0.1:{port}");
        let app = Arc::new(Mutex::new(Org {
            base: base.clone(),
            token: settings.token,
            page_size: settings.page_size,
            client: client.build().expect("client"),
            hooks: Vec::new(),
            faults: HashMap::new(),
            seen: Vec::new(),
            _dir: dir,
        }));
        let router = axum::Router::new().fallback(serve).with_state(app.clone());
        let tls = RustlsConfig::from_pem_file(&ca, &key).await.expect("tls");
        let server = axum_server::from_tcp_rustls(listener, tls).expect("server");
        tokio::spawn(server.serve(router.into_make_service()));
        OktaApiFake { base, ca, app }
    }

    /// The `n`-th next request (0: the very next) gets `fault` instead of its answer.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        let mut org = lock(&self.app);
        let at = org.seen.len() + n;
        org.faults.insert(at, fault);
    }

    /// Every request received: (method, path and query, when).
    pub fn seen(&self) -> Vec<(String, String, Instant)> {
        lock(&self.app).seen.clone()
    }

    /// The event hooks as the API returns them, in order of creation.
    pub fn event_hooks(&self) -> Vec<Value> {
        lock(&self.app).list(true)
    }

    /// The inline hooks as the API returns them, in order of creation.
    pub fn inline_hooks(&self) -> Vec<Value> {
        lock(&self.app).list(false)
    }

    /// A hook's write-only `authScheme.value` (event or inline hook).
    pub fn secret_of(&self, id: &str) -> Option<String> {
        let org = lock(&self.app);
        let hook = org.hooks.iter().find(|h| h.json["id"] == id)?;
        hook.secret.clone()
    }

    /// Seeds an event hook made "by someone else", from a create body (its `id`, `status`,
    /// `verificationStatus`, timestamps kept if given; else `ACTIVE`, `VERIFIED`). `secret`,
    /// else its `authScheme.value`, is kept write-only. Returns its id.
    pub fn insert_event_hook(&self, hook: Value, secret: Option<&str>) -> String {
        self.insert(true, hook, secret)
    }

    /// Seeds an inline hook, as [`Self::insert_event_hook`] does.
    pub fn insert_inline_hook(&self, hook: Value, secret: Option<&str>) -> String {
        self.insert(false, hook, secret)
    }

    fn insert(&self, event: bool, hook: Value, secret: Option<&str>) -> String {
        let hook = lock(&self.app).add(event, &hook, Some(secret));
        hook["id"].as_str().unwrap_or_default().to_owned()
    }

    /// Okta delivering events: POSTs `body` to the hook's uri with its headers and secret as
    /// they are now, only to an `ACTIVE`, `VERIFIED` hook (else `Err("not verified")`). One
    /// try; the hook's status code.
    pub async fn call_event_hook(&self, id: &str, body: String) -> Result<u16, String> {
        Ok(self.deliver(true, id, body).await?.status().as_u16())
    }

    /// Okta calling an inline hook, only an `ACTIVE` one (else `Err("not active")`): POSTs
    /// `body` with its headers and secret as they are now. One try; the status and the JSON
    /// answer (`null` if it is not JSON).
    pub async fn call_inline_hook(&self, id: &str, body: String) -> Result<(u16, Value), String> {
        let r = self.deliver(false, id, body).await?;
        let status = r.status().as_u16();
        let bytes = r.bytes().await.map_err(|e| chain(&e))?;
        Ok((status, serde_json::from_slice(&bytes).unwrap_or_default()))
    }

    async fn deliver(&self, event: bool, id: &str, body: String) -> Sent {
        let (hook, client) = hook(&self.app, event, id).map_err(|_| format!("no hook {id}"))?;
        let active = hook.json["status"] == "ACTIVE";
        if event && !(active && hook.json["verificationStatus"] == "VERIFIED") {
            return Err("not verified".into());
        } else if !active {
            return Err("not active".into());
        }
        let sent = hook.call(&client, Some(body.into())).send().await;
        sent.map_err(|e| chain(&e))
    }
}

// --- the API -------------------------------------------------------------------------------

/// Every request: recorded, then its fault if one is due, else its answer.
async fn serve(State(app): State<App>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await;
    let fault = {
        let mut org = lock(&app);
        let n = org.seen.len();
        let target = parts.uri.path_and_query().map_or("", |p| p.as_str());
        let seen = (parts.method.to_string(), target.to_owned(), Instant::now());
        org.seen.push(seen);
        org.faults.remove(&n)
    };
    let response = match fault {
        Some(Fault::TooMany { reset_in_secs }) => {
            let mut r = okta_error(429).into_response();
            rate_limit(&mut r, 0, reset_in_secs);
            return r;
        }
        Some(Fault::Status(code)) => Err(okta_error(code)),
        None => route(&app, &parts, &body.unwrap_or_default()).await,
    };
    let mut response = response.unwrap_or_else(|e| e.into_response());
    rate_limit(&mut response, 99, 60);
    response
}

async fn route(app: &App, request: &Parts, body: &Bytes) -> Answer {
    let (given, expected) = (
        request.headers.get("authorization"),
        lock(app).token.clone(),
    );
    if given.is_none_or(|v| *v != format!("SSWS {expected}")) {
        return Err(okta_error(401));
    }
    let uri = &request.uri;
    let path: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let event = match path[..] {
        ["api", "v1", "eventHooks", ..] => true,
        ["api", "v1", "inlineHooks", ..] => false,
        _ => return Err(not_found(uri.path())),
    };
    let json = || {
        let v: Option<Value> = serde_json::from_slice(body).ok();
        let malformed = || error(400, "E0000003", MALFORMED, &[]);
        v.filter(Value::is_object).ok_or_else(malformed)
    };
    let post = request.method == "POST";
    match (request.method.as_str(), &path[3..]) {
        ("GET", []) => list(app, event, uri.query().unwrap_or_default()),
        ("POST", []) => create(app, event, &json()?),
        ("GET", [id]) => ok(hook(app, event, id)?.0.json),
        ("PUT", [id]) => replace(app, event, id, &json()?),
        ("DELETE", [id]) => delete(app, event, id),
        (_, [id, "lifecycle", "activate"]) if post => set_status(app, event, id, "ACTIVE"),
        (_, [id, "lifecycle", "deactivate"]) if post => set_status(app, event, id, "INACTIVE"),
        (_, [id, "lifecycle", "verify"]) if post && event => verify(app, id).await,
        (_, [id, "execute"]) if post && !event => execute(app, id, body).await,
        _ => Err(not_found(uri.path())),
    }
}

/// A page of hooks in order of creation, after the id `after`; `Link` headers, Okta's way.
fn list(app: &App, event: bool, raw: &str) -> Answer {
    let query = url::form_urlencoded::parse(raw.as_bytes());
    let query: HashMap<String, String> = query.into_owned().collect();
    let q = |k: &str| query.get(k).map(String::as_str);
    let org = lock(app);
    let wanted = q("type").filter(|_| !event);
    let mut hooks = org.list(event);
    hooks.retain(|h| wanted.is_none_or(|t| h["type"] == t));
    let position = |a| hooks.iter().position(|h| h["id"] == a);
    let start = q("after").map_or(0, |a| position(a).map_or(hooks.len(), |i| i + 1));
    let limit: Option<usize> = q("limit").and_then(|l| l.parse().ok());
    let size = [limit, org.page_size].into_iter().flatten().min();
    let size = size.unwrap_or(usize::MAX).max(1);
    let more = hooks.len() - start > size;
    let page: Vec<Value> = hooks.drain(start..).take(size).collect();
    let path = format!("{}/api/v1/{}", org.base, PATH[usize::from(event)]);
    let link = |query: &str, rel: &str| {
        let sep = if query.is_empty() { "" } else { "?" };
        HeaderValue::from_str(&format!("<{path}{sep}{query}>; rel=\"{rel}\"")).expect("link")
    };
    let last = page
        .last()
        .and_then(|h| h["id"].as_str())
        .unwrap_or_default();
    let wanted = wanted.map(|t| format!("type={t}&")).unwrap_or_default();
    let next = link(&format!("{wanted}after={last}&limit={size}"), "next");
    let mut r = Json(&page).into_response();
    r.headers_mut().append("link", link(raw, "self"));
    if more {
        r.headers_mut().append("link", next);
    }
    Ok(r)
}

fn create(app: &App, event: bool, body: &Value) -> Answer {
    validate(event, body, None)?;
    ok(lock(app).add(event, body, None))
}

fn replace(app: &App, event: bool, id: &str, body: &Value) -> Answer {
    let mut org = lock(app);
    let hook = org.get(event, id)?;
    validate(event, body, Some(&hook.json))?;
    let (channel, secret) = channel_of(event, &body["channel"]);
    if event {
        // "Updating the `channel` property requires you to verify the hook again."
        if channel != hook.json["channel"] || secret != hook.secret {
            hook.json["verificationStatus"] = "UNVERIFIED".into();
        }
        hook.json["description"] = body.get("description").cloned().unwrap_or_default();
        hook.json["events"] = events_of(&body["events"]);
    }
    hook.json["name"] = body["name"].clone();
    hook.json["channel"] = channel;
    hook.json["lastUpdated"] = now_rfc3339().into();
    hook.secret = secret;
    ok(hook.json.clone())
}

fn delete(app: &App, event: bool, id: &str) -> Answer {
    let mut org = lock(app);
    if org.get(event, id)?.json["status"] != "INACTIVE" {
        let object = OBJECT[usize::from(event)];
        let why = format!("Only an INACTIVE {object} can be deleted: deactivate it first");
        return Err(error(403, "E0000006", DENIED, &[why]));
    }
    org.hooks.retain(|h| h.event != event || h.json["id"] != id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn set_status(app: &App, event: bool, id: &str, status: &str) -> Answer {
    let mut org = lock(app);
    let base = org.base.clone();
    let hook = org.get(event, id)?;
    hook.json["status"] = status.into();
    hook.json["lastUpdated"] = now_rfc3339().into();
    set_links(&base, event, &mut hook.json);
    ok(hook.json.clone())
}

/// Okta's one-time verification: `GET <uri>` with `X-Okta-Verification-Challenge`; the
/// endpoint must answer 200 `{"verification": "<the challenge>"}`.
async fn verify(app: &App, id: &str) -> Answer {
    let (before, client) = hook(app, true, id)?;
    let challenge = random(32);
    let call = || {
        before
            .call(&client, None)
            .header("X-Okta-Verification-Challenge", &challenge)
    };
    let mut why = match send_twice(call).await {
        Ok((200, body)) => match serde_json::from_slice::<Value>(&body) {
            Ok(v) if v["verification"] == challenge.as_str() => None,
            _ => Some("the answer did not carry the verification challenge".to_owned()),
        },
        Ok((status, _)) => Some(format!("the endpoint answered {status}")),
        Err(why) => Some(why),
    };
    let mut org = lock(app);
    let hook = org.get(true, id)?;
    if hook.json["channel"] != before.json["channel"] || hook.secret != before.secret {
        why = why.or(Some("the channel changed during the verification".into()));
    }
    if let Some(why) = why {
        let cause = format!("Failed to verify event hook: {why}");
        let summary = "Api validation failed: Verification failed";
        return Err(error(400, "E0000001", summary, &[cause]));
    }
    hook.json["verificationStatus"] = "VERIFIED".into();
    hook.json["lastUpdated"] = now_rfc3339().into();
    ok(hook.json.clone())
}

/// Calls the inline hook with the request's body, as Okta would; its answer is the answer.
async fn execute(app: &App, id: &str, body: &Bytes) -> Answer {
    if serde_json::from_slice::<Value>(body).is_err() {
        return Err(error(400, "E0000003", MALFORMED, &[]));
    }
    let (hook, client) = hook(app, false, id)?;
    let why = match send_twice(|| hook.call(&client, Some(body.clone()))).await {
        Ok((204, _)) => return ok(json!({})),
        Ok((200, answer)) => match serde_json::from_slice::<Value>(&answer) {
            Ok(v) => return ok(v),
            Err(_) => "the answer is not JSON".to_owned(),
        },
        Ok((status, _)) => format!("the endpoint answered {status}"),
        Err(why) => why,
    };
    let cause = format!("Failed to execute inline hook: {why}");
    let summary = "Api validation failed: Execution failed";
    Err(error(400, "E0000001", summary, &[cause]))
}

// --- the hooks' shapes ---------------------------------------------------------------------

/// A create or replace body: Okta's 400 `E0000001`, an `errorCauses` entry a problem.
fn validate(event: bool, body: &Value, old: Option<&Value>) -> Result<(), Error> {
    const BLANK: &str = "The field cannot be left blank";
    let (channel, events) = (&body["channel"], &body["events"]);
    let (uri, auth) = (&channel["config"]["uri"], &channel["config"]["authScheme"]);
    let blank = |v: &Value| v.as_str().is_none_or(|s| s.trim().is_empty());
    let mut causes = Vec::new();
    let mut need = |ok: bool, field: &str, why: &str| {
        if !ok {
            causes.push(format!("{field}: {why}"));
        }
    };
    need(!blank(&body["name"]), "name", BLANK);
    need(channel["type"] == "HTTP", "channel.type", "Must be HTTP");
    let uri = uri.as_str().unwrap_or_default();
    let https = uri.starts_with("https://") && !uri.contains(char::is_whitespace);
    need(https, "channel.config.uri", "Must begin with https://");
    if auth.is_object() {
        let header = auth["type"].as_str().unwrap_or_default();
        let (key, value) = (blank(&auth["key"]), blank(&auth["value"]));
        let header = header.eq_ignore_ascii_case("HEADER");
        need(header, "channel.config.authScheme.type", "Must be HEADER");
        need(!key, "channel.config.authScheme.key", BLANK);
        need(!value, "channel.config.authScheme.value", BLANK);
    }
    if event {
        let items = events["items"].as_array().map_or(&[][..], Vec::as_slice);
        let named = !items.is_empty() && items.iter().all(Value::is_string);
        let typed = events["type"] == "EVENT_TYPE";
        need(typed, "events.type", "Must be EVENT_TYPE");
        need(named, "events.items", "Must name at least one event type");
    } else if let Some(old) = old {
        let same = body["type"].is_null() || body["type"] == old["type"];
        need(same, "type", "The type of an inline hook cannot be changed");
    } else {
        let known = INLINE_TYPES.split_whitespace().any(|t| body["type"] == t);
        need(known, "type", "Not a supported inline hook type");
    }
    if causes.is_empty() {
        return Ok(());
    }
    let summary = format!("Api validation failed: {}", OBJECT[usize::from(event)]);
    Err(error(400, "E0000001", &summary, &causes))
}

/// The channel as Okta returns it, and the write-only secret taken out of it.
fn channel_of(event: bool, channel: &Value) -> (Value, Option<String>) {
    let (config, auth) = (&channel["config"], &channel["config"]["authScheme"]);
    let key = auth["key"].as_str().map(str::to_ascii_lowercase);
    let scheme = match auth.is_object() {
        true => json!({"type": if event { "HEADER" } else { "header" }, "key": key}),
        false => Value::Null,
    };
    let mut out = json!({"uri": config["uri"], "method": "POST", "authScheme": scheme});
    match config.get("headers") {
        Some(h @ Value::Array(_)) => out["headers"] = h.clone(),
        _ if !event => out["headers"] = json!([]),
        _ => {}
    }
    let version = channel.get("version").cloned().unwrap_or("1.0.0".into());
    let secret = auth["value"].as_str().map(str::to_owned);
    let channel = json!({"type": "HTTP", "version": version, "config": out});
    (channel, secret)
}

/// `events` as Okta returns it: `filter` null, or typed `EXPRESSION_LANGUAGE` with each
/// condition's read-only `version` (null).
fn events_of(events: &Value) -> Value {
    let mut filter = events.get("filter").cloned().unwrap_or_default();
    if filter.is_object() {
        filter["type"] = "EXPRESSION_LANGUAGE".into();
        let map = filter
            .get_mut("eventFilterMap")
            .and_then(Value::as_array_mut);
        for entry in map.into_iter().flatten() {
            if entry["condition"].is_object() {
                entry["condition"]["version"] = Value::Null;
            }
        }
    }
    json!({"type": events["type"], "items": events["items"], "filter": filter})
}

fn set_links(base: &str, event: bool, hook: &mut Value) {
    let id = hook["id"].as_str().unwrap_or_default();
    let href = format!("{base}/api/v1/{}/{id}", PATH[usize::from(event)]);
    let post = |h: String| json!({"href": h, "hints": {"allow": ["POST"]}});
    let mut links = json!({"self": {"href": href}});
    match event {
        true => links["verify"] = post(format!("{href}/lifecycle/verify")),
        false => links["execute"] = post(format!("{href}/execute")),
    }
    if hook["status"] == "ACTIVE" {
        links["deactivate"] = post(format!("{href}/lifecycle/deactivate"));
    } else {
        links["activate"] = post(format!("{href}/lifecycle/activate"));
        links["delete"] = json!({"href": href, "hints": {"allow": ["DELETE"]}});
    }
    hook["_links"] = links;
}

// --- calls to hooks, errors, small things ---------------------------------------------------

/// As Okta calls hooks: one retry after a timeout or an error answer. `Ok`: a 2xx status
/// and the body; `Err`: what went wrong the second time.
async fn send_twice(call: impl Fn() -> RequestBuilder) -> Result<(u16, Bytes), String> {
    let mut why = String::new();
    for _ in 0..2 {
        match call().send().await {
            Ok(r) if r.status().is_success() => {
                let status = r.status().as_u16();
                return r.bytes().await.map(|b| (status, b)).map_err(|e| chain(&e));
            }
            Ok(r) => why = format!("the endpoint answered {}", r.status().as_u16()),
            Err(e) if e.is_timeout() => why = "the endpoint did not answer within 3 s".into(),
            Err(e) => why = format!("the call failed: {}", chain(&e)),
        }
    }
    Err(why)
}

/// An error and its sources, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let source = e.source().map(|s| format!(": {}", chain(s)));
    format!("{e}{}", source.unwrap_or_default())
}

fn ok(json: Value) -> Answer {
    Ok(Json(json).into_response())
}

/// Okta's error body.
fn error(status: u16, code: &str, summary: &str, causes: &[String]) -> Error {
    let causes: Vec<Value> = causes.iter().map(|c| json!({"errorSummary": c})).collect();
    let body = json!({"errorCode": code, "errorSummary": summary, "errorLink": code,
        "errorId": format!("oae{}", random(22)), "errorCauses": causes});
    (StatusCode::from_u16(status).expect("status"), Json(body))
}

/// Okta's error for a status, as the spec's `Error*` examples give it.
fn okta_error(status: u16) -> Error {
    let (code, summary) = match status {
        400 => ("E0000001", "Api validation failed"),
        401 => ("E0000011", "Invalid token provided"),
        403 => ("E0000006", DENIED),
        404 => ("E0000007", "Not found: Resource not found"),
        429 => ("E0000047", TOO_MANY),
        _ => ("E0000009", "Internal Server Error"),
    };
    error(status, code, summary, &[])
}

fn not_found(what: &str) -> Error {
    let summary = format!("Not found: Resource not found: {what}");
    error(404, "E0000007", &summary, &[])
}

/// Okta's rate-limit headers: a limit of 100, and the reset this many seconds ahead.
fn rate_limit(r: &mut Response, remaining: u64, reset_in_secs: u64) {
    let h = r.headers_mut();
    h.insert("x-rate-limit-limit", HeaderValue::from(100u64));
    h.insert("x-rate-limit-remaining", HeaderValue::from(remaining));
    h.insert(
        "x-rate-limit-reset",
        HeaderValue::from(now() + reset_in_secs),
    );
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

fn random(n: usize) -> String {
    (0..n).map(|_| fastrand::alphanumeric()).collect()
}

#[cfg(test)]
mod tests;
