//! The README's demo end to end: the real `docker-registry`, the `signet` binary (the debug
//! build of this workspace), the Gatekeeper-style calls; the outcome must be as expected.
//!
//! A test cannot name another package's binary (`CARGO_BIN_EXE_signet` is only set for
//! `signet`'s own tests), so this one asks cargo to build `signet` into the same target
//! directory first: a no-op when `cargo test --workspace` already built it, and what makes
//! `cargo test -p signet-examples` work on a fresh clone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use signet_examples::{Demo, Options};

/// `target/<profile>/signet`, built by cargo if needed.
fn signet_binary() -> PathBuf {
    // target/<profile>/deps/demo-HASH
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let target_dir = profile_dir.parent().unwrap().to_path_buf();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(workspace)
        .args(["build", "-p", "signet", "--bin", "signet"])
        .env("CARGO_TARGET_DIR", &target_dir);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("running cargo build -p signet");
    assert!(status.success(), "cargo build -p signet failed");
    let signet = profile_dir.join("signet");
    assert!(
        signet.is_file(),
        "{} missing after the build",
        signet.display()
    );
    signet
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_demo_admits_the_signed_image_and_denies_the_unsigned_one() {
    let signet = tokio::task::spawn_blocking(signet_binary).await.unwrap();
    let mut options = Options::new(signet);
    options.cold_images = 2;
    let mut lines = Vec::new();
    let demo = Demo::start(&options, &mut |l| lines.push(l.to_owned()))
        .await
        .unwrap();
    assert!(
        lines.iter().any(|l| l.contains("/readyz 200")),
        "{lines:#?}"
    );
    let report = demo.gatekeeper_calls().await.unwrap();
    let problems = report.problems();
    assert!(
        problems.is_empty(),
        "{problems:#?}\n{}\nserve log:\n{}",
        report.render(),
        std::fs::read_to_string(&demo.files.serve_log).unwrap_or_default()
    );
    let text = report.render();
    assert!(
        text.contains(&format!("ADMITTED  {}", demo.signed.reference)),
        "{text}"
    );
    assert!(
        text.contains(&format!("DENIED    {}", demo.unsigned.reference)),
        "{text}"
    );
    assert!(text.contains("SIGNATURE_NOT_FOUND"), "{text}");
    assert!(
        text.contains(&format!("{}@{}", demo.signed.reference, demo.signed.digest)),
        "{text}"
    );

    // A cold image the demo never asked about verifies too (the extra images are in scope).
    let (prefix, _) = demo.cold.clone().unwrap();
    let mut conn =
        signet_examples::Connection::open(demo.serve.addr, demo.gatekeeper_tls().unwrap())
            .await
            .unwrap();
    let key = format!("{prefix}:1");
    let v = conn
        .post("/v1/verify", &signet_examples::provider_request(&[&key]))
        .await
        .unwrap();
    assert_eq!(v["response"]["items"][0]["value"]["verified"], true, "{v}");

    // Dropping the demo stops signet serve and the registry.
    let pid = demo.serve.pid();
    drop(demo);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "signet serve {pid} still running"
    );
}
