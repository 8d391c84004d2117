//! Unit tests of `http::oauth`.

use super::*;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;

// Test-only key pairs, generated once with `openssl genrsa 2048` / `openssl rsa -pubout`
// and `openssl ecparam -name prime256v1`. They protect nothing.
const RSA_A_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDXaXEXjmG98CNn
3vhp4u9K3HKeNx3dk/eM9bdjDKev7QNRVQKhIFBSVNyIbYjqUL8Vxtf+wb/D3mX/
+C2i6DA0DaKpde2J11p1RCIi/mcNXhGu3zuiLuGSijJ3n1xXGa8yBWU+bUvCEr2U
agL/9MYBjtYiVASWycCzzGMw6IA3kF9Zrv5+MV2QPqCweHmO1LZ1FsE/vWffyRQO
BKVlXjHP5dsBAAfnWOVyONoSkrzfIjZWeEgrYuuTWyIvhdUG86P5LFTfsm63qZWu
GEVohWlNpKmvrEW1qhlAffGrzk2vHQ0ZuOCsrOe7W/OOBfADREQ3+QjUfZxQsxDt
XLdqse4NAgMBAAECggEAOXzIU7MJ3rjBmizlOsz3c5EVfafT7phYjmPdBzAPaGHm
asQ3KW0IQpCnMjmZOn9GH7erWS+3z7wAmKlQ9JLmml2xNWxlck3otDb0rUYblnOu
YG7u6T99r6/1+/qpmA0gtka+WESu3SJHOd544noehbfq6cpmVx+Mr+8x4ZGK9kix
pMZtRjJiK3fDBIF+x7bmWKZHXhMBD41QTbto3htOFwpeJB7bs0kXBAOsxj4B4SfH
WqBwl2A66rnUqJjVWaOUgOT0QzBE7qKfQbBg2X0yqI+1DNtark8LkrPGm6GYUWEh
o0+28Ex5IShrNLOtHU0pIDYUgpHj/fpPs5CHrMPTuQKBgQD7ujVVWb0tAKDHnocp
cRqXakGFFQTPFFVRULCfpqrEvoeBhf35QEn/KSq2mE+VSlRcej2klJ5f+jH/C/rQ
rasAQDzcFx2AxgvC1sJeD2e4Ed8rx+yjP3yxQYw/8Ap5KlpW42FvuXTlO4FA2G8A
GMSVRnuWvPxZ/pMnC1ebPxPClwKBgQDbEW/4aCtZ1t7FMHBBQa4WvDG1/+NR8Z6t
paZcbpNlxgpJdeZWZpXn/xHuwa3bKNFbPq4bSuC7VHkm2bFHWYiZ0iXu/URWNEAX
Gm/GH8wLmv525orcT82nM60HIk7wuW6uTUXBkfNIeClwgTSq37jR2NLisun+JNVj
FBqqr5d8+wKBgQCyVmO+igsqPM2rXrZnN8gdCZxNimyTwNYI+9+F2/AT3t/ldWZP
FarW6PVn01RecgB+W+QcG2ZwnLKa/IO/H6qMTPZQ/tdaCfT/HmMpfESA9bhkLgmK
Rkoy0jtoeMkSulyyPfkjzAHy/Us/A5bwPJvZHcwlKNKnd2INQU3ZoMCBFQKBgHWr
+SxCsD6St5jOOw4ifKPDtSQg7nc+xVBbMXBnCQ/a//2TsgVpF07F6VkJehzF4ScV
FSqd3vdhGa6vspUz17dgdXXZX1K6wE5oqe+Pdugo+lTd42sSBtKwZFn3qNWPlY9U
/IpMnpSnzwKatLKwd7Not2aEWkJkgKa2ztgud73vAoGAQK5AnBFovzLjgLpGOGmZ
s1gdrk3zaRZbIRQo/pcWmM+dVmwoc9kzNPUR1/pDVO9/gBJIXNLn4aWB9UDBTFDn
CO+gap575yBIEhPjp/GgP5kHIh6/RTAdhK+OxWTzYrhuRjGL1ypKoM0jxG7qpWLi
uiA9xsu3XNRP7pmEZMh/WNQ=
-----END PRIVATE KEY-----
";
const RSA_A_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA12lxF45hvfAjZ974aeLv
Stxynjcd3ZP3jPW3Ywynr+0DUVUCoSBQUlTciG2I6lC/FcbX/sG/w95l//gtougw
NA2iqXXtiddadUQiIv5nDV4Rrt87oi7hkooyd59cVxmvMgVlPm1LwhK9lGoC//TG
AY7WIlQElsnAs8xjMOiAN5BfWa7+fjFdkD6gsHh5jtS2dRbBP71n38kUDgSlZV4x
z+XbAQAH51jlcjjaEpK83yI2VnhIK2Lrk1siL4XVBvOj+SxU37Jut6mVrhhFaIVp
TaSpr6xFtaoZQH3xq85Nrx0NGbjgrKznu1vzjgXwA0REN/kI1H2cULMQ7Vy3arHu
DQIDAQAB
-----END PUBLIC KEY-----
";
const RSA_B_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCgglSWoyyhEP2x
EsrcIW4yw5qT7/xMhlzIcA7QGNMkcjoLePm1KVjCHoRb3L7Pma4VH3GIgMHD9BEN
eB8ie8x9oqtBaa/qEqP0EqBaSqrASY96N3AKwrY/QUpHw6Z2yQUef/4g4fF7vJqM
aj0sx+IHB0p38zAbJ6gLg19dJ/8RbDuVdBC2f/XO7J8rzifMSsUhN/B1yacvT700
fsoBVSGnssmq/QyY3Rb1Bl8U2tQ3lyoI5AV6CqE4HQWUwXS3yx9NM3oZlBN5XZ17
IN0YTMqvalH1khhUx2O7O3IMX5VCa2kKJw6n8PymzXlr29J3T/2TLDZWjE9yRdO7
A/5XDQoNAgMBAAECggEAM8R1JbRxA22odMDb3o2Frie6JjaDh+bZ6+eAT4uCJcIV
iHe3Cb/RGaKgC8SxYeFt7PAcPOtSEzIXgeGZIRUOigK5+znr+7GRYXnUb+qfEa9n
8AILR90uzE3xeB3ZBXymAwVC4DYfHUpiCiGFo3jAJIYsdW1guZFbuILhcfkhYeuk
G9xWpJsrjmdmNkno33r0uhhzSAKLNyaQEDOMzZkTbrewiQJB2IX+janEyksbHK57
qaedmo9bItYrFHBxqB74k4JVsL3wF5+euVKWLJhTuXfwvJly7i0PQxxbpzSwmVhJ
8/d7nu2KrU9PImASRckaQDZ3FVsWCNXk5hokJOk/PQKBgQDfI32W8539Iy7S91qg
VYxNTAGM0zxj2T2VUaKV5V/DcFhcjZQtd3r23mbLxF+lCWPeJ2WhyTH8poNO2m2l
aG2yOImk7HEba/XWHC9m+bOjw1Ip8u2WcDvjEwP2I5JB38gYpRXY8Ok8tOJ39liL
sss/2fV2f6BtV7D1vw8yflZP1wKBgQC4Jae4hgZdRho/xrhO5gnPnbpKY5xTs9cu
uEsF/Kn2MYB9T8JwCNwJ1OcTdwubzHQjE12HI5EIDMtoev19gJpA54ZqmDG/N/TZ
Uh0ITXzeLurYRiZPx7IPZpbdWfSOnz68ocCjIxY3NVe5lNGFUB9wvT0B5crQbyUF
XugKOE4IuwKBgGl4PAeatQWOmLZNBoAcj4mFsIHg4n2LlGk8we26Em6tboaowO5Q
uEVx0ALmmhLHAnZiBs7W65KxHgWqhwMU/iysPps+yyOb/wIqJlm1Ey0HyJFdauGd
wSDOvyOboqkSXmEPvujgzk3MbfMn9KhrZViT7EsLfkfQmCtAGK3UO3XXAoGBAJq7
KT8nftmJOi00sVG6gavugMZZBNZgWwNq379cGwQ/fBPPnTW+fAXW24PDmAGFvmBq
uUAAZrE47wIPtkhqczLuWEfhMovWXOru0G5VjgKzsamg6DhJOBkwvruoBpKAxJqD
3/Y0WUpyjA/oOFWoiYKVwFmD2PNjMNxebuOHhCpZAoGBAJt3OQfQZCPHqY/IStyZ
XZLUnWCfRxhhEK0rF1KdM9Y88H093D46qwJS71K0DgxjGwf6BC4udmfWH+n2BeK6
dzF2QBxYlE9SWpOPN9k41hVX+SWVKwWe2PYEk2eUEAsJVXE2nMt/9cDmI6u0BVQI
L8dA+D6GeA+OKHboLjub3Cmi
-----END PRIVATE KEY-----
";
const RSA_B_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAoIJUlqMsoRD9sRLK3CFu
MsOak+/8TIZcyHAO0BjTJHI6C3j5tSlYwh6EW9y+z5muFR9xiIDBw/QRDXgfInvM
faKrQWmv6hKj9BKgWkqqwEmPejdwCsK2P0FKR8OmdskFHn/+IOHxe7yajGo9LMfi
BwdKd/MwGyeoC4NfXSf/EWw7lXQQtn/1zuyfK84nzErFITfwdcmnL0+9NH7KAVUh
p7LJqv0MmN0W9QZfFNrUN5cqCOQFegqhOB0FlMF0t8sfTTN6GZQTeV2deyDdGEzK
r2pR9ZIYVMdjuztyDF+VQmtpCicOp/D8ps15a9vSd0/9kyw2VoxPckXTuwP+Vw0K
DQIDAQAB
-----END PUBLIC KEY-----
";
const EC_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgiFPXpA7LbDUM/Ju4
YPiuTUuNyXFbIDnYx6IYcNyGHYShRANCAARKD8jvQ+GJMDs2eAZtgRONBpXxv0Uf
xipS3WKyBpYMttxlFbdvHBvzsjgNUh+OZ+1kh558Kv1IFf8Tizp1GBmp
-----END PRIVATE KEY-----
";
const EC_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAESg/I70PhiTA7NngGbYETjQaV8b9F
H8YqUt1isgaWDLbcZRW3bxwb87I4DVIfjmftZIeefCr9SBX/E4s6dRgZqQ==
-----END PUBLIC KEY-----
";

