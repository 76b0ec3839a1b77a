//! Concurrent `createPhotoJob`s against one balance, one key, one quota.

use super::*;

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
