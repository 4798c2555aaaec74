//! A programmable plain-HTTP front before a registry: it proxies everything, can answer the
//! OCI referrers API from what tests register (with `Link` pagination), and can lie or fail
//! on chosen requests (wrong bytes, 429/503, stalled or oversize bodies, redirects).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::Method;
use serde_json::{json, Value};

use super::http::send;
use super::server::{read_body, respond, serve, Handler, Resp, Server, Stalled};

/// What a rule does with a matching request.
#[derive(Debug, Clone)]
pub enum Action {
    /// Answer this instead of proxying.
    Respond {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    /// Proxy, then flip the last byte of the body (headers kept: a lying registry).
    Corrupt,
    /// Proxy, then replace the body with these bytes (headers kept but the length).
    ReplaceBody(Vec<u8>),
    /// Answer 200 with a declared length, send a few bytes, then nothing ever again.
    Stall,
    /// As `Stall`, declaring this `Content-Length` (a hostile registry announcing a large
    /// body and keeping the client's buffer reserved).
    StallDeclaring(u64),
    /// Answer 200 with a manifest media type and `n` bytes.
    Oversize(usize),
    /// Answer 307 to `base` + the request's path and query.
    RedirectTo(String),
}

/// A rule: the first `times` requests whose method matches and whose path (and query)
/// contains `path_contains` get `action`; with `except_user_agent`, only requests whose
/// `User-Agent` does not contain it (a registry that answers Signet and nodes differently).
#[derive(Debug, Clone)]
pub struct Rule {
    pub method: Option<Method>,
    pub path_contains: String,
    pub times: usize,
    pub action: Action,
    pub except_user_agent: Option<String>,
}

impl Rule {
    pub fn new(method: Option<Method>, path_contains: &str, times: usize, action: Action) -> Rule {
        Rule {
            method,
            path_contains: path_contains.to_owned(),
            times,
            action,
            except_user_agent: None,
        }
    }

    /// Applies only to clients whose `User-Agent` does not contain `user_agent`.
    pub fn except_user_agent(mut self, user_agent: &str) -> Rule {
        self.except_user_agent = Some(user_agent.to_owned());
        self
    }
}

/// A request the front saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub authorization: Option<String>,
}

/// How the front answers the referrers API.
#[derive(Debug, Clone, Copy)]
pub struct ReferrersMode {
    /// Answer `/v2/<repo>/referrers/<digest>` (false: proxy it, the backend says 404).
    pub enabled: bool,
    /// Apply the `artifactType` filter and say so in `OCI-Filters-Applied`.
    pub filter: bool,
    /// Entries per page (`Link: <…>; rel="next"`).
    pub page_size: usize,
}

impl Default for ReferrersMode {
    fn default() -> Self {
        ReferrersMode {
            enabled: true,
            filter: true,
            page_size: 50,
        }
    }
}

#[derive(Debug)]
struct State {
    backend: String,
    tls: Arc<rustls::ClientConfig>,
    mode: Mutex<ReferrersMode>,
    referrers: Mutex<HashMap<(String, String), Vec<Value>>>,
    rules: Mutex<Vec<Rule>>,
    seen: Mutex<Vec<Seen>>,
}

/// A running front (plain HTTP on 127.0.0.1).
#[derive(Debug)]
pub struct Front {
    pub server: Server,
    /// `127.0.0.1:PORT`
    pub host: String,
    state: Arc<State>,
}

impl Front {
    /// A front proxying to `backend` (`https://127.0.0.1:PORT`).
    pub async fn start(
        backend: &str,
        tls: Arc<rustls::ClientConfig>,
        mode: ReferrersMode,
    ) -> Front {
        let state = Arc::new(State {
            backend: backend.to_owned(),
            tls,
            mode: Mutex::new(mode),
            referrers: Mutex::default(),
            rules: Mutex::default(),
            seen: Mutex::default(),
        });
        let s2 = state.clone();
        let handler: Handler = Arc::new(move |req| {
            let state = s2.clone();
            Box::pin(async move { handle(state, req).await })
        });
        let server = serve(None, handler).await;
        let host = format!("127.0.0.1:{}", server.addr.port());
        Front {
            server,
            host,
            state,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.host)
    }

