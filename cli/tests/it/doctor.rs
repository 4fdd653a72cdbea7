//! `doctor` against the fake Sendblue and the real receivers on loopback: a healthy
//! integration passes, and each thing broken is named with its fix and a non-zero exit. The
//! transcript in docs/cli.md is the `--stack` test's (CloudFormation and CloudWatch are moto's):
//! `cargo test -p sendblue-webhooks-cli --test it -- --nocapture --include-ignored doctor`
//! prints it again.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, MetricDatum, StateValue};
use sendblue_webhooks::WebhookType;
use serde_json::{json, Value};

use crate::support::fake_sendblue::{Account, FakeSendblue};
use crate::support::receivers::Receivers;
use crate::support::*;

const SECRET: &str = "our-webhook-secret";
const CONTACT_SECRET: &str = "our-contact-secret";
const GLOBAL_SECRET: &str = "their-global-secret";

/// Receivers with their own contact_created secret, registered as `register` does it.
async fn healthy() -> (Receivers, FakeSendblue, String) {
    let token = "c".repeat(40);
    let receivers = Receivers::start_split(SECRET, CONTACT_SECRET, &token).await;
    let mut webhooks = BTreeMap::new();
    webhooks.insert(
        "receive".to_owned(),
        vec![json!({"url": "https://crm.example.com/hooks/sendblue", "secret": "their-secret"})],
    );
    let account =
        Account { webhooks, global_secret: Some(GLOBAL_SECRET.into()), ..Account::default() };
    let sendblue = FakeSendblue::start(account).await;
    let api = api_env(&sendblue.api_base());
    let base = receivers.url_base();
    let others = "receive,outbound,typing_indicator,call_log,line_blocked,line_assigned";
    for (types, secret) in [(others, SECRET), ("contact_created", CONTACT_SECRET)] {
        let args = ["register", "--url-base", &base, "--types", types];
        let run = cli(&args, &with(&api, &[("SENDBLUE_WEBHOOK_SECRET", secret)])).await;
        assert_eq!(run.code, 0, "{run:?}");
    }
    (receivers, sendblue, token)
}

fn problems(run: &Run) -> Vec<&str> {
    run.stdout.lines().filter(|l| l.starts_with("problem")).collect()
}

#[tokio::test]
async fn a_healthy_integration_passes_and_each_break_is_named_with_its_fix() {
    let (receivers, sendblue, token) = healthy().await;
    let api = api_env(&sendblue.api_base());
    let base = receivers.url_base();
    let env = with(&api, &[("SENDBLUE_CALLBACK_TOKEN", &token)]);
    let doctor = ["doctor", "--url-base", base.as_str()];

    let run = cli(&doctor, &env).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(problems(&run), Vec::<&str>::new());
    assert_eq!(run.stdout.lines().filter(|l| l.starts_with("ok ")).count(), 7 * 2 + 2, "{run:?}");
    assert!(run.stdout.contains("skipped  alarms and reconcile"), "{}", run.stdout);
    assert!(!run.stdout.contains(&token) && !run.stdout.contains(SECRET), "{}", run.stdout);
    let writes = sendblue.account().writes().len();
    for t in WebhookType::ALL {
        assert!(receivers.forwarded(t).is_empty(), "the probes forwarded nothing");
    }

    // Outbound unregistered by hand, the account's globalSecret made one of the receivers'
    // secrets, and a callback token the stack does not have.
    {
        let mut account = sendblue.account();
        account.webhooks.insert("outbound".into(), Vec::new());
        account.global_secret = Some(SECRET.into());
    }
    let wrong_token = "d".repeat(40);
    let run = cli(&doctor, &with(&api, &[("SENDBLUE_CALLBACK_TOKEN", &wrong_token)])).await;
    assert_eq!(run.code, 9, "{run:?}");
    let found = problems(&run);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(found[0].starts_with("problem  outbound: ") && found[0].contains("is not registered"));
    assert!(found[0].contains(&format!(
        "fix: `sendblue-webhooks register --url-base {base} --types outbound`"
    )));
    assert!(found[1].contains("status_callback receiver: refuses the callback token given"));
    assert!(found[2].contains("globalSecret") && found[2].contains("opens the receive, outbound, typing_indicator, call_log, line_blocked, line_assigned receiver(s)"));
    assert!(run.stderr.contains("3 problem(s) found"), "{}", run.stderr);
    assert!(!run.stdout.contains(&wrong_token) && !run.stdout.contains(SECRET), "{}", run.stdout);

    // A receiver that refuses what Sendblue sends it: contact_created switched to another
    // secret at Sendblue, behind the stack's back.
    sendblue.account().webhooks.insert(
        "contact_created".into(),
        vec![json!({"url": format!("{base}/contact-created"), "secret": "not-the-stacks"})],
    );
    let run = cli(&[&doctor[..], &["--json"]].concat(), &env).await;
    assert_eq!(run.code, 9, "{run:?}");
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let refused = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["subject"] == "contact_created receiver")
        .unwrap();
    assert_eq!(refused["verdict"], "problem", "{refused}");
    assert!(refused["fix"].as_str().unwrap().contains("ContactCreatedSecrets"), "{refused}");
    assert_eq!(sendblue.account().writes().len(), writes, "doctor only reads");
}

