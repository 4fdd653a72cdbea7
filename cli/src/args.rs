//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use sendblue_webhooks::time::{now_ms, parse_iso_ms};
use sendblue_webhooks::WebhookType;

use crate::send::{SENDBLUE_RETRIES, SENDBLUE_TIMEOUT_SECS};
use sendblue_webhooks::reconcile::config::{parse_sendblue_numbers, DEFAULT_API_BASE};
use sendblue_webhooks::reconcile::messages_api::checked_api_base;

/// The Sendblue side of the deployed receivers.
///
/// Registers their URLs, rotates the secret, prints the status-callback URL, checks that the
/// integration works, and delivers test events as Sendblue does. Sendblue's API keys come from
/// SENDBLUE_API_KEY_ID and SENDBLUE_API_SECRET_KEY; the secrets it registers and the callback
/// tokens, from variables named by its options, never from the command line, where `ps` and
/// shell history keep them.
///
/// Exit codes: 0 done, 2 usage, 3 bad input, 4 Sendblue answered an error, 5 network,
/// 6 the configuration is not as it must be (read back after a change, or a conflict),
/// 7 a delivery was not accepted, 8 the stack outputs could not be read, 9 `doctor` found a
/// problem.
#[derive(Debug, Parser)]
#[command(name = "sendblue-webhooks", version)]
pub struct Cli {
    /// Print JSON for scripts instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the account's webhooks, type by type (secrets masked).
    List {
        #[command(flatten)]
        api: ApiArgs,
        /// Show secrets in clear.
        #[arg(long)]
        show_secrets: bool,
    },
    /// Register this stack's URLs with Sendblue.
    ///
    /// For every selected type, exactly this stack's URL (with the secret where the type takes
    /// one, and for receive, only the stack's lines when it names some), added with POST so
    /// that nobody else's webhook is touched; other URLs of this stack under the type are
    /// removed. Only when an entry of ours must change (its lines) is the whole configuration
    /// written, with one PUT of it as read. The configuration is read back and compared after
    /// the changes. Running it again changes nothing.
    Register {
        #[command(flatten)]
        change: Change,
        /// The variable holding the secret to register (one of the stack's SendblueWebhookSecrets).
        #[arg(long, value_name = "NAME", default_value = "SENDBLUE_WEBHOOK_SECRET")]
        secret_env: String,
        /// Limit the receive webhook to these Sendblue lines (E.164, comma-separated), on an
        /// account other teams share; `""` for every line. Default: the stack's SendblueNumbers
        /// output when it has one, else every line.
        #[arg(long, value_name = "NUMBERS", value_parser = parse_lines)]
        sendblue_numbers: Option<Lines>,
    },
    /// Remove this stack's URLs, and only those, from Sendblue (DELETE per type).
    Unregister {
        #[command(flatten)]
        change: Change,
    },
    /// Switch Sendblue to a new secret without losing a delivery.
    ///
    /// First deploy with SendblueWebhookSecrets=<old>,<new>. This checks that every receiver
    /// accepts the new secret (a probe each receiver refuses with 400 once the secret passes,
    /// storing and forwarding nothing), switches this stack's webhooks to it with one PUT of the
    /// whole configuration as read (anything the PUT drops is added back with POST), and reads
    /// the configuration back. Then deploy with <new> alone.
    RotateSecret {
        #[command(flatten)]
        change: Change,
        /// The variable holding the new secret.
        #[arg(long, value_name = "NAME", default_value = "SENDBLUE_NEW_WEBHOOK_SECRET")]
        new_secret_env: String,
    },
    /// Print the status_callback URL to put on send-message requests.
    ///
    /// With --new-token and no stack, only the token is printed: making one needs no stack.
    CallbackUrl {
        #[command(flatten)]
        target: Target,
        /// The variable holding the token (one of the stack's StatusCallbackTokens).
        #[arg(long, value_name = "NAME", default_value = "SENDBLUE_CALLBACK_TOKEN")]
        token_env: String,
        /// Make a new random token (256 bits, hex) instead, to add to StatusCallbackTokens.
        #[arg(long)]
        new_token: bool,
    },
    /// Recover from Sendblue's messages and contacts APIs what the webhooks missed, as the
    /// stack's reconcile function does: after an outage, or to backfill.
    ///
    /// Reads the messages updated in the window (of the stack's lines, when its SendblueNumbers
    /// output names some), then the contacts created in it, oldest first, and accepts each one
    /// the stack has not seen into its dedup table, as a webhook would be (so nothing is
    /// forwarded twice, by this or by the webhooks); the stack's forward function puts them on
    /// its bus. The watermarks of the scheduled runs are left alone. Only a message's current
    /// status can be recovered.
    Reconcile {
        #[command(flatten)]
        api: ApiArgs,
        #[command(flatten)]
        target: ReconcileTarget,
        /// Start of the window: a duration back from now (`2h`, `3days`) or an RFC 3339 time.
        #[arg(long, value_parser = parse_time)]
        since: u64,
        /// End of the window (default: now), in the same forms.
        #[arg(long, value_parser = parse_time)]
        until: Option<u64>,
        /// Count what would be recovered, by type, and write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Check, changing nothing, that the integration works; one line per finding, with its fix.
    ///
    /// For each type: whether Sendblue has exactly this stack's URL registered, and with which
    /// secret; then the receiver is probed with that very secret and a body every receiver
    /// refuses with 400 once the secret passes (nothing stored or forwarded), which proves it
    /// runs and accepts what Sendblue sends. The status-callback receiver is probed with the
    /// token given, and every receiver but contact_created's must refuse the account's
    /// globalSecret. With --stack: the stack's alarms, and whether reconciliation has run.
    /// Exits 9 when anything is wrong.
    Doctor {
        #[command(flatten)]
        api: ApiArgs,
        #[command(flatten)]
        target: Target,
        /// The variable holding a status-callback token to check (optional; one of the
        /// stack's StatusCallbackTokens).
        #[arg(long, value_name = "NAME", default_value = "SENDBLUE_CALLBACK_TOKEN")]
        token_env: String,
    },
    /// Deliver a webhook body as Sendblue does, printing each attempt.
    ///
    /// POST with the JSON body and the sb-signing-secret header (none for status_callback), a
    /// 45 s wait for each answer, and up to 3 retries after a 5xx, a timeout or no connection.
    /// Works against the local run and a deployed stack alike.
    Send {
        /// The webhook type (receive, outbound, typing_indicator, call_log, line_blocked,
        /// line_assigned, contact_created, status_callback).
        #[arg(value_parser = parse_type)]
        webhook_type: WebhookType,
        /// A file holding the JSON body, or - for standard input.
        body: PathBuf,
        /// The receiver's URL (for status_callback, with its token).
        #[arg(long)]
        url: String,
        /// The variable holding the secret to send (status callbacks send none).
        #[arg(long, value_name = "NAME", default_value = "SENDBLUE_WEBHOOK_SECRET")]
        secret_env: String,
        /// A file holding the secret instead (its first line; kept out of `ps` and history).
        #[arg(long, value_name = "FILE", conflicts_with = "secret_env")]
        secret_file: Option<PathBuf>,
        /// Seconds to wait for each answer.
        #[arg(long, default_value_t = SENDBLUE_TIMEOUT_SECS)]
        timeout_secs: u64,
        /// Retries after a 5xx, a timeout or no connection.
        #[arg(long, default_value_t = SENDBLUE_RETRIES)]
        retries: u32,
        /// Milliseconds between attempts.
        #[arg(long, default_value_t = 1000)]
        retry_delay_ms: u64,
    },
}

/// Where `reconcile` reads and writes: the stack's table (its `DedupTableName` output), through
/// your AWS credentials.
#[derive(Debug, Args)]
pub struct ReconcileTarget {
    /// A file of the stack's outputs (as for the other commands): its table and dedup window
    /// are read from it, so that what is recovered goes where the stack's forward function and
    /// dedup look.
    #[arg(long, value_name = "FILE", required_unless_present = "stack", conflicts_with = "stack")]
    pub stack_outputs: Option<PathBuf>,
    /// The stack's name, read through CloudFormation with your AWS credentials.
    #[arg(long, value_name = "NAME")]
    pub stack: Option<String>,
    /// With --stack: the stack's AWS region (default: AWS_REGION, else the profile's region).
    #[arg(long, value_name = "REGION", requires = "stack", conflicts_with = "stack_outputs")]
    pub region: Option<String>,
}

/// What every command that changes Sendblue's configuration takes.
#[derive(Debug, Args)]
pub struct Change {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub types: Types,
    /// Print what would change, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Sendblue's management API. The account's API keys are read from SENDBLUE_API_KEY_ID and
/// SENDBLUE_API_SECRET_KEY only: no flag takes them.
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// Base URL of Sendblue's API.
    #[arg(long, env = "SENDBLUE_API_BASE", default_value = DEFAULT_API_BASE,
          value_parser = checked_api_base)]
    pub api_base: String,
}

