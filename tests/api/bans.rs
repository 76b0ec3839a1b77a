//! Bans and impersonation, as Better Auth's admin plugin writes them (`user.banned` until
//! `banExpires`, `session.impersonatedBy`), however they are written: a ban holds on every
//! credential and transport and closes open connections at once; an impersonated session reads
//! as the person but cannot spend, change the subscription, delete the account or export.

use std::time::Duration;

use diesel_async::SimpleAsyncConnection;
use serde_json::{Value, json};

use crate::live::{Client, End, JOBS, TRANSPORT};
use crate::photo_jobs::{grant, invariant_violations, state};
use crate::support::{TestApp, TestUser, Tool, first_code, requires};
use crate::worker::{KEY, as_worker};

const VIEWER: &str = "{ viewer { id email } }";

async fn sql(app: &TestApp, statement: &str) {
    app.db().await.batch_execute(statement).await.unwrap();
}

async fn ban(app: &TestApp, user: &TestUser, expires: &str) {
    sql(
        app,
        &format!(
            "UPDATE \"user\" SET banned = true, \"banReason\" = 'spam', \"banExpires\" = {expires} \
             WHERE id = '{}'",
            user.id
        ),
    )
    .await;
}

/// `{ viewer { id email } }` with these headers: the body, asserting HTTP 200.
async fn viewer(app: &TestApp, headers: &[(&str, String)]) -> Value {
    let (status, body) = app.post(VIEWER, json!({}), headers).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn export_status(app: &TestApp, headers: &[(&str, String)]) -> (u16, Value) {
    let mut request = app.client.get(app.url("/account/export"));
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_ban_written_by_sql_refuses_every_credential_and_closes_connections_at_once() {
    if !requires(&[Tool::OpenSsl]) {
        return;
    }
    // The periodic session check is slow here (60 s): only the ban's own news can be quick.
    let app = TestApp::spawn_with(|env| {
        env.insert("BFF_WS_SESSION_CHECK_MS", "60000".into());
    })
    .await;
    let user = app.user("Banned").await;
    let other = app.user("Bystander").await;
    let (private, x) = crate::jwt::key_pair("banned");
    crate::jwt::add_key(&app, "banned-key", &x, "EdDSA", false).await;
    let jwt = crate::jwt::token(&private, "banned-key", &user.id, crate::jwt::ISSUER, 600);
    let credentials: [(&str, Vec<(&str, String)>); 4] = [
        ("cookie", vec![("cookie", user.cookie())]),
        (
            "bearer",
            vec![("authorization", format!("Bearer {}", user.token))],
        ),
        (
            "signed bearer",
            vec![(
                "authorization",
                format!(
                    "Bearer {}",
                    bff::auth::signed_token(&user.token, crate::support::SECRET)
                ),
            )],
        ),
        ("jwt", vec![("authorization", format!("Bearer {jwt}"))]),
    ];
    for (name, headers) in &credentials {
        assert_eq!(
            viewer(&app, headers).await["data"]["viewer"]["id"],
            user.id,
            "{name} before the ban"
        );
    }
    let mut browser = Client::signed_in(&app, &user).await;
    browser.subscribed("1", JOBS, json!({})).await;
    let mut mobile = Client::bearer_watching_jobs(&app, &jwt).await;
    let mut staying = Client::signed_in(&app, &other).await;
    staying.subscribed("1", JOBS, json!({})).await;

    // Not through Better Auth's route: the sessions stay, and the ban must still hold.
    let started = std::time::Instant::now();
    ban(&app, &user, "NULL").await;
    assert_eq!(browser.closed().await.0, 4403);
    assert_eq!(mobile.closed().await.0, 4403);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}: the session check interval is a minute; the ban itself must close them",
        started.elapsed()
    );
    for (name, headers) in &credentials {
        let body = viewer(&app, headers).await;
        assert_eq!(first_code(&body), "ACCOUNT_BANNED", "{name}: {body}");
        assert_eq!(body["data"]["viewer"], Value::Null, "{name}: {body}");
        assert!(
            body["errors"][0]
                .get("extensions")
                .unwrap()
                .get("bannedUntil")
                .is_none(),
            "an indefinite ban names no end: {body}"
        );
        // What a write would do is refused the same way, changing nothing.
        let (_, body) = app
            .post(
                "mutation { createPhotoJob(input: { prompt: \"p\", photoCount: 1 }) { photoJob { id } } }",
                json!({}),
                headers,
            )
            .await;
        assert_eq!(first_code(&body), "ACCOUNT_BANNED", "{name}: {body}");
        let (status, body) = export_status(&app, headers).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("ACCOUNT_BANNED")),
            "{name} export: {body}"
        );
    }
    // A new connection is refused, with the reason.
    let mut again = Client::connect(&app, TRANSPORT, &[]).await.unwrap();
    again
        .send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {jwt}") } }))
        .await;
    match again.next_within(Duration::from_secs(10)).await {
        Err(End::Closed(4403, reason)) => assert!(reason.contains("banned"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(state(&app, &user).await.0, 0, "no job was made");
    staying.send(json!({ "type": "ping" })).await;
    assert_eq!(
        staying.next().await["type"],
        "pong",
        "the other person stays"
    );
    assert_eq!(
        viewer(&app, &[("cookie", other.cookie())]).await["data"]["viewer"]["id"],
        other.id
    );

    // Unbanned (as Better Auth's unbanUser writes it), the same credentials work again.
    sql(
        &app,
        &format!(
            "UPDATE \"user\" SET banned = false, \"banReason\" = NULL, \"banExpires\" = NULL WHERE id = '{}'",
            user.id
        ),
    )
    .await;
    for (name, headers) in &credentials {
        assert_eq!(
            viewer(&app, headers).await["data"]["viewer"]["id"],
            user.id,
            "{name} after the ban is lifted"
        );
    }
}

#[tokio::test]
async fn an_expired_ban_is_not_refused_and_a_timed_one_says_until_when() {
    let app = TestApp::spawn().await;
    let user = app.user("Timed").await;
    let cookie = [("cookie", user.cookie())];
    ban(&app, &user, "now() - interval '1 second'").await;
    assert_eq!(
        viewer(&app, &cookie).await["data"]["viewer"]["id"],
        user.id,
        "Better Auth lifts an expired ban at the next sign-in; bff simply does not hold it"
    );
    ban(&app, &user, "'2099-01-02T03:04:05Z'").await;
    let body = viewer(&app, &cookie).await;
    assert_eq!(first_code(&body), "ACCOUNT_BANNED", "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["bannedUntil"], "2099-01-02T03:04:05Z",
        "{body}"
    );
    // The response cache never answers for a banned person (the ban changed their version).
    ban(&app, &user, "now() - interval '1 second'").await;
    let dashboard = "{ viewer { id credits { balance } } }";
    let body = app.query_as(&user, dashboard, json!({})).await;
    assert_eq!(body["data"]["viewer"]["id"], user.id, "{body}");
    ban(&app, &user, "NULL").await;
    let body = app.query_as(&user, dashboard, json!({})).await;
    assert_eq!(first_code(&body), "ACCOUNT_BANNED", "{body}");
}

#[tokio::test]
async fn a_banned_persons_queued_jobs_wait_for_the_ban_to_end() {
    let app = TestApp::spawn_with(|env| {
        env.insert("SERVICE_JWT_SECRET", KEY.into());
    })
    .await;
    let banned = app.user("Queued").await;
    let other = app.user("Served").await;
    for user in [&banned, &other] {
        grant(&app, user, 1_000).await;
        crate::photo_jobs::new_job(&app, user, 1).await;
    }
    ban(&app, &banned, "NULL").await;
    let claim = "mutation { claimPhotoJobs(limit: 10) { id } }";
    let claimed = as_worker(&app, claim, json!({})).await;
    let ids: Vec<&Value> = claimed["data"]["claimPhotoJobs"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(ids.len(), 1, "only the other person's job: {claimed}");
    let mut conn = app.db().await;
    assert_eq!(invariant_violations(&mut conn).await, 0);
    ban(&app, &banned, "now() - interval '1 second'").await;
    let claimed = as_worker(&app, claim, json!({})).await;
    assert_eq!(
        claimed["data"]["claimPhotoJobs"].as_array().unwrap().len(),
        1,
        "claimed once the ban has ended: {claimed}"
    );
}

#[tokio::test]
async fn an_impersonated_session_reads_as_the_person_but_cannot_spend_or_erase() {
    let app = TestApp::spawn().await;
    let user = app.user("Impersonated").await;
    let admin = app.user("Admin").await;
    grant(&app, &user, 1_000).await;
    sql(
        &app,
        &format!(
            "UPDATE session SET \"impersonatedBy\" = '{}' WHERE \"userId\" = '{}'",
            admin.id, user.id
        ),
    )
    .await;
    let cookie = [("cookie", user.cookie())];
    assert_eq!(
        viewer(&app, &cookie).await["data"]["viewer"]["id"],
        user.id,
        "it reads as the person"
    );
    let before = state(&app, &user).await;
    for (what, mutation) in [
        (
            "buy",
            "mutation { purchaseCredits(pack: \"SMALL\") { url } }",
        ),
        (
            "subscribe",
            "mutation { subscribe(plan: PRO) { checkout { url } } }",
        ),
        ("cancel", "mutation { cancelSubscription { status } }"),
        ("resume", "mutation { resumeSubscription { status } }"),
        ("portal", "mutation { billingPortalUrl }"),
        (
            "create a job",
            "mutation { createPhotoJob(input: { prompt: \"p\", photoCount: 1 }) { photoJob { id } } }",
        ),
        (
            "delete the account",
            "mutation { deleteAccount(input: { confirmEmail: \"impersonated@example.com\" }) { deletedAt } }",
        ),
    ] {
        let (status, body) = app.post(mutation, json!({}), &cookie).await;
        assert_eq!(status, 200, "{what}: {body}");
        assert_eq!(
            first_code(&body),
            "IMPERSONATION_NOT_ALLOWED",
            "{what}: {body}"
        );
    }
    let (status, body) = export_status(&app, &cookie).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("IMPERSONATION_NOT_ALLOWED")),
        "{body}"
    );
    assert_eq!(state(&app, &user).await, before, "nothing changed");
    // The person's own session, beside the impersonation, spends as usual.
    let mut conn = app.db().await;
    let token = bff::dev::seed::create_session(
        &mut conn,
        &user.id,
        chrono::Utc::now() + chrono::Duration::days(1),
    )
    .await
    .unwrap();
    let own = TestUser {
        id: user.id.clone(),
        token,
    };
    crate::photo_jobs::new_job(&app, &own, 1).await;
    assert_eq!(state(&app, &user).await.0, before.0 + 1);
    assert_eq!(invariant_violations(&mut conn).await, 0);
}
