//! The DynamoDB store: the accept is one conditional `PutItem`, the mark one conditional
//! `UpdateItem`; the forwarder reads with one consistent `BatchGetItem` and pages the sparse
//! `pending` index.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, ReturnValue, ReturnValuesOnConditionCheckFailure,
};
use aws_sdk_dynamodb::Client;
use sendblue_events::{Origin, WebhookType};

use super::{
    lease_pk, watermark_pk, AcceptOutcome, DedupStore, EventStatus, Marked, NewEvent, Pending,
    PendingEntry, PendingEvent, PendingPage, StoreError, StoredEvent, WatermarkStore,
};

/// Attribute names. `pk` (S) is the table's partition key and `expires_at` (epoch seconds) its
/// TTL attribute; `pending_type` (S) and `received_at_ms` (N) are the keys of the sparse index
/// `pending`, which holds an item only while it carries `pending_type`: while it is pending.
/// template.yaml declares them; the tests create their tables from it.
pub const PK: &str = "pk";
pub const STATUS: &str = "status";
pub const WRITE_ID: &str = "write_id";
pub const BODY_SHA256: &str = "body_sha256";
pub const WEBHOOK_TYPE: &str = "webhook_type";
pub const DEDUP_KEY: &str = "dedup_key";
pub const BODY: &str = "body";
pub const RECEIVED_AT_MS: &str = "received_at_ms";
pub const REQUEST_ID: &str = "request_id";
pub const ORIGIN: &str = "origin";
pub const PENDING_TYPE: &str = "pending_type";
pub const EXPIRES_AT: &str = "expires_at";
/// Unique to the mark that made an item `FORWARDED`: the SDK's retry of a mark that was applied
/// (its answer lost) meets its own id and knows it was no race.
pub const MARKED_BY: &str = "marked_by";
/// The watermark item's attributes (see `WatermarkStore`): the watermark (epoch
/// milliseconds), and the record the walk last failed on with the runs in a row it failed.
pub const WATERMARK_MS: &str = "watermark_ms";
pub const FAILED_RECORD: &str = "failed_record";
pub const FAILED_RUNS: &str = "failed_runs";
/// A lease item's attributes.
pub const LEASE_OWNER: &str = "lease_owner";
pub const LEASE_UNTIL_MS: &str = "lease_until_ms";
/// The sparse index of pending items, by webhook type, oldest first.
pub const PENDING_INDEX: &str = "pending";

/// The accept's condition; `StoredEvent::is_replaceable_at` is the same rule in Rust. A pending
/// item has no `expires_at`, so the comparison is false for it. Every attribute is an alias
/// (`#pk` ...) bound to the constants above by `aliases_in`, so each name is written once.
const REPLACEABLE: &str = "attribute_not_exists(#pk) OR #expires_at < :now_s";
const MARK: &str = "SET #status = :forwarded, #expires_at = :expires_at_s, #marked_by = :mark_id \
     REMOVE #body, #pending_type";
const STILL_PENDING: &str = "#status = :pending AND #write_id = :write_id";
const PENDING_BEFORE: &str = "#pending_type = :webhook_type AND #received_at_ms < :before_ms";
const ADVANCE: &str = "SET #watermark_ms = :to_ms";
const BEHIND: &str = "attribute_not_exists(#watermark_ms) OR #watermark_ms < :to_ms";
const FAILED_AGAIN: &str = "SET #failed_runs = #failed_runs + :one";
const SAME_RECORD: &str = "#failed_record = :record";
const FAILED_FIRST: &str = "SET #failed_record = :record, #failed_runs = :one";
const LEASE_FREE: &str =
    "attribute_not_exists(#pk) OR #lease_until_ms < :now_ms OR #lease_owner = :owner";
const LEASE_HELD_BY: &str = "#lease_owner = :owner";

/// The alias of each attribute in the expressions above.
const ALIASES: [(&str, &str); 13] = [
    ("#pk", PK),
    ("#status", STATUS),
    ("#write_id", WRITE_ID),
    ("#body", BODY),
    ("#received_at_ms", RECEIVED_AT_MS),
    ("#pending_type", PENDING_TYPE),
    ("#expires_at", EXPIRES_AT),
    ("#marked_by", MARKED_BY),
    ("#watermark_ms", WATERMARK_MS),
    ("#failed_record", FAILED_RECORD),
    ("#failed_runs", FAILED_RUNS),
    ("#lease_owner", LEASE_OWNER),
    ("#lease_until_ms", LEASE_UNTIL_MS),
];

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

