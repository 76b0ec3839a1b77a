//! GraphQL over HTTP (the GraphQL-over-HTTP spec), as a transport of [`crate::pipeline`]: this
//! file reads a request off the wire and frames the pipeline's answer, nothing more. The guards
//! that belong to HTTP stay here: only JSON bodies execute (a cross-site form cannot send one
//! without a CORS preflight), one operation per request, the JSON nested at most so deep, and
//! `Accept` picks the media type, which decides the status codes.

use std::net::SocketAddr;

use async_graphql::Value;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

mod media;

use super::request_id::REQUEST_ID;
use super::state::{AppState, client_address};
use crate::error::{INTERNAL_MESSAGE, RETRY_AFTER_SECONDS, code};
use crate::pipeline::cost::Api;
use crate::pipeline::{Answer, Caller, Refusal, Request, Transport, guard};
use media::{MediaType, is_json_content_type, negotiate};

/// An error response for a request refused before execution.
fn refuse(status: StatusCode, message: &str) -> Response {
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": code::BAD_USER_INPUT } }] });
    let mut response = (status, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, MediaType::Json.header());
    response
}

/// The masked response for a panic or anything unexpected outside a resolver.
pub(crate) fn internal_error_response(request_id: Option<&str>) -> Response {
    let body = json!({ "errors": [{
        "message": INTERNAL_MESSAGE,
        "extensions": { "code": code::INTERNAL_SERVER_ERROR, "requestId": request_id },
    }] });
    (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response()
}

/// The query string of a GET request.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GraphqlParams {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
    document_id: Option<String>,
    extensions: Option<String>,
}

/// The TCP peer, which the server puts in every request's extensions.
type Peer = Option<axum::Extension<ConnectInfo<SocketAddr>>>;

/// `POST /graphql`.
pub(crate) async fn post(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    post_to(Api::Viewer, &state, peer, &headers, &body).await
}

/// `POST /admin/graphql`: the administration's schema, for staff only.
pub(crate) async fn admin_post(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    post_to(Api::Admin, &state, peer, &headers, &body).await
}

/// `GET /admin/graphql`: queries of the administration's schema (no WebSocket).
pub(crate) async fn admin_get(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    params: Result<Query<GraphqlParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    get_from(Api::Admin, &state, peer, &headers, params).await
}

/// A POST to `api`'s endpoint.
async fn post_to(
    api: Api,
    state: &AppState,
    peer: Peer,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let Some(media) = negotiate(headers) else {
        return refuse(
            StatusCode::NOT_ACCEPTABLE,
            "Accept must allow application/graphql-response+json or application/json",
        );
    };
    if !is_json_content_type(headers) {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        );
    }
    if guard::check_json(body).is_err() {
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
    let request = match Request::from_body(body) {
        Ok(request) => request,
        Err(refusal) => return refused(media, &refusal),
    };
    let peer = peer.map(|axum::Extension(ConnectInfo(addr))| addr);
    execute(api, state, headers, peer, media, request, Transport::Post).await
}

/// `GET /graphql`'s answers, whatever answered (an execution, the response cache, a refusal; not
/// an upgrade to WebSocket): they depend on the caller's credentials (`Vary: Cookie,
/// Authorization`), and no shared cache may keep one. One with an `ETag` (a viewer's answer,
/// [`revalidatable`]) may be kept by the caller and revalidated; any other is not to be stored.
pub(crate) async fn private_to_the_caller(mut response: Response) -> Response {
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        return response;
    }
    let headers = response.headers_mut();
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
    }
    if !headers.contains_key(header::VARY) {
        headers.insert(
            header::VARY,
            HeaderValue::from_static("Cookie, Authorization"),
        );
    }
    response
}

/// `GET /graphql`: queries only; with a WebSocket upgrade, subscriptions ([`super::ws`]).
pub(crate) async fn get(
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
    get_from(Api::Viewer, &state, peer, &headers, params).await
}

/// A GET (not an upgrade) of `api`'s endpoint.
async fn get_from(
    api: Api,
    state: &AppState,
    peer: Peer,
    headers: &HeaderMap,
    params: Result<Query<GraphqlParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(media) = negotiate(headers) else {
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
        None | Some("") => None,
        Some(text) => {
            if guard::check_json(text.as_bytes()).is_err() {
                return refuse(StatusCode::BAD_REQUEST, "variables are nested too deeply");
            }
            match serde_json::from_str(text) {
                Ok(value) => Some(value),
                Err(_) => {
                    return refuse(StatusCode::BAD_REQUEST, "variables must be a JSON object");
                }
            }
        }
    };
    let variables = match crate::pipeline::variables(variables) {
        Ok(variables) => variables,
        Err(refusal) => return refused(media, &refusal),
    };
    let request = Request {
        query: params.query,
        document_id: params.document_id,
        extensions,
        operation_name: params.operation_name,
        variables,
    };
    let peer = peer.map(|axum::Extension(ConnectInfo(addr))| addr);
    execute(api, state, headers, peer, media, request, Transport::Get).await
}

