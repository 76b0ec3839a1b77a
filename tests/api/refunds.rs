//! Money back out: `charge.refunded` on a credit-pack payment takes the pack's credits back,
//! exactly once, in proportion, in any order, and even when they were spent.

use bff::db::schema::credit_ledger;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};

use crate::photo_jobs::{invariant_violations, state};
use crate::stripe::{billing_app, deliver, event, paid_checkout, redeliver, subscription};
use crate::support::{TestApp, TestUser, first_code};

mod charges;
mod disputes;
mod refund_objects;

const PURCHASES: &str = "{ viewer { credits { balance } purchases { nodes { status amount refundedAmount credits creditsReversed } } } }";

/// A `charge.refunded` event: `refunded` (cumulative) of the 10.00 paid for session `session`.
fn refunded(id: &str, session: &str, refunded: i64) -> Value {
    event(
        id,
        "charge.refunded",
        1_790_000_100,
        json!({
            "id": format!("ch_{session}"), "object": "charge", "payment_intent": format!("pi_{session}"),
            "amount": 1000, "amount_refunded": refunded, "refunded": refunded >= 1000, "currency": "usd",
        }),
    )
}

fn completed(id: &str, session: &str, user: &TestUser) -> Value {
    event(
        id,
        "checkout.session.completed",
        1_790_000_000,
        paid_checkout(session, user, "MEDIUM"),
    )
}

async fn outcome(app: &TestApp, event: &Value) -> String {
    let (status, answer) = deliver(app, event).await;
    assert_eq!(status, 200, "{answer}");
    answer["outcome"].as_str().unwrap_or("duplicate").to_owned()
}

/// (kind, amount) of the user's ledger, oldest first.
async fn ledger(app: &TestApp, user: &TestUser) -> Vec<(String, i64)> {
    credit_ledger::table
        .filter(credit_ledger::user_id.eq(&user.id))
        .order(credit_ledger::id)
        .select((credit_ledger::kind, credit_ledger::amount_cents))
        .load(&mut app.db().await)
        .await
        .unwrap()
}

async fn purchase(app: &TestApp, user: &TestUser) -> Value {
    let body = app.query_as(user, PURCHASES, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["viewer"].clone()
}

/// A `refund.*` event of refund `refund` of the payment of session `session`.
fn refund_event(
    id: &str,
    kind: &str,
    refund: &str,
    session: &str,
    amount: i64,
    status: &str,
) -> Value {
    event(
        id,
        kind,
        1_790_000_200,
        json!({
            "id": refund, "object": "refund", "amount": amount, "currency": "usd", "status": status,
            "charge": format!("ch_{session}"), "payment_intent": format!("pi_{session}"),
        }),
    )
}
