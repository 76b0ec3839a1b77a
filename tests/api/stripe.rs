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

#[tokio::test]
async fn the_signature_test_vector_is_refused_outside_the_tolerance_and_bad_signatures_change_nothing()
 {
    let (app, _) = billing_app().await;
    let payload = r#"{"id":"evt_test_1","object":"event","type":"checkout.session.completed"}"#;
    let vector = "t=1700000000,v1=bcc9f26f6382458a21e36204c7fa836d921584ff5660961d544c485b0c338e4b";
    // The vector is right, but its clock is years away from ours.
    assert_eq!(deliver_raw(&app, payload, Some(vector.into())).await.0, 400);
    let t = chrono::Utc::now().timestamp();
    let good = signature::sign(payload.as_bytes(), t, WEBHOOK_SECRET);
    let changed = payload.replace("evt_test_1", "evt_test_X");
    let cases = [
        (
            "changed body",
            changed.as_str(),
            Some(format!("t={t},v1={good}")),
        ),
        ("missing header", payload, None),
        (
            "wrong secret",
            payload,
            Some(format!(
                "t={t},v1={}",
                signature::sign(payload.as_bytes(), t, "whsec_other")
            )),
        ),
        ("no v1", payload, Some(format!("t={t}"))),
        (
            "stale",
            payload,
            Some(format!(
                "t={},v1={}",
                t - 301,
                signature::sign(payload.as_bytes(), t - 301, WEBHOOK_SECRET)
            )),
        ),
    ];
    for (what, body, header) in cases {
        let (status, _) = deliver_raw(&app, body, header).await;
        assert_eq!(status, 400, "{what}");
    }
    assert_eq!(
        events_recorded(&app).await,
        0,
        "a refused webhook recorded something"
    );
    let (status, body) = deliver_raw(&app, payload, Some(format!("t={t},v1=0000,v1={good}"))).await;
    assert_eq!(status, 200, "any matching v1 passes: {body}");
    assert_eq!(events_recorded(&app).await, 1);
}

