//! A stand-in for Lambda's DynamoDB event source mapping, over DynamoDB Local's real stream
//! (DescribeStream, GetShardIterator, GetRecords): it reads a table's stream shard by shard, in
//! order, hands the records to a function in batches of the `{"Records": [...]}` shape Lambda
//! sends, and treats the answer as the mapping does with `ReportBatchItemFailures`:
//! - `{"batchItemFailures": [{"itemIdentifier": SEQ}]}`: the records before `SEQ` are done; `SEQ`
//!   and everything after it are handed over again on the next attempt;
//! - an error (the function crashed or timed out): the whole batch is handed over again;
//! - after `max_retry_attempts` retries of one batch, what is left of it goes to the on-failure
//!   destination (`PumpReport::discarded`) and the shard moves on.
//!
//! The mapping backs off between retries; the pump instead returns from [`StreamPump::pump`]
//! when a shard's batch fails, so a test decides when the next attempt comes (after the bus is
//! back, for example). Bisecting a failed batch is left out: it changes which records are
//! retried together, not whether each is delivered.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;

use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use base64::Engine;
use serde_json::{json, Map, Value};

/// What the function said to one batch.
pub type Invocation = Result<Value, String>;

/// The mapping's settings that change what is delivered (template.yaml sets the real ones).
#[derive(Debug, Clone, Copy)]
pub struct MappingSettings {
    pub batch_size: usize,
    pub max_retry_attempts: u32,
}

impl Default for MappingSettings {
    fn default() -> Self {
        Self { batch_size: 10, max_retry_attempts: 20 }
    }
}

/// What one [`StreamPump::pump`] did.
#[derive(Debug, Default, Clone)]
pub struct PumpReport {
    pub invocations: usize,
    /// Records handed over for the first time.
    pub records: usize,
    /// Batches the function failed, in whole or from one record on.
    pub failed_batches: usize,
    /// Records given up on after the last retry (the on-failure destination's messages).
    pub discarded: Vec<Value>,
}

impl PumpReport {
    /// Adds another pass's report to this one.
    pub fn absorb(&mut self, other: PumpReport) {
        self.invocations += other.invocations;
        self.records += other.records;
        self.failed_batches += other.failed_batches;
        self.discarded.extend(other.discarded);
    }
}

#[derive(Debug, Default)]
struct Shard {
    /// Where GetRecords goes on; `None` once a closed shard is read to its end.
    iterator: Option<String>,
    /// Records read and not yet done, oldest first.
    held: VecDeque<Value>,
    /// Retries so far of the batch at the head of `held`.
    retries: u32,
    /// How many of `held` were ever handed over (the rest count as new in `PumpReport::records`).
    handed_over: usize,
}

pub struct StreamPump {
    client: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    settings: MappingSettings,
    shards: BTreeMap<String, Shard>,
}

impl StreamPump {
    /// Starts at the stream's trim horizon (the template's `StartingPosition`).
    pub fn new(
        client: aws_sdk_dynamodbstreams::Client,
        stream_arn: impl Into<String>,
        settings: MappingSettings,
    ) -> Self {
        Self { client, stream_arn: stream_arn.into(), settings, shards: BTreeMap::new() }
    }

    /// Reads what the stream has now and hands it over, shard by shard, until every shard is
    /// caught up or a batch failed (the shard waits for the next call, as the mapping waits
    /// between retries).
    pub async fn pump<F, Fut>(&mut self, mut invoke: F) -> PumpReport
    where
        F: FnMut(Value) -> Fut,
        Fut: Future<Output = Invocation>,
    {
        let mut report = PumpReport::default();
        self.discover_shards().await;
        let shard_ids: Vec<String> = self.shards.keys().cloned().collect();
        for shard_id in shard_ids {
            loop {
                self.fill(&shard_id).await;
                let settings = self.settings;
                let shard = self.shards.get_mut(&shard_id).unwrap();
                if shard.held.is_empty() {
                    break;
                }
                let size = settings.batch_size.min(shard.held.len());
                let batch: Vec<Value> = shard.held.iter().take(size).cloned().collect();
                report.records += size.saturating_sub(shard.handed_over);
                shard.handed_over = shard.handed_over.max(size);
                report.invocations += 1;
                let done = match invoke(json!({ "Records": batch })).await {
                    Ok(answer) => first_failure(&answer, &batch).unwrap_or(size),
                    Err(_) => 0,
                };
                shard.held.drain(..done);
                shard.handed_over -= done;
                if done == size {
                    shard.retries = 0;
                    continue;
                }
                report.failed_batches += 1;
                shard.retries += 1;
                if shard.retries > settings.max_retry_attempts {
                    let left = size - done;
                    report.discarded.extend(shard.held.drain(..left));
                    shard.handed_over -= left;
                    shard.retries = 0;
                    continue;
                }
                break;
            }
        }
        report
    }

