//! Docker Content Trust through the engine, against the real Notary v1 server (tags published
//! with the real `notary` client) and Debian's real `docker-registry`: a tag Notation does not
//! verify is admitted by DCT while the migration window is open, and no longer once it ends;
//! Notation is preferred; digests, other repositories and mismatched tags are not admitted.
#![allow(clippy::unwrap_used)]

// The Notary server and client harness of signet-dct's own tests.
#[path = "../../signet-dct/tests/common/mod.rs"]
mod common;

use signet_testkit::registry as support;

use std::sync::Arc;
use std::time::Duration;

use common::Notary;
use serde_json::json;
use signet_dct::{DctConfig, DctVerifier, ProxySettings, RepositoryConfig};
use signet_engine::{Engine, EngineConfig, ImageVerdict, SignatureFormat, TrustSnapshot};
use signet_notation::ErrorCode;
use signet_registry::{Credential, DockerConfig, RegistryConfig};
use signet_testkit::{EnvelopeKind, KeyKind, LeafOptions, SignOptions, TestCa, TestSigner};
use support::front::{Front, ReferrersMode};
use support::push::{Pusher, SigStyle};
use support::registry::{Registry, RegistryAuth};
use support::tls::TestPki;
use tokio::time::Instant;

const USER: &str = "tester";
const PASS: &str = "s3cret-pass";

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

struct Env {
    notary: Notary,
    _pki: TestPki,
    _reg: Registry,
    front: Front,
    pusher: Pusher,
    dir: tempfile::TempDir,
    signer: TestSigner,
    root_key: String,
    client: common::Client,
}

impl Env {
    async fn start() -> Option<Env> {
        use base64::Engine as _;
        let notary = Notary::start().await?;
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
        let ca = TestCa::new("Signet DCT Test CA", KeyKind::P256);
        let signer = ca.issue(&LeafOptions::new("notation signer", KeyKind::P256));
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store/x509/ca/test");
        std::fs::create_dir_all(&store).unwrap();
        std::fs::write(store.join("ca.pem"), ca.cert_pem()).unwrap();
        let h = &front.host;
        let policy = json!({"version": "1.0", "trustPolicies": [
            {"name": "migrating", "registryScopes": [format!("{h}/dct/app"), format!("{h}/dct/never"), format!("{h}/other/app")],
             "signatureVerification": {"level": "strict"},
             "trustStores": ["ca:test"], "trustedIdentities": ["*"]}
        ]});
        std::fs::write(dir.path().join("policy.json"), policy.to_string()).unwrap();

        // DCT for the repository, as `docker trust sign` leaves it: a root, targets and the
        // targets/releases delegation, published to the real Notary server.
        let client = notary.client("app");
        let gun = format!("{h}/dct/app");
        client.init(&gun);
        client.publish(&gun);
        client.add_releases_delegation(&gun, notary.dir.path());
        let root_key = client.root_key_id();
        Some(Env {
            notary,
            _pki: pki,
            _reg: reg,
            front,
            pusher,
            dir,
            signer,
            root_key,
            client,
        })
    }

    fn gun(&self, repo: &str) -> String {
        format!("{}/{repo}", self.front.host)
    }

    fn engine(&self, migration_until: Option<&str>) -> Engine {
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
        let dct = DctConfig {
            repositories: vec![RepositoryConfig {
                scope: format!("{}/dct/*", self.front.host),
                server: self.notary.url.clone(),
                root_keys: vec![self.root_key.clone()],
                server_ca: Some(self.notary.pki.ca_pem.clone()),
                ..RepositoryConfig::default()
            }],
            migration_until: migration_until.map(str::to_owned),
            timeout_seconds: Some(10),
        };
        let dct = DctVerifier::new(dct.validate().unwrap())
            .unwrap()
            .with_proxy(ProxySettings::default());
        let trust = TrustSnapshot::load(
            &self.dir.path().join("policy.json"),
            &self.dir.path().join("store"),
            1,
        )
        .unwrap();
        Engine::new(
            EngineConfig {
                registry,
                dct: Some(dct),
                ..EngineConfig::default()
            },
            trust,
        )
        .unwrap()
    }

    /// Pushes `repo:tag`; with `dct`, signs the tag in DCT (targets/releases) for `signed_for`
    /// (the pushed manifest when `None`).
    async fn push(
        &self,
        repo: &str,
        tag: &str,
        dct: bool,
        signed_for: Option<(&str, u64)>,
    ) -> signet_notation::Descriptor {
        let desc = self.pusher.image(repo, tag).await;
        if dct {
            let gun = self.gun(repo);
            let (digest, size) = signed_for.unwrap_or((desc.digest.as_str(), desc.size as u64));
            self.client
                .add(&gun, tag, digest, size, Some("targets/releases"));
            self.client.publish(&gun);
        }
        desc
    }

