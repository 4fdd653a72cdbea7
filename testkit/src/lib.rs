//! What the receiver's integration tests and benchmarks share: fixtures from `events/`,
//! receivers on in-memory backends, and clients for the emulated AWS that `scripts/test.sh`
//! starts (DynamoDB Local, moto).

pub mod messages_api;
pub mod proxy;
pub mod stream_pump;
pub mod template_table;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::BillingMode;
use aws_sdk_eventbridge::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_eventbridge::config::{ConfigBag, Intercept, RuntimeComponents};
use lambda_http::{Body, Request};
use sendblue_webhooks::bus::{
    EventBridgeSink, EventSink, ForwardError, JsonLinesSink, OutgoingEvent,
};
use sendblue_webhooks::config::{Backend, Config};
use sendblue_webhooks::dedup::{DedupStore, DynamoDbStore, StoredEvent};
use sendblue_webhooks::forward::config::ForwardConfig;
use sendblue_webhooks::forward::Forwarder;
use sendblue_webhooks::pipeline::{ByStream, Handoff};
use sendblue_webhooks::{WebhookPipeline, WebhookType};
use serde_json::Value;
use stream_pump::{Invocation, MappingSettings, StreamPump};

/// The secret every fixture in `events/` carries.
pub const SECRET: &str = "local-dev-secret";
/// The token in the status-callback fixture's URL.
pub const CALLBACK_TOKEN: &str = "local-dev-callback-token-0123456789abcdef";

pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// `events/<name>.json` as the request lambda_http hands the function.
pub fn fixture(name: &str) -> Request {
    let path = events_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// The fixture of `webhook_type` with another body.
pub fn with_body(webhook_type: WebhookType, body: impl Into<String>) -> Request {
    let mut request = fixture(webhook_type.binary_name());
    *request.body_mut() = Body::Text(body.into());
    request
}

/// The body of `webhook_type`'s fixture.
pub fn fixture_body(webhook_type: WebhookType) -> String {
    String::from_utf8(fixture(webhook_type.binary_name()).body().to_vec()).unwrap()
}

/// The fixture's body with some fields replaced.
pub fn body_with(webhook_type: WebhookType, fields: &[(&str, Value)]) -> String {
    let mut body: Value = serde_json::from_str(&fixture_body(webhook_type)).unwrap();
    for (name, value) in fields {
        body[*name] = value.clone();
    }
    body.to_string()
}

/// The configuration a function would read, without EMF metrics (their stdout lines are noise
/// in test output; `metrics.rs` tests them).
pub fn config(webhook_type: WebhookType, backend: Backend) -> Config {
    let config =
        Config::from_lookup(sendblue_webhooks::verify::guard(webhook_type), |name| match name {
            "SENDBLUE_WEBHOOK_SECRETS" => Some(format!("old-secret,{SECRET}")),
            "SENDBLUE_CALLBACK_TOKENS" => Some(format!("{},{CALLBACK_TOKEN}", "0".repeat(32))),
            "RECEIVER_MODE" if backend == Backend::Local => Some("local".into()),
            "DEDUP_TABLE_NAME" => match &backend {
                Backend::Aws { table_name, .. } => Some(table_name.clone()),
                Backend::Local => None,
            },
            _ => None,
        })
        .expect("test configuration is valid");
    Config { metrics_namespace: None, ..config }
}

pub use sendblue_webhooks::app::LocalPipeline;

pub type MemoryPipeline = LocalPipeline<JsonLinesSink<Vec<u8>>>;

/// The local mode's receiver, as `app::run` builds it, printing to `sink`.
pub fn local_receiver<E: EventSink>(webhook_type: WebhookType, sink: E) -> LocalPipeline<E> {
    sendblue_webhooks::app::local_pipeline(
        webhook_type,
        &config(webhook_type, Backend::Local),
        sink,
    )
}

pub fn memory_receiver(webhook_type: WebhookType) -> MemoryPipeline {
    local_receiver(webhook_type, JsonLinesSink::new(Vec::new()))
}

/// A sink that keeps each forwarded `Detail` exactly as the pipeline wrote it.
#[derive(Debug, Default)]
pub struct RecordingSink(Mutex<Vec<String>>);

impl RecordingSink {
    pub fn details(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl EventSink for RecordingSink {
    async fn put_batch(
        &self,
        events: &[OutgoingEvent<'_>],
    ) -> Result<Vec<Result<(), ForwardError>>, ForwardError> {
        let mut details = self.0.lock().unwrap();
        details.extend(events.iter().map(|event| event.detail.to_owned()));
        Ok(vec![Ok(()); events.len()])
    }
}

pub type RecordingPipeline = LocalPipeline<RecordingSink>;

/// A receiver on in-memory backends whose sink keeps the forwarded details verbatim.
pub fn recording_receiver(webhook_type: WebhookType) -> RecordingPipeline {
    local_receiver(webhook_type, RecordingSink::default())
}

/// The `data` of a forwarded `Detail`, byte for byte as it stands in the detail's text:
/// `{"metadata":{...},"data":<this>}`. (No string of the metadata can hold `,"data":`, whose
/// quotes JSON would escape.)
pub fn data_text(detail: &str) -> &str {
    let start = detail.find(",\"data\":").expect("a detail has data") + ",\"data\":".len();
    detail[start..].strip_suffix('}').expect("the detail ends after data")
}

/// Records the body of every request an SDK client sends, retries included (as an interceptor
/// of any AWS SDK client).
#[derive(Debug, Clone, Default)]
pub struct CaptureBodies(Arc<Mutex<Vec<Vec<u8>>>>);

impl CaptureBodies {
    pub fn bodies(&self) -> Vec<Vec<u8>> {
        self.0.lock().unwrap().clone()
    }

    /// How many requests were sent since the last call.
    pub fn count_since_last(&self) -> usize {
        std::mem::take(&mut *self.0.lock().unwrap()).len()
    }
}

impl Intercept for CaptureBodies {
    fn name(&self) -> &'static str {
        "CaptureBodies"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let body = context.request().body().bytes().unwrap_or_default().to_vec();
        self.0.lock().unwrap().push(body);
        Ok(())
    }
}

/// Every event the local sink has printed, parsed.
pub fn printed_events(receiver: &MemoryPipeline) -> Vec<Value> {
    receiver.handoff().sink.inspect(|out| {
        String::from_utf8_lossy(out).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    })
}

/// Handles `request` and returns the status code and the parsed JSON body.
pub async fn answer<S: DedupStore, H: Handoff>(
    receiver: &WebhookPipeline<S, H>,
    request: Request,
) -> (u16, Value) {
    let response = receiver.handle(request).await;
    assert_eq!(response.headers()["content-type"], "application/json");
    let status = response.status().as_u16();
    (status, serde_json::from_slice(response.body()).expect("answers are JSON"))
}

/// The emulated AWS of `scripts/test.sh`.
pub struct Emulators {
    /// The receivers' clients, with the receivers' own timeouts: what the code under test uses.
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
    /// The test's own clients, with generous timeouts (`setup_timeouts`).
    setup_dynamodb: aws_sdk_dynamodb::Client,
    setup_eventbridge: aws_sdk_eventbridge::Client,
    pub sqs: aws_sdk_sqs::Client,
    /// Reads the tables' streams (pointed at DynamoDB Local explicitly: some SDK versions would
    /// send stream calls to an account-specific endpoint).
    streams: aws_sdk_dynamodbstreams::Client,
}

fn endpoint(variable: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| {
        panic!(
            "{variable} is not set: run the tests with scripts/test.sh, which starts the emulators"
        )
    })
}

pub fn dynamodb_endpoint() -> String {
    endpoint("SENDBLUE_TEST_DYNAMODB_ENDPOINT")
}

pub fn moto_endpoint() -> String {
    endpoint("SENDBLUE_TEST_MOTO_ENDPOINT")
}

async fn sdk_config(endpoint_url: &str, timeouts: TimeoutConfig) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .endpoint_url(endpoint_url)
        .timeout_config(timeouts)
        .load()
        .await
}

/// The test's own calls (creating tables, buses and queues, reading them back) do not borrow
/// the receivers' tight timeouts: on a machine whose cores are busy, DynamoDB Local can take
/// seconds to create a table, and a set-up timeout is no finding about the code under test.
fn setup_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(10))
        .operation_attempt_timeout(Duration::from_secs(60))
        .operation_timeout(Duration::from_secs(180))
        .build()
}

