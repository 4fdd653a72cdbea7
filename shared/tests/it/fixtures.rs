//! Every sample event in `events/` through the real pipeline on in-memory backends: the
//! answers of the table in docs/architecture.md, what is forwarded, and that bad input changes nothing.

use base64::Engine as _;
use lambda_http::http::Method;
use lambda_http::{Body, RequestExt};
use sendblue_testkit::*;
use sendblue_webhooks::config::MAX_BODY_BYTES_CEILING;
use sendblue_webhooks::events::payload::{MessageStatus, Payload};
use sendblue_webhooks::WebhookType;
use serde_json::{json, Value};

#[test]
fn every_fixture_is_an_api_gateway_v2_request() {
    let mut names = std::collections::BTreeSet::new();
    for (dir, prefix) in [
        (events_dir(), ""),
        (events_dir().join("bad"), "bad/"),
        (events_dir().join("function-url"), "function-url/"),
    ] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path).unwrap();
                lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
                let stem = path.file_stem().unwrap().to_string_lossy();
                names.insert(format!("{prefix}{stem}"));
            }
        }
    }
    // One per function, the base64 variant, and the bad cases the README's table lists.
    let mut expected: std::collections::BTreeSet<String> =
        WebhookType::ALL.iter().map(|t| t.binary_name().to_owned()).collect();
    expected.extend(
        [
            "receive-base64",
            "bad/call-log-null-key",
            "bad/get-method",
            "bad/missing-key-field",
            "bad/missing-secret",
            "bad/not-json",
            "bad/status-callback-wrong-token",
            "bad/wrong-secret",
            "function-url/receive",
            "function-url/status-callback",
        ]
        .map(str::to_owned),
    );
    assert_eq!(names, expected);
}

#[test]
fn every_payload_fixture_reads_into_its_typed_payload() {
    for t in WebhookType::ALL {
        let payload = Payload::parse(t, &fixture_body(t)).unwrap_or_else(|e| panic!("{t}: {e}"));
        match payload {
            Payload::Receive(m) => {
                assert_eq!(m.status, Some(MessageStatus::Received));
                assert!(m.extra.contains_key("reply_to"), "unknown fields are kept");
            }
            Payload::Outbound(m) => assert_eq!(m.status, Some(MessageStatus::Sent)),
            Payload::TypingIndicator(p) => assert_eq!(p.is_typing, Some(true)),
            Payload::CallLog(c) => assert_eq!(c.duration, Some(120)),
            Payload::LineBlocked(l) | Payload::LineAssigned(l) => assert!(!l.fields.is_empty()),
            Payload::ContactCreated(c) => assert!(c.contact_id.is_some()),
            Payload::StatusCallback(m) => assert_eq!(m.status, Some(MessageStatus::Delivered)),
        }
    }
}

#[tokio::test]
async fn each_type_is_forwarded_once_with_its_data_untouched() {
    for t in WebhookType::ALL {
        let receiver = memory_receiver(t);
        let (status, body) = answer(&receiver, fixture(t.binary_name())).await;
        assert_eq!((status, body), (200, json!({"status": "OK"})), "{t}");

        let events = printed_events(&receiver);
        assert_eq!(events.len(), 1, "{t}");
        let event = &events[0];
        assert_eq!(event["Source"], "sendblue");
        assert_eq!(event["DetailType"], t.sendblue_name());
        let original: Value = serde_json::from_str(&fixture_body(t)).unwrap();
        assert_eq!(event["Detail"]["data"], original, "{t}");
        // And byte for byte, as the pipeline hands the event to the bus.
        let recording = recording_receiver(t);
        assert_eq!(answer(&recording, fixture(t.binary_name())).await.0, 200);
        assert_eq!(data_text(&recording.handoff().sink.details()[0]), fixture_body(t), "{t}");
        let metadata = &event["Detail"]["metadata"];
        assert_eq!(metadata["webhook_type"], t.sendblue_name());
        assert!(metadata["dedup_key"].as_str().is_some_and(|k| !k.is_empty()));
        assert!(metadata["request_id"].as_str().unwrap().starts_with("JKJaXmPLvHcESH"));
        let received_at = metadata["received_at"].as_str().unwrap();
        assert!(
            humantime::parse_rfc3339(received_at).is_ok() && received_at.len() == 24,
            "{received_at}"
        );

        let (status, body) = answer(&receiver, fixture(t.binary_name())).await;
        assert_eq!((status, body), (200, json!({"status": "OK", "duplicate": true})), "{t}");
        assert_eq!(printed_events(&receiver).len(), 1, "{t}: a duplicate is not forwarded");
    }
}

