//! The one request pipeline every webhook function runs: method, secret or token, size, body,
//! key, then the dedup state machine of `delivery` (claim, forward, complete). Each step's
//! failure is an `Outcome`, answered as the README's table says.

use std::time::Instant;

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use sendblue_events::{Origin, WebhookType};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::dedup::DedupStore;
use crate::dedup_key::{self, BodyError, DedupKey};
use crate::delivery::{Event, Forwarder};
use crate::forward::EventSink;
use crate::outcome::{Outcome, Processed};
use crate::request::{api_request_id, lease_until_ms};
use crate::time::now_ms;
use crate::verify::AcceptedSecrets;

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

    /// The checks that need no parsing, in this order: method, secret (before reading
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
        let now_ms = now_ms();
        let forwarder = Forwarder {
            store: &self.store,
            sink: &self.sink,
            event_source: &self.event_source,
            dedup_ttl_seconds: self.dedup_ttl_seconds,
        };
        let event = Event {
            webhook_type: self.webhook_type,
            body,
            key,
            body_sha256_hex,
            request_id: &api_request_id(request).unwrap_or_default(),
            origin: Origin::Webhook,
            now_ms,
            lease_until_ms: lease_until_ms(request, now_ms),
        };
        forwarder.deliver(&event).await
    }
}
