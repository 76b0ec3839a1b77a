//! Money back out: `charge.refunded` on a credit-pack payment takes the pack's credits back,
//! exactly once, in proportion, in any order, and even when they were spent.

use bff::db::schema::credit_ledger;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};

use crate::photo_jobs::{invariant_violations, state};
use crate::stripe::{billing_app, deliver, event, paid_checkout, redeliver, subscription};
use crate::support::{TestApp, TestUser, first_code};

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

#[tokio::test]
async fn a_full_refund_takes_the_pack_back_and_partial_ones_their_share_rounded_down() {
    let (app, _) = billing_app().await;
    let full = app.user("Full").await;
    assert_eq!(
        outcome(&app, &completed("evt_c1", "cs_full", &full)).await,
        "applied"
    );
    assert_eq!(
        outcome(&app, &refunded("evt_r1", "cs_full", 1000)).await,
        "applied"
    );
    let seen = purchase(&app, &full).await;
    assert_eq!(seen["credits"]["balance"], "0.00");
    assert_eq!(
        seen["purchases"]["nodes"][0],
        json!({ "status": "REFUNDED", "amount": "10.00", "refundedAmount": "10.00", "credits": "25.00", "creditsReversed": "25.00" })
    );
    assert_eq!(
        ledger(&app, &full).await,
        [("PURCHASE".into(), 2500), ("PURCHASE_REFUND".into(), -2500)]
    );

    // 3.33 of 10.00 refunded: 25.00 × 0.333 = 8.325 credits, rounded down to 8.32; then the
    // rest, cumulatively: never more than the pack gave.
    let partial = app.user("Partial").await;
    outcome(&app, &completed("evt_c2", "cs_part", &partial)).await;
    assert_eq!(
        outcome(&app, &refunded("evt_r2", "cs_part", 333)).await,
        "applied"
    );
    let seen = purchase(&app, &partial).await;
    assert_eq!(seen["credits"]["balance"], "16.68");
    assert_eq!(
        seen["purchases"]["nodes"][0]["status"],
        "PARTIALLY_REFUNDED"
    );
    assert_eq!(seen["purchases"]["nodes"][0]["refundedAmount"], "3.33");
    assert_eq!(seen["purchases"]["nodes"][0]["creditsReversed"], "8.32");
    // An older event delivered late (a smaller cumulative amount) changes nothing.
    assert_eq!(
        outcome(&app, &refunded("evt_r3", "cs_part", 100)).await,
        "applied"
    );
    assert_eq!(
        purchase(&app, &partial).await["credits"]["balance"],
        "16.68"
    );
    assert_eq!(
        outcome(&app, &refunded("evt_r4", "cs_part", 1000)).await,
        "applied"
    );
    let seen = purchase(&app, &partial).await;
    assert_eq!(seen["credits"]["balance"], "0.00");
    assert_eq!(seen["purchases"]["nodes"][0]["status"], "REFUNDED");
    assert_eq!(
        ledger(&app, &partial).await,
        [
            ("PURCHASE".into(), 2500),
            ("PURCHASE_REFUND".into(), -832),
            ("PURCHASE_REFUND".into(), -1668)
        ]
    );
    assert_eq!(invariant_violations(&mut app.db().await).await, 0);
}

#[tokio::test]
async fn spent_credits_leave_the_balance_negative_and_paid_jobs_are_refused() {
    let (app, _) = billing_app().await;
    let user = app.user("Spender").await;
    outcome(&app, &completed("evt_c", "cs_spend", &user)).await;
    // 10 photos on FREE: 3 from the allowance, 7 × 0.50 = 3.50 of credits.
    let create = "mutation($n: Int!) { createPhotoJob(input: { prompt: \"p\", photoCount: $n }) { photoJob { id cost } } }";
    let job = app.query_as(&user, create, json!({ "n": 10 })).await;
    assert_eq!(
        job["data"]["createPhotoJob"]["photoJob"]["cost"], "3.50",
        "{job}"
    );
    let second = app.query_as(&user, create, json!({ "n": 2 })).await;
    assert_eq!(
        second["data"]["createPhotoJob"]["photoJob"]["cost"], "1.00",
        "{second}"
    );
    assert_eq!(
        outcome(&app, &refunded("evt_r", "cs_spend", 1000)).await,
        "applied"
    );
    let seen = purchase(&app, &user).await;
    assert_eq!(seen["credits"]["balance"], "-4.50", "shown as it is");
    let refused = app.query_as(&user, create, json!({ "n": 1 })).await;
    assert_eq!(first_code(&refused), "INSUFFICIENT_CREDITS", "{refused}");
    assert_eq!(state(&app, &user).await.0, 2, "no third job");
    // Credits coming in count while the balance stays negative: a job's refund.
    let id = second["data"]["createPhotoJob"]["photoJob"]["id"].clone();
    let cancel = "mutation($id: ID!) { cancelPhotoJob(id: $id) { status } }";
    let canceled = app.query_as(&user, cancel, json!({ "id": id })).await;
    assert_eq!(
        canceled["data"]["cancelPhotoJob"]["status"], "CANCELED",
        "{canceled}"
    );
    assert_eq!(purchase(&app, &user).await["credits"]["balance"], "-3.50");
    outcome(&app, &completed("evt_c2", "cs_spend_again", &user)).await;
    assert_eq!(purchase(&app, &user).await["credits"]["balance"], "21.50");
    assert_eq!(invariant_violations(&mut app.db().await).await, 0);
}

