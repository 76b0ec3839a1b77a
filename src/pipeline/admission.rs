//! Steps 1–5 of the pipeline: the document, the guard, the parse, the operation's kind, the
//! cost. What they found for an admitted request is kept ([`super::prepared::Admission`]).

use std::net::IpAddr;
use std::sync::Arc;

use async_graphql::Variables;
use async_graphql::parser::types::{ExecutableDocument, OperationType};

use super::documents::Documents;
use super::prepared::Prepared;
use super::prepared::{self, RequestKey};
use super::rate_limit::{self, Key, REFUSED_COST, RateLimiter};
use super::request::{Refusal, Request, Transport};
use super::{cost, guard, operation};
use crate::config::limits::Limits;
use crate::error::code;

/// A request that passed steps 1–5.
pub(super) struct Admitted {
    pub(super) query: String,
    pub(super) document: Option<Arc<ExecutableDocument>>,
    pub(super) operation_name: Option<String>,
    /// The name of the operation that runs, for metrics and traces.
    pub(super) label: String,
    pub(super) variables: Variables,
    pub(super) cost: u64,
    pub(super) viewer_state: bool,
    /// A query (not a mutation or subscription): its answer may be kept.
    pub(super) is_query: bool,
    /// Its text, operation name and variables, digested.
    pub(super) key: RequestKey,
    /// An APQ hash to remember the text under once the request has paid for it (a text that
    /// did not parse or pass the limits is never remembered).
    pub(super) register: Option<String>,
}

impl Admitted {
    /// Its APQ text, to remember under `register` if the request pays.
    fn with_registration(mut self, register: Option<String>) -> Admitted {
        self.register = register.filter(|_| self.document.is_some());
        self
    }
}

/// What steps 1–5 read and keep: the documents that may run, the parsed and admitted ones,
/// the limits.
pub(super) struct Gate {
    pub(super) documents: Arc<Documents>,
    /// The schema the documents run against.
    pub(super) api: cost::Api,
    pub(super) prepared: Prepared,
    pub(super) limits: Limits,
    /// Whether introspection is allowed (development).
    pub(super) introspection: bool,
}

