//! The Azure adapters against local HTTPS fakes (see `support`): the house libraries and our
//! own clients run unchanged; only the TCP connections are pinned to the fakes.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use signet_azure::{
    AcrTokenSource, CredentialConfig, EntraCredential, HttpTransport, KeyVaultCertificate,
    KeyVaultTrustSource, ACR_SCOPE, KEY_VAULT_SCOPE,
};
use signet_notation::truststore::StoreType;
use signet_notation::ErrorCode;
use signet_registry::{
    Credential, DockerConfig, NoCredentials, Reference, RegistryClient, RegistryConfig, TokenSource,
};
use support::*;

struct World {
    pki: Pki,
    tokens: Tokens,
    log: Log,
    entra: Entra,
    transport: HttpTransport,
    dir: tempfile::TempDir,
}

impl World {
    async fn new() -> World {
        let pki = Pki::new();
        let tokens = Tokens::default();
        let log: Log = Arc::new(Mutex::new(Vec::new()));
        let entra = Entra::start(&pki, tokens.clone(), log.clone()).await;
        let transport = pki
            .transport()
            .resolve(ENTRA_HOST, 443, entra.server.addr)
            .with_timeout(Duration::from_secs(10));
        World {
            pki,
            tokens,
            log,
            entra,
            transport,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Workload identity whose token file holds a token for `subject`, federated or not.
    fn workload_identity(
        &self,
        subject: &str,
        federated: bool,
    ) -> (EntraCredential, std::path::PathBuf) {
        let file = self.dir.path().join("azure-identity-token");
        let token = sa_token(subject, 1);
        std::fs::write(&file, &token).unwrap();
        if federated {
            self.entra
                .state
                .lock()
                .unwrap()
                .accepted_assertions
                .push(token);
        }
        let env = |k: &str| match k {
            "AZURE_CLIENT_ID" => Some(CLIENT_ID.to_owned()),
            "AZURE_TENANT_ID" => Some(TENANT.to_owned()),
            "AZURE_FEDERATED_TOKEN_FILE" => Some(file.display().to_string()),
            "AZURE_AUTHORITY_HOST" => Some(format!("https://{ENTRA_HOST}/")),
            _ => None,
        };
        let config = CredentialConfig::workload_identity_from(env, None, None).unwrap();
        (EntraCredential::new(config, &self.transport).unwrap(), file)
    }
}

#[tokio::test]
async fn workload_identity_token_from_the_projected_file() {
    let w = World::new().await;
    let (cred, _) = w.workload_identity("system:serviceaccount:gatekeeper-system:signet", true);
    let token = cred.token(ACR_SCOPE).await.unwrap();
    assert_eq!(
        w.tokens.audience(&token).as_deref(),
        Some("https://containerregistry.azure.net")
    );
    // Cached until shortly before expires_in: one grant for many calls.
    for _ in 0..5 {
        assert_eq!(cred.token(ACR_SCOPE).await.unwrap(), token);
    }
    assert_eq!(w.entra.state.lock().unwrap().calls, 1);
    // The grant was the client-assertion grant with the file's token.
    let log = w.log.lock().unwrap();
    let form = log[0].form();
    assert_eq!(log[0].path, format!("/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(
        form["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    assert_eq!(form["client_id"], CLIENT_ID);
    assert_eq!(form["scope"], ACR_SCOPE);
}

#[tokio::test]
async fn workload_identity_picks_up_the_rotated_token_file() {
    let w = World::new().await;
    let (cred, file) = w.workload_identity("system:serviceaccount:gatekeeper-system:signet", true);
    cred.token(ACR_SCOPE).await.unwrap();
    // Kubernetes rotates the projected token; the old one stops being accepted.
    let rotated = sa_token("system:serviceaccount:gatekeeper-system:signet", 2);
    std::fs::write(&file, &rotated).unwrap();
    w.entra.state.lock().unwrap().accepted_assertions = vec![rotated.clone()];
    let token = cred.token(KEY_VAULT_SCOPE).await.unwrap();
    assert_eq!(
        w.tokens.audience(&token).as_deref(),
        Some("https://vault.azure.net")
    );
    let log = w.log.lock().unwrap();
    assert_eq!(log.last().unwrap().form()["client_assertion"], rotated);
}

#[tokio::test]
async fn workload_identity_errors_say_what_to_fix() {
    let w = World::new().await;
    let (cred, _) = w.workload_identity("system:serviceaccount:default:signet", false);
    let e = cred.token(ACR_SCOPE).await.unwrap_err().to_string();
    assert!(e.contains("AADSTS70021"), "{e}");
    assert!(
        e.contains("system:serviceaccount:gatekeeper-system:signet"),
        "{e}"
    );
    // ... and what the token actually presents.
    assert!(
        e.contains("\"system:serviceaccount:default:signet\""),
        "{e}"
    );

    // Missing webhook injection.
    let e = CredentialConfig::workload_identity_from(|_| None, None, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("AZURE_FEDERATED_TOKEN_FILE"), "{e}");
    assert!(e.contains("azure.workload.identity/use"), "{e}");
}

#[tokio::test]
async fn service_principal_secret() {
    let w = World::new().await;
    w.entra.state.lock().unwrap().client_secret = Some("s3cret".into());
    let config = CredentialConfig::ServicePrincipal {
        tenant_id: TENANT.into(),
        client_id: CLIENT_ID.into(),
        secret: "s3cret".into(),
        authority_host: None,
    };
    let cred = EntraCredential::new(config, &w.transport).unwrap();
    let token = cred.token(KEY_VAULT_SCOPE).await.unwrap();
    assert_eq!(
        w.tokens.audience(&token).as_deref(),
        Some("https://vault.azure.net")
    );
    let bad = EntraCredential::new(
        CredentialConfig::ServicePrincipal {
            tenant_id: TENANT.into(),
            client_id: CLIENT_ID.into(),
            secret: "wrong".into(),
            authority_host: None,
        },
        &w.transport,
    )
    .unwrap();
    let e = bad.token(KEY_VAULT_SCOPE).await.unwrap_err().to_string();
    assert!(
        e.contains("AADSTS7000215") && e.contains("client secret"),
        "{e}"
    );
}

#[tokio::test]
async fn managed_identity_through_imds() {
    let w = World::new().await;
    let imds = Imds::start(w.tokens.clone(), w.log.clone(), CLIENT_ID).await;
    // The real IMDS URL (http://169.254.169.254/...), connected to the fake.
    let transport = w
        .transport
        .clone()
        .resolve("169.254.169.254", 80, imds.server.addr);
    let cred = EntraCredential::new(
        CredentialConfig::ManagedIdentity {
            client_id: Some(CLIENT_ID.into()),
        },
        &transport,
    )
    .unwrap();
    let token = cred.token(ACR_SCOPE).await.unwrap();
    assert_eq!(
        w.tokens.audience(&token).as_deref(),
        Some("https://containerregistry.azure.net")
    );
    assert_eq!(cred.token(ACR_SCOPE).await.unwrap(), token, "cached");
    assert_eq!(*imds.calls.lock().unwrap(), 1);
    {
        let log = w.log.lock().unwrap();
        let r = log.last().unwrap();
        assert_eq!(r.host, "169.254.169.254");
        assert_eq!(r.header("metadata").as_deref(), Some("true"));
        assert_eq!(r.param("client_id").as_deref(), Some(CLIENT_ID));
        assert_eq!(
            r.param("resource").as_deref(),
            Some("https://containerregistry.azure.net")
        );
    }

    let other = EntraCredential::new(
        CredentialConfig::ManagedIdentity {
            client_id: Some("99999999-0000-0000-0000-000000000000".into()),
        },
        &transport,
    )
    .unwrap();
    let e = other.token(ACR_SCOPE).await.unwrap_err().to_string();
    assert!(e.contains("has not been assigned"), "{e}");
    assert!(e.contains("node pool"), "{e}");
}

struct AcrWorld {
    w: World,
    acr: Acr,
    source: AcrTokenSource,
}

async fn acr_world(fallback: Arc<dyn TokenSource>) -> AcrWorld {
    let w = World::new().await;
    let acr = Acr::start(&w.pki, w.tokens.clone(), w.log.clone()).await;
    let (cred, _) = w.workload_identity("system:serviceaccount:gatekeeper-system:signet", true);
    let transport =
        w.transport
            .clone()
            .resolve("localhost", acr.server.addr.port(), acr.server.addr);
    let source = AcrTokenSource::new([acr.host.clone()], cred, transport, fallback);
    AcrWorld { w, acr, source }
}

fn registry_client(pki: &Pki, source: Arc<dyn TokenSource>) -> RegistryClient {
    let mut config = RegistryConfig::default();
    config.add_ca_pem(pki.ca_pem.as_bytes()).unwrap();
    config.credentials = source;
    config.max_retries = 0;
    RegistryClient::new(config).unwrap()
}

fn deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(20)
}

#[tokio::test]
async fn acr_exchange_then_refresh_token_grant_then_manifest() {
    let a = acr_world(Arc::new(NoCredentials)).await;
    let client = registry_client(&a.w.pki, a.source.clone().into_source());
    let reference = Reference::parse(&format!("{}/net-monitor:v1", a.acr.host)).unwrap();
    let descriptor = client.resolve(&reference, deadline()).await.unwrap();
    assert_eq!(descriptor.digest.to_string(), a.acr.digest);

    let st = a.acr.state.lock().unwrap();
    assert_eq!(st.exchanges, 1);
    let form = &st.last_exchange_form;
    assert_eq!(form["grant_type"], "access_token");
    assert_eq!(form["service"], a.acr.host);
    assert_eq!(form["tenant"], TENANT);
    assert_eq!(
        a.w.tokens.audience(&form["access_token"]).as_deref(),
        Some("https://containerregistry.azure.net")
    );
    // The registry client did the refresh-token grant with the repository scope.
    assert!(
        st.access
            .values()
            .any(|s| s.contains("repository:net-monitor:pull")),
        "{:?}",
        st.access
    );
}

#[tokio::test]
async fn one_exchange_for_many_calls() {
    let a = acr_world(Arc::new(NoCredentials)).await;
    let calls = (0..20).map(|_| a.source.credential(&a.acr.host));
    let results = futures_join(calls).await;
    let first = results[0].clone().unwrap();
    assert!(matches!(first, Some(Credential::IdentityToken(_))));
    for r in results {
        assert_eq!(r.unwrap(), first);
    }
    assert_eq!(a.acr.state.lock().unwrap().exchanges, 1);
    assert_eq!(a.source.exchanges(), 1);
    assert_eq!(a.w.entra.state.lock().unwrap().calls, 1);
}

async fn futures_join<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let mut out = Vec::new();
    let pinned: Vec<_> = futures.map(Box::pin).collect();
    // Poll them concurrently on one task.
    let mut pending: Vec<_> = pinned.into_iter().map(Some).collect();
    let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (i, slot) in pending.iter_mut().enumerate() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        results[i] = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    for r in results {
        out.push(r.unwrap());
    }
    out
}

#[tokio::test]
async fn tokens_never_go_to_a_registry_that_is_not_listed() {
    let mut docker = DockerConfig::default();
    docker.insert(
        "other.example",
        Credential::Basic {
            username: "u".into(),
            password: "p".into(),
        },
    );
    let a = acr_world(docker.into_source()).await;
    // A second registry (anonymous, challenge pointing at itself), not listed as ACR.
    let other = Acr::start(&a.w.pki, a.w.tokens.clone(), a.w.log.clone()).await;
    let other_host = other.host.clone();
    let client = registry_client(&a.w.pki, a.source.clone().into_source());

    // The ACR first, so that Entra and ACR tokens exist.
    let acr_ref = Reference::parse(&format!("{}/net-monitor:v1", a.acr.host)).unwrap();
    client.resolve(&acr_ref, deadline()).await.unwrap();
    let other_ref = Reference::parse(&format!("{other_host}/net-monitor:v1")).unwrap();
    let e = client.resolve(&other_ref, deadline()).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::RegistryAuthFailed, "{e}");
    assert_eq!(other.state.lock().unwrap().exchanges, 0);

    let secrets: Vec<String> = {
        let mut s = a.w.tokens.all();
        s.extend(a.acr.state.lock().unwrap().refresh.clone());
        s.extend(a.acr.state.lock().unwrap().access.keys().cloned());
        s
    };
    assert!(!secrets.is_empty());
    for r in
        a.w.log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.host == other_host)
    {
        let text = format!("{:?} {}", r.headers, String::from_utf8_lossy(&r.body));
        for s in &secrets {
            assert!(
                !text.contains(s.as_str()),
                "a token went to {other_host}: {r:?}"
            );
        }
    }
    // Other registries get the fallback's credentials, Entra is not asked.
    let calls = a.w.entra.state.lock().unwrap().calls;
    assert!(matches!(
        a.source.credential("other.example").await.unwrap(),
        Some(Credential::Basic { .. })
    ));
    assert_eq!(a.source.credential("docker.io").await.unwrap(), None);
    assert_eq!(
        a.source
            .credential("evil.azurecr.io.example.com")
            .await
            .unwrap(),
        None
    );
    assert_eq!(a.w.entra.state.lock().unwrap().calls, calls);
}

#[tokio::test]
async fn refused_exchange_is_registry_auth_failed_with_advice() {
    let a = acr_world(Arc::new(NoCredentials)).await;
    a.acr.state.lock().unwrap().deny_exchange = true;
    let client = registry_client(&a.w.pki, a.source.clone().into_source());
    let reference = Reference::parse(&format!("{}/net-monitor:v1", a.acr.host)).unwrap();
    let e = client.resolve(&reference, deadline()).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::RegistryAuthFailed, "{e}");
    let text = e.to_string();
    assert!(text.contains("AcrPull"), "{text}");
    assert!(text.contains("UNAUTHORIZED"), "{text}");
}