const ISSUER: &str = "https://example.okta.com/oauth2/default";
const AUDIENCE: &str = "api://default";
const CLIENT: &str = "0oahookclient";
const SCOPE: &str = "okta.hooks";

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// A public JWK with this kid, n/e (or x/y) taken from the PEM.
fn jwk(public_pem: &str, kid: &str, alg: Algorithm) -> Value {
    let key = match alg {
        Algorithm::ES256 | Algorithm::ES384 => {
            DecodingKey::from_ec_pem(public_pem.as_bytes()).expect("ec pem")
        }
        _ => DecodingKey::from_rsa_pem(public_pem.as_bytes()).expect("rsa pem"),
    };
    let mut jwk = Jwk::from_decoding_key(&key, Some(alg)).expect("jwk");
    jwk.common.key_id = Some(kid.to_owned());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    serde_json::to_value(&jwk).expect("json")
}

fn jwks(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}

/// Okta's client-credentials access token, as the hook receives it.
fn claims() -> Value {
    json!({
        "ver": 1,
        "jti": "AT.test",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now(),
        "exp": now() + 300,
        "cid": CLIENT,
        "sub": CLIENT,
        "scp": [SCOPE],
    })
}

fn sign(private_pem: &str, kid: Option<&str>, alg: Algorithm, claims: &Value) -> String {
    let key = match alg {
        Algorithm::ES256 | Algorithm::ES384 => {
            EncodingKey::from_ec_pem(private_pem.as_bytes()).expect("ec key")
        }
        _ => EncodingKey::from_rsa_pem(private_pem.as_bytes()).expect("rsa key"),
    };
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, &key).expect("sign")
}

