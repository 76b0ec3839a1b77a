//! Disputes: the remaining credits held, then settled, whatever the events' order.

use super::*;

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
