//! Faults injected on real sockets (a TCP proxy between the SDK clients and the emulators),
//! with deliveries driven by Sendblue's retry policy: nothing lost, nothing forwarded twice
//! outside the one documented window.

use std::time::Duration;

use lambda_http::RequestExt;
use sendblue_testkit::proxy::{Fault, FaultProxy, Step};
use sendblue_testkit::*;
use sendblue_webhooks::config::Backend;
use sendblue_webhooks::dedup::{ClaimStatus, DynamoDbStore};
use sendblue_webhooks::forward::{EventBridgeSink, EventSink, ForwardError, OutgoingEvent};
use sendblue_webhooks::outcome::Outcome;
use sendblue_webhooks::{WebhookPipeline, WebhookType};
use serde_json::json;

const ROUNDS: usize = 12;
const PAUSE: Duration = Duration::from_millis(20);

/// The emulators directly (to set up and read back) and through a proxy each (for receivers).
struct Rig {
    direct: Emulators,
    via_proxies: Emulators,
    dynamodb_proxy: FaultProxy,
    eventbridge_proxy: FaultProxy,
    table: String,
    bus: String,
    queue: String,
}

impl Rig {
    async fn start() -> Self {
        let dynamodb_proxy = FaultProxy::start(&dynamodb_endpoint()).await;
        let eventbridge_proxy = FaultProxy::start(&moto_endpoint()).await;
        let direct = Emulators::connect().await;
        let via_proxies =
            Emulators::connect_to(&dynamodb_proxy.endpoint, &eventbridge_proxy.endpoint).await;
        let table = direct.create_table().await;
        let (bus, queue) = direct.create_bus().await;
        Self { direct, via_proxies, dynamodb_proxy, eventbridge_proxy, table, bus, queue }
    }

    fn receiver(&self) -> WebhookPipeline<DynamoDbStore, EventBridgeSink> {
        self.via_proxies.receiver(WebhookType::Receive, &self.table, &self.bus)
    }

    async fn claim_status(&self, handle: &str) -> Option<ClaimStatus> {
        self.direct.item(&self.table, &format!("receive#{handle}")).await.map(|item| item.status)
    }
}

fn receive_body(handle: &str) -> String {
    body_with(WebhookType::Receive, &[("message_handle", json!(handle))])
}

