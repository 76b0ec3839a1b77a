//! Connections: protocol violations, shutdown, slow and silent peers.

use super::*;

/// Held by the tests whose load or timing would upset each other when run side by side.
static TIMING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn protocol_violations_close_with_their_codes() {
    let app = TestApp::spawn_with(|env| {
        env.insert("BFF_WS_INIT_TIMEOUT_MS", "300".into());
        env.insert("BFF_WS_MAX_SUBSCRIPTIONS", "2".into());
        env.insert("BFF_WS_MAX_CONNECTIONS_PER_VIEWER", "3".into());
    })
    .await;
    let user = app.user("Rude").await;

    // No connection_init in time.
    let mut client = Client::connect(&app, TRANSPORT, &[]).await.unwrap();
    assert_eq!(client.closed().await.0, 4408);

    // Subscribe before the ack.
    let mut client = Client::connect(&app, TRANSPORT, &[]).await.unwrap();
    client.subscribe("1", JOBS, json!({})).await;
    assert_eq!(client.closed().await, (4401, "Unauthorized".to_owned()));

    // A second connection_init.
    let mut client = acked(&app, &user).await;
    client.send(json!({ "type": "connection_init" })).await;
    assert_eq!(client.closed().await.0, 4429);

    // The same id twice.
    let mut client = acked(&app, &user).await;
    client.subscribe("same", JOBS, json!({})).await;
    client.subscribe("same", JOBS, json!({})).await;
    assert_eq!(client.closed().await.0, 4409);

    // Malformed messages.
    for bad in [
        "not json",
        "[1]",
        r#"{"id":"1"}"#,
        r#"{"type":"subscribe","id":1}"#,
        r#"{"type":"launch"}"#,
    ] {
        let mut client = acked(&app, &user).await;
        client.socket.send(Message::Text(bad.into())).await.unwrap();
        assert_eq!(client.closed().await.0, 4400, "{bad}");
    }

    // Too big a message.
    let mut client = acked(&app, &user).await;
    let huge = format!(
        "subscription {{ creditsChanged {{ balance }} }} # {}",
        "x".repeat(70_000)
    );
    client.subscribe("big", &huge, json!({})).await;
    assert_eq!(client.closed().await.0, 1009);

    // Queries and mutations go over HTTP; bad documents and too many subscriptions get an
    // error for that operation and the connection stays.
    let mut client = acked(&app, &user).await;
    client.subscribe("q", "{ viewer { id } }", json!({})).await;
    let error = client.next().await;
    assert_eq!(
        (error["type"].as_str(), error["id"].as_str()),
        (Some("error"), Some("q")),
        "{error}"
    );
    assert_eq!(error["payload"][0]["extensions"]["code"], "BAD_USER_INPUT");
    client
        .subscribe("m", "mutation { deletePhotoJob(id: \"x\") }", json!({}))
        .await;
    assert_eq!(client.next().await["type"], "error");
    client
        .subscribe(
            "typo",
            "subscription { creditsChangd { balance } }",
            json!({}),
        )
        .await;
    let error = client.next().await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(
        error["payload"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{error}"
    );
    client.subscribe("1", JOBS, json!({})).await;
    client.subscribe("2", JOBS, json!({})).await;
    client.subscribe("3", JOBS, json!({})).await;
    let error = client.next().await;
    assert_eq!(error["id"], "3", "{error}");
    assert_eq!(error["payload"][0]["extensions"]["code"], "RATE_LIMITED");
    client.send(json!({ "type": "ping" })).await;
    assert_eq!(client.next().await["type"], "pong", "still open");

    // Connections per viewer: this one is the third; a fourth is closed with 1013.
    let _second = acked(&app, &user).await;
    let _third = acked(&app, &user).await;
    let mut fourth = Client::connect(
        &app,
        TRANSPORT,
        &[("cookie", user.cookie()), ("origin", APP_ORIGIN.to_owned())],
    )
    .await
    .unwrap();
    fourth.send(json!({ "type": "connection_init" })).await;
    assert_eq!(fourth.closed().await.0, 1013);
}

#[tokio::test]
async fn shutdown_closes_subscriptions_with_1001_and_waits_for_them() {
    use crate::support::{base_env, fresh_database};
    let database_url = fresh_database().await;
    let env = base_env(&database_url);
    let config = bff::config::Config::from_lookup(|k| env.get(k).cloned()).unwrap();
    let pool = bff::db::pool_from_config(&config.database).unwrap();
    let app = bff::app::App::new(&config, pool.clone()).unwrap();
    app.start();
    let app = bff::http::router(&app);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(bff::http::server::serve_until(
        listener,
        app,
        config.server.timeouts,
        async move {
            let _ = stopped.await;
        },
    ));
    let test_app = TestApp {
        addr,
        database_url: database_url.clone(),
        client: reqwest::Client::new(),
        pool,
    };
    let user = test_app.user("Draining").await;
    let mut client = Client::signed_in(&test_app, &user).await;
    client.subscribed("1", JOBS, json!({})).await;
    let started = std::time::Instant::now();
    stop.send(()).unwrap();
    assert_eq!(client.closed().await.0, 1001);
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server stops once its connections have closed")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A person with 300 jobs with long prompts (each change of them all is 300 events of about
/// 2 KB), subscribed to them all; and a database connection.
async fn heavy_subscriber(app: &TestApp) -> (TestUser, Client, diesel_async::AsyncPgConnection) {
    use diesel_async::SimpleAsyncConnection;
    let user = app.user("Sleepy").await;
    let mut conn = app.db().await;
    conn.batch_execute(&format!(
        "INSERT INTO photo_jobs (user_id, prompt, photo_count, cost_cents) \
         SELECT '{}', repeat('p', 1990) || n, 1, 0 FROM generate_series(1, 300) n",
        user.id
    ))
    .await
    .unwrap();
    let mut client = Client::signed_in(app, &user).await;
    client
        .subscribed(
            "1",
            "subscription { photoJobUpdated { id prompt } }",
            json!({}),
        )
        .await;
    (user, client, conn)
}

#[tokio::test]
async fn a_client_that_does_not_read_is_disconnected() {
    use diesel_async::SimpleAsyncConnection;
    let app = TestApp::spawn().await;
    let (user, mut sleepy, mut conn) = heavy_subscriber(&app).await;
    // It stops reading; 12,000 events (about 24 MB) are made for it.
    for round in 0..40 {
        conn.batch_execute(&format!(
            "UPDATE photo_jobs SET group_name = 'round {round}' WHERE user_id = '{}'",
            user.id
        ))
        .await
        .unwrap();
    }
    // After the write timeout (10 s) the server gives up on it: reading now finds fewer
    // events than were made, then the end of the connection.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let mut received = 0;
    let ended = loop {
        match sleepy.next_within(Duration::from_secs(5)).await {
            Ok(message) => {
                assert_eq!(message["type"], "next", "{message}");
                received += 1;
            }
            Err(End::Closed(0, _)) => break false,
            Err(_) => break true,
        }
    };
    assert!(ended, "the connection ended ({received} events read)");
    assert!(received < 12_000, "{received}");
    // The process is fine, and the user can subscribe again.
    let mut again = Client::signed_in(&app, &user).await;
    again.subscribed("1", JOBS, json!({})).await;
}

#[tokio::test]
async fn a_stalled_client_among_many_delays_nobody_and_is_cut_off() {
    use diesel_async::SimpleAsyncConnection;
    // Its load would upset the timing of the silent peer's test.
    let _alone = TIMING.lock().await;
    let app = TestApp::spawn().await;
    // The stalled one: subscribed to 300 jobs with long prompts, then it stops reading.
    let (sleepy, mut stalled, mut conn) = heavy_subscriber(&app).await;
    // Twenty others, each watching their own job (subscribed first, so that its creation's
    // event, however late the listener is, is the first they read).
    let mut others = Vec::new();
    for i in 0..20 {
        let user = app.user(&format!("Reader {i}")).await;
        let mut client = Client::signed_in(&app, &user).await;
        client.subscribed("1", JOBS, json!({})).await;
        let job = app
            .insert_job(&user.id, chrono::Utc::now(), "PENDING", Some("g"))
            .await;
        let created = client.next().await;
        assert_eq!(created["type"], "next", "{created}");
        others.push((user, job, client));
    }
    // Round after round: the stalled client's 300 jobs change (about 600 KB of events for it
    // each time), and each other's job changes once; the others' latency is measured.
    let mut latencies = Vec::new();
    for round in 0..12 {
        conn.batch_execute(&format!(
            "UPDATE photo_jobs SET group_name = 'round {round}' WHERE user_id = '{}'",
            sleepy.id
        ))
        .await
        .unwrap();
        let started = std::time::Instant::now();
        for (_, job, _) in &others {
            conn.batch_execute(&format!(
                "UPDATE photo_jobs SET group_name = 'round {round}' WHERE id = {job}"
            ))
            .await
            .unwrap();
        }
        for (_, _, client) in &mut others {
            let event = client.next().await;
            assert_eq!(
                event["payload"]["data"]["photoJobUpdated"]["groupName"],
                format!("round {round}"),
                "{event}"
            );
            latencies.push(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    latencies.sort();
    let worst = *latencies.last().unwrap();
    println!(
        "others' latency with a stalled client: p50 {:?}, max {worst:?} ({} events)",
        latencies[latencies.len() / 2],
        latencies.len()
    );
    // Nobody waited for the stalled one: its writes block for up to 10 s before it is cut off.
    assert!(worst < Duration::from_secs(2), "{worst:?}");
    // It is cut off, with the documented code (1008), once a write has waited 10 s.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (code, reason) = loop {
        match stalled.next_within(Duration::from_secs(10)).await {
            Ok(_) => continue,
            Err(End::Closed(0, _)) => panic!("the stalled client was not cut off"),
            Err(End::Closed(code, reason)) => break (code, reason),
            Err(other) => panic!("{other:?}"),
        }
    };
    assert!(
        code == 1008 || code == 1006,
        "closed with {code} {reason:?}"
    );
}

#[tokio::test]
async fn a_silent_peer_is_dropped_and_the_process_limit_holds() {
    // Timed in hundreds of milliseconds: not beside the stalled client's load.
    let _alone = TIMING.lock().await;
    let app = TestApp::spawn_with(|env| {
        env.insert("BFF_WS_KEEPALIVE_MS", "200".into());
        env.insert("BFF_WS_MAX_CONNECTIONS", "2".into());
    })
    .await;
    let user = app.user("Quiet").await;
    // Reading (the WebSocket layer answers the server's ping frames) keeps it open.
    let mut alive = Client::signed_in(&app, &user).await;
    alive.quiet().await;
    alive.send(json!({ "type": "ping" })).await;
    assert_eq!(alive.next().await["type"], "pong");
    drop(alive);
    // (Its slot frees once the server has read the end of it.)
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Past the process's limit of 2 open connections: 1013.
    let _first = Client::signed_in(&app, &user).await;
    let mut second = Client::signed_in(&app, &user).await;
    let mut third = Client::connect(&app, TRANSPORT, &[]).await.unwrap();
    assert_eq!(third.closed().await.0, 1013);
    // A peer that answers nothing for two keepalive periods is dropped. It stays silent while
    // it reads (no pong to the pings queued before the close: written to a closed socket, one
    // would reset the connection and lose the close frame).
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let close = tokio::time::timeout(WAIT, async {
        loop {
            match second.socket.next().await {
                Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                other => panic!("the connection ended without a close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("the server closed the silent peer");
    assert_eq!(close, Some(1011));
    // The slots are free again.
    let mut again = Client::signed_in(&app, &user).await;
    again.send(json!({ "type": "ping" })).await;
    assert_eq!(again.next().await["type"], "pong");
}
