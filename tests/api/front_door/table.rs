//! The cases: one request, one credential, and the code every transport must answer.

use super::*;

pub(super) fn cases() -> Vec<Case> {
    let trusted: &'static [(&str, &str)] = &[("BFF_TRUSTED_DOCUMENTS", "<manifest>")];
    vec![
        Case {
            name: "a listed document runs under trusted documents",
            env: trusted,
            credential: Credential::Valid,
            request: text(LISTED_QUERY, LISTED_SUBSCRIPTION),
            code: "OK",
            limit: None,
            exhaust_rate: false,
        },
        Case {
            name: "a listed document runs by its id",
            env: trusted,
            credential: Credential::Valid,
            request: Request {
                document_id: Some("<id>".into()),
                ..Request::default()
            },
            code: "OK",
            limit: None,
            exhaust_rate: false,
        },
        Case {
            name: "an unlisted document is refused under trusted documents",
            env: trusted,
            credential: Credential::Valid,
            request: text(
                "{ viewer { id email } }",
                "subscription NotListed { creditsChanged { balance } }",
            ),
            code: "BAD_USER_INPUT",
            limit: None,
            exhaust_rate: false,
        },
        Case {
            name: "an unknown persisted id is not found under trusted documents",
            env: trusted,
            credential: Credential::Valid,
            request: Request {
                document_id: Some(format!("sha256:{}", "0".repeat(64))),
                ..Request::default()
            },
            code: "PERSISTED_QUERY_NOT_FOUND",
            limit: None,
            exhaust_rate: false,
        },
        Case {
            name: "an unknown automatic persisted query is not found",
            env: &[],
            credential: Credential::Valid,
            request: Request {
                document_id: Some("<apq>".into()),
                ..Request::default()
            },
            code: "PERSISTED_QUERY_NOT_FOUND",
            limit: None,
            exhaust_rate: false,
        },
        Case {
            name: "an ordinary document runs",
            env: &[],
            credential: Credential::Valid,
            request: text(
                "{ viewer { id credits { balance } } }",
                "subscription { creditsChanged { balance } }",
            ),
            code: "OK",
            limit: None,
            exhaust_rate: false,
        },
        Case {
            name: "a document over the cost limit is refused",
            env: &[("BFF_MAX_COST", "5")],
            credential: Credential::Valid,
            request: text(
                "{ viewer { id email name } }",
                "subscription { photoJobUpdated { id status prompt groupName cost } }",
            ),
            code: "BAD_USER_INPUT",
            limit: Some("BFF_MAX_COST"),
            exhaust_rate: false,
        },
        Case {
            name: "a fragment fan-out is refused before it is expanded",
            env: &[],
            credential: Credential::Valid,
            request: text(
                &fan_out_on("query", "Query", "__typename", 22),
                &fan_out_on(
                    "subscription",
                    "Subscription",
                    "creditsChanged { balance }",
                    22,
                ),
            ),
            code: "BAD_USER_INPUT",
            limit: Some("BFF_MAX_FIELDS"),
            exhaust_rate: false,
        },
        Case {
            name: "a client past its rate limit is refused",
            env: &[
                ("BFF_MAX_COST", "100"),
                ("BFF_RATE_LIMIT_BURST", "100"),
                ("BFF_RATE_LIMIT_PER_SECOND", "1"),
            ],
            credential: Credential::Valid,
            request: text(
                "{ viewer { id } }",
                "subscription { creditsChanged { balance } }",
            ),
            code: "RATE_LIMITED",
            limit: None,
            exhaust_rate: true,
        },
        Case {
            name: "a required variable given as null is refused",
            env: &[],
            credential: Credential::Valid,
            request: Request {
                variables: Some(json!({ "id": null })),
                ..text(
                    "query($id: ID!) { viewer { photoJob(id: $id) { id } } }",
                    "subscription($id: ID!) { photoJobUpdated(id: $id) { id } }",
                )
            },
            code: "BAD_USER_INPUT",
            limit: None,
            exhaust_rate: false,
        },
        Case {
            name: "a variable of the wrong type is refused",
            env: &[],
            credential: Credential::Valid,
            request: Request {
                variables: Some(json!({ "id": { "not": "an id" } })),
                ..text(
                    "query($id: ID!) { viewer { photoJob(id: $id) { id } } }",
                    "subscription($id: ID!) { photoJobUpdated(id: $id) { id } }",
                )
            },
            code: "BAD_USER_INPUT",
            limit: None,
            exhaust_rate: false,
        },
        Case {
            name: "an unknown operation name is refused",
            env: &[],
            credential: Credential::Valid,
            request: Request {
                operation_name: Some("Nope".into()),
                ..text(
                    "query Mine { viewer { id } }",
                    "subscription Mine { creditsChanged { balance } }",
                )
            },
            code: "BAD_USER_INPUT",
            limit: None,
            exhaust_rate: false,
        },
        Case {
            name: "a request without a document is refused",
            env: &[],
            credential: Credential::Valid,
            request: Request::default(),
            code: "BAD_USER_INPUT",
            limit: None,
            exhaust_rate: false,
        },
        Case {
            name: "a forged credential signs nobody in",
            env: &[],
            credential: Credential::Forged,
            request: text(
                "{ node(id: \"UGhvdG9Kb2I6MQ\") { id } }",
                "subscription { creditsChanged { balance } }",
            ),
            code: "UNAUTHENTICATED",
            limit: None,
            exhaust_rate: false,
        },
        Case {
            name: "an expired session signs nobody in",
            env: &[],
            credential: Credential::Expired,
            request: text(
                "{ node(id: \"UGhvdG9Kb2I6MQ\") { id } }",
                "subscription { creditsChanged { balance } }",
            ),
            code: "UNAUTHENTICATED",
            limit: None,
            exhaust_rate: false,
        },
    ]
}
