//! A small client for the Stripe API calls bff makes: form-encoded POSTs with idempotency keys
//! on creates, bounded timeouts, and Stripe's errors turned into clear GraphQL errors.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::objects::{self, ErrorAnswer};
use crate::config::stripe::Stripe as StripeConfig;
use crate::error::AppError;

/// Connecting to Stripe may take this long.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A whole Stripe call may take this long.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Stripe's API, authenticated with the secret key.
#[derive(Clone, Debug)]
pub struct StripeClient {
    http: reqwest::Client,
    base: String,
    key: Option<SecretString>,
}

/// Why a Stripe call failed.
#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    /// `STRIPE_SECRET_KEY` is not set.
    #[error("STRIPE_SECRET_KEY is not configured")]
    NotConfigured,
    /// Stripe could not be reached or did not answer in time.
    #[error("Stripe did not answer: {0}")]
    Network(String),
    /// Stripe answered with an error.
    #[error("Stripe error {status} ({kind}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Stripe's error type (`card_error`, `invalid_request_error`, …).
        kind: String,
        /// Stripe's error code (`resource_missing`, `charge_already_refunded`, …), if any.
        code: String,
        /// Stripe's message.
        message: String,
    },
}

impl From<StripeError> for AppError {
    fn from(error: StripeError) -> Self {
        match error {
            StripeError::Api {
                status,
                kind,
                message,
                ..
            } if status == 402 || kind == "card_error" => {
                AppError::BadUserInput(format!("The payment was declined: {message}"))
            }
            StripeError::Api { status: 429, .. } => {
                AppError::RateLimited("The payment provider is busy; try again in a moment".into())
            }
            StripeError::NotConfigured => {
                tracing::error!("a billing operation was called without STRIPE_SECRET_KEY");
                AppError::Upstream("Billing is not available right now".into())
            }
            other => {
                tracing::error!(error = %other, "Stripe call failed");
                AppError::Upstream(
                    "The payment provider could not complete the request; try again later".into(),
                )
            }
        }
    }
}

impl StripeClient {
    /// A client for the configured API base and key.
    pub fn new(config: &StripeConfig) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("bff/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a reqwest client with rustls builds");
        StripeClient {
            http,
            base: config.api_base.clone(),
            key: config.secret_key.clone(),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, StripeError> {
        let key = self.key.as_ref().ok_or(StripeError::NotConfigured)?;
        let response = request
            .bearer_auth(key.expose_secret())
            .send()
            .await
            .map_err(|e| StripeError::Network(e.to_string()))?;
        let status = response.status().as_u16();
        let body: Value = response
            .json()
            .await
            .map_err(|e| StripeError::Network(format!("unreadable answer: {e}")))?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let ErrorAnswer { error } = objects::read(&body);
        Err(StripeError::Api {
            status,
            kind: error.kind.unwrap_or_else(|| "unknown".to_owned()),
            code: error.code.unwrap_or_default(),
            message: error.message.unwrap_or_else(|| "no message".to_owned()),
        })
    }

    /// `POST /v1/{path}` with form parameters; `idempotency_key` makes retries safe.
    pub async fn post(
        &self,
        path: &str,
        form: &[(String, String)],
        idempotency_key: Option<&str>,
    ) -> Result<Value, StripeError> {
        let mut request = self
            .http
            .post(format!("{}/v1/{path}", self.base))
            .form(form);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        self.send(request).await
    }

    /// `GET /v1/{path}`.
    pub async fn get(&self, path: &str) -> Result<Value, StripeError> {
        self.get_with(path, &[]).await
    }

    /// `GET /v1/{path}` with query parameters (`types[]` may repeat).
    pub async fn get_with(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Value, StripeError> {
        self.send(
            self.http
                .get(format!("{}/v1/{path}", self.base))
                .query(query),
        )
        .await
    }

    /// `DELETE /v1/{path}`.
    pub async fn delete(&self, path: &str) -> Result<Value, StripeError> {
        self.send(self.http.delete(format!("{}/v1/{path}", self.base)))
            .await
    }
}
