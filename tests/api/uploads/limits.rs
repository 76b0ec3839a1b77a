//! Limits on uploads: the storage limit, the plan's uploads per job, the pending limit.

use super::*;

#[tokio::test]
async fn the_storage_limit_holds_under_concurrent_uploads() {
    let (app, _store) = app_with_store().await;
    let user = app.user("Hoarder").await;
    {
        use bff::db::schema::plans;
        diesel::update(plans::table.find("FREE"))
            .set(plans::storage_bytes_limit.eq(Some(10_000i64)))
            .execute(&mut app.db().await)
            .await
            .unwrap();
    }
    let one = json!([{ "fileName": "a.jpg", "contentType": "image/jpeg", "byteSize": 3_000 }]);
    let results = futures_util::future::join_all(
        (0..8).map(|_| app.query_as(&user, UPLOADS, json!({ "files": one.clone() }))),
    )
    .await;
    let ok = results.iter().filter(|b| b.get("errors").is_none()).count();
    let refused = results
        .iter()
        .filter(|b| b.get("errors").is_some() && first_code(b) == "QUOTA_EXCEEDED")
        .count();
    assert_eq!((ok, refused), (3, 5), "{results:?}");
    assert_eq!(upload_rows(&app).await, 3);
}

#[tokio::test]
async fn more_uploads_than_the_plan_allows_per_job_are_refused_naming_upload_ids() {
    let (app, _store) = app_with_store().await;
    let user = app.user("Greedy").await;
    grant(&app, &user, 10_000).await;
    let five: Vec<(&str, &str, &[u8])> = vec![("p.png", "image/png", PNG); 5];
    let mut ids = uploaded(&app, &user, &five).await;
    ids.extend(uploaded(&app, &user, &five).await);
    ids.extend(uploaded(&app, &user, &five[..1]).await);
    let body = create_job(&app, &user, &ids).await;
    assert_eq!(first_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["field"], "uploadIds",
        "{body}"
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("at most 10 photos per job")
    );
    assert_eq!(state(&app, &user).await.0, 0, "no job");
}

#[tokio::test]
async fn two_thousand_one_byte_uploads_stop_at_the_pending_limit() {
    // The rate limit is off here: the finding is that only it stood between a person and
    // ~700,000 pending uploads a day; the pending limit must hold on its own (the rate limit
    // has its tests in abuse.rs).
    let store = Store::start().await;
    let app = TestApp::spawn_with(|env| {
        store.test_env(env);
        env.insert("BFF_RATE_LIMIT_PER_SECOND", "0".into());
    })
    .await;
    let user = app.user("Flooder").await;
    let one = json!([{ "fileName": "a.jpg", "contentType": "image/jpeg", "byteSize": 1 }]);
    let results: Vec<Value> =
        futures_util::StreamExt::collect(futures_util::StreamExt::buffer_unordered(
            futures_util::stream::iter(
                (0..2_000).map(|_| app.query_as(&user, UPLOADS, json!({ "files": one.clone() }))),
            ),
            8,
        ))
        .await;
    let ok = results.iter().filter(|b| b.get("errors").is_none()).count();
    let refused: Vec<&Value> = results
        .iter()
        .filter(|b| b.get("errors").is_some())
        .collect();
    assert_eq!((ok, refused.len()), (200, 1_800));
    for body in &refused {
        assert_eq!(first_code(body), "QUOTA_EXCEEDED", "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains("BFF_UPLOAD_MAX_PENDING") && message.contains("200"),
            "{message}"
        );
    }
    assert_eq!(upload_rows(&app).await, 200);
    // Uploads that leave the queue (a job, or their expiry) make room again.
    use diesel_async::SimpleAsyncConnection;
    app.db()
        .await
        .batch_execute(&format!(
            "DELETE FROM photo_uploads WHERE id IN (SELECT id FROM photo_uploads WHERE user_id = '{}' LIMIT 5)",
            user.id
        ))
        .await
        .unwrap();
    let again = app.query_as(&user, UPLOADS, json!({ "files": one })).await;
    assert!(again.get("errors").is_none(), "{again}");
}
