//! Shared-secret authentication on arbitrary header bytes, against a model: the
//! request is let in exactly when it carries the configured header once, and its whole
//! value is one of the configured credentials (any of several, as during a rotation).
//!
//! Input, one item a line: `basic [header]` or `header <name>`; then credentials,
//! `S:<secret>` (header auth) or `U:<user>:<password>` (Basic auth, split at the first
//! `:` after the user); then `H:<bytes>` lines, each one value of the configured header
//! as sent (lines that are not valid header bytes are left out).

#![no_main]

use base64::Engine as _;
use hookwarden::config::{AuthConfig, BasicUser, Secret};
use hookwarden::http::auth::Authenticator;
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|&b| b == b'\n');
    let Some(mode) = lines.next().and_then(|l| std::str::from_utf8(l).ok()) else {
        return;
    };
    let (basic, name) = match mode.split_once(' ').unwrap_or((mode, "")) {
        ("basic", "") => (true, "Authorization"),
        ("basic", name) => (true, name),
        ("header", name) => (false, name),
        _ => return,
    };
    let mut secrets = Vec::new();
    let mut users = Vec::new();
    let mut presented = Vec::new();
    for line in lines {
        match (
            line.get(..2),
            std::str::from_utf8(&line[line.len().min(2)..]),
        ) {
            (Some(b"S:"), Ok(secret)) => secrets.push(secret.to_owned()),
            (Some(b"U:"), Ok(pair)) => {
                if let Some((user, password)) = pair.split_once(':') {
                    users.push((user.to_owned(), password.to_owned()));
                }
            }
            (Some(b"H:"), _) => presented.push(&line[2..]),
            _ => {}
        }
    }
    // What the model accepts: the whole value of each usable credential (an empty
    // secret does not resolve, so it is no credential).
    let accepted: Vec<Vec<u8>> = if basic {
        users
            .iter()
            .filter(|(_, password)| !password.is_empty())
            .map(|(user, password)| {
                let encoded =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                format!("Basic {encoded}").into_bytes()
            })
            .collect()
    } else {
        secrets
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.as_bytes().to_vec())
            .collect()
    };
    let config = if basic {
        AuthConfig::Basic {
            header: name.to_owned(),
            users: users
                .iter()
                .map(|(user, password)| BasicUser {
                    username: user.clone(),
                    password: Secret::literal(password.clone()),
                })
                .collect(),
        }
    } else {
        AuthConfig::Header {
            header: name.to_owned(),
            secrets: secrets.iter().map(|s| Secret::literal(s.clone())).collect(),
        }
    };
    let authenticator = Authenticator::from_config(&config);

    let mut headers = HeaderMap::new();
    let header = HeaderName::from_bytes(name.as_bytes()).ok();
    let mut sent = Vec::new();
    if let Some(header) = &header {
        for value in presented {
            if let Ok(v) = HeaderValue::from_bytes(value) {
                headers.append(header.clone(), v);
                sent.push(value);
            }
        }
    }
    let expected = match sent.as_slice() {
        [one] => !one.is_empty() && accepted.iter().any(|a| a.as_slice() == *one),
        _ => false,
    };
    assert_eq!(
        authenticator.check(&headers),
        expected,
        "header {name:?}, sent {sent:?}, {} credential(s)",
        accepted.len()
    );
});
