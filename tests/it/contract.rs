//! Okta's own JSON Schemas for inline hook answers (extracted from its OpenAPI spec into
//! tests/fixtures/okta/schemas/) against Okta's samples, the spec's own examples, and
//! answers built with hookwarden's builders.
//!
//! Where Okta's schema and Okta's samples disagree, the tests below assert exactly the
//! known discrepancy (listed in tests/fixtures/okta/schemas/README.md) instead of
//! loosening the schema: a schema change in a later spec shows up as a failing test.
//!
//! [`validate_response`] is for other modules: it checks a live answer against the
//! schema of its hook type.

use hookwarden::okta::inline::check::check;
use hookwarden::okta::inline::{
    import, password, registration, saml, telephony, token, HookType, InlineResponse, PatchOp,
};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/okta/schemas")
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The schema file stem of a hook type: hookwarden's name (`password_import`), the same
/// with `-`, or Okta's event type (`com.okta.user.credential.password.import`).
fn schema_stem(hook_type: &str) -> Result<String, String> {
    let hook = HookType::from_event_type(hook_type)
        .or_else(|| {
            HookType::ALL
                .into_iter()
                .find(|t| t.name() == hook_type.replace('-', "_"))
        })
        .ok_or_else(|| format!("unknown hook type {hook_type:?}"))?;
    Ok(hook.name().replace('_', "-"))
}

