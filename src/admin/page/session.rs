//! Who may see the admin page: the admin token, presented as a bearer header (curl) or
//! once through the login form, which sets a session cookie (a browser without JS).
//!
//! The cookie never holds the token. It holds a random nonce, the time it was issued
//! and an HMAC-SHA256 over both and a digest of the token, keyed with a random key made
//! when the page's routes are built (so per process). Nothing is kept on the server:
//! a cookie is valid while its MAC checks, it is younger than [`SESSION_LIFETIME`], the
//! token has not changed and the process has not restarted. Logging out clears the
//! cookie in the browser; a copied cookie stays valid until one of those happens.
//!
//! Forms that change something carry a CSRF token derived from the session's nonce
//! (also an HMAC under the process key), checked in constant time; the cookie is
//! `SameSite=Strict` too, so a cross-site form never carries it in the first place.
//! A bearer request needs no CSRF token: a browser never adds that header by itself.

use crate::config::{expose, Secret};
use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq;

/// Name of the session cookie.
pub const COOKIE: &str = "hookwarden_admin";

/// How long a session cookie is valid after login.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

type HmacSha256 = Hmac<Sha256>;

/// How the request proved it may see the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// `Authorization: Bearer <token>`: no CSRF token needed.
    Bearer,
    /// A valid session cookie; `csrf` is the token its forms must carry.
    Session { csrf: String },
}

/// Why a request may not see the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// `admin.token` is not set (or could not be read): the page is off.
    Off,
    /// No credentials, or wrong ones. Which part was wrong is never said.
    Unauthorized,
}

/// The process's session key. Built once per admin router.
pub struct Sessions {
    /// `None` only if the OS had no randomness to give; then only bearer access works.
    key: Option<[u8; 32]>,
}

impl Sessions {
    pub fn new() -> Sessions {
        let mut key = [0u8; 32];
        match getrandom::fill(&mut key) {
            Ok(()) => Sessions { key: Some(key) },
            Err(e) => {
                tracing::error!(error = %e, "no randomness for admin page sessions: only bearer access works");
                Sessions { key: None }
            }
        }
    }

    #[cfg(test)]
    fn with_key(key: [u8; 32]) -> Sessions {
        Sessions { key: Some(key) }
    }

    fn mac(&self, parts: &[&[u8]]) -> Option<[u8; 32]> {
        let mut mac = HmacSha256::new_from_slice(self.key.as_ref()?).ok()?;
        for p in parts {
            // Length-prefixed so that no two different part lists hash the same bytes.
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p);
        }
        Some(mac.finalize().into_bytes().into())
    }

    /// Checks a request: bearer header first, else the session cookie.
    pub fn check(&self, token: Option<&Secret>, headers: &HeaderMap) -> Result<Access, Denied> {
        let expected = token_digest(token).ok_or(Denied::Off)?;
        if headers.contains_key(header::AUTHORIZATION) {
            // A wrong bearer header is refused even if a valid cookie came along: the
            // caller said who it is, and it is not.
            return check_bearer(token, headers).map(|()| Access::Bearer);
        }
        cookie_value(headers)
            .and_then(|c| self.verify_cookie(&expected, c, SystemTime::now()))
            .ok_or(Denied::Unauthorized)
    }

    /// Checks a token typed into the login form; on success, the `Set-Cookie` value.
    pub fn login(&self, token: Option<&Secret>, presented: &str) -> Result<String, Denied> {
        let expected = token_digest(token).ok_or(Denied::Off)?;
        if !bool::from(digest(presented.as_bytes()).ct_eq(&expected)) {
            return Err(Denied::Unauthorized);
        }
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|_| Denied::Unauthorized)?;
        let cookie = self
            .issue(&expected, &nonce, SystemTime::now())
            .ok_or(Denied::Unauthorized)?;
        Ok(format!(
            "{COOKIE}={cookie}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}",
            SESSION_LIFETIME.as_secs()
        ))
    }

    fn issue(&self, token: &[u8; 32], nonce: &[u8], at: SystemTime) -> Option<String> {
        let issued = at.duration_since(UNIX_EPOCH).ok()?.as_secs().to_string();
        let mac = self.mac(&[b"session", nonce, issued.as_bytes(), token])?;
        Some(format!(
            "{}.{issued}.{}",
            URL_SAFE_NO_PAD.encode(nonce),
            URL_SAFE_NO_PAD.encode(mac)
        ))
    }

    fn verify_cookie(&self, token: &[u8; 32], cookie: &str, now: SystemTime) -> Option<Access> {
        let mut parts = cookie.split('.');
        let (nonce, issued, mac) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let nonce = URL_SAFE_NO_PAD.decode(nonce).ok()?;
        let presented = URL_SAFE_NO_PAD.decode(mac).ok()?;
        let expected = self.mac(&[b"session", &nonce, issued.as_bytes(), token])?;
        if !bool::from(presented.as_slice().ct_eq(&expected)) {
            return None;
        }
        let issued = UNIX_EPOCH + Duration::from_secs(issued.parse().ok()?);
        let age = now.duration_since(issued).ok()?;
        if age > SESSION_LIFETIME {
            return None;
        }
        let csrf = self.mac(&[b"csrf", &nonce, token])?;
        Some(Access::Session {
            csrf: URL_SAFE_NO_PAD.encode(csrf),
        })
    }
}