    async fn notation_sign(&self, repo: &str, subject: &signet_notation::Descriptor) {
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

fn code(v: &ImageVerdict) -> Option<ErrorCode> {
    v.error.as_ref().map(|e| e.code)
}

fn dct_entry(v: &ImageVerdict) -> Option<&signet_engine::SignatureSummary> {
    v.signatures
        .iter()
        .find(|s| s.format == SignatureFormat::Dct)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dct_admits_during_the_migration_window_only() {
    let Some(env) = Env::start().await else {
        return;
    };
    let repo = "dct/app";
    let v1 = env.push(repo, "v1", true, None).await;
    let open = env.engine(Some("2999-01-01T00:00:00Z"));

    // Window open: no Notation signature, DCT verifies the tag → admitted, format "dct".
    let v = open.verify(&env.reference(repo, "v1"), deadline()).await;
    assert!(v.verified, "{v:?}");
    let entry = dct_entry(&v).unwrap();
    assert!(entry.verified);
    assert_eq!(entry.manifest.as_deref(), Some(v1.digest.as_str()));
    assert!(
        entry
            .signer
            .as_deref()
            .unwrap()
            .starts_with("targets/releases (key "),
        "{entry:?}"
    );
    assert!(v.note.as_deref().unwrap().contains("migration window"));
    let json = serde_json::to_value(&v).unwrap();
    let formats: Vec<&str> = json["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["format"].as_str().unwrap())
        .collect();
    assert_eq!(formats, vec!["dct"]);
    // Asked again: the DCT outcome is cached, the answer the same.
    let again = open.verify(&env.reference(repo, "v1"), deadline()).await;
    assert!(again.verified, "{again:?}");

    // Window closed: the same tag is no longer admitted, and the answer says why.
    let closed = env.engine(Some("2020-01-01T00:00:00Z"));
    let v = closed.verify(&env.reference(repo, "v1"), deadline()).await;
    assert!(!v.verified, "{v:?}");
    assert_eq!(code(&v), Some(ErrorCode::SignatureNotFound));
    let message = &v.error.as_ref().unwrap().message;
    assert!(
        message.contains("migration window ended at 2020-01-01T00:00:00Z")
            && message.contains("sign the image with Notation"),
        "{message}"
    );
    let entry = dct_entry(&v).unwrap();
    assert!(!entry.verified);
    assert_eq!(
        entry.error.as_ref().map(|e| e.code),
        Some(ErrorCode::UntrustedSigner)
    );
    // No window configured: DCT is reported, never admits.
    let none = env.engine(None);
    let v = none.verify(&env.reference(repo, "v1"), deadline()).await;
    assert!(!v.verified, "{v:?}");
    assert!(dct_entry(&v).is_some());

    // Notation is preferred: a Notation-signed tag is verified by Notation, DCT not asked.
    let v2 = env.push(repo, "v2", true, None).await;
    env.notation_sign(repo, &v2).await;
    let v = closed.verify(&env.reference(repo, "v2"), deadline()).await;
    assert!(v.verified, "{v:?}");
    assert!(dct_entry(&v).is_none());
    assert_eq!(v.signatures[0].format, SignatureFormat::Notation);

    // A tag not signed in DCT.
    env.push(repo, "unsigned", false, None).await;
    let v = open
        .verify(&env.reference(repo, "unsigned"), deadline())
        .await;
    assert_eq!(code(&v), Some(ErrorCode::SignatureNotFound), "{v:?}");
    let message = &v.error.as_ref().unwrap().message;
    assert!(
        message.contains("Docker Content Trust did not verify")
            && message.contains("not signed in Docker Content Trust"),
        "{message}"
    );

    // A tag signed in DCT for another manifest than the registry serves.
    let other = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    env.push(repo, "moved", true, Some((other, 1234))).await;
    let v = open.verify(&env.reference(repo, "moved"), deadline()).await;
    assert_eq!(code(&v), Some(ErrorCode::SignatureInvalid), "{v:?}");

    // By digest there is no tag for DCT to vouch for; other repositories are not in scope.
    let by_digest = format!("{}/{repo}@{}", env.front.host, v1.digest);
    let v = open.verify(&by_digest, deadline()).await;
    assert_eq!(code(&v), Some(ErrorCode::SignatureNotFound), "{v:?}");
    assert!(dct_entry(&v).is_none());
    env.push("other/app", "v1", false, None).await;
    let v = open
        .verify(&env.reference("other/app", "v1"), deadline())
        .await;
    assert_eq!(code(&v), Some(ErrorCode::SignatureNotFound), "{v:?}");
    assert!(dct_entry(&v).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dct_root_must_be_pinned_and_server_must_answer() {
    let Some(env) = Env::start().await else {
        return;
    };
    let repo = "dct/app";
    env.push(repo, "v1", true, None).await;

    // Another repository's root key pins nothing here.
    let other = env.notary.client("elsewhere");
    let other_gun = env.gun("dct/elsewhere");
    other.init(&other_gun);
    other.publish(&other_gun);
    let mut env = env;
    let real_root = std::mem::replace(&mut env.root_key, other.root_key_id());
    let v = env
        .engine(Some("2999-01-01T00:00:00Z"))
        .verify(&env.reference(repo, "v1"), deadline())
        .await;
    assert!(!v.verified, "{v:?}");
    assert_eq!(code(&v), Some(ErrorCode::UntrustedSigner), "{v:?}");
    assert!(
        v.error
            .as_ref()
            .unwrap()
            .message
            .contains("pin its root key"),
        "{v:?}"
    );
    env.root_key = real_root;

    // A repository in scope but never published to the Notary server.
    env.pusher.image("dct/never", "v1").await;
    let v = env
        .engine(Some("2999-01-01T00:00:00Z"))
        .verify(&env.reference("dct/never", "v1"), deadline())
        .await;
    assert_eq!(code(&v), Some(ErrorCode::SignatureNotFound), "{v:?}");
    assert!(
        v.error
            .as_ref()
            .unwrap()
            .message
            .contains("not signed with Docker Content Trust"),
        "{v:?}"
    );
}
