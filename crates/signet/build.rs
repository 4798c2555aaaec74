//! Records the commit `signet --version` prints, in `SIGNET_GIT_COMMIT` at compile time:
//! the variable `SIGNET_GIT_COMMIT` when set (the Docker build passes it as a build argument:
//! its context has no `.git`), else `git rev-parse HEAD` of this checkout, else "unknown".

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// Rebuild when HEAD moves (only files that exist: a missing one would rebuild every time).
fn watch_git() {
    let mut paths = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
        paths.push(reference);
    }
    for path in paths {
        if let Some(file) = git(&["rev-parse", "--path-format=absolute", "--git-path", &path]) {
            if Path::new(&file).is_file() {
                println!("cargo:rerun-if-changed={file}");
            }
        }
    }
}

fn main() {
    println!("cargo:rerun-if-env-changed=SIGNET_GIT_COMMIT");
    let from_env = std::env::var("SIGNET_GIT_COMMIT")
        .ok()
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty() && c != "unknown");
    let commit = match from_env {
        Some(commit) => commit,
        None => {
            watch_git();
            git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".to_owned())
        }
    };
    // Only a plain token reaches the version line.
    let commit: String = commit
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(64)
        .collect();
    println!("cargo:rustc-env=SIGNET_GIT_COMMIT={commit}");
}
