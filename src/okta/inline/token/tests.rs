//! The token hook's types, builders and answer checks against Okta's samples and reference.

use super::*;
use serde_json::json;

fn roundtrip(sample: &str) -> TokenRequest {
    super::super::test_roundtrip(sample)
}

#[test]
fn request_sample_parses_and_roundtrips() {
    let r = roundtrip(include_str!(
        "../../../../tests/fixtures/okta/token-hook-request.json"
    ));
    assert_eq!(
        r.event_type.as_deref(),
        Some("com.okta.oauth2.tokens.transform")
    );
    assert!(r.has_id_token() && r.has_access_token());
    let ctx = r.data.context.as_ref().expect("context");
    let protocol = ctx.protocol.as_ref().expect("protocol");
    let oauth = protocol.request.as_ref().expect("protocol.request");
    assert_eq!(oauth.response_type.as_deref(), Some("token id_token"));
    assert_eq!(oauth.client_id.as_deref(), Some("customClientIdNative"));
    assert_eq!(
        ctx.session.as_ref().and_then(|s| s.amr.clone()),
        Some(vec!["PASSWORD".to_owned()])
    );
    let rule = ctx.policy.as_ref().and_then(|p| p.rule.as_ref());
    assert_eq!(
        rule.and_then(|r| r.id.as_deref()),
        Some("0prq8mLKuKAmavOvq0g3")
    );
    let id = r.data.identity.as_ref().expect("identity");
    assert_eq!(
        id.claims.as_ref().and_then(|c| c.get("nonce")),
        Some(&json!("asf"))
    );
    let lifetime = id.token.as_ref().and_then(|t| t.lifetime.as_ref());
    assert_eq!(lifetime.and_then(|l| l.expiration), Some(3600));
    let access = r.data.access.as_ref().expect("access");
    assert!(access
        .scopes
        .as_ref()
        .is_some_and(|s| s.contains_key("openid")));
    assert_eq!(
        r.data.refresh_token.as_ref().and_then(|t| t.jti.as_deref()),
        Some("oarob4a0tckCkGcyo1d6")
    );
}

#[test]
fn unknown_fields_are_kept() {
    let mut raw: Value = serde_json::from_str(include_str!(
        "../../../../tests/fixtures/okta/token-hook-request.json"
    ))
    .expect("sample");
    raw["data"]["identity"]["newThing"] = json!({"a": 1});
    raw["data"]["context"]["protocol"]["client"]["newField"] = json!(true);
    raw["brandNew"] = json!([1, 2]);
    let typed: TokenRequest = serde_json::from_value(raw.clone()).expect("typed");
    assert_eq!(serde_json::to_value(&typed).expect("serialise"), raw);
}

#[test]
fn missing_tokens_and_context_are_fine() {
    let typed: TokenRequest = serde_json::from_value(
        json!({"eventType": "com.okta.oauth2.tokens.transform", "data": {}}),
    )
    .expect("minimal request");
    assert!(!typed.has_id_token() && !typed.has_access_token());
}

#[test]
fn builders_produce_okta_shapes() {
    let answer = InlineResponse::empty()
        .with(identity_patch(vec![PatchOp::add(
            "/claims/extPatientId",
            json!("1234"),
        )]))
        .with(access_patch(vec![PatchOp::add(
            "/claims/external_guid",
            json!("F0384685-F87D-474B-848D-2058AC5655A7"),
        )]));
    let expected: Value = serde_json::from_str(include_str!(
        "../../../../tests/fixtures/okta/token-hook-response.json"
    ))
    .expect("sample");
    assert_eq!(serde_json::to_value(&answer).expect("serialise"), expected);

    let lifetimes: InlineResponse = [
        identity_patch(vec![lifetime_op(36000)]),
        access_patch(vec![lifetime_op(36000)]),
    ]
    .into_iter()
    .collect();
    let expected: Value = serde_json::from_str(include_str!(
        "../../../../tests/fixtures/okta/token-hook-response-lifetime.json"
    ))
    .expect("sample");
    assert_eq!(
        serde_json::to_value(&lifetimes).expect("serialise"),
        expected
    );

    let removal = InlineResponse::from(identity_patch(vec![PatchOp::remove(
        "/claims/preferred_airports/1",
    )]));
    let expected: Value = serde_json::from_str(include_str!(
        "../../../../tests/fixtures/okta/token-hook-response-remove-array-element.json"
    ))
    .expect("sample");
    assert_eq!(serde_json::to_value(&removal).expect("serialise"), expected);
}

