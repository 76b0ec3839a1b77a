//! The HTTP rules: JSON only, GET for queries, limits, the nesting bomb, negotiation, CORS,
//! GraphiQL, health, masking.

use serde_json::{Value, json};

use crate::support::{APP_ORIGIN, TestApp, first_code};

async fn raw_post(app: &TestApp, content_type: Option<&str>, body: String) -> reqwest::Response {
    let mut request = app.client.post(app.url("/graphql")).body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn only_json_bodies_execute() {
    let app = TestApp::spawn().await;
    let body = json!({ "query": "{ __typename }" }).to_string();
    for ct in [
        Some("text/plain"),
        Some("multipart/form-data; boundary=x"),
        Some("application/x-www-form-urlencoded"),
        None,
        Some("application/json; charset=latin1"),
    ] {
        let response = raw_post(&app, ct, body.clone()).await;
        assert_eq!(response.status(), 415, "content type {ct:?}");
        let json: Value = response.json().await.unwrap();
        assert!(json.get("data").is_none());
        assert_eq!(first_code(&json), "BAD_USER_INPUT");
    }
    let ok = raw_post(&app, Some("application/json; charset=utf-8"), body).await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn get_runs_queries_but_refuses_mutations_with_405() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", "{ __typename }")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap()["data"]["__typename"],
        "Query"
    );
    for (query, op) in [
        ("mutation { anything }", None),
        ("query A { __typename } mutation B { x }", Some("B")),
    ] {
        let mut params = vec![("query", query)];
        if let Some(op) = op {
            params.push(("operationName", op));
        }
        let response = app
            .client
            .get(app.url("/graphql"))
            .query(&params)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{query}");
        assert_eq!(response.headers()["allow"], "POST");
    }
    let response = app.client.put(app.url("/graphql")).send().await.unwrap();
    assert_eq!(response.status(), 405);
}

#[tokio::test]
async fn oversized_bodies_batches_and_nesting_bombs_are_refused_and_the_server_lives_on() {
    let app = TestApp::spawn().await;
    let big = json!({ "query": format!("{{ __typename }} #{}", "x".repeat(100_000)) }).to_string();
    assert_eq!(
        raw_post(&app, Some("application/json"), big).await.status(),
        413
    );

    let batch = json!([{ "query": "{ __typename }" }, { "query": "{ __typename }" }]).to_string();
    let response = raw_post(&app, Some("application/json"), batch).await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("Batched"));

    // The input that overflows stock async-graphql's parser stack.
    let bomb = format!(
        "{{ viewer {{ photoJob(id: {}\"x\"{}) {{ id }} }} }}",
        "[".repeat(3000),
        "]".repeat(3000)
    );
    let (status, body) = app.post(&bomb, json!({}), &[]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(first_code(&body), "BAD_USER_INPUT");
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", bomb.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let deep_variables = format!(
        "{{\"query\": \"{{ __typename }}\", \"variables\": {{\"a\": {}1{}}}}}",
        "[".repeat(3000),
        "]".repeat(3000)
    );
    assert_eq!(
        raw_post(&app, Some("application/json"), deep_variables)
            .await
            .status(),
        400
    );
    let deep_selection = format!(
        "{{ {} __typename {} }}",
        "viewer { ".repeat(40),
        "}".repeat(40)
    );
    let (_, body) = app.post(&deep_selection, json!({}), &[]).await;
    assert_eq!(first_code(&body), "BAD_USER_INPUT");

    // Still serving.
    let (status, body) = app.post("{ __typename }", json!({}), &[]).await;
    assert_eq!(
        (status, &body["data"]["__typename"]),
        (200, &json!("Query"))
    );
}

#[tokio::test]
async fn responses_follow_graphql_over_http_negotiation() {
    let app = TestApp::spawn().await;
    let send = |accept: &'static str, query: &'static str| {
        app.client
            .post(app.url("/graphql"))
            .header("accept", accept)
            .json(&json!({ "query": query }))
            .send()
    };
    let response = send("application/graphql-response+json", "{ __typename }")
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/graphql-response+json")
    );
    let response = send("application/graphql-response+json", "{ nope }")
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(body.get("data").is_none(), "{body}");
    assert_eq!(first_code(&body), "BAD_USER_INPUT");
    let response = send("application/json", "{ nope }").await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let response = send("text/html", "{ __typename }").await.unwrap();
    assert_eq!(response.status(), 406);
    let (_, body) = app.post("{ syntax error", json!({}), &[]).await;
    assert_eq!(first_code(&body), "BAD_USER_INPUT");
}

