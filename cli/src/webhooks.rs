//! Sendblue's webhook configuration, as its management API reads and writes it.
//!
//! Entries come as bare URL strings or as `{url, secret}` objects (newer ones add fields such as
//! `sendblue_numbers`); everything not understood is kept, so that a configuration read and
//! written back (`rotate-secret`'s PUT) loses nothing of other people's webhooks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
/// and the account-wide `globalSecret`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookConfig {
    #[serde(rename = "globalSecret", default, skip_serializing_if = "Option::is_none")]
    pub global_secret: Option<String>,
    #[serde(flatten)]
    pub by_type: BTreeMap<String, Vec<Webhook>>,
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
        }
    }

    /// Where `expected` and `self` differ, type by type, as lines naming URLs but no secret.
    /// Order within a type does not matter; a type listed empty equals a type not listed.
    pub fn differences_from(&self, expected: &WebhookConfig) -> Vec<String> {
        let mut differences = Vec::new();
        let types: std::collections::BTreeSet<&String> =
            self.by_type.keys().chain(expected.by_type.keys()).collect();
        for type_name in types {
            let (mut actual, mut wanted) =
                (self.of(type_name).to_vec(), expected.of(type_name).to_vec());
            let key = |w: &Webhook| (w.url.clone(), w.secret.clone());
            actual.sort_by_key(key);
            wanted.sort_by_key(key);
            for hook in wanted.iter().filter(|w| !actual.iter().any(|a| key(a) == key(w))) {
                differences.push(format!(
                    "{type_name}: {} is missing{}",
                    hook.url,
                    secret_note(hook)
                ));
            }
            for hook in actual.iter().filter(|a| !wanted.iter().any(|w| key(a) == key(w))) {
                differences.push(format!(
                    "{type_name}: {} is unexpected{}",
                    hook.url,
                    secret_note(hook)
                ));
            }
        }
        if self.global_secret != expected.global_secret {
            differences.push("globalSecret differs".to_owned());
        }
        differences
    }
}

fn secret_note(hook: &Webhook) -> &'static str {
    if hook.secret.is_some() {
        " (with a secret)"
    } else {
        ""
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
        assert!(a.differences_from(&b).is_empty());
        let c = read(json!({"receive": [{"url": "https://b", "secret": "s2"}]}));
        let differences = c.differences_from(&a);
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
