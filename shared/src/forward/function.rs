//! The forward function: one binary, two triggers. A `{"Records": [...]}` event is a batch of
//! the table's stream; anything else (the schedule's event, a manual invoke) starts a sweep.

use std::time::Duration;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

use super::config::ForwardConfig;
use super::stream::{pending_records, BatchResponse, StreamEvent};
use super::Forwarder;
use crate::bus::{EventBridgeSink, EventSink};
use crate::dedup::{DedupStore, DynamoDbStore};

/// A sweep stops taking new pages this long before the invocation's deadline.
const STOP_BEFORE_DEADLINE: Duration = Duration::from_secs(10);

/// Runs the forward function on the Lambda runtime until the process ends.
pub async fn run() -> Result<(), Error> {
    crate::logging::init();
    let config = ForwardConfig::from_env().inspect_err(|error| {
        tracing::error!(%error, "configuration");
    })?;
    let aws = crate::app::sdk_config().await;
    let forwarder = Forwarder {
        store: DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.table_name),
        sink: EventBridgeSink::new(aws_sdk_eventbridge::Client::new(&aws), &config.bus_name),
        event_source: config.event_source.clone(),
        dedup_ttl_seconds: config.dedup_ttl_seconds,
    };
    let (forwarder, config) = (&forwarder, &config);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        handle(forwarder, config, event.payload, event.context.deadline)
    }))
    .await
}

/// One invocation: a stream batch or a sweep, logged and measured.
pub async fn handle<S: DedupStore, E: EventSink>(
    forwarder: &Forwarder<S, E>,
    config: &ForwardConfig,
    payload: Value,
    deadline_ms: u64,
) -> Result<Value, Error> {
    let namespace = &config.metrics_namespace;
    if payload.get("Records").is_some() {
        let event: StreamEvent = serde_json::from_value(payload)?;
        let (records, ignored) = pending_records(&event);
        let pks: Vec<&str> = records.iter().map(|record| record.pk.as_str()).collect();
        let report = forwarder.forward_from_stream(&pks, config.sweep_min_age_seconds * 1000).await;
        tracing::info!(records = event.records.len(), ignored, ?report, "stream batch");
        println!("{}", super::metrics::line(namespace, "stream", &report, None));
        return Ok(json!(BatchResponse::from_failure(&records, report.failed_at)));
    }
    let stop_at = crate::time::stop_before(deadline_ms, STOP_BEFORE_DEADLINE);
    let report = forwarder.sweep(config.sweep_min_age_seconds * 1000, stop_at).await?;
    tracing::info!(?report, "sweep");
    println!(
        "{}",
        super::metrics::line(namespace, "sweep", &report.forward, report.oldest_pending_age_ms)
    );
    Ok(json!({
        "forwarded": report.forward.forwarded,
        "oldest_pending_age_ms": report.oldest_pending_age_ms,
        "stopped_early": report.stopped_early,
    }))
}
