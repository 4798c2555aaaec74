//! Trust stores from a remote source (Key Vault's role), applied on an interval: a failed
//! fetch keeps the trust in use and is counted, a fetched set becomes trust, and a set from
//! which a certificate was dropped stops trusting it. Time is tokio's paused clock.
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use signet_engine::EngineConfig;
use signet_notation::cert::Certificate;
use signet_notation::truststore::{StoreType, TrustStore};
use signet_server::verifier::BoxFuture;
use signet_server::{EngineVerifier, FetchedStores, ImageVerifier, TrustStoreSource};

/// A source that answers from a script, one answer a fetch.
struct Scripted(Mutex<VecDeque<Result<FetchedStores, String>>>);

impl TrustStoreSource for Scripted {
    fn describe(&self) -> &str {
        "https://test.vault.example"
    }
    fn fetch(&self) -> BoxFuture<'_, Result<FetchedStores, String>> {
        let next = self.0.lock().unwrap().pop_front();
        Box::pin(async move { next.unwrap_or_else(|| Err("script ended".into())) })
    }
}

fn ca_certificate() -> Certificate {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Vault CA");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    Certificate::from_der(params.self_signed(&key).unwrap().der().to_vec()).unwrap()
}

fn store(certificates: Vec<Certificate>) -> FetchedStores {
    FetchedStores {
        stores: vec![TrustStore {
            store_type: StoreType::Ca,
            name: "vault".into(),
            certificates,
        }],
        dropped: Vec::new(),
    }
}

#[tokio::test(start_paused = true)]
async fn fetched_stores_become_trust_and_dropped_certificates_stop_being_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("trustpolicy.json");
    std::fs::write(
        &policy,
        r#"{"version": "1.0", "trustPolicies": [{"name": "all", "registryScopes": ["*"],
            "signatureVerification": {"level": "strict"}, "trustStores": ["ca:vault"],
            "trustedIdentities": ["*"]}]}"#,
    )
    .unwrap();
    let root = dir.path().join("truststore");
    std::fs::create_dir_all(root.join("x509/ca")).unwrap();
    let verifier = Arc::new(EngineVerifier::new(EngineConfig::default(), policy, root));
    let ca = ca_certificate();
    let mut dropped = store(Vec::new());
    dropped.dropped = vec![("signer".into(), "disabled in the vault".into())];
    let source = Arc::new(Scripted(Mutex::new(VecDeque::from([
        Err("vault unreachable".to_owned()),
        Ok(store(vec![ca.clone()])),
        Ok(store(vec![ca.clone()])),
        Ok(dropped),
    ]))));
    let trusted = |v: &EngineVerifier| {
        v.trusted_certificates()
            .iter()
            .any(|c| c.store == "vault" && c.subject.contains("Vault CA"))
    };

    // The first fetch fails: nothing from the vault is trusted, and that is counted.
    let outcomes =
        signet_server::trust_refresh::start(source, verifier.clone(), Duration::from_secs(3600))
            .await;
    assert_eq!((outcomes.successes(), outcomes.failures()), (0, 1));
    assert!(!trusted(&verifier));
    assert!(!verifier.is_ready());

    // Retried within 30 s (not the hour): the fetched CA becomes trust.
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert_eq!((outcomes.successes(), outcomes.failures()), (1, 1));
    assert!(trusted(&verifier), "{:?}", verifier.last_error());
    assert!(verifier.is_ready());

    // Unchanged an hour later: still trusted.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(outcomes.successes(), 2);
    assert!(trusted(&verifier));

    // The certificate was disabled in the vault: no longer trusted, and not ready (the
    // policy's only store is now empty).
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(outcomes.successes(), 3);
    assert!(!trusted(&verifier));
    assert!(!verifier.is_ready());
}
