//! Authentication exactly as Better Auth 1.7 does it (vectors from better-auth.md).

use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::json;

use crate::support::{SECRET, TestApp, TestUser};
use bff::db::better_auth::{session, users};

const TOKEN_1: &str = "o9NbUpcKagAbkDNLjUgCYKhtMtnL291X";
const WIRE_1: &str =
    "o9NbUpcKagAbkDNLjUgCYKhtMtnL291X.g0RQ48wjYt9WcgCTehRcvYfyHJg8xMlvc1iXcYHA4BQ%3D";
const TOKEN_2: &str = "KHWCVGLOk7iFhUkR8fhuo3EUJfdxGP8s";
const WIRE_2: &str =
    "KHWCVGLOk7iFhUkR8fhuo3EUJfdxGP8s.UH%2BrNvvBk0rLJjCwkDzSxY%2Bzx0Z4iYxF5Mfy5825O88%3D";

/// A user whose session has exactly `token`.
async fn user_with_token(app: &TestApp, token: &str) -> TestUser {
    let user = app.user(&format!("Vector{}", &token[..6])).await;
    let mut conn = app.db().await;
    diesel::update(session::table.filter(session::token.eq(&user.token)))
        .set(session::token.eq(token))
        .execute(&mut conn)
        .await
        .unwrap();
    TestUser {
        id: user.id,
        token: token.to_owned(),
    }
}

fn cookie(value: &str) -> Vec<(&'static str, String)> {
    vec![("cookie", format!("better-auth.session_token={value}"))]
}

fn bearer(value: &str) -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Bearer {value}"))]
}

#[test]
fn signing_matches_better_auths_test_vectors() {
    assert_eq!(bff::auth::cookie_value(TOKEN_1, SECRET), WIRE_1);
    assert_eq!(bff::auth::cookie_value(TOKEN_2, SECRET), WIRE_2);
}

#[tokio::test]
async fn the_cookie_from_the_test_vectors_signs_the_viewer_in() {
    let app = TestApp::spawn().await;
    let one = user_with_token(&app, TOKEN_1).await;
    let two = user_with_token(&app, TOKEN_2).await;
    assert_eq!(app.viewer_id(&cookie(WIRE_1)).await, Some(one.id.clone()));
    assert_eq!(app.viewer_id(&cookie(WIRE_2)).await, Some(two.id));
    // Un-encoded (+/= raw) and quoted values are accepted too, as Better Auth does.
    let raw = percent_encoding::percent_decode_str(WIRE_1)
        .decode_utf8()
        .unwrap()
        .into_owned();
    assert_eq!(app.viewer_id(&cookie(&raw)).await, Some(one.id.clone()));
    assert_eq!(
        app.viewer_id(&cookie(&format!("\"{WIRE_1}\""))).await,
        Some(one.id.clone())
    );
    // Among other cookies, and the first cookie of the name wins.
    let headers = vec![(
        "cookie",
        format!(
            "theme=dark; better-auth.session_token={WIRE_1}; better-auth.session_token={WIRE_2}"
        ),
    )];
    assert_eq!(app.viewer_id(&headers).await, Some(one.id));
}

#[tokio::test]
async fn bearer_accepts_signed_url_encoded_and_raw_tokens_with_any_scheme_case() {
    let app = TestApp::spawn().await;
    let user = user_with_token(&app, TOKEN_2).await;
    let signed = bff::auth::signed_token(TOKEN_2, SECRET);
    assert_eq!(app.viewer_id(&bearer(&signed)).await, Some(user.id.clone()));
    assert_eq!(app.viewer_id(&bearer(WIRE_2)).await, Some(user.id.clone()));
    assert_eq!(app.viewer_id(&bearer(TOKEN_2)).await, Some(user.id.clone()));
    let lower = vec![("authorization", format!("bearer {signed}"))];
    assert_eq!(app.viewer_id(&lower).await, Some(user.id.clone()));
    let upper = vec![("authorization", format!("BEARER {signed}"))];
    assert_eq!(app.viewer_id(&upper).await, Some(user.id));
}

#[tokio::test]
async fn a_valid_bearer_wins_over_the_cookie_and_an_invalid_one_falls_back_to_it() {
    let app = TestApp::spawn().await;
    let alice = app.user("Alice").await;
    let bob = app.user("Bob").await;
    let both = vec![
        ("cookie", alice.cookie()),
        (
            "authorization",
            format!("Bearer {}", bff::auth::signed_token(&bob.token, SECRET)),
        ),
    ];
    assert_eq!(app.viewer_id(&both).await, Some(bob.id));
    let forged = vec![
        ("cookie", alice.cookie()),
        (
            "authorization",
            format!(
                "Bearer {}",
                bff::auth::signed_token("x".repeat(32).as_str(), "wrong")
            ),
        ),
    ];
    assert_eq!(app.viewer_id(&forged).await, Some(alice.id));
}

