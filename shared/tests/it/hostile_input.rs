//! Property tests over the whole pipeline on in-memory backends (the fuzzing this machine can
//! run: cargo-fuzz needs a nightly toolchain, which cannot be installed here). For any body and
//! any secret: no panic, no 5xx, and every 4xx writes and forwards nothing.

use lambda_http::http::HeaderValue;
use lambda_http::Body;
use proptest::prelude::*;
use sendblue_testkit::*;
use sendblue_webhooks::verify::SECRET_HEADER;
use sendblue_webhooks::WebhookType;
use serde_json::Value;

/// Cases per property: 1,500 in the test command; `HOSTILE_INPUT_CASES` for a longer run.
fn cases() -> u32 {
    std::env::var("HOSTILE_INPUT_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(1500)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().unwrap()
}

/// Runs one body through a fresh receiver of `webhook_type` and checks the invariants.
fn check_body(webhook_type: WebhookType, body: Vec<u8>) -> Result<u16, TestCaseError> {
    let receiver = memory_receiver(webhook_type);
    let mut request = fixture(webhook_type.binary_name());
    *request.body_mut() = Body::Binary(body.clone());
    let (status, answer) = runtime().block_on(answer(&receiver, request));
    prop_assert!(matches!(status, 200 | 400 | 413), "status {status}: {answer}");
    let events = printed_events(&receiver);
    if status == 200 {
        prop_assert_eq!(events.len(), 1);
        let sent: Value = serde_json::from_slice(&body).unwrap();
        prop_assert_eq!(&events[0]["Detail"]["data"], &sent, "data untouched");
    } else {
        prop_assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
        prop_assert!(receiver.store().is_empty(), "a refused body wrote a claim");
        prop_assert!(events.is_empty(), "a refused body was forwarded");
    }
    Ok(status)
}

/// JSON values up to a few levels deep, with the key fields among the member names.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(member_name(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn member_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "message_handle",
            "status",
            "number",
            "from_number",
            "is_typing",
            "timestamp",
            "call_id",
            "contact_id",
            "content",
        ])
        .prop_map(str::to_owned),
        "\\PC{0,8}",
    ]
}

fn any_type() -> impl Strategy<Value = WebhookType> {
    prop::sample::select(WebhookType::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn arbitrary_bytes_are_answered_and_refusals_change_nothing(
        webhook_type in any_type(),
        body in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        check_body(webhook_type, body)?;
    }

    #[test]
    fn arbitrary_json_is_answered_and_refusals_change_nothing(
        webhook_type in any_type(),
        value in json_value(),
        pretty: bool,
    ) {
        let body = if pretty { serde_json::to_vec_pretty(&value) } else { serde_json::to_vec(&value) };
        check_body(webhook_type, body.unwrap())?;
    }

    #[test]
    fn objects_with_scalar_key_fields_are_always_accepted(
        webhook_type in any_type(),
        mut object in prop::collection::btree_map("[a-z_]{1,10}", json_value(), 0..6),
        handle in "[A-Za-z0-9-]{1,40}",
    ) {
        for field in ["message_handle", "status", "number", "from_number", "is_typing", "timestamp", "call_id"] {
            object.insert(field.to_owned(), Value::from(handle.clone()));
        }
        let body = serde_json::to_vec(&object).unwrap();
        prop_assert_eq!(check_body(webhook_type, body)?, 200);
    }

    #[test]
    fn only_an_accepted_secret_gets_in(presented in prop::collection::vec(any::<u8>(), 0..64)) {
        let receiver = memory_receiver(WebhookType::Receive);
        let mut request = fixture("receive");
        match HeaderValue::from_bytes(&presented) {
            Ok(value) => { request.headers_mut().insert(SECRET_HEADER, value); }
            Err(_) => { request.headers_mut().remove(SECRET_HEADER); }
        }
        let accepted = presented == SECRET.as_bytes() || presented == b"old-secret";
        let (status, _) = runtime().block_on(answer(&receiver, request));
        prop_assert_eq!(status == 200, accepted);
        if !accepted {
            prop_assert_eq!(status, 401);
            prop_assert!(receiver.store().is_empty());
        }
    }
}
