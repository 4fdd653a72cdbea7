//! What the logs carry: one JSON line per request, never a secret, never a message's content.
//!
//! A test binary of its own: these tests install a subscriber for their thread, and tracing
//! caches each log callsite's interest process-wide, so another test's thread meeting the same
//! callsite with no subscriber at the wrong moment could leave it disabled here (seen once in a
//! loaded run). Alone in their process, only these two tests meet the callsites.

use std::sync::{Arc, Mutex};

use sendblue_testkit::*;
use sendblue_webhooks::logging::{self, DEFAULT_FILTER};
use sendblue_webhooks::WebhookType;
use serde_json::Value;
use tracing_subscriber::EnvFilter;

/// A log writer the test can read back.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

/// What must never appear in a log line.
const NEVER_LOGGED: [&str; 8] = [
    SECRET,
    CALLBACK_TOKEN,
    "local-dev-callback-token-0123456789abcdeg",
    "old-secret",
    "not-the-secret",
    "Hello!",
    "Hello world!",
    "Hello, how can I help you today?",
];

/// Every request of the sample set: each type twice (new, duplicate) and every bad fixture.
fn requests() -> Vec<(WebhookType, lambda_http::Request)> {
    let mut requests = Vec::new();
    for t in WebhookType::ALL {
        requests.push((t, fixture(t.binary_name())));
        requests.push((t, fixture(t.binary_name())));
    }
    for bad in ["wrong-secret", "missing-secret", "get-method", "not-json", "missing-key-field"] {
        requests.push((WebhookType::Receive, fixture(&format!("bad/{bad}"))));
    }
    requests.push((WebhookType::StatusCallback, fixture("bad/status-callback-wrong-token")));
    requests
}

fn check_lines(captured: &Capture, expected_requests: usize) {
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for forbidden in NEVER_LOGGED {
        assert!(!text.contains(forbidden), "logged {forbidden:?}:\n{text}");
    }
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let request_lines: Vec<&Value> = lines.iter().filter(|l| l["message"] == "request").collect();
    assert_eq!(request_lines.len(), expected_requests, "one line per request:\n{text}");
    for line in request_lines {
        for field in ["request_id", "webhook_type", "outcome", "status", "duration_ms"] {
            assert!(!line[field].is_null(), "{field} missing in {line}");
        }
    }
    let outcomes: Vec<&str> = lines.iter().filter_map(|l| l["outcome"].as_str()).collect();
    for outcome in ["accepted", "duplicate", "unauthorized", "method_not_allowed", "bad_body"] {
        assert!(outcomes.contains(&outcome), "{outcome} never logged: {outcomes:?}");
    }
}

#[tokio::test]
async fn memory_run_at_trace_level_logs_no_secret_and_no_content() {
    let captured = Capture::default();
    let subscriber = logging::subscriber(captured.clone(), EnvFilter::new("trace"));
    let _guard = tracing::subscriber::set_default(subscriber);
    // Other tests' threads may have met the log line's callsite while no subscriber wanted it;
    // re-evaluate now that this thread's does, or its interest may stay cached as "never".
    tracing::callsite::rebuild_interest_cache();
    let receivers: Vec<_> = WebhookType::ALL.iter().map(|&t| memory_receiver(t)).collect();
    let requests = requests();
    let count = requests.len();
    for (t, request) in requests {
        let receiver = receivers.iter().find(|r| r.webhook_type() == t).unwrap();
        receiver.handle(request).await;
    }
    check_lines(&captured, count);
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn aws_run_at_the_default_level_logs_no_secret_and_no_content() {
    let captured = Capture::default();
    let subscriber = logging::subscriber(captured.clone(), EnvFilter::new(DEFAULT_FILTER));
    let _guard = tracing::subscriber::set_default(subscriber);
    // Other tests' threads may have met the log line's callsite while no subscriber wanted it;
    // re-evaluate now that this thread's does, or its interest may stay cached as "never".
    tracing::callsite::rebuild_interest_cache();
    let aws = Emulators::connect().await;
    let table = aws.create_table().await;
    let requests = requests();
    let count = requests.len();
    for (t, request) in requests {
        aws.receiver(t, &table).handle(request).await;
    }
    check_lines(&captured, count);
}
