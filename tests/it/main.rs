//! Integration tests: the real service on port 0, real TLS, a real HTTP client,
//! Okta's real samples (tests/fixtures/okta). One binary, a module per feature.

mod util;

mod admin_page;
mod bad_input;
mod check_config;
mod contract;
mod crash;
mod delivery;
mod deploy;
mod docs;
mod faults;
mod handlers;
mod hostile;
mod inline;
mod lifecycle;
mod metrics;
mod monitoring;
mod nats;
mod oauth;
mod okta_api_fake;
mod okta_sync;
mod pg;
mod pg_tls;
mod pgutil;
mod props;
mod reconcile;
mod refusals;
mod reload;
mod replicas;
mod security;
mod simulate;
mod store_contract;
