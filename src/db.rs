//! Storage: the pool, the embedded migrations, and the models with their queries — one
//! module per domain; queries take the connection first and filter by owner. Every SQL
//! statement bff sends lives here. Nothing here knows GraphQL or HTTP: the money path returns
//! its own error type ([`photo_jobs::money::MoneyError`]), which the GraphQL layer words.

pub mod account;
pub mod better_auth;
pub mod connect;
pub mod credits;
pub mod export;
pub mod instrumentation;
pub mod live;
pub mod migrate;
pub mod pagination;
pub mod photo_jobs;
pub mod plans;
pub mod pool;
pub mod purchases;
pub mod request;
pub mod schema;
pub mod states;
pub mod stripe;
pub mod subscriptions;
pub mod tls;
pub mod uploads;
pub mod usage;
pub mod viewer;

pub use connect::{ConnectOptions, SslMode, connect, connect_with, connection_error_text};
pub use migrate::{MIGRATIONS, better_auth_tables_exist, create_better_auth_tables, migrate};
pub use pool::{DbConn, DbPool, PoolError, from_config as pool_from_config, ping, pool};
