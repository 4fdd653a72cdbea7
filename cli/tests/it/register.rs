//! `list`, `register`, `unregister` and `rotate-secret` against a fake of Sendblue's management
//! API: what was sent, what the account holds afterwards, what the user saw, the exit codes.
//! The first test checks docs/cli.md's transcript against what the CLI prints, and prints it:
//! `cargo test -p sendblue-webhooks-cli --test it -- --nocapture transcript`.

use std::collections::BTreeMap;

use crate::support::fake_sendblue::{Account, FakeSendblue};
use crate::support::receivers::Receivers;
use crate::support::*;
use serde_json::{json, Value};

const SECRET: &str = "our-webhook-secret";

/// An account that already has other people's webhooks.
fn busy_account() -> Account {
    let mut webhooks = BTreeMap::new();
    webhooks.insert(
        "receive".to_owned(),
        vec![json!({"url": "https://crm.example.com/hooks/sendblue", "secret": "their-secret"})],
    );
    webhooks.insert("outbound".to_owned(), vec![json!("https://crm.example.com/hooks/status")]);
    Account { webhooks, global_secret: Some("their-global-secret".into()), ..Account::default() }
}

fn ours(function: &str) -> String {
    format!("{STACK}/{function}")
}

#[tokio::test]
async fn transcript_register_dry_run_then_register_twice_then_unregister() {
    let sendblue = FakeSendblue::start(busy_account()).await;
    let api = api_env(&sendblue.api_base());
    let env = with(&api, &[("SENDBLUE_WEBHOOK_SECRET", SECRET)]);
    let mut transcript = String::new();

    let dry_run = cli(&["register", "--url-base", STACK, "--dry-run"], &env).await;
    transcript += &dry_run.transcript(&format!("register --url-base {STACK} --dry-run"));
    assert_eq!(dry_run.code, 0, "{dry_run:?}");
    assert_eq!(dry_run.stdout.matches(" add ").count(), 7, "{}", dry_run.stdout);
    assert!(dry_run.stdout.contains("dry run: nothing changed"));
    assert_eq!(dry_run.stderr, "", "every type takes its own secret: nothing to warn about");
    assert_eq!(sendblue.account().writes(), Vec::<&str>::new(), "a dry run only reads");

    let register = cli(&["register", "--url-base", STACK], &env).await;
    transcript += &register.transcript(&format!("register --url-base {STACK}"));
    assert_eq!(register.code, 0, "{register:?}");
    assert!(register.stdout.contains("read back and verified"));
    {
        let account = sendblue.account();
        let writes = account.writes();
        assert_eq!(writes.len(), 7, "one POST per type: {writes:?}");
        assert!(writes.iter().all(|w| w.starts_with("POST ")), "POST only, never PUT: {writes:?}");
        assert_eq!(
            account.entries("receive"),
            [
                ("https://crm.example.com/hooks/sendblue".into(), Some("their-secret".into())),
                (ours("receive"), Some(SECRET.into())),
            ]
        );
        assert_eq!(
            account.entries("outbound"),
            [
                ("https://crm.example.com/hooks/status".into(), None),
                (ours("outbound"), Some(SECRET.into()))
            ]
        );
        assert_eq!(
            account.entries("typing_indicator"),
            [(ours("typing-indicator"), Some(SECRET.into()))]
        );
        assert_eq!(
            account.entries("contact_created"),
            [(ours("contact-created"), Some(SECRET.into()))],
            "its own secret, not the account's globalSecret"
        );
        assert_eq!(account.global_secret.as_deref(), Some("their-global-secret"));
    }

    let again = cli(&["register", "--url-base", STACK], &env).await;
    transcript += &again.transcript(&format!("register --url-base {STACK}"));
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(again.stdout.matches(" unchanged ").count(), 7, "{}", again.stdout);
    assert!(again.stdout.contains("nothing to change"));
    assert_eq!(sendblue.account().writes().len(), 7, "the second run changed nothing");

    let unregister = cli(&["unregister", "--url-base", STACK], &env).await;
    transcript += &unregister.transcript(&format!("unregister --url-base {STACK}"));
    assert_eq!(unregister.code, 0, "{unregister:?}");
    let account = sendblue.account();
    assert!(account.writes()[7..].iter().all(|w| w.starts_with("DELETE ")));
    let before = busy_account();
    for type_name in crate::support::fake_sendblue::TYPES {
        let expected: Vec<Value> = before.webhooks.get(type_name).cloned().unwrap_or_default();
        assert_eq!(
            account.webhooks.get(type_name).cloned().unwrap_or_default(),
            expected,
            "{type_name}"
        );
    }
    // docs/cli.md shows this very transcript: a change in what the CLI prints fails here.
    println!("{transcript}");
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/cli.md"));
    assert!(
        readme.unwrap().contains(&format!("```text\n{transcript}```")),
        "docs/cli.md's transcript is not what the CLI prints now:\n{transcript}"
    );
}

