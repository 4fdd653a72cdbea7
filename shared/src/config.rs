//! Everything the functions read from the environment, validated once at start-up.
//!
//! A deployed function fails closed: a missing table, bus or secret stops it with an error that
//! names the variable. The in-memory local mode must be asked for by name.

use crate::verify::{self, AcceptedSecrets, Guard};

pub const RECEIVER_MODE: &str = "RECEIVER_MODE";
pub const DEDUP_TABLE_NAME: &str = "DEDUP_TABLE_NAME";
pub const EVENT_BUS_NAME: &str = "EVENT_BUS_NAME";
pub const SENDBLUE_WEBHOOK_SECRETS: &str = "SENDBLUE_WEBHOOK_SECRETS";
pub const SENDBLUE_CALLBACK_TOKENS: &str = "SENDBLUE_CALLBACK_TOKENS";
pub const EVENT_SOURCE: &str = "EVENT_SOURCE";
pub const DEDUP_TTL_SECONDS: &str = "DEDUP_TTL_SECONDS";
pub const MAX_BODY_BYTES: &str = "MAX_BODY_BYTES";
pub const METRICS_NAMESPACE: &str = "METRICS_NAMESPACE";

pub const DEFAULT_EVENT_SOURCE: &str = "sendblue";
pub const DEFAULT_DEDUP_TTL_SECONDS: u64 = 24 * 60 * 60;

/// A callback token is the only thing between the internet and the bus, and it travels in URLs
/// that end up in other systems' logs: at least 128 bits written as hex.
pub const MIN_CALLBACK_TOKEN_CHARS: usize = 32;

/// The largest body accepted, and the default. An EventBridge entry may be 256 KiB in all;
/// this leaves 16 KiB for the source, detail type and metadata (a dedup key is at most
/// `dedup_key::MAX_KEY_BYTES`).
pub const MAX_BODY_BYTES_CEILING: usize = 240 * 1024;

/// Where a receiver accepts events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// The DynamoDB table, through the standard AWS configuration chain; its stream takes the
    /// events on to the `forward` function, so a receiver needs no bus.
    Aws { table_name: String },
    /// In-memory dedup, forwarded in-process to stdout: for runs with no AWS account.
    Local,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub backend: Backend,
    /// The secrets (or, for status callbacks, the URL tokens) accepted as proof of origin.
    pub secrets: AcceptedSecrets,
    pub event_source: String,
    pub dedup_ttl_seconds: u64,
    pub max_body_bytes: usize,
    /// Where the EMF metrics go; `None` in local mode, whose stdout carries the events.
    pub metrics_namespace: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("missing required environment variable {0}")]
    Missing(&'static str),
    #[error("invalid environment variable {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// The variable holding what `guard` checks against.
pub const fn secrets_variable(guard: Guard) -> &'static str {
    match guard {
        Guard::SigningSecretHeader => SENDBLUE_WEBHOOK_SECRETS,
        Guard::UrlToken => SENDBLUE_CALLBACK_TOKENS,
    }
}

impl Config {
    pub fn from_env(guard: Guard) -> Result<Self, ConfigError> {
        Self::from_lookup(guard, |name| std::env::var(name).ok())
    }

    /// Reads the configuration of a function guarded by `guard` through `lookup`, so tests need
    /// not touch the process environment. Values are trimmed (a value pasted with a trailing
    /// newline is the value), and a variable set to only white space counts as unset.
    pub fn from_lookup(
        guard: Guard,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let vars = Variables(lookup);
        let backend = match vars.get(RECEIVER_MODE).as_deref() {
            None | Some("aws") => Backend::Aws { table_name: vars.table_name()? },
            Some("local") => Backend::Local,
            Some(_) => return Err(invalid(RECEIVER_MODE, "expected `aws` or `local`")),
        };
        let secrets_variable = secrets_variable(guard);
        let secrets_list = vars.required(secrets_variable)?;
        if guard == Guard::UrlToken
            && verify::list_entries(&secrets_list).any(|t| t.len() < MIN_CALLBACK_TOKEN_CHARS)
        {
            return Err(invalid(
                secrets_variable,
                &format!("each token must be at least {MIN_CALLBACK_TOKEN_CHARS} characters"),
            ));
        }
        let secrets = AcceptedSecrets::from_list(&secrets_list)
            .map_err(|_| ConfigError::Missing(secrets_variable))?;

        let event_source = vars.event_source()?;
        let dedup_ttl_seconds = vars.dedup_ttl_seconds()?;
        let ceiling = MAX_BODY_BYTES_CEILING as u64;
        let max_body_bytes = vars.number(MAX_BODY_BYTES, ceiling, 1, ceiling)? as usize;
        let metrics_namespace = match backend {
            Backend::Aws { .. } => Some(vars.metrics_namespace()?),
            Backend::Local => None,
        };

        Ok(Self {
            backend,
            secrets,
            event_source,
            dedup_ttl_seconds,
            max_body_bytes,
            metrics_namespace,
        })
    }
}

