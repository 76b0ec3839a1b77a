//! Storage: the pool, the embedded migrations, and the models with their queries — one
//! module per domain; queries take the connection first and filter by owner. Every SQL
//! statement bff sends lives here. Nothing here knows GraphQL or HTTP: the money path returns
//! its own error type ([`photo_jobs::money::MoneyError`]), which the GraphQL layer words.

pub(crate) mod account;
pub(crate) mod admin;
pub mod better_auth;
pub mod changes;
pub(crate) mod connect;
pub mod credits;
pub mod export;
pub(crate) mod instrumentation;
pub(crate) mod live;
pub mod migrate;
pub mod notifications;
pub(crate) mod pagination;
pub(crate) mod photo_jobs;
pub(crate) mod plans;
pub(crate) mod pool;
pub(crate) mod positional;
pub(crate) mod purchases;
pub(crate) mod request;
pub mod schema;
pub(crate) mod states;
pub(crate) mod stripe;
pub(crate) mod subscriptions;
pub(crate) mod tls;
pub(crate) mod uploads;
pub mod usage;
pub(crate) mod viewer;

pub use connect::{ConnectOptions, SslMode, connect, connect_with, connection_error_text};
pub use migrate::{MIGRATIONS, better_auth_tables_exist, create_better_auth_tables, migrate};
pub use pool::{DbConn, DbPool, PoolError, from_config as pool_from_config, ping, pool};
