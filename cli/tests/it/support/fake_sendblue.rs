//! A fake of Sendblue's webhook management API on loopback, behaving as docs/sendblue.md describes it:
//! the API key headers, GET of the whole configuration (URL strings and `{url, secret}` objects,
//! `globalSecret`), POST appending to one type, DELETE removing URLs from one type, PUT
//! replacing everything, `{"status":"ERROR","message":...}` error bodies, the legacy account-wide
//! `secret` string older accounts still hold, `contact_created` taking `{url, secret}` as every
//! type does since 2026-08 (or, for an account whose API predates that, storing the bare URL and
//! dropping the secret), and the pitfalls seen in real use: a PUT that answers 200 and silently
//! drops a type it does not take (or fields of entries).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

pub const API_KEY_ID: &str = "test-key-id";
pub const API_SECRET_KEY: &str = "test-secret-key";

/// The types Sendblue's API takes.
pub const TYPES: [&str; 7] = [
    "receive",
    "outbound",
    "typing_indicator",
    "call_log",
    "line_blocked",
    "line_assigned",
    "contact_created",
];

#[derive(Debug, Default)]
pub struct Account {
    /// Each type's entries as stored: URL strings or objects.
    pub webhooks: BTreeMap<String, Vec<Value>>,
    pub global_secret: Option<String>,
    /// Every request, as `METHOD type` (`GET`, `POST receive`, `PUT`).
    pub requests: Vec<String>,
    /// Types a PUT drops without a word.
    pub put_drops: Vec<String>,
    /// POSTs answer OK and store nothing.
    pub ignore_posts: bool,
    /// The next request fails with this status.
    pub fail_next: Option<u16>,
    /// The legacy account-wide secret, listed as a string member `secret` of `webhooks`.
    pub legacy_secret: Option<String>,
    /// Someone else's change: before the n-th GET (counted from 1), this entry is added to
    /// this type.
    pub edit_before_get: Option<(usize, String, Value)>,
    /// Fields a PUT drops from every object entry without a word.
    pub put_strips: Vec<String>,
    /// Every request is answered `307 Temporary Redirect` to this URL.
    pub redirect_to: Option<String>,
    /// Every request is answered 200 with this body, whatever it asked.
    pub answer_instead: Option<Value>,
    /// The API of before 2026-08: a `contact_created` entry is stored as its bare URL, the
    /// secret dropped without a word.
    pub contact_created_bare_only: bool,
}

impl Account {
    /// The entries of one type, as `(url, secret)`.
    pub fn entries(&self, type_name: &str) -> Vec<(String, Option<String>)> {
        self.webhooks
            .get(type_name)
            .into_iter()
            .flatten()
            .map(|entry| match entry {
                Value::String(url) => (url.clone(), None),
                object => (
                    object["url"].as_str().unwrap().to_owned(),
                    object["secret"].as_str().map(str::to_owned),
                ),
            })
            .collect()
    }

    /// The requests that changed something.
    pub fn writes(&self) -> Vec<&str> {
        self.requests.iter().map(String::as_str).filter(|r| !r.starts_with("GET")).collect()
    }
}

pub struct FakeSendblue {
    pub address: SocketAddr,
    pub account: Arc<Mutex<Account>>,
}

impl FakeSendblue {
    pub async fn start(account: Account) -> Self {
        let account = Arc::new(Mutex::new(account));
        let app =
            Router::new().route("/api/account/webhooks", any(webhooks)).with_state(account.clone());
        let address = sendblue_testkit::serve_on_loopback(app).await;
        Self { address, account }
    }

    pub fn api_base(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn account(&self) -> std::sync::MutexGuard<'_, Account> {
        self.account.lock().unwrap()
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"status": "ERROR", "message": message}))).into_response()
}

