//! Registration rules (`[inline_hooks.handler.registration]`), for self-service
//! registration (Classic included) and progressive profile: the email domain allowed or
//! denied, attribute checks (each failing one is an `errorCauses[]` entry, so the Sign-In
//! Widget marks every wrong field at once) and attributes set on an allowed registration.

use super::matcher::{compile_sets, is_blank, nonempty, scalar_text, Guard, SetCompiled, Test};
use super::Ctx;
use crate::config::rules::{Matcher, RegistrationRules};
use crate::glob::glob_match;
use crate::okta::inline::{registration, ErrorCause, HookType, InlineResponse};
use serde_json::{json, Map};

const DEFAULT_REGISTRATION_SUMMARY: &str = "Registration cannot be completed.";
const DEFAULT_DOMAIN_MESSAGE: &str = "This email domain cannot be used to register.";
const DEFAULT_CHECK_MESSAGE: &str = "This value is not accepted.";

pub(super) struct RegistrationCompiled {
    error_summary: String,
    email: Option<EmailCompiled>,
    checks: Vec<CheckCompiled>,
    sets: Vec<SetCompiled>,
}

struct EmailCompiled {
    attribute: String,
    /// Lower-case globs.
    allow: Vec<String>,
    deny: Vec<String>,
    message: String,
    reason: String,
}

enum CheckMode {
    MustMatch(Test),
    MustNotMatch(Test),
    /// Only `required`.
    Presence,
}

struct CheckCompiled {
    index: usize,
    attribute: String,
    mode: CheckMode,
    required: bool,
    message: String,
    reason: String,
    guard: Guard,
}

/// Lower-cases a domain entry; `@example.com` is accepted for `example.com`.
fn domain_pattern(entry: &str) -> Result<String, String> {
    let d = entry.trim().trim_start_matches('@').to_lowercase();
    if d.is_empty() || d.contains('@') || d.contains(char::is_whitespace) || d.contains('/') {
        return Err(format!(
            "'{entry}' is not a domain (write example.com, or *.example.com for its subdomains)"
        ));
    }
    Ok(d)
}