#[test]
fn claim_builders_escape_uri_names() {
    let cmd = add_id_token_claims([("http://example.com/claims/role", json!("admin"))]);
    assert_eq!(
        cmd.value[0]["path"],
        json!("/claims/http:~1~1example.com~1claims~1role")
    );
    assert_eq!(claim_path("a~b"), "/claims/a~0b");
    let cmd = add_access_token_claims([("tier", json!(3)), ("groups", json!(["a"]))]);
    assert_eq!(cmd.kind, ACCESS_PATCH);
    assert_eq!(cmd.value.as_array().map(Vec::len), Some(2));
}

#[test]
fn error_builder() {
    assert_eq!(
        serde_json::to_value(error("Human-readable summary of the error")).expect("json"),
        serde_json::from_str::<Value>(include_str!(
            "../../../../tests/fixtures/okta/token-hook-response-error.json"
        ))
        .expect("sample")
    );
}

use super::super::check::check;
use super::super::testing::{fails, one, token_request};
use super::super::HookType;

fn id_op(op: Value) -> InlineResponse {
    one(IDENTITY_PATCH, json!([op]))
}

fn access_op(op: Value) -> InlineResponse {
    one(ACCESS_PATCH, json!([op]))
}

#[test]
fn token_value_must_be_an_array_of_ops() {
    let r = token_request();
    fails(
        HookType::Token,
        &one(IDENTITY_PATCH, json!({"op": "add"})),
        &r,
        &["commands[0]", "must be an array", "an object"],
    );
    fails(
        HookType::Token,
        &one(IDENTITY_PATCH, json!(["add"])),
        &r,
        &["value[0] must be an {op, path, value} object"],
    );
    fails(
        HookType::Token,
        &id_op(json!({"op": "move", "path": "/claims/a", "from": "/claims/b"})),
        &r,
        &["value[0].op is \"move\"", "add, replace, remove"],
    );
    fails(
        HookType::Token,
        &id_op(json!({"path": "/claims/a", "value": 1})),
        &r,
        &["value[0] has no op"],
    );
    fails(
        HookType::Token,
        &id_op(json!({"op": "add", "value": 1})),
        &r,
        &["value[0] has no path"],
    );
    fails(
        HookType::Token,
        &id_op(json!({"op": "add", "path": "/claims/a"})),
        &r,
        &["needs a value"],
    );
}

#[test]
fn token_paths() {
    let r = token_request();
    fails(
        HookType::Token,
        &id_op(json!({"op": "add", "path": "/profile/a", "value": 1})),
        &r,
        &["/profile/a", "/claims/<name>"],
    );
    fails(
        HookType::Token,
        &id_op(json!({"op": "add", "path": "/claims/", "value": 1})),
        &r,
        &["empty segment"],
    );
    fails(
        HookType::Token,
        &id_op(json!({"op": "add", "path": "/claims/a/b/c", "value": 1})),
        &r,
        &["at most one level"],
    );
    fails(
        HookType::Token,
        &id_op(json!({"op": "replace", "path": "/claims/a/-", "value": 1})),
        &r,
        &["\"-\"", "only be used to add"],
    );
    fails(
        HookType::Token,
        &id_op(json!({"op": "add", "path": "/claims/http:~2x", "value": 1})),
        &r,
        &["~0", "~1"],
    );
    fails(
        HookType::Token,
        &id_op(json!({"op": "add", "path": "/token/lifetime", "value": 1})),
        &r,
        &["/token/lifetime"],
    );
    // Escaped URI claims and array appends are fine.
    let ok =
        id_op(json!({"op": "add", "path": "/claims/http:~1~1example.com~1role", "value": "x"}));
    check(HookType::Token, &ok, &r).expect("escaped claim name");
    let ok = id_op(json!({"op": "add", "path": "/claims/airports/-", "value": "lax"}));
    check(HookType::Token, &ok, &r).expect("append");
}

