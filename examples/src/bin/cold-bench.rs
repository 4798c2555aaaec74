//! `cold-bench`: cold verifications against the real registry under added network latency.
//!
//!     cold-bench [--rtt-ms 0,5,20] [--images 50] [--repeat 3]
//!
//! Starts Debian's `docker-registry` (TLS, no auth: the registry's own cost per request stays
//! small, so what is measured is round trips; signatures found through the tag-schema index,
//! as distribution 2.8 has no referrers API), pushes `images` + 1 signed images (Notation
//! COSE, RSA-3072), and for each added round-trip time puts a [`DelayFront`] before it. Per RTT and repetition, a new engine
//! (empty caches) first verifies a primer image (connection pool, the registry's referrers
//! support learned: what a running service already has), then, measured:
//! - **1 image**: one never-verified image;
//! - **N images**: N distinct never-verified images at once (as one `ProviderRequest` of N
//!   keys asks: the server verifies a request's keys concurrently).
//!
//! Prints one JSON line per measurement (wall time, registry round trips) and a summary line
//! per RTT with the ratio N-images / 1-image (the target: ≤ 2 at 20 ms).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use signet_engine::{Engine, EngineConfig, TrustSnapshot};
use signet_examples::delay::DelayFront;
use signet_registry::RegistryConfig;
use signet_testkit::registry::registry::available;
use signet_testkit::registry::tls::TestPki;
use signet_testkit::registry::{Pusher, Registry, RegistryAuth, SigStyle};
use signet_testkit::{EnvelopeKind, KeyKind, LeafOptions, TestCa};

#[derive(Debug, Parser)]
#[command(
    name = "cold-bench",
    about = "Cold verifications under added network latency"
)]
struct Cli {
    /// Added round-trip times, milliseconds.
    #[arg(long, value_delimiter = ',', default_value = "0,5,20")]
    rtt_ms: Vec<u64>,
    /// Distinct images verified at once.
    #[arg(long, default_value_t = 50)]
    images: usize,
    /// Repetitions per RTT (the median is summarised).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if !available() {
        bail!("docker-registry is not installed: run `bash .ci/install-deps`");
    }
    let pki = TestPki::new();
    let registry = Registry::start(&pki, RegistryAuth::None).await;
    let pusher = Pusher::new(&registry.url(), pki.client_config(), None);
    let ca = TestCa::new("cold-bench CA", KeyKind::Rsa3072);
    let signer = ca.issue(&LeafOptions::new("cold-bench signer", KeyKind::Rsa3072));
    let tags: Vec<String> = std::iter::once("primer".to_owned())
        .chain((0..=cli.images).map(|i| i.to_string()))
        .collect();
    for tag in &tags {
        let desc = pusher.image("cold", tag).await;
        pusher
            .signature(
                "cold",
                &desc,
                &signer,
                EnvelopeKind::Cose,
                SigStyle::Current,
                true,
            )
            .await;
    }
    let dir = tempfile::tempdir()?;
    let store = dir.path().join("store/x509/ca/bench");
    std::fs::create_dir_all(&store)?;
    std::fs::write(store.join("ca.pem"), ca.cert_pem())?;
    let policy = dir.path().join("policy.json");
    std::fs::write(
        &policy,
        serde_json::json!({"version": "1.0", "trustPolicies": [{
            "name": "bench", "registryScopes": ["*"],
            "signatureVerification": {"level": "strict"},
            "trustStores": ["ca:bench"], "trustedIdentities": ["*"]}]})
        .to_string(),
    )?;
    let upstream: std::net::SocketAddr = registry.host.parse().context("registry address")?;
    let registry_ca = rustls_pki_types::CertificateDer::from(pki.ca_der.clone());
    println!(
        "{{\"machine\":{:?},\"images\":{},\"repeat\":{}}}",
        machine(),
        cli.images,
        cli.repeat
    );
    for rtt in &cli.rtt_ms {
        let delay = DelayFront::start(upstream, Duration::from_millis(*rtt)).await?;
        let mut one = Vec::new();
        let mut many = Vec::new();
        for _ in 0..cli.repeat.max(1) {
            let engine = engine(&registry_ca, &policy, &dir.path().join("store"))?;
            let r = |tag: &str| format!("{}/cold:{tag}", delay.host);
            let deadline = || tokio::time::Instant::now() + Duration::from_secs(30);
            let primer = engine.verify(&r("primer"), deadline()).await;
            if !primer.verified {
                bail!("the primer image did not verify: {:?}", primer.error);
            }
            let (wall, trips, failed) = timed(&engine, vec![r("0")]).await;
            print_line(*rtt, 1, wall, trips, failed);
            one.push((wall, trips));
            let refs = (1..=cli.images).map(|i| r(&i.to_string())).collect();
            let (wall, trips, failed) = timed(&engine, refs).await;
            print_line(*rtt, cli.images, wall, trips, failed);
            many.push((wall, trips));
        }
        let median = |v: &mut Vec<(Duration, u64)>| {
            v.sort();
            v[v.len() / 2]
        };
        let (o, m) = (median(&mut one), median(&mut many));
        println!(
            "{{\"summary\":true,\"rttMs\":{rtt},\"oneImageMs\":{:.1},\"oneImageRoundTrips\":{},\"manyImages\":{},\"manyImagesMs\":{:.1},\"manyImagesRoundTrips\":{},\"ratio\":{:.2}}}",
            o.0.as_secs_f64() * 1000.0,
            o.1,
            cli.images,
            m.0.as_secs_f64() * 1000.0,
            m.1,
            m.0.as_secs_f64() / o.0.as_secs_f64().max(1e-9)
        );
    }
    Ok(())
}

fn engine(
    registry_ca: &rustls_pki_types::CertificateDer<'static>,
    policy: &Path,
    store: &Path,
) -> anyhow::Result<Arc<Engine>> {
    let mut registry = RegistryConfig::default();
    registry.extra_roots.push(registry_ca.clone());
    let trust = TrustSnapshot::load(policy, store, 1)?;
    Ok(Arc::new(Engine::new(
        EngineConfig {
            registry,
            ..EngineConfig::default()
        },
        trust,
    )?))
}

/// Verifies `refs` at once; wall time, registry round trips, how many did not verify.
async fn timed(engine: &Arc<Engine>, refs: Vec<String>) -> (Duration, u64, usize) {
    let before = engine.stats().registry_requests;
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut set = tokio::task::JoinSet::new();
    for r in refs {
        let engine = engine.clone();
        set.spawn(async move { engine.verify(&r, deadline).await.verified });
    }
    let mut failed = 0;
    while let Some(v) = set.join_next().await {
        if !matches!(v, Ok(true)) {
            failed += 1;
        }
    }
    let wall = started.elapsed();
    let trips = engine.stats().registry_requests - before;
    (wall, trips, failed)
}

fn print_line(rtt: u64, images: usize, wall: Duration, trips: u64, failed: usize) {
    println!(
        "{{\"rttMs\":{rtt},\"images\":{images},\"wallMs\":{:.1},\"registryRoundTrips\":{trips},\"notVerified\":{failed}}}",
        wall.as_secs_f64() * 1000.0
    );
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}")
}