fn validate(schema_file: &str, instance: &Value) -> Result<(), String> {
    let schema = read_json(&schema_dir().join(schema_file))?;
    let validator = jsonschema::validator_for(&schema)
        .map_err(|e| format!("{schema_file} is not a usable schema: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("at {:?}: {e}", e.instance_path().as_str()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("{schema_file}: {}", errors.join("; ")))
    }
}

/// Validates an inline hook answer against Okta's JSON Schema for `hook_type`'s answers
/// (`token`, `registration`, `import`, `password_import`, `saml`, `telephony`, or the
/// event type). The error lists every violation with its JSON Pointer.
///
/// Okta's schemas are loose (nothing required, unknown keys allowed) and wrong in a few
/// places documented in tests/fixtures/okta/schemas/README.md: a removal with
/// `"value": null`, claim values that are arrays or booleans, and non-string import
/// profile values are valid answers that fail here. Pair it with
/// `hookwarden::okta::inline::check::check`, which holds the contract's rules.
pub fn validate_response(hook_type: &str, answer: &Value) -> Result<(), String> {
    validate(
        &format!("{}-response.schema.json", schema_stem(hook_type)?),
        answer,
    )
}

/// Validates a request body against Okta's schema for `hook_type`'s requests.
fn validate_request(hook_type: &str, request: &Value) -> Result<(), String> {
    validate(
        &format!("{}-request.schema.json", schema_stem(hook_type)?),
        request,
    )
}

fn fixture(name: &str) -> Value {
    read_json(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/okta")
            .join(name),
    )
    .expect("fixture")
}

/// Response samples per hook type, from tests/fixtures/okta/SOURCES.md.
const RESPONSE_SAMPLES: &[(&str, &str)] = &[
    ("token", "token-hook-response.json"),
    ("token", "token-hook-response-add-array-index.json"),
    ("token", "token-hook-response-add-object-member.json"),
    ("token", "token-hook-response-append-array-dash.json"),
    ("token", "token-hook-response-error.json"),
    ("token", "token-hook-response-lifetime.json"),
    ("token", "token-hook-response-remove-array-element.json"),
    ("token", "token-hook-response-remove-claims.json"),
    ("token", "token-hook-response-remove-object-member.json"),
    ("token", "token-hook-response-replace-claims.json"),
    ("token", "token-hook-response-replace-object-member.json"),
    (
        "registration",
        "registration-hook-response-deny-minimal.json",
    ),
    ("registration", "registration-hook-response-deny.json"),
    (
        "registration",
        "registration-hook-response-error-classic.json",
    ),
    ("registration", "registration-hook-response-pp-deny.json"),
    ("registration", "registration-hook-response-pp-update.json"),
    (
        "registration",
        "registration-hook-response-profile-update-two-attrs.json",
    ),
    (
        "registration",
        "registration-hook-response-profile-update-two-commands.json",
    ),
    (
        "registration",
        "registration-hook-response-ssr-profile-update.json",
    ),
    ("import", "import-hook-response-appuser-profile-update.json"),
    ("import", "import-hook-response-create-user.json"),
    ("import", "import-hook-response-empty.json"),
    ("import", "import-hook-response-error.json"),
    ("import", "import-hook-response-link-user.json"),
    ("import", "import-hook-response-user-profile-update.json"),
    (
        "password_import",
        "password-import-response-unverified.json",
    ),
    ("password_import", "password-import-response-verified.json"),
    ("saml", "saml-hook-response-uri-claims.json"),
    ("saml", "saml-hook-response.json"),
    ("telephony", "telephony-hook-response-error.json"),
    ("telephony", "telephony-hook-response-success.json"),
];

/// Request samples per hook type.
const REQUEST_SAMPLES: &[(&str, &str)] = &[
    ("token", "token-hook-request.json"),
    ("registration", "registration-hook-request-ssr.json"),
    (
        "registration",
        "registration-hook-request-progressive-profile.json",
    ),
    ("registration", "registration-hook-request-classic.json"),
    ("import", "import-hook-request.json"),
    ("import", "import-hook-request-spec.json"),
    ("password_import", "password-import-request.json"),
    ("password_import", "password-import-request-idx.json"),
    ("saml", "saml-hook-request.json"),
    ("telephony", "telephony-hook-request.json"),
    ("telephony", "telephony-hook-request-spec.json"),
];

/// Documented samples that Okta's schema rejects: file, and every instance path the
/// schema complains about. Anything else failing is a new discrepancy.
const KNOWN_SAMPLE_DISCREPANCIES: &[(&str, &[&str])] = &[
    // A removal's `"value": null` (allowed by the docs and the spec's own prose) fails
    // `value: oneOf [string, integer, object]`.
    (
        "token-hook-response-remove-claims.json",
        &["/commands/0/value/0/value"],
    ),
    // `response_type` is space-separated in OAuth; the schema's enum takes one value.
    (
        "token-hook-request.json",
        &["/data/context/protocol/request/response_type"],
    ),
    // Profiles hold nulls and arrays; the schema says every attribute is a string.
    (
        "import-hook-request.json",
        &[
            "/data/appUser/profile/failDeprovisioning",
            "/data/appUser/profile/failProvisioning",
            "/data/appUser/profile/groups",
            "/data/appUser/profile/mobilePhone",
            "/data/appUser/profile/secondEmail",
            "/data/user/profile/city",
            "/data/user/profile/countryCode",
            "/data/user/profile/mobilePhone",
            "/data/user/profile/postAddress",
            "/data/user/profile/primaryPhone",
            "/data/user/profile/secondEmail",
            "/data/user/profile/state",
            "/data/user/profile/streetAddress",
            "/data/user/profile/typeId",
            "/data/user/profile/zipCode",
        ],
    ),
    (
        "import-hook-request-spec.json",
        &[
            "/data/appUser/profile/failDeprovisioning",
            "/data/appUser/profile/failProvisioning",
            "/data/appUser/profile/groups",
            "/data/appUser/profile/mobilePhone",
            "/data/appUser/profile/secondEmail",
            "/data/user/profile/city",
            "/data/user/profile/countryCode",
            "/data/user/profile/mobilePhone",
            "/data/user/profile/postAddress",
            "/data/user/profile/primaryPhone",
            "/data/user/profile/secondEmail",
            "/data/user/profile/state",
            "/data/user/profile/streetAddress",
            "/data/user/profile/typeId",
            "/data/user/profile/zipCode",
        ],
    ),
    // The spec's own example sends numbers where its schema says strings.
    (
        "telephony-hook-request-spec.json",
        &[
            "/data/messageProfile/otpCode",
            "/data/messageProfile/phoneNumber",
        ],
    ),
];

/// The instance paths a schema rejects, sorted and deduplicated.
fn failing_paths(schema_file: &str, instance: &Value) -> Vec<String> {
    let schema = read_json(&schema_dir().join(schema_file)).expect("schema");
    let validator = jsonschema::validator_for(&schema).expect("valid schema");
    let mut paths: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| e.instance_path().as_str().to_owned())
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

fn expected_failures(file: &str) -> Vec<String> {
    KNOWN_SAMPLE_DISCREPANCIES
        .iter()
        .find(|(name, _)| *name == file)
        .map(|(_, paths)| paths.iter().map(|p| (*p).to_owned()).collect())
        .unwrap_or_default()
}

/// A keyword the extraction should have resolved or dropped, anywhere in a schema
/// (property names under `properties` are data, not keywords, and are not looked at).
fn openapi_leftover(schema: &Value) -> Option<String> {
    match schema {
        Value::Object(map) => map.iter().find_map(|(key, value)| {
            let dropped = [
                "$ref",
                "nullable",
                "discriminator",
                "example",
                "xml",
                "externalDocs",
            ];
            if dropped.contains(&key.as_str()) || key.starts_with("x-") {
                return Some(key.clone());
            }
            match (key.as_str(), value) {
                ("properties", Value::Object(props)) => props.values().find_map(openapi_leftover),
                ("enum" | "const" | "default" | "required" | "examples", _) => None,
                _ => openapi_leftover(value),
            }
        }),
        Value::Array(items) => items.iter().find_map(openapi_leftover),
        _ => None,
    }
}

#[test]
fn schemas_are_valid_draft_2020_12() {
    let mut count = 0;
    for entry in std::fs::read_dir(schema_dir()).expect("schema dir") {
        let path = entry.expect("entry").path();
        if !path.to_string_lossy().ends_with(".schema.json") {
            continue;
        }
        let schema = read_json(&path).expect("schema");
        assert_eq!(
            schema["$schema"],
            json!("https://json-schema.org/draft/2020-12/schema"),
            "{}",
            path.display()
        );
        jsonschema::meta::validate(&schema)
            .unwrap_or_else(|e| panic!("{} is not a valid schema: {e}", path.display()));
        if let Some(keyword) = openapi_leftover(&schema) {
            panic!("{} still has the OpenAPI keyword {keyword}", path.display());
        }
        count += 1;
    }
    assert_eq!(count, 12, "a response and a request schema per hook type");
}

#[test]
fn every_response_sample_matches_its_schema_except_the_known_discrepancies() {
    for (hook, file) in RESPONSE_SAMPLES {
        let sample = fixture(file);
        let stem = schema_stem(hook).expect("hook type");
        assert_eq!(
            failing_paths(&format!("{stem}-response.schema.json"), &sample),
            expected_failures(file),
            "{file} against Okta's {hook} response schema"
        );
        if expected_failures(file).is_empty() {
            validate_response(hook, &sample).expect("valid");
        }
    }
}

#[test]
fn every_request_sample_matches_its_schema_except_the_known_discrepancies() {
    for (hook, file) in REQUEST_SAMPLES {
        let sample = fixture(file);
        let stem = schema_stem(hook).expect("hook type");
        assert_eq!(
            failing_paths(&format!("{stem}-request.schema.json"), &sample),
            expected_failures(file),
            "{file} against Okta's {hook} request schema"
        );
        if expected_failures(file).is_empty() {
            validate_request(hook, &sample).expect("valid");
        }
    }
}

#[test]
fn the_removal_with_null_value_is_accepted_by_the_contract_check() {
    // The schema rejects it (above), the docs and Okta's prose allow it, and so does
    // hookwarden's check.
    let sample = fixture("token-hook-response-remove-claims.json");
    let answer: InlineResponse = serde_json::from_value(sample.clone()).expect("answer");
    check(
        HookType::Token,
        &answer,
        &fixture("token-hook-request.json"),
    )
    .expect("contract");
    let err = validate_response("token", &sample).expect_err("schema rejects it");
    assert!(err.contains("/commands/0/value/0/value"), "{err}");
}

#[test]
fn the_registration_request_dispatches_on_request_type() {
    // The spec's discriminator became if/then: a progressive profile request is held
    // to the progressive profile shape, a Classic one (no requestType) to the base only.
    let mut pp = fixture("registration-hook-request-progressive-profile.json");
    pp["data"]["context"]["user"]["_links"]["groups"] = json!({"name": "no href"});
    let err = validate_request("registration", &pp).expect_err("HrefObject requires href");
    assert!(err.contains("/data/context/user/_links/groups"), "{err}");
    let mut ssr = fixture("registration-hook-request-ssr.json");
    ssr["data"]["userProfile"] = json!("not an object");
    assert!(validate_request("registration", &ssr).is_err());
    let mut other = fixture("registration-hook-request-ssr.json");
    other["requestType"] = json!("something.else");
    assert!(
        validate_request("registration", &other).is_err(),
        "requestType enum"
    );
}

/// The spec's own response examples (tests/fixtures/okta/schemas/spec-examples/),
/// against the spec's schema and against hookwarden's check.
#[test]
fn spec_examples_against_schema_and_contract() {
    // Examples the schema rejects (instance paths), and examples our check rejects.
    let schema_rejects: &[(&str, &[&str])] = &[
        (
            "token-TokenHookRemoveClaim.json",
            &["/commands/0/value/0/value"],
        ),
        (
            "registration-ProgressiveProfileResponse.json",
            &["/commands/0/value"],
        ),
    ];
    let contract_rejects = [
        // All three use `com.action.update`, not a command type Okta knows (the docs
        // and the Java SDK say `com.okta.action.update`).
        "registration-ProfileEnrollmentResponse.json",
        "registration-ProfileEnrollmentResponseDeny.json",
        "registration-ProgressiveProfileResponseDeny.json",
        // `com.okta.user.progressive.profile.update'` (stray quote), string value.
        "registration-ProgressiveProfileResponse.json",
    ];
    // `error` as an array: not even an InlineResponse (the schema says nothing about
    // `error` for telephony, so it passes there).
    let unparseable = ["telephony-TelephonyFailureResponse.json"];

    let dir = schema_dir().join("spec-examples");
    let mut seen = 0;
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("spec-examples")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    for name in &names {
        let example = read_json(&dir.join(name)).expect("example");
        let stem = HookType::ALL
            .into_iter()
            .map(|t| t.name().replace('_', "-"))
            .filter(|stem| name.starts_with(&format!("{stem}-")))
            .max_by_key(String::len)
            .expect("file named after a hook type");
        let expected: Vec<String> = schema_rejects
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.iter().map(|s| (*s).to_owned()).collect())
            .unwrap_or_default();
        assert_eq!(
            failing_paths(&format!("{stem}-response.schema.json"), &example),
            expected,
            "{name} against its schema"
        );
        let hook = HookType::ALL
            .into_iter()
            .find(|t| t.name().replace('_', "-") == stem)
            .expect("hook");
        let parsed = serde_json::from_value::<InlineResponse>(example.clone());
        if unparseable.contains(&name.as_str()) {
            assert!(parsed.is_err(), "{name} should not parse");
            continue;
        }
        let parsed = parsed.unwrap_or_else(|e| panic!("{name}: {e}"));
        let request = sample_request(hook);
        let verdict = check(hook, &parsed, &request);
        if contract_rejects.contains(&name.as_str()) {
            assert!(verdict.is_err(), "{name} should fail the contract check");
        } else if let Err(e) = verdict {
            panic!("{name} should pass the contract check: {e}");
        }
        seen += 1;
    }
    assert_eq!(seen + unparseable.len(), names.len());
    assert!(names.len() >= 20, "the extraction wrote the examples");
}