#[tokio::test]
async fn entra_failure_is_registry_auth_failed() {
    let w = World::new().await;
    let acr = Acr::start(&w.pki, w.tokens.clone(), w.log.clone()).await;
    let (cred, _) = w.workload_identity("system:serviceaccount:default:default", false);
    let transport =
        w.transport
            .clone()
            .resolve("localhost", acr.server.addr.port(), acr.server.addr);
    let source = AcrTokenSource::new([acr.host.clone()], cred, transport, Arc::new(NoCredentials));
    let e = source.credential(&acr.host).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::RegistryAuthFailed);
    assert!(e.to_string().contains("AADSTS70021"), "{e}");
    assert_eq!(acr.state.lock().unwrap().exchanges, 0);
}

async fn vault(w: &World) -> (KeyVault, HttpTransport) {
    let kv = KeyVault::start(&w.pki, w.tokens.clone(), w.log.clone()).await;
    let transport = w.transport.clone().resolve(VAULT_HOST, 443, kv.server.addr);
    (kv, transport)
}

fn kv_cert(name: &str, version: Option<&str>, store: &str) -> KeyVaultCertificate {
    KeyVaultCertificate {
        version: version.map(Into::into),
        ..KeyVaultCertificate::latest(name, StoreType::Ca, store)
    }
}

