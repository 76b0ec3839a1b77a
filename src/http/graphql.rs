//! GraphQL over HTTP, per the GraphQL-over-HTTP spec, with the guards a cookie-authenticated
//! API needs: only JSON bodies execute (a cross-site form cannot send one without a CORS
//! preflight), GET runs queries only, one operation per request, nesting and tokens are checked
//! before parsing, and the parsed document is measured ([`admission`]) and charged to the
//! caller's rate limit before async-graphql validates or runs it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_graphql::parser::types::{ExecutableDocument, OperationType};
use async_graphql::{ErrorExtensionValues, ServerError, Value, Variables};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::auth::RequestAuth;
use crate::auth::service::ServiceCredential;
use crate::db::instrumentation::counting;
use crate::db::request::RequestDb;
use crate::error::{INTERNAL_MESSAGE, code};
use crate::graphql::admission::{self, Refusal};
use crate::http::guard;
use crate::http::prepared::ValidationKey;
use crate::http::rate_limit::{FAILED_AUTH_COST, Key, REFUSED_COST};
use crate::http::{AppState, REQUEST_ID};

/// The media types a response can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MediaType {
    /// `application/graphql-response+json`: status codes carry meaning.
    GraphqlResponse,
    /// `application/json`: legacy clients; always 200 once the request is understood.
    Json,
}

impl MediaType {
    fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            MediaType::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            MediaType::Json => "application/json; charset=utf-8",
        })
    }
}

/// Picks the response media type from `Accept`; `None` when neither is acceptable (406).
fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(MediaType::Json);
    };
    let (mut graphql_q, mut json_q) = (0.0f32, 0.0f32);
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "application/graphql-response+json" => graphql_q = graphql_q.max(q),
            "application/json" => json_q = json_q.max(q),
            "application/*" | "*/*" => json_q = json_q.max(q),
            _ => {}
        }
    }
    if graphql_q <= 0.0 && json_q <= 0.0 {
        None
    } else if graphql_q >= json_q {
        Some(MediaType::GraphqlResponse)
    } else {
        Some(MediaType::Json)
    }
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// An error response for a request refused before execution.
fn refuse(status: StatusCode, message: &str) -> Response {
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": code::BAD_USER_INPUT } }] });
    let mut response = (status, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, MediaType::Json.header());
    response
}

/// A request error from a check of ours: 400 for `application/graphql-response+json`, 200 for
/// legacy `application/json` clients (as async-graphql's own validation errors are).
fn request_error(media: MediaType, message: &str, extensions: serde_json::Value) -> Response {
    let status = match media {
        MediaType::GraphqlResponse => StatusCode::BAD_REQUEST,
        MediaType::Json => StatusCode::OK,
    };
    let body = json!({ "errors": [{ "message": message, "extensions": extensions }] });
    let mut response = (status, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, media.header());
    response
}

fn refused(media: MediaType, refusal: &Refusal) -> Response {
    let mut extensions = json!({ "code": code::BAD_USER_INPUT });
    if let Some(limit) = refusal.limit {
        extensions["limit"] = json!(limit);
    }
    request_error(media, &refusal.message, extensions)
}

/// 429 with `Retry-After` (whole seconds, at least 1).
fn rate_limited(media: MediaType, wait: std::time::Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    let body = json!({ "errors": [{
        "message": format!("Too many requests: try again in {seconds} s"),
        "extensions": { "code": code::RATE_LIMITED, "retryAfter": seconds },
    }] });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, media.header());
    headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// The masked response for a panic or anything unexpected outside a resolver.
pub fn internal_error_response(request_id: Option<&str>) -> Response {
    let body = json!({ "errors": [{
        "message": INTERNAL_MESSAGE,
        "extensions": { "code": code::INTERNAL_SERVER_ERROR, "requestId": request_id },
    }] });
    (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response()
}

/// The JSON body of a GraphQL request.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphqlBody {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<serde_json::Value>,
    document_id: Option<String>,
    extensions: Option<serde_json::Value>,
}

/// The query string of a GET request.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphqlParams {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
    document_id: Option<String>,
    extensions: Option<String>,
}

/// What a request asks to run, before its document is looked up.
struct Operation {
    query: Option<String>,
    document_id: Option<String>,
    extensions: Option<serde_json::Value>,
    operation_name: Option<String>,
    variables: Variables,
}

fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mut parts = value.split(';');
    let media = parts.next().unwrap_or("").trim();
    media.eq_ignore_ascii_case("application/json")
        && parts.all(|p| {
            let p = p.trim();
            p.is_empty()
                || !p.to_ascii_lowercase().starts_with("charset=")
                || p[8..].trim_matches('"').eq_ignore_ascii_case("utf-8")
        })
}

