//! The reconcile function: configuration, clients and credentials once, then one run per
//! invocation (any event starts one: the schedule's, or a manual invoke), answered with the
//! run's summary and reported as EMF metrics.

use std::time::Duration;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

use super::config::{Credentials, ReconcileConfig};
use super::messages_api::{ApiCredentials, HttpMessagesApi, Listing, MessagesApi};
use super::{Failed, Reconciler, Summary, Walk};
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
    let lists = walked_lists(
        HttpMessagesApi::of(
            Listing::Messages,
            &config.api_base,
            credentials,
            config.api_share_percent,
        )?,
        &config.sendblue_numbers,
    );
    let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.table_name);
    let walk = Walk::from_watermark(&config);
    let reconcilers: Vec<_> = lists
        .iter()
        .map(|api| Reconciler {
            store: &store,
            api,
            walk,
            dedup_ttl_seconds: config.dedup_ttl_seconds,
        })
        .collect();
    let (reconcilers, namespace) = (&reconcilers, config.metrics_namespace.as_str());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline_ms = event.context.deadline;
        let stop_at = crate::time::stop_before(deadline_ms, STOP_BEFORE_DEADLINE);
        // The lists one after the other, each with its own watermark; a failed one does not
        // keep the other from its walk.
        let mut answer = serde_json::Map::new();
        let mut first_failure = None;
        for reconciler in reconcilers {
            let list = reconciler.api.watermark();
            let result = reconciler.run(stop_at).await;
            println!("{}", metrics_line(namespace, list, &result));
            match result {
                Ok(summary) => {
                    tracing::info!(list, summary = %json!(summary), "reconciled");
                    answer.insert(list.to_owned(), json!(summary));
                }
                Err(failed) => {
                    tracing::error!(
                        list,
                        error = %failed.error,
                        summary = %json!(failed.summary),
                        "reconciliation failed; what it settled before is saved in the watermark"
                    );
                    answer.insert(list.to_owned(), json!(failed.summary));
                    first_failure.get_or_insert(failed.error);
                }
            }
        }
        // A failed walk is reported (its EMF line, its ERROR log, the answer), not raised: an
        // invocation error is kept for what cannot report itself (a crash, a timeout, a
        // function that cannot start), which the function-error alarm fires on at once, while
        // a failing run is alarmed when it keeps failing (ReconcileFailed).
        if let Some(failed) = first_failure {
            answer.insert("error".to_owned(), json!(failed.to_string()));
        }
        Ok::<_, Error>(Value::Object(answer))
    }))
    .await
}

