//! The reconcile function's settings, read and checked once at start-up like the receivers'.

use crate::config::{invalid, ConfigError, Variables, DEDUP_TTL_SECONDS};
use crate::reconcile::messages_api::{checked_api_base, ApiCredentials};

pub const SENDBLUE_API_BASE: &str = "SENDBLUE_API_BASE";
pub const SENDBLUE_API_CREDENTIALS_SECRET: &str = "SENDBLUE_API_CREDENTIALS_SECRET";
pub const SENDBLUE_API_KEY_ID: &str = "SENDBLUE_API_KEY_ID";
pub const SENDBLUE_API_SECRET_KEY: &str = "SENDBLUE_API_SECRET_KEY";
pub const RECONCILE_LOOKBACK_SECONDS: &str = "RECONCILE_LOOKBACK_SECONDS";
pub const RECONCILE_OVERLAP_SECONDS: &str = "RECONCILE_OVERLAP_SECONDS";
pub const RECONCILE_PAGE_LIMIT: &str = "RECONCILE_PAGE_LIMIT";
pub const RECONCILE_SETTLE_SECONDS: &str = "RECONCILE_SETTLE_SECONDS";
pub const RECONCILE_API_SHARE_PERCENT: &str = "RECONCILE_API_SHARE_PERCENT";
pub const SENDBLUE_NUMBERS: &str = "SENDBLUE_NUMBERS";

pub const DEFAULT_API_BASE: &str = "https://api.sendblue.co";
pub const DEFAULT_LOOKBACK_SECONDS: u64 = 3600;
pub const DEFAULT_OVERLAP_SECONDS: u64 = 120;
/// The API reference allows up to 1,000 per page, another page of its docs 100: the smaller.
pub const DEFAULT_PAGE_LIMIT: usize = 100;
/// Sendblue retries a failed delivery within about a minute: records younger than this are
/// still their webhooks' to bring.
pub const DEFAULT_SETTLE_SECONDS: u64 = 120;
/// The rate limit is shared with the team's own sends: a walk takes at most half of it.
pub const DEFAULT_API_SHARE_PERCENT: u64 = 50;

/// Where the API keys come from.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// A Secrets Manager secret (name or ARN) holding `{"key_id": ..., "secret_key": ...}`.
    Secret(String),
    /// `SENDBLUE_API_KEY_ID` and `SENDBLUE_API_SECRET_KEY`: local runs and tests.
    Environment(ApiCredentials),
}

#[derive(Debug, Clone)]
pub struct ReconcileConfig {
    pub table_name: String,
    pub dedup_ttl_seconds: u64,
    pub metrics_namespace: String,
    pub api_base: String,
    pub credentials: Credentials,
    pub lookback_seconds: u64,
    pub overlap_seconds: u64,
    pub page_limit: usize,
    pub settle_seconds: u64,
    pub api_share_percent: u64,
    /// This stack's Sendblue lines (E.164); empty: every line of the account. On an account
    /// that other teams share, the messages walk reads only these lines' messages, as the
    /// receive webhook (registered with the same list) brings only theirs.
    pub sendblue_numbers: Vec<String>,
}

