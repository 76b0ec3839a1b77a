//! Live updates, fanned out through PostgreSQL's LISTEN/NOTIFY: the [`hub`] of a process's
//! subscribers, the [`listener`] that publishes every change into it (one listening connection
//! per process, reconnecting and catching up after a gap), and the [`viewer`] a subscription
//! resolver reads its events from. Nothing here knows a transport: the WebSocket side
//! (`crate::http::ws`) registers connections and re-checks their sessions. The application
//! (`crate::app`) builds the hub and starts its listener in its set of tasks.

pub(crate) mod hub;
pub(crate) mod listener;
pub(crate) mod viewer;
