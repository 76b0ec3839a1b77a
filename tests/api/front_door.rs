//! One front door: the same case table run over every transport — `POST /graphql`,
//! `GET /graphql` and a `graphql-transport-ws` subscribe — expecting the same `extensions.code`
//! from each. HTTP and WebSocket requests go through one pipeline (document resolution, the
//! pre-parse guard, the caches, the cost model, rate charging, authentication, execution), so a
//! rule added there holds everywhere.
//!
//! A WebSocket signs in once, at `connection_init`; a credential refused there closes the
//! connection with the protocol's own code (4403 Forbidden), which is how that transport frames
//! `UNAUTHENTICATED`.

use std::collections::HashMap;

use serde_json::{Value, json};

use bff::pipeline::cost::fan_out_on;

use crate::live::{Client, End};
use crate::support::{TestApp, TestUser};

mod table;

use table::cases;

/// Which transport a request goes over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    Post,
    Get,
    WebSocket,
}

const TRANSPORTS: [Transport; 3] = [Transport::Post, Transport::Get, Transport::WebSocket];

/// How the caller signs in.
#[derive(Clone, Copy, Debug)]
enum Credential {
    /// A live session.
    Valid,
    /// A session token with a signature made with another secret.
    Forged,
    /// A session whose `expiresAt` has passed.
    Expired,
}

/// One request, as each transport would carry it: `query` for HTTP (a query), `subscription`
/// for WebSocket (its analogue).
#[derive(Clone, Debug, Default)]
struct Request {
    query: Option<String>,
    subscription: Option<String>,
    document_id: Option<String>,
    operation_name: Option<String>,
    variables: Option<Value>,
}

struct Case {
    name: &'static str,
    env: &'static [(&'static str, &'static str)],
    credential: Credential,
    request: Request,
    /// `extensions.code` expected, or `OK` for no error.
    code: &'static str,
    /// `extensions.limit` expected, if any.
    limit: Option<&'static str>,
    /// Spend the caller's rate bucket over HTTP first.
    exhaust_rate: bool,
}

const LISTED_QUERY: &str = "query Allowed { viewer { id } }";
const LISTED_SUBSCRIPTION: &str = "subscription AllowedLive { photoJobUpdated { id status } }";

fn text(query: &str, subscription: &str) -> Request {
    Request {
        query: Some(query.to_owned()),
        subscription: Some(subscription.to_owned()),
        ..Request::default()
    }
}

/// The manifest of the trusted-documents cases: one query and one subscription.
fn manifest() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("front-door");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("persisted-documents.json");
    let map: HashMap<String, &str> = [LISTED_QUERY, LISTED_SUBSCRIPTION]
        .into_iter()
        .map(|doc| (sha256(doc), doc))
        .collect();
    std::fs::write(&path, serde_json::to_string(&map).unwrap()).unwrap();
    path
}

