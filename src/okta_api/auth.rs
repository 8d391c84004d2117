//! How hookwarden proves itself to Okta's management API: an SSWS API token, or an
//! OAuth service app (client credentials with a `private_key_jwt` client assertion).
//!
//! The token never leaves this module except inside a header value marked sensitive,
//! and no error message carries it: errors name the token URL and the status only.

use super::error::{ApiError, SetupError};
use crate::config::expose;
use crate::config::okta_api::{OktaApiConfig, OktaOAuth};
use crate::outbound::reqwest_error_text;
use reqwest::header::HeaderValue;
use secrecy::SecretString;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A client assertion is valid this long: enough for one token request, short enough
/// that a leaked assertion is useless soon (Okta accepts at most one hour).
const ASSERTION_LIFETIME: Duration = Duration::from_secs(300);

/// An access token is used until this long before it expires (or half its life, if shorter).
const TOKEN_EARLY_REFRESH: Duration = Duration::from_secs(60);

pub enum Credentials {
    /// `Authorization: SSWS <token>`.
    Ssws(SecretString),
    OAuth(Box<OAuthClient>),
}

/// A service app that gets access tokens from the org authorization server.
pub struct OAuthClient {
    client_id: String,
    key: jsonwebtoken::EncodingKey,
    key_id: Option<String>,
    scope: String,
    token_url: String,
    cached: tokio::sync::Mutex<Option<(SecretString, Instant)>>,
}

#[derive(serde::Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
    jti: String,
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl Credentials {
    /// From a valid `[okta]` section (checked by `Config::problems`). `scopes` are
    /// asked for when `okta.oauth.scopes` does not name them.
    pub fn from_config(rc: &OktaApiConfig, scopes: &[&str]) -> Result<Credentials, SetupError> {
        match (&rc.api_token, &rc.oauth) {
            (Some(token), None) => token
                .value()
                .cloned()
                .map(Credentials::Ssws)
                .ok_or(SetupError::Unreadable("okta.api_token")),
            (None, Some(o)) => Ok(Credentials::OAuth(Box::new(OAuthClient::new(
                o,
                &format!("{}/oauth2/v1/token", rc.org()),
                scopes,
            )?))),
            _ => Err(SetupError::Credentials),
        }
    }

    /// The `Authorization` header value, marked sensitive (never printed by `Debug`).
    pub async fn header(&self, http: &reqwest::Client) -> Result<HeaderValue, ApiError> {
        let text = match self {
            Credentials::Ssws(token) => format!("SSWS {}", expose(token)),
            Credentials::OAuth(o) => format!("Bearer {}", expose(&o.access_token(http).await?)),
        };
        let mut value = HeaderValue::from_str(&text).map_err(|_| ApiError::HeaderValue)?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// After a 401: forgets a cached access token so the next call gets a new one.
    /// Returns whether there was anything to forget (an SSWS token cannot be renewed).
    pub async fn invalidate(&self) -> bool {
        match self {
            Credentials::Ssws(_) => false,
            Credentials::OAuth(o) => o.cached.lock().await.take().is_some(),
        }
    }
}

impl OAuthClient {
    fn new(o: &OktaOAuth, token_url: &str, scopes: &[&str]) -> Result<OAuthClient, SetupError> {
        let pem = o
            .private_key
            .value()
            .ok_or(SetupError::Unreadable("okta.oauth.private_key"))?;
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(expose(pem).as_bytes())
            .map_err(SetupError::PrivateKey)?;
        Ok(OAuthClient {
            client_id: o.client_id.clone(),
            key,
            key_id: o.key_id.clone(),
            scope: scope(&o.scopes, scopes),
            token_url: token_url.to_owned(),
            cached: tokio::sync::Mutex::new(None),
        })
    }

    /// The cached access token, or a new one from the token endpoint. The lock is held
    /// during the request so concurrent callers wait for one token rather than each
    /// asking for their own.
    async fn access_token(&self, http: &reqwest::Client) -> Result<SecretString, ApiError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, until)) = cached.as_ref() {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let (token, lifetime) = self.request_token(http).await?;
        let early = TOKEN_EARLY_REFRESH.min(lifetime / 2);
        *cached = Some((token.clone(), Instant::now() + lifetime - early));
        Ok(token)
    }

    fn assertion(&self) -> Result<String, ApiError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let claims = AssertionClaims {
            iss: &self.client_id,
            sub: &self.client_id,
            aud: &self.token_url,
            iat: now,
            exp: now + ASSERTION_LIFETIME.as_secs(),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = self.key_id.clone();
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| ApiError::Token {
            url: self.token_url.clone(),
            message: format!("cannot sign the client assertion: {e}"),
        })
    }

    async fn request_token(
        &self,
        http: &reqwest::Client,
    ) -> Result<(SecretString, Duration), ApiError> {
        let assertion = self.assertion()?;
        let fail = |message: String| ApiError::Token {
            url: self.token_url.clone(),
            message,
        };
        let response = http
            .post(&self.token_url)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", self.scope.as_str()),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|e| fail(format!("no answer: {}", reqwest_error_text(e))))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| fail(format!("reading the answer: {e}")))?;
        if !status.is_success() {
            // OAuth errors are {"error": "...", "error_description": "..."}: no secret in them.
            let detail = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .map(|v| {
                    format!(
                        ": {} {}",
                        v["error"].as_str().unwrap_or(""),
                        v["error_description"].as_str().unwrap_or("")
                    )
                })
                .unwrap_or_default();
            return Err(fail(format!("answered {status}{}", detail.trim_end())));
        }
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| fail(format!("the answer is not a token response: {e}")))?;
        if parsed
            .token_type
            .as_deref()
            .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
        {
            return Err(fail(format!(
                "token_type {:?} is not Bearer (DPoP-bound tokens are not supported: turn \"Require DPoP\" off for this service app)",
                parsed.token_type.unwrap_or_default()
            )));
        }
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(300).max(1));
        Ok((SecretString::from(parsed.access_token), lifetime))
    }
}

/// The `scope` asked for: the configured scopes if any, else what the caller needs.
fn scope(configured: &[String], needed: &[&str]) -> String {
    if configured.is_empty() {
        needed.join(" ")
    } else {
        configured.join(" ")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_command_asks_for_its_scopes_unless_the_config_names_them() {
        let needed = ["okta.eventHooks.read", "okta.inlineHooks.read"];
        assert_eq!(
            super::scope(&[], &needed),
            "okta.eventHooks.read okta.inlineHooks.read"
        );
        assert_eq!(
            super::scope(&["okta.logs.read".to_owned()], &needed),
            "okta.logs.read"
        );
    }
}
