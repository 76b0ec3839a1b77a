//! `schema.graphql` and `admin.graphql` are what the schemas print, everything in them is
//! described, and the viewer's has nothing of the administration's.

use serde_json::Value;

#[test]
fn schema_graphql_is_fresh() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let sdl = bff::graphql::sdl();
    if std::env::var("BFF_UPDATE_SCHEMA").is_ok_and(|v| v == "1") {
        std::fs::write(path, &sdl).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == sdl,
        "schema.graphql is stale: run `BFF_UPDATE_SCHEMA=1 cargo test schema_graphql_is_fresh` \
         (or `cargo run -q -- schema > schema.graphql`) and commit it"
    );
}

/// `admin.graphql` is the administration schema's SDL, as `schema.graphql` is the viewer's.
#[test]
fn admin_graphql_is_fresh() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/admin.graphql");
    let sdl = bff::admin::sdl();
    if std::env::var("BFF_UPDATE_SCHEMA").is_ok_and(|v| v == "1") {
        std::fs::write(path, &sdl).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == sdl,
        "admin.graphql is stale: run `BFF_UPDATE_SCHEMA=1 cargo test admin_graphql_is_fresh` \
         and commit it"
    );
}

/// The root fields of `sdl`'s query and mutation types.
fn root_fields(sdl: &str) -> Vec<String> {
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
    let document = async_graphql::parser::parse_schema(sdl).unwrap();
    let mut fields = Vec::new();
    for definition in document.definitions {
        if let TypeSystemDefinition::Type(ty) = definition
            && ["Query", "Mutation"].contains(&ty.node.name.node.as_str())
            && let TypeKind::Object(object) = &ty.node.kind
        {
            for field in &object.fields {
                fields.push(field.node.name.node.to_string());
            }
        }
    }
    fields
}

#[test]
fn the_viewers_schema_has_no_administration_field() {
    let viewer = root_fields(&bff::graphql::sdl());
    let admin = root_fields(&bff::admin::sdl());
    assert!(admin.len() >= 9, "{admin:?}");
    // `failPhotoJob` is in both: the viewer schema's is the photo worker's (service tokens
    // only), the administration's is support's.
    let shared: Vec<&String> = admin
        .iter()
        .filter(|f| viewer.contains(f) && *f != "failPhotoJob")
        .collect();
    assert!(shared.is_empty(), "in both schemas: {shared:?}");
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).unwrap();
    for name in ["banUser", "grantCredits", "auditLog", "StaffRole"] {
        assert!(!committed.contains(name), "schema.graphql mentions {name}");
    }
}

#[tokio::test]
async fn every_type_field_argument_and_enum_value_has_a_description() {
    let query = "{ __schema { types { name description kind
        fields { name description args { name description } }
        inputFields { name description }
        enumValues { name description } } } }";
    let viewer = bff::graphql::schema().finish().execute(query).await;
    let admin = bff::admin::schema().finish().execute(query).await;
    for response in [viewer, admin] {
        described_everywhere(response);
    }
}

fn described_everywhere(response: async_graphql::Response) {
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let data = response.data.into_json().unwrap();
    let mut missing = Vec::new();
    let described = |v: &Value| {
        v["description"]
            .as_str()
            .is_some_and(|d| !d.trim().is_empty())
    };
    for ty in data["__schema"]["types"].as_array().unwrap() {
        let name = ty["name"].as_str().unwrap();
        if name.starts_with("__") || ["String", "Int", "Float", "Boolean", "ID"].contains(&name) {
            continue;
        }
        if !described(ty) {
            missing.push(name.to_owned());
        }
        for list in ["fields", "inputFields", "enumValues"] {
            for item in ty[list].as_array().into_iter().flatten() {
                if !described(item) {
                    missing.push(format!("{name}.{}", item["name"].as_str().unwrap()));
                }
                for arg in item["args"].as_array().into_iter().flatten() {
                    if !described(arg) {
                        missing.push(format!(
                            "{name}.{}({})",
                            item["name"].as_str().unwrap(),
                            arg["name"].as_str().unwrap()
                        ));
                    }
                }
            }
        }
    }
    assert!(missing.is_empty(), "undescribed: {missing:?}");
}
