//! Registry I/O against Debian's real `docker-registry` (distribution 2.8: no referrers
//! API, so the tag-schema fallback) and through fronts that add the referrers API, lie and
//! fail.
#![allow(clippy::unwrap_used)]

// The registry harness (real docker-registry, push helpers) lives in the testkit.
use signet_testkit::registry as support;

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
    client_with_realm(pki, creds, plain, None)
}

/// A client whose credentials may also go to `realm` (`host:port` of a separate token service).
fn client_with_realm(
    pki: &TestPki,
    creds: Option<(&str, Credential)>,
    plain: &[&str],
    realm: Option<&str>,
) -> RegistryClient {
    let mut config = RegistryConfig::default();
    config.add_ca_pem(pki.ca_pem.as_bytes()).unwrap();
    if let Some((host, cred)) = creds {
        let mut dc = DockerConfig::default();
        dc.insert(host, cred);
        config.credentials = Arc::new(dc);
        if let Some(realm) = realm {
            config
                .token_realms
                .insert(host.to_owned(), vec![realm.to_owned()]);
        }
    }
    for p in plain {
        config.allow_plain_http(p);
    }
    RegistryClient::new(config).unwrap()
}

/// `host:port` of a URL.
fn authority_of(url: &str) -> String {
    url.split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default()
        .to_owned()
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

/// A token-auth registry behind a referrers-capable front: the bearer challenge flow, the
/// token cache, the referrers API with pagination and our own filtering, and the round
/// trips of one verification.
#[tokio::test]
async fn token_auth_referrers_api_and_round_trips() {
    let pki = TestPki::new();
    let tokens = TokenServer::start(
        &pki,
        TokenPolicy {
            basic: Some((USER.into(), PASS.into())),
            refresh_token: Some("refresh-me".into()),
            expires_in: 300,
            access_token_field: false,
        },
    )
    .await;
    let reg = Registry::start(
        &pki,
        RegistryAuth::Token {
            realm: tokens.realm.clone(),
            service: support::token::SERVICE.into(),
            issuer: support::token::ISSUER.into(),
        },
    )
    .await;
    let push_auth = |repo: &str| format!("Bearer {}", support::token::push_token(&pki, repo));
    let pusher = Pusher::new(&reg.url(), pki.client_config(), Some(push_auth("app")));
    let signer = signer();
    let image = pusher.image("app", "v1").await;
    let front = Front::start(&reg.url(), pki.client_config(), ReferrersMode::default()).await;
    let mut pushed = Vec::new();
    for (kind, style) in [
        (EnvelopeKind::Jws, SigStyle::Current),
        (EnvelopeKind::Cose, SigStyle::Current),
        (EnvelopeKind::Cose, SigStyle::Legacy),
    ] {
        let s = pusher
            .signature("app", &image, &signer, kind, style, false)
            .await;
        front.add_referrer("app", &image.digest, s.entry());
        pushed.push(s);
    }
    // A non-signature referrer (filtered by the front, or by us).
    let mut sbom = serde_json::to_value(pusher.image("app", "").await).unwrap();
    sbom["artifactType"] = "application/spdx+json".into();
    front.add_referrer("app", &image.digest, sbom);

    let realm_host = authority_of(&tokens.realm);
    let realm = Some(realm_host.as_str());
    let c = client_with_realm(
        &pki,
        Some((&front.host, user_cred())),
        &[&front.host],
        realm,
    );
    let r = Reference::parse(&format!("{}/app:v1", front.host)).unwrap();

    // Cold: HEAD (401) + token + HEAD + referrers + 3 × (manifest) + 3 × (blob).
    let desc = c.resolve(&r, deadline()).await.unwrap();
    assert_eq!(desc.digest, image.digest);
    assert_eq!(c.round_trips(), 3, "401, token, HEAD");
    let sigs = c.signatures(&r, &desc, deadline()).await.unwrap();
    assert_eq!(sigs.discovery, Discovery::ReferrersApi);
    assert!(sigs.rejected.is_empty(), "{:?}", sigs.rejected);
    let got: Vec<_> = sigs.signatures.iter().map(|s| s.digest.clone()).collect();
    let want: Vec<_> = pushed.iter().map(|s| s.manifest.digest.clone()).collect();
    assert_eq!(got, want);
    for (sig, p) in sigs.signatures.iter().zip(&pushed) {
        assert_eq!(
            c.fetch_envelope(&r, sig, deadline()).await.unwrap(),
            p.envelope
        );
    }
    assert_eq!(tokens.issued.load(std::sync::atomic::Ordering::SeqCst), 1);
    let log = tokens.log.lock().unwrap().requests.clone();
    assert_eq!(log[0], ("GET".into(), "repository:app:pull".into(), true));

    // Warm (token cached): one signature = HEAD, referrers, manifest, blob = 4.
    let image2 = pusher.image("app", "v2").await;
    let s2 = pusher
        .signature(
            "app",
            &image2,
            &signer,
            EnvelopeKind::Jws,
            SigStyle::Current,
            false,
        )
        .await;
    front.add_referrer("app", &image2.digest, s2.entry());
    let r2 = Reference::parse(&format!("{}/app:v2", front.host)).unwrap();
    let before = c.round_trips();
    let d2 = c.resolve(&r2, deadline()).await.unwrap();
    let sigs2 = c.signatures(&r2, &d2, deadline()).await.unwrap();
    assert_eq!(sigs2.signatures.len(), 1);
    let env = c
        .fetch_envelope(&r2, &sigs2.signatures[0], deadline())
        .await
        .unwrap();
    assert_eq!(env, s2.envelope);
    assert_eq!(
        c.round_trips() - before,
        4,
        "HEAD, referrers, manifest, blob"
    );
    assert_eq!(tokens.issued.load(std::sync::atomic::Ordering::SeqCst), 1);
    // The token only ever went to the registry host.
    assert!(front
        .seen()
        .iter()
        .filter(|s| s.authorization.is_some())
        .all(|s| s.authorization.as_deref().unwrap().starts_with("Bearer ")));

    // Pagination (page size 1) and a front that does not filter: same answer.
    front.set_mode(ReferrersMode {
        enabled: true,
        filter: false,
        page_size: 1,
    });
    front.clear_seen();
    let paged = c.signatures(&r, &desc, deadline()).await.unwrap();
    assert_eq!(
        paged
            .signatures
            .iter()
            .map(|s| s.digest.clone())
            .collect::<Vec<_>>(),
        want
    );
    let pages = front
        .seen()
        .iter()
        .filter(|s| s.path.contains("/referrers/"))
        .count();
    assert_eq!(pages, 4);

    // Credentials never go to a token service on another host than the registry's unless
    // it is configured for that registry.
    let cautious = client(&pki, Some((&front.host, user_cred())), &[&front.host]);
    let err = cautious.resolve(&r, deadline()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::RegistryAuthFailed, "{err}");
    assert!(err.to_string().contains("not its own host"), "{err}");

    // At most max_signatures considered.
    let mut small = RegistryConfig::default();
    small.add_ca_pem(pki.ca_pem.as_bytes()).unwrap();
    small.allow_plain_http(&front.host);
    let mut dc = DockerConfig::default();
    dc.insert(&front.host, user_cred());
    small.credentials = Arc::new(dc);
    small
        .token_realms
        .insert(front.host.clone(), vec![realm_host.clone()]);
    small.max_signatures = 2;
    let limited = RegistryClient::new(small).unwrap();
    let few = limited.signatures(&r, &desc, deadline()).await.unwrap();
    assert_eq!(few.signatures.len(), 2);
    assert!(few.truncated);

    // Identity token (refresh-token grant), access_token answers.
    let idc = client_with_realm(
        &pki,
        Some((&front.host, Credential::IdentityToken("refresh-me".into()))),
        &[&front.host],
        realm,
    );
    assert_eq!(idc.resolve(&r, deadline()).await.unwrap(), desc);
    let bad = client_with_realm(
        &pki,
        Some((&front.host, Credential::IdentityToken("stale".into()))),
        &[&front.host],
        realm,
    );
    let err = bad.resolve(&r, deadline()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::RegistryAuthFailed, "{err}");
    let wrong = client_with_realm(
        &pki,
        Some((
            &front.host,
            Credential::Basic {
                username: USER.into(),
                password: "nope".into(),
            },
        )),
        &[&front.host],
        realm,
    );
    let err = wrong.resolve(&r, deadline()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::RegistryAuthFailed, "{err}");
    drop(reg);
}

/// One registry with a front per fault: every lie or failure ends in its specific error.
#[tokio::test]
async fn lies_and_faults() {
    let pki = TestPki::new();
    let reg = Registry::start(&pki, RegistryAuth::None).await;
    let pusher = Pusher::new(&reg.url(), pki.client_config(), None);
    let signer = signer();
    let image = pusher.image("lies", "v1").await;
    let other = pusher.image("lies", "other").await;
    let good = pusher
        .signature(
            "lies",
            &image,
            &signer,
            EnvelopeKind::Jws,
            SigStyle::Current,
            false,
        )
        .await;
    let of_other = pusher
        .signature(
            "lies",
            &other,
            &signer,
            EnvelopeKind::Jws,
            SigStyle::Current,
            false,
        )
        .await;
    let front = Front::start(&reg.url(), pki.client_config(), ReferrersMode::default()).await;
    front.add_referrer("lies", &image.digest, good.entry());
    let blob_store = Front::start(&reg.url(), pki.client_config(), ReferrersMode::default()).await;
    let blob_host = format!("localhost:{}", blob_store.server.addr.port());
    let mut config = RegistryConfig::default();
    config.allow_plain_http(&front.host);
    config.allow_plain_http(&blob_host);
    config.max_retries = 3;
    // A registry credential, to see that it never leaves the registry host.
    let mut dc = DockerConfig::default();
    dc.insert(
        &front.host,
        Credential::BearerToken("registry-only-token".into()),
    );
    config.credentials = Arc::new(dc);
    let c = RegistryClient::new(config).unwrap();
    let r = Reference::parse(&format!("{}/lies:v1", front.host)).unwrap();
    let desc = c.resolve(&r, deadline()).await.unwrap();
    let short = || Instant::now() + Duration::from_secs(3);

    // Wrong subject: a signature of another image listed as this one's.
    front.add_referrer("lies", &image.digest, of_other.entry());
    let sigs = c.signatures(&r, &desc, deadline()).await.unwrap();
    assert_eq!(sigs.signatures.len(), 1);
    assert_eq!(sigs.rejected.len(), 1);
    assert!(matches!(
        sigs.rejected[0].error,
        RegistryError::SubjectMismatch { .. }
    ));
    assert_eq!(sigs.rejected[0].error.code(), ErrorCode::SignatureInvalid);

    // Wrong digest: the signature manifest's bytes are altered.
    front.add_rule(Rule::new(
        Some(Method::GET),
        &format!("/manifests/{}", good.manifest.digest),
        1,
        Action::Corrupt,
    ));
    let sigs = c.signatures(&r, &desc, deadline()).await.unwrap();
    let bad = sigs
        .rejected
        .iter()
        .find(|x| x.digest == good.manifest.digest)
        .unwrap();
    assert!(
        matches!(bad.error, RegistryError::DigestMismatch { .. }),
        "{:?}",
        bad.error
    );
    assert_eq!(bad.error.code(), ErrorCode::SignatureInvalid);

    // Wrong envelope bytes.
    let sig = c
        .signatures(&r, &desc, deadline())
        .await
        .unwrap()
        .signatures
        .remove(0);
    front.add_rule(Rule::new(
        None,
        &format!("/blobs/{}", good.envelope_digest),
        1,
        Action::Corrupt,
    ));
    let err = c.fetch_envelope(&r, &sig, deadline()).await.unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
    assert_eq!(err.code(), ErrorCode::SignatureInvalid);
    // Longer than announced.
    let mut longer = good.envelope.clone();
    longer.push(b' ');
    front.add_rule(Rule::new(
        None,
        &format!("/blobs/{}", good.envelope_digest),
        1,
        Action::ReplaceBody(longer),
    ));
    let err = c.fetch_envelope(&r, &sig, deadline()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::SignatureInvalid, "{err}");

    // A tag whose GET body is not what a digest reference asks for.
    front.add_rule(Rule::new(
        Some(Method::HEAD),
        "/manifests/",
        1,
        Action::Respond {
            status: 405,
            headers: vec![],
            body: vec![],
        },
    ));
    front.add_rule(Rule::new(
        Some(Method::GET),
        "/manifests/",
        1,
        Action::Corrupt,
    ));
    let pinned = r.with_digest(&image.digest);
    let err = c.resolve(&pinned, deadline()).await.unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
    // HEAD refused, GET honest: resolved by digesting the body.
    front.add_rule(Rule::new(
        Some(Method::HEAD),
        "/manifests/",
        1,
        Action::Respond {
            status: 405,
            headers: vec![],
            body: vec![],
        },
    ));
    assert_eq!(c.resolve(&r, deadline()).await.unwrap(), desc);
    // HEAD with a Docker-Content-Digest that is not the one asked for.
    front.add_rule(Rule::new(
        Some(Method::HEAD),
        "/manifests/",
        1,
        Action::Respond {
            status: 200,
            headers: vec![
                ("docker-content-digest", other.digest.clone()),
                ("content-type", other.media_type.clone()),
            ],
            body: vec![],
        },
    ));
    let err = c.resolve(&pinned, deadline()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::SignatureInvalid, "{err}");

    // Oversize manifest: HEAD refused, GET sends 5 MiB.
    front.add_rule(Rule::new(
        Some(Method::HEAD),
        "/manifests/",
        1,
        Action::Respond {
            status: 405,
            headers: vec![],
            body: vec![],
        },
    ));
    front.add_rule(Rule::new(
        Some(Method::GET),
        "/manifests/",
        1,
        Action::Oversize(5 << 20),
    ));
    let err = c.resolve(&r, deadline()).await.unwrap_err();
    assert!(matches!(err, RegistryError::TooLarge { .. }), "{err}");
    assert_eq!(err.code(), ErrorCode::RegistryError);

    // Junk JSON in the referrers list.
    front.add_rule(Rule::new(
        None,
        "/referrers/",
        1,
        Action::Respond {
            status: 200,
            headers: vec![(
                "content-type",
                "application/vnd.oci.image.index.v1+json".into(),
            )],
            body: b"{\"manifests\": [{\"digest\": 42}".to_vec(),
        },
    ));
    let err = c.signatures(&r, &desc, deadline()).await.unwrap_err();
    assert!(matches!(err, RegistryError::Malformed { .. }), "{err}");
    // Junk JSON as a signature manifest (with the right digest: the registry stored junk).
    // Covered by the subject/digest checks above; here a junk body fails the digest check.

    // 503 then success; 429 with a short Retry-After then success.
    front.clear_rules();
    front.add_rule(Rule::new(
        Some(Method::HEAD),
        "/manifests/",
        2,
        Action::Respond {
            status: 503,
            headers: vec![],
            body: vec![],
        },
    ));
    assert_eq!(c.resolve(&r, deadline()).await.unwrap(), desc);
    front.add_rule(Rule::new(
        None,
        "/referrers/",
        1,
        Action::Respond {
            status: 429,
            headers: vec![("retry-after", "1".into())],
            body: vec![],
        },
    ));
    assert_eq!(
        c.signatures(&r, &desc, deadline())
            .await
            .unwrap()
            .signatures
            .len(),
        1
    );
    // 429 asking for longer than the deadline allows: no wait, RateLimited.
    front.add_rule(Rule::new(
        Some(Method::HEAD),
        "/manifests/",
        1,
        Action::Respond {
            status: 429,
            headers: vec![("retry-after", "3600".into())],
            body: vec![],
        },
    ));
    let started = Instant::now();
    let err = c.resolve(&r, short()).await.unwrap_err();
    assert!(matches!(err, RegistryError::RateLimited { .. }), "{err}");
    assert_eq!(err.code(), ErrorCode::RegistryError);
    assert!(started.elapsed() < Duration::from_secs(3));
    // Always 503: retries stop, RateLimited (or Timeout if the deadline hit first).
    front.add_rule(Rule::new(
        Some(Method::HEAD),
        "/manifests/",
        100,
        Action::Respond {
            status: 503,
            headers: vec![],
            body: vec![],
        },
    ));
    let err = c.resolve(&r, short()).await.unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::RateLimited { status: 503, .. } | RegistryError::Timeout { .. }
        ),
        "{err}"
    );
    front.clear_rules();

    // Stalled body: TIMEOUT at the deadline, not a hang.
    front.add_rule(Rule::new(
        Some(Method::GET),
        &format!("/manifests/{}", good.manifest.digest),
        1,
        Action::Stall,
    ));
    let err = c.signatures(&r, &desc, short()).await.unwrap_err();
    assert!(matches!(err, RegistryError::Timeout { .. }), "{err}");
    assert_eq!(err.code(), ErrorCode::Timeout);
    front.clear_rules();

    // Redirect of a blob to another host: followed without the registry's credentials.
    blob_store.add_rule(Rule::new(
        None,
        &format!("/blobs/{}", good.envelope_digest),
        1,
        Action::Respond {
            status: 200,
            headers: vec![],
            body: good.envelope.clone(),
        },
    ));
    // The registry asks for a bearer token first (so the credential is in use).
    front.add_rule(Rule::new(
        None,
        &format!("/blobs/{}", good.envelope_digest),
        1,
        Action::Respond {
            status: 401,
            headers: vec![(
                "www-authenticate",
                "Bearer realm=\"https://127.0.0.1:9/token\",service=\"x\"".into(),
            )],
            body: vec![],
        },
    ));
    front.add_rule(Rule::new(
        None,
        &format!("/blobs/{}", good.envelope_digest),
        1,
        Action::RedirectTo(format!("http://{blob_host}")),
    ));
    front.clear_seen();
    let env = c.fetch_envelope(&r, &sig, deadline()).await.unwrap();
    assert_eq!(env, good.envelope);
    let at_store = blob_store.seen();
    assert_eq!(at_store.len(), 1);
    assert_eq!(
        at_store[0].authorization, None,
        "token leaked to another host"
    );
    let at_front = front.seen();
    assert_eq!(at_front.len(), 2);
    assert_eq!(
        at_front[1].authorization.as_deref(),
        Some("Bearer registry-only-token")
    );
    // Redirect loops are bounded; redirects to unlisted plain HTTP are refused.
    front.add_rule(Rule::new(
        None,
        "/blobs/",
        100,
        Action::RedirectTo(format!("http://{}", front.host)),
    ));
    let err = c.fetch_envelope(&r, &sig, deadline()).await.unwrap_err();
    assert!(matches!(err, RegistryError::Redirect { .. }), "{err}");
    front.clear_rules();
    front.add_rule(Rule::new(
        None,
        "/blobs/",
        1,
        Action::RedirectTo("http://127.0.0.2:9".into()),
    ));
    let err = c.fetch_envelope(&r, &sig, deadline()).await.unwrap_err();
    assert!(matches!(err, RegistryError::Redirect { .. }), "{err}");
    front.clear_rules();

    // A registry without the referrers API (404): tag-schema fallback, remembered.
    front.set_mode(ReferrersMode {
        enabled: false,
        ..ReferrersMode::default()
    });
    pusher
        .add_to_tag_schema("lies", &image.digest, good.entry())
        .await;
    let fresh = {
        let mut config = RegistryConfig::default();
        config.allow_plain_http(&front.host);
        RegistryClient::new(config).unwrap()
    };
    let sigs = fresh.signatures(&r, &desc, deadline()).await.unwrap();
    assert_eq!(sigs.discovery, Discovery::TagSchema);
    assert_eq!(sigs.signatures.len(), 1);
    let before = fresh.round_trips();
    let again = fresh.signatures(&r, &desc, deadline()).await.unwrap();
    assert_eq!(again.discovery, Discovery::TagSchema);
    assert_eq!(
        fresh.round_trips() - before,
        2,
        "index + manifest, no referrers probe"
    );

    // Connection refused: REGISTRY_ERROR (retried while the deadline allows).
    let port = support::registry::free_port();
    let gone = Reference::parse(&format!("127.0.0.1:{port}/x:v1")).unwrap();
    let err = c.resolve(&gone, short()).await.unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::Connect { .. } | RegistryError::Timeout { .. }
        ),
        "{err}"
    );
}

