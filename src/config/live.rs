//! Live updates over WebSocket: `BFF_WS_MAX_CONNECTIONS`, `BFF_WS_MAX_CONNECTIONS_PER_VIEWER`,
//! `BFF_WS_MAX_SUBSCRIPTIONS`, `BFF_WS_INIT_TIMEOUT_MS`, `BFF_WS_KEEPALIVE_MS`,
//! `BFF_WS_SESSION_CHECK_MS`, `BFF_LIVE_PROGRESS_INTERVAL_MS`, `BFF_CHANGES_RETENTION_HOURS`.

use std::time::Duration;

use super::env::{Env, Variable};

/// `BFF_WS_MAX_CONNECTIONS`.
pub(crate) const MAX_CONNECTIONS: Variable = Variable::number(
    "BFF_WS_MAX_CONNECTIONS",
    "open WebSocket connections per process (past it: close 1013)",
    20_000,
    1,
    1_000_000,
);
/// `BFF_WS_MAX_CONNECTIONS_PER_VIEWER`.
pub(crate) const MAX_CONNECTIONS_PER_VIEWER: Variable = Variable::number(
    "BFF_WS_MAX_CONNECTIONS_PER_VIEWER",
    "open WebSocket connections per signed-in user (past it: close 1013)",
    16,
    1,
    1_000_000,
);
/// `BFF_WS_MAX_SUBSCRIPTIONS`.
pub(crate) const MAX_SUBSCRIPTIONS: Variable = Variable::number(
    "BFF_WS_MAX_SUBSCRIPTIONS",
    "subscriptions per WebSocket connection (past it: an error for that one)",
    32,
    1,
    1_000_000,
);
/// `BFF_WS_INIT_TIMEOUT_MS`.
pub(crate) const INIT_TIMEOUT_MS: Variable = Variable::number(
    "BFF_WS_INIT_TIMEOUT_MS",
    "time from the upgrade to connection_init, in ms (past it: close 4408)",
    10_000,
    100,
    600_000,
);
/// `BFF_WS_KEEPALIVE_MS`.
pub(crate) const KEEPALIVE_MS: Variable = Variable::number(
    "BFF_WS_KEEPALIVE_MS",
    "how often the server pings, in ms; a peer silent for two periods is dropped",
    15_000,
    100,
    600_000,
);
/// `BFF_WS_SESSION_CHECK_MS`.
pub(crate) const SESSION_CHECK_MS: Variable = Variable::number(
    "BFF_WS_SESSION_CHECK_MS",
    "how often open connections' sessions are checked again, in ms (signed out or expired: close 4403)",
    30_000,
    100,
    60_000,
);
/// `BFF_LIVE_PROGRESS_INTERVAL_MS`.
pub(crate) const PROGRESS_INTERVAL_MS: Variable = Variable::number(
    "BFF_LIVE_PROGRESS_INTERVAL_MS",
    "the least time between two progress updates of one job to its subscribers, in ms (the latest report wins)",
    1_000,
    0,
    600_000,
);
/// `BFF_CHANGES_RETENTION_HOURS`.
pub(crate) const CHANGES_RETENTION_HOURS: Variable = Variable::number(
    "BFF_CHANGES_RETENTION_HOURS",
    "how long a viewer's changes are kept for viewer.changes and viewerChanged to replay, in hours (an older cursor: CURSOR_EXPIRED)",
    72,
    1,
    8_760,
);

/// The variables of this module.
pub(crate) const VARIABLES: &[Variable] = &[
    MAX_CONNECTIONS,
    MAX_CONNECTIONS_PER_VIEWER,
    MAX_SUBSCRIPTIONS,
    INIT_TIMEOUT_MS,
    KEEPALIVE_MS,
    SESSION_CHECK_MS,
    PROGRESS_INTERVAL_MS,
    CHANGES_RETENTION_HOURS,
];

/// The limits of the WebSocket surface.
#[derive(Clone, Copy, Debug)]
pub struct Live {
    /// Open connections per process.
    pub connections: usize,
    /// Open connections per viewer.
    pub connections_per_viewer: usize,
    /// Subscriptions per connection.
    pub subscriptions_per_connection: usize,
    /// Time allowed between the upgrade and `connection_init`.
    pub init_timeout: Duration,
    /// How often the server pings (and how long a silent peer has before it is dropped: two).
    pub keepalive: Duration,
    /// How often open connections' credentials are checked again.
    pub session_check: Duration,
    /// The least time between two progress updates of one job to its subscribers.
    pub progress_interval: Duration,
    /// How long a viewer's changes are kept for replay, in hours.
    pub changes_retention_hours: i64,
    /// Time allowed to write one message to a client before it counts as not reading.
    pub write_timeout: Duration,
    /// The largest message a client may send, in bytes.
    pub max_message_bytes: usize,
}

impl Default for Live {
    fn default() -> Self {
        Live::read(&mut Env::empty())
    }
}

impl Live {
    /// Reads the variables of this module.
    pub fn read(env: &mut Env) -> Self {
        Live {
            connections: env.number(&MAX_CONNECTIONS) as usize,
            connections_per_viewer: env.number(&MAX_CONNECTIONS_PER_VIEWER) as usize,
            subscriptions_per_connection: env.number(&MAX_SUBSCRIPTIONS) as usize,
            init_timeout: env.millis(&INIT_TIMEOUT_MS),
            keepalive: env.millis(&KEEPALIVE_MS),
            session_check: env.millis(&SESSION_CHECK_MS),
            progress_interval: env.millis(&PROGRESS_INTERVAL_MS),
            changes_retention_hours: env.number(&CHANGES_RETENTION_HOURS) as i64,
            write_timeout: Duration::from_secs(10),
            max_message_bytes: 64 * 1024,
        }
    }
}
