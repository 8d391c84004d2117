//! Reading a request body: JSON only, uncompressed, within the size limit.
//!
//! Shared by the event hooks' deliveries and the inline hooks' calls.

use super::error::ApiError;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap};

/// True for `application/json`, with or without parameters (`; charset=utf-8`).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// True when the body carries a `Content-Encoding` other than `identity`.
fn is_encoded(headers: &HeaderMap) -> bool {
    headers.get_all(header::CONTENT_ENCODING).iter().any(|v| {
        v.to_str().map_or(true, |v| {
            v.split(',')
                .any(|e| !e.trim().is_empty() && !e.trim().eq_ignore_ascii_case("identity"))
        })
    })
}

/// Reads a JSON request body: 415 unless `Content-Type` is JSON and the body is not
/// compressed (nothing here inflates bodies, so a gzip label is refused rather than
/// parsed as JSON), 413 above `limit` (by `Content-Length` before reading, or while
/// reading a chunked body).
pub async fn read_json_body(req: Request, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    if !is_json(req.headers()) {
        return Err(ApiError::unsupported_media_type());
    }
    if is_encoded(req.headers()) {
        return Err(ApiError::unsupported_encoding());
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    read_body(req.into_body(), limit, declared).await
}

async fn read_body(
    body: Body,
    limit: usize,
    declared: Option<u64>,
) -> Result<axum::body::Bytes, ApiError> {
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::payload_too_large(limit));
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        // `to_bytes` reports the limit as a LengthLimitError somewhere in the source chain.
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(err) = source {
            if err.is::<http_body_util::LengthLimitError>() {
                return ApiError::payload_too_large(limit);
            }
            source = err.source();
        }
        ApiError::bad_request("The request body could not be read")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_with_parameters_is_json() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().expect("valid"),
        );
        assert!(is_json(&h));
        h.insert(header::CONTENT_TYPE, "text/plain".parse().expect("valid"));
        assert!(!is_json(&h));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn any_content_encoding_but_identity_counts_as_encoded() {
        let with = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(header::CONTENT_ENCODING, v.parse().expect("valid"));
            }
            is_encoded(&h)
        };
        assert!(!with(&[]));
        assert!(!with(&["identity"]));
        assert!(!with(&["Identity", " identity "]));
        assert!(with(&["gzip"]));
        assert!(with(&["identity, gzip"]));
        assert!(with(&["identity", "br"]));
        assert!(with(&["x-unknown"]));
    }
}
