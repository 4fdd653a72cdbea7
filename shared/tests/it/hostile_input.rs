//! Property tests over the whole pipeline on in-memory backends (the fuzzing this machine can
//! run: cargo-fuzz needs a nightly toolchain, which cannot be installed here). For any body and
//! any secret: no panic, no 5xx, and every 4xx writes and forwards nothing.

use std::cell::RefCell;
use std::collections::BTreeMap;

use lambda_http::http::HeaderValue;
use lambda_http::Body;
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use sendblue_testkit::*;
use sendblue_webhooks::dedup_key::MAX_NESTING;
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
    let receiver = recording_receiver(webhook_type);
    let mut request = fixture(webhook_type.binary_name());
    *request.body_mut() = Body::Binary(body.clone());
    let (status, answer) = runtime().block_on(answer(&receiver, request));
    prop_assert!(matches!(status, 200 | 400 | 413), "status {status}: {answer}");
    let details = receiver.handoff().sink.details();
    if status == 200 {
        prop_assert_eq!(details.len(), 1);
        let sent = std::str::from_utf8(&body).unwrap();
        prop_assert_eq!(data_text(&details[0]), sent, "data untouched, byte for byte");
    } else {
        prop_assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
        prop_assert!(receiver.store().is_empty(), "a refused body wrote an item");
        prop_assert!(details.is_empty(), "a refused body was forwarded");
    }
    Ok(status)
}

/// Runs `property` over `strategy` and returns how often each answer came, so that a test can
/// show that each branch it is about really ran.
fn answers_of<S: Strategy>(
    strategy: S,
    property: impl Fn(S::Value) -> Result<u16, TestCaseError>,
) -> BTreeMap<u16, u32> {
    let counts = RefCell::new(BTreeMap::new());
    let mut runner = TestRunner::new(ProptestConfig::with_cases(cases()));
    runner
        .run(&strategy, |value| {
            let status = property(value)?;
            *counts.borrow_mut().entry(status).or_insert(0) += 1;
            Ok(())
        })
        .unwrap();
    counts.into_inner()
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

/// Every field some type's key is made of.
const KEY_FIELDS: [&str; 7] =
    ["message_handle", "status", "number", "from_number", "is_typing", "timestamp", "call_id"];

fn member_name() -> impl Strategy<Value = String> {
    let names: Vec<&str> = KEY_FIELDS.iter().copied().chain(["contact_id", "content"]).collect();
    prop_oneof![prop::sample::select(names).prop_map(str::to_owned), "\\PC{0,8}",]
}

fn any_type() -> impl Strategy<Value = WebhookType> {
    prop::sample::select(WebhookType::ALL.to_vec())
}

/// A JSON value written as text, hostile in ways a parser or a re-serialiser trips on: nesting
/// up to the limit, long strings, escapes and odd unicode, numbers at the edges of every type,
/// and (in objects) duplicate member names.
fn hostile_value_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        prop::sample::select(vec![
            "0",
            "-0",
            "1e308",
            "-1e308",
            "1E-400",
            "18446744073709551616",
            "-9223372036854775809",
            "0.30000000000000004",
            "123456789012345678901234567890",
            "2.5e+3",
        ])
        .prop_map(str::to_owned),
        any::<i64>().prop_map(|n| n.to_string()),
        "\\PC{0,16}".prop_map(|s| Value::from(s).to_string()),
        prop::sample::select(vec![
            r#""\ud83d\ude00 \u0000 \\ \" \/ \b\f\n\r\t""#,
            "\"\u{202e}\u{feff}\u{10ffff}\u{0301}e\"",
            r#""\ud800""#,
        ])
        .prop_map(str::to_owned),
        (1usize..5_000).prop_map(|n| format!("\"{}\"", "x".repeat(n))),
    ];
    leaf.prop_recursive(6, 64, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4)
                .prop_map(|items| format!("[{}]", items.join(" , "))),
            prop::collection::vec((member_name(), inner), 0..5).prop_map(|members| {
                let members: Vec<String> = members
                    .iter()
                    .map(|(k, v)| format!("{}:{v}", Value::from(k.as_str())))
                    .collect();
                format!("{{ {} }}", members.join(",\n"))
            }),
        ]
    })
}

