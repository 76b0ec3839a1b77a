//! Nobody sees another person's rows: every field, `photoJob(id)` and `node(id)`.

use bff::db::schema::{subscriptions, usage_counters};
use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};

use crate::support::{TestApp, TestUser, ledger_change};

const EVERYTHING: &str = r#"{ viewer {
  id
  subscription { plan status }
  credits { balance freePhotosUsed transactions(first: 100) { totalCount edges { node { id description } } } }
  usage { used }
  photoJobs(first: 100) { totalCount edges { node { id prompt } } }
} }"#;

async fn give_data(app: &TestApp, user: &TestUser, plan: &str, cents: i64, jobs: usize, used: i32) {
    let mut conn = app.db().await;
    diesel::insert_into(subscriptions::table)
        .values((
            subscriptions::user_id.eq(&user.id),
            subscriptions::plan.eq(plan),
            subscriptions::status.eq("ACTIVE"),
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    let description = format!("grant for {}", user.id);
    ledger_change(app, &user.id, "GRANT", cents, &description).await;
    let now = Utc::now();
    let (window, _) = bff::db::usage::current(&mut conn, &user.id, "PHOTOS")
        .await
        .unwrap();
    diesel::insert_into(usage_counters::table)
        .values((
            usage_counters::user_id.eq(&user.id),
            usage_counters::metric.eq("PHOTOS"),
            usage_counters::window_start.eq(window.start),
            usage_counters::window_end.eq(window.end),
            usage_counters::count.eq(used),
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    for i in 0..jobs {
        app.insert_job(
            &user.id,
            now - Duration::minutes(i as i64),
            "PENDING",
            Some("shared-group-name"),
        )
        .await;
    }
}

fn ids(list: &Value) -> Vec<String> {
    list["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn each_user_sees_only_their_own_rows_in_every_field() {
    let app = TestApp::spawn().await;
    let alice = app.user("Alice").await;
    let bob = app.user("Bob").await;
    give_data(&app, &alice, "PRO", 1234, 3, 7).await;
    give_data(&app, &bob, "BASIC", 999, 5, 11).await;

    let a = app.query_as(&alice, EVERYTHING, json!({})).await;
    let b = app.query_as(&bob, EVERYTHING, json!({})).await;
    let (va, vb) = (&a["data"]["viewer"], &b["data"]["viewer"]);
    assert_eq!(va["id"], alice.id.as_str(), "{a}");
    assert_eq!(vb["id"], bob.id.as_str(), "{b}");
    assert_eq!(
        (
            va["subscription"]["plan"].as_str(),
            vb["subscription"]["plan"].as_str()
        ),
        (Some("PRO"), Some("BASIC"))
    );
    assert_eq!(
        (
            va["credits"]["balance"].as_str(),
            vb["credits"]["balance"].as_str()
        ),
        (Some("12.34"), Some("9.99"))
    );
    assert_eq!(va["credits"]["transactions"]["totalCount"], 1);
    assert_eq!(
        va["credits"]["transactions"]["edges"][0]["node"]["description"],
        format!("grant for {}", alice.id).as_str()
    );
    assert_eq!(
        (
            va["usage"][0]["used"].as_i64(),
            vb["usage"][0]["used"].as_i64()
        ),
        (Some(7), Some(11))
    );
    assert_eq!(
        (
            va["photoJobs"]["totalCount"].as_i64(),
            vb["photoJobs"]["totalCount"].as_i64()
        ),
        (Some(3), Some(5))
    );

    // A filter that matches both users' jobs still shows only the viewer's.
    let filtered = app
        .query_as(
            &alice,
            r#"{ viewer { photoJobs(filter: {groupName: "shared-group-name"}) { totalCount } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(filtered["data"]["viewer"]["photoJobs"]["totalCount"], 3);

    // Another user's ids behave exactly like ids that do not exist.
    let alice_job = ids(&va["photoJobs"])[0].clone();
    let alice_entry = va["credits"]["transactions"]["edges"][0]["node"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let unknown_job = bff::graphql::ids::global_id(bff::graphql::ids::Kind::PhotoJob, 999_999).0;
    let lookup = "query($id: ID!) { viewer { photoJob(id: $id) { id } } node(id: $id) { id } }";
    for id in [&alice_job, &alice_entry, &unknown_job] {
        let body = app.query_as(&bob, lookup, json!({ "id": id })).await;
        assert_eq!(
            body,
            json!({ "data": { "viewer": { "photoJob": null }, "node": null } }),
            "bob looking up {id}"
        );
    }
    let own = app
        .query_as(&alice, lookup, json!({ "id": alice_job }))
        .await;
    assert_eq!(own["data"]["node"]["id"], alice_job.as_str());
    assert_eq!(own["data"]["viewer"]["photoJob"]["id"], alice_job.as_str());
    let own_entry = app
        .query_as(
            &alice,
            "query($id: ID!) { node(id: $id) { id ... on CreditTransaction { amount } } }",
            json!({ "id": alice_entry }),
        )
        .await;
    assert_eq!(own_entry["data"]["node"]["amount"], "12.34", "{own_entry}");
}