#[tokio::test]
async fn receivers_that_do_not_run_are_named() {
    let (receivers, sendblue, _) = healthy().await;
    let api = api_env(&sendblue.api_base());
    // The same registrations, but the stack's URLs lead nowhere (a port nobody listens on).
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let moved = receivers.url_base().replace(&receivers.address.to_string(), &gone.to_string());
    let run = cli(&["doctor", "--url-base", &moved], &with(&api, &[])).await;
    assert_eq!(run.code, 9, "{run:?}");
    let unanswered = problems(&run).iter().filter(|l| l.contains("no answer to a probe")).count();
    assert_eq!(unanswered, 8, "{}", run.stdout);
    let unregistered = problems(&run).iter().filter(|l| l.contains("is not registered")).count();
    assert_eq!(unregistered, 7, "the moved URLs are not the registered ones: {}", run.stdout);
}

/// CloudFormation and CloudWatch are moto's, started by scripts/test.sh: the stack's alarms
/// and its reconcile runs, read as a deployed stack has them.
#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn transcript_doctor_reads_the_stacks_alarms_and_reconcile_runs() {
    let (endpoint, aws) = moto().await;
    let (receivers, sendblue, token) = healthy().await;
    let stack_name = format!("doctor-test-{}", std::process::id());
    let namespace = format!("SendblueWebhooks/{stack_name}");
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&aws);
    let alarm_names = ["RefusedDeliveries", "ForwardFailed"].map(|a| format!("{stack_name}-{a}"));
    for name in &alarm_names {
        cloudwatch
            .put_metric_alarm()
            .alarm_name(name)
            .namespace(&namespace)
            .metric_name("Requests")
            .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
            .period(300)
            .evaluation_periods(1)
            .threshold(1.0)
            .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
            .send()
            .await
            .unwrap();
    }
    cloudwatch
        .set_alarm_state()
        .alarm_name(&alarm_names[0])
        .state_value(StateValue::Alarm)
        .state_reason("Threshold Crossed: 1 datapoint [3.0] was >= the threshold (1.0).")
        .send()
        .await
        .unwrap();
    // The template's outputs (moto's CloudFormation makes no alarms: they are made above).
    let template = json!({
        "Parameters": {"ReconcileSchedule": {"Type": "String"}, "ReconcileRateMinutes": {"Type": "Number"}},
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {
            "ApiBaseUrl": {"Value": receivers.url_base()},
            "AlarmNames": {"Value": alarm_names.join(",")},
            "MetricsNamespace": {"Value": namespace},
        }
    });
    let parameter = |key: &str, value: &str| {
        aws_sdk_cloudformation::types::Parameter::builder()
            .parameter_key(key)
            .parameter_value(value)
            .build()
    };
    aws_sdk_cloudformation::Client::new(&aws)
        .create_stack()
        .stack_name(&stack_name)
        .template_body(template.to_string())
        .parameters(parameter("ReconcileSchedule", "ENABLED"))
        .parameters(parameter("ReconcileRateMinutes", "5"))
        .send()
        .await
        .unwrap();

    let api = api_env(&sendblue.api_base());
    let env = with(
        &api,
        &[
            ("SENDBLUE_CALLBACK_TOKEN", token.as_str()),
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ],
    );
    let doctor = ["doctor", "--stack", stack_name.as_str()];
    let before_any_run = cli(&doctor, &env).await;
    assert_eq!(before_any_run.code, 9, "{before_any_run:?}");
    let found = problems(&before_any_run);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found[0].starts_with(&format!("problem  alarm {}: in ALARM: Threshold", alarm_names[0]))
    );
    assert!(found[1].starts_with("problem  reconcile: no run in the last 30 minutes"));
    assert!(before_any_run.stdout.contains("ok       alarms: 1 of 2 not in ALARM"));

    // A reconcile run a minute ago, as its EMF line becomes metrics.
    let minute_ms = (sendblue_webhooks::time::now_ms() / 60_000 - 1) * 60_000;
    let datum_at = |at_ms: u64, name: &str, value: f64| {
        MetricDatum::builder()
            .metric_name(name)
            .dimensions(Dimension::builder().name("Function").value("reconcile").build())
            .timestamp(DateTime::from_millis(at_ms as i64))
            .value(value)
            .build()
    };
    let datum = |name: &str, value: f64| datum_at(minute_ms, name, value);
    cloudwatch
        .put_metric_data()
        .namespace(&namespace)
        .metric_data(datum("Records", 0.0))
        .metric_data(datum("ApiErrors", 0.0))
        .send()
        .await
        .unwrap();
    let run = cli(&doctor, &env).await;
    assert_eq!(run.code, 9, "the alarm is still in ALARM: {run:?}");
    let ran_at = sendblue_webhooks::time::iso_ms(minute_ms);
    assert!(run.stdout.contains(&format!("ok       reconcile: last run at {ran_at}")), "{run:?}");
    assert_eq!(problems(&run).len(), 1, "{}", run.stdout);

    // docs/cli.md shows this very transcript: a change in what the CLI prints fails here.
    let transcript = run
        .transcript(&format!("doctor --stack {stack_name}"))
        .replace(&receivers.url_base(), STACK)
        .replace(&stack_name, "sendblue-webhooks")
        .replace(&ran_at, "2026-12-02T16:41:00.000Z");
    println!("{transcript}");
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/cli.md"));
    assert!(
        readme.unwrap().contains(&format!("```text\n{transcript}```")),
        "docs/cli.md's doctor transcript is not what the CLI prints now:\n{transcript}"
    );

    // That run failed on Sendblue's API after all (its ApiErrors is 1).
    let failed = datum("ApiErrors", 1.0);
    cloudwatch.put_metric_data().namespace(&namespace).metric_data(failed).send().await.unwrap();
    let run = cli(&doctor, &env).await;
    let expected = format!("problem  reconcile: the last run, at {ran_at}, failed on Sendblue's");
    assert!(run.stdout.contains(&expected), "{}", run.stdout);

    // A later run failed on something else (the table, or the API's order).
    let later_ms = minute_ms + 60_000;
    let later = |name: &str, value: f64| datum_at(later_ms, name, value);
    cloudwatch
        .put_metric_data()
        .namespace(&namespace)
        .metric_data(later("Records", 3.0))
        .metric_data(later("RunFailures", 1.0))
        .send()
        .await
        .unwrap();
    let run = cli(&doctor, &env).await;
    let later_at = sendblue_webhooks::time::iso_ms(later_ms);
    let expected = format!("problem  reconcile: the last run, at {later_at}, failed; fix:");
    assert!(run.stdout.contains(&expected), "{}", run.stdout);

    // A stack whose schedule is off, and one of whose alarms is gone.
    let off = format!("{stack_name}-off");
    let template = json!({
        "Parameters": {"ReconcileSchedule": {"Type": "String"}},
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {
            "ApiBaseUrl": {"Value": receivers.url_base()},
            "AlarmNames": {"Value": format!("{},{off}-Gone", alarm_names[1])},
            "MetricsNamespace": {"Value": namespace},
        }
    });
    aws_sdk_cloudformation::Client::new(&aws)
        .create_stack()
        .stack_name(&off)
        .template_body(template.to_string())
        .parameters(parameter("ReconcileSchedule", "DISABLED"))
        .send()
        .await
        .unwrap();
    let run = cli(&["doctor", "--stack", &off], &env).await;
    assert_eq!(run.code, 9, "{run:?}");
    let found = problems(&run);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].starts_with(&format!("problem  alarms: not found: {off}-Gone")), "{found:?}");
    assert!(found[1].contains("reconcile: its schedule is disabled"), "{found:?}");
    assert!(found[1].ends_with("fix: deploy with ReconcileSchedule=ENABLED"), "{found:?}");
}

