//! `doctor`: whether the integration works end to end, asked without changing anything.
//!
//! Each receiver gets the probe `rotate-secret` uses (a body every receiver refuses with 400
//! once the secret passes, storing and forwarding nothing), signed with the very secret
//! Sendblue has registered for it, so a 400 proves both that the function runs and that it
//! accepts what Sendblue sends. Each type's registration is read from Sendblue; the stack's
//! alarms and its last reconcile run are read from CloudWatch, by the names its outputs give.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_sdk_cloudwatch::types::{Dimension, StateValue, Statistic};
use sendblue_webhooks::time::iso_ms;
use sendblue_webhooks::WebhookType;
use serde::Serialize;

use crate::error::CliError;
use crate::send;
use crate::stack::{self, Endpoints};
use crate::webhooks::{Webhook, WebhookConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Ok,
    Problem,
    /// Could not be asked here (for example the alarms, without `--stack`).
    NotChecked,
}

/// One line of the report.
#[derive(Debug, Serialize)]
pub struct Finding {
    pub subject: String,
    pub verdict: Verdict,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    fn ok(subject: impl Into<String>, detail: impl Into<String>) -> Self {
        Self { subject: subject.into(), verdict: Verdict::Ok, detail: detail.into(), fix: None }
    }

    fn problem(
        subject: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            subject: subject.into(),
            verdict: Verdict::Problem,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn not_checked(subject: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            verdict: Verdict::NotChecked,
            detail: detail.into(),
            fix: None,
        }
    }
}

/// What the checks look at.
pub struct Subject<'a> {
    pub config: &'a WebhookConfig,
    pub endpoints: &'a Endpoints,
    /// How the stack was named, for the commands of the fixes (`--stack NAME`).
    pub stack_args: &'a str,
    /// A status-callback token to try (the one send-message requests carry), if one was given.
    pub callback_token: Option<&'a str>,
}

/// Every registrable type's registration and receiver, then the status-callback receiver and
/// whether the account's `globalSecret` opens a receiver it must not.
pub async fn receivers(subject: &Subject<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for webhook_type in WebhookType::REGISTRABLE {
        let sent = registration(subject, webhook_type, &mut findings);
        findings.push(receiver(subject, webhook_type, sent.as_ref()).await);
    }
    findings.push(status_callback(subject).await);
    findings.extend(global_secret_exposure(subject).await);
    findings
}

/// What Sendblue sends the receiver with each delivery.
enum Sent {
    Secret(String),
    NoSecret,
}

/// The registration of `webhook_type`, as findings; what Sendblue sends when it is registered.
fn registration(
    subject: &Subject<'_>,
    webhook_type: WebhookType,
    findings: &mut Vec<Finding>,
) -> Option<Sent> {
    let (name, endpoints) = (webhook_type.sendblue_name(), subject.endpoints);
    let hooks = subject.config.of(name);
    let register = format!("sendblue-webhooks register {} --types {name}", subject.stack_args);
    for stale in hooks
        .iter()
        .filter(|h| endpoints.contains(&h.url) && !endpoints.is_url_of(webhook_type, &h.url))
    {
        findings.push(Finding::problem(
            name,
            format!("{} is registered too: an old URL of this stack", stale.url),
            format!("`{register}` removes it"),
        ));
    }
    let ours: Vec<&Webhook> =
        hooks.iter().filter(|h| endpoints.is_url_of(webhook_type, &h.url)).collect();
    let Some(first) = ours.first() else {
        findings.push(Finding::problem(
            name,
            format!(
                "{} is not registered: Sendblue sends this stack no {name} events",
                endpoints.url_of(webhook_type)
            ),
            format!("`{register}`"),
        ));
        return None;
    };
    if ours.len() > 1 {
        findings.push(Finding::problem(
            name,
            format!("registered {} times: Sendblue sends each event that often", ours.len()),
            format!(
                "`sendblue-webhooks unregister {0} --types {name}`, then `{register}`",
                subject.stack_args
            ),
        ));
    }
    let rotate = format!(
        "`sendblue-webhooks rotate-secret {} --types {name}` gives it one",
        subject.stack_args
    );
    if let Some(secret) = &first.secret {
        findings.push(Finding::ok(name, "registered, with a secret of its own"));
        return Some(Sent::Secret(secret.clone()));
    }
    let account_wide =
        subject.config.global_secret.clone().or_else(|| {
            subject.config.other.get("secret").and_then(|s| s.as_str()).map(str::to_owned)
        });
    match account_wide {
        Some(secret) if webhook_type == WebhookType::ContactCreated => {
            findings.push(Finding::ok(
                name,
                "registered without a secret of its own, so deliveries carry the account's \
                 globalSecret (where the account's API keeps one, `rotate-secret --types \
                 contact_created` gives it its own)",
            ));
            Some(Sent::Secret(secret))
        }
        Some(secret) => {
            findings.push(Finding::problem(
                name,
                "registered without a secret of its own: deliveries carry the account's \
                 globalSecret, which every holder of the account's API keys can read",
                rotate,
            ));
            Some(Sent::Secret(secret))
        }
        None => {
            findings.push(Finding::problem(
                name,
                "registered without any secret, and the account has none: every delivery \
                 is refused (401)",
                rotate,
            ));
            Some(Sent::NoSecret)
        }
    }
}

