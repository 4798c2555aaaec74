//! The engine against Debian's real `docker-registry` (TLS + htpasswd), reached through the
//! registry crate's programmable front (referrers API, stalls): verdicts, caching, trust
//! swaps, in-flight deduplication and deadlines. No timing asserts: round trips are counted.
#![allow(clippy::unwrap_used)]

// The registry harness (real docker-registry, push helpers) lives in the testkit.
use signet_testkit::registry as support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use signet_engine::{Engine, EngineConfig, TrustSnapshot};
use signet_notation::{Descriptor, ErrorCode};
use signet_registry::{Credential, DockerConfig, RegistryConfig};
use signet_testkit::{EnvelopeKind, KeyKind, LeafOptions, SignOptions, TestCa, TestSigner};
use support::front::{Action, Front, ReferrersMode, Rule};
use support::push::{PushedSignature, Pusher, SigStyle};
use support::registry::{Registry, RegistryAuth};
use support::tls::TestPki;
use tokio::time::Instant;

const USER: &str = "tester";
const PASS: &str = "s3cret-pass";

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(20)
}

fn basic() -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"))
    )
}

/// A registry, a referrers-capable front before it, a trusted CA with a signer, a trust
/// store and a policy naming the front's repositories.
struct Env {
    pki: TestPki,
    _reg: Registry,
    front: Front,
    pusher: Pusher,
    dir: tempfile::TempDir,
    signer: TestSigner,
    ca: TestCa,
}

impl Env {
    async fn start() -> Env {
        let pki = TestPki::new();
        let reg = Registry::start(
            &pki,
            RegistryAuth::Htpasswd {
                username: USER.into(),
                password: PASS.into(),
            },
        )
        .await;
        let front = Front::start(&reg.url(), pki.client_config(), ReferrersMode::default()).await;
        let pusher = Pusher::new(&reg.url(), pki.client_config(), Some(basic()));
        let ca = TestCa::new("Signet Engine Test CA", KeyKind::P256);
        let signer = ca.issue(&LeafOptions::new("engine signer", KeyKind::P256));
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store/x509/ca/test");
        std::fs::create_dir_all(&store).unwrap();
        std::fs::write(store.join("ca.pem"), ca.cert_pem()).unwrap();
        let other = TestCa::new("Some Other CA", KeyKind::P256);
        let store = dir.path().join("store/x509/ca/other");
        std::fs::create_dir_all(&store).unwrap();
        std::fs::write(store.join("ca.pem"), other.cert_pem()).unwrap();
        let env = Env {
            pki,
            _reg: reg,
            front,
            pusher,
            dir,
            signer,
            ca,
        };
        env.write_policy("policy.json", "test");
        env.write_policy("policy-other.json", "other");
        env
    }

    /// A policy whose `ca` store is `store`.
    fn write_policy(&self, file: &str, store: &str) {
        let h = &self.front.host;
        let policy = serde_json::json!({
            "version": "1.0",
            "trustPolicies": [
                {"name": "apps", "registryScopes": [format!("{h}/team/app"), format!("{h}/team/lies"), format!("{h}/team/slow")],
                 "signatureVerification": {"level": "strict"},
                 "trustStores": [format!("ca:{store}")], "trustedIdentities": ["*"]},
                {"name": "identity", "registryScopes": [format!("{h}/team/id")],
                 "signatureVerification": {"level": "strict"},
                 "trustStores": [format!("ca:{store}")],
                 "trustedIdentities": ["x509.subject: C=US, ST=WA, O=Signet Test, CN=somebody else"]},
                {"name": "skipped", "registryScopes": [format!("{h}/team/skipped")],
                 "signatureVerification": {"level": "skip"}}
            ]
        });
        std::fs::write(self.dir.path().join(file), policy.to_string()).unwrap();
    }

    fn trust(&self, file: &str, generation: u64) -> TrustSnapshot {
        TrustSnapshot::load(
            &self.dir.path().join(file),
            &self.dir.path().join("store"),
            generation,
        )
        .unwrap()
    }

    fn config(&self) -> EngineConfig {
        let mut registry = RegistryConfig::default();
        registry.allow_plain_http(&self.front.host);
        let mut dc = DockerConfig::default();
        dc.insert(
            &self.front.host,
            Credential::Basic {
                username: USER.into(),
                password: PASS.into(),
            },
        );
        registry.credentials = Arc::new(dc);
        EngineConfig {
            registry,
            ..EngineConfig::default()
        }
    }