#[tokio::test]
async fn register_removes_stale_urls_of_this_stack_and_leaves_other_stacks() {
    let mut account = busy_account();
    let other_stack = "https://zzz999.execute-api.us-east-1.amazonaws.com/sendblue/receive";
    account
        .webhooks
        .get_mut("receive")
        .unwrap()
        .extend([json!(ours("old-receive")), json!(other_stack)]);
    let sendblue = FakeSendblue::start(account).await;
    let api = api_env(&sendblue.api_base());
    let env = with(&api, &[("SENDBLUE_WEBHOOK_SECRET", SECRET)]);
    let run = cli(&["register", "--url-base", STACK, "--types", "receive"], &env).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        sendblue.account().writes(),
        ["POST receive", "DELETE receive"],
        "added before removed"
    );
    let urls: Vec<String> =
        sendblue.account().entries("receive").into_iter().map(|(u, _)| u).collect();
    assert_eq!(urls, ["https://crm.example.com/hooks/sendblue", other_stack, &ours("receive")]);
}

/// The outputs of a stack deployed behind Function URLs (or by `deploy-cargo-lambda.sh`): every
/// function on a host of its own.
fn function_url_outputs() -> (String, Vec<(&'static str, String)>) {
    let url_of = |key: &str| format!("https://{}.lambda-url.us-east-1.on.aws/", key.to_lowercase());
    let keys = [
        ("receive", "ReceiveUrl"),
        ("outbound", "OutboundUrl"),
        ("typing_indicator", "TypingIndicatorUrl"),
        ("call_log", "CallLogUrl"),
        ("line_blocked", "LineBlockedUrl"),
        ("line_assigned", "LineAssignedUrl"),
        ("contact_created", "ContactCreatedUrl"),
    ];
    let mut outputs: Vec<_> =
        keys.iter().map(|(_, key)| json!({"OutputKey": key, "OutputValue": url_of(key)})).collect();
    outputs.push(json!({
        "OutputKey": "StatusCallbackUrlBase",
        "OutputValue": format!("{}status-callback/", url_of("StatusCallback")),
    }));
    let file = scratch_file("function-url-outputs.json", &Value::from(outputs).to_string());
    (file, keys.iter().map(|(type_name, key)| (*type_name, url_of(key))).collect())
}

#[tokio::test]
async fn behind_function_urls_each_type_registers_its_own_host_and_unregister_takes_them_back() {
    let sendblue = FakeSendblue::start(busy_account()).await;
    let api = api_env(&sendblue.api_base());
    let env = with(&api, &[("SENDBLUE_WEBHOOK_SECRET", SECRET)]);
    let (outputs, urls) = function_url_outputs();

    let run = cli(&["register", "--stack-outputs", &outputs], &env).await;
    assert_eq!(run.code, 0, "{run:?}");
    for (type_name, url) in &urls {
        let secret = Some(SECRET.to_owned());
        let entries = sendblue.account().entries(type_name);
        assert!(entries.contains(&(url.clone(), secret)), "{type_name}: {entries:?}");
    }
    let run = cli(&["register", "--stack-outputs", &outputs], &env).await;
    assert_eq!((run.code, sendblue.account().writes().len()), (0, 7), "the second run keeps all");

    let run = cli(&["unregister", "--stack-outputs", &outputs], &env).await;
    assert_eq!(run.code, 0, "{run:?}");
    let left: Vec<String> =
        sendblue.account().entries("receive").into_iter().map(|(u, _)| u).collect();
    assert_eq!(left, ["https://crm.example.com/hooks/sendblue"], "only somebody else's is left");
    assert!(sendblue.account().entries("call_log").is_empty());

    let token = "t".repeat(32);
    let run =
        cli(&["callback-url", "--stack-outputs", &outputs], &[("SENDBLUE_CALLBACK_TOKEN", &token)])
            .await;
    assert_eq!(
        run.stdout.trim(),
        format!("https://statuscallback.lambda-url.us-east-1.on.aws/status-callback/{token}")
    );
}

#[tokio::test]
async fn list_masks_secrets_unless_asked() {
    let sendblue = FakeSendblue::start(busy_account()).await;
    let api = api_env(&sendblue.api_base());
    let env = with(&api, &[]);
    let masked = cli(&["list"], &env).await;
    assert_eq!(masked.code, 0, "{masked:?}");
    assert!(
        masked.stdout.contains("https://crm.example.com/hooks/sendblue  secret: ****"),
        "{}",
        masked.stdout
    );
    assert!(masked.stdout.contains("call_log\n  (none)"), "{}", masked.stdout);
    assert!(
        !masked.stdout.contains("their-secret") && !masked.stdout.contains("their-global-secret")
    );

    let json_run = cli(&["list", "--json"], &env).await;
    let listed: Value = serde_json::from_str(&json_run.stdout).unwrap();
    assert_eq!(
        listed["webhooks"]["receive"][0],
        json!({"url": "https://crm.example.com/hooks/sendblue", "secret": "****"})
    );
    assert_eq!(listed["webhooks"]["globalSecret"], "****");

    let shown = cli(&["list", "--show-secrets"], &env).await;
    assert!(
        shown.stdout.contains("secret: their-secret")
            && shown.stdout.contains("their-global-secret")
    );
}

#[tokio::test]
async fn register_refuses_to_overwrite_another_secret_and_changes_nothing() {
    let mut account = busy_account();
    account
        .webhooks
        .insert("receive".into(), vec![json!({"url": ours("receive"), "secret": "older-secret"})]);
    let sendblue = FakeSendblue::start(account).await;
    let api = api_env(&sendblue.api_base());
    let run = cli(
        &["register", "--url-base", STACK],
        &with(&api, &[("SENDBLUE_WEBHOOK_SECRET", SECRET)]),
    )
    .await;
    assert_eq!(run.code, 6, "{run:?}");
    assert!(
        run.stderr.contains("registered with another secret")
            && run.stderr.contains("rotate-secret")
    );
    assert!(!run.stderr.contains("older-secret") && !run.stdout.contains(SECRET));
    assert_eq!(sendblue.account().writes(), Vec::<&str>::new());
}

#[tokio::test]
async fn a_change_sendblue_silently_ignores_fails_loudly() {
    let sendblue = FakeSendblue::start(Account { ignore_posts: true, ..busy_account() }).await;
    let api = api_env(&sendblue.api_base());
    let run = cli(
        &["register", "--url-base", STACK, "--types", "receive,call_log"],
        &with(&api, &[("SENDBLUE_WEBHOOK_SECRET", SECRET)]),
    )
    .await;
    assert_eq!(run.code, 6, "{run:?}");
    assert!(
        run.stderr.contains(&format!("receive: {} is missing (with a secret)", ours("receive"))),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(&format!("call_log: {} is missing", ours("call-log"))));
}

#[tokio::test]
async fn errors_name_their_cause_and_exit_with_their_code() {
    let sendblue = FakeSendblue::start(busy_account()).await;
    let api = api_env(&sendblue.api_base());

    let wrong_key = with(&api, &[("SENDBLUE_API_SECRET_KEY", "wrong")]);
    let run = cli(&["list"], &wrong_key).await;
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stderr.contains("Sendblue answered 401: Invalid API credentials"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("hint: check SENDBLUE_API_KEY_ID and SENDBLUE_API_SECRET_KEY"));
    assert!(!run.stderr.contains("wrong"), "the key is not echoed");

    sendblue.account().fail_next = Some(500);
    let run = cli(
        &["register", "--url-base", STACK],
        &with(&api, &[("SENDBLUE_WEBHOOK_SECRET", SECRET)]),
    )
    .await;
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stderr.contains("Sendblue answered 500: Internal server error")
            && run.stderr.contains("run it again")
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let run = cli(&["list", "--api-base", &format!("http://{closed}")], &with(&api, &[])).await;
    assert_eq!(run.code, 5, "{run:?}");
    assert!(run.stderr.contains(&format!("could not reach {closed}")), "{}", run.stderr);

    let run = cli(&["list"], &[("SENDBLUE_API_BASE", &sendblue.api_base())]).await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("SENDBLUE_API_KEY_ID is not set"));

    let run = cli(&["register", "--url-base", STACK], &with(&api, &[])).await;
    assert_eq!(
        (run.code, run.stderr.contains("SENDBLUE_WEBHOOK_SECRET is not set")),
        (3, true),
        "{run:?}"
    );

    let run = cli(
        &["register", "--url-base", "http://abc.example.com"],
        &with(&api, &[("SENDBLUE_WEBHOOK_SECRET", SECRET)]),
    )
    .await;
    assert_eq!((run.code, run.stderr.contains("is not HTTPS")), (3, true), "{run:?}");

    let run =
        cli(&["register", "--url-base", STACK, "--types", "status_callback"], &with(&api, &[]))
            .await;
    assert_eq!((run.code, run.stderr.contains("callback-url")), (2, true), "{run:?}");
    assert_eq!(sendblue.account().writes(), Vec::<&str>::new(), "no error changed anything");
}

