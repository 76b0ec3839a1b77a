//! bff's integration tests: the real server over HTTP against real PostgreSQL.

mod abuse;
mod app;
mod architecture;
mod auth;
mod cli;
mod config;
mod front_door;
mod http;
mod interop;
mod isolation;
mod jwt;
mod live;
mod metrics;
mod outage;
mod pagination;
mod persisted;
mod photo_jobs;
mod schema;
mod statements;
mod stripe;
mod stripe_fake;
mod support;
mod tls;
mod traces;
mod viewer;
mod worker;
