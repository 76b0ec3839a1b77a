//! `createPhotoJob` made of uploads: only the viewer's uploaded images, bad files named,
//! nothing charged when storage fails, and a page of jobs with its photos.

use super::*;

#[tokio::test]
async fn bad_files_are_refused_naming_the_field_and_create_nothing() {
    let (app, _store) = app_with_store().await;
    let user = app.user("Careless").await;
    let cases = [
        (
            vec![file("a.gif", "image/gif", PNG)],
            "files[0].contentType",
        ),
        (
            vec![
                file("a.png", "image/png", PNG),
                json!({ "fileName": "b.png", "contentType": "image/png", "byteSize": 26_214_401 }),
            ],
            "files[1].byteSize",
        ),
        (
            vec![json!({ "fileName": "a.png", "contentType": "image/png", "byteSize": 0 })],
            "files[0].byteSize",
        ),
        (vec![file("", "image/png", PNG)], "files[0].fileName"),
        (
            vec![file("a\u{7}.png", "image/png", PNG)],
            "files[0].fileName",
        ),
        (
            vec![file(&"x".repeat(256), "image/png", PNG)],
            "files[0].fileName",
        ),
        (vec![], "files"),
        // The FREE plan allows 10 photos per job.
        (
            (0..11)
                .map(|i| file(&format!("{i}.png"), "image/png", PNG))
                .collect(),
            "files",
        ),
    ];
    for (files, field) in cases {
        let body = app
            .query_as(&user, UPLOADS, json!({ "files": files }))
            .await;
        assert_eq!(first_code(&body), "BAD_USER_INPUT", "{field}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    assert_eq!(upload_rows(&app).await, 0);
}

#[tokio::test]
async fn jobs_are_made_only_of_the_viewers_uploaded_images() {
    let (app, _store) = app_with_store().await;
    let alice = app.user("Alice").await;
    let bob = app.user("Bob").await;
    grant(&app, &alice, 10_000).await;
    let create = |ids: Vec<String>| json!({ "input": { "prompt": "p", "uploadIds": ids } });

    // Bob's upload is NOT_FOUND for Alice, exactly like an id that does not exist.
    let bobs = uploaded(&app, &bob, &[("b.jpg", "image/jpeg", JPEG)]).await;
    let mine = uploaded(&app, &alice, &[("a.jpg", "image/jpeg", JPEG)]).await;
    let foreign = app
        .query_as(
            &alice,
            CREATE,
            create(vec![mine[0].clone(), bobs[0].clone()]),
        )
        .await;
    assert_eq!(first_code(&foreign), "NOT_FOUND", "{foreign}");
    assert_eq!(foreign["errors"][0]["extensions"]["field"], "uploadIds[1]");
    let made_up = bff::graphql::ids::global_id(bff::graphql::ids::Kind::PhotoUpload, 999_999);
    let unknown = app
        .query_as(&alice, CREATE, create(vec![made_up.0.clone()]))
        .await;
    assert_eq!(first_code(&unknown), "NOT_FOUND", "{unknown}");
    assert_eq!(
        foreign["errors"][0]["message"]
            .as_str()
            .unwrap()
            .replace("[1]", "[0]"),
        unknown["errors"][0]["message"]
    );

    // Never uploaded; uploaded as something else; listed twice; a count that disagrees.
    let pending = uploads(&app, &alice, vec![file("c.jpg", "image/jpeg", JPEG)]).await;
    let never = app
        .query_as(
            &alice,
            CREATE,
            create(vec![pending[0]["id"].as_str().unwrap().into()]),
        )
        .await;
    assert_eq!(first_code(&never), "BAD_USER_INPUT", "{never}");
    assert!(
        never["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("never uploaded")
    );
    let disguised = uploads(&app, &alice, vec![file("d.jpg", "image/jpeg", PNG)]).await;
    assert_eq!(put(&disguised[0], PNG).await, 200);
    let not_jpeg = app
        .query_as(
            &alice,
            CREATE,
            create(vec![
                mine[0].clone(),
                disguised[0]["id"].as_str().unwrap().into(),
            ]),
        )
        .await;
    assert_eq!(first_code(&not_jpeg), "BAD_USER_INPUT", "{not_jpeg}");
    assert_eq!(not_jpeg["errors"][0]["extensions"]["field"], "uploadIds[1]");
    let twice = app
        .query_as(
            &alice,
            CREATE,
            create(vec![mine[0].clone(), mine[0].clone()]),
        )
        .await;
    assert_eq!(
        twice["errors"][0]["extensions"]["field"], "uploadIds[1]",
        "{twice}"
    );
    let disagree = app
        .query_as(
            &alice,
            CREATE,
            json!({ "input": { "prompt": "p", "uploadIds": mine, "photoCount": 2 } }),
        )
        .await;
    assert_eq!(
        disagree["errors"][0]["extensions"]["field"], "photoCount",
        "{disagree}"
    );
    let bare = app
        .query_as(
            &alice,
            CREATE,
            json!({ "input": { "prompt": "p", "photoCount": 2 } }),
        )
        .await;
    assert_eq!(
        bare["errors"][0]["extensions"]["field"], "uploadIds",
        "{bare}"
    );
    assert_eq!(
        state(&app, &alice).await,
        (0, 1, 0, 10_000),
        "nothing was charged"
    );

    // Bob cannot see Alice's photos, even through her job's id.
    let ok = app.query_as(&alice, CREATE, create(mine.clone())).await;
    let job_id = ok["data"]["createPhotoJob"]["photoJob"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let peek = app.query_as(&bob, JOB, json!({ "id": job_id })).await;
    assert_eq!(peek["data"]["viewer"]["photoJob"], Value::Null);
    let node = app
        .query_as(
            &bob,
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": mine[0] }),
        )
        .await;
    assert_eq!(node["data"]["node"], Value::Null);
    // An upload belongs to one job only.
    let again = app.query_as(&alice, CREATE, create(mine.clone())).await;
    assert_eq!(first_code(&again), "BAD_USER_INPUT", "{again}");
    // The same idempotency key returns the same job without charging again.
    let keyed = |ids: &Vec<String>| json!({ "input": { "prompt": "k", "uploadIds": ids, "idempotencyKey": "k1" } });
    let fresh = uploaded(&app, &alice, &[("e.png", "image/png", PNG)]).await;
    let first = app.query_as(&alice, CREATE, keyed(&fresh)).await;
    let second = app.query_as(&alice, CREATE, keyed(&fresh)).await;
    assert_eq!(
        first["data"]["createPhotoJob"]["photoJob"]["id"],
        second["data"]["createPhotoJob"]["photoJob"]["id"],
        "{second}"
    );
    assert_eq!(state(&app, &alice).await.0, 2);
    assert_eq!(invariant_violations(&mut app.db().await).await, 0);
}

#[tokio::test]
async fn a_storage_outage_during_create_photo_job_charges_nothing() {
    let (app, mut store) = app_with_store().await;
    let user = app.user("Unlucky").await;
    grant(&app, &user, 1_000).await;
    let ids = uploaded(&app, &user, &[("a.jpg", "image/jpeg", JPEG)]).await;
    store.stop();
    let body = create_job(&app, &user, &ids).await;
    assert_eq!(first_code(&body), "SERVICE_UNAVAILABLE", "{body}");
    assert_eq!(state(&app, &user).await, (0, 1, 0, 1_000));
    store.restart().await;
    let body = create_job(&app, &user, &ids).await;
    assert!(body.get("errors").is_none(), "{body}");
}

#[tokio::test]
async fn without_storage_uploads_say_so_and_jobs_keep_their_photo_count() {
    let app = TestApp::spawn().await;
    let user = app.user("Classic").await;
    let body = app
        .query_as(
            &user,
            UPLOADS,
            json!({ "files": [file("a.png", "image/png", PNG)] }),
        )
        .await;
    assert_eq!(first_code(&body), "SERVICE_UNAVAILABLE", "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("BFF_STORAGE_URL"), "{message}");
    assert!(body["errors"][0]["extensions"].get("retryAfter").is_none());
    let job = app
        .query_as(&user, "mutation { createPhotoJob(input: { prompt: \"p\", photoCount: 1 }) { photoJob { photos { id } downloadUrl } } }", json!({}))
        .await;
    assert_eq!(
        job["data"]["createPhotoJob"]["photoJob"]["photos"],
        json!([]),
        "{job}"
    );
}

#[tokio::test]
async fn a_page_of_jobs_reads_all_their_photos_in_one_statement() {
    bff::metrics::install();
    let (app, _store) = app_with_store().await;
    let user = app.user("Paged").await;
    grant(&app, &user, 10_000).await;
    let page = |name: &str| {
        format!(
            "query {name} {{ viewer {{ photoJobs(first: 10) {{ nodes {{ id photos {{ fileName url }} }} }} }} }}"
        )
    };
    let ids = uploaded(&app, &user, &[("a.jpg", "image/jpeg", JPEG)]).await;
    assert!(create_job(&app, &user, &ids).await.get("errors").is_none());
    let one = app
        .query_as(&user, &page("PhotosPageOfOne"), json!({}))
        .await;
    assert_eq!(
        one["data"]["viewer"]["photoJobs"]["nodes"][0]["photos"][0]["fileName"],
        "a.jpg"
    );
    for _ in 0..3 {
        let ids = uploaded(
            &app,
            &user,
            &[("b.png", "image/png", PNG), ("c.png", "image/png", PNG)],
        )
        .await;
        assert!(create_job(&app, &user, &ids).await.get("errors").is_none());
    }
    let four = app
        .query_as(&user, &page("PhotosPageOfFour"), json!({}))
        .await;
    let nodes = four["data"]["viewer"]["photoJobs"]["nodes"]
        .as_array()
        .unwrap();
    assert_eq!(nodes.len(), 4);
    assert_eq!(nodes[0]["photos"].as_array().unwrap().len(), 2);
    assert_eq!(
        nodes[3]["photos"][0]["fileName"], "a.jpg",
        "each job its own photos"
    );
    let counted = crate::statements::statements;
    assert_eq!(
        counted(&app, "PhotosPageOfFour").await,
        counted(&app, "PhotosPageOfOne").await,
        "the photos of a page are one statement however many jobs it holds"
    );
}