    /// Lists `entry` (a descriptor as JSON) as a referrer of `subject` in `repo`.
    pub fn add_referrer(&self, repo: &str, subject: &str, entry: Value) {
        self.state
            .referrers
            .lock()
            .unwrap()
            .entry((repo.to_owned(), subject.to_owned()))
            .or_default()
            .push(entry);
    }

    pub fn set_mode(&self, mode: ReferrersMode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    /// A hostile registry's signature: a signature manifest of `subject` that exists only
    /// in this front (served for its digest, listed as a referrer), announcing an envelope
    /// of `envelope_size` bytes with digest `envelope_digest` that the backend never stored.
    /// What the front answers for the envelope is up to further rules (e.g. `Stall`).
    /// Returns the envelope blob's path fragment (`/blobs/<digest>`) for such rules.
    pub fn add_phantom_signature(
        &self,
        repo: &str,
        subject: &signet_notation::Descriptor,
        envelope_digest: &str,
        envelope_size: u64,
    ) -> String {
        use super::push::{EMPTY, NOTATION, OCI_MANIFEST};
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": NOTATION,
            "config": {"mediaType": EMPTY,
                       "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
                       "size": 2},
            "layers": [{"mediaType": "application/cose", "digest": envelope_digest,
                        "size": envelope_size}],
            "subject": {"mediaType": subject.media_type, "digest": subject.digest,
                        "size": subject.size},
        })
        .to_string()
        .into_bytes();
        let digest = signet_notation::descriptor::DigestAlgorithm::Sha256.digest(&manifest);
        self.add_rule(Rule::new(
            Some(Method::GET),
            &format!("/v2/{repo}/manifests/{digest}"),
            usize::MAX,
            Action::Respond {
                status: 200,
                headers: vec![("content-type", OCI_MANIFEST.to_owned())],
                body: manifest.clone(),
            },
        ));
        self.add_referrer(
            repo,
            &subject.digest,
            json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": manifest.len(),
                   "artifactType": NOTATION}),
        );
        format!("/blobs/{envelope_digest}")
    }

    pub fn add_rule(&self, rule: Rule) {
        self.state.rules.lock().unwrap().push(rule);
    }

    pub fn clear_rules(&self) {
        self.state.rules.lock().unwrap().clear();
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    pub fn clear_seen(&self) {
        self.state.seen.lock().unwrap().clear();
    }
}

