//! Where the deployed receivers are: the stack's `ApiBaseUrl` output, given directly, read from
//! a file of outputs (`sam list stack-outputs --output json`), or asked of CloudFormation.

use std::path::Path;

use aws_config::BehaviorVersion;
use sendblue_webhooks::WebhookType;
use serde::Deserialize;

use crate::error::CliError;

/// The template's output holding the base of every receiver URL.
pub const API_BASE_OUTPUT: &str = "ApiBaseUrl";

/// The base of one stack's receiver URLs, e.g. `https://abc.execute-api.us-east-1.amazonaws.com/sendblue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlBase(String);

impl UrlBase {
    /// Accepts the API's URL with or without the `/sendblue` the routes start with. Sendblue
    /// delivers only to HTTPS; plain HTTP is allowed for loopback, where the local run listens.
    pub fn parse(url: &str) -> Result<Self, CliError> {
        let url = url.trim().trim_end_matches('/');
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| CliError::Input(format!("invalid URL {url:?}: {e}")))?;
        let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if parsed.scheme() != "https" && !(parsed.scheme() == "http" && loopback) {
            return Err(CliError::Input(format!(
                "{url} is not HTTPS: Sendblue delivers to HTTPS only"
            )));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(CliError::Input(format!("{url}: the URL base takes no query or fragment")));
        }
        Ok(Self(if url.ends_with("/sendblue") {
            url.to_owned()
        } else {
            format!("{url}/sendblue")
        }))
    }

    /// The URL of the function receiving `webhook_type`.
    pub fn url_of(&self, webhook_type: WebhookType) -> String {
        format!("{}/{}", self.0, webhook_type.binary_name())
    }

    /// Whether `url` points at one of this stack's routes.
    pub fn contains(&self, url: &str) -> bool {
        url.strip_prefix(self.0.as_str()).is_some_and(|rest| rest.starts_with('/'))
    }
}

impl std::fmt::Display for UrlBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Output {
    output_key: String,
    output_value: String,
}

/// Reads `ApiBaseUrl` from the JSON `sam list stack-outputs --output json` prints.
pub fn from_outputs_file(path: &Path) -> Result<UrlBase, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Input(format!("cannot read {}: {e}", path.display())))?;
    let outputs: Vec<Output> = serde_json::from_str(&text).map_err(|e| {
        CliError::Input(format!("{}: not a list of stack outputs ({e})", path.display()))
    })?;
    let base = outputs.into_iter().find(|o| o.output_key == API_BASE_OUTPUT).ok_or_else(|| {
        CliError::Input(format!("{}: no {API_BASE_OUTPUT} output", path.display()))
    })?;
    UrlBase::parse(&base.output_value)
}

/// Asks CloudFormation for the stack's `ApiBaseUrl`, with the standard AWS configuration chain
/// (profile, region, `AWS_ENDPOINT_URL`).
pub async fn from_stack(stack_name: &str) -> Result<UrlBase, CliError> {
    let aws = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let answer = aws_sdk_cloudformation::Client::new(&aws)
        .describe_stacks()
        .stack_name(stack_name)
        .send()
        .await
        .map_err(|e| {
            CliError::Stack(aws_sdk_cloudformation::error::DisplayErrorContext(e).to_string())
        })?;
    let value = answer
        .stacks()
        .iter()
        .flat_map(|stack| stack.outputs())
        .find(|o| o.output_key() == Some(API_BASE_OUTPUT))
        .and_then(|o| o.output_value())
        .ok_or_else(|| {
            CliError::Stack(format!("stack {stack_name} has no {API_BASE_OUTPUT} output"))
        })?;
    UrlBase::parse(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_is_normalised_and_must_be_https() {
        let api = "https://abc.execute-api.us-east-1.amazonaws.com";
        let base = UrlBase::parse(api).unwrap();
        assert_eq!(base, UrlBase::parse(&format!("{api}/sendblue/")).unwrap());
        assert_eq!(
            base.url_of(WebhookType::TypingIndicator),
            format!("{api}/sendblue/typing-indicator")
        );
        assert!(base.contains(&format!("{api}/sendblue/receive")));
        assert!(!base.contains(&format!("{api}/sendblue-other/receive")));
        assert!(!base.contains("https://elsewhere.example/sendblue/receive"));
        assert!(UrlBase::parse("http://abc.example.com").is_err());
        assert!(UrlBase::parse("http://127.0.0.1:9000").is_ok());
        assert!(UrlBase::parse(&format!("{api}?x=1")).is_err());
        assert!(UrlBase::parse("not a url").is_err());
    }
}
