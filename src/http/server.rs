//! The connection loop: HTTP/1.1 over hyper with the timeouts `axum::serve` leaves out. A
//! client must finish its request head within the header-read timeout (which also closes idle
//! keep-alive connections), and after SIGTERM connections in flight get the shutdown timeout to
//! finish before they are dropped, so a half-sent request cannot hold the process open.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::config::server::Timeouts;

/// What an upgraded connection (a WebSocket, which outlives its HTTP request) watches to
/// close itself on shutdown, and holds so that shutdown waits for it: in every request's
/// extensions.
#[derive(Clone)]
pub struct Shutdown {
    /// Becomes `true` when the server stops accepting.
    pub stop: watch::Receiver<bool>,
    /// Dropped when the connection ends.
    pub done: watch::Receiver<()>,
}

/// Set in every request's extensions: `true` from SIGTERM on, while the server still serves
/// for the drain delay (`BFF_SHUTDOWN_DELAY_MS`). `/readyz` answers 503 then, and every
/// response closes its connection, so a load balancer moves new requests elsewhere before
/// this process stops accepting.
#[derive(Clone, Default)]
pub struct Draining(pub Arc<AtomicBool>);

impl Draining {
    /// Whether the process is draining.
    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Serves `app` on `listener` until `shutdown` resolves; then keeps serving for
/// `timeouts.drain_delay` while draining ([`Draining`]), stops accepting, and gives the
/// connections left at most `timeouts.shutdown`.
pub async fn serve_until(
    listener: TcpListener,
    app: Router,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, done_rx) = watch::channel(());
    let draining = Draining::default();
    let connections = Connections {
        app,
        header_read: timeouts.header_read,
        stop: stop_rx,
        done: done_rx,
        draining: draining.clone(),
    };
    accept_until(&listener, &connections, shutdown).await;
    draining.0.store(true, Ordering::Relaxed);
    if !timeouts.drain_delay.is_zero() {
        tracing::info!(
            delay_ms = timeouts.drain_delay.as_millis() as u64,
            "draining: /readyz answers 503 and responses close their connections"
        );
        accept_until(
            &listener,
            &connections,
            tokio::time::sleep(timeouts.drain_delay),
        )
        .await;
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(connections);
    let open = done_tx.receiver_count();
    if open > 0 {
        tracing::info!(connections = open, "waiting for connections to finish");
    }
    if tokio::time::timeout(timeouts.shutdown, done_tx.closed())
        .await
        .is_err()
    {
        tracing::warn!(
            connections = done_tx.receiver_count(),
            timeout_ms = timeouts.shutdown.as_millis() as u64,
            "closing connections still open after the shutdown timeout"
        );
    }
    Ok(())
}

/// What each accepted connection is served with.
struct Connections {
    app: Router,
    header_read: std::time::Duration,
    stop: watch::Receiver<bool>,
    done: watch::Receiver<()>,
    draining: Draining,
}

/// Accepts and serves connections until `until` resolves.
async fn accept_until(listener: &TcpListener, with: &Connections, until: impl Future<Output = ()>) {
    let mut until = pin!(until);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut until => return,
        };
        spawn_connection(stream, peer, with);
    }
}

fn spawn_connection(stream: tokio::net::TcpStream, peer: SocketAddr, with: &Connections) {
    let _ = stream.set_nodelay(true);
    let app = with.app.clone();
    let shutdown = Shutdown {
        stop: with.stop.clone(),
        done: with.done.clone(),
    };
    let draining = with.draining.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let mut request = request.map(axum::body::Body::new);
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(shutdown.clone());
        request.extensions_mut().insert(draining.clone());
        let app = app.clone();
        let draining = draining.clone();
        async move {
            let mut response = match app.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            if draining.is_draining() && response.status() != StatusCode::SWITCHING_PROTOCOLS {
                // hyper closes the connection after this response.
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok::<_, Infallible>(response)
        }
    });
    let mut stop = with.stop.clone();
    let done = with.done.clone();
    let header_read = with.header_read;
    tokio::spawn(async move {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(header_read)
            .keep_alive(true);
        let mut connection = pin!(
            builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
        );
        tokio::select! {
            result = connection.as_mut() => log_connection_end(peer, result),
            _ = stop.changed() => {
                connection.as_mut().graceful_shutdown();
                log_connection_end(peer, connection.await);
            }
        }
        drop(done);
    });
}

fn log_connection_end(peer: SocketAddr, result: Result<(), hyper::Error>) {
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}
