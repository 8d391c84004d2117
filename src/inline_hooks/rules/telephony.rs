//! Telephony rules (`[inline_hooks.handler.telephony]`): SMS and voice destinations denied
//! or allowed by E.164 prefix or by country (read from the calling code with the table of
//! [`crate::inline_hooks::phone`]).

use super::matcher::scalar_text;
use super::Ctx;
use crate::config::rules::TelephonyRules;
use crate::inline_hooks::phone::{country_of, phone_digits, CALLING_CODES, NANP};
use crate::okta::inline::telephony::{self, DeliveryStatus, TelephonyAction};
use crate::okta::inline::{ErrorCause, InlineResponse};
use serde_json::json;

const DEFAULT_TELEPHONY_MESSAGE: &str =
    "Text and voice messages to this phone number are blocked by policy.";

pub(super) struct TelephonyCompiled {
    deny_prefixes: Vec<String>,
    deny_countries: Vec<&'static str>,
    allow_prefixes: Vec<String>,
    allow_countries: Vec<&'static str>,
    message: String,
    provider: String,
}

fn compile_prefixes(list: &[String], key: &str) -> Result<Vec<String>, String> {
    list.iter()
        .enumerate()
        .map(|(i, p)| {
            let digits = p.trim().trim_start_matches('+').replace([' ', '-'], "");
            if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(format!(
                    "telephony.{key}[{i}]: '{p}' is not a number prefix such as +882"
                ));
            }
            Ok(digits)
        })
        .collect()
}

fn compile_countries(list: &[String], key: &str) -> Result<Vec<&'static str>, String> {
    list.iter()
        .enumerate()
        .map(|(i, c)| {
            let code = c.trim().to_ascii_uppercase();
            if let Some((country, _)) = CALLING_CODES.iter().find(|(country, _)| *country == code) {
                return Ok(*country);
            }
            let hint = if NANP.contains(&code.as_str()) {
                format!("{code} shares +1 with the other North American Numbering Plan countries, which a prefix cannot tell apart: use {}_prefixes with +1 or with area codes (e.g. +1242)", key.split('_').next().unwrap_or("deny"))
            } else {
                format!("{code} is not in hookwarden's table of calling codes: use {}_prefixes with its calling code", key.split('_').next().unwrap_or("deny"))
            };
            Err(format!("telephony.{key}[{i}]: {hint}"))
        })
        .collect()
}

impl TelephonyCompiled {
    pub(super) fn compile(t: &TelephonyRules) -> Result<Self, String> {
        let compiled = TelephonyCompiled {
            deny_prefixes: compile_prefixes(&t.deny_prefixes, "deny_prefixes")?,
            deny_countries: compile_countries(&t.deny_countries, "deny_countries")?,
            allow_prefixes: compile_prefixes(&t.allow_prefixes, "allow_prefixes")?,
            allow_countries: compile_countries(&t.allow_countries, "allow_countries")?,
            message: t
                .message
                .clone()
                .unwrap_or_else(|| DEFAULT_TELEPHONY_MESSAGE.into()),
            provider: t
                .provider
                .clone()
                .unwrap_or_else(|| telephony::REFUSAL_PROVIDER.into()),
        };
        if compiled.deny_prefixes.is_empty()
            && compiled.deny_countries.is_empty()
            && compiled.allow_prefixes.is_empty()
            && compiled.allow_countries.is_empty()
        {
            return Err("telephony: no rule (give deny_prefixes, deny_countries, allow_prefixes or allow_countries)".into());
        }
        Ok(compiled)
    }

    /// Why a number is blocked (`reason`, the rule, a description without the number).
    fn verdict(&self, digits: Option<&str>) -> Option<(&'static str, &'static str, String)> {
        let allow_list = !self.allow_prefixes.is_empty() || !self.allow_countries.is_empty();
        let Some(digits) = digits else {
            return allow_list.then(|| {
                (
                    "NOT_ALLOWED_DESTINATION",
                    "telephony.allow",
                    "the phone number is not in E.164 form, so it cannot be shown to be allowed"
                        .to_owned(),
                )
            });
        };
        let country = country_of(digits);
        if let Some(p) = self
            .deny_prefixes
            .iter()
            .find(|p| digits.starts_with(p.as_str()))
        {
            return Some((
                "BLOCKED_PREFIX",
                "telephony.deny_prefixes",
                format!("numbers starting with +{p} are blocked"),
            ));
        }
        if let Some(c) = country.filter(|c| self.deny_countries.contains(c)) {
            return Some((
                "BLOCKED_COUNTRY",
                "telephony.deny_countries",
                format!("numbers of country {c} are blocked"),
            ));
        }
        let allowed = self
            .allow_prefixes
            .iter()
            .any(|p| digits.starts_with(p.as_str()))
            || country.is_some_and(|c| self.allow_countries.contains(&c));
        if allow_list && !allowed {
            return Some((
                "NOT_ALLOWED_DESTINATION",
                "telephony.allow",
                "the number's country or prefix is not among the allowed ones".to_owned(),
            ));
        }
        None
    }

