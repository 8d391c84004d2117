//! The admin page on the admin listener (`/ui`): a read-only view of every hook's recent
//! requests, the backlog and dead letters, and the counters, with one action: replaying
//! dead letters.
//!
//! Server-rendered HTML with no JavaScript at all (forms do the posting), so it needs no
//! build step and works in any browser, curl included. Everything shown that came from
//! outside (hook names, event types, outcomes, uuids, sink errors) goes through maud's
//! escaping. Nothing secret is shown: sinks by name and type only, no auth settings.
//!
//! | route | does |
//! |---|---|
//! | `GET /ui` | the page (401 with the login form when not signed in; 404 when `admin.token` is unset) |
//! | `POST /ui/login` | form field `token`: sets the session cookie, 303 to `/ui` |
//! | `POST /ui/logout` | clears the cookie, 303 to `/ui` |
//! | `POST /ui/replay` | fields `hook`, `uuid` (one event) or none (every dead letter of the hook), and `csrf` with a cookie session |
//!
//! Authentication is in [`session`]; the markup in [`view`].

pub mod session;
pub mod view;

use super::state::AdminState;
use crate::store::{EventQuery, EventState, ReplayTarget};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use session::{Denied, Sessions};
use std::collections::HashMap;
use std::sync::Arc;

/// Requests shown per hook.
const RECENT: usize = 50;
/// Dead letters shown per hook (newest first).
const DEAD_SHOWN: usize = 50;
/// Largest form body accepted (a token, a hook name and a uuid).
const FORM_LIMIT: usize = 16 * 1024;

/// The page's routes, merged into the admin router.
pub fn routes() -> Router<Arc<AdminState>> {
    Router::new()
        .route("/ui", get(page))
        .route("/ui/login", post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/replay", post(replay))
        .layer(Extension(Arc::new(Sessions::new())))
}

/// Adds the headers every answer of the page carries: not cached, not framed (the replay
/// button must not be clickable through someone else's page), no scripts, no referrer.
fn html(status: StatusCode, markup: maud::Markup) -> Response {
    let mut res = (status, markup).into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

fn denied(d: Denied, message: Option<&str>) -> Response {
    match d {
        Denied::Off => html(StatusCode::NOT_FOUND, view::off()),
        Denied::Unauthorized => html(StatusCode::UNAUTHORIZED, view::login(message)),
    }
}

fn see_other(location: &str, cookie: Option<String>) -> Response {
    let mut res = html(StatusCode::SEE_OTHER, maud::html! {});
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        res.headers_mut().insert(header::SET_COOKIE, c);
    }
    res
}

/// Reads an `application/x-www-form-urlencoded` body into its fields (first value wins).
async fn form(body: Body) -> Result<HashMap<String, String>, Response> {
    let bytes = axum::body::to_bytes(body, FORM_LIMIT).await.map_err(|_| {
        html(
            StatusCode::PAYLOAD_TOO_LARGE,
            view::message(
                "Form too large",
                "The form was larger than a form of this page can be.",
            ),
        )
    })?;
    let mut fields = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(&bytes) {
        fields
            .entry(k.into_owned())
            .or_insert_with(|| v.into_owned());
    }
    Ok(fields)
}

/// The page itself.
async fn page(
    State(s): State<Arc<AdminState>>,
    Extension(sessions): Extension<Arc<Sessions>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let access = match sessions.check(s.config.load_full().admin.token.as_ref(), &headers) {
        Ok(a) => a,
        Err(d) => return denied(d, None),
    };
    let replayed = uri.query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "replayed")
            .and_then(|(_, v)| v.parse::<u64>().ok())
    });
    let data = gather(&s).await;
    html(StatusCode::OK, view::main(&data, &access, replayed))
}

/// Everything the page shows, read once per request.
pub struct PageData {
    pub stats: Result<crate::store::StoreStats, crate::store::StoreError>,
    pub event_hooks: Vec<EventHookView>,
    pub inline_hooks: Vec<InlineHookView>,
    /// `(metric, labels, value)` of the counters, as `/metrics` has them.
    pub counters: Vec<(String, String, String)>,
}

pub struct EventHookView {
    pub name: String,
    pub path: String,
    /// `(name, type)`: never a sink's URL, path or headers.
    pub sinks: Vec<(String, &'static str)>,
    pub recent: Vec<crate::activity::Entry>,
    pub dead: Result<Vec<crate::store::EventSummary>, crate::store::StoreError>,
}

pub struct InlineHookView {
    pub name: String,
    pub path: String,
    pub hook_type: &'static str,
    pub recent: Vec<crate::activity::Entry>,
}

async fn gather(s: &AdminState) -> PageData {
    let stats = s.store.stats().await;
    let mut event_hooks = Vec::new();
    let config = s.config.load_full();
    for h in &config.event_hooks {
        let dead = s
            .store
            .list(&EventQuery {
                hook: Some(h.name.clone()),
                state: Some(EventState::Dead),
                limit: DEAD_SHOWN,
                ..EventQuery::default()
            })
            .await;
        event_hooks.push(EventHookView {
            name: h.name.clone(),
            path: h.path.clone(),
            sinks: h
                .sinks
                .iter()
                .map(|k| (k.name.clone(), k.kind.type_name()))
                .collect(),
            recent: s.activity.recent(&h.name, RECENT),
            dead,
        });
    }
    let inline_hooks = config
        .inline_hooks
        .iter()
        .map(|h| InlineHookView {
            name: h.name.clone(),
            path: h.path.clone(),
            hook_type: h.hook_type.name(),
            recent: s.activity.recent(&h.name, RECENT),
        })
        .collect();
    PageData {
        stats,
        event_hooks,
        inline_hooks,
        counters: counters(&s.metrics.render()),
    }
}

/// The counters an admin looks at, read from the OpenMetrics text (the registry has no
/// typed iteration over a family's label sets). Those still at zero are left out: every
/// configured hook's and sink's series exist from the start, most of them at zero.
fn counters(text: &str) -> Vec<(String, String, String)> {
    const SHOWN: [&str; 9] = [
        "hookwarden_requests_total",
        "hookwarden_rejections_total",
        "hookwarden_events_stored_total",
        "hookwarden_duplicate_events_total",
        "hookwarden_sink_deliveries_total",
        "hookwarden_sink_failures_total",
        "hookwarden_sink_retries_total",
        "hookwarden_dead_letters_total",
        "hookwarden_inline_calls_total",
    ];
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.strip_suffix('}').unwrap_or(rest)),
                None => (series, ""),
            };
            (SHOWN.contains(&name) && value != "0")
                .then(|| (name.to_owned(), labels.to_owned(), value.to_owned()))
        })
        .collect()
}