impl RegistrationCompiled {
    pub(super) fn compile(r: &RegistrationRules) -> Result<Self, String> {
        let email = match &r.email {
            Some(e) => {
                let at = "registration.email";
                nonempty(&e.attribute, "attribute").map_err(|m| format!("{at}: {m}"))?;
                let list = |entries: &[String], key: &str| -> Result<Vec<String>, String> {
                    entries
                        .iter()
                        .enumerate()
                        .map(|(i, d)| {
                            domain_pattern(d).map_err(|m| format!("{at}.{key}[{i}]: {m}"))
                        })
                        .collect()
                };
                let allow = list(&e.allow_domains, "allow_domains")?;
                let deny = list(&e.deny_domains, "deny_domains")?;
                if allow.is_empty() && deny.is_empty() {
                    return Err(format!(
                        "{at}: give `allow_domains`, `deny_domains` or both (as written it checks nothing)"
                    ));
                }
                Some(EmailCompiled {
                    attribute: e.attribute.clone(),
                    allow,
                    deny,
                    message: e
                        .message
                        .clone()
                        .unwrap_or_else(|| DEFAULT_DOMAIN_MESSAGE.into()),
                    reason: e
                        .reason
                        .clone()
                        .unwrap_or_else(|| "INVALID_EMAIL_DOMAIN".into()),
                })
            }
            None => None,
        };
        let checks = r
            .check
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let at = format!("registration.check[{i}]");
                nonempty(&c.attribute, "attribute").map_err(|e| format!("{at}: {e}"))?;
                let compile = |m: &Matcher, key: &str| {
                    let t = Test::compile(m).map_err(|e| format!("{at}.{key}: {e}"))?;
                    if t.is_empty() {
                        return Err(format!(
                            "{at}.{key}: give at least one test (glob, regex, equals, ...)"
                        ));
                    }
                    Ok(t)
                };
                let mode = match (&c.must_match, &c.must_not_match) {
                    (Some(_), Some(_)) => {
                        return Err(format!(
                        "{at}: use `must_match` or `must_not_match`, not both (write two checks)"
                    ))
                    }
                    (Some(m), None) => CheckMode::MustMatch(compile(m, "must_match")?),
                    (None, Some(m)) => CheckMode::MustNotMatch(compile(m, "must_not_match")?),
                    (None, None) if c.required => CheckMode::Presence,
                    (None, None) => {
                        return Err(format!(
                            "{at}: give `must_match`, `must_not_match` or `required = true`"
                        ))
                    }
                };
                Ok(CheckCompiled {
                    index: i,
                    attribute: c.attribute.clone(),
                    mode,
                    required: c.required,
                    message: c
                        .message
                        .clone()
                        .unwrap_or_else(|| DEFAULT_CHECK_MESSAGE.into()),
                    reason: c
                        .reason
                        .clone()
                        .unwrap_or_else(|| "INVALID_ATTRIBUTE".into()),
                    guard: Guard::compile(HookType::Registration, &c.when, &c.unless)
                        .map_err(|e| format!("{at}.{e}"))?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let sets = compile_sets(HookType::Registration, "registration", &r.set)?;
        if email.is_none() && checks.is_empty() && sets.is_empty() {
            return Err("registration: no rule (give `email`, `check` or `set`)".into());
        }
        Ok(RegistrationCompiled {
            error_summary: r
                .error_summary
                .clone()
                .unwrap_or_else(|| DEFAULT_REGISTRATION_SUMMARY.into()),
            email,
            checks,
            sets,
        })
    }

    pub(super) fn answer(&self, ctx: &Ctx<'_>) -> InlineResponse {
        let mut causes = Vec::new();
        let mut denied_by = Vec::new();
        if let Some(email) = &self.email {
            if email.denies(ctx) {
                causes.push(cause(&email.attribute, &email.message, &email.reason));
                denied_by.push("registration.email".to_owned());
            }
        }
        for check in &self.checks {
            if check.guard.allows(ctx) && check.fails(ctx) {
                causes.push(cause(&check.attribute, &check.message, &check.reason));
                denied_by.push(format!("registration.check[{}]", check.index));
            }
        }
        if !causes.is_empty() {
            tracing::debug!(rules = ?denied_by, "registration denied by rules");
            // With an `error`, Okta runs no command and denies anyway; the DENY is kept so
            // that the answer reads the same as Okta's documented sample.
            let mut answer =
                InlineResponse::from(registration::deny()).error(self.error_summary.clone());
            for c in causes {
                answer = answer.error_cause(c);
            }
            return answer.debug("deniedBy", json!(denied_by));
        }
        let mut update = Map::new();
        for set in &self.sets {
            if set.guard.allows(ctx) {
                if let Some(v) = set.value.resolve(ctx) {
                    update.insert(set.attribute.clone(), v);
                }
            }
        }
        if update.is_empty() {
            return InlineResponse::empty();
        }
        InlineResponse::from(if ctx.progressive {
            registration::update_progressive_profile(update)
        } else {
            registration::update_profile(update)
        })
    }
}

/// An `errorCauses[]` entry the Sign-In Widget shows under the attribute's field. Okta's
/// own progressive-profile sample also points at `data.userProfile.<attr>`, so both flows do.
fn cause(attribute: &str, message: &str, reason: &str) -> ErrorCause {
    ErrorCause {
        error_summary: Some(message.to_owned()),
        reason: Some(reason.to_owned()),
        location_type: Some("body".into()),
        location: Some(format!("data.userProfile.{attribute}")),
        domain: Some("end-user".into()),
    }
}

impl EmailCompiled {
    /// SSR without an address fails an allow-list (it cannot be shown to be allowed);
    /// progressive profile without one is not judged (the person is already a user).
    fn denies(&self, ctx: &Ctx<'_>) -> bool {
        let address = ctx.attribute(&self.attribute).and_then(scalar_text);
        let domain = address.as_deref().and_then(|a| {
            a.trim()
                .rsplit_once('@')
                .map(|(_, d)| d.trim().trim_end_matches('.').to_lowercase())
                .filter(|d| !d.is_empty())
        });
        match domain {
            Some(d) => {
                self.deny.iter().any(|p| glob_match(p, &d))
                    || (!self.allow.is_empty() && !self.allow.iter().any(|p| glob_match(p, &d)))
            }
            // An address without a domain is no allowed address.
            None if address.is_some() => !self.allow.is_empty(),
            None => !ctx.progressive && !self.allow.is_empty(),
        }
    }
}

impl CheckCompiled {
    fn fails(&self, ctx: &Ctx<'_>) -> bool {
        let value = ctx.attribute(&self.attribute).filter(|v| !is_blank(v));
        if value.is_none() {
            return self.required;
        }
        match &self.mode {
            CheckMode::MustMatch(t) => !t.matches(value),
            CheckMode::MustNotMatch(t) => t.matches(value),
            CheckMode::Presence => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{fixture, handler, run, set};
    use super::*;

    const REGISTRATION: &str = r#"
        [registration]
        error_summary = "Incorrect email address. Please contact your admin."

        [registration.email]
        allow_domains = ["example.com", "*.example.com"]
        deny_domains = ["mailinator.com"]
        message = "Only example.com emails can register."

        [[registration.check]]
        attribute = "employeeNumber"
        must_match = { chars = "digits", min_length = 4, max_length = 4 }
        reason = "INVALID_EMPLOYEE_NUMBER"
        message = "Only employee numbers with 4 digits can register."

        [[registration.set]]
        attribute = "customerType"
        value = "self-registered"
        when = [{ field = "/requestType", equals = "self.service.registration" }]

        [[registration.set]]
        attribute = "employeeNumber"
        from = "/data/userProfileUpdate/employeeNumber"
    "#;

    #[tokio::test]
    async fn registration_ssr_sample_is_allowed_and_profiled() {
        let h = handler(HookType::Registration, REGISTRATION);
        let answer = run(&h, fixture("registration-hook-request-ssr.json")).await;
        assert_eq!(
            answer,
            json!({"commands": [{"type": "com.okta.user.profile.update", "value": {"customerType": "self-registered"}}]})
        );
    }

    #[tokio::test]
    async fn registration_ssr_denied_domain_reads_like_okta_sample() {
        let h = handler(HookType::Registration, REGISTRATION);
        let mut body = fixture("registration-hook-request-ssr.json");
        set(
            &mut body,
            "/data/userProfile/email",
            json!("Rosario@Mailinator.COM"),
        );
        let mut answer = run(&h, body).await;
        assert_eq!(
            answer["debugContext"],
            json!({"deniedBy": ["registration.email"]})
        );
        answer
            .as_object_mut()
            .expect("object")
            .remove("debugContext");
        assert_eq!(answer, fixture("registration-hook-response-deny.json"));
    }

    #[tokio::test]
    async fn registration_allow_list_refuses_other_domains_and_accepts_subdomains() {
        let h = handler(HookType::Registration, REGISTRATION);
        for (email, denied) in [
            ("a@example.com", false),
            ("a@EXAMPLE.com", false),
            ("a@eu.example.com", false),
            ("a@evil-example.com", true),
            ("a@example.com.evil.net", true),
            ("no-at-sign", true),
        ] {
            let mut body = fixture("registration-hook-request-ssr.json");
            set(&mut body, "/data/userProfile/email", json!(email));
            let answer = run(&h, body).await;
            assert_eq!(answer.get("error").is_some(), denied, "{email}: {answer}");
        }
        // SSR without an address cannot be shown to be allowed.
        let mut body = fixture("registration-hook-request-ssr.json");
        body["data"]["userProfile"]
            .as_object_mut()
            .expect("profile")
            .remove("email");
        assert!(run(&h, body).await.get("error").is_some());
    }

    #[tokio::test]
    async fn registration_deny_list_alone_lets_other_domains_in() {
        let h = handler(
            HookType::Registration,
            r#"[registration.email]
               deny_domains = ["@mailinator.com"]"#,
        );
        let mut body = fixture("registration-hook-request-ssr.json");
        assert_eq!(run(&h, body.clone()).await, json!({}));
        set(
            &mut body,
            "/data/userProfile/email",
            json!("x@mailinator.com"),
        );
        let answer = run(&h, body).await;
        assert_eq!(
            answer["commands"][0]["value"],
            json!({"registration": "DENY"})
        );
        assert_eq!(
            answer["error"]["errorSummary"],
            json!(DEFAULT_REGISTRATION_SUMMARY)
        );
        assert_eq!(
            answer["error"]["errorCauses"][0]["reason"],
            json!("INVALID_EMAIL_DOMAIN")
        );
    }

    #[tokio::test]
    async fn registration_progressive_profile_sample_passes_the_check() {
        let h = handler(HookType::Registration, REGISTRATION);
        // No email in the update or the profile: a person already registered is not judged.
        let answer = run(
            &h,
            fixture("registration-hook-request-progressive-profile.json"),
        )
        .await;
        assert_eq!(answer, fixture("registration-hook-response-pp-update.json"));
    }

    #[tokio::test]
    async fn registration_progressive_profile_bad_value_reads_like_okta_sample() {
        let h = handler(
            HookType::Registration,
            &REGISTRATION.replace(
                "Incorrect email address. Please contact your admin.",
                "Incorrect employee number. Enter an employee number with 4 digits.",
            ),
        );
        let mut body = fixture("registration-hook-request-progressive-profile.json");
        set(
            &mut body,
            "/data/userProfileUpdate/employeeNumber",
            json!("12a4"),
        );
        let mut answer = run(&h, body).await;
        assert_eq!(
            answer["debugContext"],
            json!({"deniedBy": ["registration.check[0]"]})
        );
        answer
            .as_object_mut()
            .expect("object")
            .remove("debugContext");
        assert_eq!(answer, fixture("registration-hook-response-pp-deny.json"));
    }

    #[tokio::test]
    async fn registration_progressive_profile_reads_the_current_profile_too() {
        let h = handler(
            HookType::Registration,
            r#"[registration.email]
               attribute = "login"
               allow_domains = ["example.org"]"#,
        );
        // The update has no login: the current profile's (example.com) is judged.
        let answer = run(
            &h,
            fixture("registration-hook-request-progressive-profile.json"),
        )
        .await;
        assert_eq!(
            answer["error"]["errorCauses"][0]["location"],
            json!("data.userProfile.login")
        );
    }

    #[tokio::test]
    async fn registration_classic_sample_is_treated_as_ssr() {
        let h = handler(HookType::Registration, REGISTRATION);
        let answer = run(&h, fixture("registration-hook-request-classic.json")).await;
        // No requestType, so the SSR-only `set` (when requestType = SSR) does not apply.
        assert_eq!(answer, json!({}));
        let h = handler(
            HookType::Registration,
            r#"[registration.email]
               attribute = "login"
               allow_domains = ["example.org"]
               message = "You specified an invalid email domain"
               [registration]
               error_summary = "Errors were found in the user profile""#,
        );
        let answer = run(&h, fixture("registration-hook-request-classic.json")).await;
        let expected = fixture("registration-hook-response-error-classic.json");
        assert_eq!(answer["error"], expected["error"]);
    }

    #[tokio::test]
    async fn registration_checks_report_every_failing_field() {
        let h = handler(
            HookType::Registration,
            r#"
            [[registration.check]]
            attribute = "lastName"
            must_not_match = { glob = ["*test*", "*fake*"], ignore_case = true }
            message = "No test accounts."
            [[registration.check]]
            attribute = "department"
            required = true
            message = "Department is required."
            reason = "REQUIRED"
            [[registration.check]]
            attribute = "firstName"
            must_match = { regex = "^[A-Z]" }
            unless = [{ attribute = "lastName", equals = "Jones" }]
            "#,
        );
        let mut body = fixture("registration-hook-request-ssr.json");
        set(&mut body, "/data/userProfile/lastName", json!("TestUser"));
        set(&mut body, "/data/userProfile/firstName", json!("rosario"));
        let answer = run(&h, body).await;
        let causes = &answer["error"]["errorCauses"];
        assert_eq!(causes.as_array().map(Vec::len), Some(3), "{answer}");
        assert_eq!(causes[0]["location"], json!("data.userProfile.lastName"));
        assert_eq!(causes[0]["reason"], json!("INVALID_ATTRIBUTE"));
        assert_eq!(causes[1]["location"], json!("data.userProfile.department"));
        assert_eq!(causes[1]["reason"], json!("REQUIRED"));
        assert_eq!(causes[2]["location"], json!("data.userProfile.firstName"));
        // The sample itself (Rosario Jones, no department) fails only the required check;
        // the regex check is skipped by its `unless`.
        let answer = run(&h, fixture("registration-hook-request-ssr.json")).await;
        assert_eq!(
            answer["debugContext"],
            json!({"deniedBy": ["registration.check[1]"]})
        );
    }

    #[tokio::test]
    async fn registration_set_copies_request_fields_with_a_fallback() {
        let h = handler(
            HookType::Registration,
            r#"
            [[registration.set]]
            attribute = "nickName"
            from = "data.userProfile.firstName"
            [[registration.set]]
            attribute = "costCenter"
            from = "/data/userProfile/costCenter"
            value = "unassigned"
            [[registration.set]]
            attribute = "never"
            from = "/data/absent"
            "#,
        );
        let answer = run(&h, fixture("registration-hook-request-ssr.json")).await;
        assert_eq!(
            answer,
            json!({"commands": [{"type": "com.okta.user.profile.update",
                                 "value": {"nickName": "Rosario", "costCenter": "unassigned"}}]})
        );
    }
}
