//! The door and the forwarder on DynamoDB Local and moto, with faults injected on real sockets
//! (a TCP proxy between the SDK clients and the emulators): every delivery is answered after
//! one write, and every accepted event reaches the bus once, whatever the bus does meanwhile.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue::{N, S};
use sendblue_testkit::proxy::{Fault, Step};
use sendblue_testkit::*;
use sendblue_webhooks::dedup::{DedupStore, EventStatus};
use sendblue_webhooks::WebhookType;
use serde_json::json;
use tokio::time::Instant;

use crate::rig::{receive_body, Rig};

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn every_type_is_accepted_then_forwarded_once_with_its_data_untouched() {
    let rig = Rig::start().await;
    for t in WebhookType::ALL {
        assert_eq!(
            answer(&rig.direct.receiver(t, &rig.table), fixture(t.binary_name())).await.0,
            200
        );
        let (_, duplicate) =
            answer(&rig.direct.receiver(t, &rig.table), fixture(t.binary_name())).await;
        assert_eq!(duplicate["duplicate"], true, "{t}");
    }
    assert!(rig.direct.drain(&rig.queue).await.is_empty(), "receivers put nothing on the bus");
    let swept = rig.sweep().await;
    assert_eq!(swept.forward.forwarded, 8, "{swept:?}");
    let delivered = rig.direct.drain(&rig.queue).await;
    assert_eq!(forward_counts(&delivered).len(), 8);
    for event in &delivered {
        let t = WebhookType::from_name(&event.detail_type).unwrap();
        let expected: serde_json::Value = serde_json::from_str(&fixture_body(t)).unwrap();
        assert_eq!(event.detail["data"], expected, "{t}");
        assert_eq!(event.detail["metadata"]["webhook_type"], t.sendblue_name());
        assert_eq!(event.detail["metadata"]["origin"], "webhook");
    }
    for item in rig.direct.scan(&rig.table).await {
        assert_eq!(item["status"], S("FORWARDED".into()), "{item:?}");
        assert!(!item.contains_key("body") && !item.contains_key("pending_type"), "{item:?}");
    }
    assert_eq!(rig.sweep().await.forward.forwarded, 0, "a second sweep forwards nothing");
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn with_the_bus_down_every_delivery_is_200_and_each_event_goes_out_once_when_it_is_back() {
    let rig = Rig::start().await;
    rig.eventbridge_proxy.set(Fault::Refuse);
    let handles: Vec<String> = (0..25).map(|i| format!("down-{i}")).collect();
    for handle in &handles {
        assert_eq!(rig.deliver(WebhookType::Receive, &receive_body(handle)).await, 200);
    }
    for _ in 0..3 {
        let swept = rig.sweep().await;
        assert!(swept.stopped_early && swept.forward.forwarded == 0, "{swept:?}");
        assert_eq!(swept.forward.failed_at, Some(0));
    }
    assert_eq!(rig.status("receive#down-0").await, Some(EventStatus::Pending));
    rig.eventbridge_proxy.set(Fault::Pass);
    let swept = rig.sweep().await;
    assert_eq!((swept.forward.forwarded, swept.stopped_early), (25, false), "{swept:?}");
    let counts = forward_counts(&rig.direct.drain(&rig.queue).await);
    assert_eq!(counts.len(), 25);
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn a_partial_put_events_failure_ends_with_each_event_on_the_bus_once() {
    let rig = Rig::start().await;
    let pks: Vec<String> = (0..6).map(|i| format!("receive#part-{i}")).collect();
    for i in 0..6 {
        assert_eq!(
            rig.deliver(WebhookType::Receive, &receive_body(&format!("part-{i}"))).await,
            200
        );
    }
    // The bus takes the first two entries and refuses the rest.
    let refused = json!({"FailedEntryCount": 4, "Entries": [
        {"EventId": "a"}, {"EventId": "b"},
        {"ErrorCode": "InternalFailure", "ErrorMessage": "x"}, {"ErrorCode": "InternalFailure", "ErrorMessage": "x"},
        {"ErrorCode": "InternalFailure", "ErrorMessage": "x"}, {"ErrorCode": "InternalFailure", "ErrorMessage": "x"}
    ]});
    let refused: &'static str = Box::leak(refused.to_string().into_boxed_str());
    rig.eventbridge_proxy.script("PutEvents", Step::Answer(200, refused));
    let forwarder = rig.via_proxies.forwarder(&rig.table, &rig.bus);
    let keys: Vec<&str> = pks.iter().map(String::as_str).collect();
    let first = forwarder.forward(&keys).await;
    assert_eq!((first.forwarded, first.failed_at), (2, Some(2)), "{first:?}");
    // The stream hands back the failed record and everything after it.
    let again = forwarder.forward(&keys[2..]).await;
    assert_eq!((again.forwarded, again.failed_at), (4, None), "{again:?}");
    // The answer was the proxy's: the first two never reached moto, so in all: the last four.
    let counts = forward_counts(&rig.direct.drain(&rig.queue).await);
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    for pk in &pks {
        assert_eq!(rig.status(pk).await, Some(EventStatus::Forwarded), "{pk}");
    }
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn a_lost_answer_to_the_write_is_a_500_and_the_retry_a_duplicate_of_one_event() {
    let rig = Rig::start().await;
    let body = receive_body("lost-answer");
    // The write is applied, and every answer to it (the SDK's retries too) is lost.
    for _ in 0..4 {
        rig.dynamodb_proxy
            .script("PutItem", Step::ApplyThenAnswer(500, r#"{"__type":"InternalServerError"}"#));
    }
    let first = rig.deliver(WebhookType::Receive, &body).await;
    assert!(first == 500 || first == 200, "{first}");
    while rig.dynamodb_proxy.pending_steps() > 0 {
        assert_eq!(rig.deliver(WebhookType::Receive, &body).await, 200);
    }
    let (status, retry) = answer(
        &rig.via_proxies.receiver(WebhookType::Receive, &rig.table),
        with_body(WebhookType::Receive, body.clone()),
    )
    .await;
    assert_eq!((status, &retry["duplicate"]), (200, &json!(true)), "{retry}");
    rig.sweep().await;
    let counts = forward_counts(&rig.direct.drain(&rig.queue).await);
    assert_eq!(counts.values().copied().collect::<Vec<_>>(), [1], "{counts:?}");
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn a_write_whose_answer_was_lost_once_is_accepted_by_the_sdks_own_retry() {
    let rig = Rig::start().await;
    // The first attempt is applied and its answer lost; the SDK's retry meets its own item.
    rig.dynamodb_proxy
        .script("PutItem", Step::ApplyThenAnswer(500, r#"{"__type":"InternalServerError"}"#));
    let (status, body) = answer(
        &rig.via_proxies.receiver(WebhookType::Receive, &rig.table),
        with_body(WebhookType::Receive, receive_body("lost-once")),
    )
    .await;
    assert_eq!(rig.dynamodb_proxy.pending_steps(), 0);
    assert_eq!((status, body), (200, json!({"status": "OK"})), "accepted, not a duplicate");
    assert_eq!(rig.sweep().await.forward.forwarded, 1);
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn an_unreachable_table_is_a_500_that_writes_nothing() {
    let rig = Rig::start().await;
    rig.dynamodb_proxy.set(Fault::Refuse);
    let (status, body) =
        answer(&rig.via_proxies.receiver(WebhookType::CallLog, &rig.table), fixture("call-log"))
            .await;
    assert_eq!(status, 500, "{body}");
    rig.dynamodb_proxy.set(Fault::Pass);
    assert!(rig.direct.scan(&rig.table).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn sixty_four_concurrent_deliveries_of_one_key_make_one_event() {
    let rig = Rig::start().await;
    let receiver = std::sync::Arc::new(rig.direct.receiver(WebhookType::Receive, &rig.table));
    let body = receive_body("crowd");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let (receiver, body) = (std::sync::Arc::clone(&receiver), body.clone());
        tasks.spawn(async move { answer(&*receiver, with_body(WebhookType::Receive, body)).await });
    }
    let answers = tasks.join_all().await;
    let new = answers
        .iter()
        .filter(|(status, body)| *status == 200 && body.get("duplicate").is_none())
        .count();
    let duplicates =
        answers.iter().filter(|(status, body)| *status == 200 && body["duplicate"] == true).count();
    assert_eq!((new, duplicates), (1, 63));
    rig.sweep().await;
    assert_eq!(rig.direct.drain(&rig.queue).await.len(), 1);
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn a_malformed_pending_item_is_skipped_and_counted_never_forwarded_and_blocks_nothing() {
    let rig = Rig::start().await;
    // Written by hand: pending, in the index, but without the body.
    rig.direct
        .dynamodb
        .put_item()
        .table_name(&rig.table)
        .item("pk", S("receive#poison".into()))
        .item("status", S("PENDING".into()))
        .item("pending_type", S("receive".into()))
        .item("received_at_ms", N("1".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(rig.deliver(WebhookType::Receive, &receive_body("after-poison")).await, 200);
    let swept = rig.sweep().await;
    assert_eq!(
        (swept.forward.malformed, swept.forward.forwarded, swept.forward.failed_at),
        (1, 1, None),
        "{swept:?}"
    );
    let delivered = rig.direct.drain(&rig.queue).await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].detail["metadata"]["dedup_key"], "after-poison");
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn the_sweep_reports_the_oldest_pending_age_first_and_leaves_young_events_to_the_stream() {
    let rig = Rig::start().await;
    assert_eq!(rig.deliver(WebhookType::CallLog, &fixture_body(WebhookType::CallLog)).await, 200);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let forwarder = rig.direct.forwarder(&rig.table, &rig.bus);
    let far = Instant::now() + Duration::from_secs(600);
    let young = forwarder.sweep(60_000, far).await.unwrap();
    assert_eq!(young.forward.forwarded, 0, "younger than the setting: the stream's");
    assert!(young.oldest_pending_age_ms.unwrap() >= 1_000, "{young:?}");
    let old = forwarder.sweep(1_000, far).await.unwrap();
    assert_eq!(old.forward.forwarded, 1, "{old:?}");
    let after = forwarder.sweep(1_000, far).await.unwrap();
    assert_eq!(after.oldest_pending_age_ms, None, "nothing pending");
    assert!(forwarder.store.lookup("call_log#nothing").await.unwrap().is_none());
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn the_sweep_goes_through_every_page_of_the_pending_index() {
    let rig = Rig::start().await;
    let count = sendblue_webhooks::forward::sweep::PAGE_LIMIT + 20;
    for i in 0..count {
        let handle = format!("paged-{i:03}");
        assert_eq!(rig.deliver(WebhookType::Receive, &receive_body(&handle)).await, 200);
    }
    let swept = rig.sweep().await;
    assert_eq!((swept.forward.forwarded, swept.stopped_early), (count, false), "{swept:?}");
    let counts = forward_counts(&rig.direct.drain(&rig.queue).await);
    assert_eq!(counts.len(), count);
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn the_largest_accepted_body_fits_the_item_and_the_bus_entry_and_goes_out_alone() {
    let rig = Rig::start().await;
    let limit = sendblue_webhooks::config::MAX_BODY_BYTES_CEILING;
    let mut handles = Vec::new();
    for i in 0..3 {
        let handle = format!("largest-{i}");
        let short = receive_body(&handle);
        let padding = "x".repeat(limit - short.len() - r#","pad":"""#.len());
        let body = format!(r#"{},"pad":"{padding}"}}"#, short.trim_end_matches('}'));
        assert_eq!(body.len(), limit, "exactly the largest body accepted");
        assert_eq!(rig.deliver(WebhookType::Receive, &body).await, 200, "fits DynamoDB's item");
        handles.push(handle);
    }
    // Three entries of 240 KiB cannot share one PutEvents (256 KiB a request): one each.
    let calls = CaptureBodies::default();
    let eventbridge = aws_sdk_eventbridge::Client::from_conf(
        rig.direct.eventbridge.config().to_builder().interceptor(calls.clone()).build(),
    );
    let forwarder = sendblue_webhooks::forward::Forwarder {
        sink: sendblue_webhooks::bus::EventBridgeSink::new(eventbridge, &rig.bus),
        ..rig.direct.forwarder(&rig.table, &rig.bus)
    };
    let swept = forwarder.sweep(0, Instant::now() + Duration::from_secs(600)).await.unwrap();
    assert_eq!((swept.forward.forwarded, swept.forward.failed_at), (3, None), "{swept:?}");
    let sizes: Vec<usize> = calls.bodies().iter().map(Vec::len).collect();
    assert_eq!(sizes.len(), 3, "one PutEvents each: {sizes:?}");
    let delivered = rig.direct.drain(&rig.queue).await;
    assert_eq!(delivered.len(), 3);
    assert!(delivered.iter().all(|e| e.detail["data"]["pad"].as_str().unwrap().len() > 200_000));
}
