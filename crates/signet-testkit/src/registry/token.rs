//! A bearer-token server for distribution's `auth: token:` mode: issues ES256 JWTs whose
//! `x5c` is a certificate issued by the test CA (the registry's `rootcertbundle`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;

use super::server::{read_body, respond, serve, Handler, Server};
use super::tls::TestPki;

pub const SERVICE: &str = "signet-test-registry";
pub const ISSUER: &str = "signet-test-issuer";

/// What the token server accepts and how it answers.
#[derive(Debug, Clone, Default)]
pub struct TokenPolicy {
    /// Basic credentials required (None: anonymous tokens for anyone).
    pub basic: Option<(String, String)>,
    /// Refresh token accepted on POST (identity tokens).
    pub refresh_token: Option<String>,
    /// `expires_in` answered.
    pub expires_in: u64,
    /// Answer with `access_token` instead of `token`.
    pub access_token_field: bool,
}

/// Everything the token server saw.
#[derive(Debug, Default)]
pub struct TokenLog {
    /// (method, scope, had Basic credentials)
    pub requests: Vec<(String, String, bool)>,
}

#[derive(Debug)]
pub struct TokenServer {
    pub server: Server,
    pub realm: String,
    pub issued: Arc<AtomicUsize>,
    pub log: Arc<Mutex<TokenLog>>,
}

struct Keys {
    cert_b64: String,
    key: aws_lc_rs::signature::EcdsaKeyPair,
}

impl TokenServer {
    pub async fn start(pki: &TestPki, policy: TokenPolicy) -> TokenServer {
        let key = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &pki.token_key_pkcs8,
        )
        .unwrap();
        let keys = Arc::new(Keys {
            cert_b64: base64::engine::general_purpose::STANDARD.encode(&pki.token_cert_der),
            key,
        });
        let issued = Arc::new(AtomicUsize::new(0));
        let log = Arc::new(Mutex::new(TokenLog::default()));
        let policy = Arc::new(policy);
        let (i2, l2) = (issued.clone(), log.clone());
        let handler: Handler = Arc::new(move |req| {
            let keys = keys.clone();
            let policy = policy.clone();
            let issued = i2.clone();
            let log = l2.clone();
            Box::pin(async move {
                let method = req.method().to_string();
                let auth = req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let mut params = super::server::query(req.uri());
                if req.method() == http::Method::POST {
                    let body = read_body(req.into_body()).await;
                    params.extend(super::server::form(&String::from_utf8_lossy(&body)));
                }
                let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                let scope = get("scope").unwrap_or_default();
                log.lock()
                    .unwrap()
                    .requests
                    .push((method.clone(), scope.clone(), auth.is_some()));
                let authorised = if method == "POST" {
                    get("grant_type").as_deref() == Some("refresh_token")
                        && policy.refresh_token.is_some()
                        && get("refresh_token") == policy.refresh_token
                } else {
                    match &policy.basic {
                        None => true,
                        Some((u, p)) => {
                            auth.as_deref()
                                == Some(
                                    format!(
                                        "Basic {}",
                                        base64::engine::general_purpose::STANDARD
                                            .encode(format!("{u}:{p}"))
                                    )
                                    .as_str(),
                                )
                        }
                    }
                };
                if !authorised || get("service").as_deref() != Some(SERVICE) {
                    return respond(401, &[], r#"{"details":"bad credentials"}"#);
                }
                let token = jwt(&keys, &scope, policy.expires_in.max(1));
                issued.fetch_add(1, Ordering::SeqCst);
                let field = if policy.access_token_field {
                    "access_token"
                } else {
                    "token"
                };
                let body = serde_json::json!({ field: token, "expires_in": policy.expires_in });
                respond(
                    200,
                    &[("content-type", "application/json".into())],
                    body.to_string(),
                )
            })
        });
        let server = serve(Some(pki.server_config()), handler).await;
        let realm = format!("https://127.0.0.1:{}/token", server.addr.port());
        TokenServer {
            server,
            realm,
            issued,
            log,
        }
    }
}

fn jwt(keys: &Keys, scope: &str, expires_in: u64) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [keys.cert_b64]});
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // scope: repository:<name>:<actions>
    let mut access = Vec::new();
    let parts: Vec<&str> = scope.splitn(3, ':').collect();
    if parts.len() == 3 {
        access.push(serde_json::json!({
            "type": parts[0], "name": parts[1],
            "actions": parts[2].split(',').collect::<Vec<_>>(),
        }));
    }
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": "tester", "aud": SERVICE,
        "exp": now + expires_in, "nbf": now - 10, "iat": now,
        "jti": format!("{now}-{}", rand_u64()), "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let sig = keys.key.sign(&rng, signing_input.as_bytes()).unwrap();
    format!("{signing_input}.{}", b64(sig.as_ref()))
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    u64::from_le_bytes(b)
}

/// A token for pushing (all actions) without going through HTTP.
pub fn push_token(pki: &TestPki, repository: &str) -> String {
    let key = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &pki.token_key_pkcs8,
    )
    .unwrap();
    let keys = Keys {
        cert_b64: base64::engine::general_purpose::STANDARD.encode(&pki.token_cert_der),
        key,
    };
    jwt(&keys, &format!("repository:{repository}:pull,push"), 600)
}
