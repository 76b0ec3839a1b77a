//! Subscriptions over the real WebSocket surface (both protocols), fanned out through the
//! database's notifications: delivery, isolation, authentication, revocation, several
//! processes, and every protocol violation's close code.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::support::{APP_ORIGIN, TestApp, TestUser, ledger_change};

const TRANSPORT: &str = "graphql-transport-ws";
const LEGACY: &str = "graphql-ws";
/// Long enough for a notification's round trip on a busy test machine.
const WAIT: Duration = Duration::from_secs(10);
/// How long "nothing arrives" is watched for.
const QUIET: Duration = Duration::from_millis(700);

pub(crate) const JOBS: &str =
    "subscription($id: ID) { photoJobUpdated(id: $id) { id status groupName deletedAt } }";

/// A WebSocket client speaking one of the protocols by hand.
pub(crate) struct Client {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// Why a connection attempt or a connection ended.
#[derive(Debug, PartialEq)]
pub(crate) enum End {
    /// Refused before upgrading, with this HTTP status.
    Refused(u16),
    /// Closed with this code (and reason).
    Closed(u16, String),
}

impl Client {
    pub(crate) async fn connect(
        app: &TestApp,
        protocol: &str,
        headers: &[(&str, String)],
    ) -> Result<Client, End> {
        let mut request = format!("ws://{}/graphql", app.addr)
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(protocol).unwrap(),
        );
        for (name, value) in headers {
            request.headers_mut().insert(
                tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, response)) => {
                assert_eq!(
                    response.headers()["sec-websocket-protocol"],
                    protocol,
                    "the server speaks the protocol asked for"
                );
                Ok(Client { socket })
            }
            Err(WsError::Http(response)) => Err(End::Refused(response.status().as_u16())),
            Err(other) => panic!("WebSocket connection failed: {other}"),
        }
    }

    /// Connected and acknowledged with a browser's cookie from the app's origin.
    pub(crate) async fn signed_in(app: &TestApp, user: &TestUser) -> Client {
        let headers = [("cookie", user.cookie()), ("origin", APP_ORIGIN.to_owned())];
        let mut client = Client::connect(app, TRANSPORT, &headers).await.unwrap();
        client.send(json!({ "type": "connection_init" })).await;
        assert_eq!(client.next().await["type"], "connection_ack");
        client
    }

    pub(crate) async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
    }

    pub(crate) async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({ "type": "subscribe", "id": id, "payload": { "query": query, "variables": variables } }))
            .await;
    }

    /// Subscribes and waits until the server has started the subscription (it answers a
    /// ping only after): what commits from then on reaches it.
    pub(crate) async fn subscribed(&mut self, id: &str, query: &str, variables: Value) {
        self.subscribe(id, query, variables).await;
        self.send(json!({ "type": "ping" })).await;
        let pong = self.next().await;
        assert_eq!(pong["type"], "pong", "{pong}");
    }

    /// The next protocol message (server pings answered and skipped), within `wait`.
    pub(crate) async fn next_within(&mut self, wait: Duration) -> Result<Value, End> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.socket.next()).await;
            match frame {
                Err(_) => return Err(End::Closed(0, "nothing arrived".into())),
                Ok(None) => return Err(End::Closed(1006, "gone".into())),
                Ok(Some(Err(error))) => return Err(End::Closed(1006, error.to_string())),
                Ok(Some(Ok(Message::Text(text)))) => {
                    let message: Value = serde_json::from_str(&text).unwrap();
                    match message["type"].as_str() {
                        // (The server may have closed meanwhile: the close frame comes next.)
                        Some("ping") => {
                            let pong = Message::Text(json!({ "type": "pong" }).to_string().into());
                            let _ = self.socket.send(pong).await;
                        }
                        Some("ka") => {}
                        _ => return Ok(message),
                    }
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    let (code, reason) = frame
                        .map(|CloseFrame { code, reason }| (u16::from(code), reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    return Err(End::Closed(code, reason));
                }
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    pub(crate) async fn next(&mut self) -> Value {
        self.next_within(WAIT).await.expect("a message")
    }

    /// Asserts nothing but pings arrives for a while.
    pub(crate) async fn quiet(&mut self) {
        match self.next_within(QUIET).await {
            Err(End::Closed(0, _)) => {}
            other => panic!("expected nothing, got {other:?}"),
        }
    }

    /// The close code (and reason) the server ends the connection with.
    pub(crate) async fn closed(&mut self) -> (u16, String) {
        loop {
            match self.next_within(WAIT).await {
                Err(End::Closed(0, _)) => panic!("the server did not close the connection"),
                Err(End::Closed(code, reason)) => return (code, reason),
                Err(End::Refused(status)) => panic!("refused {status}"),
                Ok(_) => {}
            }
        }
    }
}

pub(crate) async fn create_job(app: &TestApp, user: &TestUser, group: &str) -> String {
    let body = app
        .query_as(
            user,
            "mutation($input: CreatePhotoJobInput!) { createPhotoJob(input: $input) { photoJob { id } } }",
            json!({ "input": { "prompt": "Brighten", "photoCount": 1, "groupName": group } }),
        )
        .await;
    body["data"]["createPhotoJob"]["photoJob"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned()
}

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
async fn bearers_in_connection_init_sign_in_and_bad_ones_close_4403() {
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

/// A fresh connection, acknowledged, for `user`.
async fn acked(app: &TestApp, user: &TestUser) -> Client {
    Client::signed_in(app, user).await
}

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

#[tokio::test]
async fn a_client_that_does_not_read_is_disconnected() {
    use diesel_async::SimpleAsyncConnection;
    let app = TestApp::spawn().await;
    let user = app.user("Sleepy").await;
    // 300 jobs with long prompts: each change of them all is 300 events of about 2 KB.
    let mut conn = app.db().await;
    conn.batch_execute(&format!(
        "INSERT INTO photo_jobs (user_id, prompt, photo_count, cost_cents) \
         SELECT '{}', repeat('p', 1990) || n, 1, 0 FROM generate_series(1, 300) n",
        user.id
    ))
    .await
    .unwrap();
    let mut sleepy = Client::signed_in(&app, &user).await;
    sleepy
        .subscribed(
            "1",
            "subscription { photoJobUpdated { id prompt } }",
            json!({}),
        )
        .await;
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

#[tokio::test]
async fn a_silent_peer_is_dropped_and_the_process_limit_holds() {
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
    let app = TestApp::spawn().await;
    let user = app.user("Erased").await;
    let other = app.user("Kept").await;
    let (private, x) = crate::jwt::key_pair("erased");
    crate::jwt::add_key(&app, "erased-key", &x, "EdDSA", false).await;
    let jwt = crate::jwt::token(&private, "erased-key", &user.id, crate::jwt::ISSUER, 600);
    let mut mobile = Client::connect(&app, TRANSPORT, &[]).await.unwrap();
    mobile
        .send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {jwt}") } }))
        .await;
    assert_eq!(mobile.next().await["type"], "connection_ack");
    mobile.subscribed("1", JOBS, json!({})).await;
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
