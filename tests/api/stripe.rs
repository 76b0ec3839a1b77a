//! Billing with Stripe: webhook signatures, exactly-once effects, ordering, and the viewer's
//! operations against a local fake of Stripe's API. Nothing here touches the network.

use bff::db::schema::{credit_ledger, purchases, stripe_events};
use bff::stripe::signature;
use diesel::prelude::*;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use serde_json::{Value, json};

use crate::photo_jobs::{invariant_violations, state};
use crate::stripe_fake::FakeStripe;
use crate::support::{TestApp, TestUser, first_code};

mod packs;
mod subscriptions;
mod webhooks;

const WEBHOOK_SECRET: &str = "whsec_test_secret_for_vectors";

pub async fn billing_app() -> (TestApp, FakeStripe) {
    let fake = FakeStripe::start().await;
    let app = TestApp::spawn_with(|env| billing_env(env, &fake)).await;
    set_prices(&app).await;
    (app, fake)
}

/// Points bff at `fake` with the test webhook secret. No background sync: these tests count
/// events and ledger rows as webhooks leave them (tests/api/stripe_sync.rs turns it on and
/// checks it).
pub fn billing_env(env: &mut std::collections::HashMap<&'static str, String>, fake: &FakeStripe) {
    env.insert("STRIPE_SECRET_KEY", "sk_test_fake".into());
    env.insert("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET.into());
    env.insert("STRIPE_API_BASE", fake.url.clone());
    env.insert("BFF_STRIPE_SYNC_INTERVAL_SECONDS", "0".into());
}

/// Gives the credit packs and paid plans the fake's price ids.
pub async fn set_prices(app: &TestApp) {
    app.db()
        .await
        .batch_execute(
            "UPDATE credit_packs SET stripe_price_id = 'price_' || lower(code); \
             UPDATE plans SET stripe_price_id = 'price_' || lower(code) WHERE code <> 'FREE';",
        )
        .await
        .unwrap();
}

/// POSTs `payload` to the webhook with `signature` as `Stripe-Signature`.
async fn deliver_raw(app: &TestApp, payload: &str, signature: Option<String>) -> (u16, Value) {
    let mut request = app
        .client
        .post(app.url("/webhooks/stripe"))
        .header("content-type", "application/json")
        .body(payload.to_owned());
    if let Some(signature) = signature {
        request = request.header("stripe-signature", signature);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Delivers an event signed now, as Stripe would.
pub async fn deliver(app: &TestApp, event: &Value) -> (u16, Value) {
    let payload = event.to_string();
    let t = chrono::Utc::now().timestamp();
    let v1 = signature::sign(payload.as_bytes(), t, WEBHOOK_SECRET);
    deliver_raw(app, &payload, Some(format!("t={t},v1={v1}"))).await
}

/// Delivers `event` `times` times at once; every delivery must answer 200. How many applied it.
pub async fn redeliver(app: &TestApp, event: &Value, times: usize) -> usize {
    let answers = futures_util::future::join_all((0..times).map(|_| deliver(app, event))).await;
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    answers
        .iter()
        .filter(|(_, a)| a["outcome"] == "applied")
        .count()
}

pub fn event(id: &str, kind: &str, created: i64, object: Value) -> Value {
    json!({ "id": id, "object": "event", "type": kind, "created": created, "livemode": false, "data": { "object": object } })
}

pub fn paid_checkout(session: &str, user: &TestUser, pack: &str) -> Value {
    json!({
        "id": session, "object": "checkout.session", "mode": "payment", "client_reference_id": user.id,
        "customer": format!("cus_{}", &user.id[..8]), "payment_status": "paid", "payment_intent": format!("pi_{session}"),
        "amount_total": 1000, "currency": "usd", "metadata": { "pack": pack, "user_id": user.id },
    })
}

pub fn subscription(
    id: &str,
    customer: &str,
    user: &TestUser,
    price: &str,
    status: &str,
    cancel: bool,
) -> Value {
    json!({
        "id": id, "object": "subscription", "customer": customer, "status": status,
        "cancel_at_period_end": cancel, "canceled_at": null, "trial_end": null,
        "metadata": { "user_id": user.id },
        "items": { "data": [{ "id": "si_1", "price": { "id": price },
            "current_period_start": 1_790_000_000, "current_period_end": 1_792_592_000 }] },
    })
}

async fn events_recorded(app: &TestApp) -> i64 {
    stripe_events::table
        .count()
        .get_result(&mut app.db().await)
        .await
        .unwrap()
}

const BILLING: &str = "{ viewer { credits { balance transactions(first: 5) { edges { node { kind amount } } } } purchases { totalCount edges { node { id pack status amount credits completedAt } } } subscription { plan status cancelAtPeriodEnd currentPeriodEnd entitlements { plan } } } }";
