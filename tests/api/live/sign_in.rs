//! Who may subscribe: bearers and cookies, failed sign-ins, and the end of a session.

use super::*;
use crate::support::{Tool, requires};

#[tokio::test]
async fn bearers_in_connection_init_sign_in_and_bad_ones_close_4403() {
    if !requires(&[Tool::OpenSsl]) {
        return;
    }
    let app = TestApp::spawn().await;
    let user = app.user("Mobile").await;
    let signed = bff::auth::signed_token(&user.token, crate::support::SECRET);
    let (private, x) = crate::jwt::key_pair("live");
    crate::jwt::add_key(&app, "live-key", &x, "EdDSA", false).await;
    let jwt = crate::jwt::token(&private, "live-key", &user.id, crate::jwt::ISSUER, 600);
    for bearer in [user.token.clone(), signed, jwt] {
        let mut client = Client::connect(&app, TRANSPORT, &[]).await.unwrap();
        client
            .send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {bearer}") } }))
            .await;
        assert_eq!(client.next().await["type"], "connection_ack", "{bearer}");
        client.subscribed("1", JOBS, json!({})).await;
        create_job(&app, &user, "Mobile").await;
        let event = client.next().await;
        assert_eq!(
            event["payload"]["data"]["photoJobUpdated"]["groupName"], "Mobile",
            "{event}"
        );
    }
    // The upgrade's own Authorization header works too.
    let mut client = Client::connect(
        &app,
        TRANSPORT,
        &[("authorization", format!("Bearer {}", user.token))],
    )
    .await
    .unwrap();
    client.send(json!({ "type": "connection_init" })).await;
    assert_eq!(client.next().await["type"], "connection_ack");

    for payload in [
        json!({ "authorization": "Bearer not-a-session" }),
        json!({ "authorization": format!("Bearer {}.forged", user.token) }),
        json!({}),
    ] {
        let mut client = Client::connect(&app, TRANSPORT, &[]).await.unwrap();
        client
            .send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        assert_eq!(client.closed().await.0, 4403, "{payload}");
    }
}

#[tokio::test]
async fn cookies_count_only_from_an_allowed_origin() {
    let app = TestApp::spawn().await;
    let user = app.user("Browser").await;
    // A page on another site: refused before the upgrade.
    let foreign = [
        ("cookie", user.cookie()),
        ("origin", "https://evil.example".to_owned()),
    ];
    assert_eq!(
        Client::connect(&app, TRANSPORT, &foreign).await.err(),
        Some(End::Refused(403))
    );
    // No Origin at all (not a browser): the cookie is not enough.
    let mut client = Client::connect(&app, TRANSPORT, &[("cookie", user.cookie())])
        .await
        .unwrap();
    client.send(json!({ "type": "connection_init" })).await;
    assert_eq!(client.closed().await.0, 4403);
    // bff's own origin (GraphiQL) and the app's both are.
    for origin in [format!("http://{}", app.addr), APP_ORIGIN.to_owned()] {
        let headers = [("cookie", user.cookie()), ("origin", origin)];
        let mut client = Client::connect(&app, TRANSPORT, &headers).await.unwrap();
        client.send(json!({ "type": "connection_init" })).await;
        assert_eq!(client.next().await["type"], "connection_ack");
    }
    // No sub-protocol this server speaks.
    assert_eq!(
        Client::connect(&app, "mqtt", &[]).await.err(),
        Some(End::Refused(400))
    );
}

