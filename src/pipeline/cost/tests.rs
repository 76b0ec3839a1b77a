//! The cost model on documents: fan-outs, viewer state, pages, caps, variables.

use super::*;

fn measure(query: &str, variables: serde_json::Value) -> Result<Measure, Refusal> {
    let document = async_graphql::parser::parse_query(query).unwrap();
    admit(
        &document,
        None,
        &Variables::from_json(variables),
        &Limits::default(),
        Api::Viewer,
    )
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