fn token_a(claims: &Value) -> String {
    sign(RSA_A_PRIVATE, Some("a"), Algorithm::RS256, claims)
}

fn b64(json: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string())
}

fn headers(value: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::AUTHORIZATION, value.parse().expect("header value"));
    h
}

fn bearer(token: &str) -> HeaderMap {
    headers(&format!("Bearer {token}"))
}

/// A config whose JWKS is a file holding `set`, in a tempdir kept alive by the caller.
fn file_config(set: &str) -> (tempfile::TempDir, OAuthConfig) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, set).expect("write jwks");
    let config = OAuthConfig {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        jwks_url: None,
        jwks_file: Some(path),
        scopes: vec![SCOPE.into()],
        client_id: Some(CLIENT.into()),
        leeway: Duration::from_secs(30),
        jwks_cache_ttl: Duration::from_secs(3600),
        jwks_min_refresh: Duration::from_secs(30),
    };
    (dir, config)
}

fn verifier_with(set: &str, tweak: impl FnOnce(&mut OAuthConfig)) -> BearerVerifier {
    let (dir, mut config) = file_config(set);
    tweak(&mut config);
    let v = BearerVerifier::new(&config).expect("verifier");
    // The file is read in `new`; the tempdir may go.
    drop(dir);
    v
}

