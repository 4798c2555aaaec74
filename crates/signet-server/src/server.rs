//! The listeners: TLS handshakes, HTTP/1.1 keep-alive connections with a header read
//! timeout, the plain-HTTP probe/metrics listener, the reload loop, and graceful drain on
//! shutdown.
//!
//! Connections are admitted in two stages, so that sockets which never authenticate cannot
//! starve Gatekeeper: a handshake takes a place in a small budget of its own
//! (`max_handshakes`, at most `max_handshakes_per_peer` per client IP, `handshake_timeout`
//! to finish); only a completed handshake (client certificate verified) takes one of the
//! `max_connections` places. The probe listener has its own small cap, per-peer cap, header
//! size limit and connection lifetime.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::sleep;

use crate::admission::AdmissionSettings;
use crate::app::{App, Limits};
use crate::metrics::Metrics;
use crate::peers::PeerCaps;
use crate::reload::{self, ReloadSettings, Reloadable};
use crate::tls::LiveTls;
use crate::verifier::ImageVerifier;

/// Request headers larger than this on the probe listener are answered 431 (hyper's
/// smallest read buffer; probes and scrapes send a few hundred bytes).
const PROBE_MAX_HEADER_BYTES: usize = 8 * 1024;
/// A probe connection is closed (gracefully) after this long, whatever it does.
const PROBE_CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// Everything the server is told (validated by the caller, once).
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// The TLS listener (`0.0.0.0:8443`).
    pub listen: SocketAddr,
    /// An optional plain-HTTP listener for `/healthz`, `/readyz` and `/metrics` only
    /// (kubelet probes and Prometheus present no client certificate).
    pub metrics_listen: Option<SocketAddr>,
    pub limits: Limits,
    pub admission: AdmissionSettings,
    pub reload: ReloadSettings,
}

/// A bound server, ready to [`run`](Server::run).
#[derive(Debug)]
pub struct Server {
    app: App,
    tls: Arc<LiveTls>,
    listener: TcpListener,
    probe_listener: Option<TcpListener>,
    reloadables: Vec<Reloadable>,
    reload: ReloadSettings,
}

impl Server {
    /// Binds the listeners. `reloadables` are watched besides the TLS files (the trust
    /// material, typically).
    pub async fn bind(
        settings: ServerSettings,
        tls: Arc<LiveTls>,
        verifier: Arc<dyn ImageVerifier>,
        reloadables: Vec<Reloadable>,
    ) -> std::io::Result<Server> {
        let listener = TcpListener::bind(settings.listen).await?;
        let probe_listener = match settings.metrics_listen {
            Some(a) => Some(TcpListener::bind(a).await?),
            None => None,
        };
        let metrics = Arc::new(Metrics::new());
        let app = App::new(verifier, settings.limits, settings.admission, metrics);
        let mut all = vec![tls.reloadable()];
        all.extend(reloadables);
        Ok(Server {
            app,
            tls,
            listener,
            probe_listener,
            reloadables: all,
            reload: settings.reload,
        })
    }

