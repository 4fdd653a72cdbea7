//! The one request pipeline every function runs: method, secret or token, size, body, key, claim,
//! forward, complete. Each step's failure is an `Outcome`, answered as DESIGN.md's table says.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::dedup::{Claim, ClaimOutcome, DedupStore};
use crate::dedup_key::{self, BodyError, DedupKey};
use crate::envelope::{self, Metadata};
use crate::forward::{EventSink, OutgoingEvent};
use crate::outcome::{Outcome, Processed};
use crate::request::{api_request_id, lease_until_ms};
use crate::verify::AcceptedSecrets;
use sendblue_events::WebhookType;

/// One webhook type's receiver, built once per process and shared by every invocation.
#[derive(Debug)]
pub struct WebhookPipeline<S, E> {
    webhook_type: WebhookType,
    secrets: AcceptedSecrets,
    event_source: String,
    dedup_ttl_seconds: u64,
    max_body_bytes: usize,
    metrics_namespace: Option<String>,
    store: S,
    sink: E,
}

impl<S: DedupStore, E: EventSink> WebhookPipeline<S, E> {
    pub fn new(webhook_type: WebhookType, config: &Config, store: S, sink: E) -> Self {
        Self {
            webhook_type,
            secrets: config.secrets.clone(),
            event_source: config.event_source.clone(),
            dedup_ttl_seconds: config.dedup_ttl_seconds,
            max_body_bytes: config.max_body_bytes,
            metrics_namespace: config.metrics_namespace.clone(),
            store,
            sink,
        }
    }

    pub fn webhook_type(&self) -> WebhookType {
        self.webhook_type
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn sink(&self) -> &E {
        &self.sink
    }

    /// Handles one delivery; logs one line and emits one metrics line about it.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let started = Instant::now();
        let processed = self.process(&request).await;
        let elapsed = started.elapsed();
        crate::logging::request_line(self.webhook_type, &request, &processed, elapsed);
        if let Some(namespace) = &self.metrics_namespace {
            crate::metrics::emit(namespace, self.webhook_type, processed.outcome.name(), elapsed);
        }
        processed.outcome.into_response()
    }

    /// The pipeline without the log line and the HTTP answer.
    pub async fn process(&self, request: &Request) -> Processed {
        let mut dedup_key = None;
        let outcome = match self.accept(request) {
            Err(outcome) => outcome,
            Ok(body) => match self.derive_key(body) {
                Err(error) => Outcome::BadBody(error),
                Ok((key, body_sha256_hex)) => {
                    let outcome = self.deliver(request, body, &key, &body_sha256_hex).await;
                    dedup_key = Some(key);
                    outcome
                }
            },
        };
        Processed { outcome, dedup_key }
    }

    /// The checks that need no parsing, in DESIGN.md's order: method, secret (before reading
    /// anything of the body), size. Yields the body as text.
    fn accept<'r>(&self, request: &'r Request) -> Result<&'r str, Outcome> {
        if request.method() != Method::POST {
            return Err(Outcome::MethodNotAllowed);
        }
        self.secrets
            .verify(crate::verify::guard(self.webhook_type), request)
            .map_err(Outcome::Unauthorized)?;
        // lambda_http has already decoded a base64 body, so this is the decoded size.
        let body: &[u8] = request.body();
        if body.len() > self.max_body_bytes {
            return Err(Outcome::TooLarge {
                body_bytes: body.len(),
                limit_bytes: self.max_body_bytes,
            });
        }
        std::str::from_utf8(body).map_err(|_| Outcome::BadBody(BodyError::NotUtf8))
    }

    fn derive_key(&self, body: &str) -> Result<(DedupKey, String), BodyError> {
        let body_sha256_hex = hex::encode(Sha256::digest(body.as_bytes()));
        let key = dedup_key::derive(self.webhook_type, body, &body_sha256_hex)?;
        Ok((key, body_sha256_hex))
    }

    /// Claim, forward, complete: the dedup state machine of `dedup`.
    async fn deliver(
        &self,
        request: &Request,
        body: &str,
        key: &DedupKey,
        body_sha256_hex: &str,
    ) -> Outcome {
        let now_ms = epoch_ms(SystemTime::now());
        let pk = format!("{}#{}", self.webhook_type.sendblue_name(), key);
        let owner_token = uuid::Uuid::new_v4().simple().to_string();
        let lease_until_ms = lease_until_ms(request, now_ms);
        let claim = Claim {
            pk: &pk,
            owner_token: &owner_token,
            body_sha256_hex,
            now_ms,
            lease_until_ms,
            expires_at_s: expires_at_s(now_ms, lease_until_ms, self.dedup_ttl_seconds),
        };
        match self.store.claim(&claim).await {
            Err(error) => return Outcome::StoreFailed(error),
            Ok(ClaimOutcome::Completed { same_body }) => return Outcome::Duplicate { same_body },
            Ok(ClaimOutcome::InProgress { lease_until_ms, .. }) => {
                return Outcome::InProgress {
                    retry_after_s: lease_until_ms.saturating_sub(now_ms).div_ceil(1000).max(1),
                }
            }
            Ok(ClaimOutcome::Claimed) => {}
        }

        let received_at = humantime::format_rfc3339_millis(ms_to_time(now_ms)).to_string();
        let metadata = Metadata {
            webhook_type: self.webhook_type.sendblue_name(),
            dedup_key: key.as_str(),
            received_at: &received_at,
            request_id: &api_request_id(request).unwrap_or_default(),
            origin: envelope::Origin::Webhook,
        };
        let detail = envelope::detail(&metadata, body);
        let event = OutgoingEvent {
            source: &self.event_source,
            detail_type: self.webhook_type.sendblue_name(),
            detail: &detail,
        };
        if let Err(error) = self.sink.forward(&event).await {
            let release_error = self.store.release(&pk, &owner_token).await.err();
            return Outcome::ForwardFailed { error, release_error };
        }
        match self.store.complete(&pk, &owner_token).await {
            Ok(()) => Outcome::Forwarded,
            Err(error) => Outcome::CompletionFailed(error),
        }
    }
}

/// The end of the dedup window, never before the end of the lease: a window that ended first
/// would let a retry take over a live claim (`expires_at_s < now`) and forward the event twice.
fn expires_at_s(now_ms: u64, lease_until_ms: u64, dedup_ttl_seconds: u64) -> u64 {
    (now_ms / 1000 + dedup_ttl_seconds).max(lease_until_ms.div_ceil(1000))
}

fn epoch_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn ms_to_time(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}
