//! Each command: read, plan, change, read back, print.

use std::io::Read;
use std::time::Duration;

use sendblue_webhooks::config::MIN_CALLBACK_TOKEN_CHARS;
use sendblue_webhooks::WebhookType;
use serde_json::json;

use crate::api::ManagementApi;
use crate::args::{ApiArgs, Change, Cli, Command, Lines, ReconcileTarget, Target};
use crate::doctor::{self, Finding, Verdict};
use crate::error::CliError;
use crate::plan::{self, Action, Plan};
use crate::send::{self, Attempt, Delivery};
use crate::stack::{
    secrets_parameter, Endpoints, StackOutputs, ALARM_NAMES_OUTPUT, DEDUP_TABLE_OUTPUT,
    DEDUP_TTL_SECONDS_OUTPUT, METRICS_NAMESPACE_OUTPUT,
};
use crate::webhooks::{Compare, WebhookConfig};
use sendblue_webhooks::dedup::DynamoDbStore;
use sendblue_webhooks::reconcile::config::{SENDBLUE_API_KEY_ID, SENDBLUE_API_SECRET_KEY};
use sendblue_webhooks::reconcile::messages_api::{
    ApiCredentials, ApiError, HttpMessagesApi, MessagesApi,
};
use sendblue_webhooks::reconcile::{walked_lists, ReconcileError, Reconciler, Summary, Walk};

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let out = Output { json: cli.json };
    match cli.command {
        Command::List { api, show_secrets } => {
            let config = connect(&api)?.get().await?;
            out.config(if show_secrets { config } else { config.masked() });
        }
        Command::Register { change, secret_env, sendblue_numbers } => {
            let api = connect(&change.api)?;
            let (base, outputs) = locate(&change.target).await?;
            let secret = variable(&secret_env, "the secret to register")?;
            let lines = match (sendblue_numbers, outputs) {
                (Some(Lines(lines)), _) => lines,
                (None, Some(outputs)) => outputs.sendblue_numbers()?,
                (None, None) => Vec::new(),
            };
            let current = api.get().await?;
            let types = change.types.selected();
            let plan = plan::register(&current, &base, &types, &secret, &lines)?;
            apply(&api, &current, &plan, change.dry_run, &out).await?;
        }
        Command::Unregister { change } => {
            let (api, base) = prepare(&change).await?;
            let current = api.get().await?;
            let plan = plan::unregister(&current, &base, &change.types.selected());
            apply(&api, &current, &plan, change.dry_run, &out).await?;
        }
        Command::RotateSecret { change, new_secret_env } => {
            let (api, base) = prepare(&change).await?;
            let new_secret = variable(&new_secret_env, "the new secret")?;
            let types = change.types.selected();
            rotate_secret(&api, &base, &types, &new_secret, change.dry_run, &out).await?;
        }
        Command::CallbackUrl { target, token_env, new_token } => {
            let token = if new_token { random_token() } else { variable(&token_env, "the token")? };
            check_token(&token)?;
            let url = if target.is_given() || !new_token {
                let base = resolve(&target).await?;
                Some(format!("{}/{token}", base.url_of(WebhookType::StatusCallback)))
            } else {
                None
            };
            out.callback_url(url.as_deref(), new_token.then_some(token.as_str()));
        }
        Command::Reconcile { api, target, since, until, dry_run } => {
            let summaries = reconcile(&api, &target, since, until, dry_run).await?;
            out.reconciled(&summaries, dry_run);
        }
        Command::Doctor { api, target, token_env } => {
            let findings = doctor(&api, &target, &token_env).await?;
            out.findings(&findings);
            let problems = findings.iter().filter(|f| f.verdict == Verdict::Problem).count();
            if problems > 0 {
                return Err(CliError::Unhealthy(problems));
            }
            out.done("no problem found");
        }
        Command::Send {
            webhook_type,
            body,
            url,
            secret_env,
            secret_file,
            timeout_secs,
            retries,
            retry_delay_ms,
        } => {
            let secret = match webhook_type {
                // Sendblue sends status callbacks without any header; neither do we.
                WebhookType::StatusCallback => None,
                _ => Some(match &secret_file {
                    Some(path) => secret_from_file(path)?,
                    None => variable(&secret_env, "the secret to send")?,
                }),
            };
            let delivery = Delivery {
                url: &url,
                secret: secret.as_deref(),
                body: read_body(&body)?,
                timeout: Duration::from_secs(timeout_secs),
                retries,
                retry_delay: Duration::from_millis(retry_delay_ms),
            };
            send::deliver(&delivery, |attempt| out.attempt(attempt)).await?;
        }
    }
    Ok(())
}

