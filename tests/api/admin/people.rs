//! Support finds people by id, email or name prefix and Stripe customer id, pages through them,
//! and reads one person's account.

use serde_json::json;

use super::{as_staff, staff};
use crate::photo_jobs::grant;
use crate::support::TestApp;

const USERS: &str = "query($search: String, $first: Int, $after: String) {
  users(search: $search, first: $first, after: $after) {
    nodes { id email name ban { reason } stripeCustomerId }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
}";

#[tokio::test]
async fn support_finds_people_and_pages_through_them() {
    let app = TestApp::spawn().await;
    let support = staff(&app, "Sam", "support").await;
    let ann = app.user("Annabel").await;
    let anna = app.user("Anna").await;
    let bob = app.user("Bob").await;
    diesel_async::SimpleAsyncConnection::batch_execute(
        &mut app.db().await,
        &format!(
            "INSERT INTO stripe_customers (user_id, customer_id) VALUES ('{}', 'cus_bob');
             UPDATE \"user\" SET name = 'Zed 100%_off' WHERE id = '{}'",
            bob.id, anna.id
        ),
    )
    .await
    .unwrap();
    let emails = |body: &serde_json::Value| -> Vec<String> {
        body["data"]["users"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["email"].as_str().unwrap().to_owned())
            .collect()
    };
    // An email prefix, any case; newest first.
    let body = as_staff(&app, &support, USERS, json!({ "search": "ANN" })).await;
    assert_eq!(
        emails(&body),
        ["anna@example.com", "annabel@example.com"],
        "{body}"
    );
    assert_eq!(body["data"]["users"]["totalCount"], 2);
    // A name prefix, wildcards meaning themselves.
    let body = as_staff(&app, &support, USERS, json!({ "search": "zed 100%_" })).await;
    assert_eq!(emails(&body), ["anna@example.com"], "{body}");
    let body = as_staff(&app, &support, USERS, json!({ "search": "zed 1000" })).await;
    assert_eq!(emails(&body), Vec::<String>::new(), "{body}");
    // An id, a Stripe customer id.
    let body = as_staff(&app, &support, USERS, json!({ "search": ann.id })).await;
    assert_eq!(emails(&body), ["annabel@example.com"], "{body}");
    let body = as_staff(&app, &support, USERS, json!({ "search": "cus_bob" })).await;
    assert_eq!(emails(&body), ["bob@example.com"], "{body}");
    assert_eq!(
        body["data"]["users"]["nodes"][0]["stripeCustomerId"],
        "cus_bob"
    );
    // Everyone, one page at a time: each once, none skipped.
    let mut seen = Vec::new();
    let mut after = serde_json::Value::Null;
    loop {
        let body = as_staff(&app, &support, USERS, json!({ "first": 1, "after": after })).await;
        seen.extend(emails(&body));
        let info = &body["data"]["users"]["pageInfo"];
        if info["hasNextPage"] != true {
            break;
        }
        after = info["endCursor"].clone();
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "anna@example.com",
            "annabel@example.com",
            "bob@example.com",
            "sam@example.com"
        ]
    );
    let body = as_staff(&app, &support, USERS, json!({ "after": "not a cursor" })).await;
    assert_eq!(
        crate::support::first_code(&body),
        "BAD_USER_INPUT",
        "{body}"
    );
}

#[tokio::test]
async fn support_reads_one_persons_account() {
    let app = TestApp::spawn().await;
    let support = staff(&app, "Sam", "support").await;
    let person = app.user("Reader").await;
    grant(&app, &person, 1_250).await;
    crate::photo_jobs::new_job(&app, &person, 1).await;
    diesel_async::SimpleAsyncConnection::batch_execute(
        &mut app.db().await,
        &format!(
            "INSERT INTO subscriptions (user_id, plan, status, stripe_subscription_id, cancel_at_period_end)
               VALUES ('{0}', 'PRO', 'PAST_DUE', 'sub_1', true);
             INSERT INTO subscription_history (user_id, kind, stripe_object_id, amount_cents, currency, occurred_at)
               VALUES ('{0}', 'PAYMENT_FAILED', 'in_1', 2900, 'usd', now());
             INSERT INTO purchases (user_id, stripe_checkout_session_id, pack, amount_cents, currency,
                                    credits_cents, status, refunded_amount_cents, credits_reversed_cents)
               VALUES ('{0}', 'cs_1', 'SMALL', 999, 'usd', 1000, 'PARTIALLY_REFUNDED', 500, 400)",
            person.id
        ),
    )
    .await
    .unwrap();
    let query = "query($id: ID!) { user(id: $id) {
        person { id email roles ban { reason } }
        balance freePhotosUsed
        sessions { count lastActiveAt impersonated }
        ledger { kind amount balanceAfter }
        subscription { plan status stripeSubscriptionId cancelAtPeriodEnd }
        billingHistory { kind amount currency }
        purchases { pack status paid credits refunded creditsTakenBack creditsHeldInDispute }
        photoJobs { status photoCount }
        storage { uploads bytes }
    } }";
    let body = as_staff(&app, &support, query, json!({ "id": person.id })).await;
    let account = &body["data"]["user"];
    assert_eq!(account["person"]["email"], "reader@example.com", "{body}");
    assert_eq!(account["person"]["roles"], json!([]));
    assert_eq!(account["balance"], "12.50");
    assert_eq!(account["sessions"]["count"], 1);
    assert!(account["sessions"]["lastActiveAt"].is_string());
    // The job was one of the free photos: no charge in the ledger.
    assert_eq!(account["freePhotosUsed"], 1);
    assert_eq!(
        account["ledger"],
        json!([{ "kind": "GRANT", "amount": "12.50", "balanceAfter": "12.50" }])
    );
    assert_eq!(
        account["subscription"],
        json!({ "plan": "PRO", "status": "PAST_DUE", "stripeSubscriptionId": "sub_1", "cancelAtPeriodEnd": true })
    );
    assert_eq!(
        account["billingHistory"],
        json!([{ "kind": "PAYMENT_FAILED", "amount": "29.00", "currency": "usd" }])
    );
    assert_eq!(
        account["purchases"],
        json!([{ "pack": "SMALL", "status": "PARTIALLY_REFUNDED", "paid": "9.99", "credits": "10.00",
                 "refunded": "5.00", "creditsTakenBack": "4.00", "creditsHeldInDispute": "0.00" }])
    );
    assert_eq!(
        account["photoJobs"],
        json!([{ "status": "PENDING", "photoCount": 1 }])
    );
    assert_eq!(account["storage"], json!({ "uploads": 0, "bytes": 0 }));
    let body = as_staff(&app, &support, query, json!({ "id": "nobody" })).await;
    assert_eq!(body["data"]["user"], serde_json::Value::Null, "{body}");
    let body = as_staff(
        &app,
        &support,
        "{ stats { people activePeople bannedPeople creditsSold photoJobsLastDay
            subscriptions { name detail count } photoJobsLastDayByStatus { name count } } }",
        json!({}),
    )
    .await;
    assert_eq!(body["data"]["stats"]["people"], 2, "{body}");
    assert_eq!(body["data"]["stats"]["activePeople"], 2, "{body}");
    assert_eq!(
        body["data"]["stats"]["subscriptions"],
        json!([{ "name": "PRO", "detail": "PAST_DUE", "count": 1 }])
    );
    assert_eq!(
        body["data"]["stats"]["photoJobsLastDayByStatus"],
        json!([{ "name": "PENDING", "count": 1 }])
    );
}
