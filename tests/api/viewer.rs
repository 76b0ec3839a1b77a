//! Every field of `viewer`, for a user with data and for one without.

use bff::db::schema::{subscriptions, usage_counters};
use chrono::{Duration, DurationRound, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::json;

use crate::support::{TestApp, first_code, ledger_change};

const DASHBOARD: &str = r#"{
  viewer {
    id name email emailVerified image
    subscription {
      plan status currentPeriodStart currentPeriodEnd cancelAtPeriodEnd canceledAt trialEndsAt
      entitlements { plan monthlyPhotoQuota pricePerPhoto maxPhotosPerJob }
    }
    credits {
      balance freePhotosUsed freePhotosRemaining
      transactions(first: 10) { totalCount edges { node { kind amount balanceAfter description } } }
    }
    usage { metric used limit remaining windowStart windowEnd }
    photoJobs(first: 5) { totalCount edges { node { id prompt photoCount cost status groupName } } }
  }
}"#;

#[tokio::test]
async fn a_new_user_is_on_free_active_with_an_empty_account() {
    let app = TestApp::spawn().await;
    let user = app.user("Newcomer").await;
    let body = app.query_as(&user, DASHBOARD, json!({})).await;
    let viewer = &body["data"]["viewer"];
    assert_eq!(viewer["id"], user.id.as_str(), "{body}");
    assert_eq!(viewer["name"], "Newcomer");
    assert_eq!(viewer["email"], "newcomer@example.com");
    assert_eq!(viewer["emailVerified"], true);
    assert_eq!(viewer["image"], serde_json::Value::Null);
    let sub = &viewer["subscription"];
    assert_eq!(sub["plan"], "FREE");
    assert_eq!(sub["status"], "ACTIVE");
    assert_eq!(sub["cancelAtPeriodEnd"], false);
    assert_eq!(sub["entitlements"]["monthlyPhotoQuota"], 20);
    assert_eq!(sub["entitlements"]["pricePerPhoto"], "0.50");
    assert_eq!(viewer["credits"]["balance"], "0.00");
    assert_eq!(viewer["credits"]["freePhotosRemaining"], 3);
    assert_eq!(viewer["credits"]["transactions"]["totalCount"], 0);
    let meter = &viewer["usage"][0];
    assert_eq!(meter["metric"], "PHOTOS");
    assert_eq!(
        (
            meter["used"].clone(),
            meter["limit"].clone(),
            meter["remaining"].clone()
        ),
        (json!(0), json!(20), json!(20))
    );
    // Without a paid period the window is the calendar month (UTC).
    let now = Utc::now();
    let month_start = format!("{}-01T00:00:00+00:00", now.format("%Y-%m"));
    assert_eq!(meter["windowStart"], month_start.as_str());
    assert_eq!(viewer["photoJobs"]["totalCount"], 0);
}

