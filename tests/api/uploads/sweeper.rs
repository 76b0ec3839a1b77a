//! Deleting objects: deleted jobs, expired uploads and deleted people, across crashes.

use super::*;

#[tokio::test]
async fn deleting_a_job_deletes_its_objects_even_across_crashes_of_bff_and_the_store() {
    let mut store = Store::start().await;
    let database_url = crate::support::fresh_database().await;
    let (first, app) = serve_process(&database_url, &store).await;
    let user = app.user("Leaving").await;
    grant(&app, &user, 1_000).await;
    let ids = uploaded(
        &app,
        &user,
        &[("a.jpg", "image/jpeg", JPEG), ("b.png", "image/png", PNG)],
    )
    .await;
    let body = create_job(&app, &user, &ids).await;
    let job_id = body["data"]["createPhotoJob"]["photoJob"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The uploads and the copies the job checked and uses.
    assert_eq!(store.objects().len(), 4);

    // The store is down when the job is deleted: the deletion is queued, tried, and waits.
    store.stop();
    let deleted = app
        .query_as(
            &user,
            "mutation($id: ID!) { deletePhotoJob(id: $id) }",
            json!({ "id": job_id }),
        )
        .await;
    assert!(deleted.get("errors").is_none(), "{deleted}");
    // The copies, and the uploads the job replaced by them (due when their URLs expire).
    assert_eq!(deletions_due(&app).await, 4);
    eventually("a failed attempt", async || {
        use bff::db::schema::storage_deletions;
        let errors: Vec<Option<String>> = storage_deletions::table
            .select(storage_deletions::last_error)
            .load(&mut app.db().await)
            .await
            .unwrap();
        errors.len() == 4 && errors.iter().all(Option::is_some)
    })
    .await;
    assert_eq!(store.objects().len(), 4);

    // bff crashes; the store comes back; a new bff process finishes the work.
    crate::cli::signal_and_wait(first, "-KILL").await;
    store.restart().await;
    deletions_due(&app).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(store.objects().len(), 4, "nobody deletes while no bff runs");
    let (second, app) = serve_process(&database_url, &store).await;
    deletions_due(&app).await;
    eventually("the objects' deletion", async || store.objects().is_empty()).await;
    eventually("the queue's draining", async || {
        deletions_due(&app).await == 0
    })
    .await;
    let usage = app
        .query_as(&user, "{ viewer { usage { used } } }", json!({}))
        .await;
    assert_eq!(usage["data"]["viewer"]["usage"][1]["used"], 0);
    crate::cli::signal_and_wait(second, "-TERM").await;
}

#[tokio::test]
async fn uploads_no_job_claims_expire_with_their_objects() {
    let (app, store) = app_with_store().await;
    let user = app.user("Undecided").await;
    let ids = uploaded(&app, &user, &[("a.jpg", "image/jpeg", JPEG)]).await;
    let young = uploaded(&app, &user, &[("b.jpg", "image/jpeg", JPEG)]).await;
    assert_eq!(store.objects().len(), 2);
    {
        use bff::db::schema::photo_uploads;
        let mut conn = app.db().await;
        diesel::update(photo_uploads::table.filter(photo_uploads::id.eq(row(&ids[0]))))
            .set(photo_uploads::created_at.eq(chrono::Utc::now() - chrono::Duration::hours(25)))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    eventually("the expiry", async || upload_rows(&app).await == 1).await;
    deletions_due(&app).await;
    eventually("the object's deletion", async || store.objects().len() == 1).await;
    let job = create_job(&app, &user, &ids).await;
    assert_eq!(first_code(&job), "NOT_FOUND", "{job}");
    assert_eq!(young.len(), 1);
}

#[tokio::test]
async fn a_deleted_user_takes_their_objects_and_nobody_elses() {
    let (app, store) = app_with_store().await;
    let alice = app.user("Alice").await;
    let bob = app.user("Bob").await;
    grant(&app, &alice, 1_000).await;
    let ids = uploaded(&app, &alice, &[("a.jpg", "image/jpeg", JPEG)]).await;
    let body = create_job(&app, &alice, &ids).await;
    assert!(body.get("errors").is_none(), "{body}");
    uploaded(&app, &alice, &[("waiting.png", "image/png", PNG)]).await;
    uploaded(&app, &bob, &[("b.png", "image/png", PNG)]).await;
    // Alice's job's photo is the copy it checked; the upload it replaced waits for its URL.
    assert_eq!(store.objects().len(), 4);
    // Better Auth (or an operator) deletes Alice: the cascade queues her objects.
    {
        use bff::db::better_auth::users;
        diesel::delete(users::table.filter(users::id.eq(&alice.id)))
            .execute(&mut app.db().await)
            .await
            .unwrap();
    }
    assert_eq!(deletions_due(&app).await, 3);
    eventually("Alice's objects' deletion", async || {
        store.objects().len() == 1
    })
    .await;
    let left = store.objects();
    assert!(
        left[0].starts_with(&format!("app/users/{}/", bob.id)),
        "{left:?}"
    );
    assert_eq!(upload_rows(&app).await, 1);
}
