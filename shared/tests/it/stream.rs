//! The `forward` function fed by DynamoDB Local's real stream, through the test pump that stands
//! in for the event source mapping (`testkit::stream_pump`): in stream order, each accepted event
//! on the bus once, whatever the bus does meanwhile; a second copy only in the one documented
//! window; and the sweep behind a stream that stopped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sendblue_testkit::proxy::{Fault, Step};
use sendblue_testkit::stream_pump::{Invocation, MappingSettings};
use sendblue_testkit::*;
use sendblue_webhooks::bus::{EventSink, ForwardError, OutgoingEvent};
use sendblue_webhooks::dedup::EventStatus;
use sendblue_webhooks::forward::Forwarder;
use sendblue_webhooks::WebhookType;
use serde_json::Value;
use tokio::time::Instant;

use crate::rig::{receive_body, Rig};

/// Delivers `count` receive events named `{prefix}-{i}`, each answered 200; their keys in order.
async fn deliver_all(rig: &Rig, prefix: &str, count: usize) -> Vec<String> {
    let mut keys = Vec::new();
    for i in 0..count {
        let handle = format!("{prefix}-{i:03}");
        assert_eq!(
            rig.deliver(WebhookType::Receive, &receive_body(&handle)).await,
            200,
            "{handle}"
        );
        keys.push(handle);
    }
    keys
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn the_stream_puts_each_accepted_event_on_the_bus_once_in_the_order_accepted() {
    let rig = Rig::start().await;
    let keys = deliver_all(&rig, "in-order", 25).await;
    let mut stream = rig.stream(MappingSettings::default()).await;
    let pumped = rig.pump_until_idle(&mut stream).await;
    // 25 new events and 25 marks: the marks are records too, read and never forwarded.
    assert_eq!((pumped.records, pumped.failed_batches), (50, 0), "{pumped:?}");
    assert_eq!(rig.keys_on_the_bus().await, keys);
    for key in &keys {
        assert_eq!(rig.status(&format!("receive#{key}")).await, Some(EventStatus::Forwarded));
    }
    assert_eq!(rig.sweep().await.forward.forwarded, 0, "nothing left pending");
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn with_the_bus_down_every_delivery_is_200_and_the_stream_catches_up_in_order_once() {
    let rig = Rig::start().await;
    rig.eventbridge_proxy.set(Fault::Refuse);
    let keys = deliver_all(&rig, "bus-down", 25).await;
    let mut stream = rig.stream(MappingSettings::default()).await;
    // The mapping retries the shard's first batch while the bus is down; nothing goes out.
    for _ in 0..3 {
        let pumped = rig.pump(&mut stream).await;
        assert_eq!((pumped.invocations, pumped.failed_batches), (1, 1), "{pumped:?}");
        assert!(pumped.discarded.is_empty());
    }
    assert_eq!(rig.status("receive#bus-down-000").await, Some(EventStatus::Pending));
    assert!(rig.keys_on_the_bus().await.is_empty());
    rig.eventbridge_proxy.set(Fault::Pass);
    let pumped = rig.pump(&mut stream).await;
    assert_eq!(pumped.failed_batches, 0, "{pumped:?}");
    assert_eq!(rig.keys_on_the_bus().await, keys, "each once, in the order accepted");
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn a_partial_put_events_failure_hands_back_the_rest_of_the_batch_and_each_goes_out_once() {
    let rig = Rig::start().await;
    let keys = deliver_all(&rig, "partial", 6).await;
    let refused = r#"{"FailedEntryCount":4,"Entries":[{"EventId":"a"},{"EventId":"b"},
        {"ErrorCode":"InternalFailure","ErrorMessage":"x"},{"ErrorCode":"InternalFailure","ErrorMessage":"x"},
        {"ErrorCode":"InternalFailure","ErrorMessage":"x"},{"ErrorCode":"InternalFailure","ErrorMessage":"x"}]}"#;
    // The bus's answer says it took the first two (it took nothing: the proxy answered), so the
    // third record is the batch's failure, and the retry starts there.
    rig.eventbridge_proxy.script("PutEvents", Step::Answer(200, refused));
    let mut stream = rig.stream(MappingSettings::default()).await;
    let first = rig.pump(&mut stream).await;
    assert_eq!(first.failed_batches, 1, "{first:?}");
    for key in &keys[..2] {
        assert_eq!(rig.status(&format!("receive#{key}")).await, Some(EventStatus::Forwarded));
    }
    let retry = rig.pump(&mut stream).await;
    assert_eq!(retry.failed_batches, 0, "{retry:?}");
    assert_eq!(rig.keys_on_the_bus().await, keys[2..], "the rest, once each, in order");
}

/// Items no receiver wrote, put in the table by hand between accepted events: whole but for
/// the body, and whole but of a type no function has.
async fn write_poison(rig: &Rig) -> [&'static str; 2] {
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    let poison =
        [("receive#poison-no-body", "receive", None), ("receive#poison-type", "fax", Some("{}"))];
    for (pk, webhook_type, body) in poison {
        let item = rig
            .direct
            .dynamodb
            .put_item()
            .table_name(&rig.table)
            .item("pk", S(pk.into()))
            .item("status", S("PENDING".into()))
            .item("write_id", S("by-hand".into()))
            .item("body_sha256", S("0".repeat(64)))
            .item("webhook_type", S(webhook_type.into()))
            .item("dedup_key", S(pk.into()))
            .item("received_at_ms", N("1".into()))
            .item("request_id", S("by-hand".into()))
            .item("origin", S("webhook".into()))
            .item("pending_type", S("receive".into()));
        let item = match body {
            Some(body) => item.item("body", S(body.into())),
            None => item,
        };
        item.send().await.unwrap();
    }
    poison.map(|(pk, ..)| pk)
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn a_poison_record_is_skipped_and_counted_and_never_blocks_the_shard() {
    let rig = Rig::start().await;
    let mut keys = deliver_all(&rig, "before-poison", 3).await;
    let poison = write_poison(&rig).await;
    keys.extend(deliver_all(&rig, "after-poison", 3).await);
    let mut stream = rig.stream(MappingSettings::default()).await;
    let pumped = rig.pump_until_idle(&mut stream).await;
    assert_eq!((pumped.failed_batches, pumped.discarded.len()), (0, 0), "{pumped:?}");
    assert_eq!(rig.keys_on_the_bus().await, keys, "every good event once, in order");
    let forwarder = rig.via_proxies.forwarder(&rig.table, &rig.bus);
    for pk in poison {
        assert_eq!(rig.status(pk).await, Some(EventStatus::Pending), "{pk}: never forwarded");
        let report = forwarder.forward(&[pk]).await;
        assert_eq!((report.malformed, report.forwarded, report.failed_at), (1, 0, None), "{pk}");
    }
    assert!(rig.keys_on_the_bus().await.is_empty());
}

/// Puts the batch on the bus, then hangs the first `crashes` times: the invocation times out
/// after `PutEvents` and before any mark, as a function killed at that moment would.
struct CrashAfterPut<E> {
    inner: E,
    crashes: AtomicUsize,
}

impl<E: EventSink> EventSink for CrashAfterPut<E> {
    async fn put_batch(
        &self,
        events: &[OutgoingEvent<'_>],
    ) -> Result<Vec<Result<(), ForwardError>>, ForwardError> {
        let result = self.inner.put_batch(events).await;
        let crash =
            self.crashes.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if crash.is_ok() {
            std::future::pending::<()>().await;
        }
        result
    }
}

/// The invocation as Lambda runs it: an error when it outlives its timeout.
async fn invoke_with_timeout<S, E>(forwarder: &Forwarder<S, E>, payload: Value) -> Invocation
where
    S: sendblue_webhooks::dedup::DedupStore,
    E: EventSink,
{
    let invocation = invoke_forward(forwarder, payload);
    tokio::time::timeout(Duration::from_secs(3), invocation)
        .await
        .unwrap_or_else(|_| Err("Task timed out after 3.00 seconds".into()))
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn a_forward_that_dies_between_put_events_and_the_marks_sends_its_batch_twice_never_zero() {
    let rig = Rig::start().await;
    let keys = deliver_all(&rig, "crash", 4).await;
    let forwarder = Forwarder {
        sink: CrashAfterPut { inner: rig.direct.sink(&rig.bus), crashes: AtomicUsize::new(1) },
        store: rig.direct.store(&rig.table),
        event_source: sendblue_webhooks::config::DEFAULT_EVENT_SOURCE.into(),
        dedup_ttl_seconds: sendblue_webhooks::config::DEFAULT_DEDUP_TTL_SECONDS,
    };
    let mut stream = rig.stream(MappingSettings::default()).await;
    let crashed = stream.pump(|payload| invoke_with_timeout(&forwarder, payload)).await;
    assert_eq!(crashed.failed_batches, 1, "{crashed:?}");
    assert_eq!(rig.status("receive#crash-000").await, Some(EventStatus::Pending), "not marked");
    let retried = stream.pump(|payload| invoke_with_timeout(&forwarder, payload)).await;
    assert_eq!(retried.failed_batches, 0, "{retried:?}");
    let on_the_bus = rig.keys_on_the_bus().await;
    let twice: Vec<String> = keys.iter().chain(&keys).cloned().collect();
    assert_eq!(on_the_bus, twice, "the window: the whole batch again, same keys");
    assert_eq!(rig.sweep().await.forward.forwarded, 0, "and then settled");
}

/// DynamoDB's answer to a call that failed on its side (the SDK retries it).
const INTERNAL_ERROR: &str =
    r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected"}"#;

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn a_failed_mark_is_counted_and_the_event_goes_out_again_rather_than_never() {
    let rig = Rig::start().await;
    deliver_all(&rig, "unmarked", 1).await;
    // Every attempt of the one mark (the SDK makes three) fails.
    for _ in 0..3 {
        rig.dynamodb_proxy.script("UpdateItem", Step::Answer(500, INTERNAL_ERROR));
    }
    let forwarder = rig.via_proxies.forwarder(&rig.table, &rig.bus);
    let report = forwarder.forward(&["receive#unmarked-000"]).await;
    assert_eq!((report.forwarded, report.mark_failures, report.failed_at), (1, 1, None));
    assert_eq!(rig.dynamodb_proxy.pending_steps(), 0);
    assert_eq!(rig.status("receive#unmarked-000").await, Some(EventStatus::Pending));
    assert_eq!(rig.sweep().await.forward.forwarded, 1, "still pending: out again");
    assert_eq!(rig.keys_on_the_bus().await, ["unmarked-000", "unmarked-000"]);
    assert_eq!(rig.status("receive#unmarked-000").await, Some(EventStatus::Forwarded));
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn a_mark_whose_answer_was_lost_is_known_as_its_own_not_counted_as_a_race() {
    use sendblue_webhooks::dedup::{DedupStore, Marked, Pending};
    let rig = Rig::start().await;
    deliver_all(&rig, "mark-answer-lost", 1).await;
    let pk = "receive#mark-answer-lost-000";
    let forwarder = rig.via_proxies.forwarder(&rig.table, &rig.bus);
    // What a second forward read while the item was pending.
    let Pending::Event(read_by_another) = forwarder.store.pending(&[pk]).await.unwrap().remove(0)
    else {
        panic!("not pending")
    };
    // The mark is applied and its answer lost; the SDK's retry meets the item it marked.
    rig.dynamodb_proxy.script("UpdateItem", Step::ApplyThenAnswer(500, INTERNAL_ERROR));
    let report = forwarder.forward(&[pk]).await;
    assert_eq!(rig.dynamodb_proxy.pending_steps(), 0);
    assert_eq!(
        (report.forwarded, report.mark_races, report.mark_failures),
        (1, 0, 0),
        "{report:?}"
    );
    assert_eq!(rig.status(pk).await, Some(EventStatus::Forwarded));
    // The second forward marking it now did race: that one is told so.
    assert_eq!(forwarder.store.mark_forwarded(&read_by_another, 1).await.unwrap(), Marked::Already);
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn when_the_stream_gives_up_the_sweep_delivers_every_event_and_the_stream_adds_nothing() {
    let rig = Rig::start().await;
    rig.eventbridge_proxy.set(Fault::Refuse);
    let keys = deliver_all(&rig, "given-up", 12).await;
    // A mapping that retries each batch once, then sends it to its on-failure queue.
    let settings = MappingSettings { batch_size: 10, max_retry_attempts: 1 };
    let mut stream = rig.stream(settings).await;
    let pumped = stream_until_given_up(&rig, &mut stream, 12).await;
    assert_eq!(pumped, 12, "every record went to the on-failure destination");
    // The oldest-pending alarm's metric sees them before the sweep takes them.
    let blocked = rig.sweep().await;
    assert!(blocked.stopped_early && blocked.oldest_pending_age_ms.is_some(), "{blocked:?}");
    rig.eventbridge_proxy.set(Fault::Pass);
    let swept = rig.sweep().await;
    assert_eq!((swept.forward.forwarded, swept.stopped_early), (12, false), "{swept:?}");
    let mut on_the_bus = rig.keys_on_the_bus().await;
    on_the_bus.sort();
    assert_eq!(on_the_bus, keys);

    // A record is a snapshot: the stream, resumed, reads this event as pending after the sweep
    // has sent it, reads it again, and sends nothing.
    let late = deliver_all(&rig, "swept-first", 1).await;
    let far = Instant::now() + Duration::from_secs(600);
    let swept = rig.direct.forwarder(&rig.table, &rig.bus).sweep(0, far).await.unwrap();
    assert_eq!(swept.forward.forwarded, 1);
    let resumed = rig.pump(&mut stream).await;
    assert!(resumed.records > 0 && resumed.failed_batches == 0, "{resumed:?}");
    assert_eq!(rig.keys_on_the_bus().await, late, "once: by the sweep");
}

/// Pumps while the bus is down until `expected` records were given up on; how many were.
async fn stream_until_given_up(
    rig: &Rig,
    stream: &mut sendblue_testkit::stream_pump::StreamPump,
    expected: usize,
) -> usize {
    let mut discarded = 0;
    for _ in 0..10 {
        discarded += rig.pump(stream).await.discarded.len();
        if discarded >= expected {
            break;
        }
    }
    discarded
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn after_an_outage_the_resumed_stream_and_a_sweep_at_the_same_time_send_each_event_once() {
    // SWEEP_MIN_AGE_SECONDS, shortened from the deployed 300 so that the test takes seconds.
    const MIN_AGE_S: u64 = 2;
    let rig = Rig::start().await;
    rig.eventbridge_proxy.set(Fault::Refuse);
    let backlog = deliver_all(&rig, "backlog", 100).await;
    let forwarder = rig.via_proxies.forwarder(&rig.table, &rig.bus);
    let invoke = |payload| invoke_forward_with(&forwarder, payload, MIN_AGE_S);
    let mut stream = rig.stream(MappingSettings::default()).await;
    assert_eq!(stream.pump(invoke).await.failed_batches, 1, "the bus is down");
    tokio::time::sleep(Duration::from_millis(MIN_AGE_S * 1000 + 100)).await;
    rig.eventbridge_proxy.set(Fault::Pass);
    let fresh = deliver_all(&rig, "fresh", 20).await;
    // The bus is back: the mapping's next retry and the schedule's sweep come together.
    let far = Instant::now() + Duration::from_secs(600);
    let (pumped, swept) =
        tokio::join!(stream.pump_until_idle(10, invoke), forwarder.sweep(MIN_AGE_S * 1000, far));
    let swept = swept.unwrap();
    let counts = forward_counts(&rig.direct.drain(&rig.queue).await);
    let twice = counts.values().filter(|&&n| n > 1).count();
    println!(
        "{} events: {} on the bus, {} by the sweep, {twice} twice; {} stream invocations",
        backlog.len() + fresh.len(),
        counts.values().sum::<usize>(),
        swept.forward.forwarded,
        pumped.invocations
    );
    assert_eq!(twice, 0, "{counts:?}");
    assert_eq!(counts.len(), backlog.len() + fresh.len(), "every event on the bus");
    assert_eq!(swept.forward.forwarded, backlog.len(), "the backlog by the sweep");
}
