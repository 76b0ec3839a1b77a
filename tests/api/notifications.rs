//! Notifications: written by the database in the same transaction as their cause, read in the
//! inbox, and delivered by email (to a real SMTP server the tests start, aiosmtpd) and push (to
//! a fake of Expo's API) exactly once per message, with retries through outages.

mod delivery;
mod graphql;
mod mail;
mod push_fake;
mod stripe;
mod tls;

use std::time::Duration;

use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use serde_json::{Value, json};

use crate::photo_jobs::{grant, new_job};
use crate::support::{TestApp, TestUser, Tool, eventually, requires};
use crate::worker::{KEY, as_worker};
use mail::{Mail, header};
use push_fake::FakeExpo;

const INBOX: &str = "{ viewer { unreadNotificationCount notifications(first: 20) { totalCount \
    nodes { id kind title body createdAt readAt subject { __typename ... on PhotoJob { id status } \
    ... on Purchase { id } ... on BillingSubscription { status } } } } } }";
const CLAIM: &str = "mutation { claimPhotoJobs(limit: 50) { id } }";
const COMPLETE: &str = "mutation($id: ID!) { completePhotoJob(id: $id, downloadUrl: \"https://files.example.com/r.zip\") { id } }";
const REGISTER: &str = "mutation($token: String!) { registerPushDevice(input: { platform: IOS, token: $token }) { platform } }";

/// A server that sends notifications: email to `mail`, push to `expo`, batched emails after
/// `batch` seconds, a first retry after 1 s.
pub(crate) async fn app(mail: &Mail, expo: &FakeExpo, batch: u64) -> TestApp {
    app_sending(mail, expo, batch, 100).await
}

/// [`app`], looking for deliveries every `poll_ms` (0: never, leaving the sending to other
/// processes).
pub(crate) async fn app_sending(mail: &Mail, expo: &FakeExpo, batch: u64, poll_ms: u64) -> TestApp {
    let (smtp, push, ca) = (mail.url(), expo.url.clone(), mail.ca.clone());
    TestApp::spawn_with(move |env| {
        env.insert("SERVICE_JWT_SECRET", KEY.into());
        env.insert("FREE_PHOTO_ALLOWANCE", "0".into());
        env.insert("BFF_SMTP_URL", smtp);
        env.insert("BFF_EMAIL_FROM", "Darkroom <hello@darkroom.test>".into());
        env.insert("BFF_PUBLIC_URL", "http://api.darkroom.test".into());
        env.insert("BFF_APP_URL", "http://app.darkroom.test".into());
        env.insert("BFF_EXPO_PUSH_URL", push);
        env.insert("BFF_NOTIFY_POLL_MS", poll_ms.to_string());
        env.insert("BFF_NOTIFY_BATCH_SECONDS", batch.to_string());
        env.insert("BFF_NOTIFY_RETRY_SECONDS", "1".into());
        env.insert("BFF_NOTIFY_LEASE_SECONDS", "5".into());
        if let Some(ca) = &ca {
            env.insert("BFF_SMTP_CA_FILE", ca.display().to_string());
        }
    })
    .await
}

/// A user whose address is verified, on the Enterprise plan (no monthly quota; 0.20 credits a
/// photo), with credits.
pub(crate) async fn customer(app: &TestApp, name: &str) -> TestUser {
    let user = app.user(name).await;
    let mut conn = app.db().await;
    conn.batch_execute(&format!(
        "UPDATE \"user\" SET \"emailVerified\" = true WHERE id = '{0}'; \
         INSERT INTO subscriptions (user_id, plan, status) VALUES ('{0}', 'ENTERPRISE', 'ACTIVE');",
        user.id
    ))
    .await
    .unwrap();
    grant(app, &user, 100_000).await;
    user
}

/// Creates a job of `user`'s and completes it through the worker; returns its id.
pub(crate) async fn completed_job(app: &TestApp, user: &TestUser) -> String {
    let id = new_job(app, user, 2).await;
    as_worker(app, CLAIM, json!({})).await;
    let done = as_worker(app, COMPLETE, json!({ "id": id })).await;
    assert!(done["errors"].is_null(), "{done}");
    id
}

