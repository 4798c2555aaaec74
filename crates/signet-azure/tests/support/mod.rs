//! Local fakes of the Azure endpoints Signet talks to, speaking their documented protocols:
//!
//! - [`Entra`]: `POST /{tenant}/oauth2/v2.0/token` (client credentials with a client assertion
//!   or a secret); errors as Entra sends them (`error`, `error_description` with the AADSTS
//!   code, `error_codes`), `expires_in` as a number (v2.0 endpoint).
//! - [`Imds`]: `GET /metadata/identity/oauth2/token?api-version&resource[&client_id]`, plain
//!   HTTP, `Metadata: true` required; every number in the answer is a string, as IMDS does.
//! - [`Acr`]: `/v2/` answering a Bearer challenge, `POST /oauth2/exchange`,
//!   `POST /oauth2/token` (refresh-token grant), and a manifest served only with an access
//!   token for its repository.
//! - [`KeyVault`]: `GET /certificates/{name}[/{version}]`, challenge authentication (401 with
//!   `authorization`/`resource`), 401/403/404 error bodies as Key Vault sends them.
//!
//! Tokens are opaque strings whose audience the shared [`Tokens`] registry remembers, so each
//! fake checks that it was given a token meant for it.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use signet_azure::HttpTransport;

pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
pub const VAULT_HOST: &str = "signetkv.vault.azure.net";
pub const ENTRA_HOST: &str = "login.microsoftonline.com";

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An unsigned JWT with these claims (the fakes never verify signatures; Entra would).
pub fn jwt(claims: serde_json::Value) -> String {
    let b = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!(
        "{}.{}.{}",
        b(br#"{"alg":"RS256","typ":"JWT"}"#),
        b(claims.to_string().as_bytes()),
        b(b"signature")
    )
}

/// A projected service-account token, as Kubernetes writes it.
pub fn sa_token(subject: &str, serial: u32) -> String {
    jwt(serde_json::json!({
        "aud": ["api://AzureADTokenExchange"],
        "iss": "https://oidc.prod-aks.azure.com/abc/",
        "sub": subject,
        "exp": now() + 3600,
        "jti": serial,
    }))
}

// ---------------------------------------------------------------------------------------
// PKI and the server loop

/// One CA and a server certificate for every name the fakes answer to (the testkit's PKI).
pub struct Pki {
    pub ca_pem: String,
    pub server: Arc<rustls::ServerConfig>,
}

impl Pki {
    pub fn new() -> Pki {
        let pki =
            signet_testkit::registry::tls::TestPki::with_server_names(&[ENTRA_HOST, VAULT_HOST]);
        Pki {
            ca_pem: pki.ca_pem.clone(),
            server: pki.server_config(),
        }
    }

    /// A transport trusting only this CA and reaching nothing but pinned addresses.
    pub fn transport(&self) -> HttpTransport {
        HttpTransport::new()
            .with_roots_pem(self.ca_pem.as_bytes())
            .unwrap()
            .only_resolved()
    }
}

/// A self-signed code-signing certificate (what `az keyvault certificate create` with
/// `issuerParameters.name = Self` makes), DER.
pub fn self_signed_cert(cn: &str) -> Vec<u8> {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.self_signed(&key).unwrap().der().to_vec()
}

/// A leaf issued by another CA (not a valid trust anchor), DER.
pub fn issued_leaf(cn: &str) -> Vec<u8> {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.distinguished_name.push(DnType::CommonName, "Some CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let issuer = Issuer::from_params(&ca, &ca_key);
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.signed_by(&key, &issuer).unwrap().der().to_vec()
}

#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub host: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Req {
    pub fn param(&self, k: &str) -> Option<String> {
        self.query
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    }
    pub fn form(&self) -> HashMap<String, String> {
        parse_form(std::str::from_utf8(&self.body).unwrap_or(""))
            .into_iter()
            .collect()
    }
    pub fn header(&self, k: &str) -> Option<String> {
        self.headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
    pub fn bearer(&self) -> Option<String> {
        self.header("authorization")
            .and_then(|a| a.strip_prefix("Bearer ").map(str::to_owned))
    }
}

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

pub fn json(status: u16, v: serde_json::Value) -> Resp {
    Resp {
        status,
        headers: vec![(
            "content-type".into(),
            "application/json; charset=utf-8".into(),
        )],
        body: Bytes::from(v.to_string()),
    }
}

impl Resp {
    pub fn header(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.to_owned(), v.into()));
        self
    }
}