    /// The TLS listener's address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The probe/metrics listener's address.
    pub fn probe_addr(&self) -> Option<SocketAddr> {
        self.probe_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// Exports the outcomes of a trust refresh loop (e.g. Key Vault) on `/metrics`.
    pub fn watch_trust_refresh(&self, source: &'static str, stats: Arc<crate::TrustRefreshStats>) {
        self.app.metrics().watch_trust_refresh(source, stats);
    }

    /// The application (for tests).
    pub fn app(&self) -> &App {
        &self.app
    }

    /// Serves until `shutdown` completes, then stops accepting and lets in-flight requests
    /// finish for up to the grace period.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Server {
            app,
            tls,
            listener,
            probe_listener,
            reloadables,
            reload,
        } = self;
        let limits = app.limits().clone();
        let reloader = reload::spawn(reloadables, reload, app.metrics().clone());
        let warner = (!tls.client_auth()).then(|| {
            tokio::spawn(async {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    tracing::warn!(
                        "INSECURE: client certificates are not required (tls.insecureNoClientAuth): \
                         anyone who reaches this port can use the provider"
                    );
                }
            })
        });
        let graceful = GracefulShutdown::new();
        let probe_addr = probe_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.to_string())
            .unwrap_or_default();
        let probes = probe_listener.map(|l| {
            let app = app.clone();
            tokio::spawn(async move { serve_probes(l, app).await })
        });
        let handshakes = Arc::new(Semaphore::new(limits.max_handshakes.max(1)));
        let handshake_peers = PeerCaps::new(limits.max_handshakes_per_peer);
        let conns = Arc::new(Semaphore::new(limits.max_connections.max(1)));
        tokio::pin!(shutdown);
        tracing::info!(
            listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            probes = %probe_addr,
            client_auth = tls.client_auth(),
            "serving"
        );
        loop {
            let handshake = tokio::select! {
                () = &mut shutdown => break,
                p = handshakes.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            };
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Some(peer_handshake) = handshake_peers.try_take(peer.ip()) else {
                app.metrics().connection_refused("tls", "peer_handshakes");
                tracing::debug!(%peer, limit = limits.max_handshakes_per_peer,
                    "connection closed: too many TLS handshakes in progress from this address \
                     (limits.maxHandshakesPerPeer)");
                continue;
            };
            let _ = stream.set_nodelay(true);
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
            let app = app.clone();
            let watcher = graceful.watcher();
            let limits = limits.clone();
            let conns = conns.clone();
            tokio::spawn(async move {
                let handshake_result =
                    tokio::time::timeout(limits.handshake_timeout, acceptor.accept(stream)).await;
                drop(peer_handshake);
                drop(handshake);
                let tls_stream = match handshake_result {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        app.metrics().tls_failure();
                        tracing::warn!(%peer, error = %e, "TLS handshake refused");
                        return;
                    }
                    Err(_) => {
                        app.metrics().tls_failure();
                        tracing::warn!(%peer, timeout = ?limits.handshake_timeout, "TLS handshake not completed in time");
                        return;
                    }
                };
                // Authenticated: now, and only now, a place among the open connections.
                let _permit =
                    match tokio::time::timeout(limits.header_read_timeout, conns.acquire_owned())
                        .await
                    {
                        Ok(Ok(p)) => p,
                        _ => {
                            app.metrics().connection_refused("tls", "connections");
                            tracing::warn!(%peer, limit = limits.max_connections,
                            "connection closed: every connection place is taken \
                             (limits.maxConnections)");
                            return;
                        }
                    };
                app.metrics().connection_opened();
                let metrics = app.metrics().clone();
                let service = service_fn(move |req| {
                    let app = app.clone();
                    async move { Ok::<_, Infallible>(app.handle(req).await) }
                });
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.header_read_timeout)
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(tls_stream), service);
                if let Err(e) = watcher.watch(conn).await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                metrics.connection_closed();
            });
        }
        drop(listener);
        tracing::info!(grace = ?limits.shutdown_grace, "shutting down: no new connections, draining in-flight requests");
        reloader.abort();
        if let Some(w) = warner {
            w.abort();
        }
        if let Some(p) = probes {
            p.abort();
        }
        match tokio::time::timeout(limits.shutdown_grace, graceful.shutdown()).await {
            Ok(()) => tracing::info!("drained; bye"),
            Err(_) => tracing::warn!("grace period over; closing the remaining connections"),
        }
    }
}

/// The plain-HTTP listener: probes and `/metrics` only. Anyone who reaches the port can
/// connect, so everything is bounded: connections (`probe_max_connections`, a quarter per
/// client IP), header size and read time, connection lifetime. Bodies are never read.
async fn serve_probes(listener: TcpListener, app: App) {
    let limits = app.limits().clone();
    let slots = Arc::new(Semaphore::new(limits.probe_max_connections.max(1)));
    let peers = PeerCaps::new(limits.probe_max_connections / 4);
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed (probe listener)");
                sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(peer_slot) = peers.try_take(peer.ip()) else {
            app.metrics()
                .connection_refused("probes", "peer_connections");
            tracing::debug!(%peer, "probe connection closed: too many open from this address");
            continue;
        };
        let app = app.clone();
        let header_read_timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            let _peer_slot = peer_slot;
            let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let app = app.clone();
                async move {
                    if req.uri().path().starts_with("/v1/") {
                        return Ok::<_, Infallible>(app.not_here());
                    }
                    Ok::<_, Infallible>(app.handle(req).await)
                }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .max_buf_size(PROBE_MAX_HEADER_BYTES)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = sleep(PROBE_CONNECTION_LIFETIME) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(header_read_timeout, conn).await;
                }
            }
        });
    }
}