#[test]
fn token_lifetime() {
    let r = token_request();
    let lifetime = |op: &str, value: Value| {
        id_op(json!({"op": op, "path": "/token/lifetime/expiration", "value": value}))
    };
    for ok in [300, 3600, 86_400] {
        check(HookType::Token, &lifetime("replace", json!(ok)), &r).expect("in range");
    }
    fails(
        HookType::Token,
        &lifetime("replace", json!(299)),
        &r,
        &["300 to 86400", "not 299"],
    );
    fails(
        HookType::Token,
        &lifetime("replace", json!(86_401)),
        &r,
        &["not 86401"],
    );
    fails(
        HookType::Token,
        &lifetime("replace", json!("3600")),
        &r,
        &["an integer"],
    );
    fails(
        HookType::Token,
        &lifetime("replace", json!(3600.5)),
        &r,
        &["an integer"],
    );
    fails(
        HookType::Token,
        &lifetime("add", json!(3600)),
        &r,
        &["only be replaced"],
    );
    fails(
        HookType::Token,
        &id_op(json!({"op": "remove", "path": "/token/lifetime/expiration"})),
        &r,
        &["only be replaced"],
    );
}

#[test]
fn token_remove_takes_no_value() {
    let r = token_request();
    check(
        HookType::Token,
        &id_op(json!({"op": "remove", "path": "/claims/a"})),
        &r,
    )
    .expect("absent");
    check(
        HookType::Token,
        &id_op(json!({"op": "remove", "path": "/claims/a", "value": null})),
        &r,
    )
    .expect("null");
    fails(
        HookType::Token,
        &id_op(json!({"op": "remove", "path": "/claims/a", "value": "x"})),
        &r,
        &["remove takes no value"],
    );
}

/// Every row of Okta's table, in both tokens, with every op: refused exactly where
/// the table reserves it, accepted where it does not.
#[test]
fn token_reserved_claims_follow_okta_s_table() {
    let r = token_request();
    let mut names: Vec<&str> = RESERVED_CLAIMS.iter().map(|(n, _)| *n).collect();
    names.extend(HOOKWARDEN_RESERVED);
    for claim in names {
        for (kind, patch) in [
            (TokenKind::Id, id_op as fn(Value) -> InlineResponse),
            (TokenKind::Access, access_op),
        ] {
            for op in [
                json!({"op": "add", "path": claim_path(claim), "value": "x"}),
                json!({"op": "replace", "path": claim_path(claim), "value": "x"}),
                json!({"op": "remove", "path": claim_path(claim)}),
            ] {
                let answer = patch(op);
                if is_reserved(kind, claim) {
                    fails(
                        HookType::Token,
                        &answer,
                        &r,
                        &[&format!(
                            "\"{claim}\" is a reserved claim of {}",
                            kind.described()
                        )],
                    );
                } else if let Err(e) = check(HookType::Token, &answer, &r) {
                    panic!("{claim} in {}: {e}", kind.described());
                }
            }
        }
    }
    // Inside a reserved claim is still the reserved claim.
    fails(
        HookType::Token,
        &id_op(json!({"op": "remove", "path": "/claims/amr/0"})),
        &r,
        &["\"amr\" is a reserved claim"],
    );
    // Okta allows these where the old table refused them.
    for (patch, claim) in [
        (access_op as fn(Value) -> InlineResponse, "idp"),
        (access_op, "nonce"),
        (access_op, "at_hash"),
        (access_op, "c_hash"),
        (access_op, "aud"),
        (access_op, "sub"),
        (id_op, "uid"),
        (id_op, "scp"),
    ] {
        let op = json!({"op": "add", "path": claim_path(claim), "value": "x"});
        check(HookType::Token, &patch(op), &r).expect(claim);
    }
    // And refuses these, which the old table let through.
    fails(
        HookType::Token,
        &access_op(json!({"op": "add", "path": "/claims/groups", "value": ["a"]})),
        &r,
        &["\"groups\" is a reserved claim of an access token"],
    );
}

#[test]
fn token_patch_needs_the_token_requested() {
    let mut only_access = token_request();
    only_access["data"]
        .as_object_mut()
        .expect("data")
        .remove("identity");
    let add = json!({"op": "add", "path": "/claims/a", "value": 1});
    fails(
        HookType::Token,
        &id_op(add.clone()),
        &only_access,
        &[
            "commands[0] (com.okta.identity.patch)",
            "no data.identity",
            "ID token was not requested",
        ],
    );
    check(HookType::Token, &access_op(add.clone()), &only_access)
        .expect("access token was requested");
    let mut only_id = token_request();
    only_id["data"]["access"] = Value::Null;
    fails(
        HookType::Token,
        &access_op(add),
        &only_id,
        &["no data.access"],
    );
}
