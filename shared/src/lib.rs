//! Receive Sendblue webhooks on AWS Lambda.
//!
//! Every function binary runs [`run`] for its [`WebhookType`]; the pipeline verifies the
//! `sb-signing-secret`, derives the event's dedup key, claims it in DynamoDB, forwards the event
//! to EventBridge and marks the key completed. [`payload`] has typed views of the seven bodies
//! for consumers of the forwarded events.

pub mod answer;
pub mod app;
pub mod config;
pub mod dedup;
pub mod dedup_key;
pub mod envelope;
pub mod forward;
pub mod logging;
pub mod metrics;
pub mod payload;
pub mod pipeline;
pub mod verify;
pub mod webhook_type;

pub use app::run;
pub use lambda_http::Error;
pub use pipeline::Receiver;
pub use webhook_type::WebhookType;
