//! Sendblue's list APIs, as reconciliation reads them: one page of records at or after a time,
//! oldest first, paced to stay under the API's rate limit. Two lists: messages
//! (`GET /api/v2/messages`, by update time, `{"data": [...], "pagination": {...}}`) and contacts
//! (`GET /api/v2/contacts`, by creation time, a bare JSON array, offsets up to 10,000).

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::time::iso_ms;

/// The API answers 429 beyond 100 requests per 10 seconds per account, a limit the team's own
/// sends share: a walk takes at most `share_percent` of it (`request_interval`).
pub const REQUESTS_PER_10_S: u64 = 100;

/// The pause between two requests that keeps a walk at `share_percent` of the rate limit.
pub fn request_interval(share_percent: u64) -> Duration {
    Duration::from_millis(10_000 / (REQUESTS_PER_10_S * share_percent.clamp(1, 100) / 100).max(1))
}

/// How long a run waits on a 429 without a `Retry-After`, and how often it tries a page.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(10);
const ATTEMPTS_PER_PAGE: usize = 4;

/// The account's API keys, for every Sendblue API (messages here, webhooks in the CLI);
/// `Debug` shows neither.
#[derive(Clone, serde::Deserialize)]
pub struct ApiCredentials {
    pub key_id: String,
    pub secret_key: String,
}

impl ApiCredentials {
    /// `request` with the two headers Sendblue's APIs authenticate by.
    pub fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.header("sb-api-key-id", &self.key_id).header("sb-api-secret-key", &self.secret_key)
    }
}

impl std::fmt::Debug for ApiCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiCredentials(redacted)")
    }
}

/// Checks a base URL of Sendblue's API, where the API keys are sent: `https`, or plain `http`
/// only to a loopback IP literal (a test's fake). Parsed, never prefix-matched:
/// `http://127.0.0.1.evil.example` and `http://127.0.0.1@evil.example` are other hosts.
pub fn checked_api_base(text: &str) -> Result<String, String> {
    let url =
        reqwest::Url::parse(text.trim()).map_err(|e| format!("{text:?} is not a URL ({e})"))?;
    let loopback_ip = url
        .host_str()
        .map(|host| host.trim_start_matches('[').trim_end_matches(']'))
        .and_then(|host| host.parse::<std::net::IpAddr>().ok())
        .is_some_and(|ip| ip.is_loopback());
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback_ip);
    if !scheme_ok || url.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "{text} must be an https:// URL (plain http only to a loopback IP such as 127.0.0.1)"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the API base URL takes no user name or password".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{text}: the API base URL takes no query or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Which of Sendblue's lists a walk reads, and what that means for its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// Every message with its current status, by update time: `receive` and `outbound`.
    Messages,
    /// Every contact, by creation time: `contact_created`.
    Contacts,
}

impl Listing {
    /// The name of the walk's watermark (`reconcile#<name>` in the table).
    pub const fn watermark(self) -> &'static str {
        match self {
            Listing::Messages => "messages",
            Listing::Contacts => "contacts",
        }
    }

    /// The largest offset the API takes (contacts: 10,000; past it, the walk moves its time
    /// cursor instead, which it does anyway).
    pub const fn max_offset(self) -> usize {
        match self {
            Listing::Messages => usize::MAX,
            Listing::Contacts => 10_000,
        }
    }

    fn path(self) -> &'static str {
        match self {
            Listing::Messages => "/api/v2/messages",
            Listing::Contacts => "/api/v2/contacts",
        }
    }
}

/// One page's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageQuery {
    /// Records updated at or after this time (epoch milliseconds).
    pub updated_since_ms: u64,
    /// Records updated at or before this time, if bounded (a CLI backfill's `--until`).
    pub updated_until_ms: Option<u64>,
    pub limit: usize,
    pub offset: usize,
    /// The walk's deadline: a `Retry-After` that would wait past it is not waited out.
    pub give_up_at: Instant,
}

