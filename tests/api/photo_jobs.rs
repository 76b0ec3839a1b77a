//! createPhotoJob: pricing, free allowance, quota, validation, idempotency, concurrency.

use bff::db::credits::CreditAccount;
use bff::db::schema::{credit_ledger, photo_jobs, usage_counters};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};

use crate::support::{TestApp, TestUser, first_code, ledger_change};

const CREATE: &str = r#"mutation($input: CreatePhotoJobInput!) {
  createPhotoJob(input: $input) {
    photoJob { id status photoCount cost freePhotosApplied groupName prompt }
    credits { balance freePhotosUsed freePhotosRemaining }
  }
}"#;

/// The rows of `sql/check_invariants.sql`: accounts whose balance is not the ledger's sum.
pub async fn invariant_violations(conn: &mut AsyncPgConnection) -> usize {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        #[allow(dead_code)]
        user_id: String,
    }
    let sql = include_str!("../../sql/check_invariants.sql");
    diesel::sql_query(sql)
        .load::<Row>(conn)
        .await
        .unwrap()
        .len()
}

pub async fn grant(app: &TestApp, user: &TestUser, cents: i64) {
    ledger_change(app, &user.id, "GRANT", cents, "Grant").await;
}

/// (jobs, ledger rows, usage, balance in cents) of a user.
pub async fn state(app: &TestApp, user: &TestUser) -> (i64, i64, i32, i64) {
    let mut conn = app.db().await;
    let jobs = photo_jobs::table
        .filter(photo_jobs::user_id.eq(&user.id))
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    let ledger = credit_ledger::table
        .filter(credit_ledger::user_id.eq(&user.id))
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    let usage: Option<i32> = usage_counters::table
        .filter(usage_counters::user_id.eq(&user.id))
        .select(usage_counters::count)
        .first(&mut conn)
        .await
        .optional()
        .unwrap();
    let balance = CreditAccount::find_or_empty(&mut conn, &user.id)
        .await
        .unwrap()
        .balance_cents;
    (jobs, ledger, usage.unwrap_or(0), balance)
}

/// Sends `n` requests of `query` at once as `user`, `variables(i)` for the i-th; returns the
/// response bodies.
pub async fn race(
    app: &TestApp,
    user: &TestUser,
    query: &'static str,
    n: usize,
    variables: impl Fn(usize) -> Value,
) -> Vec<Value> {
    race_with(app, ("cookie", user.cookie()), query, n, variables).await
}