/// Appends one forwarded event to `SENDBLUE_TEST_FORWARDED_LOG`, when it is set.
fn record_forwarded(event: &str) {
    use std::io::Write;
    let Ok(path) = std::env::var("SENDBLUE_TEST_FORWARDED_LOG") else { return };
    let line = format!("{}\n", event.replace('\n', " "));
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    // One write per line: appends of whole lines do not interleave.
    file.write_all(line.as_bytes()).unwrap();
}

/// Serves `app` on a free loopback port, in the background; returns its address.
pub async fn serve_on_loopback(app: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

pub use sendblue_webhooks::time::now_ms;

/// Sleeps until `epoch_ms` (at once if it has passed): waiting for a lease or a window to end.
pub async fn sleep_until_ms(epoch_ms: u64) {
    tokio::time::sleep(std::time::Duration::from_millis(epoch_ms.saturating_sub(now_ms()))).await;
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// One event read back from the queue behind the bus.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub source: String,
    pub detail_type: String,
    pub detail: Value,
    /// The whole event, as the queue (like any rule target) received it.
    pub message_body: String,
}

impl Emulators {
    pub async fn connect() -> Self {
        Self::connect_to(&dynamodb_endpoint(), &moto_endpoint()).await
    }

    /// Clients for other endpoints (a fault proxy in front of the emulators).
    pub async fn connect_to(dynamodb_endpoint: &str, moto_endpoint: &str) -> Self {
        let receivers = sendblue_webhooks::app::sdk_timeouts();
        let dynamodb = sdk_config(dynamodb_endpoint, receivers.clone()).await;
        let moto = sdk_config(moto_endpoint, receivers).await;
        let setup_dynamodb = sdk_config(dynamodb_endpoint, setup_timeouts()).await;
        let setup_moto = sdk_config(moto_endpoint, setup_timeouts()).await;
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(&dynamodb),
            eventbridge: aws_sdk_eventbridge::Client::new(&moto),
            setup_dynamodb: aws_sdk_dynamodb::Client::new(&setup_dynamodb),
            setup_eventbridge: aws_sdk_eventbridge::Client::new(&setup_moto),
            sqs: aws_sdk_sqs::Client::new(&setup_moto),
            streams: aws_sdk_dynamodbstreams::Client::new(&setup_dynamodb),
        }
    }

    /// A dedup table with the keys `template.yaml` gives the deployed one.
    pub async fn create_table(&self) -> String {
        let name = unique("dedup");
        let shape = template_table::dedup_table();
        self.setup_dynamodb
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::PayPerRequest)
            .set_attribute_definitions(Some(shape.attributes))
            .set_key_schema(Some(shape.key_schema))
            .set_global_secondary_indexes(Some(shape.indexes).filter(|i| !i.is_empty()))
            .set_stream_specification(shape.stream)
            .send()
            .await
            .expect("create table");
        self.wait_until_active(&name).await;
        name
    }

    /// Waits for the new table to be ACTIVE (DynamoDB Local makes it so at once when idle; a
    /// busy machine, or real DynamoDB, may not).
    async fn wait_until_active(&self, table: &str) {
        for _ in 0..600 {
            let described =
                self.setup_dynamodb.describe_table().table_name(table).send().await.unwrap();
            let status = described.table().and_then(|t| t.table_status());
            if status == Some(&aws_sdk_dynamodb::types::TableStatus::Active) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("table {table} not ACTIVE after a minute");
    }

    /// A stand-in for the `forward` function's event source mapping on `table`'s stream.
    pub async fn stream_pump(&self, table: &str, settings: MappingSettings) -> StreamPump {
        let described =
            self.setup_dynamodb.describe_table().table_name(table).send().await.unwrap();
        let stream_arn = described
            .table()
            .and_then(|t| t.latest_stream_arn())
            .expect("the template's table has a stream");
        StreamPump::new(self.streams.clone(), stream_arn, settings)
    }

    /// Every item in the table.
    pub async fn scan(
        &self,
        table: &str,
    ) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        let output = self
            .setup_dynamodb
            .scan()
            .table_name(table)
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        output.items.unwrap_or_default()
    }

    /// A bus with a rule that copies every event to a fresh SQS queue. Returns the bus name
    /// and the queue URL.
    pub async fn create_bus(&self) -> (String, String) {
        let bus = unique("bus");
        self.setup_eventbridge.create_event_bus().name(&bus).send().await.expect("create bus");
        let queue_url = self.create_rule_to_queue(&bus).await;
        (bus, queue_url)
    }

    pub async fn create_bus_named(&self, bus: &str) -> String {
        self.setup_eventbridge.create_event_bus().name(bus).send().await.expect("create bus");
        self.create_rule_to_queue(bus).await
    }

    async fn create_rule_to_queue(&self, bus: &str) -> String {
        let queue = unique("forwarded");
        let queue_url =
            self.sqs.create_queue().queue_name(&queue).send().await.unwrap().queue_url.unwrap();
        let queue_arn = format!("arn:aws:sqs:us-east-1:123456789012:{queue}");
        self.setup_eventbridge
            .put_rule()
            .name("all-sendblue")
            .event_bus_name(bus)
            .event_pattern(r#"{"source":[{"prefix":""}]}"#)
            .send()
            .await
            .expect("put rule");
        self.setup_eventbridge
            .put_targets()
            .rule("all-sendblue")
            .event_bus_name(bus)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("queue")
                    .arn(queue_arn)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("put targets");
        queue_url
    }

    /// Everything delivered to the queue so far (and removes it from the queue). Each event is
    /// also appended, as one line, to the file `SENDBLUE_TEST_FORWARDED_LOG` names, if any:
    /// the test command checks every one against `schemas/`.
    pub async fn drain(&self, queue_url: &str) -> Vec<Delivered> {
        let mut delivered = Vec::new();
        loop {
            let output = self
                .sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            let messages = output.messages.unwrap_or_default();
            if messages.is_empty() {
                return delivered;
            }
            let mut receipts = Vec::new();
            for (i, message) in messages.iter().enumerate() {
                let event: Value = serde_json::from_str(message.body().unwrap()).unwrap();
                delivered.push(Delivered {
                    source: event["source"].as_str().unwrap().to_owned(),
                    detail_type: event["detail-type"].as_str().unwrap().to_owned(),
                    detail: event["detail"].clone(),
                    message_body: message.body().unwrap().to_owned(),
                });
                record_forwarded(message.body().unwrap());
                receipts.push(
                    aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(message.receipt_handle().unwrap())
                        .build()
                        .unwrap(),
                );
            }
            self.sqs
                .delete_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(receipts))
                .send()
                .await
                .unwrap();
        }
    }

    /// The dedup item of `pk`, read consistently.
    pub async fn item(&self, table: &str, pk: &str) -> Option<StoredEvent> {
        self.store(table).lookup(pk).await.expect("the item reads back")
    }

    pub fn store(&self, table: &str) -> DynamoDbStore {
        DynamoDbStore::new(self.dynamodb.clone(), table)
    }

    pub fn sink(&self, bus: &str) -> EventBridgeSink {
        EventBridgeSink::new(self.eventbridge.clone(), bus)
    }

    /// A receiver on the emulated AWS, as a deployed function builds it: it only accepts.
    pub fn receiver(
        &self,
        webhook_type: WebhookType,
        table: &str,
    ) -> WebhookPipeline<DynamoDbStore> {
        let backend = Backend::Aws { table_name: table.into() };
        WebhookPipeline::new(
            webhook_type,
            &config(webhook_type, backend),
            self.store(table),
            ByStream,
        )
    }

    /// The forward function's core on the emulated AWS, as the deployed one builds it.
    pub fn forwarder(&self, table: &str, bus: &str) -> Forwarder<DynamoDbStore, EventBridgeSink> {
        Forwarder {
            store: self.store(table),
            sink: self.sink(bus),
            event_source: sendblue_webhooks::config::DEFAULT_EVENT_SOURCE.to_owned(),
            dedup_ttl_seconds: sendblue_webhooks::config::DEFAULT_DEDUP_TTL_SECONDS,
        }
    }
}

