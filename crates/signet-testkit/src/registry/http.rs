//! A minimal HTTP/1.1 client for the harness (push helpers, the fronts' proxying): one
//! connection per request, HTTPS against the test CA or plain HTTP.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;

/// An answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Sends one request and reads the whole answer.
pub async fn send(
    tls: &Arc<rustls::ClientConfig>,
    method: Method,
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Answer {
    let uri: Uri = url.parse().unwrap();
    let host = uri
        .host()
        .unwrap()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = TcpStream::connect((host.as_str(), port)).await.unwrap();
    let mut req = http::Request::builder()
        .method(method.clone())
        .uri(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
        .header(http::header::HOST, uri.authority().unwrap().as_str());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let req = req.body(Full::new(Bytes::from(body))).unwrap();
    let resp = if https {
        let connector = tokio_rustls::TlsConnector::from(tls.clone());
        let stream = connector
            .connect(ServerName::try_from(host).unwrap(), tcp)
            .await
            .unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        sender.send_request(req).await.unwrap()
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(conn);
        sender.send_request(req).await.unwrap()
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = if method == Method::HEAD {
        Bytes::new()
    } else {
        resp.into_body().collect().await.unwrap().to_bytes()
    };
    Answer {
        status,
        headers,
        body,
    }
}
