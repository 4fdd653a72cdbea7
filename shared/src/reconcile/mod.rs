//! Reconciliation: recovering from Sendblue's messages API what its webhooks did not bring
//! (an outage longer than Sendblue's three retries, a secret mismatch answered 401, a broken
//! deploy). Sendblue keeps no delivery log, but the API lists every message with its current
//! status, oldest update first, so a scheduled run walks it from a saved watermark and accepts
//! every record through the same door as the webhook path (one conditional write, `dedup`),
//! keyed as that path keys it: whatever one path accepted is a duplicate to the other, and the
//! `forward` function puts what it accepted on the bus. Reconciliation itself calls no bus.
//!
//! How a walk keeps faith (docs/architecture.md, "Reconciliation"): it leaves the newest
//! minutes to the webhooks (`settle_ms`), saves its progress page by page, checks that the API
//! kept its order, pages by time so ties and moving records are never skipped (`cursor`),
//! sets a record aside after it failed in several runs in a row, and holds a lease so that two
//! walks never share the API's rate limit at once.
//!
//! Two lists are walked, each with a watermark of its own: messages (`receive`, `outbound`) and
//! contacts (`contact_created`, keyed by `contact_id` as the webhook path keys it).
//!
//! Limits: only a message's *current* status is listed, so outbound statuses it went through
//! unseen (QUEUED, SENT before DELIVERED) cannot be recovered; typing indicators, call logs and
//! line events have no listing by time (the lines API gives only a current snapshot).

pub mod config;
mod cursor;
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
use cursor::Cursor;
pub use function::{run, walked_lists};
use messages_api::{ApiError, Listing, MessagesApi, PageQuery};

/// The messages walk's watermark item (`reconcile#messages` in the table); the contacts walk
/// has its own (`Listing::watermark`).
pub const WATERMARK: &str = Listing::Messages.watermark();
/// The lease every walk of the API takes (`reconcile#lease#walk`).
pub const LEASE: &str = "walk";
/// A walk holds its lease this long past each page; a walk that died frees it this late.
pub const LEASE_MS: u64 = 2 * 60_000;
/// A record that failed in this many runs in a row is set aside: logged, counted, alarmed.
pub const SET_ASIDE_AFTER_RUNS: u32 = 3;

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
    /// Count what would be recovered, and write nothing: no event, no watermark, no lease.
    pub dry_run: bool,
    /// Records updated less than this long ago are left to their webhooks: read now, a record
    /// would win the race with its own delivery, and every such "recovery" would be noise in
    /// the alarm that exists to report real loss.
    pub settle_ms: u64,
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
            settle_ms: config.settle_seconds * 1000,
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
            settle_ms: config::DEFAULT_SETTLE_SECONDS * 1000,
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
    /// Records that failed in `SET_ASIDE_AFTER_RUNS` runs in a row and were passed over.
    #[serde(default)]
    pub set_aside: usize,
    /// Recovered (or, dry, to recover) by webhook type.
    pub by_type: BTreeMap<String, usize>,
    pub watermark_before: Option<String>,
    pub watermark_after: Option<String>,
    /// Every record updated up to this time has been read: the walk's end when it completed,
    /// else the last record it settled. Lag is measured from here, so a quiet account is not
    /// "late".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covered_to: Option<String>,
    /// The run stopped before the end (its deadline, or a failure); the next goes on from the
    /// watermark, which holds what this one settled.
    pub stopped_early: bool,
    /// Another walk held the lease: this run walked nothing.
    #[serde(default)]
    pub skipped: bool,
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
    /// The API did not keep the order asked for (a record updated before one read ahead of
    /// it, or before the time asked from): the walk stopped there, and its watermark did not
    /// move past what was read in order.
    #[error("Sendblue's API did not keep its order: {0}")]
    OrderNotKept(String),
}

impl ReconcileError {
    /// The reason a failed run reports, one word.
    pub fn reason(&self) -> &'static str {
        match self {
            ReconcileError::Api(_) => "api",
            ReconcileError::Store(_) => "store",
            ReconcileError::OrderNotKept(_) => "order",
        }
    }
}

/// A run that failed after settling some of the walk: what it did, and why it stopped.
#[derive(Debug)]
pub struct Failed {
    pub summary: Summary,
    pub error: ReconcileError,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

/// The fields of a record that route it and place it in time (a message's `date_updated`, a
/// contact's `created_at`).
#[derive(Deserialize)]
struct RecordHead {
    is_outbound: Option<bool>,
    date_updated: Option<String>,
    created_at: Option<String>,
}

impl RecordHead {
    fn time_ms(&self, listing: Listing) -> Option<u64> {
        let time = match listing {
            Listing::Messages => self.date_updated.as_deref(),
            Listing::Contacts => self.created_at.as_deref(),
        };
        time.and_then(parse_iso_ms)
    }

