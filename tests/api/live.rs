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

mod changes;
mod connections;
mod delivery;
mod progress;
mod sign_in;

pub(crate) const TRANSPORT: &str = "graphql-transport-ws";
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

    /// Connected and acknowledged with `Bearer {token}` in `connection_init` (the mobile
    /// client's way), subscribed to every job of the viewer as `1`.
    pub(crate) async fn bearer_watching_jobs(app: &TestApp, token: &str) -> Client {
        let mut client = Client::connect(app, TRANSPORT, &[]).await.unwrap();
        client
            .send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } }))
            .await;
        assert_eq!(client.next().await["type"], "connection_ack");
        client.subscribed("1", JOBS, json!({})).await;
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

/// A fresh connection, acknowledged, for `user`.
async fn acked(app: &TestApp, user: &TestUser) -> Client {
    Client::signed_in(app, user).await
}
