//! SAML assertion inline hook (`com.okta.saml.tokens.transform`): Okta is about to sign
//! an assertion for a custom SAML app and lets us patch it.
//!
//! The request carries the assertion as JSON (`data.assertion`: subject,
//! authentication, conditions, attribute statements under `claims`) and read-only
//! context. The answer is `com.okta.assertion.patch` commands of [`PatchOp`]s, `add`
//! and `replace` only, on paths under `/subject/`, `/authentication/`, `/conditions/`
//! or `/claims/`. Attribute names that are URIs must be escaped as JSON Pointer
//! segments ([`claim_path`] does it).

use super::shapes::{
    check_segment, nothing_beside_error, op_and_path, patch_ops, tidy_patch_ops, At, CheckError,
};
use super::{
    patch_value, pointer_segment, Command, ContextUser, InlineError, InlineRequest, InlineResponse,
    Lifetime, PatchOp, RequestInfo, Session,
};
use crate::okta::lenient::StringOrNumber;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A SAML assertion hook request.
pub type SamlRequest = InlineRequest<SamlData>;

/// The only command type.
pub const ASSERTION_PATCH: &str = "com.okta.assertion.patch";
/// Where patch paths may start.
pub const PATH_ROOTS: [&str; 4] = ["/subject/", "/authentication/", "/conditions/", "/claims/"];
/// `add` here (seconds) makes Okta set `SessionNotOnOrAfter` on the AuthnStatement.
pub const SESSION_LIFETIME_PATH: &str = "/authentication/sessionLifetime";

/// `data` of a SAML assertion request.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SamlData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<SamlContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assertion: Option<Assertion>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `data.context`: who signs in to which app. Read-only.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SamlContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<SamlProtocol>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Session>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<ContextUser>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SamlProtocol {
    /// `SAML2.0`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The app the assertion is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<SamlIssuer>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SamlIssuer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `data.assertion`: the assertion about to be signed, in Okta's JSON form.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Assertion {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Subject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Conditions>,
    /// Attribute statements by attribute name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<Map<String, Value>>,
    /// Assertion validity in seconds (read-only: not among the patchable roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime: Option<Lifetime>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation: Option<Confirmation>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Confirmation {
    /// e.g. `urn:oasis:names:tc:SAML:2.0:cm:bearer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// `{"recipient": "<ACS URL>"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Map<String, Value>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Authentication {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_index: Option<String>,
    /// `{"authnContextClassRef": "urn:...:PasswordProtectedTransport"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authn_context: Option<Map<String, Value>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Conditions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience_restriction: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One attribute statement, as in `data.assertion.claims` and as the value of an `add`
/// at `/claims/<name>` (the Java SDK's `SamlAttribute`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SamlAttribute {
    /// `{"NameFormat": "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute_values: Option<Vec<SamlAttributeValue>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One `<AttributeValue>`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SamlAttributeValue {
    /// `{"xsi:type": "xs:string"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Map<String, Value>>,
    /// Text in XML; a string in every sample, a number accepted all the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<StringOrNumber>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `basic` attribute name format.
pub const NAME_FORMAT_BASIC: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic";
/// The `uri` attribute name format.
pub const NAME_FORMAT_URI: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri";
/// The `unspecified` attribute name format.
pub const NAME_FORMAT_UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified";
/// The `xsi:type` of a text attribute value.
pub const XS_STRING: &str = "xs:string";

impl SamlAttribute {
    /// An attribute of `xs:string` values with the given name format.
    pub fn strings<'a>(name_format: &str, values: impl IntoIterator<Item = &'a str>) -> Self {
        SamlAttribute {
            attributes: Some(Map::from_iter([(
                "NameFormat".to_owned(),
                Value::String(name_format.to_owned()),
            )])),
            attribute_values: Some(
                values
                    .into_iter()
                    .map(|v| SamlAttributeValue {
                        attributes: Some(Map::from_iter([(
                            "xsi:type".to_owned(),
                            Value::String("xs:string".to_owned()),
                        )])),
                        value: Some(StringOrNumber::String(v.to_owned())),
                        extra: Map::new(),
                    })
                    .collect(),
            ),
            extra: Map::new(),
        }
    }

    /// The attribute as JSON, for a patch value.
    pub fn to_value(&self) -> Value {
        // Cannot fail: plain data with string keys.
        serde_json::to_value(self).unwrap_or_default()
    }
}

impl SamlRequest {
    /// The attribute statement named `name` (unescaped), if the assertion has it.
    pub fn claim(&self, name: &str) -> Option<SamlAttribute> {
        let claims = self.data.assertion.as_ref()?.claims.as_ref()?;
        serde_json::from_value(claims.get(name)?.clone()).ok()
    }
}