/// (channel, state) of every delivery of `user`'s, oldest first.
pub(crate) async fn deliveries(app: &TestApp, user: &TestUser) -> Vec<(String, String)> {
    #[derive(diesel::QueryableByName)]
    struct D {
        #[diesel(sql_type = diesel::sql_types::Text)]
        channel: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        state: String,
    }
    let mut conn = app.db().await;
    diesel::sql_query(
        "SELECT channel, state FROM notification_deliveries WHERE user_id = $1 ORDER BY id, channel",
    )
    .bind::<diesel::sql_types::Text, _>(&user.id)
    .load::<D>(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .map(|d| (d.channel, d.state))
    .collect()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = app.db().await;
    diesel::sql_query(sql)
        .get_result::<N>(&mut conn)
        .await
        .unwrap()
        .n
}

#[tokio::test]
async fn a_completed_job_gives_one_inbox_row_one_email_and_one_push() {
    if !requires(&[Tool::Smtp]) {
        return;
    }
    let (mail, expo) = (Mail::start().await, FakeExpo::start().await);
    let app = app(&mail, &expo, 0).await;
    let user = customer(&app, "Ada").await;
    let token = "ExponentPushToken[ada-phone-0001]";
    let registered = app
        .query_as(&user, REGISTER, json!({ "token": token }))
        .await;
    assert_eq!(
        registered["data"]["registerPushDevice"]["platform"], "IOS",
        "{registered}"
    );

    let job = completed_job(&app, &user).await;

    let inbox = app.query_as(&user, INBOX, json!({})).await;
    let viewer = &inbox["data"]["viewer"];
    assert_eq!(viewer["unreadNotificationCount"], 1, "{inbox}");
    let nodes = viewer["notifications"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "one inbox row: {inbox}");
    let n = &nodes[0];
    assert_eq!(n["kind"], "JOB_COMPLETED");
    assert_eq!(n["title"], "Your photos are ready");
    assert_eq!(n["body"], "“job” finished: 2 photos ready to download.");
    assert_eq!(n["readAt"], Value::Null);
    assert_eq!(
        n["subject"],
        json!({ "__typename": "PhotoJob", "id": job, "status": "COMPLETED" })
    );

    let messages = mail.wait_for(1, Duration::from_secs(10)).await;
    eventually("the push is sent", async || expo.messages().len() == 1).await;
    eventually("both deliveries are recorded as sent", async || {
        deliveries(&app, &user).await
            == [
                ("EMAIL".to_owned(), "SENT".to_owned()),
                ("PUSH".to_owned(), "SENT".to_owned()),
            ]
    })
    .await;
    // Nothing more arrives.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(mail.messages().len(), 1, "exactly one email");
    assert_eq!(expo.messages().len(), 1, "exactly one push");
    let email = &messages[0];
    let to = email["to"].as_array().unwrap();
    assert_eq!(to.len(), 1);
    assert!(to[0].as_str().unwrap().ends_with("@example.com"), "{email}");
    assert_eq!(header(email, "Subject"), "Your photos are ready");
    assert_eq!(header(email, "From"), "Darkroom <hello@darkroom.test>");
    assert!(
        header(email, "Message-ID").starts_with("<notification-"),
        "{email}"
    );
    assert!(
        header(email, "Message-ID").ends_with("@api.darkroom.test>"),
        "{email}"
    );
    assert_eq!(
        header(email, "List-Unsubscribe-Post"),
        "List-Unsubscribe=One-Click"
    );
    let unsubscribe = header(email, "List-Unsubscribe");
    assert!(
        unsubscribe.starts_with("<http://api.darkroom.test/notifications/unsubscribe?token="),
        "{unsubscribe}"
    );
    let (text, html) = (
        email["text"].as_str().unwrap(),
        email["html"].as_str().unwrap(),
    );
    for part in [text, html] {
        assert!(part.contains("2 photos ready to download"), "{part}");
        assert!(part.contains("http://app.darkroom.test/"), "{part}");
        assert!(part.contains("/notifications/unsubscribe?token="), "{part}");
    }
    assert!(
        html.contains("<a href=\"http://app.darkroom.test/\""),
        "{html}"
    );
    let push = &expo.messages()[0];
    assert_eq!(push["to"], token);
    assert_eq!(push["title"], "Your photos are ready");
    assert!(
        push["data"]["key"]
            .as_str()
            .unwrap()
            .starts_with("notification-"),
        "the push carries its idempotency key: {push}"
    );

    // Read: marked once; a second time changes nothing; another person's id is NOT_FOUND.
    let id = n["id"].as_str().unwrap();
    let mark = "mutation($ids: [ID!]) { markNotificationsRead(input: { ids: $ids }) { unreadCount notifications { id readAt } } }";
    let read = app.query_as(&user, mark, json!({ "ids": [id] })).await;
    assert_eq!(
        read["data"]["markNotificationsRead"]["unreadCount"], 0,
        "{read}"
    );
    assert!(read["data"]["markNotificationsRead"]["notifications"][0]["readAt"].is_string());
    let again = app.query_as(&user, mark, json!({ "ids": [id] })).await;
    assert_eq!(
        again["data"]["markNotificationsRead"]["notifications"],
        json!([])
    );
    let other = app.user("Eve").await;
    let stolen = app.query_as(&other, mark, json!({ "ids": [id] })).await;
    assert_eq!(crate::support::first_code(&stolen), "NOT_FOUND", "{stolen}");
    let both = app
        .query_as(
            &other,
            "mutation { markNotificationsRead(input: { ids: [], all: true }) { unreadCount } }",
            json!({}),
        )
        .await;
    assert_eq!(
        crate::support::first_code(&both),
        "BAD_USER_INPUT",
        "{both}"
    );

    // Leaving takes every notification row with the person.
    let mut conn = app.db().await;
    diesel::sql_query("DELETE FROM \"user\" WHERE id = $1")
        .bind::<diesel::sql_types::Text, _>(&user.id)
        .execute(&mut conn)
        .await
        .unwrap();
    for table in [
        "notifications",
        "notification_deliveries",
        "notification_preferences",
        "push_devices",
    ] {
        let left = count(
            &app,
            &format!(
                "SELECT count(*) AS n FROM {table} WHERE user_id = '{}'",
                user.id
            ),
        )
        .await;
        assert_eq!(left, 0, "{table} keeps nothing of a deleted person");
    }
}
