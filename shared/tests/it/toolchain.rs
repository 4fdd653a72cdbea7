//! The Rust version the README and `Cargo.toml` name must build the locked dependencies: a
//! newer SDK release that needs a newer rustc fails here, not on a new user's first build.

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// `1.94.1` as comparable numbers (a missing patch is 0).
fn version(text: &str) -> Vec<u64> {
    let mut numbers: Vec<u64> = text.split('.').map(|n| n.parse().unwrap()).collect();
    numbers.resize(3, 0);
    numbers
}

/// The platform this builds on (`rustc -vV`'s host).
fn host() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let output = Command::new(rustc).arg("-vV").output().expect("rustc runs");
    let text = String::from_utf8(output.stdout).unwrap();
    let host = text.lines().find_map(|l| l.strip_prefix("host: ")).expect("rustc names its host");
    host.to_owned()
}

#[test]
fn rust_version_covers_every_locked_dependency_and_the_readme_names_it() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    // Offline, the packages of other platforms (Windows-only crates) were never downloaded:
    // the graph read is the one this platform builds, as a user's first build does.
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked", "--offline", "--filter-platform"])
        .arg(host())
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    let ours = env!("CARGO_PKG_RUST_VERSION");
    let needing_more: Vec<String> = packages
        .iter()
        .filter_map(|p| Some((p["name"].as_str()?, p["rust_version"].as_str()?)))
        .filter(|(_, needed)| version(needed) > version(ours))
        .map(|(name, needed)| format!("{name} needs {needed}"))
        .collect();
    assert!(needing_more.is_empty(), "rust-version {ours} is too old: {needing_more:?}");
    assert!(packages.len() > 100, "the whole locked graph is read, not only the workspace");
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(readme.contains(&format!("Rust {ours} or later")), "the README names {ours}");
}
