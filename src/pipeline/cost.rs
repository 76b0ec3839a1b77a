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

use std::collections::HashMap;
use std::sync::OnceLock;

use async_graphql::Variables;
use async_graphql::parser::types::{
    BaseType, ExecutableDocument, OperationDefinition, Selection, SelectionSet, TypeKind,
    TypeSystemDefinition,
};
use async_graphql_value::{ConstValue, Value};

/// Cost of a field that runs a database query.
pub const DATABASE_FIELD_COST: u64 = 10;
/// Rows assumed for a list without a page size (meters, credit packs).
pub const LIST_ESTIMATE: u64 = 10;
/// Rows of a connection without `first`: its default page size.
pub const DEFAULT_PAGE: u64 = 20;
/// Largest page a list argument can ask for (larger is refused by the resolver).
pub const MAX_PAGE: u64 = 100;

/// Fields that query the database, as `Type.field`; every root mutation field and every
/// connection's `totalCount` do too. Kept beside the resolvers' behaviour by a test.
pub const DATABASE_FIELDS: &[&str] = &[
    "BillingSubscription.history",
    "Query.viewer",
    "Query.creditPacks",
    "Query.node",
    "Viewer.subscription",
    "Viewer.credits",
    "Viewer.usage",
    "Viewer.photoJobs",
    "Viewer.purchases",
    "Viewer.photoJob",
    "CreditAccount.transactions",
    // Not `PhotoJob.photos`: a page of jobs reads all their photos in one statement (its
    // connection prefetches them), so charging it per job would price a page of thumbnails as
    // if every job queried, and a dashboard that shows photos would run out of budget.
];

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

/// An admitted operation's measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Measure {
    /// Fields after fragment expansion.
    pub fields: u64,
    /// Weighted cost (see the module docs).
    pub cost: u64,
    /// Whether the document selects any of the viewer's state read with the session
    /// (`Viewer.subscription`, `credits`, `usage`): if not, the lean session lookup serves it.
    pub viewer_state: bool,
}

impl Measure {
    const ZERO: Measure = Measure {
        fields: 0,
        cost: 0,
        viewer_state: false,
    };

    fn add(self, other: Measure) -> Measure {
        Measure {
            fields: self.fields.saturating_add(other.fields),
            cost: self.cost.saturating_add(other.cost),
            viewer_state: self.viewer_state || other.viewer_state,
        }
    }
}

/// The viewer's fields that the full session lookup answers.
const VIEWER_STATE: [&str; 3] = ["subscription", "credits", "usage"];

/// A field as the schema declares it.
#[derive(Debug)]
struct FieldShape {
    /// The named type it returns, lists and non-null stripped.
    ty: String,
    /// Whether it returns a list.
    list: bool,
    /// Whether resolving it queries the database.
    database: bool,
}

/// The schema's types, fields and root types, read once from bff's own SDL.
#[derive(Debug, Default)]
struct Shape {
    types: HashMap<String, HashMap<String, FieldShape>>,
}

fn shape() -> &'static Shape {
    static SHAPE: OnceLock<Shape> = OnceLock::new();
    SHAPE.get_or_init(|| Shape::from_sdl(&crate::graphql::sdl()))
}

impl Shape {
    fn from_sdl(sdl: &str) -> Shape {
        let document = async_graphql::parser::parse_schema(sdl).expect("bff's own SDL parses");
        let mut types = HashMap::new();
        for definition in document.definitions {
            let TypeSystemDefinition::Type(ty) = definition else {
                continue;
            };
            let name = ty.node.name.node.to_string();
            let fields = match ty.node.kind {
                TypeKind::Object(object) => object.fields,
                TypeKind::Interface(interface) => interface.fields,
                _ => continue,
            };
            let fields = fields
                .into_iter()
                .map(|field| {
                    let field = field.node;
                    let field_name = field.name.node.to_string();
                    let (ty, list) = named_type(&field.ty.node.base);
                    let qualified = format!("{name}.{field_name}");
                    let database = name == "Mutation"
                        || (field_name == "totalCount" && name.ends_with("Connection"))
                        || DATABASE_FIELDS.contains(&qualified.as_str());
                    (field_name, FieldShape { ty, list, database })
                })
                .collect();
            types.insert(name, fields);
        }
        Shape { types }
    }