pub type Handler = Arc<dyn Fn(Req) -> Resp + Send + Sync>;

/// Every request every fake got, for "which token went where" checks.
pub type Log = Arc<Mutex<Vec<Req>>>;

/// A fake's server: the testkit's HTTP server, every request logged as a [`Req`].
pub type Server = signet_testkit::registry::server::Server;

pub async fn serve(tls: Option<Arc<rustls::ServerConfig>>, log: Log, handler: Handler) -> Server {
    use signet_testkit::registry::server::{full, read_body, serve as serve_http};
    let handler: signet_testkit::registry::server::Handler =
        Arc::new(move |r: http::Request<hyper::body::Incoming>| {
            let handler = handler.clone();
            let log = log.clone();
            Box::pin(async move {
                let (parts, body) = r.into_parts();
                let req = Req {
                    method: parts.method.to_string(),
                    host: parts
                        .headers
                        .get("host")
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or("")
                        .to_owned(),
                    path: parts.uri.path().to_owned(),
                    query: parse_form(parts.uri.query().unwrap_or("")),
                    headers: parts.headers,
                    body: read_body(body).await,
                };
                log.lock().unwrap().push(req.clone());
                let resp = handler(req);
                let mut b = http::Response::builder().status(resp.status);
                for (k, v) in &resp.headers {
                    b = b.header(k, v);
                }
                b.body(full(resp.body)).unwrap()
            })
        });
    serve_http(tls, handler).await
}

/// `application/x-www-form-urlencoded` pairs (`+` is a space), the testkit's decoder.
pub fn parse_form(s: &str) -> Vec<(String, String)> {
    signet_testkit::registry::server::form(s)
}

// ---------------------------------------------------------------------------------------
// Tokens

/// token → audience (resource), for every token any fake issued.
#[derive(Default, Clone)]
pub struct Tokens(Arc<Mutex<HashMap<String, String>>>);

impl Tokens {
    pub fn issue(&self, prefix: &str, audience: &str) -> String {
        let mut m = self.0.lock().unwrap();
        let t = format!("{prefix}-{}-{}", m.len() + 1, now());
        m.insert(t.clone(), audience.to_owned());
        t
    }
    pub fn audience(&self, token: &str) -> Option<String> {
        self.0.lock().unwrap().get(token).cloned()
    }
    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().keys().cloned().collect()
    }
}

// ---------------------------------------------------------------------------------------
// Entra ID

#[derive(Default)]
pub struct EntraState {
    /// Service-account tokens that match a federated identity credential.
    pub accepted_assertions: Vec<String>,
    pub client_secret: Option<String>,
    pub calls: usize,
}

pub struct Entra {
    pub state: Arc<Mutex<EntraState>>,
    pub server: Server,
}

fn aad_error(status: u16, error: &str, code: u32, description: &str) -> Resp {
    json(
        status,
        serde_json::json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description} Trace ID: 0f5c Correlation ID: 9a1e Timestamp: 2026-01-01 00:00:00Z"),
            "error_codes": [code],
            "timestamp": "2026-01-01 00:00:00Z",
            "trace_id": "0f5c",
            "correlation_id": "9a1e",
            "error_uri": format!("https://{ENTRA_HOST}/error?code={code}"),
        }),
    )
}