fn connect(api: &ApiArgs) -> Result<ManagementApi, CliError> {
    ManagementApi::new(&api.api_base, api_keys()?)
}

/// The account's API keys, from the environment only.
fn api_keys() -> Result<ApiCredentials, CliError> {
    let what = "the account's API keys";
    Ok(ApiCredentials {
        key_id: variable(SENDBLUE_API_KEY_ID, what)?,
        secret_key: variable(SENDBLUE_API_SECRET_KEY, what)?,
    })
}

async fn prepare(change: &Change) -> Result<(ManagementApi, Endpoints), CliError> {
    Ok((connect(&change.api)?, resolve(&change.target).await?))
}

async fn resolve(target: &Target) -> Result<Endpoints, CliError> {
    Ok(locate(target).await?.0)
}

/// The stack's URLs, and its outputs when they were read (not with `--url-base`).
async fn locate(target: &Target) -> Result<(Endpoints, Option<StackOutputs>), CliError> {
    if let Some(url) = &target.url_base {
        return Ok((Endpoints::from_api_base(url)?, None));
    }
    let outputs = StackOutputs::load(
        target.stack_outputs.as_deref(),
        target.stack.as_deref(),
        target.region.as_deref(),
    )
    .await?
    .ok_or_else(|| {
        CliError::Input(
            "name the stack with --url-base, --stack-outputs or --stack (`callback-url \
             --new-token` alone makes a token without one)"
                .into(),
        )
    })?;
    Ok((outputs.endpoints()?, Some(outputs)))
}

/// A secret from the environment: never from the command line, where `ps` and shell history
/// would keep it.
fn variable(name: &str, what: &str) -> Result<String, CliError> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| CliError::Input(format!("{name} is not set ({what})")))
}

/// A secret from the first line of a file (a trailing newline is not part of it).
fn secret_from_file(path: &std::path::Path) -> Result<String, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Input(format!("cannot read {}: {}", path.display(), e.kind())))?;
    let secret = text.lines().next().unwrap_or_default().trim();
    if secret.is_empty() {
        return Err(CliError::Input(format!("{} holds no secret", path.display())));
    }
    Ok(secret.to_owned())
}

fn read_body(path: &std::path::Path) -> Result<String, CliError> {
    let mut body = String::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut body).map(drop)
    } else {
        std::fs::read_to_string(path).map(|text| body = text)
    };
    read.map_err(|e| CliError::Input(format!("cannot read {}: {e}", path.display())))?;
    Ok(body)
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    hex::encode(bytes)
}

/// The receiver refuses short tokens at start-up; the URL needs no escaping.
fn check_token(token: &str) -> Result<(), CliError> {
    let url_safe = token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if token.len() < MIN_CALLBACK_TOKEN_CHARS || !url_safe {
        return Err(CliError::Input(format!(
            "a callback token is at least {MIN_CALLBACK_TOKEN_CHARS} characters of A-Z, a-z, 0-9, - and _"
        )));
    }
    Ok(())
}

/// Every check of `doctor`, in the order printed.
async fn doctor(api: &ApiArgs, target: &Target, token_env: &str) -> Result<Vec<Finding>, CliError> {
    let (endpoints, outputs) = locate(target).await?;
    let config = connect(api)?.get().await?;
    let token = variable(token_env, "").ok();
    if let Some(token) = &token {
        check_token(token)?;
    }
    let stack_args = target.as_args();
    let subject = doctor::Subject {
        config: &config,
        endpoints: &endpoints,
        stack_args: &stack_args,
        callback_token: token.as_deref(),
    };
    let mut findings = doctor::receivers(&subject).await;
    let monitored = outputs
        .as_ref()
        .and_then(|o| Some((o, o.get(ALARM_NAMES_OUTPUT)?, o.get(METRICS_NAMESPACE_OUTPUT)?)));
    let Some((outputs, alarm_names, namespace)) = monitored else {
        findings.push(Finding::not_checked(
            "alarms and reconcile",
            "the stack's outputs name none (a stack deployed without SAM or before this \
             version, or named by --url-base)",
        ));
        return Ok(findings);
    };
    let aws = outputs.aws().await;
    let alarm_names: Vec<String> = alarm_names.split(',').map(str::to_owned).collect();
    findings.extend(doctor::alarms(&aws, &alarm_names).await);
    let parameters = outputs.deployed.as_ref().map(|d| &d.parameters);
    findings.push(doctor::reconcile(&aws, namespace, parameters).await);
    Ok(findings)
}

