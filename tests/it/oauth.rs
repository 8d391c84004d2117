//! OAuth 2.0 on inline hooks through the real server: Okta's bearer token checked against
//! a real JWKS endpoint (key rotation, an issuer that goes down, floods of unknown kids),
//! 200 for a valid token and 401 with an `errorSummary` for anything else.

use crate::util::*;
use axum::http::StatusCode;
use base64::Engine as _;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// Test-only RSA key pairs (`openssl genrsa 2048`, `openssl rsa -pubout`). They protect nothing.
const KEY_A_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCzZj/KDq69XNAD
I+SdnkQe43SZ9r+gImSEyWxhH3/lwzEadoE66bMeY7/gWvhB/Ox0WiYAr6Ybf2ns
9T3p7vVArdnYgMTejLJvSE57ZDEiPeifl0eeu8Q/4BAdrx17peAj1geC6+CyNzLA
B4Hnb4LEdiGJsux60zL6ZLnbHYr9/c6kjefVcg7iPowosPlUxvRuS6I/feUbEx7+
T95gZTEnwKzS65dZm3mcGYZACdcuaQPZMs0Hw0O645F7XB12DXNC5gCncF/VFze+
cPvTNIDvlY7PhLFPMFBq6zkWoEEXaOWdwDRKwivyMsLzK/j5NuKa5KhRVGWph3Fi
EjC0vXl9AgMBAAECggEAFXmG50QMrMRAbi/MvQVl+CCYI5oC5ENZrv+BhrrDj5hm
91j6LTguZdPg8xVQpG2HTIJCDFD6XE5LOr88kxU0rHJjImR/rHhBH8sTAfhDXWr1
vqzYOOsXGeJTa4o7yEJZ61BCg+yCcDLlU1FSvoZ9q9DMQPR3FFjVwF1wVgdaTP7y
QM5UcjyV5fxJ4GmKqLngbQ+ZI/PutVteAfkSEi+teskkrAQrWEh9aJFcEmzMbUAI
kUnt0XhMetQ17G6DfCNLcaQbWOKt66/YbgSAkSduLcKMDoJaC7Z2gFZTp3aAOWg9
AxHTQFto1hH3dA/VPl5obGzqVQhQimpHShRw26k8gQKBgQDsYzt55pXa6BnVP3wD
76ai9LpcAi37O9Z4kZl/ZmOqIrLqM1aUb3zPES9y/GS+q+qmTAaTdA39AsLap98o
vadresi+g9dycLsF63jwBjTJg/UbOQOqcWcyDjYYTJSXSZm0yFjExrvl6OOoQ4eO
F/mrw8txBf1kWzN+D7EsMjY2YQKBgQDCSJzSniB/eDIZJM/1nV3j7jHA0iU926UY
ElnjyA3fkYxCsyJMGAnsEPmnEA67Lg8YbQOHbK0WUkrqbewapn2awmsWLwSOB1VO
L502ItJhInEK95JWIMNV8P58VF5dFql8oNa71ivDAJHrAmvCCLPv5zUwkuGbsq2R
eoaDm/IgnQKBgCbOl6oIf9uDNRJ8LJjc1Ad2k82dEf1nsmryxDdVENGShrrKGNGf
h+balGaVJtjiklAgtQeqCs3ZkTGiU5F1qTGM473bGRiRhzKOmLkW272layy/7Gkj
2uQtzxWoJNC9ZX13UpNjaN9yn0U1aOCb8QIQz6pLaHD8Q/TTEKwHxjyhAoGBAJOV
hUuZQyaRr7zZ8f+qY0BaGQFYoWG0EF2Q0yftOFy0u8+PNGaJfEAPRRZbZFVcT6tG
ZH/jVji2mqIqjkhQYOnG9oILhXI+r9aM5OfS2+1dtHGYT1mN2dTXFPptPKGKLYW2
yGg38VZYgH/9fs4OvmFnSUh0y1zzBlaUtMoVFIEhAoGAQ3AAO4j6LVhxzJzEz60K
ValoyMkq191DDoUyAPcDnkm9pnEX2SUmO6NHEdnB6b3lMGHYEPRfvuhOWgKvhWXH
RoenUUx4YQjwk1w4e7AdwJ1P6Pw+QggSd0u3r11DwIXQjstOPEQM2rtGaBbr4Lld
4Z/xe6aN7sxAItxpchbLOK8=
-----END PRIVATE KEY-----
";
const KEY_A_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAs2Y/yg6uvVzQAyPknZ5E
HuN0mfa/oCJkhMlsYR9/5cMxGnaBOumzHmO/4Fr4QfzsdFomAK+mG39p7PU96e71
QK3Z2IDE3oyyb0hOe2QxIj3on5dHnrvEP+AQHa8de6XgI9YHguvgsjcywAeB52+C
xHYhibLsetMy+mS52x2K/f3OpI3n1XIO4j6MKLD5VMb0bkuiP33lGxMe/k/eYGUx
J8Cs0uuXWZt5nBmGQAnXLmkD2TLNB8NDuuORe1wddg1zQuYAp3Bf1Rc3vnD70zSA
75WOz4SxTzBQaus5FqBBF2jlncA0SsIr8jLC8yv4+TbimuSoUVRlqYdxYhIwtL15
fQIDAQAB
-----END PUBLIC KEY-----
";
const KEY_B_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDN/BW9NC8xQJW4
lEDnK8GWm7DDv0oahintyziEYVe9B1hDfInQ90kAa09Fe+gO8DN7n106I5JIbsuo
35gsHAcumuJuZoFxs0zK33RojOYofEchJj7VmLHbaY7GAwB6YFvHjIGv40g4aSCN
X28hoxf3SUdzQRjMwaD37pyOW84TKicg8w/FjTn/fTwxGJVVNbShk/lxsVfxc4Z7
a2KRk+rl9XbwCNFO1u0IbChy2U5oF+7C+U4hFExrUR9bwIsJ4jB9zIWs2WU5Li7Y
HS8lJpt7ppcL+FLQcnLVsCQiEhIiuYKbJIH+FMvd7e9ecWjI+hGk0sLGGie9A7fC
6yFHpiIhAgMBAAECggEABJ0bxTYM7uLmB5vwe+JlGWZpgOpBCBOPDwe2f3E+ZG+X
Q0Rf7N7hEyHphQz9BLqjbeaC/CP4U+gsER9YT/fyaZGStqDT+j6RyYMpnxQ1god4
Fg6+fmJyF2VHoKPyvTWj0KDTIHlW2zFFnKJcLEoe0GKN4mUSn7bK5XVs1cZ0zkU2
OPbNuPkTPpWGs5O+EzCTWc3JS3YIGdNPN0/R7xKIKzBsDirNDcM0SUQuplgGsh6j
j9TliwvoyWGgiNpFZR+dO/Ql96jk5oTJETPXOu8AEwS5BIub98AZYkLZunSuIl0o
hMSVpT9wICCUdvzT0L2aL6dJjhn+XISr2MzaHcMpcQKBgQDv9ySoyActs7W3397K
Oc8G9g9me84XoII2OjupVdy3kkfd2HNdefMJ+wwPKjXNGrANsRpaSD7C/esbwGZc
rrB8Y+OYtI5gUYp8KFGl8fFDLTp+C8e36BjEg2bPbv4GrQV6mZgZfoRLR1eVa5/B
GfdVe86lGF6Nb+7LvC1X5BwdCQKBgQDbv6qtMegyDeEh6Q//sxItEsfNJr/D5PpC
NYZMPU5CPir5y0uzxBpkV/M3lKUgOaBD0AdgVOz+RCAF4KaYq2LSL/ZlpHJkra2f
poZEvrqvObCdYRpwnJ8RRbuMTsl5c+/1AnmhzWdPASqDtGvQA/xAYY3pQ0FMhJ8V
Epv33+w6WQKBgQCmM0dpuvj112VB0EVPTRCtopjyA0evp5ToGBcgZn6zihZKedMV
aBRD0mP80OBoiVZsdUBqTWViylkfZHfBM6C61rhZGJ0P6wn+ijJavCK8w0Oi72fJ
YXBeEyCPBTHdz9Jeoqjs52qbdPMdY2hHZ0OeKlzqjeFXFrKO22uQV0Z9eQKBgQDA
wbSmLcPevDwCMdz9z4cfEH1AoD/QRveawjamg5Q1GTE7Yi9qZZc888T9uR7LUKEb
OsxtnLEyLHHmlfOssZGCi93XtNM/KvXEuB7JCIDbGYCp3DaEF26UiRWFcsraBW+z
/FLTMkjvjTdMxiNYGVbY5nnD5mHOC/s7UdKMMNiXKQKBgC6jVu2wMa8FaUMYPVsp
fH6SefxMslJcCV6QXO4div6ivfzAlIXunImxpAdp/8xf6nJC9IM6Gx7c9CIJTQtu
xbyKCQMHk8OQhipHm7fVdONbVvnBc7POYz7LBcjBuGh+0bKkxgNCK58SV6mxgdvT
Tpj9j8bk4TmvLFTMyHSIuXwy
-----END PRIVATE KEY-----
";
const KEY_B_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAzfwVvTQvMUCVuJRA5yvB
lpuww79KGoYp7cs4hGFXvQdYQ3yJ0PdJAGtPRXvoDvAze59dOiOSSG7LqN+YLBwH
LpribmaBcbNMyt90aIzmKHxHISY+1Zix22mOxgMAemBbx4yBr+NIOGkgjV9vIaMX
90lHc0EYzMGg9+6cjlvOEyonIPMPxY05/308MRiVVTW0oZP5cbFX8XOGe2tikZPq
5fV28AjRTtbtCGwoctlOaBfuwvlOIRRMa1EfW8CLCeIwfcyFrNllOS4u2B0vJSab
e6aXC/hS0HJy1bAkIhISIrmCmySB/hTL3e3vXnFoyPoRpNLCxhonvQO3wushR6Yi
IQIDAQAB
-----END PUBLIC KEY-----
";

