//! Keyset pagination: stable cursors, no duplicates or gaps, filters, the cap.

use chrono::{Duration, Utc};
use serde_json::{Value, json};

use crate::support::{TestApp, TestUser, first_code, ledger_change};

const PAGE: &str = r#"query($first: Int, $after: String, $filter: PhotoJobFilter) {
  viewer { photoJobs(first: $first, after: $after, filter: $filter) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id status groupName } }
  } }
}"#;

async fn all_pages(app: &TestApp, user: &TestUser, first: i64, filter: Value) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after = Value::Null;
    loop {
        let body = app
            .query_as(
                user,
                PAGE,
                json!({ "first": first, "after": after, "filter": filter }),
            )
            .await;
        let page = &body["data"]["viewer"]["photoJobs"];
        let edges = page["edges"].as_array().unwrap_or_else(|| panic!("{body}"));
        assert!(edges.len() as i64 <= first);
        ids.extend(
            edges
                .iter()
                .map(|e| e["node"]["id"].as_str().unwrap().to_owned()),
        );
        if page["pageInfo"]["hasNextPage"] == false {
            return ids;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

#[tokio::test]
async fn pages_cover_every_job_once_newest_first_even_with_equal_timestamps() {
    let app = TestApp::spawn().await;
    let user = app.user("Pager").await;
    let base = Utc::now() - Duration::days(1);
    let mut expected = Vec::new();
    for i in 0..45 {
        // Groups of three share a timestamp, so only the id breaks the tie.
        let at = base + Duration::minutes(i / 3);
        expected.push((at, app.insert_job(&user.id, at, "COMPLETED", None).await));
    }
    expected.sort_by(|a, b| b.cmp(a));
    let expected: Vec<i64> = expected.into_iter().map(|(_, id)| id).collect();
    let ids = all_pages(&app, &user, 10, Value::Null).await;
    let rows: Vec<i64> = ids
        .iter()
        .map(|id| bff::graphql::ids::row_id(id, bff::graphql::ids::Kind::PhotoJob).unwrap())
        .collect();
    assert_eq!(rows, expected);
    let body = app.query_as(&user, PAGE, json!({ "first": 10 })).await;
    let page = &body["data"]["viewer"]["photoJobs"];
    assert_eq!(page["totalCount"], 45);
    assert_eq!(page["pageInfo"]["hasPreviousPage"], false);
    assert_eq!(page["pageInfo"]["startCursor"], page["edges"][0]["cursor"]);
}

#[tokio::test]
async fn a_job_created_between_pages_neither_repeats_nor_shifts_the_next_page() {
    let app = TestApp::spawn().await;
    let user = app.user("Busy").await;
    let base = Utc::now() - Duration::hours(1);
    for i in 0..6 {
        app.insert_job(&user.id, base + Duration::seconds(i), "PENDING", None)
            .await;
    }
    let first = app.query_as(&user, PAGE, json!({ "first": 3 })).await;
    let page = &first["data"]["viewer"]["photoJobs"];
    let cursor = page["pageInfo"]["endCursor"].clone();
    app.insert_job(&user.id, Utc::now(), "PENDING", None).await;
    let second = app
        .query_as(&user, PAGE, json!({ "first": 3, "after": cursor }))
        .await;
    let ids = |v: &Value| -> Vec<String> {
        v["data"]["viewer"]["photoJobs"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (a, b) = (ids(&first), ids(&second));
    assert_eq!(b.len(), 3);
    assert!(a.iter().all(|id| !b.contains(id)));
    assert_eq!(
        second["data"]["viewer"]["photoJobs"]["pageInfo"]["hasNextPage"],
        false
    );
    assert_eq!(
        second["data"]["viewer"]["photoJobs"]["pageInfo"]["hasPreviousPage"],
        true
    );
}

#[tokio::test]
async fn filters_by_statuses_and_group_with_matching_total_count() {
    let app = TestApp::spawn().await;
    let user = app.user("Filter").await;
    let base = Utc::now() - Duration::hours(2);
    let plan = [
        ("PENDING", Some("Wedding")),
        ("FAILED", Some("Wedding")),
        ("COMPLETED", Some("Wedding")),
        ("PENDING", None),
        ("CANCELED", Some("Portraits")),
        ("PENDING", Some("Portraits")),
    ];
    for (i, (status, group)) in plan.iter().enumerate() {
        app.insert_job(&user.id, base + Duration::seconds(i as i64), status, *group)
            .await;
    }
    let count = |filter: Value| {
        let app = &app;
        let user = &user;
        async move {
            let body = app
                .query_as(user, PAGE, json!({ "first": 100, "filter": filter }))
                .await;
            let page = body["data"]["viewer"]["photoJobs"].clone();
            assert_eq!(
                page["totalCount"].as_i64().unwrap() as usize,
                page["edges"].as_array().unwrap().len(),
                "{body}"
            );
            page
        }
    };
    let pending = count(json!({ "statuses": ["PENDING"] })).await;
    assert_eq!(pending["totalCount"], 3);
    assert!(
        pending["edges"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["node"]["status"] == "PENDING")
    );
    assert_eq!(
        count(json!({ "statuses": ["FAILED", "CANCELED"] })).await["totalCount"],
        2
    );
    let wedding = count(json!({ "groupName": "Wedding" })).await;
    assert_eq!(wedding["totalCount"], 3);
    assert_eq!(
        count(json!({ "groupName": "Wedding", "statuses": ["PENDING"] })).await["totalCount"],
        1
    );
    assert_eq!(count(json!({ "statuses": [] })).await["totalCount"], 0);
    let paged = all_pages(&app, &user, 1, json!({ "groupName": "Portraits" })).await;
    assert_eq!(paged.len(), 2);
}

#[tokio::test]
async fn page_size_is_capped_and_bad_cursors_are_refused() {
    let app = TestApp::spawn().await;
    let user = app.user("Greedy").await;
    for (first, ok) in [(100, true), (101, false), (-1, false), (0, true)] {
        let body = app.query_as(&user, PAGE, json!({ "first": first })).await;
        if ok {
            assert!(body.get("errors").is_none(), "first {first}: {body}");
        } else {
            assert_eq!(first_code(&body), "BAD_USER_INPUT", "first {first}");
            assert!(
                body["errors"][0]["message"]
                    .as_str()
                    .unwrap()
                    .contains("100")
            );
        }
    }
    let body = app
        .query_as(&user, PAGE, json!({ "after": "garbage" }))
        .await;
    assert_eq!(first_code(&body), "BAD_USER_INPUT");
    let body = app
        .query_as(
            &user,
            "{ viewer { credits { transactions(first: 500) { totalCount } } } }",
            json!({}),
        )
        .await;
    assert_eq!(first_code(&body), "BAD_USER_INPUT");
    let long = "x".repeat(141);
    let body = app
        .query_as(&user, PAGE, json!({ "filter": { "groupName": long } }))
        .await;
    assert_eq!(first_code(&body), "BAD_USER_INPUT");
    let body = app
        .query_as(&user, PAGE, json!({ "filter": { "statuses": ["BOGUS"] } }))
        .await;
    assert_eq!(first_code(&body), "BAD_USER_INPUT", "{body}");
}

#[tokio::test]
async fn the_ledger_pages_newest_first() {
    let app = TestApp::spawn().await;
    let user = app.user("Ledger").await;
    for i in 1..=7 {
        ledger_change(&app, &user.id, "GRANT", i * 100, "Grant").await;
    }
    let query = "query($after: String) { viewer { credits { transactions(first: 3, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { node { amount } } } } } }";
    let mut amounts = Vec::new();
    let mut after = Value::Null;
    loop {
        let body = app.query_as(&user, query, json!({ "after": after })).await;
        let page = &body["data"]["viewer"]["credits"]["transactions"];
        assert_eq!(page["totalCount"], 7, "{body}");
        amounts.extend(
            page["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"]["amount"].as_str().unwrap().to_owned()),
        );
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(
        amounts,
        ["7.00", "6.00", "5.00", "4.00", "3.00", "2.00", "1.00"]
    );
}