/// One reconciliation run over `since..until`, with the function's own code.
async fn reconcile(
    api: &ApiArgs,
    target: &ReconcileTarget,
    since_ms: u64,
    until_ms: Option<u64>,
    dry_run: bool,
) -> Result<Vec<(String, Summary)>, CliError> {
    let share_percent = sendblue_webhooks::reconcile::config::DEFAULT_API_SHARE_PERCENT;
    let messages = HttpMessagesApi::new(&api.api_base, api_keys()?, share_percent)
        .map_err(|e| CliError::Input(e.to_string()))?;
    let (file, stack) = (target.stack_outputs.as_deref(), target.stack.as_deref());
    let outputs = StackOutputs::load(file, stack, target.region.as_deref())
        .await?
        .expect("clap requires one of --stack-outputs and --stack");
    let dedup_ttl_seconds = outputs.required(DEDUP_TTL_SECONDS_OUTPUT)?;
    let dedup_ttl_seconds = dedup_ttl_seconds.parse().map_err(|_| {
        CliError::Input(format!("{DEDUP_TTL_SECONDS_OUTPUT} {dedup_ttl_seconds:?} is no number"))
    })?;
    let aws = outputs.aws().await;
    let store = DynamoDbStore::new(
        aws_sdk_dynamodb::Client::new(&aws),
        outputs.required(DEDUP_TABLE_OUTPUT)?,
    );
    // The lists the stack's reconcile function walks: messages (of the stack's lines, when its
    // SendblueNumbers output names some), then contacts.
    let mut summaries = Vec::new();
    for list in walked_lists(messages, &outputs.sendblue_numbers()?) {
        let reconciler = Reconciler {
            store: &store,
            api: &list,
            walk: Walk::backfill(since_ms, until_ms, dry_run),
            dedup_ttl_seconds,
        };
        // A backfill runs to its end. What it accepts, the stack's `forward` function puts on
        // the bus from the table's stream.
        let far = tokio::time::Instant::now() + Duration::from_secs(24 * 3600);
        let summary = reconciler.run(far).await.map_err(|failed| match failed.error {
            ReconcileError::Api(ApiError::Status { status }) => CliError::Api {
                status,
                message: format!("the {} list refused the request", list.watermark()),
                hint: "run it again: what was recovered stays recovered, and nothing is \
                       forwarded twice",
            },
            ReconcileError::Api(other) => {
                CliError::Network { host: api.api_base.clone(), reason: other.to_string() }
            }
            other => CliError::Stack(other.to_string()),
        })?;
        if summary.skipped {
            return Err(CliError::Stack(format!(
                "another reconciliation walk (the stack's scheduled run, or another backfill) \
                 holds the lease: both would share the API's rate limit. Try again within {} \
                 minutes, or disable the schedule (ReconcileSchedule=DISABLED) for a long \
                 backfill",
                sendblue_webhooks::reconcile::LEASE_MS / 60_000
            )));
        }
        summaries.push((list.watermark().to_owned(), summary));
    }
    Ok(summaries)
}

/// Makes a register/unregister plan's changes (additions before removals, so a type is never
/// left without this stack's URL), then reads the configuration back.
async fn apply(
    api: &ManagementApi,
    planned_on: &WebhookConfig,
    plan: &Plan,
    dry_run: bool,
    out: &Output,
) -> Result<(), CliError> {
    out.plan(plan, dry_run);
    if dry_run || plan.is_noop() {
        return Ok(());
    }
    if plan.rewrites_entries() {
        put_whole(api, planned_on, plan, out).await?;
        out.done("changes made; configuration read back and verified");
        return Ok(());
    }
    for (type_name, changes) in plan.by_type(Action::Add) {
        let hooks: Vec<_> = plan
            .expected
            .of(type_name)
            .iter()
            .filter(|h| changes.iter().any(|c| c.url == h.url))
            .cloned()
            .collect();
        api.add(type_name, &hooks).await?;
    }
    for (type_name, changes) in plan.by_type(Action::Remove) {
        let urls: Vec<&str> = changes.iter().map(|c| c.url.as_str()).collect();
        api.remove(type_name, &urls).await?;
    }
    let read_back = api.get().await?;
    let expected = allow_dropped_secrets(plan.expected.clone(), &read_back, out);
    judge(&read_back, &expected, Compare::Target)?;
    out.done("changes made; configuration read back and verified");
    Ok(())
}

