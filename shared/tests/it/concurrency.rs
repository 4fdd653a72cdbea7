//! Many deliveries at once, through several receivers sharing one table (as concurrent Lambda
//! instances do): every event reaches the bus exactly once.

use std::sync::Arc;
use std::time::Duration;

use sendblue_testkit::*;
use sendblue_webhooks::WebhookType;
use serde_json::json;

/// Receivers that share the table and the bus but not their SDK clients.
async fn instances(
    count: usize,
    table: &str,
    bus: &str,
    webhook_type: WebhookType,
) -> Vec<Arc<AwsReceiver>> {
    let mut receivers = Vec::new();
    for _ in 0..count {
        receivers.push(Arc::new(Emulators::connect().await.receiver(webhook_type, table, bus)));
    }
    receivers
}

type AwsReceiver = sendblue_webhooks::WebhookPipeline<
    sendblue_webhooks::dedup::DynamoDbStore,
    sendblue_webhooks::forward::EventBridgeSink,
>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn sixty_four_deliveries_of_one_key_forward_exactly_once() {
    let aws = Emulators::connect().await;
    let table = aws.create_table().await;
    let (bus, queue) = aws.create_bus().await;
    let receivers = instances(8, &table, &bus, WebhookType::Receive).await;

    let mut deliveries = tokio::task::JoinSet::new();
    for i in 0..64 {
        let receiver = Arc::clone(&receivers[i % receivers.len()]);
        deliveries.spawn(async move { answer(&receiver, fixture("receive")).await });
    }
    let answers = deliveries.join_all().await;

    let forwarded = answers
        .iter()
        .filter(|(status, body)| *status == 200 && body.get("duplicate").is_none())
        .count();
    assert_eq!(forwarded, 1, "{answers:?}");
    for (status, body) in &answers {
        let duplicate = *status == 200 && body["duplicate"] == true;
        let in_progress = *status == 503;
        assert!(duplicate || in_progress || body == &json!({"status": "OK"}), "{status} {body}");
    }
    assert_eq!(aws.drain(&queue).await.len(), 1, "exactly one event on the bus");
}

/// A body of `webhook_type` whose key is made from `n`.
fn event_body(webhook_type: WebhookType, n: usize) -> String {
    let id = format!("id-{n:05}");
    let fields = match webhook_type {
        WebhookType::Receive => vec![("message_handle", json!(id))],
        WebhookType::Outbound | WebhookType::StatusCallback => {
            let status = ["QUEUED", "SENT", "DELIVERED"][n % 3];
            vec![("message_handle", json!(format!("m-{}", n / 3))), ("status", json!(status))]
        }
        WebhookType::TypingIndicator => vec![("timestamp", json!(n))],
        WebhookType::CallLog => vec![("call_id", json!(id))],
        WebhookType::LineBlocked | WebhookType::LineAssigned => vec![("number", json!(id))],
        WebhookType::ContactCreated => vec![("contact_id", json!(id))],
    };
    body_with(webhook_type, &fields)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn a_thousand_shuffled_deliveries_with_repeats_forward_every_key_once() {
    const UNIQUE: usize = 700;
    const TOTAL: usize = 1000;
    let aws = Emulators::connect().await;
    let table = aws.create_table().await;
    let (bus, queue) = aws.create_bus().await;
    let mut receivers = Vec::new();
    for t in WebhookType::ALL {
        receivers.push((t, instances(2, &table, &bus, t).await));
    }

    // 700 distinct events spread over the eight functions, 300 repeats of random ones, shuffled.
    let mut rng = fastrand::Rng::with_seed(7);
    let mut deliveries: Vec<(WebhookType, String)> = (0..UNIQUE)
        .map(|n| WebhookType::ALL[n % WebhookType::ALL.len()])
        .enumerate()
        .map(|(n, t)| (t, event_body(t, n)))
        .collect();
    for _ in UNIQUE..TOTAL {
        let repeat = deliveries[rng.usize(..UNIQUE)].clone();
        deliveries.push(repeat);
    }
    rng.shuffle(&mut deliveries);

    // Bounded so that moto (one Python process) answers within the SDK's timeouts: a PutEvents
    // that times out after EventBridge took it is the at-least-once case the README documents.
    let limit = Arc::new(tokio::sync::Semaphore::new(8));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (t, body)) in deliveries.into_iter().enumerate() {
        let instances = &receivers.iter().find(|(rt, _)| *rt == t).unwrap().1;
        let receiver = Arc::clone(&instances[i % instances.len()]);
        let limit = Arc::clone(&limit);
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.unwrap();
            let request = || with_body(t, body.clone());
            deliver_with_retries(&receiver, request, |_| {}, Duration::from_millis(500)).await
        });
    }
    let attempts = tasks.join_all().await;
    // A repeat may still find its key in progress after Sendblue's last retry (503): nothing is
    // lost as long as the delivery holding the key forwarded it, which the counts below check.
    let failed: Vec<_> = attempts.iter().filter(|a| !matches!(a.last(), Some(200 | 503))).collect();
    assert!(failed.is_empty(), "deliveries that failed: {failed:?}");
    let gave_up_in_progress = attempts.iter().filter(|a| a.last() == Some(&503)).count();

    let counts = forward_counts(&aws.drain(&queue).await);
    let lost = UNIQUE - counts.len();
    let extra: usize = counts.values().map(|n| n - 1).sum();
    // Measured, then judged: the line reports what this run saw.
    eprintln!(
        "{} deliveries, {UNIQUE} distinct: lost {lost}, forwarded twice {extra}; \
         {gave_up_in_progress} repeats still in progress after the last retry",
        attempts.len()
    );
    let twice: Vec<_> = counts.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "forwarded more than once: {twice:?}");
    assert_eq!(lost, 0, "every distinct event forwarded");
}