    fn engine(&self) -> Engine {
        Engine::new(self.config(), self.trust("policy.json", 1)).unwrap()
    }

    fn reference(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.front.host)
    }

    async fn image(&self, repo: &str, tag: &str) -> Descriptor {
        self.pusher.image(repo, tag).await
    }

    /// Pushes a signature (referrers API on the front, tag schema on the registry).
    async fn sign_with(
        &self,
        repo: &str,
        subject: &Descriptor,
        listed_under: &Descriptor,
        envelope: Vec<u8>,
    ) -> PushedSignature {
        let pushed = self
            .pusher
            .signature_with_envelope(
                repo,
                subject,
                envelope,
                EnvelopeKind::Cose.media_type(),
                SigStyle::Current,
                false,
            )
            .await;
        self.front
            .add_referrer(repo, &listed_under.digest, pushed.entry());
        pushed
    }

    fn envelope(&self, signer: &TestSigner, subject: &Descriptor) -> Vec<u8> {
        signer.sign(&self.options(subject))
    }

    fn options(&self, subject: &Descriptor) -> SignOptions {
        SignOptions::new(
            EnvelopeKind::Cose,
            &subject.media_type,
            &subject.digest,
            subject.size,
        )
    }

    async fn sign(&self, repo: &str, subject: &Descriptor) -> PushedSignature {
        let env = self.envelope(&self.signer, subject);
        self.sign_with(repo, subject, subject, env).await
    }
}

fn code(v: &signet_engine::ImageVerdict) -> Option<ErrorCode> {
    v.error.as_ref().map(|e| e.code)
}

