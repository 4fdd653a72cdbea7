//! CloudWatch metrics without an API call: one Embedded Metric Format line per request, which
//! CloudWatch Logs turns into metrics. `Requests` and `Duration`, by outcome (`accepted`,
//! `duplicate`, `unauthorized`, `bad_body`, `store_failed`, ...) and by webhook
//! type, so processed, duplicate, rejected-by-reason and failed-by-stage are one metric's slices.
//! Two separate dimension sets, not their product: each combination is a billed custom metric.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use sendblue_events::WebhookType;

pub const DEFAULT_NAMESPACE: &str = "SendblueWebhooks";

/// The EMF document for one request.
pub fn emf_line(
    namespace: &str,
    webhook_type: WebhookType,
    outcome: &str,
    elapsed: Duration,
    now: SystemTime,
) -> String {
    let timestamp_ms = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["Outcome"], ["WebhookType"]],
                "Metrics": [
                    {"Name": "Requests", "Unit": "Count"},
                    {"Name": "Duration", "Unit": "Milliseconds"}
                ]
            }]
        },
        "WebhookType": webhook_type.sendblue_name(),
        "Outcome": outcome,
        "Requests": 1,
        "Duration": elapsed.as_secs_f64() * 1000.0,
    })
    .to_string()
}

/// Prints the line to stdout, where the Lambda runtime hands it to CloudWatch Logs. A failed
/// write loses one data point, never the request.
pub fn emit(namespace: &str, webhook_type: WebhookType, outcome: &str, elapsed: Duration) {
    let line = emf_line(namespace, webhook_type, outcome, elapsed, SystemTime::now());
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn line_is_an_emf_document_with_both_metrics() {
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let line =
            emf_line("Ns", WebhookType::CallLog, "forwarded", Duration::from_micros(1500), at);
        let doc: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_123u64);
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Ns");
        // Every dimension and metric named in the directive is a member of the document.
        for dimension in directive["Dimensions"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|set| set.as_array().unwrap())
        {
            assert!(doc[dimension.as_str().unwrap()].is_string(), "{dimension}");
        }
        for metric in directive["Metrics"].as_array().unwrap() {
            assert!(doc[metric["Name"].as_str().unwrap()].is_number(), "{metric}");
        }
        assert_eq!(doc["WebhookType"], "call_log");
        assert_eq!(doc["Duration"], 1.5);
    }
}