async fn login(
    State(s): State<Arc<AdminState>>,
    Extension(sessions): Extension<Arc<Sessions>>,
    req: Request,
) -> Response {
    let fields = match form(req.into_body()).await {
        Ok(f) => f,
        Err(res) => return res,
    };
    let presented = fields.get("token").map(String::as_str).unwrap_or("");
    match sessions.login(s.config.load_full().admin.token.as_ref(), presented) {
        Ok(cookie) => {
            tracing::info!("admin page: signed in");
            see_other("/ui", Some(cookie))
        }
        Err(d) => {
            tracing::info!("admin page: sign-in refused");
            denied(d, Some("That token was not accepted."))
        }
    }
}

async fn logout() -> Response {
    see_other("/ui", Some(session::logout_cookie()))
}

async fn replay(
    State(s): State<Arc<AdminState>>,
    Extension(sessions): Extension<Arc<Sessions>>,
    req: Request,
) -> Response {
    let access = match sessions.check(s.config.load_full().admin.token.as_ref(), req.headers()) {
        Ok(a) => a,
        Err(d) => return denied(d, None),
    };
    let fields = match form(req.into_body()).await {
        Ok(f) => f,
        Err(res) => return res,
    };
    if !session::csrf_ok(&access, fields.get("csrf").map(String::as_str)) {
        return html(
            StatusCode::FORBIDDEN,
            view::message(
                "Form expired",
                "This form is not from your current session. Reload the page and try again.",
            ),
        );
    }
    let hook = fields.get("hook").map(String::as_str).unwrap_or("");
    if !s
        .config
        .load_full()
        .event_hooks
        .iter()
        .any(|h| h.name == hook)
    {
        return html(
            StatusCode::BAD_REQUEST,
            view::message(
                "No such hook",
                "Replay needs the name of a configured event hook.",
            ),
        );
    }
    let target = match fields.get("uuid").filter(|u| !u.is_empty()) {
        Some(uuid) => ReplayTarget::Event {
            uuid: uuid.clone(),
            hook: Some(hook.to_owned()),
        },
        None => ReplayTarget::AllDead {
            hook: Some(hook.to_owned()),
        },
    };
    match s.store.replay(&target).await {
        Ok(n) => {
            tracing::info!(hook, jobs = n, target = ?target, "admin page: replay");
            // The workers poll the store on their own interval and pick these up.
            see_other(&format!("/ui?replayed={n}"), None)
        }
        Err(e) => html(
            StatusCode::SERVICE_UNAVAILABLE,
            view::message("Replay failed", &format!("The store refused: {e}")),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::counters;

    #[test]
    fn an_unreadable_admin_token_is_a_config_problem_by_key() {
        let text = "[admin]\ntoken = { env = \"HOOKWARDEN_TEST_UNSET_ADMIN_TOKEN\" }\n";
        let err = crate::config::Config::from_toml_str(text)
            .expect_err("an unset variable must not turn the page off silently");
        assert!(
            err.0.iter().any(|p| p.key == "admin.token"
                && p.message.contains("HOOKWARDEN_TEST_UNSET_ADMIN_TOKEN")),
            "{err}"
        );
    }

    #[test]
    fn counters_are_read_from_the_openmetrics_text() {
        let text = "# HELP hookwarden_requests Requests\n# TYPE hookwarden_requests counter\nhookwarden_requests_total{hook=\"okta\",status=\"200\"} 3\nhookwarden_requests_total{hook=\"okta\",status=\"503\"} 0\nhookwarden_backlog 2\nhookwarden_ack_seconds_bucket{le=\"0.1\"} 1\nhookwarden_dead_letters_total{hook=\"okta\",sink=\"a\"} 1\n# EOF\n";
        assert_eq!(
            counters(text),
            vec![
                (
                    "hookwarden_requests_total".to_owned(),
                    "hook=\"okta\",status=\"200\"".to_owned(),
                    "3".to_owned()
                ),
                (
                    "hookwarden_dead_letters_total".to_owned(),
                    "hook=\"okta\",sink=\"a\"".to_owned(),
                    "1".to_owned()
                ),
            ]
        );
    }
}