#[tokio::test]
async fn verdicts() {
    let env = Env::start().await;
    let engine = env.engine();
    assert!(engine.is_ready());
    assert_eq!(engine.trust_generation(), 1);

    // Signed by the trusted CA: verified.
    let signed = env.image("team/app", "signed").await;
    let sig = env.sign("team/app", &signed).await;
    let v = engine
        .verify(&env.reference("team/app:signed"), deadline())
        .await;
    assert!(v.verified, "{v:?}");
    assert_eq!(v.digest.as_deref(), Some(signed.digest.as_str()));
    assert_eq!(v.policy.as_deref(), Some("apps"));
    assert_eq!(v.level.as_deref(), Some("strict"));
    assert_eq!(v.signatures.len(), 1);
    assert_eq!(v.signatures[0].digest, sig.manifest.digest);
    assert_eq!(v.signatures[0].media_type, "application/cose");
    assert!(v.signatures[0].verified);
    assert!(v.signatures[0]
        .signer
        .as_deref()
        .unwrap()
        .contains("CN=engine signer"));
    assert!(v.error.is_none());
    assert_eq!(v.reference, env.reference("team/app:signed"));
    // The JSON shape of the contract.
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["signatures"][0]["mediaType"], "application/cose");
    assert!(json["error"].is_null());
    assert!(json.get("note").is_none());

    // By digest, same verdict.
    let by_digest = format!("{}/team/app@{}", env.front.host, signed.digest);
    assert!(engine.verify(&by_digest, deadline()).await.verified);

    // Unsigned.
    let unsigned = env.image("team/app", "unsigned").await;
    let v = engine
        .verify(&env.reference("team/app:unsigned"), deadline())
        .await;
    assert_eq!(code(&v), Some(ErrorCode::SignatureNotFound), "{v:?}");
    assert_eq!(v.digest.as_deref(), Some(unsigned.digest.as_str()));
    assert!(v.signatures.is_empty());

    // Signed by a CA the store does not hold.
    let untrusted = env.image("team/app", "untrusted").await;
    let stranger = TestCa::new("Stranger CA", KeyKind::P256)
        .issue(&LeafOptions::new("stranger", KeyKind::P256));
    let envelope = env.envelope(&stranger, &untrusted);
    env.sign_with("team/app", &untrusted, &untrusted, envelope)
        .await;
    let v = engine
        .verify(&env.reference("team/app:untrusted"), deadline())
        .await;
    assert_eq!(code(&v), Some(ErrorCode::UntrustedSigner), "{v:?}");

    // Several signatures, none verifies: the one that got furthest is reported
    // (a trusted but expired signature beats an untrusted one).
    let expired = env.image("team/app", "expired").await;
    let mut options = env.options(&expired);
    options.expiry = Some(rcgen::date_time_ymd(2025, 2, 1));
    let envelope = env.signer.sign(&options);
    let stranger_env = env.envelope(&stranger, &expired);
    env.sign_with("team/app", &expired, &expired, stranger_env)
        .await;
    env.sign_with("team/app", &expired, &expired, envelope)
        .await;
    let v = engine
        .verify(&env.reference("team/app:expired"), deadline())
        .await;
    assert_eq!(code(&v), Some(ErrorCode::SignatureExpired), "{v:?}");
    assert_eq!(v.signatures.len(), 2);
    assert_eq!(
        v.signatures[0].error.as_ref().unwrap().code,
        ErrorCode::UntrustedSigner
    );

    // Trusted CA, identity not in the statement's trusted identities.
    let id = env.image("team/id", "v1").await;
    env.sign("team/id", &id).await;
    let v = engine
        .verify(&env.reference("team/id:v1"), deadline())
        .await;
    assert_eq!(code(&v), Some(ErrorCode::UntrustedIdentity), "{v:?}");
    assert_eq!(v.policy.as_deref(), Some("identity"));

    // A tampered envelope (the signature's last byte flipped).
    let tampered = env.image("team/app", "tampered").await;
    let mut envelope = env.envelope(&env.signer, &tampered);
    let last = envelope.len() - 1;
    envelope[last] ^= 0x01;
    env.sign_with("team/app", &tampered, &tampered, envelope)
        .await;
    let v = engine
        .verify(&env.reference("team/app:tampered"), deadline())
        .await;
    assert_eq!(code(&v), Some(ErrorCode::SignatureInvalid), "{v:?}");

    // A registry that lists, as the only signature of an image, a signature manifest whose
    // subject is another image: SIGNATURE_INVALID, not SIGNATURE_NOT_FOUND.
    let lies = env.image("team/lies", "v1").await;
    let elsewhere = env.image("team/lies", "elsewhere").await;
    let envelope = env.envelope(&env.signer, &elsewhere);
    env.sign_with("team/lies", &elsewhere, &lies, envelope)
        .await;
    let v = engine
        .verify(&env.reference("team/lies:v1"), deadline())
        .await;
    assert_eq!(code(&v), Some(ErrorCode::SignatureInvalid), "{v:?}");
    assert!(
        v.error.as_ref().unwrap().message.contains("subject"),
        "{v:?}"
    );
    assert_eq!(v.signatures.len(), 1);

    // Level skip: verified without looking at signatures, digest from the registry.
    let skipped = env.image("team/skipped", "v1").await;
    let v = engine
        .verify(&env.reference("team/skipped:v1"), deadline())
        .await;
    assert!(v.verified, "{v:?}");
    assert_eq!(v.level.as_deref(), Some("skip"));
    assert_eq!(v.digest.as_deref(), Some(skipped.digest.as_str()));
    assert!(v.signatures.is_empty());

    // No statement for the repository; missing tag; malformed reference.
    let v = engine
        .verify(&env.reference("team/nopolicy:v1"), deadline())
        .await;
    assert_eq!(code(&v), Some(ErrorCode::NoTrustPolicy), "{v:?}");
    let v = engine
        .verify(&env.reference("team/app:missing"), deadline())
        .await;
    assert_eq!(code(&v), Some(ErrorCode::ArtifactNotFound), "{v:?}");
    let v = engine.verify("Not/A:Reference:x", deadline()).await;
    assert_eq!(code(&v), Some(ErrorCode::InvalidReference), "{v:?}");

    // Pin: tag kept, digest from the registry; a wrong digest is refused.
    let pinned = engine
        .pin(&env.reference("team/app:signed"), deadline())
        .await
        .unwrap();
    assert_eq!(
        pinned,
        format!("{}/team/app:signed@{}", env.front.host, signed.digest)
    );
    let pinned_again = engine.pin(&pinned, deadline()).await.unwrap();
    assert_eq!(pinned_again, pinned);
    let wrong = format!("{}/team/app:signed@{}", env.front.host, unsigned.digest);
    assert_eq!(
        engine.pin(&wrong, deadline()).await.unwrap(),
        format!("{}/team/app:signed@{}", env.front.host, unsigned.digest),
        "a digest reference is pinned to the digest it names when the registry serves it"
    );
    let missing = format!("{}/team/app@sha256:{}", env.front.host, "ab".repeat(32));
    let err = engine.pin(&missing, deadline()).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ArtifactNotFound, "{err:?}");

    let stats = engine.stats();
    assert!(stats.verified >= 3, "{stats:?}");
    assert_eq!(stats.failed.get(&ErrorCode::SignatureInvalid), Some(&2));
    assert!(stats.registry_requests > 0);
    assert!(stats.registry_latency.contains_key("resolve"));
    assert_eq!(stats.in_flight, 0);
}

