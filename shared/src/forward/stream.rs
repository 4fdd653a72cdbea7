//! The table's stream, as a Lambda event source mapping delivers it: `{"Records": [...]}` in
//! shard order, answered with the records to hand back (`ReportBatchItemFailures`).
//!
//! Every record of the stream arrives here unless a filter drops it first: new events, the
//! marks, TTL deletions, watermark updates. The filter is a saving; correctness rests on this
//! reading: only a record whose new image is `PENDING` names a key to forward, and the key is
//! read again before anything goes out.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::dedup::EventStatus;

/// A batch of stream records (the fields this code reads; the rest are ignored).
#[derive(Debug, Deserialize)]
pub struct StreamEvent {
    #[serde(rename = "Records")]
    pub records: Vec<Value>,
}

/// The answer to a batch: the first record to hand back, and with it all after it.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct BatchResponse {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<ItemFailure>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

/// A record that names a pending event: its key and its place in the shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRecord {
    pub pk: String,
    pub sequence_number: String,
}

/// The records of `event` that name a pending event, in order. `ignored` counts the rest.
pub fn pending_records(event: &StreamEvent) -> (Vec<PendingRecord>, usize) {
    let mut ignored = 0;
    let records = event
        .records
        .iter()
        .filter_map(|record| {
            let found = pending_record(record);
            ignored += usize::from(found.is_none());
            found
        })
        .collect();
    (records, ignored)
}

fn pending_record(record: &Value) -> Option<PendingRecord> {
    let data = record.get("dynamodb")?;
    let status = data.pointer("/NewImage/status/S")?.as_str()?;
    if status != EventStatus::Pending.as_str() {
        return None;
    }
    Some(PendingRecord {
        pk: data.pointer("/Keys/pk/S")?.as_str()?.to_owned(),
        sequence_number: data.get("SequenceNumber")?.as_str()?.to_owned(),
    })
}

impl BatchResponse {
    /// Hands back `records[failed_at..]`, or nothing.
    pub fn from_failure(records: &[PendingRecord], failed_at: Option<usize>) -> Self {
        let batch_item_failures = failed_at
            .and_then(|index| records.get(index))
            .map(|record| ItemFailure { item_identifier: record.sequence_number.clone() })
            .into_iter()
            .collect();
        BatchResponse { batch_item_failures }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(sequence_number: &str, pk: &str, status: Option<&str>) -> Value {
        let mut record = json!({
            "eventName": "INSERT",
            "dynamodb": {"Keys": {"pk": {"S": pk}}, "SequenceNumber": sequence_number}
        });
        if let Some(status) = status {
            record["dynamodb"]["NewImage"] = json!({"pk": {"S": pk}, "status": {"S": status}});
        }
        record
    }

    #[test]
    fn only_records_of_pending_items_name_keys() {
        let event = StreamEvent {
            records: vec![
                record("1", "receive#a", Some("PENDING")),
                record("2", "receive#a", Some("FORWARDED")),
                record("3", "receive#b", None), // a TTL deletion: no new image
                record("4", "reconcile#messages", Some("x")),
                json!({"eventName": "INSERT"}),
                json!("not even an object"),
                record("7", "call_log#c", Some("PENDING")),
            ],
        };
        let (records, ignored) = pending_records(&event);
        let names: Vec<_> =
            records.iter().map(|r| (r.pk.as_str(), r.sequence_number.as_str())).collect();
        assert_eq!(names, [("receive#a", "1"), ("call_log#c", "7")]);
        assert_eq!(ignored, 5);
    }

    #[test]
    fn a_failure_hands_back_its_record() {
        let records = [
            PendingRecord { pk: "a".into(), sequence_number: "10".into() },
            PendingRecord { pk: "b".into(), sequence_number: "11".into() },
        ];
        let answer = serde_json::to_value(BatchResponse::from_failure(&records, Some(1))).unwrap();
        assert_eq!(answer, json!({"batchItemFailures": [{"itemIdentifier": "11"}]}));
        let answer = serde_json::to_value(BatchResponse::from_failure(&records, None)).unwrap();
        assert_eq!(answer, json!({"batchItemFailures": []}));
    }
}
