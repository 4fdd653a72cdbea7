//! Where the deployed receivers are: one URL per webhook type. The stack names them in outputs
//! (`ReceiveUrl` … `ContactCreatedUrl`, `StatusCallbackUrlBase`) that keep their names whichever
//! frontend was deployed (the HTTP API or Function URLs, where each function has a host of its
//! own), and `scripts/deploy-cargo-lambda.sh` prints the same. They are read from a file of
//! outputs, asked of CloudFormation, or, for the HTTP API, built from its base URL.

use std::collections::HashMap;
use std::path::Path;

use aws_config::BehaviorVersion;
use sendblue_webhooks::reconcile::config::parse_sendblue_numbers;
use sendblue_webhooks::WebhookType;
use serde::Deserialize;

use crate::error::CliError;

/// The HTTP API's output holding the base of every route (absent behind Function URLs).
pub const API_BASE_OUTPUT: &str = "ApiBaseUrl";
/// The outputs `reconcile` writes by: the stack's dedup table and its window.
pub const DEDUP_TABLE_OUTPUT: &str = "DedupTableName";
pub const DEDUP_TTL_SECONDS_OUTPUT: &str = "DedupTtlSeconds";
/// The outputs `doctor` reads CloudWatch by (absent from a stack deployed without SAM).
pub const ALARM_NAMES_OUTPUT: &str = "AlarmNames";
pub const METRICS_NAMESPACE_OUTPUT: &str = "MetricsNamespace";
/// The output naming the lines the receive webhook is registered for (absent: every line).
pub const SENDBLUE_NUMBERS_OUTPUT: &str = "SendblueNumbers";

/// The parameter listing the secrets the receiver of `webhook_type` accepts, and, for
/// `contact_created`, the list it falls back to when that one is empty.
pub fn secrets_parameter(webhook_type: WebhookType) -> (&'static str, Option<&'static str>) {
    match webhook_type {
        WebhookType::ContactCreated => ("ContactCreatedSecrets", Some("SendblueWebhookSecrets")),
        _ => ("SendblueWebhookSecrets", None),
    }
}

/// The output holding `webhook_type`'s URL: `ReceiveUrl`, `TypingIndicatorUrl`, …, and
/// `StatusCallbackUrlBase` (a token is appended to it).
pub fn output_key(webhook_type: WebhookType) -> String {
    let pascal: String = webhook_type
        .binary_name()
        .split('-')
        .flat_map(|word| {
            let mut chars = word.chars();
            chars.next().map(|first| first.to_ascii_uppercase()).into_iter().chain(chars)
        })
        .collect();
    match webhook_type {
        WebhookType::StatusCallback => format!("{pascal}UrlBase"),
        _ => format!("{pascal}Url"),
    }
}

/// One stack's receiver URLs, one per webhook type.
#[derive(Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// In `WebhookType::ALL` order; the status callback's without the trailing `/`.
    urls: Vec<Endpoint>,
}

/// One receiver's URL, as given and as compared (parsed once: every URL here passed [`checked`]).
#[derive(Debug, PartialEq, Eq)]
struct Endpoint {
    webhook_type: WebhookType,
    url: String,
    place: Place,
}

impl Endpoint {
    fn new(webhook_type: WebhookType, url: String) -> Result<Self, CliError> {
        let place = Place::parse(&url)
            .ok_or_else(|| CliError::Input(format!("{url}: not a URL with a host")))?;
        Ok(Self { webhook_type, url, place })
    }
}

impl Endpoints {
    /// The HTTP API's routes under its base URL, given with or without the `/sendblue` the
    /// routes start with.
    pub fn from_api_base(url: &str) -> Result<Self, CliError> {
        let url = checked(url)?.trim_end_matches('/');
        let base =
            if url.ends_with("/sendblue") { url.to_owned() } else { format!("{url}/sendblue") };
        let urls =
            WebhookType::ALL.map(|t| Endpoint::new(t, format!("{base}/{}", t.binary_name())));
        Ok(Self { urls: urls.into_iter().collect::<Result<_, _>>()? })
    }

