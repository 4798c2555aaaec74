//! `local-demo`: Signet end to end on one machine (see the library's documentation).
//!
//!     local-demo [--signet PATH] [--hold] [--bench-images N] [--cold-images N] [--log-level L]
//!
//! Exit status: 0 the answers were as expected (one image admitted, one denied, the Pod
//! denied because of the unsigned image); 1 they were not; 2 the set-up failed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use signet_examples::{signet_beside_current_exe, Demo, Options};

#[derive(Debug, Parser)]
#[command(
    name = "local-demo",
    about = "Signet end to end: a real registry, a signed and an unsigned image, signet serve, Gatekeeper-style calls"
)]
struct Cli {
    /// The signet binary (default: `signet` next to this program, e.g. target/release/signet).
    #[arg(long)]
    signet: Option<PathBuf>,
    /// Keep the registry and the server running after the calls, print the endpoints and
    /// certificate paths (for load tests), and stop on Ctrl-C / SIGTERM.
    #[arg(long)]
    hold: bool,
    /// Extra signed images `bench:0`…`bench:N-1` (default 50 with --hold, 0 without).
    #[arg(long)]
    bench_images: Option<usize>,
    /// Extra signed images `cold:0`…`cold:N-1`, never requested by the demo (default 20
    /// with --hold, 0 without).
    #[arg(long)]
    cold_images: Option<usize>,
    /// signet serve's log level (default: info; warn with --hold).
    #[arg(long)]
    log_level: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("local-demo: {e}");
            return ExitCode::from(2);
        }
    };
    rt.block_on(run(cli))
}

async fn run(cli: Cli) -> ExitCode {
    let Some(signet) = cli.signet.clone().or_else(signet_beside_current_exe) else {
        eprintln!(
            "local-demo: no signet binary next to this program; build it (cargo build --release -p signet) or pass --signet PATH"
        );
        return ExitCode::from(2);
    };
    let options = Options {
        signet,
        bench_images: cli.bench_images.unwrap_or(if cli.hold { 50 } else { 0 }),
        cold_images: cli.cold_images.unwrap_or(if cli.hold { 20 } else { 0 }),
        log_level: cli
            .log_level
            .clone()
            .unwrap_or_else(|| if cli.hold { "warn" } else { "info" }.into()),
    };
    println!("Signet local demo: a real registry, two images, signet serve, Gatekeeper's calls\n");
    let demo = match Demo::start(&options, &mut |line| println!("  {line}")).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("\nlocal-demo: set-up failed: {e:#}");
            return ExitCode::from(2);
        }
    };
    let report = match demo.gatekeeper_calls().await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("\nlocal-demo: calling signet serve failed: {e:#}");
            eprintln!(
                "signet serve log:\n{}",
                std::fs::read_to_string(&demo.files.serve_log).unwrap_or_default()
            );
            return ExitCode::from(1);
        }
    };
    print!("{}", report.render());
    let problems = report.problems();
    if problems.is_empty() {
        println!(
            "\nResult: as expected: {} admitted, {} denied (SIGNATURE_NOT_FOUND), the Pod running it refused.",
            demo.signed.reference, demo.unsigned.reference
        );
    } else {
        println!("\nResult: NOT as expected:");
        for p in &problems {
            println!("  - {p}");
        }
    }

    if cli.hold {
        hold(&demo).await;
    }
    drop(demo);
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

async fn hold(demo: &Demo) {
    let f = &demo.files;
    println!("\nHolding (Ctrl-C or SIGTERM stops everything):");
    println!("  signet serve     https://{} (mTLS; server name localhost or signet.signet-system.svc), pid {}", demo.serve.addr, demo.serve.pid());
    println!(
        "  probes, metrics  http://{}/readyz  http://{}/metrics",
        demo.serve.probes, demo.serve.probes
    );
    println!(
        "  registry         {} (user {})",
        demo.registry.url(),
        signet_examples::REGISTRY_USER
    );
    println!("  config           {}", f.config.display());
    println!("  trust policy     {}", f.trust_policy.display());
    println!("  trust store      {}", f.trust_store.display());
    println!("  docker config    {}", f.docker_config.display());
    println!("  registry CA      {}", f.registry_ca.display());
    println!("  server CA        {}", f.server_ca.display());
    println!(
        "  server cert/key  {} {}",
        f.server_cert.display(),
        f.server_key.display()
    );
    println!("  client CA        {}", f.client_ca.display());
    println!(
        "  client cert/key  {} {}",
        f.client_cert.display(),
        f.client_key.display()
    );
    println!("  serve log        {}", f.serve_log.display());
    let lt = format!(
        "signet-loadtest run --addr {} --ca {} --cert {} --key {}",
        demo.serve.addr,
        f.server_ca.display(),
        f.client_cert.display(),
        f.client_key.display()
    );
    if let Some((prefix, n)) = &demo.bench {
        println!(
            "  bench images     {prefix}:0 … {prefix}:{} (signed)",
            n - 1
        );
        println!("  load test        {lt} --image {prefix} --images {n} --keys 10");
    }
    if let Some((prefix, n)) = &demo.cold {
        println!(
            "  cold images      {prefix}:0 … {prefix}:{} (signed, never requested yet)",
            n - 1
        );
        println!("  cold latency     {lt} --image {prefix} --images {n} --connections 1 --keys 1 --requests {n} --warmup 0");
    }
    println!("READY");
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("local-demo: no SIGTERM handler ({e}); stopping now");
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    println!("stopping");
}
