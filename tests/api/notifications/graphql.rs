//! The notification API beyond the first test's path: push tokens moving between people and
//! deleted when the provider no longer knows them, preferences per kind and channel (bad input
//! changes nothing), and `notificationAdded` over WebSocket to its owner only.

use std::time::Duration;

use serde_json::json;

use super::{REGISTER, app, completed_job, count, customer, deliveries};
use super::{mail::Mail, push_fake::FakeExpo};
use crate::live::Client;
use crate::support::{Tool, eventually, first_code, requires};

#[tokio::test]
async fn a_push_token_belongs_to_one_person_and_one_the_provider_does_not_know_is_deleted() {
    if !requires(&[Tool::Smtp]) {
        return;
    }
    let (mail, expo) = (Mail::start().await, FakeExpo::start().await);
    let app = app(&mail, &expo, 0).await;
    let (ada, bob) = (customer(&app, "Ada").await, customer(&app, "Bob").await);
    let shared = "ExponentPushToken[family-tablet-01]";
    let devices =
        |user: &str| format!("SELECT count(*) AS n FROM push_devices WHERE user_id = '{user}'");
    for user in [&ada, &bob] {
        let registered = app
            .query_as(user, REGISTER, json!({ "token": shared }))
            .await;
        assert!(registered["errors"].is_null(), "{registered}");
    }
    // The tablet now signs Bob in: it is his alone, and Ada's jobs no longer push to it.
    assert_eq!(count(&app, &devices(&ada.id)).await, 0);
    assert_eq!(count(&app, &devices(&bob.id)).await, 1);
    completed_job(&app, &ada).await;
    mail.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(expo.messages().is_empty(), "{:?}", expo.messages());
    assert_eq!(
        deliveries(&app, &ada).await,
        [("EMAIL".to_owned(), "SENT".to_owned())]
    );

    // A token the provider answers DeviceNotRegistered for is deleted; the delivery is not
    // retried (nothing left to send to).
    let gone = "ExponentPushToken[gone-old-phone]";
    let registered = app.query_as(&bob, REGISTER, json!({ "token": gone })).await;
    assert!(registered["errors"].is_null(), "{registered}");
    completed_job(&app, &bob).await;
    eventually("the old phone's token is deleted", async || {
        count(
            &app,
            &format!("SELECT count(*) AS n FROM push_devices WHERE token = '{gone}'"),
        )
        .await
            == 0
    })
    .await;
    assert_eq!(count(&app, &devices(&bob.id)).await, 1, "the tablet stays");
    eventually("the push reached the tablet", async || {
        expo.messages().iter().any(|m| m["to"] == shared)
    })
    .await;

    // Unregistering (at sign-out) removes the viewer's own device only: Ada's attempt on
    // Bob's token answers false and changes nothing.
    let unregister = "mutation($token: String!) { unregisterPushDevice(input: { token: $token }) }";
    let stolen = app
        .query_as(&ada, unregister, json!({ "token": shared }))
        .await;
    assert_eq!(stolen["data"]["unregisterPushDevice"], false, "{stolen}");
    assert_eq!(count(&app, &devices(&bob.id)).await, 1);
    let own = app
        .query_as(&bob, unregister, json!({ "token": shared }))
        .await;
    assert_eq!(own["data"]["unregisterPushDevice"], true, "{own}");
    assert_eq!(count(&app, &devices(&bob.id)).await, 0);
}