#[tokio::test]
async fn user_metadata_is_required_when_configured() {
    let env = Env::start().await;
    let img = env.image("team/app", "meta").await;
    let mut options = env.options(&img);
    options.annotations = vec![("team".into(), "blue".into())];
    let envelope = env.signer.sign(&options);
    env.sign_with("team/app", &img, &img, envelope).await;
    let reference = env.reference("team/app:meta");

    let mut config = env.config();
    config.user_metadata = BTreeMap::from([("team".to_owned(), "blue".to_owned())]);
    let engine = Engine::new(config, env.trust("policy.json", 1)).unwrap();
    assert!(engine.verify(&reference, deadline()).await.verified);

    let mut config = env.config();
    config.user_metadata = BTreeMap::from([("team".to_owned(), "red".to_owned())]);
    let engine = Engine::new(config, env.trust("policy.json", 1)).unwrap();
    let v = engine.verify(&reference, deadline()).await;
    assert!(!v.verified, "{v:?}");
}

/// Round trips: one cold verification with a known challenge costs 4 (HEAD, referrers,
/// signature manifest, envelope); a second costs 0 (tag and verdict caches); a trust swap
/// drops both caches and re-verifies (4), and the new material decides.
#[tokio::test]
async fn caching_and_trust_swap() {
    let env = Env::start().await;
    let engine = env.engine();
    let warm = env.image("team/app", "warm").await;
    let signed = env.image("team/app", "v1").await;
    env.sign("team/app", &signed).await;
    let reference = env.reference("team/app:v1");

    // Learn the registry's challenge with another image first.
    let v = engine
        .verify(&env.reference("team/app:warm"), deadline())
        .await;
    assert_eq!(v.digest.as_deref(), Some(warm.digest.as_str()));

    let before = engine.stats().registry_requests;
    let v = engine.verify(&reference, deadline()).await;
    assert!(v.verified, "{v:?}");
    let cold = engine.stats().registry_requests - before;
    assert_eq!(cold, 4, "{:?}", env.front.seen());

    let before = engine.stats();
    let v = engine.verify(&reference, deadline()).await;
    assert!(v.verified, "{v:?}");
    let after = engine.stats();
    assert_eq!(after.registry_requests, before.registry_requests);
    assert_eq!(after.verdict_cache_hits, before.verdict_cache_hits + 1);
    assert_eq!(after.resolve_cache_hits, before.resolve_cache_hits + 1);

    // Failures are cached too (SIGNATURE_NOT_FOUND is not transient).
    let before = engine.stats().registry_requests;
    let warm_again = engine
        .verify(&env.reference("team/app:warm"), deadline())
        .await;
    assert_eq!(code(&warm_again), Some(ErrorCode::SignatureNotFound));
    assert_eq!(engine.stats().registry_requests, before);

    // New trust material: the CA is no longer in the store the policy names.
    engine.set_trust(env.trust("policy-other.json", 2));
    assert_eq!(engine.trust_generation(), 2);
    let before = engine.stats().registry_requests;
    let v = engine.verify(&reference, deadline()).await;
    assert_eq!(code(&v), Some(ErrorCode::UntrustedSigner), "{v:?}");
    // Resolutions are dropped with the verdicts: 4 round trips again.
    assert_eq!(engine.stats().registry_requests - before, 4);

    // And back.
    engine.set_trust(env.trust("policy.json", 3));
    assert!(engine.verify(&reference, deadline()).await.verified);

    // A policy naming a store that does not load gives a snapshot without it, which says so.
    env.write_policy("policy-broken.json", "nonexistent");
    let partial = TrustSnapshot::load(
        &env.dir.path().join("policy-broken.json"),
        &env.dir.path().join("store"),
        4,
    )
    .unwrap();
    assert_eq!(partial.load_errors().len(), 2);
    let reason = partial.incomplete_reason().unwrap();
    assert!(reason.contains("ca:nonexistent"), "{reason}");
    // An invalid policy is an error: the caller keeps what it has.
    std::fs::write(
        env.dir.path().join("policy-typo.json"),
        b"{\"version\": \"1.0\", \"trustPolicies\": [{\"name\": \"x\"}]}",
    )
    .unwrap();
    let err = TrustSnapshot::load(
        &env.dir.path().join("policy-typo.json"),
        &env.dir.path().join("store"),
        4,
    )
    .unwrap_err();
    assert!(err.to_string().contains("not valid"), "{err}");
    // The CLI's constructor tolerates it and says so.
    let doc = signet_notation::policy::parse_oci(
        &std::fs::read(env.dir.path().join("policy-broken.json")).unwrap(),
    )
    .unwrap();
    let tolerant = TrustSnapshot::from_document(doc, &env.dir.path().join("store"), 4);
    assert_eq!(tolerant.load_errors().len(), 2);
    let err =
        TrustSnapshot::load(Path::new("/nonexistent/policy.json"), Path::new("/"), 5).unwrap_err();
    assert!(err.to_string().contains("cannot read"), "{err}");
}