const PATH: &str = "/hooks/okta/token";
const AUDIENCE: &str = "api://default";
const CLIENT: &str = "0oahookclient";
const SCOPE: &str = "okta.hooks";
/// The hook's `jwks_min_refresh`: short, so that the tests can wait it out.
const MIN_REFRESH: Duration = Duration::from_secs(1);

/// The authorization server's keys endpoint: counts fetches, can fail with 500, can
/// answer slowly, and can rotate to a new key set.
struct Issuer {
    base: String,
    jwks: Arc<Mutex<String>>,
    failing: Arc<AtomicBool>,
    fetches: Arc<AtomicUsize>,
    delay_ms: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Issuer {
    async fn start(keys: &[(&str, &str)]) -> Issuer {
        let jwks = Arc::new(Mutex::new(jwks(keys)));
        let failing = Arc::new(AtomicBool::new(false));
        let fetches = Arc::new(AtomicUsize::new(0));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (j, f, n, d) = (
            jwks.clone(),
            failing.clone(),
            fetches.clone(),
            delay_ms.clone(),
        );
        let app = axum::Router::new().route(
            "/oauth2/default/v1/keys",
            axum::routing::get(move || {
                let (j, f, n, d) = (j.clone(), f.clone(), n.clone(), d.clone());
                async move {
                    n.fetch_add(1, Ordering::SeqCst);
                    let delay = d.load(Ordering::SeqCst);
                    if delay > 0 {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                    }
                    if f.load(Ordering::SeqCst) {
                        return (StatusCode::INTERNAL_SERVER_ERROR, String::new());
                    }
                    let body = j.lock().expect("lock").clone();
                    (StatusCode::OK, body)
                }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", l.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        Issuer {
            base,
            jwks,
            failing,
            fetches,
            delay_ms,
            task,
        }
    }

    fn issuer(&self) -> String {
        format!("{}/oauth2/default", self.base)
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Publishes a new key set (the old keys are gone from it).
    fn rotate(&self, keys: &[(&str, &str)]) {
        *self.jwks.lock().expect("lock") = jwks(keys);
    }

    fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// The keys endpoint answers after this long.
    fn slow(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// The inline hook of the contract, with OAuth against this issuer, and `extra` keys
    /// (TOML lines). The rules handler refuses a token hook without rules, so it adds one
    /// access-token claim.
    fn hook_with(&self, extra: &str) -> String {
        format!(
            r#"
[[inline_hooks]]
name = "token"
path = "{PATH}"
type = "token"
{extra}
auth = {{ type = "oauth", issuer = "{issuer}", audience = "{AUDIENCE}", jwks_url = "{base}/oauth2/default/v1/keys", scopes = ["{SCOPE}"], client_id = "{CLIENT}", jwks_min_refresh = "{min}s" }}
handler = {{ kind = "rules", token = {{ claims = [{{ token = "access", name = "hook_checked_by", value = "hookwarden" }}] }} }}
"#,
            issuer = self.issuer(),
            base = self.base,
            min = MIN_REFRESH.as_secs(),
        )
    }

    /// Starts hookwarden with the hook, and waits for its first fetch of the keys.
    async fn serve(&self) -> TestServer {
        self.serve_with("").await
    }

    /// [`Issuer::serve`] with more keys for the hook (TOML lines).
    async fn serve_with(&self, extra: &str) -> TestServer {
        let server = start(Options {
            toml: Some(self.hook_with(extra)),
            ..Default::default()
        })
        .await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.fetches() == 0 {
            assert!(
                Instant::now() < deadline,
                "hookwarden never fetched the JWKS"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server
    }
}

/// A JWKS document with these (public PEM, kid) keys.
fn jwks(keys: &[(&str, &str)]) -> String {
    let keys: Vec<Jwk> = keys
        .iter()
        .map(|(pem, kid)| {
            let key = DecodingKey::from_rsa_pem(pem.as_bytes()).expect("public pem");
            let mut jwk = Jwk::from_decoding_key(&key, Some(Algorithm::RS256)).expect("jwk");
            jwk.common.key_id = Some((*kid).to_owned());
            jwk.common.public_key_use = Some(PublicKeyUse::Signature);
            jwk
        })
        .collect();
    json!({ "keys": keys }).to_string()
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// The access token Okta gets with client credentials for this hook.
fn claims(issuer: &Issuer) -> Value {
    json!({
        "ver": 1,
        "jti": format!("AT.{}", uuid::Uuid::new_v4()),
        "iss": issuer.issuer(),
        "aud": AUDIENCE,
        "iat": now(),
        "exp": now() + 3600,
        "cid": CLIENT,
        "sub": CLIENT,
        "scp": [SCOPE],
    })
}

fn sign(private_pem: &str, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let key = EncodingKey::from_rsa_pem(private_pem.as_bytes()).expect("private pem");
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

/// A token naming a kid nobody has; unsigned, since the kid lookup refuses it first.
fn random_kid_token(issuer: &Issuer) -> String {
    let header = json!({ "alg": "RS256", "typ": "JWT", "kid": uuid::Uuid::new_v4().to_string() });
    format!("{}.{}.c2lnbmF0dXJl", b64(&header), b64(&claims(issuer)))
}

/// Okta's token hook request with this bearer token.
async fn call(server: &TestServer, token: &str) -> reqwest::Response {
    server
        .client
        .post(server.url(PATH))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .body(fixture("token-hook-request.json"))
        .send()
        .await
        .expect("request")
}

async fn assert_accepted(server: &TestServer, token: &str, what: &str) {
    let res = call(server, token).await;
    let status = res.status();
    let body = res.text().await.expect("body");
    assert_eq!(status, 200, "{what}: {body}");
    serde_json::from_str::<Value>(&body)
        .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {body}"));
}

async fn assert_refused(server: &TestServer, token: &str, what: &str) {
    let res = call(server, token).await;
    let status = res.status();
    let body = res.text().await.expect("body");
    assert_eq!(status, 401, "{what}: {body}");
    let v: Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {body}"));
    let summary = v["errorSummary"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: {body}"));
    assert!(!summary.is_empty(), "{what}");
    assert!(!body.contains(token), "{what}: the answer echoes the token");
}

#[tokio::test]
async fn a_valid_token_is_accepted() {
    let issuer = Issuer::start(&[(KEY_A_PUBLIC, "a")]).await;
    let server = issuer.serve().await;
    for i in 0..3 {
        let t = sign(KEY_A_PRIVATE, "a", &claims(&issuer));
        assert_accepted(&server, &t, &format!("call {i}")).await;
    }
    assert_eq!(issuer.fetches(), 1, "keys fetched once and cached");
    server.stop().await;
}

#[tokio::test]
async fn requests_without_a_bearer_token_are_refused_and_counted() {
    let issuer = Issuer::start(&[(KEY_A_PUBLIC, "a")]).await;
    let server = issuer.serve().await;
    let post = |auth: Option<String>| {
        let mut req = server
            .client
            .post(server.url(PATH))
            .header("Content-Type", "application/json")
            .body(fixture("token-hook-request.json"));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        req.send()
    };
    assert_eq!(post(None).await.expect("request").status(), 401);
    assert_eq!(post(Some(basic())).await.expect("request").status(), 401);
    let mut c = claims(&issuer);
    c["cid"] = json!("0oasomeoneelse");
    assert_refused(&server, &sign(KEY_A_PRIVATE, "a", &c), "wrong client id").await;
    let m = server.metrics().await;
    assert_eq!(
        metric(&m, "hookwarden_rejections_total", "reason=\"unauthorized\""),
        3.0,
        "{m}"
    );
    server.stop().await;
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let issuer = Issuer::start(&[(KEY_A_PUBLIC, "a")]).await;
    let server = issuer.serve().await;
    let mut c = claims(&issuer);
    c["iat"] = json!(now() - 7200);
    c["exp"] = json!(now() - 3600);
    assert_refused(&server, &sign(KEY_A_PRIVATE, "a", &c), "expired").await;
    server.stop().await;
}

#[tokio::test]
async fn a_token_not_yet_valid_is_refused() {
    let issuer = Issuer::start(&[(KEY_A_PUBLIC, "a")]).await;
    let server = issuer.serve().await;
    let mut c = claims(&issuer);
    c["nbf"] = json!(now() + 600);
    assert_refused(&server, &sign(KEY_A_PRIVATE, "a", &c), "nbf in 10 minutes").await;
    server.stop().await;
}

#[tokio::test]
async fn a_token_from_another_issuer_is_refused() {
    let issuer = Issuer::start(&[(KEY_A_PUBLIC, "a")]).await;
    let server = issuer.serve().await;
    let mut c = claims(&issuer);
    c["iss"] = json!("https://evil.example.com/oauth2/default");
    assert_refused(&server, &sign(KEY_A_PRIVATE, "a", &c), "wrong issuer").await;
    server.stop().await;
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let issuer = Issuer::start(&[(KEY_A_PUBLIC, "a")]).await;
    let server = issuer.serve().await;
    let mut c = claims(&issuer);
    c["aud"] = json!("api://payments");
    assert_refused(&server, &sign(KEY_A_PRIVATE, "a", &c), "wrong audience").await;
    server.stop().await;
}

#[tokio::test]
async fn a_token_signed_by_an_unknown_key_is_refused() {
    let issuer = Issuer::start(&[(KEY_A_PUBLIC, "a")]).await;
    let server = issuer.serve().await;
    let c = claims(&issuer);
    assert_refused(&server, &sign(KEY_B_PRIVATE, "b", &c), "unknown kid").await;
    assert_refused(
        &server,
        &sign(KEY_B_PRIVATE, "a", &c),
        "known kid, wrong key",
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn a_key_rotated_at_the_issuer_is_picked_up_without_a_restart() {
    let issuer = Issuer::start(&[(KEY_A_PUBLIC, "a")]).await;
    let server = issuer.serve().await;
    assert_accepted(
        &server,
        &sign(KEY_A_PRIVATE, "a", &claims(&issuer)),
        "old key",
    )
    .await;
    assert_eq!(issuer.fetches(), 1);
    issuer.rotate(&[(KEY_B_PUBLIC, "b")]);
    // Past the refresh interval since the first fetch, so the new kid may trigger one.
    tokio::time::sleep(MIN_REFRESH + Duration::from_millis(200)).await;
    assert_accepted(
        &server,
        &sign(KEY_B_PRIVATE, "b", &claims(&issuer)),
        "new key",
    )
    .await;
    assert_eq!(issuer.fetches(), 2, "one refresh");
    assert_accepted(
        &server,
        &sign(KEY_B_PRIVATE, "b", &claims(&issuer)),
        "new key again",
    )
    .await;
    assert_eq!(issuer.fetches(), 2, "the new key is cached");
    // The issuer no longer publishes key a: once refreshed, it is no longer trusted.
    assert_refused(
        &server,
        &sign(KEY_A_PRIVATE, "a", &claims(&issuer)),
        "retired key",
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn a_token_without_the_required_scope_is_refused() {
    let issuer = Issuer::start(&[(KEY_A_PUBLIC, "a")]).await;
    let server = issuer.serve().await;
    let mut c = claims(&issuer);
    c["scp"] = json!(["openid", "okta.hooksx"]);
    assert_refused(&server, &sign(KEY_A_PRIVATE, "a", &c), "missing scope").await;
    server.stop().await;
}

#[tokio::test]
async fn an_unsigned_token_is_refused() {
    let issuer = Issuer::start(&[(KEY_A_PUBLIC, "a")]).await;
    let server = issuer.serve().await;
    let c = claims(&issuer);
    let t = format!(
        "{}.{}.",
        b64(&json!({ "alg": "none", "typ": "JWT", "kid": "a" })),
        b64(&c)
    );
    assert_refused(&server, &t, "alg none").await;
    let t = format!(
        "{}.{}.",
        b64(&json!({ "alg": "none", "typ": "JWT" })),
        b64(&c)
    );
    assert_refused(&server, &t, "alg none without kid").await;
    server.stop().await;
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    let issuer = Issuer::start(&[(KEY_A_PUBLIC, "a")]).await;
    let server = issuer.serve().await;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("a".into());
    let t = jsonwebtoken::encode(
        &header,
        &claims(&issuer),
        &EncodingKey::from_secret(KEY_A_PUBLIC.as_bytes()),
    )
    .expect("sign");
    assert_refused(&server, &t, "HS256 keyed with the public PEM").await;
    server.stop().await;
}

#[tokio::test]
async fn when_the_issuer_goes_down_the_cached_key_keeps_working() {
    let issuer = Issuer::start(&[(KEY_A_PUBLIC, "a")]).await;
    let server = issuer.serve().await;
    assert_accepted(
        &server,
        &sign(KEY_A_PRIVATE, "a", &claims(&issuer)),
        "before",
    )
    .await;
    issuer.fail(true);
    tokio::time::sleep(MIN_REFRESH + Duration::from_millis(200)).await;
    assert_accepted(
        &server,
        &sign(KEY_A_PRIVATE, "a", &claims(&issuer)),
        "issuer down",
    )
    .await;
    assert_eq!(issuer.fetches(), 1, "a known key needs no fetch");
    assert_refused(
        &server,
        &sign(KEY_B_PRIVATE, "b", &claims(&issuer)),
        "unknown kid",
    )
    .await;
    assert_eq!(
        issuer.fetches(),
        2,
        "the unknown kid tried a refresh, which failed"
    );
    assert_accepted(
        &server,
        &sign(KEY_A_PRIVATE, "a", &claims(&issuer)),
        "after",
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn a_burst_of_unknown_kids_causes_at_most_a_couple_of_fetches() {
    let issuer = Issuer::start(&[(KEY_A_PUBLIC, "a")]).await;
    let server = Arc::new(issuer.serve().await);
    assert_accepted(
        &server,
        &sign(KEY_A_PRIVATE, "a", &claims(&issuer)),
        "warm up",
    )
    .await;
    tokio::time::sleep(MIN_REFRESH + Duration::from_millis(200)).await;
    let before = issuer.fetches();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let server = server.clone();
        let t = random_kid_token(&issuer);
        calls.spawn(async move { call(&server, &t).await.status() });
    }
    while let Some(status) = calls.join_next().await {
        assert_eq!(status.expect("task"), 401);
    }
    let fetched = issuer.fetches() - before;
    assert!(
        (1..=2).contains(&fetched),
        "50 unknown kids caused {fetched} fetches"
    );
    // Known tokens were never affected.
    assert_accepted(
        &server,
        &sign(KEY_A_PRIVATE, "a", &claims(&issuer)),
        "after",
    )
    .await;
    let server = Arc::try_unwrap(server).unwrap_or_else(|_| panic!("server still shared"));
    server.stop().await;
}

#[tokio::test]
async fn a_key_fetch_slower_than_the_budget_gets_the_fallback_in_time_and_the_next_call_the_handler(
) {
    // Okta gives the call 3 s; the hook's budget is 1 s, counted from the request's arrival.
    // The keys endpoint takes 1.6 s for the token's new kid: longer than the budget, shorter
    // than our fetch timeout (2 s), so the fetch completes after the answer.
    const BUDGET: Duration = Duration::from_secs(1);
    let issuer = Issuer::start(&[(KEY_A_PUBLIC, "a")]).await;
    let server = issuer.serve_with("budget = \"1s\"").await;
    // Okta signs with a new key, b, which the issuer publishes (and answers slowly).
    issuer.rotate(&[(KEY_A_PUBLIC, "a"), (KEY_B_PUBLIC, "b")]);
    issuer.slow(Duration::from_millis(1600));
    // Past the refresh interval since the first fetch, so the new kid may cause one.
    tokio::time::sleep(MIN_REFRESH + Duration::from_millis(200)).await;
    let token = sign(KEY_B_PRIVATE, "b", &claims(&issuer));

    let sent = Instant::now();
    let res = call(&server, &token).await;
    let took = sent.elapsed();
    let status = res.status();
    let marked = res.headers().get("x-hookwarden-fallback").cloned();
    let body = res.text().await.expect("body");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        marked.as_ref().map(|v| v.as_bytes()),
        Some(&b"deadline"[..])
    );
    // The token hook's fallback (open): `{}`, Okta's default action.
    let v: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v, json!({}), "{body}");
    assert!(
        took >= BUDGET - Duration::from_millis(100) && took < BUDGET + Duration::from_millis(300),
        "answered after {took:?}"
    );
    assert!(took < Duration::from_secs(3));
    assert_eq!(issuer.fetches(), 2, "the new kid started a fetch");
    let m = server.metrics().await;
    assert_eq!(
        metric(
            &m,
            "hookwarden_inline_calls_total",
            "outcome=\"fallback_deadline\""
        ),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric(&m, "hookwarden_rejections_total", "reason=\"unauthorized\""),
        0.0,
        "{m}"
    );

    // The fetch went on after the answer (1.6 s from the call): key b is cached now, and
    // the next call with it is the handler's, at once and without another fetch.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    issuer.slow(Duration::ZERO);
    let sent = Instant::now();
    let res = call(&server, &sign(KEY_B_PRIVATE, "b", &claims(&issuer))).await;
    let took = sent.elapsed();
    let status = res.status();
    let body = res.text().await.expect("body");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("hook_checked_by"), "{body}");
    assert!(took < BUDGET / 2, "answered after {took:?}");
    assert_eq!(issuer.fetches(), 2, "no second fetch");
    // A token that is simply wrong is still refused, deadline or not.
    let mut c = claims(&issuer);
    c["aud"] = json!("api://payments");
    assert_refused(&server, &sign(KEY_B_PRIVATE, "b", &c), "wrong audience").await;
    server.stop().await;
}