/// The variables read through a lookup (the process environment, or a test's map): each value
/// trimmed (a value pasted with a trailing newline is the value), white space alone counting as
/// unset. The settings the receivers and the reconcile function share are read here, with their
/// checks, so both refuse the same values with the same message.
pub(crate) struct Variables<F>(pub(crate) F);

impl<F: Fn(&str) -> Option<String>> Variables<F> {
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    pub(crate) fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.get(name).ok_or(ConfigError::Missing(name))
    }

    /// A whole number from `min` to `max`, or `default` when unset.
    pub(crate) fn number(
        &self,
        name: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ConfigError> {
        self.get(name).map_or(Ok(default), |v| parse_in_range(name, &v, min, max))
    }

    pub(crate) fn table_name(&self) -> Result<String, ConfigError> {
        valid(DEDUP_TABLE_NAME, self.required(DEDUP_TABLE_NAME)?, is_table_name)
    }

    pub(crate) fn bus_name(&self) -> Result<String, ConfigError> {
        valid(EVENT_BUS_NAME, self.required(EVENT_BUS_NAME)?, is_bus_name)
    }

    pub(crate) fn event_source(&self) -> Result<String, ConfigError> {
        let source = self.get(EVENT_SOURCE).unwrap_or_else(|| DEFAULT_EVENT_SOURCE.to_owned());
        valid(EVENT_SOURCE, source, is_event_source)
    }

    pub(crate) fn metrics_namespace(&self) -> Result<String, ConfigError> {
        let namespace =
            self.get(METRICS_NAMESPACE).unwrap_or_else(|| crate::metrics::DEFAULT_NAMESPACE.into());
        valid(METRICS_NAMESPACE, namespace, is_metrics_namespace)
    }

    pub(crate) fn dedup_ttl_seconds(&self) -> Result<u64, ConfigError> {
        self.number(DEDUP_TTL_SECONDS, DEFAULT_DEDUP_TTL_SECONDS, 1, 366 * 24 * 60 * 60)
    }
}

/// `value` if `check` accepts it, else an error naming the variable and what it must be.
fn valid(
    name: &'static str,
    value: String,
    check: fn(&str) -> Result<(), &'static str>,
) -> Result<String, ConfigError> {
    check(&value).map(|()| value).map_err(|reason| invalid(name, reason))
}

/// `min` to `max` characters, each a letter, a digit or one of `others`.
fn is_plain(value: &str, min: usize, max: usize, others: &str) -> bool {
    (min..=max).contains(&value.len())
        && value.chars().all(|c| c.is_ascii_alphanumeric() || others.contains(c))
}

/// A DynamoDB table name, or a table's ARN.
fn is_table_name(value: &str) -> Result<(), &'static str> {
    let name = value.strip_prefix("arn:").map_or(value, |_| value.rsplit('/').next().unwrap_or(""));
    let arn_or_name = name == value || (value.contains(":dynamodb:") && value.contains(":table/"));
    (is_plain(name, 3, 255, "_.-") && arn_or_name)
        .then_some(())
        .ok_or("expected a DynamoDB table name (3 to 255 of A-Z a-z 0-9 _ . -) or a table ARN")
}

