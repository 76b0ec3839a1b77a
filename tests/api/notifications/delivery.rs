//! What delivery guarantees: a cause that rolls back notifies nobody; low credits once per
//! crossing; one-click unsubscribe (and forged links refused); many finished jobs in one
//! email; an SMTP outage delays and loses nothing; a sender killed mid-send leaves one message.

use std::process::Stdio;
use std::time::Duration;

use diesel_async::SimpleAsyncConnection;
use serde_json::json;

use super::mail::{Mail, free_port, header};
use super::push_fake::FakeExpo;
use super::{app, app_sending, completed_job, count, customer, deliveries};
use crate::photo_jobs::new_job;
use crate::support::{SECRET, Tool, requires};
use crate::worker::{KEY, as_worker};

#[tokio::test]
async fn a_cause_that_rolls_back_leaves_no_notification_and_low_credits_tell_once_per_crossing() {
    if !requires(&[Tool::Smtp]) {
        return;
    }
    let (mail, expo) = (Mail::start().await, FakeExpo::start().await);
    let app = app(&mail, &expo, 0).await;
    let user = customer(&app, "Rollback").await;
    let job = new_job(&app, &user, 1).await;
    let row = bff::graphql::ids::row_id(&job, bff::graphql::ids::Kind::PhotoJob).unwrap();
    let mut conn = app.db().await;
    conn.batch_execute(&format!(
        "BEGIN; UPDATE photo_jobs SET status = 'PROCESSING' WHERE id = {row}; \
         UPDATE photo_jobs SET status = 'COMPLETED' WHERE id = {row}; ROLLBACK;"
    ))
    .await
    .unwrap();
    let mine = format!("FROM notifications WHERE user_id = '{}'", user.id);
    assert_eq!(
        count(&app, &format!("SELECT count(*) AS n {mine}")).await,
        0
    );
    assert_eq!(
        count(&app, "SELECT count(*) AS n FROM notification_deliveries").await,
        0
    );
    conn.batch_execute(&format!(
        "UPDATE photo_jobs SET status = 'PROCESSING' WHERE id = {row}; \
         UPDATE photo_jobs SET status = 'FAILED', failure_reason = 'corrupt file' WHERE id = {row};"
    ))
    .await
    .unwrap();
    assert_eq!(
        count(
            &app,
            &format!("SELECT count(*) AS n {mine} AND kind = 'JOB_FAILED'")
        )
        .await,
        1,
        "plain SQL notifies too"
    );

    // The balance crosses below the threshold (5 credits) once, then again after a top-up.
    // (A photo costs 0.20 credits on this plan.)
    conn.batch_execute(&format!(
        "UPDATE credit_accounts SET balance_cents = 560 WHERE user_id = '{}'",
        user.id
    ))
    .await
    .unwrap();
    for _ in 0..3 {
        new_job(&app, &user, 1).await; // 540, 520, 500: not below yet
    }
    let low = format!("SELECT count(*) AS n {mine} AND kind = 'CREDITS_LOW'");
    assert_eq!(
        count(&app, &low).await,
        0,
        "at the threshold is not below it"
    );
    for _ in 0..3 {
        new_job(&app, &user, 1).await; // 480 (crossing), 460, 440
    }
    assert_eq!(
        count(&app, &low).await,
        1,
        "once per crossing, not once per charge"
    );
    crate::photo_jobs::grant(&app, &user, 1_000).await; // 1440
    let refused = crate::photo_jobs::create(
        &app,
        &user,
        json!({ "prompt": "too big", "photoCount": 100 }),
    )
    .await;
    assert_eq!(
        crate::support::first_code(&refused),
        "INSUFFICIENT_CREDITS",
        "{refused}"
    );
    assert_eq!(count(&app, &low).await, 1, "a refused charge tells nothing");
    new_job(&app, &user, 50).await; // 1440 - 1000 = 440: below again
    assert_eq!(
        count(&app, &low).await,
        2,
        "a new crossing after a top-up tells again"
    );
}

