//! `signet --version` names the version and the commit the binary was built from.
#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure

use std::process::Command;

#[test]
fn version_names_the_release_and_the_commit() {
    let out = Command::new(env!("CARGO_BIN_EXE_signet"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    let expected_commit = std::env::var("SIGNET_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty() && c != "unknown")
        .or_else(|| {
            let git = Command::new("git")
                .args(["rev-parse", "HEAD"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .output()
                .ok()?;
            git.status
                .success()
                .then(|| String::from_utf8(git.stdout).ok())?
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    assert_eq!(
        line.trim(),
        format!(
            "signet {} (commit {expected_commit})",
            env!("CARGO_PKG_VERSION")
        )
    );
    // Subcommands print the same line.
    let out = Command::new(env!("CARGO_BIN_EXE_signet"))
        .args(["serve", "--version"])
        .output()
        .unwrap();
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains(&expected_commit));
}
