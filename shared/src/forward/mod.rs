//! Forwarding: what the `forward` function does with the keys the table's stream or the sweep
//! hands it. It reads them again (a stream record is a snapshot; the sweep may have forwarded
//! its item since), puts the events that are still pending on the bus in their order, in
//! batches, and marks each one that went out.
//!
//! The one window for a second copy on the bus: an event put on the bus whose mark was lost
//! (the function crashed or the write failed in between) stays pending and goes out again.
//! It carries the same `dedup_key`; `MarkFailures` and `MarkRaces` count these windows.
//!
//! The stream and the sweep never both send an event: they split the pending events by age.
//! The sweep takes those pending for at least `SWEEP_MIN_AGE_SECONDS`; the stream only those
//! pending for less than half of it, and leaves older ones to the sweep. A stream forward that
//! read an event young finishes (its timeout is at most that half) before the sweep may read
//! it; after an outage, the backlog goes out through the sweep alone instead of through both at
//! once (which sent half of a 200-event backlog twice: `stream.rs`).

pub mod config;
mod function;
mod metrics;
pub mod stream;
pub mod sweep;

use std::collections::HashSet;
use std::future::Future;

use futures_util::future::join_all;
use sendblue_events::Metadata;

use crate::bus::{EventSink, OutgoingEvent, MAX_BATCH_BYTES, MAX_BATCH_ENTRIES};
use crate::dedup::{DedupStore, Marked, Pending, PendingEvent};
use crate::time::{iso_ms, now_ms};
pub use function::{handle, run};

/// Where accepted events go, and how long their keys are guarded once they went.
#[derive(Debug)]
pub struct Forwarder<S, E> {
    pub store: S,
    pub sink: E,
    pub event_source: String,
    pub dedup_ttl_seconds: u64,
}

/// What one `forward` call did with its keys.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Put on the bus now.
    pub forwarded: usize,
    /// Forwarded before, no item, or a key seen earlier in the same call: nothing to do.
    pub settled: usize,
    /// Pending items that cannot be forwarded as they are (altered or written by hand, or too
    /// large for the bus): logged and left where they are, never forwarded half-made.
    pub malformed: usize,
    /// Put on the bus, but the mark failed: the item stays pending and will go out again.
    pub mark_failures: usize,
    /// Put on the bus, but another forward had marked it first: it went out twice.
    pub mark_races: usize,
    /// Pending, but too old for the stream: left to the sweep (see the module's doc).
    pub left_to_sweep: usize,
    /// The age of the oldest event forwarded now, from its acceptance (milliseconds).
    pub max_latency_ms: u64,
    /// The index (in the keys given) of the first key not settled, if any: the bus or the
    /// store failed there, and that key and all after it must be tried again.
    pub failed_at: Option<usize>,
}

impl Report {
    /// Adds up two calls' reports; `failed_at` is the first call's, if either failed.
    pub fn absorb(&mut self, other: &Report) {
        self.forwarded += other.forwarded;
        self.settled += other.settled;
        self.malformed += other.malformed;
        self.mark_failures += other.mark_failures;
        self.mark_races += other.mark_races;
        self.left_to_sweep += other.left_to_sweep;
        self.max_latency_ms = self.max_latency_ms.max(other.max_latency_ms);
        self.failed_at = self.failed_at.or(other.failed_at);
    }
}

/// One event of a batch about to go out: its index in the keys, its item, and its `Detail`.
struct Outgoing {
    index: usize,
    event: PendingEvent,
    detail: String,
}