/// Like [`race`], with any one credential header.
pub async fn race_with(
    app: &TestApp,
    header: (&'static str, String),
    query: &'static str,
    n: usize,
    variables: impl Fn(usize) -> Value,
) -> Vec<Value> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (client, url, header) = (app.client.clone(), app.url("/graphql"), header.clone());
            let body = json!({ "query": query, "variables": variables(i) });
            tokio::spawn(async move {
                client
                    .post(url)
                    .header(header.0, header.1)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut bodies = Vec::new();
    for task in tasks {
        bodies.push(task.await.unwrap());
    }
    bodies
}

async fn create(app: &TestApp, user: &TestUser, input: Value) -> Value {
    app.query_as(user, CREATE, json!({ "input": input })).await
}

#[tokio::test]
async fn the_free_allowance_is_spent_first_then_credits_at_the_plans_price() {
    let app = TestApp::spawn().await;
    let user = app.user("Fresh").await;
    // FREE plan: 3 free photos, then 0.50 a photo. No credits yet.
    let body = create(
        &app,
        &user,
        json!({ "prompt": "  Brighten  ", "photoCount": 3, "groupName": "Trips" }),
    )
    .await;
    let payload = &body["data"]["createPhotoJob"];
    assert_eq!(payload["photoJob"]["status"], "PENDING", "{body}");
    assert_eq!(payload["photoJob"]["prompt"], "Brighten");
    assert_eq!(payload["photoJob"]["cost"], "0.00");
    assert_eq!(payload["photoJob"]["freePhotosApplied"], 3);
    assert_eq!(payload["credits"]["freePhotosRemaining"], 0);
    assert_eq!(state(&app, &user).await, (1, 0, 3, 0));

    let before = state(&app, &user).await;
    let body = create(
        &app,
        &user,
        json!({ "prompt": "One more", "photoCount": 1 }),
    )
    .await;
    assert_eq!(first_code(&body), "INSUFFICIENT_CREDITS", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("0.50")
    );
    assert_eq!(
        state(&app, &user).await,
        before,
        "a refused job changed something"
    );

    grant(&app, &user, 50).await;
    let body = create(
        &app,
        &user,
        json!({ "prompt": "One more", "photoCount": 1 }),
    )
    .await;
    assert_eq!(
        body["data"]["createPhotoJob"]["photoJob"]["cost"], "0.50",
        "{body}"
    );
    assert_eq!(body["data"]["createPhotoJob"]["credits"]["balance"], "0.00");
    assert_eq!(state(&app, &user).await, (2, 2, 4, 0));
    assert_eq!(invariant_violations(&mut app.db().await).await, 0);
}

#[tokio::test]
async fn a_job_straddling_the_free_allowance_pays_only_for_the_rest() {
    let app = TestApp::spawn().await;
    let user = app.user("Straddle").await;
    grant(&app, &user, 100).await;
    let body = create(&app, &user, json!({ "prompt": "Crop", "photoCount": 5 })).await;
    let job = &body["data"]["createPhotoJob"]["photoJob"];
    assert_eq!(
        (job["freePhotosApplied"].as_i64(), job["cost"].as_str()),
        (Some(3), Some("1.00")),
        "{body}"
    );
    assert_eq!(body["data"]["createPhotoJob"]["credits"]["balance"], "0.00");
}

#[tokio::test]
async fn the_last_photo_of_the_quota_passes_and_the_next_is_refused() {
    let app = TestApp::spawn_with(|env| {
        env.insert("FREE_PHOTO_ALLOWANCE", "0".into());
    })
    .await;
    let user = app.user("Quota").await;
    grant(&app, &user, 10_000).await;
    // FREE: 20 photos a month, at most 10 a job.
    for _ in 0..2 {
        let body = create(&app, &user, json!({ "prompt": "Batch", "photoCount": 9 })).await;
        assert!(body.get("errors").is_none(), "{body}");
    }
    let body = create(
        &app,
        &user,
        json!({ "prompt": "Last two", "photoCount": 2 }),
    )
    .await;
    assert!(
        body.get("errors").is_none(),
        "the last allowed photos were refused: {body}"
    );
    let before = state(&app, &user).await;
    assert_eq!(before.2, 20);
    let body = create(
        &app,
        &user,
        json!({ "prompt": "One too many", "photoCount": 1 }),
    )
    .await;
    assert_eq!(first_code(&body), "QUOTA_EXCEEDED", "{body}");
    assert_eq!(state(&app, &user).await, before);
    let usage = app
        .query_as(
            &user,
            "{ viewer { usage { used limit remaining } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        usage["data"]["viewer"]["usage"][0],
        json!({ "used": 20, "limit": 20, "remaining": 0 })
    );
}

#[tokio::test]
async fn invalid_input_gets_a_clear_error_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let user = app.user("Careless").await;
    grant(&app, &user, 10_000).await;
    let before = state(&app, &user).await;
    let long_prompt = "p".repeat(2001);
    let long_group = "g".repeat(141);
    // Each names its field in `extensions.field`, for a form to show the message beside it.
    for (input, hint, field) in [
        (json!({ "prompt": "", "photoCount": 1 }), "prompt", "prompt"),
        (
            json!({ "prompt": "   ", "photoCount": 1 }),
            "prompt",
            "prompt",
        ),
        (
            json!({ "prompt": long_prompt, "photoCount": 1 }),
            "2000",
            "prompt",
        ),
        (
            json!({ "prompt": "x", "photoCount": 0 }),
            "photoCount",
            "photoCount",
        ),
        (
            json!({ "prompt": "x", "photoCount": 101 }),
            "photoCount",
            "photoCount",
        ),
        (
            json!({ "prompt": "x", "photoCount": 11 }),
            "at most 10",
            "photoCount",
        ),
        (
            json!({ "prompt": "x", "photoCount": 1, "groupName": long_group }),
            "groupName",
            "groupName",
        ),
        (
            json!({ "prompt": "x", "photoCount": 1, "idempotencyKey": "" }),
            "idempotencyKey",
            "idempotencyKey",
        ),
    ] {
        let body = create(&app, &user, input.clone()).await;
        assert_eq!(first_code(&body), "BAD_USER_INPUT", "{input}: {body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(hint), "{input}: {message}");
        assert_eq!(
            body["errors"][0]["extensions"]["field"], field,
            "{input}: {body}"
        );
    }
    assert_eq!(state(&app, &user).await, before);
    let (status, body) = app
        .post(
            CREATE,
            json!({ "input": { "prompt": "x", "photoCount": 1 } }),
            &[],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(first_code(&body), "UNAUTHENTICATED");
}

#[tokio::test]
async fn an_idempotency_key_returns_the_first_result_without_charging_again() {
    let app = TestApp::spawn_with(|env| {
        env.insert("FREE_PHOTO_ALLOWANCE", "0".into());
    })
    .await;
    let user = app.user("Retry").await;
    grant(&app, &user, 1_000).await;
    let input = json!({ "prompt": "Retry me", "photoCount": 2, "idempotencyKey": "req-1" });
    let first = create(&app, &user, input.clone()).await;
    let second = create(&app, &user, input).await;
    let id = |b: &Value| {
        b["data"]["createPhotoJob"]["photoJob"]["id"]
            .as_str()
            .map(str::to_owned)
    };
    assert!(id(&first).is_some(), "{first}");
    assert_eq!(id(&first), id(&second));
    assert_eq!(
        second["data"]["createPhotoJob"]["credits"]["balance"],
        "9.00"
    );
    let before = state(&app, &user).await;
    assert_eq!(before, (1, 2, 2, 900));
    let other = create(
        &app,
        &user,
        json!({ "prompt": "Something else", "photoCount": 2, "idempotencyKey": "req-1" }),
    )
    .await;
    assert_eq!(first_code(&other), "CONFLICT", "{other}");
    assert_eq!(state(&app, &user).await, before);
    // Keys are per viewer: another user may use the same key.
    let stranger = app.user("Stranger").await;
    let theirs = create(
        &app,
        &stranger,
        json!({ "prompt": "Retry me", "photoCount": 1, "idempotencyKey": "req-1" }),
    )
    .await;
    assert_eq!(first_code(&theirs), "INSUFFICIENT_CREDITS", "{theirs}");
}

#[tokio::test]
async fn fifty_concurrent_jobs_against_a_balance_for_ten_create_exactly_ten() {
    let app = TestApp::spawn_with(|env| {
        env.insert("FREE_PHOTO_ALLOWANCE", "0".into());
    })
    .await;
    let user = app.user("Racer").await;
    grant(&app, &user, 500).await; // ten photos at 0.50
    let bodies = race(
        &app,
        &user,
        CREATE,
        50,
        |i| json!({ "input": { "prompt": format!("race {i}"), "photoCount": 1 } }),
    )
    .await;
    let (mut created, mut refused) = (0, 0);
    for body in bodies {
        if body["data"]["createPhotoJob"].is_object() {
            created += 1;
        } else {
            assert_eq!(first_code(&body), "INSUFFICIENT_CREDITS", "{body}");
            refused += 1;
        }
    }
    assert_eq!((created, refused), (10, 40));
    let (jobs, ledger, usage, balance) = state(&app, &user).await;
    assert_eq!((jobs, ledger, usage, balance), (10, 11, 10, 0));
    assert_eq!(invariant_violations(&mut app.db().await).await, 0);
}

#[tokio::test]
async fn concurrent_retries_with_one_idempotency_key_create_one_job_and_one_charge() {
    let app = TestApp::spawn_with(|env| {
        env.insert("FREE_PHOTO_ALLOWANCE", "0".into());
    })
    .await;
    let user = app.user("Retrier").await;
    grant(&app, &user, 5_000).await;
    let bodies = race(
        &app,
        &user,
        CREATE,
        20,
        |_i| json!({ "input": { "prompt": "once", "photoCount": 3, "idempotencyKey": "k" } }),
    )
    .await;
    let mut ids = std::collections::HashSet::new();
    for body in bodies {
        ids.insert(
            body["data"]["createPhotoJob"]["photoJob"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("{body}"))
                .to_owned(),
        );
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(state(&app, &user).await, (1, 2, 3, 5_000 - 150));
    assert_eq!(invariant_violations(&mut app.db().await).await, 0);
}

#[tokio::test]
async fn concurrent_jobs_never_exceed_the_quota() {
    let app = TestApp::spawn_with(|env| {
        env.insert("FREE_PHOTO_ALLOWANCE", "0".into());
    })
    .await;
    let user = app.user("Quota racer").await;
    grant(&app, &user, 10_000).await;
    let bodies = race(
        &app,
        &user,
        CREATE,
        30,
        |i| json!({ "input": { "prompt": format!("q {i}"), "photoCount": 1 } }),
    )
    .await;
    let mut created = 0;
    for body in bodies {
        if body["data"]["createPhotoJob"].is_object() {
            created += 1;
        } else {
            assert_eq!(first_code(&body), "QUOTA_EXCEEDED", "{body}");
        }
    }
    // FREE allows 20 photos a window.
    assert_eq!(created, 20);
    assert_eq!(state(&app, &user).await, (20, 21, 20, 10_000 - 20 * 50));
    assert_eq!(invariant_violations(&mut app.db().await).await, 0);
}

#[tokio::test]
async fn a_cross_site_form_or_get_cannot_run_a_mutation_with_the_cookie() {
    let app = TestApp::spawn().await;
    let user = app.user("Victim").await;
    let document = r#"mutation { createPhotoJob(input: {prompt: "csrf", photoCount: 1}) { photoJob { id } } }"#;
    let body = json!({ "query": document }).to_string();
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let response = app
            .client
            .post(app.url("/graphql"))
            .header("cookie", user.cookie())
            .header("content-type", content_type)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 415, "{content_type}");
    }
    let response = app
        .client
        .get(app.url("/graphql"))
        .header("cookie", user.cookie())
        .query(&[("query", document)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(
        state(&app, &user).await,
        (0, 0, 0, 0),
        "a refused request created a job"
    );
}

pub async fn new_job(app: &TestApp, user: &TestUser, photos: i64) -> String {
    let body = create(
        app,
        user,
        json!({ "prompt": "job", "photoCount": photos, "groupName": "G" }),
    )
    .await;
    body["data"]["createPhotoJob"]["photoJob"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned()
}

async fn set_status(app: &TestApp, id: &str, status: &str) {
    let row = bff::graphql::ids::row_id(id, bff::graphql::ids::Kind::PhotoJob).unwrap();
    let mut conn = app.db().await;
    diesel::update(photo_jobs::table.find(row))
        .set(photo_jobs::status.eq(status))
        .execute(&mut conn)
        .await
        .unwrap();
}

const UPDATE: &str =
    "mutation($input: UpdatePhotoJobInput!) { updatePhotoJob(input: $input) { id groupName } }";
const CANCEL: &str = "mutation($id: ID!) { cancelPhotoJob(id: $id) { id status } }";
const DELETE: &str = "mutation($id: ID!) { deletePhotoJob(id: $id) }";

#[tokio::test]
async fn update_sets_and_clears_the_group_of_own_jobs_only() {
    let app = TestApp::spawn().await;
    let owner = app.user("Owner").await;
    let other = app.user("Other").await;
    let id = new_job(&app, &owner, 1).await;
    let body = app
        .query_as(
            &owner,
            UPDATE,
            json!({ "input": { "id": id, "groupName": "Holidays" } }),
        )
        .await;
    assert_eq!(
        body["data"]["updatePhotoJob"]["groupName"], "Holidays",
        "{body}"
    );
    let body = app
        .query_as(
            &owner,
            UPDATE,
            json!({ "input": { "id": id, "groupName": null } }),
        )
        .await;
    assert_eq!(body["data"]["updatePhotoJob"]["groupName"], Value::Null);
    let body = app
        .query_as(
            &owner,
            UPDATE,
            json!({ "input": { "id": id, "groupName": "g".repeat(141) } }),
        )
        .await;
    assert_eq!(first_code(&body), "BAD_USER_INPUT");
    assert_eq!(body["errors"][0]["extensions"]["field"], "groupName");
    for bad in [id.as_str(), "garbage"] {
        let body = app
            .query_as(
                &other,
                UPDATE,
                json!({ "input": { "id": bad, "groupName": "Mine now" } }),
            )
            .await;
        assert_eq!(first_code(&body), "NOT_FOUND", "{body}");
    }
    let check = app
        .query_as(
            &owner,
            "query($id: ID!) { viewer { photoJob(id: $id) { groupName } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        check["data"]["viewer"]["photoJob"]["groupName"],
        Value::Null
    );
}

#[tokio::test]
async fn cancel_refunds_a_pending_job_once_and_refuses_other_states() {
    let app = TestApp::spawn_with(|env| {
        env.insert("FREE_PHOTO_ALLOWANCE", "1".into());
    })
    .await;
    let user = app.user("Canceler").await;
    let other = app.user("Intruder").await;
    grant(&app, &user, 1_000).await;
    let id = new_job(&app, &user, 3).await; // 1 free + 2 × 0.50
    assert_eq!(state(&app, &user).await, (1, 2, 3, 900));
    let body = app.query_as(&other, CANCEL, json!({ "id": id })).await;
    assert_eq!(first_code(&body), "NOT_FOUND");
    let body = app.query_as(&user, CANCEL, json!({ "id": id })).await;
    assert_eq!(
        body["data"]["cancelPhotoJob"]["status"], "CANCELED",
        "{body}"
    );
    assert_eq!(state(&app, &user).await, (1, 3, 0, 1_000));
    let credits = app
        .query_as(
            &user,
            "{ viewer { credits { freePhotosRemaining } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        credits["data"]["viewer"]["credits"]["freePhotosRemaining"],
        1
    );
    let body = app.query_as(&user, CANCEL, json!({ "id": id })).await;
    assert_eq!(first_code(&body), "CONFLICT", "{body}");
    assert_eq!(state(&app, &user).await, (1, 3, 0, 1_000));

    let running = new_job(&app, &user, 1).await;
    set_status(&app, &running, "PROCESSING").await;
    let body = app.query_as(&user, CANCEL, json!({ "id": running })).await;
    assert_eq!(first_code(&body), "CONFLICT");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("PROCESSING")
    );
    assert_eq!(invariant_violations(&mut app.db().await).await, 0);
}

#[tokio::test]
async fn concurrent_cancels_of_one_job_refund_it_once() {
    let app = TestApp::spawn_with(|env| {
        env.insert("FREE_PHOTO_ALLOWANCE", "0".into());
    })
    .await;
    let user = app.user("Double").await;
    grant(&app, &user, 1_000).await;
    let id = new_job(&app, &user, 4).await;
    let bodies = race(&app, &user, CANCEL, 10, |_| json!({ "id": id })).await;
    let mut canceled = 0;
    for body in bodies {
        if body["data"]["cancelPhotoJob"].is_object() {
            canceled += 1;
        } else {
            assert_eq!(first_code(&body), "CONFLICT", "{body}");
        }
    }
    assert_eq!(canceled, 1);
    assert_eq!(state(&app, &user).await, (1, 3, 0, 1_000));
    assert_eq!(invariant_violations(&mut app.db().await).await, 0);
}

#[tokio::test]
async fn delete_keeps_the_ledger_refunds_pending_jobs_and_refuses_processing_ones() {
    let app = TestApp::spawn_with(|env| {
        env.insert("FREE_PHOTO_ALLOWANCE", "0".into());
    })
    .await;
    let user = app.user("Deleter").await;
    let other = app.user("Snoop").await;
    grant(&app, &user, 1_000).await;
    let done = new_job(&app, &user, 2).await;
    set_status(&app, &done, "COMPLETED").await;
    let body = app.query_as(&other, DELETE, json!({ "id": done })).await;
    assert_eq!(first_code(&body), "NOT_FOUND");
    let body = app.query_as(&user, DELETE, json!({ "id": done })).await;
    assert_eq!(body["data"]["deletePhotoJob"], done.as_str(), "{body}");
    assert_eq!(
        state(&app, &user).await,
        (0, 2, 2, 900),
        "the ledger must keep the charge"
    );

    let pending = new_job(&app, &user, 2).await;
    app.query_as(&user, DELETE, json!({ "id": pending })).await;
    assert_eq!(
        state(&app, &user).await,
        (0, 4, 2, 900),
        "a deleted pending job is refunded"
    );

    let running = new_job(&app, &user, 1).await;
    set_status(&app, &running, "PROCESSING").await;
    let before = state(&app, &user).await;
    let body = app.query_as(&user, DELETE, json!({ "id": running })).await;
    assert_eq!(first_code(&body), "CONFLICT", "{body}");
    assert_eq!(state(&app, &user).await, before);
    let body = app.query_as(&user, DELETE, json!({ "id": done })).await;
    assert_eq!(first_code(&body), "NOT_FOUND");
    assert_eq!(invariant_violations(&mut app.db().await).await, 0);
}
