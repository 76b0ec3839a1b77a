//! What the cost model knows of the schema: which fields query the database, which read the
//! viewer's state, and each field's type, read once from bff's own SDL. The lists are checked
//! against the schema and the resolvers by [`disagreements`] and the tests below.

use std::collections::HashMap;
use std::sync::OnceLock;

use async_graphql::parser::types::{BaseType, TypeKind, TypeSystemDefinition};

use super::measure::DEFAULT_PAGE;

/// Fields that query the database, as `Type.field`; every root mutation field and every
/// connection's `totalCount` do too. Checked against the schema by [`disagreements`].
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
    "Viewer.notifications",
    "Viewer.notificationPreferences",
    "Viewer.changes",
    "CreditAccount.transactions",
    // Not `Notification.subject`, for the same reason as the next: a page reads its subjects
    // in at most three statements.
    // Not `PhotoJob.photos`: a page of jobs reads all their photos in one statement (its
    // connection prefetches them), so charging it per job would price a page of thumbnails as
    // if every job queried, and a dashboard that shows photos would run out of budget.
];

/// The administration schema's fields that query the database (`admin.graphql`), as
/// [`DATABASE_FIELDS`] for the viewer's.
pub const ADMIN_DATABASE_FIELDS: &[&str] = &[
    "Query.me",
    "Query.users",
    "Query.user",
    "Query.stats",
    "Query.auditLog",
    "Query.photoJobs",
    "Account.sessions",
    "Account.ledger",
    "Account.subscription",
    "Account.billingHistory",
    "Account.purchases",
    "Account.photoJobs",
    "Account.storage",
];

/// Which schema a document runs against: each has its own shape and lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// The viewer's (`/graphql`, `schema.graphql`).
    Viewer,
    /// The administration's (`/admin/graphql`, `admin.graphql`).
    Admin,
}

impl Api {
    /// Its fields that query the database.
    pub fn database_fields(self) -> &'static [&'static str] {
        match self {
            Api::Viewer => DATABASE_FIELDS,
            Api::Admin => ADMIN_DATABASE_FIELDS,
        }
    }

    /// Its shape, read once from its SDL.
    pub(super) fn shape(self) -> &'static Shape {
        static VIEWER: OnceLock<Shape> = OnceLock::new();
        static ADMIN: OnceLock<Shape> = OnceLock::new();
        match self {
            Api::Viewer => {
                VIEWER.get_or_init(|| Shape::from_sdl(&crate::graphql::sdl(), DATABASE_FIELDS))
            }
            Api::Admin => {
                ADMIN.get_or_init(|| Shape::from_sdl(&crate::admin::sdl(), ADMIN_DATABASE_FIELDS))
            }
        }
    }
}

/// The viewer's fields that the full session lookup answers (the `Viewer` resolvers that read
/// `self.state`; a test reads them there).
pub(super) const VIEWER_STATE: [&str; 4] = ["subscription", "credits", "usage", "changes"];

/// Whether a type is a connection (edges, nodes, pageInfo, totalCount), by its name.
pub(super) fn is_connection(ty: &str) -> bool {
    ty.ends_with("Connection")
}

/// A field as the schema declares it.
#[derive(Debug)]
pub(super) struct FieldShape {
    /// The named type it returns, lists and non-null stripped.
    pub(super) ty: String,
    /// Whether it returns a list.
    pub(super) list: bool,
    /// Whether resolving it queries the database.
    pub(super) database: bool,
    /// Its arguments' names and defaults, as written in the SDL.
    arguments: Vec<(String, Option<String>)>,
}

/// The schema's types, fields and root types, read once from bff's own SDL.
#[derive(Debug, Default)]
pub(super) struct Shape {
    types: HashMap<String, HashMap<String, FieldShape>>,
}

impl Shape {
    fn from_sdl(sdl: &str, listed: &[&str]) -> Shape {
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
                    let database = implicitly_database(&name, &field_name)
                        || listed.contains(&format!("{name}.{field_name}").as_str());
                    let arguments = field
                        .arguments
                        .iter()
                        .map(|argument| {
                            let argument = &argument.node;
                            let default = argument.default_value.as_ref().map(|v| v.to_string());
                            (argument.name.node.to_string(), default)
                        })
                        .collect();
                    let shape = FieldShape {
                        ty,
                        list,
                        database,
                        arguments,
                    };
                    (field_name, shape)
                })
                .collect();
            types.insert(name, fields);
        }
        Shape { types }
    }

    pub(super) fn field(&self, ty: Option<&str>, name: &str) -> Option<&FieldShape> {
        self.types.get(ty?)?.get(name)
    }
}

/// Fields that query the database without being listed: root mutations, `totalCount`.
fn implicitly_database(ty: &str, field: &str) -> bool {
    ty == "Mutation" || (field == "totalCount" && is_connection(ty))
}

fn named_type(base: &BaseType) -> (String, bool) {
    match base {
        BaseType::Named(name) => (name.to_string(), false),
        BaseType::List(inner) => (named_type(&inner.base).0, true),
    }
}