#[tokio::test]
async fn a_subscriber_sees_plan_credits_ledger_usage_and_jobs() {
    let app = TestApp::spawn().await;
    let user = app.user("Subscriber").await;
    let mut conn = app.db().await;
    let start = (Utc::now() - Duration::days(3))
        .duration_trunc(Duration::seconds(1))
        .unwrap();
    let end = start + Duration::days(30);
    diesel::insert_into(subscriptions::table)
        .values((
            subscriptions::user_id.eq(&user.id),
            subscriptions::plan.eq("PRO"),
            subscriptions::status.eq("TRIALING"),
            subscriptions::current_period_start.eq(start),
            subscriptions::current_period_end.eq(end),
            subscriptions::trial_end.eq(end),
            subscriptions::cancel_at_period_end.eq(true),
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    for (kind, amount, what) in [("PURCHASE", 2500, "Pack"), ("JOB_CHARGE", -60, "Job")] {
        ledger_change(&app, &user.id, kind, amount, what).await;
    }
    diesel::insert_into(usage_counters::table)
        .values((
            usage_counters::user_id.eq(&user.id),
            usage_counters::metric.eq("PHOTOS"),
            usage_counters::window_start.eq(start),
            usage_counters::window_end.eq(end),
            usage_counters::count.eq(1001),
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    let job = app
        .insert_job(&user.id, Utc::now(), "COMPLETED", Some("Wedding"))
        .await;

    let body = app.query_as(&user, DASHBOARD, json!({})).await;
    let viewer = &body["data"]["viewer"];
    let sub = &viewer["subscription"];
    assert_eq!(
        (sub["plan"].as_str(), sub["status"].as_str()),
        (Some("PRO"), Some("TRIALING")),
        "{body}"
    );
    assert_eq!(sub["cancelAtPeriodEnd"], true);
    assert_eq!(sub["currentPeriodStart"], start.to_rfc3339().as_str());
    assert_eq!(sub["trialEndsAt"], end.to_rfc3339().as_str());
    assert_eq!(sub["entitlements"]["plan"], "PRO");
    assert_eq!(sub["entitlements"]["monthlyPhotoQuota"], 1000);
    assert_eq!(sub["entitlements"]["pricePerPhoto"], "0.30");
    let credits = &viewer["credits"];
    assert_eq!(credits["balance"], "24.40");
    let ledger = &credits["transactions"];
    assert_eq!(ledger["totalCount"], 2);
    assert_eq!(ledger["edges"][0]["node"]["kind"], "JOB_CHARGE");
    assert_eq!(ledger["edges"][0]["node"]["amount"], "-0.60");
    assert_eq!(ledger["edges"][0]["node"]["balanceAfter"], "24.40");
    assert_eq!(ledger["edges"][1]["node"]["amount"], "25.00");
    let meter = &viewer["usage"][0];
    assert_eq!(meter["used"], 1001);
    assert_eq!(meter["limit"], 1000);
    assert_eq!(meter["remaining"], 0, "remaining never goes negative");
    assert_eq!(meter["windowStart"], start.to_rfc3339().as_str());
    let jobs = &viewer["photoJobs"];
    assert_eq!(jobs["totalCount"], 1);
    let node = &jobs["edges"][0]["node"];
    assert_eq!(node["status"], "COMPLETED");
    assert_eq!(node["cost"], "0.60");
    assert_eq!(node["groupName"], "Wedding");

    let id = node["id"].as_str().unwrap();
    let one = app
        .query_as(&user, "query($id: ID!) { viewer { photoJob(id: $id) { id photoCount } } node(id: $id) { id ... on PhotoJob { prompt } } }", json!({ "id": id }))
        .await;
    assert_eq!(one["data"]["viewer"]["photoJob"]["id"], id, "{one}");
    assert_eq!(one["data"]["viewer"]["photoJob"]["photoCount"], 2);
    assert_eq!(one["data"]["node"]["prompt"], "Make it pop");
    assert!(job > 0);
}

#[tokio::test]
async fn a_lapsed_subscription_keeps_its_plan_name_but_gets_free_entitlements() {
    let app = TestApp::spawn().await;
    let user = app.user("Lapsed").await;
    let mut conn = app.db().await;
    diesel::insert_into(subscriptions::table)
        .values((
            subscriptions::user_id.eq(&user.id),
            subscriptions::plan.eq("BASIC"),
            subscriptions::status.eq("CANCELED"),
            subscriptions::canceled_at.eq(Utc::now()),
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    let body = app
        .query_as(&user, "{ viewer { subscription { plan status canceledAt entitlements { plan } } usage { limit } } }", json!({}))
        .await;
    let sub = &body["data"]["viewer"]["subscription"];
    assert_eq!(sub["plan"], "BASIC", "{body}");
    assert_eq!(sub["status"], "CANCELED");
    assert!(sub["canceledAt"].is_string());
    assert_eq!(sub["entitlements"]["plan"], "FREE");
    assert_eq!(body["data"]["viewer"]["usage"][0]["limit"], 20);
}

#[tokio::test]
async fn without_a_session_viewer_is_null_and_node_is_unauthenticated() {
    let app = TestApp::spawn().await;
    let (status, body) = app.post("{ viewer { id } }", json!({}), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["viewer"], serde_json::Value::Null, "{body}");
    assert!(body.get("errors").is_none());
    let (_, body) = app
        .post("{ node(id: \"UGhvdG9Kb2I6MQ\") { id } }", json!({}), &[])
        .await;
    assert_eq!(first_code(&body), "UNAUTHENTICATED");
}

#[tokio::test]
async fn the_ledger_is_append_only_but_leaves_with_its_user() {
    use bff::db::better_auth::users;
    use bff::db::schema::{credit_accounts, credit_ledger};
    let app = TestApp::spawn().await;
    let user = app.user("Ledgered").await;
    let mut conn = app.db().await;
    ledger_change(&app, &user.id, "GRANT", 500, "Grant").await;
    let edit = diesel::update(credit_ledger::table)
        .set(credit_ledger::amount_cents.eq(1))
        .execute(&mut conn)
        .await;
    assert!(edit.is_err(), "a ledger row was edited");
    let erase = diesel::delete(credit_ledger::table)
        .execute(&mut conn)
        .await;
    assert!(erase.is_err(), "a ledger row was deleted");
    // A refund of spent credits may leave a balance negative, so the database allows it; a
    // balance edited without its ledger row is what the invariant check finds.
    diesel::update(credit_accounts::table)
        .set(credit_accounts::balance_cents.eq(-1))
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        crate::photo_jobs::invariant_violations(&mut conn).await,
        2,
        "balance ≠ ledger, and negative without a refund"
    );
    diesel::delete(users::table.find(&user.id))
        .execute(&mut conn)
        .await
        .unwrap();
    let left: i64 = credit_ledger::table
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 0);
}
