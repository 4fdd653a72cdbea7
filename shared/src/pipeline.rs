//! The one request pipeline every webhook function runs: method, secret or token, size, body,
//! key, then one conditional write of the whole event (`dedup`). Each step's failure is an
//! `Outcome`, answered as the README's table says. What happens to an accepted event is the
//! `Handoff`'s business: deployed, the table's stream takes it to `forward`; in the local mode
//! it is forwarded in-process.

use std::future::Future;
use std::time::Instant;

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use sendblue_events::{Origin, WebhookType};
use sha2::{Digest, Sha256};

use crate::bus::EventSink;
use crate::config::Config;
use crate::dedup::{AcceptOutcome, DedupStore, NewEvent};
use crate::dedup_key::{self, BodyError, DedupKey};
use crate::forward::Forwarder;
use crate::outcome::{Outcome, Processed};
use crate::request::api_request_id;
use crate::time::now_ms;
use crate::verify::AcceptedSecrets;

/// What happens to an event once it is accepted.
pub trait Handoff: Send + Sync {
    fn accepted(&self, pk: &str) -> impl Future<Output = ()> + Send;
}

/// Deployed: the table's stream hands every accepted event to the `forward` function.
#[derive(Debug, Clone, Copy, Default)]
pub struct ByStream;

impl Handoff for ByStream {
    async fn accepted(&self, _pk: &str) {}
}

/// The local mode: forwarded at once, in-process. A failure is logged; the event stays pending.
impl<S: DedupStore, E: EventSink> Handoff for Forwarder<S, E> {
    async fn accepted(&self, pk: &str) {
        let report = self.forward(&[pk]).await;
        if report.failed_at.is_some() {
            tracing::error!(pk, "forwarding the accepted event failed");
        }
    }
}

/// One webhook type's receiver, built once per process and shared by every invocation.
#[derive(Debug)]
pub struct WebhookPipeline<S, H = ByStream> {
    webhook_type: WebhookType,
    secrets: AcceptedSecrets,
    max_body_bytes: usize,
    metrics_namespace: Option<String>,
    store: S,
    handoff: H,
}

impl<S: DedupStore, H: Handoff> WebhookPipeline<S, H> {
    pub fn new(webhook_type: WebhookType, config: &Config, store: S, handoff: H) -> Self {
        Self {
            webhook_type,
            secrets: config.secrets.clone(),
            max_body_bytes: config.max_body_bytes,
            metrics_namespace: config.metrics_namespace.clone(),
            store,
            handoff,
        }
    }

    pub fn webhook_type(&self) -> WebhookType {
        self.webhook_type
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn handoff(&self) -> &H {
        &self.handoff
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

    /// The one conditional write; then the handoff of a new event.
    async fn deliver(
        &self,
        request: &Request,
        body: &str,
        key: &DedupKey,
        body_sha256_hex: &str,
    ) -> Outcome {
        let write_id = uuid::Uuid::new_v4().simple().to_string();
        let event = NewEvent {
            webhook_type: self.webhook_type,
            key,
            body,
            body_sha256_hex,
            received_at_ms: now_ms(),
            request_id: &api_request_id(request).unwrap_or_default(),
            origin: Origin::Webhook,
            write_id: &write_id,
        };
        match self.store.accept(&event).await {
            Ok(AcceptOutcome::Accepted) => {
                self.handoff.accepted(&event.pk()).await;
                Outcome::Accepted
            }
            Ok(AcceptOutcome::Duplicate { same_body }) => Outcome::Duplicate { same_body },
            Err(error) => Outcome::StoreFailed(error),
        }
    }
}
