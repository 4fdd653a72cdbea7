//! The entry point every function's `main` calls: configuration, clients, runtime.

use std::sync::Arc;
use std::time::Duration;

use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use lambda_http::{service_fn, Error, Request};

use crate::bus::{EventSink, JsonLinesSink};
use crate::config::{Backend, Config};
use crate::dedup::{DedupStore, DynamoDbStore, MemoryStore};
use crate::forward::Forwarder;
use crate::pipeline::{ByStream, Handoff, WebhookPipeline};
use sendblue_events::WebhookType;

/// Per-call limits for the AWS SDK: a stuck call must turn into a 5xx (and Sendblue's retry)
/// well before Sendblue's own 45 s timeout and the function's timeout.
pub fn sdk_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(5))
        .build()
}

/// The AWS configuration every client is built from: the standard chain (region, credentials,
/// endpoint variables), our timeouts, and no stalled-stream protection, which the timeouts
/// already cover (it cost about 4 % CPU per event; BENCHMARKS.md).
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(sdk_timeouts())
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .load()
        .await
}

/// Runs the receiver of `webhook_type` on the Lambda runtime until the process ends.
pub async fn run(webhook_type: WebhookType) -> Result<(), Error> {
    crate::logging::init();
    let config = Config::from_env(crate::verify::guard(webhook_type)).inspect_err(|error| {
        tracing::error!(%error, webhook_type = webhook_type.sendblue_name(), "configuration");
    })?;
    match &config.backend {
        Backend::Aws { table_name } => {
            let aws = sdk_config().await;
            let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&aws), table_name);
            serve(WebhookPipeline::new(webhook_type, &config, store, ByStream)).await
        }
        Backend::Local => {
            tracing::warn!(
                webhook_type = webhook_type.sendblue_name(),
                "local mode: in-memory dedup, events printed to stdout, nothing sent to AWS"
            );
            serve(local_pipeline(webhook_type, &config, JsonLinesSink::stdout())).await
        }
    }
}

/// A receiver of the local mode: in memory, each accepted event forwarded in-process to `E`.
pub type LocalPipeline<E> = WebhookPipeline<Arc<MemoryStore>, Forwarder<Arc<MemoryStore>, E>>;

/// The local mode's receiver, its events forwarded to `sink` as they are accepted.
pub fn local_pipeline<E: EventSink>(
    webhook_type: WebhookType,
    config: &Config,
    sink: E,
) -> LocalPipeline<E> {
    let store = Arc::new(MemoryStore::default());
    let forwarder = Forwarder {
        store: Arc::clone(&store),
        sink,
        event_source: config.event_source.clone(),
        dedup_ttl_seconds: config.dedup_ttl_seconds,
    };
    WebhookPipeline::new(webhook_type, config, store, forwarder)
}

async fn serve<S, H>(receiver: WebhookPipeline<S, H>) -> Result<(), Error>
where
    S: DedupStore + 'static,
    H: Handoff + 'static,
{
    let receiver = Arc::new(receiver);
    lambda_http::run(service_fn(move |request: Request| {
        let receiver = Arc::clone(&receiver);
        async move { Ok::<_, Error>(receiver.handle(request).await) }
    }))
    .await
}
