//! A fake of Sendblue's list APIs on loopback, for reconciliation's tests. Contacts
//! (`GET /api/v2/contacts`): `created_at_gte`, `order_by=created_at` ascending, `limit` up to
//! 1,000 and `offset` up to 10,000, a bare JSON array. Messages (`GET /api/v2/messages`): the API-key headers, `updated_at_gte` / `updated_at_lte`, `order_by=updatedAt` ascending,
//! `limit` and `offset`, `sendblue_number` (one line's messages),
//! `{"status","data","pagination":{"hasMore",...}}` answers, and scripted
//! trouble: 429 with `Retry-After`, 500 (now or after a given page), records that change while
//! a run reads, and an API that ignores the sort and answers newest first.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sendblue_webhooks::time::{iso_ms, parse_iso_ms};
use serde_json::{json, Value};

pub const API_KEY_ID: &str = "test-key-id";
pub const API_SECRET_KEY: &str = "test-secret-key";

/// What the fake answers the next request with, instead of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trouble {
    /// 429 with this `Retry-After` (seconds).
    RateLimited(u64),
    /// 500.
    Failing,
}

/// A change to the records, made right after the fake answers a given page.
pub type Change = Box<dyn FnOnce(&mut Vec<Value>) + Send>;

#[derive(Default)]
pub struct Account {
    /// Message records as the API lists them; `date_updated` orders them.
    pub records: Vec<Value>,
    /// Contacts as the contacts API lists them; `created_at` orders them.
    pub contacts: Vec<Value>,
    /// Answers that come before any page, in order.
    pub trouble: VecDeque<Trouble>,
    /// The API is down: every request answers 500 until this is false.
    pub down: bool,
    /// After the page numbered by the key (counted from 1) is answered, this change is made.
    pub changes: Vec<(usize, Change)>,
    /// After the page numbered by the key is answered, this trouble answers the next request.
    pub trouble_after: Vec<(usize, Trouble)>,
    /// The API ignores `order_by` and answers newest first.
    pub newest_first: bool,
    /// When each request came.
    pub requests: Vec<Instant>,
    pages_answered: usize,
}

#[derive(Clone)]
pub struct FakeMessagesApi {
    pub address: SocketAddr,
    pub account: Arc<Mutex<Account>>,
}

impl FakeMessagesApi {
    pub async fn start(records: Vec<Value>) -> Self {
        let account = Arc::new(Mutex::new(Account { records, ..Account::default() }));
        let app = Router::new()
            .route("/api/v2/messages", get(messages))
            .route("/api/v2/contacts", get(contacts))
            .with_state(Arc::clone(&account));
        let address = crate::serve_on_loopback(app).await;
        Self { address, account }
    }

    pub fn api_base(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn account(&self) -> std::sync::MutexGuard<'_, Account> {
        self.account.lock().unwrap()
    }

    /// The most requests that came within any 10 seconds.
    pub fn busiest_ten_seconds(&self) -> usize {
        let requests = self.account().requests.clone();
        (0..requests.len())
            .map(|i| {
                requests[i..]
                    .iter()
                    .take_while(|t| **t - requests[i] < Duration::from_secs(10))
                    .count()
            })
            .max()
            .unwrap_or(0)
    }
}

/// A message record as the API lists it, updated at `updated_ms`.
pub fn record(handle: &str, is_outbound: bool, status: &str, updated_ms: u64) -> Value {
    json!({
        "accountEmail": "ops@example.com",
        "content": format!("message {handle}"),
        "is_outbound": is_outbound,
        "status": status,
        "message_handle": handle,
        "date_sent": iso_ms(updated_ms),
        "date_updated": iso_ms(updated_ms),
        "from_number": "+15550001111",
        "number": "+15550001111",
        "to_number": "+15552223333",
        "sendblue_number": LINE,
        "service": "iMessage",
    })
}

/// The Sendblue line `record` puts its messages on.
pub const LINE: &str = "+15550001111";

/// A contact as the contacts API lists it, created at `created_ms`.
pub fn contact(contact_id: &str, created_ms: u64) -> Value {
    json!({
        "contact_id": contact_id,
        "phone": "+15552223333",
        "first_name": "Ada",
        "created_at": iso_ms(created_ms),
    })
}

fn parameter_ms(query: &std::collections::HashMap<String, String>, name: &str) -> Option<u64> {
    Some(parse_iso_ms(query.get(name)?).expect("ISO 8601 times"))
}

