//! Live updates, fanned out through PostgreSQL's LISTEN/NOTIFY: the [`hub`] of a process's
//! subscribers, the [`listener`] that publishes every change into it (one listening connection
//! per process, reconnecting and catching up after a gap), and the [`viewer`] a subscription
//! resolver reads its events from. Nothing here knows a transport: the WebSocket side
//! (`crate::http::ws`) registers connections and re-checks their sessions.

pub mod hub;
pub mod listener;
pub mod viewer;

use std::sync::Arc;

use crate::db::connect::ConnectOptions;

/// A hub whose listener connects with `options` once it has a subscriber.
pub fn start(options: ConnectOptions) -> Arc<hub::Hub> {
    hub::Hub::new(move |hub| {
        tokio::spawn(listener::listen(hub, options.clone()));
    })
}