#[tokio::test]
async fn purchase_credits_through_fake_stripe_and_a_signed_webhook() {
    let (app, fake) = billing_app().await;
    let user = app.user("Buyer").await;
    let packs = app
        .query_as(&user, "{ creditPacks { code credits } }", json!({}))
        .await;
    assert_eq!(
        packs["data"]["creditPacks"][0],
        json!({ "code": "SMALL", "credits": "10.00" }),
        "{packs}"
    );

    let body = app
        .query_as(
            &user,
            "mutation { purchaseCredits(pack: \"SMALL\", idempotencyKey: \"buy-1\") { id url } }",
            json!({}),
        )
        .await;
    let session = body["data"]["purchaseCredits"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    assert!(
        body["data"]["purchaseCredits"]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://checkout.stripe.test/")
    );
    let request = &fake.requests()[0];
    assert_eq!(request.route, "POST /v1/checkout/sessions");
    assert_eq!(request.form["mode"], "payment");
    assert_eq!(request.form["client_reference_id"], user.id);
    assert_eq!(request.form["line_items[0][price]"], "price_small");
    assert_eq!(request.form["metadata[pack]"], "SMALL");
    assert_eq!(
        request.authorization.as_deref(),
        Some("Bearer sk_test_fake")
    );
    assert!(
        request
            .idempotency_key
            .as_deref()
            .unwrap()
            .starts_with("bff-purchase-")
    );
    // A retry with the same key is the same checkout.
    let again = app
        .query_as(
            &user,
            "mutation { purchaseCredits(pack: \"SMALL\", idempotencyKey: \"buy-1\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(again["data"]["purchaseCredits"]["id"], session.as_str());

    let pending = app.query_as(&user, BILLING, json!({})).await;
    assert_eq!(
        pending["data"]["viewer"]["purchases"]["edges"][0]["node"]["status"], "PENDING",
        "{pending}"
    );
    assert_eq!(pending["data"]["viewer"]["credits"]["balance"], "0.00");

    let completed = event(
        "evt_pay_1",
        "checkout.session.completed",
        1_790_000_100,
        paid_checkout(&session, &user, "SMALL"),
    );
    let (status, answer) = deliver(&app, &completed).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (200, Some("applied")),
        "{answer}"
    );
    let paid = app.query_as(&user, BILLING, json!({})).await;
    let viewer = &paid["data"]["viewer"];
    assert_eq!(viewer["credits"]["balance"], "10.00", "{paid}");
    assert_eq!(
        viewer["credits"]["transactions"]["edges"][0]["node"],
        json!({ "kind": "PURCHASE", "amount": "10.00" })
    );
    let purchase = &viewer["purchases"]["edges"][0]["node"];
    assert_eq!(
        (
            purchase["status"].as_str(),
            purchase["amount"].as_str(),
            purchase["credits"].as_str()
        ),
        (Some("COMPLETED"), Some("10.00"), Some("10.00"))
    );
    assert_eq!(viewer["purchases"]["totalCount"], 1);
    let node = app
        .query_as(
            &user,
            "query($id: ID!) { node(id: $id) { ... on Purchase { pack } } }",
            json!({ "id": purchase["id"] }),
        )
        .await;
    assert_eq!(node["data"]["node"]["pack"], "SMALL");

    // Redelivery, and another event carrying the same session: no second grant.
    let (status, answer) = deliver(&app, &completed).await;
    assert_eq!((status, answer["duplicate"].as_bool()), (200, Some(true)));
    let async_paid = event(
        "evt_pay_2",
        "checkout.session.async_payment_succeeded",
        1_790_000_200,
        paid_checkout(&session, &user, "SMALL"),
    );
    let (status, answer) = deliver(&app, &async_paid).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (200, Some("already_granted"))
    );
    assert_eq!(state(&app, &user).await.3, 1000);
    assert_eq!(invariant_violations(&mut app.db().await).await, 0);
}

#[tokio::test]
async fn concurrent_duplicate_deliveries_all_succeed_and_grant_once() {
    let (app, _) = billing_app().await;
    let user = app.user("Concurrent").await;
    let completed = event(
        "evt_dup",
        "checkout.session.completed",
        1_790_000_000,
        paid_checkout("cs_dup", &user, "MEDIUM"),
    );
    assert_eq!(redeliver(&app, &completed, 12).await, 1);
    assert_eq!(state(&app, &user).await.3, 2500);
    let grants: i64 = credit_ledger::table
        .filter(credit_ledger::kind.eq("PURCHASE"))
        .count()
        .get_result(&mut app.db().await)
        .await
        .unwrap();
    assert_eq!(grants, 1);
    assert_eq!(events_recorded(&app).await, 1);
    assert_eq!(invariant_violations(&mut app.db().await).await, 0);
}

#[tokio::test]
async fn unknown_types_and_unknown_customers_are_recorded_and_acknowledged() {
    let (app, _) = billing_app().await;
    let (status, answer) = deliver(
        &app,
        &event(
            "evt_unknown_type",
            "customer.tax_id.created",
            1_790_000_000,
            json!({}),
        ),
    )
    .await;
    assert_eq!((status, answer["outcome"].as_str()), (200, Some("ignored")));
    let stranger = TestUser {
        id: "NoSuchUser000000000000000000000X".into(),
        token: String::new(),
    };
    let (status, answer) = deliver(
        &app,
        &event(
            "evt_stranger",
            "checkout.session.completed",
            1_790_000_000,
            paid_checkout("cs_x", &stranger, "SMALL"),
        ),
    )
    .await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (200, Some("unknown_customer"))
    );
    let orphan = subscription(
        "sub_orphan",
        "cus_orphan",
        &stranger,
        "price_pro",
        "active",
        false,
    );
    let (status, answer) = deliver(
        &app,
        &event(
            "evt_orphan",
            "customer.subscription.updated",
            1_790_000_000,
            orphan,
        ),
    )
    .await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (200, Some("unknown_customer"))
    );
    assert_eq!(events_recorded(&app).await, 3);
    let purchases: i64 = purchases::table
        .count()
        .get_result(&mut app.db().await)
        .await
        .unwrap();
    assert_eq!(purchases, 0);
}