#[tokio::test]
async fn a_refund_redelivered_twenty_times_at_once_applies_once() {
    let (app, _) = billing_app().await;
    let user = app.user("Redelivered").await;
    outcome(&app, &completed("evt_c", "cs_dup", &user)).await;
    let refund = refunded("evt_dup_refund", "cs_dup", 1000);
    assert_eq!(redeliver(&app, &refund, 20).await, 1);
    assert_eq!(
        ledger(&app, &user).await,
        [("PURCHASE".into(), 2500), ("PURCHASE_REFUND".into(), -2500)]
    );
    assert_eq!(invariant_violations(&mut app.db().await).await, 0);
}

#[tokio::test]
async fn a_refund_before_its_completion_is_applied_after_the_grant_in_any_order() {
    let (app, _) = billing_app().await;
    let early = app.user("Early").await;
    assert_eq!(
        outcome(&app, &refunded("evt_r", "cs_early", 400)).await,
        "awaiting_purchase"
    );
    assert_eq!(
        outcome(&app, &completed("evt_c", "cs_early", &early)).await,
        "applied"
    );
    assert_eq!(
        ledger(&app, &early).await,
        [("PURCHASE".into(), 2500), ("PURCHASE_REFUND".into(), -1000)]
    );
    assert_eq!(
        purchase(&app, &early).await["purchases"]["nodes"][0]["status"],
        "PARTIALLY_REFUNDED"
    );

    // The refund and the completion arriving at the same moment, for several purchases: each
    // ends at the same balance whichever wins.
    let mut users = Vec::new();
    for i in 0..6 {
        users.push(app.user(&format!("Race {i}")).await);
    }
    let deliveries = users.iter().enumerate().flat_map(|(i, user)| {
        let session = format!("cs_race_{i}");
        [
            completed(&format!("evt_rc_{i}"), &session, user),
            refunded(&format!("evt_rr_{i}"), &session, 1000),
        ]
    });
    let events: Vec<Value> = deliveries.collect();
    let answers = futures_util::future::join_all(events.iter().map(|e| deliver(&app, e))).await;
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    for user in &users {
        assert_eq!(purchase(&app, user).await["credits"]["balance"], "0.00");
        assert_eq!(
            ledger(&app, user).await,
            [("PURCHASE".into(), 2500), ("PURCHASE_REFUND".into(), -2500)]
        );
    }
    assert_eq!(invariant_violations(&mut app.db().await).await, 0);
}

#[tokio::test]
async fn a_refund_racing_photo_jobs_never_lets_a_job_spend_credits_that_are_gone() {
    let (app, _) = billing_app().await;
    let user = app.user("Racer").await;
    outcome(&app, &completed("evt_c", "cs_racer", &user)).await;
    let create = "mutation { createPhotoJob(input: { prompt: \"p\", photoCount: 2 }) { photoJob { cost } } }";
    let refund = refunded("evt_r", "cs_racer", 1000);
    let jobs =
        futures_util::future::join_all((0..8).map(|_| app.query_as(&user, create, json!({}))));
    let (jobs, (status, _)) = tokio::join!(jobs, deliver(&app, &refund));
    assert_eq!(status, 200);
    // Every charge found the credits it spent: its balance after is never below zero.
    let charges: Vec<i64> = credit_ledger::table
        .filter(credit_ledger::user_id.eq(&user.id))
        .filter(credit_ledger::kind.eq("JOB_CHARGE"))
        .select(credit_ledger::balance_after_cents)
        .load(&mut app.db().await)
        .await
        .unwrap();
    assert!(charges.iter().all(|after| *after >= 0), "{charges:?}");
    let made = jobs.iter().filter(|b| b.get("errors").is_none()).count();
    let refused = jobs
        .iter()
        .filter(|b| b.get("errors").is_some() && first_code(b) == "INSUFFICIENT_CREDITS")
        .count();
    assert_eq!(made + refused, 8, "{jobs:?}");
    let (_, _, _, balance) = state(&app, &user).await;
    let spent: i64 = charges.len() as i64;
    assert!(made as i64 >= spent);
    // 25.00 granted, taken back, and whatever the jobs spent before the refund.
    let paid_jobs = ledger(&app, &user)
        .await
        .iter()
        .filter(|(kind, _)| kind == "JOB_CHARGE")
        .map(|(_, amount)| -amount)
        .sum::<i64>();
    assert_eq!(balance, 2500 - 2500 - paid_jobs);
    assert_eq!(invariant_violations(&mut app.db().await).await, 0);
}