/// N concurrent verifications of one image share one run: one set of round trips.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_verifications_are_deduplicated() {
    let env = Env::start().await;
    let engine = Arc::new(env.engine());
    env.image("team/app", "warm").await;
    let signed = env.image("team/app", "v1").await;
    env.sign("team/app", &signed).await;
    engine
        .verify(&env.reference("team/app:warm"), deadline())
        .await;

    let before = engine.stats();
    let reference = env.reference("team/app:v1");
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let engine = engine.clone();
        let reference = reference.clone();
        tasks.push(tokio::spawn(async move {
            engine.verify(&reference, deadline()).await
        }));
    }
    for t in tasks {
        let v = t.await.unwrap();
        assert!(v.verified, "{v:?}");
    }
    let after = engine.stats();
    assert_eq!(
        after.registry_requests - before.registry_requests,
        4,
        "{:?}",
        env.front.seen()
    );
    assert_eq!(after.verdict_cache_misses - before.verdict_cache_misses, 1);
    assert_eq!(after.resolve_cache_misses - before.resolve_cache_misses, 1);
}

/// A registry that stalls: TIMEOUT at the deadline, not cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_registry_times_out() {
    let env = Env::start().await;
    let engine = env.engine();
    let signed = env.image("team/slow", "v1").await;
    env.sign("team/slow", &signed).await;
    let reference = env.reference("team/slow:v1");

    env.front.add_rule(Rule::new(
        Some(Method::GET),
        "/referrers/",
        1,
        Action::Stall,
    ));
    let v = engine
        .verify(&reference, Instant::now() + Duration::from_secs(2))
        .await;
    assert_eq!(code(&v), Some(ErrorCode::Timeout), "{v:?}");
    assert_eq!(v.digest.as_deref(), Some(signed.digest.as_str()));

    // A stalled HEAD: TIMEOUT without a digest; pin too.
    env.front
        .add_rule(Rule::new(None, "/manifests/v2", 10, Action::Stall));
    let v = engine
        .verify(
            &env.reference("team/slow:v2"),
            Instant::now() + Duration::from_secs(1),
        )
        .await;
    assert_eq!(code(&v), Some(ErrorCode::Timeout), "{v:?}");
    let err = engine
        .pin(
            &env.reference("team/slow:v2"),
            Instant::now() + Duration::from_secs(1),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Timeout);

    // Not cached: once the registry answers, the image verifies.
    env.front.clear_rules();
    let v = engine.verify(&reference, deadline()).await;
    assert!(v.verified, "{v:?}");
}