#[tokio::test]
async fn key_vault_certificates_become_trust_stores() {
    let w = World::new().await;
    let (kv, transport) = vault(&w).await;
    let (v1, v2, other) = (
        self_signed_cert("wabbit-networks.io"),
        self_signed_cert("wabbit-networks.io rotated"),
        self_signed_cert("acme"),
    );
    {
        let mut s = kv.state.lock().unwrap();
        s.certs.insert(
            "wabbit-networks-io".into(),
            vec![("a1".into(), v1.clone()), ("b2".into(), v2.clone())],
        );
        s.certs
            .insert("acme".into(), vec![("c3".into(), other.clone())]);
    }
    let (cred, _) = w.workload_identity("system:serviceaccount:gatekeeper-system:signet", true);
    let source = KeyVaultTrustSource::new(
        &format!("https://{VAULT_HOST}/"),
        vec![
            kv_cert("wabbit-networks-io", None, "wabbit-networks"),
            kv_cert("wabbit-networks-io", Some("a1"), "pinned"),
            kv_cert("acme", None, "wabbit-networks"),
        ],
        &cred,
        &transport,
    )
    .unwrap();
    let stores = source.fetch().await.unwrap();
    assert_eq!(stores.len(), 2);
    let pinned = stores.iter().find(|s| s.name == "pinned").unwrap();
    assert_eq!(pinned.store_type, StoreType::Ca);
    assert_eq!(pinned.certificates.len(), 1);
    assert_eq!(pinned.certificates[0].der(), &v1[..]);
    let main = stores.iter().find(|s| s.name == "wabbit-networks").unwrap();
    let ders: Vec<&[u8]> = main.certificates.iter().map(|c| c.der()).collect();
    assert_eq!(ders, vec![&v2[..], &other[..]], "latest version, then acme");

    // Challenge authentication: the first request went without a token, later ones with a
    // Key Vault token (one Entra grant for all).
    assert_eq!(kv.state.lock().unwrap().unauthenticated, 1);
    let log = w.log.lock().unwrap();
    let kv_requests: Vec<_> = log.iter().filter(|r| r.host == VAULT_HOST).collect();
    assert!(kv_requests[0].path.starts_with("/certificates/"));
    assert!(kv_requests[0].param("api-version").is_some());
    for r in kv_requests.iter().skip(1) {
        let t = r.bearer().unwrap();
        assert_eq!(
            w.tokens.audience(&t).as_deref(),
            Some("https://vault.azure.net")
        );
    }
    assert_eq!(w.entra.state.lock().unwrap().calls, 1);
}

