//! `send` against receivers that fail, hang and succeed (and the real pipeline), `callback-url`
//! with the status-callback receiver, and the three ways of naming the stack.

use crate::support::receivers::{Behaviour, Receivers, ScriptedReceiver};
use crate::support::*;
use sendblue_webhooks::WebhookType;

const SECRET: &str = "local-dev-secret";

fn send_args<'a>(
    webhook_type: &'a str,
    body: &'a str,
    url: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec!["send", webhook_type, body, "--url", url, "--retry-delay-ms", "10"];
    args.extend_from_slice(extra);
    args
}

#[tokio::test]
async fn send_retries_5xx_like_sendblue_and_stops_at_the_first_success() {
    let receiver = ScriptedReceiver::start(&[Behaviour::Answer(500), Behaviour::Answer(503)]).await;
    let body = scratch_file("send-retry.json", &sample_body("receive"));
    let url = receiver.url();
    let run =
        cli(&send_args("receive", &body, &url, &[]), &[("SENDBLUE_WEBHOOK_SECRET", SECRET)]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert!(lines[0].starts_with("attempt 1: 500 ") && lines[1].starts_with("attempt 2: 503 "));
    assert!(lines[2].starts_with(r#"attempt 3: 200 {"status":"OK"}"#), "{}", lines[2]);
    let received = receiver.received();
    assert_eq!(received.len(), 3);
    for (headers, sent) in &received {
        assert_eq!(headers["sb-signing-secret"], SECRET);
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(sent, &sample_body("receive"), "the body as given, byte for byte");
    }
}

#[tokio::test]
async fn send_gives_up_after_three_retries_and_never_retries_a_4xx() {
    let receiver = ScriptedReceiver::start(&[Behaviour::Answer(500); 4]).await;
    let body = scratch_file("send-give-up.json", "{}");
    let url = receiver.url();
    let secret_file = scratch_file("secret.txt", &format!("{SECRET}\n"));
    let run = cli(&send_args("receive", &body, &url, &["--secret-file", &secret_file]), &[]).await;
    assert_eq!(run.code, 7, "{run:?}");
    assert_eq!(receiver.received()[0].0["sb-signing-secret"], SECRET, "the file's first line");
    assert_eq!(run.stdout.lines().count(), 4, "1 attempt + 3 retries: {}", run.stdout);
    assert!(run.stderr.contains("not accepted: answered 500 after 4 attempt(s)"), "{}", run.stderr);

    let receiver = ScriptedReceiver::start(&[Behaviour::Answer(401)]).await;
    let url = receiver.url();
    let run =
        cli(&send_args("receive", &body, &url, &[]), &[("SENDBLUE_WEBHOOK_SECRET", "wrong")]).await;
    assert_eq!((run.code, run.stdout.lines().count()), (7, 1), "{run:?}");
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn send_retries_a_timeout_and_names_an_unreachable_host() {
    let receiver = ScriptedReceiver::start(&[Behaviour::Hang]).await;
    let body = scratch_file("send-timeout.json", "{}");
    let url = receiver.url();
    let run = cli(
        &send_args("receive", &body, &url, &["--timeout-secs", "1"]),
        &[("SENDBLUE_WEBHOOK_SECRET", SECRET)],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.lines().next().unwrap().contains("no answer")
            && run.stdout.contains("timed out"),
        "{}",
        run.stdout
    );
    assert_eq!(receiver.received().len(), 2);

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let url = format!("http://{closed}/sendblue/receive");
    let run = cli(
        &send_args("receive", &body, &url, &["--retries", "1"]),
        &[("SENDBLUE_WEBHOOK_SECRET", SECRET)],
    )
    .await;
    assert_eq!(run.code, 7, "{run:?}");
    assert!(
        run.stderr.contains(&format!("no answer after 2 attempt(s): {closed}")),
        "{}",
        run.stderr
    );

    let run = cli(&send_args("receive", &body, &url, &[]), &[]).await;
    assert_eq!((run.code, run.stderr.contains("is not set")), (3, true), "{run:?}");
}

#[tokio::test]
async fn send_reaches_the_real_receiver_from_a_file_or_stdin() {
    let receivers = Receivers::start(SECRET, &"t".repeat(32)).await;
    let url = format!("{}/outbound", receivers.url_base());
    let body = scratch_file("send-outbound.json", &sample_body("outbound"));
    let env = [("SENDBLUE_WEBHOOK_SECRET", SECRET)];
    let run = cli(&send_args("outbound", &body, &url, &["--json"]), &env).await;
    assert_eq!(run.code, 0, "{run:?}");
    let attempt: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!((attempt["attempt"].as_u64(), attempt["status"].as_u64()), (Some(1), Some(200)));
    let again =
        cli_with_stdin(&send_args("outbound", "-", &url, &[]), &env, &sample_body("outbound"))
            .await;
    assert!(again.stdout.contains(r#"200 {"status":"OK","duplicate":true}"#), "{again:?}");
    assert_eq!(receivers.forwarded(WebhookType::Outbound).len(), 1);
}

#[tokio::test]
async fn callback_url_with_a_new_token_opens_the_status_callback_receiver_and_nothing_else_does() {
    let target = ["--url-base", "https://abc123.execute-api.us-east-1.amazonaws.com"];
    let made = cli(&[&["callback-url", "--new-token", "--json"], &target[..]].concat(), &[]).await;
    assert_eq!(made.code, 0, "{made:?}");
    let made: serde_json::Value = serde_json::from_str(&made.stdout).unwrap();
    let token = made["token"].as_str().unwrap();
    assert_eq!(token.len(), 64);
    assert_eq!(made["url"], format!("{STACK}/status-callback/{token}"));

    let receivers = Receivers::start(SECRET, &format!("{},{token}", "0".repeat(40))).await;
    let printed = cli(
        &["callback-url", "--url-base", &receivers.url_base()],
        &[("SENDBLUE_CALLBACK_TOKEN", token)],
    )
    .await;
    let url = printed.stdout.trim();
    assert_eq!(url, format!("{}/status-callback/{token}", receivers.url_base()));
    let body = scratch_file("status-callback.json", &sample_body("status-callback"));
    let run =
        cli(&send_args("status_callback", &body, url, &[]), &[("SENDBLUE_WEBHOOK_SECRET", SECRET)])
            .await;
    assert_eq!(run.code, 0, "{run:?}");
    let forwarded = receivers.forwarded(WebhookType::StatusCallback);
    assert_eq!(forwarded.len(), 1);
    assert_eq!(forwarded[0]["DetailType"], "status_callback");

    let forged = url.replace(&token[..8], "00000000");
    let run = cli(&send_args("status_callback", &body, &forged, &[]), &[]).await;
    assert_eq!(run.code, 7, "{run:?}");
    assert!(run.stdout.contains("401") && !run.stderr.contains(&forged), "{run:?}");

    let short =
        cli(&["callback-url", target[0], target[1]], &[("SENDBLUE_CALLBACK_TOKEN", "short")]).await;
    assert_eq!((short.code, short.stderr.contains("at least 32")), (3, true), "{short:?}");
}

#[tokio::test]
async fn a_new_callback_token_needs_no_stack() {
    let made = cli(&["callback-url", "--new-token", "--json"], &[]).await;
    assert_eq!(made.code, 0, "{made:?}");
    let made: serde_json::Value = serde_json::from_str(&made.stdout).unwrap();
    assert_eq!(made["token"].as_str().unwrap().len(), 64);
    assert_eq!(made["url"], serde_json::Value::Null);
    let text = cli(&["callback-url", "--new-token"], &[]).await;
    assert!(text.stdout.contains("StatusCallbackUrlBase"), "{text:?}");
    let without = cli(&["callback-url"], &[("SENDBLUE_CALLBACK_TOKEN", &"t".repeat(32))]).await;
    assert_eq!((without.code, without.stderr.contains("--new-token")), (3, true), "{without:?}");
}

#[tokio::test]
async fn no_secret_is_taken_from_the_command_line() {
    let body = scratch_file("no-flag.json", "{}");
    let run =
        cli(&send_args("receive", &body, "http://127.0.0.1:9/x", &["--secret", SECRET]), &[]).await;
    assert_eq!(run.code, 2, "no such flag: {run:?}");
    let run = cli(&["list", "--api-secret-key", "k"], &[]).await;
    assert_eq!(run.code, 2, "no such flag: {run:?}");
    let missing = cli(&send_args("receive", &body, "http://127.0.0.1:9/x", &[]), &[]).await;
    assert_eq!(missing.code, 3, "{missing:?}");
    assert!(missing.stderr.contains("SENDBLUE_WEBHOOK_SECRET is not set"), "{}", missing.stderr);
}

#[tokio::test]
async fn the_stack_is_read_from_an_outputs_file() {
    let outputs = scratch_file(
        "outputs.json",
        &serde_json::json!([
            {"OutputKey": "ReceiveUrl", "OutputValue": format!("{STACK}/receive"), "Description": "x"},
            {"OutputKey": "ApiBaseUrl", "OutputValue": STACK, "Description": "Base of the webhook URLs."}
        ])
        .to_string(),
    );
    let token = "a".repeat(32);
    let run =
        cli(&["callback-url", "--stack-outputs", &outputs], &[("SENDBLUE_CALLBACK_TOKEN", &token)])
            .await;
    assert_eq!(run.stdout.trim(), format!("{STACK}/status-callback/{token}"), "{run:?}");
    let missing = scratch_file("no-outputs.json", "[]");
    let run =
        cli(&["callback-url", "--stack-outputs", &missing], &[("SENDBLUE_CALLBACK_TOKEN", &token)])
            .await;
    assert_eq!((run.code, run.stderr.contains("no ApiBaseUrl output")), (3, true), "{run:?}");
}

/// CloudFormation is moto's, started by scripts/test.sh.
#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn the_stack_is_read_from_cloudformation() {
    let (endpoint, aws) = moto().await;
    let stack_name = format!("cli-test-{}", std::process::id());
    let template = serde_json::json!({
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"ApiBaseUrl": {"Value": STACK}}
    });
    aws_sdk_cloudformation::Client::new(&aws)
        .create_stack()
        .stack_name(&stack_name)
        .template_body(template.to_string())
        .send()
        .await
        .unwrap();
    let token = "b".repeat(32);
    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("SENDBLUE_CALLBACK_TOKEN", &token),
    ];
    let run = cli(&["callback-url", "--stack", &stack_name], &env).await;
    assert_eq!(run.stdout.trim(), format!("{STACK}/status-callback/{token}"), "{run:?}");
    let run = cli(&["callback-url", "--stack", "no-such-stack"], &env).await;
    assert_eq!(
        (run.code, run.stderr.contains("could not read the stack outputs")),
        (8, true),
        "{run:?}"
    );
    assert!(run.stderr.contains("in region us-east-1"), "the region searched is named: {run:?}");
    // The same stack asked for in another region: not found there, and the message says where.
    let run = cli(&["callback-url", "--stack", &stack_name, "--region", "eu-west-1"], &env).await;
    assert_eq!(run.code, 8, "{run:?}");
    assert!(run.stderr.contains("in region eu-west-1"), "{run:?}");
}

#[tokio::test]
async fn a_region_is_refused_unless_the_stack_is_read_from_cloudformation() {
    let outputs = scratch_file("region-outputs.json", "[]");
    for args in [
        vec!["callback-url", "--url-base", STACK, "--region", "eu-west-1"],
        vec!["callback-url", "--stack-outputs", &outputs, "--region", "eu-west-1"],
        vec!["reconcile", "--since", "1h", "--stack-outputs", &outputs, "--region", "eu-west-1"],
        vec!["doctor", "--region", "eu-west-1"],
    ] {
        let run = cli(&args, &[]).await;
        assert_eq!(run.code, 2, "{args:?} ignored --region: {run:?}");
        assert!(run.stderr.contains("--region"), "{run:?}");
    }
}
