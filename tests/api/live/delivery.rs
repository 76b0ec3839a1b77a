//! What subscribers receive: their own changes as they commit, from any process, in either
//! protocol, in full.

use super::*;

#[tokio::test]
async fn subscribers_see_each_change_to_their_jobs_and_never_anothers() {
    let app = TestApp::spawn().await;
    let alice = app.user("Alice").await;
    let bob = app.user("Bob").await;
    let mut alice_all = Client::signed_in(&app, &alice).await;
    alice_all.subscribed("all", JOBS, json!({})).await;
    let mut bob_all = Client::signed_in(&app, &bob).await;
    bob_all.subscribed("all", JOBS, json!({})).await;
    let bobs = create_job(&app, &bob, "Bob's").await;
    let event = bob_all.next().await;
    assert_eq!(event["type"], "next", "{event}");
    assert_eq!(
        event["payload"]["data"]["photoJobUpdated"]["id"],
        bobs.as_str()
    );

    let job = create_job(&app, &alice, "Trips").await;
    let event = alice_all.next().await;
    assert_eq!(event["id"], "all");
    assert_eq!(
        event["payload"]["data"]["photoJobUpdated"],
        json!({ "id": job, "status": "PENDING", "groupName": "Trips", "deletedAt": null })
    );

    // Bob, even naming Alice's job, hears nothing of it.
    bob_all.subscribe("hers", JOBS, json!({ "id": job })).await;
    let refused = bob_all.next().await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["id"], "hers");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"], "NOT_FOUND",
        "{refused}"
    );

    // One job by id, on a second connection of Alice's.
    let mut alice_one = Client::signed_in(&app, &alice).await;
    alice_one
        .subscribed("one", JOBS, json!({ "id": job }))
        .await;
    let rename = "mutation($input: UpdatePhotoJobInput!) { updatePhotoJob(input: $input) { id } }";
    let body = app
        .query_as(
            &alice,
            rename,
            json!({ "input": { "id": job, "groupName": "Holidays" } }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    for client in [&mut alice_all, &mut alice_one] {
        let event = client.next().await;
        assert_eq!(
            event["payload"]["data"]["photoJobUpdated"]["groupName"], "Holidays",
            "{event}"
        );
    }

    // Deletion: the job once more, as it was, with deletedAt.
    let body = app
        .query_as(
            &alice,
            "mutation($id: ID!) { deletePhotoJob(id: $id) }",
            json!({ "id": job }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let deleted = alice_one.next().await;
    let deleted = &deleted["payload"]["data"]["photoJobUpdated"];
    assert_eq!(deleted["id"], job.as_str());
    assert_eq!(deleted["groupName"], "Holidays");
    assert!(deleted["deletedAt"].is_string(), "{deleted}");
    assert_eq!(
        alice_all.next().await["payload"]["data"]["photoJobUpdated"]["id"],
        job.as_str()
    );

    bob_all.quiet().await;

    // complete stops one subscription; the connection stays.
    alice_one
        .send(json!({ "type": "complete", "id": "one" }))
        .await;
    create_job(&app, &alice, "After").await;
    assert_eq!(
        alice_all.next().await["payload"]["data"]["photoJobUpdated"]["groupName"],
        "After"
    );
    alice_one.quiet().await;
}

#[tokio::test]
async fn credits_and_billing_changes_arrive_as_they_commit() {
    let app = TestApp::spawn().await;
    let user = app.user("Payer").await;
    let mut client = Client::signed_in(&app, &user).await;
    client
        .subscribe(
            "credits",
            "subscription { creditsChanged { balance freePhotosUsed } }",
            json!({}),
        )
        .await;
    client
        .subscribed(
            "billing",
            "subscription { billingSubscriptionChanged { plan status entitlements { monthlyPhotoQuota } } }",
            json!({}),
        )
        .await;
    // The helper opens the account and then credits it, committed one after the other: each
    // commit is told, and the last one tells the balance.
    ledger_change(&app, &user.id, "GRANT", 1250, "Welcome").await;
    loop {
        let event = client.next().await;
        assert_eq!(event["id"], "credits", "{event}");
        if event["payload"]["data"]["creditsChanged"]["balance"] == "12.50" {
            break;
        }
    }

    let mut conn = app.db().await;
    diesel_async::SimpleAsyncConnection::batch_execute(
        &mut conn,
        &format!(
            "INSERT INTO subscriptions (user_id, plan, status, stripe_customer_id, stripe_subscription_id, \
             current_period_start, current_period_end) VALUES ('{}', 'PRO', 'ACTIVE', 'cus_live', 'sub_live', \
             now(), now() + interval '30 days')",
            user.id
        ),
    )
    .await
    .unwrap();
    // (The grant may have told its account twice: each change is told.)
    let event = loop {
        let event = client.next().await;
        if event["id"] != "credits" {
            break event;
        }
        assert_eq!(
            event["payload"]["data"]["creditsChanged"]["balance"],
            "12.50"
        );
    };
    assert_eq!(event["id"], "billing", "{event}");
    assert_eq!(
        event["payload"]["data"]["billingSubscriptionChanged"]["plan"],
        "PRO"
    );
    assert_eq!(
        event["payload"]["data"]["billingSubscriptionChanged"]["status"],
        "ACTIVE"
    );

    // A rolled-back change is never told.
    let _ = diesel_async::SimpleAsyncConnection::batch_execute(
        &mut conn,
        &format!(
            "BEGIN; UPDATE credit_accounts SET free_photos_used = 2 WHERE user_id = '{}'; ROLLBACK;",
            user.id
        ),
    )
    .await;
    client.quiet().await;
}

#[tokio::test]
async fn two_processes_on_one_database_both_deliver() {
    let first = TestApp::spawn().await;
    let second = TestApp::spawn_on(first.database_url.clone(), |_| {}).await;
    let user = first.user("Everywhere").await;
    let mut on_first = Client::signed_in(&first, &user).await;
    let mut on_second = Client::signed_in(&second, &user).await;
    for client in [&mut on_first, &mut on_second] {
        client.subscribed("jobs", JOBS, json!({})).await;
    }
    // Changed through the second process: the first's subscriber hears it, and vice versa.
    create_job(&second, &user, "Via second").await;
    create_job(&first, &user, "Via first").await;
    for client in [&mut on_first, &mut on_second] {
        let a = client.next().await;
        let b = client.next().await;
        let groups = [
            a["payload"]["data"]["photoJobUpdated"]["groupName"].clone(),
            b["payload"]["data"]["photoJobUpdated"]["groupName"].clone(),
        ];
        assert_eq!(groups, [json!("Via second"), json!("Via first")]);
    }
}

#[tokio::test]
async fn the_legacy_protocol_delivers_too() {
    let app = TestApp::spawn_with(|env| {
        env.insert("BFF_WS_KEEPALIVE_MS", "200".into());
    })
    .await;
    let user = app.user("Old client").await;
    let headers = [("cookie", user.cookie()), ("origin", APP_ORIGIN.to_owned())];
    let mut client = Client::connect(&app, LEGACY, &headers).await.unwrap();
    client
        .send(json!({ "type": "connection_init", "payload": {} }))
        .await;
    assert_eq!(client.next().await["type"], "connection_ack");
    // Keep-alives ("ka") flow; the helper skips them, so look at raw frames once.
    let ka = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(Ok(Message::Text(text))) = client.socket.next().await
                && text.contains("\"ka\"")
            {
                return;
            }
        }
    })
    .await;
    assert!(ka.is_ok(), "a ka message within the keepalive period");
    client
        .send(json!({ "type": "start", "id": "7", "payload": { "query": JOBS } }))
        .await;
    // The stop's answer proves the starts before it were handled.
    client
        .send(json!({ "type": "start", "id": "8", "payload": { "query": "subscription { creditsChanged { balance } }" } }))
        .await;
    client.send(json!({ "type": "stop", "id": "8" })).await;
    assert_eq!(
        client.next().await,
        json!({ "type": "complete", "id": "8" })
    );
    create_job(&app, &user, "Legacy").await;
    let event = client.next().await;
    assert_eq!(event["type"], "data", "{event}");
    assert_eq!(event["id"], "7");
    assert_eq!(
        event["payload"]["data"]["photoJobUpdated"]["groupName"],
        "Legacy"
    );
    client.send(json!({ "type": "connection_terminate" })).await;
    assert_eq!(client.closed().await.0, 1000);
}

