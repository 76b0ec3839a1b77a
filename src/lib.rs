//! bff: a GraphQL backend-for-frontend that serves the signed-in viewer of a SaaS photo app.
//!
//! - [`app`]: the application put together once: clients, schema, pipeline, background
//!   tasks ([`tasks`]).
//! - [`config`]: every environment variable, read once.
//! - [`auth`]: Better Auth session cookie / bearer → the viewer.
//! - [`db`]: pool, embedded migrations, models and their owner-scoped queries.
//! - [`graphql`]: the schema; `Query.viewer` is the only door to user-owned data.
//! - [`pipeline`]: the one path every GraphQL operation takes, over HTTP or WebSocket.
//! - [`http`]: the routes and the transports (GraphQL over HTTP, WebSocket, the export,
//!   webhooks), GraphiQL, health; `bff serve`'s life from start to shutdown.
//! - [`live`]: live updates through PostgreSQL's LISTEN/NOTIFY.
//! - [`sweeper`]: the sweepers: expired worker leases, unclaimed uploads and the objects to
//!   delete, the Stripe clean-up of deleted accounts.
//! - [`redis`]: the optional Redis the instances share their limits through.
//! - [`storage`]: photo storage over the S3 API: presigned URLs, probes, the embedded store.
//! - [`stripe`]: the Stripe API client, webhook signatures and event effects.
//! - [`dev`]: `bff dev` — a private PostgreSQL cluster with demo data.
//! - [`error`]: one error type → stable `extensions.code`; start-up errors.
//! - [`check`]: `bff check` — configuration, database, TLS, tables, migrations.
//! - [`metrics`], [`telemetry`]: Prometheus metrics; logs and OTLP traces.

#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

pub mod admin;
pub mod app;
pub mod auth;
pub mod check;
pub mod config;
pub mod db;
pub mod dev;
pub mod error;
pub mod graphql;
pub mod http;
pub(crate) mod live;
pub mod metrics;
pub mod notify;
pub mod pipeline;
pub mod redis;
pub mod storage;
pub mod stripe;
pub(crate) mod sweeper;
pub mod tasks;
pub mod telemetry;
