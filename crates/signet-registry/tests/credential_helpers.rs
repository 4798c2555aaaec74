//! Docker credential helpers (`credsStore`, `credHelpers`) against the real registry: the
//! `docker-credential-NAME get` protocol with helper scripts written by the test.
#![allow(clippy::unwrap_used)]

use signet_testkit::registry as support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use signet_notation::ErrorCode;
use signet_registry::{
    Credential, DockerConfig, Reference, RegistryClient, RegistryConfig, RegistryError, TokenSource,
};
use support::push::Pusher;
use support::registry::{Registry, RegistryAuth};
use support::tls::TestPki;
use tokio::time::Instant;

const USER: &str = "tester";
const PASS: &str = "s3cret-pass";

fn basic(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

/// Writes `docker-credential-NAME` (a shell script) into `dir`.
fn helper(dir: &Path, name: &str, script: &str) {
    let path = dir.join(format!("docker-credential-{name}"));
    std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn client(pki: &TestPki, config: DockerConfig) -> RegistryClient {
    let mut rc = RegistryConfig::default();
    rc.add_ca_pem(pki.ca_pem.as_bytes()).unwrap();
    rc.credentials = config.into_source();
    RegistryClient::new(rc).unwrap()
}

#[tokio::test]
async fn creds_store_and_cred_helpers_are_asked_with_the_server_url() {
    let pki = TestPki::new();
    let reg = Registry::start(
        &pki,
        RegistryAuth::Htpasswd {
            username: USER.into(),
            password: PASS.into(),
        },
    )
    .await;
    let pusher = Pusher::new(&reg.url(), pki.client_config(), Some(basic(USER, PASS)));
    pusher.image("team/app", "v1").await;
    let reference = Reference::parse(&format!("{}/team/app:v1", reg.host)).unwrap();
    let deadline = || Instant::now() + Duration::from_secs(20);

    let dir = tempfile::tempdir().unwrap();
    let asked = dir.path().join("asked");
    // The keychain helper: answers for the registry it was asked about, records the question.
    helper(
        dir.path(),
        "desktop",
        &format!(
            r#"[ "$1" = get ] || exit 3
read url
echo "$url" >> {asked}
if [ "$url" = "{host}" ]; then
  printf '{{"ServerURL":"%s","Username":"{USER}","Secret":"{PASS}"}}' "$url"
else
  echo "credentials not found in native keychain"; exit 1
fi"#,
            asked = asked.display(),
            host = reg.host
        ),
    );
    helper(
        dir.path(),
        "broken",
        "echo 'keychain locked: unlock it first' >&2; exit 2",
    );
    helper(dir.path(), "garbage", "echo 'not json'");
    helper(
        dir.path(),
        "token",
        r#"read url; printf '{"ServerURL":"%s","Username":"<token>","Secret":"refresh-123"}' "$url""#,
    );
    helper(
        dir.path(),
        "chatty",
        "head -c 200000 /dev/zero | tr '\\0' 'x'",
    );

    // credsStore: Docker Desktop's layout (auths holds only markers).
    let desktop = DockerConfig::from_json(
        format!(
            r#"{{"auths": {{"{}": {{}}}}, "credsStore": "desktop"}}"#,
            reg.host
        )
        .as_bytes(),
    )
    .unwrap()
    .with_helper_dir(dir.path());
    let c = client(&pki, desktop.clone());
    c.resolve(&reference, deadline()).await.unwrap();
    let questions = std::fs::read_to_string(&asked).unwrap();
    assert_eq!(questions.trim(), reg.host);
    // Docker Hub is asked for by its legacy URL; not found = anonymous.
    assert_eq!(desktop.credential("docker.io").await.unwrap(), None);
    assert!(std::fs::read_to_string(&asked)
        .unwrap()
        .contains("https://index.docker.io/v1/"));

    // credHelpers wins over credsStore and auths for its registry.
    let per_registry = DockerConfig::from_json(
        format!(
            r#"{{"auths": {{"{h}": {{"auth": "{bad}"}}}}, "credsStore": "broken", "credHelpers": {{"{h}": "desktop"}}}}"#,
            h = reg.host,
            bad = "d3Jvbmc6d3Jvbmc=" // wrong:wrong
        )
        .as_bytes(),
    )
    .unwrap()
    .with_helper_dir(dir.path());
    client(&pki, per_registry)
        .resolve(&reference, deadline())
        .await
        .unwrap();

    // `<token>`: the secret is an identity (refresh) token.
    let token = DockerConfig::from_json(br#"{"credsStore": "token"}"#)
        .unwrap()
        .with_helper_dir(dir.path());
    assert_eq!(
        token.credential("myacr.azurecr.io").await.unwrap(),
        Some(Credential::IdentityToken("refresh-123".into()))
    );

    // Failures name the helper and say what it said; the code is REGISTRY_AUTH_FAILED.
    for (name, expect) in [
        ("broken", "keychain locked"),
        ("garbage", "not the credential JSON"),
        ("chatty", "more than 65536 bytes"),
        ("missing", "not installed"),
    ] {
        let config = DockerConfig::from_json(format!(r#"{{"credsStore": "{name}"}}"#).as_bytes())
            .unwrap()
            .with_helper_dir(dir.path());
        let err = client(&pki, config)
            .resolve(&reference, deadline())
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::RegistryAuthFailed, "{err}");
        assert!(
            matches!(err, RegistryError::CredentialHelper { .. }),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains(&format!("docker-credential-{name}")) && text.contains(expect),
            "{name}: {text}"
        );
    }

    // A helper name is never a path.
    let err = DockerConfig::from_json(br#"{"credsStore": "../../bin/sh"}"#).unwrap_err();
    assert!(err.to_string().contains("credsStore"), "{err}");
}