/// The receiver of `webhook_type`, probed as Sendblue would call it (unsigned when it is not
/// registered: then a 401 shows that it runs).
async fn receiver(
    subject: &Subject<'_>,
    webhook_type: WebhookType,
    sent: Option<&Sent>,
) -> Finding {
    let url = subject.endpoints.url_of(webhook_type);
    let what = format!("{} receiver", webhook_type.sendblue_name());
    let secret = match sent {
        Some(Sent::Secret(secret)) => Some(secret.as_str()),
        _ => None,
    };
    let status = match send::probe(url, secret).await {
        Ok(status) => status,
        Err(error) => return unreachable_receiver(what, &error),
    };
    match (status, secret) {
        (400, Some(_)) => Finding::ok(
            what,
            "runs, and accepts the secret Sendblue sends it (400 to a signed probe that stores \
             nothing)",
        ),
        (401, Some(_)) => Finding::problem(
            what,
            "refuses the secret Sendblue sends it: every delivery is answered 401 and lost",
            format!(
                "deploy with {} including that secret, or switch Sendblue to one it accepts \
                 with `sendblue-webhooks rotate-secret {} --types {}`",
                secrets_parameter(webhook_type),
                subject.stack_args,
                webhook_type.sendblue_name()
            ),
        ),
        (401, None) if sent.is_none() => {
            Finding::ok(what, "runs (refuses an unsigned probe with 401)")
        }
        (401, None) => Finding::ok(what, "runs, and refuses the unsigned deliveries (401)"),
        (400, None) => Finding::problem(
            what,
            "accepts a delivery without any secret",
            format!("deploy with {} set", secrets_parameter(webhook_type)),
        ),
        (status, _) => failing_receiver(what, status),
    }
}

/// The status-callback receiver, with the token given (or an unknown one, which shows that it
/// runs). The token is never printed.
async fn status_callback(subject: &Subject<'_>) -> Finding {
    let base = subject.endpoints.url_of(WebhookType::StatusCallback);
    let what = "status_callback receiver";
    let unknown = "0".repeat(64);
    let token = subject.callback_token.unwrap_or(&unknown);
    let status = match send::probe(&format!("{base}/{token}"), None).await {
        Ok(status) => status,
        Err(error) => return unreachable_receiver(what.into(), &error),
    };
    match (status, subject.callback_token) {
        (400, Some(_)) => Finding::ok(what, "runs, and accepts the callback token given"),
        (401, Some(_)) => Finding::problem(
            what,
            "refuses the callback token given: callbacks with it are lost",
            "add it to StatusCallbackTokens and deploy",
        ),
        (401, None) => Finding::ok(
            what,
            "runs (refuses an unknown token); set SENDBLUE_CALLBACK_TOKEN to check yours",
        ),
        (status, _) => failing_receiver(what.into(), status),
    }
}

