//! The billing kinds, written in the transaction of the signed Stripe event that causes them:
//! a refund (PURCHASE_REFUNDED), a dispute (CREDITS_HELD), a trial ending (TRIAL_ENDING), a
//! failed invoice (PAYMENT_FAILED) and a subscription ended (SUBSCRIPTION_CANCELED), each once
//! however often Stripe redelivers the event, each about its purchase or subscription.

use serde_json::{Value, json};

use crate::stripe::{billing_app, deliver, event, paid_checkout, redeliver, subscription};

const INBOX: &str = "{ viewer { notifications(first: 20) { nodes { kind title body \
    subject { __typename ... on Purchase { pack } ... on BillingSubscription { plan } } } } } }";

#[tokio::test]
async fn billing_events_from_stripe_reach_the_inbox_once_each() {
    let (app, _) = billing_app().await;
    let user = app.user("Payer").await;
    let applied = async |e: &Value| {
        let (status, answer) = deliver(&app, e).await;
        assert_eq!(
            (status, answer["outcome"].as_str()),
            (200, Some("applied")),
            "{e} {answer}"
        );
    };
    applied(&event(
        "evt_paid",
        "checkout.session.completed",
        1_790_000_000,
        paid_checkout("cs_n", &user, "MEDIUM"),
    ))
    .await;
    let charge = |kind: &str, id: &str, object: Value| event(id, kind, 1_790_000_100, object);
    let refund = charge(
        "charge.refunded",
        "evt_refund",
        json!({
        "id": "ch_cs_n", "object": "charge", "payment_intent": "pi_cs_n",
        "amount": 1000, "amount_refunded": 250, "refunded": false, "currency": "usd" }),
    );
    applied(&refund).await;
    // Stripe retries: the same event three times more changes nothing, notifies nobody again.
    assert_eq!(redeliver(&app, &refund, 3).await, 0);
    applied(&charge(
        "charge.dispute.created",
        "evt_dispute",
        json!({
        "id": "dp_cs_n", "object": "dispute", "charge": "ch_cs_n", "payment_intent": "pi_cs_n",
        "amount": 1000, "status": "needs_response" }),
    ))
    .await;

    // The customer the checkout made for this person.
    let customer = format!("cus_{}", &user.id[..8]);
    let mut trialing = subscription("sub_n", &customer, &user, "price_pro", "trialing", false);
    trialing["trial_end"] = json!(chrono::Utc::now().timestamp() + 3 * 86_400);
    applied(&event(
        "evt_sub",
        "customer.subscription.created",
        1_790_000_200,
        trialing.clone(),
    ))
    .await;
    applied(&event(
        "evt_trial",
        "customer.subscription.trial_will_end",
        1_790_000_300,
        trialing,
    ))
    .await;
    applied(&event(
        "evt_fail",
        "invoice.payment_failed",
        1_790_000_400,
        json!({
        "id": "in_n", "object": "invoice", "subscription": "sub_n", "amount_due": 1900, "currency": "usd", "customer": customer,
        "lines": { "data": [{ "period": { "start": 1_790_000_000, "end": 1_792_592_000 } }] } }),
    ))
    .await;
    applied(&event(
        "evt_gone",
        "customer.subscription.deleted",
        1_790_000_500,
        json!({
        "id": "sub_n", "customer": customer, "status": "canceled", "canceled_at": 1_790_000_500,
        "cancel_at_period_end": false, "items": { "data": [{ "price": { "id": "price_pro" } }] } }),
    ))
    .await;

    let inbox = app.query_as(&user, INBOX, json!({})).await;
    let nodes = inbox["data"]["viewer"]["notifications"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    let seen: Vec<(&str, &str)> = nodes
        .iter()
        .map(|n| {
            (
                n["kind"].as_str().unwrap(),
                n["subject"]["__typename"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("SUBSCRIPTION_CANCELED", "BillingSubscription"),
            ("PAYMENT_FAILED", "BillingSubscription"),
            ("TRIAL_ENDING", "BillingSubscription"),
            ("CREDITS_HELD", "Purchase"),
            ("PURCHASE_REFUNDED", "Purchase"),
        ],
        "{inbox}"
    );
    for n in &nodes {
        let (title, body) = (n["title"].as_str().unwrap(), n["body"].as_str().unwrap());
        assert!(
            !title.is_empty() && body.ends_with('.') && !body.contains("{"),
            "{n}"
        );
    }
    // Another person's inbox is empty.
    let other = app.user("Bystander").await;
    let theirs = app.query_as(&other, INBOX, json!({})).await;
    assert_eq!(
        theirs["data"]["viewer"]["notifications"]["nodes"],
        json!([]),
        "{theirs}"
    );
}