/// An accept whose condition failed on an item that was gone when read (TTL deleted an expired
/// one in between) is tried again, this many times in all.
const ACCEPT_ATTEMPTS: usize = 3;

/// `BatchGetItem` takes at most this many keys, and may hand some back unprocessed under
/// throttling; those are asked for again this many times, a little later each time.
const BATCH_GET_KEYS: usize = 100;
const BATCH_GET_ATTEMPTS: u32 = 5;

#[derive(Debug, Clone)]
pub struct DynamoDbStore {
    client: Client,
    table_name: String,
}

impl DynamoDbStore {
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Self { client, table_name: table_name.into() }
    }

    /// One conditional put; on a failed condition, the item that stood in its way, if any.
    async fn try_accept(
        &self,
        event: &NewEvent<'_>,
        pk: &str,
    ) -> Result<Option<Option<StoredEvent>>, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table_name)
            .item(PK, s(pk))
            .item(STATUS, s(EventStatus::Pending.as_str()))
            .item(WRITE_ID, s(event.write_id))
            .item(BODY_SHA256, s(event.body_sha256_hex))
            .item(WEBHOOK_TYPE, s(event.webhook_type.sendblue_name()))
            .item(DEDUP_KEY, s(event.key.as_str()))
            .item(BODY, s(event.body))
            .item(RECEIVED_AT_MS, n(event.received_at_ms))
            .item(REQUEST_ID, s(event.request_id))
            .item(ORIGIN, s(event.origin.as_str()))
            .item(PENDING_TYPE, s(event.webhook_type.sendblue_name()))
            .condition_expression(REPLACEABLE)
            .set_expression_attribute_names(aliases_in(&[REPLACEABLE]))
            .expression_attribute_values(":now_s", n(event.now_s()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(SdkError::ServiceError(err)) => match err.into_err() {
                PutItemError::ConditionalCheckFailedException(failed) => match failed.item {
                    Some(item) => parse_stored(&item).map(|stored| Some(Some(stored))),
                    None => self.lookup(pk).await.map(Some),
                },
                other if other.code() == Some("ValidationException") => {
                    Err(StoreError::Refused(DisplayErrorContext(other).to_string()))
                }
                other => Err(unavailable(other)),
            },
            Err(other) => Err(unavailable(other)),
        }
    }

    /// One consistent `BatchGetItem` of up to `BATCH_GET_KEYS` keys, unprocessed keys retried.
    async fn batch_get(
        &self,
        pks: &[&str],
    ) -> Result<HashMap<String, HashMap<String, AttributeValue>>, StoreError> {
        let mut found = HashMap::new();
        let mut keys: Vec<HashMap<String, AttributeValue>> =
            pks.iter().map(|pk| HashMap::from([(PK.to_owned(), s(pk))])).collect();
        for attempt in 0..BATCH_GET_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(unavailable)?;
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table_name, request)
                .send()
                .await
                .map_err(unavailable)?;
            for item in
                output.responses.and_then(|mut r| r.remove(&self.table_name)).into_iter().flatten()
            {
                if let Some(AttributeValue::S(pk)) = item.get(PK) {
                    found.insert(pk.clone(), item);
                }
            }
            match output.unprocessed_keys.and_then(|mut u| u.remove(&self.table_name)) {
                Some(left) if !left.keys.is_empty() => keys = left.keys,
                _ => return Ok(found),
            }
        }
        Err(StoreError::Unavailable(format!(
            "BatchGetItem left keys unprocessed after {BATCH_GET_ATTEMPTS} attempts"
        )))
    }
}

impl DedupStore for DynamoDbStore {
    async fn accept(&self, event: &NewEvent<'_>) -> Result<AcceptOutcome, StoreError> {
        let pk = event.pk();
        for _ in 0..ACCEPT_ATTEMPTS {
            match self.try_accept(event, &pk).await? {
                None => return Ok(AcceptOutcome::Accepted),
                Some(Some(existing)) if !existing.is_replaceable_at(event.now_s()) => {
                    return Ok(existing.outcome_for(event))
                }
                // Replaceable now but not when the write was judged (our clock is ahead), or
                // deleted between the write and the read: try the write again.
                Some(_) => {}
            }
        }
        Err(StoreError::Unavailable(format!(
            "accept of {pk} kept racing after {ACCEPT_ATTEMPTS} attempts"
        )))
    }