    /// The webhook that would have brought this record.
    fn webhook_type(&self, listing: Listing) -> WebhookType {
        match (listing, self.is_outbound) {
            (Listing::Contacts, _) => WebhookType::ContactCreated,
            (Listing::Messages, Some(true)) => WebhookType::Outbound,
            (Listing::Messages, _) => WebhookType::Receive,
        }
    }
}

/// What became of one record.
enum Settled {
    Recovered(WebhookType),
    Duplicate,
    Unusable,
}

/// How a walk ended without failing.
enum End {
    /// Every record up to the walk's end was read.
    Complete,
    /// The deadline came first.
    OutOfTime,
}

/// A record updated after the walk's end: the walk is complete.
struct PastEnd;

/// One reconciliation run's parts.
#[derive(Debug)]
pub struct Reconciler<'a, S, A> {
    pub store: &'a S,
    pub api: &'a A,
    pub walk: Walk,
    /// How long the table remembers a forwarded key: the walk never starts before that.
    pub dedup_ttl_seconds: u64,
}

/// A walk in progress: what it has done so far.
struct Progress {
    summary: Summary,
    cursor: Cursor,
    /// The update time of the last record settled, in the API's order.
    last_ms: u64,
    settled_to_ms: Option<u64>,
}

impl<S, A> Reconciler<'_, S, A>
where
    S: DedupStore + WatermarkStore,
    A: MessagesApi,
{
    /// Takes or renews the walk's lease for `LEASE_MS` from now; whether `owner` holds it.
    async fn hold_lease(&self, owner: &str) -> Result<bool, StoreError> {
        let now_ms = now_ms();
        self.store.try_lease(LEASE, owner, now_ms + LEASE_MS, now_ms).await
    }

    /// The walk's watermark: one per list, and per line when the walk reads one line's.
    fn watermark(&self) -> &str {
        self.api.watermark()
    }

    /// Walks the API from the watermark up to `now - settle` or `stop_at`, accepting what was
    /// missed and saving the watermark as each page settles. A failure still saves what was
    /// settled before it (`Failed::summary`).
    pub async fn run(&self, stop_at: Instant) -> Result<Summary, Failed> {
        let owner = uuid::Uuid::new_v4().simple().to_string();
        if !self.walk.dry_run {
            match self.hold_lease(&owner).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(
                        "another reconciliation walk holds the lease: this run walks nothing"
                    );
                    return Ok(Summary { skipped: true, ..Summary::default() });
                }
                Err(error) => {
                    return Err(Failed { summary: Summary::default(), error: error.into() })
                }
            }
        }
        let result = self.walk_from_watermark(stop_at, &owner).await;
        if !self.walk.dry_run {
            if let Err(error) = self.store.release_lease(LEASE, &owner).await {
                tracing::warn!(%error, "releasing the walk's lease failed: it ends by itself");
            }
        }
        result
    }

    async fn walk_from_watermark(&self, stop_at: Instant, owner: &str) -> Result<Summary, Failed> {
        let before = match self.store.watermark(self.watermark()).await {
            Ok(before) => before,
            Err(error) => return Err(Failed { summary: Summary::default(), error: error.into() }),
        };
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
        let settled_before_ms = now_ms().saturating_sub(self.walk.settle_ms);
        let end_ms = self.walk.until_ms.map_or(settled_before_ms, |u| u.min(settled_before_ms));
        let mut progress = Progress {
            summary,
            cursor: Cursor::new(start_ms),
            last_ms: start_ms,
            settled_to_ms: None,
        };
        let walked = if start_ms > end_ms {
            Ok(End::Complete)
        } else {
            self.walk_pages(&mut progress, end_ms, stop_at, owner).await
        };
        let covered_to_ms = match walked {
            Ok(End::Complete) => Some(end_ms.max(start_ms)),
            // Out of order, even the records read before the break may be the newest ones:
            // the watermark keeps what earlier pages saved, and nothing of this one.
            Err(ReconcileError::OrderNotKept(_)) => None,
            _ => progress.settled_to_ms,
        };
        progress.summary.covered_to = covered_to_ms.map(iso_ms);
        progress.summary.stopped_early = !matches!(walked, Ok(End::Complete));
        let saved = self.save(covered_to_ms).await;
        let mut summary = progress.summary;
        summary.watermark_after =
            self.store.watermark(self.watermark()).await.ok().flatten().map(iso_ms);
        match (walked, saved) {
            (Ok(_), Ok(())) => Ok(summary),
            (Err(error), saved) => {
                if let Err(save_error) = saved {
                    tracing::error!(error = %save_error, "saving the watermark failed too");
                }
                Err(Failed { summary, error })
            }
            (Ok(_), Err(error)) => Err(Failed { summary, error }),
        }
    }

    /// Moves the watermark to `to_ms`, for a walk that starts from it (a backfill, with its
    /// own start, leaves it alone: moving it past the backfill's window could skip what lies
    /// between the watermark and the window's start).
    async fn save(&self, to_ms: Option<u64>) -> Result<(), ReconcileError> {
        match to_ms {
            Some(to_ms) if self.walk.since_ms.is_none() && !self.walk.dry_run => {
                Ok(self.store.advance_watermark(self.watermark(), to_ms).await?)
            }
            _ => Ok(()),
        }
    }

    async fn walk_pages(
        &self,
        progress: &mut Progress,
        end_ms: u64,
        stop_at: Instant,
        owner: &str,
    ) -> Result<End, ReconcileError> {
        loop {
            if Instant::now() >= stop_at {
                return Ok(End::OutOfTime);
            }
            let query = PageQuery {
                updated_since_ms: progress.cursor.since_ms(),
                updated_until_ms: Some(end_ms),
                limit: self.walk.page_limit,
                offset: progress.cursor.offset(self.walk.page_limit),
                give_up_at: stop_at,
            };
            let page = self.api.page(&query).await?;
            progress.summary.pages += 1;
            let settled_before = progress.summary.records;
            for record in &page.data {
                if Instant::now() >= stop_at {
                    return Ok(End::OutOfTime);
                }
                if self.settle_in_order(record.get(), progress, end_ms).await?.is_some() {
                    // In order, everything up to the end was read (an API that ignored the
                    // upper bound); the caller saves the end.
                    return Ok(End::Complete);
                }
            }
            let full = page.data.len() >= self.walk.page_limit;
            let more = page.pagination.has_more != Some(false) && full;
            if more && progress.summary.records == settled_before {
                return Err(ReconcileError::OrderNotKept(format!(
                    "a full page from {} brought nothing new",
                    iso_ms(progress.cursor.since_ms())
                )));
            }
            // Progress is kept page by page: a run that fails or is ended later loses nothing
            // settled here.
            self.save(progress.settled_to_ms).await?;
            if !self.walk.dry_run && !self.hold_lease(owner).await? {
                tracing::warn!("the walk's lease was taken over: stopping");
                return Ok(End::OutOfTime);
            }
            if !more {
                return Ok(End::Complete);
            }
        }
    }

    /// Settles one record of a page, unless it was settled already at the cursor, after
    /// checking that it keeps the API's order; `PastEnd` when it lies past the walk's end.
    async fn settle_in_order(
        &self,
        record: &str,
        progress: &mut Progress,
        end_ms: u64,
    ) -> Result<Option<PastEnd>, ReconcileError> {
        let head: Option<RecordHead> = serde_json::from_str(record).ok();
        let updated_ms = head.as_ref().and_then(|h| h.time_ms(self.api.listing()));
        let identity = hex::encode(Sha256::digest(record.as_bytes()));
        if let Some(updated_ms) = updated_ms {
            if updated_ms < progress.last_ms {
                tracing::error!(
                    updated = %iso_ms(updated_ms),
                    after = %iso_ms(progress.last_ms),
                    "Sendblue's API answered out of order: the walk stops without moving the \
                     watermark past what was read in order"
                );
                return Err(ReconcileError::OrderNotKept(format!(
                    "a record updated at {} came after one updated at {}",
                    iso_ms(updated_ms),
                    iso_ms(progress.last_ms)
                )));
            }
            if updated_ms > end_ms {
                return Ok(Some(PastEnd));
            }
            if progress.cursor.settled(updated_ms, &identity) {
                return Ok(None);
            }
        }
        progress.summary.records += 1;
        match self.settle(record, head.as_ref(), &identity).await {
            Ok(Settled::Recovered(t)) => {
                progress.summary.recovered += 1;
                *progress.summary.by_type.entry(t.sendblue_name().to_owned()).or_insert(0) += 1;
            }
            Ok(Settled::Duplicate) => progress.summary.duplicates += 1,
            Ok(Settled::Unusable) => progress.summary.unusable += 1,
            Err(ReconcileError::Store(StoreError::Refused(reason))) => {
                let runs = self.store.note_failure(self.watermark(), &identity).await?;
                if runs < SET_ASIDE_AFTER_RUNS {
                    return Err(StoreError::Refused(reason).into());
                }
                tracing::error!(
                    record = %identity,
                    runs,
                    %reason,
                    "a record refused in every run: set aside, the walk goes on past it"
                );
                progress.summary.set_aside += 1;
            }
            Err(error) => return Err(error),
        }
        if let Some(updated_ms) = updated_ms {
            progress.cursor.passed(updated_ms, identity);
            progress.last_ms = updated_ms;
            progress.settled_to_ms = Some(updated_ms);
        }
        Ok(None)
    }

    /// Routes one record as the webhook path would, and accepts it (or, dry, looks it up).
    async fn settle(
        &self,
        record: &str,
        head: Option<&RecordHead>,
        body_sha256_hex: &str,
    ) -> Result<Settled, ReconcileError> {
        let Some(head) = head else { return Ok(Settled::Unusable) };
        let webhook_type = head.webhook_type(self.api.listing());
        let Ok(key) = dedup_key::derive(webhook_type, record, body_sha256_hex) else {
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
            body_sha256_hex,
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
