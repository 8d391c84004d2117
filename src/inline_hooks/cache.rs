//! Idempotent answers to Okta retries (being written).