/// A valid object with the key fields every type needs, and hostile content around them.
fn hostile_object() -> impl Strategy<Value = String> {
    (
        "[A-Za-z0-9#%-]{1,40}",
        prop::collection::vec((member_name(), hostile_value_text()), 0..6),
        0usize..=(MAX_NESTING - 1),
        any::<bool>(),
    )
        .prop_map(|(handle, members, depth, duplicate_key)| {
            let key = Value::from(handle).to_string();
            let mut text = String::from("{");
            for field in KEY_FIELDS {
                text += &format!("\"{field}\":{key},");
            }
            if duplicate_key {
                text += "\"content\":1,\"content\":\"again\",";
            }
            text += &format!("\"deep\":{}{},", "[".repeat(depth), "]".repeat(depth));
            for (name, value) in members {
                text += &format!("{}:{value},", Value::from(name));
            }
            text += "\"end\":true}";
            text
        })
}

#[test]
fn arbitrary_bytes_are_answered_and_refusals_change_nothing() {
    let answers = answers_of(
        (any_type(), prop::collection::vec(any::<u8>(), 0..600)),
        |(webhook_type, body)| check_body(webhook_type, body),
    );
    assert!(answers.get(&400).is_some_and(|&n| n > 0), "{answers:?}");
}

#[test]
fn arbitrary_json_is_answered_and_refusals_change_nothing() {
    let answers = answers_of((any_type(), json_value(), any::<bool>()), |(t, value, pretty)| {
        let body =
            if pretty { serde_json::to_vec_pretty(&value) } else { serde_json::to_vec(&value) };
        check_body(t, body.unwrap())
    });
    println!("arbitrary JSON, answers by status: {answers:?}");
    assert!(answers.get(&400).is_some_and(|&n| n > 0), "{answers:?}");
}

#[test]
fn hostile_but_valid_objects_are_forwarded_byte_for_byte() {
    let answers =
        answers_of((any_type(), hostile_object()), |(t, body)| check_body(t, body.into_bytes()));
    println!("hostile objects, answers by status: {answers:?}");
    // Both branches ran: most are forwarded untouched, and those a parser refuses (a lone
    // surrogate, a number out of range for the key's parse) are a 400 that changed nothing.
    assert!(answers.get(&200).is_some_and(|&n| n > cases() / 2), "{answers:?}");
}

/// The accepted secrets, near misses of them, and random values.
fn presented_secret() -> impl Strategy<Value = Vec<u8>> {
    let accepted = prop::sample::select(vec![SECRET.as_bytes().to_vec(), b"old-secret".to_vec()]);
    let near_miss = (accepted.clone(), 0usize..6, any::<u8>()).prop_map(|(mut s, how, byte)| {
        match how {
            0 => s.truncate(s.len() - 1),          // a prefix
            1 => s.push(byte),                     // a suffix
            2 => s[0] = s[0].to_ascii_uppercase(), // a changed case
            3 => s.insert(0, b'x'),                // padding in front
            4 => s.push(0),                        // a NUL after
            _ => {
                let middle = s.len() / 2;
                s[middle] ^= 1 // one bit flipped
            }
        }
        s
    });
    prop_oneof![accepted, near_miss, prop::collection::vec(any::<u8>(), 0..64)]
}

#[test]
fn only_an_accepted_secret_gets_in() {
    let answers = answers_of(presented_secret(), |presented| {
        let receiver = memory_receiver(WebhookType::Receive);
        let mut request = fixture("receive");
        match HeaderValue::from_bytes(&presented) {
            Ok(value) => {
                request.headers_mut().insert(SECRET_HEADER, value);
            }
            Err(_) => {
                request.headers_mut().remove(SECRET_HEADER);
            }
        }
        let accepted = presented == SECRET.as_bytes() || presented == b"old-secret";
        let (status, _) = runtime().block_on(answer(&receiver, request));
        prop_assert_eq!(status == 200, accepted);
        if !accepted {
            prop_assert_eq!(status, 401);
            prop_assert!(receiver.store().is_empty());
        }
        Ok(status)
    });
    println!("secrets, answers by status: {answers:?}");
    assert!(answers.get(&200).is_some_and(|&n| n > 0), "an accepted secret got in: {answers:?}");
    assert!(answers.get(&401).is_some_and(|&n| n > 0), "the others did not: {answers:?}");
}