/// `expected` as an account that takes bare `contact_created` URLs only leaves it: where the
/// read-back shows the secret dropped, the webhook is expected bare, and the user is told what
/// its deliveries will carry instead.
fn allow_dropped_secrets(
    mut expected: WebhookConfig,
    read_back: &WebhookConfig,
    out: &Output,
) -> WebhookConfig {
    for (url, secret) in read_back.dropped_contact_created_secrets(&expected) {
        out.warn(&format!(
            "Sendblue dropped the secret of contact_created {url} (this account's API takes bare \
             URLs only for the type)"
        ));
        if let Some(advice) = plan::global_secret_advice(read_back, &secret) {
            out.warn(&advice);
        }
        expected = expected.without_contact_created_secret(&url);
    }
    expected
}

async fn verify(
    api: &ManagementApi,
    expected: &WebhookConfig,
    compare: Compare,
) -> Result<(), CliError> {
    judge(&api.get().await?, expected, compare)
}

fn judge(
    read_back: &WebhookConfig,
    expected: &WebhookConfig,
    compare: Compare,
) -> Result<(), CliError> {
    let differences = read_back.differences_from(expected, compare);
    if differences.is_empty() {
        return Ok(());
    }
    Err(CliError::Mismatch(format!(
        "Sendblue's configuration, read back, is not what was written:\n  {}",
        differences.join("\n  ")
    )))
}

/// The zero-downtime order: the receivers already accept the new secret (checked here), Sendblue is
/// switched (one PUT of the whole configuration with only our secrets changed), and the user
/// then drops the old secret from the stack.
async fn rotate_secret(
    api: &ManagementApi,
    base: &Endpoints,
    types: &[WebhookType],
    new_secret: &str,
    dry_run: bool,
    out: &Output,
) -> Result<(), CliError> {
    for &webhook_type in types {
        let url = base.url_of(webhook_type);
        if !send::accepts_secret(url, new_secret).await? {
            return Err(CliError::Mismatch(format!(
                "{url} does not accept the new secret yet (401): deploy with {} first; nothing \
                 was changed at Sendblue",
                accept_both(webhook_type)
            )));
        }
    }
    let planned_on = api.get().await?;
    let plan = plan::rotate(&planned_on, base, types, new_secret)?;
    out.plan(&plan, dry_run);
    if dry_run || plan.is_noop() {
        return Ok(());
    }
    put_whole(api, &planned_on, &plan, out).await?;
    out.done(
        "Sendblue now sends the new secret; configuration read back and verified.\n\
         Next: deploy with SendblueWebhookSecrets=<new> alone to stop accepting the old one.",
    );
    Ok(())
}

/// Writes a plan that changes entries, not only lists (a new secret, other lines), with one
/// PUT of the whole configuration, then reads it back: every entry must be as planned.
async fn put_whole(
    api: &ManagementApi,
    planned_on: &WebhookConfig,
    plan: &Plan,
    out: &Output,
) -> Result<(), CliError> {
    // The PUT replaces the whole configuration: a webhook someone added since it was read
    // would be deleted. Read it again right before, and write only over what was planned on.
    if api.get().await? != *planned_on {
        return Err(CliError::Mismatch(
            "Sendblue's configuration changed while the change was being planned; nothing was \
             changed. Run the command again."
                .into(),
        ));
    }
    api.replace(&plan.expected).await?;
    let after = api.get().await?;
    let expected = allow_dropped_secrets(plan.expected.clone(), &after, out);
    if !after.differences_from(&expected, Compare::WholeEntry).is_empty() {
        // A PUT has been seen to drop a type it did not know, silently: put back, with POST,
        // each entry whose URL and secret went missing (never one already there, which would
        // register it twice), then judge again.
        for (type_name, hooks) in &expected.by_type {
            let missing: Vec<_> = hooks
                .iter()
                .filter(|h| !after.of(type_name).iter().any(|a| a.same_target(h)))
                .cloned()
                .collect();
            if !missing.is_empty() {
                out.warn(&format!(
                    "Sendblue's PUT dropped {} webhook(s) of {type_name}; adding them back with POST",
                    missing.len()
                ));
                api.add(type_name, &missing).await?;
            }
        }
        verify(api, &expected, Compare::WholeEntry).await?;
    }
    Ok(())
}

/// The deployment that makes the receiver of `webhook_type` accept both secrets.
fn accept_both(webhook_type: WebhookType) -> String {
    match secrets_parameter(webhook_type) {
        (own, Some(fallback)) => {
            format!("{own}=<old>,<new> ({fallback}=<old>,<new> if the stack leaves {own} empty)")
        }
        (own, None) => format!("{own}=<old>,<new>"),
    }
}

/// Text for people, or JSON for scripts.
struct Output {
    json: bool,
}

