//! Updating, cancelling and deleting jobs.

use super::*;

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