    /// From a stack's outputs (key to value): the URL output of every type, or else the HTTP
    /// API's base.
    fn from_outputs(outputs: &HashMap<&str, &str>, source: &str) -> Result<Self, CliError> {
        let found = WebhookType::ALL.map(|t| (t, output_key(t)));
        let missing: Vec<&str> = found
            .iter()
            .map(|(_, key)| key.as_str())
            .filter(|key| !outputs.contains_key(key))
            .collect();
        if !missing.is_empty() {
            return match outputs.get(API_BASE_OUTPUT) {
                Some(base) => Self::from_api_base(base),
                None => Err(CliError::Input(format!(
                    "{source}: no {} output, and no {API_BASE_OUTPUT} output",
                    missing.join(", no ")
                ))),
            };
        }
        let url_of = |(webhook_type, key): (WebhookType, String)| {
            let url = checked(outputs[key.as_str()])
                .map_err(|e| CliError::Input(format!("{source}: {key}: {e}")))?;
            let url = match webhook_type {
                WebhookType::StatusCallback => url.trim_end_matches('/'),
                _ => url,
            };
            Endpoint::new(webhook_type, url.to_owned())
        };
        Ok(Self { urls: found.into_iter().map(url_of).collect::<Result<_, CliError>>()? })
    }

    /// The URL Sendblue must call for `webhook_type` (for status callbacks, before the token).
    pub fn url_of(&self, webhook_type: WebhookType) -> &str {
        &self.endpoint(webhook_type).url
    }

    fn endpoint(&self, webhook_type: WebhookType) -> &Endpoint {
        self.urls.iter().find(|e| e.webhook_type == webhook_type).expect("every type has a URL")
    }

    /// Whether `url` is this stack's current URL for `webhook_type` (compared parsed: scheme,
    /// host, port and path segments, so that a trailing `/` or a letter's case in the host
    /// makes no difference).
    pub fn is_url_of(&self, webhook_type: WebhookType, url: &str) -> bool {
        Place::parse(url).is_some_and(|url| self.endpoint(webhook_type).place == url)
    }

    /// Whether `url` is provably this stack's, so that removing it can never touch somebody
    /// else's webhook: one of its current URLs, or a URL on a host that only this stack can
    /// have (one of its Function URLs' hosts, or its HTTP API's own
    /// `<api-id>.execute-api.<region>.amazonaws.com` under the stack's path). A URL on any
    /// other host (a custom domain, shared with other teams) is this stack's only when it is
    /// a current URL.
    pub fn contains(&self, url: &str) -> bool {
        let Some(url) = Place::parse(url) else { return false };
        self.urls.iter().map(|e| &e.place).any(|ours| {
            *ours == url
                || match ours.owned_host() {
                    Some(OwnedHost::FunctionUrl) => ours.same_origin(&url),
                    Some(OwnedHost::HttpApi) => {
                        let folder = &ours.segments[..ours.segments.len().saturating_sub(1)];
                        ours.same_origin(&url) && url.segments.starts_with(folder)
                    }
                    None => false,
                }
        })
    }

    /// Whether `url` is on a host of this stack's that other receivers may share (a custom
    /// domain, loopback): there a URL that is not a current one cannot be told apart from
    /// somebody else's, so it is never removed, only named.
    pub fn shares_host_with(&self, url: &str) -> bool {
        let Some(url) = Place::parse(url) else { return false };
        self.urls.iter().any(|e| e.place.owned_host().is_none() && e.place.same_origin(&url))
    }
}

/// A URL as compared: scheme, host (lowercase), port, and the path's non-empty segments.
#[derive(Debug, PartialEq, Eq)]
struct Place {
    scheme: String,
    host: String,
    port: Option<u16>,
    segments: Vec<String>,
}

/// A host that belongs to one AWS resource, and so to the one stack that made it.
enum OwnedHost {
    /// `<url-id>.lambda-url.<region>.on.aws`: one function's.
    FunctionUrl,
    /// `<api-id>.execute-api.<region>.amazonaws.com`: one HTTP API's, whose every route is
    /// the stack's.
    HttpApi,
}

impl Place {
    fn parse(url: &str) -> Option<Self> {
        let parsed = reqwest::Url::parse(url.trim()).ok()?;
        let segments = parsed.path_segments()?.filter(|s| !s.is_empty()).map(String::from);
        Some(Self {
            scheme: parsed.scheme().to_owned(),
            host: parsed.host_str()?.to_ascii_lowercase(),
            port: parsed.port_or_known_default(),
            segments: segments.collect(),
        })
    }

