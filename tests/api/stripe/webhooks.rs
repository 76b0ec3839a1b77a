//! Webhooks: signatures, duplicates, unknown events, and 5xx while the database is away.

use super::*;

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