/// Whether the request's `If-None-Match` names `etag` (a list, weak validators and `*` allowed).
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// Runs a request through the pipeline and frames the answer.
async fn execute(
    api: Api,
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    media: MediaType,
    request: Request,
    transport: Transport,
) -> Response {
    let request_id = headers.get(REQUEST_ID).and_then(|v| v.to_str().ok());
    let caller = Caller {
        credentials: headers,
        address: client_address(state, peer, headers),
        request_id,
    };
    let answer = match api {
        Api::Viewer => state.pipeline.execute(request, transport, caller).await,
        Api::Admin => {
            state
                .pipeline
                .execute_admin(request, transport, caller)
                .await
        }
    };
    let response = match answer {
        Ok(Answer::Executed(response)) => response,
        // Revalidation is for GET (what HTTP caches and mobile clients revalidate): only its
        // answers carry an `ETag`.
        Ok(Answer::Body {
            etag: Some(etag), ..
        }) if if_none_match(headers, &etag) => {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            revalidatable(response.headers_mut(), &etag);
            return response;
        }
        Ok(Answer::Body { body, etag }) => {
            let mut response = (
                StatusCode::OK,
                [(header::CONTENT_TYPE, media.header())],
                body,
            )
                .into_response();
            if let Some(etag) = &etag {
                revalidatable(response.headers_mut(), etag);
            }
            return response;
        }
        Err(refusal) => return refused(media, &refusal),
    };
    let request_error = response.data == Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    let unavailable = response.errors.iter().any(|e| {
        e.extensions
            .as_ref()
            .and_then(|x| x.get("code"))
            .is_some_and(|c| *c == Value::from(code::SERVICE_UNAVAILABLE))
    });
    // Serialized straight from the response: fields in the order the query selected them.
    let body = if request_error {
        serde_json::to_vec(&ErrorsOnly {
            errors: &response.errors,
        })
    } else {
        serde_json::to_vec(&response)
    };
    let body = body.unwrap_or_else(|_| b"{}".to_vec());
    let status = match media {
        MediaType::GraphqlResponse if request_error => StatusCode::BAD_REQUEST,
        // Nothing was answered, and trying again shortly may answer: say so as HTTP does.
        MediaType::GraphqlResponse if unavailable && response.data == Value::Null => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => StatusCode::OK,
    };
    let mut response = (status, [(header::CONTENT_TYPE, media.header())], body).into_response();
    if unavailable {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    }
    response
}

/// A viewer's answer to a `GET`: its `ETag`, and `Cache-Control: private, no-cache` (a
/// browser or app may keep it, a shared cache may not, and each use revalidates: 304 after
/// the session lookup alone while nothing changed). `Vary: Cookie, Authorization`, as it
/// depends on both.
fn revalidatable(headers: &mut HeaderMap, etag: &str) {
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Cookie, Authorization"),
    );
}

/// The answer to a request the pipeline refused: 400 for a malformed request whatever the
/// media type; for a request error 400 under `application/graphql-response+json` and 200 under
/// legacy `application/json` (as async-graphql's own validation errors are); 405 with
/// `Allow: POST` for a mutation by GET; 429 with `Retry-After` past the rate limit.
fn refused(media: MediaType, refusal: &Refusal) -> Response {
    let status = match refusal {
        Refusal::Malformed(_) => StatusCode::BAD_REQUEST,
        Refusal::Method(_) => StatusCode::METHOD_NOT_ALLOWED,
        Refusal::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        Refusal::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        Refusal::Forbidden(_) => StatusCode::FORBIDDEN,
        Refusal::Request { .. } => match media {
            MediaType::GraphqlResponse => StatusCode::BAD_REQUEST,
            MediaType::Json => StatusCode::OK,
        },
    };
    let body = json!({ "errors": refusal.errors() });
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, media.header());
    if matches!(refusal, Refusal::Method(_)) {
        headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
    }
    if let Some(seconds) = refusal.retry_after() {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// A request error's answer: no `data` at all (the spec's "request error").
#[derive(serde::Serialize)]
struct ErrorsOnly<'a> {
    errors: &'a [async_graphql::ServerError],
}
