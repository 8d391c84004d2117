//! The helpers registered in every script's engine: short ways to write the common
//! answers (`deny`, `verified`, `telephony_failed`, ...) and commands (`patch_claim`,
//! `saml_attribute`, `link_user`, ...), mirroring `InlineResponse`'s builders, and a few
//! utilities (`pointer_escape`, `email_domain`, `phone_country`, `phone_digits`,
//! `verify_password_hash`). Their errors are fixed messages, never a value.

use super::helper_error;
use crate::inline_hooks::password_hash::StoredHash;
use crate::inline_hooks::phone::{country_of, phone_digits};
use crate::okta::inline::pointer_segment;
use rhai::{Array, Dynamic, Engine, EvalAltResult, Map as RhaiMap};

fn map<const N: usize>(entries: [(&str, Dynamic); N]) -> Dynamic {
    let mut m = RhaiMap::new();
    for (k, v) in entries {
        m.insert(k.into(), v);
    }
    Dynamic::from_map(m)
}

fn text(s: impl Into<String>) -> Dynamic {
    Dynamic::from(s.into())
}

fn command(kind: &str, value: Dynamic) -> Dynamic {
    map([("type", text(kind)), ("value", value)])
}

fn answer(commands: Array) -> Dynamic {
    map([("commands", Dynamic::from_array(commands))])
}

/// The patch command of a token: `id` (or `identity`, `id_token`) or `access` (`access_token`).
fn token_command(token: &str) -> Result<&'static str, Box<EvalAltResult>> {
    match token {
        "id" | "identity" | "id_token" => Ok("com.okta.identity.patch"),
        "access" | "access_token" => Ok("com.okta.access.patch"),
        _ => Err(helper_error("the token is \"id\" or \"access\"")),
    }
}

fn claim_patch(
    token: &str,
    op: &str,
    name: &str,
    value: Option<Dynamic>,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let kind = token_command(token)?;
    let path = text(format!("/claims/{}", pointer_segment(name)));
    let op = match value {
        Some(v) => map([("op", text(op)), ("path", path), ("value", v)]),
        None => map([("op", text(op)), ("path", path)]),
    };
    Ok(command(kind, Dynamic::from_array(vec![op])))
}

/// A SAML attribute value as text: strings as they are, other scalars printed.
fn saml_value(v: &Dynamic) -> Result<Dynamic, Box<EvalAltResult>> {
    if v.is_string() || v.is_int() || v.is_float() || v.is_bool() || v.is_char() {
        Ok(map([
            ("attributes", map([("xsi:type", text("xs:string"))])),
            ("value", text(v.to_string())),
        ]))
    } else {
        Err(helper_error(
            "a SAML attribute value is a string, number or boolean (or an array of them)",
        ))
    }
}