    fn field(&self, ty: Option<&str>, name: &str) -> Option<&FieldShape> {
        self.types.get(ty?)?.get(name)
    }
}

fn named_type(base: &BaseType) -> (String, bool) {
    match base {
        BaseType::Named(name) => (name.to_string(), false),
        BaseType::List(inner) => (named_type(&inner.base).0, true),
    }
}

/// Whether every `Type.field` in [`DATABASE_FIELDS`] exists in the schema (for tests).
pub fn unknown_database_fields() -> Vec<&'static str> {
    DATABASE_FIELDS
        .iter()
        .copied()
        .filter(|qualified| {
            let (ty, field) = qualified.split_once('.').expect("Type.field");
            shape().field(Some(ty), field).is_none()
        })
        .collect()
}

/// Counts of things written in the document, each occurrence once.
#[derive(Default)]
struct Lexical {
    aliases: u64,
    spreads: u64,
    directives: u64,
}

enum Memo {
    Visiting,
    Done(Measure),
}

struct Walk<'a> {
    document: &'a ExecutableDocument,
    variables: &'a Variables,
    operation: Option<&'a OperationDefinition>,
    fragments: HashMap<&'a str, Memo>,
    lexical: Lexical,
    nul: bool,
}

impl<'a> Walk<'a> {
    /// The measure of a fragment, computed on first use; a cycle counts as nothing here
    /// (validation reports it).
    fn fragment(&mut self, name: &'a str) -> Measure {
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
        let page = ty.ends_with("Connection").then_some(DEFAULT_PAGE);
        let measure = self.selection_set(&fragment.selection_set.node, Some(ty), page);
        self.fragments.insert(name, Memo::Done(measure));
        measure
    }

