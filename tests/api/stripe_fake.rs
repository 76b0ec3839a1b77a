//! A local fake of the few Stripe API endpoints bff calls (Stripe itself cannot run here).
//! It records every request, honours idempotency keys like Stripe, keeps subscriptions so
//! updates can be read back, keeps Checkout Sessions (open until paid or expired: expiring a
//! paid one is refused, as Stripe does), refunds (a payment is refunded once; a second refund
//! is refused with `charge_already_refunded`) and invoices put there by a test, lists the
//! events published to it as `GET /v1/events` does (newest first, `created[gte]`, `types[]`,
//! `limit`, `starting_after`), and can be told to fail the next call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Path, RawQuery, State};
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
    events: Vec<Value>,
    down: bool,
    customers_deleted: Vec<String>,
    /// Checkout Sessions by id (`status`: `open`, `complete` or `expired`).
    checkouts: HashMap<String, Value>,
    /// Refunds made: the payment intent (or charge) of each.
    refunds: Vec<String>,
    invoices: HashMap<String, Value>,
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
    /// Starts the fake on a free loopback port.
    pub async fn start() -> FakeStripe {
        Self::start_on(0).await
    }

    /// Starts the fake on loopback port `port` (0: any free one).
    pub async fn start_on(port: u16) -> FakeStripe {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/v1/checkout/sessions", post(create_checkout))
            .route(
                "/v1/subscriptions/{id}",
                get(get_subscription)
                    .post(update_subscription)
                    .delete(cancel_subscription),
            )
            .route("/v1/customers/{id}", axum::routing::delete(delete_customer))
            .route("/v1/checkout/sessions/{id}", get(get_checkout))
            .route("/v1/checkout/sessions/{id}/expire", post(expire_checkout))
            .route("/v1/refunds", post(create_refund))
            .route("/v1/invoices/{id}", get(get_invoice))
            .route("/v1/billing_portal/sessions", post(create_portal))
            .route("/v1/events", get(list_events))
            // The fake's own: publishes an event to the list (by hand, or from another process).
            .route("/fake/events", post(publish_event))
            .route("/fake/subscriptions", post(put_subscription))
            .route("/fake/down", post(go_down))
            .route("/fake/up", post(come_up))
            .route("/fake/state", get(fake_state))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
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

    /// Makes an event exist in Stripe's list (whether or not a webhook delivers it).
    pub fn publish(&self, event: &Value) {
        self.inner.lock().unwrap().events.push(event.clone());
    }

    /// While down, every API call answers 503.
    pub fn set_down(&self, down: bool) {
        self.inner.lock().unwrap().down = down;
    }

    /// A subscription as Stripe holds it now.
    pub fn subscription(&self, id: &str) -> Option<Value> {
        self.inner.lock().unwrap().subscriptions.get(id).cloned()
    }

    /// The customers deleted so far.
    pub fn customers_deleted(&self) -> Vec<String> {
        self.inner.lock().unwrap().customers_deleted.clone()
    }

    /// A Checkout Session's status: `open`, `complete` or `expired`.
    pub fn checkout(&self, id: &str) -> Option<String> {
        let inner = self.inner.lock().unwrap();
        Some(inner.checkouts.get(id)?["status"].as_str()?.to_owned())
    }

    /// The customer pays a Checkout Session (payment intent `pi_<id>`, a new customer
    /// `cus_for_<id>`): it cannot be expired any more.
    pub fn pay_checkout(&self, id: &str) {
        let mut inner = self.inner.lock().unwrap();
        let session = inner
            .checkouts
            .get_mut(id)
            .expect("a session the fake made");
        session["status"] = json!("complete");
        session["payment_status"] = json!("paid");
        session["customer"] = json!(format!("cus_for_{id}"));
        if session["mode"] == "payment" {
            session["payment_intent"] = json!(format!("pi_{id}"));
        }
    }

    /// The payments refunded so far, in order.
    pub fn refunds(&self) -> Vec<String> {
        self.inner.lock().unwrap().refunds.clone()
    }

    /// Makes an invoice exist in Stripe.
    pub fn put_invoice(&self, invoice: Value) {
        let id = invoice["id"].as_str().unwrap().to_owned();
        self.inner.lock().unwrap().invoices.insert(id, invoice);
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
    if inner.down {
        let body = json!({ "error": { "type": "api_error", "message": "Stripe is down (fake)" } });
        return Some((StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response());
    }
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
        "status": "open",
        "payment_status": "unpaid",
        "metadata": { "user_id": form.get("metadata[user_id]"), "pack": form.get("metadata[pack]") },
        "expires_at": chrono::Utc::now().timestamp() + 24 * 3600,
    });
    inner.checkouts.insert(id, body.clone());
    remember(&mut inner, &headers, &body);
    Json(body).into_response()
}

