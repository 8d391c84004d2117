//! What every call hookwarden makes to another service has in common (HTTP sinks,
//! inline forwards, the JWKS fetch, System Log reconciliation, `simulate`, NATS):
//! one HTTP client policy, and error and URL texts that are safe to log.
//!
//! A URL may hold a credential (`https://user:pw@…`, `?token=…`, a NATS token in the
//! user part) and reqwest puts the URL into its errors, so no text built from either
//! goes to a log or a dead letter without passing through here.

use std::time::Duration;
use url::Url;

/// The `User-Agent` of every call.
pub const USER_AGENT: &str = concat!("hookwarden/", env!("CARGO_PKG_VERSION"));

/// A client builder with the policy every call shares: `timeout` for the whole call and
/// for the connect, and no redirects. A redirect would carry the configured headers
/// (tokens) to wherever `Location` points, and turn a POST into a GET on 301/302; Okta
/// follows none either. A 3xx is reported instead, as the configuration mistake it is.
/// Callers add what is theirs (root certificates, `https_only`, pool settings).
pub fn client(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
}

/// An error with its causes, one after the other (the cause is where "certificate not
/// valid" or "connection refused" is said); a cause already in the text is not repeated.
pub fn error_text(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = s.source();
    }
    message
}

/// A reqwest error with its causes, without the URL that reqwest adds.
pub fn reqwest_error_text(e: reqwest::Error) -> String {
    error_text(&e.without_url())
}

/// The URL for messages: user and password shown as `****`, the query as `?…`, no
/// fragment.
pub fn shown_url(url: &Url) -> String {
    let mut shown = url.clone();
    if !shown.username().is_empty() || shown.password().is_some() {
        // Fails only for URLs that cannot have credentials, which then have none.
        let _ = shown.set_username("****");
        let _ = shown.set_password(None);
    }
    let had_query = shown.query().is_some();
    shown.set_query(None);
    shown.set_fragment(None);
    let mut shown = shown.to_string();
    if had_query {
        shown.push_str("?…");
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_urls_hide_credentials_and_queries() {
        for (url, secrets, kept) in [
            (
                "https://user:pw-secret@example.com/in?token=abc#frag",
                &["user", "pw-secret", "abc", "frag"][..],
                "https://****@example.com/in?…",
            ),
            // A NATS token is written as the user.
            (
                "nats://tok-secret@nats.internal:4222",
                &["tok-secret"][..],
                "nats://****@nats.internal:4222",
            ),
            (
                "https://example.com/plain",
                &[][..],
                "https://example.com/plain",
            ),
        ] {
            let shown = shown_url(&Url::parse(url).expect("url"));
            for secret in secrets {
                assert!(!shown.contains(secret), "{shown} shows {secret}");
            }
            assert_eq!(shown, kept);
        }
    }

    #[tokio::test]
    async fn reqwest_errors_name_the_cause_and_not_the_url() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        // Nothing listens on the port any more: the connect is refused.
        let err = client(Duration::from_secs(2))
            .build()
            .expect("client")
            .get(format!("http://127.0.0.1:{port}/in?token=url-secret"))
            .send()
            .await
            .expect_err("refused");
        let text = reqwest_error_text(err);
        assert!(!text.contains("url-secret"), "{text}");
        assert!(text.to_lowercase().contains("refused"), "{text}");
    }

    #[test]
    fn causes_already_in_the_text_are_not_repeated() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "outer: {}", self.0)
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(error_text(&e), "outer: inner");
    }
}
