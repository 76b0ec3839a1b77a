//! Money after an account's deletion goes back. The finding: a Checkout Session opened before
//! `deleteAccount` stayed payable for a day, and its completion was recorded as
//! `unknown_customer` and nothing else — a pack charged for nobody's credits, a subscription
//! billing monthly, a new Stripe customer holding the erased email. Against the Stripe fake.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};

use crate::account::{delete, within};
use crate::metrics::{metrics_listener, scrape, value};
use crate::stripe::{billing_app, deliver, event};
use crate::stripe_fake::FakeStripe;
use crate::support::{TestApp, TestUser};

/// Opens a credit-pack checkout as `user`; its session id.
async fn buy(app: &TestApp, user: &TestUser) -> String {
    let body = app
        .query_as(
            user,
            "mutation { purchaseCredits(pack: \"SMALL\") { id } }",
            json!({}),
        )
        .await;
    body["data"]["purchaseCredits"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned()
}

/// Opens a subscription checkout as `user`; its session id.
async fn subscribe(app: &TestApp, user: &TestUser) -> String {
    let body = app
        .query_as(
            user,
            "mutation { subscribe(plan: PRO) { checkout { id } } }",
            json!({}),
        )
        .await;
    body["data"]["subscribe"]["checkout"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned()
}

/// Stripe's `checkout.session.completed` of a paid pack checkout (a customer made for it).
fn pack_paid(session: &str, user_id: &str) -> Value {
    event(
        &format!("evt_done_{session}"),
        "checkout.session.completed",
        1_790_000_100,
        json!({
            "id": session, "object": "checkout.session", "mode": "payment",
            "client_reference_id": user_id, "customer": format!("cus_for_{session}"),
            "payment_status": "paid", "payment_intent": format!("pi_{session}"),
            "amount_total": 1000, "currency": "usd",
            "metadata": { "pack": "SMALL", "user_id": user_id },
        }),
    )
}

async fn erase(app: &TestApp, user: &TestUser) {
    let email = format!("{}@example.com", user_name(app, user).await.to_lowercase());
    let done = delete(app, user, &email).await;
    assert!(done.get("errors").is_none(), "{done}");
}

async fn user_name(app: &TestApp, user: &TestUser) -> String {
    use bff::db::better_auth::users;
    users::table
        .find(&user.id)
        .select(users::name)
        .get_result(&mut app.db().await)
        .await
        .unwrap()
}

#[derive(QueryableByName, Debug, PartialEq)]
struct Purchase {
    #[diesel(sql_type = diesel::sql_types::Text)]
    status: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    grants: i64,
}

/// The purchase of `session` and the credits granted for it (whoever holds them now).
async fn purchase(app: &TestApp, session: &str) -> Purchase {
    diesel::sql_query(
        "SELECT p.status, (SELECT count(*) FROM credit_ledger l WHERE l.purchase_id = p.id \
                             AND l.kind = 'PURCHASE') AS grants \
         FROM purchases p WHERE p.stripe_checkout_session_id = $1",
    )
    .bind::<diesel::sql_types::Text, _>(session)
    .get_result(&mut app.db().await)
    .await
    .unwrap()
}

async fn cleanups_left(app: &TestApp) -> i64 {
    #[derive(QueryableByName)]
    struct Left {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        left: i64,
    }
    let left: Left = diesel::sql_query(
        "SELECT (SELECT count(*) FROM account_cleanups) + (SELECT count(*) FROM checkout_cleanups) AS left",
    )
        .get_result(&mut app.db().await)
        .await
        .unwrap();
    left.left
}

#[tokio::test]
async fn deleting_an_account_expires_its_open_checkouts() {
    let (app, fake) = billing_app().await;
    let user = app.user("Leaver").await;
    let pack = buy(&app, &user).await;
    let plan = subscribe(&app, &user).await;
    let other = app.user("Other").await;
    let theirs = buy(&app, &other).await;
    erase(&app, &user).await;
    within(20, "the expiry of the open checkouts", async || {
        fake.checkout(&pack).as_deref() == Some("expired")
            && fake.checkout(&plan).as_deref() == Some("expired")
            && cleanups_left(&app).await == 0
    })
    .await;
    assert_eq!(
        fake.checkout(&theirs).as_deref(),
        Some("open"),
        "another person's checkout is untouched"
    );
}

#[tokio::test]
async fn a_pack_paid_after_the_deletion_is_refunded_once_and_grants_nothing() {
    let (app, fake) = billing_app().await;
    let metrics = metrics_listener(&app).await;
    let user = app.user("Payer").await;
    let session = buy(&app, &user).await;
    // The customer pays on Stripe's page; then the account is deleted (the expiry comes too
    // late: Stripe refuses to expire a paid session); then the webhook arrives.
    fake.pay_checkout(&session);
    erase(&app, &user).await;
    let completed = pack_paid(&session, &user.id);
    let (status, answer) = deliver(&app, &completed).await;
    assert_eq!(status, 200);
    assert_eq!(answer["outcome"], "refunded_deleted_account", "{answer}");
    within(20, "the refund and the customer's deletion", async || {
        cleanups_left(&app).await == 0
    })
    .await;
    let payment = format!("pi_{session}");
    assert_eq!(fake.refunds(), std::slice::from_ref(&payment));
    assert!(
        fake.customers_deleted()
            .contains(&format!("cus_for_{session}")),
        "the customer made for the checkout holds the erased email: {:?}",
        fake.customers_deleted()
    );
    let refund = fake
        .requests()
        .into_iter()
        .find(|r| r.route == "POST /v1/refunds")
        .unwrap();
    assert_eq!(refund.form["payment_intent"], payment);
    assert_eq!(
        refund.idempotency_key.as_deref(),
        Some(format!("bff-return-{payment}").as_str())
    );
    assert_eq!(
        purchase(&app, &session).await,
        Purchase {
            status: "FAILED".into(),
            grants: 0
        },
        "no credits for anyone"
    );
    // Again, and as another event of the same payment: no second refund.
    assert_eq!(deliver(&app, &completed).await.1["duplicate"], true);
    let mut again = completed.clone();
    again["id"] = json!("evt_async_again");
    again["type"] = json!("checkout.session.async_payment_succeeded");
    assert_eq!(
        deliver(&app, &again).await.1["outcome"],
        "refunded_deleted_account"
    );
    within(20, "the queue", async || cleanups_left(&app).await == 0).await;
    assert_eq!(fake.refunds().len(), 1, "refunded exactly once");
    let text = scrape(&app, metrics).await;
    assert!(
        value(&text, "bff_stripe_checkouts_returned_total") >= 2.0,
        "{text}"
    );
    assert!(
        value(
            &text,
            "bff_account_cleanups_total{action=\"REFUND_PAYMENT\",outcome=\"done\"}"
        ) >= 1.0,
        "{text}"
    );
}

#[tokio::test]
async fn a_subscription_paid_after_the_deletion_is_canceled_and_its_invoice_refunded() {
    let (app, fake) = billing_app().await;
    let user = app.user("Subscriber").await;
    let session = subscribe(&app, &user).await;
    fake.pay_checkout(&session);
    fake.put_subscription(
        json!({ "id": "sub_late", "object": "subscription", "status": "active",
        "customer": "cus_late", "items": { "data": [] } }),
    );
    fake.put_invoice(json!({ "id": "in_late", "object": "invoice", "amount_paid": 2900,
        "payments": { "data": [{ "payment": { "type": "payment_intent", "payment_intent": "pi_in_late" } }] } }));
    erase(&app, &user).await;
    let completed = event(
        "evt_sub_late",
        "checkout.session.completed",
        1_790_000_200,
        json!({
            "id": session, "object": "checkout.session", "mode": "subscription",
            "client_reference_id": user.id, "customer": "cus_late",
            "subscription": "sub_late", "invoice": "in_late",
            "payment_status": "paid", "amount_total": 2900, "currency": "usd",
            "metadata": { "user_id": user.id },
        }),
    );
    assert_eq!(
        deliver(&app, &completed).await.1["outcome"],
        "refunded_deleted_account"
    );
    // The subscription's own event finds nobody, and changes nothing.
    let created = event(
        "evt_sub_late_created",
        "customer.subscription.created",
        1_790_000_201,
        crate::stripe::subscription("sub_late", "cus_late", &user, "price_pro", "active", false),
    );
    assert_eq!(
        deliver(&app, &created).await.1["outcome"],
        "unknown_customer"
    );
    within(
        20,
        "the cancellation, the refund, the customer",
        async || cleanups_left(&app).await == 0,
    )
    .await;
    assert_eq!(fake.subscription("sub_late").unwrap()["status"], "canceled");
    assert_eq!(fake.refunds(), ["pi_in_late"]);
    assert!(fake.customers_deleted().contains(&"cus_late".to_owned()));
}

/// Whether the person's purchase of `session` ended in credits (the payment completed while
/// they existed) or in a refund (it completed after): exactly one of them.
async fn settled_once(app: &TestApp, fake: &FakeStripe, session: &str) -> &'static str {
    let refunded = fake
        .refunds()
        .iter()
        .filter(|p| **p == format!("pi_{session}"))
        .count();
    let bought = purchase(app, session).await;
    match (refunded, bought.status.as_str(), bought.grants) {
        (0, "COMPLETED", 1) => "credited",
        (1, "FAILED", 0) => "refunded",
        other => panic!("{session}: {other:?}"),
    }
}

#[tokio::test]
async fn a_payment_completing_while_the_deletion_runs_is_credited_or_refunded_exactly_once() {
    let (app, fake) = billing_app().await;
    let mut people = Vec::new();
    for i in 0..20 {
        let user = app.user(&format!("Racer{i}")).await;
        let session = buy(&app, &user).await;
        fake.pay_checkout(&session);
        people.push((user, session));
    }
    // Each person's deletion and their payment's webhook at once, the webhook a little later
    // for each next person: some land before the deletion, some during, some after.
    let races = people.iter().enumerate().map(|(i, (user, session))| {
        let app = &app;
        async move {
            let completed = pack_paid(session, &user.id);
            let late = std::time::Duration::from_micros(250 * i as u64);
            let (deleted, (status, answer)) = tokio::join!(erase(app, user), async {
                tokio::time::sleep(late).await;
                deliver(app, &completed).await
            });
            let () = deleted;
            // Both take the person's row first: one waits for the other, neither deadlocks.
            assert_eq!(status, 200, "{answer}");
            answer["outcome"].as_str().unwrap().to_owned()
        }
    });
    let mut outcomes = Vec::new();
    for race in races {
        outcomes.push(race.await);
    }
    within(30, "the queue", async || cleanups_left(&app).await == 0).await;
    let mut seen = std::collections::HashMap::new();
    for ((_, session), outcome) in people.iter().zip(&outcomes) {
        let settled = settled_once(&app, &fake, session).await;
        let expected = match outcome.as_str() {
            "applied" => "credited",
            "refunded_deleted_account" => "refunded",
            other => panic!("{session}: {other}"),
        };
        assert_eq!(settled, expected, "{session}");
        *seen.entry(settled).or_insert(0) += 1;
    }
    println!("payments racing their person's deletion: {seen:?}");
    assert_eq!(
        crate::photo_jobs::invariant_violations(&mut app.db().await).await,
        0
    );
}

#[tokio::test]
async fn a_paid_checkout_whose_webhook_never_came_is_refunded_by_its_expiry() {
    let (app, fake) = billing_app().await;
    let user = app.user("Unheard").await;
    let session = buy(&app, &user).await;
    fake.pay_checkout(&session);
    // The deletion queues the expiry; Stripe refuses it (paid), and no webhook comes (lost, or
    // taken by an older replica during a rolling deploy): the expiry reads the session and
    // returns the money itself.
    erase(&app, &user).await;
    within(20, "the refund", async || {
        fake.refunds() == [format!("pi_{session}")] && cleanups_left(&app).await == 0
    })
    .await;
    assert!(
        fake.customers_deleted()
            .contains(&format!("cus_for_{session}"))
    );
    assert_eq!(
        purchase(&app, &session).await,
        Purchase {
            status: "FAILED".into(),
            grants: 0
        }
    );
    // The webhook, late: nothing more.
    let (status, answer) = deliver(&app, &pack_paid(&session, &user.id)).await;
    assert_eq!(status, 200);
    assert_eq!(answer["outcome"], "refunded_deleted_account", "{answer}");
    within(20, "the queue", async || cleanups_left(&app).await == 0).await;
    assert_eq!(fake.refunds().len(), 1, "refunded once");
}
