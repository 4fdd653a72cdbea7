//! Reconciliation: recovering from Sendblue's messages API what its webhooks did not bring
//! (an outage longer than Sendblue's three retries, a secret mismatch answered 401, a broken
//! deploy). Sendblue keeps no delivery log, but the API lists every message with its current
//! status, oldest update first, so a scheduled run walks it from a saved watermark and feeds
//! every record to the same claim → forward → complete code as the webhook path (`delivery`),
//! keyed as that path keys it: whatever one path forwarded is a duplicate to the other.
//!
//! Limits: only a message's *current* status is listed, so outbound statuses it went through
//! unseen (QUEUED, SENT before DELIVERED) cannot be recovered; typing indicators, call logs,
//! line events and new contacts have no listing by time here.

pub mod config;
mod function;
pub mod messages_api;

use std::collections::BTreeMap;

use sendblue_events::{Origin, WebhookType};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::dedup::{claim_pk, DedupStore, StoreError, WatermarkStore};
use crate::dedup_key;
use crate::delivery::{Event, Forwarder};
use crate::forward::EventSink;
use crate::outcome::Outcome;
use crate::time::{iso_ms, now_ms, parse_iso_ms};
pub use function::run;
use messages_api::{ApiError, MessagesApi, PageQuery};

/// The watermark item's name (`reconcile#messages` in the table).
pub const WATERMARK: &str = "messages";

/// How a run walks the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walk {
    /// Where the first run starts: now minus this.
    pub lookback_ms: u64,
    /// Each run re-reads this much before the watermark, for records written late.
    pub overlap_ms: u64,
    pub page_limit: usize,
    /// Stop here (a CLI backfill's `--until`); a scheduled run walks to the present.
    pub until_ms: Option<u64>,
    /// Start here instead of at the watermark (a CLI backfill's `--since`); such a walk leaves
    /// the watermark as it is.
    pub since_ms: Option<u64>,
    /// Count what would be recovered, and write nothing: no claim, no event, no watermark.
    pub dry_run: bool,
}

impl Walk {
    /// A scheduled run's walk: from the watermark, as `config` says.
    pub fn from_watermark(config: &config::ReconcileConfig) -> Self {
        Walk {
            lookback_ms: config.lookback_seconds * 1000,
            overlap_ms: config.overlap_seconds * 1000,
            page_limit: config.page_limit,
            until_ms: None,
            since_ms: None,
            dry_run: false,
        }
    }

    /// A backfill's walk over `since_ms..until_ms` (to now when open): the watermark stays.
    pub fn backfill(since_ms: u64, until_ms: Option<u64>, dry_run: bool) -> Self {
        Walk {
            lookback_ms: 0,
            overlap_ms: 0,
            page_limit: config::DEFAULT_PAGE_LIMIT,
            until_ms,
            since_ms: Some(since_ms),
            dry_run,
        }
    }
}

/// What one run did: the function's answer, and the CLI's report.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub pages: usize,
    pub records: usize,
    /// Forwarded now: events the webhooks did not bring (for a dry run, those it would forward).
    pub forwarded: usize,
    /// Forwarded before, by webhook or by an earlier run.
    pub duplicates: usize,
    /// Held by a delivery in flight: left for the next run.
    pub in_progress: usize,
    /// Records that are no message (no `message_handle`): skipped, logged.
    pub unusable: usize,
    /// Forwarded (or, dry, to forward) by webhook type.
    pub by_type: BTreeMap<String, usize>,
    pub watermark_before: Option<String>,
    pub watermark_after: Option<String>,
    /// The run ran out of time; the next run goes on from the watermark.
    pub stopped_early: bool,
    /// Where the walk would have started, when that lay before the dedup window: it started at
    /// the window's edge instead, and what was updated in `uncovered_from..uncovered_to` was
    /// not read. Past the window the dedup items have expired, so recovering those records
    /// would forward each one again: a flood of duplicates, not a recovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncovered_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncovered_to: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("forwarding a recovered event failed: {0}")]
    Forward(String),
}

