//! `GET /account/export`: the viewer's data as one JSON document, theirs alone, streamed in
//! memory that does not grow with the account.

use diesel_async::SimpleAsyncConnection;
use serde_json::Value;

use crate::account::{app_with_store_and_stripe, rich_history};
use crate::support::{TestApp, TestUser};

const JPEG: &[u8] = include_bytes!("../../src/dev/demo/sunrise.jpg");

async fn export(app: &TestApp, headers: &[(&str, String)]) -> reqwest::Response {
    let mut request = app.client.get(app.url("/account/export"));
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.send().await.unwrap()
}

fn cookie(user: &TestUser) -> Vec<(&'static str, String)> {
    vec![("cookie", user.cookie())]
}

#[tokio::test]
async fn the_export_holds_everything_of_the_viewer_and_nothing_of_anyone_else() {
    let (app, _store, fake) = app_with_store_and_stripe().await;
    let zelda = app.user("Zelda").await;
    let other = app.user("Other").await;
    rich_history(&app, &fake, &zelda, "zelda", 1).await;
    rich_history(&app, &fake, &other, "other", 2).await;

    let response = export(&app, &cookie(&zelda)).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"bff-export-")
    );
    let text = response.text().await.unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["format"], "bff-export/1");
    assert_eq!(doc["user"]["email"], "zelda@example.com");
    assert_eq!(doc["user"]["name"], "Zelda");
    assert_eq!(doc["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(doc["accounts"][0]["providerId"], "credential");
    assert_eq!(doc["subscription"]["plan"], "PRO");
    assert_eq!(doc["subscriptionHistory"][0]["kind"], "INVOICE_PAID");
    assert_eq!(doc["subscriptionHistory"][0]["amount"], "29.00");
    assert_eq!(doc["purchases"][0]["status"], "PARTIALLY_REFUNDED");
    assert_eq!(doc["purchases"][0]["refundedAmount"], "4.00");
    let kinds: Vec<&str> = doc["creditLedger"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["PURCHASE", "PURCHASE_REFUND", "JOB_CHARGE"],
        "{doc}"
    );
    assert_eq!(
        doc["credits"]["balance"], "14.70",
        "25 - 10 refunded - 0.30 for the job on PRO"
    );
    assert_eq!(doc["usage"][0]["metric"], "PHOTOS");
    let job = &doc["photoJobs"][0];
    assert_eq!(job["prompt"], "a sunset for zelda's album");
    assert_eq!(job["photos"][0]["fileName"], "zelda-holiday.jpg");
    assert_eq!(job["resultUrl"], Value::Null, "no result yet");
    let photo = reqwest::get(job["photos"][0]["url"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(photo.status(), 200, "the link downloads the photo");
    assert_eq!(photo.bytes().await.unwrap().as_ref(), JPEG);
    assert_eq!(doc["unattachedUploads"][0]["fileName"], "zelda-waiting.jpg");
    assert!(doc["unattachedUploads"][0]["url"].is_string());
    // No secret, no one else.
    for absent in [
        zelda.token.as_str(),
        "hash-of-zelda",
        "key\"",
        "Other",
        "other@example.com",
        "sunset for other",
        other.id.as_str(),
    ] {
        assert!(!text.contains(absent), "the export holds {absent:?}");
    }

    // A bearer works as well as the cookie; nothing else does.
    let bearer = format!(
        "Bearer {}",
        bff::auth::signed_token(&zelda.token, crate::support::SECRET)
    );
    assert_eq!(
        export(&app, &[("authorization", bearer)]).await.status(),
        200
    );
    assert_eq!(export(&app, &[]).await.status(), 401);
    let forged = format!("better-auth.session_token={}.forged", zelda.token);
    assert_eq!(export(&app, &[("cookie", forged)]).await.status(), 401);
}

#[tokio::test]
async fn a_person_may_export_three_times_at_once_then_once_a_minute() {
    let app = TestApp::spawn().await;
    let user = app.user("Exporter").await;
    for _ in 0..3 {
        let response = export(&app, &cookie(&user)).await;
        assert_eq!(response.status(), 200);
        serde_json::from_str::<Value>(&response.text().await.unwrap()).unwrap();
    }
    let limited = export(&app, &cookie(&user)).await;
    assert_eq!(limited.status(), 429);
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let other = app.user("Someone").await;
    assert_eq!(
        export(&app, &cookie(&other)).await.status(),
        200,
        "per person"
    );
}

/// Peak resident memory of process `pid`, in KiB.
fn peak_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn a_hundred_thousand_jobs_stream_out_in_bounded_memory() {
    let database_url = crate::support::fresh_database().await;
    let seed = TestApp::spawn_on(database_url.clone(), |_| {}).await;
    let user = seed.user("Prolific").await;
    seed.db()
        .await
        .batch_execute(&format!(
            "INSERT INTO photo_jobs (user_id, prompt, photo_count, cost_cents, status, created_at, updated_at) \
             SELECT '{}', 'prompt number ' || n || ' of a long series of holiday photos', 4, 200, \
                    'COMPLETED', now() - n * interval '1 minute', now() \
             FROM generate_series(1, 100000) n",
            user.id
        ))
        .await
        .unwrap();
    let (mut child, base) = crate::cli::serve_child(&database_url, &[]).await;
    let client = reqwest::Client::new();
    let url = format!("{base}/account/export");
    let warm = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(warm.status(), 200);
    let before = peak_kib(child.id());
    let started = std::time::Instant::now();
    let mut response = client
        .get(&url)
        .header("cookie", user.cookie())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = response.chunk().await.unwrap() {
        body.extend_from_slice(&chunk);
        chunks += 1;
    }
    let took = started.elapsed();
    let after = peak_kib(child.id());
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["photoJobs"].as_array().unwrap().len(), 100_000);
    println!(
        "export of 100,000 jobs: {:.1} MiB in {chunks} chunks, {took:?}; bff serve peak RSS {:.1} MiB before, {:.1} MiB after (+{:.1} MiB)",
        body.len() as f64 / 1_048_576.0,
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        (after - before) as f64 / 1024.0,
    );
    let _ = child.kill();
    let _ = child.wait();
    // A server that held the document would grow by its size at least.
    assert!(
        ((after - before) * 1024) < body.len() as u64 / 2,
        "memory grew by {} KiB for a {} KiB document",
        after - before,
        body.len() / 1024
    );
}