/// An EventBridge bus name, or a bus's ARN.
fn is_bus_name(value: &str) -> Result<(), &'static str> {
    let name = value
        .strip_prefix("arn:")
        .map_or(value, |_| value.split_once(":event-bus/").map_or("", |(_, name)| name));
    is_plain(name, 1, 256, "/._-")
        .then_some(())
        .ok_or("expected an EventBridge bus name (1 to 256 of A-Z a-z 0-9 / . _ -) or a bus ARN")
}

/// What the template allows for the `EventSource` parameter.
fn is_event_source(value: &str) -> Result<(), &'static str> {
    (is_plain(value, 1, 256, "._-") && !value.starts_with("aws."))
        .then_some(())
        .ok_or("expected 1 to 256 of A-Z a-z 0-9 . _ -, not starting with `aws.`")
}

/// A CloudWatch namespace of our own (the `AWS/` ones are reserved).
fn is_metrics_namespace(value: &str) -> Result<(), &'static str> {
    (is_plain(value, 1, 255, "._-/#:") && !value.starts_with("AWS/"))
        .then_some(())
        .ok_or("expected 1 to 255 of A-Z a-z 0-9 . _ - / # :, not starting with `AWS/`")
}

pub(crate) fn invalid(name: &'static str, reason: &str) -> ConfigError {
    ConfigError::Invalid { name, reason: reason.to_owned() }
}

