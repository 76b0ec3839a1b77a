//! What every pooled connection reports about its statements: a `db.query` span per statement,
//! a child of the request's span (exported as a trace when OTLP is on, and free otherwise), and
//! a count per request ([`counting`]) for the `bff_graphql_statements` metric.
//! Failed statements are counted where their error is handled ([`crate::error`]): diesel-async
//! reports a `SELECT`'s error after this hook has already seen the statement finish.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use diesel::connection::{Instrumentation, InstrumentationEvent};
use tracing::Span;

tokio::task_local! {
    /// The statement counter of the request this task is serving, if any.
    static STATEMENTS: Arc<AtomicU32>;
}

/// Runs `future` counting the statements it sends (pipelined ones included: they are sent
/// from the request's own task).
pub(crate) async fn counting<F: Future>(counter: &Arc<AtomicU32>, future: F) -> F::Output {
    STATEMENTS.scope(counter.clone(), future).await
}

/// Installed on every pooled connection.
#[derive(Default)]
pub(crate) struct DbInstrumentation {
    // Statements finish in the order they were sent, also when pipelined on one connection.
    open: VecDeque<Span>,
}

impl Instrumentation for DbInstrumentation {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartQuery { query, .. } => {
                let _ = STATEMENTS.try_with(|count| count.fetch_add(1, Ordering::Relaxed));
                let span = tracing::debug_span!(
                    "db.query",
                    otel.kind = "client",
                    db.system = "postgresql",
                    db.statement = tracing::field::Empty,
                    otel.status_code = tracing::field::Empty,
                );
                if !span.is_disabled() {
                    span.record("db.statement", tracing::field::display(query));
                }
                self.open.push_back(span);
            }
            InstrumentationEvent::FinishQuery { error, .. } => {
                let span = self.open.pop_front();
                if let (Some(error), Some(span)) = (error, span) {
                    span.record("otel.status_code", "ERROR");
                    tracing::debug!(parent: &span, %error, "statement failed");
                }
            }
            _ => {}
        }
    }
}