#[tokio::test]
async fn key_vault_errors_say_what_to_do() {
    let w = World::new().await;
    let (kv, transport) = vault(&w).await;
    {
        let mut s = kv.state.lock().unwrap();
        s.certs.insert(
            "leaf".into(),
            vec![("v".into(), issued_leaf("leaf.example"))],
        );
        s.certs
            .insert("secret".into(), vec![("v".into(), self_signed_cert("x"))]);
        s.forbidden.push("secret".into());
    }
    let (cred, _) = w.workload_identity("system:serviceaccount:gatekeeper-system:signet", true);
    let fetch = |name: &str| {
        KeyVaultTrustSource::new(
            &format!("https://{VAULT_HOST}"),
            vec![kv_cert(name, None, "s")],
            &cred,
            &transport,
        )
        .unwrap()
    };
    let e = fetch("secret").fetch().await.unwrap_err().to_string();
    assert!(e.contains("HTTP 403") && e.contains("Forbidden"), "{e}");
    assert!(e.contains("Key Vault Certificate User"), "{e}");

    // A name the vault never had is a configuration mistake, not a deletion.
    let e = fetch("missing").fetch().await.unwrap_err().to_string();
    assert!(
        e.contains("HTTP 404") && e.contains("CertificateNotFound"),
        "{e}"
    );
    assert!(e.contains("check azure.keyVault.certificates"), "{e}");

    let e = fetch("leaf").fetch().await.unwrap_err().to_string();
    assert!(e.contains("neither a CA nor a self-signed"), "{e}");

    kv.state.lock().unwrap().refuse_tokens = true;
    let e = fetch("secret").fetch().await.unwrap_err().to_string();
    assert!(e.contains("HTTP 401") && e.contains("AKV10032"), "{e}");
    assert!(e.contains("tenant"), "{e}");
}

