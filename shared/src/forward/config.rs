//! The forward function's settings, read and checked once at start-up like the receivers'.

use crate::config::{ConfigError, Variables};

pub const SWEEP_MIN_AGE_SECONDS: &str = "SWEEP_MIN_AGE_SECONDS";

/// The stream forwards an event within a second of its acceptance; one still pending after
/// this long was missed by it, and is the sweep's.
pub const DEFAULT_SWEEP_MIN_AGE_SECONDS: u64 = 300;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardConfig {
    pub table_name: String,
    pub bus_name: String,
    pub event_source: String,
    pub dedup_ttl_seconds: u64,
    pub metrics_namespace: String,
    pub sweep_min_age_seconds: u64,
}

impl ForwardConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Variables(lookup);
        Ok(Self {
            table_name: vars.table_name()?,
            bus_name: vars.bus_name()?,
            event_source: vars.event_source()?,
            dedup_ttl_seconds: vars.dedup_ttl_seconds()?,
            metrics_namespace: vars.metrics_namespace()?,
            sweep_min_age_seconds: vars.number(
                SWEEP_MIN_AGE_SECONDS,
                DEFAULT_SWEEP_MIN_AGE_SECONDS,
                1,
                24 * 3600,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DEDUP_TABLE_NAME, EVENT_BUS_NAME};

    fn config(vars: &[(&str, &str)]) -> Result<ForwardConfig, ConfigError> {
        ForwardConfig::from_lookup(|name| {
            vars.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn the_table_and_the_bus_are_required_and_the_rest_defaults() {
        assert_eq!(config(&[]), Err(ConfigError::Missing(DEDUP_TABLE_NAME)));
        assert_eq!(config(&[(DEDUP_TABLE_NAME, "t-1")]), Err(ConfigError::Missing(EVENT_BUS_NAME)));
        let read = config(&[(DEDUP_TABLE_NAME, "t-1"), (EVENT_BUS_NAME, "b")]).unwrap();
        assert_eq!(read.sweep_min_age_seconds, DEFAULT_SWEEP_MIN_AGE_SECONDS);
        assert_eq!(read.event_source, "sendblue");
        let bad = config(&[
            (DEDUP_TABLE_NAME, "t-1"),
            (EVENT_BUS_NAME, "b"),
            (SWEEP_MIN_AGE_SECONDS, "0"),
        ]);
        assert!(
            matches!(bad, Err(ConfigError::Invalid { name: SWEEP_MIN_AGE_SECONDS, .. })),
            "{bad:?}"
        );
    }
}
