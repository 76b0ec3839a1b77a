//! Abuse: each finding of issue 8 reproduced against the real HTTP surface, and refused now
//! with a clear error that changes nothing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use bff::pipeline::cost::fan_out;

use crate::photo_jobs::{grant, state};
use crate::support::{TestApp, first_code};

fn message(body: &Value) -> &str {
    body["errors"][0]["message"].as_str().unwrap_or_default()
}

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

/// The dashboard query, as docs/benchmarks.md shows it.
fn dashboard() -> String {
    let docs = include_str!("../../docs/benchmarks.md");
    let start = docs.find("query Dashboard {").unwrap();
    let end = start + docs[start..].find("\n}\n").unwrap() + 2;
    docs[start..end].to_owned()
}

/// The query GraphiQL opens with (`assets/graphiql/init.js`).
fn graphiql_default() -> String {
    let init = include_str!("../../assets/graphiql/init.js");
    let start = init.find("var defaultQuery = [").unwrap();
    let end = start + init[start..].find("].join").unwrap();
    init[start..end]
        .lines()
        .filter_map(|line| {
            let line = line.trim().trim_end_matches(',');
            line.strip_prefix('\'')?.strip_suffix('\'')
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// graphql-js's `getIntrospectionQuery()` with every option GraphiQL may turn on.
const INTROSPECTION: &str = include_str!("introspection.graphql");

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
        let measure =
            bff::pipeline::cost::admit(&parsed, None, &Default::default(), &limits).unwrap();
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
async fn readyz_answers_quickly_when_the_pool_is_exhausted() {
    let app = TestApp::spawn_with(|env| {
        env.insert("DATABASE_POOL_SIZE", "1".into());
        env.insert("DATABASE_POOL_TIMEOUT_MS", "30000".into());
    })
    .await;
    let held = app.pool.get().await.unwrap();
    let started = Instant::now();
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    let waited = started.elapsed();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["database"], "busy", "{body}");
    // The pool would have made it wait 30 s.
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    drop(held);
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

/// Writes `request` on a raw connection and returns what the server answers before closing or
/// `within` passes (`None` for nothing at all).
fn raw_exchange(app: &TestApp, request: &[u8], within: Duration) -> Option<String> {
    let mut stream = TcpStream::connect(app.addr).unwrap();
    stream.set_read_timeout(Some(within)).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buffer[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Err(_) => return (!answer.is_empty()).then(|| String::from_utf8_lossy(&answer).into()),
        }
    }
    Some(String::from_utf8_lossy(&answer).into())
}

#[tokio::test]
async fn an_oversized_content_length_is_refused_at_once() {
    let app = TestApp::spawn().await;
    let request = b"POST /graphql HTTP/1.1\r\nHost: bff\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n{\"query\":";
    let answer =
        tokio::task::spawn_blocking(move || raw_exchange(&app, request, Duration::from_secs(5)))
            .await
            .unwrap()
            .expect("an answer within 5 s, not after the body");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

#[tokio::test]
async fn connections_that_never_finish_their_headers_are_closed() {
    let app = TestApp::spawn_with(|env| {
        env.insert("BFF_HEADER_READ_TIMEOUT_MS", "500".into());
    })
    .await;
    let started = Instant::now();
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(app.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .write_all(b"POST /graphql HTTP/1.1\r\nHost: bff\r\n")
            .unwrap();
        let mut buffer = [0u8; 1024];
        // 1 byte a second would keep an untimed connection open forever.
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(300));
            if stream.write_all(b"X").is_err() {
                break;
            }
        }
        stream.read(&mut buffer)
    })
    .await
    .unwrap();
    assert!(
        matches!(answer, Ok(0)) || matches!(answer, Ok(n) if n > 0) || answer.is_err(),
        "{answer:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the connection stayed open for {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_half_sent_request_does_not_block_graceful_shutdown() {
    let app = TestApp::spawn().await;
    let (child, base) = crate::cli::serve_child(
        &app.database_url,
        &[
            ("BFF_HEADER_READ_TIMEOUT_MS", "60000"),
            ("BFF_SHUTDOWN_TIMEOUT_MS", "1000"),
        ],
    )
    .await;
    let addr = base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .write_all(b"POST /graphql HTTP/1.1\r\nHost: bff\r\nContent-")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let status = tokio::time::timeout(
        Duration::from_secs(15),
        crate::cli::signal_and_wait(child, "-TERM"),
    )
    .await
    .expect("bff serve exits after SIGTERM despite a half-sent request");
    assert!(status.success(), "{status}");
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(stream);
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

/// POSTs `query` with `headers`; returns the status, `Retry-After` and the body.
async fn post_with_retry_after(
    app: &TestApp,
    query: &str,
    headers: &[(&str, String)],
) -> (u16, Option<u64>, Value) {
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": query }));
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (status, retry_after, response.json().await.unwrap())
}

async fn rate_limited_app() -> TestApp {
    TestApp::spawn_with(|env| {
        env.insert("BFF_MAX_COST", "100".into());
        env.insert("BFF_RATE_LIMIT_BURST", "100".into());
        env.insert("BFF_RATE_LIMIT_PER_SECOND", "1".into());
    })
    .await
}

#[tokio::test]
async fn query_cost_is_rate_limited_per_viewer() {
    let app = rate_limited_app().await;
    let alice = app.user("Alice").await;
    let bob = app.user("Bob").await;
    grant(&app, &alice, 1_000).await;
    let before = state(&app, &alice).await;
    // `{ viewer { id } }` costs 11: nine fit in a bucket of 100.
    for _ in 0..9 {
        let (status, _, body) =
            post_with_retry_after(&app, "{ viewer { id } }", &[("cookie", alice.cookie())]).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["viewer"]["id"], alice.id.as_str());
    }
    let (status, retry_after, body) =
        post_with_retry_after(&app, "{ viewer { id } }", &[("cookie", alice.cookie())]).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(first_code(&body), "RATE_LIMITED");
    // 11 points at 1 a second, less what refilled meanwhile.
    let retry_after = retry_after.expect("Retry-After");
    assert!((1..=11).contains(&retry_after), "{retry_after}");
    assert_eq!(body["errors"][0]["extensions"]["retryAfter"], retry_after);
    // A refused mutation changes nothing.
    let (status, _, _) = post_with_retry_after(
        &app,
        "mutation { createPhotoJob(input: { prompt: \"x\", photoCount: 1 }) { photoJob { id } } }",
        &[("cookie", alice.cookie())],
    )
    .await;
    assert_eq!(status, 429);
    assert_eq!(state(&app, &alice).await, before);
    // Bob has his own bucket, though he calls from the same address.
    let (status, _, body) =
        post_with_retry_after(&app, "{ viewer { id } }", &[("cookie", bob.cookie())]).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn anonymous_requests_and_failed_authentication_are_limited_per_address() {
    let app = rate_limited_app().await;
    // `{ creditPacks { code } }` costs 10 + 10 × 1: five fit.
    for _ in 0..5 {
        let (status, _, body) = post_with_retry_after(&app, "{ creditPacks { code } }", &[]).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, _, body) = post_with_retry_after(&app, "{ creditPacks { code } }", &[]).await;
    assert_eq!(status, 429, "{body}");

    // A credential that signs nobody in costs at least 100: one guess empties the bucket.
    let app = rate_limited_app().await;
    let forged = format!(
        "better-auth.session_token={}",
        bff::auth::cookie_value("not-a-session", crate::support::SECRET)
    );
    let (status, _, body) =
        post_with_retry_after(&app, "{ viewer { id } }", &[("cookie", forged.clone())]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["viewer"], Value::Null);
    let (status, _, body) = post_with_retry_after(&app, "{ __typename }", &[]).await;
    assert_eq!(status, 429, "{body}");
    // So does a document refused by the cost limits: looping refused documents soon gets 429.
    let refused = rate_limited_app().await;
    let (_, _, body) = post_with_retry_after(&refused, &fan_out(30), &[]).await;
    assert_eq!(first_code(&body), "BAD_USER_INPUT", "{body}");
    let (status, _, body) = post_with_retry_after(&refused, &fan_out(30), &[]).await;
    assert_eq!(status, 429, "{body}");
    // A real viewer behind the same address is not affected.
    let user = app.user("Real").await;
    let (status, _, body) =
        post_with_retry_after(&app, "{ viewer { id } }", &[("cookie", user.cookie())]).await;
    assert_eq!(status, 200, "{body}");
}
