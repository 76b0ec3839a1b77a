//! The tests' fake of Stripe's API, on its own, for trying bff's billing by hand:
//!
//! ```console
//! $ cargo run --example stripe_fake -- 12111
//! $ STRIPE_SECRET_KEY=sk_test_x STRIPE_API_BASE=http://127.0.0.1:12111 bff serve
//! $ curl -X POST http://127.0.0.1:12111/fake/events -H 'content-type: application/json' -d @event.json
//! $ bff stripe sync
//! ```
//!
//! It answers Checkout Sessions (create, read, expire), subscriptions (read, update, cancel),
//! customer deletion, refunds, invoices, billing-portal sessions and `GET /v1/events` (the
//! events POSTed to `/fake/events`). Its own
//! routes: `POST /fake/events`, `POST /fake/subscriptions` (make one exist), `POST /fake/down` and
//! `/fake/up` (every API call answers 503 meanwhile), `GET /fake/state`. Loopback only; nothing
//! is kept.

#![forbid(unsafe_code)]

#[allow(dead_code)]
#[path = "../tests/api/stripe_fake.rs"]
mod stripe_fake;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let port = std::env::args()
        .nth(1)
        .map_or(Ok(12111), |p| p.parse())
        .expect("a port number");
    let fake = stripe_fake::FakeStripe::start_on(port).await;
    println!("fake Stripe API at {}", fake.url);
    std::future::pending::<()>().await;
}