#[tokio::test]
async fn one_click_unsubscribe_turns_that_kinds_email_off_and_a_forged_link_is_refused() {
    if !requires(&[Tool::Smtp]) {
        return;
    }
    let (mail, expo) = (Mail::start().await, FakeExpo::start().await);
    let app = app(&mail, &expo, 0).await;
    let user = customer(&app, "Leaving").await;
    completed_job(&app, &user).await;
    let messages = mail.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(messages.len(), 1);
    let link = header(&messages[0], "List-Unsubscribe")
        .trim_matches(['<', '>'])
        .replace("http://api.darkroom.test", &app.url(""));
    let one_click = |url: String| {
        app.client
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
    };
    let preferences = "{ viewer { notificationPreferences { kind inbox email push } } }";
    let before = app.query_as(&user, preferences, json!({})).await;
    // A token for someone else's address, signed with another key, or altered: refused.
    let other = bff::notify::unsubscribe::Signer::new(&secrecy::SecretString::from(
        "not-the-better-auth-secret-at-all-0123",
    ));
    let (head, _) = link.split_once("token=").unwrap();
    let forged = format!(
        "{head}token={}",
        other.token(
            &user.id,
            &[bff::db::notifications::NotificationKind::JobCompleted]
        )
    );
    let altered = format!("{link}x");
    for url in [forged, altered, format!("{head}token=")] {
        let response = one_click(url).await.unwrap();
        assert_eq!(response.status(), 400);
    }
    assert_eq!(
        app.query_as(&user, preferences, json!({})).await,
        before,
        "nothing changed"
    );
    // GET shows the button and changes nothing (link scanners follow links).
    let page = app.client.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("method=\"post\""));
    assert_eq!(app.query_as(&user, preferences, json!({})).await, before);
    // The real one, as a mail provider sends it: no cookie, the RFC 8058 body.
    let response = one_click(link.clone()).await.unwrap();
    assert_eq!(response.status(), 200);
    let after = app.query_as(&user, preferences, json!({})).await;
    let kinds = after["data"]["viewer"]["notificationPreferences"]
        .as_array()
        .unwrap();
    for kind in kinds {
        let off = kind["kind"] == "JOB_COMPLETED";
        assert_eq!(kind["email"], !off, "{kind}");
        assert_eq!(kind["inbox"], true);
    }
    // The next finished job is in the inbox, with no email.
    completed_job(&app, &user).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mail.messages().len(), 1, "no second email");
    assert_eq!(
        count(
            &app,
            &format!(
                "SELECT count(*) AS n FROM notifications WHERE user_id = '{}'",
                user.id
            )
        )
        .await,
        2
    );
    assert_eq!(
        deliveries(&app, &user).await,
        [("EMAIL".to_owned(), "SENT".to_owned())],
        "the second notification queued no email"
    );
}

