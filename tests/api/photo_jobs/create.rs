//! `createPhotoJob`: what it charges, the quota, invalid input, idempotency, CSRF.

use super::*;

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
