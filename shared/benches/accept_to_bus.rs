//! Accept-to-bus latency through the table's stream: receivers accept events at a steady rate on
//! DynamoDB Local while the stream pump (testkit) polls the real stream as Lambda's event source
//! mapping does (a shard four times a second) and hands each batch to the `forward` handler on
//! moto's EventBridge. Each event's latency runs from its 200 to the moment `PutEvents` that
//! carried it returned. Needs the emulators (bench/run.sh starts them):
//!
//! ```sh
//! SENDBLUE_TEST_DYNAMODB_ENDPOINT=http://127.0.0.1:<port> SENDBLUE_TEST_MOTO_ENDPOINT=http://127.0.0.1:<port> \
//!   cargo bench -p sendblue-webhooks --bench accept_to_bus -- [EVENTS] [PER_SECOND]
//! ```

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sendblue_testkit::stream_pump::MappingSettings;
use sendblue_testkit::*;
use sendblue_webhooks::bus::{EventSink, ForwardError, OutgoingEvent};
use sendblue_webhooks::forward::Forwarder;
use sendblue_webhooks::WebhookType;
use serde_json::{json, Value};

/// How often the mapping polls a shard (Lambda: four times a second).
const POLL_EVERY: Duration = Duration::from_millis(250);

/// The bus, with the moment each event's `PutEvents` returned, by dedup key.
struct Stamped<E> {
    inner: E,
    on_the_bus: Mutex<HashMap<String, Instant>>,
}

impl<E: EventSink> EventSink for Stamped<E> {
    async fn put_batch(
        &self,
        events: &[OutgoingEvent<'_>],
    ) -> Result<Vec<Result<(), ForwardError>>, ForwardError> {
        let results = self.inner.put_batch(events).await?;
        let now = Instant::now();
        let mut stamps = self.on_the_bus.lock().unwrap();
        for (event, result) in events.iter().zip(&results) {
            if result.is_ok() {
                let detail: Value = serde_json::from_str(event.detail).unwrap();
                let key = detail["metadata"]["dedup_key"].as_str().unwrap().to_owned();
                stamps.entry(key).or_insert(now);
            }
        }
        Ok(results)
    }
}

fn percentile(sorted_ms: &[f64], p: f64) -> f64 {
    sorted_ms[((sorted_ms.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (events, per_second) =
        (args.first().copied().unwrap_or(500), args.get(1).copied().unwrap_or(50));
    let aws = Emulators::connect().await;
    let table = aws.create_table().await;
    let (bus, _queue) = aws.create_bus().await;
    let receiver = aws.receiver(WebhookType::Receive, &table);
    let forwarder = Forwarder {
        store: aws.store(&table),
        sink: Stamped { inner: aws.sink(&bus), on_the_bus: Mutex::default() },
        event_source: sendblue_webhooks::config::DEFAULT_EVENT_SOURCE.into(),
        dedup_ttl_seconds: sendblue_webhooks::config::DEFAULT_DEDUP_TTL_SECONDS,
    };
    let mut stream = aws.stream_pump(&table, MappingSettings::default()).await;

    let accepted_at = Mutex::new(HashMap::new());
    let deliveries = async {
        let pace = Duration::from_secs_f64(1.0 / per_second as f64);
        let started = Instant::now();
        for i in 0..events {
            tokio::time::sleep_until((started + pace * i as u32).into()).await;
            let handle = format!("latency-{i}");
            let body = body_with(WebhookType::Receive, &[("message_handle", json!(handle))]);
            let (status, _) = answer(&receiver, with_body(WebhookType::Receive, body)).await;
            assert_eq!(status, 200);
            accepted_at.lock().unwrap().insert(handle, Instant::now());
        }
    };
    let polling = async {
        let deadline = Instant::now() + Duration::from_secs(120 + events as u64 / 10);
        let mut invocations = 0;
        while forwarder.sink.on_the_bus.lock().unwrap().len() < events && Instant::now() < deadline
        {
            invocations +=
                stream.pump(|payload| invoke_forward(&forwarder, payload)).await.invocations;
            tokio::time::sleep(POLL_EVERY).await;
        }
        invocations
    };
    let ((), invocations) = tokio::join!(deliveries, polling);

    let accepted_at = accepted_at.into_inner().unwrap();
    let on_the_bus = forwarder.sink.on_the_bus.into_inner().unwrap();
    let mut latencies_ms: Vec<f64> = accepted_at
        .iter()
        .map(|(key, accepted)| {
            let out = on_the_bus.get(key).unwrap_or_else(|| panic!("{key} never reached the bus"));
            out.saturating_duration_since(*accepted).as_secs_f64() * 1000.0
        })
        .collect();
    latencies_ms.sort_by(f64::total_cmp);
    eprintln!(
        "accept-to-bus, {events} events at {per_second}/s, the stream polled every {} ms, {invocations} \
         forward invocations: p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        POLL_EVERY.as_millis(),
        percentile(&latencies_ms, 0.50),
        percentile(&latencies_ms, 0.90),
        percentile(&latencies_ms, 0.99),
        latencies_ms[latencies_ms.len() - 1],
    );
}
