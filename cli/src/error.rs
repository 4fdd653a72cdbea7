//! Every way a command can fail, each with its own exit code so that scripts can tell them apart.

use std::process::ExitCode;

/// A failed command. The message is printed on stderr; none ever contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Our side: a missing variable, an unreadable file, a URL that is not HTTPS.
    #[error("{0}")]
    Input(String),
    /// Sendblue's management API answered with an error.
    #[error("Sendblue answered {status}: {message}\nhint: {hint}")]
    Api { status: u16, message: String, hint: &'static str },
    /// Nothing answered: DNS, refused connection, TLS, timeout.
    #[error("could not reach {host}: {reason}\nhint: check the address and the network")]
    Network { host: String, reason: String },
    /// The configuration is not what it must be: it differs after a change (read back), or it
    /// holds something this command must not overwrite.
    #[error("{0}")]
    Mismatch(String),
    /// `send`: the receiver did not accept the delivery.
    #[error("{0}")]
    Delivery(String),
    /// AWS CloudFormation could not give the stack's outputs.
    #[error("could not read the stack outputs: {0}")]
    Stack(String),
    /// `doctor` found problems (each printed with its fix).
    #[error("{0} problem(s) found; each line marked `problem` says how to fix it")]
    Unhealthy(usize),
}

impl CliError {
    /// The documented exit codes (README "CLI"); clap's usage errors exit with 2.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            CliError::Input(_) => 3,
            CliError::Api { .. } => 4,
            CliError::Network { .. } => 5,
            CliError::Mismatch(_) => 6,
            CliError::Delivery(_) => 7,
            CliError::Stack(_) => 8,
            CliError::Unhealthy(_) => 9,
        })
    }

    /// A transport error, by host and root cause.
    pub fn network(error: &reqwest::Error) -> Self {
        let (host, reason) = transport_failure(error);
        CliError::Network { host, reason }
    }
}

/// `host:port: reason` of a transport error.
pub fn describe_transport(error: &reqwest::Error) -> String {
    let (host, reason) = transport_failure(error);
    format!("{host}: {reason}")
}

/// The host and the innermost cause ("Connection refused") of a transport error, leaving out
/// reqwest's own text, which names the whole URL: a status-callback path carries its token.
fn transport_failure(error: &reqwest::Error) -> (String, String) {
    let host = error
        .url()
        .and_then(|url| Some(format!("{}:{}", url.host_str()?, url.port_or_known_default()?)))
        .unwrap_or_else(|| "the server".to_owned());
    if error.is_timeout() {
        return (host, "timed out".to_owned());
    }
    let mut cause = std::error::Error::source(error);
    let mut reason = "request failed".to_owned();
    while let Some(next) = cause {
        reason = next.to_string();
        cause = next.source();
    }
    (host, reason)
}