async fn current_plan(app: &TestApp, user: &TestUser) -> Value {
    let body = app
        .query_as(
            user,
            "{ viewer { subscription { plan status cancelAtPeriodEnd entitlements { plan } } } }",
            json!({}),
        )
        .await;
    body["data"]["viewer"]["subscription"].clone()
}

#[tokio::test]
async fn an_older_subscription_snapshot_never_overwrites_a_newer_one() {
    let (app, _) = billing_app().await;
    let user = app.user("Subscriber").await;

    let newer = subscription("sub_1", "cus_1", &user, "price_pro", "active", false);
    let older = subscription("sub_1", "cus_1", &user, "price_basic", "incomplete", false);
    assert_eq!(
        deliver(
            &app,
            &event(
                "evt_new",
                "customer.subscription.updated",
                1_790_000_500,
                newer
            )
        )
        .await
        .1["outcome"],
        "applied"
    );
    assert_eq!(
        deliver(
            &app,
            &event(
                "evt_old",
                "customer.subscription.created",
                1_790_000_100,
                older
            )
        )
        .await
        .1["outcome"],
        "stale"
    );
    assert_eq!(
        current_plan(&app, &user).await,
        json!({ "plan": "PRO", "status": "ACTIVE", "cancelAtPeriodEnd": false, "entitlements": { "plan": "PRO" } })
    );

    let canceling = subscription("sub_1", "cus_1", &user, "price_pro", "active", true);
    deliver(
        &app,
        &event(
            "evt_cancel",
            "customer.subscription.updated",
            1_790_000_600,
            canceling,
        ),
    )
    .await;
    assert_eq!(current_plan(&app, &user).await["cancelAtPeriodEnd"], true);

    // The invoice failing makes it PAST_DUE; paying renews the period and makes it ACTIVE.
    let invoice = |period_end: i64| {
        json!({ "object": "invoice", "subscription": "sub_1", "customer": "cus_1",
        "lines": { "data": [{ "period": { "start": period_end - 2_592_000, "end": period_end } }] } })
    };
    deliver(
        &app,
        &event(
            "evt_inv_fail",
            "invoice.payment_failed",
            1_790_000_700,
            invoice(1_792_592_000),
        ),
    )
    .await;
    assert_eq!(current_plan(&app, &user).await["status"], "PAST_DUE");
    let (_, answer) = deliver(
        &app,
        &event(
            "evt_inv_paid",
            "invoice.paid",
            1_790_000_800,
            invoice(1_795_184_000),
        ),
    )
    .await;
    assert_eq!(answer["outcome"], "applied");
    let renewed = app
        .query_as(
            &user,
            "{ viewer { subscription { status currentPeriodEnd } } }",
            json!({}),
        )
        .await;
    let end = chrono::DateTime::from_timestamp(1_795_184_000, 0)
        .unwrap()
        .to_rfc3339();
    assert_eq!(
        renewed["data"]["viewer"]["subscription"],
        json!({ "status": "ACTIVE", "currentPeriodEnd": end })
    );

    let deleted = json!({ "id": "sub_1", "customer": "cus_1", "status": "canceled", "canceled_at": 1_790_000_900, "cancel_at_period_end": false,
        "items": { "data": [{ "price": { "id": "price_pro" } }] } });
    deliver(
        &app,
        &event(
            "evt_deleted",
            "customer.subscription.deleted",
            1_790_000_900,
            deleted,
        ),
    )
    .await;
    assert_eq!(
        current_plan(&app, &user).await,
        json!({ "plan": "PRO", "status": "CANCELED", "cancelAtPeriodEnd": false, "entitlements": { "plan": "FREE" } })
    );
}

