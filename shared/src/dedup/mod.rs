//! Deduplication: one item per event key, claimed before forwarding and completed after.
//!
//! The state machine (docs/architecture.md; after Powertools' idempotency utility):
//! - **claim** succeeds when no item exists, when the item's window has passed (`expires_at_s`,
//!   judged from the stored number because DynamoDB's TTL deletes days late), or when it is
//!   `IN_PROGRESS` with a lease that has ended (its holder crashed or timed out);
//! - otherwise the existing item decides: `COMPLETED` is a duplicate, `IN_PROGRESS` within its
//!   lease is "come back later";
//! - **release** deletes our claim when forwarding failed, so Sendblue's retry starts afresh;
//! - **complete** marks our claim done after a successful forward.
//!
//! Release and complete are conditional on the claim's owner token, so a holder whose lease ran
//! out can never delete or complete a claim that another invocation has since taken.

mod dynamodb;
mod memory;

use std::future::Future;

use sendblue_events::WebhookType;

use crate::dedup_key::DedupKey;

pub use dynamodb::{parse_item, DynamoDbStore, WATERMARK_MS};
pub use memory::MemoryStore;

/// What a claim stores, with the times it is judged by.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    /// The item's partition key, `<webhook_type>#<dedup key>`.
    pub pk: &'a str,
    /// Unique to one invocation: only its owner may release or complete a claim.
    pub owner_token: &'a str,
    /// Lets a later delivery with the same key tell whether its content differs.
    pub body_sha256_hex: &'a str,
    pub now_ms: u64,
    /// Until then, a concurrent delivery of the same key is told to retry later.
    pub lease_until_ms: u64,
    /// End of the dedup window; also the table's TTL attribute.
    pub expires_at_s: u64,
}

impl Claim<'_> {
    pub fn now_s(&self) -> u64 {
        self.now_ms / 1000
    }
}

/// The state of an item as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredClaim {
    pub status: ClaimStatus,
    pub lease_until_ms: u64,
    pub expires_at_s: u64,
    pub body_sha256_hex: String,
    pub owner_token: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimStatus {
    InProgress,
    Completed,
}

impl ClaimStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            ClaimStatus::InProgress => "IN_PROGRESS",
            ClaimStatus::Completed => "COMPLETED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "IN_PROGRESS" => Some(ClaimStatus::InProgress),
            "COMPLETED" => Some(ClaimStatus::Completed),
            _ => None,
        }
    }
}

/// The answer to a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The key is ours: forward, then complete or release.
    Claimed,
    /// The event was forwarded before.
    Completed { same_body: bool },
    /// Another invocation holds the key until `lease_until_ms`.
    InProgress { lease_until_ms: u64, same_body: bool },
}

impl StoredClaim {
    /// Whether the invocation holding `owner_token` wrote this item.
    pub fn is_held_by(&self, owner_token: &str) -> bool {
        self.owner_token == owner_token
    }

    /// Whether `claim` may take this item over; the DynamoDB condition expression says the same.
    pub fn is_claimable_by(&self, claim: &Claim<'_>) -> bool {
        self.expires_at_s < claim.now_s()
            || (self.status == ClaimStatus::InProgress && self.lease_until_ms < claim.now_ms)
    }

    /// What a claim that lost to this item is told.
    pub fn outcome_for(&self, claim: &Claim<'_>) -> ClaimOutcome {
        let same_body = self.body_sha256_hex == claim.body_sha256_hex;
        match self.status {
            ClaimStatus::Completed => ClaimOutcome::Completed { same_body },
            ClaimStatus::InProgress => {
                ClaimOutcome::InProgress { lease_until_ms: self.lease_until_ms, same_body }
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or refused the call; the message is for logs only.
    #[error("dedup store unavailable: {0}")]
    Unavailable(String),
    /// Our claim was taken over (our lease ended) or is gone.
    #[error("the claim is no longer ours")]
    NotOwner,
    /// An item that this code did not write, or that was altered by hand.
    #[error("malformed dedup item: {0}")]
    Malformed(String),
}

/// Reconciliation's progress through Sendblue's messages API: a time that only moves forward.
/// It lives in the dedup table as an item of its own, under a partition key no webhook can have
/// (`reconcile#<name>`: `reconcile` is no webhook type), and carries no `expires_at`, so the
/// table's TTL never deletes it.
pub trait WatermarkStore: Send + Sync {
    /// The watermark, in milliseconds since the epoch, if one was ever saved.
    fn watermark(&self, name: &str)
        -> impl Future<Output = Result<Option<u64>, StoreError>> + Send;

    /// Moves the watermark to `to_ms` unless it already stands there or later: two runs that
    /// overlap can each advance it, and it never moves backwards.
    fn advance_watermark(
        &self,
        name: &str,
        to_ms: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The partition key of an event's claim: `<webhook_type>#<dedup key>`.
pub fn claim_pk(webhook_type: WebhookType, key: &DedupKey) -> String {
    format!("{}#{key}", webhook_type.sendblue_name())
}

/// The partition key of a watermark item.
pub fn watermark_pk(name: &str) -> String {
    format!("reconcile#{name}")
}

/// Where claims live. Implemented for DynamoDB and in memory; both pass the same contract
/// tests (`shared/tests/it/store_contract.rs`).
pub trait DedupStore: Send + Sync {
    fn claim(
        &self,
        claim: &Claim<'_>,
    ) -> impl Future<Output = Result<ClaimOutcome, StoreError>> + Send;

    /// Deletes the claim if `owner_token` still holds it; no item at all is success too.
    fn release(
        &self,
        pk: &str,
        owner_token: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The item of `pk` as stored, if any (a read: reconciliation's dry run).
    fn lookup(
        &self,
        pk: &str,
    ) -> impl Future<Output = Result<Option<StoredClaim>, StoreError>> + Send;

    /// Marks the claim `COMPLETED` if `owner_token` still holds it.
    fn complete(
        &self,
        pk: &str,
        owner_token: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
