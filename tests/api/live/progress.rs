//! A job's progress: reported with its worker's heartbeat, passed on to subscribers at most
//! once per interval (the latest report wins), never backwards, and cleared when the job
//! leaves PROCESSING, whoever moves it.

use std::time::{Duration, Instant};

use diesel_async::SimpleAsyncConnection;

use super::*;
use crate::photo_jobs::{grant, new_job};
use crate::support::first_code;
use crate::worker::{KEY, as_worker};

const WATCH: &str =
    "subscription($id: ID) { photoJobUpdated(id: $id) { status progress { done total stage } } }";
const BEAT: &str = "mutation($id: ID!, $progress: PhotoJobProgressInput) {
  heartbeatPhotoJob(id: $id, progress: $progress) { progress { done total stage } } }";
const CLAIM: &str = "mutation { claimPhotoJobs(limit: 1) { id } }";

fn progress(done: i32, total: i32) -> Value {
    json!({ "done": done, "total": total, "stage": "Upscaling" })
}

#[tokio::test]
async fn progress_is_coalesced_never_goes_backwards_and_is_cleared() {
    let interval = Duration::from_millis(500);
    let app = TestApp::spawn_with(|env| {
        env.insert("SERVICE_JWT_SECRET", KEY.into());
        env.insert("FREE_PHOTO_ALLOWANCE", "0".into());
        env.insert("BFF_LIVE_PROGRESS_INTERVAL_MS", "500".into());
    })
    .await;
    let user = app.user("Watcher").await;
    grant(&app, &user, 1_000).await;
    let job = new_job(&app, &user, 4).await;
    let mut watcher = Client::signed_in(&app, &user).await;
    watcher.subscribed("1", WATCH, json!({ "id": job })).await;
    let claimed = as_worker(&app, CLAIM, json!({})).await;
    assert_eq!(claimed["data"]["claimPhotoJobs"][0]["id"], job.as_str());
    let event = watcher.next().await;
    assert_eq!(
        event["payload"]["data"]["photoJobUpdated"],
        json!({ "status": "PROCESSING", "progress": null })
    );

    // Reports that make no sense are refused, naming the field; nothing is recorded.
    let long = "x".repeat(101);
    for (report, field) in [
        (json!({ "done": 0, "total": 0 }), "progress.total"),
        (json!({ "done": 5, "total": 4 }), "progress.done"),
        (json!({ "done": -1, "total": 4 }), "progress.done"),
        (
            json!({ "done": 1, "total": 4, "stage": long }),
            "progress.stage",
        ),
    ] {
        let body = as_worker(&app, BEAT, json!({ "id": job, "progress": report })).await;
        assert_eq!(first_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }

    // 40 reports as fast as the worker can send them, read as they arrive: the subscriber
    // gets a few, each newer than the one before, an interval apart, and the last is 40 of 40.
    let reader = tokio::spawn(async move {
        let mut received = Vec::new();
        loop {
            match watcher.next_within(interval * 3).await {
                Ok(event) => {
                    let progress = &event["payload"]["data"]["photoJobUpdated"]["progress"];
                    assert_eq!(progress["total"], 40, "{event}");
                    received.push((Instant::now(), progress["done"].as_i64().unwrap()));
                }
                Err(End::Closed(0, _)) => return (watcher, received),
                Err(other) => panic!("{other:?}"),
            }
        }
    });
    let started = Instant::now();
    for done in 1..=40 {
        let body = as_worker(
            &app,
            BEAT,
            json!({ "id": job, "progress": progress(done, 40) }),
        )
        .await;
        assert_eq!(
            body["data"]["heartbeatPhotoJob"]["progress"],
            json!({ "done": done, "total": 40, "stage": "Upscaling" }),
            "{body}"
        );
        // About as often as a busy worker would, and faster than the interval.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    let (mut watcher, received) = reader.await.unwrap();
    let done: Vec<i64> = received.iter().map(|(_, d)| *d).collect();
    assert_eq!(done.last(), Some(&40), "the latest report wins: {done:?}");
    assert!(done.windows(2).all(|w| w[0] < w[1]), "{done:?}");
    let allowed = 2 + (took.as_millis() / interval.as_millis()) as usize;
    assert!(
        done.len() >= 2 && done.len() <= allowed,
        "{} updates for 40 reports in {took:?}: {done:?}",
        done.len()
    );
    for pair in received.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(gap >= interval / 2, "two updates {gap:?} apart: {done:?}");
    }

    // Backwards is ignored (fewer done, or a smaller share), and so is the same again; the
    // lease is extended all the same, and subscribers hear nothing.
    for report in [progress(39, 40), progress(40, 80), progress(40, 40)] {
        let body = as_worker(&app, BEAT, json!({ "id": job, "progress": report })).await;
        assert_eq!(
            body["data"]["heartbeatPhotoJob"]["progress"],
            json!({ "done": 40, "total": 40, "stage": "Upscaling" }),
            "{body}"
        );
    }
    // A heartbeat without progress changes nothing a viewer reads: nobody hears of it, and
    // the viewer's change log does not have it.
    let changes =
        "query($since: String) { viewer { changes(since: $since) { cursor photoJobs { id } } } }";
    let before =
        app.query_as(&user, changes, json!({})).await["data"]["viewer"]["changes"]["cursor"]
            .clone();
    let body = as_worker(&app, BEAT, json!({ "id": job })).await;
    assert_eq!(
        body["data"]["heartbeatPhotoJob"]["progress"]["done"], 40,
        "{body}"
    );
    watcher.quiet().await;
    let body = app
        .query_as(&user, changes, json!({ "since": before }))
        .await;
    assert_eq!(
        body["data"]["viewer"]["changes"]["photoJobs"],
        json!([]),
        "{body}"
    );

    // The job completes: its progress is cleared, and that goes out at once.
    let complete = "mutation($id: ID!) { completePhotoJob(id: $id, downloadUrl: \"https://results.example.com/1.zip\") { status progress { done } } }";
    let body = as_worker(&app, complete, json!({ "id": job })).await;
    assert_eq!(
        body["data"]["completePhotoJob"],
        json!({ "status": "COMPLETED", "progress": null }),
        "{body}"
    );
    let event = watcher.next_within(interval / 2).await.expect("at once");
    assert_eq!(
        event["payload"]["data"]["photoJobUpdated"],
        json!({ "status": "COMPLETED", "progress": null })
    );

    // Whoever moves a job out of PROCESSING clears it (here the lease sweep's own statement),
    // and the database refuses progress that makes no sense, whoever writes it.
    let second = new_job(&app, &user, 1).await;
    as_worker(&app, CLAIM, json!({})).await;
    as_worker(
        &app,
        BEAT,
        json!({ "id": second, "progress": progress(1, 2) }),
    )
    .await;
    let row = bff::graphql::ids::parse_global_id(&second).unwrap().1;
    let mut conn = app.db().await;
    assert!(
        conn.batch_execute(&format!(
            "UPDATE photo_jobs SET progress_done = 3 WHERE id = {row}"
        ))
        .await
        .is_err(),
        "3 of 2"
    );
    conn.batch_execute(&format!(
        "UPDATE photo_jobs SET status = 'PENDING', started_at = NULL, lease_expires_at = NULL WHERE id = {row}"
    ))
    .await
    .unwrap();
    let body = app
        .query_as(
            &user,
            "query($id: ID!) { node(id: $id) { ... on PhotoJob { status progress { done } } } }",
            json!({ "id": second }),
        )
        .await;
    assert_eq!(
        body["data"]["node"],
        json!({ "status": "PENDING", "progress": null }),
        "{body}"
    );
}
