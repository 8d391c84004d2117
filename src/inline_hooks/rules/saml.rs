//! SAML rules (`[inline_hooks.handler.saml]`): attributes added to the assertion, or
//! the values of attributes it has replaced.

use super::matcher::{nonempty, scalar_text, Guard, ValueSource};
use super::Ctx;
use crate::config::rules::{SamlOp, SamlRules};
use crate::okta::inline::{saml, HookType, InlineResponse, PatchOp};
use serde_json::{json, Value};

pub(super) struct SamlCompiled {
    attributes: Vec<SamlAttributeCompiled>,
}

struct SamlAttributeCompiled {
    /// `/claims/<escaped name>`.
    path: String,
    op: SamlOp,
    value: ValueSource,
    name_format: String,
    xsi_type: String,
    guard: Guard,
}

fn name_format(short: Option<&str>) -> Result<String, String> {
    Ok(match short.unwrap_or("basic") {
        "basic" => saml::NAME_FORMAT_BASIC.into(),
        "uri" => saml::NAME_FORMAT_URI.into(),
        "unspecified" => saml::NAME_FORMAT_UNSPECIFIED.into(),
        full if full.starts_with("urn:") => full.into(),
        other => {
            return Err(format!(
                "`name_format` '{other}': write basic, uri, unspecified or a full urn:"
            ))
        }
    })
}

/// A SAML attribute's values as text: one scalar, or an array of scalars (multi-valued).
fn saml_values(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().filter_map(scalar_text).collect(),
        other => scalar_text(other).into_iter().collect(),
    }
}

impl SamlCompiled {
    pub(super) fn compile(s: &SamlRules) -> Result<Self, String> {
        let attributes = s
            .attributes
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let at = format!("saml.attributes[{i}]");
                nonempty(&a.name, "name").map_err(|e| format!("{at}: {e}"))?;
                if let Some(v) = &a.value {
                    if saml_values(v).is_empty() {
                        return Err(format!(
                            "{at}: `value` must be a string, number, boolean or a list of them"
                        ));
                    }
                }
                Ok(SamlAttributeCompiled {
                    path: saml::claim_path(&a.name),
                    op: a.op,
                    value: ValueSource::compile(&a.value, &a.from)
                        .map_err(|e| format!("{at}: {e}"))?,
                    name_format: name_format(a.name_format.as_deref())
                        .map_err(|e| format!("{at}: {e}"))?,
                    xsi_type: a.xsi_type.clone().unwrap_or_else(|| saml::XS_STRING.into()),
                    guard: Guard::compile(HookType::Saml, &a.when, &a.unless)
                        .map_err(|e| format!("{at}.{e}"))?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        if attributes.is_empty() {
            return Err("saml: no rule (give `attributes`)".into());
        }
        Ok(SamlCompiled { attributes })
    }

    pub(super) fn answer(&self, ctx: &Ctx<'_>) -> InlineResponse {
        let claims = ctx.req.pointer("/data/assertion");
        let mut ops = Vec::new();
        for a in &self.attributes {
            if !a.guard.allows(ctx) {
                continue;
            }
            let values = a
                .value
                .resolve(ctx)
                .map(|v| saml_values(&v))
                .unwrap_or_default();
            if values.is_empty() {
                continue;
            }
            let typed = |v: &String| json!({"attributes": {"xsi:type": a.xsi_type}, "value": v});
            match a.op {
                SamlOp::Add => ops.push(PatchOp::add(
                    &a.path,
                    json!({
                        "attributes": {"NameFormat": a.name_format},
                        "attributeValues": values.iter().map(typed).collect::<Vec<_>>(),
                    }),
                )),
                SamlOp::Replace => {
                    if claims.and_then(|c| c.pointer(&a.path)).is_none() {
                        continue;
                    }
                    // One value keeps the existing value's xsi:type; several replace the list.
                    if let [single] = values.as_slice() {
                        ops.push(PatchOp::replace(
                            format!("{}/attributeValues/0/value", a.path),
                            json!(single),
                        ));
                    } else {
                        ops.push(PatchOp::replace(
                            format!("{}/attributeValues", a.path),
                            json!(values.iter().map(typed).collect::<Vec<_>>()),
                        ));
                    }
                }
            }
        }
        if ops.is_empty() {
            InlineResponse::empty()
        } else {
            InlineResponse::from(saml::assertion_patch(ops))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{fixture, handler, run};
    use super::*;

    const SAML: &str = r#"
        [[saml.attributes]]
        name = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/bar"
        value = "bearer"

        [[saml.attributes]]
        name = "login"
        from = "/data/context/user/profile/login"
        name_format = "unspecified"

        [[saml.attributes]]
        name = "middle"
        op = "replace"
        value = "replacementValue"

        [[saml.attributes]]
        name = "array"
        op = "replace"
        value = ["a", "b"]

        [[saml.attributes]]
        name = "absent"
        op = "replace"
        value = "never sent"

        [[saml.attributes]]
        name = "roles"
        value = ["reader", 7]
        when = [{ attribute = "locale", equals = "en" }]
    "#;

    #[tokio::test]
    async fn saml_sample_gets_added_and_replaced_attributes() {
        let h = handler(HookType::Saml, SAML);
        let answer = run(&h, fixture("saml-hook-request.json")).await;
        let ops = &answer["commands"][0]["value"];
        assert_eq!(
            answer["commands"][0]["type"],
            json!("com.okta.assertion.patch")
        );
        // The same op as Okta's URI-claims sample.
        let sample = fixture("saml-hook-response-uri-claims.json");
        assert_eq!(ops[0], sample["commands"][0]["value"][2]);
        assert_eq!(
            ops[1],
            json!({"op": "add", "path": "/claims/login", "value": {
                "attributes": {"NameFormat": "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified"},
                "attributeValues": [{"attributes": {"xsi:type": "xs:string"}, "value": "administrator1@example.com"}]}})
        );
        assert_eq!(
            ops[2],
            json!({"op": "replace", "path": "/claims/middle/attributeValues/0/value", "value": "replacementValue"})
        );
        assert_eq!(
            ops[3],
            json!({"op": "replace", "path": "/claims/array/attributeValues", "value": [
                {"attributes": {"xsi:type": "xs:string"}, "value": "a"},
                {"attributes": {"xsi:type": "xs:string"}, "value": "b"}]})
        );
        assert_eq!(ops[4]["path"], json!("/claims/roles"));
        assert_eq!(ops[4]["value"]["attributeValues"][1]["value"], json!("7"));
        assert_eq!(
            ops.as_array().map(Vec::len),
            Some(5),
            "replace of an absent attribute is skipped"
        );
    }

    #[tokio::test]
    async fn saml_condition_false_leaves_the_assertion_alone() {
        let h = handler(
            HookType::Saml,
            r#"[[saml.attributes]]
               name = "x"
               value = "y"
               when = [{ field = "/data/context/protocol/issuer/name", glob = "Other*" }]"#,
        );
        assert_eq!(run(&h, fixture("saml-hook-request.json")).await, json!({}));
    }
}