#[tokio::test]
async fn ten_jobs_finishing_within_the_window_give_one_email() {
    if !requires(&[Tool::Smtp]) {
        return;
    }
    let (mail, expo) = (Mail::start().await, FakeExpo::start().await);
    let app = app(&mail, &expo, 3).await;
    let user = customer(&app, "Busy").await;
    let mut jobs = Vec::new();
    for _ in 0..10 {
        jobs.push(new_job(&app, &user, 1).await);
    }
    as_worker(
        &app,
        "mutation { claimPhotoJobs(limit: 50) { id } }",
        json!({}),
    )
    .await;
    for (n, id) in jobs.iter().enumerate() {
        let query = if n == 9 {
            "mutation($id: ID!) { failPhotoJob(id: $id, reason: \"blurry\") { id } }"
        } else {
            "mutation($id: ID!) { completePhotoJob(id: $id, downloadUrl: \"https://files.example.com/r.zip\") { id } }"
        };
        let done = as_worker(&app, query, json!({ "id": id })).await;
        assert!(done["errors"].is_null(), "{done}");
    }
    mail.wait_for(1, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let messages = mail.messages();
    assert_eq!(messages.len(), 1, "one email for ten jobs");
    let email = &messages[0];
    assert_eq!(header(email, "Subject"), "9 jobs finished, 1 failed");
    let text = email["text"].as_str().unwrap();
    assert_eq!(
        text.matches("finished: 1 photo ready to download").count(),
        9,
        "{text}"
    );
    assert!(text.contains("failed: blurry."), "{text}");
    let states = deliveries(&app, &user).await;
    assert_eq!(states.len(), 10);
    assert!(
        states.iter().all(|(c, s)| c == "EMAIL" && s == "SENT"),
        "{states:?}"
    );
}

#[tokio::test]
async fn an_smtp_outage_of_a_minute_delays_delivery_and_loses_nothing() {
    if !requires(&[Tool::Smtp]) {
        return;
    }
    let (mut mail, expo) = (Mail::start().await, FakeExpo::start().await);
    let app = app(&mail, &expo, 0).await;
    let user = customer(&app, "Patient").await;
    mail.down().await;
    let started = tokio::time::Instant::now();
    completed_job(&app, &user).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let tried = count(
        &app,
        &format!(
            "SELECT count(*) AS n FROM notification_deliveries WHERE user_id = '{}' \
             AND state = 'PENDING' AND attempts >= 2 AND last_error IS NOT NULL",
            user.id
        ),
    )
    .await;
    assert_eq!(tried, 1, "retried, still pending");
    tokio::time::sleep(Duration::from_secs(60).saturating_sub(started.elapsed())).await;
    mail.up().await;
    // Backoff doubles from 1 s: the attempt after a minute's outage comes within ~64 s more.
    let messages = mail.wait_for(1, Duration::from_secs(70)).await;
    assert_eq!(messages.len(), 1, "delivered after the outage");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(mail.messages().len(), 1, "once");
    assert_eq!(
        deliveries(&app, &user).await,
        [("EMAIL".to_owned(), "SENT".to_owned())]
    );
}

/// A `bff serve` child process that sends notifications to `mail`.
fn sender(database_url: &str, mail: &Mail, port: u16) -> tokio::process::Child {
    tokio::process::Command::from(crate::cli::bff())
        .arg("serve")
        .env("DATABASE_URL", database_url)
        .env("BETTER_AUTH_SECRET", SECRET)
        .env("BETTER_AUTH_URL", "http://localhost:5173")
        .env("BFF_LISTEN", format!("127.0.0.1:{port}"))
        .env("SERVICE_JWT_SECRET", KEY)
        .env("BFF_SMTP_URL", mail.url())
        .env("BFF_EMAIL_FROM", "hello@darkroom.test")
        .env("BFF_PUBLIC_URL", "http://api.darkroom.test")
        .env("BFF_NOTIFY_POLL_MS", "50")
        .env("BFF_NOTIFY_BATCH_SECONDS", "0")
        .env("BFF_NOTIFY_LEASE_SECONDS", "5")
        .env("DATABASE_POOL_SIZE", "3")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn two_senders_one_killed_mid_send_deliver_one_message_per_notification() {
    if !requires(&[Tool::Smtp]) {
        return;
    }
    let (mail, expo) = (Mail::start().await, FakeExpo::start().await);
    // This process only makes the notifications (its sender is off); `bff serve` children send.
    let maker = app_sending(&mail, &expo, 0, 0).await;
    let user = customer(&maker, "Raced").await;
    mail.stall(true);
    let mut first = sender(&maker.database_url, &mail, free_port());
    completed_job(&maker, &user).await;
    // The first sender is mid-send (held at RCPT): kill it there.
    crate::support::eventually("the first sender claims the email", async || {
        count(
            &maker,
            "SELECT count(*) AS n FROM notification_deliveries WHERE attempts = 1",
        )
        .await
            == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.kill().await.unwrap();
    mail.stall(false);
    // Two senders race for the rest: the killed one's message when its lease ends, and ten more.
    let _second = sender(&maker.database_url, &mail, free_port());
    let _third = sender(&maker.database_url, &mail, free_port());
    for _ in 0..10 {
        completed_job(&maker, &user).await;
    }
    // Jobs finishing together may share an email (whatever the window): count the jobs each
    // email tells of.
    let jobs_in = |m: &serde_json::Value| -> usize {
        let subject = header(m, "Subject");
        subject
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1)
    };
    crate::support::eventually("every notification is emailed", async || {
        mail.messages().iter().map(jobs_in).sum::<usize>() >= 11
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let messages = mail.messages();
    assert_eq!(
        messages.iter().map(jobs_in).sum::<usize>(),
        11,
        "every notification in exactly one email, the killed send included"
    );
    let mut ids: Vec<&str> = messages.iter().map(|m| header(m, "Message-ID")).collect();
    let sent = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), sent, "no Message-ID twice");
    let states = deliveries(&maker, &user).await;
    assert!(states.iter().all(|(_, s)| s == "SENT"), "{states:?}");
    let retried = count(
        &maker,
        "SELECT count(*) AS n FROM notification_deliveries WHERE attempts >= 2",
    )
    .await;
    assert!(retried >= 1, "the killed sender's message was sent again");
}

/// A sender wakes when a notification is written (its trigger's `pg_notify`, heard by the
/// process's live listener), not at its next poll: with polls a minute apart, the email of a
/// job completed after start-up arrives within seconds.
#[tokio::test]
async fn a_notification_is_sent_when_it_is_written_not_at_the_next_poll() {
    if !requires(&[Tool::Smtp]) {
        return;
    }
    let (mail, expo) = (Mail::start().await, FakeExpo::start().await);
    let app = app_sending(&mail, &expo, 0, 60_000).await;
    let user = customer(&app, "Swift").await;
    // The first poll runs at start-up; the next is a minute away.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = std::time::Instant::now();
    completed_job(&app, &user).await;
    let messages = mail.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(messages.len(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "sent {:?} after the commit",
        started.elapsed()
    );
}
