//! The SDK floor: the same AWS calls the receiver makes for a delivery (a conditional PutItem,
//! then for a new event a PutEvents and an UpdateItem), through the receiver's own store and
//! sink on the same client set-up, and nothing else: no secret check, no body validation, no
//! key derivation beyond finding the handle, no envelope, no log line, no metrics.
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
use sendblue_webhooks::dedup::{Claim, ClaimOutcome, DedupStore, DynamoDbStore};
use sendblue_webhooks::forward::{EventBridgeSink, EventSink, OutgoingEvent};

/// The body's `message_handle`, found without parsing the body.
fn handle(body: &str) -> &str {
    const FIELD: &str = "\"message_handle\": \"";
    let start = body.find(FIELD).map_or(0, |i| i + FIELD.len());
    let end = body[start..].find('"').map_or(body.len(), |i| start + i);
    &body[start..end]
}

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
    let sink = EventBridgeSink::new(
        aws_sdk_eventbridge::Client::new(&aws),
        std::env::var("EVENT_BUS_NAME")?,
    );
    let (store, sink) = (&store, &sink);
    lambda_http::run(service_fn(move |request: Request| async move {
        let body = std::str::from_utf8(request.body()).unwrap_or_default();
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
        let pk = format!("receive#{}", handle(body));
        let owner_token = uuid::Uuid::new_v4().simple().to_string();
        let claim = Claim {
            pk: &pk,
            owner_token: &owner_token,
            body_sha256_hex: "",
            now_ms,
            lease_until_ms: now_ms + 10_000,
            expires_at_s: now_ms / 1000 + 86_400,
        };
        // The same answers as the receiver's, so that the driver can tell new from duplicate.
        if store.claim(&claim).await? != ClaimOutcome::Claimed {
            let answer = r#"{"status":"OK","duplicate":true}"#;
            return Ok::<_, Error>(Response::new(Body::Text(answer.to_owned())));
        }
        let detail = format!("{{\"metadata\":{{}},\"data\":{body}}}");
        let event = OutgoingEvent { source: "sendblue", detail_type: "receive", detail: &detail };
        sink.forward(&event).await?;
        store.complete(&pk, &owner_token).await?;
        Ok(Response::new(Body::Text(r#"{"status":"OK"}"#.to_owned())))
    }))
    .await
}
