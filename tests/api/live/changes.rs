//! Exact catch-up: `viewer.changes(since:)` and `viewerChanged(since:)` answer what changed
//! after a cursor, each thing once, in the order it last changed, with no gap and no duplicate
//! where the replay meets the live stream; a cursor too old to replay is CURSOR_EXPIRED.

use std::collections::HashMap;

use bff::graphql::ids::{Kind, global_id};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};

use super::*;
use crate::photo_jobs::grant;
use crate::support::first_code;

const CHANGES: &str = "query($since: String) { viewer { changes(since: $since) {
  cursor hasMore photoJobs { id groupName } deletedPhotoJobIds credits { balance } } } }";
const FOLLOW: &str = "subscription($since: String) { viewerChanged(since: $since) {
  cursor hasMore photoJobs { id groupName } deletedPhotoJobIds credits { balance } } }";

/// Inserts `n` jobs of `user` in `group`, one statement each; their global ids, in order.
async fn insert_jobs(app: &TestApp, user: &TestUser, group: &str, n: usize) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let mut conn = app.db().await;
    let mut ids = Vec::new();
    for _ in 0..n {
        let row: Id = diesel::sql_query(
            "INSERT INTO photo_jobs (user_id, prompt, photo_count, cost_cents, group_name) \
             VALUES ($1, 'p', 1, 0, $2) RETURNING id",
        )
        .bind::<Text, _>(&user.id)
        .bind::<Text, _>(group)
        .get_result(&mut conn)
        .await
        .unwrap();
        ids.push(global_id(Kind::PhotoJob, row.id).0);
    }
    ids
}