#[tokio::test]
async fn where_sendblue_drops_contact_createds_secret_the_read_back_says_what_to_do_instead() {
    let account = Account { contact_created_bare_only: true, ..busy_account() };
    let sendblue = FakeSendblue::start(account).await;
    let api = api_env(&sendblue.api_base());
    let env = with(&api, &[("SENDBLUE_WEBHOOK_SECRET", SECRET)]);

    let run = cli(&["register", "--url-base", STACK], &env).await;
    assert_eq!(run.code, 0, "the rest is verified: {run:?}");
    assert!(run.stderr.contains("dropped the secret of contact_created"), "{}", run.stderr);
    assert!(run.stderr.contains("ContactCreatedSecrets includes globalSecret"), "{}", run.stderr);
    assert!(!run.stderr.contains("their-global-secret"), "never echoed: {}", run.stderr);
    assert_eq!(sendblue.account().entries("contact_created"), [(ours("contact-created"), None)]);
    assert_eq!(sendblue.account().entries("receive")[1], (ours("receive"), Some(SECRET.into())));

    let again = cli(&["register", "--url-base", STACK], &env).await;
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(sendblue.account().writes().len(), 7, "the bare entry is kept, never POSTed twice");
    assert!(again.stderr.contains("registered without a secret"), "{}", again.stderr);
}

