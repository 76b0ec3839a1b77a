//! OpenTelemetry traces: the real `bff serve`, pointed at a small OTLP/HTTP receiver in this
//! test, exports one span per request (request id, operation name, outcome) with a child span
//! per SQL statement.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;

use crate::support::TestApp;

/// Starts the receiver; returns its endpoint and what it received.
async fn receiver() -> (String, Arc<Mutex<Vec<Span>>>) {
    let spans = Arc::new(Mutex::new(Vec::new()));
    let sink = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let sink = sink.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                for resource in request.resource_spans {
                    for scope in resource.scope_spans {
                        sink.lock().unwrap().extend(scope.spans);
                    }
                }
                (
                    [("content-type", "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), spans)
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some(s.clone()),
            AnyValue::IntValue(i) => Some(i.to_string()),
            other => Some(format!("{other:?}")),
        }
    })
}

#[tokio::test]
async fn a_request_is_exported_as_a_span_with_its_statements_as_children() {
    let (endpoint, spans) = receiver().await;
    let app = TestApp::spawn().await;
    let user = app.user("Traced").await;
    let (child, base) = crate::cli::serve_child(
        &app.database_url,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_SERVICE_NAME", "bff-under-test"),
        ],
    )
    .await;
    let response = app
        .client
        .post(format!("{base}/graphql"))
        .header("cookie", user.cookie())
        .json(&json!({ "query": "query TracedViewer { viewer { id credits { balance transactions(first: 1) { edges { cursor } } } photoJobs(first: 1) { totalCount } } }" }))
        .send()
        .await
        .unwrap();
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["data"]["viewer"]["id"], user.id.as_str(), "{body}");

    // SIGTERM: graceful shutdown flushes the batch of spans.
    let status = crate::cli::signal_and_wait(child, "-TERM").await;
    assert!(status.success(), "bff serve exited with {status}");

    let spans = spans.lock().unwrap().clone();
    let request = spans
        .iter()
        .find(|s| s.name == "request" && attribute(s, "request_id").as_deref() == Some(&request_id))
        .unwrap_or_else(|| panic!("no request span among {} spans", spans.len()));
    assert_eq!(
        attribute(request, "graphql.operation").as_deref(),
        Some("TracedViewer")
    );
    assert_eq!(attribute(request, "graphql.outcome").as_deref(), Some("OK"));
    assert_eq!(
        attribute(request, "http.status_code").as_deref(),
        Some("200")
    );
    let statements: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name == "db.query" && s.trace_id == request.trace_id)
        .collect();
    assert!(
        statements.len() >= 3,
        "session lookup, ledger page, jobs page with count: {} statements",
        statements.len()
    );
    for statement in &statements {
        assert!(!statement.parent_span_id.is_empty());
        let sql = attribute(statement, "db.statement").unwrap_or_default();
        assert!(sql.contains("SELECT") || sql.contains("INSERT"), "{sql}");
    }
    assert!(
        statements
            .iter()
            .any(|s| s.parent_span_id == request.span_id),
        "a statement span is a child of the request span"
    );
}
