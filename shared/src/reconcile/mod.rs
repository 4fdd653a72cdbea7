//! Reconciliation: recovering from Sendblue's messages API what its webhooks did not bring
//! (an outage longer than Sendblue's three retries, a secret mismatch answered 401, a broken
//! deploy). Sendblue keeps no delivery log, but the API lists every message with its current
//! status, oldest update first, so a scheduled run walks it from a saved watermark and accepts
//! every record through the same door as the webhook path (one conditional write, `dedup`),
//! keyed as that path keys it: whatever one path accepted is a duplicate to the other, and the
//! `forward` function puts what it accepted on the bus. Reconciliation itself calls no bus.
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

use crate::dedup::{event_pk, AcceptOutcome, DedupStore, NewEvent, StoreError, WatermarkStore};
use crate::dedup_key;
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
    /// Count what would be recovered, and write nothing: no event, no watermark.
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
    /// Accepted now, for `forward` to put on the bus: events the webhooks did not bring (for a
    /// dry run, those it would accept).
    pub recovered: usize,
    /// Accepted before, by webhook or by an earlier run.
    pub duplicates: usize,
    /// Records that are no message (no `message_handle`): skipped, logged.
    pub unusable: usize,
    /// Recovered (or, dry, to recover) by webhook type.
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
}

/// The fields of a record that route it and place it in time.
#[derive(Deserialize)]
struct RecordHead {
    is_outbound: Option<bool>,
    date_updated: Option<String>,
}

/// What became of one record.
enum Settled {
    Recovered(WebhookType),
    Duplicate,
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

/// One reconciliation run's parts.
#[derive(Debug)]
pub struct Reconciler<'a, S, A> {
    pub store: &'a S,
    pub api: &'a A,
    pub walk: Walk,
    /// How long the table remembers a forwarded key: the walk never starts before that.
    pub dedup_ttl_seconds: u64,
}

impl<S, A> Reconciler<'_, S, A>
where
    S: DedupStore + WatermarkStore,
    A: MessagesApi,
{
    /// Walks the API from the watermark until the records run out or `stop_at`, accepting what
    /// was missed, and advances the watermark past the records settled.
    pub async fn run(&self, stop_at: Instant) -> Result<Summary, ReconcileError> {
        let store = self.store;
        let before = store.watermark(WATERMARK).await?;
        let wanted_start_ms = match (self.walk.since_ms, before) {
            (Some(since_ms), _) => since_ms,
            (None, Some(watermark_ms)) => watermark_ms.saturating_sub(self.walk.overlap_ms),
            (None, None) => now_ms().saturating_sub(self.walk.lookback_ms),
        };
        let mut summary = Summary { watermark_before: before.map(iso_ms), ..Summary::default() };
        let window_edge_ms = now_ms().saturating_sub(self.dedup_ttl_seconds * 1000);
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
        // The latest update time of the records read: each one read is settled.
        let mut settled_to_ms = None::<u64>;
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
                match self.settle(record.get(), head.as_ref()).await? {
                    Settled::Recovered(t) => {
                        summary.recovered += 1;
                        *summary.by_type.entry(t.sendblue_name().to_owned()).or_insert(0) += 1;
                    }
                    Settled::Duplicate => summary.duplicates += 1,
                    Settled::Unusable => summary.unusable += 1,
                }
                if let Some(updated_ms) = updated_ms {
                    cursor.passed(updated_ms);
                    settled_to_ms = Some(settled_to_ms.unwrap_or(0).max(updated_ms));
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

    /// Routes one record as the webhook path would, and accepts it (or, dry, looks it up).
    async fn settle(
        &self,
        record: &str,
        head: Option<&RecordHead>,
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
        let now_ms = now_ms();
        if self.walk.dry_run {
            let known = self.store.lookup(&event_pk(webhook_type, &key)).await?;
            let live = known.is_some_and(|item| !item.is_replaceable_at(now_ms / 1000));
            return Ok(if live { Settled::Duplicate } else { Settled::Recovered(webhook_type) });
        }
        let write_id = uuid::Uuid::new_v4().simple().to_string();
        let event = NewEvent {
            webhook_type,
            key: &key,
            body: record,
            body_sha256_hex: &body_sha256_hex,
            received_at_ms: now_ms,
            request_id: "",
            origin: Origin::Reconciliation,
            write_id: &write_id,
        };
        Ok(match self.store.accept(&event).await? {
            AcceptOutcome::Accepted => Settled::Recovered(webhook_type),
            AcceptOutcome::Duplicate { .. } => Settled::Duplicate,
        })
    }
}
