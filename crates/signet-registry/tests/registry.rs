//! Registry I/O against Debian's real `docker-registry` (distribution 2.8: no referrers
//! API, so the tag-schema fallback) and through fronts that add the referrers API, lie and
//! fail.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use signet_notation::ErrorCode;
use signet_registry::{
    Credential, Discovery, DockerConfig, Reference, RegistryClient, RegistryConfig, RegistryError,
};
use signet_testkit::{EnvelopeKind, KeyKind, LeafOptions, TestCa, TestSigner};
use support::front::{Action, Front, ReferrersMode, Rule};
use support::push::{Pusher, SigStyle};
use support::registry::{Registry, RegistryAuth};
use support::tls::TestPki;
use support::token::{TokenPolicy, TokenServer};
use tokio::time::Instant;

const USER: &str = "tester";
const PASS: &str = "s3cret-pass";

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(20)
}

fn signer() -> TestSigner {
    let ca = TestCa::new("Signet Registry Test Signing CA", KeyKind::P256);
    ca.issue(&LeafOptions::new("signer", KeyKind::P256))
}

fn basic(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

fn client(pki: &TestPki, creds: Option<(&str, Credential)>, plain: &[&str]) -> RegistryClient {
    let mut config = RegistryConfig::default();
    config.add_ca_pem(pki.ca_pem.as_bytes()).unwrap();
    if let Some((host, cred)) = creds {
        let mut dc = DockerConfig::default();
        dc.insert(host, cred);
        config.credentials = Arc::new(dc);
    }
    for p in plain {
        config.allow_plain_http(p);
    }
    RegistryClient::new(config).unwrap()
}

fn user_cred() -> Credential {
    Credential::Basic {
        username: USER.into(),
        password: PASS.into(),
    }
}

async fn htpasswd_registry(pki: &TestPki) -> Registry {
    Registry::start(
        pki,
        RegistryAuth::Htpasswd {
            username: USER.into(),
            password: PASS.into(),
        },
    )
    .await
}

#[tokio::test]
async fn basic_auth_tag_schema_fallback() {
    let pki = TestPki::new();
    let reg = htpasswd_registry(&pki).await;
    let pusher = Pusher::new(&reg.url(), pki.client_config(), Some(basic(USER, PASS)));
    let signer = signer();
    let image = pusher.image("team/app", "v1").await;
    let jws = pusher
        .signature(
            "team/app",
            &image,
            &signer,
            EnvelopeKind::Jws,
            SigStyle::Current,
            true,
        )
        .await;
    let cose = pusher
        .signature(
            "team/app",
            &image,
            &signer,
            EnvelopeKind::Cose,
            SigStyle::Legacy,
            true,
        )
        .await;
    // Something else in the index that is not a signature (an SBOM): ignored.
    let other = pusher.image("team/app", "").await;
    let mut sbom = serde_json::to_value(&other).unwrap();
    sbom["artifactType"] = "application/spdx+json".into();
    pusher
        .add_to_tag_schema("team/app", &image.digest, sbom)
        .await;
    let unsigned = pusher.image("team/app", "unsigned").await;

    let c = client(&pki, Some((&reg.host, user_cred())), &[]);
    let r = Reference::parse(&format!("{}/team/app:v1", reg.host)).unwrap();
    let desc = c.resolve(&r, deadline()).await.unwrap();
    assert_eq!(desc.digest, image.digest);
    assert_eq!(desc.size, image.size);
    assert_eq!(desc.media_type, image.media_type);

    let sigs = c.signatures(&r, &desc, deadline()).await.unwrap();
    assert_eq!(sigs.discovery, Discovery::TagSchema);
    assert!(sigs.rejected.is_empty(), "{:?}", sigs.rejected);
    assert!(!sigs.truncated);
    assert_eq!(sigs.signatures.len(), 2);
    assert_eq!(sigs.signatures[0].digest, jws.manifest.digest);
    assert_eq!(sigs.signatures[0].media_type, "application/jose+json");
    assert_eq!(sigs.signatures[1].digest, cose.manifest.digest);
    assert_eq!(sigs.signatures[1].media_type, "application/cose");
    assert_eq!(sigs.signatures[1].envelope.digest, cose.envelope_digest);
    assert!(sigs.signatures[0]
        .annotations
        .contains_key("io.cncf.notary.x509chain.thumbprint#S256"));
    for (sig, pushed) in sigs.signatures.iter().zip([&jws, &cose]) {
        let env = c.fetch_envelope(&r, sig, deadline()).await.unwrap();
        assert_eq!(env, pushed.envelope);
    }

    // Pinned by digest (tag kept), and by digest only.
    let pinned = r.with_digest(&image.digest);
    assert_eq!(c.resolve(&pinned, deadline()).await.unwrap(), desc);
    let by_digest = Reference::parse(&format!("{}/team/app@{}", reg.host, image.digest)).unwrap();
    assert_eq!(c.resolve(&by_digest, deadline()).await.unwrap(), desc);

    // No tag-schema index: no signatures, not an error.
    let u = Reference::parse(&format!("{}/team/app:unsigned", reg.host)).unwrap();
    let udesc = c.resolve(&u, deadline()).await.unwrap();
    assert_eq!(udesc.digest, unsigned.digest);
    let none = c.signatures(&u, &udesc, deadline()).await.unwrap();
    assert!(none.signatures.is_empty() && none.rejected.is_empty());

    // Missing tag / repository.
    let missing = Reference::parse(&format!("{}/team/app:nope", reg.host)).unwrap();
    let err = c.resolve(&missing, deadline()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ArtifactNotFound, "{err}");
    let missing = Reference::parse(&format!("{}/team/nothing:v1", reg.host)).unwrap();
    let err = c.resolve(&missing, deadline()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ArtifactNotFound, "{err}");

    // Wrong password, no credentials: REGISTRY_AUTH_FAILED.
    let wrong = client(
        &pki,
        Some((
            &reg.host,
            Credential::Basic {
                username: USER.into(),
                password: "wrong".into(),
            },
        )),
        &[],
    );
    let err = wrong.resolve(&r, deadline()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::RegistryAuthFailed, "{err}");
    let anonymous = client(&pki, None, &[]);
    let err = anonymous.resolve(&r, deadline()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::RegistryAuthFailed, "{err}");

    // TLS: a client that does not trust the test CA cannot connect.
    let untrusting = RegistryClient::new(RegistryConfig::default()).unwrap();
    let err = untrusting.resolve(&r, deadline()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::RegistryError, "{err}");
    assert!(matches!(err, RegistryError::Connect { .. }), "{err}");
}
