//! Subscriptions: snapshots in order, and the plan changes that call Stripe.

use super::*;

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