#[tokio::test]
async fn a_bulk_change_reaches_a_subscriber_in_full() {
    use diesel_async::SimpleAsyncConnection;
    let app = TestApp::spawn().await;
    let user = app.user("Bulk").await;
    let mut conn = app.db().await;
    conn.batch_execute(&format!(
        "INSERT INTO photo_jobs (user_id, prompt, photo_count, cost_cents) \
         SELECT '{}', 'job ' || n, 1, 0 FROM generate_series(1, 300) n",
        user.id
    ))
    .await
    .unwrap();
    let mut client = Client::signed_in(&app, &user).await;
    client.subscribed("1", JOBS, json!({})).await;
    // One statement, 300 events at once: more than a subscriber's buffer (64), so it is
    // caught up from the database, and still ends with every job's new state.
    conn.batch_execute(&format!(
        "UPDATE photo_jobs SET group_name = 'bulk' WHERE user_id = '{}'",
        user.id
    ))
    .await
    .unwrap();
    let mut bulk = std::collections::HashSet::new();
    while bulk.len() < 300 {
        let event = client.next().await;
        let job = &event["payload"]["data"]["photoJobUpdated"];
        assert!(event.get("errors").is_none(), "{event}");
        if job["groupName"] == "bulk" {
            bulk.insert(job["id"].as_str().unwrap().to_owned());
        }
    }
}