    /// Pumps until a call hands over nothing new and nothing fails, or `rounds` calls.
    pub async fn pump_until_idle<F, Fut>(&mut self, rounds: usize, mut invoke: F) -> PumpReport
    where
        F: FnMut(Value) -> Fut,
        Fut: Future<Output = Invocation>,
    {
        let mut total = PumpReport::default();
        for _ in 0..rounds {
            let round = self.pump(&mut invoke).await;
            let idle = round.invocations == 0;
            total.absorb(round);
            if idle {
                break;
            }
        }
        total
    }

    /// Every shard of the stream, each read from its trim horizon when first seen.
    async fn discover_shards(&mut self) {
        let described = self
            .client
            .describe_stream()
            .stream_arn(&self.stream_arn)
            .send()
            .await
            .expect("DescribeStream");
        let shards =
            described.stream_description().map(|d| d.shards().to_vec()).unwrap_or_default();
        for shard in shards {
            let Some(id) = shard.shard_id() else { continue };
            if self.shards.contains_key(id) {
                continue;
            }
            let iterator = self
                .client
                .get_shard_iterator()
                .stream_arn(&self.stream_arn)
                .shard_id(id)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .expect("GetShardIterator")
                .shard_iterator;
            self.shards.insert(id.to_owned(), Shard { iterator, ..Shard::default() });
        }
    }

    /// Reads the shard until it holds a whole batch or has nothing more for now.
    async fn fill(&mut self, shard_id: &str) {
        let batch_size = self.settings.batch_size;
        let shard = self.shards.get_mut(shard_id).unwrap();
        while shard.held.len() < batch_size {
            let Some(iterator) = shard.iterator.clone() else { return };
            let output = self
                .client
                .get_records()
                .shard_iterator(iterator)
                .send()
                .await
                .expect("GetRecords");
            shard.iterator = output.next_shard_iterator;
            if output.records.as_ref().is_none_or(Vec::is_empty) {
                return;
            }
            shard.held.extend(output.records.unwrap_or_default().iter().map(lambda_record));
        }
    }
}

/// How many of `batch` the function settled, if it reported a failure among them.
fn first_failure(answer: &Value, batch: &[Value]) -> Option<usize> {
    let failed = answer["batchItemFailures"].as_array()?.first()?;
    let sequence_number = failed["itemIdentifier"].as_str()?;
    let position =
        batch.iter().position(|record| record["dynamodb"]["SequenceNumber"] == sequence_number);
    // An identifier that names no record of the batch fails the whole batch, as Lambda does.
    Some(position.unwrap_or(0))
}

/// A stream record in the JSON Lambda hands a function.
pub fn lambda_record(record: &Record) -> Value {
    let data = record.dynamodb();
    let mut dynamodb = Map::new();
    if let Some(data) = data {
        for (name, image) in [("Keys", data.keys()), ("NewImage", data.new_image())] {
            if let Some(image) = image {
                dynamodb.insert(name.into(), item_json(image));
            }
        }
        if let Some(old) = data.old_image() {
            dynamodb.insert("OldImage".into(), item_json(old));
        }
        if let Some(sequence_number) = data.sequence_number() {
            dynamodb.insert("SequenceNumber".into(), json!(sequence_number));
        }
        if let Some(size) = data.size_bytes() {
            dynamodb.insert("SizeBytes".into(), json!(size));
        }
        if let Some(view) = data.stream_view_type() {
            dynamodb.insert("StreamViewType".into(), json!(view.as_str()));
        }
    }
    json!({
        "eventID": record.event_id(),
        "eventName": record.event_name().map(|name| name.as_str()),
        "eventVersion": record.event_version(),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.aws_region(),
        "dynamodb": dynamodb,
    })
}

fn item_json(item: &std::collections::HashMap<String, AttributeValue>) -> Value {
    Value::Object(item.iter().map(|(name, value)| (name.clone(), attribute_json(value))).collect())
}

fn attribute_json(value: &AttributeValue) -> Value {
    let base64 = |blob: &aws_sdk_dynamodbstreams::primitives::Blob| {
        base64::engine::general_purpose::STANDARD.encode(blob.as_ref())
    };
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::B(b) => json!({ "B": base64(b) }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(n) => json!({ "NULL": n }),
        AttributeValue::Ss(ss) => json!({ "SS": ss }),
        AttributeValue::Ns(ns) => json!({ "NS": ns }),
        AttributeValue::Bs(bs) => json!({ "BS": bs.iter().map(base64).collect::<Vec<_>>() }),
        AttributeValue::L(l) => json!({ "L": l.iter().map(attribute_json).collect::<Vec<_>>() }),
        AttributeValue::M(m) => json!({ "M": item_json(m) }),
        other => panic!("an attribute type the pump does not know: {other:?}"),
    }
}
