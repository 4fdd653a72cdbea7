//! One set of sample bodies, hostile ones included (`schemas/samples/bodies.json`), judged by
//! the receiver and read by the consumers' crate: every body the receiver accepts, the crate
//! reads, with the key fields as the receiver keyed them; every body it refuses is marked so.
//! `tests/schema_test.py` holds the schemas to the same set, so the three cannot drift apart.

use sendblue_events::{BusEvent, Payload, WebhookType};
use sendblue_webhooks::dedup_key;
use serde_json::{json, Value};

fn samples() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/samples/bodies.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The key the crate's typed view gives, for the types keyed by fields of a message, call or
/// contact: what a consumer recomputes must be what the receiver wrote.
fn key_from_typed_view(payload: &Payload) -> Option<String> {
    match payload {
        Payload::Receive(message) => message.message_handle.clone(),
        Payload::Outbound(message) | Payload::StatusCallback(message) => {
            Some(format!("{}#{}", message.message_handle.as_deref()?, message.status.as_ref()?))
        }
        Payload::CallLog(call) => call.call_id.clone(),
        Payload::ContactCreated(contact) => contact.contact_id.clone(),
        _ => None,
    }
}

#[test]
fn the_crate_reads_every_body_the_receiver_accepts_keyed_as_the_receiver_keys_it() {
    let samples = samples();
    let mut verdicts = (0, 0);
    for sample in &samples {
        let name = sample["name"].as_str().unwrap();
        let webhook_type = WebhookType::from_name(sample["type"].as_str().unwrap()).unwrap();
        let body = sample["body"].to_string();
        let accepted = sample["accepted"].as_bool().unwrap();
        let derived = dedup_key::derive(webhook_type, &body, "0".repeat(64).as_str());
        assert_eq!(
            derived.is_ok(),
            accepted,
            "{webhook_type} {name}: the receiver says {derived:?}"
        );
        let Ok(key) = derived else {
            verdicts.1 += 1;
            continue;
        };
        verdicts.0 += 1;
        let event: BusEvent = serde_json::from_value(json!({
            "detail-type": webhook_type, "source": "sendblue",
            "detail": {
                "metadata": {"webhook_type": webhook_type, "dedup_key": key.as_str(),
                             "received_at": "2026-01-01T00:00:00.000Z", "request_id": "r"},
                "data": sample["body"],
            }
        }))
        .unwrap_or_else(|e| panic!("{webhook_type} {name}: the crate cannot read the event: {e}"));
        let payload = event.payload().unwrap_or_else(|e| panic!("{webhook_type} {name}: {e}"));
        if let Some(typed_key) = key_from_typed_view(&payload) {
            assert_eq!(typed_key, key.as_str(), "{webhook_type} {name}");
        }
    }
    println!("{} samples: {} accepted and read, {} refused", samples.len(), verdicts.0, verdicts.1);
    assert!(verdicts.0 >= 20 && verdicts.1 >= 8, "the set must hold both: {verdicts:?}");
}