#[tokio::test]
async fn subscribe_change_plan_cancel_resume_and_the_portal_call_stripe() {
    let (app, fake) = billing_app().await;
    let user = app.user("Planner").await;
    let portal = "mutation { billingPortalUrl }";
    assert_eq!(
        first_code(&app.query_as(&user, portal, json!({})).await),
        "CONFLICT"
    );

    let body = app
        .query_as(
            &user,
            "mutation { subscribe(plan: BASIC) { checkout { url } subscription { plan } } }",
            json!({}),
        )
        .await;
    assert!(
        body["data"]["subscribe"]["checkout"]["url"].is_string(),
        "{body}"
    );
    let request = fake.requests().pop().unwrap();
    assert_eq!(request.form["mode"], "subscription");
    assert_eq!(request.form["line_items[0][price]"], "price_basic");
    assert_eq!(
        request.form["subscription_data[metadata][user_id]"],
        user.id
    );
    assert_eq!(request.form["customer_email"], "planner@example.com");

    // Stripe confirms the subscription; then the viewer upgrades in place.
    let basic = subscription("sub_9", "cus_9", &user, "price_basic", "active", false);
    fake.put_subscription(basic.clone());
    deliver(
        &app,
        &event(
            "evt_sub",
            "customer.subscription.created",
            chrono::Utc::now().timestamp() - 60,
            basic,
        ),
    )
    .await;
    let same = app
        .query_as(
            &user,
            "mutation { subscribe(plan: BASIC) { subscription { plan } } }",
            json!({}),
        )
        .await;
    assert_eq!(first_code(&same), "CONFLICT");
    let body = app
        .query_as(
            &user,
            "mutation { subscribe(plan: PRO) { checkout { url } subscription { plan status } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["subscribe"],
        json!({ "checkout": null, "subscription": { "plan": "PRO", "status": "ACTIVE" } }),
        "{body}"
    );
    let update = fake.requests().pop().unwrap();
    assert_eq!(update.route, "POST /v1/subscriptions/sub_9");
    assert_eq!(
        (
            update.form["items[0][id]"].as_str(),
            update.form["items[0][price]"].as_str()
        ),
        ("si_1", "price_pro")
    );

    let body = app
        .query_as(
            &user,
            "mutation { cancelSubscription { cancelAtPeriodEnd plan } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["cancelSubscription"],
        json!({ "cancelAtPeriodEnd": true, "plan": "PRO" }),
        "{body}"
    );
    assert_eq!(
        fake.requests().pop().unwrap().form["cancel_at_period_end"],
        "true"
    );
    let body = app
        .query_as(
            &user,
            "mutation { resumeSubscription { cancelAtPeriodEnd } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["resumeSubscription"]["cancelAtPeriodEnd"],
        false
    );

    let body = app.query_as(&user, portal, json!({})).await;
    assert_eq!(
        body["data"]["billingPortalUrl"], "https://billing.stripe.test/p/session/cus_9",
        "{body}"
    );

    let free = app
        .query_as(
            &user,
            "mutation { subscribe(plan: FREE) { subscription { plan } } }",
            json!({}),
        )
        .await;
    assert_eq!(first_code(&free), "BAD_USER_INPUT");
}

