//! DynamoDB's and EventBridge's own limits, met for real on the emulators: keys longer than a
//! partition key may be, bodies nested as deep as consumers can read, and a throttled write.

use std::time::Duration;

use sendblue_testkit::proxy::Fault;
use sendblue_testkit::stream_pump::MappingSettings;
use sendblue_testkit::*;
use sendblue_webhooks::dedup_key::{self, HASHED_KEY_PREFIX, MAX_KEY_BYTES};
use sendblue_webhooks::WebhookType;
use serde_json::{json, Value};

use crate::rig::{receive_body, Rig};

fn long(n: usize, c: char) -> String {
    std::iter::repeat_n(c, n).collect()
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn keys_too_long_for_a_partition_key_are_hashed_not_refused_and_reach_the_bus_once() {
    let rig = Rig::start().await;
    // Each `%` and `#` escapes to three bytes: 400 of each make a 2,401-byte key.
    let outbound = body_with(
        WebhookType::Outbound,
        &[("message_handle", json!(long(400, '%'))), ("status", json!(long(400, '#')))],
    );
    let typing = body_with(
        WebhookType::TypingIndicator,
        &[("number", json!(long(600, '1'))), ("from_number", json!(long(600, '2')))],
    );
    // The longest key kept as it is, under the longest type name: the table takes it.
    let at_bound = body_with(
        WebhookType::StatusCallback,
        &[
            ("message_handle", json!(long(MAX_KEY_BYTES - "#SENT".len(), 'h'))),
            ("status", json!("SENT")),
        ],
    );
    for (t, body) in [
        (WebhookType::Outbound, outbound),
        (WebhookType::TypingIndicator, typing),
        (WebhookType::StatusCallback, at_bound),
    ] {
        let receiver = rig.direct.receiver(t, &rig.table);
        let (status, first) = answer(&receiver, with_body(t, body.clone())).await;
        assert_eq!((status, first), (200, json!({"status": "OK"})), "{t}");
        assert_eq!(answer(&receiver, with_body(t, body)).await.1["duplicate"], true, "{t}");
    }
    let mut stream = rig.stream(MappingSettings::default()).await;
    rig.pump_until_idle(&mut stream).await;
    let keys = rig.keys_on_the_bus().await;
    assert_eq!(keys.len(), 3, "each once: {keys:?}");
    assert_eq!(keys.iter().filter(|k| k.starts_with(HASHED_KEY_PREFIX)).count(), 2, "{keys:?}");
    assert!(keys.iter().any(|k| k.len() == MAX_KEY_BYTES), "{keys:?}");
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn a_body_at_the_nesting_limit_is_stored_and_reaches_serde_json_consumers() {
    let rig = Rig::start().await;
    let receiver = rig.direct.receiver(WebhookType::LineBlocked, &rig.table);
    let nested =
        |depth: usize| format!("{{\"line\":{}{}}}", "[".repeat(depth - 1), "]".repeat(depth - 1));
    let too_deep = with_body(WebhookType::LineBlocked, nested(dedup_key::MAX_NESTING + 1));
    let (status, refusal) = answer(&receiver, too_deep).await;
    assert_eq!(status, 400, "{refusal}");
    assert!(rig.direct.scan(&rig.table).await.is_empty(), "a refusal writes nothing");
    let deepest = nested(dedup_key::MAX_NESTING);
    assert_eq!(
        answer(&receiver, with_body(WebhookType::LineBlocked, deepest.clone())).await.0,
        200
    );
    let mut stream = rig.stream(MappingSettings::default()).await;
    rig.pump_until_idle(&mut stream).await;
    // `drain` parses each event, as the queue's consumer gets it, with serde_json's defaults.
    let delivered = rig.direct.drain(&rig.queue).await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].detail["data"], serde_json::from_str::<Value>(&deepest).unwrap());
}

/// DynamoDB's answer when a partition is over its throughput.
const THROTTLED: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"injected"}"#;

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn a_throttled_write_is_a_500_that_writes_nothing_and_sendblues_retry_is_accepted_once() {
    let rig = Rig::start().await;
    let receiver = rig.via_proxies.receiver(WebhookType::Receive, &rig.table);
    rig.dynamodb_proxy.set(Fault::Answer(400, THROTTLED));
    let throttled = with_body(WebhookType::Receive, receive_body("throttled-0"));
    assert_eq!(answer(&receiver, throttled).await.0, 500);
    rig.dynamodb_proxy.set(Fault::Pass);
    assert!(rig.direct.scan(&rig.table).await.is_empty(), "nothing written");
    let mut handles = Vec::new();
    // Throttled for the first one, two, then three attempts: Sendblue's retries are enough.
    for failing_attempts in 1..=SENDBLUE_RETRIES {
        let handle = format!("throttled-{failing_attempts}");
        let body = receive_body(&handle);
        let statuses = deliver_with_retries(
            &receiver,
            || with_body(WebhookType::Receive, body.clone()),
            |attempt| {
                let throttled = attempt < failing_attempts;
                rig.dynamodb_proxy.set(if throttled {
                    Fault::Answer(400, THROTTLED)
                } else {
                    Fault::Pass
                });
            },
            Duration::from_millis(20),
        )
        .await;
        let mut expected = vec![500; failing_attempts];
        expected.push(200);
        assert_eq!(statuses, expected, "{handle}");
        handles.push(handle);
    }
    let mut stream = rig.stream(MappingSettings::default()).await;
    rig.pump_until_idle(&mut stream).await;
    assert_eq!(rig.keys_on_the_bus().await, handles, "each once");
}
