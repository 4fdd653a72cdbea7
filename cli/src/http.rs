//! The one way this tool builds an HTTP client (rustls, as the AWS SDK uses).

use std::time::Duration;

use crate::error::CliError;

/// A client whose every request gives up after `timeout`.
pub fn client(timeout: Duration) -> Result<reqwest::Client, CliError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| CliError::Input(format!("HTTP client: {e}")))
}