/// The helpers scripts use for common answers, mirroring `InlineResponse`'s builders.
/// "Answer" helpers return a whole answer map; "command" helpers return one command, to be
/// put in `answer([...])` or a `commands` array.
pub(super) fn register_helpers(engine: &mut Engine) {
    // Answers.
    engine.register_fn("allow", || Dynamic::from_map(RhaiMap::new()));
    engine.register_fn("answer", answer);
    engine.register_fn("fail", |summary: &str| {
        map([("error", map([("errorSummary", text(summary))]))])
    });
    engine.register_fn("deny", |summary: &str| {
        map([
            (
                "commands",
                Dynamic::from_array(vec![command(
                    "com.okta.action.update",
                    map([("registration", text("DENY"))]),
                )]),
            ),
            ("error", map([("errorSummary", text(summary))])),
        ])
    });
    engine.register_fn(
        "deny",
        |summary: &str, attribute: &str, reason: &str, message: &str| {
            let cause = map([
                ("errorSummary", text(message)),
                ("reason", text(reason)),
                ("locationType", text("body")),
                ("location", text(format!("data.userProfile.{attribute}"))),
                ("domain", text("end-user")),
            ]);
            map([
                (
                    "commands",
                    Dynamic::from_array(vec![command(
                        "com.okta.action.update",
                        map([("registration", text("DENY"))]),
                    )]),
                ),
                (
                    "error",
                    map([
                        ("errorSummary", text(summary)),
                        ("errorCauses", Dynamic::from_array(vec![cause])),
                    ]),
                ),
            ])
        },
    );
    let credential = |status: &str| {
        answer(vec![command(
            "com.okta.action.update",
            map([("credential", text(status))]),
        )])
    };
    engine.register_fn("verified", move || credential("VERIFIED"));
    engine.register_fn("unverified", move || credential("UNVERIFIED"));
    engine.register_fn("telephony_failed", |transaction_id: &str, summary: &str| {
        let action = map([
            ("status", text("FAILED")),
            ("provider", text("hookwarden")),
            ("transactionId", text(transaction_id)),
        ]);
        map([
            (
                "commands",
                Dynamic::from_array(vec![command(
                    "com.okta.telephony.action",
                    Dynamic::from_array(vec![action]),
                )]),
            ),
            ("error", map([("errorSummary", text(summary))])),
        ])
    });

    // Commands.
    engine.register_fn("command", |kind: &str, value: Dynamic| command(kind, value));
    engine.register_fn("patch_claim", |token: &str, name: &str, value: Dynamic| {
        claim_patch(token, "add", name, Some(value))
    });
    engine.register_fn(
        "replace_claim",
        |token: &str, name: &str, value: Dynamic| claim_patch(token, "replace", name, Some(value)),
    );
    engine.register_fn("remove_claim", |token: &str, name: &str| {
        claim_patch(token, "remove", name, None)
    });
    engine.register_fn("token_lifetime", |token: &str, seconds: i64| {
        if !(300..=86_400).contains(&seconds) {
            return Err(helper_error(
                "Okta accepts token lifetimes from 300 to 86400 seconds",
            ));
        }
        let op = map([
            ("op", text("replace")),
            ("path", text("/token/lifetime/expiration")),
            ("value", Dynamic::from_int(seconds)),
        ]);
        Ok(command(
            token_command(token)?,
            Dynamic::from_array(vec![op]),
        ))
    });
    engine.register_fn("saml_attribute", |name: &str, value: Dynamic| {
        let values = match value.clone().try_cast::<Array>() {
            Some(items) => items.iter().map(saml_value).collect::<Result<Array, _>>()?,
            None => vec![saml_value(&value)?],
        };
        let op = map([
            ("op", text("add")),
            ("path", text(format!("/claims/{}", pointer_segment(name)))),
            (
                "value",
                map([
                    (
                        "attributes",
                        map([(
                            "NameFormat",
                            text("urn:oasis:names:tc:SAML:2.0:attrname-format:basic"),
                        )]),
                    ),
                    ("attributeValues", Dynamic::from_array(values)),
                ]),
            ),
        ]);
        Ok::<_, Box<EvalAltResult>>(command(
            "com.okta.assertion.patch",
            Dynamic::from_array(vec![op]),
        ))
    });
    engine.register_fn("profile_update", |attributes: RhaiMap| {
        command(
            "com.okta.user.profile.update",
            Dynamic::from_map(attributes),
        )
    });
    engine.register_fn("progressive_profile_update", |attributes: RhaiMap| {
        command(
            "com.okta.user.progressive.profile.update",
            Dynamic::from_map(attributes),
        )
    });
    engine.register_fn("app_user_profile_update", |attributes: RhaiMap| {
        command(
            "com.okta.appUser.profile.update",
            Dynamic::from_map(attributes),
        )
    });
    engine.register_fn("import_result", |result: &str| {
        command("com.okta.action.update", map([("result", text(result))]))
    });
    engine.register_fn("user_update", |id: &str| {
        command("com.okta.user.update", map([("id", text(id))]))
    });
    // Two commands: LINK_USER needs the user id in the same answer.
    engine.register_fn("link_user", |id: &str| {
        vec![
            command(
                "com.okta.action.update",
                map([("result", text("LINK_USER"))]),
            ),
            command("com.okta.user.update", map([("id", text(id))])),
        ]
    });

    // Utilities.
    engine.register_fn("pointer_escape", |name: &str| pointer_segment(name));
    engine.register_fn("email_domain", |address: &str| {
        address
            .trim()
            .rsplit_once('@')
            .map(|(_, d)| d.trim().trim_end_matches('.').to_lowercase())
            .unwrap_or_default()
    });
    // Prefix-based, like the rules' table; "" when unknown (e.g. +1, shared by NANP countries).
    engine.register_fn("phone_country", |number: &str| {
        phone_digits(number)
            .and_then(|d| country_of(&d))
            .unwrap_or_default()
            .to_owned()
    });
    engine.register_fn("phone_digits", |number: &str| {
        phone_digits(number).unwrap_or_default()
    });
    // CPU-heavy (bcrypt, argon2): fine on the script's blocking thread; false for an
    // unknown or malformed hash.
    engine.register_fn("verify_password_hash", |password: &str, hash: &str| {
        StoredHash::parse(hash).is_ok_and(|h| h.verify(password.as_bytes()))
    });
}