#[tokio::test]
async fn base64_body_without_content_type_is_a_valid_delivery() {
    let receiver = memory_receiver(WebhookType::Receive);
    let (status, _) = answer(&receiver, fixture("receive-base64")).await;
    assert_eq!(status, 200);
    let events = printed_events(&receiver);
    let original: Value = serde_json::from_str(&fixture_body(WebhookType::Receive)).unwrap();
    assert_eq!(events[0]["Detail"]["data"], original);
    // The same message in plain text is then a duplicate.
    let (_, body) = answer(&receiver, fixture("receive")).await;
    assert_eq!(body["duplicate"], true);
}

async fn assert_refused(
    receiver: &MemoryPipeline,
    request: lambda_http::Request,
    status: u16,
    message: &str,
) {
    let (got, body) = answer(receiver, request).await;
    assert_eq!((got, body["status"].as_str()), (status, Some("ERROR")), "{body}");
    assert_eq!(body["message"], message);
    assert!(receiver.store().is_empty(), "nothing written");
    assert!(printed_events(receiver).is_empty(), "nothing forwarded");
}

#[tokio::test]
async fn bad_fixtures_are_refused_and_change_nothing() {
    let receiver = memory_receiver(WebhookType::Receive);
    assert_refused(&receiver, fixture("bad/wrong-secret"), 401, "invalid sb-signing-secret").await;
    assert_refused(
        &receiver,
        fixture("bad/missing-secret"),
        401,
        "missing sb-signing-secret header",
    )
    .await;
    assert_refused(&receiver, fixture("bad/get-method"), 405, "only POST is accepted").await;
    assert_refused(&receiver, fixture("bad/not-json"), 400, "body must be a JSON object").await;
    assert_refused(
        &receiver,
        fixture("bad/missing-key-field"),
        400,
        "missing field message_handle",
    )
    .await;
    let call_log = memory_receiver(WebhookType::CallLog);
    assert_refused(&call_log, fixture("bad/call-log-null-key"), 400, "missing field call_id").await;
}

/// Status callbacks carry no header: only a token in their URL opens them, and neither proof
/// opens the other's door.
#[tokio::test]
async fn status_callbacks_need_the_url_token_and_nothing_else_will_do() {
    let callbacks = memory_receiver(WebhookType::StatusCallback);
    assert_refused(
        &callbacks,
        fixture("bad/status-callback-wrong-token"),
        401,
        "invalid callback token",
    )
    .await;
    // No token anywhere: neither a path parameter nor a path segment (a secret header instead).
    let mut event: Value = serde_json::from_str(
        &std::fs::read_to_string(events_dir().join("status-callback.json")).unwrap(),
    )
    .unwrap();
    event.as_object_mut().unwrap().remove("pathParameters");
    event["rawPath"] = json!("/sendblue/status-callback");
    event["requestContext"]["http"]["path"] = json!("/sendblue/status-callback");
    let mut no_token = lambda_http::request::from_str(&event.to_string()).unwrap();
    no_token.headers_mut().insert("sb-signing-secret", SECRET.parse().unwrap());
    assert_refused(&callbacks, no_token, 401, "missing callback token in the URL").await;

    let receive = memory_receiver(WebhookType::Receive);
    let mut token_as_secret = fixture("receive");
    token_as_secret.headers_mut().insert("sb-signing-secret", CALLBACK_TOKEN.parse().unwrap());
    assert_refused(&receive, token_as_secret, 401, "invalid sb-signing-secret").await;

    // Keyed like `outbound`: one event per status of a message.
    let (status, _) = answer(&callbacks, fixture("status-callback")).await;
    assert_eq!(status, 200);
    let event = &printed_events(&callbacks)[0];
    assert_eq!(event["DetailType"], "status_callback");
    let handle = event["Detail"]["data"]["message_handle"].as_str().unwrap();
    assert_eq!(event["Detail"]["metadata"]["dedup_key"], format!("{handle}#DELIVERED"));
}

