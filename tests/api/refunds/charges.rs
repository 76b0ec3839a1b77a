//! `charge.refunded`: full and partial refunds, spent credits, redeliveries, any order,
//! races with photo jobs.

use super::*;

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
