//! The in-memory store, for local runs and unit tests. It keeps the DynamoDB store's contract
//! within one process.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use sendblue_events::WebhookType;

use super::{
    AcceptOutcome, DedupStore, EventStatus, Marked, NewEvent, Pending, PendingEntry, PendingEvent,
    PendingPage, StoreError, StoredEvent, WatermarkStore,
};

/// One item: what every item has, and the whole event while it is pending.
#[derive(Debug, Clone)]
struct Item {
    stored: StoredEvent,
    pending: Option<PendingEvent>,
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    items: Mutex<HashMap<String, Item>>,
    watermarks: Mutex<HashMap<String, u64>>,
    /// Per walk: the record it last failed on, and in how many runs in a row.
    failures: Mutex<HashMap<String, (String, u32)>>,
    /// Per lease: its holder and until when.
    leases: Mutex<HashMap<String, (String, u64)>>,
}

impl MemoryStore {
    pub fn len(&self) -> usize {
        self.items().len()
    }

    pub fn is_empty(&self) -> bool {
        self.items().is_empty()
    }

    fn items(&self) -> MutexGuard<'_, HashMap<String, Item>> {
        // A panic while holding the lock cannot leave a half-written item: every update is a
        // single insert or assignment.
        self.items.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl DedupStore for MemoryStore {
    async fn accept(&self, event: &NewEvent<'_>) -> Result<AcceptOutcome, StoreError> {
        let pk = event.pk();
        let mut items = self.items();
        if let Some(existing) = items.get(&pk) {
            if !existing.stored.is_replaceable_at(event.now_s()) {
                return Ok(existing.stored.outcome_for(event));
            }
        }
        // Expired items are only ever replaced, like DynamoDB before its TTL sweep; a long local
        // run sheds them whenever the map doubles.
        if items.len() >= 1024 && items.len().is_power_of_two() {
            items.retain(|_, item| !item.stored.is_replaceable_at(event.now_s()));
        }
        let pending = PendingEvent {
            pk: pk.clone(),
            write_id: event.write_id.to_owned(),
            webhook_type: event.webhook_type,
            dedup_key: event.key.as_str().to_owned(),
            body: event.body.to_owned(),
            received_at_ms: event.received_at_ms,
            request_id: event.request_id.to_owned(),
            origin: event.origin,
        };
        let stored = StoredEvent {
            status: EventStatus::Pending,
            body_sha256_hex: event.body_sha256_hex.to_owned(),
            write_id: event.write_id.to_owned(),
            expires_at_s: None,
        };
        items.insert(pk, Item { stored, pending: Some(pending) });
        Ok(AcceptOutcome::Accepted)
    }

    async fn lookup(&self, pk: &str) -> Result<Option<StoredEvent>, StoreError> {
        Ok(self.items().get(pk).map(|item| item.stored.clone()))
    }

    async fn pending(&self, pks: &[&str]) -> Result<Vec<Pending>, StoreError> {
        let items = self.items();
        Ok(pks
            .iter()
            .map(|pk| match items.get(*pk).and_then(|item| item.pending.clone()) {
                Some(event) => Pending::Event(event),
                None => Pending::Settled,
            })
            .collect())
    }

    async fn mark_forwarded(
        &self,
        event: &PendingEvent,
        expires_at_s: u64,
    ) -> Result<Marked, StoreError> {
        let mut items = self.items();
        match items.get_mut(&event.pk) {
            Some(item) if item.pending.as_ref().is_some_and(|p| p.write_id == event.write_id) => {
                item.pending = None;
                item.stored.status = EventStatus::Forwarded;
                item.stored.expires_at_s = Some(expires_at_s);
                Ok(Marked::Now)
            }
            _ => Ok(Marked::Already),
        }
    }

    async fn pending_page(
        &self,
        webhook_type: WebhookType,
        before_ms: u64,
        after: Option<&PendingEntry>,
        limit: usize,
    ) -> Result<PendingPage, StoreError> {
        let position = |entry: &PendingEntry| (entry.received_at_ms, entry.pk.clone());
        let start = after.map(position);
        let mut entries: Vec<PendingEntry> = self
            .items()
            .values()
            .filter_map(|item| item.pending.as_ref())
            .filter(|p| p.webhook_type == webhook_type && p.received_at_ms < before_ms)
            .map(|p| PendingEntry { pk: p.pk.clone(), received_at_ms: p.received_at_ms })
            .filter(|entry| start.as_ref().is_none_or(|start| position(entry) > *start))
            .collect();
        entries.sort_by_key(position);
        let limit = limit.max(1);
        let next = (entries.len() > limit).then(|| entries[limit - 1].clone());
        entries.truncate(limit);
        Ok(PendingPage { entries, next })
    }
}

impl WatermarkStore for MemoryStore {
    async fn watermark(&self, name: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.watermarks.lock().unwrap_or_else(|p| p.into_inner()).get(name).copied())
    }

    async fn advance_watermark(&self, name: &str, to_ms: u64) -> Result<(), StoreError> {
        let mut watermarks = self.watermarks.lock().unwrap_or_else(|p| p.into_inner());
        let watermark = watermarks.entry(name.to_owned()).or_insert(to_ms);
        *watermark = (*watermark).max(to_ms);
        Ok(())
    }

    async fn note_failure(&self, name: &str, record_id: &str) -> Result<u32, StoreError> {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let failure = failures.entry(name.to_owned()).or_default();
        if failure.0 != record_id {
            *failure = (record_id.to_owned(), 0);
        }
        failure.1 += 1;
        Ok(failure.1)
    }

    async fn try_lease(
        &self,
        name: &str,
        owner: &str,
        until_ms: u64,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        match leases.get(name) {
            Some((holder, held_until_ms)) if holder != owner && *held_until_ms >= now_ms => {
                Ok(false)
            }
            _ => {
                leases.insert(name.to_owned(), (owner.to_owned(), until_ms));
                Ok(true)
            }
        }
    }

    async fn release_lease(&self, name: &str, owner: &str) -> Result<(), StoreError> {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        if leases.get(name).is_some_and(|(holder, _)| holder == owner) {
            leases.remove(name);
        }
        Ok(())
    }
}