#[tokio::test]
async fn stripe_errors_become_clear_graphql_errors_and_record_nothing() {
    let (app, fake) = billing_app().await;
    let user = app.user("Unlucky").await;
    let buy = "mutation { purchaseCredits(pack: \"LARGE\") { id } }";
    fake.fail_next(402, "card_error", "Your card was declined.");
    let body = app.query_as(&user, buy, json!({})).await;
    assert_eq!(first_code(&body), "BAD_USER_INPUT");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Your card was declined.")
    );
    fake.fail_next(500, "api_error", "boom");
    let body = app.query_as(&user, buy, json!({})).await;
    assert_eq!(first_code(&body), "INTERNAL_SERVER_ERROR");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("payment provider"),
        "{body}"
    );
    assert!(body["errors"][0]["extensions"]["requestId"].is_string());
    fake.fail_next(429, "rate_limit_error", "slow down");
    assert_eq!(
        first_code(&app.query_as(&user, buy, json!({})).await),
        "RATE_LIMITED"
    );
    let body = app
        .query_as(
            &user,
            "mutation { purchaseCredits(pack: \"HUGE\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(first_code(&body), "BAD_USER_INPUT");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("SMALL")
    );
    let purchases: i64 = purchases::table
        .count()
        .get_result(&mut app.db().await)
        .await
        .unwrap();
    assert_eq!(purchases, 0);
    let (_, body) = app.post(buy, json!({}), &[]).await;
    assert_eq!(first_code(&body), "UNAUTHENTICATED");
}

#[tokio::test]
async fn webhooks_answer_5xx_when_the_database_is_down_or_unconfigured() {
    let (app, _) = billing_app().await;
    let down = TestApp::spawn_on(format!("{}_gone", app.database_url), |env| {
        env.insert("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET.into());
    })
    .await;
    let (status, _) = deliver(
        &down,
        &event("evt_later", "invoice.paid", 1_790_000_000, json!({})),
    )
    .await;
    assert!(status >= 500, "{status}");
    let unconfigured = TestApp::spawn().await;
    let (status, _) = deliver(
        &unconfigured,
        &event("evt_x", "invoice.paid", 1_790_000_000, json!({})),
    )
    .await;
    assert_eq!(status, 503);
}

#[tokio::test]
async fn delayed_payments_grant_only_when_they_succeed() {
    let (app, _) = billing_app().await;
    let user = app.user("Delayed").await;
    let mut unpaid = paid_checkout("cs_delayed", &user, "SMALL");
    unpaid["payment_status"] = json!("unpaid");
    let (_, answer) = deliver(
        &app,
        &event(
            "evt_d1",
            "checkout.session.completed",
            1_790_000_000,
            unpaid.clone(),
        ),
    )
    .await;
    assert_eq!(answer["outcome"], "awaiting_payment");
    let body = app.query_as(&user, BILLING, json!({})).await;
    assert_eq!(
        body["data"]["viewer"]["purchases"]["edges"][0]["node"]["status"],
        "PENDING"
    );
    assert_eq!(body["data"]["viewer"]["credits"]["balance"], "0.00");
    let (_, answer) = deliver(
        &app,
        &event(
            "evt_d2",
            "checkout.session.async_payment_succeeded",
            1_790_000_100,
            paid_checkout("cs_delayed", &user, "SMALL"),
        ),
    )
    .await;
    assert_eq!(answer["outcome"], "applied");
    assert_eq!(state(&app, &user).await.3, 1000);

    let mut failing = paid_checkout("cs_failing", &user, "LARGE");
    failing["payment_status"] = json!("unpaid");
    deliver(
        &app,
        &event(
            "evt_f1",
            "checkout.session.completed",
            1_790_000_200,
            failing.clone(),
        ),
    )
    .await;
    let (_, answer) = deliver(
        &app,
        &event(
            "evt_f2",
            "checkout.session.async_payment_failed",
            1_790_000_300,
            failing,
        ),
    )
    .await;
    assert_eq!(answer["outcome"], "applied");
    let body = app
        .query_as(
            &user,
            "{ viewer { purchases { edges { node { pack status } } } credits { balance } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["viewer"]["purchases"]["edges"][0]["node"],
        json!({ "pack": "LARGE", "status": "FAILED" })
    );
    assert_eq!(body["data"]["viewer"]["credits"]["balance"], "10.00");
    assert_eq!(invariant_violations(&mut app.db().await).await, 0);
}