/// The fields of a record that route it and place it in time.
#[derive(Deserialize)]
struct RecordHead {
    is_outbound: Option<bool>,
    date_updated: Option<String>,
}

/// What became of one record.
enum Settled {
    Forwarded(WebhookType),
    Duplicate,
    /// A delivery of the key is in flight: not settled yet.
    InProgress,
    Unusable,
}

/// The walk's position: records updated at `since_ms`, of which the first `seen_at_since` were
/// read already. Paging by time (not by a growing offset) means a record updated during a run,
/// which moves to the end of the list, is read again later rather than letting the others
/// shift past an offset unread.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    since_ms: u64,
    seen_at_since: usize,
}

impl Cursor {
    fn passed(&mut self, updated_ms: u64) {
        match updated_ms.cmp(&self.since_ms) {
            std::cmp::Ordering::Equal => self.seen_at_since += 1,
            std::cmp::Ordering::Greater => {
                *self = Cursor { since_ms: updated_ms, seen_at_since: 1 }
            }
            std::cmp::Ordering::Less => {}
        }
    }
}

/// How long a run's claims hold their keys against other deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// Until this time (epoch milliseconds): the Lambda invocation's deadline, after which a
    /// claim it left may be taken over.
    UntilMs(u64),
    /// This long from the moment of each claim: a CLI backfill, which may run for hours, so a
    /// deadline fixed at its start would leave the later claims none.
    ForMs(u64),
}

impl Lease {
    /// The `lease_until_ms` of a claim made now.
    pub fn until_ms(self) -> u64 {
        match self {
            Lease::UntilMs(until_ms) => until_ms,
            Lease::ForMs(length_ms) => now_ms() + length_ms,
        }
    }
}

/// One reconciliation run's parts.
#[derive(Debug)]
pub struct Reconciler<'a, S, E, A> {
    pub forwarder: Forwarder<'a, S, E>,
    pub api: &'a A,
    pub walk: Walk,
}

