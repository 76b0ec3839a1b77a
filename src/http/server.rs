//! The connection loop: HTTP/1.1 over hyper with the timeouts `axum::serve` leaves out. A
//! client must finish its request head within the header-read timeout (which also closes idle
//! keep-alive connections); a write to a client that makes no progress within the send timeout
//! (it stopped reading: [`SendTimeout`]) closes the connection, so a reader cannot hold a
//! response, a WebSocket or what they hold open by not reading; a handler may close its
//! connection at once ([`Closer`]); and after SIGTERM connections in flight get the shutdown
//! timeout to finish before they are dropped, so a half-sent request cannot hold the process
//! open.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
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

/// In every request's extensions: closes the request's connection at once (what is still
/// unsent is dropped), for a handler whose response must not outlive a bound of its own.
#[derive(Clone, Default)]
pub struct Closer(Arc<Closing>);

/// A connection's [`Closer`] state: whether it was closed, and the connection loop's wake-up.
#[derive(Default)]
struct Closing {
    closed: AtomicBool,
    notify: Notify,
}

impl Closer {
    /// Closes the connection.
    pub fn close(&self) {
        self.0.closed.store(true, Ordering::Relaxed);
        self.0.notify.notify_one();
    }
}

/// A connection's stream whose writes must make progress: a write still pending after the
/// send timeout fails (`TimedOut`) and resets the connection (what it would still send is
/// dropped, not left to the kernel), and hyper closes it. The clock runs only while a write
/// waits, and restarts whenever bytes go out.
pub struct SendTimeout {
    inner: tokio::net::TcpStream,
    timeout: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
    closer: Closer,
}

impl SendTimeout {
    /// `inner`, whose writes may wait `timeout` at most, and which `closer` may close.
    pub fn new(inner: tokio::net::TcpStream, timeout: Duration, closer: Closer) -> Self {
        SendTimeout {
            inner,
            timeout,
            stalled: None,
            closer,
        }
    }

    /// What a write found: progress clears the clock; waiting starts it (once) and fails when
    /// it runs out.
    fn watch<R>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<R>>,
    ) -> Poll<std::io::Result<R>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let timeout = self.timeout;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        ready!(sleep.as_mut().poll(cx));
        let _ = self.inner.set_zero_linger();
        Poll::Ready(Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the client read nothing for the send timeout",
        )))
    }
}

impl Drop for SendTimeout {
    /// A connection its handler closed is reset: what it would still send is dropped.
    fn drop(&mut self) {
        if self.closer.0.closed.load(Ordering::Relaxed) {
            let _ = self.inner.set_zero_linger();
        }
    }
}

impl AsyncRead for SendTimeout {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for SendTimeout {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, poll)
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
        send: timeouts.send,
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
    header_read: Duration,
    send: Duration,
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
                    tokio::time::sleep(Duration::from_millis(100)).await;
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
    let closer = Closer::default();
    let close = closer.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let mut request = request.map(axum::body::Body::new);
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(shutdown.clone());
        request.extensions_mut().insert(draining.clone());
        request.extensions_mut().insert(closer.clone());
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
    let send = with.send;
    tokio::spawn(async move {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(header_read)
            .keep_alive(true);
        let mut connection = pin!(
            builder
                .serve_connection(
                    TokioIo::new(SendTimeout::new(stream, send, close.clone())),
                    service,
                )
                .with_upgrades()
        );
        tokio::select! {
            result = connection.as_mut() => log_connection_end(peer, result),
            () = close.0.notify.notified() => closed(peer),
            _ = stop.changed() => {
                tokio::select! {
                    result = async {
                        connection.as_mut().graceful_shutdown();
                        connection.as_mut().await
                    } => log_connection_end(peer, result),
                    () = close.0.notify.notified() => closed(peer),
                }
            }
        }
        drop(done);
    });
}

/// A handler closed the connection: dropping it resets the socket ([`SendTimeout`]'s drop).
fn closed(peer: SocketAddr) {
    tracing::debug!(%peer, "a handler closed its connection");
}

fn log_connection_end(peer: SocketAddr, result: Result<(), hyper::Error>) {
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}
