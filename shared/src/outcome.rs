//! What a delivery can come to, and how each outcome is answered (the table in the README).
//! Every answer is JSON, and none echoes what the client sent beyond naming a field.

use lambda_http::http::{header, StatusCode};
use lambda_http::{Body, Response};
use serde::Serialize;

use crate::dedup::StoreError;
use crate::dedup_key::{BodyError, DedupKey};
use crate::verify::AuthError;

/// What one delivery came to, with the key its log line names.
#[derive(Debug)]
pub struct Processed {
    pub outcome: Outcome,
    pub dedup_key: Option<DedupKey>,
}

/// Everything a delivery can come to.
#[derive(Debug)]
pub enum Outcome {
    /// New event, written: it is safe, and `forward` puts it on the bus.
    Accepted,
    /// Accepted before (pending or forwarded); `same_body` is false when this delivery's
    /// content differs from the first one's (which stays the one forwarded).
    Duplicate {
        same_body: bool,
    },
    MethodNotAllowed,
    Unauthorized(AuthError),
    TooLarge {
        body_bytes: usize,
        limit_bytes: usize,
    },
    BadBody(BodyError),
    /// The write failed or its fate is unknown: Sendblue's retry either writes the event or
    /// meets the item this attempt wrote and is told it is a duplicate.
    StoreFailed(StoreError),
}

#[derive(Serialize)]
struct AnswerBody<'a> {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    duplicate: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_differs: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

impl Outcome {
    /// A short stable name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Duplicate { same_body: true } => "duplicate",
            Outcome::Duplicate { same_body: false } => "duplicate_content_differs",
            Outcome::MethodNotAllowed => "method_not_allowed",
            Outcome::Unauthorized(_) => "unauthorized",
            Outcome::TooLarge { .. } => "too_large",
            Outcome::BadBody(_) => "bad_body",
            Outcome::StoreFailed(_) => "store_failed",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Outcome::Accepted | Outcome::Duplicate { .. } => StatusCode::OK,
            Outcome::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Outcome::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Outcome::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Outcome::BadBody(_) => StatusCode::BAD_REQUEST,
            Outcome::StoreFailed(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The detail worth logging beside the outcome, if any (never sent to the client).
    pub fn log_detail(&self) -> Option<String> {
        match self {
            Outcome::StoreFailed(e) => Some(e.to_string()),
            _ => None,
        }
    }

    fn message(&self) -> Option<String> {
        Some(match self {
            Outcome::Accepted | Outcome::Duplicate { .. } => return None,
            Outcome::MethodNotAllowed => "only POST is accepted".to_owned(),
            Outcome::Unauthorized(e) => e.to_string(),
            Outcome::TooLarge { body_bytes, limit_bytes } => {
                format!("body is {body_bytes} bytes; the limit is {limit_bytes}")
            }
            Outcome::BadBody(e) => e.to_string(),
            Outcome::StoreFailed(_) => "dedup store unavailable; retry later".to_owned(),
        })
    }

    pub fn into_response(self) -> Response<Body> {
        let message = self.message();
        let body = AnswerBody {
            status: if self.status().is_success() { "OK" } else { "ERROR" },
            duplicate: matches!(self, Outcome::Duplicate { .. }).then_some(true),
            content_differs: matches!(self, Outcome::Duplicate { same_body: false })
                .then_some(true),
            message: message.as_deref(),
        };
        let mut response = Response::builder()
            .status(self.status())
            .header(header::CONTENT_TYPE, "application/json");
        if matches!(self, Outcome::MethodNotAllowed) {
            response = response.header(header::ALLOW, "POST");
        }
        let json = serde_json::to_string(&body).expect("answer bodies are plain strings");
        response.body(Body::Text(json)).expect("status and headers are valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn answer(outcome: Outcome) -> (u16, Value, lambda_http::http::HeaderMap) {
        let response = outcome.into_response();
        let (parts, body) = response.into_parts();
        assert_eq!(parts.headers[header::CONTENT_TYPE], "application/json");
        (parts.status.as_u16(), serde_json::from_slice(&body).unwrap(), parts.headers)
    }

    #[test]
    fn answers_follow_the_design_table() {
        let (status, body, _) = answer(Outcome::Accepted);
        assert_eq!((status, body), (200, json!({"status": "OK"})));
        let (status, body, _) = answer(Outcome::Duplicate { same_body: true });
        assert_eq!((status, body), (200, json!({"status": "OK", "duplicate": true})));
        let (_, body, _) = answer(Outcome::Duplicate { same_body: false });
        assert_eq!(body, json!({"status": "OK", "duplicate": true, "content_differs": true}));
        let (status, body, headers) = answer(Outcome::MethodNotAllowed);
        assert_eq!(
            (status, &headers[header::ALLOW]),
            (405, &"POST".parse::<lambda_http::http::HeaderValue>().unwrap())
        );
        assert_eq!(body["status"], "ERROR");
        let (status, body, _) = answer(Outcome::Unauthorized(AuthError::MissingSecret));
        assert_eq!(
            (status, body["message"].as_str()),
            (401, Some("missing sb-signing-secret header"))
        );
        let (status, body, _) = answer(Outcome::TooLarge { body_bytes: 11, limit_bytes: 10 });
        assert_eq!(
            (status, body["message"].as_str()),
            (413, Some("body is 11 bytes; the limit is 10"))
        );
        let (status, body, _) = answer(Outcome::BadBody(BodyError::MissingField("call_id")));
        assert_eq!((status, body["message"].as_str()), (400, Some("missing field call_id")));
        let (status, body, _) =
            answer(Outcome::StoreFailed(StoreError::Unavailable("boom at 10.0.0.1".into())));
        assert_eq!(status, 500);
        assert!(!body.to_string().contains("boom"), "internal detail must not leak");
    }
}
