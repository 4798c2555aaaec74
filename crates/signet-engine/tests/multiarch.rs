//! Multi-arch images against Debian's real `docker-registry` (through the referrers-capable
//! front): an image index verified by its own signature, or per platform manifest as the
//! statement's multi-arch option asks, and a platform manifest referenced directly.
#![allow(clippy::unwrap_used)]

use signet_testkit::registry as support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use signet_engine::{
    Engine, EngineConfig, ImageVerdict, MultiArchMode, MultiArchPolicy, TrustSnapshot,
};
use signet_notation::{Descriptor, ErrorCode};
use signet_registry::{Credential, DockerConfig, RegistryConfig};
use signet_testkit::{EnvelopeKind, KeyKind, LeafOptions, SignOptions, TestCa, TestSigner};
use support::front::{Front, ReferrersMode};
use support::push::{unique, Pusher, SigStyle, OCI_INDEX, OCI_MANIFEST};
use support::registry::{Registry, RegistryAuth};
use support::tls::TestPki;
use tokio::time::Instant;

const USER: &str = "tester";
const PASS: &str = "s3cret-pass";

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(20)
}

struct Env {
    _pki: TestPki,
    _reg: Registry,
    front: Front,
    pusher: Pusher,
    dir: tempfile::TempDir,
    signer: TestSigner,
}

/// A multi-arch image: the index and its platform manifests.
struct MultiArch {
    index: Descriptor,
    amd64: Descriptor,
    arm64: Descriptor,
}

impl Env {
    async fn start() -> Env {
        use base64::Engine as _;
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
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"))
        );
        let pusher = Pusher::new(&reg.url(), pki.client_config(), Some(basic));
        let ca = TestCa::new("Signet Multi-Arch Test CA", KeyKind::P256);
        let signer = ca.issue(&LeafOptions::new("multi-arch signer", KeyKind::P256));
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store/x509/ca/test");
        std::fs::create_dir_all(&store).unwrap();
        std::fs::write(store.join("ca.pem"), ca.cert_pem()).unwrap();
        let h = &front.host;
        let statement = |name: &str| {
            json!({"name": name, "registryScopes": [format!("{h}/multi/{name}")],
                   "signatureVerification": {"level": "strict"},
                   "trustStores": ["ca:test"], "trustedIdentities": ["*"]})
        };
        let policy = json!({"version": "1.0", "trustPolicies": [
            statement("index"), statement("platforms"), statement("either"), statement("amd64only")
        ]});
        std::fs::write(dir.path().join("policy.json"), policy.to_string()).unwrap();
        Env {
            _pki: pki,
            _reg: reg,
            front,
            pusher,
            dir,
            signer,
        }
    }

    fn engine(&self) -> Engine {
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
        let policy = |mode, platforms: &[&str]| MultiArchPolicy {
            mode,
            platforms: platforms.iter().map(|p| (*p).to_owned()).collect(),
        };
        let multi_arch = BTreeMap::from([
            ("index".to_owned(), policy(MultiArchMode::Index, &[])),
            (
                "platforms".to_owned(),
                policy(MultiArchMode::Platforms, &[]),
            ),
            (
                "either".to_owned(),
                policy(MultiArchMode::IndexOrPlatforms, &[]),
            ),
            (
                "amd64only".to_owned(),
                policy(MultiArchMode::Platforms, &["linux/amd64"]),
            ),
        ]);
        let trust = TrustSnapshot::load(
            &self.dir.path().join("policy.json"),
            &self.dir.path().join("store"),
            1,
        )
        .unwrap();
        Engine::new(
            EngineConfig {
                registry,
                multi_arch,
                ..EngineConfig::default()
            },
            trust,
        )
        .unwrap()
    }

    async fn platform_image(&self, repo: &str, arch: &str) -> Descriptor {
        let layer = format!("layer {arch} {}", unique()).into_bytes();
        let config = json!({"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}, "created_by": unique()}).to_string().into_bytes();
        let layer_digest = self.pusher.blob(repo, &layer).await;
        let config_digest = self.pusher.blob(repo, &config).await;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
        });
        let bytes = serde_json::to_vec(&manifest).unwrap();
        self.pusher.manifest(repo, "", OCI_MANIFEST, &bytes).await
    }

    /// Pushes `repo:tag` as an index of linux/amd64, linux/arm64 and an (unsigned)
    /// attestation manifest, which no mode asks to be signed.
    async fn multi_arch(&self, repo: &str, tag: &str) -> MultiArch {
        let amd64 = self.platform_image(repo, "amd64").await;
        let arm64 = self.platform_image(repo, "arm64").await;
        let attestation = self.platform_image(repo, "attestation").await;
        let entry = |d: &Descriptor, platform: serde_json::Value| json!({"mediaType": d.media_type, "digest": d.digest, "size": d.size, "platform": platform});
        let mut att = entry(
            &attestation,
            json!({"os": "unknown", "architecture": "unknown"}),
        );
        att["annotations"] = json!({"vnd.docker.reference.type": "attestation-manifest",
                                    "vnd.docker.reference.digest": amd64.digest});
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            entry(&amd64, json!({"os": "linux", "architecture": "amd64"})),
            entry(&arm64, json!({"os": "linux", "architecture": "arm64", "variant": "v8"})),
            att,
        ]});
        let bytes = serde_json::to_vec(&index).unwrap();
        let index = self.pusher.manifest(repo, tag, OCI_INDEX, &bytes).await;
        MultiArch {
            index,
            amd64,
            arm64,
        }
    }

    async fn sign(&self, repo: &str, subject: &Descriptor) {
        let envelope = self.signer.sign(&SignOptions::new(
            EnvelopeKind::Cose,
            &subject.media_type,
            &subject.digest,
            subject.size,
        ));
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
            .add_referrer(repo, &subject.digest, pushed.entry());
    }

    fn reference(&self, repo: &str, tag: &str) -> String {
        format!("{}/{repo}:{tag}", self.front.host)
    }
}

