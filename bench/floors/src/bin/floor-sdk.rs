//! The SDK floor: the one AWS call the receiver makes for a delivery (the conditional PutItem
//! of the whole event), through the receiver's own store on the same client set-up, and
//! nothing else: no secret check, no size check, no log line, no metrics.
//!
//! `FLOOR_SDK_VARIANT` tries one change to the client set-up, to see what lowers the floor:
//! `no-timeouts`, `no-retries`, `no-identity-cache`, `multi-thread` (tokio's multi-threaded
//! runtime instead of the current-thread one); unset, the set-up the receiver deploys.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_config::identity::IdentityCache;
use aws_config::retry::RetryConfig;
use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use lambda_http::{service_fn, Body, Error, Request, Response};
use sendblue_webhooks::app::{sdk_config, sdk_timeouts};
use sendblue_webhooks::dedup::{AcceptOutcome, DedupStore, DynamoDbStore, NewEvent};
use sendblue_webhooks::events::{Origin, WebhookType};

/// The receiver's own set-up, or one variant of it.
async fn config(variant: Option<&str>) -> SdkConfig {
    let Some(variant) = variant else { return sdk_config().await };
    let loader = aws_config::defaults(BehaviorVersion::latest())
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .timeout_config(sdk_timeouts());
    match variant {
        "multi-thread" => return sdk_config().await,
        "no-timeouts" => loader.timeout_config(TimeoutConfig::disabled()),
        "no-retries" => loader.retry_config(RetryConfig::disabled()),
        "no-identity-cache" => loader.identity_cache(IdentityCache::no_cache()),
        other => panic!("unknown FLOOR_SDK_VARIANT {other}"),
    }
    .load()
    .await
}

fn main() -> Result<(), Error> {
    let variant = std::env::var("FLOOR_SDK_VARIANT").ok();
    let runtime = match variant.as_deref() {
        Some("multi-thread") => tokio::runtime::Builder::new_multi_thread().enable_all().build()?,
        _ => tokio::runtime::Builder::new_current_thread().enable_all().build()?,
    };
    runtime.block_on(serve(variant.as_deref()))
}

async fn serve(variant: Option<&str>) -> Result<(), Error> {
    let aws = config(variant).await;
    let store =
        DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&aws), std::env::var("DEDUP_TABLE_NAME")?);
    let store = &store;
    lambda_http::run(service_fn(move |request: Request| async move {
        let body = std::str::from_utf8(request.body()).unwrap_or_default();
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
        let key = sendblue_webhooks::dedup_key::derive(WebhookType::Receive, body, "")?;
        let write_id = uuid::Uuid::new_v4().simple().to_string();
        let event = NewEvent {
            webhook_type: WebhookType::Receive,
            key: &key,
            body,
            body_sha256_hex: "",
            received_at_ms: now_ms,
            request_id: "",
            origin: Origin::Webhook,
            write_id: &write_id,
        };
        let answer = match store.accept(&event).await? {
            AcceptOutcome::Accepted => r#"{"status":"OK"}"#,
            AcceptOutcome::Duplicate { .. } => r#"{"status":"OK","duplicate":true}"#,
        };
        Ok::<_, Error>(Response::new(Body::Text(answer.to_owned())))
    }))
    .await
}
