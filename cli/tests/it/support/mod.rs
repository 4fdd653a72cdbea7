//! What the CLI tests share: the binary run as a user runs it, a fake of Sendblue's management
//! API, and receivers on loopback.

pub mod fake_sendblue;
pub mod receivers;

use std::io::Write;
use std::process::{Command, Stdio};

/// A URL base of a deployed stack (registered, never called: Sendblue is the fake).
pub const STACK: &str = "https://abc123.execute-api.us-east-1.amazonaws.com/sendblue";

/// One run of `sendblue-webhooks`.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The run as a terminal shows it, for transcripts.
    pub fn transcript(&self, command: &str) -> String {
        format!(
            "$ sendblue-webhooks {command}\n{}{}[exit {}]\n",
            self.stdout, self.stderr, self.code
        )
    }
}

/// Runs the CLI with only `env` (and PATH) in its environment, off the async runtime so that
/// the servers the test started keep answering.
pub async fn cli(args: &[&str], env: &[(&str, &str)]) -> Run {
    cli_with_stdin(args, env, "").await
}

pub async fn cli_with_stdin(args: &[&str], env: &[(&str, &str)], stdin: &str) -> Run {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let env: Vec<(String, String)> =
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let stdin = stdin.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sendblue-webhooks"))
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    })
    .await
    .unwrap()
}

/// The API key variables of the fake account.
pub fn api_env(api_base: &str) -> Vec<(&'static str, String)> {
    vec![
        ("SENDBLUE_API_BASE", api_base.to_owned()),
        ("SENDBLUE_API_KEY_ID", fake_sendblue::API_KEY_ID.to_owned()),
        ("SENDBLUE_API_SECRET_KEY", fake_sendblue::API_SECRET_KEY.to_owned()),
    ]
}

/// `api_env` plus more, borrowed as `cli` takes it.
pub fn with<'a>(
    base: &'a [(&'static str, String)],
    more: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    base.iter().map(|(k, v)| (*k, v.as_str())).chain(more.iter().copied()).collect()
}

/// A file in cargo's scratch directory for integration tests.
pub fn scratch_file(name: &str, contents: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, contents).unwrap();
    path.to_string_lossy().into_owned()
}

/// The body of a sample event in `events/`.
pub fn sample_body(function: &str) -> String {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../events/{function}.json"));
    let event: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    event["body"].as_str().unwrap().to_owned()
}

/// moto's endpoint (started by scripts/test.sh) and an AWS configuration that talks to it.
pub async fn moto() -> (String, aws_config::SdkConfig) {
    use aws_config::{BehaviorVersion, Region};
    let endpoint = std::env::var("SENDBLUE_TEST_MOTO_ENDPOINT")
        .expect("SENDBLUE_TEST_MOTO_ENDPOINT is not set: run the tests with scripts/test.sh");
    let credentials =
        aws_sdk_cloudformation::config::Credentials::new("test", "test", None, None, "tests");
    let aws = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(credentials)
        .endpoint_url(&endpoint)
        .load()
        .await;
    (endpoint, aws)
}