/// `globalSecret` is readable by everyone who holds the account's API keys: a receiver other
/// than `contact_created` that accepts it can be sent forged deliveries.
async fn global_secret_exposure(subject: &Subject<'_>) -> Option<Finding> {
    let global = subject.config.global_secret.as_deref()?;
    let mut opened = Vec::new();
    for webhook_type in WebhookType::REGISTRABLE {
        if webhook_type == WebhookType::ContactCreated {
            continue;
        }
        let url = subject.endpoints.url_of(webhook_type);
        if matches!(send::probe(url, Some(global)).await, Ok(400)) {
            opened.push(webhook_type.sendblue_name());
        }
    }
    Some(if opened.is_empty() {
        Finding::ok("globalSecret", "opens no receiver but contact_created's")
    } else {
        Finding::problem(
            "globalSecret",
            format!(
                "the account's globalSecret, which every holder of its API keys can read, \
                 opens the {} receiver(s)",
                opened.join(", ")
            ),
            "take it out of SendblueWebhookSecrets (ContactCreatedSecrets is the place for it, \
             when contact_created needs it)",
        )
    })
}

/// The parameter to deploy for the receiver of `webhook_type`.
fn secrets_parameter(webhook_type: WebhookType) -> String {
    match stack::secrets_parameter(webhook_type) {
        (own, Some(fallback)) => format!("{own} ({fallback} when it is empty)"),
        (own, None) => own.to_owned(),
    }
}

fn unreachable_receiver(what: String, error: &CliError) -> Finding {
    Finding::problem(
        what,
        format!("no answer to a probe: {error}"),
        "check that the stack is deployed and its outputs are current",
    )
}

fn failing_receiver(what: String, status: u16) -> Finding {
    Finding::problem(
        what,
        format!(
            "answered {status} to a probe (expected 400 or 401): it fails before the secret check"
        ),
        "read the function's log group; `exec format error` or Runtime.InvalidEntrypoint there \
         means binaries built for another architecture than the functions' (template.yaml, \
         Globals); redeploy after `sam build`",
    )
}

/// The stack's alarms by name (its `AlarmNames` output): a line for each in ALARM, one for the
/// rest.
pub async fn alarms(aws: &SdkConfig, names: &[String]) -> Vec<Finding> {
    let answer = aws_sdk_cloudwatch::Client::new(aws)
        .describe_alarms()
        .set_alarm_names(Some(names.to_vec()))
        .send()
        .await;
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => {
            return vec![Finding::problem(
                "alarms",
                format!("could not be read: {}", aws_sdk_cloudwatch::error::DisplayErrorContext(e)),
                "use credentials allowed cloudwatch:DescribeAlarms, in the stack's region",
            )]
        }
    };
    let found = answer.metric_alarms();
    let mut findings: Vec<Finding> = found
        .iter()
        .filter(|a| a.state_value() == Some(&StateValue::Alarm))
        .map(|a| {
            Finding::problem(
                format!("alarm {}", a.alarm_name().unwrap_or("?")),
                format!("in ALARM: {}", a.state_reason().unwrap_or("").trim_end_matches('.')),
                "README, \"Operating it\": what the alarm means and what to do",
            )
        })
        .collect();
    let in_alarm = findings.len();
    let missing: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| !found.iter().any(|a| a.alarm_name() == Some(n)))
        .collect();
    if !missing.is_empty() {
        findings.push(Finding::problem(
            "alarms",
            format!("not found: {}", missing.join(", ")),
            "deploy the stack again (or ask with the region it is in)",
        ));
    }
    let quiet = found.len() - in_alarm;
    findings.push(Finding::ok("alarms", format!("{quiet} of {} not in ALARM", names.len())));
    findings
}

