//! One WebSocket connection, once upgraded: its message loop (`connection_init`, `subscribe`
//! / `start`, `complete` / `stop`, pings), its subscriptions through the request pipeline, and
//! its close codes. The upgrade itself (sub-protocol, `Origin`, credentials) is decided in
//! [`super`].

use std::collections::HashMap;

use async_graphql::{Response as GqlResponse, ServerError};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use axum::http::{HeaderMap, HeaderValue, header};
use futures_util::stream::{AbortHandle, Abortable, BoxStream, SelectAll};
use futures_util::{Stream, StreamExt};
use serde_json::{Value as Json, json};
use tokio::sync::watch;
use tokio::time::Instant;

use super::registry::Slot;
use super::sign_in::{SignInRefusal, sign_in};
use crate::error::code;
use crate::http::state::AppState;
use crate::live::viewer::LiveViewer;
use crate::pipeline::Request;

/// Which protocol a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Protocol {
    /// `graphql-transport-ws`.
    Transport,
    /// Legacy `graphql-ws` (subscriptions-transport-ws).
    Legacy,
}

/// Sends a close frame with `code` and `reason`.
pub(super) async fn close(
    socket: &mut WebSocket,
    code: u16,
    reason: &str,
) -> Result<(), axum::Error> {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from(reason),
    };
    socket.send(Message::Close(Some(frame))).await
}

/// What the upgrade decided, handed to the connection.
pub(super) struct Opened {
    pub state: AppState,
    /// `true` once the server shuts down.
    pub stop: watch::Receiver<bool>,
    /// Held while open: shutdown waits for it (up to its timeout).
    pub done: Option<watch::Receiver<()>>,
    pub protocol: Protocol,
    /// The credentials the upgrade itself carried (a bearer; the cookie from an allowed origin).
    pub credentials: HeaderMap,
    /// The client's address, whose rate bucket pays for sign-in attempts.
    pub client: Option<std::net::IpAddr>,
    pub request_id: Option<String>,
    pub slot: Slot,
}

/// Runs the connection until it closes. Not itself `async`: its future is the message loop's,
/// with no wrapper keeping a second copy of the socket and state (memory per connection).
pub(super) fn serve(opened: Opened, socket: WebSocket) -> impl Future<Output = ()> + Send {
    let connection = Connection {
        state: opened.state,
        stop: opened.stop,
        _done: opened.done,
        protocol: opened.protocol,
        credentials: opened.credentials,
        client: opened.client,
        request_id: opened.request_id,
        slot: opened.slot,
        acked: false,
        initialised: false,
        viewer: None,
        revoked: None,
        operations: HashMap::new(),
        streams: SelectAll::new(),
    };
    connection.run(socket)
}

/// One running operation: whether it has answered yet (a first answer that is a request
/// error goes out as `error`, not `next`), and how to stop it.
struct Operation {
    answered: bool,
    abort: AbortHandle,
}

/// An operation's answers, tagged with its id; `None` when it has ended by itself.
type Answers = BoxStream<'static, (String, Option<GqlResponse>)>;

struct Connection {
    state: AppState,
    /// `true` once the server shuts down.
    stop: watch::Receiver<bool>,
    /// Held while open: shutdown waits for it (up to its timeout).
    _done: Option<watch::Receiver<()>>,
    protocol: Protocol,
    credentials: HeaderMap,
    /// The client's address, whose rate bucket pays for sign-in attempts.
    client: Option<std::net::IpAddr>,
    request_id: Option<String>,
    slot: Slot,
    acked: bool,
    initialised: bool,
    viewer: Option<LiveViewer>,
    /// Resolves when the connection's session stops signing anyone in.
    revoked: Option<tokio::sync::oneshot::Receiver<()>>,
    operations: HashMap<String, Operation>,
    streams: SelectAll<Answers>,
}

/// What the connection does next.
enum Step {
    Continue,
    Close(u16, String),
    /// The peer is gone or not reading: drop the connection without ceremony.
    Drop,
}

