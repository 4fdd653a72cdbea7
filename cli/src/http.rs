//! The one way this tool builds an HTTP client (rustls, as the AWS SDK uses).

use std::time::Duration;

use crate::error::CliError;

/// A client whose every request gives up after `timeout`, and which follows no redirect: the
/// API keys and the signing secret travel in headers, and a redirect would carry them to
/// another host. A 3xx is an answer like any other.
pub fn client(timeout: Duration) -> Result<reqwest::Client, CliError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| CliError::Input(format!("HTTP client: {e}")))
}
