//! The image build, checked without a Docker engine (there is none here): the build context
//! that `.dockerignore` leaves is a complete Cargo workspace (`cargo metadata --locked` loads it),
//! the Dockerfile `az acr build` uses has no BuildKit-only syntax, and the final image is what
//! the chart expects.
#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure

use std::path::{Path, PathBuf};
use std::process::Command;

use signet_deploy_tests::{read_repo_file, repo_root};

/// `.dockerignore` as Docker reads it (moby/patternmatcher): one pattern a line, `#` comments,
/// `!` re-includes, the last matching pattern decides, and a pattern that matches a directory
/// excludes everything under it.
struct DockerIgnore {
    patterns: Vec<(bool, Vec<String>)>,
}

impl DockerIgnore {
    fn parse(text: &str) -> Self {
        let patterns = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (exclusion, p) = match l.strip_prefix('!') {
                    Some(p) => (true, p.trim()),
                    None => (false, l),
                };
                let parts = p
                    .trim_start_matches('/')
                    .trim_end_matches('/')
                    .split('/')
                    .filter(|c| !c.is_empty() && *c != ".")
                    .map(str::to_owned)
                    .collect();
                (exclusion, parts)
            })
            .collect();
        DockerIgnore { patterns }
    }

    /// Whether `rel` (components of a path relative to the context root) is left out.
    fn ignored(&self, rel: &[&str]) -> bool {
        let mut ignored = false;
        for (exclusion, pattern) in &self.patterns {
            // The pattern matches the path or one of its parent directories.
            let hit = (1..=rel.len()).any(|n| match_components(pattern, &rel[..n]));
            if hit {
                ignored = !exclusion;
            }
        }
        ignored
    }
}

fn match_components(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| match_components(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((head, tail)) => {
                wildcard(first.as_bytes(), head.as_bytes()) && match_components(rest, tail)
            }
            None => false,
        },
    }
}

/// `*` (any run of characters) and `?` (one character) within one path component.
fn wildcard(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|skip| wildcard(rest, &name[skip..])),
        Some((b'?', rest)) => !name.is_empty() && wildcard(rest, &name[1..]),
        Some((c, rest)) => name.first() == Some(c) && wildcard(rest, &name[1..]),
    }
}

/// Copies what the build context holds into `to`: every file `.dockerignore` leaves in.
fn copy_context(ignore: &DockerIgnore, root: &Path, rel: &mut Vec<String>, to: &Path) -> usize {
    let dir = rel.iter().fold(root.to_path_buf(), |p, c| p.join(c));
    let mut copied = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        rel.push(name);
        let parts: Vec<&str> = rel.iter().map(String::as_str).collect();
        // Docker descends into an excluded directory only for a later `!` pattern; this
        // .dockerignore has none that reaches inside one (checked below).
        if !ignore.ignored(&parts) {
            let target: PathBuf = rel.iter().fold(to.to_path_buf(), |p, c| p.join(c));
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                std::fs::create_dir_all(&target).unwrap();
                copied += copy_context(ignore, root, rel, to);
            } else if kind.is_file() {
                std::fs::copy(entry.path(), &target).unwrap();
                copied += 1;
            }
        }
        rel.pop();
    }
    copied
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

fn host_triple() -> String {
    let out = Command::new("rustc").arg("-vV").output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .unwrap()
}

fn dockerignore() -> DockerIgnore {
    DockerIgnore::parse(&read_repo_file(".dockerignore").unwrap())
}

#[test]
fn dockerignore_matching_follows_docker() {
    let ignore = DockerIgnore::parse("target\n**/target\n*.md\n!README.md\nexamples/*.sh\n");
    assert!(ignore.ignored(&["target", "release", "signet"]));
    assert!(ignore.ignored(&["crates", "signet", "target"]));
    assert!(ignore.ignored(&["NOTES.md"]));
    assert!(!ignore.ignored(&["README.md"]));
    // `*` stays within one component: only top-level Markdown is left out.
    assert!(!ignore.ignored(&["crates", "signet", "NOTES.md"]));
    assert!(ignore.ignored(&["examples", "demo.sh"]));
    assert!(!ignore.ignored(&["examples", "Cargo.toml"]));
}