/// One invocation of the `forward` function's handler, as the event source mapping makes it:
/// the batch in, its answer (or the function's error) out. The handler reads only the metrics
/// namespace and the sweep's age from its settings (the deployed default here; see
/// `invoke_forward_with`); the table and bus are the forwarder's.
pub async fn invoke_forward<S: DedupStore, E: EventSink>(
    forwarder: &Forwarder<S, E>,
    payload: Value,
) -> Invocation {
    let deployed = sendblue_webhooks::forward::config::DEFAULT_SWEEP_MIN_AGE_SECONDS;
    invoke_forward_with(forwarder, payload, deployed).await
}

/// `invoke_forward` with another `SWEEP_MIN_AGE_SECONDS`.
pub async fn invoke_forward_with<S: DedupStore, E: EventSink>(
    forwarder: &Forwarder<S, E>,
    payload: Value,
    sweep_min_age_seconds: u64,
) -> Invocation {
    let config = ForwardConfig {
        table_name: String::new(),
        bus_name: String::new(),
        event_source: forwarder.event_source.clone(),
        dedup_ttl_seconds: forwarder.dedup_ttl_seconds,
        metrics_namespace: "SendblueWebhooksTest".to_owned(),
        sweep_min_age_seconds,
    };
    let deadline_ms = now_ms() + 60_000;
    sendblue_webhooks::forward::handle(forwarder, &config, payload, deadline_ms)
        .await
        .map_err(|error| error.to_string())
}