/// Whether reconciliation runs: its schedule (when the stack's parameters were read), and its
/// last run, as the metrics every run emits in `namespace` (`Records`, with `RunFailures` 1
/// when the run failed, and `ApiErrors` 1 when it failed on Sendblue's API).
pub async fn reconcile(
    aws: &SdkConfig,
    namespace: &str,
    parameters: Option<&HashMap<String, String>>,
) -> Finding {
    let parameter = |name: &str| parameters.and_then(|p| p.get(name)).map(String::as_str);
    if parameter("ReconcileSchedule") == Some("DISABLED") {
        return Finding::problem(
            "reconcile",
            "its schedule is disabled: what Sendblue gives up on is not recovered",
            "deploy with ReconcileSchedule=ENABLED",
        );
    }
    let rate_minutes: u64 =
        parameter("ReconcileRateMinutes").and_then(|m| m.parse().ok()).unwrap_or(5);
    let window_minutes = (3 * rate_minutes).max(30);
    let logs = "read the reconcile function's log group";
    match last_run(aws, namespace, window_minutes).await {
        Err(reason) => Finding::problem(
            "reconcile",
            format!("its metrics could not be read: {reason}"),
            "use credentials allowed cloudwatch:GetMetricStatistics, in the stack's region",
        ),
        Ok(None) => Finding::problem(
            "reconcile",
            format!("no run in the last {window_minutes} minutes"),
            format!(
                "{logs}: missing or refused API keys (SendblueApiKeyId, SendblueApiSecretKey) \
                 stop every run"
            ),
        ),
        Ok(Some((at_ms, Some(LastRunFailure::Api)))) => Finding::problem(
            "reconcile",
            format!("the last run, at {}, failed on Sendblue's messages API", iso_ms(at_ms)),
            format!("{logs}; check the account's API keys"),
        ),
        Ok(Some((at_ms, Some(LastRunFailure::Other)))) => Finding::problem(
            "reconcile",
            format!("the last run, at {}, failed", iso_ms(at_ms)),
            format!("{logs}: its error says whether the table or the API's order stopped it"),
        ),
        Ok(Some((at_ms, None))) => {
            Finding::ok("reconcile", format!("last run at {}", iso_ms(at_ms)))
        }
    }
}

/// Why the last run failed, as far as its metrics tell.
enum LastRunFailure {
    Api,
    Other,
}

/// The minute of the latest run within the window, and why it failed, if it did.
async fn last_run(
    aws: &SdkConfig,
    namespace: &str,
    window_minutes: u64,
) -> Result<Option<(u64, Option<LastRunFailure>)>, String> {
    let runs = per_minute(aws, namespace, "Records", window_minutes).await?;
    let Some(&(at_ms, _)) = runs.last() else { return Ok(None) };
    let failed_in_that_minute = |points: &[(u64, f64)]| {
        points.iter().any(|&(failed_ms, sum)| failed_ms == at_ms && sum > 0.0)
    };
    if failed_in_that_minute(&per_minute(aws, namespace, "ApiErrors", window_minutes).await?) {
        return Ok(Some((at_ms, Some(LastRunFailure::Api))));
    }
    let failures = per_minute(aws, namespace, "RunFailures", window_minutes).await?;
    Ok(Some((at_ms, failed_in_that_minute(&failures).then_some(LastRunFailure::Other))))
}

/// `(minute in epoch ms, sum)` of one of reconcile's metrics over the last minutes, oldest first.
async fn per_minute(
    aws: &SdkConfig,
    namespace: &str,
    metric: &str,
    window_minutes: u64,
) -> Result<Vec<(u64, f64)>, String> {
    let now = SystemTime::now();
    let answer = aws_sdk_cloudwatch::Client::new(aws)
        .get_metric_statistics()
        .namespace(namespace)
        .metric_name(metric)
        .dimensions(Dimension::builder().name("Function").value("reconcile").build())
        .start_time((now - Duration::from_secs(window_minutes * 60)).into())
        .end_time(now.into())
        .period(60)
        .statistics(Statistic::Sum)
        .send()
        .await
        .map_err(|e| aws_sdk_cloudwatch::error::DisplayErrorContext(e).to_string())?;
    let mut points: Vec<(u64, f64)> = answer
        .datapoints()
        .iter()
        .filter_map(|p| {
            let at_ms = u64::try_from(p.timestamp()?.to_millis().ok()?).ok()?;
            Some((at_ms, p.sum().unwrap_or(0.0)))
        })
        .collect();
    points.sort_by_key(|(at_ms, _)| *at_ms);
    Ok(points)
}