    fn same_origin(&self, other: &Self) -> bool {
        (&self.scheme, &self.host, self.port) == (&other.scheme, &other.host, other.port)
    }

    fn owned_host(&self) -> Option<OwnedHost> {
        let labels: Vec<&str> = self.host.split('.').collect();
        match labels[..] {
            [id, "lambda-url", region, "on", "aws"] if plain(id) && plain(region) => {
                Some(OwnedHost::FunctionUrl)
            }
            [id, "execute-api", region, "amazonaws", "com"] if plain(id) && plain(region) => {
                Some(OwnedHost::HttpApi)
            }
            _ => None,
        }
    }
}

/// A DNS label AWS makes: letters, digits and `-`, not empty.
fn plain(label: &str) -> bool {
    !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Sendblue delivers only to HTTPS; plain HTTP is allowed for loopback, where the local run
/// listens. A URL to register carries no query or fragment.
fn checked(url: &str) -> Result<&str, CliError> {
    let url = url.trim();
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| CliError::Input(format!("invalid URL {url:?}: {e}")))?;
    let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if parsed.scheme() != "https" && !(parsed.scheme() == "http" && loopback) {
        return Err(CliError::Input(format!(
            "{url} is not HTTPS: Sendblue delivers to HTTPS only"
        )));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(CliError::Input(format!("{url}: a receiver URL takes no query or fragment")));
    }
    Ok(url)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Output {
    output_key: String,
    output_value: String,
}

/// A deployed stack's outputs, and where they were read (for messages).
#[derive(Debug)]
pub struct StackOutputs {
    source: String,
    values: HashMap<String, String>,
    /// Set when CloudFormation was asked (`--stack`), not for a file.
    pub deployed: Option<Deployed>,
}

/// A stack as CloudFormation has it: its parameters, and the AWS configuration of its region,
/// where `doctor` and `reconcile` ask further.
#[derive(Debug)]
pub struct Deployed {
    pub aws: aws_config::SdkConfig,
    /// As deployed (a `NoEcho` parameter reads `****`).
    pub parameters: HashMap<String, String>,
}

impl StackOutputs {
    /// The outputs `--stack-outputs FILE` or `--stack NAME` (in `region`) names, if either
    /// was given.
    pub async fn load(
        file: Option<&Path>,
        stack: Option<&str>,
        region: Option<&str>,
    ) -> Result<Option<Self>, CliError> {
        match (file, stack) {
            (Some(path), _) => Self::from_file(path).map(Some),
            (None, Some(name)) => Self::from_stack(name, region).await.map(Some),
            (None, None) => Ok(None),
        }
    }

    /// Reads the JSON list of outputs that `sam list stack-outputs --output json` and
    /// `scripts/deploy-cargo-lambda.sh` print.
    pub fn from_file(path: &Path) -> Result<Self, CliError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::Input(format!("cannot read {}: {e}", path.display())))?;
        let outputs: Vec<Output> = serde_json::from_str(&text).map_err(|e| {
            CliError::Input(format!("{}: not a list of stack outputs ({e})", path.display()))
        })?;
        let values = outputs.into_iter().map(|o| (o.output_key, o.output_value)).collect();
        Ok(Self { source: path.display().to_string(), values, deployed: None })
    }

    /// Asks CloudFormation for the stack's outputs, with the standard AWS configuration chain
    /// (profile, region, `AWS_ENDPOINT_URL`), in `region` when given.
    pub async fn from_stack(stack_name: &str, region: Option<&str>) -> Result<Self, CliError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = region {
            loader = loader.region(aws_config::Region::new(region.to_owned()));
        }
        let aws = loader.load().await;
        let searched = aws
            .region()
            .map_or("no region (set AWS_REGION or --region)".to_owned(), |r| format!("region {r}"));
        let source = format!("stack {stack_name} in {searched}");
        let answer = aws_sdk_cloudformation::Client::new(&aws)
            .describe_stacks()
            .stack_name(stack_name)
            .send()
            .await
            .map_err(|e| {
                let reason = aws_sdk_cloudformation::error::DisplayErrorContext(e).to_string();
                CliError::Stack(format!("{source}: {reason}"))
            })?;
        let stacks = answer.stacks();
        let values = stacks
            .iter()
            .flat_map(|stack| stack.outputs())
            .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())));
        let parameters = stacks
            .iter()
            .flat_map(|stack| stack.parameters())
            .filter_map(|p| Some((p.parameter_key()?.to_owned(), p.parameter_value()?.to_owned())));
        let deployed = Deployed { aws, parameters: parameters.collect() };
        Ok(Self { source, values: values.collect(), deployed: Some(deployed) })
    }

    /// The receivers' URLs.
    pub fn endpoints(&self) -> Result<Endpoints, CliError> {
        let outputs = self.values.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Endpoints::from_outputs(&outputs, &self.source).map_err(|e| match self.deployed {
            Some(_) => CliError::Stack(e.to_string()),
            None => e,
        })
    }

    /// The AWS configuration to ask further in: the stack's own region when CloudFormation was
    /// asked, else the default chain's.
    pub async fn aws(&self) -> aws_config::SdkConfig {
        match &self.deployed {
            Some(deployed) => deployed.aws.clone(),
            None => sendblue_webhooks::app::sdk_config().await,
        }
    }

    /// The lines the stack limits its receive webhook to (`SendblueNumbers`; absent: every
    /// line).
    pub fn sendblue_numbers(&self) -> Result<Vec<String>, CliError> {
        let listed = self.get(SENDBLUE_NUMBERS_OUTPUT).unwrap_or_default();
        parse_sendblue_numbers(listed).map_err(|e| {
            CliError::Input(format!("{}: {SENDBLUE_NUMBERS_OUTPUT}: {e}", self.source))
        })
    }

    /// One output, if the stack has it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// One output the command cannot do without.
    pub fn required(&self, key: &str) -> Result<&str, CliError> {
        self.values.get(key).map(String::as_str).ok_or_else(|| {
            CliError::Input(format!(
                "{}: no {key} output (a stack deployed before this version: deploy it again)",
                self.source
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const API: &str = "https://abc.execute-api.us-east-1.amazonaws.com";

    fn function_url(id: &str) -> String {
        format!("https://{id}.lambda-url.us-east-1.on.aws/")
    }

    /// The outputs of a stack deployed with Frontend=FunctionUrl: a host per function.
    fn function_url_outputs() -> Vec<(String, String)> {
        WebhookType::ALL
            .iter()
            .map(|&t| {
                let url = function_url(&t.binary_name().replace('-', ""));
                let url = if t == WebhookType::StatusCallback {
                    format!("{url}status-callback/")
                } else {
                    url
                };
                (output_key(t), url)
            })
            .collect()
    }

    fn parse(outputs: &[(String, String)]) -> Result<Endpoints, CliError> {
        let outputs = outputs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Endpoints::from_outputs(&outputs, "outputs")
    }

    #[test]
    fn output_keys_are_the_templates() {
        let keys = WebhookType::ALL.map(output_key);
        assert_eq!(
            keys,
            [
                "ReceiveUrl",
                "OutboundUrl",
                "TypingIndicatorUrl",
                "CallLogUrl",
                "LineBlockedUrl",
                "LineAssignedUrl",
                "ContactCreatedUrl",
                "StatusCallbackUrlBase"
            ]
            .map(String::from)
        );
        let template =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml"))
                .unwrap();
        for key in keys {
            assert!(template.contains(&format!("\n  {key}:\n")), "template output {key}");
        }
    }

    #[test]
    fn an_api_base_is_normalised_and_must_be_https() {
        let base = Endpoints::from_api_base(API).unwrap();
        assert_eq!(base, Endpoints::from_api_base(&format!("{API}/sendblue/")).unwrap());
        assert_eq!(
            base.url_of(WebhookType::TypingIndicator),
            format!("{API}/sendblue/typing-indicator")
        );
        assert_eq!(
            base.url_of(WebhookType::StatusCallback),
            format!("{API}/sendblue/status-callback")
        );
        assert!(base.contains(&format!("{API}/sendblue/receive")));
        assert!(base.contains(&format!("{API}/sendblue/an-old-route")));
        assert!(!base.contains(&format!("{API}/sendblue-other/receive")));
        assert!(!base.contains("https://elsewhere.example/sendblue/receive"));
        assert!(Endpoints::from_api_base("http://abc.example.com").is_err());
        assert!(Endpoints::from_api_base("http://127.0.0.1:9000").is_ok());
        assert!(Endpoints::from_api_base(&format!("{API}?x=1")).is_err());
        assert!(Endpoints::from_api_base("not a url").is_err());
    }

    #[test]
    fn function_url_outputs_give_each_type_its_own_host() {
        let endpoints = parse(&function_url_outputs()).unwrap();
        assert_eq!(endpoints.url_of(WebhookType::Receive), function_url("receive"));
        assert_eq!(endpoints.url_of(WebhookType::CallLog), function_url("calllog"));
        assert_eq!(
            endpoints.url_of(WebhookType::StatusCallback),
            format!("{}status-callback", function_url("statuscallback"))
        );
        assert!(endpoints.contains(&function_url("outbound")));
        assert!(endpoints.contains(&format!("{}old-path", function_url("outbound"))));
        assert!(!endpoints.contains(&function_url("someoneelse")));
    }

    #[test]
    fn function_urls_without_their_trailing_slash_claim_only_their_own_hosts() {
        let mut outputs = function_url_outputs();
        for (_, url) in &mut outputs {
            *url = url.trim_end_matches('/').to_owned();
        }
        let endpoints = parse(&outputs).unwrap();
        assert!(endpoints.is_url_of(WebhookType::Receive, &function_url("receive")));
        assert!(endpoints.contains(&function_url("receive")));
        assert!(endpoints.contains("https://RECEIVE.lambda-url.us-east-1.on.aws"));
        for other in [
            "https://someoneelse.lambda-url.us-east-1.on.aws/",
            "https://hooks.example.com/receive",
            "https://evil.example/",
            "https://receive.lambda-url.us-east-1.on.aws.evil.example/",
            "http://receive.lambda-url.us-east-1.on.aws/",
            "not a url",
        ] {
            assert!(!endpoints.contains(other), "{other}");
        }
    }

    #[test]
    fn on_a_custom_domain_only_the_current_urls_are_ours() {
        let base = Endpoints::from_api_base("https://hooks.example.com").unwrap();
        assert!(base.contains("https://hooks.example.com/sendblue/receive"));
        assert!(base.contains("https://hooks.example.com/sendblue/receive/"));
        for teammates in [
            "https://hooks.example.com/sendblue/an-old-route",
            "https://hooks.example.com/team-b/receive",
            "https://hooks.example.com/",
        ] {
            assert!(!base.contains(teammates), "{teammates}");
            assert!(base.shares_host_with(teammates), "{teammates}");
        }
        let api = Endpoints::from_api_base(API).unwrap();
        assert!(!api.shares_host_with(&format!("{API}/sendblue/an-old-route")));
    }

    #[test]
    fn http_api_outputs_read_the_same_way_and_the_base_alone_still_works() {
        let base = Endpoints::from_api_base(API).unwrap();
        let outputs: Vec<_> = WebhookType::ALL
            .iter()
            .map(|&t| {
                let url = base.url_of(t).to_owned();
                (
                    output_key(t),
                    if t == WebhookType::StatusCallback { format!("{url}/") } else { url },
                )
            })
            .chain([(API_BASE_OUTPUT.to_owned(), format!("{API}/sendblue"))])
            .collect();
        assert_eq!(parse(&outputs).unwrap(), base);
        assert_eq!(parse(&[(API_BASE_OUTPUT.to_owned(), API.to_owned())]).unwrap(), base);
    }

    #[test]
    fn missing_or_bad_url_outputs_are_named() {
        let mut outputs = function_url_outputs();
        outputs.retain(|(key, _)| key != "CallLogUrl");
        let error = parse(&outputs).unwrap_err().to_string();
        assert_eq!(error, "outputs: no CallLogUrl output, and no ApiBaseUrl output");
        let mut outputs = function_url_outputs();
        outputs[1].1 = "http://outbound.example.com/".into();
        let error = parse(&outputs).unwrap_err().to_string();
        assert!(error.contains("OutboundUrl") && error.contains("not HTTPS"), "{error}");
        let error = parse(&[("EventBusName".into(), "bus".into())]).unwrap_err().to_string();
        assert!(error.contains("no ReceiveUrl, no OutboundUrl,"), "{error}");
        assert!(
            error.ends_with("no StatusCallbackUrlBase output, and no ApiBaseUrl output"),
            "{error}"
        );
    }
}