/// What every request meets before its list: the API keys, an outage, scripted trouble.
fn gate(account: &mut Account, headers: &HeaderMap) -> Option<Response> {
    account.requests.push(Instant::now());
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if header("sb-api-key-id") != Some(API_KEY_ID)
        || header("sb-api-secret-key") != Some(API_SECRET_KEY)
    {
        let refusal = json!({"status": "ERROR", "message": "Invalid API credentials"});
        return Some((StatusCode::UNAUTHORIZED, Json(refusal)).into_response());
    }
    if account.down {
        return Some(StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }
    match account.trouble.pop_front() {
        Some(Trouble::RateLimited(seconds)) => Some(
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", seconds.to_string())]).into_response(),
        ),
        Some(Trouble::Failing) => Some(StatusCode::INTERNAL_SERVER_ERROR.into_response()),
        None => None,
    }
}

/// One page of a list, as both APIs select it: the query's sort checked, the records whose
/// `time_field` lies within `[<since>, <until>]` ordered by it (ties in the order of creation, as
/// a database's stable sort would; newest first when the fake ignores the sort), from `offset`,
/// at most `limit`. With the list's length, the limit and the offset.
struct Listed {
    page: Vec<Value>,
    total: usize,
    limit: usize,
    offset: usize,
}

fn list<'a>(
    records: impl IntoIterator<Item = &'a Value>,
    query: &std::collections::HashMap<String, String>,
    (order_by, time_field, since_param, until_param): (&str, &str, &str, &str),
    newest_first: bool,
) -> Listed {
    assert_eq!(query.get("order_by").map(String::as_str), Some(order_by));
    assert_eq!(query.get("order_direction").map(String::as_str), Some("asc"));
    let since = parameter_ms(query, since_param).unwrap_or(0);
    let until = parameter_ms(query, until_param).unwrap_or(u64::MAX);
    let limit: usize = query.get("limit").and_then(|v| v.parse().ok()).unwrap_or(100);
    let offset: usize = query.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
    let time = |r: &Value| r[time_field].as_str().and_then(parse_iso_ms).unwrap_or(0);
    let mut listed: Vec<&Value> =
        records.into_iter().filter(|r| (since..=until).contains(&time(r))).collect();
    listed.sort_by_key(|r| time(r));
    if newest_first {
        listed.reverse();
    }
    let total = listed.len();
    let page = listed.into_iter().skip(offset).take(limit).cloned().collect();
    Listed { page, total, limit, offset }
}

async fn contacts(
    State(account): State<Arc<Mutex<Account>>>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let mut account = account.lock().unwrap();
    if let Some(refused) = gate(&mut account, &headers) {
        return refused;
    }
    let fields = ("created_at", "created_at", "created_at_gte", "created_at_lte");
    let listed = list(&account.contacts, &query, fields, account.newest_first);
    if listed.limit > 1000 || listed.offset > 10_000 {
        return (StatusCode::BAD_REQUEST, Json(json!({"message": "limit or offset too large"})))
            .into_response();
    }
    Json(listed.page).into_response()
}

async fn messages(
    State(account): State<Arc<Mutex<Account>>>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let mut account = account.lock().unwrap();
    if let Some(refused) = gate(&mut account, &headers) {
        return refused;
    }
    let fields = ("updatedAt", "date_updated", "updated_at_gte", "updated_at_lte");
    let line = query.get("sendblue_number");
    let on_line =
        account.records.iter().filter(|r| line.is_none_or(|l| r["sendblue_number"] == *l));
    let Listed { page, total, limit, offset } = list(on_line, &query, fields, account.newest_first);
    let has_more = offset + page.len() < total;
    account.pages_answered += 1;
    let answered = account.pages_answered;
    let due: Vec<Change> = {
        let (due, kept): (Vec<_>, Vec<_>) =
            std::mem::take(&mut account.changes).into_iter().partition(|(n, _)| *n == answered);
        account.changes = kept;
        due.into_iter().map(|(_, change)| change).collect()
    };
    for change in due {
        change(&mut account.records);
    }
    let trouble: Vec<Trouble> = account
        .trouble_after
        .iter()
        .filter(|(n, _)| *n == answered)
        .map(|(_, trouble)| *trouble)
        .collect();
    account.trouble.extend(trouble);
    Json(json!({
        "status": "OK",
        "data": page,
        "pagination": {"hasMore": has_more, "limit": limit, "offset": offset, "total": total}
    }))
    .into_response()
}
