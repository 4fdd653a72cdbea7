#![doc = include_str!("../README.md")]

mod event;
mod lenient;
pub mod payload;
mod webhook_type;

pub use event::{BusEvent, Detail, Metadata, Origin};
pub use payload::{
    CallLog, ContactCreated, LineEvent, MessageRecord, MessageStatus, MessageType, NumberOrText,
    Payload, TypingIndicator,
};
pub use webhook_type::WebhookType;