impl Default for Sessions {
    fn default() -> Self {
        Self::new()
    }
}

/// `Set-Cookie` value that removes the session cookie.
pub fn logout_cookie() -> String {
    format!("{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// True when a form's CSRF field is the one this access needs (any for bearer access).
pub fn csrf_ok(access: &Access, presented: Option<&str>) -> bool {
    match access {
        Access::Bearer => true,
        Access::Session { csrf } => {
            presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(csrf.as_bytes())))
        }
    }
}

fn digest(value: &[u8]) -> [u8; 32] {
    Sha256::digest(value).into()
}

/// Checks `Authorization: Bearer <admin.token>` alone, in constant time: the page's
/// bearer access and the admin API (`POST /reload`), which takes no cookie.
pub fn check_bearer(token: Option<&Secret>, headers: &HeaderMap) -> Result<(), Denied> {
    let expected = token_digest(token).ok_or(Denied::Off)?;
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if digest(presented.as_bytes()).ct_eq(&expected).into() {
        Ok(())
    } else {
        Err(Denied::Unauthorized)
    }
}

fn token_digest(token: Option<&Secret>) -> Option<[u8; 32]> {
    token
        .and_then(Secret::value)
        .map(|t| digest(expose(t).as_bytes()))
}

/// The session cookie's value among the request's cookies.
fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).expect("header"));
        h
    }

    fn cookie_of(set_cookie: &str) -> String {
        set_cookie
            .split(';')
            .next()
            .expect("pair")
            .trim()
            .to_owned()
    }

    #[test]
    fn bearer_and_login_need_the_exact_token() {
        let s = Sessions::with_key([7; 32]);
        let token = Secret::literal("a-long-admin-token");
        let ok = headers(header::AUTHORIZATION, "Bearer a-long-admin-token");
        assert_eq!(s.check(Some(&token), &ok), Ok(Access::Bearer));
        for wrong in [
            "Bearer a-long-admin-toke",
            "Bearer a-long-admin-token ",
            "bearer a-long-admin-token",
            "a-long-admin-token",
        ] {
            let h = headers(header::AUTHORIZATION, wrong);
            assert_eq!(
                s.check(Some(&token), &h),
                Err(Denied::Unauthorized),
                "{wrong}"
            );
        }
        assert_eq!(s.check(None, &ok), Err(Denied::Off));
        assert_eq!(s.login(Some(&token), "nope"), Err(Denied::Unauthorized));
        let set = s.login(Some(&token), "a-long-admin-token").expect("login");
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
        assert!(!set.contains("a-long-admin-token"));
    }

    #[test]
    fn a_session_cookie_is_checked_bound_to_the_token_and_expires() {
        let s = Sessions::with_key([7; 32]);
        let token = Secret::literal("a-long-admin-token");
        let cookie = cookie_of(&s.login(Some(&token), "a-long-admin-token").expect("login"));
        let h = headers(header::COOKIE, &format!("other=1; {cookie}"));
        let Ok(Access::Session { csrf }) = s.check(Some(&token), &h) else {
            panic!("session refused");
        };
        assert!(csrf_ok(
            &Access::Session { csrf: csrf.clone() },
            Some(&csrf)
        ));
        assert!(!csrf_ok(&Access::Session { csrf: csrf.clone() }, None));
        assert!(!csrf_ok(&Access::Session { csrf }, Some("forged")));
        // Another token, another process key, a flipped character: refused.
        let other = Secret::literal("another-token");
        assert_eq!(s.check(Some(&other), &h), Err(Denied::Unauthorized));
        let restarted = Sessions::with_key([8; 32]);
        assert_eq!(restarted.check(Some(&token), &h), Err(Denied::Unauthorized));
        let mut tampered = cookie.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        let h2 = headers(header::COOKIE, &tampered);
        assert_eq!(s.check(Some(&token), &h2), Err(Denied::Unauthorized));
        // Too old.
        let digest = token_digest(Some(&token)).expect("digest");
        let old = s
            .issue(
                &digest,
                b"0123456789abcdef",
                SystemTime::now() - SESSION_LIFETIME - Duration::from_secs(1),
            )
            .expect("issue");
        assert!(s.verify_cookie(&digest, &old, SystemTime::now()).is_none());
        let fresh = s
            .issue(&digest, b"0123456789abcdef", SystemTime::now())
            .expect("issue");
        assert!(s
            .verify_cookie(&digest, &fresh, SystemTime::now())
            .is_some());
        // Garbage never panics.
        for junk in ["", ".", "..", "a.b.c", "a.b.c.d", "%%%.1.%%%"] {
            assert!(s.verify_cookie(&digest, junk, SystemTime::now()).is_none());
        }
    }
}
