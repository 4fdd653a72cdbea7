//! Sendblue's webhook configuration, as its management API reads and writes it.
//!
//! Entries come as bare URL strings or as `{url, secret}` objects (newer ones add fields such as
//! `sendblue_numbers`); everything not understood is kept, so that a configuration read and
//! written back (`rotate-secret`'s PUT) loses nothing of other people's webhooks.

use std::collections::BTreeMap;

use sendblue_webhooks::WebhookType;
use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// What is shown instead of a secret unless `--show-secrets` is given.
pub const MASK: &str = "****";

/// One registered webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub url: String,
    pub secret: Option<String>,
    /// Fields this tool does not know, written back as they were read.
    pub extra: Map<String, Value>,
}

impl Webhook {
    pub fn new(url: impl Into<String>, secret: Option<String>) -> Self {
        Self { url: url.into(), secret, extra: Map::new() }
    }

    /// The same webhook with its secret replaced by [`MASK`].
    pub fn masked(&self) -> Self {
        Self { secret: self.secret.as_ref().map(|_| MASK.to_owned()), ..self.clone() }
    }

    /// Whether both send to the same URL with the same secret (other fields, lines too, aside).
    pub fn same_target(&self, other: &Webhook) -> bool {
        self.url == other.url && self.secret == other.secret
    }

    /// The Sendblue lines a receive webhook is limited to (`sendblue_numbers`, in order); none:
    /// every line of the account.
    pub fn lines(&self) -> Vec<&str> {
        let listed = self.extra.get(SENDBLUE_NUMBERS).and_then(Value::as_array);
        listed.into_iter().flatten().filter_map(Value::as_str).collect()
    }

    /// The same webhook limited to `lines` (every line when empty).
    pub fn with_lines(mut self, lines: &[String]) -> Self {
        match lines {
            [] => self.extra.remove(SENDBLUE_NUMBERS),
            lines => self.extra.insert(SENDBLUE_NUMBERS.into(), json!(lines)),
        };
        self
    }
}

/// The field of a receive webhook that limits it to some of the account's lines.
const SENDBLUE_NUMBERS: &str = "sendblue_numbers";

/// How two configurations are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// By URL, secret and lines: what `register` writes, leaving Sendblue free to add fields.
    Target,
    /// Every field of every entry, and the members that are not lists of webhooks: what a
    /// PUT of the whole configuration must give back.
    WholeEntry,
}

impl Serialize for Webhook {
    /// A bare URL when there is nothing else to say, as Sendblue itself writes it.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.secret.is_none() && self.extra.is_empty() {
            return serializer.serialize_str(&self.url);
        }
        let mut object = self.extra.clone();
        object.insert("url".into(), Value::String(self.url.clone()));
        if let Some(secret) = &self.secret {
            object.insert("secret".into(), Value::String(secret.clone()));
        }
        object.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Webhook {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Url(String),
            Object {
                url: String,
                #[serde(default)]
                secret: Option<String>,
                #[serde(flatten)]
                extra: Map<String, Value>,
            },
        }
        Ok(match Raw::deserialize(deserializer)? {
            Raw::Url(url) => Webhook::new(url, None),
            Raw::Object { url, secret, extra } => Webhook { url, secret, extra },
        })
    }
}

/// An account's whole configuration: each type's webhooks under Sendblue's name for the type,
/// the account-wide `globalSecret`, and whatever else the account holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookConfig {
    pub global_secret: Option<String>,
    pub by_type: BTreeMap<String, Vec<Webhook>>,
    /// Members that are not lists of webhooks, such as the legacy account-wide `secret` string
    /// older accounts still have, or anything newer: kept as read, written back untouched.
    pub other: Map<String, Value>,
}

const GLOBAL_SECRET: &str = "globalSecret";
const CONTACT_CREATED: &str = WebhookType::ContactCreated.sendblue_name();

impl Serialize for WebhookConfig {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut object = self.other.clone();
        for (type_name, hooks) in &self.by_type {
            object
                .insert(type_name.clone(), serde_json::to_value(hooks).map_err(S::Error::custom)?);
        }
        if let Some(secret) = &self.global_secret {
            object.insert(GLOBAL_SECRET.into(), Value::String(secret.clone()));
        }
        object.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for WebhookConfig {
    /// Never fails on a JSON object, and never quotes a value in its error: serde's messages
    /// quote what they could not read, and here that would be a secret.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Value::Object(members) = Value::deserialize(deserializer)? else {
            return Err(D::Error::custom("the webhooks member is not a JSON object"));
        };
        let mut config = WebhookConfig::default();
        for (name, value) in members {
            match (name.as_str(), value) {
                (GLOBAL_SECRET, Value::String(secret)) => config.global_secret = Some(secret),
                (_, Value::Array(entries)) if name != GLOBAL_SECRET => {
                    let hooks: Option<Vec<Webhook>> = entries
                        .iter()
                        .map(|entry| serde_json::from_value(entry.clone()).ok())
                        .collect();
                    match hooks {
                        Some(hooks) => {
                            config.by_type.insert(name, hooks);
                        }
                        None => {
                            config.other.insert(name, Value::Array(entries));
                        }
                    }
                }
                (_, value) => {
                    config.other.insert(name, value);
                }
            }
        }
        Ok(config)
    }
}