async fn webhooks(
    State(account): State<Arc<Mutex<Account>>>,
    method: Method,
    headers: HeaderMap,
    body: String,
) -> Response {
    let mut account = account.lock().unwrap();
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let type_name = body["type"].as_str().unwrap_or("receive").to_owned();
    account.requests.push(match method {
        Method::POST | Method::DELETE => format!("{method} {type_name}"),
        _ => method.to_string(),
    });
    if let Some(status) = account.fail_next.take() {
        return error(StatusCode::from_u16(status).unwrap(), "Internal server error");
    }
    if let Some(body) = &account.answer_instead {
        return Json(body.clone()).into_response();
    }
    if let Some(location) = &account.redirect_to {
        return (StatusCode::TEMPORARY_REDIRECT, [("location", location.clone())]).into_response();
    }
    let gets = account.requests.iter().filter(|r| *r == "GET").count();
    if method == Method::GET && account.edit_before_get.as_ref().is_some_and(|(n, _, _)| *n == gets)
    {
        let (_, type_name, entry) = account.edit_before_get.take().unwrap();
        account.webhooks.entry(type_name).or_default().push(entry);
    }
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if header("sb-api-key-id") != Some(API_KEY_ID)
        || header("sb-api-secret-key") != Some(API_SECRET_KEY)
    {
        return error(StatusCode::UNAUTHORIZED, "Invalid API credentials");
    }
    match method {
        Method::GET => {}
        Method::POST => {
            if !TYPES.contains(&type_name.as_str()) {
                return error(StatusCode::BAD_REQUEST, "Invalid webhook type");
            }
            let Some(entries) = body["webhooks"].as_array() else {
                return error(StatusCode::BAD_REQUEST, "webhooks must be an array");
            };
            for entry in entries {
                if let Err(message) = check_entry(entry) {
                    return error(StatusCode::BAD_REQUEST, message);
                }
            }
            if !account.ignore_posts {
                let entries: Vec<Value> =
                    entries.iter().map(|e| account.as_stored(&type_name, e)).collect();
                account.webhooks.entry(type_name).or_default().extend(entries);
            }
        }
        Method::DELETE => {
            let urls: Vec<&str> = body["webhooks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let kept: Vec<Value> = account
                .webhooks
                .remove(&type_name)
                .into_iter()
                .flatten()
                .filter(|entry| {
                    let url = entry.as_str().or(entry["url"].as_str()).unwrap_or("");
                    !urls.contains(&url)
                })
                .collect();
            account.webhooks.insert(type_name, kept);
        }
        Method::PUT => {
            let Some(config) = body["webhooks"].as_object() else {
                return error(StatusCode::BAD_REQUEST, "webhooks must be an object");
            };
            let mut replaced = BTreeMap::new();
            for (key, entries) in config {
                if key == "globalSecret" || account.put_drops.contains(key) {
                    continue;
                }
                if !TYPES.contains(&key.as_str()) {
                    continue; // dropped without a word, as seen in real use
                }
                if key == "secret" {
                    continue;
                }
                let mut entries = entries.as_array().cloned().unwrap_or_default();
                for entry in &mut entries {
                    if let Err(message) = check_entry(entry) {
                        return error(StatusCode::BAD_REQUEST, message);
                    }
                    *entry = account.as_stored(key, entry);
                    if let Some(object) = entry.as_object_mut() {
                        object.retain(|field, _| !account.put_strips.contains(field));
                    }
                }
                replaced.insert(key.clone(), entries);
            }
            account.webhooks = replaced;
            account.legacy_secret = config.get("secret").and_then(Value::as_str).map(Into::into);
            account.global_secret =
                config.get("globalSecret").and_then(Value::as_str).map(Into::into);
        }
        _ => return error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed"),
    }
    let mut listed: Map<String, Value> = TYPES
        .iter()
        .map(|t| (t.to_string(), json!(account.webhooks.get(*t).cloned().unwrap_or_default())))
        .collect();
    if let Some(secret) = &account.global_secret {
        listed.insert("globalSecret".into(), json!(secret));
    }
    if let Some(secret) = &account.legacy_secret {
        listed.insert("secret".into(), json!(secret));
    }
    Json(json!({"status": "OK", "webhooks": listed})).into_response()
}

impl Account {
    /// The entry as this account stores it.
    fn as_stored(&self, type_name: &str, entry: &Value) -> Value {
        match entry {
            Value::Object(object)
                if type_name == "contact_created" && self.contact_created_bare_only =>
            {
                object["url"].clone()
            }
            entry => entry.clone(),
        }
    }
}

/// An entry is an HTTPS URL string or a `{url, secret}` object. (Plain HTTP on 127.0.0.1 is let
/// through so that tests can point Sendblue's configuration at receivers on loopback.)
fn check_entry(entry: &Value) -> Result<(), &'static str> {
    let url = match entry {
        Value::String(url) => url.as_str(),
        Value::Object(object) => {
            object.get("url").and_then(Value::as_str).ok_or("url is required")?
        }
        _ => return Err("a webhook is a URL or an object with a url"),
    };
    if url.starts_with("https://") || url.starts_with("http://127.0.0.1") {
        Ok(())
    } else {
        Err("Webhook URLs must use HTTPS")
    }
}
