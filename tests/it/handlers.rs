//! Every real request sample through the rules and script handlers over real TLS, each
//! answer checked against Okta's published schema and against what the rules say.

use crate::inline::{call, PAIRS};
use crate::util::*;
use serde_json::{json, Value};

const TYPES: [&str; 6] = [
    "token",
    "registration",
    "import",
    "password_import",
    "saml",
    "telephony",
];

fn auth() -> String {
    format!(
        r#"auth = {{ type = "basic", users = [{{ username = "{USER}", password = "{PASSWORD}" }}] }}"#
    )
}

/// One rules hook per type, as an identity admin would write them.
fn rules_hooks(password_file: &std::path::Path) -> String {
    let a = auth();
    format!(
        r#"
[[inline_hooks]]
name = "token-rules"
path = "/hooks/okta/token-rules"
type = "token"
{a}
[inline_hooks.handler]
kind = "rules"
[[inline_hooks.handler.token.claims]]
token = "access"
name = "login"
from = "/data/context/user/profile/login"
[[inline_hooks.handler.token.claims]]
token = "id"
name = "tier"
value = "standard"

[[inline_hooks]]
name = "registration-rules"
path = "/hooks/okta/registration-rules"
type = "registration"
{a}
[inline_hooks.handler]
kind = "rules"
[inline_hooks.handler.registration]
error_summary = "Incorrect email address. Please contact your admin."
[inline_hooks.handler.registration.email]
deny_domains = ["mailinator.com"]
[[inline_hooks.handler.registration.set]]
attribute = "customerType"
value = "self-registered"
when = [{{ field = "/requestType", equals = "self.service.registration" }}]

[[inline_hooks]]
name = "import-rules"
path = "/hooks/okta/import-rules"
type = "import"
{a}
[inline_hooks.handler]
kind = "rules"
[inline_hooks.handler.import.link]
attribute = "externalId"
user_id_from = ["data.context.matches[0].id", "/data/user/id"]
[[inline_hooks.handler.import.set]]
target = "user"
attribute = "nickName"
from = "/data/appUser/profile/userName"

[[inline_hooks]]
name = "password_import-rules"
path = "/hooks/okta/password_import-rules"
type = "password_import"
{a}
[inline_hooks.handler]
kind = "rules"
[inline_hooks.handler.password_import]
file = "{file}"

[[inline_hooks]]
name = "saml-rules"
path = "/hooks/okta/saml-rules"
type = "saml"
{a}
[inline_hooks.handler]
kind = "rules"
[[inline_hooks.handler.saml.attributes]]
name = "login"
from = "/data/context/user/profile/login"

[[inline_hooks]]
name = "telephony-rules"
path = "/hooks/okta/telephony-rules"
type = "telephony"
{a}
[inline_hooks.handler]
kind = "rules"
[inline_hooks.handler.telephony]
deny_prefixes = ["+882", "+979"]
"#,
        file = password_file.display()
    )
}

/// One script hook per type: the example scripts shipped in examples/scripts/.
fn script_hooks() -> String {
    let a = auth();
    TYPES
        .iter()
        .map(|t| {
            let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("examples/scripts")
                .join(format!("{t}.rhai"));
            format!(
                "\n[[inline_hooks]]\nname = \"{t}-script\"\npath = \"/hooks/okta/{t}-script\"\ntype = \"{t}\"\n{a}\nhandler = {{ kind = \"script\", file = \"{}\" }}\n",
                file.display()
            )
        })
        .collect()
}