#[tokio::test]
async fn signing_out_ends_the_subscriptions_within_the_check_interval() {
    let app = TestApp::spawn_with(|env| {
        env.insert("BFF_WS_SESSION_CHECK_MS", "300".into());
    })
    .await;
    let user = app.user("Leaving").await;
    let other = app.user("Staying").await;
    let mut leaving = Client::signed_in(&app, &user).await;
    leaving.subscribed("1", JOBS, json!({})).await;
    let mut staying = Client::signed_in(&app, &other).await;
    staying.subscribed("1", JOBS, json!({})).await;
    // Better Auth's sign-out deletes the session row.
    let mut conn = app.db().await;
    diesel_async::SimpleAsyncConnection::batch_execute(
        &mut conn,
        &format!("DELETE FROM session WHERE token = '{}'", user.token),
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    assert_eq!(leaving.closed().await.0, 4403);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    staying.send(json!({ "type": "ping" })).await;
    assert_eq!(
        staying.next().await["type"],
        "pong",
        "the other session is untouched"
    );
}

#[tokio::test]
async fn failed_sign_ins_are_paid_from_the_address_rate_bucket() {
    let app = TestApp::spawn_with(|env| {
        env.insert("BFF_MAX_COST", "100".into());
        env.insert("BFF_RATE_LIMIT_BURST", "250".into());
        env.insert("BFF_RATE_LIMIT_PER_SECOND", "1".into());
    })
    .await;
    let user = app.user("Guessed").await;
    // Two guessed bearers (100 each) and the bucket of 250 is nearly empty ...
    for _ in 0..2 {
        let mut client = Client::connect(&app, TRANSPORT, &[]).await.unwrap();
        client
            .send(json!({ "type": "connection_init", "payload": { "authorization": "Bearer guessed-token" } }))
            .await;
        assert_eq!(client.closed().await.0, 4403);
    }
    // ... so the next attempts from that address, even with a valid session, wait.
    let mut refused = 0;
    for _ in 0..60 {
        let mut client = Client::connect(&app, TRANSPORT, &[]).await.unwrap();
        client
            .send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {}", user.token) } }))
            .await;
        match client.next_within(WAIT).await {
            Ok(message) => assert_eq!(message["type"], "connection_ack"),
            Err(End::Closed(code, reason)) => {
                assert_eq!(code, 1013, "{reason}");
                assert!(reason.starts_with("Too many attempts"), "{reason}");
                refused += 1;
                break;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(refused, 1, "the address's bucket ran out");
}

#[tokio::test]
async fn a_deleted_person_is_disconnected_at_once_whatever_their_credential() {
    if !requires(&[Tool::OpenSsl]) {
        return;
    }
    let app = TestApp::spawn().await;
    let user = app.user("Erased").await;
    let other = app.user("Kept").await;
    let (private, x) = crate::jwt::key_pair("erased");
    crate::jwt::add_key(&app, "erased-key", &x, "EdDSA", false).await;
    let jwt = crate::jwt::token(&private, "erased-key", &user.id, crate::jwt::ISSUER, 600);
    let mut mobile = Client::bearer_watching_jobs(&app, &jwt).await;
    let mut browser = Client::signed_in(&app, &user).await;
    browser.subscribed("1", JOBS, json!({})).await;
    let mut staying = Client::signed_in(&app, &other).await;
    staying.subscribed("1", JOBS, json!({})).await;
    // Better Auth's deleteUser, by SQL: the person has no money rows, and a JWT names no
    // session (the finding: such a connection stayed open until the JWT expired).
    let mut conn = app.db().await;
    diesel_async::SimpleAsyncConnection::batch_execute(
        &mut conn,
        &format!(
            "DELETE FROM session WHERE \"userId\" = '{0}'; DELETE FROM account WHERE \"userId\" = '{0}'; \
             DELETE FROM \"user\" WHERE id = '{0}'",
            user.id
        ),
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    assert_eq!(mobile.closed().await.0, 4403);
    assert_eq!(browser.closed().await.0, 4403);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}: the session check interval is a minute; the deletion itself must close them",
        started.elapsed()
    );
    staying.send(json!({ "type": "ping" })).await;
    assert_eq!(staying.next().await["type"], "pong");
    // The periodic check agrees: a JWT of a person who is gone signs nobody in.
    let credential = bff::auth::Credential::Jwt(jwt, crate::jwt::ISSUER.to_owned());
    assert_eq!(
        bff::auth::recheck::still_valid(&mut conn, &[credential])
            .await
            .unwrap(),
        [false]
    );
}
