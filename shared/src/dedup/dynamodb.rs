//! The DynamoDB store: every transition is one conditional write.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;

use super::{
    watermark_pk, Claim, ClaimOutcome, ClaimStatus, DedupStore, StoreError, StoredClaim,
    WatermarkStore,
};

/// Attribute names. `expires_at` is the table's TTL attribute (epoch seconds); the template
/// and `scripts/` create the table with `pk` (S) as partition key.
pub const PK: &str = "pk";
pub const STATUS: &str = "status";
pub const LEASE_UNTIL_MS: &str = "lease_until_ms";
pub const EXPIRES_AT: &str = "expires_at";
pub const BODY_SHA256: &str = "body_sha256";
pub const OWNER_TOKEN: &str = "owner_token";
/// The watermark item's one attribute (epoch milliseconds); see `WatermarkStore`.
pub const WATERMARK_MS: &str = "watermark_ms";

/// The claim condition; `StoredClaim::is_claimable_by` is the same rule in Rust. Every
/// attribute is an alias (`#pk` ...) bound to the constants above by `with_names`, so each name
/// is written once.
const CLAIMABLE: &str = "attribute_not_exists(#pk) OR #expires_at < :now_s \
     OR (#status = :in_progress AND #lease_until_ms < :now_ms)";
const OWNED: &str = "#owner_token = :owner_token";
const COMPLETE: &str = "SET #status = :completed";

/// The alias of each attribute in the expressions above.
const ALIASES: [(&str, &str); 6] = [
    ("#pk", PK),
    ("#status", STATUS),
    ("#lease_until_ms", LEASE_UNTIL_MS),
    ("#expires_at", EXPIRES_AT),
    ("#owner_token", OWNER_TOKEN),
    ("#watermark_ms", WATERMARK_MS),
];

const ADVANCE: &str = "SET #watermark_ms = :to_ms";
const BEHIND: &str = "attribute_not_exists(#pk) OR #watermark_ms < :to_ms";

/// The aliases `expressions` use, for `expression_attribute_names` (DynamoDB refuses unused ones).
fn aliases_in(expressions: &[&str]) -> Option<HashMap<String, String>> {
    Some(
        ALIASES
            .iter()
            .filter(|(alias, _)| expressions.iter().any(|e| e.contains(alias)))
            .map(|(alias, name)| ((*alias).to_owned(), (*name).to_owned()))
            .collect(),
    )
}

/// A lost claim race normally returns the winner's item; if it vanished before we could read
/// it (released by its owner), the claim is simply tried again, this many times in all.
const CLAIM_ATTEMPTS: usize = 3;

/// What one conditional put found.
enum PutOutcome {
    /// The claim was written.
    Written,
    /// The condition failed on this item.
    Stood(StoredClaim),
    /// The condition failed, but the item was gone when read: a release raced us.
    Vanished,
}

#[derive(Debug, Clone)]
pub struct DynamoDbStore {
    client: Client,
    table_name: String,
}

impl DynamoDbStore {
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Self { client, table_name: table_name.into() }
    }

    /// One conditional put, and what stood in its way.
    async fn try_claim(&self, claim: &Claim<'_>) -> Result<PutOutcome, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table_name)
            .item(PK, s(claim.pk))
            .item(STATUS, s(ClaimStatus::InProgress.as_str()))
            .item(LEASE_UNTIL_MS, n(claim.lease_until_ms))
            .item(EXPIRES_AT, n(claim.expires_at_s))
            .item(BODY_SHA256, s(claim.body_sha256_hex))
            .item(OWNER_TOKEN, s(claim.owner_token))
            .condition_expression(CLAIMABLE)
            .set_expression_attribute_names(aliases_in(&[CLAIMABLE]))
            .expression_attribute_values(":now_s", n(claim.now_s()))
            .expression_attribute_values(":now_ms", n(claim.now_ms))
            .expression_attribute_values(":in_progress", s(ClaimStatus::InProgress.as_str()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(PutOutcome::Written),
            Err(SdkError::ServiceError(err)) => match err.into_err() {
                PutItemError::ConditionalCheckFailedException(failed) => match failed.item {
                    Some(item) => parse_item(&item).map(PutOutcome::Stood),
                    None => Ok(self
                        .lookup(claim.pk)
                        .await?
                        .map_or(PutOutcome::Vanished, PutOutcome::Stood)),
                },
                other => Err(unavailable(other)),
            },
            Err(other) => Err(unavailable(other)),
        }
    }
}