impl Connection {
    async fn run(mut self, mut socket: WebSocket) {
        let limits = *self.state.connections.limits();
        let init_deadline = Instant::now() + limits.init_timeout;
        let mut keepalive = tokio::time::interval(limits.keepalive);
        keepalive.reset();
        let mut heard = Instant::now();
        let mut stop = self.stop.clone();
        loop {
            let step = tokio::select! {
                message = socket.recv() => {
                    heard = Instant::now();
                    match message {
                        // Boxed, as the other handlers: an idle connection's task then holds only
                        // what it waits on, not the largest handler's state (memory per connection).
                        Some(Ok(message)) => Box::pin(self.on_message(message, &mut socket)).await,
                        Some(Err(error)) => {
                            if is_too_big(&error) {
                                Step::Close(1009, "Message too big".into())
                            } else {
                                Step::Drop
                            }
                        }
                        None => Step::Drop,
                    }
                }
                Some((id, answer)) = self.streams.next(), if !self.streams.is_empty() => {
                    Box::pin(self.on_answer(id, answer, &mut socket)).await
                }
                _ = tokio::time::sleep_until(init_deadline), if !self.initialised => {
                    Step::Close(4408, "Connection initialisation timeout".into())
                }
                _ = keepalive.tick() => {
                    if heard.elapsed() > limits.keepalive * 2 {
                        Step::Close(1011, "No answer to pings".into())
                    } else {
                        Box::pin(self.ping(&mut socket)).await
                    }
                }
                revoked = async { self.revoked.as_mut().expect("guarded").await }, if self.revoked.is_some() => {
                    self.revoked = None;
                    match revoked {
                        Ok(()) => Step::Close(4403, "Forbidden: the session has ended".into()),
                        Err(_) => Step::Continue,
                    }
                }
                _ = async { let _ = stop.wait_for(|down| *down).await; } => Step::Close(1001, "The server is shutting down".into()),
            };
            match step {
                Step::Continue => {}
                Step::Close(code, reason) => {
                    tracing::debug!(code, %reason, "closing a WebSocket");
                    let _ = tokio::time::timeout(
                        limits.write_timeout,
                        close(&mut socket, code, &reason),
                    )
                    .await;
                    break;
                }
                Step::Drop => {
                    tracing::debug!("dropping a WebSocket");
                    break;
                }
            }
        }
        for (_, operation) in self.operations.drain() {
            operation.abort.abort();
        }
    }

    /// Sends one message; a client that does not take it in time is not reading.
    async fn send(&mut self, socket: &mut WebSocket, message: Json) -> Step {
        let text = Utf8Bytes::from(message.to_string());
        match tokio::time::timeout(
            self.state.connections.limits().write_timeout,
            socket.send(Message::Text(text)),
        )
        .await
        {
            Ok(Ok(())) => Step::Continue,
            Ok(Err(_)) => Step::Drop,
            Err(_) => Step::Close(1008, "The client is not reading".into()),
        }
    }

    async fn ping(&mut self, socket: &mut WebSocket) -> Step {
        let frame = tokio::time::timeout(
            self.state.connections.limits().write_timeout,
            socket.send(Message::Ping(Default::default())),
        )
        .await;
        if !matches!(frame, Ok(Ok(()))) {
            return Step::Drop;
        }
        match (self.protocol, self.acked) {
            (Protocol::Transport, _) => self.send(socket, json!({ "type": "ping" })).await,
            (Protocol::Legacy, true) => self.send(socket, json!({ "type": "ka" })).await,
            (Protocol::Legacy, false) => Step::Continue,
        }
    }

