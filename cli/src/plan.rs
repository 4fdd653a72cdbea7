//! What `register`, `unregister` and `rotate-secret` would change, computed from the
//! configuration read before any change, and the configuration expected after it (which the
//! commands compare with what they read back).

use sendblue_webhooks::WebhookType;
use serde::Serialize;

use crate::error::CliError;
use crate::stack::Endpoints;
use crate::webhooks::{Webhook, WebhookConfig};

/// One change to one type's list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    #[serde(rename = "type")]
    pub type_name: &'static str,
    pub action: Action,
    pub url: String,
    pub with_secret: bool,
    /// The lines a receive webhook is limited to (none: every line).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// POST: append this webhook.
    Add,
    /// DELETE: remove this URL.
    Remove,
    /// Already as it must be.
    Keep,
    /// PUT: the same URL with the new secret.
    SetSecret,
    /// PUT: the same URL and secret, for other lines.
    SetLines,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub warnings: Vec<String>,
    /// The whole configuration once the changes are made.
    #[serde(skip)]
    pub expected: WebhookConfig,
}

impl Plan {
    pub fn is_noop(&self) -> bool {
        self.changes.iter().all(|c| c.action == Action::Keep)
    }

    /// Whether a change needs the whole configuration written (PUT): only an entry's fields,
    /// not the list, change.
    pub fn rewrites_entries(&self) -> bool {
        self.changes.iter().any(|c| matches!(c.action, Action::SetSecret | Action::SetLines))
    }

