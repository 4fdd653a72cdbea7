//! `typing_indicator`: a contact started or stopped typing (iMessage only).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::NumberOrText;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TypingIndicator {
    pub number: Option<String>,
    pub from_number: Option<String>,
    pub is_typing: Option<bool>,
    pub timestamp: Option<NumberOrText>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
