//! The photo worker's operations and service tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bff::auth::service::{ServiceClaims, issue};
use bff::db::schema::credit_ledger;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::photo_jobs::{grant, invariant_violations, new_job, race, race_with, state};
use crate::support::{TestApp, first_code};

pub(crate) const KEY: &str = "service-secret-for-tests-0123456789abcdef";
const CLAIM: &str =
    "mutation($limit: Int!) { claimPhotoJobs(limit: $limit) { id status startedAt photoCount } }";
const COMPLETE: &str = "mutation($id: ID!, $url: String!) { completePhotoJob(id: $id, downloadUrl: $url) { id status downloadUrl } }";
const FAIL: &str = "mutation($id: ID!, $reason: String!) { failPhotoJob(id: $id, reason: $reason) { id status failureReason } }";
const CANCEL: &str = "mutation($id: ID!) { cancelPhotoJob(id: $id) { id status } }";

async fn app() -> TestApp {
    TestApp::spawn_with(|env| {
        env.insert("SERVICE_JWT_SECRET", KEY.into());
        env.insert("FREE_PHOTO_ALLOWANCE", "0".into());
    })
    .await
}

pub(crate) fn service() -> Vec<(&'static str, String)> {
    vec![(
        "authorization",
        format!(
            "Bearer {}",
            issue(KEY.as_bytes(), "photo-worker", 300).unwrap()
        ),
    )]
}

/// Runs `query` with a service token, asserting HTTP 200.
pub(crate) async fn as_worker(app: &TestApp, query: &str, variables: Value) -> Value {
    let (status, body) = app.post(query, variables, &service()).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn token_with(header: Header, role: &str, exp_offset: i64, key: &str) -> String {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    let claims = ServiceClaims {
        sub: "w".into(),
        role: role.into(),
        iat: now as u64,
        exp: (now + exp_offset) as u64,
    };
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(key.as_bytes())).unwrap()
}

#[tokio::test]
async fn a_worker_claims_completes_and_fails_jobs_with_refunds() {
    let app = app().await;
    let user = app.user("Customer").await;
    grant(&app, &user, 1_000).await;
    let first = new_job(&app, &user, 2).await;
    let second = new_job(&app, &user, 4).await;
    assert_eq!(state(&app, &user).await, (2, 3, 6, 700));

    let body = as_worker(&app, CLAIM, json!({ "limit": 5 })).await;
    let claimed = body["data"]["claimPhotoJobs"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"));
    let ids: Vec<&str> = claimed.iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [first.as_str(), second.as_str()], "oldest first");
    assert!(
        claimed
            .iter()
            .all(|j| j["status"] == "PROCESSING" && j["startedAt"].is_string())
    );
    let again = as_worker(&app, CLAIM, json!({ "limit": 5 })).await;
    assert_eq!(again["data"]["claimPhotoJobs"], json!([]));

    for url in [
        "http://files.example.com/a.zip",
        "https://",
        "ftp://x",
        "https:// spaced",
    ] {
        let body = as_worker(&app, COMPLETE, json!({ "id": first, "url": url })).await;
        assert_eq!(first_code(&body), "BAD_USER_INPUT", "{url}");
    }
    let done = as_worker(
        &app,
        COMPLETE,
        json!({ "id": first, "url": "https://files.example.com/a.zip" }),
    )
    .await;
    assert_eq!(
        done["data"]["completePhotoJob"]["status"], "COMPLETED",
        "{done}"
    );
    let twice = as_worker(
        &app,
        COMPLETE,
        json!({ "id": first, "url": "https://files.example.com/b.zip" }),
    )
    .await;
    assert_eq!(first_code(&twice), "CONFLICT");
    let fail_done = as_worker(&app, FAIL, json!({ "id": first, "reason": "late" })).await;
    assert_eq!(first_code(&fail_done), "CONFLICT");

    let failed = as_worker(
        &app,
        FAIL,
        json!({ "id": second, "reason": "Corrupt upload" }),
    )
    .await;
    assert_eq!(
        failed["data"]["failPhotoJob"]["failureReason"], "Corrupt upload",
        "{failed}"
    );
    // The failed job's 2.00 came back, and its 4 photos of usage.
    assert_eq!(state(&app, &user).await, (2, 4, 2, 900));
    let again = as_worker(&app, FAIL, json!({ "id": second, "reason": "again" })).await;
    assert_eq!(first_code(&again), "CONFLICT");
    assert_eq!(state(&app, &user).await, (2, 4, 2, 900));

    let seen = app
        .query_as(
            &user,
            "query($id: ID!) { viewer { photoJob(id: $id) { status downloadUrl } } }",
            json!({ "id": first }),
        )
        .await;
    assert_eq!(
        seen["data"]["viewer"]["photoJob"],
        json!({ "status": "COMPLETED", "downloadUrl": "https://files.example.com/a.zip" })
    );
    let unknown = bff::graphql::ids::global_id(bff::graphql::ids::Kind::PhotoJob, 999_999).0;
    assert_eq!(
        first_code(&as_worker(&app, FAIL, json!({ "id": unknown, "reason": "x" })).await),
        "NOT_FOUND"
    );
    assert_eq!(
        first_code(&as_worker(&app, CLAIM, json!({ "limit": 0 })).await),
        "BAD_USER_INPUT"
    );
    assert_eq!(invariant_violations(&mut app.db().await).await, 0);
}

