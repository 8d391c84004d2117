//! The one error type of the HTTP boundary, mapped once to a response.
//!
//! Every error body is JSON with an `errorSummary` (Okta's own field name), and says
//! what a caller can act on without revealing which part of a credential failed.

use crate::metrics::Reason;
use crate::store::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use std::borrow::Cow;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub summary: Cow<'static, str>,
    /// Why, for the rejections metric; `None` for errors that are not the caller's.
    pub reason: Option<Reason>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    error_summary: &'a str,
}

impl ApiError {
    fn new(status: StatusCode, summary: impl Into<Cow<'static, str>>, reason: Reason) -> Self {
        ApiError {
            status,
            summary: summary.into(),
            reason: Some(reason),
        }
    }
    /// Missing or wrong credentials. The same words whatever failed.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Authentication required",
            Reason::unauthorized,
        )
    }
    /// The client address is not allowed. The same words whatever the address.
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Access denied",
            Reason::ip_not_allowed,
        )
    }
    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "No hook at this path",
            Reason::not_found,
        )
    }
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed: event hooks take GET (verification) and POST (deliveries)",
            Reason::method_not_allowed,
        )
    }
    /// 405 with a summary that says which methods the path takes.
    pub fn method_not_allowed_because(summary: &'static str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            summary,
            Reason::method_not_allowed,
        )
    }
    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
            Reason::unsupported_media_type,
        )
    }
    /// A compressed body. Okta sends plain JSON; decoding bodies would only add a way to
    /// make a small request expand into a large one (a gzip bomb).
    pub fn unsupported_encoding() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Encoding is not supported: send the body uncompressed",
            Reason::unsupported_media_type,
        )
    }
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("The body is larger than the limit of {limit} bytes"),
            Reason::payload_too_large,
        )
    }
    pub fn bad_request(summary: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, summary, Reason::bad_request)
    }
    pub fn timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "The request took too long to arrive",
            Reason::timeout,
        )
    }
    /// The store cannot take the write: 503 so that Okta retries.
    pub fn store_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Events could not be stored; retry later",
            Reason::store_unavailable,
        )
    }
    /// The store did not commit the delivery before its deadline (see
    /// [`crate::event_hooks::STORE_DEADLINE`]): 503 so that Okta retries, never a 408,
    /// which Okta does not. The write may still commit later; the retry then finds its
    /// events already stored and is acknowledged as duplicates.
    pub fn store_too_slow() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Events could not be stored in time; retry later",
            Reason::store_slow,
        )
    }
    pub fn store_disk_low() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The event store's disk is almost full; retry later",
            Reason::store_disk_low,
        )
    }

    pub fn store_full() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The event backlog is full; retry later",
            Reason::store_full,
        )
    }

    /// Not the caller's error: a hook route reached without its guard (see
    /// [`crate::http::guard::Authenticated`]). A wiring bug, refused before the handler.
    pub fn not_guarded() -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            summary: Cow::Borrowed("Internal error: this hook is not behind its guard"),
            reason: None,
        }
    }
}

/// A store that cannot take a delivery, as Okta sees it: always 503, so that Okta retries,
/// with words (and a rejection reason) for what is wrong. The one place where a
/// [`StoreError`] becomes an answer; the caller logs the error itself.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Full(_) => ApiError::store_full(),
            StoreError::DiskLow(_) => ApiError::store_disk_low(),
            StoreError::Unavailable(_) | StoreError::Closed => ApiError::store_unavailable(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (
            self.status,
            Json(Body {
                error_summary: &self.summary,
            }),
        )
            .into_response();
        // Handlers and layers record the rejection metric from this extension.
        res.extensions_mut().insert(self);
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_store_error_is_a_503_that_okta_retries_with_its_own_words() {
        let cases = [
            (StoreError::Full(7), ApiError::store_full()),
            (StoreError::DiskLow(1 << 20), ApiError::store_disk_low()),
            (
                StoreError::Unavailable("disk I/O error".to_owned()),
                ApiError::store_unavailable(),
            ),
            (StoreError::Closed, ApiError::store_unavailable()),
        ];
        for (store, want) in cases {
            let what = store.to_string();
            let got = ApiError::from(store);
            assert_eq!(got.status, StatusCode::SERVICE_UNAVAILABLE, "{what}");
            assert_eq!(got.summary, want.summary, "{what}");
            assert_eq!(got.reason, want.reason, "{what}");
            // The store's own words (paths, sizes) stay in the log, not in the answer.
            assert!(!got.summary.contains("I/O"), "{what}");
        }
    }
}
