//! Logs and traces. `RUST_LOG` filters the logs (default `info`); `BFF_LOG_FORMAT=json` emits
//! JSON lines for log collectors. Every request's span carries its request id.
//!
//! Traces are exported over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the standard
//! OpenTelemetry variables apply: `OTEL_EXPORTER_OTLP_PROTOCOL` `http/protobuf` or
//! `http/json`, `OTEL_SERVICE_NAME`, `OTEL_EXPORTER_OTLP_HEADERS`, …): one span per request
//! (`request`, with the request id, GraphQL operation name and outcome code) and a child span
//! per SQL statement (`db.query`). The collector must speak plain HTTP (a sidecar or a
//! collector on the private network); without the variable nothing is exported and the
//! statement spans cost nothing.

use opentelemetry::trace::TracerProvider as _;

use crate::config::telemetry::{Protocol, Telemetry as Settings};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Flushes exported spans when dropped (at shutdown).
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber for the server; keep the guard until shutdown.
pub fn init(settings: &Settings) -> Telemetry {
    let filter = EnvFilter::try_new(&settings.log_filter).unwrap_or_else(|error| {
        eprintln!("bff: RUST_LOG is malformed ({error}); logging at info");
        EnvFilter::new("info")
    });
    let logs = if settings.json_logs {
        tracing_subscriber::fmt::layer()
            .json()
            .with_filter(filter)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer().with_filter(filter).boxed()
    };
    let (traces, provider) = match otlp_provider(settings) {
        Ok(Some(provider)) => {
            let tracer = provider.tracer("bff");
            let layer = tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(EnvFilter::new("info,bff::db::instrumentation=debug"));
            (Some(layer), Some(provider))
        }
        Ok(None) => (None, None),
        Err(error) => {
            eprintln!("bff: traces are off: {error}");
            (None, None)
        }
    };
    tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .init();
    Telemetry { provider }
}

/// The OTLP trace pipeline, when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the traces-specific
/// variable) is set; the exporter reads the endpoint and headers itself.
fn otlp_provider(settings: &Settings) -> Result<Option<SdkTracerProvider>, String> {
    if !settings.export_traces {
        return Ok(None);
    }
    let protocol = match settings.protocol {
        Protocol::HttpJson => opentelemetry_otlp::Protocol::HttpJson,
        Protocol::HttpProtobuf => opentelemetry_otlp::Protocol::HttpBinary,
    };
    use opentelemetry_otlp::WithExportConfig;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .build()
        .map_err(|e| format!("OTEL_EXPORTER_OTLP_ENDPOINT: {e}"))?;
    let service = settings.service_name.clone();
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service)
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    Ok(Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build(),
    ))
}

/// Installs a subscriber that writes through the test harness (shown only for failing
/// tests); quiet unless `RUST_LOG` says otherwise. Safe to call more than once.
pub fn init_for_tests() {
    let filter = match Settings::from_env().log_filter.as_str() {
        // Quiet by default: the harness shows a failing test's output only.
        "info" => EnvFilter::new("warn"),
        filter => EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("warn")),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}