impl Gate {
    /// Steps 1–5: the document, the guard, the parse, the operation's kind, the cost. A
    /// document the cost limits refuse is charged to `address` in `rate`.
    pub(super) async fn admit(
        &self,
        request: Request,
        transport: Transport,
        address: Option<IpAddr>,
        rate: Option<&RateLimiter>,
    ) -> Result<Admitted, Refusal> {
        let Request {
            query,
            document_id,
            extensions,
            operation_name,
            variables,
        } = request;
        let has_persisted = extensions
            .as_ref()
            .is_some_and(|e| e.get("persistedQuery").is_some());
        if query.is_none() && document_id.is_none() && !has_persisted {
            return Err(Refusal::Malformed(
                "The request has no query (or documentId)".into(),
            ));
        }
        let resolved = self
            .documents
            .resolve_shared(query, document_id.as_deref(), extensions.as_ref())
            .await
            .map_err(|refusal| {
                let (message, code) = refusal.message_and_code();
                Refusal::Request {
                    message: message.into(),
                    code,
                    limit: None,
                }
            })?;
        let query = resolved.query;
        let key = RequestKey::of(&query, operation_name.as_deref(), &variables);
        if let Some(known) = self.prepared.admission(&key) {
            // Admitted before with the same text, operation name and variables: the guard,
            // the introspection check and the cost limits passed then and would now.
            check_kind(known.kind, transport)?;
            let admitted = Admitted {
                query,
                document: Some(known.document.clone()),
                operation_name,
                label: known.label.clone(),
                variables,
                cost: known.measure.cost,
                viewer_state: known.measure.viewer_state,
                is_query: known.kind == Some(OperationType::Query),
                key,
                register: None,
            };
            return Ok(admitted.with_registration(resolved.remember));
        }
        match guard::check_document(&query, self.limits.tokens) {
            Ok(()) => {}
            Err(guard::Refused::TooDeep) => {
                return Err(Refusal::Malformed(
                    "The document is nested too deeply".into(),
                ));
            }
            Err(guard::Refused::TooManyTokens) => {
                return Err(Refusal::Request {
                    message: format!(
                        "The document has more than {} tokens (BFF_MAX_TOKENS)",
                        self.limits.tokens
                    ),
                    code: code::BAD_USER_INPUT,
                    limit: Some("BFF_MAX_TOKENS"),
                });
            }
        }
        // A document that does not parse goes on to async-graphql, which reports the syntax
        // error as validation would.
        let document = self.prepared.parse(&query);
        let mut measure = None;
        let mut kind = None;
        if let Some(document) = &document {
            kind = operation::kind(document, operation_name.as_deref());
            check_kind(kind, transport)?;
            if !self.introspection && operation::introspects(document) {
                return Err(Refusal::Request {
                    message: "Introspection is disabled (BFF_ENV=production)".into(),
                    code: code::INTROSPECTION_DISABLED,
                    limit: None,
                });
            }
            match cost::admit(
                document,
                operation_name.as_deref(),
                &variables,
                &self.limits,
                self.api,
            ) {
                Ok(measured) => measure = Some(measured),
                Err(refusal) => {
                    rate_limit::charge(rate, &Key::address(address), REFUSED_COST)
                        .await
                        .map_err(Refusal::RateLimited)?;
                    return Err(Refusal::Request {
                        message: refusal.message,
                        code: code::BAD_USER_INPUT,
                        limit: refusal.limit,
                    });
                }
            }
        }
        let label = crate::metrics::operation_label(
            document
                .as_deref()
                .and_then(|d| operation::operation_name(d, operation_name.as_deref()))
                .as_deref()
                .or(operation_name.as_deref()),
        );
        if let (Some(document), Some(measure)) = (&document, measure) {
            let admission = prepared::Admission {
                document: document.clone(),
                kind,
                measure,
                label: label.clone(),
            };
            self.prepared.admitted(key, Arc::new(admission));
        }
        let admitted = Admitted {
            query,
            document,
            operation_name,
            label,
            variables,
            cost: measure.map_or(1, |m| m.cost),
            viewer_state: measure.is_none_or(|m| m.viewer_state),
            is_query: kind == Some(OperationType::Query),
            key,
            register: None,
        };
        Ok(admitted.with_registration(resolved.remember))
    }
}

/// Refuses an operation its transport does not carry. An unknown operation passes: async-graphql
/// reports it as validation does.
fn check_kind(kind: Option<OperationType>, transport: Transport) -> Result<(), Refusal> {
    match (transport, kind) {
        (_, None) => Ok(()),
        (Transport::Get, Some(OperationType::Query)) => Ok(()),
        (Transport::Get, Some(_)) => Err(Refusal::Method(
            "Only queries may be sent with GET; send mutations with POST".into(),
        )),
        (Transport::Post, Some(OperationType::Subscription)) => Err(Refusal::input(
            "Subscriptions run over WebSocket: open one on GET /graphql (graphql-transport-ws)",
        )),
        (Transport::Post, Some(_)) => Ok(()),
        (Transport::WebSocket, Some(OperationType::Subscription)) => Ok(()),
        (Transport::WebSocket, Some(_)) => Err(Refusal::input(
            "Only subscriptions run over WebSocket: send queries and mutations to POST /graphql",
        )),
    }
}

/// The async-graphql request of an admitted one, with its parsed document.
pub(super) fn graphql_request(admitted: Admitted) -> async_graphql::Request {
    let mut request = async_graphql::Request::new(admitted.query).variables(admitted.variables);
    if let Some(name) = admitted.operation_name {
        request = request.operation_name(name);
    }
    if let Some(document) = admitted.document {
        request.set_parsed_query(Arc::unwrap_or_clone(document));
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_transport_carries_its_own_kinds() {
        use OperationType::*;
        assert!(check_kind(Some(Query), Transport::Get).is_ok());
        assert!(matches!(
            check_kind(Some(Mutation), Transport::Get),
            Err(Refusal::Method(_))
        ));
        assert!(check_kind(Some(Mutation), Transport::Post).is_ok());
        assert!(check_kind(Some(Subscription), Transport::Post).is_err());
        assert!(check_kind(Some(Subscription), Transport::WebSocket).is_ok());
        assert!(check_kind(Some(Query), Transport::WebSocket).is_err());
        assert!(check_kind(None, Transport::WebSocket).is_ok());
    }
}