#[test]
fn build_context_holds_a_complete_workspace() {
    let ignore = dockerignore();
    let root = repo_root();
    for needed in ["Cargo.toml", "Cargo.lock", "crates", "tests", "examples"] {
        assert!(!ignore.ignored(&[needed]), "{needed} must reach the build");
    }
    let context = tempfile::tempdir().unwrap();
    let copied = copy_context(&ignore, &root, &mut Vec::new(), context.path());
    assert!(copied > 10, "only {copied} files in the context");
    assert!(!context.path().join(".git").exists() && !context.path().join("target").exists());
    // What Cargo needs before it builds anything: every member's manifest and targets, the
    // lock file unchanged. Offline: this platform's dependencies are in the local registry
    // cache by now (the image is built for Linux too).
    let out = Command::new(cargo())
        .args(["metadata", "--locked", "--offline", "--format-version", "1"])
        .args(["--filter-platform", &host_triple()])
        .current_dir(context.path())
        .env("CARGO_TARGET_DIR", context.path().join("target"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo metadata --locked fails in the build context left by .dockerignore:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let members = metadata["workspace_members"].as_array().unwrap();
    let here = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| members.contains(&p["id"]))
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    for package in ["signet", "signet-examples", "signet-deploy-tests"] {
        assert!(
            here.iter().any(|p| p == package),
            "{package} not in {here:?}"
        );
    }
}

fn instructions(dockerfile: &str) -> Vec<String> {
    // Joins continuation lines so each instruction is one string.
    let mut out = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    out
}

#[test]
fn dockerfile_needs_no_buildkit() {
    let dockerfile = read_repo_file("Dockerfile").unwrap();
    // A `# syntax=` directive makes the builder fetch a BuildKit frontend; `--mount`,
    // heredocs and `--link`/`--chmod` need BuildKit. ACR Tasks runs none of them.
    assert!(
        !dockerfile.contains("syntax="),
        "no BuildKit frontend directive"
    );
    for step in instructions(&dockerfile) {
        for buildkit_only in [
            "--mount",
            "<<",
            "--link",
            "--chmod",
            "--parents",
            "--exclude",
        ] {
            assert!(
                !step.contains(buildkit_only),
                "BuildKit-only {buildkit_only} in: {step}"
            );
        }
    }
    // The commit reaches build.rs as a build argument (the context has no .git).
    assert!(dockerfile.contains("ARG SIGNET_GIT_COMMIT"));
    assert!(dockerfile.contains("SIGNET_GIT_COMMIT=\"$SIGNET_GIT_COMMIT\" cargo build"));
}

#[test]
fn local_dockerfile_builds_the_same_image_with_cache_mounts() {
    let plain = instructions(&read_repo_file("Dockerfile").unwrap());
    let local = instructions(&read_repo_file("Dockerfile.local").unwrap());
    assert!(local.iter().any(|s| s.contains("--mount=type=cache")));
    // Apart from the cache mounts, the same steps.
    let strip = |s: &String| {
        s.split_whitespace()
            .filter(|w| !w.starts_with("--mount="))
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        plain.iter().map(strip).collect::<Vec<_>>(),
        local.iter().map(strip).collect::<Vec<_>>()
    );
}

#[test]
fn dockerfile_builds_signet_and_runs_it_non_root_without_a_shell() {
    for file in ["Dockerfile", "Dockerfile.local"] {
        let dockerfile = read_repo_file(file).unwrap();
        let lines: Vec<&str> = dockerfile.lines().map(str::trim).collect();
        let from: Vec<&&str> = lines.iter().filter(|l| l.starts_with("FROM ")).collect();
        assert_eq!(from.len(), 2, "{file}: multi-stage: builder and final");
        assert!(from[0].starts_with("FROM rust:1-bookworm AS builder"));
        // distroless: no shell, CA certificates and glibc for the dynamically linked binary.
        assert_eq!(*from[1], "FROM gcr.io/distroless/cc-debian12:nonroot");
        assert!(dockerfile.contains("cargo build --release --locked -p signet"));
        assert!(lines.contains(&"USER 65532:65532"));
        assert_eq!(
            lines.iter().rfind(|l| l.starts_with("ENTRYPOINT")),
            Some(&r#"ENTRYPOINT ["/signet", "serve", "--config", "/etc/signet/config.yaml"]"#)
        );
    }
    // The chart's container passes the same command as args and runs as the same UID.
    let deployment = read_repo_file("charts/signet/templates/deployment.yaml").unwrap();
    assert!(deployment.contains("runAsUser: 65532"));
    assert!(deployment.contains("- /etc/signet/config.yaml"));
}

#[test]
fn release_script_pushes_the_versioned_image_and_the_chart() {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/release.sh"))
        .arg("registry.example/signet-project/")
        .env("DRY_RUN", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cargo = read_repo_file("Cargo.toml").unwrap();
    let version = cargo
        .split("[workspace.package]")
        .nth(1)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("version = "))
        .unwrap()
        .trim_matches('"');
    let commands: Vec<&str> = stdout.lines().filter(|l| l.starts_with("+ ")).collect();
    assert_eq!(commands.len(), 3, "{stdout}");
    assert!(commands[0].starts_with("+ docker buildx build --platform linux/amd64,linux/arm64"));
    assert!(commands[0].contains("--build-arg SIGNET_GIT_COMMIT="));
    assert!(commands[0].contains(&format!(
        "--tag registry.example/signet-project/signet:{version} --push ."
    )));
    assert!(commands[1].starts_with("+ helm package charts/signet --destination "));
    assert!(commands[2].starts_with("+ helm push "));
    assert!(commands[2].ends_with(&format!(
        "/signet-{version}.tgz oci://registry.example/signet-project/charts"
    )));
    // The image tag is the chart's default tag (appVersion).
    let chart = read_repo_file("charts/signet/Chart.yaml").unwrap();
    assert!(chart.contains(&format!("appVersion: \"{version}\"")));
    assert!(chart.contains(&format!("\nversion: {version}\n")));
}
