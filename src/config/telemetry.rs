//! Logs and traces: `RUST_LOG`, `BFF_LOG_FORMAT`, `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_SERVICE_NAME`.
//! The OpenTelemetry exporter itself also reads the standard `OTEL_EXPORTER_OTLP_*` variables
//! it knows (headers, timeouts).

use super::env::{Env, Variable};

/// `RUST_LOG`.
pub const LOG_FILTER: Variable = Variable::value(
    "RUST_LOG",
    "log filter (tracing's EnvFilter syntax)",
    LOG_FILTER_DEFAULT,
);
const LOG_FILTER_DEFAULT: &str = "info";
/// `BFF_LOG_FORMAT`.
pub const LOG_FORMAT: Variable =
    Variable::value("BFF_LOG_FORMAT", "text, or json for JSON log lines", "text");
/// `OTEL_EXPORTER_OTLP_ENDPOINT`.
pub const OTLP_ENDPOINT: Variable = Variable::optional(
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OpenTelemetry collector (OTLP over plain HTTP) to export traces to",
    "no traces",
);
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`.
pub const OTLP_TRACES_ENDPOINT: Variable = Variable::optional(
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "the traces endpoint itself, instead of OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT decides",
);
/// `OTEL_EXPORTER_OTLP_PROTOCOL`.
pub const OTLP_PROTOCOL: Variable = Variable::value(
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "http/protobuf or http/json",
    "http/protobuf",
);
/// `OTEL_SERVICE_NAME`.
pub const SERVICE_NAME: Variable =
    Variable::value("OTEL_SERVICE_NAME", "service.name of exported spans", "bff");

/// The variables of this module.
pub const VARIABLES: &[Variable] = &[
    LOG_FILTER,
    LOG_FORMAT,
    OTLP_ENDPOINT,
    OTLP_TRACES_ENDPOINT,
    OTLP_PROTOCOL,
    SERVICE_NAME,
];

/// How traces are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `http/protobuf`.
    HttpProtobuf,
    /// `http/json`.
    HttpJson,
}

/// Where logs and traces go.
#[derive(Clone, Debug)]
pub struct Telemetry {
    /// The log filter.
    pub log_filter: String,
    /// JSON log lines instead of text.
    pub json_logs: bool,
    /// Whether traces are exported (an endpoint is set).
    pub export_traces: bool,
    /// Their encoding.
    pub protocol: Protocol,
    /// `service.name`.
    pub service_name: String,
}

impl Telemetry {
    /// Reads this module's variables alone from the process environment, before the rest of
    /// the configuration (logging starts first, so that what follows can be logged); a
    /// malformed one falls back to its default here and is reported with the rest.
    pub fn from_env() -> Self {
        Telemetry::read(&mut Env::process())
    }

    /// Reads the variables of this module.
    pub fn read(env: &mut Env) -> Self {
        let json_logs = env
            .parse(&LOG_FORMAT, |format| match format {
                "text" => Ok(false),
                "json" => Ok(true),
                other => Err(format!("expected text or json, got {other:?}")),
            })
            .unwrap_or(false);
        let protocol = env
            .parse(&OTLP_PROTOCOL, |protocol| match protocol {
                "http/protobuf" => Ok(Protocol::HttpProtobuf),
                "http/json" => Ok(Protocol::HttpJson),
                other => Err(format!(
                    "bff exports http/protobuf or http/json, not {other:?}"
                )),
            })
            .unwrap_or(Protocol::HttpProtobuf);
        let endpoint = |value: &str| {
            if super::env::is_http_url(value) {
                Ok(())
            } else {
                Err("expected the collector's http:// or https:// URL".to_owned())
            }
        };
        let endpoints = [
            env.parse(&OTLP_ENDPOINT, endpoint),
            env.parse(&OTLP_TRACES_ENDPOINT, endpoint),
        ];
        let export_traces = endpoints.iter().any(Option::is_some);
        let log_filter = env
            .parse(&LOG_FILTER, |filter| {
                tracing_subscriber::EnvFilter::builder()
                    .parse(filter)
                    .map(|_| filter.to_owned())
                    .map_err(|e| format!("not a log filter ({e}): e.g. info or bff=debug,info"))
            })
            .unwrap_or_else(|| LOG_FILTER_DEFAULT.to_owned());
        Telemetry {
            log_filter,
            json_logs,
            export_traces,
            protocol,
            service_name: env.text(&SERVICE_NAME).unwrap_or_default(),
        }
    }
}
