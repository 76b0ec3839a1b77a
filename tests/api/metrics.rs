//! Prometheus metrics on their own listener: a scrape shows that requests, GraphQL operations
//! and Stripe events move the counters, and the pool's gauges.

use serde_json::json;

use crate::stripe::{billing_app, deliver, event, paid_checkout};
use crate::support::TestApp;

/// Starts the metrics listener for `app`'s pool; returns its address.
pub async fn metrics_listener(app: &TestApp) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(bff::http::metrics::serve(listener, app.pool.clone()));
    addr
}

pub async fn scrape(app: &TestApp, addr: std::net::SocketAddr) -> String {
    let response = app
        .client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    response.text().await.unwrap()
}

/// The value of the series `name{labels}` (labels in the exporter's order), or 0.
pub fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_scrape_shows_requests_operations_webhooks_and_the_pool() {
    let (app, _stripe) = billing_app().await;
    let addr = metrics_listener(&app).await;
    let user = app.user("Counted").await;
    let before = scrape(&app, addr).await;

    let dashboard = "query MetricsDashboard { viewer { id credits { balance } usage { used } photoJobs(first: 5) { totalCount } } }";
    let body = app.query_as(&user, dashboard, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    let body = app
        .query_as(
            &user,
            "query MetricsMissing { node(id: \"nope\") { id } }",
            json!({}),
        )
        .await;
    assert!(body["data"]["node"].is_null(), "{body}");
    let unauthenticated = app
        .post(
            "query MetricsUnauthenticated { node(id: \"x\") { id } }",
            json!({}),
            &[],
        )
        .await;
    assert_eq!(
        crate::support::first_code(&unauthenticated.1),
        "UNAUTHENTICATED"
    );
    let missing = app.client.get(app.url("/nowhere")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let checkout = event(
        "evt_metrics_1",
        "checkout.session.completed",
        chrono::Utc::now().timestamp(),
        paid_checkout("cs_metrics_1", &user, "SMALL"),
    );
    assert_eq!(deliver(&app, &checkout).await.0, 200);
    assert_eq!(deliver(&app, &checkout).await.0, 200);

    let after = scrape(&app, addr).await;
    let delta = |series: &str| value(&after, series) - value(&before, series);
    assert!(
        delta(r#"bff_http_requests_total{method="POST",route="/graphql",status="200"}"#) >= 3.0,
        "{after}"
    );
    assert!(
        delta(r#"bff_http_requests_total{method="GET",route="unmatched",status="404"}"#) >= 1.0
    );
    assert!(
        value(
            &after,
            r#"bff_http_request_duration_seconds_count{method="POST",route="/graphql"}"#
        ) >= 3.0
    );
    assert!(after.contains(
        r#"bff_http_request_duration_seconds_bucket{method="POST",route="/graphql",le="0.005"}"#
    ));
    assert_eq!(
        delta(r#"bff_graphql_operations_total{operation="MetricsDashboard",code="OK"}"#),
        1.0,
        "{after}"
    );
    assert_eq!(
        delta(r#"bff_graphql_operations_total{operation="MetricsMissing",code="OK"}"#),
        1.0
    );
    assert_eq!(
        delta(
            r#"bff_graphql_operations_total{operation="MetricsUnauthenticated",code="UNAUTHENTICATED"}"#
        ),
        1.0
    );
    assert!(
        delta(
            r#"bff_stripe_webhook_events_total{type="checkout.session.completed",outcome="applied"}"#
        ) >= 1.0
    );
    assert!(
        delta(
            r#"bff_stripe_webhook_events_total{type="checkout.session.completed",outcome="duplicate"}"#
        ) >= 1.0
    );
    assert_eq!(value(&after, "bff_db_pool_max"), 5.0, "{after}");
    assert!(
        value(&after, r#"bff_db_pool_connections{state="idle"}"#) >= 1.0,
        "{after}"
    );
    // The commit is the one `bff --version` names (tests/api/cli.rs checks it against git).
    assert!(after.contains(&format!(
        r#"bff_build_info{{version="{}",commit="{}"}} 1"#,
        env!("CARGO_PKG_VERSION"),
        env!("BFF_COMMIT")
    )));
    println!("{after}");
}

#[tokio::test]
async fn metrics_are_never_on_the_public_port() {
    let app = TestApp::spawn().await;
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 404);
}
