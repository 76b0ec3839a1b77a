//! The measuring pass: every selection of a document walked once, each fragment measured on
//! first use and reused wherever it is spread, with the lexical counts beside.

use std::collections::HashMap;

use async_graphql::Variables;
use async_graphql::parser::types::{
    ExecutableDocument, Field, OperationDefinition, Selection, SelectionSet,
};
use async_graphql_value::{ConstValue, Value};

use super::fields::{FieldShape, Shape, VIEWER_STATE, is_connection};
use super::measure::{
    DATABASE_FIELD_COST, DEFAULT_PAGE, LIST_ESTIMATE, MAX_PAGE, Measure, scale_page,
};

/// Counts of things written in the document, each occurrence once.
#[derive(Default)]
pub(super) struct Lexical {
    pub(super) aliases: u64,
    pub(super) spreads: u64,
    pub(super) directives: u64,
}

pub(super) enum Memo {
    Visiting,
    Done(Measure),
}

/// One measuring pass over a document, each fragment measured once.
pub(super) struct Walk<'a> {
    pub(super) document: &'a ExecutableDocument,
    pub(super) variables: &'a Variables,
    pub(super) operation: Option<&'a OperationDefinition>,
    pub(super) fragments: HashMap<&'a str, Memo>,
    pub(super) lexical: Lexical,
    pub(super) nul: bool,
    /// The schema's shape.
    pub(super) shape: &'static Shape,
}

impl<'a> Walk<'a> {
    /// The measure of a fragment, computed on first use; a cycle counts as nothing here
    /// (validation reports it).
    pub(super) fn fragment(&mut self, name: &'a str) -> Measure {
        match self.fragments.get(name) {
            Some(Memo::Done(measure)) => return *measure,
            Some(Memo::Visiting) => return Measure::ZERO,
            None => {}
        }
        let Some(fragment) = self.document.fragments.get(name) else {
            return Measure::ZERO;
        };
        self.fragments.insert(name, Memo::Visiting);
        let fragment = &fragment.node;
        self.lexical.directives += fragment.directives.len() as u64;
        let ty = fragment.type_condition.node.on.node.as_str();
        let page = is_connection(ty).then_some(DEFAULT_PAGE);
        let measure = self.selection_set(&fragment.selection_set.node, Some(ty), page);
        self.fragments.insert(name, Memo::Done(measure));
        measure
    }

    /// The measure of `set` on type `ty`; `page` is the page size when `ty` is a connection.
    pub(super) fn selection_set(
        &mut self,
        set: &'a SelectionSet,
        ty: Option<&'a str>,
        page: Option<u64>,
    ) -> Measure {
        let mut total = Measure::ZERO;
        for item in &set.items {
            let measure = match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    self.lexical.aliases += u64::from(field.alias.is_some());
                    self.lexical.directives += field.directives.len() as u64;
                    for (_, value) in &field.arguments {
                        self.nul |= value_has_nul(&value.node);
                    }
                    let shape = self.shape.field(ty, field.name.node.as_str());
                    let (rows, below_page) = self.rows(field, shape, page);
                    let below = self.selection_set(
                        &field.selection_set.node,
                        shape.map(|s| s.ty.as_str()),
                        below_page,
                    );
                    let own = if shape.is_some_and(|s| s.database) {
                        DATABASE_FIELD_COST
                    } else {
                        1
                    };
                    Measure {
                        fields: below.fields.saturating_add(1),
                        cost: below.cost.saturating_mul(rows).saturating_add(own),
                        viewer_state: below.viewer_state
                            || (ty == Some("Viewer")
                                && VIEWER_STATE.contains(&field.name.node.as_str())),
                    }
                }
                Selection::FragmentSpread(spread) => {
                    self.lexical.spreads += 1;
                    self.lexical.directives += spread.node.directives.len() as u64;
                    let measure = self.fragment(spread.node.fragment_name.node.as_str());
                    // A fragment on a connection type is measured with the default page.
                    match (page, ty) {
                        (Some(page), Some(ty)) if is_connection(ty) => scale_page(measure, page),
                        _ => measure,
                    }
                }
                Selection::InlineFragment(inline) => {
                    let inline = &inline.node;
                    self.lexical.directives += inline.directives.len() as u64;
                    let ty = inline
                        .type_condition
                        .as_ref()
                        .map_or(ty, |c| Some(c.node.on.node.as_str()));
                    self.selection_set(&inline.selection_set.node, ty, page)
                }
            };
            total = total.add(measure);
        }
        total
    }

    /// How many times the selections under `field` run, and the page size its own selections
    /// see: a connection passes its `first` (default [`DEFAULT_PAGE`]) to its `edges` and
    /// `nodes`; a list with `limit` runs that many times; other lists [`LIST_ESTIMATE`] times.
    fn rows(
        &self,
        field: &Field,
        shape: Option<&FieldShape>,
        page: Option<u64>,
    ) -> (u64, Option<u64>) {
        let argument = |name: &str| {
            field
                .arguments
                .iter()
                .find(|(argument, _)| argument.node == name)
                .map(|(_, value)| {
                    self.integer(&value.node)
                        .unwrap_or(DEFAULT_PAGE)
                        .min(MAX_PAGE)
                })
        };
        let Some(shape) = shape else {
            return (1, None);
        };
        if is_connection(&shape.ty) {
            return (1, Some(argument("first").unwrap_or(DEFAULT_PAGE)));
        }
        if !shape.list {
            return (1, None);
        }
        let rows = page
            .or_else(|| argument("limit"))
            .or_else(|| argument("first"))
            .unwrap_or(LIST_ESTIMATE);
        (rows, None)
    }

    /// An integer argument, literal or from a variable (or the variable's default).
    fn integer(&self, value: &Value) -> Option<u64> {
        let constant = match value {
            Value::Variable(name) => self.variables.get(name).cloned().or_else(|| {
                self.operation?
                    .variable_definitions
                    .iter()
                    .find(|d| d.node.name.node == *name)?
                    .node
                    .default_value
                    .as_ref()
                    .map(|v| v.node.clone())
            })?,
            Value::Number(n) => ConstValue::Number(n.clone()),
            _ => return None,
        };
        match constant {
            ConstValue::Number(n) => n.as_u64(),
            _ => None,
        }
    }
}

fn value_has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::List(items) => items.iter().any(value_has_nul),
        Value::Object(fields) => fields.values().any(value_has_nul),
        _ => false,
    }
}

pub(super) fn const_has_nul(value: &ConstValue) -> bool {
    match value {
        ConstValue::String(s) => s.contains('\0'),
        ConstValue::List(items) => items.iter().any(const_has_nul),
        ConstValue::Object(fields) => fields
            .iter()
            .any(|(k, v)| k.contains('\0') || const_has_nul(v)),
        _ => false,
    }
}