fn sha256(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The credential headers (HTTP) or `connection_init` bearer (WebSocket) of a user.
async fn bearer(app: &TestApp, user: &TestUser, credential: Credential) -> String {
    match credential {
        Credential::Valid => bff::auth::signed_token(&user.token, crate::support::SECRET),
        Credential::Forged => bff::auth::signed_token(&user.token, "another-secret-entirely"),
        Credential::Expired => {
            use diesel_async::SimpleAsyncConnection;
            app.db()
                .await
                .batch_execute(&format!(
                    "UPDATE session SET \"expiresAt\" = now() - interval '1 minute' \
                     WHERE token = '{}'",
                    user.token
                ))
                .await
                .unwrap();
            bff::auth::signed_token(&user.token, crate::support::SECRET)
        }
    }
}

/// The fields of a GraphQL request as a JSON object, with the placeholders filled in.
fn payload(request: &Request, transport: Transport) -> Value {
    let mut body = serde_json::Map::new();
    let text = match transport {
        Transport::WebSocket => &request.subscription,
        _ => &request.query,
    };
    if let Some(text) = text {
        body.insert("query".into(), json!(text));
    }
    match request.document_id.as_deref() {
        Some("<id>") => {
            let listed = match transport {
                Transport::WebSocket => LISTED_SUBSCRIPTION,
                _ => LISTED_QUERY,
            };
            body.insert(
                "documentId".into(),
                json!(format!("sha256:{}", sha256(listed))),
            );
        }
        Some("<apq>") => {
            body.insert(
                "extensions".into(),
                json!({ "persistedQuery": { "version": 1, "sha256Hash": "1".repeat(64) } }),
            );
        }
        Some(id) => {
            body.insert("documentId".into(), json!(id));
        }
        None => {}
    }
    if let Some(name) = &request.operation_name {
        body.insert("operationName".into(), json!(name));
    }
    if let Some(variables) = &request.variables {
        body.insert("variables".into(), variables.clone());
    }
    Value::Object(body)
}

/// What a transport answered: `OK`, or the first error's code and limit.
async fn run(
    app: &TestApp,
    transport: Transport,
    request: &Request,
    bearer: &str,
) -> (String, Option<String>, Value) {
    let body = payload(request, transport);
    let from_errors = |answer: &Value, errors: &Value| -> (String, Option<String>, Value) {
        match errors.get(0) {
            Some(error) => (
                error["extensions"]["code"]
                    .as_str()
                    .unwrap_or("(no code)")
                    .to_owned(),
                error["extensions"]["limit"].as_str().map(str::to_owned),
                answer.clone(),
            ),
            None => ("OK".into(), None, answer.clone()),
        }
    };
    let over_http = async |request: reqwest::RequestBuilder| {
        let response = request
            .header("authorization", format!("Bearer {bearer}"))
            .send()
            .await
            .unwrap();
        let answer: Value = response.json().await.unwrap();
        from_errors(&answer, &answer["errors"])
    };
    match transport {
        Transport::Post => over_http(app.client.post(app.url("/graphql")).json(&body)).await,
        Transport::Get => {
            let params: Vec<(String, String)> = body
                .as_object()
                .unwrap()
                .iter()
                .map(|(key, value)| {
                    let value = match value {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (key.clone(), value)
                })
                .collect();
            over_http(app.client.get(app.url("/graphql")).query(&params)).await
        }
        Transport::WebSocket => {
            let mut client = Client::connect(app, "graphql-transport-ws", &[])
                .await
                .unwrap();
            client
                .send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {bearer}") } }))
                .await;
            match client.next_within(std::time::Duration::from_secs(10)).await {
                Ok(ack) if ack["type"] == "connection_ack" => {}
                // The protocol's framing of a refused sign-in.
                Err(End::Closed(4403, reason)) => {
                    return ("UNAUTHENTICATED".into(), None, json!({ "closed": reason }));
                }
                Err(End::Closed(1013, reason)) => {
                    return ("RATE_LIMITED".into(), None, json!({ "closed": reason }));
                }
                other => panic!("connection_init answered {other:?}"),
            }
            client
                .send(json!({ "type": "subscribe", "id": "1", "payload": body }))
                .await;
            client.send(json!({ "type": "ping" })).await;
            let mut answer = client.next().await;
            if answer["type"] == "pong" {
                // The ping was answered after the subscription was admitted; an error found
                // while it starts executing (a variable's coercion) comes from its stream and
                // may follow the pong, so wait a moment for one.
                if let Ok(late) = client.next_within(std::time::Duration::from_secs(1)).await {
                    answer = late;
                }
            }
            match answer["type"].as_str() {
                // Started: the subscription runs, and nothing came but the pong.
                Some("pong") => ("OK".into(), None, answer),
                Some("error") => from_errors(&answer, &answer["payload"]),
                Some("next") => from_errors(&answer, &answer["payload"]["errors"]),
                _ => panic!("unexpected {answer}"),
            }
        }
    }
}

#[tokio::test]
async fn every_transport_answers_each_case_with_the_same_code() {
    let manifest = manifest();
    let mut failures = Vec::new();
    for case in cases() {
        for transport in TRANSPORTS {
            let app = TestApp::spawn_with(|env| {
                for (name, value) in case.env {
                    let value = if *value == "<manifest>" {
                        manifest.display().to_string()
                    } else {
                        (*value).to_owned()
                    };
                    env.insert(name, value);
                }
            })
            .await;
            let user = app.user("Caller").await;
            let bearer = bearer(&app, &user, case.credential).await;
            if case.exhaust_rate {
                // One request of the whole burst's cost empties the viewer's bucket.
                let (status, body) = app
                    .post(
                        "{ viewer { photoJobs(first: 79) { nodes { id } } } }",
                        json!({}),
                        &[("authorization", format!("Bearer {bearer}"))],
                    )
                    .await;
                assert_eq!(status, 200, "{body}");
                assert!(body.get("errors").is_none(), "{body}");
            }
            let (code, limit, answer) = run(&app, transport, &case.request, &bearer).await;
            if code != case.code || limit.as_deref() != case.limit {
                failures.push(format!(
                    "{} over {transport:?}: expected {} {:?}, got {code} {limit:?}: {answer}",
                    case.name, case.code, case.limit
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What the pipeline admitted once is kept under the request's text, operation name and
/// variables, so that a repeat skips the guard, the parse and the cost walk. This checks that
/// nothing it decided leaks to another request: other variables are measured again, a refused
/// request is refused every time (it is never kept), and the operation's kind is checked
/// against each transport again.
#[tokio::test]
async fn an_admitted_request_is_measured_again_when_its_variables_or_transport_differ() {
    let app = TestApp::spawn_with(|env| {
        env.insert("BFF_MAX_COST", "60".into());
    })
    .await;
    let user = app.user("ada").await;
    let cookie = [("cookie", user.cookie())];
    let page = "query Page($n: Int!) { viewer { photoJobs(first: $n) { edges { node { id prompt status } } } } }";
    for (n, expected) in [
        (5, "OK"),
        (100, "BAD_USER_INPUT"),
        (5, "OK"),
        (100, "BAD_USER_INPUT"),
    ] {
        let (status, body) = app.post(page, json!({ "n": n }), &cookie).await;
        let code = if body.get("errors").is_some() {
            crate::support::first_code(&body)
        } else {
            "OK"
        };
        assert_eq!(code, expected, "first: {n} ({status}): {body}");
        if expected != "OK" {
            assert_eq!(body["errors"][0]["extensions"]["limit"], "BFF_MAX_COST");
        }
    }
    // A mutation admitted over POST (it runs, and fails on its own input) is still refused
    // over GET.
    let mutation = "mutation Cancel { cancelPhotoJob(id: \"UGhvdG9Kb2I6MQ\") { id } }";
    let (status, _) = app.post(mutation, json!({}), &cookie).await;
    assert_eq!(status, 200);
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", mutation)])
        .header("cookie", user.cookie())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
}
