//! Persisted documents over HTTP: trusted documents only (`BFF_TRUSTED_DOCUMENTS`), and Apollo's
//! automatic persisted queries when that mode is off.

use bff::pipeline::documents::sha256_hex;
use serde_json::{Value, json};

use crate::photo_jobs::{grant, state};
use crate::support::{TestApp, first_code};

const ME: &str = "query Me { viewer { id } }";

async fn post_body(app: &TestApp, body: Value, headers: &[(&str, String)]) -> Value {
    let mut request = app.client.post(app.url("/graphql")).json(&body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn automatic_persisted_queries_register_then_run_by_hash() {
    let app = TestApp::spawn().await;
    let user = app.user("Apq").await;
    let cookie = [("cookie", user.cookie())];
    let hash = sha256_hex(ME);
    let extensions = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });
    let body = post_body(&app, json!({ "extensions": extensions }), &cookie).await;
    assert_eq!(first_code(&body), "PERSISTED_QUERY_NOT_FOUND", "{body}");
    assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound");
    // A text that does not hash to the id is refused, and not remembered.
    let body = post_body(
        &app,
        json!({ "query": "{ viewer { email } }", "extensions": extensions }),
        &cookie,
    )
    .await;
    assert_eq!(first_code(&body), "BAD_USER_INPUT", "{body}");
    let body = post_body(&app, json!({ "extensions": extensions }), &cookie).await;
    assert_eq!(first_code(&body), "PERSISTED_QUERY_NOT_FOUND", "{body}");
    // Registered with its text, then sent by hash alone, by POST and by GET.
    let body = post_body(
        &app,
        json!({ "query": ME, "extensions": extensions }),
        &cookie,
    )
    .await;
    assert_eq!(body["data"]["viewer"]["id"], user.id.as_str(), "{body}");
    let body = post_body(&app, json!({ "extensions": extensions }), &cookie).await;
    assert_eq!(body["data"]["viewer"]["id"], user.id.as_str(), "{body}");
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[("extensions", extensions.to_string())])
        .header("cookie", user.cookie())
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["viewer"]["id"], user.id.as_str(), "{body}");
}

#[tokio::test]
async fn trusted_documents_mode_runs_only_the_manifest() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bff-trusted-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = dir.join("persisted-documents.json");
    let hash = sha256_hex(ME);
    std::fs::write(&manifest, json!({ hash.clone(): ME }).to_string()).unwrap();
    let app = TestApp::spawn_with(|env| {
        env.insert("BFF_TRUSTED_DOCUMENTS", manifest.display().to_string());
    })
    .await;
    let user = app.user("Trusted").await;
    grant(&app, &user, 1_000).await;
    let before = state(&app, &user).await;
    let cookie = [("cookie", user.cookie())];
    for body in [
        json!({ "documentId": format!("sha256:{hash}") }),
        json!({ "documentId": hash }),
        json!({ "query": ME }),
    ] {
        let answer = post_body(&app, body.clone(), &cookie).await;
        assert_eq!(
            answer["data"]["viewer"]["id"],
            user.id.as_str(),
            "{body}: {answer}"
        );
    }
    let body = post_body(
        &app,
        json!({ "query": "mutation { createPhotoJob(input: { prompt: \"x\", photoCount: 1 }) { photoJob { id } } }" }),
        &cookie,
    )
    .await;
    assert_eq!(first_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("trusted documents"),
        "{body}"
    );
    assert_eq!(state(&app, &user).await, before);
    let body = post_body(&app, json!({ "documentId": "sha256:0000" }), &cookie).await;
    assert_eq!(first_code(&body), "PERSISTED_QUERY_NOT_FOUND", "{body}");
}