#[test]
fn host_rules() {
    assert!(signet_azure::is_acr_host("myregistry.azurecr.io"));
    assert!(signet_azure::is_acr_host("MyRegistry.azurecr.io"));
    assert!(!signet_azure::is_acr_host("azurecr.io"));
    assert!(!signet_azure::is_acr_host("myregistry.azurecr.io.evil.com"));
    assert!(!signet_azure::is_acr_host("evilazurecr.io"));
    assert!(!signet_azure::is_acr_host("myregistry.azurecr.io:443"));
    assert!(signet_azure::is_key_vault_url(
        "https://signetkv.vault.azure.net"
    ));
    assert!(signet_azure::is_key_vault_url(
        "https://signetkv.vault.azure.net/"
    ));
    assert!(!signet_azure::is_key_vault_url(
        "http://signetkv.vault.azure.net"
    ));
    // Sovereign clouds and Azure Stack Hub: any https host.
    assert!(signet_azure::is_key_vault_url(
        "https://kv.vault.local.azurestack.external"
    ));
    assert!(signet_azure::is_key_vault_url(
        "https://kv.vault.azure.cn:443"
    ));
    assert!(!signet_azure::is_key_vault_url(
        "https://kv.vault.azure.net/keys"
    ));
    assert!(!signet_azure::is_key_vault_url("https://localhost"));
    assert!(!signet_azure::is_key_vault_url("https://kv.example:0"));
}

/// A CA, a code-signing leaf it issued, and the leaf's key: what a CA-issued Key Vault
/// certificate's secret holds. Returns (ca DER, leaf DER, PEM of key + leaf + CA).
fn ca_issued_chain(cn: &str) -> (Vec<u8>, Vec<u8>, String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, format!("{cn} CA"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca, &ca_key);
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    let leaf = p.signed_by(&key, &issuer).unwrap();
    (
        ca_cert.der().to_vec(),
        leaf.der().to_vec(),
        key.serialize_pem(),
        leaf.pem(),
        ca_cert.pem(),
    )
}