/// `value` with every string that is not a URL replaced by [`MASK`].
fn masked_value(value: &Value) -> Value {
    match value {
        Value::String(s) if s.starts_with("https://") || s.starts_with("http://") => value.clone(),
        Value::String(_) => Value::String(MASK.to_owned()),
        Value::Array(items) => Value::Array(items.iter().map(masked_value).collect()),
        Value::Object(members) => {
            Value::Object(members.iter().map(|(k, v)| (k.clone(), masked_value(v))).collect())
        }
        other => other.clone(),
    }
}

impl WebhookConfig {
    /// The webhooks of `type_name` (none when Sendblue did not list the type).
    pub fn of(&self, type_name: &str) -> &[Webhook] {
        self.by_type.get(type_name).map_or(&[], Vec::as_slice)
    }

    /// The configuration with every secret replaced by [`MASK`].
    pub fn masked(&self) -> Self {
        Self {
            global_secret: self.global_secret.as_ref().map(|_| MASK.to_owned()),
            by_type: self
                .by_type
                .iter()
                .map(|(t, hooks)| (t.clone(), hooks.iter().map(Webhook::masked).collect()))
                .collect(),
            other: self.other.iter().map(|(k, v)| (k.clone(), masked_value(v))).collect(),
        }
    }

    /// The `contact_created` webhooks `expected` has with a secret that `self` (read back) lists
    /// at the same URL without one, as `(url, secret written)`: an account whose API still
    /// takes bare URLs only for the type dropped the secret.
    pub fn dropped_contact_created_secrets(
        &self,
        expected: &WebhookConfig,
    ) -> Vec<(String, String)> {
        let read_back = self.of(CONTACT_CREATED);
        expected
            .of(CONTACT_CREATED)
            .iter()
            .filter(|w| !read_back.iter().any(|r| r.same_target(w)))
            .filter(|w| read_back.iter().any(|r| r.url == w.url && r.secret.is_none()))
            .filter_map(|w| Some((w.url.clone(), w.secret.clone()?)))
            .collect()
    }

    /// The same configuration with the `contact_created` webhook at `url` bare.
    pub fn without_contact_created_secret(mut self, url: &str) -> Self {
        for hook in self.by_type.get_mut(CONTACT_CREATED).into_iter().flatten() {
            if hook.url == url {
                hook.secret = None;
            }
        }
        self
    }

    /// Where `expected` and `self` differ, type by type, as lines naming URLs but no secret.
    /// Order within a type does not matter; a type listed empty equals a type not listed.
    pub fn differences_from(&self, expected: &WebhookConfig, compare: Compare) -> Vec<String> {
        let mut differences = Vec::new();
        let types: std::collections::BTreeSet<&String> =
            self.by_type.keys().chain(expected.by_type.keys()).collect();
        let key = |w: &Webhook| {
            let extra = match compare {
                Compare::Target => Value::from(w.lines()).to_string(),
                Compare::WholeEntry => Value::Object(w.extra.clone()).to_string(),
            };
            (w.url.clone(), w.secret.clone(), extra)
        };
        for type_name in types {
            let (mut actual, mut wanted) =
                (self.of(type_name).to_vec(), expected.of(type_name).to_vec());
            actual.sort_by_key(key);
            wanted.sort_by_key(key);
            for hook in wanted.iter().filter(|w| !actual.iter().any(|a| key(a) == key(w))) {
                differences.push(format!(
                    "{type_name}: {} is missing{}",
                    hook.url,
                    entry_note(hook)
                ));
            }
            for hook in actual.iter().filter(|a| !wanted.iter().any(|w| key(a) == key(w))) {
                differences.push(format!(
                    "{type_name}: {} is unexpected{}",
                    hook.url,
                    entry_note(hook)
                ));
            }
        }
        if self.global_secret != expected.global_secret {
            differences.push("globalSecret differs".to_owned());
        }
        if compare == Compare::WholeEntry {
            let names: std::collections::BTreeSet<&String> =
                self.other.keys().chain(expected.other.keys()).collect();
            for name in names.into_iter().filter(|n| self.other.get(*n) != expected.other.get(*n)) {
                differences.push(format!("{name} differs"));
            }
        }
        differences
    }
}

