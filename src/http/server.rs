//! The connection loop: HTTP/1.1 over hyper with the timeouts `axum::serve` leaves out. A
//! client must finish its request head within the header-read timeout (which also closes idle
//! keep-alive connections), and after SIGTERM connections in flight get the shutdown timeout to
//! finish before they are dropped, so a half-sent request cannot hold the process open.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;

use axum::Router;
use axum::extract::ConnectInfo;
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

/// Serves `app` on `listener` until `shutdown` resolves, then drains connections for at most
/// `timeouts.shutdown`.
pub async fn serve_until(
    listener: TcpListener,
    app: Router,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, done_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
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
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let draining = Shutdown {
            stop: stop_rx.clone(),
            done: done_rx.clone(),
        };
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            request.extensions_mut().insert(draining.clone());
            let app = app.clone();
            async move {
                let response = match app.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                Ok::<_, Infallible>(response)
            }
        });
        let mut stop = stop_rx.clone();
        let done = done_rx.clone();
        let header_read = timeouts.header_read;
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
    drop(listener);
    let _ = stop_tx.send(true);
    drop(done_rx);
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

fn log_connection_end(peer: SocketAddr, result: Result<(), hyper::Error>) {
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}