/// A `charge.dispute.created` (no `status`) or `charge.dispute.closed` (`won` or `lost`) event
/// for the payment of session `session`.
fn dispute(id: &str, session: &str, closed: Option<&str>) -> Value {
    let kind = if closed.is_some() {
        "charge.dispute.closed"
    } else {
        "charge.dispute.created"
    };
    event(
        id,
        kind,
        1_790_000_200,
        json!({
            "id": format!("dp_{session}"), "object": "dispute", "charge": format!("ch_{session}"),
            "payment_intent": format!("pi_{session}"), "amount": 1000,
            "status": closed.unwrap_or("needs_response"),
        }),
    )
}

#[tokio::test]
async fn a_dispute_holds_the_remaining_credits_and_settles_them() {
    let (app, _) = billing_app().await;
    // Partly refunded, then disputed and won: the hold is what was left, and comes back.
    let won = app.user("Won").await;
    outcome(&app, &completed("evt_c1", "cs_won", &won)).await;
    outcome(&app, &refunded("evt_r1", "cs_won", 333)).await;
    assert_eq!(
        outcome(&app, &dispute("evt_d1", "cs_won", None)).await,
        "applied"
    );
    let seen = purchase(&app, &won).await;
    assert_eq!(seen["credits"]["balance"], "0.00");
    assert_eq!(seen["purchases"]["nodes"][0]["status"], "DISPUTED");
    assert_eq!(
        outcome(&app, &dispute("evt_d2", "cs_won", Some("won"))).await,
        "applied"
    );
    let seen = purchase(&app, &won).await;
    assert_eq!(seen["credits"]["balance"], "16.68");
    assert_eq!(
        seen["purchases"]["nodes"][0]["status"],
        "PARTIALLY_REFUNDED"
    );
    assert_eq!(
        ledger(&app, &won).await,
        [
            ("PURCHASE".into(), 2500),
            ("PURCHASE_REFUND".into(), -832),
            ("DISPUTE_HOLD".into(), -1668),
            ("DISPUTE_RELEASE".into(), 1668)
        ]
    );
    // Lost: the credits stay taken, spent ones included.
    let lost = app.user("Lost").await;
    outcome(&app, &completed("evt_c2", "cs_lost", &lost)).await;
    let create = "mutation { createPhotoJob(input: { prompt: \"p\", photoCount: 10 }) { photoJob { cost } } }";
    assert!(
        app.query_as(&lost, create, json!({}))
            .await
            .get("errors")
            .is_none()
    );
    outcome(&app, &dispute("evt_d3", "cs_lost", None)).await;
    assert_eq!(
        outcome(&app, &dispute("evt_d4", "cs_lost", Some("lost"))).await,
        "applied"
    );
    let seen = purchase(&app, &lost).await;
    assert_eq!(seen["credits"]["balance"], "-3.50");
    assert_eq!(seen["purchases"]["nodes"][0]["status"], "DISPUTE_LOST");
    assert_eq!(invariant_violations(&mut app.db().await).await, 0);
}