/// A `Retry-After` of `u64::MAX` seconds is a refusal to wait, not an overflow; and one 404
/// from the referrers API puts the host on the tag-schema fallback for a while, not forever.
#[tokio::test]
async fn huge_retry_after_and_bounded_referrers_fallback() {
    let pki = TestPki::new();
    let reg = Registry::start(&pki, RegistryAuth::None).await;
    let pusher = Pusher::new(&reg.url(), pki.client_config(), None);
    let image = pusher.image("fallback", "v1").await;
    let sig = pusher
        .signature(
            "fallback",
            &image,
            &signer(),
            EnvelopeKind::Cose,
            SigStyle::Current,
            false,
        )
        .await;
    // The referrers API is off at first: the backend answers 404.
    let front = Front::start(
        &reg.url(),
        pki.client_config(),
        ReferrersMode {
            enabled: false,
            ..ReferrersMode::default()
        },
    )
    .await;
    front.add_referrer("fallback", &image.digest, sig.entry());
    let mut config = RegistryConfig::default();
    config.allow_plain_http(&front.host);
    config.referrers_fallback_ttl = Duration::from_millis(300);
    let c = RegistryClient::new(config).unwrap();
    let r = Reference::parse(&format!("{}/fallback:v1", front.host)).unwrap();

    front.add_rule(Rule::new(
        Some(Method::HEAD),
        "/manifests/",
        1,
        Action::Respond {
            status: 429,
            headers: vec![("retry-after", u64::MAX.to_string())],
            body: vec![],
        },
    ));
    let err = c.resolve(&r, deadline()).await.unwrap_err();
    assert!(
        matches!(err, RegistryError::RateLimited { status: 429, .. }),
        "{err}"
    );
    let desc = c.resolve(&r, deadline()).await.unwrap();

    // One 404: the fallback (no tag-schema index: nothing found), remembered for a while.
    let sigs = c.signatures(&r, &desc, deadline()).await.unwrap();
    assert_eq!(sigs.discovery, Discovery::TagSchema);
    assert!(sigs.signatures.is_empty());
    front.set_mode(ReferrersMode::default());
    front.clear_seen();
    let sigs = c.signatures(&r, &desc, deadline()).await.unwrap();
    assert_eq!(sigs.discovery, Discovery::TagSchema);
    assert!(
        !front.seen().iter().any(|s| s.path.contains("/referrers/")),
        "asked again within the fallback period: {:?}",
        front.seen()
    );

    // After the period the referrers API is asked again, and it now answers.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let sigs = c.signatures(&r, &desc, deadline()).await.unwrap();
    assert_eq!(sigs.discovery, Discovery::ReferrersApi);
    assert_eq!(sigs.signatures.len(), 1);
    // Once it has answered, a single 404 does not switch the host over.
    front.set_mode(ReferrersMode {
        enabled: false,
        ..ReferrersMode::default()
    });
    let sigs = c.signatures(&r, &desc, deadline()).await.unwrap();
    assert_eq!(sigs.discovery, Discovery::TagSchema);
    front.set_mode(ReferrersMode::default());
    let sigs = c.signatures(&r, &desc, deadline()).await.unwrap();
    assert_eq!(sigs.discovery, Discovery::ReferrersApi);
}