fn sample_request(hook: HookType) -> Value {
    fixture(match hook {
        HookType::Token => "token-hook-request.json",
        HookType::Registration => "registration-hook-request-progressive-profile.json",
        HookType::Import => "import-hook-request.json",
        HookType::PasswordImport => "password-import-request.json",
        HookType::Saml => "saml-hook-request.json",
        HookType::Telephony => "telephony-hook-request.json",
    })
}

fn attrs(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// Answers made with the builders, which must pass both Okta's schema and the check.
fn built_answers() -> Vec<(HookType, &'static str, InlineResponse)> {
    vec![
        (
            HookType::Token,
            "add claims to both tokens",
            InlineResponse::empty()
                .with(token::add_id_token_claims([(
                    "extPatientId",
                    json!("1234"),
                )]))
                .with(token::add_access_token_claims([
                    ("external_guid", json!("F0384685")),
                    ("tier", json!(3)),
                    ("profile", json!({"dept": "4947"})),
                ])),
        ),
        (
            HookType::Token,
            "lifetimes, replace and remove",
            InlineResponse::empty()
                .with(token::identity_patch(vec![
                    token::lifetime_op(3600),
                    PatchOp::replace("/claims/employee_profile/email", json!("a@b.c")),
                    PatchOp::remove("/claims/preferred_airports/1"),
                ]))
                .with(token::access_patch(vec![
                    token::lifetime_op(86_400),
                    PatchOp::add(token::claim_path("http://example.com/role"), json!("x")),
                ])),
        ),
        (
            HookType::Token,
            "error",
            token::error("Could not look up the patient"),
        ),
        (
            HookType::Registration,
            "allow",
            InlineResponse::from(registration::allow()),
        ),
        (
            HookType::Registration,
            "deny with a field error",
            registration::deny_because(
                "Incorrect employee number.",
                [("data.userProfileUpdate.employeeNumber", "Use 4 digits.")],
            ),
        ),
        (
            HookType::Registration,
            "progressive profile update",
            InlineResponse::from(registration::update_progressive_profile(attrs(&[(
                "employeeNumber",
                json!("1234"),
            )]))),
        ),
        (
            HookType::Import,
            "link user and fix the profile",
            InlineResponse::empty()
                .with_all(import::link_user("00u1ab2cd3EF4gh5ij6k"))
                .with(import::update_app_user_profile(attrs(&[(
                    "firstName",
                    json!("Stan"),
                )]))),
        ),
        (
            HookType::Import,
            "create user",
            InlineResponse::from(import::create_user()).with(import::update_user_profile(attrs(
                &[("lastName", json!("Lee"))],
            ))),
        ),
        (
            HookType::PasswordImport,
            "verified",
            InlineResponse::from(password::verified()),
        ),
        (
            HookType::PasswordImport,
            "unverified",
            InlineResponse::from(password::unverified()),
        ),
        (
            HookType::Saml,
            "add an attribute and a session lifetime",
            InlineResponse::from(saml::assertion_patch(vec![
                saml::add_attribute(
                    "http://schemas.example.com/claims/role",
                    &saml::SamlAttribute::strings(saml::NAME_FORMAT_BASIC, ["admin", "user"]),
                ),
                saml::session_lifetime(300),
                PatchOp::replace("/subject/nameId", json!("someone@example.com")),
            ])),
        ),
        (
            HookType::Telephony,
            "delivered",
            InlineResponse::from(
                telephony::TelephonyAction::new(telephony::DeliveryStatus::Successful)
                    .provider("VONAGE")
                    .transaction_id("SM49a8")
                    .transaction_metadata("Duration=300ms")
                    .into_command(),
            ),
        ),
        (
            HookType::Telephony,
            "failed",
            InlineResponse::from(telephony::action(
                telephony::DeliveryStatus::Failed,
                "ACME",
                "tx-1",
            )),
        ),
    ]
}

#[test]
fn builder_answers_match_the_schemas_and_the_contract() {
    for (hook, what, answer) in built_answers() {
        let value = serde_json::to_value(&answer).expect("serialise");
        if let Err(e) = validate_response(hook.name(), &value) {
            panic!("{hook} ({what}) against Okta's schema: {e}");
        }
        if let Err(e) = check(hook, &answer, &sample_request(hook)) {
            panic!("{hook} ({what}) against the contract: {e}");
        }
    }
}

#[test]
fn builder_answers_the_schema_wrongly_rejects() {
    // Valid per the contract (Okta's Java SDK takes any JSON as a claim value, and Okta
    // profiles hold numbers, booleans and arrays), rejected by Okta's schema.
    let token_answer = InlineResponse::from(token::add_id_token_claims([
        ("teams", json!(["a", "b"])),
        ("vip", json!(true)),
        ("score", json!(0.5)),
    ]));
    let token_value = serde_json::to_value(&token_answer).expect("json");
    assert_eq!(
        failing_paths("token-response.schema.json", &token_value),
        vec![
            "/commands/0/value/0/value",
            "/commands/0/value/1/value",
            "/commands/0/value/2/value"
        ]
    );
    check(
        HookType::Token,
        &token_answer,
        &sample_request(HookType::Token),
    )
    .expect("contract");

    let import_answer = InlineResponse::from(import::update_user_profile(attrs(&[
        ("employeeNumber", json!(1234)),
        ("groups", json!(["a"])),
    ])));
    let import_value = serde_json::to_value(&import_answer).expect("json");
    assert_eq!(
        failing_paths("import-response.schema.json", &import_value),
        vec![
            "/commands/0/value/employeeNumber",
            "/commands/0/value/groups"
        ]
    );
    check(
        HookType::Import,
        &import_answer,
        &sample_request(HookType::Import),
    )
    .expect("contract");
}

#[test]
fn validate_response_names_the_problem() {
    let bad =
        json!({"commands": [{"type": "com.okta.telephony.action", "value": [{"status": "SENT"}]}]});
    let err = validate_response("telephony", &bad).expect_err("status enum");
    assert!(err.contains("/commands/0/value/0/status"), "{err}");
    assert!(err.contains("SENT"), "{err}");
    // Every way of naming the type works.
    let ok = json!({"commands": [{"type": "com.okta.action.update", "value": {"credential": "VERIFIED"}}]});
    for name in [
        "password_import",
        "password-import",
        "com.okta.user.credential.password.import",
    ] {
        validate_response(name, &ok).expect(name);
    }
    let err = validate_response("webhook", &ok).expect_err("unknown type");
    assert!(err.contains("unknown hook type"), "{err}");
}