/// `ROUNDS` events, each delivered while `fault` is set on `proxy` for the first 1 to 3 attempts
/// and healed after; checks every failed attempt's answer and that it left no claim behind.
async fn heals_without_loss(rig: &Rig, proxy: &FaultProxy, fault: Fault, failed_status: u16) {
    let receiver = rig.receiver();
    let mut handles = Vec::new();
    for round in 0..ROUNDS {
        let handle = unique("fault");
        let failing_attempts = round % SENDBLUE_RETRIES + 1;
        let body = receive_body(&handle);
        let statuses = deliver_with_retries(
            &receiver,
            || with_body(WebhookType::Receive, body.clone()),
            |attempt| proxy.set(if attempt < failing_attempts { fault } else { Fault::Pass }),
            PAUSE,
        )
        .await;
        let mut expected = vec![failed_status; failing_attempts];
        expected.push(200);
        assert_eq!(statuses, expected, "round {round}");
        handles.push(handle);
    }
    let counts = forward_counts(&rig.direct.drain(&rig.queue).await);
    for handle in &handles {
        assert_eq!(counts.get(&("receive".into(), handle.clone())), Some(&1), "{handle}");
        assert_eq!(rig.claim_status(handle).await, Some(ClaimStatus::Completed));
    }
    assert_eq!(counts.len(), ROUNDS, "lost 0, forwarded twice 0");
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn eventbridge_unreachable_answers_502_releases_the_claim_and_the_retry_forwards_once() {
    let rig = Rig::start().await;
    heals_without_loss(&rig, &rig.eventbridge_proxy, Fault::Refuse, 502).await;
}

/// What EventBridge answers when it refuses an entry: HTTP 200, the failure inside.
const PUT_EVENTS_ENTRY_FAILED: &str = r#"{"FailedEntryCount":1,"Entries":[{"ErrorCode":"InternalFailure","ErrorMessage":"injected"}]}"#;

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn a_put_events_entry_failure_is_a_502_with_no_claim_and_the_retry_forwards_once() {
    let rig = Rig::start().await;
    heals_without_loss(
        &rig,
        &rig.eventbridge_proxy,
        Fault::Answer(200, PUT_EVENTS_ENTRY_FAILED),
        502,
    )
    .await;
}

/// DynamoDB's answer when a partition is over its throughput.
const THROTTLED: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"injected"}"#;

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn dynamodb_throttling_on_the_claim_answers_500_and_the_retry_forwards_once() {
    let rig = Rig::start().await;
    heals_without_loss(&rig, &rig.dynamodb_proxy, Fault::Answer(400, THROTTLED), 500).await;
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn dynamodb_unreachable_answers_500_forwards_nothing_and_the_retry_forwards_once() {
    let rig = Rig::start().await;
    heals_without_loss(&rig, &rig.dynamodb_proxy, Fault::Refuse, 500).await;
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn a_hanging_eventbridge_times_out_into_a_502_and_no_claim() {
    let rig = Rig::start().await;
    let receiver = rig.receiver();
    let handle = unique("hang");
    rig.eventbridge_proxy.set(Fault::Delay(Duration::from_secs(30)));
    let started = std::time::Instant::now();
    let (status, _) =
        answer(&receiver, with_body(WebhookType::Receive, receive_body(&handle))).await;
    let waited = started.elapsed();
    assert_eq!(status, 502);
    assert!(waited < Duration::from_secs(8), "answered within the SDK timeouts: {waited:?}");
    assert_eq!(rig.claim_status(&handle).await, None, "the claim was released");

    rig.eventbridge_proxy.set(Fault::Pass);
    let (status, _) =
        answer(&receiver, with_body(WebhookType::Receive, receive_body(&handle))).await;
    assert_eq!(status, 200);
    assert_eq!(rig.direct.drain(&rig.queue).await.len(), 1);
}

/// Forwards through EventBridge, then cuts DynamoDB: the completion write fails.
struct CutStoreAfterForward<'a> {
    sink: EventBridgeSink,
    dynamodb_proxy: &'a FaultProxy,
}

impl EventSink for CutStoreAfterForward<'_> {
    async fn forward(&self, event: &OutgoingEvent<'_>) -> Result<(), ForwardError> {
        let result = self.sink.forward(event).await;
        self.dynamodb_proxy.set(Fault::Refuse);
        result
    }
}

/// The documented window: the event is delivered but not marked completed, so a duplicate gets
/// 503 until the lease ends and is then forwarded a second time, with the same dedup key.
#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn a_failed_completion_still_answers_200_and_a_late_duplicate_is_forwarded_again() {
    let rig = Rig::start().await;
    let config = config(
        WebhookType::Receive,
        Backend::Aws { table_name: rig.table.clone(), bus_name: rig.bus.clone() },
    );
    let sink = CutStoreAfterForward {
        sink: rig.via_proxies.sink(&rig.bus),
        dynamodb_proxy: &rig.dynamodb_proxy,
    };
    let cutting = WebhookPipeline::new(
        WebhookType::Receive,
        &config,
        rig.via_proxies.store(&rig.table),
        sink,
    );
    let healthy = rig.receiver();
    let handle = unique("completion");
    // Longer than the SDK's 5 s operation timeout, which the failing completion may use up.
    let lease_ms = 8_000;
    let request = || {
        let mut context = lambda_http::Context::default();
        context.deadline = now_ms() + lease_ms;
        with_body(WebhookType::Receive, receive_body(&handle)).with_lambda_context(context)
    };

    let processed = cutting.process(&request()).await;
    assert_eq!(processed.outcome.name(), "completion_failed", "counted apart: {processed:?}");
    assert_eq!(processed.outcome.status(), 200, "delivered");
    rig.dynamodb_proxy.set(Fault::Pass);
    let item = rig.direct.item(&rig.table, &format!("receive#{handle}")).await.unwrap();
    assert_eq!(item.status, ClaimStatus::InProgress);
    assert_eq!(answer(&healthy, request()).await.0, 503, "within the lease");

    sleep_until_ms(item.lease_until_ms + 100).await;
    assert_eq!(
        answer(&healthy, request()).await,
        (200, json!({"status": "OK"})),
        "after the lease"
    );
    assert_eq!(answer(&healthy, request()).await.1["duplicate"], true, "then a plain duplicate");

    let delivered = rig.direct.drain(&rig.queue).await;
    assert_eq!(delivered.len(), 2, "the one documented double delivery");
    assert_eq!(
        delivered[0].detail["metadata"]["dedup_key"],
        delivered[1].detail["metadata"]["dedup_key"]
    );
}