impl Entra {
    pub async fn start(pki: &Pki, tokens: Tokens, log: Log) -> Entra {
        let state = Arc::new(Mutex::new(EntraState::default()));
        let st = state.clone();
        let handler: Handler = Arc::new(move |r: Req| {
            let mut s = st.lock().unwrap();
            s.calls += 1;
            let path = format!("/{TENANT}/oauth2/v2.0/token");
            if r.method != "POST" || !r.path.ends_with("/oauth2/v2.0/token") {
                return json(404, serde_json::json!({"error": "not_found"}));
            }
            if r.path != path {
                return aad_error(400, "invalid_request", 90002, "Tenant 'x' not found.");
            }
            let f = r.form();
            if f.get("grant_type").map(String::as_str) != Some("client_credentials") {
                return aad_error(
                    400,
                    "unsupported_grant_type",
                    70003,
                    "The app requested an unsupported grant type.",
                );
            }
            if f.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
                return aad_error(
                    400,
                    "unauthorized_client",
                    700016,
                    &format!(
                        "Application with identifier '{}' was not found in the directory.",
                        f.get("client_id").cloned().unwrap_or_default()
                    ),
                );
            }
            if let Some(assertion) = f.get("client_assertion") {
                if f.get("client_assertion_type").map(String::as_str)
                    != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
                {
                    return aad_error(400, "invalid_request", 50027, "Invalid JWT token.");
                }
                if !s.accepted_assertions.contains(assertion) {
                    return aad_error(400, "invalid_client", 70021, "No matching federated identity record found for presented assertion. Assertion Issuer: 'https://oidc.prod-aks.azure.com/abc/'.");
                }
            } else if let Some(secret) = f.get("client_secret") {
                if s.client_secret.as_ref() != Some(secret) {
                    return aad_error(
                        401,
                        "invalid_client",
                        7000215,
                        "Invalid client secret provided.",
                    );
                }
            } else {
                return aad_error(
                    400,
                    "invalid_client",
                    7000218,
                    "The request body must contain client_assertion or client_secret.",
                );
            }
            let Some(audience) = f.get("scope").and_then(|s| s.strip_suffix("/.default")) else {
                return aad_error(
                    400,
                    "invalid_scope",
                    1002012,
                    "The provided value for scope is not valid.",
                );
            };
            let token = tokens.issue("entra", audience);
            json(
                200,
                serde_json::json!({
                    "token_type": "Bearer",
                    "expires_in": 3599,
                    "ext_expires_in": 3599,
                    "access_token": token,
                }),
            )
        });
        let server = serve(Some(pki.server.clone()), log, handler).await;
        Entra { state, server }
    }
}

// ---------------------------------------------------------------------------------------
// IMDS

pub struct Imds {
    pub calls: Arc<Mutex<usize>>,
    pub server: Server,
}

impl Imds {
    /// `client_id`: the one user-assigned identity on the "VM".
    pub async fn start(tokens: Tokens, log: Log, client_id: &'static str) -> Imds {
        let calls = Arc::new(Mutex::new(0));
        let c = calls.clone();
        let handler: Handler = Arc::new(move |r: Req| {
            *c.lock().unwrap() += 1;
            if r.path != "/metadata/identity/oauth2/token" || r.method != "GET" {
                return json(404, serde_json::json!({"error": "not_found"}));
            }
            if r.header("metadata").as_deref() != Some("true") {
                return json(
                    400,
                    serde_json::json!({"error": "invalid_request", "error_description": "Required metadata header not specified"}),
                );
            }
            if r.param("api-version").is_none() {
                return json(
                    400,
                    serde_json::json!({"error": "invalid_request", "error_description": "Required query variable 'api-version' is missing"}),
                );
            }
            if let Some(id) = r.param("client_id") {
                if id != client_id {
                    return json(
                        400,
                        serde_json::json!({"error": "invalid_request", "error_description": "Identity not found"}),
                    );
                }
            }
            let Some(resource) = r.param("resource") else {
                return json(
                    400,
                    serde_json::json!({"error": "invalid_request", "error_description": "Required query variable 'resource' is missing"}),
                );
            };
            let resource = resource.trim_end_matches('/').to_owned();
            let token = tokens.issue("imds", &resource);
            let t = now();
            json(
                200,
                serde_json::json!({
                    "access_token": token,
                    "client_id": client_id,
                    "expires_in": "86399",
                    "expires_on": (t + 86399).to_string(),
                    "ext_expires_in": "86399",
                    "not_before": t.to_string(),
                    "resource": resource,
                    "token_type": "Bearer",
                }),
            )
        });
        let server = serve(None, log, handler).await;
        Imds { calls, server }
    }
}

