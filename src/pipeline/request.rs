//! What the transports hand the pipeline and what it answers them: a [`Request`] (GraphQL
//! over HTTP's fields, which a WebSocket `subscribe` payload shares), the [`Caller`], and a
//! [`Refusal`] when it does not run, with the same code and message on every transport.

use std::net::IpAddr;
use std::time::Duration;

use async_graphql::Variables;
use axum::http::HeaderMap;
use serde::Deserialize;

use crate::error::code;

/// What carried a request: it decides which operations may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `GET /graphql`: queries only (the rest is refused 405: a GET must not change anything).
    Get,
    /// `POST /graphql`: queries and mutations.
    Post,
    /// A WebSocket `subscribe` (or legacy `start`): subscriptions only.
    WebSocket,
}

/// A GraphQL request as every transport carries it (GraphQL over HTTP's fields, and the
/// `subscribe` payload's).
#[derive(Debug, Default)]
pub struct Request {
    /// The document text.
    pub query: Option<String>,
    /// A persisted document's id (`sha256:<hex>` or the bare hex).
    pub document_id: Option<String>,
    /// `extensions` (an automatic persisted query's hash).
    pub extensions: Option<serde_json::Value>,
    /// The operation to run.
    pub operation_name: Option<String>,
    /// The variables.
    pub variables: Variables,
}

/// The wire form of a request: a JSON object.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<serde_json::Value>,
    document_id: Option<String>,
    extensions: Option<serde_json::Value>,
}

impl Request {
    /// A request from a JSON object (a POST body, a `subscribe` payload).
    pub fn from_json(value: serde_json::Value) -> Result<Request, Refusal> {
        if !value.is_object() {
            return Err(Refusal::Malformed(
                "A GraphQL request must be a JSON object".into(),
            ));
        }
        let wire: Wire = serde_json::from_value(value).map_err(not_graphql)?;
        wire.request()
    }

    /// A request from a POST body: an object is read straight into its fields, without
    /// building a JSON tree first; anything else is refused as [`Request::from_json`] does.
    pub fn from_body(body: &[u8]) -> Result<Request, Refusal> {
        let not_json = |e| Refusal::Malformed(format!("The request body is not JSON: {e}"));
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return serde_json::from_slice(body)
                .map_err(not_json)
                .and_then(Request::from_json);
        }
        match serde_json::from_slice::<Wire>(body) {
            Ok(wire) => wire.request(),
            Err(e) if e.is_data() => Err(not_graphql(e)),
            Err(e) => Err(not_json(e)),
        }
    }
}

fn not_graphql(e: serde_json::Error) -> Refusal {
    Refusal::Malformed(format!("The request is not a GraphQL request: {e}"))
}

impl Wire {
    fn request(self) -> Result<Request, Refusal> {
        Ok(Request {
            query: self.query,
            document_id: self.document_id,
            extensions: self.extensions,
            operation_name: self.operation_name,
            variables: variables(self.variables)?,
        })
    }
}

/// The variables of a request: an object, or nothing.
pub fn variables(value: Option<serde_json::Value>) -> Result<Variables, Refusal> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(Variables::default()),
        Some(v @ serde_json::Value::Object(_)) => Ok(Variables::from_json(v)),
        Some(_) => Err(Refusal::Malformed("variables must be a JSON object".into())),
    }
}

/// Why a request did not run. Each transport frames these its own way (status codes, close
/// codes, `error` messages); the code and message are the same everywhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not a GraphQL request at all (no document, a body that is not one): HTTP 400 whatever
    /// the media type.
    Malformed(String),
    /// A request error: its document, variables or limits.
    Request {
        /// What was wrong, for the client.
        message: String,
        /// `extensions.code`.
        code: &'static str,
        /// `extensions.limit`: the variable of the limit that was hit, if one was.
        limit: Option<&'static str>,
    },
    /// An operation of a kind this transport does not carry as a method (a mutation by GET).
    Method(String),
    /// Past the caller's rate limit: retry after this long.
    RateLimited(Duration),
    /// An endpoint for some people only (`/admin/graphql`), without a credential that signs
    /// anyone in: HTTP 401.
    Unauthenticated(String),
    /// The same, signed in without the role it needs: HTTP 403, and nothing else said.
    Forbidden(String),
}

impl Refusal {
    pub(super) fn input(message: impl Into<String>) -> Refusal {
        Refusal::Request {
            message: message.into(),
            code: code::BAD_USER_INPUT,
            limit: None,
        }
    }

