//! The dedup state machine run on one event: claim, forward, complete (or release). Both ways an
//! event arrives, Sendblue's webhook (`pipeline`) and the messages API (`reconcile`), go through
//! this one function, so an event forwarded by one is a duplicate to the other.

use sendblue_events::{Origin, WebhookType};

use crate::dedup::{claim_pk, Claim, ClaimOutcome, DedupStore};
use crate::dedup_key::DedupKey;
use crate::envelope::{self, Metadata};
use crate::forward::{EventSink, OutgoingEvent};
use crate::outcome::Outcome;
use crate::time::iso_ms;

/// One event, validated and keyed, ready to be claimed and forwarded.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub webhook_type: WebhookType,
    /// The body exactly as received; forwarded untouched.
    pub body: &'a str,
    pub key: &'a DedupKey,
    pub body_sha256_hex: &'a str,
    /// API Gateway's request id (empty for reconciliation).
    pub request_id: &'a str,
    pub origin: Origin,
    pub now_ms: u64,
    /// Until then another delivery of the key is told to retry later.
    pub lease_until_ms: u64,
}

/// Where events are deduplicated and forwarded, and how.
#[derive(Debug, Clone, Copy)]
pub struct Forwarder<'a, S, E> {
    pub store: &'a S,
    pub sink: &'a E,
    pub event_source: &'a str,
    pub dedup_ttl_seconds: u64,
}

impl<S: DedupStore, E: EventSink> Forwarder<'_, S, E> {
    /// Claims the event's key, forwards the event, and marks the key completed.
    pub async fn deliver(&self, event: &Event<'_>) -> Outcome {
        let pk = claim_pk(event.webhook_type, event.key);
        let owner_token = uuid::Uuid::new_v4().simple().to_string();
        let claim = Claim {
            pk: &pk,
            owner_token: &owner_token,
            body_sha256_hex: event.body_sha256_hex,
            now_ms: event.now_ms,
            lease_until_ms: event.lease_until_ms,
            expires_at_s: expires_at_s(event.now_ms, event.lease_until_ms, self.dedup_ttl_seconds),
        };
        match self.store.claim(&claim).await {
            Err(error) => return Outcome::StoreFailed(error),
            Ok(ClaimOutcome::Completed { same_body }) => return Outcome::Duplicate { same_body },
            Ok(ClaimOutcome::InProgress { lease_until_ms, .. }) => {
                let retry_after_s =
                    lease_until_ms.saturating_sub(event.now_ms).div_ceil(1000).max(1);
                return Outcome::InProgress { retry_after_s };
            }
            Ok(ClaimOutcome::Claimed) => {}
        }

        let received_at = iso_ms(event.now_ms);
        let metadata = Metadata {
            webhook_type: event.webhook_type.sendblue_name(),
            dedup_key: event.key.as_str(),
            received_at: &received_at,
            request_id: event.request_id,
            origin: event.origin,
        };
        let detail = envelope::detail(&metadata, event.body);
        let outgoing = OutgoingEvent {
            source: self.event_source,
            detail_type: event.webhook_type.sendblue_name(),
            detail: &detail,
        };
        if let Err(error) = self.sink.forward(&outgoing).await {
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
