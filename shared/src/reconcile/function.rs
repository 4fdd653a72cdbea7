//! The reconcile function: configuration, clients and credentials once, then one run per
//! invocation (any event starts one: the schedule's, or a manual invoke), answered with the
//! run's summary and reported as EMF metrics.

use std::time::Duration;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

use super::config::{Credentials, ReconcileConfig};
use super::messages_api::{ApiCredentials, HttpMessagesApi};
use super::{ReconcileError, Reconciler, Summary, Walk};
use crate::dedup::DynamoDbStore;
use crate::time::{now_ms, parse_iso_ms};

/// A run stops taking new pages this long before the invocation's deadline, so that what it
/// settled is saved in the watermark before Lambda ends it.
const STOP_BEFORE_DEADLINE: Duration = Duration::from_secs(15);

/// Runs the reconcile function on the Lambda runtime until the process ends.
pub async fn run() -> Result<(), Error> {
    crate::logging::init();
    let config = ReconcileConfig::from_env().inspect_err(|error| {
        tracing::error!(%error, "configuration");
    })?;
    let aws = crate::app::sdk_config().await;
    let credentials = match &config.credentials {
        Credentials::Environment(credentials) => credentials.clone(),
        Credentials::Secret(secret_id) => read_secret(&aws, secret_id).await?,
    };
    let api = HttpMessagesApi::new(&config.api_base, credentials)?;
    let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.table_name);
    let reconciler = Reconciler {
        store: &store,
        api: &api,
        walk: Walk::from_watermark(&config),
        dedup_ttl_seconds: config.dedup_ttl_seconds,
    };
    let (reconciler, namespace) = (&reconciler, config.metrics_namespace.as_str());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline_ms = event.context.deadline;
        let stop_at = crate::time::stop_before(deadline_ms, STOP_BEFORE_DEADLINE);
        let result = reconciler.run(stop_at).await;
        emit_metrics(namespace, result.as_ref());
        match result {
            Ok(summary) => {
                tracing::info!(summary = %json!(summary), "reconciled");
                Ok::<_, Error>(json!(summary))
            }
            Err(error) => {
                tracing::error!(%error, "reconciliation failed; the watermark is unchanged");
                Err(error.into())
            }
        }
    }))
    .await
}

/// The API keys from Secrets Manager, read once at start-up.
async fn read_secret(
    aws: &aws_config::SdkConfig,
    secret_id: &str,
) -> Result<ApiCredentials, Error> {
    let secret = aws_sdk_secretsmanager::Client::new(aws)
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| {
            format!(
                "reading the secret {secret_id}: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(e)
            )
        })?;
    let text = secret.secret_string().ok_or("the secret holds no string")?;
    // Its error would quote the value: name only what is wrong.
    serde_json::from_str(text).map_err(|_| {
        format!("the secret {secret_id} is not {{\"key_id\": ..., \"secret_key\": ...}}").into()
    })
}

/// How long a span before the dedup window the walk could not cover (0 when none).
fn uncovered_seconds(summary: &Summary) -> u64 {
    let from = summary.uncovered_from.as_deref().and_then(parse_iso_ms);
    let to = summary.uncovered_to.as_deref().and_then(parse_iso_ms);
    from.zip(to).map_or(0, |(from, to)| to.saturating_sub(from) / 1000)
}

/// One EMF line per run: `Recovered` (events the webhooks did not bring: more than none means
/// deliveries are going missing), `ApiErrors`, `Records`, and `LagSeconds` (now minus the
/// watermark: how far behind reconciliation is), `UncoveredSeconds` (a span before the dedup
/// window that the walk left unread).
fn emit_metrics(namespace: &str, result: Result<&Summary, &ReconcileError>) {
    let (recovered, records, api_errors) = match result {
        Ok(summary) => (summary.recovered, summary.records, 0),
        Err(ReconcileError::Api(_)) => (0, 0, 1),
        Err(_) => (0, 0, 0),
    };
    let watermark_ms =
        result.ok().and_then(|s| s.watermark_after.as_deref()).and_then(parse_iso_ms);
    let mut line = json!({
        "_aws": {
            "Timestamp": now_ms(),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["Function"]],
                "Metrics": [
                    {"Name": "Recovered", "Unit": "Count"},
                    {"Name": "Records", "Unit": "Count"},
                    {"Name": "ApiErrors", "Unit": "Count"},
                    {"Name": "UncoveredSeconds", "Unit": "Seconds"},
                    {"Name": "LagSeconds", "Unit": "Seconds"}
                ]
            }]
        },
        "Function": "reconcile",
        "Recovered": recovered,
        "Records": records,
        "ApiErrors": api_errors,
        "UncoveredSeconds": result.ok().map_or(0, uncovered_seconds),
    });
    if let Some(watermark_ms) = watermark_ms {
        line["LagSeconds"] = json!(now_ms().saturating_sub(watermark_ms) / 1000);
    }
    println!("{line}");
}