#[tokio::test]
async fn only_valid_service_tokens_reach_worker_operations() {
    let app = app().await;
    let user = app.user("Viewer").await;
    let bearer = |t: String| vec![("authorization", format!("Bearer {t}"))];
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(
        json!({ "sub": "w", "role": "service", "iat": 1, "exp": 9_999_999_999u64 }).to_string(),
    );
    let cases = [
        ("no credential", vec![]),
        (
            "expired",
            bearer(token_with(
                Header::new(Algorithm::HS256),
                "service",
                -120,
                KEY,
            )),
        ),
        (
            "wrong secret",
            bearer(token_with(
                Header::new(Algorithm::HS256),
                "service",
                300,
                "another-secret-another-secret-0123",
            )),
        ),
        ("alg none", bearer(format!("{none_header}.{claims}.c2ln"))),
        (
            "alg none, unsigned",
            bearer(format!("{none_header}.{claims}.")),
        ),
        (
            "HS512 with the same key",
            bearer(token_with(
                Header::new(Algorithm::HS512),
                "service",
                300,
                KEY,
            )),
        ),
        (
            "not the service role",
            bearer(token_with(Header::new(Algorithm::HS256), "user", 300, KEY)),
        ),
    ];
    for (what, headers) in cases {
        let (_, body) = app.post(CLAIM, json!({ "limit": 1 }), &headers).await;
        assert_eq!(first_code(&body), "UNAUTHENTICATED", "{what}: {body}");
    }
    let (_, body) = app
        .post(CLAIM, json!({ "limit": 1 }), &[("cookie", user.cookie())])
        .await;
    assert_eq!(
        first_code(&body),
        "FORBIDDEN",
        "a viewer cookie on a worker operation"
    );
    let signed = bff::auth::signed_token(&user.token, crate::support::SECRET);
    let (_, body) = app
        .post(CLAIM, json!({ "limit": 1 }), &bearer(signed))
        .await;
    assert_eq!(
        first_code(&body),
        "FORBIDDEN",
        "a viewer bearer on a worker operation"
    );

    // A service token is never a viewer, not even with a viewer's cookie beside it.
    let mut both = service();
    both.push(("cookie", user.cookie()));
    assert_eq!(app.viewer_id(&both).await, None);
    let (_, body) = app.post("mutation { createPhotoJob(input: {prompt: \"x\", photoCount: 1}) { photoJob { id } } }", json!({}), &service()).await;
    assert_eq!(first_code(&body), "FORBIDDEN");
    let (_, body) = app
        .post("{ node(id: \"x\") { id } }", json!({}), &service())
        .await;
    assert_eq!(first_code(&body), "FORBIDDEN");
}