/// The TCP peer, which the server puts in every request's extensions.
type Peer = Option<axum::Extension<ConnectInfo<SocketAddr>>>;

/// `POST /graphql`.
pub async fn post(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(media) = negotiate(&headers) else {
        return refuse(
            StatusCode::NOT_ACCEPTABLE,
            "Accept must allow application/graphql-response+json or application/json",
        );
    };
    if !is_json_content_type(&headers) {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        );
    }
    if guard::check_json(&body).is_err() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "The request body is nested too deeply",
        );
    }
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Batched requests are not supported: send one operation per request",
        );
    }
    let body: GraphqlBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                &format!("The request body is not a GraphQL request: {e}"),
            );
        }
    };
    let variables = match body.variables {
        None | Some(serde_json::Value::Null) => Variables::default(),
        Some(v @ serde_json::Value::Object(_)) => Variables::from_json(v),
        Some(_) => return refuse(StatusCode::BAD_REQUEST, "variables must be an object"),
    };
    let operation = Operation {
        query: body.query,
        document_id: body.document_id,
        extensions: body.extensions,
        operation_name: body.operation_name,
        variables,
    };
    let peer = peer.map(|axum::Extension(ConnectInfo(addr))| addr);
    execute(state, &headers, peer, media, operation, false).await
}

/// `GET /graphql`: queries only; with a WebSocket upgrade, subscriptions ([`super::ws`]).
pub async fn get(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    draining: Option<axum::Extension<super::server::Shutdown>>,
    upgrade: Result<
        axum::extract::ws::WebSocketUpgrade,
        axum::extract::ws::rejection::WebSocketUpgradeRejection,
    >,
    params: Result<Query<GraphqlParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    match upgrade {
        Ok(upgrade) => {
            let draining = draining.map(|axum::Extension(d)| d);
            let peer = peer
                .as_ref()
                .map(|axum::Extension(ConnectInfo(addr))| *addr);
            return super::ws::upgrade(state, &headers, peer, draining, upgrade);
        }
        // Asked for an upgrade and could not have one (wrong version, no key): say why.
        Err(rejection) if headers.contains_key(header::UPGRADE) => {
            return rejection.into_response();
        }
        Err(_) => {}
    }
    let Some(media) = negotiate(&headers) else {
        return refuse(
            StatusCode::NOT_ACCEPTABLE,
            "Accept must allow application/graphql-response+json or application/json",
        );
    };
    let Ok(Query(params)) = params else {
        return refuse(StatusCode::BAD_REQUEST, "Malformed query string");
    };
    let extensions = match params.extensions.as_deref() {
        None | Some("") => None,
        Some(text) => {
            if guard::check_json(text.as_bytes()).is_err() {
                return refuse(StatusCode::BAD_REQUEST, "extensions are nested too deeply");
            }
            match serde_json::from_str(text) {
                Ok(v @ serde_json::Value::Object(_)) => Some(v),
                _ => return refuse(StatusCode::BAD_REQUEST, "extensions must be a JSON object"),
            }
        }
    };
    let variables = match params.variables.as_deref() {
        None | Some("") => Variables::default(),
        Some(text) => {
            if guard::check_json(text.as_bytes()).is_err() {
                return refuse(StatusCode::BAD_REQUEST, "variables are nested too deeply");
            }
            match serde_json::from_str(text) {
                Ok(v @ serde_json::Value::Object(_)) => Variables::from_json(v),
                _ => return refuse(StatusCode::BAD_REQUEST, "variables must be a JSON object"),
            }
        }
    };
    let operation = Operation {
        query: params.query,
        document_id: params.document_id,
        extensions,
        operation_name: params.operation_name,
        variables,
    };
    let peer = peer.map(|axum::Extension(ConnectInfo(addr))| addr);
    execute(state, &headers, peer, media, operation, true).await
}