    /// The changes of one action, grouped by type, in the order the types were selected.
    pub fn by_type(&self, action: Action) -> Vec<(&'static str, Vec<&Change>)> {
        let mut groups: Vec<(&'static str, Vec<&Change>)> = Vec::new();
        for change in self.changes.iter().filter(|c| c.action == action) {
            match groups.iter_mut().find(|(t, _)| *t == change.type_name) {
                Some((_, changes)) => changes.push(change),
                None => groups.push((change.type_name, vec![change])),
            }
        }
        groups
    }
}

/// Refuses to plan for a type that Sendblue lists in a form this tool cannot read: changing it
/// would mean guessing at someone else's entries.
fn check_readable(current: &WebhookConfig, types: &[WebhookType]) -> Result<(), CliError> {
    match types.iter().find(|t| current.other.contains_key(t.sendblue_name())) {
        Some(t) => Err(CliError::Mismatch(format!(
            "{}: Sendblue lists its webhooks in a form this tool does not read; nothing changed",
            t.sendblue_name()
        ))),
        None => Ok(()),
    }
}

/// Exactly this stack's URL for every selected type (with the secret where the type takes one,
/// and for receive, limited to `lines` when some are given: the stack's `SendblueNumbers`), no
/// other URL of this stack, and nobody else's webhook touched.
pub fn register(
    current: &WebhookConfig,
    base: &Endpoints,
    types: &[WebhookType],
    secret: &str,
    lines: &[String],
) -> Result<Plan, CliError> {
    check_readable(current, types)?;
    let mut plan = Plan { changes: Vec::new(), warnings: Vec::new(), expected: current.clone() };
    for &webhook_type in types {
        let type_name = webhook_type.sendblue_name();
        let url = base.url_of(webhook_type).to_owned();
        // Sendblue filters only inbound messages by line.
        let lines = if webhook_type == WebhookType::Receive { lines } else { &[] };
        let wanted = Webhook::new(&url, Some(secret.to_owned())).with_lines(lines);
        let change = |action, with_secret| Change {
            type_name,
            action,
            url: url.clone(),
            with_secret,
            lines: lines.to_vec(),
        };
        let hooks = current.of(type_name);
        let ours: Vec<&Webhook> =
            hooks.iter().filter(|h| base.is_url_of(webhook_type, &h.url)).collect();
        let bare_contact_created = webhook_type == WebhookType::ContactCreated
            && !ours.is_empty()
            && ours.iter().all(|h| h.secret.is_none());
        if bare_contact_created {
            // Registered before Sendblue took secrets for this type (or by an account whose API
            // still drops them): adding it again with POST would list it twice.
            plan.warnings.push(format!(
                "{type_name}: {url} is registered without a secret, so its deliveries carry the \
                 account's globalSecret; `rotate-secret` gives it its own"
            ));
            plan.warnings.extend(global_secret_advice(current, secret));
            plan.changes.push(change(Action::Keep, false));
        } else if ours.iter().any(|h| h.secret != wanted.secret) {
            return Err(CliError::Mismatch(format!(
                "{type_name}: {url} is registered with another secret; \
                 `rotate-secret` changes it without a gap in deliveries"
            )));
        } else if ours.is_empty() {
            plan.expected.by_type.entry(type_name.to_owned()).or_default().push(wanted);
            plan.changes.push(change(Action::Add, true));
        } else {
            if ours.len() > 1 {
                plan.warnings.push(format!(
                    "{type_name}: {url} is registered {} times, so Sendblue sends each event that \
                     often (the receiver drops the repeats)",
                    ours.len()
                ));
            }
            let action = if ours.iter().all(|h| h.lines() == wanted.lines()) {
                Action::Keep
            } else {
                let hooks = plan.expected.by_type.entry(type_name.to_owned()).or_default();
                for hook in hooks.iter_mut().filter(|h| base.is_url_of(webhook_type, &h.url)) {
                    *hook = hook.clone().with_lines(lines);
                }
                Action::SetLines
            };
            plan.changes.push(change(action, true));
        }
        remove_ours(&mut plan, current, base, webhook_type, |stale| {
            !base.is_url_of(webhook_type, stale)
        });
    }
    Ok(plan)
}

/// What a `contact_created` webhook without a secret needs: the account's `globalSecret` among
/// the secrets its receiver accepts (and only its receiver's: every holder of the account's API
/// keys can read `globalSecret`). `None` when it is already `secret`.
pub fn global_secret_advice(current: &WebhookConfig, secret: &str) -> Option<String> {
    (current.global_secret.as_deref() != Some(secret)).then(|| {
        "contact_created deliveries without a secret of their own carry the account's \
         globalSecret, which is not this secret: the receiver refuses them (401) until \
         ContactCreatedSecrets includes globalSecret (never put it in SendblueWebhookSecrets, \
         where anyone with the account's API keys could open the other receivers)"
            .to_owned()
    })
}

/// Every URL of this stack removed from the selected types; nothing else touched.
pub fn unregister(current: &WebhookConfig, base: &Endpoints, types: &[WebhookType]) -> Plan {
    let mut plan = Plan { changes: Vec::new(), warnings: Vec::new(), expected: current.clone() };
    for &webhook_type in types {
        remove_ours(&mut plan, current, base, webhook_type, |_| true);
    }
    plan
}

/// Plans a DELETE of each distinct URL of this stack under `webhook_type` that `selected` picks.
fn remove_ours(
    plan: &mut Plan,
    current: &WebhookConfig,
    base: &Endpoints,
    webhook_type: WebhookType,
    selected: impl Fn(&str) -> bool,
) {
    let type_name = webhook_type.sendblue_name();
    for hook in current.of(type_name) {
        let remove = base.contains(&hook.url) && selected(&hook.url);
        let planned = plan.changes.iter().any(|c| c.type_name == type_name && c.url == hook.url);
        if !remove && selected(&hook.url) && base.shares_host_with(&hook.url) {
            plan.warnings.push(format!(
                "{type_name}: {} is on a host that other receivers may share, and it is not one \
                 of this stack's URLs: left alone (remove it by hand if it is a stale one of yours)",
                hook.url
            ));
        }
        if remove && !planned {
            plan.changes.push(Change {
                type_name,
                action: Action::Remove,
                url: hook.url.clone(),
                with_secret: hook.secret.is_some(),
                lines: Vec::new(),
            });
        }
    }
    if let Some(hooks) = plan.expected.by_type.get_mut(type_name) {
        hooks.retain(|h| !(base.contains(&h.url) && selected(&h.url)));
    }
}

/// The same configuration with this stack's webhooks of the selected types carrying
/// `new_secret` (a `contact_created` webhook registered bare gets its first secret).
pub fn rotate(
    current: &WebhookConfig,
    base: &Endpoints,
    types: &[WebhookType],
    new_secret: &str,
) -> Result<Plan, CliError> {
    check_readable(current, types)?;
    let mut plan = Plan { changes: Vec::new(), warnings: Vec::new(), expected: current.clone() };
    for &webhook_type in types {
        let type_name = webhook_type.sendblue_name();
        let url = base.url_of(webhook_type).to_owned();
        let hooks = plan.expected.by_type.entry(type_name.to_owned()).or_default();
        let ours: Vec<&mut Webhook> =
            hooks.iter_mut().filter(|h| base.is_url_of(webhook_type, &h.url)).collect();
        if ours.is_empty() {
            return Err(CliError::Mismatch(format!(
                "{type_name}: {url} is not registered; run `register` first"
            )));
        }
        let already = ours.iter().all(|h| h.secret.as_deref() == Some(new_secret));
        for hook in ours {
            hook.secret = Some(new_secret.to_owned());
        }
        let action = if already { Action::Keep } else { Action::SetSecret };
        plan.changes.push(Change { type_name, action, url, with_secret: true, lines: Vec::new() });
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const API: &str = "https://abc.execute-api.us-east-1.amazonaws.com/sendblue";

    fn config(value: serde_json::Value) -> WebhookConfig {
        serde_json::from_value(value).unwrap()
    }

    fn actions(plan: &Plan) -> Vec<(&str, Action, &str)> {
        plan.changes.iter().map(|c| (c.type_name, c.action, c.url.as_str())).collect()
    }

    #[test]
    fn register_adds_ours_keeps_theirs_and_drops_our_stale_urls() {
        let base = Endpoints::from_api_base(API).unwrap();
        let current = config(json!({
            "receive": ["https://theirs.example/hook", {"url": format!("{API}/receive"), "secret": "s"}],
            "outbound": [format!("{API}/old-outbound")],
            "globalSecret": "s"
        }));
        let types = [WebhookType::Receive, WebhookType::Outbound, WebhookType::ContactCreated];
        let plan = register(&current, &base, &types, "s", &[]).unwrap();
        assert_eq!(
            actions(&plan),
            [
                ("receive", Action::Keep, format!("{API}/receive").as_str()),
                ("outbound", Action::Add, &format!("{API}/outbound")),
                ("outbound", Action::Remove, &format!("{API}/old-outbound")),
                ("contact_created", Action::Add, &format!("{API}/contact-created")),
            ]
        );
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
        let expected = config(json!({
            "receive": ["https://theirs.example/hook", {"url": format!("{API}/receive"), "secret": "s"}],
            "outbound": [{"url": format!("{API}/outbound"), "secret": "s"}],
            "contact_created": [{"url": format!("{API}/contact-created"), "secret": "s"}],
            "globalSecret": "s"
        }));
        assert_eq!(
            plan.expected.differences_from(&expected, crate::webhooks::Compare::WholeEntry),
            Vec::<String>::new()
        );

        let again = register(&plan.expected, &base, &types, "s", &[]).unwrap();
        assert!(again.is_noop(), "{:?}", again.changes);
    }

    #[test]
    fn lines_limit_only_our_receive_webhook_and_changing_them_is_a_rewrite_of_that_entry() {
        let base = Endpoints::from_api_base(API).unwrap();
        let theirs =
            json!({"url": "https://crm.example/hook", "sendblue_numbers": ["+15559999999"]});
        let current = config(json!({"receive": [theirs.clone()]}));
        let (ours, also) = ("+15550000001".to_owned(), "+15550000002".to_owned());
        let types = [WebhookType::Receive, WebhookType::Outbound];
        let plan = register(&current, &base, &types, "s", std::slice::from_ref(&ours)).unwrap();
        assert_eq!(actions(&plan)[0], ("receive", Action::Add, format!("{API}/receive").as_str()));
        let expected = config(json!({
            "receive": [theirs, {"url": format!("{API}/receive"), "secret": "s", "sendblue_numbers": [ours]}],
            "outbound": [{"url": format!("{API}/outbound"), "secret": "s"}],
        }));
        let whole = crate::webhooks::Compare::WholeEntry;
        assert_eq!(plan.expected.differences_from(&expected, whole), Vec::<String>::new());
        assert!(!plan.rewrites_entries(), "added with POST");

        let lines = [ours.clone(), also.clone()];
        let moved = register(&plan.expected, &base, &types, "s", &lines).unwrap();
        assert_eq!(
            actions(&moved),
            [
                ("receive", Action::SetLines, format!("{API}/receive").as_str()),
                ("outbound", Action::Keep, &format!("{API}/outbound")),
            ]
        );
        assert!(moved.rewrites_entries());
        assert_eq!(moved.expected.of("receive")[1].lines(), [ours.as_str(), also.as_str()]);
        assert_eq!(moved.expected.of("receive")[0].lines(), ["+15559999999"], "theirs untouched");
        let every_line = register(&moved.expected, &base, &types, "s", &[]).unwrap();
        assert_eq!(every_line.changes[0].action, Action::SetLines, "back to every line");
        assert!(every_line.expected.of("receive")[1].lines().is_empty());
        assert!(register(&moved.expected, &base, &types, "s", &lines).unwrap().is_noop());
    }

    #[test]
    fn a_contact_created_url_registered_bare_is_kept_and_rotate_gives_it_a_secret() {
        let base = Endpoints::from_api_base(API).unwrap();
        let url = format!("{API}/contact-created");
        let current = config(json!({"contact_created": [url.clone()], "globalSecret": "g"}));
        let types = [WebhookType::ContactCreated];
        let plan = register(&current, &base, &types, "s", &[]).unwrap();
        assert_eq!(actions(&plan), [("contact_created", Action::Keep, url.as_str())]);
        assert!(plan.is_noop(), "never POSTed a second time");
        assert_eq!(plan.warnings.len(), 2, "{:?}", plan.warnings);
        assert!(plan.warnings[0].contains("rotate-secret"), "{:?}", plan.warnings);
        assert!(plan.warnings[1].contains("ContactCreatedSecrets"), "{:?}", plan.warnings);
        let global_is_the_secret =
            config(json!({"contact_created": [url.clone()], "globalSecret": "s"}));
        let plan = register(&global_is_the_secret, &base, &types, "s", &[]).unwrap();
        assert_eq!(plan.warnings.len(), 1, "nothing refused: {:?}", plan.warnings);

        let rotated = rotate(&current, &base, &types, "s").unwrap();
        assert_eq!(actions(&rotated), [("contact_created", Action::SetSecret, url.as_str())]);
        assert_eq!(rotated.expected.of("contact_created"), [Webhook::new(url, Some("s".into()))]);
    }

    #[test]
    fn register_refuses_to_overwrite_another_secret() {
        let base = Endpoints::from_api_base(API).unwrap();
        let current =
            config(json!({"receive": [{"url": format!("{API}/receive"), "secret": "old"}]}));
        let error = register(&current, &base, &[WebhookType::Receive], "new", &[]).unwrap_err();
        assert!(matches!(&error, CliError::Mismatch(m) if m.contains("rotate-secret")), "{error}");
        assert!(!error.to_string().contains("old"));
    }

    #[test]
    fn unregister_removes_only_this_stack() {
        let base = Endpoints::from_api_base(API).unwrap();
        let current = config(json!({
            "receive": ["https://theirs.example/hook", format!("{API}/receive"), format!("{API}/receive")],
            "call_log": [format!("{API}/call-log")]
        }));
        let plan = unregister(&current, &base, &WebhookType::REGISTRABLE);
        assert_eq!(
            actions(&plan),
            [
                ("receive", Action::Remove, format!("{API}/receive").as_str()),
                ("call_log", Action::Remove, &format!("{API}/call-log")),
            ]
        );
        assert_eq!(
            plan.expected.of("receive"),
            [Webhook::new("https://theirs.example/hook", None)]
        );
        assert!(plan.expected.of("call_log").is_empty());
    }

    #[test]
    fn rotate_changes_only_our_secrets() {
        let base = Endpoints::from_api_base(API).unwrap();
        let current = config(json!({
            "receive": [{"url": "https://theirs.example/hook", "secret": "theirs"}, {"url": format!("{API}/receive"), "secret": "old"}],
            "globalSecret": "g"
        }));
        let plan = rotate(&current, &base, &[WebhookType::Receive], "new").unwrap();
        assert_eq!(
            actions(&plan),
            [("receive", Action::SetSecret, format!("{API}/receive").as_str())]
        );
        assert_eq!(plan.expected.of("receive")[0].secret.as_deref(), Some("theirs"));
        assert_eq!(plan.expected.of("receive")[1].secret.as_deref(), Some("new"));
        assert_eq!(plan.expected.global_secret.as_deref(), Some("g"));
        assert!(rotate(&current, &base, &[WebhookType::Outbound], "new").is_err());
    }

    #[test]
    fn a_custom_domain_shared_with_another_team_loses_nothing_but_our_current_urls() {
        let ours = "https://hooks.example.com/sendblue";
        let base = Endpoints::from_api_base(ours).unwrap();
        let current = config(json!({
            "receive": [
                "https://hooks.example.com/team-b/receive",
                format!("{ours}/receive/"),
                format!("{ours}/old-receive")
            ]
        }));
        let plan = register(&current, &base, &[WebhookType::Receive], "s", &[]).unwrap_err();
        assert!(matches!(plan, CliError::Mismatch(_)), "a bare URL has another secret: {plan}");
        let plan = unregister(&current, &base, &[WebhookType::Receive]);
        assert_eq!(
            actions(&plan),
            [("receive", Action::Remove, format!("{ours}/receive/").as_str())]
        );
        assert_eq!(
            plan.warnings.len(),
            2,
            "both URLs it cannot tell apart named: {:?}",
            plan.warnings
        );
        assert!(plan.warnings[0].contains("team-b") && plan.warnings[1].contains("old-receive"));
    }
}