fn verifier() -> BearerVerifier {
    verifier_with(&jwks(&[jwk(RSA_A_PUBLIC, "a", Algorithm::RS256)]), |_| {})
}

async fn verify_claims(v: &BearerVerifier, claims: &Value) -> Result<Claims, BearerError> {
    v.verify(&bearer(&token_a(claims))).await
}

#[tokio::test]
async fn a_valid_okta_token_is_accepted() {
    let v = verifier();
    let c = verify_claims(&v, &claims()).await.expect("valid");
    assert_eq!(c.key_id.as_deref(), Some("a"));
    assert_eq!(c.algorithm, Algorithm::RS256);
    assert_eq!(c.client_id.as_deref(), Some(CLIENT));
    assert_eq!(c.scopes, vec![SCOPE.to_owned()]);
    assert!(v.check(&bearer(&token_a(&claims()))).await);
}

#[test]
fn the_jwk_taken_from_the_pem_is_a_2048_bit_rsa_key() {
    // Guards the test fixture itself: n/e derived from the public PEM.
    let j = jwk(RSA_A_PUBLIC, "a", Algorithm::RS256);
    assert_eq!(j["kty"], "RSA");
    assert_eq!(j["e"], "AQAB");
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(j["n"].as_str().expect("n"))
        .expect("base64url");
    assert_eq!(n.iter().skip_while(|b| **b == 0).count(), 256);
}

#[tokio::test]
async fn the_scheme_is_case_insensitive() {
    let v = verifier();
    let t = token_a(&claims());
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        assert!(v.verify(&headers(&format!("{scheme} {t}"))).await.is_ok());
    }
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let mut c = claims();
    c["exp"] = json!(now() - 3600);
    c["iat"] = json!(now() - 7200);
    assert_eq!(
        verify_claims(&verifier(), &c).await.err(),
        Some(BearerError::Expired)
    );
}

#[tokio::test]
async fn exp_within_the_leeway_passes_and_beyond_it_fails() {
    let v = verifier(); // leeway 30 s
    let mut c = claims();
    c["exp"] = json!(now() - 10);
    assert!(
        verify_claims(&v, &c).await.is_ok(),
        "10 s late, 30 s leeway"
    );
    c["exp"] = json!(now() - 60);
    assert_eq!(
        verify_claims(&v, &c).await.err(),
        Some(BearerError::Expired)
    );
    let strict = verifier_with(&jwks(&[jwk(RSA_A_PUBLIC, "a", Algorithm::RS256)]), |c| {
        c.leeway = Duration::ZERO
    });
    c["exp"] = json!(now() - 10);
    assert_eq!(
        verify_claims(&strict, &c).await.err(),
        Some(BearerError::Expired)
    );
}

