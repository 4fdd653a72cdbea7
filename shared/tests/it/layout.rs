//! The list of functions is written where a tool needs it: the `functions/` folders (which the
//! workspace takes as members by a glob, and the scripts list), the `WebhookType` enum, the
//! local router in `Cargo.toml`, and `template.yaml` (checked by `tests/template_contract.py`
//! against the folders). These must agree.

use std::collections::BTreeSet;
use std::path::Path;

use sendblue_webhooks::verify::TOKEN_PATH_PARAMETER;
use sendblue_webhooks::WebhookType;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

#[test]
fn folders_enum_and_local_router_name_the_same_functions() {
    let folders: BTreeSet<String> = std::fs::read_dir(root().join("functions"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut binaries: BTreeSet<String> =
        WebhookType::ALL.iter().map(|t| t.binary_name().to_owned()).collect();
    binaries.extend(["reconcile".to_owned(), "forward".to_owned()]);
    assert_eq!(
        folders, binaries,
        "one folder in functions/ per WebhookType, and reconcile and forward"
    );

    for t in WebhookType::ALL {
        let main = root().join("functions").join(t.binary_name()).join("src/main.rs");
        let main = std::fs::read_to_string(&main).unwrap();
        assert!(main.contains(&format!("run(WebhookType::{t:?})")), "{} runs its own type", t);
    }

    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let router = manifest.split("[workspace.metadata.lambda.watch.router]").nth(1).unwrap();
    let routes: BTreeSet<(String, String)> = router
        .lines()
        .filter_map(|line| line.split_once(" = "))
        .map(|(path, binary)| {
            (path.trim_matches('"').to_owned(), binary.trim_matches('"').to_owned())
        })
        .collect();
    let expected: BTreeSet<(String, String)> = WebhookType::ALL
        .iter()
        .map(|t| {
            let mut path = format!("/sendblue/{}", t.binary_name());
            if *t == WebhookType::StatusCallback {
                path += &format!("/{{{TOKEN_PATH_PARAMETER}}}");
            }
            (path, t.binary_name().to_owned())
        })
        .collect();
    assert_eq!(routes, expected, "the local router serves each function at its deployed path");
}

#[test]
fn the_checklist_for_a_new_webhook_type_names_files_that_exist() {
    let architecture = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    let checklist = architecture
        .split("## Adding a webhook type")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/architecture.md has the checklist");
    let paths: Vec<&str> = checklist
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|quoted| {
            quoted.contains('/') || quoted.ends_with(".toml") || quoted.ends_with(".yaml")
        })
        .filter(|quoted| !quoted.contains(' ') && !quoted.contains('<'))
        .collect();
    assert!(paths.len() >= 10, "{paths:?}");
    for path in paths {
        assert!(root().join(path).exists(), "the checklist names {path}, which does not exist");
    }
    for place in ["WebhookType", "key_source", "Payload", "watch.router", "run(WebhookType::"] {
        assert!(checklist.contains(place), "the checklist names {place}");
    }
}
