//! Admission: what an operation may cost, measured on the parsed document before
//! async-graphql validates or runs it, in time linear in the document's size.
//!
//! async-graphql's validators and executor expand every fragment spread, so a 904-byte document
//! of fragments that each spread the next one twice costs 2^22 field visits there. Here every
//! fragment is measured once and its measure reused wherever it is spread, so the same document
//! is refused after a few dozen steps.
//!
//! Two measures, both with fragments expanded:
//!
//! - **fields**: every selected field, counted once per place it would appear in the result's
//!   shape (not per row);
//! - **cost**: what running it would take. A field costs 1, a field that queries the database
//!   costs [`DATABASE_FIELD_COST`], and the selections under a list are multiplied by the rows
//!   it can return: a connection's `edges` and `nodes` by its `first` (default 20), a list with
//!   a `limit` by it, other lists by [`LIST_ESTIMATE`]; a connection's `totalCount` and
//!   `pageInfo` count once. So 150 aliases of `photoJobs(first: 100)` cost what they look like.
//!
//! Beside them, lexical caps on aliases, fragment spreads and directives, and checks that the
//! spec requires but async-graphql 7.2 skips: a required variable must be given and not null.
//! Strings with a NUL character are refused too: PostgreSQL cannot store one, so it would
//! otherwise fail as a server error.

mod fields;
mod measure;
mod walk;

use std::collections::HashMap;

use async_graphql::Variables;
use async_graphql::parser::types::ExecutableDocument;

pub use fields::{
    ADMIN_DATABASE_FIELDS, Api, DATABASE_FIELDS, disagreements, unknown_database_fields,
};
pub use measure::{DATABASE_FIELD_COST, DEFAULT_PAGE, LIST_ESTIMATE, MAX_PAGE, Measure};
use walk::{Lexical, Walk, const_has_nul};

pub use crate::config::limits::Limits;

/// Why an operation was refused: the message for the client and the limit's variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What was wrong, for the client.
    pub message: String,
    /// The configuration variable of the limit that was hit, if one was.
    pub limit: Option<&'static str>,
}

impl Refusal {
    pub(super) fn input(message: impl Into<String>) -> Self {
        Refusal {
            message: message.into(),
            limit: None,
        }
    }

    fn over(what: &str, value: u64, max: u64, variable: &'static str) -> Self {
        Refusal {
            message: format!(
                "The document has {what} {value}, over the limit of {max} ({variable})"
            ),
            limit: Some(variable),
        }
    }
}

/// The fragment fan-out of issue 8: `query { ...F0 } fragment F0 on Query { ...F1 ...F1 } …
/// fragment F{n} on Query { __typename }`, 2^n fields in about 40·n bytes (for tests).
pub fn fan_out(n: usize) -> String {
    fan_out_on("query", "Query", "__typename", n)
}

/// The same fan-out for any root: `{operation} { ...F0 } fragment F0 on {root} { ...F1 ...F1 }
/// … fragment F{n} on {root} { {leaf} }` (e.g. a subscription's, for tests).
pub fn fan_out_on(operation: &str, root: &str, leaf: &str, n: usize) -> String {
    let mut doc = format!("{operation} {{ ...F0 }}");
    for i in 0..n {
        doc.push_str(&format!(
            " fragment F{i} on {root} {{ ...F{j} ...F{j} }}",
            j = i + 1
        ));
    }
    doc.push_str(&format!(" fragment F{n} on {root} {{ {leaf} }}"));
    doc
}

/// Measures `document` and checks it against `limits` and the request's `variables`.
/// Returns the measure of the operation that will run.
pub fn admit(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &Variables,
    limits: &Limits,
    api: Api,
) -> Result<Measure, Refusal> {
    let operation = super::operation::selected(document, operation_name);
    let mut walk = Walk {
        document,
        variables,
        operation,
        fragments: HashMap::new(),
        lexical: Lexical::default(),
        nul: false,
        shape: api.shape(),
    };
    // Every operation and fragment is measured (validation visits them all), each fragment once.
    let mut all = Measure::ZERO;
    let mut chosen = Measure::ZERO;
    for (_, op) in document.operations.iter() {
        let op = &op.node;
        walk.lexical.directives += op.directives.len() as u64;
        for definition in &op.variable_definitions {
            walk.lexical.directives += definition.node.directives.len() as u64;
            walk.nul |= definition
                .node
                .default_value
                .as_ref()
                .is_some_and(|v| const_has_nul(&v.node));
        }
        let root = match op.ty {
            async_graphql::parser::types::OperationType::Query => "Query",
            async_graphql::parser::types::OperationType::Mutation => "Mutation",
            async_graphql::parser::types::OperationType::Subscription => "Subscription",
        };
        let measure = walk.selection_set(&op.selection_set.node, Some(root), None);
        all = all.add(measure);
        if operation.is_some_and(|o| std::ptr::eq(o, op)) {
            chosen = measure;
        }
    }
    for name in document.fragments.keys() {
        let measure = walk.fragment(name.as_str());
        all.fields = all.fields.max(measure.fields);
    }
    let lexical = &walk.lexical;
    let checks = [
        (
            "fields (fragments expanded):",
            all.fields,
            limits.fields,
            "BFF_MAX_FIELDS",
        ),
        ("a cost of", chosen.cost, limits.cost, "BFF_MAX_COST"),
        (
            "aliases:",
            lexical.aliases,
            limits.aliases,
            "BFF_MAX_ALIASES",
        ),
        (
            "fragment spreads:",
            lexical.spreads,
            limits.fragment_spreads,
            "BFF_MAX_FRAGMENT_SPREADS",
        ),
        (
            "directives:",
            lexical.directives,
            limits.directives,
            "BFF_MAX_DIRECTIVES",
        ),
    ];
    for (what, value, max, variable) in checks {
        if value > max {
            return Err(Refusal::over(what, value, max, variable));
        }
    }
    if walk.nul || variables.values().any(const_has_nul) {
        return Err(Refusal::input(
            "Strings may not contain the NUL character (U+0000)",
        ));
    }
    if let Some(operation) = operation {
        super::operation::check_variables(operation, variables).map_err(Refusal::input)?;
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests;
