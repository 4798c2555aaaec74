//! The warm request path without the transport: `App::handle` on a `ProviderRequest` of
//! 1, 10 and 50 keys whose verdicts come from a cache (the same `Arc<SharedVerdict>` per
//! image, as the engine serves cached verdicts), answers written, metrics counted.
//!
//!     cargo bench -p signet-server --bench warm
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use http::Request;
use http_body_util::{BodyExt, Full};
use signet_engine::{ImageVerdict, SharedVerdict, SignatureFormat, SignatureSummary, VerdictError};
use signet_notation::ErrorCode;
use signet_server::metrics::Metrics;
use signet_server::{AdmissionSettings, App, BoxFuture, ImageVerifier, Limits};
use tokio::time::Instant;

/// Every image verified, from a cache of one shared verdict per image.
#[derive(Debug)]
struct Cached(Vec<Arc<SharedVerdict>>);

impl Cached {
    fn verdict(&self, image: &str) -> Arc<SharedVerdict> {
        let n: usize = image
            .rsplit(':')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        self.0[n % self.0.len()].clone()
    }
}

impl ImageVerifier for Cached {
    fn verify<'a>(&'a self, image: &'a str, _deadline: Instant) -> BoxFuture<'a, ImageVerdict> {
        Box::pin(async move { self.verdict(image).to_verdict(image) })
    }
    fn verify_shared<'a>(
        &'a self,
        image: &'a str,
        _deadline: Instant,
    ) -> BoxFuture<'a, Arc<SharedVerdict>> {
        Box::pin(async move { self.verdict(image) })
    }
    fn pin<'a>(
        &'a self,
        _image: &'a str,
        _deadline: Instant,
    ) -> BoxFuture<'a, Result<String, VerdictError>> {
        Box::pin(async move {
            Err(VerdictError {
                code: ErrorCode::Internal,
                message: "not in this bench".into(),
            })
        })
    }
    fn is_ready(&self) -> bool {
        true
    }
}

fn verdict(i: usize) -> Arc<SharedVerdict> {
    Arc::new(SharedVerdict::new(ImageVerdict {
        reference: format!("registry.example/app:{i}"),
        digest: Some(format!("sha256:{i:064x}")),
        verified: true,
        policy: Some("apps".into()),
        level: Some("strict".into()),
        signatures: vec![SignatureSummary {
            format: SignatureFormat::Notation,
            digest: format!("sha256:{:064x}", i + 1_000_000),
            manifest: None,
            media_type: "application/cose".into(),
            verified: true,
            signer: Some("C=US, ST=WA, L=Seattle, O=Signet Test, CN=release signer".into()),
            error: None,
            failed_check: None,
            logged: Vec::new(),
        }],
        error: None,
        note: None,
    }))
}

fn body(keys: usize) -> Bytes {
    let keys: Vec<String> = (0..keys)
        .map(|k| format!("registry.example/app:{k}"))
        .collect();
    Bytes::from(
        serde_json::json!({"apiVersion": "externaldata.gatekeeper.sh/v1beta1",
            "kind": "ProviderRequest", "request": {"keys": keys}})
        .to_string(),
    )
}

fn warm(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let app = App::new(
        Arc::new(Cached((0..50).map(verdict).collect())),
        Limits::default(),
        AdmissionSettings::default(),
        Arc::new(Metrics::new()),
    );
    let mut group = c.benchmark_group("verify_warm");
    for keys in [1usize, 10, 50] {
        let body = body(keys);
        group.bench_with_input(BenchmarkId::from_parameter(keys), &keys, |b, _| {
            b.iter(|| {
                rt.block_on(async {
                    let req = Request::post("/v1/verify")
                        .body(Full::new(body.clone()))
                        .unwrap();
                    let resp = app.handle(req).await;
                    resp.into_body().collect().await.unwrap().to_bytes()
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, warm);
criterion_main!(benches);