    /// `{}` lets Okta send through its own providers; a block answers `FAILED` with an
    /// `error`. Okta documents that it then falls back to its own providers too: this
    /// answer records the decision in the System Log, it cannot stop the message.
    pub(super) fn answer(&self, ctx: &Ctx<'_>, event_id: Option<&str>) -> InlineResponse {
        let digits = ctx
            .req
            .pointer("/data/messageProfile/phoneNumber")
            .and_then(scalar_text)
            .and_then(|t| phone_digits(&t));
        let Some((reason, rule, detail)) = self.verdict(digits.as_deref()) else {
            return InlineResponse::empty();
        };
        tracing::debug!(rule, "telephony destination blocked by rules");
        let mut action =
            TelephonyAction::new(DeliveryStatus::Failed).provider(self.provider.clone());
        if let Some(id) = event_id {
            action = action.transaction_id(id);
        }
        InlineResponse::from(action.into_command())
            .error(self.message.clone())
            .error_cause(ErrorCause {
                error_summary: Some(detail),
                reason: Some(reason.into()),
                location_type: Some("body".into()),
                location: Some("data.messageProfile.phoneNumber".into()),
                domain: Some("end-user".into()),
            })
            .debug("deniedBy", json!(rule))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{build_error, fixture, handler, run, set};
    use super::super::RulesHandler;
    use super::*;
    use crate::okta::inline::HookType;
    use serde_json::Value;

    const TELEPHONY: &str = r#"
        [telephony]
        deny_prefixes = ["+882", "+979"]
        deny_countries = ["NG"]
        message = "SMS to this destination is blocked."
    "#;

    async fn telephony(h: &RulesHandler, number: Value) -> Value {
        let mut body = fixture("telephony-hook-request.json");
        set(&mut body, "/data/messageProfile/phoneNumber", number);
        run(h, body).await
    }

    #[tokio::test]
    async fn telephony_samples_pass_a_deny_list() {
        let h = handler(HookType::Telephony, TELEPHONY);
        for sample in [
            "telephony-hook-request.json",
            "telephony-hook-request-spec.json",
        ] {
            assert_eq!(run(&h, fixture(sample)).await, json!({}), "{sample}");
        }
    }

    #[tokio::test]
    async fn telephony_denied_prefix_and_country_answer_failed() {
        let h = handler(HookType::Telephony, TELEPHONY);
        let answer = telephony(&h, json!("+882 1234 5678")).await;
        assert_eq!(
            answer,
            json!({
                "commands": [{"type": "com.okta.telephony.action", "value": [
                    {"status": "FAILED", "provider": "hookwarden", "transactionId": "uS5871kJThSsU8qlA1LTcg"}]}],
                "error": {"errorSummary": "SMS to this destination is blocked.", "errorCauses": [{
                    "errorSummary": "numbers starting with +882 are blocked",
                    "reason": "BLOCKED_PREFIX", "locationType": "body",
                    "location": "data.messageProfile.phoneNumber", "domain": "end-user"}]},
                "debugContext": {"deniedBy": "telephony.deny_prefixes"}
            })
        );
        let answer = telephony(&h, json!("+2348012345678")).await;
        assert_eq!(
            answer["error"]["errorCauses"][0]["reason"],
            json!("BLOCKED_COUNTRY")
        );
        assert!(
            !answer.to_string().contains("8012345678"),
            "the number is not repeated"
        );
        assert_eq!(
            telephony(&h, json!("0097912345678")).await["debugContext"]["deniedBy"],
            json!("telephony.deny_prefixes")
        );
        assert_eq!(telephony(&h, json!("+44 7700 900123")).await, json!({}));
    }

    #[tokio::test]
    async fn telephony_allow_list_blocks_everything_else() {
        let h = handler(
            HookType::Telephony,
            "[telephony]\nallow_countries = [\"gb\", \"KZ\"]\nallow_prefixes = [\"+1\"]",
        );
        assert_eq!(telephony(&h, json!("+447700900123")).await, json!({}));
        assert_eq!(telephony(&h, json!("+1 (415) 555-0100")).await, json!({}));
        assert_eq!(
            telephony(&h, json!("+77011234567")).await,
            json!({}),
            "KZ inside +7"
        );
        let ru = telephony(&h, json!("+79161234567")).await;
        assert_eq!(
            ru["error"]["errorCauses"][0]["reason"],
            json!("NOT_ALLOWED_DESTINATION")
        );
        let garbage = telephony(&h, json!("call me")).await;
        assert_eq!(
            garbage["commands"][0]["value"][0]["status"],
            json!("FAILED")
        );
        // The spec sample's number is a JSON number; without '+' it is read as E.164 (+98: IR).
        let answer = run(&h, fixture("telephony-hook-request-spec.json")).await;
        assert_eq!(
            answer["error"]["errorCauses"][0]["reason"],
            json!("NOT_ALLOWED_DESTINATION")
        );
    }

    #[test]
    fn telephony_countries_outside_the_table_are_refused() {
        let e = build_error(
            HookType::Telephony,
            "[telephony]\ndeny_countries = [\"NG\", \"US\"]",
        );
        assert!(
            e.contains("telephony.deny_countries[1]") && e.contains("+1"),
            "{e}"
        );
        let e = build_error(
            HookType::Telephony,
            "[telephony]\nallow_countries = [\"XX\"]",
        );
        assert!(e.contains("allow_prefixes"), "{e}");
        let e = build_error(
            HookType::Telephony,
            "[telephony]\ndeny_prefixes = [\"+88a\"]",
        );
        assert!(e.contains("telephony.deny_prefixes[0]"), "{e}");
        assert_eq!(country_of("79161234567"), Some("RU"));
        assert_eq!(country_of("77011234567"), Some("KZ"));
        assert_eq!(country_of("14155550100"), None);
    }
}