    async fn on_message(&mut self, message: Message, socket: &mut WebSocket) -> Step {
        let text = match message {
            Message::Text(text) => text,
            // Answered by the WebSocket layer itself.
            Message::Ping(_) | Message::Pong(_) => return Step::Continue,
            Message::Close(_) => return Step::Drop,
            Message::Binary(_) => {
                return Step::Close(4400, "Binary messages are not supported".into());
            }
        };
        let Ok(Json::Object(mut message)) = serde_json::from_str::<Json>(text.as_str()) else {
            return Step::Close(4400, "Invalid message: not a JSON object".into());
        };
        let Some(Json::String(kind)) = message.remove("type") else {
            return Step::Close(4400, "Invalid message: no type".into());
        };
        let id = match message.remove("id") {
            None | Some(Json::Null) => None,
            Some(Json::String(id)) if !id.is_empty() && id.len() <= 256 => Some(id),
            Some(_) => return Step::Close(4400, "Invalid message: id must be a string".into()),
        };
        let payload = message.remove("payload").unwrap_or(Json::Null);
        match (self.protocol, kind.as_str()) {
            (_, "connection_init") => self.init(payload, socket).await,
            (Protocol::Transport, "ping") => {
                let mut pong = json!({ "type": "pong" });
                if payload.is_object() {
                    pong["payload"] = payload;
                }
                self.send(socket, pong).await
            }
            (Protocol::Transport, "pong") => Step::Continue,
            (Protocol::Transport, "subscribe") | (Protocol::Legacy, "start") => {
                let Some(id) = id else {
                    return Step::Close(4400, "Invalid message: subscribe needs an id".into());
                };
                self.subscribe(id, payload, socket).await
            }
            (Protocol::Transport, "complete") | (Protocol::Legacy, "stop") => {
                let Some(id) = id else {
                    return Step::Close(4400, format!("Invalid message: {kind} needs an id"));
                };
                if let Some(operation) = self.operations.remove(&id) {
                    operation.abort.abort();
                    if self.protocol == Protocol::Legacy {
                        return self
                            .send(socket, json!({ "type": "complete", "id": id }))
                            .await;
                    }
                }
                Step::Continue
            }
            (Protocol::Legacy, "connection_terminate") => Step::Close(1000, "Terminated".into()),
            _ => Step::Close(4400, format!("Invalid message type {kind:?}")),
        }
    }

    async fn init(&mut self, payload: Json, socket: &mut WebSocket) -> Step {
        if self.initialised {
            return Step::Close(4429, "Too many initialisation requests".into());
        }
        self.initialised = true;
        if !(payload.is_null() || payload.is_object()) {
            return Step::Close(
                4400,
                "Invalid message: the payload must be an object".into(),
            );
        }
        let mut credentials = std::mem::take(&mut self.credentials);
        // What the connection signed in with is all it needs from here on.
        if let Some(authorization) = init_authorization(&payload) {
            let value = if authorization.contains(' ') {
                authorization.to_owned()
            } else {
                format!("Bearer {authorization}")
            };
            let Ok(value) = HeaderValue::from_str(&value) else {
                return Step::Close(4403, "Forbidden: malformed authorization".into());
            };
            credentials = HeaderMap::new();
            credentials.insert(header::AUTHORIZATION, value);
        }
        let signed_in = match sign_in(&self.state, &credentials, self.client).await {
            Ok(signed_in) => signed_in,
            Err(SignInRefusal::RateLimited(wait)) => {
                let seconds = wait.as_secs().max(1);
                return Step::Close(1013, format!("Too many attempts: try again in {seconds} s"));
            }
            Err(SignInRefusal::Unauthenticated(why)) => {
                return Step::Close(4403, format!("Forbidden: {why}"));
            }
            Err(SignInRefusal::Unavailable) => {
                return Step::Close(1013, "The service is briefly unavailable; try again".into());
            }
        };
        let Some(revoked) = self.slot.sign_in(&signed_in.user_id, signed_in.credential) else {
            return Step::Close(1013, "Too many connections for this user".into());
        };
        self.revoked = Some(revoked);
        self.viewer = Some(LiveViewer::new(
            signed_in.user_id,
            self.state.hub.clone(),
            self.state.pool.clone(),
        ));
        self.acked = true;
        self.send(socket, json!({ "type": "connection_ack" })).await
    }

