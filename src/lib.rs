//! hookwarden: a standalone HTTPS receiver for Okta's outbound hooks: event hooks (stored
//! durably before the ack, delivered to sinks after) and inline hooks (answered inside a
//! deadline by rules, a script or a forward, checked against Okta's contract).
//!
//! # Module map
//!
//! | module | concern |
//! |---|---|
//! | [`config`] | typed configuration: embedded defaults < TOML file < `HOOKWARDEN__*` env; every problem reported with its key; secrets that never print; the inline handlers' settings (rules, script, forward) |
//! | [`okta`] | Okta's hook contract as lenient Rust types: event hook envelope and System Log event; Okta's own samples, embedded; per inline hook type (one module each), its requests, answers, builders, commands, value checks, refusal and fallbacks; reading and settling an answer (a refusal stays a refusal) |
//! | [`http`] | the listeners: router, auth (shared secrets, OAuth bearer JWTs) and network guards, TLS with reload, connection limits, error bodies |
//! | [`event_hooks`] | verification GET and delivery POST: parse, route to sinks, store durably, then acknowledge |
//! | [`inline_hooks`] | inline calls: handler (rules, one module per hook type; Rhai script; forward) inside the budget counted from arrival, its answer settled by [`okta::inline::settle`], fallback, idempotent repeats |
//! | [`files`] | file-system checks that start-up and `check-config` share (a folder that can be written in, or created) |
//! | [`glob`] | the event-type glob (`*` only) that sink filters, `events list --type` and inline rules share |
//! | [`time`] | store time (milliseconds since the epoch): now, RFC 3339 formatting, and operators' `--since 2h` |
//! | [`store`] | the storage seam, one trait per role ([`store::Queue`], [`store::Inspect`], [`store::Leases`], [`store::AnswerStore`]; [`store::Store`] gathers the first three), the embedded SQLite store with group commit and the PostgreSQL store shared by replicas, [`store::open`] |
//! | [`worker`] | deferred processing: claims stored jobs, delivers them to sinks, retries with backoff, dead-letters |
//! | [`sinks`] | the sink seam ([`sinks::Sink`]) and the stdout, JSON Lines, HTTP and command sinks |
//! | [`outbound`] | what every call to another service shares: the HTTP client policy (no redirects), error and URL texts without credentials |
//! | [`metrics`] | Prometheus metrics, one registry per service: their labels, each configured hook's and sink's series at zero from the start (and gone with it at a reload), the store's gauges as the store holds them, the catalogue the docs, alert rules and dashboard are checked against |
//! | [`telemetry`] | structured logs (JSON or human) |
//! | [`cli`] | what the `hookwarden` subcommands do (the binary only parses arguments): one entry point per subcommand (`events`, `reconcile`, `okta`, `simulate` in modules of their own) over the feature's library API |
//! | [`admin`] | the admin listener: `/healthz`, `/readyz`, `/metrics`, `POST /reload`, and the admin page (`/ui`: recent requests, backlog, dead letters, replay) |
//! | [`activity`] | recent requests per hook, in memory, for the admin page |
//! | [`okta_api`] | the Okta Management API client every feature that calls Okta shares: one credential (SSWS or an OAuth service app), rate limits, bounded retries, next links, Okta's error bodies; the hook registration resources |
//! | [`reconcile`] | System Log reconciliation: events Okta never delivered, fetched from `/api/v1/logs` and stored as recovered (the background job; `hookwarden reconcile` is in [`cli`]) |
//! | [`registration`] | Okta's hook registrations compared with the config and brought in step (`hookwarden okta status` and `sync`, entry point in [`cli`]) |
//! | [`simulate`] | what `hookwarden simulate` runs (its entry point is in [`cli`]): calls a receiver the way Okta does and checks each answer against the contract |
//! | [`app`] | [`run`]: starts everything under one shutdown token and stops it in order; each configuration generation's public router; reloads in place (SIGHUP, `POST /reload`, `serve --watch-config`), swapping router and sinks atomically |
//!
//! Request path: TCP accept (connection cap) → TLS → hyper (header-read timeout) →
//! request timeout → per-hook guard (IP allowlist, then auth; it alone makes the
//! [`http::guard::Authenticated`] every hook handler takes, so no handler sees an
//! unauthenticated body) → Content-Type → body limit → handler → store commit → 200.

#![forbid(unsafe_code)]

pub mod activity;
pub mod admin;
pub mod app;
pub mod cli;
pub mod config;
pub mod event_hooks;
pub mod files;
pub mod glob;
pub mod http;
pub mod inline_hooks;
pub mod metrics;
pub mod okta;
pub mod okta_api;
pub mod outbound;
pub mod reconcile;
pub mod registration;
pub mod simulate;
pub mod sinks;
pub mod store;
pub mod telemetry;
pub mod time;
pub mod worker;

pub use app::{run, run_with, Listeners, RunError, RunOptions};