async fn cursor_now(app: &TestApp, user: &TestUser) -> String {
    let body = app.query_as(user, CHANGES, json!({})).await;
    body["data"]["viewer"]["changes"]["cursor"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned()
}

async fn rename(app: &TestApp, user: &TestUser, id: &str, group: &str) {
    let body = app
        .query_as(
            user,
            "mutation($input: UpdatePhotoJobInput!) { updatePhotoJob(input: $input) { id } }",
            json!({ "input": { "id": id, "groupName": group } }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
}

/// What a client applies: each answer's jobs and deletions, in order.
#[derive(Default, Debug)]
struct Applied {
    /// (job id, group) as received, in order.
    jobs: Vec<(String, String)>,
    deleted: Vec<String>,
    cursor: Option<String>,
    answers: usize,
}

impl Applied {
    fn apply(&mut self, changes: &Value) {
        for job in changes["photoJobs"].as_array().unwrap() {
            self.jobs.push((
                job["id"].as_str().unwrap().to_owned(),
                job["groupName"].as_str().unwrap_or_default().to_owned(),
            ));
        }
        for id in changes["deletedPhotoJobIds"].as_array().unwrap() {
            self.deleted.push(id.as_str().unwrap().to_owned());
        }
        self.cursor = Some(changes["cursor"].as_str().unwrap().to_owned());
        self.answers += 1;
    }

    /// Reads `viewerChanged` events until none comes for a while.
    async fn follow(&mut self, client: &mut Client) {
        loop {
            match client.next_within(Duration::from_millis(1500)).await {
                Ok(event) => {
                    assert_eq!(event["type"], "next", "{event}");
                    self.apply(&event["payload"]["data"]["viewerChanged"]);
                }
                Err(End::Closed(0, _)) => return,
                Err(other) => panic!("{other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn a_client_that_was_away_resumes_from_its_cursor_and_gets_each_change_once_in_order() {
    let app = TestApp::spawn().await;
    let user = app.user("Phone").await;
    let other = app.user("Someone else").await;
    grant(&app, &user, 100_000).await;
    grant(&app, &other, 10_000).await;
    let old = insert_jobs(&app, &user, "old", 61).await;
    let start = cursor_now(&app, &user).await;

    // Connected from `start`: the replay's first answer comes even when nothing changed.
    let mut phone = Client::signed_in(&app, &user).await;
    phone
        .subscribe("1", FOLLOW, json!({ "since": start }))
        .await;
    let mut applied = Applied::default();
    let caught_up = phone.next().await;
    applied.apply(&caught_up["payload"]["data"]["viewerChanged"]);
    assert_eq!(applied.jobs.len(), 0, "{caught_up}");
    rename(&app, &user, &old[0], "live").await;
    let event = phone.next().await;
    applied.apply(&event["payload"]["data"]["viewerChanged"]);
    assert_eq!(applied.jobs, [(old[0].clone(), "live".to_owned())]);
    let away = applied.cursor.clone().unwrap();
    drop(phone);

    // While the phone sleeps: 100 changes, interleaved (40 creations, 30 renames, 30
    // deletions), and other people's changes, which are none of its business.
    let mut expected_jobs = Vec::new();
    let mut expected_deleted = Vec::new();
    for i in 0..100usize {
        match i % 10 {
            0..=3 => {
                let id = create_job(&app, &user, &format!("new {i}")).await;
                expected_jobs.push((id, format!("new {i}")));
            }
            4..=6 => {
                let target = old[1 + (i / 10) * 3 + (i % 10 - 4)].clone();
                rename(&app, &user, &target, &format!("renamed {i}")).await;
                expected_jobs.push((target, format!("renamed {i}")));
            }
            _ => {
                let target = old[31 + (i / 10) * 3 + (i % 10 - 7)].clone();
                let body = app
                    .query_as(
                        &user,
                        "mutation($id: ID!) { deletePhotoJob(id: $id) }",
                        json!({ "id": target }),
                    )
                    .await;
                assert!(body.get("errors").is_none(), "{body}");
                expected_deleted.push(target);
            }
        }
        if i % 25 == 0 {
            create_job(&app, &other, "not theirs").await;
        }
    }

    // It wakes and resumes from its cursor: each change once, in the order made; then live.
    let mut phone = Client::signed_in(&app, &user).await;
    phone.subscribe("1", FOLLOW, json!({ "since": away })).await;
    let mut resumed = Applied::default();
    resumed.follow(&mut phone).await;
    assert_eq!(resumed.jobs, expected_jobs);
    assert_eq!(resumed.deleted, expected_deleted);
    rename(&app, &user, &old[0], "after").await;
    let event = phone.next().await;
    resumed.apply(&event["payload"]["data"]["viewerChanged"]);
    assert_eq!(
        resumed.jobs.last().unwrap(),
        &(old[0].clone(), "after".to_owned())
    );

    // The same from the query, and its credits (40 jobs were paid for).
    let body = app.query_as(&user, CHANGES, json!({ "since": away })).await;
    let changes = &body["data"]["viewer"]["changes"];
    let mut queried = Applied::default();
    queried.apply(changes);
    assert_eq!(queried.deleted, expected_deleted, "{body}");
    assert_eq!(
        queried.jobs.len(),
        71,
        "40 created, 30 renamed, job 0 again"
    );
    assert!(changes["credits"]["balance"].is_string(), "{body}");
    assert_eq!(changes["hasMore"], false);
}

#[tokio::test]
async fn replay_meets_the_live_stream_with_no_gap_and_no_duplicate() {
    let app = TestApp::spawn().await;
    let user = app.user("Busy").await;
    let jobs = insert_jobs(&app, &user, "round 0", 10).await;
    let start = cursor_now(&app, &user).await;
    // A writer renames every job, round after round, while the client subscribes from `start`
    // (by SQL: whoever writes, the log has it).
    let writer = {
        let mut conn = app.db().await;
        let rows: Vec<i64> = jobs
            .iter()
            .map(|id| bff::graphql::ids::parse_global_id(id).unwrap().1)
            .collect();
        tokio::spawn(async move {
            for round in 1..=8 {
                for row in &rows {
                    conn.batch_execute(&format!(
                        "UPDATE photo_jobs SET group_name = 'round {round}' WHERE id = {row}"
                    ))
                    .await
                    .unwrap();
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut client = Client::signed_in(&app, &user).await;
    client
        .subscribe("1", FOLLOW, json!({ "since": start }))
        .await;
    writer.await.unwrap();
    let mut applied = Applied::default();
    applied.follow(&mut client).await;
    // Per job: rounds only go forward, never the same one twice, and the last is the last.
    let mut seen: HashMap<String, Vec<u32>> = HashMap::new();
    for (id, group) in &applied.jobs {
        let round: u32 = group.trim_start_matches("round ").parse().unwrap();
        seen.entry(id.clone()).or_default().push(round);
    }
    assert_eq!(seen.len(), 10, "{applied:?}");
    for (id, rounds) in &seen {
        assert!(rounds.windows(2).all(|w| w[0] < w[1]), "{id}: {rounds:?}");
        assert_eq!(rounds.last(), Some(&8), "{id}: {rounds:?}");
    }
}

#[tokio::test]
async fn pages_of_changes_and_cursors_that_cannot_be_replayed() {
    let app = TestApp::spawn().await;
    let user = app.user("Heavy").await;
    let start = cursor_now(&app, &user).await;
    // 250 jobs in 250 statements: two pages, each thing once.
    let made = insert_jobs(&app, &user, "one by one", 250).await;
    let mut applied = Applied::default();
    let mut since = start.clone();
    loop {
        let body = app
            .query_as(&user, CHANGES, json!({ "since": since }))
            .await;
        let changes = &body["data"]["viewer"]["changes"];
        applied.apply(changes);
        since = changes["cursor"].as_str().unwrap().to_owned();
        if changes["hasMore"] == false {
            break;
        }
    }
    assert_eq!(applied.answers, 2);
    let ids: Vec<String> = applied.jobs.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids, made);
    // One statement changing 300: one answer, however large (a page never splits a statement).
    app.db()
        .await
        .batch_execute(&format!(
            "UPDATE photo_jobs SET group_name = 'bulk' WHERE user_id = '{}'",
            user.id
        ))
        .await
        .unwrap();
    let body = app
        .query_as(&user, CHANGES, json!({ "since": since }))
        .await;
    let changes = &body["data"]["viewer"]["changes"];
    assert_eq!(
        changes["photoJobs"].as_array().unwrap().len(),
        250,
        "{body}"
    );
    assert_eq!(changes["hasMore"], false);

    // Not a cursor: BAD_USER_INPUT. One past this viewer's changes (another's, or forged):
    // CURSOR_EXPIRED.
    let body = app
        .query_as(&user, CHANGES, json!({ "since": "nonsense" }))
        .await;
    assert_eq!(first_code(&body), "BAD_USER_INPUT", "{body}");
    let future = bff::graphql::changes_cursor(1_000_000);
    let body = app
        .query_as(&user, CHANGES, json!({ "since": future }))
        .await;
    assert_eq!(first_code(&body), "CURSOR_EXPIRED", "{body}");

    // Pruned: what was kept no longer reaches back to `start`.
    let pruned = bff::db::changes::prune(&mut app.db().await, 0)
        .await
        .unwrap();
    assert!(pruned >= 1);
    let body = app
        .query_as(&user, CHANGES, json!({ "since": start }))
        .await;
    assert_eq!(first_code(&body), "CURSOR_EXPIRED", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("read the page again"),
        "{body}"
    );
    let mut client = Client::signed_in(&app, &user).await;
    client
        .subscribe("1", FOLLOW, json!({ "since": start }))
        .await;
    let refused = client.next().await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"],
        "CURSOR_EXPIRED"
    );
    // The current cursor still works.
    let now = cursor_now(&app, &user).await;
    let body = app.query_as(&user, CHANGES, json!({ "since": now })).await;
    assert!(body.get("errors").is_none(), "{body}");

    // A job moved to another person (by SQL) is gone for the first and new for the second.
    let other = app.user("Receiver").await;
    let theirs = cursor_now(&app, &other).await;
    let moved = &made[0];
    let row = bff::graphql::ids::parse_global_id(moved).unwrap().1;
    app.db()
        .await
        .batch_execute(&format!(
            "UPDATE photo_jobs SET user_id = '{}' WHERE id = {row}",
            other.id
        ))
        .await
        .unwrap();
    let body = app.query_as(&user, CHANGES, json!({ "since": now })).await;
    assert_eq!(
        body["data"]["viewer"]["changes"]["deletedPhotoJobIds"],
        json!([moved]),
        "{body}"
    );
    let body = app
        .query_as(&other, CHANGES, json!({ "since": theirs }))
        .await;
    assert_eq!(
        body["data"]["viewer"]["changes"]["photoJobs"][0]["id"],
        moved.as_str(),
        "{body}"
    );
    // An operator's TRUNCATE: nothing before it can be replayed, for anyone.
    let before = cursor_now(&app, &other).await;
    app.db()
        .await
        .batch_execute("TRUNCATE photo_jobs CASCADE")
        .await
        .unwrap();
    for (who, since) in [(&user, &now), (&other, &before)] {
        let body = app.query_as(who, CHANGES, json!({ "since": since })).await;
        assert_eq!(first_code(&body), "CURSOR_EXPIRED", "{body}");
    }
}
