//! A TCP front that adds network latency: everything it forwards arrives `rtt / 2` later in
//! each direction (no root, no `tc netem`). Bytes keep their order and the link its
//! bandwidth (chunks are pipelined, each delayed from when it was read). Opening a
//! connection is not delayed (the front connects upstream at once), so a new connection
//! costs its protocol round trips (TLS, HTTP) but not TCP's own handshake.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A running delaying front; stops when dropped.
#[derive(Debug)]
pub struct DelayFront {
    /// `127.0.0.1:PORT`
    pub host: String,
    task: JoinHandle<()>,
}

impl Drop for DelayFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DelayFront {
    /// A front on a free loopback port forwarding to `upstream`, adding `rtt` per round trip.
    pub async fn start(upstream: SocketAddr, rtt: Duration) -> std::io::Result<DelayFront> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let host = format!("127.0.0.1:{}", listener.local_addr()?.port());
        let one_way = rtt / 2;
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::join!(pipe(cr, sw, one_way), pipe(sr, cw, one_way));
                });
            }
        });
        Ok(DelayFront { host, task })
    }
}

/// Copies `from` to `to`, each chunk written `delay` after it was read.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}