#[tokio::test]
async fn forged_or_malformed_credentials_give_no_viewer() {
    let app = TestApp::spawn().await;
    let user = app.user("Mallory").await;
    let good = bff::auth::signed_token(&user.token, SECRET);
    let (token, signature) = good.rsplit_once('.').unwrap();
    let mut tampered_token = token.to_owned();
    tampered_token.replace_range(0..1, if token.starts_with('A') { "B" } else { "A" });
    let mut tampered_sig = signature.to_owned();
    tampered_sig.replace_range(0..1, if signature.starts_with('A') { "B" } else { "A" });
    let url_safe = signature.replace('+', "-").replace('/', "_");
    let cases = [
        ("tampered token", format!("{tampered_token}.{signature}")),
        ("tampered signature", format!("{token}.{tampered_sig}")),
        (
            "wrong secret",
            bff::auth::signed_token(&user.token, "another-secret-0123456789abcdef0123"),
        ),
        (
            "unpadded signature",
            format!("{token}.{}", signature.trim_end_matches('=')),
        ),
        ("unsigned cookie", user.token.clone()),
        ("empty", String::new()),
    ];
    for (what, value) in &cases {
        assert_eq!(app.viewer_id(&cookie(value)).await, None, "cookie: {what}");
    }
    // base64url instead of base64 only differs when the signature has + or /.
    if url_safe != signature {
        assert_eq!(
            app.viewer_id(&cookie(&format!("{token}.{url_safe}"))).await,
            None
        );
    }
    for (what, value) in &cases[..4] {
        assert_eq!(app.viewer_id(&bearer(value)).await, None, "bearer: {what}");
    }
    assert_eq!(app.viewer_id(&bearer("not a token")).await, None);
    assert_eq!(
        app.viewer_id(&[("authorization", format!("Basic {good}"))])
            .await,
        None
    );
    // The genuine credential still works, so the cases above failed for their flaw alone.
    assert_eq!(app.viewer_id(&cookie(&good)).await, Some(user.id));
}

#[tokio::test]
async fn expired_deleted_sessions_and_deleted_users_give_no_viewer_at_once() {
    let app = TestApp::spawn().await;
    let mut conn = app.db().await;

    let expired = app.user("Expired").await;
    assert_eq!(
        app.viewer_id(&[("cookie", expired.cookie())]).await,
        Some(expired.id.clone())
    );
    diesel::update(session::table.filter(session::user_id.eq(&expired.id)))
        .set(session::expires_at.eq(Utc::now() - Duration::seconds(1)))
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(app.viewer_id(&[("cookie", expired.cookie())]).await, None);

    let signed_out = app.user("SignedOut").await;
    assert_eq!(
        app.viewer_id(&[("cookie", signed_out.cookie())]).await,
        Some(signed_out.id.clone())
    );
    diesel::delete(session::table.filter(session::token.eq(&signed_out.token)))
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        app.viewer_id(&[("cookie", signed_out.cookie())]).await,
        None
    );

    let removed = app.user("Removed").await;
    assert_eq!(
        app.viewer_id(&[("cookie", removed.cookie())]).await,
        Some(removed.id.clone())
    );
    diesel::delete(users::table.find(&removed.id))
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(app.viewer_id(&[("cookie", removed.cookie())]).await, None);
}

#[tokio::test]
async fn an_https_better_auth_url_reads_only_the_secure_cookie_name() {
    let app = TestApp::spawn_with(|env| {
        env.insert("BETTER_AUTH_URL", "https://app.example.com".into());
    })
    .await;
    let user = app.user("Secure").await;
    let value = bff::auth::cookie_value(&user.token, SECRET);
    assert_eq!(app.viewer_id(&cookie(&value)).await, None);
    let secure = vec![(
        "cookie",
        format!("__Secure-better-auth.session_token={value}"),
    )];
    assert_eq!(app.viewer_id(&secure).await, Some(user.id));
}

#[tokio::test]
async fn the_cookie_name_can_be_overridden() {
    let app = TestApp::spawn_with(|env| {
        env.insert("BETTER_AUTH_SESSION_COOKIE", "photos.session".into());
    })
    .await;
    let user = app.user("Custom").await;
    let value = bff::auth::cookie_value(&user.token, SECRET);
    assert_eq!(app.viewer_id(&cookie(&value)).await, None);
    let custom = vec![("cookie", format!("photos.session={value}"))];
    assert_eq!(app.viewer_id(&custom).await, Some(user.id));
}

#[tokio::test]
async fn a_request_that_never_touches_the_viewer_does_no_auth_query() {
    // The database does not exist: any query would fail. Only resolvers that need the
    // viewer may touch it.
    let url = crate::support::fresh_database().await;
    let missing = format!("{url}_missing");
    let app = TestApp::spawn_on(missing, |_| {}).await;
    let user = TestUser {
        id: "x".into(),
        token: TOKEN_1.into(),
    };
    let (status, body) = app
        .post("{ __typename }", json!({}), &[("cookie", user.cookie())])
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["__typename"], "Query", "{body}");
    let (status, body) = app
        .post("{ viewer { id } }", json!({}), &[("cookie", user.cookie())])
        .await;
    assert_eq!(status, 200);
    // No connection could be made: the client may retry (the database may be restarting).
    assert_eq!(
        crate::support::first_code(&body),
        "SERVICE_UNAVAILABLE",
        "{body}"
    );
    assert_eq!(body["errors"][0]["extensions"]["retryAfter"], 1, "{body}");
}