#[tokio::test]
async fn method_is_checked_before_the_secret_and_the_secret_before_the_body() {
    let receiver = memory_receiver(WebhookType::Receive);
    let mut request = fixture("bad/wrong-secret");
    *request.method_mut() = Method::PUT;
    assert_refused(&receiver, request, 405, "only POST is accepted").await;
    let mut request = fixture("bad/wrong-secret");
    *request.body_mut() = Body::Text("x".repeat(MAX_BODY_BYTES_CEILING + 1));
    assert_refused(&receiver, request, 401, "invalid sb-signing-secret").await;
}

#[tokio::test]
async fn size_limit_applies_to_the_decoded_body() {
    let receiver = memory_receiver(WebhookType::LineBlocked);
    let limit = MAX_BODY_BYTES_CEILING;
    let too_big = format!("{{\"pad\":\"{}\"}}", "x".repeat(limit));
    let message = format!("body is {} bytes; the limit is {limit}", too_big.len());
    assert_refused(&receiver, with_body(WebhookType::LineBlocked, too_big), 413, &message).await;

    let just_fits = format!("{{\"pad\":\"{}\"}}", "x".repeat(limit - 10));
    assert_eq!(just_fits.len(), limit);
    // API Gateway base64-encodes some bodies: 4/3 of the limit on the wire, at the limit decoded.
    let mut event: Value = serde_json::from_str(
        &std::fs::read_to_string(events_dir().join("receive-base64.json")).unwrap(),
    )
    .unwrap();
    let encoded = base64::engine::general_purpose::STANDARD.encode(just_fits.as_bytes());
    assert!(encoded.len() > limit, "the encoded form alone is over the limit");
    event["body"] = json!(encoded);
    event["isBase64Encoded"] = json!(true);
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let receiver = recording_receiver(WebhookType::LineBlocked);
    let mut request = request;
    *request.headers_mut() = fixture("line-blocked").headers().clone();
    let (status, body) = answer(&receiver, request).await;
    assert_eq!(status, 200, "judged by its decoded size: {body}");
    assert_eq!(data_text(&receiver.handoff().sink.details()[0]), just_fits);
}

#[tokio::test]
async fn non_utf8_and_wrongly_shaped_bodies_are_named() {
    let receiver = memory_receiver(WebhookType::Receive);
    let mut request = fixture("receive");
    *request.body_mut() = Body::Binary(vec![b'{', 0xff, 0xfe, b'}']);
    assert_refused(&receiver, request, 400, "body is not valid UTF-8").await;
    let body = r#"{"message_handle":["a"]}"#;
    assert_refused(
        &receiver,
        with_body(WebhookType::Receive, body),
        400,
        "field message_handle must be a string, number or boolean",
    )
    .await;
    assert_refused(&receiver, with_body(WebhookType::Receive, ""), 400, "body is empty").await;
}

#[tokio::test]
async fn outbound_status_changes_are_separate_events() {
    let receiver = memory_receiver(WebhookType::Outbound);
    for status in ["QUEUED", "SENT", "DELIVERED", "SENT"] {
        let body = body_with(WebhookType::Outbound, &[("status", json!(status))]);
        answer(&receiver, with_body(WebhookType::Outbound, body)).await;
    }
    let keys: Vec<_> = printed_events(&receiver)
        .iter()
        .map(|e| e["Detail"]["metadata"]["dedup_key"].as_str().unwrap().to_owned())
        .collect();
    let handle = "5a17319e-cbcf-443e-897e-d8b0c04b1b09";
    assert_eq!(
        keys,
        [format!("{handle}#QUEUED"), format!("{handle}#SENT"), format!("{handle}#DELIVERED")]
    );
}