/// Which stack: its HTTP API's URL, a file of its outputs, or its name (one of them).
#[derive(Debug, Args)]
pub struct Target {
    /// The HTTP API's ApiBaseUrl output (https://<api-id>.execute-api.<region>.amazonaws.com/sendblue).
    #[arg(long, value_name = "URL", conflicts_with_all = ["stack_outputs", "stack"])]
    pub url_base: Option<String>,
    /// A file of the stack's outputs, behind either frontend: `sam list stack-outputs --stack-name NAME --output json > outputs.json`, or what scripts/deploy-cargo-lambda.sh prints.
    #[arg(long, value_name = "FILE", conflicts_with = "stack")]
    pub stack_outputs: Option<PathBuf>,
    /// The stack's name, read through CloudFormation with your AWS credentials.
    #[arg(long, value_name = "NAME")]
    pub stack: Option<String>,
    /// With --stack: the stack's AWS region (default: AWS_REGION, else the profile's region,
    /// as the AWS CLI finds it).
    #[arg(long, value_name = "REGION", requires = "stack", conflicts_with_all = ["url_base", "stack_outputs"])]
    pub region: Option<String>,
}

impl Target {
    /// Whether any of the three was given.
    pub fn is_given(&self) -> bool {
        self.url_base.is_some() || self.stack_outputs.is_some() || self.stack.is_some()
    }

