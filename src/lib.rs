//! bff: a GraphQL backend-for-frontend that serves the signed-in viewer of a SaaS photo app.
//!
//! - [`config`]: every environment variable, read once.
//! - [`auth`]: Better Auth session cookie / bearer → the viewer.
//! - [`db`]: pool, embedded migrations, models and their owner-scoped queries.
//! - [`graphql`]: the schema; `Query.viewer` is the only door to user-owned data.
//! - [`http`]: the router, GraphQL-over-HTTP guards, GraphiQL, health, shutdown.
//! - [`stripe`]: the Stripe API client, webhook signatures and event effects.
//! - [`dev`]: `bff dev` — a private PostgreSQL cluster with demo data.
//! - [`error`]: one error type → stable `extensions.code`.
//! - [`check`]: `bff check` — configuration, database, TLS, tables, migrations.
//! - [`metrics`], [`telemetry`]: Prometheus metrics; logs and OTLP traces.

pub mod auth;
pub mod check;
pub mod config;
pub mod db;
pub mod dev;
pub mod error;
pub mod graphql;
pub mod http;
pub mod live;
pub mod metrics;
pub mod stripe;
pub mod telemetry;

/// An error on a start-up path (CLI, migrations, dev cluster), whose text is shown as is.
#[derive(Debug)]
pub struct StartupError(pub String);

impl std::fmt::Display for StartupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartupError {}

/// Result of a start-up path.
pub type StartupResult<T> = Result<T, StartupError>;
