//! A fake of Expo's push API (`POST /--/api/v2/push/send`), started by the tests like the
//! Stripe fake: it records every message, answers `DeviceNotRegistered` for tokens containing
//! `gone`, and answers 503 to everything while down.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

#[derive(Default)]
struct Inner {
    messages: Vec<Value>,
    down: bool,
}

/// The running fake.
#[derive(Clone)]
pub(crate) struct FakeExpo {
    /// `BFF_EXPO_PUSH_URL` for it.
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

async fn send(State(inner): State<Arc<Mutex<Inner>>>, Json(body): Json<Value>) -> Response {
    let mut inner = inner.lock().unwrap();
    if inner.down {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let messages = body.as_array().cloned().unwrap_or_default();
    let tickets: Vec<Value> = messages
        .iter()
        .map(|m| {
            let to = m["to"].as_str().unwrap_or("");
            if to.contains("gone") {
                json!({ "status": "error", "message": format!("\"{to}\" is not a registered push notification recipient"),
                        "details": { "error": "DeviceNotRegistered" } })
            } else {
                json!({ "status": "ok", "id": uuid::Uuid::new_v4().to_string() })
            }
        })
        .collect();
    inner.messages.extend(messages);
    Json(json!({ "data": tickets })).into_response()
}

impl FakeExpo {
    /// Starts the fake on a free loopback port.
    pub async fn start() -> FakeExpo {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/--/api/v2/push/send", post(send))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/--/api/v2/push/send",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeExpo { url, inner }
    }

    /// Every message pushed so far.
    pub fn messages(&self) -> Vec<Value> {
        self.inner.lock().unwrap().messages.clone()
    }
}