/// A hostile registry announcing a 32 MiB envelope and stalling holds the client's whole
/// body budget: another body waits (TIMEOUT at its deadline) instead of being read on top;
/// once the hostile request gives up, it is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_budget_is_shared_by_all_requests() {
    let pki = TestPki::new();
    let reg = Registry::start(&pki, RegistryAuth::None).await;
    let pusher = Pusher::new(&reg.url(), pki.client_config(), None);
    let image = pusher.image("budget", "v1").await;
    let good = pusher
        .signature(
            "budget",
            &image,
            &signer(),
            EnvelopeKind::Cose,
            SigStyle::Current,
            false,
        )
        .await;
    let front = Front::start(&reg.url(), pki.client_config(), ReferrersMode::default()).await;
    front.add_referrer("budget", &image.digest, good.entry());
    let max = signet_registry::MAX_ENVELOPE_BYTES;
    let phantom_digest = format!("sha256:{}", "ee".repeat(32));
    let blob = front.add_phantom_signature("budget", &image, &phantom_digest, max);
    front.add_rule(Rule::new(
        Some(Method::GET),
        &blob,
        usize::MAX,
        Action::StallDeclaring(max + 1),
    ));
    let mut config = RegistryConfig::default();
    config.allow_plain_http(&front.host);
    config.max_body_bytes_in_flight = max + 1024;
    let c = RegistryClient::new(config).unwrap();
    let r = Reference::parse(&format!("{}/budget:v1", front.host)).unwrap();
    let desc = c.resolve(&r, deadline()).await.unwrap();
    let sigs = c.signatures(&r, &desc, deadline()).await.unwrap();
    assert_eq!(sigs.signatures.len(), 2, "{sigs:?}");
    let phantom = sigs
        .signatures
        .iter()
        .find(|s| s.envelope.digest == phantom_digest)
        .unwrap()
        .clone();
    let honest = sigs
        .signatures
        .iter()
        .find(|s| s.envelope.digest == good.envelope_digest)
        .unwrap()
        .clone();

    let hostile = {
        let (c, r) = (c.clone(), r.clone());
        tokio::spawn(async move {
            c.fetch_envelope(&r, &phantom, Instant::now() + Duration::from_secs(4))
                .await
        })
    };
    // The hostile request has its headers and holds the whole budget.
    let mut held = false;
    for _ in 0..100 {
        if c.body_budget_available() == 0 {
            held = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(held, "{} bytes left", c.body_budget_available());
    let err = c
        .fetch_envelope(&r, &honest, Instant::now() + Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Timeout { .. }), "{err}");
    let err = hostile.await.unwrap().unwrap_err();
    assert!(matches!(err, RegistryError::Timeout { .. }), "{err}");
    assert_eq!(
        c.fetch_envelope(&r, &honest, deadline()).await.unwrap(),
        good.envelope
    );
}
