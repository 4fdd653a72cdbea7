//! `contact_created`: no published schema; these are the fields of the SDK's Contact object.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactCreated {
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub contact_id: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub phone: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub first_name: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub last_name: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub company_name: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::or_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub sendblue_number: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub created_at: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