impl<S, E, A> Reconciler<'_, S, E, A>
where
    S: DedupStore + WatermarkStore,
    E: EventSink,
    A: MessagesApi,
{
    /// Walks the API from the watermark until the records run out or `stop_at`, forwarding what
    /// was missed, and advances the watermark past the records settled without a gap.
    /// `lease` says how long each claim holds its key.
    pub async fn run(&self, stop_at: Instant, lease: Lease) -> Result<Summary, ReconcileError> {
        let store = self.forwarder.store;
        let before = store.watermark(WATERMARK).await?;
        let wanted_start_ms = match (self.walk.since_ms, before) {
            (Some(since_ms), _) => since_ms,
            (None, Some(watermark_ms)) => watermark_ms.saturating_sub(self.walk.overlap_ms),
            (None, None) => now_ms().saturating_sub(self.walk.lookback_ms),
        };
        let mut summary = Summary { watermark_before: before.map(iso_ms), ..Summary::default() };
        let window_edge_ms = now_ms().saturating_sub(self.forwarder.dedup_ttl_seconds * 1000);
        let start_ms = wanted_start_ms.max(window_edge_ms);
        if start_ms > wanted_start_ms {
            summary.uncovered_from = Some(iso_ms(wanted_start_ms));
            summary.uncovered_to = Some(iso_ms(start_ms));
            tracing::warn!(
                uncovered_from = %iso_ms(wanted_start_ms),
                uncovered_to = %iso_ms(start_ms),
                "the walk starts at the dedup window's edge: what was updated before it cannot \
                 be recovered without forwarding duplicates"
            );
        }
        let mut cursor = Cursor { since_ms: start_ms, seen_at_since: 0 };
        // The latest update time up to which every record read was settled.
        let (mut settled_to_ms, mut gap) = (None::<u64>, false);
        loop {
            if Instant::now() >= stop_at {
                summary.stopped_early = true;
                break;
            }
            let query = PageQuery {
                updated_since_ms: cursor.since_ms,
                updated_until_ms: self.walk.until_ms,
                limit: self.walk.page_limit,
                offset: cursor.seen_at_since,
            };
            let page = self.api.page(&query).await?;
            summary.pages += 1;
            for record in &page.data {
                summary.records += 1;
                let head: Option<RecordHead> = serde_json::from_str(record.get()).ok();
                let updated_ms =
                    head.as_ref().and_then(|h| h.date_updated.as_deref()).and_then(parse_iso_ms);
                match self.settle(record.get(), head.as_ref(), lease).await? {
                    Settled::Forwarded(t) => {
                        summary.forwarded += 1;
                        *summary.by_type.entry(t.sendblue_name().to_owned()).or_insert(0) += 1;
                    }
                    Settled::Duplicate => summary.duplicates += 1,
                    Settled::InProgress => {
                        summary.in_progress += 1;
                        gap = true;
                    }
                    Settled::Unusable => summary.unusable += 1,
                }
                if let Some(updated_ms) = updated_ms {
                    cursor.passed(updated_ms);
                    if !gap {
                        settled_to_ms = Some(settled_to_ms.unwrap_or(0).max(updated_ms));
                    }
                } else {
                    cursor.seen_at_since += 1;
                }
            }
            let short = page.data.len() < self.walk.page_limit;
            if short || page.pagination.has_more == Some(false) {
                break;
            }
        }
        // A backfill (its own `since`) leaves the watermark alone: moving it past its window
        // could skip what lies between the watermark and the window's start.
        let walks_from_watermark = self.walk.since_ms.is_none() && !self.walk.dry_run;
        if let (Some(to_ms), true) = (settled_to_ms, walks_from_watermark) {
            store.advance_watermark(WATERMARK, to_ms).await?;
        }
        summary.watermark_after = store.watermark(WATERMARK).await?.map(iso_ms);
        Ok(summary)
    }

    /// Routes one record as the webhook path would, and delivers it (or, dry, looks it up).
    async fn settle(
        &self,
        record: &str,
        head: Option<&RecordHead>,
        lease: Lease,
    ) -> Result<Settled, ReconcileError> {
        let Some(head) = head else { return Ok(Settled::Unusable) };
        let webhook_type = if head.is_outbound == Some(true) {
            WebhookType::Outbound
        } else {
            WebhookType::Receive
        };
        let body_sha256_hex = hex::encode(Sha256::digest(record.as_bytes()));
        let Ok(key) = dedup_key::derive(webhook_type, record, &body_sha256_hex) else {
            tracing::warn!(webhook_type = webhook_type.sendblue_name(), "record without its key");
            return Ok(Settled::Unusable);
        };
        if self.walk.dry_run {
            let known = self.forwarder.store.lookup(&claim_pk(webhook_type, &key)).await?;
            let live = known.is_some_and(|item| item.expires_at_s >= now_ms() / 1000);
            return Ok(if live { Settled::Duplicate } else { Settled::Forwarded(webhook_type) });
        }
        let event = Event {
            webhook_type,
            body: record,
            key: &key,
            body_sha256_hex: &body_sha256_hex,
            request_id: "",
            origin: Origin::Reconciliation,
            now_ms: now_ms(),
            lease_until_ms: lease.until_ms(),
        };
        match self.forwarder.deliver(&event).await {
            Outcome::Forwarded | Outcome::CompletionFailed(_) => {
                Ok(Settled::Forwarded(webhook_type))
            }
            Outcome::Duplicate { .. } => Ok(Settled::Duplicate),
            Outcome::InProgress { .. } => Ok(Settled::InProgress),
            Outcome::StoreFailed(error) => Err(error.into()),
            Outcome::ForwardFailed { error, .. } => Err(ReconcileError::Forward(error.to_string())),
            other => Err(ReconcileError::Forward(format!("unexpected outcome {}", other.name()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_for_a_length_is_counted_from_each_claim_and_a_deadline_is_fixed() {
        let first = Lease::ForMs(60_000).until_ms();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let later = Lease::ForMs(60_000).until_ms();
        assert!(later >= first + 20, "{first} then {later}");
        assert!(first >= now_ms() + 59_000);
        assert_eq!(Lease::UntilMs(1_234).until_ms(), 1_234);
    }
}