#[tokio::test]
async fn dispute_events_in_any_order_and_redelivered_hold_once() {
    let (app, _) = billing_app().await;
    // The close arrives first, then the open, then the purchase completes.
    let user = app.user("Backwards").await;
    assert_eq!(
        outcome(&app, &dispute("evt_d2", "cs_back", Some("lost"))).await,
        "awaiting_purchase"
    );
    assert_eq!(
        outcome(&app, &dispute("evt_d1", "cs_back", None)).await,
        "awaiting_purchase"
    );
    assert_eq!(
        outcome(&app, &completed("evt_c", "cs_back", &user)).await,
        "applied"
    );
    assert_eq!(
        ledger(&app, &user).await,
        [("PURCHASE".into(), 2500), ("DISPUTE_HOLD".into(), -2500)]
    );
    assert_eq!(
        purchase(&app, &user).await["purchases"]["nodes"][0]["status"],
        "DISPUTE_LOST"
    );
    // One dispute delivered 20 times at once holds once.
    let other = app.user("Twenty").await;
    outcome(&app, &completed("evt_c2", "cs_twenty", &other)).await;
    assert_eq!(
        redeliver(&app, &dispute("evt_dd", "cs_twenty", None), 20).await,
        1
    );
    assert_eq!(
        ledger(&app, &other).await,
        [("PURCHASE".into(), 2500), ("DISPUTE_HOLD".into(), -2500)]
    );
    assert_eq!(invariant_violations(&mut app.db().await).await, 0);
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

#[tokio::test]
async fn a_refund_that_fails_gives_its_credits_back_in_any_order() {
    let (app, _) = billing_app().await;
    // Only refund.* events: the pending refund takes the pack, its failure gives it back, and a
    // late `created` does not take it again.
    let only = app.user("OnlyRefundEvents").await;
    outcome(&app, &completed("evt_c1", "cs_only", &only)).await;
    let created = refund_event(
        "evt_re1",
        "refund.created",
        "re_1",
        "cs_only",
        1000,
        "pending",
    );
    assert_eq!(outcome(&app, &created).await, "applied");
    assert_eq!(
        purchase(&app, &only).await["purchases"]["nodes"][0]["status"],
        "REFUNDED"
    );
    let failed = refund_event(
        "evt_re2",
        "refund.failed",
        "re_1",
        "cs_only",
        1000,
        "failed",
    );
    assert_eq!(redeliver(&app, &failed, 20).await, 1);
    let late = refund_event(
        "evt_re3",
        "refund.updated",
        "re_1",
        "cs_only",
        1000,
        "pending",
    );
    assert_eq!(outcome(&app, &late).await, "applied");
    assert_eq!(
        purchase(&app, &only).await["purchases"]["nodes"][0],
        json!({ "status": "COMPLETED", "amount": "10.00", "refundedAmount": "0.00", "credits": "25.00", "creditsReversed": "0.00" })
    );
    assert_eq!(
        ledger(&app, &only).await,
        [
            ("PURCHASE".into(), 2500),
            ("PURCHASE_REFUND".into(), -2500),
            ("PURCHASE_REFUND".into(), 2500)
        ]
    );

    // charge.refunded (cumulative 4.00) and the refund's failure, the failure first: nothing is
    // taken; then a second refund of 2.00 succeeds and only its share is taken.
    let both = app.user("BothKinds").await;
    outcome(&app, &completed("evt_c2", "cs_both", &both)).await;
    let failed = refund_event("evt_b1", "refund.failed", "re_b1", "cs_both", 400, "failed");
    assert_eq!(outcome(&app, &failed).await, "applied");
    assert_eq!(
        outcome(&app, &refunded("evt_b2", "cs_both", 400)).await,
        "applied"
    );
    assert_eq!(purchase(&app, &both).await["credits"]["balance"], "25.00");
    let second = refund_event(
        "evt_b3",
        "refund.updated",
        "re_b2",
        "cs_both",
        200,
        "succeeded",
    );
    assert_eq!(outcome(&app, &second).await, "applied");
    // Stripe's cumulative figure counts the failed refund too: 6.00, less 4.00 failed.
    assert_eq!(
        outcome(&app, &refunded("evt_b4", "cs_both", 600)).await,
        "applied"
    );
    let seen = purchase(&app, &both).await;
    assert_eq!(seen["credits"]["balance"], "20.00", "{seen}");
    assert_eq!(
        seen["purchases"]["nodes"][0]["status"],
        "PARTIALLY_REFUNDED"
    );
    assert_eq!(seen["purchases"]["nodes"][0]["refundedAmount"], "2.00");
    assert_eq!(invariant_violations(&mut app.db().await).await, 0);
}

#[tokio::test]
async fn a_charge_listing_its_refunds_records_each_of_them() {
    let (app, _) = billing_app().await;
    let user = app.user("OlderApiVersion").await;
    outcome(&app, &completed("evt_c", "cs_list", &user)).await;
    let mut charge = refunded("evt_r", "cs_list", 500);
    charge["data"]["object"]["refunds"] = json!({ "object": "list", "data": [
        { "id": "re_l1", "object": "refund", "amount": 500, "status": "succeeded", "payment_intent": "pi_cs_list" },
    ] });
    assert_eq!(outcome(&app, &charge).await, "applied");
    assert_eq!(purchase(&app, &user).await["credits"]["balance"], "12.50");
    // The bank sends the money back: the refund fails and the credits return.
    let failed = refund_event(
        "evt_f",
        "charge.refund.updated",
        "re_l1",
        "cs_list",
        500,
        "failed",
    );
    assert_eq!(outcome(&app, &failed).await, "applied");
    assert_eq!(purchase(&app, &user).await["credits"]["balance"], "25.00");
    let malformed = refund_event(
        "evt_m",
        "refund.updated",
        "re_l2",
        "cs_list",
        500,
        "unheard_of",
    );
    assert_eq!(outcome(&app, &malformed).await, "malformed");
    assert_eq!(invariant_violations(&mut app.db().await).await, 0);
}

#[tokio::test]
async fn subscription_payments_and_their_refunds_are_on_the_history_and_change_no_access() {
    let (app, _) = billing_app().await;
    let user = app.user("Subscriber").await;
    let other = app.user("Other").await;
    let snapshot = subscription("sub_h", "cus_h", &user, "price_pro", "active", false);
    let created = event(
        "evt_s",
        "customer.subscription.created",
        1_790_000_000,
        snapshot,
    );
    assert_eq!(outcome(&app, &created).await, "applied");
    let invoice = json!({ "id": "in_h1", "object": "invoice", "subscription": "sub_h", "customer": "cus_h",
        "amount_due": 2900, "amount_paid": 2900, "currency": "usd",
        "lines": { "data": [{ "period": { "start": 1_790_000_000, "end": 1_792_592_000 } }] } });
    let failed = event(
        "evt_f",
        "invoice.payment_failed",
        1_790_000_100,
        invoice.clone(),
    );
    assert_eq!(outcome(&app, &failed).await, "applied");
    let paid = event("evt_p", "invoice.paid", 1_790_000_200, invoice.clone());
    assert_eq!(outcome(&app, &paid).await, "applied");
    // The same invoice reported again under another event id: still one entry.
    let again = event("evt_p2", "invoice.paid", 1_790_000_200, invoice);
    outcome(&app, &again).await;
    let charge = |id: &str, refunded: i64, at: i64| {
        event(
            id,
            "charge.refunded",
            at,
            json!({
            "id": "ch_h1", "object": "charge", "invoice": "in_h1", "customer": "cus_h",
            "payment_intent": "pi_h1", "amount": 2900, "amount_refunded": refunded, "currency": "usd" }),
        )
    };
    assert_eq!(
        outcome(&app, &charge("evt_r1", 1000, 1_790_000_300)).await,
        "subscription_payment"
    );
    assert_eq!(
        outcome(&app, &charge("evt_r2", 2900, 1_790_000_400)).await,
        "subscription_payment"
    );
    // An older partial refund delivered late does not shrink the cumulative amount.
    assert_eq!(
        outcome(&app, &charge("evt_r0", 500, 1_790_000_250)).await,
        "subscription_payment"
    );

    let query = "{ viewer { credits { balance } subscription { plan status history { kind amount currency occurredAt } } } }";
    let seen = app.query_as(&user, query, json!({})).await;
    let at = |t: i64| chrono::DateTime::from_timestamp(t, 0).unwrap().to_rfc3339();
    assert_eq!(
        seen["data"]["viewer"],
        json!({ "credits": { "balance": "0.00" }, "subscription": { "plan": "PRO", "status": "ACTIVE", "history": [
            { "kind": "PAYMENT_REFUNDED", "amount": "29.00", "currency": "usd", "occurredAt": at(1_790_000_400) },
            { "kind": "INVOICE_PAID", "amount": "29.00", "currency": "usd", "occurredAt": at(1_790_000_200) },
            { "kind": "PAYMENT_FAILED", "amount": "29.00", "currency": "usd", "occurredAt": at(1_790_000_100) },
        ] } }),
        "access follows the subscription's events; the refund is history"
    );
    let theirs = app.query_as(&other, query, json!({})).await;
    assert_eq!(
        theirs["data"]["viewer"]["subscription"]["history"],
        json!([])
    );
    let bad = app
        .query_as(
            &user,
            "{ viewer { subscription { history(first: 0) { kind } } } }",
            json!({}),
        )
        .await;
    assert_eq!(first_code(&bad), "BAD_USER_INPUT", "{bad}");
}
