//! `GET /api/v1/logs`, one page at a time, through the shared Management API client
//! (rate limits, retries and next links are [`crate::okta_api`]'s).

use super::error::{ReconcileError, SetupError};
use crate::config::Config;
use crate::okta_api::{Client, Retry};
use reqwest::{Method, Url};
use serde_json::value::RawValue;
use tokio_util::sync::CancellationToken;

/// What an OAuth service app asks for, unless `okta.oauth.scopes` says otherwise.
pub const SCOPES: [&str; 1] = ["okta.logs.read"];

/// One page of System Log events, each kept as the API returned it.
pub struct Page {
    pub events: Vec<Box<RawValue>>,
    /// The `rel="next"` link, resolved against the page's URL.
    pub next: Option<Url>,
}

/// Talks to one org's System Log API.
pub struct LogsClient {
    api: Client,
}

impl LogsClient {
    pub fn new(config: &Config) -> Result<LogsClient, SetupError> {
        let okta = config
            .okta
            .as_ref()
            .ok_or(crate::okta_api::SetupError::NotConfigured)?;
        Ok(LogsClient {
            api: Client::new(okta, &SCOPES)?,
        })
    }

    /// The first page's URL: the window, the types, ascending order.
    pub fn first_url(&self, since: &str, until: &str, event_types: &[String], limit: u32) -> Url {
        let filter = event_types
            .iter()
            .map(|t| format!("eventType eq \"{t}\""))
            .collect::<Vec<_>>()
            .join(" or ");
        let mut url = self.api.url("/api/v1/logs");
        url.query_pairs_mut()
            .append_pair("since", since)
            .append_pair("until", until)
            .append_pair("filter", &filter)
            .append_pair("limit", &limit.to_string())
            .append_pair("sortOrder", "ASCENDING");
        url
    }

    /// Fetches one page (the client waits out rate limits and retries what it may).
    pub async fn page(&self, url: &Url, stop: &CancellationToken) -> Result<Page, ReconcileError> {
        let answer = self
            .api
            .call(Method::GET, url, None, Retry::Safe, stop)
            .await?;
        let events: Vec<Box<RawValue>> =
            serde_json::from_slice(&answer.body).map_err(|e| ReconcileError::BadPage {
                url: answer.shown.clone(),
                message: format!("not a JSON array of System Log events: {e}"),
            })?;
        Ok(Page {
            events,
            next: answer.next,
        })
    }
}