impl Output {
    fn config(&self, config: WebhookConfig) {
        if self.json {
            return println!("{}", json!({ "webhooks": config }));
        }
        for (type_name, hooks) in &config.by_type {
            println!("{type_name}");
            if hooks.is_empty() {
                println!("  (none)");
            }
            for hook in hooks {
                match &hook.secret {
                    Some(secret) => println!("  {}  secret: {secret}", hook.url),
                    None => println!("  {}  (no secret)", hook.url),
                }
            }
        }
        println!("globalSecret: {}", config.global_secret.as_deref().unwrap_or("(not set)"));
        for (name, value) in &config.other {
            println!("{name} (not a list of webhooks): {value}");
        }
    }

    fn plan(&self, plan: &Plan, dry_run: bool) {
        if self.json {
            return println!("{}", json!({ "dry_run": dry_run, "plan": plan }));
        }
        for change in &plan.changes {
            let action = match change.action {
                Action::Add => "add",
                Action::Remove => "remove",
                Action::Keep => "unchanged",
                Action::SetSecret => "new secret",
                Action::SetLines => "new lines",
            };
            let secret = if change.with_secret { "with secret" } else { "URL only" };
            let lines = match change.lines.as_slice() {
                [] => String::new(),
                lines => format!(", for {}", lines.join(", ")),
            };
            println!("{:<17} {action:<10} {}  ({secret}{lines})", change.type_name, change.url);
        }
        for warning in &plan.warnings {
            self.warn(warning);
        }
        if dry_run {
            println!("dry run: nothing changed");
        } else if plan.is_noop() {
            println!("nothing to change");
        }
    }

    fn callback_url(&self, url: Option<&str>, new_token: Option<&str>) {
        if self.json {
            return println!("{}", json!({ "url": url, "token": new_token }));
        }
        if let Some(token) = new_token {
            println!("token: {token}");
            println!("Add it to the stack's StatusCallbackTokens and deploy before using the URL.");
        }
        match url {
            Some(url) => println!("{url}"),
            None => println!(
                "The URL is the stack's StatusCallbackUrlBase output followed by the token \
                 (`callback-url --stack NAME` prints it once deployed)."
            ),
        }
    }

    fn attempt(&self, attempt: &Attempt) {
        if self.json {
            return println!("{}", serde_json::to_string(attempt).expect("plain data"));
        }
        let answer = match (attempt.status, &attempt.answer, &attempt.error) {
            (Some(status), answer, _) => format!("{status} {}", answer.as_deref().unwrap_or("")),
            (None, _, error) => format!("no answer: {}", error.as_deref().unwrap_or("")),
        };
        println!("attempt {}: {answer} ({} ms)", attempt.attempt, attempt.duration_ms);
    }

    /// One block per list walked (`messages`, or one per line, and `contacts`).
    fn reconciled(&self, summaries: &[(String, Summary)], dry_run: bool) {
        for (_, summary) in summaries {
            if let (Some(from), Some(to)) = (&summary.uncovered_from, &summary.uncovered_to) {
                self.warn(&format!(
                    "{from} to {to} lies before the dedup window and cannot be recovered: the \
                     walk started at {to} (events of that span would be forwarded a second time)"
                ));
            }
        }
        if self.json {
            let lists: serde_json::Map<_, _> =
                summaries.iter().map(|(list, summary)| (list.clone(), json!(summary))).collect();
            return println!("{}", json!({ "dry_run": dry_run, "lists": lists }));
        }
        let verb = if dry_run { "would recover" } else { "recovered" };
        for (list, summary) in summaries {
            println!(
                "{list}: {} records read in {} pages: {verb} {}, already accepted {}",
                summary.records, summary.pages, summary.recovered, summary.duplicates
            );
            for (type_name, count) in &summary.by_type {
                println!("  {type_name:<15} {count}");
            }
        }
        if dry_run {
            println!("dry run: nothing written");
        }
    }

    fn findings(&self, findings: &[Finding]) {
        if self.json {
            let problems = findings.iter().filter(|f| f.verdict == Verdict::Problem).count();
            return println!("{}", json!({ "findings": findings, "problems": problems }));
        }
        for finding in findings {
            let mark = match finding.verdict {
                Verdict::Ok => "ok",
                Verdict::Problem => "problem",
                Verdict::NotChecked => "skipped",
            };
            let line = format!("{mark:<8} {}: {}", finding.subject, finding.detail);
            match &finding.fix {
                Some(fix) => println!("{line}; fix: {fix}"),
                None => println!("{line}"),
            }
        }
    }

    fn warn(&self, warning: &str) {
        eprintln!("warning: {warning}");
    }

    fn done(&self, message: &str) {
        if !self.json {
            println!("{message}");
        }
    }
}