#[tokio::test]
async fn a_token_not_yet_valid_is_refused() {
    let v = verifier();
    let mut c = claims();
    c["nbf"] = json!(now() + 600);
    assert_eq!(
        verify_claims(&v, &c).await.err(),
        Some(BearerError::NotYetValid)
    );
    c["nbf"] = json!(now() + 10);
    assert!(verify_claims(&v, &c).await.is_ok(), "within the leeway");
}

#[tokio::test]
async fn a_token_without_exp_is_refused() {
    let mut c = claims();
    c.as_object_mut().expect("object").remove("exp");
    assert_eq!(
        verify_claims(&verifier(), &c).await.err(),
        Some(BearerError::MissingClaim("exp"))
    );
    c["exp"] = json!("tomorrow");
    assert!(verify_claims(&verifier(), &c).await.is_err());
}

#[tokio::test]
async fn a_wrong_or_missing_issuer_is_refused() {
    let mut c = claims();
    c["iss"] = json!("https://evil.example.com/oauth2/default");
    assert_eq!(
        verify_claims(&verifier(), &c).await.err(),
        Some(BearerError::WrongIssuer)
    );
    c.as_object_mut().expect("object").remove("iss");
    assert_eq!(
        verify_claims(&verifier(), &c).await.err(),
        Some(BearerError::MissingClaim("iss"))
    );
}

#[tokio::test]
async fn the_audience_must_be_ours() {
    let v = verifier();
    let mut c = claims();
    c["aud"] = json!("api://other");
    assert_eq!(
        verify_claims(&v, &c).await.err(),
        Some(BearerError::WrongAudience)
    );
    c["aud"] = json!(["api://other", AUDIENCE]);
    assert!(
        verify_claims(&v, &c).await.is_ok(),
        "aud array containing ours"
    );
    c.as_object_mut().expect("object").remove("aud");
    assert_eq!(
        verify_claims(&v, &c).await.err(),
        Some(BearerError::MissingClaim("aud"))
    );
}

#[tokio::test]
async fn an_unknown_kid_is_refused() {
    let t = sign(RSA_B_PRIVATE, Some("b"), Algorithm::RS256, &claims());
    assert_eq!(
        verifier().verify(&bearer(&t)).await.err(),
        Some(BearerError::UnknownKid)
    );
}

#[tokio::test]
async fn another_keys_signature_under_a_known_kid_is_refused() {
    let t = sign(RSA_B_PRIVATE, Some("a"), Algorithm::RS256, &claims());
    assert_eq!(
        verifier().verify(&bearer(&t)).await.err(),
        Some(BearerError::BadSignature)
    );
}

#[tokio::test]
async fn a_token_without_kid_needs_a_one_key_set() {
    let t = sign(RSA_A_PRIVATE, None, Algorithm::RS256, &claims());
    assert!(verifier().verify(&bearer(&t)).await.is_ok());
    let two = verifier_with(
        &jwks(&[
            jwk(RSA_A_PUBLIC, "a", Algorithm::RS256),
            jwk(RSA_B_PUBLIC, "b", Algorithm::RS256),
        ]),
        |_| {},
    );
    assert_eq!(
        two.verify(&bearer(&t)).await.err(),
        Some(BearerError::MissingKid)
    );
    // With two keys, a kid still selects the right one.
    let tb = sign(RSA_B_PRIVATE, Some("b"), Algorithm::RS256, &claims());
    assert!(two.verify(&bearer(&tb)).await.is_ok());
}

