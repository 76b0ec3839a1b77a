//! Refunds as objects: failed refunds, charges listing their refunds, subscription payments.

use super::*;

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