/// Whether every `Type.field` listed as querying the database exists in its schema (for
/// tests).
pub fn unknown_database_fields() -> Vec<&'static str> {
    [Api::Viewer, Api::Admin]
        .into_iter()
        .flat_map(|api| {
            api.database_fields()
                .iter()
                .copied()
                .filter(move |qualified| {
                    let (ty, field) = qualified.split_once('.').expect("Type.field");
                    api.shape().field(Some(ty), field).is_none()
                })
        })
        .collect()
}

/// Where the cost model's lists and the schema disagree, one sentence each (for tests): a
/// listed field that is missing or of the wrong kind, a page-returning field or root query
/// that is not listed, a `first` whose default is not [`DEFAULT_PAGE`], a connection without
/// the fields the model counts.
pub fn disagreements() -> Vec<String> {
    let mut found = disagreements_in(Api::Viewer.shape(), DATABASE_FIELDS);
    for problem in disagreements_in(Api::Admin.shape(), ADMIN_DATABASE_FIELDS) {
        found.push(format!("admin.graphql: {problem}"));
    }
    found
}

fn disagreements_in(shape: &Shape, listed: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for qualified in listed {
        let (ty, name) = qualified.split_once('.').expect("Type.field");
        match shape.field(Some(ty), name) {
            None => found.push(format!("{qualified} is listed but not in the schema")),
            Some(_) if implicitly_database(ty, name) => {
                found.push(format!("{qualified} is listed but counted anyway"));
            }
            Some(field) if !shape.types.contains_key(&field.ty) => found.push(format!(
                "{qualified} is listed but returns the scalar {}",
                field.ty
            )),
            Some(_) => {}
        }
    }
    for field in VIEWER_STATE {
        if shape.types.contains_key("Viewer")
            && !listed.contains(&format!("Viewer.{field}").as_str())
        {
            found.push(format!(
                "Viewer.{field} reads the viewer's state but is not listed"
            ));
        }
    }
    let mut names: Vec<_> = shape.types.iter().collect();
    names.sort_by_key(|(name, _)| name.as_str());
    for (ty, fields) in names {
        if ty == "Mutation" || ty == "Subscription" {
            continue;
        }
        let connection_like = ["edges", "nodes", "pageInfo", "totalCount"]
            .iter()
            .filter(|f| fields.contains_key(**f))
            .count();
        if is_connection(ty) && connection_like < 4 {
            found.push(format!(
                "{ty} is named a connection but lacks edges, nodes, pageInfo or totalCount"
            ));
        } else if !is_connection(ty) && connection_like >= 2 {
            found.push(format!("{ty} looks like a connection but is not named one"));
        }
        let mut fields: Vec<_> = fields.iter().collect();
        fields.sort_by_key(|(name, _)| name.as_str());
        for (name, field) in fields {
            let qualified = format!("{ty}.{name}");
            let first = field.arguments.iter().find(|(a, _)| a == "first");
            let pages = is_connection(&field.ty) || first.is_some();
            if (pages || ty == "Query") && !field.database {
                found.push(format!(
                    "{qualified} queries the database but is not listed"
                ));
            }
            if let Some((_, Some(default))) = first
                && *default != DEFAULT_PAGE.to_string()
            {
                found.push(format!(
                    "{qualified}(first) defaults to {default}, the cost model to {DEFAULT_PAGE}"
                ));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_database_field_exists() {
        assert_eq!(unknown_database_fields(), Vec::<&str>::new());
    }

    #[test]
    fn the_field_lists_agree_with_the_schema() {
        assert_eq!(disagreements(), Vec::<String>::new());
    }

    /// The check itself: a schema whose fields moved under the lists is caught.
    #[test]
    fn a_renamed_or_unlisted_field_is_reported() {
        let sdl = crate::graphql::sdl()
            .replace("photoJobs(", "jobs(")
            .replace("history(", "entries(")
            .replace("first: Int = 20", "first: Int = 25");
        let found = disagreements_in(&Shape::from_sdl(&sdl, DATABASE_FIELDS), DATABASE_FIELDS);
        for expected in [
            "Viewer.photoJobs is listed but not in the schema",
            "Viewer.jobs queries the database but is not listed",
            "BillingSubscription.entries queries the database but is not listed",
            "Viewer.purchases(first) defaults to 25, the cost model to 20",
        ] {
            assert!(
                found.iter().any(|f| f == expected),
                "{expected}: {found:#?}"
            );
        }
    }

    /// [`VIEWER_STATE`] is exactly the `Viewer` resolvers that read the session's state.
    #[test]
    fn the_viewer_state_fields_are_the_resolvers_that_read_it() {
        let source = include_str!("../../graphql/viewer.rs");
        let mut reading = Vec::new();
        for resolver in source.split("async fn ").skip(1) {
            let name: String = resolver
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let body = resolver.split("\n    }\n").next().unwrap_or_default();
            if name != "state" && body.contains("self.state(") {
                reading.push(camel_case(&name));
            }
        }
        reading.sort();
        let mut listed = VIEWER_STATE.map(str::to_owned).to_vec();
        listed.sort();
        assert_eq!(reading, listed);
    }

    fn camel_case(name: &str) -> String {
        let mut out = String::new();
        for (i, part) in name.split('_').enumerate() {
            let mut chars = part.chars();
            match chars.next() {
                Some(c) if i > 0 => out.extend(c.to_uppercase().chain(chars)),
                Some(c) => out.extend(std::iter::once(c).chain(chars)),
                None => {}
            }
        }
        out
    }
}
