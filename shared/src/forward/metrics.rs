//! One EMF line per `forward` invocation, by trigger (`stream` or `sweep`): `Forwarded`,
//! `MarkFailures` and `MarkRaces` (the second-copy windows), `Malformed`, `LeftToSweep` (events
//! the stream found too old and left to the sweep), `Failures` (a batch
//! handed back or a sweep stopped), `LatencyMs` (the oldest event forwarded, from its
//! acceptance) and, for a sweep, `OldestPendingAgeSeconds`, which the oldest-pending alarm reads.

use serde_json::json;

use super::Report;
use crate::time::now_ms;

pub fn line(
    namespace: &str,
    trigger: &str,
    report: &Report,
    oldest_pending_age_ms: Option<u64>,
) -> String {
    let mut metrics = vec![
        json!({"Name": "Forwarded", "Unit": "Count"}),
        json!({"Name": "MarkFailures", "Unit": "Count"}),
        json!({"Name": "MarkRaces", "Unit": "Count"}),
        json!({"Name": "Malformed", "Unit": "Count"}),
        json!({"Name": "LeftToSweep", "Unit": "Count"}),
        json!({"Name": "Failures", "Unit": "Count"}),
        json!({"Name": "LatencyMs", "Unit": "Milliseconds"}),
    ];
    let mut line = json!({
        "Trigger": trigger,
        "Forwarded": report.forwarded,
        "MarkFailures": report.mark_failures,
        "MarkRaces": report.mark_races,
        "Malformed": report.malformed,
        "LeftToSweep": report.left_to_sweep,
        "Failures": usize::from(report.failed_at.is_some()),
        "LatencyMs": report.max_latency_ms,
    });
    if trigger == "sweep" {
        metrics.push(json!({"Name": "OldestPendingAgeSeconds", "Unit": "Seconds"}));
        line["OldestPendingAgeSeconds"] = json!(oldest_pending_age_ms.unwrap_or(0) / 1000);
    }
    line["_aws"] = json!({
        "Timestamp": now_ms(),
        "CloudWatchMetrics": [{
            "Namespace": namespace,
            "Dimensions": [["Trigger"]],
            "Metrics": metrics,
        }]
    });
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn every_metric_named_is_in_the_line() {
        let report = Report { forwarded: 3, failed_at: Some(1), ..Report::default() };
        for (trigger, age) in [("stream", None), ("sweep", Some(301_000))] {
            let doc: Value = serde_json::from_str(&line("Ns", trigger, &report, age)).unwrap();
            let directive = &doc["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(directive["Namespace"], "Ns");
            for metric in directive["Metrics"].as_array().unwrap() {
                assert!(doc[metric["Name"].as_str().unwrap()].is_number(), "{metric}");
            }
            assert_eq!((doc["Forwarded"].as_u64(), doc["Failures"].as_u64()), (Some(3), Some(1)));
            assert_eq!(doc["Trigger"], trigger);
        }
        let doc: Value =
            serde_json::from_str(&line("Ns", "sweep", &report, Some(301_000))).unwrap();
        assert_eq!(doc["OldestPendingAgeSeconds"], 301);
    }
}
