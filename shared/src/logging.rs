//! JSON logs: one line per request, never a secret or a message's content.
//!
//! The line carries ids, the type, the dedup key (message handles, call ids and phone numbers,
//! no content), the outcome and the duration. Bodies and headers are never logged.
//!
//! Other crates are held at INFO whatever `RUST_LOG` or the function's log level asks for:
//! `lambda_runtime` logs every raw invocation at TRACE (the `sb-signing-secret` header, the
//! callback token in the path, the message body), and the HTTP and AWS SDK crates log requests
//! at DEBUG and TRACE. Only this crate's own events may go below INFO.

use std::io;
use std::time::Duration;

use lambda_http::Request;
use tracing::{error, info, warn, Level, Metadata};
use tracing_subscriber::filter::{filter_fn, FilterExt};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::outcome::Outcome;
use crate::outcome::Processed;
use crate::request::{api_request_id, lambda_request_id};
use sendblue_events::WebhookType;

/// Used when `RUST_LOG` is not set.
pub const DEFAULT_FILTER: &str = "info";

/// The variable Lambda sets from the function's `ApplicationLogLevel`.
pub const LAMBDA_LOG_LEVEL: &str = "AWS_LAMBDA_LOG_LEVEL";

/// The most detail any other crate may log.
const OTHER_CRATES_CEILING: Level = Level::INFO;

/// Installs the JSON subscriber for the process, writing to stderr (stdout carries forwarded
/// events in local mode). The filter is `RUST_LOG`, else the function's log level, else INFO.
pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .ok()
        .or_else(|| {
            let level = std::env::var(LAMBDA_LOG_LEVEL).ok()?;
            EnvFilter::try_new(level.trim().to_ascii_lowercase()).ok()
        })
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER));
    // Another subscriber already installed (a test harness) is fine: keep it.
    let _ = tracing::subscriber::set_global_default(subscriber(io::stderr, filter));
}

/// The subscriber `init` installs, writing to any writer so tests can read what is logged.
/// `filter` chooses what is logged, within the ceiling on other crates.
pub fn subscriber<W>(writer: W, filter: EnvFilter) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_writer(writer)
        .with_filter(filter.and(filter_fn(within_ceiling)));
    tracing_subscriber::registry().with(layer)
}

/// Whether an event or span may be logged at all, whatever the filter says.
fn within_ceiling(metadata: &Metadata<'_>) -> bool {
    metadata.target().starts_with(env!("CARGO_CRATE_NAME"))
        || *metadata.level() <= OTHER_CRATES_CEILING
}

/// The one line logged per request; failures at WARN (the client's fault) or ERROR (ours).
pub fn request_line(
    webhook_type: WebhookType,
    request: &Request,
    processed: &Processed,
    elapsed: Duration,
) {
    let outcome = &processed.outcome;
    let request_id = api_request_id(request);
    let lambda_request_id = lambda_request_id(request);
    let dedup_key = processed.dedup_key.as_ref().map(|k| k.as_str());
    let status = outcome.status().as_u16();
    let duration_ms = elapsed.as_secs_f64() * 1000.0;
    let detail = outcome.log_detail();
    let reason = match outcome {
        Outcome::Unauthorized(e) => Some(e.to_string()),
        Outcome::BadBody(e) => Some(e.to_string()),
        _ => None,
    };
    macro_rules! line {
        ($level:ident) => {
            $level!(
                request_id,
                lambda_request_id,
                webhook_type = webhook_type.sendblue_name(),
                dedup_key,
                outcome = outcome.name(),
                status,
                duration_ms,
                reason,
                detail,
                "request"
            )
        };
    }
    match outcome {
        Outcome::StoreFailed(_) => line!(error),
        Outcome::Duplicate { same_body: false } => line!(warn),
        Outcome::Accepted | Outcome::Duplicate { .. } => line!(info),
        Outcome::MethodNotAllowed
        | Outcome::Unauthorized(_)
        | Outcome::TooLarge { .. }
        | Outcome::BadBody(_) => line!(warn),
    }
}