/// The manifests whose verified signatures decided.
fn deciding(v: &ImageVerdict) -> Vec<String> {
    v.signatures
        .iter()
        .filter(|s| s.verified)
        .map(|s| s.manifest.clone().unwrap_or_default())
        .collect()
}

fn code(v: &ImageVerdict) -> Option<ErrorCode> {
    v.error.as_ref().map(|e| e.code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_index_verified_by_index_or_platform_signatures() {
    let env = Env::start().await;
    let engine = env.engine();

    // Mode index (the default): the index's own signature decides.
    let repo = "multi/index";
    let img = env.multi_arch(repo, "v1").await;
    let v = engine.verify(&env.reference(repo, "v1"), deadline()).await;
    assert_eq!(code(&v), Some(ErrorCode::SignatureNotFound), "{v:?}");
    env.sign(repo, &img.index).await;
    let engine = env.engine();
    let v = engine.verify(&env.reference(repo, "v1"), deadline()).await;
    assert!(v.verified, "{v:?}");
    assert_eq!(deciding(&v), vec![img.index.digest.clone()]);

    // Mode platforms: the index's signature is not enough; every platform must be signed.
    let repo = "multi/platforms";
    let img = env.multi_arch(repo, "v1").await;
    env.sign(repo, &img.index).await;
    env.sign(repo, &img.amd64).await;
    let v = engine.verify(&env.reference(repo, "v1"), deadline()).await;
    assert!(!v.verified, "{v:?}");
    assert_eq!(code(&v), Some(ErrorCode::SignatureNotFound));
    let message = &v.error.as_ref().unwrap().message;
    assert!(message.contains("linux/arm64/v8"), "{message}");
    assert!(message.contains(&img.arm64.digest), "{message}");
    assert_eq!(v.digest.as_deref(), Some(img.index.digest.as_str()));
    assert_eq!(v.policy.as_deref(), Some("platforms"));

    env.sign(repo, &img.arm64).await;
    let engine = env.engine();
    let v = engine.verify(&env.reference(repo, "v1"), deadline()).await;
    assert!(v.verified, "{v:?}");
    assert_eq!(
        deciding(&v),
        vec![img.amd64.digest.clone(), img.arm64.digest.clone()]
    );
    assert_eq!(v.digest.as_deref(), Some(img.index.digest.as_str()));
    // The answer carries the manifest that decided for each signature.
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["signatures"][0]["manifest"], img.amd64.digest.as_str());
    assert_eq!(json["signatures"][0]["format"], "notation");

    // A platform manifest referenced directly is verified by its own signature.
    let direct = format!("{}/{repo}@{}", env.front.host, img.arm64.digest);
    let v = engine.verify(&direct, deadline()).await;
    assert!(v.verified, "{v:?}");
    assert_eq!(deciding(&v), vec![img.arm64.digest.clone()]);
    let unsigned_repo = "multi/index";
    let other = env.multi_arch(unsigned_repo, "v2").await;
    let direct = format!("{}/{unsigned_repo}@{}", env.front.host, other.amd64.digest);
    let v = engine.verify(&direct, deadline()).await;
    assert_eq!(code(&v), Some(ErrorCode::SignatureNotFound), "{v:?}");

    // Mode indexOrPlatforms: the index's signature, else every platform's.
    let repo = "multi/either";
    let img = env.multi_arch(repo, "v1").await;
    env.sign(repo, &img.amd64).await;
    let v = engine.verify(&env.reference(repo, "v1"), deadline()).await;
    assert_eq!(code(&v), Some(ErrorCode::SignatureNotFound), "{v:?}");
    let message = &v.error.as_ref().unwrap().message;
    assert!(
        message.contains("has no valid signature of its own") && message.contains("linux/arm64"),
        "{message}"
    );
    env.sign(repo, &img.arm64).await;
    let engine = env.engine();
    let v = engine.verify(&env.reference(repo, "v1"), deadline()).await;
    assert!(v.verified, "{v:?}");
    assert_eq!(
        deciding(&v),
        vec![img.amd64.digest.clone(), img.arm64.digest.clone()]
    );
    let img2 = env.multi_arch(repo, "v2").await;
    env.sign(repo, &img2.index).await;
    let v = engine.verify(&env.reference(repo, "v2"), deadline()).await;
    assert!(v.verified, "{v:?}");
    assert_eq!(deciding(&v), vec![img2.index.digest.clone()]);

    // A platform filter: only linux/amd64 must be signed.
    let repo = "multi/amd64only";
    let img = env.multi_arch(repo, "v1").await;
    let v = engine.verify(&env.reference(repo, "v1"), deadline()).await;
    let message = &v.error.as_ref().unwrap().message;
    assert!(
        message.contains("linux/amd64") && message.contains(&img.amd64.digest),
        "{message}"
    );
    env.sign(repo, &img.amd64).await;
    let engine = env.engine();
    let v = engine.verify(&env.reference(repo, "v1"), deadline()).await;
    assert!(v.verified, "{v:?}");
    assert_eq!(deciding(&v), vec![img.amd64.digest.clone()]);
}
