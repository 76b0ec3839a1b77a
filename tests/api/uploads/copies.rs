//! The checked copy `createPhotoJob` makes and the worker reads, and result uploads.

use super::*;

#[tokio::test]
async fn a_result_is_checked_and_a_second_result_upload_replaces_the_first() {
    let (app, store) = app_with_store().await;
    let user = app.user("Worked").await;
    grant(&app, &user, 1_000).await;
    let ids = uploaded(&app, &user, &[("a.jpg", "image/jpeg", JPEG)]).await;
    assert!(create_job(&app, &user, &ids).await.get("errors").is_none());
    let claimed = as_worker(&app, "mutation { claimPhotoJobs { id } }", json!({})).await;
    let job_id = claimed["data"]["claimPhotoJobs"][0]["id"].clone();
    let result = "mutation($id: ID!, $type: String!, $size: Int!) { createPhotoJobResultUpload(id: $id, input: { contentType: $type, byteSize: $size }) { url headers { name value } } }";
    let ask = |kind: &'static str, size: usize| json!({ "id": job_id, "type": kind, "size": size });
    // Bad input names its field and creates nothing.
    for (variables, field) in [
        (ask("text/plain", 10), "contentType"),
        (ask("application/zip", 0), "byteSize"),
        (ask("application/zip", 1_073_741_825), "byteSize"),
    ] {
        let body = as_worker(&app, result, variables).await;
        assert_eq!(first_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    assert_eq!(upload_rows(&app).await, 1, "only the photo");
    // A ZIP's length of other bytes: the store takes it, completePhotoJob does not.
    let first = as_worker(&app, result, ask("application/zip", ZIP.len())).await;
    let upload = &first["data"]["createPhotoJobResultUpload"];
    assert_eq!(put(upload, &vec![b'x'; ZIP.len()]).await, 200);
    let complete = "mutation($id: ID!) { completePhotoJob(id: $id) { status } }";
    let refused = as_worker(&app, complete, json!({ "id": job_id })).await;
    assert_eq!(first_code(&refused), "BAD_USER_INPUT", "{refused}");
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("is not application/zip")
    );
    // Asking again replaces the first result, whose object is then deleted.
    let second = as_worker(&app, result, ask("application/zip", ZIP.len())).await;
    assert_eq!(
        put(&second["data"]["createPhotoJobResultUpload"], ZIP).await,
        200
    );
    // The upload, the job's copy of it, and two results.
    assert_eq!(store.objects().len(), 4);
    // The first result, and the upload the copy replaced.
    assert_eq!(deletions_due(&app).await, 2);
    eventually("the first result's deletion", async || {
        store.objects().len() == 2
    })
    .await;
    let done = as_worker(&app, complete, json!({ "id": job_id })).await;
    assert_eq!(
        done["data"]["completePhotoJob"]["status"], "COMPLETED",
        "{done}"
    );
}

#[tokio::test]
async fn without_storage_upload_ids_and_result_uploads_say_so() {
    let app = TestApp::spawn_with(|env| {
        env.insert("SERVICE_JWT_SECRET", KEY.into());
    })
    .await;
    let user = app.user("NoStore").await;
    let id = bff::graphql::ids::global_id(bff::graphql::ids::Kind::PhotoUpload, 1);
    let body = create_job(&app, &user, &[id.0]).await;
    assert_eq!(first_code(&body), "SERVICE_UNAVAILABLE", "{body}");
    let job = bff::graphql::ids::global_id(bff::graphql::ids::Kind::PhotoJob, 1);
    let result = as_worker(
        &app,
        "mutation($id: ID!) { createPhotoJobResultUpload(id: $id, input: { contentType: \"application/zip\", byteSize: 10 }) { url } }",
        json!({ "id": job.0 }),
    )
    .await;
    assert_eq!(first_code(&result), "SERVICE_UNAVAILABLE", "{result}");
    let complete = as_worker(
        &app,
        "mutation($id: ID!) { completePhotoJob(id: $id) { id } }",
        json!({ "id": job.0 }),
    )
    .await;
    assert_eq!(first_code(&complete), "BAD_USER_INPUT", "{complete}");
    assert_eq!(complete["errors"][0]["extensions"]["field"], "downloadUrl");
}

#[tokio::test]
async fn the_worker_reads_the_bytes_create_photo_job_checked() {
    let (app, store) = app_with_store().await;
    let user = app.user("Swapper").await;
    grant(&app, &user, 1_000).await;
    let upload = uploads(&app, &user, vec![file("a.jpg", "image/jpeg", JPEG)]).await;
    assert_eq!(put(&upload[0], JPEG).await, 200);
    let ids = vec![upload[0]["id"].as_str().unwrap().to_owned()];
    let created = create_job(&app, &user, &ids).await;
    assert!(created.get("errors").is_none(), "{created}");
    // The finding: the upload URL still works for minutes after the check, so the owner could
    // swap the checked photo for other bytes of the same type and length.
    let mut other = JPEG.to_vec();
    let tail = other.len() - 64;
    other[tail..].fill(0x55);
    assert_eq!(
        put(&upload[0], &other).await,
        200,
        "the store takes the PUT"
    );
    // The job, its owner and its worker see the bytes that were checked.
    let photo = &created["data"]["createPhotoJob"]["photoJob"]["photos"][0];
    assert_eq!(
        get(photo["url"].as_str().unwrap()).await,
        (200, JPEG.to_vec())
    );
    let claimed = as_worker(
        &app,
        "mutation { claimPhotoJobs(limit: 5) { photos { url } } }",
        json!({}),
    )
    .await;
    let url = claimed["data"]["claimPhotoJobs"][0]["photos"][0]["url"]
        .as_str()
        .unwrap();
    assert_eq!(get(url).await, (200, JPEG.to_vec()));
    // The job's object is a copy under photos/, which no upload URL names; the object as
    // uploaded is queued for deletion once its URL has expired, the copy is not.
    let keys: Vec<String> = store.objects();
    let prefix = format!("app/users/{}/", user.id);
    assert!(
        keys.iter()
            .any(|k| k.starts_with(&format!("{prefix}photos/"))),
        "{keys:?}"
    );
    #[derive(diesel::QueryableByName)]
    struct Queued {
        #[diesel(sql_type = diesel::sql_types::Text)]
        object_key: String,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        after_the_url: bool,
    }
    let queued: Vec<Queued> = diesel::sql_query(
        "SELECT d.object_key, d.not_before > now() + interval '5 minutes' AS after_the_url \
         FROM storage_deletions d",
    )
    .load(&mut app.db().await)
    .await
    .unwrap();
    assert_eq!(queued.len(), 1, "only the object as uploaded");
    assert!(queued[0].object_key.contains("/uploads/") && queued[0].after_the_url);
}

#[tokio::test]
async fn a_job_that_fails_leaves_no_copy_behind() {
    let store = Store::start().await;
    let app = TestApp::spawn_with(|env| {
        store.test_env(env);
        env.insert("FREE_PHOTO_ALLOWANCE", "0".into());
    })
    .await;
    let user = app.user("Broke").await;
    // No credits: the job is refused before any photo is copied.
    let ids = uploaded(&app, &user, &[("a.jpg", "image/jpeg", JPEG)]).await;
    let refused = create_job(&app, &user, &ids).await;
    assert_eq!(first_code(&refused), "INSUFFICIENT_CREDITS", "{refused}");
    assert_eq!(store.objects().len(), 1, "{:?}", store.objects());
    // Paid for, a photo that is not what it says: refused by the check of its copy.
    grant(&app, &user, 1_000).await;
    let wrong = uploaded(&app, &user, &[("b.png", "image/png", JPEG)]).await;
    let refused = create_job(&app, &user, &wrong).await;
    assert_eq!(first_code(&refused), "BAD_USER_INPUT", "{refused}");
    // The copies made for the refused jobs are due at once, and the sweeper takes them; the
    // uploads themselves stay for a job to come.
    let copies = || store.copies();
    eventually("the unused copies are deleted", async || copies() == 0).await;
    assert_eq!(store.objects().len(), 2, "{:?}", store.objects());
    // The first upload makes a job now.
    let made = create_job(&app, &user, &ids).await;
    assert!(made.get("errors").is_none(), "{made}");
    assert_eq!(copies(), 1);
}

#[tokio::test]
async fn clients_that_give_up_on_create_photo_job_leave_one_copy_per_upload_at_most() {
    let (app, store) = app_with_store().await;
    let user = app.user("Quitter").await;
    grant(&app, &user, 100_000).await;
    // Five photos of 5 MB (a JPEG's first bytes, then zeros): copies take a while.
    let mut big = JPEG[..64].to_vec();
    big.resize(5 * 1024 * 1024, 0);
    let photos: Vec<(String, &str, &[u8])> = (0..5)
        .map(|i| (format!("p{i}.jpg"), "image/jpeg", big.as_slice()))
        .collect();
    let photos: Vec<(&str, &str, &[u8])> = photos
        .iter()
        .map(|(n, t, b)| (n.as_str(), *t, *b))
        .collect();
    let ids = uploaded(&app, &user, &photos).await;
    // The finding: each attempt copied every photo and left the copies for an hour, outside
    // any quota. Here clients give up 2 to 29 ms into the request, ten times.
    for i in 0..10u64 {
        let input = json!({ "query": CREATE, "variables": { "input": { "prompt": "p", "uploadIds": ids } } });
        let request = app
            .client
            .post(app.url("/graphql"))
            .header("cookie", user.cookie())
            .json(&input)
            .timeout(Duration::from_millis(2 + 3 * i))
            .send();
        let _ = request.await;
    }
    let copies = || store.copies();
    // Each upload holds one copy at most; the ones replaced are deleted.
    deletions_due(&app).await;
    eventually("the replaced copies' deletion", async || copies() <= 5).await;
    #[derive(diesel::QueryableByName)]
    struct Held {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        held: i64,
    }
    let held: Held = diesel::sql_query(
        "SELECT count(*) AS held FROM photo_uploads WHERE checked_key IS NOT NULL",
    )
    .get_result(&mut app.db().await)
    .await
    .unwrap();
    assert!(held.held <= 5, "{}", held.held);
    println!(
        "ten abandoned createPhotoJob of five 5 MB photos: {} copies left",
        copies()
    );
    // A job that completes (one of those attempts may have) uses its own copies and leaves no
    // other copy behind.
    if state(&app, &user).await.0 == 0 {
        let made = create_job(&app, &user, &ids).await;
        assert!(made.get("errors").is_none(), "{made}");
    }
    deletions_due(&app).await;
    eventually("only the job's copies remain", async || copies() == 5).await;
}
