//! Hostile documents and headers: fan-out, aliases, NUL characters, bad cursors and variables,
//! suggestions, forged bearers, Stripe signature headers; and the everyday queries stay within
//! the limits.

use super::*;

#[tokio::test]
async fn fragment_fan_out_is_refused_before_validation() {
    let app = TestApp::spawn().await;
    // 2^22 field visits in async-graphql's validators (seconds of CPU, 844 MiB); 2^60 would
    // never finish. Both are refused from a linear measure, naming the limit.
    for n in [22, 60] {
        let doc = fan_out(n);
        assert!(doc.len() < 2600, "{}", doc.len());
        let (status, body) = app.post(&doc, json!({}), &[]).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(first_code(&body), "BAD_USER_INPUT", "{body}");
        assert!(message(&body).contains("BFF_MAX_FIELDS"), "{body}");
        assert_eq!(body["errors"][0]["extensions"]["limit"], "BFF_MAX_FIELDS");
        assert!(body.get("data").is_none(), "{body}");
    }
    let (_, body) = app.post(&fan_out(4), json!({}), &[]).await;
    assert_eq!(body["data"]["__typename"], "Query", "{body}");
}

#[tokio::test]
async fn aliased_database_fields_cost_what_they_look_like() {
    let app = TestApp::spawn().await;
    let user = app.user("Aliaser").await;
    let aliases: String = (0..150)
        .map(|i| format!("a{i}: photoJobs(first: 100) {{ edges {{ node {{ id }} }} }} "))
        .collect();
    let doc = format!("{{ viewer {{ {aliases} }} }}");
    assert!(doc.len() < 10_000);
    let (_, body) = app
        .post(&doc, json!({}), &[("cookie", user.cookie())])
        .await;
    assert_eq!(first_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(message(&body).contains("BFF_MAX_COST"), "{body}");

    // 10 KB of usage aliases: 1,002 transactions per request before; a handful of aliases now.
    let usage: String = (0..600).map(|i| format!("u{i}:usage{{used}}")).collect();
    let (_, body) = app
        .post(
            &format!("{{viewer{{{usage}}}}}"),
            json!({}),
            &[("cookie", user.cookie())],
        )
        .await;
    assert_eq!(first_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(body.get("data").is_none(), "{body}");

    // The limits are configuration.
    let strict = TestApp::spawn_with(|env| {
        env.insert("BFF_MAX_COST", "50".into());
    })
    .await;
    let user = strict.user("Strict").await;
    let (_, body) = strict
        .post(
            "{ viewer { photoJobs(first: 50) { nodes { id } } } }",
            json!({}),
            &[("cookie", user.cookie())],
        )
        .await;
    assert!(message(&body).contains("over the limit of 50"), "{body}");
    let (_, body) = strict
        .post(
            "{ viewer { photoJobs(first: 1) { nodes { id } } } }",
            json!({}),
            &[("cookie", user.cookie())],
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
}

#[tokio::test]
async fn the_dashboard_and_graphiql_queries_stay_within_the_default_limits() {
    let app = TestApp::spawn_with(|env| {
        env.insert("BFF_ENV", "development".into());
    })
    .await;
    let user = app.user("Reader").await;
    let limits = bff::pipeline::cost::Limits::default();
    for (name, doc) in [
        ("dashboard", dashboard()),
        ("graphiql", graphiql_default()),
        ("introspection", INTROSPECTION.to_owned()),
    ] {
        let parsed = async_graphql::parser::parse_query(&doc).unwrap();
        let measure = bff::pipeline::cost::admit(
            &parsed,
            None,
            &Default::default(),
            &limits,
            bff::pipeline::cost::Api::Viewer,
        )
        .unwrap();
        eprintln!("{name}: {measure:?}");
        assert!(measure.cost * 2 < limits.cost, "{name}: {measure:?}");
    }
    let body = app.query_as(&user, &dashboard(), json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["viewer"]["id"], user.id.as_str());
    let body = app.query_as(&user, &graphiql_default(), json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["viewer"]["id"], user.id.as_str());
    let (status, body) = app.post(INTROSPECTION, json!({}), &[]).await;
    assert_eq!(status, 200);
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
}

#[tokio::test]
async fn nul_characters_are_bad_input_and_change_nothing() {
    let app = TestApp::spawn().await;
    let user = app.user("Nul").await;
    grant(&app, &user, 1_000).await;
    let before = state(&app, &user).await;
    let create = "mutation($input: CreatePhotoJobInput!) { createPhotoJob(input: $input) { photoJob { id } } }";
    for input in [
        json!({ "prompt": "a\u{0}b", "photoCount": 1 }),
        json!({ "prompt": "ok", "photoCount": 1, "groupName": "g\u{0}" }),
        json!({ "prompt": "ok", "photoCount": 1, "idempotencyKey": "k\u{0}" }),
    ] {
        let body = app.query_as(&user, create, json!({ "input": input })).await;
        assert_eq!(first_code(&body), "BAD_USER_INPUT", "{body}");
    }
    let body = app
        .query_as(
            &user,
            r#"{ viewer { photoJobs(filter: { groupName: "x\u0000" }) { totalCount } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(first_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(state(&app, &user).await, before);
}

#[tokio::test]
async fn an_out_of_range_cursor_is_bad_input_on_every_connection() {
    let app = TestApp::spawn().await;
    let user = app.user("Cursor").await;
    // "-8000000000000000000:1": a valid i64 of microseconds, outside PostgreSQL's range.
    let cursor = URL_SAFE_NO_PAD.encode("-8000000000000000000:1");
    assert_eq!(cursor, "LTgwMDAwMDAwMDAwMDAwMDAwMDA6MQ");
    for query in [
        "query($a: String) { viewer { photoJobs(after: $a) { totalCount edges { cursor } } } }",
        "query($a: String) { viewer { purchases(after: $a) { edges { cursor } } } }",
        "query($a: String) { viewer { credits { transactions(after: $a) { edges { cursor } } } } }",
    ] {
        let body = app.query_as(&user, query, json!({ "a": cursor })).await;
        assert_eq!(first_code(&body), "BAD_USER_INPUT", "{query}: {body}");
    }
}

#[tokio::test]
async fn required_variables_must_be_provided_and_not_null() {
    let app = TestApp::spawn().await;
    let user = app.user("Variables").await;
    grant(&app, &user, 1_000).await;
    let before = state(&app, &user).await;
    let query = "query($f: Int!) { viewer { photoJobs(first: $f) { totalCount } } }";
    let body = app.query_as(&user, query, json!({})).await;
    assert_eq!(first_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(message(&body).contains("$f"), "{body}");
    let body = app.query_as(&user, query, json!({ "f": null })).await;
    assert_eq!(first_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(body.get("data").is_none(), "{body}");
    // A mutation with a null required variable does not run.
    let create = "mutation($n: Int!) { createPhotoJob(input: { prompt: \"x\", photoCount: $n }) { photoJob { id } } }";
    let body = app.query_as(&user, create, json!({ "n": null })).await;
    assert_eq!(first_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(state(&app, &user).await, before);
}

#[tokio::test]
async fn production_hides_field_suggestions() {
    let prod = TestApp::spawn().await;
    let (_, body) = prod.post("{ viewr { id } }", json!({}), &[]).await;
    assert_eq!(first_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(!message(&body).contains("Did you mean"), "{body}");
    let dev = TestApp::spawn_with(|env| {
        env.insert("BFF_ENV", "development".into());
    })
    .await;
    let (_, body) = dev.post("{ viewr { id } }", json!({}), &[]).await;
    assert!(message(&body).contains("Did you mean"), "{body}");
}

/// A JWT with `header`, any claims and a signature nobody can check.
fn forged_jwt(header: Value) -> String {
    let claims = json!({ "sub": "w", "role": "service", "exp": 4_000_000_000u64 });
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode([7u8; 64])
    )
}

#[tokio::test]
async fn forged_asymmetric_bearers_and_early_service_tokens_are_unauthenticated() {
    const KEY: &str = "service-secret-for-tests-0123456789abcdef";
    let app = TestApp::spawn_with(|env| {
        env.insert("SERVICE_JWT_SECRET", KEY.into());
    })
    .await;
    let claim = "mutation { claimPhotoJobs(limit: 1) { id } }";
    for alg in ["RS256", "EdDSA", "ES256"] {
        let token = forged_jwt(json!({ "alg": alg, "typ": "JWT", "kid": "x" }));
        let (_, body) = app
            .post(
                claim,
                json!({}),
                &[("authorization", format!("Bearer {token}"))],
            )
            .await;
        assert_eq!(first_code(&body), "UNAUTHENTICATED", "{alg}: {body}");
    }
    // A correctly signed service token that is not valid yet (nbf in an hour).
    let now = jsonwebtoken::get_current_timestamp();
    let early = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({ "sub": "w", "role": "service", "iat": now, "nbf": now + 3600, "exp": now + 7200 }),
        &jsonwebtoken::EncodingKey::from_secret(KEY.as_bytes()),
    )
    .unwrap();
    let (_, body) = app
        .post(
            claim,
            json!({}),
            &[("authorization", format!("Bearer {early}"))],
        )
        .await;
    assert_eq!(first_code(&body), "UNAUTHENTICATED", "{body}");
    // A real viewer on a worker operation is still FORBIDDEN.
    let user = app.user("Viewer").await;
    let body = app.query_as(&user, claim, json!({})).await;
    assert_eq!(first_code(&body), "FORBIDDEN", "{body}");
}

#[tokio::test]
async fn stripe_signature_headers_are_parsed_in_bounded_time() {
    let app = TestApp::spawn_with(|env| {
        env.insert("STRIPE_WEBHOOK_SECRET", "whsec_abuse".into());
    })
    .await;
    let body = vec![b'a'; 1024 * 1024 - 1];
    let header = format!("t=1,{}", "v1=,".repeat(10_000));
    let response = app
        .client
        .post(app.url("/webhooks/stripe"))
        .header("content-type", "application/json")
        .header("stripe-signature", header)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("Stripe-Signature")),
        "{body}"
    );
}