/// `/claims/<name>`, with the name escaped as a JSON Pointer segment (URI claims).
pub fn claim_path(name: &str) -> String {
    format!("/claims/{}", pointer_segment(name))
}

/// Patches the assertion (`com.okta.assertion.patch`); `add` and `replace` only.
pub fn assertion_patch(ops: Vec<PatchOp>) -> Command {
    Command::new(ASSERTION_PATCH, patch_value(ops))
}

/// Adds an attribute statement `name` (or replaces one of that name).
pub fn add_attribute(name: &str, attribute: &SamlAttribute) -> PatchOp {
    PatchOp::add(claim_path(name), attribute.to_value())
}

/// Sets `SessionNotOnOrAfter` to the assertion's issue instant plus `seconds`.
pub fn session_lifetime(seconds: u32) -> PatchOp {
    PatchOp::add(SESSION_LIFETIME_PATH, Value::from(seconds))
}

/// The error answer: Okta denies the SAML request and shows `summary` to the user.
pub fn error(summary: impl Into<String>) -> InlineResponse {
    InlineResponse::empty().error(summary)
}

// ------------------------------------------------------------------------------------------
// The answer's contract: what Okta takes, and what a refusal is
// ------------------------------------------------------------------------------------------

/// The command types a SAML assertion hook answer may carry.
pub const COMMANDS: &[&str] = &[ASSERTION_PATCH];