/// Sendblue with `account`, where the receivers' contact_created URL is registered bare (as
/// this tool did before Sendblue took secrets for the type); and that URL.
async fn with_bare_contact_created(
    receivers: &Receivers,
    mut account: Account,
) -> (FakeSendblue, String) {
    let url = format!("{}/contact-created", receivers.url_base());
    account.webhooks.insert("contact_created".into(), vec![json!(url.clone())]);
    (FakeSendblue::start(account).await, url)
}

async fn rotate_contact_created(
    sendblue: &FakeSendblue,
    receivers: &Receivers,
    new_secret: &str,
) -> Run {
    let api = api_env(&sendblue.api_base());
    let base = receivers.url_base();
    let args = ["rotate-secret", "--url-base", &base, "--types", "contact_created"];
    cli(&args, &with(&api, &[("SENDBLUE_NEW_WEBHOOK_SECRET", new_secret)])).await
}

#[tokio::test]
async fn rotate_secret_gives_a_bare_contact_created_webhook_its_own_secret_from_its_own_list() {
    // The stack's contact_created receiver has its own list (ContactCreatedSecrets): the
    // others' secret does not open it, and the probe says which parameter to deploy.
    let receivers = Receivers::start_split("main-secret", "contact-new", &"t".repeat(32)).await;
    let (sendblue, url) = with_bare_contact_created(&receivers, busy_account()).await;

    let refused = rotate_contact_created(&sendblue, &receivers, "main-secret").await;
    assert_eq!(refused.code, 6, "{refused:?}");
    assert!(refused.stderr.contains("ContactCreatedSecrets=<old>,<new>"), "{}", refused.stderr);

    let run = rotate_contact_created(&sendblue, &receivers, "contact-new").await;
    assert_eq!(run.code, 0, "{run:?}");
    let account = sendblue.account();
    assert_eq!(account.writes(), ["PUT"]);
    assert_eq!(account.entries("contact_created"), [(url, Some("contact-new".into()))]);
    assert_eq!(account.global_secret.as_deref(), Some("their-global-secret"), "left alone");
}