impl<S: DedupStore, E: EventSink> Forwarder<S, E> {
    /// Forwards, in order, those of `pks` that are still pending, and marks each one forwarded.
    /// Stops at the first failure: `Report::failed_at` says where to start again.
    ///
    /// (These two are plain functions returning the one future, not `async` layers around it:
    /// the forward binary's future nests close to the compiler's limit; see its `main.rs`.)
    pub fn forward<'a>(&'a self, pks: &'a [&'a str]) -> impl Future<Output = Report> + 'a {
        self.forward_pending_for_less_than(pks, None)
    }

    /// `forward` for the table's stream: only events pending for less than half of
    /// `sweep_min_age_ms`; older ones are the sweep's (`Report::left_to_sweep`).
    pub fn forward_from_stream<'a>(
        &'a self,
        pks: &'a [&'a str],
        sweep_min_age_ms: u64,
    ) -> impl Future<Output = Report> + 'a {
        self.forward_pending_for_less_than(pks, Some(sweep_min_age_ms / 2))
    }

    async fn forward_pending_for_less_than(&self, pks: &[&str], max_age_ms: Option<u64>) -> Report {
        let mut report = Report::default();
        let reads = match self.store.pending(pks).await {
            Ok(reads) => reads,
            Err(error) => {
                tracing::error!(%error, "reading the pending events failed");
                report.failed_at = (!pks.is_empty()).then_some(0);
                return report;
            }
        };
        // Accepted at or before this, an event is pending for `max_age_ms` or more as read.
        let left_to_sweep_up_to_ms =
            max_age_ms.and_then(|max_age_ms| now_ms().checked_sub(max_age_ms));
        let mut seen = HashSet::new();
        let (mut batch, mut batch_bytes) = (Vec::<Outgoing>::new(), 0);
        for (index, read) in reads.into_iter().enumerate() {
            let event = match read {
                _ if !seen.insert(pks[index]) => {
                    report.settled += 1;
                    continue;
                }
                Pending::Settled => {
                    report.settled += 1;
                    continue;
                }
                Pending::Malformed(reason) => {
                    tracing::error!(pk = pks[index], %reason, "malformed pending item: skipped");
                    report.malformed += 1;
                    continue;
                }
                Pending::Event(event) => event,
            };
            if left_to_sweep_up_to_ms.is_some_and(|up_to_ms| event.received_at_ms <= up_to_ms) {
                report.left_to_sweep += 1;
                continue;
            }
            let detail = detail(&event);
            let size_bytes = self.outgoing(&event, &detail).size_bytes();
            if size_bytes > MAX_BATCH_BYTES {
                tracing::error!(
                    pk = pks[index],
                    size_bytes,
                    "pending event too large for the bus: skipped"
                );
                report.malformed += 1;
                continue;
            }
            if batch.len() == MAX_BATCH_ENTRIES || batch_bytes + size_bytes > MAX_BATCH_BYTES {
                self.put(std::mem::take(&mut batch), &mut report).await;
                batch_bytes = 0;
                if report.failed_at.is_some() {
                    return report;
                }
            }
            batch.push(Outgoing { index, event, detail });
            batch_bytes += size_bytes;
        }
        if !batch.is_empty() {
            self.put(batch, &mut report).await;
        }
        report
    }

    fn outgoing<'a>(&'a self, event: &'a PendingEvent, detail: &'a str) -> OutgoingEvent<'a> {
        OutgoingEvent {
            source: &self.event_source,
            detail_type: event.webhook_type.sendblue_name(),
            detail,
        }
    }

    /// One `PutEvents`, then a mark for each entry the bus took.
    async fn put(&self, batch: Vec<Outgoing>, report: &mut Report) {
        let entries: Vec<_> = batch.iter().map(|o| self.outgoing(&o.event, &o.detail)).collect();
        let results = match self.sink.put_batch(&entries).await {
            Ok(results) => results,
            Err(error) => {
                tracing::error!(%error, events = batch.len(), "the bus refused the batch");
                report.failed_at = Some(batch[0].index);
                return;
            }
        };
        let now_ms = now_ms();
        let expires_at_s = now_ms / 1000 + self.dedup_ttl_seconds;
        let mut went_out = Vec::with_capacity(batch.len());
        for (outgoing, result) in batch.iter().zip(results) {
            if let Err(error) = result {
                tracing::error!(pk = outgoing.event.pk, %error, "the bus refused the event");
                report.failed_at.get_or_insert(outgoing.index);
                continue;
            }
            report.forwarded += 1;
            let latency_ms = now_ms.saturating_sub(outgoing.event.received_at_ms);
            report.max_latency_ms = report.max_latency_ms.max(latency_ms);
            went_out.push(&outgoing.event);
        }
        // The marks are independent writes to different keys: made at once, a batch waits for
        // about one round trip of marking instead of ten (BENCHMARKS.md, "forward").
        let marks =
            join_all(went_out.iter().map(|event| self.store.mark_forwarded(event, expires_at_s)));
        for (event, mark) in went_out.iter().zip(marks.await) {
            match mark {
                Ok(Marked::Now) => {}
                Ok(Marked::Already) => {
                    tracing::warn!(
                        pk = event.pk,
                        "forwarded, but marked by another forward first: a second copy"
                    );
                    report.mark_races += 1;
                }
                Err(error) => {
                    tracing::error!(pk = event.pk, %error, "forwarded, but the mark failed: it will go out again");
                    report.mark_failures += 1;
                }
            }
        }
    }
}