fn parse_in_range(name: &'static str, value: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    match value.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(invalid(name, &format!("expected a whole number from {min} to {max}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_lookup(Guard::SigningSecretHeader, |name| vars.get(name).cloned())
    }

    const AWS: [(&str, &str); 2] = [(DEDUP_TABLE_NAME, "table"), (SENDBLUE_WEBHOOK_SECRETS, "a,b")];

    #[test]
    fn aws_is_the_default_and_takes_defaults() {
        let config = config(&AWS).unwrap();
        assert_eq!(config.backend, Backend::Aws { table_name: "table".into() }, "and no bus");
        assert_eq!(config.secrets.len(), 2);
        assert_eq!(config.event_source, "sendblue");
        assert_eq!(config.dedup_ttl_seconds, 86_400);
        assert_eq!(config.max_body_bytes, MAX_BODY_BYTES_CEILING);
        assert_eq!(config.metrics_namespace.as_deref(), Some("SendblueWebhooks"));
    }

    #[test]
    fn each_missing_variable_is_named() {
        for missing in [DEDUP_TABLE_NAME, SENDBLUE_WEBHOOK_SECRETS] {
            let vars: Vec<_> = AWS.iter().copied().filter(|(k, _)| *k != missing).collect();
            assert_eq!(config(&vars).unwrap_err(), ConfigError::Missing(missing));
            let err = config(&vars).unwrap_err().to_string();
            assert!(err.contains(missing), "{err}");
        }
        let blank: Vec<_> = AWS
            .iter()
            .map(|&(k, v)| (k, if k == SENDBLUE_WEBHOOK_SECRETS { " , " } else { v }))
            .collect();
        assert_eq!(config(&blank).unwrap_err(), ConfigError::Missing(SENDBLUE_WEBHOOK_SECRETS));
    }

    #[test]
    fn local_mode_is_explicit_and_still_needs_secrets() {
        let local = config(&[(RECEIVER_MODE, "local"), (SENDBLUE_WEBHOOK_SECRETS, "s")]).unwrap();
        assert_eq!(local.backend, Backend::Local);
        assert_eq!(local.metrics_namespace, None, "stdout carries the events");
        assert_eq!(
            config(&[(RECEIVER_MODE, "local")]).unwrap_err(),
            ConfigError::Missing(SENDBLUE_WEBHOOK_SECRETS)
        );
        assert_eq!(
            config(&[(SENDBLUE_WEBHOOK_SECRETS, "s")]).unwrap_err(),
            ConfigError::Missing(DEDUP_TABLE_NAME)
        );
        assert!(matches!(
            config(&[(RECEIVER_MODE, "memory"), (SENDBLUE_WEBHOOK_SECRETS, "s")]),
            Err(ConfigError::Invalid { name: RECEIVER_MODE, .. })
        ));
    }

    #[test]
    fn status_callbacks_read_long_tokens_not_secrets() {
        let token = "0123456789abcdef".repeat(2);
        let read = |tokens: &str| {
            Config::from_lookup(Guard::UrlToken, |name| match name {
                RECEIVER_MODE => Some("local".into()),
                SENDBLUE_WEBHOOK_SECRETS => Some("a-secret".into()),
                SENDBLUE_CALLBACK_TOKENS => Some(tokens.into()),
                _ => None,
            })
        };
        let config = read(&format!("{token}, {token}ff")).unwrap();
        assert!(config.secrets.accepts(token.as_bytes()));
        assert!(!config.secrets.accepts(b"a-secret"), "webhook secrets open no callback URL");
        assert!(matches!(
            read(&format!("{token},short")),
            Err(ConfigError::Invalid { name: SENDBLUE_CALLBACK_TOKENS, .. })
        ));
        assert_eq!(read(" , ").unwrap_err(), ConfigError::Missing(SENDBLUE_CALLBACK_TOKENS));
    }

    #[test]
    fn names_are_trimmed_and_validated() {
        let read = |table: &str, bus: &str| {
            let vars = [(DEDUP_TABLE_NAME, table), (EVENT_BUS_NAME, bus)];
            let forward = crate::forward::config::ForwardConfig::from_lookup(|name| {
                vars.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
            });
            let receiver = config(&[
                (DEDUP_TABLE_NAME, table),
                (SENDBLUE_WEBHOOK_SECRETS, " s \n"),
                (EVENT_SOURCE, " acme.sendblue\n"),
            ]);
            forward.and(receiver)
        };
        let config = read(" my-table\n", "\tmy-stack-sendblue ").unwrap();
        assert_eq!(config.backend, Backend::Aws { table_name: "my-table".into() });
        assert_eq!(config.event_source, "acme.sendblue");
        assert!(config.secrets.accepts(b"s"));
        let arn_table = "arn:aws:dynamodb:us-east-1:123456789012:table/my-table";
        let arn_bus = "arn:aws:events:us-east-1:123456789012:event-bus/my-bus";
        assert!(read(arn_table, arn_bus).is_ok());
        for (table, bus, wrong) in [
            ("my table", "bus", DEDUP_TABLE_NAME),
            ("t", "bus", DEDUP_TABLE_NAME),
            ("table\u{0}", "bus", DEDUP_TABLE_NAME),
            ("arn:aws:s3:::bucket/x", "bus", DEDUP_TABLE_NAME),
            ("table", "my bus", EVENT_BUS_NAME),
            ("table", "arn:aws:events:us-east-1:1:rule/x", EVENT_BUS_NAME),
            ("table", &"b".repeat(257), EVENT_BUS_NAME),
        ] {
            let error = read(table, bus).unwrap_err();
            assert!(
                matches!(&error, ConfigError::Invalid { name, .. } if *name == wrong),
                "{table:?} {bus:?}: {error}"
            );
            assert!(error.to_string().contains(wrong), "{error}");
        }
    }

    #[test]
    fn numbers_and_source_are_validated() {
        let with = |extra: (&'static str, &'static str)| {
            let mut vars = AWS.to_vec();
            vars.push(extra);
            config(&vars)
        };
        assert_eq!(with((DEDUP_TTL_SECONDS, "60")).unwrap().dedup_ttl_seconds, 60);
        assert_eq!(with((MAX_BODY_BYTES, "1024")).unwrap().max_body_bytes, 1024);
        assert_eq!(with((EVENT_SOURCE, "acme.sendblue")).unwrap().event_source, "acme.sendblue");
        for (name, value) in [
            (DEDUP_TTL_SECONDS, "0"),
            (DEDUP_TTL_SECONDS, "-5"),
            (DEDUP_TTL_SECONDS, "1h"),
            (MAX_BODY_BYTES, "300000"),
            (EVENT_SOURCE, "aws.sendblue"),
            (EVENT_SOURCE, "acme sendblue"),
            (METRICS_NAMESPACE, "AWS/Lambda"),
            (METRICS_NAMESPACE, "two words"),
        ] {
            assert!(
                matches!(with((name, value)), Err(ConfigError::Invalid { name: n, .. }) if n == name),
                "{name}={value}"
            );
        }
    }
}
