//! Okta's hook contract as Rust types, usable on their own.
//!
//! Lenient where Okta's own samples disagree (the known disagreements: tests/fixtures/okta/schemas/README.md):
//! fields are optional, numbers may arrive as strings and the other way round, and
//! unknown fields are kept rather than rejected.

pub mod event_hook;
pub mod inline;
pub mod lenient;
pub mod samples;
