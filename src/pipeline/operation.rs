//! Which operation of a document a request runs, what kind it is, and the checks of its
//! variables that the GraphQL spec requires and async-graphql 7.2 skips.

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, OperationType, Selection,
    SelectionSet,
};
use async_graphql::{Name, Variables};
use async_graphql_value::ConstValue;

/// The operation that would run: the named one, or the only one.
pub(crate) fn selected<'a>(
    document: &'a ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<&'a OperationDefinition> {
    match (&document.operations, operation_name) {
        (DocumentOperations::Single(op), _) => Some(&op.node),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| &op.node),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| &op.node)
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// The name of the operation that would run (`None` for an anonymous one).
pub(crate) fn operation_name(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<String> {
    match &document.operations {
        DocumentOperations::Single(_) => None,
        DocumentOperations::Multiple(ops) => match operation_name {
            Some(name) => ops.contains_key(name).then(|| name.to_owned()),
            None if ops.len() == 1 => ops.keys().next().map(|name| name.to_string()),
            None => None,
        },
    }
}

/// The kind of the operation that would run; `None` when there is no such operation (then
/// async-graphql reports it).
pub(crate) fn kind(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<OperationType> {
    selected(document, operation_name).map(|op| op.ty)
}

/// A variable of non-null type without a default must be given, and not as null (the spec's
/// CoerceVariableValues; async-graphql 7.2 runs the operation anyway).
pub(crate) fn check_variables(
    operation: &OperationDefinition,
    variables: &Variables,
) -> Result<(), String> {
    for definition in &operation.variable_definitions {
        let definition = &definition.node;
        let ty = &definition.var_type.node;
        if ty.nullable || definition.default_value.is_some() {
            continue;
        }
        let name: &Name = &definition.name.node;
        match variables.get(name) {
            None => {
                return Err(format!(
                    "Variable \"${name}\" of required type \"{ty}\" was not provided"
                ));
            }
            Some(ConstValue::Null) => {
                return Err(format!(
                    "Variable \"${name}\" of non-null type \"{ty}\" must not be null"
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Whether any operation or fragment of `document` selects `__schema` or `__type` (the
/// introspection fields; `__typename` is not one).
pub(crate) fn introspects(document: &ExecutableDocument) -> bool {
    fn walk(set: &SelectionSet) -> bool {
        set.items.iter().any(|item| match &item.node {
            Selection::Field(field) => {
                let name = field.node.name.node.as_str();
                name == "__schema" || name == "__type" || walk(&field.node.selection_set.node)
            }
            Selection::InlineFragment(fragment) => walk(&fragment.node.selection_set.node),
            Selection::FragmentSpread(_) => false,
        })
    }
    document
        .operations
        .iter()
        .any(|(_, op)| walk(&op.node.selection_set.node))
        || document
            .fragments
            .values()
            .any(|fragment| walk(&fragment.node.selection_set.node))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_kind_of_named_operations() {
        let parse = |doc| async_graphql::parser::parse_query(doc).unwrap();
        let doc = parse("query A { viewer { id } } mutation B { x }");
        assert_eq!(kind(&doc, Some("A")), Some(OperationType::Query));
        assert_eq!(kind(&doc, Some("B")), Some(OperationType::Mutation));
        assert_eq!(kind(&doc, None), None);
        assert_eq!(kind(&doc, Some("C")), None);
        assert_eq!(
            kind(&parse("subscription { x }"), None),
            Some(OperationType::Subscription)
        );
        assert_eq!(operation_name(&doc, Some("B")).as_deref(), Some("B"));
        assert_eq!(
            operation_name(&parse("query Only { x }"), None).as_deref(),
            Some("Only")
        );
    }

    #[test]
    fn finds_introspection_anywhere_but_typename() {
        let parse = |doc| async_graphql::parser::parse_query(doc).unwrap();
        assert!(introspects(&parse("{ __schema { types { name } } }")));
        assert!(introspects(&parse(
            "{ ...F } fragment F on Query { __type(name: \"X\") { name } }"
        )));
        assert!(introspects(&parse(
            "{ viewer { ... on Viewer { x: __type(name: \"Y\") { name } } } }"
        )));
        assert!(!introspects(&parse(
            "{ __typename viewer { __typename id } }"
        )));
    }
}