// ---------------------------------------------------------------------------------------
// ACR

#[derive(Default)]
pub struct AcrState {
    pub exchanges: usize,
    pub token_grants: usize,
    /// refresh tokens issued by the exchange
    pub refresh: Vec<String>,
    /// access token → scope
    pub access: HashMap<String, String>,
    /// Identities (Entra tokens' audience is checked; this refuses the pull role).
    pub deny_exchange: bool,
    pub last_exchange_form: HashMap<String, String>,
}

pub struct Acr {
    pub state: Arc<Mutex<AcrState>>,
    pub server: Server,
    pub host: String,
    pub manifest: Bytes,
    pub digest: String,
}

pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

impl Acr {
    pub async fn start(pki: &Pki, tokens: Tokens, log: Log) -> Acr {
        // Bind first to know the host name the registry calls itself.
        let state = Arc::new(Mutex::new(AcrState::default()));
        let manifest = Bytes::from(
            serde_json::json!({
                "schemaVersion": 2,
                "mediaType": MANIFEST_TYPE,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
                           "size": 2},
                "layers": []
            })
            .to_string(),
        );
        let digest = format!(
            "sha256:{}",
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &manifest)
                .as_ref()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        let host_slot: Arc<Mutex<String>> = Arc::default();
        let (st, hs, m, d) = (
            state.clone(),
            host_slot.clone(),
            manifest.clone(),
            digest.clone(),
        );
        let handler: Handler = Arc::new(move |r: Req| {
            let host = hs.lock().unwrap().clone();
            let mut s = st.lock().unwrap();
            let challenge = |scope: Option<&str>, error: Option<&str>| {
                let mut c =
                    format!("Bearer realm=\"https://{host}/oauth2/token\",service=\"{host}\"");
                if let Some(scope) = scope {
                    c.push_str(&format!(",scope=\"{scope}\""));
                }
                if let Some(e) = error {
                    c.push_str(&format!(",error=\"{e}\""));
                }
                json(401, serde_json::json!({"errors":[{"code":"UNAUTHORIZED","message":"authentication required, visit https://aka.ms/acr/authorization for more information.","detail":null}]}))
                    .header("www-authenticate", c)
                    .header("docker-distribution-api-version", "registry/2.0")
            };
            match (r.method.as_str(), r.path.as_str()) {
                ("POST", "/oauth2/exchange") => {
                    s.exchanges += 1;
                    let f = r.form();
                    s.last_exchange_form = f.clone();
                    if f.get("grant_type").map(String::as_str) != Some("access_token")
                        || f.get("service") != Some(&host)
                    {
                        return json(
                            400,
                            serde_json::json!({"errors":[{"code":"BAD_REQUEST","message":"grant_type must be access_token and service this registry"}]}),
                        );
                    }
                    let aud = f.get("access_token").and_then(|t| tokens.audience(t));
                    if aud.as_deref() != Some("https://containerregistry.azure.net")
                        || s.deny_exchange
                    {
                        return json(
                            401,
                            serde_json::json!({"errors":[{"code":"UNAUTHORIZED","message":"The identity is not authorized to access the registry."}]}),
                        );
                    }
                    let rt = jwt(
                        serde_json::json!({"exp": now() + 3 * 3600, "grant_type": "refresh_token", "tenant": f.get("tenant"), "jti": s.refresh.len()}),
                    );
                    s.refresh.push(rt.clone());
                    json(200, serde_json::json!({"refresh_token": rt}))
                }
                ("POST", "/oauth2/token") => {
                    s.token_grants += 1;
                    let f = r.form();
                    let ok = f.get("grant_type").map(String::as_str) == Some("refresh_token")
                        && f.get("service") == Some(&host)
                        && f.get("refresh_token")
                            .is_some_and(|t| s.refresh.contains(t));
                    if !ok {
                        return json(
                            401,
                            serde_json::json!({"errors":[{"code":"UNAUTHORIZED","message":"invalid refresh token"}]}),
                        );
                    }
                    let scope = f.get("scope").cloned().unwrap_or_default();
                    let at = format!("acr-access-{}", s.access.len() + 1);
                    s.access.insert(at.clone(), scope);
                    json(200, serde_json::json!({"access_token": at}))
                }
                (_, "/v2/") | (_, "/v2") => match r.bearer() {
                    Some(t) if s.access.contains_key(&t) => json(200, serde_json::json!({})),
                    _ => challenge(None, None),
                },
                ("GET" | "HEAD", p) if p.starts_with("/v2/net-monitor/manifests/") => {
                    let scope = "repository:net-monitor:pull";
                    let ok = r
                        .bearer()
                        .and_then(|t| s.access.get(&t).cloned())
                        .is_some_and(|sc| {
                            sc.split(' ').any(|x| {
                                x == scope
                                    || x == "repository:net-monitor:pull,push"
                                    || x == "repository:net-monitor:metadata_read,pull"
                            })
                        });
                    if !ok {
                        return challenge(Some(scope), r.bearer().map(|_| "insufficient_scope"));
                    }
                    let reference = p.trim_start_matches("/v2/net-monitor/manifests/");
                    if reference != "v1" && reference != d {
                        return json(
                            404,
                            serde_json::json!({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest tagged by \"x\" is not found"}]}),
                        );
                    }
                    Resp {
                        status: 200,
                        headers: vec![
                            ("content-type".into(), MANIFEST_TYPE.into()),
                            ("docker-content-digest".into(), d.clone()),
                        ],
                        body: if r.method == "HEAD" {
                            Bytes::new()
                        } else {
                            m.clone()
                        },
                    }
                    .header("content-length", m.len().to_string())
                }
                _ => json(
                    404,
                    serde_json::json!({"errors":[{"code":"NOT_FOUND","message":"not found"}]}),
                ),
            }
        });
        let server = serve(Some(pki.server.clone()), log, handler).await;
        let host = format!("localhost:{}", server.addr.port());
        *host_slot.lock().unwrap() = host.clone();
        Acr {
            state,
            server,
            host,
            manifest,
            digest,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Key Vault

#[derive(Default)]
pub struct KvState {
    /// name → versions (oldest first) of DER certificates
    pub certs: HashMap<String, Vec<(String, Vec<u8>)>>,
    /// names the identity may not read
    pub forbidden: Vec<String>,
    /// audience the vault expects (tenant mismatch simulated by refusing every token)
    pub refuse_tokens: bool,
    pub unauthenticated: usize,
    /// (name, version) of disabled versions: `attributes.enabled = false`, secret refused.
    pub disabled: Vec<(String, String)>,
    /// (name, version) → (contentType, value) of the certificate's secret; without an entry
    /// the secret is the certificate alone as PEM (what Key Vault stores for a cer-only import
    /// is not what we test).
    pub secrets: HashMap<(String, String), (String, String)>,
    /// Versions listed per page (`nextLink` paging).
    pub page_size: usize,
}

/// The versions of `name`, Key Vault's `ListCertificatePropertiesResult` paging.
fn kv_versions_page(s: &KvState, name: &str, skip: usize) -> serde_json::Value {
    let versions = &s.certs[name];
    let page = s.page_size.max(1);
    let value: Vec<serde_json::Value> = versions
        .iter()
        .enumerate()
        .skip(skip)
        .take(page)
        .map(|(i, (ver, _))| {
            let enabled = !s.disabled.iter().any(|(n, v)| n == name && v == ver);
            serde_json::json!({
                "id": format!("https://{VAULT_HOST}/certificates/{name}/{ver}"),
                "x5t": "fLi3U52HunIVNXubkEnf8tP6Wbo",
                "attributes": {"enabled": enabled, "created": 1700000000 + i as i64 * 1000,
                               "updated": 1700000000 + i as i64 * 1000,
                               "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90}
            })
        })
        .collect();
    let next = if skip + page < versions.len() {
        serde_json::Value::String(format!(
            "https://{VAULT_HOST}/certificates/{name}/versions?api-version=7.6&$skiptoken={}",
            skip + page
        ))
    } else {
        serde_json::Value::Null
    };
    serde_json::json!({"value": value, "nextLink": next})
}

pub struct KeyVault {
    pub state: Arc<Mutex<KvState>>,
    pub server: Server,
}

impl KeyVault {
    pub async fn start(pki: &Pki, tokens: Tokens, log: Log) -> KeyVault {
        let state = Arc::new(Mutex::new(KvState::default()));
        let st = state.clone();
        let handler: Handler = Arc::new(move |r: Req| {
            let mut s = st.lock().unwrap();
            let challenge = json(401, serde_json::json!({"error":{"code":"Unauthorized","message":"AKV10000: Request is missing a Bearer or PoP token."}}))
                .header("www-authenticate", format!("Bearer authorization=\"https://{ENTRA_HOST}/{TENANT}\", resource=\"https://vault.azure.net\""));
            if r.param("api-version").is_none() {
                return json(
                    400,
                    serde_json::json!({"error":{"code":"BadParameter","message":"The request URI contains an invalid API version."}}),
                );
            }
            let Some(token) = r.bearer() else {
                s.unauthenticated += 1;
                return challenge;
            };
            if s.refuse_tokens {
                return json(401, serde_json::json!({"error":{"code":"Unauthorized","message":"AKV10032: Invalid issuer. Expected one of https://sts.windows.net/other-tenant/, found https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/."}}))
                    .header("www-authenticate", format!("Bearer authorization=\"https://{ENTRA_HOST}/{TENANT}\", resource=\"https://vault.azure.net\""));
            }
            match tokens.audience(&token) {
                Some(a) if a == "https://vault.azure.net" => {}
                Some(a) => {
                    return json(
                        401,
                        serde_json::json!({"error":{"code":"Unauthorized","message":format!("AKV10022: Invalid audience. Expected https://vault.azure.net, found: {a}.")}}),
                    )
                }
                None => return challenge,
            }
            let parts: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
            if parts.len() >= 2 && s.forbidden.iter().any(|f| f == parts[1]) {
                return json(
                    403,
                    serde_json::json!({"error":{"code":"Forbidden","message":format!("Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid=11111111-2222-3333-4444-555555555555;oid=aaaa\r\nAction: 'Microsoft.KeyVault/vaults/{}/read'\r\nAssignment: (not found)\r\nVault: signetkv;location=westeurope\r\n", parts[0]),"innererror":{"code":"ForbiddenByRbac"}}}),
                );
            }
            if let ["secrets", name, version] = parts.as_slice() {
                let (name, version) = (name.to_string(), version.to_string());
                let exists = s
                    .certs
                    .get(&name)
                    .is_some_and(|vs| vs.iter().any(|(v, _)| *v == version));
                if !exists {
                    return json(
                        404,
                        serde_json::json!({"error":{"code":"SecretNotFound","message":format!("A secret with (name/id) {name}/{version} was not found in this key vault.")}}),
                    );
                }
                if s.disabled.iter().any(|(n, v)| *n == name && *v == version) {
                    return json(
                        403,
                        serde_json::json!({"error":{"code":"Forbidden","message":"Operation get is not allowed on a disabled secret.","innererror":{"code":"SecretDisabled"}}}),
                    );
                }
                let Some((content_type, value)) =
                    s.secrets.get(&(name.clone(), version.clone())).cloned()
                else {
                    return json(
                        404,
                        serde_json::json!({"error":{"code":"SecretNotFound","message":"no secret in this fake"}}),
                    );
                };
                return json(
                    200,
                    serde_json::json!({
                        "value": value,
                        "contentType": content_type,
                        "id": format!("https://{VAULT_HOST}/secrets/{name}/{version}"),
                        "kid": format!("https://{VAULT_HOST}/keys/{name}/{version}"),
                        "managed": true,
                        "attributes": {"enabled": true, "created": 1700000000, "updated": 1700000000,
                                       "recoveryLevel": "Recoverable+Purgeable"}
                    }),
                );
            }
            if let ["certificates", name, "versions"] = parts.as_slice() {
                if !s.certs.contains_key(*name) {
                    return json(
                        404,
                        serde_json::json!({"error":{"code":"CertificateNotFound","message":format!("A certificate with (name/id) {name} was not found in this key vault.")}}),
                    );
                }
                let skip = r
                    .param("$skiptoken")
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                return json(200, kv_versions_page(&s, name, skip));
            }
            let (name, version) = match parts.as_slice() {
                // The SDK asks for the latest version as `certificates/{name}/` (empty version).
                ["certificates", name] | ["certificates", name, ""] => (*name, None),
                ["certificates", name, version] => (*name, Some(*version)),
                _ => {
                    return json(
                        404,
                        serde_json::json!({"error":{"code":"NotFound","message":"not found"}}),
                    )
                }
            };
            if s.forbidden.iter().any(|f| f == name) {
                return json(
                    403,
                    serde_json::json!({"error":{"code":"Forbidden","message":"Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid=11111111-2222-3333-4444-555555555555;oid=aaaa\r\nAction: 'Microsoft.KeyVault/vaults/certificates/read'\r\nResource: '/subscriptions/x/resourcegroups/signet/providers/microsoft.keyvault/vaults/signetkv/certificates/secret'\r\nAssignment: (not found)\r\nVault: signetkv;location=westeurope\r\n","innererror":{"code":"ForbiddenByRbac"}}}),
                );
            }
            let not_found = || {
                json(
                    404,
                    serde_json::json!({"error":{"code":"CertificateNotFound","message":format!("A certificate with (name/id) {name} was not found in this key vault. If you recently deleted this certificate you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182")}}),
                )
            };
            let Some(versions) = s.certs.get(name) else {
                return not_found();
            };
            let found = match version {
                None => versions.last(),
                Some(v) => versions.iter().find(|(ver, _)| ver == v),
            };
            let Some((ver, der)) = found else {
                return not_found();
            };
            let enabled = !s.disabled.iter().any(|(n, v)| n == name && v == ver);
            let b64 = base64::engine::general_purpose::STANDARD.encode(der);
            let id = format!("https://{VAULT_HOST}/certificates/{name}/{ver}");
            json(
                200,
                serde_json::json!({
                    "id": id,
                    "kid": format!("https://{VAULT_HOST}/keys/{name}/{ver}"),
                    "sid": format!("https://{VAULT_HOST}/secrets/{name}/{ver}"),
                    "x5t": "fLi3U52HunIVNXubkEnf8tP6Wbo",
                    "cer": b64,
                    "attributes": {"enabled": enabled, "nbf": 1700000000, "exp": 1900000000,
                                   "created": 1700000000, "updated": 1700000000,
                                   "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90},
                    "policy": {"id": format!("https://{VAULT_HOST}/certificates/{name}/policy"),
                               "key_props": {"exportable": false, "kty": "RSA", "key_size": 2048, "reuse_key": true},
                               "secret_props": {"contentType": "application/x-pem-file"},
                               "x509_props": {"subject": "CN=wabbit-networks.io", "ekus": ["1.3.6.1.5.5.7.3.3"], "key_usage": ["digitalSignature"], "validity_months": 12},
                               "issuer": {"name": "Self"},
                               "attributes": {"enabled": true, "created": 1700000000, "updated": 1700000000}}
                }),
            )
        });
        let server = serve(Some(pki.server.clone()), log, handler).await;
        KeyVault { state, server }
    }
}
