//! Rate limits: query cost per viewer, anonymous requests and failed sign-ins per address.

use super::*;

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
