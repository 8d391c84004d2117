//! Import rules (`[inline_hooks.handler.import]`): an app user is linked to the Okta user
//! it matches when it carries a given attribute, and attributes of the app user's or the
//! Okta user's profile are set.

use super::matcher::{compile_sets, is_blank, nonempty, Field, SetCompiled};
use super::Ctx;
use crate::config::rules::{ImportRules, ProfileTarget};
use crate::okta::inline::{import, HookType, InlineResponse};
use serde_json::{Map, Value};

pub(super) struct ImportCompiled {
    link: Option<(String, Vec<Field>)>,
    sets: Vec<SetCompiled>,
}

impl ImportCompiled {
    pub(super) fn compile(r: &ImportRules) -> Result<Self, String> {
        let link = match &r.link {
            Some(l) => {
                nonempty(&l.attribute, "attribute").map_err(|e| format!("import.link: {e}"))?;
                if l.user_id_from.is_empty() {
                    return Err("import.link: `user_id_from` is empty".into());
                }
                let fields = l
                    .user_id_from
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        Field::parse(f).map_err(|e| format!("import.link.user_id_from[{i}]: {e}"))
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                Some((l.attribute.clone(), fields))
            }
            None => None,
        };
        let sets = compile_sets(HookType::Import, "import", &r.set)?;
        if link.is_none() && sets.is_empty() {
            return Err("import: no rule (give `link` or `set`)".into());
        }
        Ok(ImportCompiled { link, sets })
    }

    pub(super) fn answer(&self, ctx: &Ctx<'_>) -> InlineResponse {
        let mut answer = InlineResponse::empty();
        if let Some((attribute, fields)) = &self.link {
            if ctx.attribute(attribute).is_some_and(|v| !is_blank(v)) {
                let id = fields.iter().find_map(|f| {
                    f.get(ctx.req)
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                });
                answer = match id {
                    // LINK_USER requires the user id in the same answer: the builder sends both.
                    Some(id) => answer.with_all(import::link_user(id)),
                    None => answer.with(import::create_user()),
                };
            }
        }
        let mut app_user = Map::new();
        let mut user = Map::new();
        for set in &self.sets {
            if set.guard.allows(ctx) {
                if let Some(v) = set.value.resolve(ctx) {
                    let target = match set.target {
                        Some(ProfileTarget::User) => &mut user,
                        _ => &mut app_user,
                    };
                    target.insert(set.attribute.clone(), v);
                }
            }
        }
        if !app_user.is_empty() {
            answer = answer.with(import::update_app_user_profile(app_user));
        }
        if !user.is_empty() {
            answer = answer.with(import::update_user_profile(user));
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{build_error, fixture, handler, run, set};
    use super::*;
    use serde_json::json;

    const IMPORT: &str = r#"
        [import.link]
        attribute = "externalId"
        user_id_from = ["data.context.matches[0].id", "/data/user/id"]

        [[import.set]]
        target = "app_user"
        attribute = "accountType"
        value = "STANDARD"
        when = [{ attribute = "accountType", exists = false }]

        [[import.set]]
        target = "user"
        attribute = "nickName"
        from = "/data/appUser/profile/userName"
    "#;

    #[tokio::test]
    async fn import_samples_create_when_no_user_matches() {
        let h = handler(HookType::Import, IMPORT);
        for name in ["import-hook-request.json", "import-hook-request-spec.json"] {
            let answer = run(&h, fixture(name)).await;
            assert_eq!(
                answer,
                json!({"commands": [
                    {"type": "com.okta.action.update", "value": {"result": "CREATE_USER"}},
                    {"type": "com.okta.user.profile.update", "value": {"nickName": "administrator2"}}
                ]}),
                "{name}"
            );
        }
    }

    #[tokio::test]
    async fn import_links_a_matched_user_like_okta_sample() {
        let h = handler(
            HookType::Import,
            "[import.link]\nattribute = \"externalId\"",
        );
        let mut body = fixture("import-hook-request.json");
        set(
            &mut body,
            "/data/context/matches",
            json!([{"id": "00garwpuyxHaWOkdV0g4"}]),
        );
        assert_eq!(
            run(&h, body).await,
            fixture("import-hook-response-link-user.json")
        );
        // With the guide's whole rule set, the profile update follows the link.
        let h = handler(HookType::Import, IMPORT);
        let mut body = fixture("import-hook-request.json");
        set(
            &mut body,
            "/data/context/matches",
            json!([{"id": "00garwpuyxHaWOkdV0g4"}]),
        );
        assert_eq!(
            run(&h, body).await,
            json!({"commands": [
                {"type": "com.okta.action.update", "value": {"result": "LINK_USER"}},
                {"type": "com.okta.user.update", "value": {"id": "00garwpuyxHaWOkdV0g4"}},
                {"type": "com.okta.user.profile.update", "value": {"nickName": "administrator2"}}
            ]})
        );
    }

    #[tokio::test]
    async fn import_without_the_attribute_keeps_okta_default() {
        let h = handler(HookType::Import, IMPORT);
        let mut body = fixture("import-hook-request.json");
        set(&mut body, "/data/appUser/profile/externalId", Value::Null);
        set(&mut body, "/data/appUser/profile/accountType", Value::Null);
        let answer = run(&h, body).await;
        assert_eq!(
            answer,
            json!({"commands": [
                {"type": "com.okta.appUser.profile.update", "value": {"accountType": "STANDARD"}},
                {"type": "com.okta.user.profile.update", "value": {"nickName": "administrator2"}}
            ]})
        );
    }

    #[test]
    fn import_set_needs_a_target() {
        let e = build_error(
            HookType::Import,
            "[[import.set]]\nattribute = \"a\"\nvalue = 1",
        );
        assert!(e.contains("import.set[0]") && e.contains("target"), "{e}");
        let e = build_error(
            HookType::Registration,
            "[[registration.set]]\nattribute = \"a\"\nvalue = 1\ntarget = \"user\"",
        );
        assert!(
            e.contains("registration.set[0]") && e.contains("import"),
            "{e}"
        );
    }
}