/// The forwarded `Detail`, made from the item as the receiver would have made it at the door.
fn detail(event: &PendingEvent) -> String {
    let received_at = iso_ms(event.received_at_ms);
    let metadata = Metadata {
        webhook_type: event.webhook_type,
        dedup_key: event.dedup_key.as_str(),
        received_at: &received_at,
        request_id: &event.request_id,
        origin: event.origin,
    };
    crate::envelope::detail(&metadata, &event.body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::JsonLinesSink;
    use crate::dedup::{MemoryStore, NewEvent};
    use crate::dedup_key::DedupKey;
    use sendblue_events::{Origin, WebhookType};

    fn forwarder() -> Forwarder<MemoryStore, JsonLinesSink<Vec<u8>>> {
        Forwarder {
            store: MemoryStore::default(),
            sink: JsonLinesSink::new(Vec::new()),
            event_source: "sendblue".into(),
            dedup_ttl_seconds: 60,
        }
    }

    /// Accepts a receive event with this handle, as received `age_ms` ago; its key.
    async fn accept(
        forwarder: &Forwarder<MemoryStore, JsonLinesSink<Vec<u8>>>,
        handle: &str,
        age_ms: u64,
    ) -> String {
        let body = format!(r#"{{"message_handle":"{handle}"}}"#);
        let key: DedupKey = crate::dedup_key::derive(WebhookType::Receive, &body, "sha").unwrap();
        let event = NewEvent {
            webhook_type: WebhookType::Receive,
            key: &key,
            body: &body,
            body_sha256_hex: "sha",
            received_at_ms: now_ms() - age_ms,
            request_id: "r-1",
            origin: Origin::Webhook,
            write_id: handle,
        };
        forwarder.store.accept(&event).await.unwrap();
        event.pk()
    }

    fn lines_out(forwarder: &Forwarder<MemoryStore, JsonLinesSink<Vec<u8>>>) -> usize {
        forwarder.sink.inspect(|out| out.iter().filter(|b| **b == b'\n').count())
    }

    #[tokio::test]
    async fn a_key_named_twice_in_one_call_goes_out_once() {
        let forwarder = forwarder();
        let pk = accept(&forwarder, "twice", 0).await;
        let report = forwarder.forward(&[&pk, "receive#no-such-item", &pk]).await;
        assert_eq!((report.forwarded, report.settled, report.failed_at), (1, 2, None));
        assert_eq!(lines_out(&forwarder), 1, "one event on the bus");
    }

    #[tokio::test]
    async fn the_stream_leaves_events_past_half_the_sweeps_age_to_the_sweep() {
        let forwarder = forwarder();
        let sweep_min_age_ms = 300_000;
        let old = accept(&forwarder, "old", sweep_min_age_ms / 2).await;
        let young = accept(&forwarder, "young", sweep_min_age_ms / 2 - 5_000).await;
        let report = forwarder.forward_from_stream(&[&old, &young], sweep_min_age_ms).await;
        assert_eq!((report.forwarded, report.left_to_sweep, report.failed_at), (1, 1, None));
        assert_eq!(lines_out(&forwarder), 1);
        assert_eq!(
            forwarder.forward(&[&old, &young]).await.forwarded,
            1,
            "the sweep's: the old one"
        );
        assert_eq!(lines_out(&forwarder), 2);
    }
}