/// One page's answer: each record's raw JSON, as the API wrote it.
#[derive(Debug, Deserialize)]
pub struct Page {
    #[serde(default)]
    pub data: Vec<Box<RawValue>>,
    #[serde(default)]
    pub pagination: Pagination,
}

#[derive(Debug, Default, Deserialize)]
pub struct Pagination {
    /// Absent on some answers: a short or empty page ends the walk too.
    #[serde(rename = "hasMore")]
    pub has_more: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Sendblue's API answered {status}")]
    Status { status: u16 },
    #[error("Sendblue's API still rate limited after {ATTEMPTS_PER_PAGE} attempts, or past the run's deadline")]
    RateLimited,
    #[error("Sendblue's API unreachable: {0}")]
    Network(String),
    #[error("Sendblue's API answered with a body that is not a page of records")]
    NotAPage,
}

/// A source of pages: the HTTP API, or a test's own.
pub trait MessagesApi: Send + Sync {
    /// The list it reads.
    fn listing(&self) -> Listing {
        Listing::Messages
    }

    /// The name of the walk's watermark: the list's, or one line's of it (`sibling`).
    fn watermark(&self) -> &str {
        self.listing().watermark()
    }

    fn page(
        &self,
        query: &PageQuery,
    ) -> impl std::future::Future<Output = Result<Page, ApiError>> + Send;
}

/// One of the list APIs over HTTPS.
#[derive(Debug)]
pub struct HttpMessagesApi {
    http: reqwest::Client,
    listing: Listing,
    api_base: String,
    /// Only this Sendblue line's messages (`sendblue_number`), when set.
    line: Option<String>,
    watermark: String,
    credentials: ApiCredentials,
    request_interval: Duration,
    /// Shared by every list and line made from one `of` (`sibling`): a run's walks, one after
    /// another, keep one pace together.
    last_request: Arc<Mutex<Option<Instant>>>,
}

impl HttpMessagesApi {
    /// The messages list; `share_percent`: the share of the account's rate limit it may use.
    pub fn new(
        api_base: &str,
        credentials: ApiCredentials,
        share_percent: u64,
    ) -> Result<Self, ApiError> {
        Self::of(Listing::Messages, api_base, credentials, share_percent)
    }

    /// `listing` over HTTPS.
    pub fn of(
        listing: Listing,
        api_base: &str,
        credentials: ApiCredentials,
        share_percent: u64,
    ) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            // The API keys travel in headers: never follow a redirect to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ApiError::Network(e.to_string()))?;
        Ok(Self {
            http,
            listing,
            api_base: api_base.trim_end_matches('/').to_owned(),
            line: None,
            watermark: listing.watermark().to_owned(),
            credentials,
            request_interval: request_interval(share_percent),
            last_request: Arc::new(Mutex::new(None)),
        })
    }

    /// Another list of the same account, or only one line's messages (`line`, E.164: the
    /// messages API filters by `sendblue_number`; a walk of its own, with its own watermark
    /// `messages#<line>`), at the same pace as this one.
    pub fn sibling(&self, listing: Listing, line: Option<&str>) -> Self {
        let watermark = match line {
            Some(line) => format!("{}#{line}", listing.watermark()),
            None => listing.watermark().to_owned(),
        };
        Self {
            http: self.http.clone(),
            listing,
            api_base: self.api_base.clone(),
            line: line.map(str::to_owned),
            watermark,
            credentials: self.credentials.clone(),
            request_interval: self.request_interval,
            last_request: Arc::clone(&self.last_request),
        }
    }

    /// Waits until the next request keeps the pace.
    async fn pace(&self) {
        let mut last = self.last_request.lock().await;
        if let Some(last) = *last {
            tokio::time::sleep_until(last + self.request_interval).await;
        }
        *last = Some(Instant::now());
    }

    /// The page's URL. Times, numbers and fixed words: nothing here needs percent-encoding
    /// but a line's `+`.
    fn url(&self, query: &PageQuery) -> String {
        let offset = query.offset.min(self.listing.max_offset());
        let list_url = format!("{}{}", self.api_base, self.listing.path());
        match self.listing {
            Listing::Messages => {
                let mut url = format!(
                    "{list_url}?updated_at_gte={}&order_by=updatedAt&order_direction=asc&limit={}&offset={offset}",
                    iso_ms(query.updated_since_ms),
                    query.limit,
                );
                if let Some(until_ms) = query.updated_until_ms {
                    url += &format!("&updated_at_lte={}", iso_ms(until_ms));
                }
                if let Some(line) = &self.line {
                    url += &format!("&sendblue_number={}", line.replace('+', "%2B"));
                }
                url
            }
            // No upper bound is documented: the walk stops at the first record past its end.
            Listing::Contacts => format!(
                "{list_url}?created_at_gte={}&order_by=created_at&order_direction=asc&limit={}&offset={offset}",
                iso_ms(query.updated_since_ms),
                query.limit,
            ),
        }
    }

    fn parse(&self, body: &[u8]) -> Result<Page, ApiError> {
        match self.listing {
            Listing::Messages => serde_json::from_slice(body).map_err(|_| ApiError::NotAPage),
            Listing::Contacts => {
                let data = serde_json::from_slice(body).map_err(|_| ApiError::NotAPage)?;
                Ok(Page { data, pagination: Pagination::default() })
            }
        }
    }
}

