//! `reconcile` from a laptop: the reconcile function's code against a fake of the messages API,
//! DynamoDB Local and moto. A dry run counts by type and writes nothing; a run forwards what
//! the webhooks missed, once.

use sendblue_testkit::messages_api::{
    contact, record, FakeMessagesApi, API_KEY_ID, API_SECRET_KEY, LINE,
};
use sendblue_testkit::{now_ms, Emulators};

use crate::support::cli;

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn a_dry_run_counts_by_type_and_writes_nothing_then_a_run_recovers_once() {
    let aws = Emulators::connect().await;
    let table = aws.create_table().await;
    let (bus, queue) = aws.create_bus().await;
    let start = now_ms() - 3 * 3_600_000;
    let records = vec![
        record("cli-in-1", false, "RECEIVED", start),
        record("cli-in-2", false, "RECEIVED", start + 1_000),
        record("cli-out-1", true, "DELIVERED", start + 2_000),
    ];
    let mut theirs = record("cli-theirs", false, "RECEIVED", start + 3_000);
    theirs["sendblue_number"] = serde_json::json!("+15559999999");
    let records = [records, vec![theirs]].concat();
    let fake = FakeMessagesApi::start(records).await;
    fake.account().contacts = vec![contact("cli-contact", start + 4_000)];
    let (dynamodb, moto) = (
        std::env::var("SENDBLUE_TEST_DYNAMODB_ENDPOINT").unwrap(),
        std::env::var("SENDBLUE_TEST_MOTO_ENDPOINT").unwrap(),
    );
    let api_base = fake.api_base();
    let env = [
        ("SENDBLUE_API_BASE", api_base.as_str()),
        ("SENDBLUE_API_KEY_ID", API_KEY_ID),
        ("SENDBLUE_API_SECRET_KEY", API_SECRET_KEY),
        ("AWS_ENDPOINT_URL_DYNAMODB", dynamodb.as_str()),
        ("AWS_ENDPOINT_URL_EVENTBRIDGE", moto.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ];
    // The stack's outputs, as `sam list stack-outputs` writes them: where the stack reads.
    let outputs = std::env::temp_dir().join(format!("{table}-outputs.json"));
    let listed = serde_json::json!([
        {"OutputKey": "DedupTableName", "OutputValue": table},
        {"OutputKey": "EventBusName", "OutputValue": bus},
        {"OutputKey": "EventSource", "OutputValue": "acme.sendblue"},
        {"OutputKey": "DedupTtlSeconds", "OutputValue": "86400"},
        {"OutputKey": "SendblueNumbers", "OutputValue": LINE},
    ]);
    std::fs::write(&outputs, listed.to_string()).unwrap();
    let outputs = outputs.to_str().unwrap().to_owned();
    let args = |extra: &[&'static str]| {
        let mut args = vec!["reconcile", "--since", "4h", "--stack-outputs", &outputs];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| async move {
        cli(&args.iter().map(String::as_str).collect::<Vec<_>>(), &env).await
    };

    let dry = run(args(&["--dry-run"])).await;
    assert_eq!(dry.code, 0, "{dry:?}");
    // The stack's line only (not the other team's message), then the contacts.
    let line = format!("messages#{LINE}: 3 records read in 1 pages: would recover 3");
    assert!(dry.stdout.contains(&line), "{}", dry.stdout);
    assert!(dry.stdout.contains("contacts: 1 records read in 1 pages: would recover 1"));
    for count in ["outbound        1", "receive         2", "contact_created 1"] {
        assert!(dry.stdout.contains(count), "{count}: {}", dry.stdout);
    }
    assert!(aws.scan(&table).await.is_empty(), "a dry run writes nothing");
    assert!(aws.drain(&queue).await.is_empty(), "and forwards nothing");

    let real = run(args(&["--json"])).await;
    assert_eq!(real.code, 0, "{real:?}");
    let summary: serde_json::Value = serde_json::from_str(&real.stdout).unwrap();
    assert_eq!(summary["lists"][format!("messages#{LINE}")]["recovered"], 3);
    assert_eq!(summary["lists"]["contacts"]["recovered"], 1);
    assert!(aws.drain(&queue).await.is_empty(), "reconcile accepts; the stack's forward forwards");
    // The stack's forward function, configured with the stack's EventSource.
    let forwarder = sendblue_webhooks::forward::Forwarder {
        event_source: "acme.sendblue".to_owned(),
        ..aws.forwarder(&table, &bus)
    };
    let far = tokio::time::Instant::now() + std::time::Duration::from_secs(600);
    assert_eq!(forwarder.sweep(0, far).await.unwrap().forward.forwarded, 4);
    let delivered = aws.drain(&queue).await;
    assert_eq!(delivered.len(), 4);
    assert!(delivered.iter().all(|e| e.detail["metadata"]["origin"] == "reconciliation"));
    assert!(delivered.iter().all(|e| e.source == "acme.sendblue"));
    assert!(
        aws.scan(&table)
            .await
            .iter()
            .all(|item| !item["pk"].as_s().unwrap().starts_with("reconcile#")),
        "a backfill leaves the scheduled runs' watermark alone"
    );

    let again = run(args(&["--dry-run"])).await;
    assert!(again.stdout.contains("would recover 0, already accepted 3"), "{}", again.stdout);
    assert!(again.stdout.contains("would recover 0, already accepted 1"), "{}", again.stdout);
}
