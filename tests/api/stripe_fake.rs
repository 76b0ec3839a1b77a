//! A local fake of the few Stripe API endpoints bff calls (Stripe itself cannot run here).
//! It records every request, honours idempotency keys like Stripe, keeps subscriptions so
//! updates can be read back, and can be told to fail the next call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// One request bff made.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// e.g. `POST /v1/checkout/sessions`.
    pub route: String,
    /// The form fields.
    pub form: HashMap<String, String>,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
    /// The `Authorization` header.
    pub authorization: Option<String>,
}

#[derive(Default)]
struct Inner {
    requests: Vec<Recorded>,
    by_idempotency_key: HashMap<String, Value>,
    subscriptions: HashMap<String, Value>,
    fail_next: Option<(u16, Value)>,
    sessions: usize,
}

/// The fake, listening on a loopback port.
#[derive(Clone)]
pub struct FakeStripe {
    /// Its base URL (for `STRIPE_API_BASE`).
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

/// What a price costs, in cents.
fn amount(price: &str) -> i64 {
    match price {
        "price_small" => 1000,
        "price_medium" => 2500,
        "price_large" => 6000,
        _ => 0,
    }
}

impl FakeStripe {
    /// Starts the fake.
    pub async fn start() -> FakeStripe {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/v1/checkout/sessions", post(create_checkout))
            .route(
                "/v1/subscriptions/{id}",
                get(get_subscription).post(update_subscription),
            )
            .route("/v1/billing_portal/sessions", post(create_portal))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeStripe { url, inner }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// Makes a subscription exist in Stripe.
    pub fn put_subscription(&self, subscription: Value) {
        let id = subscription["id"].as_str().unwrap().to_owned();
        self.inner
            .lock()
            .unwrap()
            .subscriptions
            .insert(id, subscription);
    }

    /// The next call answers `status` with Stripe's error body.
    pub fn fail_next(&self, status: u16, kind: &str, message: &str) {
        self.inner.lock().unwrap().fail_next = Some((
            status,
            json!({ "error": { "type": kind, "message": message } }),
        ));
    }
}

type Shared = State<Arc<Mutex<Inner>>>;

/// Records the request; answers a queued failure or a replay of an idempotent request.
fn begin(
    inner: &mut Inner,
    route: String,
    headers: &HeaderMap,
    form: HashMap<String, String>,
) -> Option<Response> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let recorded = Recorded {
        route,
        form,
        idempotency_key: header("idempotency-key"),
        authorization: header("authorization"),
    };
    let key = recorded.idempotency_key.clone();
    inner.requests.push(recorded);
    if let Some((status, body)) = inner.fail_next.take() {
        return Some((StatusCode::from_u16(status).unwrap(), Json(body)).into_response());
    }
    key.and_then(|k| inner.by_idempotency_key.get(&k).cloned())
        .map(|replay| Json(replay).into_response())
}

fn remember(inner: &mut Inner, headers: &HeaderMap, body: &Value) {
    if let Some(key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
        inner
            .by_idempotency_key
            .insert(key.to_owned(), body.clone());
    }
}

async fn create_checkout(
    State(inner): Shared,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if let Some(early) = begin(
        &mut inner,
        "POST /v1/checkout/sessions".into(),
        &headers,
        form.clone(),
    ) {
        return early;
    }
    inner.sessions += 1;
    let id = format!("cs_test_{}", inner.sessions);
    let price = form
        .get("line_items[0][price]")
        .cloned()
        .unwrap_or_default();
    let body = json!({
        "id": id,
        "object": "checkout.session",
        "url": format!("https://checkout.stripe.test/c/pay/{id}"),
        "mode": form.get("mode"),
        "amount_total": amount(&price),
        "currency": "usd",
        "client_reference_id": form.get("client_reference_id"),
    });
    remember(&mut inner, &headers, &body);
    Json(body).into_response()
}

async fn get_subscription(
    State(inner): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if let Some(early) = begin(
        &mut inner,
        format!("GET /v1/subscriptions/{id}"),
        &headers,
        HashMap::new(),
    ) {
        return early;
    }
    match inner.subscriptions.get(&id) {
        Some(subscription) => Json(subscription.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({ "error": { "type": "invalid_request_error", "message": "No such subscription" } }))).into_response(),
    }
}

async fn update_subscription(
    State(inner): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if let Some(early) = begin(
        &mut inner,
        format!("POST /v1/subscriptions/{id}"),
        &headers,
        form.clone(),
    ) {
        return early;
    }
    let Some(subscription) = inner.subscriptions.get_mut(&id) else {
        return (StatusCode::NOT_FOUND, Json(json!({ "error": { "type": "invalid_request_error", "message": "No such subscription" } }))).into_response();
    };
    if let Some(price) = form.get("items[0][price]") {
        subscription["items"]["data"][0]["price"]["id"] = json!(price);
    }
    if let Some(cancel) = form.get("cancel_at_period_end") {
        subscription["cancel_at_period_end"] = json!(cancel == "true");
    }
    let body = subscription.clone();
    remember(&mut inner, &headers, &body);
    Json(body).into_response()
}

async fn create_portal(
    State(inner): Shared,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if let Some(early) = begin(
        &mut inner,
        "POST /v1/billing_portal/sessions".into(),
        &headers,
        form.clone(),
    ) {
        return early;
    }
    Json(json!({ "object": "billing_portal.session", "url": format!("https://billing.stripe.test/p/session/{}", form.get("customer").cloned().unwrap_or_default()) })).into_response()
}
