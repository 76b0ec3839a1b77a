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

/// Gives `user` `count` completed jobs with long prompts (about 300 bytes each in the export).
async fn many_jobs(app: &TestApp, user: &TestUser, count: u32) {
    app.db()
        .await
        .batch_execute(&format!(
            "INSERT INTO photo_jobs (user_id, prompt, photo_count, cost_cents, status, created_at, updated_at) \
             SELECT '{}', 'prompt number ' || n || ' of a long series of holiday photos', 4, 200, \
                    'COMPLETED', now() - n * interval '1 minute', now() \
             FROM generate_series(1, {count}) n",
            user.id
        ))
        .await
        .unwrap();
}

/// Asks for `user`'s export on a raw connection with a tiny receive window, reads the status
/// line, and then reads nothing more: a client that stopped reading.
async fn stalled_reader(app: &TestApp, user: &TestUser) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(app.addr).await.unwrap();
    let request = format!(
        "GET /account/export HTTP/1.1\r\nHost: bff.test\r\nCookie: {}\r\n\r\n",
        user.cookie()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200", "{}", String::from_utf8_lossy(&head));
    stream
}

/// Waits, without reading, until the server resets `stream` (within `within`).
async fn reset_within(stream: &tokio::net::TcpStream, within: std::time::Duration) {
    let reset = tokio::time::timeout(within, async {
        // The reset is the socket's pending error; the bytes already received stay unread.
        while stream.take_error().unwrap().is_none() {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        reset.is_ok(),
        "the server kept a stalled reader past {within:?}"
    );
}

#[derive(diesel::QueryableByName)]
struct Open {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    transactions: i64,
    #[diesel(sql_type = diesel::sql_types::Double)]
    oldest_seconds: f64,
}

/// The exports' transactions open on the app's database (they name themselves), and the age
/// of the oldest, in seconds.
async fn open_transactions(conn: &mut diesel_async::AsyncPgConnection) -> Open {
    use diesel_async::RunQueryDsl;
    diesel::sql_query(
        "SELECT count(*) AS transactions, \
                COALESCE(EXTRACT(EPOCH FROM max(now() - xact_start)), 0)::float8 AS oldest_seconds \
         FROM pg_stat_activity \
         WHERE datname = current_database() AND xact_start IS NOT NULL \
           AND application_name = $1",
    )
    .bind::<diesel::sql_types::Text, _>(bff::http::export::EXPORT_APPLICATION_NAME)
    .get_result(conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn ten_stalled_readers_hold_no_transaction_and_refuse_no_one() {
    // The finding: three stalled exports of one person and one of another held four of the
    // pool's five connections `idle in transaction` for as long as their sockets stayed open.
    let app = TestApp::spawn_with(|env| {
        env.insert("BFF_SEND_TIMEOUT_MS", "2000".into());
    })
    .await;
    let mut people = Vec::new();
    for name in ["Ann", "Ben", "Cid", "Dee"] {
        let user = app.user(name).await;
        // About 6 MB of document: more than every buffer between bff and a stalled reader
        // (the kernel's send buffer grows to 4 MB).
        many_jobs(&app, &user, 20_000).await;
        people.push(user);
    }
    let watching = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = tokio::spawn({
        let mut conn = app.db().await;
        let watching = watching.clone();
        async move {
            let mut worst = 0.0f64;
            let mut most = 0;
            while watching.load(std::sync::atomic::Ordering::Relaxed) {
                let open = open_transactions(&mut conn).await;
                worst = worst.max(open.oldest_seconds);
                most = most.max(open.transactions);
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            (worst, most)
        }
    });
    // Ten stalled readers: three each of three people, one of the fourth.
    let mut readers = Vec::new();
    for (person, count) in people.iter().zip([3, 3, 3, 1]) {
        for _ in 0..count {
            readers.push(stalled_reader(&app, person).await);
        }
    }
    // Meanwhile GraphQL answers, and so does another person's export, in full.
    let other = app.user("Other").await;
    for _ in 0..20 {
        let started = std::time::Instant::now();
        assert_eq!(
            app.viewer_id(&cookie(&other)).await.as_deref(),
            Some(other.id.as_str())
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    let response = export(&app, &cookie(&other)).await;
    assert_eq!(response.status(), 200);
    let doc: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(doc["user"]["name"], "Other");
    // Every stalled reader is cut off by the send timeout: its connection is reset (what bff
    // had not sent is dropped), while it still has not read a byte more.
    for reader in readers {
        reset_within(&reader, std::time::Duration::from_secs(30)).await;
    }
    watching.store(false, std::sync::atomic::Ordering::Relaxed);
    let (oldest, most) = watcher.await.unwrap();
    println!(
        "ten stalled readers: at most {most} transactions open at once, the oldest {oldest:.2} s"
    );
    // The exports read the database through one connection (a quarter of a pool of five),
    // each for as long as the database takes, never as long as a reader takes.
    assert_eq!(most, 1, "exports were seen reading, one at a time");
    assert!(
        oldest < bff::http::export::IDLE_IN_TRANSACTION.as_secs_f64(),
        "a transaction stayed open {oldest:.2} s"
    );
    let open = open_transactions(&mut app.db().await).await;
    assert_eq!(open.transactions, 0);
}

#[tokio::test]
async fn a_download_slower_than_the_slowest_allowed_is_cut_off() {
    // One second, plus a second per MiB: a 6 MB document may take 7 s; this reader takes a
    // kilobyte every 100 ms, and the send timeout is longer than the test.
    let app = TestApp::spawn_with(|env| {
        env.insert("BFF_EXPORT_TIMEOUT_MS", "1000".into());
        env.insert("BFF_EXPORT_MIN_BYTES_PER_SECOND", (1024 * 1024).to_string());
        env.insert("BFF_SEND_TIMEOUT_MS", "60000".into());
    })
    .await;
    let user = app.user("Trickle").await;
    many_jobs(&app, &user, 20_000).await;
    let mut stream = stalled_reader(&app, &user).await;
    let started = std::time::Instant::now();
    let mut got = 0;
    let ended = loop {
        use tokio::io::AsyncReadExt;
        let mut kilobyte = [0u8; 1024];
        match stream.read(&mut kilobyte).await {
            Ok(0) | Err(_) => break started.elapsed(),
            Ok(n) => got += n,
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "never cut off"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    println!("a trickling reader was cut off after {ended:?} and {got} bytes");
    assert!(got < 1024 * 1024, "{got}");
    assert!(ended >= std::time::Duration::from_secs(6), "{ended:?}");
}

#[tokio::test]
async fn an_export_past_the_spool_budget_is_cut_off_and_gives_its_disk_back() {
    let app = TestApp::spawn_with(|env| {
        env.insert("BFF_EXPORT_SPOOL_BYTES", (1024 * 1024).to_string());
    })
    .await;
    let big = app.user("Big").await;
    many_jobs(&app, &big, 20_000).await;
    let response = export(&app, &cookie(&big)).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.bytes().await.is_err(),
        "a 6 MB document cannot fit in 1 MiB of spool"
    );
    // The budget is back, all of it: an export of about 600 KB fits (had the cut-off one kept
    // what it wrote, at most a page of about 150 KB would be left).
    let second = app.user("Second").await;
    many_jobs(&app, &second, 2_000).await;
    let response = export(&app, &cookie(&second)).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.len() > 500_000, "{}", text.len());
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["photoJobs"].as_array().unwrap().len(), 2_000);
}