/// What a difference says of a webhook besides its URL: whether it has a secret (never which),
/// and the lines it is limited to.
fn entry_note(hook: &Webhook) -> String {
    match (hook.secret.is_some(), hook.lines().as_slice()) {
        (false, []) => String::new(),
        (true, []) => " (with a secret)".to_owned(),
        (false, lines) => format!(" (for {})", lines.join(", ")),
        (true, lines) => format!(" (with a secret, for {})", lines.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_objects_and_unknown_fields_round_trip() {
        let wire = json!({
            "receive": ["https://a.example/hook", {"url": "https://b.example/hook", "secret": "s"}],
            "outbound": [{"url": "https://c.example/hook", "sendblue_numbers": ["+1555"]}],
            "globalSecret": "g"
        });
        let config: WebhookConfig = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(config.of("receive")[1].secret.as_deref(), Some("s"));
        assert_eq!(config.of("outbound")[0].extra["sendblue_numbers"], json!(["+1555"]));
        assert_eq!(config.global_secret.as_deref(), Some("g"));
        assert!(config.of("call_log").is_empty());
        assert_eq!(serde_json::to_value(&config).unwrap(), wire);
    }

    #[test]
    fn a_legacy_root_secret_and_unknown_members_are_kept_and_written_back() {
        let wire = json!({
            "receive": ["https://a.example/hook"],
            "secret": "legacy-s3cret",
            "future": {"x": 1},
            "odd_list": [1, 2],
            "globalSecret": "g"
        });
        let config: WebhookConfig = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(config.of("receive").len(), 1);
        assert_eq!(config.other["secret"], json!("legacy-s3cret"));
        assert!(config.of("odd_list").is_empty(), "not a list of webhooks");
        assert_eq!(serde_json::to_value(&config).unwrap(), wire, "written back untouched");
        let shown = serde_json::to_string(&config.masked()).unwrap();
        assert!(!shown.contains("legacy-s3cret"), "{shown}");
        let mut changed = config.clone();
        changed.other.insert("secret".into(), json!("other"));
        assert_eq!(changed.differences_from(&config, Compare::WholeEntry), ["secret differs"]);
        assert!(changed.differences_from(&config, Compare::Target).is_empty());
    }

    #[test]
    fn unreadable_configurations_are_refused_without_quoting_a_value() {
        for wire in [json!("a-s3cret-string"), json!(["a-s3cret-string"]), json!(42)] {
            let error = serde_json::from_value::<WebhookConfig>(wire).unwrap_err().to_string();
            assert!(!error.contains("s3cret") && !error.contains("42"), "{error}");
        }
    }

    #[test]
    fn whole_entries_differ_where_urls_and_secrets_do_not() {
        let read = |v: Value| serde_json::from_value::<WebhookConfig>(v).unwrap();
        let with_label =
            read(json!({"receive": [{"url": "https://a", "secret": "s", "label": "crm"}]}));
        let without = read(json!({"receive": [{"url": "https://a", "secret": "s"}]}));
        assert!(without.differences_from(&with_label, Compare::Target).is_empty());
        assert_eq!(
            without.differences_from(&with_label, Compare::WholeEntry),
            [
                "receive: https://a is missing (with a secret)",
                "receive: https://a is unexpected (with a secret)"
            ]
        );
    }

    #[test]
    fn lines_are_part_of_the_target() {
        let read = |v: Value| serde_json::from_value::<WebhookConfig>(v).unwrap();
        let one_line = read(
            json!({"receive": [{"url": "https://a", "secret": "s", "sendblue_numbers": ["+1"]}]}),
        );
        let every_line = read(json!({"receive": [{"url": "https://a", "secret": "s"}]}));
        assert_eq!(one_line.of("receive")[0].lines(), ["+1"]);
        assert_eq!(
            every_line.differences_from(&one_line, Compare::Target),
            [
                "receive: https://a is missing (with a secret, for +1)",
                "receive: https://a is unexpected (with a secret)"
            ]
        );
        let limited = every_line.of("receive")[0].clone().with_lines(&["+1".to_owned()]);
        assert_eq!(limited, one_line.of("receive")[0]);
        assert_eq!(limited.with_lines(&[]), every_line.of("receive")[0]);
    }

    #[test]
    fn masking_hides_every_secret() {
        let config: WebhookConfig = serde_json::from_value(json!({
            "receive": [{"url": "https://b.example/hook", "secret": "s3cret"}],
            "globalSecret": "g1obal"
        }))
        .unwrap();
        let shown = serde_json::to_string(&config.masked()).unwrap();
        assert!(!shown.contains("s3cret") && !shown.contains("g1obal"), "{shown}");
        assert!(shown.contains(MASK));
    }

    #[test]
    fn differences_ignore_order_and_name_urls_not_secrets() {
        let read = |v: Value| serde_json::from_value::<WebhookConfig>(v).unwrap();
        let a = read(json!({"receive": ["https://a", {"url": "https://b", "secret": "s1"}]}));
        let b = read(
            json!({"receive": [{"url": "https://b", "secret": "s1"}, "https://a"], "outbound": []}),
        );
        assert!(a.differences_from(&b, Compare::Target).is_empty());
        let c = read(json!({"receive": [{"url": "https://b", "secret": "s2"}]}));
        let differences = c.differences_from(&a, Compare::Target);
        assert_eq!(
            differences,
            [
                "receive: https://a is missing",
                "receive: https://b is missing (with a secret)",
                "receive: https://b is unexpected (with a secret)"
            ]
        );
        assert!(!differences.concat().contains("s1") && !differences.concat().contains("s2"));
    }
}