#[tokio::test]
async fn rotate_secret_where_sendblue_drops_contact_createds_secret_never_posts_it_again() {
    let receivers = Receivers::start("contact-new", &"t".repeat(32)).await;
    let account = Account { contact_created_bare_only: true, ..busy_account() };
    let (sendblue, url) = with_bare_contact_created(&receivers, account).await;
    let run = rotate_contact_created(&sendblue, &receivers, "contact-new").await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("dropped the secret of contact_created"), "{}", run.stderr);
    let account = sendblue.account();
    assert_eq!(account.writes(), ["PUT"], "no POST of an entry already there");
    assert_eq!(account.entries("contact_created"), [(url, None)]);
}

/// Sendblue's configuration points at receivers on loopback (the real pipeline, accepting
/// `receiver_secrets`), with the old secret; Sendblue's PUT drops `put_drops`.
/// `rotate-secret` is run against them, and the account is returned with the run.
async fn rotate(receiver_secrets: &str, put_drops: &[&str]) -> (Run, FakeSendblue, Receivers) {
    rotate_with(receiver_secrets, |account| {
        account.put_drops = put_drops.iter().map(|t| t.to_string()).collect();
    })
    .await
}

/// `rotate` on an account that `change` has shaped.
async fn rotate_with(
    receiver_secrets: &str,
    change: impl FnOnce(&mut Account),
) -> (Run, FakeSendblue, Receivers) {
    let receivers = Receivers::start(receiver_secrets, &"t".repeat(32)).await;
    let mut account = busy_account();
    for (type_name, function) in [("receive", "receive"), ("typing_indicator", "typing-indicator")]
    {
        let url = format!("{}/{function}", receivers.url_base());
        let hook = json!({"url": url, "secret": "old-secret"});
        account.webhooks.entry(type_name.into()).or_default().push(hook);
    }
    change(&mut account);
    let sendblue = FakeSendblue::start(account).await;
    let api = api_env(&sendblue.api_base());
    let env = with(&api, &[("SENDBLUE_NEW_WEBHOOK_SECRET", "new-secret")]);
    let base = receivers.url_base();
    let args = ["rotate-secret", "--url-base", &base, "--types", "receive,typing_indicator"];
    let run = cli(&args, &env).await;
    (run, sendblue, receivers)
}

#[tokio::test]
async fn rotate_secret_waits_for_the_receivers_then_switches_only_our_webhooks() {
    let (early, sendblue, _) = rotate("old-secret", &[]).await;
    assert_eq!(early.code, 6, "{early:?}");
    assert!(early.stderr.contains("does not accept the new secret yet"), "{}", early.stderr);
    assert_eq!(sendblue.account().writes(), Vec::<&str>::new(), "nothing changed at Sendblue");

    let (run, sendblue, receivers) = rotate("old-secret,new-secret", &[]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("deploy with SendblueWebhookSecrets=<new> alone"));
    let account = sendblue.account();
    assert_eq!(account.writes(), ["PUT"]);
    let ours = format!("{}/receive", receivers.url_base());
    assert_eq!(
        account.entries("receive"),
        [
            ("https://crm.example.com/hooks/sendblue".into(), Some("their-secret".into())),
            (ours, Some("new-secret".into()))
        ]
    );
    assert_eq!(
        account.entries("outbound"),
        [("https://crm.example.com/hooks/status".into(), None)]
    );
    assert_eq!(account.global_secret.as_deref(), Some("their-global-secret"));
    for t in sendblue_webhooks::WebhookType::ALL {
        assert!(receivers.forwarded(t).is_empty(), "the probes forwarded nothing");
    }
}

