//! `line_blocked` and `line_assigned`: no published schema, so every field is kept as sent.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LineEvent {
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}