fn kv_source(
    w: &World,
    transport: &HttpTransport,
    certs: Vec<KeyVaultCertificate>,
) -> KeyVaultTrustSource {
    let (cred, _) = w.workload_identity("system:serviceaccount:gatekeeper-system:signet", true);
    KeyVaultTrustSource::new(&format!("https://{VAULT_HOST}"), certs, &cred, transport).unwrap()
}

fn ders(stores: &[signet_notation::truststore::TrustStore], name: &str) -> Vec<Vec<u8>> {
    stores
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("store {name} missing"))
        .certificates
        .iter()
        .map(|c| c.der().to_vec())
        .collect()
}

#[tokio::test]
async fn key_vault_keeps_the_newest_enabled_versions_and_drops_disabled_and_deleted() {
    let w = World::new().await;
    let (kv, transport) = vault(&w).await;
    let (v1, v2, v3) = (
        self_signed_cert("v1"),
        self_signed_cert("v2"),
        self_signed_cert("v3"),
    );
    {
        let mut s = kv.state.lock().unwrap();
        s.page_size = 1; // every version on its own page: nextLink is followed
        s.certs.insert(
            "signing".into(),
            vec![
                ("a1".into(), v1.clone()),
                ("b2".into(), v2.clone()),
                ("c3".into(), v3.clone()),
            ],
        );
    }
    let two = KeyVaultCertificate {
        versions: 2,
        ..KeyVaultCertificate::latest("signing", StoreType::Ca, "rotation")
    };
    let source = kv_source(
        &w,
        &transport,
        vec![two, kv_cert("signing", Some("a1"), "pinned")],
    );
    let fetched = source.fetch_detailed().await.unwrap();
    assert_eq!(
        ders(&fetched.stores, "rotation"),
        vec![v3.clone(), v2.clone()]
    );
    assert_eq!(ders(&fetched.stores, "pinned"), vec![v1.clone()]);
    assert!(fetched.dropped.is_empty());

    // Disabling the newest version: the two newest *enabled* ones; the pinned version, once
    // disabled, is dropped.
    kv.state.lock().unwrap().disabled = vec![
        ("signing".into(), "c3".into()),
        ("signing".into(), "a1".into()),
    ];
    let fetched = source.fetch_detailed().await.unwrap();
    assert_eq!(ders(&fetched.stores, "rotation"), vec![v2.clone()]);
    assert!(
        ders(&fetched.stores, "pinned").is_empty(),
        "disabled version still trusted"
    );
    assert_eq!(fetched.dropped.len(), 1, "{:?}", fetched.dropped);
    assert!(fetched.dropped[0].reason.contains("deleted or disabled"));

    // Every version disabled: the certificate is dropped, its store is empty (not absent:
    // an absent store would fall back to files).
    kv.state
        .lock()
        .unwrap()
        .disabled
        .push(("signing".into(), "b2".into()));
    let fetched = source.fetch_detailed().await.unwrap();
    assert!(ders(&fetched.stores, "rotation").is_empty());
    assert!(fetched
        .dropped
        .iter()
        .any(|d| d.reason.contains("disabled")));

    // Deleted (404) after it was seen: dropped at this refresh, not an error.
    kv.state.lock().unwrap().disabled.clear();
    source.fetch().await.unwrap();
    kv.state.lock().unwrap().certs.remove("signing");
    let fetched = source.fetch_detailed().await.unwrap();
    assert!(ders(&fetched.stores, "rotation").is_empty());
    assert!(ders(&fetched.stores, "pinned").is_empty());
    assert!(
        fetched.dropped.iter().any(|d| d.reason.contains("deleted")),
        "{:?}",
        fetched.dropped
    );
    assert_eq!(source.failed_fetches(), 0);

    // A vault that refuses us is a failed fetch (the caller keeps its last good set), counted.
    // (An unreachable vault fails the same way, after azure_core's retries, about a minute.)
    kv.state.lock().unwrap().refuse_tokens = true;
    source.fetch().await.unwrap_err();
    assert_eq!(source.failed_fetches(), 1);
}