/// DynamoDB's answer to a request it failed after applying it, or before: the SDK retries it.
const INTERNAL_ERROR: &str =
    r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected"}"#;

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn a_claim_applied_whose_answer_was_lost_is_still_ours() {
    let rig = Rig::start().await;
    let receiver = rig.receiver();
    let handle = unique("lost-claim-answer");
    rig.dynamodb_proxy.script("PutItem", Step::ApplyThenAnswer(500, INTERNAL_ERROR));
    let (status, body) =
        answer(&receiver, with_body(WebhookType::Receive, receive_body(&handle))).await;
    assert_eq!(rig.dynamodb_proxy.pending_steps(), 0, "the claim's answer was lost");
    assert_eq!((status, body), (200, json!({"status": "OK"})), "not 503 on its own claim");
    assert_eq!(rig.claim_status(&handle).await, Some(ClaimStatus::Completed));
    assert_eq!(rig.direct.drain(&rig.queue).await.len(), 1, "forwarded once");
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn a_release_or_completion_applied_whose_answer_was_lost_has_succeeded() {
    let rig = Rig::start().await;
    let receiver = rig.receiver();
    let handle = unique("lost-release-answer");
    let request = || with_body(WebhookType::Receive, receive_body(&handle));

    rig.eventbridge_proxy.set(Fault::Refuse);
    rig.dynamodb_proxy.script("DeleteItem", Step::ApplyThenAnswer(500, INTERNAL_ERROR));
    let processed = receiver.process(&request()).await;
    assert_eq!(rig.dynamodb_proxy.pending_steps(), 0, "the release's answer was lost");
    assert!(
        matches!(processed.outcome, Outcome::ForwardFailed { release_error: None, .. }),
        "the retried release found its work done: {processed:?}"
    );
    assert_eq!(rig.claim_status(&handle).await, None);

    rig.eventbridge_proxy.set(Fault::Pass);
    rig.dynamodb_proxy.script("UpdateItem", Step::ApplyThenAnswer(500, INTERNAL_ERROR));
    let processed = receiver.process(&request()).await;
    assert_eq!(rig.dynamodb_proxy.pending_steps(), 0, "the completion's answer was lost");
    assert!(matches!(processed.outcome, Outcome::Forwarded), "{processed:?}");
    assert_eq!(rig.claim_status(&handle).await, Some(ClaimStatus::Completed));
    assert_eq!(answer(&receiver, request()).await.1["duplicate"], true);
    assert_eq!(rig.direct.drain(&rig.queue).await.len(), 1, "forwarded once");
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn a_failed_condition_whose_item_vanished_claims_again_and_never_assumes_the_key() {
    let rig = Rig::start().await;
    let receiver = rig.receiver();
    let handle = unique("vanished");
    let request = || with_body(WebhookType::Receive, receive_body(&handle));
    assert_eq!(answer(&receiver, request()).await.0, 200);

    // The conditional put fails on the completed item, but its answer carries no item and
    // the consistent read finds none (as when a release races the claim).
    rig.dynamodb_proxy.script("PutItem", Step::ApplyThenStrip("Item"));
    rig.dynamodb_proxy.script("GetItem", Step::Answer(200, "{}"));
    let (status, body) = answer(&receiver, request()).await;
    assert_eq!(rig.dynamodb_proxy.pending_steps(), 0, "both faults met their requests");
    assert_eq!((status, body["duplicate"].clone()), (200, json!(true)), "claimed again: {body}");
    assert_eq!(rig.direct.drain(&rig.queue).await.len(), 1, "forwarded once");
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn a_failed_condition_without_the_old_item_reads_it_and_answers_duplicate() {
    let rig = Rig::start().await;
    let receiver = rig.receiver();
    let handle = unique("fallback-read");
    let request = || with_body(WebhookType::Receive, receive_body(&handle));
    assert_eq!(answer(&receiver, request()).await.0, 200);

    // DynamoDB may fail the condition without returning the old item: the consistent read
    // that follows finds the completed item.
    rig.dynamodb_proxy.script("PutItem", Step::ApplyThenStrip("Item"));
    let (status, body) = answer(&receiver, request()).await;
    assert_eq!(rig.dynamodb_proxy.pending_steps(), 0, "the failure came without its item");
    assert_eq!((status, body["duplicate"].clone()), (200, json!(true)), "{body}");
    assert_eq!(rig.direct.drain(&rig.queue).await.len(), 1, "forwarded once");
}

/// EventBridge's answer to a request it failed after applying it, or before.
const EVENTS_INTERNAL_ERROR: &str = r#"{"__type":"InternalException","message":"injected"}"#;

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn a_forward_failure_then_a_release_failure_holds_the_key_until_the_lease_and_loses_nothing()
{
    let rig = Rig::start().await;
    let receiver = rig.receiver();
    let handle = unique("release-fails");
    let lease_ms = 6_000;
    let request = || {
        let mut context = lambda_http::Context::default();
        context.deadline = now_ms() + lease_ms;
        with_body(WebhookType::Receive, receive_body(&handle)).with_lambda_context(context)
    };
    rig.eventbridge_proxy.set(Fault::Refuse);
    // Every attempt of the SDK at the release fails.
    for _ in 0..3 {
        rig.dynamodb_proxy.script("DeleteItem", Step::Answer(500, INTERNAL_ERROR));
    }
    let processed = receiver.process(&request()).await;
    assert!(
        matches!(processed.outcome, Outcome::ForwardFailed { release_error: Some(_), .. }),
        "{processed:?}"
    );
    assert_eq!(processed.outcome.status(), 502, "Sendblue retries");
    let item = rig.direct.item(&rig.table, &format!("receive#{handle}")).await.unwrap();
    assert_eq!(item.status, ClaimStatus::InProgress, "the claim stays");

    rig.eventbridge_proxy.set(Fault::Pass);
    let response = receiver.handle(request()).await;
    assert_eq!(response.status(), 503, "within the lease, the retry is told to come back");
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=lease_ms / 1000).contains(&retry_after), "{retry_after}");

    sleep_until_ms(item.lease_until_ms + 100).await;
    assert_eq!(answer(&receiver, request()).await, (200, json!({"status": "OK"})), "after it");
    assert_eq!(rig.direct.drain(&rig.queue).await.len(), 1, "forwarded once, nothing lost");
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn a_put_events_accepted_whose_answer_was_lost_is_forwarded_twice_with_one_dedup_key() {
    let rig = Rig::start().await;
    let receiver = rig.receiver();
    let handle = unique("lost-put-events-answer");
    rig.eventbridge_proxy.script("PutEvents", Step::ApplyThenAnswer(500, EVENTS_INTERNAL_ERROR));
    let (status, body) =
        answer(&receiver, with_body(WebhookType::Receive, receive_body(&handle))).await;
    assert_eq!(
        rig.eventbridge_proxy.pending_steps(),
        0,
        "EventBridge took the event, lost its answer"
    );
    assert_eq!((status, body), (200, json!({"status": "OK"})), "the SDK's retry succeeded");
    // The documented window: the bus has the event twice, and consumers can tell by the key.
    let delivered = rig.direct.drain(&rig.queue).await;
    assert_eq!(delivered.len(), 2, "{delivered:?}");
    assert_eq!(delivered[0].detail["metadata"]["dedup_key"], handle.as_str());
    assert_eq!(delivered[1].detail["metadata"]["dedup_key"], handle.as_str());
    assert_eq!(rig.claim_status(&handle).await, Some(ClaimStatus::Completed));
}
