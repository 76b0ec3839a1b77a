//! Buying credit packs: checkout, Stripe's errors, delayed payments.

use super::*;

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
