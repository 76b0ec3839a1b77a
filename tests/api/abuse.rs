//! Abuse: each finding of issue 8 reproduced against the real HTTP surface, and refused now
//! with a clear error that changes nothing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use bff::pipeline::cost::fan_out;

use crate::photo_jobs::{grant, state};
use crate::support::{TestApp, first_code};

mod connections;
mod input;
mod rate_limits;

fn message(body: &Value) -> &str {
    body["errors"][0]["message"].as_str().unwrap_or_default()
}

/// The dashboard query, as docs/benchmarks.md shows it.
fn dashboard() -> String {
    let docs = include_str!("../../docs/benchmarks.md");
    let start = docs.find("query Dashboard {").unwrap();
    let end = start + docs[start..].find("\n}\n").unwrap() + 2;
    docs[start..end].to_owned()
}

/// The query GraphiQL opens with (`assets/graphiql/init.js`).
fn graphiql_default() -> String {
    let init = include_str!("../../assets/graphiql/init.js");
    let start = init.find("var defaultQuery = [").unwrap();
    let end = start + init[start..].find("].join").unwrap();
    init[start..end]
        .lines()
        .filter_map(|line| {
            let line = line.trim().trim_end_matches(',');
            line.strip_prefix('\'')?.strip_suffix('\'')
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// graphql-js's `getIntrospectionQuery()` with every option GraphiQL may turn on.
const INTROSPECTION: &str = include_str!("introspection.graphql");