#[tokio::test]
async fn a_bare_contact_created_is_probed_with_the_global_secret_and_any_other_bare_url_is_a_problem(
) {
    let (receivers, sendblue, _) = healthy().await;
    let api = api_env(&sendblue.api_base());
    let base = receivers.url_base();
    {
        // An account whose API dropped contact_created's secret, its globalSecret in that
        // receiver's own list; and a receive URL someone registered bare by hand.
        let mut account = sendblue.account();
        account.global_secret = Some(CONTACT_SECRET.into());
        account
            .webhooks
            .insert("contact_created".into(), vec![json!(format!("{base}/contact-created"))]);
        account.webhooks.insert("receive".into(), vec![json!(format!("{base}/receive"))]);
    }
    let run = cli(&["doctor", "--url-base", &base], &with(&api, &[])).await;
    assert_eq!(run.code, 9, "{run:?}");
    assert!(run
        .stdout
        .contains("ok       contact_created: registered without a secret of its own"));
    assert!(run.stdout.contains("ok       contact_created receiver: runs, and accepts the secret"));
    let found = problems(&run);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].starts_with("problem  receive: registered without a secret of its own"));
    assert!(found[0].contains("rotate-secret --url-base"), "{found:?}");
    assert!(found[1].starts_with("problem  receive receiver: refuses the secret Sendblue sends it"));
}
