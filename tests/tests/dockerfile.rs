//! Static checks of the Dockerfile (no Docker engine here to build it): the build and the
//! final image are what the chart expects.
#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure

use signet_deploy_tests::read_repo_file;

#[test]
fn dockerfile_builds_signet_and_runs_it_non_root_without_a_shell() {
    let dockerfile = read_repo_file("Dockerfile").unwrap();
    let lines: Vec<&str> = dockerfile.lines().map(str::trim).collect();
    let from: Vec<&&str> = lines.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(from.len(), 2, "multi-stage: builder and final");
    assert!(from[0].starts_with("FROM rust:1-bookworm AS builder"));
    // distroless: no shell, CA certificates and glibc for the dynamically linked binary.
    assert_eq!(*from[1], "FROM gcr.io/distroless/cc-debian12:nonroot");
    assert!(dockerfile.contains("cargo build --release --locked -p signet"));
    assert!(lines.contains(&"USER 65532:65532"));
    assert_eq!(
        lines.iter().rfind(|l| l.starts_with("ENTRYPOINT")),
        Some(&r#"ENTRYPOINT ["/signet", "serve", "--config", "/etc/signet/config.yaml"]"#)
    );
    // The chart's container passes the same command as args and runs as the same UID.
    let deployment = read_repo_file("charts/signet/templates/deployment.yaml").unwrap();
    assert!(deployment.contains("runAsUser: 65532"));
    assert!(deployment.contains("- /etc/signet/config.yaml"));
}

#[test]
fn dockerignore_keeps_the_workspace() {
    let ignore = read_repo_file(".dockerignore").unwrap();
    let patterns: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(patterns.contains(&"target") && patterns.contains(&".git"));
    // Every workspace member's manifest and the lock file must reach the build.
    for needed in ["crates", "tests", "Cargo.toml", "Cargo.lock", "clippy.toml"] {
        assert!(!patterns.contains(&needed), "{needed} must not be ignored");
    }
}