#[tokio::test]
async fn every_request_sample_through_rules_and_scripts_gets_a_valid_answer() {
    let tmp = tempfile::tempdir().expect("tmp");
    // The legacy password store: bcrypt of Okta's sample password, at a test-fast cost.
    let passwords = tmp.path().join("legacy-passwords");
    let hash = bcrypt::hash("Okta", 4).expect("bcrypt");
    std::fs::write(&passwords, format!("isaac.brock@example.com:{hash}\n")).expect("write");
    let s = start(Options {
        toml: Some(format!("{}{}", rules_hooks(&passwords), script_hooks())),
        ..Options::default()
    })
    .await;
    let mut answers = Vec::new();
    for (ty, req, _) in PAIRS {
        for kind in ["rules", "script"] {
            let mut request: Value = serde_json::from_str(&fixture(req)).expect("json");
            request["eventId"] = json!(uuid::Uuid::new_v4().to_string());
            let r = call(&s, &format!("{ty}-{kind}"), &request.to_string()).await;
            assert_eq!(r.status(), 200, "{kind} {req}");
            let answer: Value = r.json().await.expect("json");
            crate::contract::validate_response(ty, &answer)
                .unwrap_or_else(|e| panic!("{kind} {req}: {e}\n{answer}"));
            answers.push((*ty, kind, *req, answer));
        }
    }
    // No answer was a fallback: every handler answered in time and within the contract.
    let m = s.metrics().await;
    for cause in [
        "fallback_deadline",
        "fallback_handler_error",
        "fallback_invalid",
    ] {
        assert_eq!(
            metric(
                &m,
                "hookwarden_inline_calls_total",
                &format!("outcome=\"{cause}\"")
            ),
            0.0,
            "{cause}"
        );
    }
    let find = |kind: &str, req: &str| -> &Value {
        &answers
            .iter()
            .find(|(_, k, r, _)| *k == kind && *r == req)
            .expect("answer")
            .3
    };
    // What the rules say, checked on Okta's samples.
    let token = find("rules", "token-hook-request.json");
    let command = |t: &str| -> Value {
        token["commands"]
            .as_array()
            .expect("commands")
            .iter()
            .find(|c| c["type"] == t)
            .cloned()
            .unwrap_or_else(|| panic!("no {t} in {token}"))
    };
    let access = command("com.okta.access.patch");
    assert_eq!(access["value"][0]["path"], "/claims/login");
    assert_eq!(access["value"][0]["value"], "administrator1@clouditude.net");
    assert_eq!(
        command("com.okta.identity.patch")["value"][0]["path"],
        "/claims/tier"
    );
    let ssr = find("rules", "registration-hook-request-ssr.json");
    assert_eq!(ssr["commands"][0]["type"], "com.okta.user.profile.update");
    assert_eq!(
        ssr["commands"][0]["value"]["customerType"],
        "self-registered"
    );
    assert!(ssr.get("error").is_none(), "example.com is allowed");
    let pwd = find("rules", "password-import-request.json");
    assert_eq!(pwd["commands"][0]["value"]["credential"], "VERIFIED");
    let pwd = find("script", "password-import-request.json");
    assert_eq!(pwd["commands"][0]["value"]["credential"], "VERIFIED");
    let saml = find("rules", "saml-hook-request.json");
    assert_eq!(saml["commands"][0]["type"], "com.okta.assertion.patch");
    assert_eq!(saml["commands"][0]["value"][0]["op"], "add");
    assert_eq!(saml["commands"][0]["value"][0]["path"], "/claims/login");
    // The sample number is not on the deny list: Okta's own providers send the SMS.
    assert_eq!(find("rules", "telephony-hook-request.json"), &json!({}));

    // And the deny paths, with the requests changed as an attacker or a user would.
    let mut spam: Value =
        serde_json::from_str(&fixture("registration-hook-request-ssr.json")).expect("json");
    spam["eventId"] = json!("spam-1");
    spam["data"]["userProfile"]["email"] = json!("someone@mailinator.com");
    let v: Value = call(&s, "registration-rules", &spam.to_string())
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v["commands"][0]["value"]["registration"], "DENY");
    assert_eq!(
        v["error"]["errorCauses"][0]["location"],
        "data.userProfile.email"
    );
    crate::contract::validate_response("registration", &v).expect("valid");
    let mut wrong: Value =
        serde_json::from_str(&fixture("password-import-request.json")).expect("json");
    wrong["eventId"] = json!("wrong-password-1");
    wrong["data"]["context"]["credential"]["password"] = json!("not-the-password");
    let v: Value = call(&s, "password_import-rules", &wrong.to_string())
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v["commands"][0]["value"]["credential"], "UNVERIFIED");
    let mut premium: Value =
        serde_json::from_str(&fixture("telephony-hook-request.json")).expect("json");
    premium["eventId"] = json!("premium-1");
    premium["data"]["messageProfile"]["phoneNumber"] = json!("+882123456789");
    let v: Value = call(&s, "telephony-rules", &premium.to_string())
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v["commands"][0]["value"][0]["status"], "FAILED");
    crate::contract::validate_response("telephony", &v).expect("valid");
    s.stop().await;
}

