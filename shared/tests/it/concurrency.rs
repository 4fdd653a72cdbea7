//! Many deliveries at once through several receivers sharing one table (as concurrent Lambda
//! instances do), then the stream: every distinct event on the bus exactly once.

use std::sync::Arc;
use std::time::Duration;

use sendblue_testkit::stream_pump::{MappingSettings, PumpReport};
use sendblue_testkit::*;
use sendblue_webhooks::dedup::DynamoDbStore;
use sendblue_webhooks::{WebhookPipeline, WebhookType};
use serde_json::json;

use crate::rig::Rig;

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
async fn a_thousand_shuffled_deliveries_through_sixteen_receivers_put_each_event_on_the_bus_once() {
    const UNIQUE: usize = 700;
    const TOTAL: usize = 1000;
    let rig = Rig::start().await;
    // Two instances per function, each with SDK clients of its own.
    let mut receivers: Vec<(WebhookType, Arc<WebhookPipeline<DynamoDbStore>>)> = Vec::new();
    for t in WebhookType::ALL {
        for _ in 0..2 {
            receivers.push((t, Arc::new(Emulators::connect().await.receiver(t, &rig.table))));
        }
    }
    assert_eq!(receivers.len(), 16);

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

    let limit = Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (t, body)) in deliveries.into_iter().enumerate() {
        let instances: Vec<_> = receivers.iter().filter(|(rt, _)| *rt == t).collect();
        let receiver = Arc::clone(&instances[i % instances.len()].1);
        let limit = Arc::clone(&limit);
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.unwrap();
            let request = || with_body(t, body.clone());
            deliver_with_retries(&*receiver, request, |_| {}, Duration::from_millis(200)).await
        });
    }
    // The stream runs while the deliveries come in, as it does deployed: a repeat often meets
    // an event already forwarded, not only one still pending.
    let deliveries = tokio::spawn(tasks.join_all());
    let mut stream = rig.stream(MappingSettings::default()).await;
    let mut pumped = PumpReport::default();
    while !deliveries.is_finished() {
        pumped.absorb(rig.pump(&mut stream).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let attempts = deliveries.await.unwrap();
    let failed: Vec<_> = attempts.iter().filter(|a| a.last() != Some(&200)).collect();
    assert!(failed.is_empty(), "deliveries Sendblue would have given up on: {failed:?}");
    let retried = attempts.iter().filter(|a| a.len() > 1).count();
    pumped.absorb(rig.pump_until_idle(&mut stream).await);
    assert_eq!(pumped.failed_batches, 0, "{pumped:?}");
    let counts = forward_counts(&rig.direct.drain(&rig.queue).await);
    let lost = UNIQUE - counts.len();
    let extra: usize = counts.values().map(|n| n - 1).sum();
    eprintln!(
        "{TOTAL} deliveries ({retried} retried after a 5xx), {UNIQUE} distinct: lost {lost}, \
         on the bus twice {extra}; {} stream records in {} invocations",
        pumped.records, pumped.invocations
    );
    assert_eq!((lost, extra), (0, 0));
}