/// A list of Sendblue line numbers, separated by commas or spaces: each one in E.164 (`+`, then
/// 7 to 15 digits, the first not 0), no repeats. Empty text is the empty list (every line).
pub fn parse_sendblue_numbers(text: &str) -> Result<Vec<String>, String> {
    let mut numbers: Vec<String> = Vec::new();
    for number in text.split([',', ' ', '\n', '\t']).filter(|n| !n.is_empty()) {
        let digits = number.strip_prefix('+').unwrap_or("");
        let e164 = (7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if !e164 {
            return Err(format!("{number:?} is not a phone number in E.164 (like +15551234567)"));
        }
        if numbers.iter().any(|n| n == number) {
            return Err(format!("{number} is listed twice"));
        }
        numbers.push(number.to_owned());
    }
    Ok(numbers)
}

impl ReconcileConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Variables(lookup);
        let credentials = match vars.get(SENDBLUE_API_CREDENTIALS_SECRET) {
            Some(secret) => Credentials::Secret(secret),
            None => Credentials::Environment(ApiCredentials {
                key_id: vars.required(SENDBLUE_API_KEY_ID)?,
                secret_key: vars.required(SENDBLUE_API_SECRET_KEY)?,
            }),
        };
        let api_base = vars.get(SENDBLUE_API_BASE).unwrap_or_else(|| DEFAULT_API_BASE.to_owned());
        let api_base = checked_api_base(&api_base).map_err(|e| invalid(SENDBLUE_API_BASE, &e))?;
        let lookback_seconds =
            vars.number(RECONCILE_LOOKBACK_SECONDS, DEFAULT_LOOKBACK_SECONDS, 60, 30 * 24 * 3600)?;
        let overlap_seconds =
            vars.number(RECONCILE_OVERLAP_SECONDS, DEFAULT_OVERLAP_SECONDS, 0, 3600)?;
        let dedup_ttl_seconds = vars.dedup_ttl_seconds()?;
        // What a run re-reads must still be known, or it would be forwarded again.
        if dedup_ttl_seconds < lookback_seconds + overlap_seconds {
            return Err(invalid(
                DEDUP_TTL_SECONDS,
                &format!(
                    "must be at least {RECONCILE_LOOKBACK_SECONDS} + {RECONCILE_OVERLAP_SECONDS} \
                     ({lookback_seconds} + {overlap_seconds} s), or what reconciliation re-reads \
                     would be forwarded again"
                ),
            ));
        }
        let sendblue_numbers =
            parse_sendblue_numbers(&vars.get(SENDBLUE_NUMBERS).unwrap_or_default())
                .map_err(|e| invalid(SENDBLUE_NUMBERS, &e))?;
        Ok(Self {
            sendblue_numbers,
            table_name: vars.table_name()?,
            dedup_ttl_seconds,
            metrics_namespace: vars.metrics_namespace()?,
            api_base,
            credentials,
            lookback_seconds,
            overlap_seconds,
            page_limit: vars.number(RECONCILE_PAGE_LIMIT, DEFAULT_PAGE_LIMIT as u64, 1, 1000)?
                as usize,
            settle_seconds: vars.number(
                RECONCILE_SETTLE_SECONDS,
                DEFAULT_SETTLE_SECONDS,
                0,
                3600,
            )?,
            api_share_percent: vars.number(
                RECONCILE_API_SHARE_PERCENT,
                DEFAULT_API_SHARE_PERCENT,
                1,
                100,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DEDUP_TABLE_NAME, EVENT_BUS_NAME};
    use std::collections::HashMap;

    fn read(vars: &[(&str, &str)]) -> Result<ReconcileConfig, ConfigError> {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        ReconcileConfig::from_lookup(|name| vars.get(name).cloned())
    }

    const BASE: [(&str, &str); 4] = [
        (DEDUP_TABLE_NAME, "t-1"),
        (EVENT_BUS_NAME, "bus"),
        (SENDBLUE_API_KEY_ID, "id"),
        (SENDBLUE_API_SECRET_KEY, "key"),
    ];

    #[test]
    fn defaults_and_credentials_from_the_environment_or_a_secret() {
        let config = read(&BASE).unwrap();
        assert_eq!(config.api_base, DEFAULT_API_BASE);
        assert_eq!((config.lookback_seconds, config.page_limit), (3600, 100));
        assert!(matches!(config.credentials, Credentials::Environment(ref c) if c.key_id == "id"));
        let secret = read(&[
            (DEDUP_TABLE_NAME, "t-1"),
            (EVENT_BUS_NAME, "bus"),
            (SENDBLUE_API_CREDENTIALS_SECRET, " sendblue/api \n"),
        ])
        .unwrap();
        assert!(matches!(secret.credentials, Credentials::Secret(ref s) if s == "sendblue/api"));
        assert_eq!(
            read(&BASE[..2]).unwrap_err(),
            ConfigError::Missing(SENDBLUE_API_KEY_ID),
            "no credentials at all"
        );
    }

    #[test]
    fn sendblue_numbers_are_e164_and_none_means_every_line() {
        assert!(read(&BASE).unwrap().sendblue_numbers.is_empty());
        let mut vars = BASE.to_vec();
        vars.push((SENDBLUE_NUMBERS, " +15551234567, +447700900123 "));
        assert_eq!(read(&vars).unwrap().sendblue_numbers, ["+15551234567", "+447700900123"]);
        for bad in ["15551234567", "+1555", "+1555123456789012", "+1555-123-4567", "+05551234567"] {
            vars.pop();
            vars.push((SENDBLUE_NUMBERS, bad));
            let error = read(&vars).unwrap_err().to_string();
            assert!(error.contains(SENDBLUE_NUMBERS) && error.contains("E.164"), "{bad}: {error}");
        }
        assert!(parse_sendblue_numbers("+15551234567 +15551234567").unwrap_err().contains("twice"));
    }

    #[test]
    fn a_dedup_window_shorter_than_the_look_back_is_refused_naming_both() {
        let mut vars = BASE.to_vec();
        vars.push((DEDUP_TTL_SECONDS, "3600"));
        let error = read(&vars).unwrap_err().to_string();
        assert!(error.contains(DEDUP_TTL_SECONDS) && error.contains(RECONCILE_LOOKBACK_SECONDS));
        vars.push((RECONCILE_OVERLAP_SECONDS, "0"));
        assert!(read(&vars).is_ok(), "3600 covers a 3600 s look-back with no overlap");
        for base in [
            "http://api.example.com",
            "http://127.0.0.1.evil.example",
            "http://127.0.0.1@evil.example",
        ] {
            vars.push((SENDBLUE_API_BASE, base));
            assert!(
                matches!(read(&vars), Err(ConfigError::Invalid { name: SENDBLUE_API_BASE, .. })),
                "{base}"
            );
            vars.pop();
        }
    }
}