/// Serves whatever `crl` holds to every HTTP request; returns the URL.
async fn crl_server(crl: Arc<std::sync::Mutex<Vec<u8>>>) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let body = crl.lock().unwrap().clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(&body).await;
            });
        }
    });
    format!("http://{addr}/ca.crl")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_revocation() {
    let env = Env::start().await;
    let now = time::OffsetDateTime::now_utc();
    let (this, next) = (now - time::Duration::days(1), now + time::Duration::days(7));
    let crl = Arc::new(std::sync::Mutex::new(env.ca.crl(&[], this, next)));
    let url = crl_server(crl.clone()).await;

    let mut leaf = LeafOptions::new("revocable signer", KeyKind::P256);
    leaf.crl_url = Some(url.clone());
    let signer = env.ca.issue(&leaf);
    let image = env.image("team/app", "revocable").await;
    let envelope = env.envelope(&signer, &image);
    env.sign_with("team/app", &image, &image, envelope).await;
    let reference = env.reference("team/app:revocable");

    // Without online checking: unknown, enforced at the strict level.
    let v = env.engine().verify(&reference, deadline()).await;
    assert_eq!(code(&v), Some(ErrorCode::RevocationUnknown), "{v:?}");

    let online = || {
        let mut config = env.config();
        // The CRL server is on loopback, which revocation fetches may reach only when allowed.
        config.revocation = Some(signet_engine::revocation::RevocationConfig {
            network: signet_engine::revocation::RevocationNetworkPolicy::new(
                &["127.0.0.1/32".into()],
                &[],
            )
            .unwrap(),
            ..signet_engine::revocation::RevocationConfig::default()
        });
        Engine::new(config, env.trust("policy.json", 1)).unwrap()
    };
    // Not revoked.
    let v = online().verify(&reference, deadline()).await;
    assert!(v.verified, "{v:?}");

    // Revoked (a new engine: nothing cached).
    *crl.lock().unwrap() = env.ca.crl(&[&signer.chain[0]], this, next);
    let v = online().verify(&reference, deadline()).await;
    assert_eq!(code(&v), Some(ErrorCode::CertificateRevoked), "{v:?}");
    let message = &v.error.as_ref().unwrap().message;
    assert!(message.contains("CN=revocable signer"), "{message}");
    assert!(message.contains(&url), "{message}");
}

/// Trust removal takes effect: a store emptied on disk gives a new snapshot without it, the
/// engine is not ready and says why, cached verdicts are dropped, and the signature that
/// verified a moment ago is no longer trusted. Restoring the store restores both.
#[tokio::test]
async fn emptied_store_stops_being_trusted() {
    let env = Env::start().await;
    let engine = env.engine();
    let signed = env.image("team/app", "removal").await;
    env.sign("team/app", &signed).await;
    let reference = env.reference("team/app:removal");
    assert!(engine.verify(&reference, deadline()).await.verified);
    assert!(engine.is_ready());
    assert_eq!(engine.not_ready_reason(), None);

    let ca_file = env.dir.path().join("store/x509/ca/test/ca.pem");
    std::fs::remove_file(&ca_file).unwrap();
    engine.set_trust(env.trust("policy.json", 2));
    assert!(!engine.is_ready());
    let reason = engine.not_ready_reason().unwrap();
    assert!(reason.contains("ca:test"), "{reason}");
    let v = engine.verify(&reference, deadline()).await;
    assert_eq!(code(&v), Some(ErrorCode::UntrustedSigner), "{v:?}");

    // The directory itself gone: the same.
    std::fs::remove_dir(env.dir.path().join("store/x509/ca/test")).unwrap();
    engine.set_trust(env.trust("policy.json", 3));
    assert!(!engine.is_ready());
    let v = engine.verify(&reference, deadline()).await;
    assert_eq!(code(&v), Some(ErrorCode::UntrustedSigner), "{v:?}");

    // Restored.
    std::fs::create_dir_all(env.dir.path().join("store/x509/ca/test")).unwrap();
    std::fs::write(&ca_file, env.ca.cert_pem()).unwrap();
    engine.set_trust(env.trust("policy.json", 4));
    assert!(engine.is_ready());
    assert!(engine.verify(&reference, deadline()).await.verified);
}