/// Answers `route` with the object `find` picks from the fake's state, or Stripe's 404.
fn lookup(
    inner: &Mutex<Inner>,
    headers: &HeaderMap,
    route: String,
    find: impl FnOnce(&Inner) -> Option<Value>,
    missing: &str,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if let Some(early) = begin(&mut inner, route, headers, HashMap::new()) {
        return early;
    }
    match find(&inner) {
        Some(object) => Json(object).into_response(),
        None => error(StatusCode::NOT_FOUND, "resource_missing", missing),
    }
}

async fn get_subscription(
    State(inner): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let route = format!("GET /v1/subscriptions/{id}");
    let find = |inner: &Inner| inner.subscriptions.get(&id).cloned();
    lookup(&inner, &headers, route, find, "No such subscription")
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

/// Decodes `application/x-www-form-urlencoded` pairs (repeated keys kept).
fn pairs(query: &str) -> Vec<(String, String)> {
    let decode = |text: &str| {
        let bytes = text.replace('+', " ").into_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
            match (bytes[i], hex) {
                (b'%', Some(byte)) => {
                    out.push(byte);
                    i += 3;
                }
                (byte, _) => {
                    out.push(byte);
                    i += 1;
                }
            }
        }
        String::from_utf8(out).unwrap()
    };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

async fn list_events(
    State(inner): Shared,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = pairs(query.as_deref().unwrap_or(""));
    let mut inner = inner.lock().unwrap();
    if let Some(early) = begin(
        &mut inner,
        "GET /v1/events".into(),
        &headers,
        query.iter().cloned().collect(),
    ) {
        return early;
    }
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let types: Vec<&String> = query
        .iter()
        .filter(|(k, _)| k == "types[]")
        .map(|(_, v)| v)
        .collect();
    let since: i64 = param("created[gte]").map_or(0, |v| v.parse().unwrap());
    let limit: usize = param("limit").map_or(10, |v| v.parse().unwrap());
    assert!((1..=100).contains(&limit), "Stripe's limit is 1 to 100");
    assert!(types.len() <= 20, "Stripe takes at most 20 types");
    let mut events: Vec<&Value> = inner
        .events
        .iter()
        .filter(|e| e["created"].as_i64().unwrap() >= since)
        .filter(|e| types.is_empty() || types.iter().any(|t| e["type"] == t.as_str()))
        .collect();
    // Newest first; events of one second in the order they were published, reversed.
    events.reverse();
    events.sort_by_key(|e| std::cmp::Reverse(e["created"].as_i64().unwrap()));
    if let Some(after) = param("starting_after") {
        let at = events
            .iter()
            .position(|e| e["id"] == after.as_str())
            .expect("a listed event");
        events.drain(..=at);
    }
    let has_more = events.len() > limit;
    events.truncate(limit);
    Json(json!({ "object": "list", "url": "/v1/events", "has_more": has_more, "data": events }))
        .into_response()
}

async fn publish_event(State(inner): Shared, Json(event): Json<Value>) -> Response {
    assert!(
        event["id"].is_string() && event["created"].is_i64(),
        "an event"
    );
    inner.lock().unwrap().events.push(event);
    StatusCode::NO_CONTENT.into_response()
}

async fn cancel_subscription(
    State(inner): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if let Some(early) = begin(
        &mut inner,
        format!("DELETE /v1/subscriptions/{id}"),
        &headers,
        HashMap::new(),
    ) {
        return early;
    }
    let Some(subscription) = inner.subscriptions.get_mut(&id) else {
        return (StatusCode::NOT_FOUND, Json(json!({ "error": { "type": "invalid_request_error", "code": "resource_missing", "message": "No such subscription" } }))).into_response();
    };
    subscription["status"] = json!("canceled");
    Json(subscription.clone()).into_response()
}

async fn delete_customer(
    State(inner): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if let Some(early) = begin(
        &mut inner,
        format!("DELETE /v1/customers/{id}"),
        &headers,
        HashMap::new(),
    ) {
        return early;
    }
    inner.customers_deleted.push(id.clone());
    Json(json!({ "id": id, "object": "customer", "deleted": true })).into_response()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body =
        json!({ "error": { "type": "invalid_request_error", "code": code, "message": message } });
    (status, Json(body)).into_response()
}

async fn expire_checkout(
    State(inner): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if let Some(early) = begin(
        &mut inner,
        format!("POST /v1/checkout/sessions/{id}/expire"),
        &headers,
        HashMap::new(),
    ) {
        return early;
    }
    let Some(session) = inner.checkouts.get_mut(&id) else {
        return error(
            StatusCode::NOT_FOUND,
            "resource_missing",
            "No such checkout.session",
        );
    };
    match session["status"].as_str() {
        Some("open") => {
            session["status"] = json!("expired");
            Json(session.clone()).into_response()
        }
        _ => error(
            StatusCode::BAD_REQUEST,
            "checkout_session_not_open",
            "Only Checkout Sessions with a status of open can be expired.",
        ),
    }
}

async fn get_checkout(
    State(inner): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let route = format!("GET /v1/checkout/sessions/{id}");
    let find = |inner: &Inner| inner.checkouts.get(&id).cloned();
    lookup(&inner, &headers, route, find, "No such checkout.session")
}

async fn create_refund(
    State(inner): Shared,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if let Some(early) = begin(
        &mut inner,
        "POST /v1/refunds".into(),
        &headers,
        form.clone(),
    ) {
        return early;
    }
    let Some(payment) = form.get("payment_intent").or(form.get("charge")).cloned() else {
        return error(
            StatusCode::BAD_REQUEST,
            "parameter_missing",
            "payment_intent or charge",
        );
    };
    if inner.refunds.contains(&payment) {
        return error(
            StatusCode::BAD_REQUEST,
            "charge_already_refunded",
            "Charge has already been refunded.",
        );
    }
    inner.refunds.push(payment);
    let body = json!({ "id": format!("re_{}", inner.refunds.len()), "object": "refund",
        "payment_intent": form.get("payment_intent"), "status": "succeeded" });
    remember(&mut inner, &headers, &body);
    Json(body).into_response()
}

async fn get_invoice(State(inner): Shared, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let route = format!("GET /v1/invoices/{id}");
    let find = |inner: &Inner| inner.invoices.get(&id).cloned();
    lookup(&inner, &headers, route, find, "No such invoice")
}

async fn put_subscription(State(inner): Shared, Json(subscription): Json<Value>) -> Response {
    let id = subscription["id"]
        .as_str()
        .expect("a subscription id")
        .to_owned();
    inner.lock().unwrap().subscriptions.insert(id, subscription);
    StatusCode::NO_CONTENT.into_response()
}

async fn go_down(State(inner): Shared) -> Response {
    inner.lock().unwrap().down = true;
    StatusCode::NO_CONTENT.into_response()
}

async fn come_up(State(inner): Shared) -> Response {
    inner.lock().unwrap().down = false;
    StatusCode::NO_CONTENT.into_response()
}

async fn fake_state(State(inner): Shared) -> Response {
    let inner = inner.lock().unwrap();
    Json(json!({
        "down": inner.down,
        "customersDeleted": inner.customers_deleted,
        "checkouts": inner.checkouts.iter().map(|(id, s)| (id.clone(), s["status"].clone())).collect::<HashMap<_, _>>(),
        "refunds": inner.refunds,
        "subscriptions": inner.subscriptions,
        "requests": inner.requests.iter().map(|r| r.route.clone()).collect::<Vec<_>>(),
    }))
    .into_response()
}