/// Sendblue's retry policy: the first attempt, then up to this many more while the answer is 5xx.
pub const SENDBLUE_RETRIES: usize = 3;

/// Delivers as Sendblue does, returning every attempt's status. `before_attempt(n)` runs
/// before attempt `n` (0-based), e.g. to heal an injected fault; `pause` is the back-off.
pub async fn deliver_with_retries<S: DedupStore, H: Handoff>(
    receiver: &WebhookPipeline<S, H>,
    request: impl Fn() -> Request,
    mut before_attempt: impl FnMut(usize),
    pause: std::time::Duration,
) -> Vec<u16> {
    let mut statuses = Vec::new();
    for attempt in 0..=SENDBLUE_RETRIES {
        before_attempt(attempt);
        let status = receiver.handle(request()).await.status().as_u16();
        statuses.push(status);
        if status < 500 {
            break;
        }
        tokio::time::sleep(pause).await;
    }
    statuses
}

/// How often each `(detail type, dedup key)` reached the bus.
pub fn forward_counts(
    delivered: &[Delivered],
) -> std::collections::HashMap<(String, String), usize> {
    let mut counts = std::collections::HashMap::new();
    for event in delivered {
        let key = event.detail["metadata"]["dedup_key"].as_str().unwrap().to_owned();
        *counts.entry((event.detail_type.clone(), key)).or_insert(0) += 1;
    }
    counts
}
