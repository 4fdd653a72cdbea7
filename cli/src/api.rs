//! Sendblue's webhook management API (`/api/account/webhooks`): the four methods docs/sendblue.md
//! documents, nothing more.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use sendblue_webhooks::reconcile::messages_api::ApiCredentials;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::CliError;
use crate::webhooks::{Webhook, WebhookConfig};

const WEBHOOKS_PATH: &str = "/api/account/webhooks";

/// A client of one account's webhook configuration.
#[derive(Debug)]
pub struct ManagementApi {
    http: reqwest::Client,
    webhooks_url: String,
    credentials: ApiCredentials,
}

#[derive(Deserialize)]
struct ConfigAnswer {
    webhooks: WebhookConfig,
}

impl ManagementApi {
    pub fn new(api_base: &str, credentials: ApiCredentials) -> Result<Self, CliError> {
        let http = crate::http::client(Duration::from_secs(30))?;
        let webhooks_url = format!("{}{WEBHOOKS_PATH}", api_base.trim_end_matches('/'));
        Ok(Self { http, webhooks_url, credentials })
    }

    /// GET: the whole configuration, secrets in clear.
    pub async fn get(&self) -> Result<WebhookConfig, CliError> {
        let answer = self.call(Method::GET, None).await?;
        serde_json::from_value::<ConfigAnswer>(answer)
            .map(|a| a.webhooks)
            // The error's own text is left out: serde quotes values, and these are secrets.
            .map_err(|_| {
                CliError::Mismatch("Sendblue's answer holds no readable `webhooks` object".into())
            })
    }

    /// POST: appends `hooks` to `type_name`'s list; touches nothing else.
    pub async fn add(&self, type_name: &str, hooks: &[Webhook]) -> Result<(), CliError> {
        self.call(Method::POST, Some(json!({"webhooks": hooks, "type": type_name}))).await.map(drop)
    }

    /// DELETE: removes these URLs from `type_name`'s list.
    pub async fn remove(&self, type_name: &str, urls: &[&str]) -> Result<(), CliError> {
        self.call(Method::DELETE, Some(json!({"webhooks": urls, "type": type_name})))
            .await
            .map(drop)
    }

    /// PUT: replaces the whole configuration (whatever is left out is removed).
    pub async fn replace(&self, config: &WebhookConfig) -> Result<(), CliError> {
        self.call(Method::PUT, Some(json!({"webhooks": config}))).await.map(drop)
    }

    async fn call(&self, method: Method, body: Option<Value>) -> Result<Value, CliError> {
        let mut request = self.credentials.authorize(self.http.request(method, &self.webhooks_url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| CliError::network(&e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| CliError::network(&e))?;
        let answer: Option<Value> = serde_json::from_str(&text).ok();
        let refused = answer.as_ref().is_some_and(|a| a["status"] == "ERROR");
        if status.is_success() && !refused {
            return answer.ok_or_else(|| {
                CliError::Mismatch(format!(
                    "Sendblue answered {status} with a body that is not JSON"
                ))
            });
        }
        let message = answer
            .as_ref()
            .and_then(|a| a["message"].as_str())
            .map_or_else(|| text.chars().take(200).collect(), str::to_owned);
        Err(CliError::Api { status: status.as_u16(), message, hint: hint(status) })
    }
}

fn hint(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 | 403 => "check SENDBLUE_API_KEY_ID and SENDBLUE_API_SECRET_KEY (dashboard, API keys)",
        400 | 422 => "Sendblue refused the request itself; the message above says which part",
        429 => "rate limited: wait a minute and run the command again",
        500..=599 => "Sendblue failed; the command reads the configuration first, so run it again",
        _ => "see the message above",
    }
}
