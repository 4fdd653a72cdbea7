//! The dedup table: one item per event key, written once at the door and marked once forwarded.
//!
//! The state machine (docs/architecture.md):
//! - **accept** (the receiver's one conditional write) stores the whole event as `PENDING` when
//!   no item exists or the item's dedup window has passed (`expires_at_s`, judged from the
//!   stored number because DynamoDB's TTL deletes days late). Otherwise the existing item makes
//!   the delivery a duplicate, `PENDING` or `FORWARDED` alike: the event is already safe.
//! - **mark forwarded** (the `forward` function, after `PutEvents`) turns the same `PENDING`
//!   item `FORWARDED`: it sets `expires_at_s` (the window starts once the event is out) and
//!   drops the body and the pending index's key. A pending item has no `expires_at_s`, so the
//!   table's TTL can never delete an event that was not forwarded.
//!
//! There are no leases and no owners: a write either happened or did not, and a retry of it
//! meets the item it wrote.

mod dynamodb;
mod memory;

use std::future::Future;
use std::sync::Arc;

use sendblue_events::{Origin, WebhookType};

use crate::dedup_key::DedupKey;

pub use dynamodb::{DynamoDbStore, WATERMARK_MS};
pub use memory::MemoryStore;

/// An event as the receiver (or reconciliation) accepts it.
#[derive(Debug, Clone, Copy)]
pub struct NewEvent<'a> {
    pub webhook_type: WebhookType,
    pub key: &'a DedupKey,
    /// The body exactly as received; forwarded untouched.
    pub body: &'a str,
    /// Lets a later delivery with the same key tell whether its content differs.
    pub body_sha256_hex: &'a str,
    pub received_at_ms: u64,
    /// API Gateway's request id (empty for reconciliation).
    pub request_id: &'a str,
    pub origin: Origin,
    /// Unique to this write: a retry of the write that meets it knows the item as its own, and
    /// the mark can tell this `PENDING` item from a later one under the same key.
    pub write_id: &'a str,
}

impl NewEvent<'_> {
    pub fn pk(&self) -> String {
        event_pk(self.webhook_type, self.key)
    }

    pub fn now_s(&self) -> u64 {
        self.received_at_ms / 1000
    }
}

/// The answer to an accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptOutcome {
    /// Written: the event is safe, and `forward` will put it on the bus.
    Accepted,
    /// The key is taken (pending or forwarded within its window); `same_body` is false when this
    /// delivery's content differs from the first one's, which stays the one forwarded.
    Duplicate { same_body: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventStatus {
    /// Accepted, not yet known to be on the bus.
    Pending,
    /// On the bus; the item now only guards the key until `expires_at_s`.
    Forwarded,
}

impl EventStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            EventStatus::Pending => "PENDING",
            EventStatus::Forwarded => "FORWARDED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "PENDING" => Some(EventStatus::Pending),
            "FORWARDED" => Some(EventStatus::Forwarded),
            _ => None,
        }
    }
}

/// What every item carries, whatever its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub status: EventStatus,
    pub body_sha256_hex: String,
    pub write_id: String,
    /// Set when forwarded: the end of the dedup window, also the table's TTL attribute.
    pub expires_at_s: Option<u64>,
}

impl StoredEvent {
    /// Whether a new accept at `now_s` may replace this item (the condition expression says
    /// the same): only a forwarded item whose window has passed.
    pub fn is_replaceable_at(&self, now_s: u64) -> bool {
        self.expires_at_s.is_some_and(|expires_at_s| expires_at_s < now_s)
    }

    /// What an accept that met this item is told.
    pub fn outcome_for(&self, event: &NewEvent<'_>) -> AcceptOutcome {
        if self.write_id == event.write_id {
            // Our own write, applied on an attempt whose answer was lost.
            return AcceptOutcome::Accepted;
        }
        AcceptOutcome::Duplicate { same_body: self.body_sha256_hex == event.body_sha256_hex }
    }
}

/// A pending item read back whole: everything the forwarded event is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEvent {
    pub pk: String,
    pub write_id: String,
    pub webhook_type: WebhookType,
    pub dedup_key: String,
    pub body: String,
    pub received_at_ms: u64,
    pub request_id: String,
    pub origin: Origin,
}

/// What a consistent read of one key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// Still pending: to be forwarded.
    Event(PendingEvent),
    /// Forwarded already, or no item at all: nothing to do.
    Settled,
    /// A `PENDING` item this code did not write (altered or written by hand): never forwarded.
    Malformed(String),
}

/// One entry of the pending index, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEntry {
    pub pk: String,
    pub received_at_ms: u64,
}

/// A page of the pending index; `next` is where the following page starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PendingPage {
    pub entries: Vec<PendingEntry>,
    pub next: Option<PendingEntry>,
}