async fn execute(
    state: AppState,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    media: MediaType,
    operation: Operation,
    queries_only: bool,
) -> Response {
    let Operation {
        query,
        document_id,
        extensions,
        operation_name,
        variables,
    } = operation;
    let resolved = match state
        .documents
        .resolve(query, document_id.as_deref(), extensions.as_ref())
    {
        Ok(resolved) => resolved,
        Err(refusal) => {
            let (message, code) = refusal.message_and_code();
            record(operation_name.as_deref(), code);
            return request_error(media, message, json!({ "code": code }));
        }
    };
    let query = resolved.query;
    match guard::check_document(&query, state.limits.tokens) {
        Ok(()) => {}
        Err(guard::Refused::TooDeep) => {
            return refuse(StatusCode::BAD_REQUEST, "The document is nested too deeply");
        }
        Err(guard::Refused::TooManyTokens) => {
            let message = format!(
                "The document has more than {} tokens (BFF_MAX_TOKENS)",
                state.limits.tokens
            );
            return refused(
                media,
                &Refusal {
                    message,
                    limit: Some("BFF_MAX_TOKENS"),
                },
            );
        }
    }
    // A document that does not parse goes on to async-graphql, which reports the syntax error.
    let document = state.prepared.parse(&query);
    if queries_only
        && document
            .as_ref()
            .is_some_and(|d| !is_query(d, operation_name.as_deref()))
    {
        let mut response = refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "Only queries may be sent with GET; send mutations with POST",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let mut viewer_state = true;
    let cost = match &document {
        Some(document) => {
            match admission::admit(
                document,
                operation_name.as_deref(),
                &variables,
                &state.limits,
            ) {
                Ok(measure) => {
                    viewer_state = measure.viewer_state;
                    measure.cost
                }
                Err(refusal) => {
                    if let Some(limiter) = &state.rate_limiter {
                        let client =
                            crate::http::client::address(peer, headers, &state.trusted_proxies);
                        let key =
                            Key::Address(client.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into()));
                        if let Err(wait) = limiter.charge(&key, REFUSED_COST) {
                            record(operation_name.as_deref(), code::RATE_LIMITED);
                            return rate_limited(media, wait);
                        }
                    }
                    record(operation_name.as_deref(), code::BAD_USER_INPUT);
                    return refused(media, &refusal);
                }
            }
        }
        None => 1,
    };
    if let (Some(hash), Some(_)) = (resolved.remember, &document) {
        state.documents.remember(hash, &query);
    }
    let auth = RequestAuth::from_headers(headers, &state.auth).lean(!viewer_state);
    let db = RequestDb::new(state.pool.clone());
    let statements = Arc::new(AtomicU32::new(0));
    if let Some(limiter) = &state.rate_limiter {
        let client = crate::http::client::address(peer, headers, &state.trusted_proxies);
        let (key, cost) = counting(&statements, rate_key(&db, &auth, client, cost)).await;
        if let Some(key) = key
            && let Err(wait) = limiter.charge(&key, cost)
        {
            tracing::info!(?key, cost, "rate limited");
            record(operation_name.as_deref(), code::RATE_LIMITED);
            return rate_limited(media, wait);
        }
    }
    let request_id = request_id(headers);
    let validation = ValidationKey::of(&query, operation_name.as_deref(), &variables);
    let executed = document
        .as_ref()
        .and_then(|d| admission::operation_name(d, operation_name.as_deref()));
    let mut request = async_graphql::Request::new(query)
        .variables(variables)
        .data(auth)
        .data(db);
    if let Some(name) = &operation_name {
        request = request.operation_name(name.clone());
    }
    if let Some(document) = document {
        request.set_parsed_query(Arc::unwrap_or_clone(document));
    }
    let revalidated = state.prepared.is_validated(&validation);
    let schema = if revalidated {
        &state.revalidated_schema
    } else {
        &state.schema
    };
    let mut response = counting(&statements, schema.execute(request)).await;
    if !revalidated && response.data != Value::Null {
        // It executed, so it passed validation: next time the rules need not run again.
        state.prepared.validated(validation);
    }
    let statements = statements.load(Ordering::Relaxed);
    for error in &mut response.errors {
        classify(error, request_id.as_deref());
    }
    let code = response
        .errors
        .first()
        .and_then(|e| e.extensions.as_ref()?.get("code").cloned())
        .and_then(|c| match c {
            Value::String(code) => Some(code),
            _ => None,
        })
        .unwrap_or_else(|| "OK".to_owned());
    let operation =
        crate::metrics::operation_label(executed.as_deref().or(operation_name.as_deref()));
    let span = tracing::Span::current();
    span.record("graphql.operation", operation.as_str());
    span.record("graphql.outcome", code.as_str());
    span.record("db.statements", statements);
    crate::metrics::graphql_statements(&operation, statements);
    crate::metrics::graphql_operation(operation, &code);
    let request_error = response.data == Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    // Serialized straight from the response: fields in the order the query selected them.
    let body = if request_error {
        serde_json::to_vec(&ErrorsOnly {
            errors: &response.errors,
        })
    } else {
        serde_json::to_vec(&response)
    };
    let body = body.unwrap_or_else(|_| b"{}".to_vec());
    let status = if request_error && media == MediaType::GraphqlResponse {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    (status, [(header::CONTENT_TYPE, media.header())], body).into_response()
}

/// A request error's answer: no `data` at all (the spec's "request error").
#[derive(serde::Serialize)]
struct ErrorsOnly<'a> {
    errors: &'a [async_graphql::ServerError],
}

