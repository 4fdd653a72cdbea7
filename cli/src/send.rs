//! Delivers a body as Sendblue does: POST, JSON, the secret in `sb-signing-secret` (none for
//! status callbacks, whose URL carries a token), a 45 s wait for the answer, and up to three
//! retries after a 5xx, a timeout or no connection. 4xx answers are final, as with Sendblue.

use std::time::{Duration, Instant};

use sendblue_webhooks::verify::SECRET_HEADER;
use serde::Serialize;

use crate::error::{describe_transport, CliError};

/// Sendblue's own limits (docs/sendblue.md): 45 s per attempt, up to 3 retries.
pub const SENDBLUE_TIMEOUT_SECS: u64 = 45;
pub const SENDBLUE_RETRIES: u32 = 3;

/// How to deliver.
#[derive(Debug)]
pub struct Delivery<'a> {
    pub url: &'a str,
    pub secret: Option<&'a str>,
    pub body: String,
    pub timeout: Duration,
    pub retries: u32,
    /// The pause before each retry (Sendblue's schedule is not published).
    pub retry_delay: Duration,
}

/// One attempt as printed: the status and body of the answer, or why there was none.
#[derive(Debug, Serialize)]
pub struct Attempt {
    pub attempt: u32,
    pub status: Option<u16>,
    pub answer: Option<String>,
    pub error: Option<String>,
    pub duration_ms: u64,
}

impl Attempt {
    /// Whether Sendblue would try again after this attempt.
    fn retryable(&self) -> bool {
        self.status.is_none_or(|status| status >= 500)
    }

    fn accepted(&self) -> bool {
        self.status.is_some_and(|status| (200..300).contains(&status))
    }
}

/// Delivers, calling `report` after each attempt; fails unless an attempt got a 2xx.
pub async fn deliver(
    delivery: &Delivery<'_>,
    mut report: impl FnMut(&Attempt),
) -> Result<(), CliError> {
    let http = crate::http::client(delivery.timeout)?;
    let mut number = 1;
    let last = loop {
        let attempt = attempt(&http, delivery, number).await;
        report(&attempt);
        if !attempt.retryable() || number > delivery.retries {
            break attempt;
        }
        tokio::time::sleep(delivery.retry_delay).await;
        number += 1;
    };
    if last.accepted() {
        return Ok(());
    }
    let tries = number;
    Err(CliError::Delivery(match last.status {
        Some(status) => format!("not accepted: answered {status} after {tries} attempt(s)"),
        None => format!(
            "no answer after {tries} attempt(s): {}",
            last.error.as_deref().unwrap_or("unknown error")
        ),
    }))
}

async fn attempt(http: &reqwest::Client, delivery: &Delivery<'_>, number: u32) -> Attempt {
    let started = Instant::now();
    let mut request = http
        .post(delivery.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(delivery.body.clone());
    if let Some(secret) = delivery.secret {
        request = request.header(SECRET_HEADER, secret);
    }
    let (status, answer, error) = match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            match response.text().await {
                Ok(text) => (Some(status), Some(text), None),
                Err(e) => (None, None, Some(describe_transport(&e))),
            }
        }
        Err(e) => (None, None, Some(describe_transport(&e))),
    };
    Attempt {
        attempt: number,
        status,
        answer,
        error,
        duration_ms: started.elapsed().as_millis() as u64,
    }
}

/// The status the receiver at `url` answers to a probe that has no side effects: the body `[]`
/// is refused by every receiver (400, nothing stored or forwarded) once the secret (or the
/// URL's token) is accepted, and the secret is checked first (401).
pub async fn probe(url: &str, secret: Option<&str>) -> Result<u16, CliError> {
    let mut request = crate::http::client(Duration::from_secs(PROBE_TIMEOUT_SECS))?
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body("[]");
    if let Some(secret) = secret {
        request = request.header(SECRET_HEADER, secret);
    }
    let response = request.send().await.map_err(|e| CliError::network(&e))?;
    Ok(response.status().as_u16())
}

/// Long enough for a cold start, well short of Sendblue's 45 s.
const PROBE_TIMEOUT_SECS: u64 = 20;

/// Whether the receiver at `url` accepts `secret`, asked with [`probe`].
pub async fn accepts_secret(url: &str, secret: &str) -> Result<bool, CliError> {
    match probe(url, Some(secret)).await? {
        400 => Ok(true),
        401 => Ok(false),
        status => Err(CliError::Mismatch(format!(
            "{url} answered {status} to a probe; expected 400 (secret accepted) or 401 (refused)"
        ))),
    }
}
