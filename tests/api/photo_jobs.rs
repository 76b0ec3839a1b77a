//! createPhotoJob: pricing, free allowance, quota, validation, idempotency, concurrency.

use bff::db::credits::CreditAccount;
use bff::db::schema::{credit_ledger, photo_jobs, usage_counters};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};

use crate::support::{TestApp, TestUser, first_code, ledger_change};

mod concurrency;
mod create;
mod manage;

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

pub async fn create(app: &TestApp, user: &TestUser, input: Value) -> Value {
    app.query_as(user, CREATE, json!({ "input": input })).await
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