#[tokio::test]
async fn every_configured_scope_is_required() {
    let v = verifier_with(&jwks(&[jwk(RSA_A_PUBLIC, "a", Algorithm::RS256)]), |c| {
        c.scopes = vec![SCOPE.into(), "okta.extra".into()]
    });
    assert_eq!(
        verify_claims(&v, &claims()).await.err(),
        Some(BearerError::MissingScope("okta.extra".into()))
    );
    let mut c = claims();
    c.as_object_mut().expect("object").remove("scp");
    assert_eq!(
        verify_claims(&verifier(), &c).await.err(),
        Some(BearerError::MissingScope(SCOPE.into()))
    );
}

#[tokio::test]
async fn scopes_in_the_space_separated_scope_claim_count() {
    let v = verifier_with(&jwks(&[jwk(RSA_A_PUBLIC, "a", Algorithm::RS256)]), |c| {
        c.scopes = vec![SCOPE.into(), "okta.extra".into()]
    });
    let mut c = claims();
    c.as_object_mut().expect("object").remove("scp");
    c["scope"] = json!(format!("openid {SCOPE} okta.extra"));
    let ok = verify_claims(&v, &c).await.expect("scope string");
    assert!(ok.scopes.contains(&"okta.extra".to_owned()));
    c["scope"] = json!(format!("{SCOPE}x okta.extra"));
    assert_eq!(
        verify_claims(&v, &c).await.err(),
        Some(BearerError::MissingScope(SCOPE.into())),
        "a scope is a whole word, not a prefix"
    );
}

#[tokio::test]
async fn the_client_id_is_cid_then_client_id_then_sub() {
    let v = verifier();
    let mut c = claims();
    c["cid"] = json!("0oaother");
    assert_eq!(
        verify_claims(&v, &c).await.err(),
        Some(BearerError::WrongClientId),
        "cid wins over a matching sub"
    );
    let o = c.as_object_mut().expect("object");
    o.remove("cid");
    o.insert("client_id".into(), json!(CLIENT));
    o.insert("sub".into(), json!("someone"));
    assert!(verify_claims(&v, &c).await.is_ok(), "client_id");
    let o = c.as_object_mut().expect("object");
    o.remove("client_id");
    o.insert("sub".into(), json!(CLIENT));
    assert!(verify_claims(&v, &c).await.is_ok(), "sub");
    c.as_object_mut().expect("object").remove("sub");
    assert_eq!(
        verify_claims(&v, &c).await.err(),
        Some(BearerError::MissingClientId)
    );
    let any = verifier_with(&jwks(&[jwk(RSA_A_PUBLIC, "a", Algorithm::RS256)]), |c| {
        c.client_id = None
    });
    assert!(verify_claims(&any, &c).await.is_ok(), "not configured");
}

#[tokio::test]
async fn alg_none_is_refused() {
    for alg in ["none", "None", "NONE"] {
        let t = format!(
            "{}.{}.",
            b64(&json!({ "alg": alg, "typ": "JWT", "kid": "a" })),
            b64(&claims())
        );
        assert_eq!(
            verifier().verify(&bearer(&t)).await.err(),
            Some(BearerError::AlgorithmNotAllowed("none"))
        );
    }
}

#[tokio::test]
async fn hs256_signed_with_our_public_key_is_refused() {
    // The key-confusion attack: HMAC keyed with the (public) RSA key bytes.
    for secret in [RSA_A_PUBLIC.as_bytes().to_vec(), RSA_A_PUBLIC.trim().into()] {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let mut header = Header::new(alg);
            header.kid = Some("a".into());
            let t = encode(&header, &claims(), &EncodingKey::from_secret(&secret)).expect("sign");
            assert_eq!(
                verifier().verify(&bearer(&t)).await.err(),
                Some(BearerError::AlgorithmNotAllowed("HS*"))
            );
        }
    }
}

#[tokio::test]
async fn a_symmetric_key_in_the_jwks_is_never_used() {
    let set = json!({ "keys": [{ "kty": "oct", "kid": "h", "alg": "HS256", "k": "c2VjcmV0" }] })
        .to_string();
    let (_dir, config) = file_config(&set);
    let err = BearerVerifier::new(&config)
        .expect_err("no usable key")
        .to_string();
    assert!(err.contains("none of its 1 key"), "{err}");
}

