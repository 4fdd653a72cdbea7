//! The real handler against DynamoDB Local and moto (EventBridge, with a rule copying every
//! event to an SQS queue the tests read back).

use std::sync::Arc;

use lambda_http::RequestExt;
use sendblue_testkit::*;
use sendblue_webhooks::config::{Backend, Config};
use sendblue_webhooks::dedup::{parse_item, Claim, ClaimStatus, DedupStore};
use sendblue_webhooks::dedup_key;
use sendblue_webhooks::events::BusEvent;
use sendblue_webhooks::forward::EventBridgeSink;
use sendblue_webhooks::forward::{EventSink, ForwardError, OutgoingEvent};
use sendblue_webhooks::{WebhookPipeline, WebhookType};
use serde_json::{json, Value};
use tokio::sync::Notify;

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn every_type_is_forwarded_once_and_its_duplicate_is_not() {
    let aws = Emulators::connect().await;
    let table = aws.create_table().await;
    let (bus, queue) = aws.create_bus().await;
    let sent = CaptureBodies::default();
    let eventbridge = aws_sdk_eventbridge::Client::from_conf(
        aws.eventbridge.config().to_builder().interceptor(sent.clone()).build(),
    );
    for t in WebhookType::ALL {
        let backend = Backend::Aws { table_name: table.clone(), bus_name: bus.clone() };
        let receiver = WebhookPipeline::new(
            t,
            &config(t, backend),
            aws.store(&table),
            EventBridgeSink::new(eventbridge.clone(), &bus),
        );
        let (status, body) = answer(&receiver, fixture(t.binary_name())).await;
        assert_eq!((status, body), (200, json!({"status": "OK"})), "{t}");
        let (status, body) = answer(&receiver, fixture(t.binary_name())).await;
        assert_eq!((status, body), (200, json!({"status": "OK", "duplicate": true})), "{t}");
    }

    // What left the process: each PutEvents carries the body byte for byte in its Detail.
    let requests = sent.bodies();
    assert_eq!(requests.len(), WebhookType::ALL.len(), "one PutEvents per new event");
    for (t, request) in WebhookType::ALL.iter().zip(&requests) {
        let request: Value = serde_json::from_slice(request).unwrap();
        let entry = &request["Entries"][0];
        assert_eq!(entry["DetailType"], t.sendblue_name());
        assert_eq!(data_text(entry["Detail"].as_str().unwrap()), fixture_body(*t), "{t}");
    }

    let delivered = aws.drain(&queue).await;
    assert_eq!(delivered.len(), WebhookType::ALL.len(), "one event per type");
    for t in WebhookType::ALL {
        let event = delivered.iter().find(|e| e.detail_type == t.sendblue_name()).unwrap();
        assert_eq!(event.source, "sendblue");
        let original: Value = serde_json::from_str(&fixture_body(t)).unwrap();
        assert_eq!(event.detail["data"], original, "{t}: data untouched");
        assert_eq!(event.detail["metadata"]["webhook_type"], t.sendblue_name());
        assert_eq!(event.detail["metadata"]["origin"], "webhook");
        // Consumers' types read every forwarded event, as a rule's target receives it.
        let read: BusEvent = serde_json::from_str(&event.message_body).unwrap();
        assert_eq!(read.webhook_type(), Some(t));
        assert_eq!(read.detail.metadata.webhook_type, t.sendblue_name());
        assert!(matches!(read.payload(), Some(Ok(_))), "{t}: {:?}", read.payload());
    }

    let items = aws.scan(&table).await;
    assert_eq!(items.len(), WebhookType::ALL.len());
    for item in &items {
        assert_eq!(parse_item(item).unwrap().status, ClaimStatus::Completed);
    }
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn outbound_status_sequence_gives_three_events() {
    let aws = Emulators::connect().await;
    let table = aws.create_table().await;
    let (bus, queue) = aws.create_bus().await;
    let receiver = aws.receiver(WebhookType::Outbound, &table, &bus);
    for status in ["QUEUED", "SENT", "SENT", "DELIVERED", "QUEUED"] {
        let body = body_with(WebhookType::Outbound, &[("status", json!(status))]);
        let (code, _) = answer(&receiver, with_body(WebhookType::Outbound, body)).await;
        assert_eq!(code, 200);
    }
    let mut statuses: Vec<String> = aws
        .drain(&queue)
        .await
        .iter()
        .map(|e| e.detail["data"]["status"].as_str().unwrap().to_owned())
        .collect();
    statuses.sort();
    assert_eq!(statuses, ["DELIVERED", "QUEUED", "SENT"]);
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn refused_requests_write_and_forward_nothing() {
    let aws = Emulators::connect().await;
    let table = aws.create_table().await;
    let (bus, queue) = aws.create_bus().await;
    let receive = aws.receiver(WebhookType::Receive, &table, &bus);
    for (name, expected) in [
        ("bad/wrong-secret", 401),
        ("bad/missing-secret", 401),
        ("bad/get-method", 405),
        ("bad/not-json", 400),
        ("bad/missing-key-field", 400),
    ] {
        let (status, _) = answer(&receive, fixture(name)).await;
        assert_eq!(status, expected, "{name}");
    }
    let call_log = aws.receiver(WebhookType::CallLog, &table, &bus);
    assert_eq!(answer(&call_log, fixture("bad/call-log-null-key")).await.0, 400);
    let huge = format!("{{\"call_id\":\"c\",\"pad\":\"{}\"}}", "x".repeat(300_000));
    assert_eq!(answer(&call_log, with_body(WebhookType::CallLog, huge)).await.0, 413);

    assert!(aws.scan(&table).await.is_empty(), "nothing written");
    assert!(aws.drain(&queue).await.is_empty(), "nothing forwarded");
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn a_forward_failure_leaves_no_claim_and_the_retry_forwards_once() {
    let aws = Emulators::connect().await;
    let table = aws.create_table().await;
    let bus = unique("not-yet-created");
    let receiver = aws.receiver(WebhookType::Receive, &table, &bus);

    let (status, body) = answer(&receiver, fixture("receive")).await;
    assert_eq!(status, 502, "{body}");
    assert!(aws.scan(&table).await.is_empty(), "the claim was released");

    let queue = aws.create_bus_named(&bus).await;
    assert_eq!(answer(&receiver, fixture("receive")).await.0, 200, "Sendblue's retry succeeds");
    assert_eq!(answer(&receiver, fixture("receive")).await.1["duplicate"], true);
    assert_eq!(aws.drain(&queue).await.len(), 1);
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn a_store_failure_is_a_5xx_and_forwards_nothing() {
    let aws = Emulators::connect().await;
    let (bus, queue) = aws.create_bus().await;
    let receiver = aws.receiver(WebhookType::CallLog, "table-that-does-not-exist", &bus);
    let (status, body) = answer(&receiver, fixture("call-log")).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (500, Some("dedup store unavailable; retry later"))
    );
    assert!(aws.drain(&queue).await.is_empty());
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn the_lease_is_the_lambda_deadline_and_blocks_until_it_ends() {
    let aws = Emulators::connect().await;
    let table = aws.create_table().await;
    let (bus, queue) = aws.create_bus().await;
    let receiver = aws.receiver(WebhookType::TypingIndicator, &table, &bus);

    // An invocation that claimed the key and died before forwarding.
    let pk = {
        let body = fixture_body(WebhookType::TypingIndicator);
        let key =
            sendblue_webhooks::dedup_key::derive(WebhookType::TypingIndicator, &body, "").unwrap();
        format!("typing_indicator#{key}")
    };
    let deadline_ms = now_ms() + 3_000;
    let crashed = Claim {
        pk: &pk,
        owner_token: "crashed",
        body_sha256_hex: "",
        now_ms: now_ms(),
        lease_until_ms: deadline_ms,
        expires_at_s: now_ms() / 1000 + 60,
    };
    aws.store(&table).claim(&crashed).await.unwrap();

    let response = receiver.handle(fixture("typing-indicator")).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    assert!(aws.drain(&queue).await.is_empty());

    sleep_until_ms(deadline_ms + 50).await;
    let mut context = lambda_http::Context::default();
    context.deadline = now_ms() + 7_000;
    let request = fixture("typing-indicator").with_lambda_context(context.clone());
    assert_eq!(answer(&receiver, request).await.0, 200, "after the lease, the retry forwards");
    assert_eq!(aws.drain(&queue).await.len(), 1);
    let item = parse_item(&aws.scan(&table).await[0]).unwrap();
    assert_eq!(item.lease_until_ms, context.deadline, "the lease is the invocation's deadline");
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn an_expired_item_not_yet_deleted_by_ttl_counts_as_new() {
    let aws = Emulators::connect().await;
    let table = aws.create_table().await;
    let (bus, queue) = aws.create_bus().await;
    let receiver = aws.receiver(WebhookType::CallLog, &table, &bus);
    let long_ago_ms = now_ms() - 2 * 86_400_000;
    let old = Claim {
        pk: "call_log#cs_abc123def456",
        owner_token: "yesterday",
        body_sha256_hex: "",
        now_ms: long_ago_ms,
        lease_until_ms: long_ago_ms + 10_000,
        expires_at_s: long_ago_ms / 1000 + 86_400,
    };
    let store = aws.store(&table);
    store.claim(&old).await.unwrap();
    store.complete(old.pk, old.owner_token).await.unwrap();

    assert_eq!(answer(&receiver, fixture("call-log")).await, (200, json!({"status": "OK"})));
    assert_eq!(aws.drain(&queue).await.len(), 1);
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn keys_too_long_for_dynamodb_are_hashed_not_refused() {
    let aws = Emulators::connect().await;
    let table = aws.create_table().await;
    let (bus, queue) = aws.create_bus().await;
    let long = |n: usize, c: char| std::iter::repeat_n(c, n).collect::<String>();
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
            ("message_handle", json!(long(dedup_key::MAX_KEY_BYTES - "#SENT".len(), 'h'))),
            ("status", json!("SENT")),
        ],
    );
    for (t, body) in [
        (WebhookType::Outbound, outbound),
        (WebhookType::TypingIndicator, typing),
        (WebhookType::StatusCallback, at_bound),
    ] {
        let receiver = aws.receiver(t, &table, &bus);
        let request = || with_body(t, body.clone());
        assert_eq!(answer(&receiver, request()).await, (200, json!({"status": "OK"})), "{t}");
        assert_eq!(answer(&receiver, request()).await.1["duplicate"], true, "{t}");
    }
    let delivered = aws.drain(&queue).await;
    let keys: Vec<&str> =
        delivered.iter().map(|e| e.detail["metadata"]["dedup_key"].as_str().unwrap()).collect();
    assert_eq!(keys.len(), 3, "each forwarded once: {keys:?}");
    assert_eq!(
        keys.iter().filter(|k| k.starts_with(dedup_key::HASHED_KEY_PREFIX)).count(),
        2,
        "{keys:?}"
    );
    assert!(keys.iter().any(|k| k.len() == dedup_key::MAX_KEY_BYTES), "{keys:?}");
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn a_body_at_the_nesting_limit_reaches_serde_json_consumers() {
    let aws = Emulators::connect().await;
    let table = aws.create_table().await;
    let (bus, queue) = aws.create_bus().await;
    let receiver = aws.receiver(WebhookType::LineBlocked, &table, &bus);
    let nested =
        |depth: usize| format!("{{\"line\":{}{}}}", "[".repeat(depth - 1), "]".repeat(depth - 1));
    let (status, body) =
        answer(&receiver, with_body(WebhookType::LineBlocked, nested(dedup_key::MAX_NESTING + 1)))
            .await;
    assert_eq!(status, 400, "{body}");
    let deepest = nested(dedup_key::MAX_NESTING);
    assert_eq!(
        answer(&receiver, with_body(WebhookType::LineBlocked, deepest.clone())).await.0,
        200
    );
    // `drain` parses each event, as the queue's consumer gets it, with serde_json's defaults.
    let delivered = aws.drain(&queue).await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].detail["data"], serde_json::from_str::<Value>(&deepest).unwrap());
}

/// A sink that holds every forward until it is let go, to keep a claim in progress.
struct HeldSink<E> {
    inner: E,
    entered: Arc<Notify>,
    let_go: Arc<Notify>,
}

impl<E: EventSink> EventSink for HeldSink<E> {
    async fn forward(&self, event: &OutgoingEvent<'_>) -> Result<(), ForwardError> {
        self.entered.notify_one();
        self.let_go.notified().await;
        self.inner.forward(event).await
    }
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn a_dedup_window_shorter_than_the_lease_never_ends_a_live_claim() {
    let aws = Emulators::connect().await;
    let table = aws.create_table().await;
    let (bus, queue) = aws.create_bus().await;
    let backend = Backend::Aws { table_name: table.clone(), bus_name: bus.clone() };
    let config = Config { dedup_ttl_seconds: 1, ..config(WebhookType::Receive, backend) };
    let (entered, let_go): (Arc<Notify>, Arc<Notify>) = Default::default();
    let holding = Arc::new(WebhookPipeline::new(
        WebhookType::Receive,
        &config,
        aws.store(&table),
        HeldSink {
            inner: aws.sink(&bus),
            entered: Arc::clone(&entered),
            let_go: Arc::clone(&let_go),
        },
    ));
    let retrying =
        WebhookPipeline::new(WebhookType::Receive, &config, aws.store(&table), aws.sink(&bus));
    let request = || {
        let mut context = lambda_http::Context::default();
        context.deadline = now_ms() + 10_000;
        fixture("receive").with_lambda_context(context)
    };

    let first = tokio::spawn({
        let (holding, request) = (Arc::clone(&holding), request());
        async move { answer(&*holding, request).await }
    });
    entered.notified().await;
    // The claim is live (its lease runs 10 s) and its 1 s window has passed.
    sleep_until_ms((now_ms() / 1000 + 2) * 1000).await;
    let (status, body) = answer(&retrying, request()).await;
    assert_eq!(status, 503, "a retry must wait for the lease, not take the claim over: {body}");
    let_go.notify_one();
    assert_eq!(first.await.unwrap(), (200, json!({"status": "OK"})));
    assert_eq!(aws.drain(&queue).await.len(), 1, "forwarded once");
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn a_malformed_dedup_item_is_a_clear_500_never_a_forward() {
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    let aws = Emulators::connect().await;
    let table = aws.create_table().await;
    let (bus, queue) = aws.create_bus().await;
    let receiver = aws.receiver(WebhookType::CallLog, &table, &bus);
    let future_s = (now_ms() / 1000 + 3600).to_string();
    let pk = format!("call_log#{}", {
        let body = fixture_body(WebhookType::CallLog);
        dedup_key::derive(WebhookType::CallLog, &body, "").unwrap()
    });
    let items = [
        // No status at all.
        vec![("expires_at", N(future_s.clone())), ("lease_until_ms", N("1".into()))],
        // A status this code never writes.
        vec![
            ("status", S("BOGUS".into())),
            ("expires_at", N(future_s.clone())),
            ("lease_until_ms", N("1".into())),
        ],
        // A number written as a string.
        vec![
            ("status", S("COMPLETED".into())),
            ("expires_at", N(future_s.clone())),
            ("lease_until_ms", S("soon".into())),
        ],
    ];
    for attributes in items {
        let mut put = aws.dynamodb.put_item().table_name(&table).item("pk", S(pk.clone()));
        for (name, value) in attributes.clone() {
            put = put.item(name, value);
        }
        put.send().await.unwrap();
        let (status, body) = answer(&receiver, fixture("call-log")).await;
        assert_eq!(status, 500, "{attributes:?}: {body}");
        assert_eq!(body["message"], "dedup store unavailable; retry later");
    }
    assert!(aws.drain(&queue).await.is_empty(), "nothing forwarded");
}
