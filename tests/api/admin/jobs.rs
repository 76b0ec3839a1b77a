//! Support lists jobs across people (stuck, failed) and mends them: fail and refund, refund a
//! bad result, retry a stuck one. Each once, with one audit row, the money invariants kept.

use diesel_async::SimpleAsyncConnection;
use serde_json::{Value, json};

use super::{as_staff, audit_rows, staff};
use crate::photo_jobs::{grant, invariant_violations, new_job, state};
use crate::support::{TestApp, first_code};
use crate::worker::{KEY, as_worker};

const JOBS: &str = "query($status: JobFilter) { photoJobs(status: $status) { nodes { id userId status attempts failureReason cost } } }";
const FAIL: &str =
    "mutation($input: JobActionInput!) { failPhotoJob(input: $input) { id status failureReason } }";
const REFUND: &str =
    "mutation($input: JobActionInput!) { refundPhotoJob(input: $input) { id status } }";
const RETRY: &str =
    "mutation($input: JobActionInput!) { retryPhotoJob(input: $input) { id status attempts } }";

fn ids(body: &Value) -> Vec<String> {
    body["data"]["photoJobs"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn support_lists_stuck_jobs_and_fails_refunds_or_retries_them_once() {
    let app = TestApp::spawn_with(|env| {
        env.insert("SERVICE_JWT_SECRET", KEY.into());
        env.insert("FREE_PHOTO_ALLOWANCE", "0".into());
    })
    .await;
    let support = staff(&app, "Sam", "support").await;
    let person = app.user("Owner").await;
    grant(&app, &person, 1_000).await;
    let pending = new_job(&app, &person, 2).await;
    let stuck = new_job(&app, &person, 1).await;
    let done = new_job(&app, &person, 1).await;
    let paid = state(&app, &person).await.3;
    // The worker claims the older two, completes one; the other's lease runs out.
    let claimed = as_worker(
        &app,
        "mutation { claimPhotoJobs(limit: 2) { id } }",
        json!({}),
    )
    .await;
    assert_eq!(
        claimed["data"]["claimPhotoJobs"].as_array().unwrap().len(),
        2,
        "{claimed}"
    );
    let completed = as_worker(
        &app,
        "mutation($id: ID!) { completePhotoJob(id: $id, downloadUrl: \"https://example.com/r.zip\") { status } }",
        json!({ "id": pending }),
    )
    .await;
    assert_eq!(
        completed["data"]["completePhotoJob"]["status"], "COMPLETED",
        "{completed}"
    );
    let (completed_id, pending_id) = (pending, done);
    app.db()
        .await
        .batch_execute("UPDATE photo_jobs SET lease_expires_at = now() - interval '1 minute' WHERE status = 'PROCESSING'")
        .await
        .unwrap();

    let body = as_staff(&app, &support, JOBS, json!({ "status": "STUCK" })).await;
    assert_eq!(ids(&body), [stuck.as_str()], "{body}");
    assert_eq!(body["data"]["photoJobs"]["nodes"][0]["userId"], person.id);
    let body = as_staff(&app, &support, JOBS, json!({ "status": "PENDING" })).await;
    assert_eq!(ids(&body), [pending_id.as_str()], "{body}");
    assert_eq!(
        ids(&as_staff(&app, &support, JOBS, json!({})).await).len(),
        3
    );

    let input = |id: &str| json!({ "input": { "jobId": id, "reason": "ticket 42" } });
    // Retry the stuck one: queued again, attempts afresh, its charge standing.
    let body = as_staff(&app, &support, RETRY, input(&stuck)).await;
    assert_eq!(
        body["data"]["retryPhotoJob"],
        json!({ "id": stuck, "status": "PENDING", "attempts": 0 }),
        "{body}"
    );
    // Stop the pending one: failed for the person to read, refunded.
    let body = as_staff(&app, &support, FAIL, input(&pending_id)).await;
    assert_eq!(
        body["data"]["failPhotoJob"],
        json!({ "id": pending_id, "status": "FAILED", "failureReason": "Stopped by support" }),
        "{body}"
    );
    // Refund the completed one's bad result: it stays COMPLETED.
    let body = as_staff(&app, &support, REFUND, input(&completed_id)).await;
    assert_eq!(
        body["data"]["refundPhotoJob"]["status"], "COMPLETED",
        "{body}"
    );
    assert_eq!(audit_rows(&app).await, 3);
    let (_, _, _, balance) = state(&app, &person).await;
    // Back: the failed job's 1 photo and the completed job's 2 (the stuck one stays paid).
    let per_photo = (1_000 - paid) / 4;
    assert_eq!(balance, paid + 3 * per_photo, "paid {paid}, now {balance}");

    // Each once; wrong states and unknown jobs are refused, writing nothing.
    for (what, mutation, id, code) in [
        ("fail again", FAIL, pending_id.as_str(), "CONFLICT"),
        ("refund again", REFUND, completed_id.as_str(), "CONFLICT"),
        (
            "refund a failed job",
            REFUND,
            pending_id.as_str(),
            "CONFLICT",
        ),
        ("retry a failed job", RETRY, pending_id.as_str(), "CONFLICT"),
        ("retry a pending job", RETRY, stuck.as_str(), "CONFLICT"),
        ("not an id", FAIL, "nonsense", "NOT_FOUND"),
    ] {
        let body = as_staff(&app, &support, mutation, input(id)).await;
        assert_eq!(first_code(&body), code, "{what}: {body}");
    }
    let missing = bff::graphql::ids::global_id(bff::graphql::ids::Kind::PhotoJob, 999_999).0;
    let body = as_staff(&app, &support, FAIL, input(&missing)).await;
    assert_eq!(first_code(&body), "NOT_FOUND", "{body}");
    assert_eq!(audit_rows(&app).await, 3);
    assert_eq!(state(&app, &person).await.3, balance);
    // The retried job is claimed again.
    let claimed = as_worker(
        &app,
        "mutation { claimPhotoJobs(limit: 5) { id } }",
        json!({}),
    )
    .await;
    assert_eq!(
        claimed["data"]["claimPhotoJobs"],
        json!([{ "id": stuck }]),
        "{claimed}"
    );
    let mut conn = app.db().await;
    assert_eq!(invariant_violations(&mut conn).await, 0);
}
