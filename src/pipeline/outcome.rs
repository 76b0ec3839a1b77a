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

/// How async-graphql's argument-coercion errors begin: it gives them no type or field of their
/// own, only this text. "Failed to parse" comes while executing, with the field's path (an
/// `Int` argument out of range); "Invalid value for argument" from validation, without one.
/// The tests send requests that raise each, so a release that rewords them fails there.
pub(crate) const INPUT_ERROR_PREFIXES: [&str; 2] =
    ["Failed to parse", "Invalid value for argument"];

/// Whether `message` is async-graphql's refusal of an argument's value, the client's to fix.
pub(crate) fn is_input_error(message: &str) -> bool {
    INPUT_ERROR_PREFIXES
        .iter()
        .any(|prefix| message.starts_with(prefix))
}

/// Gives every error a code, and masks any error we did not raise on purpose: an error without
/// a code and without a path is the request's (parse, validation, an unknown operation); with
/// a path it is a resolver's, and one we did not code is internal — except argument coercion
/// ([`is_input_error`]), the client's to fix.
pub(crate) fn classify(error: &mut ServerError, request_id: Option<&str>) {
    let has_code = error
        .extensions
        .as_ref()
        .is_some_and(|e| e.get("code").is_some());
    let code = if has_code {
        None
    } else if error.path.is_empty() || is_input_error(&error.message) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The errors of `query` run on the real schema (no data: arguments are coerced before any
    /// resolver reads it), each classified as the pipeline does.
    async fn classified_errors(query: &str) -> Vec<ServerError> {
        let schema = crate::graphql::schema().finish();
        let mut errors = schema.execute(query).await.errors;
        for error in &mut errors {
            classify(error, Some("req-1"));
        }
        errors
    }

    fn code_of(error: &ServerError) -> Option<Value> {
        error.extensions.as_ref()?.get("code").cloned()
    }

    /// Each matched text, raised by the real executor, is still recognised: coded
    /// BAD_USER_INPUT and shown, not masked, even where the error carries a field's path.
    #[tokio::test]
    async fn async_graphqls_argument_errors_are_the_clients() {
        let cases = [
            // Out of `Int`'s range: validation lets it through, execution refuses it.
            (
                "mutation { claimPhotoJobs(limit: 3000000000) { id } }",
                INPUT_ERROR_PREFIXES[0],
                true,
            ),
            // The wrong type: validation refuses it.
            (
                "mutation { claimPhotoJobs(limit: \"x\") { id } }",
                INPUT_ERROR_PREFIXES[1],
                false,
            ),
        ];
        for (query, prefix, has_path) in cases {
            let errors = classified_errors(query).await;
            let [error] = errors.as_slice() else {
                panic!("{query}: {errors:?}");
            };
            assert!(error.message.starts_with(prefix), "{query}: {error:?}");
            assert_eq!(!error.path.is_empty(), has_path, "{query}: {error:?}");
            assert!(is_input_error(&error.message));
            assert_eq!(
                code_of(error),
                Some(Value::from(code::BAD_USER_INPUT)),
                "{query}"
            );
        }
    }

    /// The other side: a resolver's uncoded error is masked as internal, with the request id.
    #[test]
    fn an_uncoded_resolver_error_is_masked() {
        let mut error = ServerError::new("connection reset", None);
        error.path = vec![async_graphql::PathSegment::Field("viewer".into())];
        classify(&mut error, Some("req-1"));
        assert_eq!(error.message, INTERNAL_MESSAGE);
        assert_eq!(
            code_of(&error),
            Some(Value::from(code::INTERNAL_SERVER_ERROR))
        );
        let request_id = error.extensions.as_ref().and_then(|e| e.get("requestId"));
        assert_eq!(request_id, Some(&Value::from("req-1")));
    }
}
