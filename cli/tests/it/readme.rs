//! docs/cli.md shows every command's `--help` as the binary prints it: a changed option that is
//! not written there fails here.

use crate::support::cli;

#[tokio::test]
async fn readme_shows_the_help_of_every_command() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/cli.md")).unwrap();
    for command in [
        "",
        "list",
        "register",
        "unregister",
        "rotate-secret",
        "callback-url",
        "reconcile",
        "doctor",
        "send",
    ] {
        let args: Vec<&str> = [command, "--help"].into_iter().filter(|a| !a.is_empty()).collect();
        let run = cli(&args, &[]).await;
        assert_eq!(run.code, 0, "{run:?}");
        let shown =
            format!("$ sendblue-webhooks {}\n{}\n```", args.join(" "), run.stdout.trim_end());
        assert!(readme.contains(&shown), "docs/cli.md lacks the current help:\n{shown}");
    }
}