#[tokio::test]
async fn the_tokens_alg_must_be_the_keys_alg() {
    // An RS384 key does not verify RS256, even with the right signature.
    let v = verifier_with(&jwks(&[jwk(RSA_A_PUBLIC, "a", Algorithm::RS384)]), |_| {});
    assert_eq!(
        verify_claims(&v, &claims()).await.err(),
        Some(BearerError::AlgorithmMismatch)
    );
    let t = sign(RSA_A_PRIVATE, Some("a"), Algorithm::RS384, &claims());
    assert!(
        v.verify(&bearer(&t)).await.is_ok(),
        "RS384 when the JWK says so"
    );
    // An ES256 token naming an RSA key.
    let t = sign(EC_PRIVATE, Some("a"), Algorithm::ES256, &claims());
    assert_eq!(
        verifier().verify(&bearer(&t)).await.err(),
        Some(BearerError::AlgorithmMismatch)
    );
}

#[tokio::test]
async fn es256_is_accepted_from_a_p256_key() {
    let v = verifier_with(
        &jwks(&[
            jwk(RSA_A_PUBLIC, "a", Algorithm::RS256),
            jwk(EC_PUBLIC, "e", Algorithm::ES256),
        ]),
        |_| {},
    );
    let t = sign(EC_PRIVATE, Some("e"), Algorithm::ES256, &claims());
    let c = v.verify(&bearer(&t)).await.expect("es256");
    assert_eq!(c.algorithm, Algorithm::ES256);
}

#[tokio::test]
async fn ps256_and_other_algorithms_are_refused() {
    let t = sign(RSA_A_PRIVATE, Some("a"), Algorithm::PS256, &claims());
    assert_eq!(
        verifier().verify(&bearer(&t)).await.err(),
        Some(BearerError::AlgorithmNotAllowed("PS*"))
    );
    let t = format!(
        "{}.{}.c2ln",
        b64(&json!({ "alg": "RS256\u{1b}[31m", "kid": "a" })),
        b64(&claims())
    );
    assert_eq!(
        verifier().verify(&bearer(&t)).await.err(),
        Some(BearerError::AlgorithmNotAllowed("(unrecognised)"))
    );
}

#[tokio::test]
async fn critical_header_extensions_are_refused() {
    let head = json!({ "alg": "RS256", "kid": "a", "crit": ["exp"], "exp": 1 });
    // Re-sign with the crit header by hand: encode() has no crit field.
    let signing_input = format!("{}.{}", b64(&head), b64(&claims()));
    let sig = jsonwebtoken::crypto::sign(
        signing_input.as_bytes(),
        &EncodingKey::from_rsa_pem(RSA_A_PRIVATE.as_bytes()).expect("key"),
        Algorithm::RS256,
    )
    .expect("sign");
    let t = format!("{signing_input}.{sig}");
    assert_eq!(
        verifier().verify(&bearer(&t)).await.err(),
        Some(BearerError::CriticalHeader)
    );
}