    /// The measure of `set` on type `ty`; `page` is the page size when `ty` is a connection.
    fn selection_set(
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
                    let shape = shape().field(ty, field.name.node.as_str());
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
                        (Some(page), Some(ty)) if ty.ends_with("Connection") => {
                            scale_page(measure, page)
                        }
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
        field: &async_graphql::parser::types::Field,
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
        if shape.ty.ends_with("Connection") {
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

/// A fragment on a connection measured with the default page, rescaled to `page`: only
/// approximately (the fragment's per-row part cannot be told from its per-page part here), so
/// it is scaled up whole when the page is larger, and left as is when smaller.
fn scale_page(measure: Measure, page: u64) -> Measure {
    if page <= DEFAULT_PAGE {
        return measure;
    }
    Measure {
        cost: measure.cost.saturating_mul(page).div_ceil(DEFAULT_PAGE),
        ..measure
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

fn const_has_nul(value: &ConstValue) -> bool {
    match value {
        ConstValue::String(s) => s.contains('\0'),
        ConstValue::List(items) => items.iter().any(const_has_nul),
        ConstValue::Object(fields) => fields
            .iter()
            .any(|(k, v)| k.contains('\0') || const_has_nul(v)),
        _ => false,
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
) -> Result<Measure, Refusal> {
    let operation = super::operation::selected(document, operation_name);
    let mut walk = Walk {
        document,
        variables,
        operation,
        fragments: HashMap::new(),
        lexical: Lexical::default(),
        nul: false,
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
mod tests {
    use super::*;

    fn measure(query: &str, variables: serde_json::Value) -> Result<Measure, Refusal> {
        let document = async_graphql::parser::parse_query(query).unwrap();
        admit(
            &document,
            None,
            &Variables::from_json(variables),
            &Limits::default(),
        )
    }

    #[test]
    fn every_listed_database_field_exists() {
        assert_eq!(unknown_database_fields(), Vec::<&str>::new());
    }

    #[test]
    fn fragment_fan_out_is_measured_without_expanding_it() {
        let refusal = measure(&fan_out(22), serde_json::json!({})).unwrap_err();
        assert_eq!(refusal.limit, Some("BFF_MAX_FIELDS"));
        assert!(refusal.message.contains("4194304"), "{}", refusal.message);
        // 2^200 saturates instead of overflowing, and takes no longer.
        let refusal = measure(&fan_out(200), serde_json::json!({})).unwrap_err();
        assert_eq!(refusal.limit, Some("BFF_MAX_FIELDS"));
        assert_eq!(
            measure(&fan_out(3), serde_json::json!({})).unwrap().fields,
            8
        );
    }

    #[test]
    fn selecting_the_viewers_state_is_noticed_through_fragments() {
        let state = |query: &str| measure(query, serde_json::json!({})).unwrap().viewer_state;
        assert!(!state("{ viewer { id email photoJobs { nodes { id } } } }"));
        assert!(!state("mutation { cancelPhotoJob(id: \"x\") { id } }"));
        assert!(state("{ viewer { id credits { balance } } }"));
        assert!(state(
            "{ viewer { ...V } } fragment V on Viewer { usage { used } }"
        ));
        assert!(state(
            "{ viewer { ... on Viewer { subscription { status } } } }"
        ));
        assert!(state(
            "{ ...Q } fragment Q on Query { viewer { ...V } } fragment V on Viewer { credits { balance } }"
        ));
    }

    #[test]
    fn lists_multiply_by_their_page_size() {
        let one = measure(
            "{ viewer { photoJobs(first: 100) { edges { node { id } } } } }",
            serde_json::json!({}),
        )
        .unwrap();
        // viewer 10 + photoJobs 10 + edges 1 + 100 × (node 1 + id 1)
        assert_eq!(one.cost, 221);
        let by_variable = measure(
            "query($n: Int) { viewer { photoJobs(first: $n) { nodes { id } } } }",
            serde_json::json!({ "n": 5 }),
        )
        .unwrap();
        assert_eq!(by_variable.cost, 10 + 10 + 1 + 5);
        let defaulted = measure(
            "{ viewer { photoJobs { totalCount nodes { id } } } }",
            serde_json::json!({}),
        )
        .unwrap();
        // totalCount is one count query, not one per row.
        assert_eq!(defaulted.cost, 10 + 10 + 10 + 1 + 20);
        let aliases: String = (0..25)
            .map(|i| format!("a{i}: photoJobs(first: 100) {{ nodes {{ id prompt }} }} "))
            .collect();
        let refusal = measure(
            &format!("{{ viewer {{ {aliases} }} }}"),
            serde_json::json!({}),
        )
        .unwrap_err();
        assert_eq!(refusal.limit, Some("BFF_MAX_COST"), "{}", refusal.message);
    }

    #[test]
    fn lexical_caps_name_their_limit() {
        let aliases: String = (0..31).map(|i| format!("a{i}: __typename ")).collect();
        let refusal = measure(&format!("{{ {aliases} }}"), serde_json::json!({})).unwrap_err();
        assert_eq!(refusal.limit, Some("BFF_MAX_ALIASES"));
        let directives = "__typename @skip(if: false) ".repeat(51);
        let refusal = measure(&format!("{{ {directives} }}"), serde_json::json!({})).unwrap_err();
        assert_eq!(refusal.limit, Some("BFF_MAX_DIRECTIVES"));
    }

    #[test]
    fn required_variables_must_be_given_and_not_null() {
        let query = "query($f: Int!) { viewer { photoJobs(first: $f) { totalCount } } }";
        let missing = measure(query, serde_json::json!({})).unwrap_err();
        assert!(missing.message.contains("$f"), "{}", missing.message);
        assert!(measure(query, serde_json::json!({ "f": null })).is_err());
        assert!(measure(query, serde_json::json!({ "f": 3 })).is_ok());
        let defaulted = "query($f: Int! = 3) { viewer { id } }";
        assert!(measure(defaulted, serde_json::json!({})).is_ok());
    }

    #[test]
    fn nul_characters_are_refused_in_literals_and_variables() {
        assert!(
            measure(
                "{ viewer { photoJobs(filter: { groupName: \"a\\u0000b\" }) { totalCount } } }",
                serde_json::json!({})
            )
            .is_err()
        );
        assert!(
            measure(
                "query($g: String) { viewer { photoJobs(filter: { groupName: $g }) { totalCount } } }",
                serde_json::json!({ "g": "a\u{0}b" })
            )
            .is_err()
        );
        assert!(
            measure(
                "mutation($i: CreatePhotoJobInput!) { createPhotoJob(input: $i) { photoJob { id } } }",
                serde_json::json!({ "i": { "prompt": "x\u{0}", "photoCount": 1 } })
            )
            .is_err()
        );
    }
}
