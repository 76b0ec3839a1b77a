//! Push notifications through Expo's push API: one HTTP request carries a message for each of
//! a person's devices (iOS and Android alike). A ticket saying `DeviceNotRegistered` forgets
//! that token. Each message carries its idempotency key in `data.key`, so the app can tell a
//! resend (after a sender died mid-send) from a new notification.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use super::words::words;
use crate::db::notifications::deliveries::Claimed;

/// How long one request to the provider may take.
const PUSH_TIMEOUT: Duration = Duration::from_secs(15);

/// Whether `token` looks like an Expo push token (`ExponentPushToken[…]` or `ExpoPushToken[…]`).
pub fn is_expo_token(token: &str) -> bool {
    ["ExponentPushToken[", "ExpoPushToken["]
        .iter()
        .any(|prefix| {
            token
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(']'))
                .is_some_and(|inner| {
                    !inner.is_empty()
                        && inner.len() <= 200
                        && inner
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
                })
        })
}

/// Talks to Expo's push API.
#[derive(Clone)]
pub struct Pusher {
    client: reqwest::Client,
    url: String,
    token: Option<SecretString>,
}

/// What a push to a person's devices came to.
#[derive(Debug, Default)]
pub struct Pushed {
    /// Devices that accepted it.
    pub delivered: usize,
    /// Tokens the provider called unregistered or invalid (to forget).
    pub gone: Vec<String>,
    /// Other per-device errors.
    pub errors: Vec<String>,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    data: Vec<Ticket>,
}

#[derive(Deserialize)]
struct Ticket {
    status: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    details: Option<Value>,
}

impl Pusher {
    /// A client of the API at `url`.
    pub fn new(url: &str, token: Option<SecretString>) -> Pusher {
        Pusher {
            client: reqwest::Client::builder()
                .timeout(PUSH_TIMEOUT)
                .build()
                .unwrap_or_default(),
            url: url.to_owned(),
            token,
        }
    }

    /// Pushes a message's notification(s) to `tokens`. `Err` when the provider could not take
    /// the request (unreachable, busy, or an error for the whole request): worth retrying.
    pub(crate) async fn push(
        &self,
        rows: &[Claimed],
        tokens: &[String],
        app_url: &str,
    ) -> Result<Pushed, String> {
        let first = &rows[0];
        let w = words(first.kind, &first.facts);
        let (title, body) = if rows.len() == 1 {
            (w.title, w.body)
        } else {
            (format!("{} updates", rows.len()), w.body)
        };
        let key = format!("notification-{}", first.message_id);
        let messages: Vec<Value> = tokens
            .iter()
            .map(|to| {
                json!({
                    "to": to,
                    "title": title,
                    "body": body,
                    "sound": "default",
                    "data": {
                        "key": key,
                        "kind": first.kind.as_db(),
                        "url": format!("{app_url}{}", w.path),
                    },
                })
            })
            .collect();
        let mut request = self
            .client
            .post(&self.url)
            .header("accept", "application/json")
            .json(&messages);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose_secret());
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("the push provider is unreachable ({})", e.without_url()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("the push provider answered {status}"));
        }
        let answer: Answer = response
            .json()
            .await
            .map_err(|e| format!("the push provider's answer is not readable ({e})"))?;
        let mut pushed = Pushed::default();
        for (ticket, token) in answer.data.iter().zip(tokens) {
            if ticket.status == "ok" {
                pushed.delivered += 1;
                continue;
            }
            let error = ticket
                .details
                .as_ref()
                .and_then(|d| d.get("error"))
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            if error == "DeviceNotRegistered" {
                pushed.gone.push(token.clone());
            } else {
                pushed.errors.push(format!(
                    "{error}: {}",
                    ticket.message.as_deref().unwrap_or("")
                ));
            }
        }
        Ok(pushed)
    }
}

#[cfg(test)]
mod tests {
    use super::is_expo_token;

    #[test]
    fn expo_tokens_are_recognised() {
        assert!(is_expo_token("ExponentPushToken[xxxxxxxxxxxxxxxxxxxxxx]"));
        assert!(is_expo_token("ExpoPushToken[abc-123_Z]"));
        for bad in [
            "",
            "ExponentPushToken[]",
            "ExponentPushToken[a b]",
            "token",
            "ExpoPushToken[x",
        ] {
            assert!(!is_expo_token(bad), "{bad}");
        }
    }
}