#[tokio::test]
async fn worker_operations_are_refused_when_no_service_key_is_configured() {
    let app = TestApp::spawn().await;
    let (_, body) = app.post(CLAIM, json!({ "limit": 1 }), &service()).await;
    assert_eq!(first_code(&body), "UNAUTHENTICATED");
}

#[tokio::test]
async fn concurrent_workers_never_claim_the_same_job() {
    let app = app().await;
    let user = app.user("Busy").await;
    grant(&app, &user, 10_000).await;
    for _ in 0..20 {
        new_job(&app, &user, 1).await;
    }
    let bodies = race_with(
        &app,
        service().remove(0),
        CLAIM,
        8,
        |_| json!({ "limit": 4 }),
    )
    .await;
    let mut ids = Vec::new();
    for body in bodies {
        for job in body["data"]["claimPhotoJobs"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
        {
            ids.push(job["id"].as_str().unwrap().to_owned());
        }
    }
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a job was claimed twice");
    assert_eq!(ids.len(), 20, "8 claims of up to 4 jobs take all 20");
}

#[tokio::test]
async fn a_cancel_racing_a_claim_and_fail_refunds_the_job_once() {
    let app = app().await;
    let user = app.user("Racer").await;
    grant(&app, &user, 10_000).await;
    for round in 0..8 {
        let id = new_job(&app, &user, 2).await;
        let cookie = [("cookie", user.cookie())];
        let (cancel, worker) =
            tokio::join!(app.post(CANCEL, json!({ "id": id }), &cookie), async {
                as_worker(&app, CLAIM, json!({ "limit": 1 })).await;
                as_worker(&app, FAIL, json!({ "id": id, "reason": "race" })).await
            });
        let canceled = cancel.1["data"]["cancelPhotoJob"].is_object();
        let failed = worker["data"]["failPhotoJob"].is_object();
        assert!(
            canceled ^ failed,
            "round {round}: exactly one must win: {} / {worker}",
            cancel.1
        );
        let row = bff::graphql::ids::row_id(&id, bff::graphql::ids::Kind::PhotoJob).unwrap();
        let mut conn = app.db().await;
        let refunds: i64 = credit_ledger::table
            .filter(credit_ledger::photo_job_id.eq(row))
            .filter(credit_ledger::kind.eq("JOB_REFUND"))
            .count()
            .get_result(&mut conn)
            .await
            .unwrap();
        assert_eq!(refunds, 1, "round {round}");
    }
    // Every job was refunded: the balance is whole again.
    assert_eq!(state(&app, &user).await.3, 10_000);
    let bodies = race(
        &app,
        &user,
        FAIL,
        1,
        |_| json!({ "id": "x", "reason": "y" }),
    )
    .await;
    assert_eq!(first_code(&bodies[0]), "FORBIDDEN");
    assert_eq!(invariant_violations(&mut app.db().await).await, 0);
}

#[tokio::test]
async fn bff_service_token_prints_a_token_the_server_accepts() {
    let app = app().await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_bff"))
        .args(["service-token", "--ttl", "10m", "--subject", "worker-7"])
        .env_clear()
        .env("SERVICE_JWT_SECRET", KEY)
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let (_, body) = app
        .post(
            CLAIM,
            json!({ "limit": 1 }),
            &[("authorization", format!("Bearer {token}"))],
        )
        .await;
    assert_eq!(body["data"]["claimPhotoJobs"], json!([]), "{body}");
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_bff"))
        .args(["service-token", "--ttl", "90d"])
        .env_clear()
        .env("SERVICE_JWT_SECRET", KEY)
        .output()
        .unwrap();
    assert!(!refused.status.success());
}

const HEARTBEAT: &str =
    "mutation($id: ID!) { heartbeatPhotoJob(id: $id) { id status leaseExpiresAt attempts } }";

/// The job's (status, attempts, refunds in the ledger).
async fn lease_state(app: &TestApp, id: &str) -> (String, i32, i64) {
    use bff::db::schema::photo_jobs;
    let row = bff::graphql::ids::parse_global_id(id).unwrap().1;
    let mut conn = app.db().await;
    let (status, attempts): (String, i32) = photo_jobs::table
        .find(row)
        .select((photo_jobs::status, photo_jobs::attempts))
        .first(&mut conn)
        .await
        .unwrap();
    let refunds = credit_ledger::table
        .filter(credit_ledger::photo_job_id.eq(row))
        .filter(credit_ledger::kind.eq("JOB_REFUND"))
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    (status, attempts, refunds)
}

#[tokio::test]
async fn an_expired_lease_returns_the_job_and_the_last_attempt_fails_it_with_one_refund() {
    use crate::live::{Client, JOBS};
    let lease = |env: &mut std::collections::HashMap<&'static str, String>| {
        env.insert("SERVICE_JWT_SECRET", KEY.into());
        env.insert("FREE_PHOTO_ALLOWANCE", "0".into());
        env.insert("BFF_WORKER_LEASE_MS", "1000".into());
        env.insert("BFF_WORKER_MAX_ATTEMPTS", "2".into());
    };
    let app = TestApp::spawn_with(lease).await;
    // A second process on the same database sweeps too: the refund still happens once.
    let _other = TestApp::spawn_on(app.database_url.clone(), lease).await;
    let user = app.user("Patient").await;
    grant(&app, &user, 1_000).await;
    let job = new_job(&app, &user, 2).await;
    assert_eq!(state(&app, &user).await.3, 900);
    let mut watcher = Client::signed_in(&app, &user).await;
    watcher.subscribed("job", JOBS, json!({ "id": job })).await;
    let mut seen = Vec::new();

    // Claimed, leased; a heartbeat extends the lease.
    let body = as_worker(
        &app,
        "mutation { claimPhotoJobs(limit: 1) { id leaseExpiresAt attempts } }",
        json!({}),
    )
    .await;
    let claimed = &body["data"]["claimPhotoJobs"][0];
    assert_eq!(claimed["attempts"], 1, "{body}");
    let first_lease = claimed["leaseExpiresAt"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let beat = as_worker(&app, HEARTBEAT, json!({ "id": job })).await;
    let extended = beat["data"]["heartbeatPhotoJob"]["leaseExpiresAt"]
        .as_str()
        .unwrap_or_else(|| panic!("{beat}"));
    assert!(
        extended > first_lease.as_str(),
        "{extended} > {first_lease}"
    );

    // The worker vanishes: the lease runs out and the job is PENDING again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while lease_state(&app, &job).await.0 != "PENDING" {
        assert!(
            std::time::Instant::now() < deadline,
            "the job went back to PENDING"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let late = as_worker(&app, HEARTBEAT, json!({ "id": job })).await;
    assert_eq!(first_code(&late), "CONFLICT", "{late}");

    // Its second and last claim expires too: FAILED, refunded exactly once.
    let body = as_worker(
        &app,
        "mutation { claimPhotoJobs(limit: 1) { id attempts } }",
        json!({}),
    )
    .await;
    assert_eq!(body["data"]["claimPhotoJobs"][0]["attempts"], 2, "{body}");
    while lease_state(&app, &job).await.0 != "FAILED" {
        assert!(std::time::Instant::now() < deadline, "the job failed");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(lease_state(&app, &job).await, ("FAILED".to_owned(), 2, 1));
    assert_eq!(state(&app, &user).await.3, 1_000, "refunded");
    assert_eq!(invariant_violations(&mut app.db().await).await, 0);
    let again = as_worker(
        &app,
        "mutation { claimPhotoJobs(limit: 1) { id } }",
        json!({}),
    )
    .await;
    assert_eq!(again["data"]["claimPhotoJobs"], json!([]));

    // The subscriber saw every transition, in order.
    while let Ok(event) = watcher.next_within(std::time::Duration::from_secs(2)).await {
        let status = event["payload"]["data"]["photoJobUpdated"]["status"]
            .as_str()
            .unwrap()
            .to_owned();
        if seen.last() != Some(&status) {
            seen.push(status);
        }
    }
    assert_eq!(seen, ["PROCESSING", "PENDING", "PROCESSING", "FAILED"]);
}