#[tokio::test]
async fn cors_allows_credentials_for_listed_origins_only() {
    let app = TestApp::spawn().await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/graphql"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let allowed = preflight(APP_ORIGIN).await.unwrap();
    assert_eq!(allowed.headers()["access-control-allow-origin"], APP_ORIGIN);
    assert_eq!(
        allowed.headers()["access-control-allow-credentials"],
        "true"
    );
    let denied = preflight("https://evil.example").await.unwrap();
    assert!(
        denied
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let simple = app
        .client
        .post(app.url("/graphql"))
        .header("origin", "https://evil.example")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert!(
        simple
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn graphiql_and_introspection_exist_only_in_development() {
    let prod = TestApp::spawn().await;
    assert_eq!(
        prod.client
            .get(prod.url("/graphiql"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    for query in [
        "{ __schema { queryType { name } } }",
        "{ __type(name: \"Viewer\") { name } }",
        "{ ...Hidden } fragment Hidden on Query { x: __schema { types { name } } }",
    ] {
        let (_, body) = prod.post(query, json!({}), &[]).await;
        assert_eq!(
            first_code(&body),
            "INTROSPECTION_DISABLED",
            "introspection must be off in production: {body}"
        );
        assert!(body.get("data").is_none_or(Value::is_null), "{body}");
    }
    // __typename is not introspection.
    let (_, body) = prod.post("{ __typename }", json!({}), &[]).await;
    assert_eq!(body["data"]["__typename"], "Query", "{body}");

    let dev = TestApp::spawn_with(|env| {
        env.insert("BFF_ENV", "development".into());
    })
    .await;
    let page = dev.client.get(dev.url("/graphiql")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "GraphiQL must load nothing from elsewhere"
    );
    for asset in [
        "graphiql.min.js",
        "graphiql.min.css",
        "react.production.min.js",
        "react-dom.production.min.js",
        "init.js",
    ] {
        assert!(
            html.contains(&format!("/graphiql/assets/{asset}")),
            "{asset} not referenced"
        );
        let response = dev
            .client
            .get(dev.url(&format!("/graphiql/assets/{asset}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        assert!(response.bytes().await.unwrap().len() > 100);
    }
    let (_, body) = dev
        .post("{ __schema { queryType { name } } }", json!({}), &[])
        .await;
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
}

#[tokio::test]
async fn health_readiness_request_ids_and_masked_internal_errors() {
    let app = TestApp::spawn().await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(health.headers().get("x-request-id").is_some());
    assert_eq!(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let broken = TestApp::spawn_on(format!("{}_gone", app.database_url), |_| {}).await;
    assert_eq!(
        broken
            .client
            .get(broken.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
    let user = app.user("Masked").await;
    let response = broken
        .client
        .post(broken.url("/graphql"))
        .header("cookie", user.cookie())
        .header("x-request-id", "req-123")
        .json(&json!({ "query": "{ viewer { id } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "req-123");
    // No connection: the client may retry, and is told when.
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    let error = &body["errors"][0];
    assert_eq!(
        error["message"],
        "The service is briefly unavailable (database or photo storage busy or unreachable); try again",
        "{body}"
    );
    assert_eq!(error["extensions"]["code"], "SERVICE_UNAVAILABLE");
    assert_eq!(error["extensions"]["requestId"], "req-123");
    assert!(
        !body.to_string().contains("does not exist"),
        "database details leaked: {body}"
    );
}

#[tokio::test]
async fn an_exhausted_pool_fails_fast_with_a_masked_error_instead_of_hanging() {
    let app = TestApp::spawn_with(|env| {
        env.insert("DATABASE_POOL_SIZE", "1".into());
        env.insert("DATABASE_POOL_TIMEOUT_MS", "200".into());
    })
    .await;
    let user = app.user("Waiting").await;
    let options = bff::db::ConnectOptions::parse(&app.database_url, None).unwrap();
    let pool = bff::db::pool(options, 1, std::time::Duration::from_millis(200)).unwrap();
    let held = pool.get().await.unwrap();
    let started = std::time::Instant::now();
    let second = pool.get().await;
    assert!(second.is_err(), "a second connection from a pool of one");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    drop(held);
    assert!(pool.get().await.is_ok(), "a returned connection is reused");
    // A server with a pool of one still answers requests one after another.
    for _ in 0..3 {
        assert_eq!(
            app.viewer_id(&[("cookie", user.cookie())]).await,
            Some(user.id.clone())
        );
    }
}

/// Documents are parsed and validated once (a cache keyed by their text, operation name and
/// variables), so a repeat must still get what a first request gets: an invalid variable or
/// an invalid document is refused every time, however often a valid twin has run.
#[tokio::test]
async fn cached_documents_are_still_checked_against_each_requests_variables() {
    let app = TestApp::spawn().await;
    let user = app.user("Cached").await;
    let query = "query Cached($n: Int!) { viewer { photoJobs(first: $n) { totalCount } } }";
    for _ in 0..3 {
        let body = app.query_as(&user, query, json!({ "n": 5 })).await;
        assert_eq!(
            body["data"]["viewer"]["photoJobs"]["totalCount"], 0,
            "{body}"
        );
        let body = app.query_as(&user, query, json!({ "n": "five" })).await;
        assert!(body["errors"][0]["message"].is_string(), "{body}");
        assert!(body.get("data").is_none_or(Value::is_null), "{body}");
        let body = app
            .query_as(&user, "{ viewer { notAField } }", json!({}))
            .await;
        assert!(body["errors"][0]["message"].is_string(), "{body}");
    }
}

/// The answer lists fields in the order the query selected them (the spec's ordering), not
/// sorted.
#[tokio::test]
async fn answers_keep_the_querys_field_order() {
    let app = TestApp::spawn().await;
    let user = app.user("Ordered").await;
    let text = app
        .client
        .post(app.url("/graphql"))
        .header("cookie", user.cookie())
        .json(&json!({ "query": "{ viewer { name id email } }" }))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at = |key: &str| {
        text.find(&format!("\"{key}\""))
            .unwrap_or_else(|| panic!("{text}"))
    };
    assert!(at("name") < at("id") && at("id") < at("email"), "{text}");
}

/// A request that is not a GraphQL request (no query text and no document id) is a 400, as
/// the GraphQL-over-HTTP spec recommends; a subscription sent over HTTP is refused with a
/// code that says where to send it.
#[tokio::test]
async fn a_request_without_a_query_is_400_and_a_subscription_over_http_is_refused() {
    let app = TestApp::spawn().await;
    for body in [r#"{"query":null}"#, r#"{}"#, r#"{"variables":{}}"#] {
        let response = raw_post(&app, Some("application/json"), body.to_owned()).await;
        assert_eq!(response.status(), 400, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(first_code(&answer), "BAD_USER_INPUT", "{body}: {answer}");
    }
    let response = app.client.get(app.url("/graphql")).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(first_code(&answer), "BAD_USER_INPUT", "{answer}");

    let user = app.user("subscriber-over-http").await;
    let (_, body) = app
        .post(
            "subscription { creditsChanged { balance } }",
            json!({}),
            &[("cookie", user.cookie())],
        )
        .await;
    assert_eq!(first_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("WebSocket"),
        "{body}"
    );
}

/// `/dev/mail` (the emails caught by `BFF_SMTP_URL=file://…`) exists only in development, even
/// when a production configuration writes emails to a directory.
#[tokio::test]
async fn caught_mail_is_shown_only_in_development() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("caught-{}", uuid::Uuid::new_v4()));
    let mail = move |env: &mut std::collections::HashMap<&'static str, String>| {
        env.insert("BFF_SMTP_URL", format!("file://{}", dir.display()));
        env.insert("BFF_EMAIL_FROM", "hello@example.com".into());
        env.insert("BFF_PUBLIC_URL", "http://127.0.0.1".into());
    };
    let prod = TestApp::spawn_with({
        let mail = mail.clone();
        move |env| mail(env)
    })
    .await;
    let status = prod
        .client
        .get(prod.url("/dev/mail"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404);
    let dev = TestApp::spawn_with(move |env| {
        mail(env);
        env.insert("BFF_ENV", "development".into());
    })
    .await;
    let page = dev.client.get(dev.url("/dev/mail")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("No email yet"));
}