impl MessagesApi for HttpMessagesApi {
    fn listing(&self) -> Listing {
        self.listing
    }

    fn watermark(&self) -> &str {
        &self.watermark
    }

    async fn page(&self, query: &PageQuery) -> Result<Page, ApiError> {
        let url = self.url(query);
        for _ in 0..ATTEMPTS_PER_PAGE {
            self.pace().await;
            let response = self
                .credentials
                .authorize(self.http.get(&url))
                .send()
                .await
                // Without the URL: it holds nothing secret, but the error's source might.
                .map_err(|e| ApiError::Network(e.without_url().to_string()))?;
            let status = response.status();
            if status.as_u16() == 429 {
                let wait = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map_or(DEFAULT_RETRY_AFTER, Duration::from_secs);
                // Obeyed, but never past the deadline: a run that waited there could not
                // save what it had settled.
                if Instant::now() + wait >= query.give_up_at {
                    return Err(ApiError::RateLimited);
                }
                tokio::time::sleep(wait).await;
                continue;
            }
            if !status.is_success() {
                return Err(ApiError::Status { status: status.as_u16() });
            }
            let body = response.bytes().await.map_err(|e| ApiError::Network(e.to_string()))?;
            return self.parse(&body);
        }
        Err(ApiError::RateLimited)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pace_is_the_share_of_the_rate_limit() {
        assert_eq!(request_interval(50), Duration::from_millis(200));
        assert_eq!(request_interval(100), Duration::from_millis(100));
        assert_eq!(request_interval(10), Duration::from_secs(1));
        assert_eq!(request_interval(0), Duration::from_secs(10), "at least one request");
    }

    #[test]
    fn an_api_base_is_https_or_http_to_a_loopback_ip_and_nothing_that_only_looks_like_one() {
        for good in [
            "https://api.sendblue.co",
            "https://api.sendblue.co/",
            "http://127.0.0.1:8080",
            "http://[::1]:9000",
            "http://127.0.0.2",
        ] {
            assert!(checked_api_base(good).is_ok(), "{good}");
        }
        assert_eq!(
            checked_api_base("https://api.sendblue.co/").unwrap(),
            "https://api.sendblue.co"
        );
        for bad in [
            "http://api.sendblue.co",
            "http://127.0.0.1.evil.example",
            "http://127.0.0.1@evil.example",
            "https://user:pw@api.sendblue.co",
            "http://localhost:8080",
            "ftp://127.0.0.1",
            "https://api.sendblue.co?x=1",
            "api.sendblue.co",
        ] {
            assert!(checked_api_base(bad).is_err(), "{bad}");
        }
    }
}