/// Scope aliases: a reference written with another host case (or Docker Hub alias) selects
/// the statement of the name containerd pulls from, whichever way the policy writes it.
#[tokio::test]
async fn scope_aliases_select_the_same_statement() {
    let env = Env::start().await;
    let port = env.front.server.addr.port();
    let policy = serde_json::json!({
        "version": "1.0",
        "trustPolicies": [
            {"name": "alias", "registryScopes": [format!("LocalHost:{port}/team/alias")],
             "signatureVerification": {"level": "strict"},
             "trustStores": ["ca:test"], "trustedIdentities": ["*"]},
            {"name": "hub", "registryScopes": ["docker.io/nginx"],
             "signatureVerification": {"level": "strict"},
             "trustStores": ["ca:test"], "trustedIdentities": ["*"]}
        ]
    });
    std::fs::write(env.dir.path().join("policy-alias.json"), policy.to_string()).unwrap();
    let trust = env.trust("policy-alias.json", 1);
    for hub in [
        "nginx:1.27",
        "docker.io/nginx",
        "index.docker.io/library/nginx",
        "registry-1.docker.io/nginx@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        "Index.Docker.io:443/nginx",
    ] {
        let r = signet_registry::Reference::parse(hub).unwrap();
        assert_eq!(trust.select(&r).unwrap().name, "hub", "{hub}");
    }

    let mut config = env.config();
    let host = format!("localhost:{port}");
    config.registry.allow_plain_http(&host);
    let mut dc = DockerConfig::default();
    dc.insert(
        &host,
        Credential::Basic {
            username: USER.into(),
            password: PASS.into(),
        },
    );
    config.registry.credentials = Arc::new(dc);
    let engine = Engine::new(config, trust).unwrap();
    let signed = env.image("team/alias", "v1").await;
    env.sign("team/alias", &signed).await;
    for written in [
        format!("localhost:{port}/team/alias:v1"),
        format!("LOCALHOST:{port}/team/alias:v1"),
    ] {
        let v = engine.verify(&written, deadline()).await;
        assert!(v.verified, "{written}: {v:?}");
        assert_eq!(v.policy.as_deref(), Some("alias"), "{written}");
    }
    // Another repository on the same host is not covered.
    let v = engine
        .verify(&format!("localhost:{port}/team/other:v1"), deadline())
        .await;
    assert_eq!(code(&v), Some(ErrorCode::NoTrustPolicy), "{v:?}");
}

/// Signatures are fetched and verified one at a time in discovery order, stopping at the
/// first that verifies; when none does, every one is examined and the code is the one of
/// the signature that got furthest.
#[tokio::test]
async fn signatures_one_at_a_time_until_one_verifies() {
    let env = Env::start().await;
    let engine = env.engine();
    let stranger = TestCa::new("Stranger CA", KeyKind::P256)
        .issue(&LeafOptions::new("stranger", KeyKind::P256));

    let image = env.image("team/app", "many").await;
    env.sign("team/app", &image).await;
    for _ in 0..3 {
        let envelope = env.envelope(&stranger, &image);
        env.sign_with("team/app", &image, &image, envelope).await;
    }
    env.front.clear_seen();
    let v = engine
        .verify(&env.reference("team/app:many"), deadline())
        .await;
    assert!(v.verified, "{v:?}");
    let blobs = env
        .front
        .seen()
        .iter()
        .filter(|s| s.path.contains("/blobs/"))
        .count();
    assert_eq!(blobs, 1, "envelopes fetched after one verified");
    assert_eq!(v.signatures.len(), 1);

    // None verifies: a tampered envelope (integrity), then an untrusted signer (got further).
    let image = env.image("team/app", "none").await;
    let tampered = env.sign("team/app", &image).await;
    env.front.add_rule(Rule::new(
        None,
        &format!("/blobs/{}", tampered.envelope_digest),
        1,
        Action::Corrupt,
    ));
    let envelope = env.envelope(&stranger, &image);
    env.sign_with("team/app", &image, &image, envelope).await;
    env.front.clear_seen();
    let v = engine
        .verify(&env.reference("team/app:none"), deadline())
        .await;
    assert_eq!(code(&v), Some(ErrorCode::UntrustedSigner), "{v:?}");
    assert_eq!(v.signatures.len(), 2);
    assert_eq!(
        v.signatures[0].error.as_ref().map(|e| e.code),
        Some(ErrorCode::SignatureInvalid)
    );
}