async fn handle(state: Arc<State>, req: http::Request<hyper::body::Incoming>) -> Resp {
    let method = req.method().clone();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let authorization = header("authorization");
    let user_agent = header("user-agent").unwrap_or_default();
    let accept = header("accept");
    let content_type = header("content-type");
    state.seen.lock().unwrap().push(Seen {
        method: method.clone(),
        path: path.clone(),
        authorization: authorization.clone(),
    });
    let action = {
        let mut rules = state.rules.lock().unwrap();
        rules
            .iter_mut()
            .find(|r| {
                r.times > 0
                    && r.method.as_ref().is_none_or(|m| *m == method)
                    && path.contains(&r.path_contains)
                    && r.except_user_agent
                        .as_ref()
                        .is_none_or(|ua| !user_agent.contains(ua.as_str()))
            })
            .map(|r| {
                r.times -= 1;
                r.action.clone()
            })
    };
    let body = read_body(req.into_body()).await;

    match action {
        Some(Action::Respond {
            status,
            headers,
            body,
        }) => return respond(status, &headers, body),
        Some(Action::Stall) | Some(Action::StallDeclaring(_)) => {
            let length = match action {
                Some(Action::StallDeclaring(n)) => n,
                _ => 100_000,
            };
            return http::Response::builder()
                .status(200)
                .header("content-type", "application/vnd.oci.image.manifest.v1+json")
                .header("content-length", length.to_string())
                .body(Stalled::boxed(Bytes::from_static(b"{\"schemaVersion\":")))
                .unwrap();
        }
        Some(Action::Oversize(n)) => {
            let mut big = vec![b' '; n];
            big[0] = b'{';
            big[n - 1] = b'}';
            return respond(
                200,
                &[(
                    "content-type",
                    "application/vnd.oci.image.manifest.v1+json".into(),
                )],
                big,
            );
        }
        Some(Action::RedirectTo(base)) => {
            return respond(307, &[("location", format!("{base}{path}"))], Vec::new())
        }
        _ => {}
    }

    let mode = *state.mode.lock().unwrap();
    if mode.enabled && path.starts_with("/v2/") && path.contains("/referrers/") {
        return referrers(&state, &path, mode);
    }

    // Proxy.
    let mut headers = Vec::new();
    if let Some(a) = authorization {
        headers.push(("authorization", a));
    }
    if let Some(a) = accept {
        headers.push(("accept", a));
    }
    if let Some(c) = content_type {
        headers.push(("content-type", c));
    }
    let url = format!("{}{path}", state.backend);
    let answer = send(&state.tls, method.clone(), &url, &headers, body.to_vec()).await;
    let mut out = Vec::new();
    for name in [
        "content-type",
        "docker-content-digest",
        "www-authenticate",
        "location",
        "retry-after",
        "docker-upload-uuid",
        "range",
    ] {
        if let Some(v) = answer.headers.get(name).and_then(|v| v.to_str().ok()) {
            let v = if name == "location" {
                v.replace(&state.backend, "")
            } else {
                v.to_owned()
            };
            out.push((name, v));
        }
    }
    let mut body = answer.body.to_vec();
    match action {
        Some(Action::Corrupt) => {
            if let Some(last) = body.last_mut() {
                *last ^= 0x01;
            }
        }
        Some(Action::ReplaceBody(b)) => body = b,
        _ => {}
    }
    if method == Method::HEAD {
        if let Some(len) = answer
            .headers
            .get("content-length")
            .and_then(|v| v.to_str().ok())
        {
            out.push(("content-length", len.to_owned()));
        }
    }
    respond(answer.status.as_u16(), &out, body)
}

fn referrers(state: &State, path: &str, mode: ReferrersMode) -> Resp {
    // /v2/<repo>/referrers/<digest>?artifactType=…&page=N
    let (p, q) = path.split_once('?').unwrap_or((path, ""));
    let (repo, digest) = p
        .trim_start_matches("/v2/")
        .split_once("/referrers/")
        .unwrap();
    let params = super::server::form(q);
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let wanted = get("artifactType");
    let page: usize = get("page").and_then(|p| p.parse().ok()).unwrap_or(0);
    let all = state
        .referrers
        .lock()
        .unwrap()
        .get(&(repo.to_owned(), digest.to_owned()))
        .cloned()
        .unwrap_or_default();
    let list: Vec<Value> = all
        .into_iter()
        .filter(|e| {
            !mode.filter
                || wanted.is_none()
                || e.get("artifactType").and_then(|a| a.as_str()) == wanted.as_deref()
        })
        .collect();
    let start = page * mode.page_size;
    let end = (start + mode.page_size).min(list.len());
    let slice = if start < list.len() {
        &list[start..end]
    } else {
        &[]
    };
    let body = json!({"schemaVersion": 2, "mediaType": super::push::OCI_INDEX, "manifests": slice});
    let mut headers = vec![("content-type", super::push::OCI_INDEX.to_owned())];
    if mode.filter && wanted.is_some() {
        headers.push(("oci-filters-applied", "artifactType".to_owned()));
    }
    if end < list.len() {
        let mut next = format!("/v2/{repo}/referrers/{digest}?page={}", page + 1);
        if let Some(w) = &wanted {
            next.push_str(&format!("&artifactType={}", w.replace('/', "%2F")));
        }
        headers.push(("link", format!("<{next}>; rel=\"next\"")));
    }
    respond(200, &headers, body.to_string())
}
