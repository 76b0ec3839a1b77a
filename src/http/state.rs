//! What the handlers share.

use std::sync::Arc;

use crate::config::server::IpNet;
use crate::db::pool::DbPool;
use crate::live::hub::Hub;
use crate::pipeline::Pipeline;

use super::ws::registry::Registry;

/// Shared by every handler (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    /// The request pipeline every GraphQL operation goes through.
    pub pipeline: Arc<Pipeline>,
    /// The database pool.
    pub pool: DbPool,
    /// Stripe's webhook signing secret.
    pub stripe_webhook_secret: Option<secrecy::SecretString>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Arc<[IpNet]>,
    /// Live updates: this process's subscribers and listening connection.
    pub hub: Arc<Hub>,
    /// Open WebSocket connections and their limits.
    pub connections: Arc<Registry>,
    /// Origins whose cookies count (`CORS_ALLOWED_ORIGINS`), for WebSocket upgrades.
    pub cors_allowed_origins: Arc<[String]>,
    /// The account export's limits.
    pub exports: Arc<super::export_limits::Exports>,
}

impl AppState {
    /// The client's address: the TCP peer, or behind a trusted proxy what it forwarded.
    pub fn client_address(
        &self,
        peer: Option<std::net::SocketAddr>,
        headers: &axum::http::HeaderMap,
    ) -> Option<std::net::IpAddr> {
        super::client::address(peer, headers, &self.trusted_proxies)
    }
}