    /// The options as given, for the commands a message suggests.
    pub fn as_args(&self) -> String {
        match (&self.url_base, &self.stack_outputs, &self.stack) {
            (Some(url), _, _) => format!("--url-base {url}"),
            (_, Some(path), _) => format!("--stack-outputs {}", path.display()),
            (_, _, Some(name)) => match &self.region {
                Some(region) => format!("--stack {name} --region {region}"),
                None => format!("--stack {name}"),
            },
            (None, None, None) => String::new(),
        }
    }
}

#[derive(Debug, Args)]
pub struct Types {
    /// The types to act on, comma-separated (default: all seven Sendblue webhook types).
    #[arg(long, value_delimiter = ',', value_parser = parse_registrable_type)]
    pub types: Vec<WebhookType>,
}

impl Types {
    pub fn selected(&self) -> Vec<WebhookType> {
        if self.types.is_empty() {
            WebhookType::REGISTRABLE.to_vec()
        } else {
            self.types.clone()
        }
    }
}

/// A time in epoch milliseconds, from a duration back from now or an RFC 3339 time.
fn parse_time(text: &str) -> Result<u64, String> {
    match humantime::parse_duration(text) {
        Ok(back) => now_ms().checked_sub(back.as_millis() as u64).ok_or("before 1970".into()),
        Err(_) => parse_iso_ms(text).ok_or_else(|| {
            "expected a duration (2h, 3days) or a time (2026-11-28T09:00:00Z) after 1970".into()
        }),
    }
}

fn parse_type(name: &str) -> Result<WebhookType, String> {
    WebhookType::from_name(name).ok_or_else(|| {
        let names: Vec<_> = WebhookType::ALL.iter().map(|t| t.sendblue_name()).collect();
        format!("unknown type; one of {}", names.join(", "))
    })
}

fn parse_registrable_type(name: &str) -> Result<WebhookType, String> {
    match parse_type(name)? {
        WebhookType::StatusCallback => Err(
            "status_callback is not registered with Sendblue: its URL goes on each send-message \
             request (see `callback-url`)"
                .to_owned(),
        ),
        webhook_type => Ok(webhook_type),
    }
}

/// Sendblue line numbers, as `--sendblue-numbers` takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lines(pub Vec<String>);

fn parse_lines(text: &str) -> Result<Lines, String> {
    parse_sendblue_numbers(text).map(Lines)
}