impl DedupStore for DynamoDbStore {
    async fn claim(&self, claim: &Claim<'_>) -> Result<ClaimOutcome, StoreError> {
        for _ in 0..CLAIM_ATTEMPTS {
            match self.try_claim(claim).await? {
                PutOutcome::Written => return Ok(ClaimOutcome::Claimed),
                // Our own write: it was applied, its answer was lost, and the SDK's retry of
                // it failed the condition on it.
                PutOutcome::Stood(existing) if existing.is_held_by(claim.owner_token) => {
                    return Ok(ClaimOutcome::Claimed)
                }
                PutOutcome::Stood(existing) if !existing.is_claimable_by(claim) => {
                    return Ok(existing.outcome_for(claim))
                }
                // Claimable now but not when the write was judged (our clock is ahead), or
                // released between the write and the read: try the write again.
                PutOutcome::Stood(_) | PutOutcome::Vanished => {}
            }
        }
        Err(StoreError::Unavailable(format!(
            "claim of {} kept racing after {CLAIM_ATTEMPTS} attempts",
            claim.pk
        )))
    }

    async fn release(&self, pk: &str, owner_token: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table_name)
            .key(PK, s(pk))
            .condition_expression(OWNED)
            .set_expression_attribute_names(aliases_in(&[OWNED]))
            .expression_attribute_values(":owner_token", s(owner_token))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(err)) => match err.into_err() {
                // No item at all: our delete was applied on an attempt whose answer was lost
                // (the SDK retried it), or the key is free anyway. Either way nothing of ours
                // stands in a retry's way.
                DeleteItemError::ConditionalCheckFailedException(failed) => match failed.item {
                    None => Ok(()),
                    Some(_) => Err(StoreError::NotOwner),
                },
                other => Err(unavailable(other)),
            },
            Err(other) => Err(unavailable(other)),
        }
    }

    /// A strongly consistent read of one item.
    async fn lookup(&self, pk: &str) -> Result<Option<StoredClaim>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .key(PK, s(pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        output.item.as_ref().map(parse_item).transpose()
    }

    /// Idempotent: a retry of an applied completion meets our own token and succeeds again.
    async fn complete(&self, pk: &str, owner_token: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table_name)
            .key(PK, s(pk))
            .update_expression(COMPLETE)
            .condition_expression(OWNED)
            .set_expression_attribute_names(aliases_in(&[COMPLETE, OWNED]))
            .expression_attribute_values(":completed", s(ClaimStatus::Completed.as_str()))
            .expression_attribute_values(":owner_token", s(owner_token))
            .send()
            .await
            .map(drop)
            .map_err(owned_write_error)
    }
}

impl WatermarkStore for DynamoDbStore {
    async fn watermark(&self, name: &str) -> Result<Option<u64>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .key(PK, s(&watermark_pk(name)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        match output.item.as_ref().and_then(|item| item.get(WATERMARK_MS)) {
            None => Ok(None),
            Some(AttributeValue::N(ms)) => ms
                .parse()
                .map(Some)
                .map_err(|_| StoreError::Malformed(format!("{WATERMARK_MS} is not a u64"))),
            Some(_) => Err(StoreError::Malformed(format!("{WATERMARK_MS} is not a number"))),
        }
    }

    async fn advance_watermark(&self, name: &str, to_ms: u64) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table_name)
            .key(PK, s(&watermark_pk(name)))
            .update_expression(ADVANCE)
            .condition_expression(BEHIND)
            .set_expression_attribute_names(aliases_in(&[ADVANCE, BEHIND]))
            .expression_attribute_values(":to_ms", n(to_ms))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Already at or past `to_ms`: another run got further.
            Err(err) if err.code() == Some("ConditionalCheckFailedException") => Ok(()),
            Err(err) => Err(unavailable(err)),
        }
    }
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Release and complete fail their condition only when the claim is no longer ours.
fn owned_write_error<E>(err: E) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error,
{
    if err.code() == Some("ConditionalCheckFailedException") {
        StoreError::NotOwner
    } else {
        unavailable(err)
    }
}

fn unavailable(err: impl std::error::Error) -> StoreError {
    StoreError::Unavailable(DisplayErrorContext(err).to_string())
}

/// Reads an item back into a `StoredClaim`.
pub fn parse_item(item: &HashMap<String, AttributeValue>) -> Result<StoredClaim, StoreError> {
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(StoreError::Malformed(format!("{name} is not a string"))),
    };
    let number = |name: &str| match item.get(name) {
        Some(AttributeValue::N(v)) => {
            v.parse::<u64>().map_err(|_| StoreError::Malformed(format!("{name} is not a u64")))
        }
        _ => Err(StoreError::Malformed(format!("{name} is not a number"))),
    };
    let status = text(STATUS)?;
    Ok(StoredClaim {
        status: ClaimStatus::parse(&status)
            .ok_or_else(|| StoreError::Malformed(format!("unknown status {status}")))?,
        lease_until_ms: number(LEASE_UNTIL_MS)?,
        expires_at_s: number(EXPIRES_AT)?,
        body_sha256_hex: text(BODY_SHA256)?,
        owner_token: text(OWNER_TOKEN)?,
    })
}
