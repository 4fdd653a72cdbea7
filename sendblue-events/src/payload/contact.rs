//! `contact_created`: no published schema; these are the fields of the SDK's Contact object.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactCreated {
    pub contact_id: Option<String>,
    pub phone: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company_name: Option<String>,
    pub tags: Option<Vec<String>>,
    pub sendblue_number: Option<String>,
    pub created_at: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