/// Whether the mark found the item still pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marked {
    Now,
    /// Someone else (the sweep, or the stream's retry) marked it first, or the item changed:
    /// this forward may have put the event on the bus a second time. (The SDK's retry of this
    /// very mark, applied with its answer lost, is `Now`: the item carries the mark's own id.)
    Already,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or refused the call; the message is for logs only.
    #[error("dedup store unavailable: {0}")]
    Unavailable(String),
    /// An item that this code did not write, or that was altered by hand.
    #[error("malformed dedup item: {0}")]
    Malformed(String),
    /// The store refused this item itself (DynamoDB's `ValidationException`: too large, say):
    /// trying it again changes nothing, unlike `Unavailable`.
    #[error("the store refused the item: {0}")]
    Refused(String),
}

/// Reconciliation's state between runs, kept in the dedup table under partition keys no
/// webhook can have (`reconcile#<name>`: `reconcile` is no webhook type), with no `expires_at`,
/// so the table's TTL never deletes them:
/// - a walk's **watermark**: a time that only moves forward;
/// - the record a walk last **failed on**, and in how many runs in a row, so that a record that
///   fails every time is set aside instead of holding the watermark back for good;
/// - a **lease**, so that a CLI backfill and a scheduled run never walk the API at once.
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

    /// Notes that the walk `name` failed on `record_id`; how many times in a row it has now
    /// failed on that record (1 when it last failed on another, or never).
    fn note_failure(
        &self,
        name: &str,
        record_id: &str,
    ) -> impl Future<Output = Result<u32, StoreError>> + Send;

    /// Takes (or, for the same `owner`, extends) the lease `name` until `until_ms`, if it is
    /// free or its holder's lease ended before `now_ms`; whether it is now `owner`'s.
    fn try_lease(
        &self,
        name: &str,
        owner: &str,
        until_ms: u64,
        now_ms: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Gives the lease back, if `owner` still holds it.
    fn release_lease(
        &self,
        name: &str,
        owner: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The partition key of an event's item: `<webhook_type>#<dedup key>`.
pub fn event_pk(webhook_type: WebhookType, key: &DedupKey) -> String {
    format!("{}#{key}", webhook_type.sendblue_name())
}

/// The partition key of a watermark item.
pub fn watermark_pk(name: &str) -> String {
    format!("reconcile#{name}")
}

/// The partition key of a lease item.
pub fn lease_pk(name: &str) -> String {
    format!("reconcile#lease#{name}")
}

/// Where events are accepted and settled. Implemented for DynamoDB and in memory; both pass
/// the same contract tests (`shared/tests/it/store_contract.rs`).
pub trait DedupStore: Send + Sync {
    /// The one conditional write at the door.
    fn accept(
        &self,
        event: &NewEvent<'_>,
    ) -> impl Future<Output = Result<AcceptOutcome, StoreError>> + Send;

    /// The item of `pk` as stored, if any (a read: reconciliation's dry run, the tests).
    fn lookup(
        &self,
        pk: &str,
    ) -> impl Future<Output = Result<Option<StoredEvent>, StoreError>> + Send;

    /// A strongly consistent read of `pks`, in their order: what is still pending now, as
    /// opposed to what a stream record or the index said a moment ago.
    fn pending(
        &self,
        pks: &[&str],
    ) -> impl Future<Output = Result<Vec<Pending>, StoreError>> + Send;

    /// Marks `event` forwarded, if it is still the same pending item.
    fn mark_forwarded(
        &self,
        event: &PendingEvent,
        expires_at_s: u64,
    ) -> impl Future<Output = Result<Marked, StoreError>> + Send;

    /// The pending items of `webhook_type` received before `before_ms`, oldest first, from
    /// `after` on (an eventually consistent index: read each one again with `pending`).
    fn pending_page(
        &self,
        webhook_type: WebhookType,
        before_ms: u64,
        after: Option<&PendingEntry>,
        limit: usize,
    ) -> impl Future<Output = Result<PendingPage, StoreError>> + Send;
}

/// A store shared between the receiver and the in-process forwarder of the local mode.
impl<S: DedupStore> DedupStore for Arc<S> {
    fn accept(
        &self,
        event: &NewEvent<'_>,
    ) -> impl Future<Output = Result<AcceptOutcome, StoreError>> + Send {
        (**self).accept(event)
    }

    fn lookup(
        &self,
        pk: &str,
    ) -> impl Future<Output = Result<Option<StoredEvent>, StoreError>> + Send {
        (**self).lookup(pk)
    }

    fn pending(
        &self,
        pks: &[&str],
    ) -> impl Future<Output = Result<Vec<Pending>, StoreError>> + Send {
        (**self).pending(pks)
    }

    fn mark_forwarded(
        &self,
        event: &PendingEvent,
        expires_at_s: u64,
    ) -> impl Future<Output = Result<Marked, StoreError>> + Send {
        (**self).mark_forwarded(event, expires_at_s)
    }

    fn pending_page(
        &self,
        webhook_type: WebhookType,
        before_ms: u64,
        after: Option<&PendingEntry>,
        limit: usize,
    ) -> impl Future<Output = Result<PendingPage, StoreError>> + Send {
        (**self).pending_page(webhook_type, before_ms, after, limit)
    }
}
