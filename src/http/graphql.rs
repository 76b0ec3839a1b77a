//! GraphQL over HTTP, per the GraphQL-over-HTTP spec, with the guards a cookie-authenticated
//! API needs: only JSON bodies execute (a cross-site form cannot send one without a CORS
//! preflight), GET runs queries only, one operation per request, and nesting is checked before
//! parsing.

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute};
use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{ErrorExtensionValues, ServerError, Value, Variables};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::auth::RequestAuth;
use crate::error::{INTERNAL_MESSAGE, code};
use crate::http::guard;
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
}

/// The query string of a GET request.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphqlParams {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
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

/// `POST /graphql`.
pub async fn post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
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
    let Some(query) = body.query else {
        return refuse(StatusCode::BAD_REQUEST, "The request has no query");
    };
    execute(
        state,
        &headers,
        media,
        query,
        body.operation_name,
        variables,
        false,
    )
    .await
}

/// `GET /graphql`: queries only.
pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<GraphqlParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(media) = negotiate(&headers) else {
        return refuse(
            StatusCode::NOT_ACCEPTABLE,
            "Accept must allow application/graphql-response+json or application/json",
        );
    };
    let Ok(Query(params)) = params else {
        return refuse(StatusCode::BAD_REQUEST, "Malformed query string");
    };
    let Some(query) = params.query else {
        return refuse(StatusCode::BAD_REQUEST, "The request has no query");
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
    execute(
        state,
        &headers,
        media,
        query,
        params.operation_name,
        variables,
        true,
    )
    .await
}

async fn execute(
    state: AppState,
    headers: &HeaderMap,
    media: MediaType,
    query: String,
    operation_name: Option<String>,
    variables: Variables,
    queries_only: bool,
) -> Response {
    if guard::check_document(&query).is_err() {
        return refuse(StatusCode::BAD_REQUEST, "The document is nested too deeply");
    }
    if queries_only && !is_query(&query, operation_name.as_deref()) {
        let mut response = refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "Only queries may be sent with GET; send mutations with POST",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let request_id = request_id(headers);
    let executed = ExecutedOperation::default();
    let mut request = async_graphql::Request::new(query)
        .variables(variables)
        .data(RequestAuth::from_headers(headers, &state.auth))
        .data(executed.clone());
    if let Some(name) = &operation_name {
        request = request.operation_name(name.clone());
    }
    let mut response = state.schema.execute(request).await;
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
    let operation = crate::metrics::operation_label(
        executed
            .0
            .get()
            .map(String::as_str)
            .or(operation_name.as_deref()),
    );
    let span = tracing::Span::current();
    span.record("graphql.operation", operation.as_str());
    span.record("graphql.outcome", code.as_str());
    crate::metrics::graphql_operation(operation, &code);
    let request_error = response.data == Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    let mut body = serde_json::to_value(&response).unwrap_or_else(|_| json!({}));
    if request_error && let Some(object) = body.as_object_mut() {
        object.remove("data");
    }
    let status = if request_error && media == MediaType::GraphqlResponse {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut http = (status, axum::Json(body)).into_response();
    http.headers_mut()
        .insert(header::CONTENT_TYPE, media.header());
    http
}

/// The name of the operation that ran, filled in by [`OperationNames`] for metrics and traces.
#[derive(Clone, Default)]
pub struct ExecutedOperation(std::sync::Arc<std::sync::OnceLock<String>>);

/// An extension that tells [`ExecutedOperation`] which operation of the document ran.
pub struct OperationNames;

impl ExtensionFactory for OperationNames {
    fn create(&self) -> std::sync::Arc<dyn Extension> {
        std::sync::Arc::new(OperationNames)
    }
}

#[async_trait::async_trait]
impl Extension for OperationNames {
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> async_graphql::Response {
        if let (Some(slot), Some(name)) = (ctx.data_opt::<ExecutedOperation>(), operation_name) {
            let _ = slot.0.set(name.to_owned());
        }
        next.run(ctx, operation_name).await
    }
}

/// Whether the operation that would run is a query. A document that does not parse counts
/// as a query, so its syntax error is reported normally.
fn is_query(document: &str, operation_name: Option<&str>) -> bool {
    let Ok(document) = async_graphql::parser::parse_query(document) else {
        return true;
    };
    let ty = match (&document.operations, operation_name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(_), None) => None,
    };
    ty.is_none_or(|ty| ty == OperationType::Query)
}

/// Gives every error a code, and masks any error we did not raise on purpose.
fn classify(error: &mut ServerError, request_id: Option<&str>) {
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
        let doc = "query A { viewer { id } } mutation B { x }";
        assert!(is_query(doc, Some("A")));
        assert!(!is_query(doc, Some("B")));
        assert!(!is_query("mutation { x }", None));
        assert!(!is_query("subscription { x }", None));
    }
}