#[tokio::test]
async fn a_script_that_never_ends_is_stopped_and_the_fallback_sent() {
    let tmp = tempfile::tempdir().expect("tmp");
    let script = tmp.path().join("forever.rhai");
    std::fs::write(
        &script,
        "fn handle(request) { let n = 0; loop { n += 1; } }",
    )
    .expect("write");
    let hook = format!(
        "\n[[inline_hooks]]\nname = \"forever\"\npath = \"/hooks/okta/forever\"\ntype = \"registration\"\n{}\nbudget = \"300ms\"\nhandler = {{ kind = \"script\", file = \"{}\", max_operations = 1000000000000 }}\n",
        auth(),
        script.display()
    );
    let s = start(Options {
        toml: Some(hook),
        ..Options::default()
    })
    .await;
    let started = std::time::Instant::now();
    let r = call(
        &s,
        "forever",
        &fixture("registration-hook-request-ssr.json"),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    // Registration fails closed by default: Okta's own behaviour when a hook fails.
    assert_eq!(v["commands"][0]["value"]["registration"], "DENY");
    assert!(v["error"]["errorSummary"].is_string());
    assert!(took < std::time::Duration::from_millis(1500), "{took:?}");
    // The service is still answering (the runaway script did not keep a thread forever).
    let r = call(
        &s,
        "forever",
        &fixture("registration-hook-request-progressive-profile.json"),
    )
    .await;
    assert_eq!(r.status(), 200);
    s.stop().await;
}

/// Token rules that refuse one OAuth client and patch the tokens of the others, through
/// the real server: Okta's token sample as it comes (client `customClientIdNative`), and
/// the same request from the refused client.
#[tokio::test]
async fn token_rules_refuse_one_client_and_patch_the_tokens_of_another() {
    let hook = format!(
        r#"
[[inline_hooks]]
name = "token-deny"
path = "/hooks/okta/token-deny"
type = "token"
{}
[inline_hooks.handler]
kind = "rules"
[[inline_hooks.handler.token.deny]]
error_summary = "This application may not get tokens."
when = [{{ client_id = "legacy-app" }}]
[[inline_hooks.handler.token.claims]]
token = "access"
name = "login"
from = "/data/context/user/profile/login"
"#,
        auth()
    );
    let s = start(Options {
        toml: Some(hook),
        ..Options::default()
    })
    .await;
    let sample = fixture("token-hook-request.json");
    let allowed = call(&s, "token-deny", &sample).await;
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        allowed.text().await.expect("body"),
        r#"{"commands":[{"type":"com.okta.access.patch","value":[{"op":"add","path":"/claims/login","value":"administrator1@clouditude.net"}]}]}"#
    );
    // The same sign-in from the refused client: everywhere Okta names the client.
    let mut refused: Value = serde_json::from_str(&sample).expect("json");
    refused["eventId"] = json!("token-deny-1");
    refused["data"]["context"]["protocol"]["client"]["id"] = json!("legacy-app");
    refused["data"]["context"]["protocol"]["request"]["client_id"] = json!("legacy-app");
    refused["data"]["access"]["claims"]["cid"] = json!("legacy-app");
    refused["data"]["identity"]["claims"]["aud"] = json!("legacy-app");
    let r = call(&s, "token-deny", &refused.to_string()).await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.expect("body");
    assert_eq!(
        body,
        r#"{"error":{"errorSummary":"This application may not get tokens."},"debugContext":{"deniedBy":"token.deny[0]"}}"#
    );
    let answer: Value = serde_json::from_str(&body).expect("json");
    crate::contract::validate_response("token", &answer).expect("Okta's schema");
    let m = s.metrics().await;
    let outcome = |o: &str| {
        metric(
            &m,
            "hookwarden_inline_calls_total",
            &format!("outcome=\"{o}\""),
        )
    };
    assert_eq!(outcome("commands"), 1.0);
    assert_eq!(outcome("refusal"), 1.0);
    s.stop().await;
}