/// Checks one patch command: add and replace only, under the patchable roots.
pub(super) fn check_command(at: &At) -> Result<(), CheckError> {
    let ops = patch_ops(at)?;
    for (i, op) in ops.iter().enumerate() {
        if op.get("op").and_then(Value::as_str) == Some("remove") {
            return Err(at.fail(format!(
                "value[{i}].op is \"remove\"; SAML assertion patches take only add and replace"
            )));
        }
        let (kind, path) = op_and_path(at, i, op, &["add", "replace"])?;
        let fail = |what: String| at.fail(format!("value[{i}] ({kind} {path}): {what}"));
        let Some(rest) = PATH_ROOTS.iter().find_map(|root| path.strip_prefix(root)) else {
            return Err(fail(format!(
                "the path must start with {}",
                PATH_ROOTS.join(", ")
            )));
        };
        for segment in rest.split('/') {
            check_segment(segment).map_err(fail)?;
        }
        match op.get("value") {
            None | Some(Value::Null) => {
                return Err(fail(format!("an {kind} needs a non-null value")))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Checks what concerns the whole answer: no command beside an `error` (Okta denies the
/// SAML request on an error and applies none, so an answer with both says two things).
pub(super) fn check_answer(answer: &InlineResponse) -> Result<(), CheckError> {
    nothing_beside_error(answer, "denies the SAML request")
}

/// Whether the answer refuses: an `error` denies the SAML request.
pub fn is_refusal(answer: &InlineResponse) -> bool {
    answer.error.is_some()
}

/// The SAML hook's refusal: the `error` alone; Okta denies the request and shows the
/// summary on an error page.
pub fn refusal(error: Option<InlineError>, _answer: &InlineResponse) -> InlineResponse {
    InlineResponse::error_alone(error.unwrap_or_default())
}

/// Drops what Okta does not read from each operation (anything but op, path, value).
pub(super) fn tidy(command: &mut Command) -> Vec<String> {
    tidy_patch_ops(command)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample(text: &str) -> Value {
        serde_json::from_str(text).expect("sample is JSON")
    }

    #[test]
    fn request_sample_parses_and_roundtrips() {
        let raw = sample(include_str!(
            "../../../tests/fixtures/okta/saml-hook-request.json"
        ));
        let r: SamlRequest = serde_json::from_value(raw.clone()).expect("typed request");
        assert_eq!(serde_json::to_value(&r).expect("serialise"), raw);
        assert_eq!(
            r.event_type.as_deref(),
            Some("com.okta.saml.tokens.transform")
        );
        let ctx = r.data.context.as_ref().expect("context");
        let issuer = ctx.protocol.as_ref().and_then(|p| p.issuer.as_ref());
        assert_eq!(issuer.and_then(|i| i.name.as_deref()), Some("SAML 2.0 App"));
        assert_eq!(ctx.session.as_ref().and_then(|s| s.mfa_active), Some(false));
        let assertion = r.data.assertion.as_ref().expect("assertion");
        let subject = assertion.subject.as_ref().expect("subject");
        assert_eq!(
            subject.name_id.as_deref(),
            Some("administrator1@example.com")
        );
        let conditions = assertion.conditions.as_ref().expect("conditions");
        assert_eq!(
            conditions.audience_restriction.as_deref(),
            Some(&["urn:example:sp".to_owned()][..])
        );
        assert_eq!(
            assertion.lifetime.as_ref().and_then(|l| l.expiration),
            Some(300)
        );
        let array = r.claim("array").expect("claim");
        let values = array.attribute_values.expect("values");
        assert_eq!(values.len(), 3);
        assert_eq!(
            values[1].value,
            Some(StringOrNumber::String("Array2".to_owned()))
        );
    }

    #[test]
    fn builders_match_the_samples() {
        let first = assertion_patch(vec![
            PatchOp::replace(
                "/claims/array/attributeValues/1/value",
                json!("replacementValue"),
            ),
            PatchOp::replace(
                "/authentication/authnContext",
                json!({"authnContextClassRef": "replacementValue"}),
            ),
            add_attribute(
                "extPatientId",
                &SamlAttribute::strings(NAME_FORMAT_BASIC, ["4321"]),
            ),
            session_lifetime(300),
        ]);
        let second = assertion_patch(vec![PatchOp::replace(
            "/authentication/sessionIndex",
            json!("definitelyARealSession"),
        )]);
        let answer: InlineResponse = [first, second].into_iter().collect();
        assert_eq!(
            serde_json::to_value(&answer).expect("json"),
            sample(include_str!(
                "../../../tests/fixtures/okta/saml-hook-response.json"
            ))
        );
    }

    #[test]
    fn uri_claims_are_escaped() {
        let name = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/bar";
        let op = add_attribute(name, &SamlAttribute::strings(NAME_FORMAT_BASIC, ["bearer"]));
        let expected = sample(include_str!(
            "../../../tests/fixtures/okta/saml-hook-response-uri-claims.json"
        ));
        let third = &expected["commands"][0]["value"][2];
        assert_eq!(serde_json::to_value(&op).expect("json"), *third);
    }

    #[test]
    fn attribute_roundtrips_through_to_value() {
        let raw = json!({
            "attributes": {"NameFormat": "x"},
            "attributeValues": [{"attributes": {"xsi:type": "xs:integer"}, "value": 7, "lang": "en"}],
            "friendlyName": "f"
        });
        let attr: SamlAttribute = serde_json::from_value(raw.clone()).expect("attribute");
        assert_eq!(attr.to_value(), raw);
        assert_eq!(serde_json::to_value(&attr).expect("json"), raw);
    }

    use super::super::check::check;
    use super::super::testing::{fails, one, saml_request};
    use super::super::HookType;

    #[test]
    fn saml_rules() {
        let r = saml_request();
        let patch = |op: Value| one(ASSERTION_PATCH, json!([op]));
        fails(
            HookType::Saml,
            &one(ASSERTION_PATCH, json!({"op": "add"})),
            &r,
            &["must be an array"],
        );
        fails(
            HookType::Saml,
            &patch(json!({"op": "remove", "path": "/claims/a"})),
            &r,
            &["\"remove\"", "only add and replace"],
        );
        fails(
            HookType::Saml,
            &patch(json!({"op": "copy", "path": "/claims/a", "value": 1})),
            &r,
            &["add, replace"],
        );
        fails(
            HookType::Saml,
            &patch(json!({"op": "add", "path": "/lifetime/expiration", "value": 1})),
            &r,
            &["must start with /subject/, /authentication/, /conditions/, /claims/"],
        );
        fails(
            HookType::Saml,
            &patch(json!({"op": "add", "path": "/claims", "value": 1})),
            &r,
            &["must start with"],
        );
        fails(
            HookType::Saml,
            &patch(json!({"op": "add", "path": "/claims/", "value": 1})),
            &r,
            &["empty segment"],
        );
        fails(
            HookType::Saml,
            &patch(json!({"op": "add", "path": "/claims/http://x/y", "value": 1})),
            &r,
            &["empty segment"],
        );
        fails(
            HookType::Saml,
            &patch(json!({"op": "add", "path": "/claims/a~b", "value": 1})),
            &r,
            &["~0"],
        );
        fails(
            HookType::Saml,
            &patch(json!({"op": "replace", "path": "/subject/nameId"})),
            &r,
            &["needs a non-null value"],
        );
        check(
            HookType::Saml,
            &patch(
                json!({"op": "add", "path": "/claims/a~0b~1c", "value": {"attributeValues": []}}),
            ),
            &r,
        )
        .expect("escapes");
    }
}
