//! The helpers registered in every script's engine: short ways to write the common
//! answers (`deny`, `verified`, `telephony_failed`, ...) and commands (`patch_claim`,
//! `saml_attribute`, `link_user`, ...), mirroring `InlineResponse`'s builders, and a few
//! utilities (`pointer_escape`, `email_domain`, `phone_country`, `phone_digits`,
//! `verify_password_hash`). Their errors are fixed messages, never a value.

use super::helper_error;
use crate::inline_hooks::password_hash::StoredHash;
use crate::inline_hooks::phone::{country_of, phone_digits};
use crate::okta::inline::saml::{self, SamlAttribute};
use crate::okta::inline::telephony::{self, DeliveryStatus, TelephonyAction};
use crate::okta::inline::token::{self, TokenKind};
use crate::okta::inline::{
    import, password, pointer_segment, registration, Command, ErrorCause, InlineResponse, PatchOp,
};
use rhai::{Array, Dynamic, Engine, EvalAltResult, Map as RhaiMap};
use serde_json::Value;

type HelperResult = Result<Dynamic, Box<EvalAltResult>>;

/// What the okta builders made, as the Rhai map a script returns or puts in `commands`.
fn dynamic(value: &impl serde::Serialize) -> HelperResult {
    rhai::serde::to_dynamic(value).map_err(|_| helper_error("the answer could not be built"))
}

/// A script's value as JSON, for a claim, an attribute or a profile.
fn json(value: &Dynamic) -> Result<Value, Box<EvalAltResult>> {
    rhai::serde::from_dynamic(value)
        .map_err(|_| helper_error("a value that is not JSON (a function pointer, a timestamp...)"))
}

fn attributes(map: RhaiMap) -> Result<serde_json::Map<String, Value>, Box<EvalAltResult>> {
    match json(&Dynamic::from_map(map))? {
        Value::Object(attributes) => Ok(attributes),
        _ => Err(helper_error("profile attributes are a map")),
    }
}

fn answer(commands: Array) -> Dynamic {
    let mut m = RhaiMap::new();
    m.insert("commands".into(), Dynamic::from_array(commands));
    Dynamic::from_map(m)
}

/// The token a patch helper names: `id` (or `identity`, `id_token`) or `access`
/// (`access_token`).
fn token_kind(token: &str) -> Result<TokenKind, Box<EvalAltResult>> {
    match token {
        "id" | "identity" | "id_token" => Ok(TokenKind::Id),
        "access" | "access_token" => Ok(TokenKind::Access),
        _ => Err(helper_error("the token is \"id\" or \"access\"")),
    }
}

fn token_patch(token: &str, op: PatchOp) -> HelperResult {
    let command = match token_kind(token)? {
        TokenKind::Id => token::identity_patch(vec![op]),
        TokenKind::Access => token::access_patch(vec![op]),
    };
    dynamic(&command)
}

/// A SAML attribute value as text: strings as they are, other scalars printed.
fn saml_text(v: &Dynamic) -> Result<String, Box<EvalAltResult>> {
    if v.is_string() || v.is_int() || v.is_float() || v.is_bool() || v.is_char() {
        Ok(v.to_string())
    } else {
        Err(helper_error(
            "a SAML attribute value is a string, number or boolean (or an array of them)",
        ))
    }
}

/// The helpers scripts use for common answers, built by the same `okta::inline` builders
/// as everything else in hookwarden, so that they say what Okta's contract says.
/// "Answer" helpers return a whole answer map; "command" helpers return one command, to be
/// put in `answer([...])` or a `commands` array.
pub(super) fn register_helpers(engine: &mut Engine) {
    // Answers.
    engine.register_fn("allow", || dynamic(&InlineResponse::empty()));
    engine.register_fn("answer", answer);
    engine.register_fn("fail", |summary: &str| {
        dynamic(&InlineResponse::empty().error(summary))
    });
    engine.register_fn("deny", |summary: &str| {
        dynamic(&registration::deny_because(summary, []))
    });
    engine.register_fn(
        "deny",
        |summary: &str, attribute: &str, reason: &str, message: &str| {
            let cause =
                ErrorCause::at(format!("data.userProfile.{attribute}"), message).reason(reason);
            dynamic(&registration::deny_because(summary, []).error_cause(cause))
        },
    );
    engine.register_fn("verified", || {
        dynamic(&InlineResponse::from(password::verified()))
    });
    engine.register_fn("unverified", || {
        dynamic(&InlineResponse::from(password::unverified()))
    });
    engine.register_fn("telephony_failed", |transaction_id: &str, summary: &str| {
        let action = TelephonyAction::new(DeliveryStatus::Failed)
            .provider(telephony::REFUSAL_PROVIDER)
            .transaction_id(transaction_id);
        dynamic(&InlineResponse::from(action.into_command()).error(summary))
    });

    // Commands.
    engine.register_fn("command", |kind: &str, value: Dynamic| -> HelperResult {
        dynamic(&Command::new(kind, json(&value)?))
    });
    engine.register_fn("patch_claim", |t: &str, name: &str, value: Dynamic| {
        token_patch(t, PatchOp::add(token::claim_path(name), json(&value)?))
    });
    engine.register_fn("replace_claim", |t: &str, name: &str, value: Dynamic| {
        token_patch(t, PatchOp::replace(token::claim_path(name), json(&value)?))
    });
    engine.register_fn("remove_claim", |t: &str, name: &str| {
        token_patch(t, PatchOp::remove(token::claim_path(name)))
    });
    engine.register_fn("token_lifetime", |t: &str, seconds: i64| {
        let seconds = u32::try_from(seconds)
            .ok()
            .filter(|s| token::LIFETIME_SECONDS.contains(s))
            .ok_or_else(|| {
                helper_error("Okta accepts token lifetimes from 300 to 86400 seconds")
            })?;
        token_patch(t, token::lifetime_op(seconds))
    });
    engine.register_fn("saml_attribute", |name: &str, value: Dynamic| {
        let values = match value.clone().try_cast::<Array>() {
            Some(items) => items.iter().map(saml_text).collect::<Result<Vec<_>, _>>()?,
            None => vec![saml_text(&value)?],
        };
        let attribute =
            SamlAttribute::strings(saml::NAME_FORMAT_BASIC, values.iter().map(String::as_str));
        dynamic(&saml::assertion_patch(vec![saml::add_attribute(
            name, &attribute,
        )]))
    });
    engine.register_fn("profile_update", |map: RhaiMap| {
        dynamic(&registration::update_profile(attributes(map)?))
    });
    engine.register_fn("progressive_profile_update", |map: RhaiMap| {
        dynamic(&registration::update_progressive_profile(attributes(map)?))
    });
    engine.register_fn("app_user_profile_update", |map: RhaiMap| {
        dynamic(&import::update_app_user_profile(attributes(map)?))
    });
    engine.register_fn("import_result", |result: &str| {
        dynamic(&import::result(result))
    });
    engine.register_fn("user_update", |id: &str| dynamic(&import::user_update(id)));
    // Two commands: LINK_USER needs the user id in the same answer.
    engine.register_fn(
        "link_user",
        |id: &str| -> Result<Array, Box<EvalAltResult>> {
            import::link_user(id).iter().map(dynamic).collect()
        },
    );

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
