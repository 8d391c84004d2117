//! Small serde helpers for fields whose JSON type varies between Okta's samples.

use serde::{Deserialize, Deserializer};

/// A value Okta sends sometimes as a string and sometimes as a number
/// (`version`: `"0"` or `0`; `postalCode`: `"M4M"` or `78701`; `eventTypeVersion`: `"1.0"` or `1`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum StringOrNumber {
    String(String),
    Number(serde_json::Number),
}

impl StringOrNumber {
    /// The value as text, whichever way it came.
    pub fn as_string(&self) -> String {
        match self {
            StringOrNumber::String(s) => s.clone(),
            StringOrNumber::Number(n) => n.to_string(),
        }
    }
}

impl<'de> Deserialize<'de> for StringOrNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            N(serde_json::Number),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::S(s) => StringOrNumber::String(s),
            Raw::N(n) => StringOrNumber::Number(n),
        })
    }
}
