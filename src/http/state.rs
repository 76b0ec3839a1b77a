//! What the handlers share: the application ([`crate::app::App`]), built once.

use std::sync::Arc;

use crate::app::App;

/// Shared by every handler (cheap to clone).
pub type AppState = Arc<App>;

/// The client's address: the TCP peer, or behind a trusted proxy what it forwarded.
pub(crate) fn client_address(
    app: &App,
    peer: Option<std::net::SocketAddr>,
    headers: &axum::http::HeaderMap,
) -> Option<std::net::IpAddr> {
    super::client::address(peer, headers, &app.config.server.trusted_proxies)
}