#[tokio::test]
async fn malformed_authorization_headers_are_refused() {
    let v = verifier();
    let good = token_a(&claims());
    assert_eq!(
        v.verify(&HeaderMap::new()).await.err(),
        Some(BearerError::MissingHeader)
    );
    for (value, want) in [
        (good.clone(), BearerError::NotBearer),
        (format!("Basic {good}"), BearerError::NotBearer),
        (format!("Bearer{good}"), BearerError::NotBearer),
        ("Bearer ".to_owned(), BearerError::Malformed),
        ("Bearer".to_owned(), BearerError::NotBearer),
        (format!("Bearer {good} extra"), BearerError::Malformed),
        ("Bearer garbage".to_owned(), BearerError::Malformed),
        ("Bearer a.b.c".to_owned(), BearerError::Malformed),
        ("Bearer !!!.!!!.!!!".to_owned(), BearerError::Malformed),
        (format!("Bearer {good}.x"), BearerError::Malformed),
        (
            format!("Bearer {}", "A".repeat(MAX_TOKEN_BYTES + 1)),
            BearerError::TooLarge,
        ),
    ] {
        assert_eq!(
            v.verify(&headers(&value)).await.err(),
            Some(want),
            "{value:.40}"
        );
        assert!(!v.check(&headers(&value)).await);
    }
    let mut two = bearer(&good);
    two.append(
        header::AUTHORIZATION,
        format!("Bearer {good}").parse().expect("value"),
    );
    assert_eq!(
        v.verify(&two).await.err(),
        Some(BearerError::MultipleHeaders)
    );
    let mut opaque = HeaderMap::new();
    opaque.insert(
        header::AUTHORIZATION,
        axum::http::HeaderValue::from_bytes(b"Bearer \xff\xfe").expect("value"),
    );
    assert_eq!(v.verify(&opaque).await.err(), Some(BearerError::Malformed));
    // A truncated signature of a real token.
    let cut = &good[..good.len() - 10];
    assert_eq!(
        v.verify(&bearer(cut)).await.err(),
        Some(BearerError::BadSignature)
    );
}

#[test]
fn a_bad_jwks_file_is_an_error_from_new() {
    for bad in ["", "not json", "{}", r#"{"keys": []}"#, r#"{"keys": [1]}"#] {
        let (_dir, config) = file_config(bad);
        assert!(BearerVerifier::new(&config).is_err(), "{bad:?}");
    }
    let (dir, mut config) = file_config("{}");
    config.jwks_file = Some(dir.path().join("missing.json"));
    assert!(BearerVerifier::new(&config).is_err());
}

#[test]
fn encryption_keys_and_short_rsa_keys_are_skipped() {
    let mut enc = jwk(RSA_B_PUBLIC, "enc", Algorithm::RS256);
    enc["use"] = json!("enc");
    let mut short = jwk(RSA_B_PUBLIC, "short", Algorithm::RS256);
    short["n"] = json!(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xc3u8; 128]));
    let set = KeySet::parse(
        jwks(&[enc, short, jwk(RSA_A_PUBLIC, "a", Algorithm::RS256)]).as_bytes(),
        1,
    )
    .expect("one usable key");
    assert_eq!(set.keys.len(), 1);
    assert_eq!(set.total, 3);
    assert_eq!(set.keys[0].kid.as_deref(), Some("a"));
}

#[test]
fn a_key_set_that_cannot_be_installed_says_why_in_the_same_words() {
    let Err(e) = KeySet::parse(b"[1, 2]", 1) else {
        panic!("not a JWKS document")
    };
    assert!(matches!(e, JwksError::NotJwks(_)), "{e:?}");
    assert!(e.to_string().starts_with("not a JWKS document: "), "{e}");
    assert!(std::error::Error::source(&e).is_some());
    let Err(e) = KeySet::parse(br#"{"keys": []}"#, 1) else {
        panic!("no signing key")
    };
    assert_eq!(
        e.to_string(),
        "none of its 0 key(s) is an RSA (RS256/384/512) or EC (P-256/P-384) signing key"
    );
    assert_eq!(
        JwksError::TooLarge.to_string(),
        format!("larger than {MAX_JWKS_BYTES} bytes")
    );
    assert_eq!(
        JwksError::Status(reqwest::StatusCode::BAD_GATEWAY).to_string(),
        "status 502 Bad Gateway"
    );
}

#[test]
fn refusals_never_echo_the_token() {
    // Every message is a fixed string or a configured scope.
    let errors = [
        BearerError::AlgorithmNotAllowed("(unrecognised)"),
        BearerError::MissingScope(SCOPE.into()),
        BearerError::InvalidClaim("(other)"),
    ];
    for e in errors {
        assert!(!e.to_string().contains("eyJ"));
    }
}

mod remote;