#[cfg(test)]
mod tests {
    use super::super::tests::{answer_of, call, fixture, handler};
    use crate::okta::inline::HookType;
    use serde_json::json;

    #[tokio::test]
    async fn helper_errors_say_what_is_wrong() {
        let (_dir, h) =
            handler("fn handle(request) { answer([patch_claim(\"refresh\", \"a\", 1)]) }");
        let e = call(&h, HookType::Token, fixture("token-hook-request.json"))
            .await
            .expect_err("bad token");
        assert!(
            e.contains(": the token is \"id\" or \"access\" (line 1, position 30)"),
            "{e}"
        );
        let (_dir, h) = handler(
            "fn claim(t) { patch_claim(t, \"a\", 1) }\nfn handle(request) { answer([claim(\"refresh\")]) }",
        );
        let e = call(&h, HookType::Token, fixture("token-hook-request.json"))
            .await
            .expect_err("bad token in a nested call");
        assert!(e.contains("in function 'claim': the token is"), "{e}");
    }

    #[tokio::test]
    async fn helpers_build_the_documented_commands() {
        let (_dir, h) = handler(
            r#"
            const TIER = "gold";
            fn handle(request) {
                answer([
                    patch_claim("id", "a/b", global::TIER),
                    replace_claim("access", "firstName", "x"),
                    remove_claim("access", "preferred_username"),
                    token_lifetime("access", 900),
                ])
            }"#,
        );
        let answer = answer_of(&h, HookType::Token, fixture("token-hook-request.json")).await;
        assert_eq!(
            answer,
            json!({"commands": [
                {"type": "com.okta.identity.patch", "value": [{"op": "add", "path": "/claims/a~1b", "value": "gold"}]},
                {"type": "com.okta.access.patch", "value": [{"op": "replace", "path": "/claims/firstName", "value": "x"}]},
                {"type": "com.okta.access.patch", "value": [{"op": "remove", "path": "/claims/preferred_username"}]},
                {"type": "com.okta.access.patch", "value": [{"op": "replace", "path": "/token/lifetime/expiration", "value": 900}]}
            ]})
        );
        let (_dir, h) = handler(
            r#"fn handle(request) {
                 let a = answer([saml_attribute("groups", ["a", 2])]);
                 a.debugContext = #{ country: phone_country("+44 7700 900123"), domain: email_domain("X@Example.COM") };
                 a
               }"#,
        );
        let answer = answer_of(&h, HookType::Saml, fixture("saml-hook-request.json")).await;
        assert_eq!(
            answer["commands"][0]["value"][0]["value"]["attributeValues"][1]["value"],
            json!("2")
        );
        assert_eq!(
            answer["debugContext"],
            json!({"country": "GB", "domain": "example.com"})
        );
    }
}
