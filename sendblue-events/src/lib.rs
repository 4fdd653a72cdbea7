//! The Sendblue events a `sendblue-webhooks` stack forwards to its EventBridge bus, as the
//! people who consume the bus read them. Serde only: no AWS SDK, no Lambda runtime.
//!
//! Every event's `detail` is `{"metadata": …, "data": <the body Sendblue sent>}`; its
//! `detail-type` is the [`WebhookType`]'s name. [`BusEvent`] is the whole event as a rule's
//! Lambda target receives it, and [`BusEvent::payload`] reads `data` as the typed
//! [`Payload`] of its type. The receiver writes [`Metadata`] from this very definition, so the
//! two sides cannot drift apart.
//!
//! Deduplicate on `(metadata.webhook_type, metadata.dedup_key)`: the receiver forwards each event
//! once, except in rare, documented windows where the same pair arrives twice.

mod event;
pub mod payload;
mod webhook_type;

pub use event::{BusEvent, Detail, Metadata, Origin};
pub use payload::Payload;
pub use webhook_type::WebhookType;
