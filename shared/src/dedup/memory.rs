//! The in-memory store, for local runs and unit tests. It keeps the DynamoDB store's contract
//! within one process.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{
    Claim, ClaimOutcome, ClaimStatus, DedupStore, StoreError, StoredClaim, WatermarkStore,
};

#[derive(Debug, Default)]
pub struct MemoryStore {
    items: Mutex<HashMap<String, StoredClaim>>,
    watermarks: Mutex<HashMap<String, u64>>,
}

impl MemoryStore {
    pub fn len(&self) -> usize {
        self.items().len()
    }

    pub fn is_empty(&self) -> bool {
        self.items().is_empty()
    }

    fn items(&self) -> std::sync::MutexGuard<'_, HashMap<String, StoredClaim>> {
        // A panic while holding the lock cannot leave a half-written item: every update is a
        // single insert or remove.
        self.items.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl DedupStore for MemoryStore {
    async fn claim(&self, claim: &Claim<'_>) -> Result<ClaimOutcome, StoreError> {
        let mut items = self.items();
        if let Some(existing) = items.get(claim.pk) {
            if existing.is_held_by(claim.owner_token) {
                return Ok(ClaimOutcome::Claimed);
            }
            if !existing.is_claimable_by(claim) {
                return Ok(existing.outcome_for(claim));
            }
        }
        // Expired items are only ever replaced, like DynamoDB before its TTL sweep; a long local
        // run sheds them whenever the map doubles.
        if items.len() >= 1024 && items.len().is_power_of_two() {
            items.retain(|_, item| item.expires_at_s >= claim.now_s());
        }
        items.insert(
            claim.pk.to_owned(),
            StoredClaim {
                status: ClaimStatus::InProgress,
                lease_until_ms: claim.lease_until_ms,
                expires_at_s: claim.expires_at_s,
                body_sha256_hex: claim.body_sha256_hex.to_owned(),
                owner_token: claim.owner_token.to_owned(),
            },
        );
        Ok(ClaimOutcome::Claimed)
    }

    async fn release(&self, pk: &str, owner_token: &str) -> Result<(), StoreError> {
        let mut items = self.items();
        match items.get(pk) {
            None => Ok(()),
            Some(item) if item.is_held_by(owner_token) => {
                items.remove(pk);
                Ok(())
            }
            Some(_) => Err(StoreError::NotOwner),
        }
    }

    async fn lookup(&self, pk: &str) -> Result<Option<StoredClaim>, StoreError> {
        Ok(self.items().get(pk).cloned())
    }

    async fn complete(&self, pk: &str, owner_token: &str) -> Result<(), StoreError> {
        match self.items().get_mut(pk) {
            Some(item) if item.is_held_by(owner_token) => {
                item.status = ClaimStatus::Completed;
                Ok(())
            }
            _ => Err(StoreError::NotOwner),
        }
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
}
