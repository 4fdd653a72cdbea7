//! Receive Sendblue webhooks on AWS Lambda.
//!
//! Every function binary runs [`run`] for its [`WebhookType`]; the pipeline verifies the
//! `sb-signing-secret`, derives the event's dedup key and accepts the event with one
//! conditional write to DynamoDB; the `forward` function ([`forward::run`]) puts accepted events
//! on EventBridge from the table's stream, with a scheduled sweep behind it. The forwarded events' types (webhook types,
//! metadata, typed bodies) live in the serde-only crate `sendblue-events`, re-exported as
//! [`events`], so that consumers need neither AWS SDK nor Lambda runtime.

pub mod app;
pub mod bus;
pub mod config;
pub mod dedup;
pub mod dedup_key;
pub mod envelope;
pub mod forward;
pub mod logging;
pub mod metrics;
pub mod outcome;
pub mod pipeline;
pub mod reconcile;
pub mod request;
pub mod time;
pub mod verify;

pub use app::run;
pub use lambda_http::Error;
pub use pipeline::WebhookPipeline;
pub use sendblue_events::{self as events, WebhookType};