    async fn subscribe(&mut self, id: String, payload: Json, socket: &mut WebSocket) -> Step {
        let Some(viewer) = self.viewer.clone().filter(|_| self.acked) else {
            return Step::Close(4401, "Unauthorized".into());
        };
        if self.operations.contains_key(&id) {
            return Step::Close(4409, format!("Subscriber for {id} already exists"));
        }
        let limit = self.state.connections.limits().subscriptions_per_connection;
        if self.operations.len() >= limit {
            let message =
                format!("At most {limit} subscriptions per connection (BFF_WS_MAX_SUBSCRIPTIONS)");
            return self.error(socket, id, &message, code::RATE_LIMITED).await;
        }
        let started = match Request::from_json(payload) {
            Ok(request) => {
                let pipeline = &self.state.pipeline;
                pipeline
                    .subscribe(request, &viewer, self.client, self.request_id.as_deref())
                    .await
            }
            Err(refusal) => Err(refusal),
        };
        let answers = match started {
            Ok(answers) => answers,
            Err(refusal) => {
                let payload = refusal.errors();
                return self
                    .send(
                        socket,
                        json!({ "type": "error", "id": id, "payload": payload }),
                    )
                    .await;
            }
        };
        let (abort, registration) = AbortHandle::new_pair();
        let tagged = tag(id.clone(), answers);
        self.streams
            .push(Abortable::new(tagged, registration).boxed());
        self.operations.insert(
            id,
            Operation {
                answered: false,
                abort,
            },
        );
        Step::Continue
    }

    async fn error(
        &mut self,
        socket: &mut WebSocket,
        id: String,
        message: &str,
        code: &str,
    ) -> Step {
        let errors = json!([{ "message": message, "extensions": { "code": code } }]);
        self.send(
            socket,
            json!({ "type": "error", "id": id, "payload": errors }),
        )
        .await
    }

    async fn on_answer(
        &mut self,
        id: String,
        answer: Option<GqlResponse>,
        socket: &mut WebSocket,
    ) -> Step {
        let Some(operation) = self.operations.get_mut(&id) else {
            return Step::Continue;
        };
        let Some(answer) = answer else {
            self.operations.remove(&id);
            return self
                .send(socket, json!({ "type": "complete", "id": id }))
                .await;
        };
        let first = !operation.answered;
        operation.answered = true;
        // Refused (validation) or failed to start (its root field's error, e.g. NOT_FOUND):
        // it never started, and `error` ends it (no `complete` follows).
        let never_started = answer.data == async_graphql::Value::Null && !answer.errors.is_empty();
        if first && never_started {
            if let Some(operation) = self.operations.remove(&id) {
                operation.abort.abort();
            }
            let errors = errors_json(&answer.errors);
            return self
                .send(
                    socket,
                    json!({ "type": "error", "id": id, "payload": errors }),
                )
                .await;
        }
        let kind = match self.protocol {
            Protocol::Transport => "next",
            Protocol::Legacy => "data",
        };
        let payload = serde_json::to_value(&answer).unwrap_or(Json::Null);
        self.send(
            socket,
            json!({ "type": kind, "id": id, "payload": payload }),
        )
        .await
    }
}

fn errors_json(errors: &[ServerError]) -> Json {
    serde_json::to_value(errors).unwrap_or_else(|_| json!([]))
}

/// The authorization a `connection_init` payload carries, under the names clients use.
fn init_authorization(payload: &Json) -> Option<&str> {
    fn field(object: &Json) -> Option<&str> {
        object.as_object()?.iter().find_map(|(key, value)| {
            key.eq_ignore_ascii_case("authorization")
                .then(|| value.as_str())
                .flatten()
        })
    }
    field(payload).or_else(|| field(payload.get("headers")?))
}

fn tag(
    id: String,
    answers: impl Stream<Item = GqlResponse> + Send + 'static,
) -> impl Stream<Item = (String, Option<GqlResponse>)> + Send + 'static {
    let end = id.clone();
    answers
        .map(move |answer| (id.clone(), Some(answer)))
        .chain(futures_util::stream::once(async move { (end, None) }))
}

/// Whether a read failed because the message was over `max_message_size`.
fn is_too_big(error: &axum::Error) -> bool {
    use tungstenite::Error;
    use tungstenite::error::CapacityError;
    let inner = std::error::Error::source(error).and_then(|source| source.downcast_ref::<Error>());
    matches!(
        inner,
        Some(Error::Capacity(CapacityError::MessageTooLong { .. }))
    )
}
