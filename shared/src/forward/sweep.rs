//! The sweep: what makes the stream's faults lose nothing. On a schedule it pages the sparse
//! `pending` index for events accepted longer ago than a setting and forwards them, so a
//! disabled mapping, a record past the stream's 24 h retention or one that used up its retries
//! is still delivered. It first measures the oldest pending event, the alarm's metric.

use sendblue_events::WebhookType;
use tokio::time::Instant;

use super::{Forwarder, Report};
use crate::bus::EventSink;
use crate::dedup::{DedupStore, PendingEntry, StoreError};
use crate::time::now_ms;

/// Keys read from the index per page, and forwarded per call.
pub const PAGE_LIMIT: usize = 100;

/// What one sweep found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// The age of the oldest pending event before the sweep forwarded anything.
    pub oldest_pending_age_ms: Option<u64>,
    pub forward: Report,
    /// The sweep stopped at a failure (the bus or the store) or at its deadline.
    pub stopped_early: bool,
}

impl<S: DedupStore, E: EventSink> Forwarder<S, E> {
    /// Forwards every event pending since before `min_age_ms` ago, oldest first per type,
    /// until done, a failure, or `stop_at`.
    pub async fn sweep(
        &self,
        min_age_ms: u64,
        stop_at: Instant,
    ) -> Result<SweepReport, StoreError> {
        let now_ms = now_ms();
        let mut report = SweepReport {
            oldest_pending_age_ms: self
                .oldest_pending_ms(now_ms)
                .await?
                .map(|ms| now_ms.saturating_sub(ms)),
            ..SweepReport::default()
        };
        // Accepted at or before `now - min_age`.
        let before_ms = (now_ms + 1).saturating_sub(min_age_ms);
        for webhook_type in WebhookType::ALL {
            let mut after: Option<PendingEntry> = None;
            loop {
                if Instant::now() >= stop_at {
                    report.stopped_early = true;
                    return Ok(report);
                }
                let page = self
                    .store
                    .pending_page(webhook_type, before_ms, after.as_ref(), PAGE_LIMIT)
                    .await?;
                let pks: Vec<&str> = page.entries.iter().map(|entry| entry.pk.as_str()).collect();
                let forwarded = self.forward(&pks).await;
                report.forward.absorb(&forwarded);
                if forwarded.failed_at.is_some() {
                    report.stopped_early = true;
                    return Ok(report);
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        Ok(report)
    }

    /// When the oldest pending event of any type was accepted.
    async fn oldest_pending_ms(&self, now_ms: u64) -> Result<Option<u64>, StoreError> {
        let mut oldest = None::<u64>;
        for webhook_type in WebhookType::ALL {
            let page = self.store.pending_page(webhook_type, now_ms + 1, None, 1).await?;
            if let Some(entry) = page.entries.first() {
                oldest = Some(oldest.map_or(entry.received_at_ms, |o| o.min(entry.received_at_ms)));
            }
        }
        Ok(oldest)
    }
}