/// A hostile registry announcing a 32 MiB envelope and stalling on it holds the whole
/// process-wide envelope budget: another verification waits for memory (TIMEOUT at its
/// deadline, not cached) instead of adding its envelope on top; once the hostile one gives
/// up, the other verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelope_memory_is_budgeted_process_wide() {
    let env = Env::start().await;
    let mut config = env.config();
    config.max_envelope_bytes_in_flight = signet_registry::MAX_ENVELOPE_BYTES;
    let engine = Arc::new(Engine::new(config, env.trust("policy.json", 1)).unwrap());
    let good = env.image("team/app", "good").await;
    env.sign("team/app", &good).await;
    let hostile = env.image("team/app", "hostile").await;
    let blob = env.front.add_phantom_signature(
        "team/app",
        &hostile,
        &format!("sha256:{}", "ee".repeat(32)),
        signet_registry::MAX_ENVELOPE_BYTES,
    );
    env.front.add_rule(Rule::new(
        Some(Method::GET),
        &blob,
        usize::MAX,
        Action::Stall,
    ));

    let hostile_run = {
        let engine = engine.clone();
        let reference = env.reference("team/app:hostile");
        tokio::spawn(async move {
            engine
                .verify(&reference, Instant::now() + Duration::from_secs(4))
                .await
        })
    };
    let mut stalled = false;
    for _ in 0..100 {
        if env.front.seen().iter().any(|s| s.path.contains(&blob)) {
            stalled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(stalled, "the hostile envelope was never asked for");

    let v = engine
        .verify(
            &env.reference("team/app:good"),
            Instant::now() + Duration::from_secs(1),
        )
        .await;
    assert_eq!(code(&v), Some(ErrorCode::Timeout), "{v:?}");
    assert!(
        v.error.as_ref().unwrap().message.contains("memory"),
        "{v:?}"
    );

    let v = hostile_run.await.unwrap();
    assert_eq!(code(&v), Some(ErrorCode::Timeout), "{v:?}");
    let v = engine
        .verify(&env.reference("team/app:good"), deadline())
        .await;
    assert!(v.verified, "{v:?}");
}

/// A registry that answers Signet (recognised by its `User-Agent`) with the signed image and
/// every other client (a node's container runtime) with another, for the same tag. Signet
/// cannot tell from its own requests; the defence is pinning: the mutation answer names the
/// digest that was verified, the node then pulls by that digest, and the other content, asked
/// for by digest, is not verified.
#[tokio::test]
async fn a_registry_answering_clients_differently_is_defeated_by_pinning() {
    let env = Env::start().await;
    let engine = env.engine();
    let tag = format!("moving-{}", support::push::unique());
    let signed = env.image("team/app", &tag).await;
    env.sign("team/app", &signed).await;
    let other = env
        .image("team/app", &format!("other-{}", support::push::unique()))
        .await;
    for method in [Method::HEAD, Method::GET] {
        env.front.add_rule(
            Rule::new(
                Some(method),
                &format!("/v2/team/app/manifests/{tag}"),
                usize::MAX,
                Action::Respond {
                    status: 200,
                    headers: vec![
                        ("Docker-Content-Digest", other.digest.clone()),
                        ("Content-Type", other.media_type.clone()),
                    ],
                    body: Vec::new(),
                },
            )
            .except_user_agent("signet/"),
        );
    }
    let image = env.reference(&format!("team/app:{tag}"));

    // A node asking for the tag is told about the other content...
    let node = support::http::send(
        &env.pki.client_config(),
        Method::HEAD,
        &format!("{}/v2/team/app/manifests/{tag}", env.front.url()),
        &[
            ("User-Agent", "containerd/2.0".to_owned()),
            ("Authorization", basic()),
        ],
        Vec::new(),
    )
    .await;
    assert_eq!(
        node.headers["docker-content-digest"].to_str().unwrap(),
        other.digest
    );

    // ...while Signet verifies the signed image behind the same tag.
    let v = engine.verify(&image, deadline()).await;
    assert!(v.verified, "{v:?}");
    assert_eq!(v.digest.as_deref(), Some(signed.digest.as_str()));

    // The mutation pins the verified digest, so the node pulls what was verified.
    let pinned = engine.pin(&image, deadline()).await.unwrap();
    assert_eq!(pinned, format!("{image}@{}", signed.digest));
    assert!(engine.verify(&pinned, deadline()).await.verified);

    // The content the node was told about, named by digest, is not admitted.
    let v = engine
        .verify(
            &format!("{}/team/app@{}", env.front.host, other.digest),
            deadline(),
        )
        .await;
    assert_eq!(code(&v), Some(ErrorCode::SignatureNotFound), "{v:?}");
}
