//! Presigned URLs: photos up, results down, the store's own checks, and `bff check`'s probe.

use super::*;

#[tokio::test]
async fn photos_go_up_through_presigned_urls_and_the_worker_reads_and_writes_through_them() {
    let (app, store) = app_with_store().await;
    let user = app.user("Photographer").await;
    grant(&app, &user, 1_000).await;

    let ids = uploaded(
        &app,
        &user,
        &[
            ("a.jpg", "image/jpeg", JPEG),
            ("dir/b.png", "image/png", PNG),
        ],
    )
    .await;
    // Keys name their owner.
    let objects = store.objects();
    assert_eq!(objects.len(), 2, "{objects:?}");
    assert!(
        objects
            .iter()
            .all(|o| o.starts_with(&format!("app/users/{}/uploads/", user.id)))
    );

    let body = app
        .query_as(
            &user,
            CREATE,
            json!({ "input": { "prompt": "Brighten", "uploadIds": ids } }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let job = &body["data"]["createPhotoJob"]["photoJob"];
    assert_eq!(job["photoCount"], 2);
    assert_eq!(job["cost"], "1.00", "FREE plan, 50 cents a photo");
    let photos = job["photos"].as_array().unwrap();
    assert_eq!(photos[0]["fileName"], "a.jpg");
    assert_eq!(
        photos[1]["fileName"], "b.png",
        "a path is cut to its last part"
    );
    assert_eq!(
        get(photos[0]["url"].as_str().unwrap()).await,
        (200, JPEG.to_vec())
    );
    let job_id = job["id"].as_str().unwrap().to_owned();

    // The worker claims the job with presigned GETs of its inputs.
    let claimed = as_worker(
        &app,
        "mutation { claimPhotoJobs(limit: 5) { id photos { url contentType } } }",
        json!({}),
    )
    .await;
    let claimed = &claimed["data"]["claimPhotoJobs"][0];
    assert_eq!(claimed["id"], job_id.as_str());
    let input = get(claimed["photos"][1]["url"].as_str().unwrap()).await;
    assert_eq!(input, (200, PNG.to_vec()));

    // Completing needs the result in storage.
    let complete = "mutation($id: ID!) { completePhotoJob(id: $id) { status downloadUrl } }";
    let early = as_worker(&app, complete, json!({ "id": job_id })).await;
    assert_eq!(first_code(&early), "BAD_USER_INPUT", "{early}");
    let result = as_worker(
        &app,
        "mutation($id: ID!, $size: Int!) { createPhotoJobResultUpload(id: $id, input: { contentType: \"application/zip\", byteSize: $size }) { url headers { name value } expiresAt } }",
        json!({ "id": job_id, "size": ZIP.len() }),
    )
    .await;
    let upload = &result["data"]["createPhotoJobResultUpload"];
    assert_eq!(put(upload, ZIP).await, 200, "{result}");
    let with_url = as_worker(
        &app,
        "mutation($id: ID!) { completePhotoJob(id: $id, downloadUrl: \"https://x.test/r.zip\") { status } }",
        json!({ "id": job_id }),
    )
    .await;
    assert_eq!(first_code(&with_url), "BAD_USER_INPUT", "{with_url}");
    let done = as_worker(&app, complete, json!({ "id": job_id })).await;
    assert_eq!(
        done["data"]["completePhotoJob"]["status"], "COMPLETED",
        "{done}"
    );

    // The owner downloads the result through a URL minted for them.
    let seen = app.query_as(&user, JOB, json!({ "id": job_id })).await;
    let url = seen["data"]["viewer"]["photoJob"]["downloadUrl"]
        .as_str()
        .unwrap();
    assert!(url.contains("X-Amz-Expires=600"), "{url}");
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(
        response.headers()["content-disposition"],
        format!("attachment; filename=\"photo-job-{}.zip\"", row(&job_id))
    );
    assert_eq!(response.bytes().await.unwrap().to_vec(), ZIP);

    // Storage used is metered.
    let usage = app
        .query_as(
            &user,
            "{ viewer { usage { metric used limit } } }",
            json!({}),
        )
        .await;
    let storage = &usage["data"]["viewer"]["usage"][1];
    assert_eq!(storage["metric"], "STORAGE_BYTES");
    assert_eq!(storage["used"], JPEG.len() + PNG.len() + ZIP.len());
    assert_eq!(storage["limit"], 1_073_741_824i64);
}

#[tokio::test]
async fn the_store_refuses_tampered_expired_and_mismatched_puts() {
    let (app, store) = app_with_store().await;
    let user = app.user("Uploader").await;
    let upload = &uploads(&app, &user, vec![file("a.png", "image/png", PNG)]).await[0];
    let url = upload["url"].as_str().unwrap();
    let client = reqwest::Client::new();
    let status =
        |r: reqwest::RequestBuilder| async move { r.send().await.unwrap().status().as_u16() };

    // Another content type, another length, another method, a changed key or signature.
    let wrong_type = client
        .put(url)
        .header("content-type", "image/jpeg")
        .body(PNG.to_vec());
    assert_eq!(status(wrong_type).await, 403);
    let mut longer = PNG.to_vec();
    longer.push(0);
    let oversized = client
        .put(url)
        .header("content-type", "image/png")
        .body(longer);
    assert_eq!(status(oversized).await, 403);
    let shorter = client
        .put(url)
        .header("content-type", "image/png")
        .body(PNG[1..].to_vec());
    assert_eq!(status(shorter).await, 403);
    assert_eq!(
        status(client.get(url)).await,
        403,
        "a PUT URL does not read"
    );
    assert_eq!(status(client.delete(url)).await, 403, "nor delete");
    let other_key = url.replace("/uploads/", "/uploads/x");
    let moved = client
        .put(other_key)
        .header("content-type", "image/png")
        .body(PNG.to_vec());
    assert_eq!(status(moved).await, 403);
    let signature = url.rsplit_once("X-Amz-Signature=").unwrap().1;
    let flipped: String = signature
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 0 {
                if c == 'a' { 'b' } else { 'a' }
            } else {
                c
            }
        })
        .collect();
    let tampered = url.replace(signature, &flipped);
    let forged = client
        .put(tampered)
        .header("content-type", "image/png")
        .body(PNG.to_vec());
    assert_eq!(status(forged).await, 403);
    let longer_life = url.replace("X-Amz-Expires=600", "X-Amz-Expires=3600");
    let extended = client
        .put(longer_life)
        .header("content-type", "image/png")
        .body(PNG.to_vec());
    assert_eq!(status(extended).await, 403);
    assert!(store.objects().is_empty(), "{:?}", store.objects());

    // An expired URL: bff's own signer with a one-second lifetime, the store's clock.
    let config = bff::config::storage::Storage::read(&mut bff::config::Env::new(|name| {
        let mut env = std::collections::HashMap::new();
        store.env(&mut env);
        env.get(name).cloned()
    }));
    let signer =
        bff::storage::Store::new(config.bucket.as_ref().unwrap(), Duration::from_secs(1)).unwrap();
    let short = signer.presign_put("app/short-lived", "image/png", PNG.len() as i64);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let late = client
        .put(&short.url)
        .header("content-type", "image/png")
        .body(PNG.to_vec());
    assert_eq!(status(late).await, 403);
    assert!(store.objects().is_empty());

    // The right request works.
    assert_eq!(put(upload, PNG).await, 200);
    assert_eq!(store.objects().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bff_check_writes_reads_and_deletes_a_probe_object() {
    let store = Store::start().await;
    let database_url = crate::support::fresh_database().await;
    let mut env = std::collections::HashMap::new();
    store.env(&mut env);
    let extra: Vec<(&'static str, String)> = env.into_iter().collect();
    let (ok, report) = check(&database_url, extra.clone()).await;
    assert!(ok, "{report}");
    assert!(report.contains("ok    storage"), "{report}");
    assert!(report.contains("written, read and deleted"), "{report}");
    assert!(
        store.objects().is_empty(),
        "the probe is gone: {:?}",
        store.objects()
    );
    let mut wrong = extra.clone();
    wrong.retain(|(k, _)| *k != "AWS_SECRET_ACCESS_KEY");
    wrong.push(("AWS_SECRET_ACCESS_KEY", "not-the-secret".into()));
    let (ok, report) = check(&database_url, wrong).await;
    assert!(!ok, "{report}");
    assert!(
        report.contains("FAIL  storage") && report.contains("403"),
        "{report}"
    );
    let (ok, report) = check(&database_url, Vec::new()).await;
    assert!(
        report.contains("warn  storage") && report.contains("uploads are off"),
        "{report}"
    );
    assert!(ok, "{report}");
}