#[tokio::test]
async fn key_vault_chain_from_secret_pem_and_pkcs12_anchors_the_issuing_ca() {
    let w = World::new().await;
    let (kv, transport) = vault(&w).await;
    let (ca_der, leaf_der, key_pem, leaf_pem, ca_pem) = ca_issued_chain("signer.example");
    let (ca2_der, leaf2_der, key2_pem, leaf2_pem, ca2_pem) = ca_issued_chain("p12.example");

    // PKCS#12 as Key Vault stores it: base64, no password. Made by the real openssl CLI.
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n);
    std::fs::write(path("key.pem"), &key2_pem).unwrap();
    std::fs::write(path("leaf.pem"), &leaf2_pem).unwrap();
    std::fs::write(path("ca.pem"), &ca2_pem).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["pkcs12", "-export", "-passout", "pass:"])
        .arg("-inkey")
        .arg(path("key.pem"))
        .arg("-in")
        .arg(path("leaf.pem"))
        .arg("-certfile")
        .arg(path("ca.pem"))
        .arg("-out")
        .arg(path("bundle.p12"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p12 = std::fs::read(path("bundle.p12")).unwrap();
    {
        use base64::Engine as _;
        let mut s = kv.state.lock().unwrap();
        s.certs
            .insert("pem-chain".into(), vec![("v1".into(), leaf_der.clone())]);
        s.certs
            .insert("p12-chain".into(), vec![("v1".into(), leaf2_der.clone())]);
        s.secrets.insert(
            ("pem-chain".into(), "v1".into()),
            (
                "application/x-pem-file".into(),
                format!("{key_pem}{leaf_pem}{ca_pem}"),
            ),
        );
        s.secrets.insert(
            ("p12-chain".into(), "v1".into()),
            (
                "application/x-pkcs12".into(),
                base64::engine::general_purpose::STANDARD.encode(&p12),
            ),
        );
    }
    let chain = |name: &str, store: &str| KeyVaultCertificate {
        chain_from_secret: true,
        ..KeyVaultCertificate::latest(name, StoreType::Ca, store)
    };
    let source = kv_source(
        &w,
        &transport,
        vec![chain("pem-chain", "pem"), chain("p12-chain", "p12")],
    );
    let stores = source.fetch().await.unwrap();
    // The leaf (the signing certificate) is not an anchor; its issuing CA is.
    assert_eq!(ders(&stores, "pem"), vec![ca_der]);
    assert_eq!(ders(&stores, "p12"), vec![ca2_der]);

    // Without chainFromSecret the leaf alone is refused, with what to do.
    let e = kv_source(&w, &transport, vec![kv_cert("pem-chain", None, "x")])
        .fetch()
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("neither a CA nor a self-signed"), "{e}");

    // A secret with only the leaf: no anchor, said clearly.
    kv.state.lock().unwrap().secrets.insert(
        ("pem-chain".into(), "v1".into()),
        (
            "application/x-pem-file".into(),
            format!("{key_pem}{leaf_pem}"),
        ),
    );
    let e = kv_source(&w, &transport, vec![chain("pem-chain", "pem")])
        .fetch()
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("holds no CA or self-signed certificate"), "{e}");

    // Reading secrets needs its own permission.
    kv.state.lock().unwrap().forbidden.push("p12-chain".into());
    let e = kv_source(&w, &transport, vec![chain("p12-chain", "p12")])
        .fetch()
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("HTTP 403"), "{e}");
}

