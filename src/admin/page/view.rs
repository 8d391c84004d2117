//! The page's markup (maud: every interpolated value is HTML-escaped).
//!
//! Plain HTML with one inline style sheet: no script, no external resource. Status badges
//! have one colour per class (2xx green, 3xx blue, 4xx amber, 5xx red) so that a glance,
//! or a test reading a screenshot, finds the failures.

use super::session::Access;
use super::{EventHookView, InlineHookView, PageData};
use crate::activity::Entry;
use crate::time::format_millis;
use maud::{html, Markup, DOCTYPE};

const STYLE: &str = r#"
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f8fafc;color:#0f172a}
header{background:#0f172a;color:#fff;padding:10px 20px;display:flex;align-items:center;gap:20px}
header h1{font-size:18px;margin:0;flex:1}
main{padding:10px 20px}
section{background:#fff;border:1px solid #e2e8f0;border-radius:6px;margin:14px 0;padding:10px 14px}
h2{font-size:16px;margin:4px 0}
h3{font-size:14px;margin:10px 0 4px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #e2e8f0;vertical-align:top}
th{color:#475569;font-weight:600}
code,.mono{font-family:ui-monospace,monospace;font-size:12px}
.muted{color:#64748b}
.badge{display:inline-block;min-width:34px;text-align:center;border-radius:4px;color:#fff;font-weight:700;padding:1px 6px}
.s2{background:#16a34a}.s3{background:#2563eb}.s4{background:#d97706}.s5{background:#dc2626}.s0{background:#64748b}
.stats{display:flex;gap:14px}
.stat{background:#fff;border:1px solid #e2e8f0;border-radius:6px;padding:8px 14px}
.stat b{display:block;font-size:20px}
.note{background:#dcfce7;border:1px solid #16a34a;border-radius:6px;padding:8px 14px}
form.inline{display:inline;margin:0}
button{cursor:pointer}
"#;

fn layout(title: &str, header_extra: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · hookwarden" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                header { h1 { "hookwarden · " (title) } (header_extra) }
                main { (body) }
            }
        }
    }
}

/// 404 when `admin.token` is unset: how to turn the page on.
pub fn off() -> Markup {
    layout(
        "admin page off",
        html! {},
        html! {
            section {
                h2 { "The admin page is off" }
                p { "Set a token to turn it on, for example:" }
                pre { code { "[admin]\ntoken = { env = \"HOOKWARDEN_ADMIN_TOKEN\" }   # or { file = \"/run/secrets/admin-token\" }" } }
                p { "Then open " code { "/ui" } " on the admin listener and sign in with that token, or send "
                    code { "Authorization: Bearer <token>" } "." }
            }
        },
    )
}

/// 401: the sign-in form, with a message after a refused attempt.
pub fn login(message: Option<&str>) -> Markup {
    layout(
        "sign in",
        html! {},
        html! {
            section {
                h2 { "Sign in" }
                @if let Some(m) = message { p.muted role="alert" { (m) } }
                form method="post" action="/ui/login" {
                    label { "Admin token " input type="password" name="token" autocomplete="current-password" required; }
                    " "
                    button type="submit" { "Sign in" }
                }
            }
        },
    )
}

/// A short page for errors of the page's own forms.
pub fn message(title: &str, text: &str) -> Markup {
    layout(
        title,
        html! {},
        html! { section { h2 { (title) } p { (text) } p { a href="/ui" { "Back to the admin page" } } } },
    )
}

fn status_class(status: u16) -> &'static str {
    match status {
        200..=299 => "s2",
        300..=399 => "s3",
        400..=499 => "s4",
        500..=599 => "s5",
        _ => "s0",
    }
}

fn time(at: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// A sink error without the URLs in it: even without password and query (the HTTP sink
/// drops those), a URL's path can be the secret (Slack-style webhook URLs).
pub fn redact_urls(text: &str) -> String {
    text.split(' ')
        .map(|w| if w.contains("://") { "[URL hidden]" } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

fn csrf_field(access: &Access) -> Markup {
    match access {
        Access::Session { csrf } => html! { input type="hidden" name="csrf" value=(csrf); },
        Access::Bearer => html! {},
    }
}

fn activity(recent: &[Entry]) -> Markup {
    html! {
        h3 { "Recent requests " span.muted { "(this replica, since it started, newest first)" } }
        @if recent.is_empty() {
            p.muted { "None yet." }
        } @else {
            table.activity {
                thead { tr { th { "Time (UTC)" } th { "Kind" } th { "Status" } th { "Latency" } th { "Outcome" } th { "Event types" } } }
                tbody {
                    @for e in recent {
                        tr.request data-status=(e.status) {
                            td.mono { (time(e.at)) }
                            td { (e.kind.as_str()) }
                            td { span class={ "badge " (status_class(e.status)) } { (e.status) } }
                            td.mono { (format!("{:.1} ms", e.latency.as_secs_f64() * 1000.0)) }
                            td { (e.outcome) }
                            td.mono { @for (i, t) in e.event_types.iter().enumerate() { @if i > 0 { ", " } (t) } }
                        }
                    }
                }
            }
        }
    }
}

fn event_hook(h: &EventHookView, access: &Access) -> Markup {
    html! {
        section.hook id={ "hook-" (h.name) } {
            h2 { "Event hook " code { (h.name) } " " span.muted { (h.path) } }
            p {
                "Sinks: "
                @if h.sinks.is_empty() { span.muted { "none" } }
                @for (i, (name, kind)) in h.sinks.iter().enumerate() {
                    @if i > 0 { ", " }
                    code { (name) } " (" (kind) ")"
                }
            }
            (activity(&h.recent))
            h3 { "Dead letters" }
            @match &h.dead {
                Err(e) => p { "The store could not list them: " (e) },
                Ok(dead) if dead.is_empty() => p.muted { "None." },
                Ok(dead) => {
                    form.inline method="post" action="/ui/replay" {
                        (csrf_field(access))
                        input type="hidden" name="hook" value=(h.name);
                        button type="submit" { "Replay all dead letters of " (h.name) }
                    }
                    table.dead {
                        thead { tr { th { "Event uuid" } th { "Type" } th { "Received (UTC)" } th { "Sinks" } th {} } }
                        tbody {
                            @for ev in dead {
                                tr.dead-letter {
                                    td.mono { (ev.uuid) }
                                    td.mono { (ev.event_type) }
                                    td.mono { (format_millis(ev.received_at)) }
                                    td {
                                        @for sink in &ev.sinks {
                                            div {
                                                code { (sink.sink) } ": " (sink.state.as_str()) ", " (sink.attempts) " attempt(s)"
                                                @if let Some(err) = &sink.last_error { br; span.muted { (redact_urls(err)) } }
                                            }
                                        }
                                    }
                                    td {
                                        form.inline method="post" action="/ui/replay" {
                                            (csrf_field(access))
                                            input type="hidden" name="hook" value=(h.name);
                                            input type="hidden" name="uuid" value=(ev.uuid);
                                            button type="submit" title="Sends the event again to every sink of this hook that it was routed to" { "Replay" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn inline_hook(h: &InlineHookView) -> Markup {
    html! {
        section.hook id={ "hook-" (h.name) } {
            h2 { "Inline hook " code { (h.name) } " " span.muted { (h.hook_type) " · " (h.path) } }
            (activity(&h.recent))
        }
    }
}

/// The main view.
pub fn main(data: &PageData, access: &Access, replayed: Option<u64>) -> Markup {
    let signed_in = matches!(access, Access::Session { .. });
    layout(
        "admin",
        html! {
            @if signed_in {
                form.inline method="post" action="/ui/logout" { button type="submit" { "Sign out" } }
            }
        },
        html! {
            @if let Some(n) = replayed {
                p.note role="status" { (n) " deliveries put back to pending; the workers pick them up within their poll interval." }
            }
            @match &data.stats {
                Ok(st) => div.stats {
                    div.stat { "Backlog (deliveries waiting)" b #backlog { (st.backlog) } }
                    div.stat { "Dead letters" b #dead { (st.dead) } }
                    div.stat { "Events held" b #events { (st.events) } }
                },
                Err(e) => p { "The store did not answer: " (e) },
            }
            @if data.event_hooks.is_empty() && data.inline_hooks.is_empty() {
                section { p.muted { "No hooks are configured." } }
            }
            @for h in &data.event_hooks { (event_hook(h, access)) }
            @for h in &data.inline_hooks { (inline_hook(h)) }
            section {
                h2 { "Counters " span.muted { "(this replica, since it started; also at /metrics)" } }
                @if data.counters.is_empty() {
                    p.muted { "Nothing counted yet." }
                } @else {
                    table.counters {
                        thead { tr { th { "Metric" } th { "Labels" } th { "Value" } } }
                        tbody {
                            @for (name, labels, value) in &data.counters {
                                tr { td.mono { (name) } td.mono { (labels) } td.mono { (value) } }
                            }
                        }
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::redact_urls;

    #[test]
    fn sink_errors_lose_their_urls() {
        assert_eq!(
            redact_urls("POST https://hooks.example.com/services/T0/B0/secret answered 500"),
            "POST [URL hidden] answered 500"
        );
        assert_eq!(redact_urls("exit status 3"), "exit status 3");
    }
}
