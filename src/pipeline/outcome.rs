//! What an operation's answer means: every error gets a stable `extensions.code` (internal
//! ones masked, with the request id), and the outcome is counted in the metrics and noted on
//! the request's span.

use async_graphql::{ErrorExtensionValues, ServerError, Value};
use futures_util::{Stream, StreamExt};

use crate::error::{INTERNAL_MESSAGE, code};

/// A subscription's answers with their errors classified.
pub(super) fn classified(
    answers: impl Stream<Item = async_graphql::Response> + Send + 'static,
    request_id: Option<String>,
) -> impl Stream<Item = async_graphql::Response> + Send + 'static {
    answers.map(move |mut answer| {
        for error in &mut answer.errors {
            classify(error, request_id.as_deref());
        }
        answer
    })
}

/// Counts an operation's outcome and notes it on the request's span.
pub(super) fn record(operation_name: Option<&str>, outcome: &str, statements: u32) {
    let operation = crate::metrics::operation_label(operation_name);
    let span = tracing::Span::current();
    span.record("graphql.operation", operation.as_str());
    span.record("graphql.outcome", outcome);
    span.record("db.statements", statements);
    crate::metrics::graphql_statements(&operation, statements);
    crate::metrics::graphql_operation(operation, outcome);
}

/// Gives every error a code, and masks any error we did not raise on purpose: an error without
/// a code and without a path is the request's (parse, validation, an unknown operation); with
/// a path it is a resolver's, and one we did not code is internal — except argument coercion
/// (async-graphql's "Failed to parse …" / "Invalid value for argument …"), the client's to fix.
pub fn classify(error: &mut ServerError, request_id: Option<&str>) {
    let has_code = error
        .extensions
        .as_ref()
        .is_some_and(|e| e.get("code").is_some());
    let is_input_error = error.message.starts_with("Failed to parse")
        || error.message.starts_with("Invalid value for argument");
    let code = if has_code {
        None
    } else if error.path.is_empty() || is_input_error {
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
    let masked = extensions.get("code").is_some_and(|c| {
        *c == Value::from(code::INTERNAL_SERVER_ERROR)
            || *c == Value::from(code::SERVICE_UNAVAILABLE)
    });
    if masked && let Some(id) = request_id {
        extensions.set("requestId", id);
    }
}