    /// A strongly consistent read of one item.
    async fn lookup(&self, pk: &str) -> Result<Option<StoredEvent>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .key(PK, s(pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        output.item.as_ref().map(parse_stored).transpose()
    }

    async fn pending(&self, pks: &[&str]) -> Result<Vec<Pending>, StoreError> {
        let mut found = HashMap::new();
        for chunk in pks.chunks(BATCH_GET_KEYS) {
            let mut unique = chunk.to_vec();
            unique.sort_unstable();
            unique.dedup();
            found.extend(self.batch_get(&unique).await?);
        }
        Ok(pks.iter().map(|pk| found.get(*pk).map_or(Pending::Settled, parse_pending)).collect())
    }

    async fn mark_forwarded(
        &self,
        event: &PendingEvent,
        expires_at_s: u64,
    ) -> Result<Marked, StoreError> {
        let mark_id = uuid::Uuid::new_v4().simple().to_string();
        let result = self
            .client
            .update_item()
            .table_name(&self.table_name)
            .key(PK, s(&event.pk))
            .update_expression(MARK)
            .condition_expression(STILL_PENDING)
            .set_expression_attribute_names(aliases_in(&[MARK, STILL_PENDING]))
            .expression_attribute_values(":forwarded", s(EventStatus::Forwarded.as_str()))
            .expression_attribute_values(":pending", s(EventStatus::Pending.as_str()))
            .expression_attribute_values(":expires_at_s", n(expires_at_s))
            .expression_attribute_values(":mark_id", s(&mark_id))
            .expression_attribute_values(":write_id", s(&event.write_id))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Marked::Now),
            Err(SdkError::ServiceError(err)) => match err.into_err() {
                UpdateItemError::ConditionalCheckFailedException(failed) => {
                    let ours = failed.item.as_ref().and_then(|item| item.get(MARKED_BY))
                        == Some(&s(&mark_id));
                    Ok(if ours { Marked::Now } else { Marked::Already })
                }
                other => Err(unavailable(other)),
            },
            Err(other) => Err(unavailable(other)),
        }
    }

    async fn pending_page(
        &self,
        webhook_type: WebhookType,
        before_ms: u64,
        after: Option<&PendingEntry>,
        limit: usize,
    ) -> Result<PendingPage, StoreError> {
        let start = after.map(|entry| {
            HashMap::from([
                (PK.to_owned(), s(&entry.pk)),
                (PENDING_TYPE.to_owned(), s(webhook_type.sendblue_name())),
                (RECEIVED_AT_MS.to_owned(), n(entry.received_at_ms)),
            ])
        });
        let output = self
            .client
            .query()
            .table_name(&self.table_name)
            .index_name(PENDING_INDEX)
            .key_condition_expression(PENDING_BEFORE)
            .set_expression_attribute_names(aliases_in(&[PENDING_BEFORE]))
            .expression_attribute_values(":webhook_type", s(webhook_type.sendblue_name()))
            .expression_attribute_values(":before_ms", n(before_ms))
            .scan_index_forward(true)
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(unavailable)?;
        let entry = |item: &HashMap<String, AttributeValue>| {
            Ok(PendingEntry { pk: text(item, PK)?, received_at_ms: number(item, RECEIVED_AT_MS)? })
        };
        Ok(PendingPage {
            entries: output.items().iter().map(entry).collect::<Result<_, StoreError>>()?,
            next: output.last_evaluated_key.as_ref().map(entry).transpose()?,
        })
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
        output
            .item
            .as_ref()
            .filter(|item| item.contains_key(WATERMARK_MS))
            .map(|item| number(item, WATERMARK_MS))
            .transpose()
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
        // A failed condition: already at or past `to_ms`, another run got further.
        unless_condition_failed(result).map(drop)
    }

    async fn note_failure(&self, name: &str, record_id: &str) -> Result<u32, StoreError> {
        let again = self
            .client
            .update_item()
            .table_name(&self.table_name)
            .key(PK, s(&watermark_pk(name)))
            .update_expression(FAILED_AGAIN)
            .condition_expression(SAME_RECORD)
            .set_expression_attribute_names(aliases_in(&[FAILED_AGAIN, SAME_RECORD]))
            .expression_attribute_values(":record", s(record_id))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        if let Some(output) = unless_condition_failed(again)? {
            let runs = output.attributes.as_ref().map(|item| number(item, FAILED_RUNS));
            return runs.unwrap_or(Ok(1)).map(|runs| runs as u32);
        }
        self.client
            .update_item()
            .table_name(&self.table_name)
            .key(PK, s(&watermark_pk(name)))
            .update_expression(FAILED_FIRST)
            .set_expression_attribute_names(aliases_in(&[FAILED_FIRST]))
            .expression_attribute_values(":record", s(record_id))
            .expression_attribute_values(":one", n(1))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(1)
    }

    async fn try_lease(
        &self,
        name: &str,
        owner: &str,
        until_ms: u64,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table_name)
            .item(PK, s(&lease_pk(name)))
            .item(LEASE_OWNER, s(owner))
            .item(LEASE_UNTIL_MS, n(until_ms))
            .condition_expression(LEASE_FREE)
            .set_expression_attribute_names(aliases_in(&[LEASE_FREE]))
            .expression_attribute_values(":now_ms", n(now_ms))
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await;
        Ok(unless_condition_failed(result)?.is_some())
    }

    async fn release_lease(&self, name: &str, owner: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table_name)
            .key(PK, s(&lease_pk(name)))
            .condition_expression(LEASE_HELD_BY)
            .set_expression_attribute_names(aliases_in(&[LEASE_HELD_BY]))
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await;
        // A failed condition: taken over after it ended, nothing of ours to give back.
        unless_condition_failed(result).map(drop)
    }
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A conditional call's output, or `None` when DynamoDB refused it on its condition.
fn unless_condition_failed<T, E>(result: Result<T, E>) -> Result<Option<T>, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error,
{
    match result {
        Ok(output) => Ok(Some(output)),
        Err(err) if err.code() == Some("ConditionalCheckFailedException") => Ok(None),
        Err(err) => Err(unavailable(err)),
    }
}