#[tokio::test]
async fn preferences_switch_email_and_push_per_kind_and_bad_input_changes_nothing() {
    if !requires(&[Tool::Smtp]) {
        return;
    }
    let (mail, expo) = (Mail::start().await, FakeExpo::start().await);
    let app = app(&mail, &expo, 0).await;
    let user = customer(&app, "Cleo").await;
    let read = "{ viewer { notificationPreferences { kind inbox email push } } }";
    let prefs = app.query_as(&user, read, json!({})).await;
    let list = prefs["data"]["viewer"]["notificationPreferences"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(list.len(), 8, "{prefs}");
    let of = |list: &[serde_json::Value], kind: &str| {
        list.iter().find(|p| p["kind"] == kind).cloned().unwrap()
    };
    assert_eq!(
        of(&list, "JOB_COMPLETED"),
        json!({ "kind": "JOB_COMPLETED", "inbox": true, "email": true, "push": true })
    );
    assert_eq!(
        of(&list, "PURCHASE_REFUNDED")["push"],
        false,
        "documented default"
    );

    let update = "mutation($p: [NotificationPreferenceInput!]!) { updateNotificationPreferences(input: { preferences: $p }) { kind email push } }";
    // The same kind twice: refused, and nothing changes.
    let twice = app
        .query_as(
            &user,
            update,
            json!({ "p": [
            { "kind": "JOB_COMPLETED", "email": false },
            { "kind": "JOB_COMPLETED", "email": true },
        ] }),
        )
        .await;
    assert_eq!(first_code(&twice), "BAD_USER_INPUT", "{twice}");
    let unchanged = app.query_as(&user, read, json!({})).await;
    assert_eq!(unchanged, prefs);

    // Email off for finished jobs, push left as it was: the next job is in the inbox and pushed, not emailed.
    let off = app
        .query_as(
            &user,
            update,
            json!({ "p": [{ "kind": "JOB_COMPLETED", "email": false }] }),
        )
        .await;
    assert!(off["errors"].is_null(), "{off}");
    let now = app.query_as(&user, read, json!({})).await;
    let list = now["data"]["viewer"]["notificationPreferences"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        of(&list, "JOB_COMPLETED"),
        json!({ "kind": "JOB_COMPLETED", "inbox": true, "email": false, "push": true })
    );
    assert_eq!(
        of(&list, "JOB_FAILED")["email"],
        true,
        "other kinds unchanged"
    );
    let registered = app
        .query_as(
            &user,
            REGISTER,
            json!({ "token": "ExponentPushToken[cleo-1]" }),
        )
        .await;
    assert!(registered["errors"].is_null(), "{registered}");
    completed_job(&app, &user).await;
    eventually("the push is sent", async || expo.messages().len() == 1).await;
    assert_eq!(
        deliveries(&app, &user).await,
        [("PUSH".to_owned(), "SENT".to_owned())]
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        mail.messages().is_empty(),
        "no email: {:?}",
        mail.messages()
    );
}

#[tokio::test]
async fn notification_added_reaches_its_owner_over_websocket_and_nobody_else() {
    let app = crate::support::TestApp::spawn_with(|env| {
        env.insert("SERVICE_JWT_SECRET", crate::worker::KEY.into());
        env.insert("FREE_PHOTO_ALLOWANCE", "0".into());
    })
    .await;
    let (owner, other) = (customer(&app, "Dora").await, customer(&app, "Eli").await);
    let subscription = "subscription { notificationAdded { kind title readAt subject { __typename ... on PhotoJob { id status } } } }";
    let mut mine = Client::signed_in(&app, &owner).await;
    mine.subscribed("n", subscription, json!({})).await;
    let mut theirs = Client::signed_in(&app, &other).await;
    theirs.subscribed("n", subscription, json!({})).await;
    let job = completed_job(&app, &owner).await;
    let next = mine.next_within(Duration::from_secs(10)).await.unwrap();
    assert_eq!(next["type"], "next", "{next}");
    assert_eq!(
        next["payload"]["data"]["notificationAdded"],
        json!({ "kind": "JOB_COMPLETED", "title": "Your photos are ready", "readAt": null,
                "subject": { "__typename": "PhotoJob", "id": job, "status": "COMPLETED" } })
    );
    assert!(
        theirs
            .next_within(Duration::from_millis(700))
            .await
            .is_err(),
        "another person hears nothing"
    );
}