/// Counts an operation refused before it ran, and notes it on the request's span.
fn record(operation_name: Option<&str>, code: &str) {
    let operation = crate::metrics::operation_label(operation_name);
    let span = tracing::Span::current();
    span.record("graphql.operation", operation.as_str());
    span.record("graphql.outcome", code);
    crate::metrics::graphql_operation(operation, code);
}

/// Whose bucket pays for a request, and how much: the viewer's when the credentials sign
/// someone in; the client address's when there are none or they fail (then at least
/// [`FAILED_AUTH_COST`]); nobody's for the photo worker's service tokens. The session lookup
/// is the one the resolvers would make, cached in `auth`.
async fn rate_key(
    db: &RequestDb,
    auth: &RequestAuth,
    client: Option<std::net::IpAddr>,
    cost: u64,
) -> (Option<Key>, u64) {
    let address = Key::Address(client.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into()));
    match auth.service() {
        ServiceCredential::Valid(_) => return (None, cost),
        ServiceCredential::Rejected(_) => return (Some(address), cost.max(FAILED_AUTH_COST)),
        ServiceCredential::Absent => {}
    }
    if !auth.has_credential() {
        let cost = if auth.presented_credential() {
            cost.max(FAILED_AUTH_COST)
        } else {
            cost
        };
        return (Some(address), cost);
    }
    match auth.user(db).await {
        Ok(Some(user)) => (Some(Key::Viewer(user.id.clone())), cost),
        Ok(None) => (Some(address), cost.max(FAILED_AUTH_COST)),
        // The database is unreachable: the request will fail on its own, masked.
        Err(_) => (Some(address), cost),
    }
}

/// Whether the operation that would run is a query (an unknown operation counts as one, so
/// async-graphql reports it normally).
fn is_query(document: &ExecutableDocument, operation_name: Option<&str>) -> bool {
    admission::selected(document, operation_name).is_none_or(|op| op.ty == OperationType::Query)
}

/// Gives every error a code, and masks any error we did not raise on purpose.
pub(crate) fn classify(error: &mut ServerError, request_id: Option<&str>) {
    let has_code = error
        .extensions
        .as_ref()
        .is_some_and(|e| e.get("code").is_some());
    let is_input_error = error.message.starts_with("Failed to parse")
        || error.message.starts_with("Invalid value for argument");
    let code = if has_code {
        None
    } else if error.path.is_empty() || is_input_error {
        // Parse, validation and limit errors, and argument coercion: the client's to fix.
        Some(code::BAD_USER_INPUT)
    } else {
        tracing::error!(message = %error.message, path = ?error.path, "uncoded error in a resolver");
        error.message = INTERNAL_MESSAGE.to_owned();
        Some(code::INTERNAL_SERVER_ERROR)
    };
    let extensions = error
        .extensions
        .get_or_insert_with(ErrorExtensionValues::default);
    if let Some(code) = code {
        extensions.set("code", code);
    }
    let masked = extensions
        .get("code")
        .is_some_and(|c| *c == Value::from(code::INTERNAL_SERVER_ERROR));
    if masked && let Some(id) = request_id {
        extensions.set("requestId", id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn negotiates_the_graphql_response_media_type_when_asked() {
        assert_eq!(
            negotiate(&accept(
                "application/graphql-response+json, application/json;q=0.9"
            )),
            Some(MediaType::GraphqlResponse)
        );
        assert_eq!(
            negotiate(&accept("application/json")),
            Some(MediaType::Json)
        );
        assert_eq!(negotiate(&HeaderMap::new()), Some(MediaType::Json));
        assert_eq!(negotiate(&accept("*/*")), Some(MediaType::Json));
        assert_eq!(negotiate(&accept("text/html")), None);
    }

    #[test]
    fn finds_mutations_among_named_operations() {
        let parse = |doc| async_graphql::parser::parse_query(doc).unwrap();
        let doc = parse("query A { viewer { id } } mutation B { x }");
        assert!(is_query(&doc, Some("A")));
        assert!(!is_query(&doc, Some("B")));
        assert!(!is_query(&parse("mutation { x }"), None));
        assert!(!is_query(&parse("subscription { x }"), None));
    }
}