fn unavailable(err: impl std::error::Error) -> StoreError {
    StoreError::Unavailable(DisplayErrorContext(err).to_string())
}

type Item = HashMap<String, AttributeValue>;

fn text(item: &Item, name: &str) -> Result<String, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(StoreError::Malformed(format!("{name} is not a string"))),
    }
}

fn number(item: &Item, name: &str) -> Result<u64, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => {
            v.parse::<u64>().map_err(|_| StoreError::Malformed(format!("{name} is not a u64")))
        }
        _ => Err(StoreError::Malformed(format!("{name} is not a number"))),
    }
}

fn status(item: &Item) -> Result<EventStatus, StoreError> {
    let status = text(item, STATUS)?;
    EventStatus::parse(&status)
        .ok_or_else(|| StoreError::Malformed(format!("unknown status {status}")))
}

/// What every item carries.
fn parse_stored(item: &Item) -> Result<StoredEvent, StoreError> {
    Ok(StoredEvent {
        status: status(item)?,
        body_sha256_hex: text(item, BODY_SHA256)?,
        write_id: text(item, WRITE_ID)?,
        expires_at_s: item
            .contains_key(EXPIRES_AT)
            .then(|| number(item, EXPIRES_AT))
            .transpose()?,
    })
}

/// An item read for forwarding: a pending event whole, settled, or not ours to forward.
fn parse_pending(item: &Item) -> Pending {
    match status(item) {
        Ok(EventStatus::Forwarded) => return Pending::Settled,
        Ok(EventStatus::Pending) => {}
        Err(error) => return Pending::Malformed(error.to_string()),
    }
    let event = || -> Result<PendingEvent, StoreError> {
        let webhook_type = text(item, WEBHOOK_TYPE)?;
        let origin = text(item, ORIGIN)?;
        Ok(PendingEvent {
            pk: text(item, PK)?,
            write_id: text(item, WRITE_ID)?,
            webhook_type: WebhookType::from_name(&webhook_type).ok_or_else(|| {
                StoreError::Malformed(format!("unknown webhook type {webhook_type}"))
            })?,
            dedup_key: text(item, DEDUP_KEY)?,
            body: text(item, BODY)?,
            received_at_ms: number(item, RECEIVED_AT_MS)?,
            request_id: text(item, REQUEST_ID)?,
            origin: Origin::from_name(&origin)
                .ok_or_else(|| StoreError::Malformed(format!("unknown origin {origin}")))?,
        })
    };
    event().map_or_else(|error| Pending::Malformed(error.to_string()), Pending::Event)
}