#[tokio::test]
async fn same_key_with_other_content_is_a_flagged_duplicate() {
    let receiver = memory_receiver(WebhookType::Receive);
    answer(&receiver, fixture("receive")).await;
    let changed = body_with(WebhookType::Receive, &[("content", json!("edited"))]);
    let (status, body) = answer(&receiver, with_body(WebhookType::Receive, changed)).await;
    assert_eq!(
        (status, body),
        (200, json!({"status": "OK", "duplicate": true, "content_differs": true}))
    );
    let events = printed_events(&receiver);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["Detail"]["data"]["content"], "Hello!", "the first delivery stands");
}

#[tokio::test]
async fn content_length_is_never_trusted() {
    let receiver = memory_receiver(WebhookType::CallLog);
    let limit = MAX_BODY_BYTES_CEILING;
    let too_big = format!("{{\"call_id\":\"c\",\"pad\":\"{}\"}}", "x".repeat(limit));
    let mut request = with_body(WebhookType::CallLog, too_big.clone());
    request.headers_mut().insert("content-length", "10".parse().unwrap());
    let message = format!("body is {} bytes; the limit is {limit}", too_big.len());
    assert_refused(&receiver, request, 413, &message).await;

    let mut request = fixture("call-log");
    request.headers_mut().insert("content-length", "999999999".parse().unwrap());
    assert_eq!(answer(&receiver, request).await.0, 200, "the body decides, not the header");
}

/// The same request behind a Lambda Function URL (payload 2.0 with no route and no path
/// parameters; `events/function-url/` is written from AWS's documented format) and behind the
/// HTTP API gets the same answers: the status-callback token comes from the raw path there.
#[tokio::test]
async fn function_url_events_are_answered_as_http_api_events_are() {
    for (t, name) in
        [(WebhookType::Receive, "receive"), (WebhookType::StatusCallback, "status-callback")]
    {
        let via_api = recording_receiver(t);
        let via_url = recording_receiver(t);
        let url_event = fixture(&format!("function-url/{name}"));
        assert!(url_event.path_parameters().is_empty(), "a Function URL has no path parameters");
        let (api_answer, url_answer) =
            (answer(&via_api, fixture(name)).await, answer(&via_url, url_event).await);
        assert_eq!(api_answer, (200, json!({"status": "OK"})), "{name}");
        assert_eq!(url_answer, api_answer, "{name}");
        assert_eq!(
            data_text(&via_url.handoff().sink.details()[0]),
            data_text(&via_api.handoff().sink.details()[0]),
            "{name}: the same event forwarded"
        );
        let again = answer(&via_url, fixture(&format!("function-url/{name}"))).await;
        assert_eq!(again.1["duplicate"], true, "{name}");
    }

    // Only the segment right after `status-callback`, and only as the last one, is a token.
    let receiver = recording_receiver(WebhookType::StatusCallback);
    let text =
        std::fs::read_to_string(events_dir().join("function-url/status-callback.json")).unwrap();
    for (path, expected) in [
        ("/status-callback/local-dev-callback-token-0123456789abcdeX", "invalid callback token"),
        (
            "/status-callback/local-dev-callback-token-0123456789abcdef/more",
            "missing callback token in the URL",
        ),
        ("/local-dev-callback-token-0123456789abcdef", "missing callback token in the URL"),
        ("/status-callback/", "missing callback token in the URL"),
    ] {
        let mut event: Value = serde_json::from_str(&text).unwrap();
        event["rawPath"] = json!(path);
        event["requestContext"]["http"]["path"] = json!(path);
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        let (status, body) = answer(&receiver, request).await;
        assert_eq!((status, body["message"].as_str()), (401, Some(expected)), "{path}");
    }
    assert!(receiver.handoff().sink.details().is_empty() && receiver.store().is_empty());
}