    /// `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Malformed(_) | Refusal::Method(_) => code::BAD_USER_INPUT,
            Refusal::Request { code, .. } => code,
            Refusal::RateLimited(_) => code::RATE_LIMITED,
            Refusal::Unauthenticated(_) => code::UNAUTHENTICATED,
            Refusal::Forbidden(_) => code::FORBIDDEN,
        }
    }

    /// Whole seconds to wait before retrying (at least 1), when rate limited.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Refusal::RateLimited(wait) => {
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                Some(seconds.max(1))
            }
            _ => None,
        }
    }

    /// The message for the client.
    pub fn message(&self) -> String {
        match self {
            Refusal::Malformed(message)
            | Refusal::Method(message)
            | Refusal::Unauthenticated(message)
            | Refusal::Forbidden(message)
            | Refusal::Request { message, .. } => message.clone(),
            Refusal::RateLimited(_) => format!(
                "Too many requests: try again in {} s",
                self.retry_after().unwrap_or(1)
            ),
        }
    }

    /// The `errors` list of the answer.
    pub fn errors(&self) -> serde_json::Value {
        let mut extensions = serde_json::json!({ "code": self.code() });
        if let Refusal::Request {
            limit: Some(limit), ..
        } = self
        {
            extensions["limit"] = serde_json::json!(limit);
        }
        if let Some(seconds) = self.retry_after() {
            extensions["retryAfter"] = serde_json::json!(seconds);
        }
        serde_json::json!([{ "message": self.message(), "extensions": extensions }])
    }
}

/// Who is calling: the credentials the transport accepted, and where from.
pub struct Caller<'a> {
    /// `Authorization` and, where they count, cookies.
    pub credentials: &'a HeaderMap,
    /// The client's address (after trusted proxies), whose bucket pays when no viewer does.
    pub address: Option<IpAddr>,
    /// The request id, given with masked errors.
    pub request_id: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_carry_their_code_limit_and_wait() {
        let refusal = Refusal::RateLimited(Duration::from_millis(1500));
        assert_eq!(refusal.retry_after(), Some(2));
        assert_eq!(refusal.errors()[0]["extensions"]["code"], "RATE_LIMITED");
        assert_eq!(refusal.errors()[0]["extensions"]["retryAfter"], 2);
        let refusal = Refusal::Request {
            message: "too costly".into(),
            code: code::BAD_USER_INPUT,
            limit: Some("BFF_MAX_COST"),
        };
        assert_eq!(refusal.errors()[0]["extensions"]["limit"], "BFF_MAX_COST");
    }

    #[test]
    fn a_request_is_read_from_a_json_object() {
        let request = Request::from_json(serde_json::json!({
            "query": "{ viewer { id } }", "variables": { "a": 1 }, "operationName": "A"
        }))
        .unwrap();
        assert_eq!(request.operation_name.as_deref(), Some("A"));
        assert!(matches!(
            Request::from_json(serde_json::json!([1])),
            Err(Refusal::Malformed(_))
        ));
        assert!(matches!(
            Request::from_json(serde_json::json!({ "variables": 3 })),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn a_body_is_read_as_the_same_request_and_refused_with_the_same_messages() {
        let body = br#" {"query": "{ viewer { id } }", "variables": {"a": [1, {"b": null}]},
                        "operationName": "A", "extensions": {"x": 1}, "other": true}"#;
        let tree: serde_json::Value = serde_json::from_slice(body).unwrap();
        let (direct, through) = (
            Request::from_body(body).unwrap(),
            Request::from_json(tree).unwrap(),
        );
        assert_eq!(direct.query, through.query);
        assert_eq!(direct.operation_name, through.operation_name);
        assert_eq!(direct.extensions, through.extensions);
        assert_eq!(direct.variables, through.variables);
        let message = |body: &[u8]| match Request::from_body(body) {
            Err(Refusal::Malformed(message)) => message,
            other => panic!("{other:?}"),
        };
        assert!(message(b"{\"query\": ").starts_with("The request body is not JSON"));
        assert!(message(b"not json").starts_with("The request body is not JSON"));
        assert_eq!(message(b" [1]"), "A GraphQL request must be a JSON object");
        assert!(message(br#"{"query": 3}"#).starts_with("The request is not a GraphQL request"));
        assert_eq!(
            message(br#"{"query": "{ a }", "variables": 3}"#),
            "variables must be a JSON object"
        );
    }
}