/// Laptops: the Azure CLI's login (`az account get-access-token`, a fake `az` on the search
/// path) exchanged for an ACR refresh token, as `az acr login` would.
#[tokio::test]
async fn azure_cli_login_is_exchanged_for_an_acr_token() {
    use std::os::unix::fs::PermissionsExt as _;
    let w = World::new().await;
    let acr = Acr::start(&w.pki, w.tokens.clone(), w.log.clone()).await;
    let transport =
        w.transport
            .clone()
            .resolve("localhost", acr.server.addr.port(), acr.server.addr);
    let bin = tempfile::tempdir().unwrap();
    let asked = bin.path().join("asked");
    let token = w.tokens.issue("az", "https://containerregistry.azure.net");
    let az = bin.path().join("az");
    let write_az = |body: &str| {
        std::fs::write(
            &az,
            format!("#!/bin/sh\necho \"$@\" >> {}\n{body}\n", asked.display()),
        )
        .unwrap();
        std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    write_az(&format!(
        r#"printf '{{"accessToken":"{token}","expiresOn":"2099-01-01 00:00:00.000000","expires_on":4070908800,"subscription":"s","tenant":"{TENANT}","tokenType":"Bearer"}}'"#
    ));
    let search_path = std::ffi::OsString::from(format!("{}:/usr/bin:/bin", bin.path().display()));
    let cli = |search_path: &std::ffi::OsString| {
        EntraCredential::new(
            CredentialConfig::AzureCli {
                tenant_id: None,
                search_path: Some(search_path.clone()),
            },
            &transport,
        )
        .unwrap()
    };
    let source = AcrTokenSource::new(
        [acr.host.clone()],
        cli(&search_path),
        transport.clone(),
        Arc::new(NoCredentials),
    );
    let client = registry_client(&w.pki, source.clone().into_source());
    let reference = Reference::parse(&format!("{}/net-monitor:v1", acr.host)).unwrap();
    client.resolve(&reference, deadline()).await.unwrap();
    let args = std::fs::read_to_string(&asked).unwrap();
    assert!(
        args.contains("account get-access-token") && args.contains(ACR_SCOPE),
        "{args}"
    );
    assert_eq!(
        w.tokens
            .audience(&acr.state.lock().unwrap().last_exchange_form["access_token"])
            .as_deref(),
        Some("https://containerregistry.azure.net")
    );

    // Not signed in: REGISTRY_AUTH_FAILED saying to run `az login`.
    write_az("echo \"ERROR: Please run 'az login' to setup account.\" >&2; exit 1");
    let source = AcrTokenSource::new(
        [acr.host.clone()],
        cli(&search_path),
        transport.clone(),
        Arc::new(NoCredentials),
    );
    let e = source.credential(&acr.host).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::RegistryAuthFailed);
    assert!(e.to_string().contains("az login"), "{e}");

    // No `az` at all: said just as clearly.
    let source = AcrTokenSource::new(
        [acr.host.clone()],
        cli(&std::ffi::OsString::from("/nonexistent")),
        transport,
        Arc::new(NoCredentials),
    );
    let e = source.credential(&acr.host).await.unwrap_err();
    assert!(e.to_string().contains("az login"), "{e}");
}

/// AKS's HTTP-proxy feature: Entra ID and Key Vault through `HTTPS_PROXY` (a CONNECT proxy
/// run by the test, reaching the fakes behind their real host names). The proxy sees the
/// host names and nothing else: no Entra assertion, no bearer token.
#[tokio::test]
async fn entra_and_key_vault_through_a_connect_proxy() {
    use signet_testkit::registry::proxy::Proxy;
    let base = World::new().await;
    let kv = KeyVault::start(&base.pki, base.tokens.clone(), base.log.clone()).await;
    let routes = std::collections::HashMap::from([
        (format!("{ENTRA_HOST}:443"), base.entra.server.addr),
        (format!("{VAULT_HOST}:443"), kv.server.addr),
    ]);
    let proxy = Proxy::start_with_routes(None, routes).await;
    // Only the proxy is reachable: a request that went around it would fail.
    let proxied = base
        .pki
        .transport()
        .resolve("proxy.corp.example", 3128, proxy.addr)
        .with_proxy(
            signet_http::ProxyPolicy::explicit("", "http://proxy.corp.example:3128", "", "")
                .unwrap(),
        );
    let w = World {
        transport: proxied.clone(),
        ..base
    };
    let cert = self_signed_cert("through the proxy");
    kv.state
        .lock()
        .unwrap()
        .certs
        .insert("signing".into(), vec![("v1".into(), cert.clone())]);
    let stores = kv_source(
        &w,
        &proxied,
        vec![KeyVaultCertificate::latest("signing", StoreType::Ca, "s")],
    )
    .fetch()
    .await
    .unwrap();
    assert_eq!(ders(&stores, "s"), vec![cert]);

    let seen = proxy.seen();
    let targets: std::collections::BTreeSet<&str> =
        seen.iter().map(|s| s.target.as_str()).collect();
    assert_eq!(
        targets,
        [format!("{ENTRA_HOST}:443"), format!("{VAULT_HOST}:443")]
            .iter()
            .map(String::as_str)
            .collect()
    );
    for s in &seen {
        assert_eq!(s.method, "CONNECT");
        assert!(s.header("authorization").is_none(), "{s:?}");
    }
    // Pooled connections: fewer tunnels than requests (challenge, token, list, get).
    assert!(
        seen.len() < w.log.lock().unwrap().len(),
        "{} tunnels",
        seen.len()
    );
}