#[tokio::test]
async fn rotate_secret_puts_back_what_sendblues_put_silently_dropped() {
    let (run, sendblue, receivers) = rotate("old-secret,new-secret", &["typing_indicator"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let warning = "Sendblue's PUT dropped 1 webhook(s) of typing_indicator";
    assert!(run.stderr.contains(warning), "{}", run.stderr);
    let account = sendblue.account();
    assert_eq!(account.writes(), ["PUT", "POST typing_indicator"]);
    let typing = format!("{}/typing-indicator", receivers.url_base());
    assert_eq!(account.entries("typing_indicator"), [(typing, Some("new-secret".into()))]);
}

#[tokio::test]
async fn rotate_secret_aborts_when_the_configuration_changes_before_the_put() {
    let theirs = json!({"url": "https://new.example.com/hook", "secret": "s"});
    let (run, sendblue, _) = rotate_with("old-secret,new-secret", |account| {
        // Someone registers a webhook between the plan's read and the PUT.
        account.edit_before_get = Some((2, "call_log".into(), theirs));
    })
    .await;
    assert_eq!(run.code, 6, "{run:?}");
    assert!(run.stderr.contains("changed while the change was being planned"), "{}", run.stderr);
    let account = sendblue.account();
    assert_eq!(account.writes(), Vec::<&str>::new(), "no PUT over their new webhook");
    assert_eq!(
        account.entries("call_log"),
        [("https://new.example.com/hook".into(), Some("s".into()))]
    );
}

#[tokio::test]
async fn rotate_secret_never_posts_an_entry_again_and_reports_fields_the_put_lost() {
    let (run, sendblue, receivers) = rotate_with("old-secret,new-secret", |account| {
        let numbered = json!({"url": "https://crm.example.com/n", "secret": "x", "sendblue_numbers": ["+1555"]});
        account.webhooks.entry("receive".into()).or_default().push(numbered);
        account.put_strips = vec!["sendblue_numbers".into()];
    })
    .await;
    assert_eq!(run.code, 6, "a lost field is reported: {run:?}");
    assert!(run.stderr.contains("https://crm.example.com/n"), "{}", run.stderr);
    let account = sendblue.account();
    assert_eq!(account.writes(), ["PUT"], "nothing POSTed twice");
    let receive = account.entries("receive");
    assert_eq!(receive.iter().filter(|(url, _)| url == "https://crm.example.com/n").count(), 1);
    let ours = format!("{}/receive", receivers.url_base());
    assert!(receive.contains(&(ours, Some("new-secret".into()))));
}

#[tokio::test]
async fn a_legacy_account_secret_works_with_every_command_and_is_never_shown() {
    let legacy = "legacy-account-s3cret";
    let mut account = busy_account();
    account.legacy_secret = Some(legacy.into());
    let sendblue = FakeSendblue::start(account).await;
    let api = api_env(&sendblue.api_base());
    let env = with(&api, &[("SENDBLUE_WEBHOOK_SECRET", SECRET)]);
    for args in [
        vec!["list"],
        vec!["list", "--json"],
        vec!["register", "--url-base", STACK],
        vec!["unregister", "--url-base", STACK],
    ] {
        let run = cli(&args, &env).await;
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
        assert!(!run.stdout.contains(legacy) && !run.stderr.contains(legacy), "{args:?}: {run:?}");
    }
    assert_eq!(sendblue.account().legacy_secret.as_deref(), Some(legacy), "left as it was");

    let (run, sendblue, _) = rotate_with("old-secret,new-secret", |account| {
        account.legacy_secret = Some(legacy.into());
    })
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(sendblue.account().legacy_secret.as_deref(), Some(legacy), "the PUT kept it");
}

#[tokio::test]
async fn an_unreadable_configuration_is_refused_without_quoting_it() {
    let account = Account {
        answer_instead: Some(json!({"status": "OK", "webhooks": "s3cret-in-a-string"})),
        ..Account::default()
    };
    let sendblue = FakeSendblue::start(account).await;
    let api = api_env(&sendblue.api_base());
    let env = with(&api, &[("SENDBLUE_WEBHOOK_SECRET", SECRET)]);
    for args in [vec!["list"], vec!["register", "--url-base", STACK]] {
        let run = cli(&args, &env).await;
        assert_eq!(run.code, 6, "{args:?}: {run:?}");
        assert!(!run.stderr.contains("s3cret"), "{}", run.stderr);
    }
    assert_eq!(sendblue.account().writes(), Vec::<&str>::new());
}

#[tokio::test]
async fn no_command_follows_a_redirect_with_the_api_keys() {
    let elsewhere = FakeSendblue::start(busy_account()).await;
    let mut account = busy_account();
    account.redirect_to = Some(format!("{}/api/account/webhooks", elsewhere.api_base()));
    let sendblue = FakeSendblue::start(account).await;
    let api = api_env(&sendblue.api_base());
    let env = with(&api, &[("SENDBLUE_WEBHOOK_SECRET", SECRET)]);
    for args in [vec!["list"], vec!["register", "--url-base", STACK]] {
        let run = cli(&args, &env).await;
        assert_eq!(run.code, 4, "a 307 is an answer, not a new destination: {run:?}");
    }
    assert!(elsewhere.account().requests.is_empty(), "the keys never reached the other host");
}

#[tokio::test]
async fn on_a_shared_account_register_limits_our_receive_webhook_to_the_stacks_lines() {
    let sendblue = FakeSendblue::start(busy_account()).await;
    let api = api_env(&sendblue.api_base());
    let env = with(&api, &[("SENDBLUE_WEBHOOK_SECRET", SECRET)]);
    let outputs = json!([
        {"OutputKey": "ApiBaseUrl", "OutputValue": STACK},
        {"OutputKey": "SendblueNumbers", "OutputValue": "+15550000001"},
    ]);
    let outputs = scratch_file("outputs-with-lines.json", &outputs.to_string());
    let entry = |type_name: &str, url: &str| -> Value {
        let account = sendblue.account();
        account.webhooks[type_name].iter().find(|e| e["url"] == url).cloned().unwrap()
    };

    let run = cli(&["register", "--stack-outputs", &outputs], &env).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("(with secret, for +15550000001)"), "{}", run.stdout);
    assert_eq!(entry("receive", &ours("receive"))["sendblue_numbers"], json!(["+15550000001"]));
    assert_eq!(entry("outbound", &ours("outbound")).get("sendblue_numbers"), None, "receive only");
    assert!(sendblue.account().writes().iter().all(|w| w.starts_with("POST ")));

    let numbers = "+15550000001,+15550000002";
    let two_lines = ["register", "--stack-outputs", &outputs, "--sendblue-numbers", numbers];
    let run = cli(&two_lines, &env).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("new lines"), "{}", run.stdout);
    assert_eq!(sendblue.account().writes().last(), Some(&"PUT"), "an entry changed: one PUT");
    let receive = entry("receive", &ours("receive"));
    assert_eq!(receive["sendblue_numbers"], json!(["+15550000001", "+15550000002"]));
    assert_eq!(receive["secret"].as_str(), Some(SECRET));
    assert_eq!(
        sendblue.account().entries("receive")[0],
        ("https://crm.example.com/hooks/sendblue".into(), Some("their-secret".into())),
        "theirs untouched"
    );
    let again = cli(&two_lines, &env).await;
    assert!(again.stdout.contains("nothing to change"), "{again:?}");

    let run =
        cli(&["register", "--url-base", STACK, "--sendblue-numbers", "5550000001"], &env).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("E.164"), "{}", run.stderr);
}