/// What a run walks, one after the other at one pace: the messages of every line, or of each
/// of this stack's lines (`SENDBLUE_NUMBERS`), then the contacts. Sendblue does not filter
/// `contact_created` deliveries by line and its contacts list takes no line, so contacts are
/// walked account-wide whatever the lines, as their webhooks arrive.
pub fn walked_lists(
    messages: HttpMessagesApi,
    sendblue_numbers: &[String],
) -> Vec<HttpMessagesApi> {
    let contacts = messages.sibling(Listing::Contacts, None);
    let mut lists: Vec<_> = sendblue_numbers
        .iter()
        .map(|line| messages.sibling(Listing::Messages, Some(line)))
        .collect();
    if lists.is_empty() {
        lists.push(messages);
    }
    lists.push(contacts);
    lists
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

/// One EMF line for every walk of every run (one per list, `List`), failed ones too: `Runs`
/// (1), `RunFailures` (1 when it failed, with `Reason` api, store or order), `ApiErrors` and
/// `OrderErrors` (the reasons the alarms single out), `Skipped` (another walk held the lease), `Recovered` (events the webhooks did
/// not bring: more than none means deliveries are going missing), `Records`, `SetAside`
/// (records passed over after failing in several runs), `UncoveredSeconds` (a span before the
/// dedup window the walk left unread) and `LagSeconds`: now minus the watermark, which a
/// complete walk moves to the time it covered, so a quiet account is not "late". It is left
/// out only when the watermark cannot be read, and its alarm treats that as breaching.
fn metrics_line(namespace: &str, list: &str, result: &Result<Summary, Failed>) -> String {
    let (summary, error) = match result {
        Ok(summary) => (summary, None),
        Err(failed) => (&failed.summary, Some(&failed.error)),
    };
    let failed = |reason: &str| usize::from(error.is_some_and(|e| e.reason() == reason));
    let mut line = json!({
        "_aws": {
            "Timestamp": now_ms(),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["Function"]],
                "Metrics": [
                    {"Name": "Runs", "Unit": "Count"},
                    {"Name": "RunFailures", "Unit": "Count"},
                    {"Name": "ApiErrors", "Unit": "Count"},
                    {"Name": "OrderErrors", "Unit": "Count"},
                    {"Name": "Skipped", "Unit": "Count"},
                    {"Name": "Recovered", "Unit": "Count"},
                    {"Name": "Records", "Unit": "Count"},
                    {"Name": "SetAside", "Unit": "Count"},
                    {"Name": "UncoveredSeconds", "Unit": "Seconds"},
                    {"Name": "LagSeconds", "Unit": "Seconds"}
                ]
            }]
        },
        "Function": "reconcile",
        "List": list,
        "Result": match (error, summary.skipped) {
            (Some(_), _) => "failed",
            (None, true) => "skipped",
            (None, false) => "succeeded",
        },
        "Runs": 1,
        "RunFailures": usize::from(error.is_some()),
        "ApiErrors": failed("api"),
        "OrderErrors": failed("order"),
        "Skipped": usize::from(summary.skipped),
        "Recovered": summary.recovered,
        "Records": summary.records,
        "SetAside": summary.set_aside,
        "UncoveredSeconds": uncovered_seconds(summary),
    });
    if let Some(error) = error {
        line["Reason"] = json!(error.reason());
    }
    let watermark_ms = summary.watermark_after.as_deref().and_then(parse_iso_ms);
    if let Some(watermark_ms) = watermark_ms {
        line["LagSeconds"] = json!(now_ms().saturating_sub(watermark_ms) / 1000);
    }
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::messages_api::ApiError;
    use crate::reconcile::ReconcileError;
    use serde_json::Value;

    fn line(result: &Result<Summary, Failed>) -> Value {
        serde_json::from_str(&metrics_line("Ns", "messages", result)).unwrap()
    }

    #[test]
    fn every_run_reports_failed_ones_too_and_every_metric_named_is_in_the_line() {
        let watermark = Some(crate::time::iso_ms(now_ms() - 300_000));
        let ok =
            Ok(Summary { recovered: 2, watermark_after: watermark.clone(), ..Summary::default() });
        let failed = Err(Failed {
            summary: Summary { watermark_after: watermark, ..Summary::default() },
            error: ApiError::Status { status: 500 }.into(),
        });
        let blind = Err(Failed {
            summary: Summary::default(),
            error: ReconcileError::OrderNotKept("x".into()),
        });
        for (result, outcome) in [(&ok, "succeeded"), (&failed, "failed"), (&blind, "failed")] {
            let doc = line(result);
            assert_eq!((doc["Runs"].as_u64(), doc["Result"].as_str()), (Some(1), Some(outcome)));
            for metric in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap() {
                let name = metric["Name"].as_str().unwrap();
                let present = doc[name].is_number();
                // Lag is left out only when no watermark could be read.
                assert!(present || (name == "LagSeconds" && outcome == "failed"), "{name}");
            }
        }
        assert_eq!(line(&failed)["LagSeconds"].as_u64().map(|s| s >= 300), Some(true));
        assert_eq!(
            (line(&failed)["ApiErrors"].as_u64(), line(&failed)["RunFailures"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(line(&blind)["OrderErrors"], 1);
        assert_eq!(line(&blind)["Reason"], "order");
        assert_eq!(line(&ok)["RunFailures"], 0);
    }
}
